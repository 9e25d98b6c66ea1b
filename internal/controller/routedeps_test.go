package controller

import (
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestRouteDeps(t *testing.T) {
	var d routeDeps
	svc := func(ns, name string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	slice := func(ns, service string) *discoveryv1.EndpointSlice {
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: service + "-x1"}}
		if service != "" {
			es.Labels = map[string]string{discoveryv1.LabelServiceName: service}
		}
		return es
	}
	services, slices := d.services(), d.slices()
	if !services.Create(event.CreateEvent{Object: svc("app", "anything")}) {
		t.Error("before the first update, a Service event was dropped; want everything through")
	}

	d.update([]ambv3.Mapping{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "podinfo", Annotations: map[string]string{"crossmap.io/split": "east=50"}},
			Spec: ambv3.MappingSpec{Service: "podinfo:9898"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "other", Annotations: map[string]string{"crossmap.io/dev-routes": "dev-alice"}},
			Spec: ambv3.MappingSpec{Service: "http://api.backend:8080"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "plain"}, Spec: ambv3.MappingSpec{Service: "plain:80"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: "broken", Annotations: map[string]string{"crossmap.io/split": "east=50"}},
			Spec: ambv3.MappingSpec{Service: "::not a service"}},
	})
	for _, tc := range []struct {
		what string
		pass bool
		got  bool
	}{
		{"the local backend", true, services.Update(event.UpdateEvent{ObjectOld: svc("app", "podinfo"), ObjectNew: svc("app", "podinfo")})},
		{"its mirror", true, services.Create(event.CreateEvent{Object: svc("app", "podinfo-east")})},
		{"its mirror's slice", true, slices.Update(event.UpdateEvent{ObjectOld: slice("app", "podinfo-east"), ObjectNew: slice("app", "podinfo-east")})},
		{"a backend in another namespace", true, slices.Create(event.CreateEvent{Object: slice("backend", "api-dev-alice")})},
		{"a deleted backend", true, services.Delete(event.DeleteEvent{Object: svc("app", "podinfo")})},
		{"a slice naming no Service", true, slices.Create(event.CreateEvent{Object: slice("app", "")})},
		{"a plain Mapping's Service", false, services.Create(event.CreateEvent{Object: svc("app", "plain")})},
		{"an unrelated Service", false, services.Create(event.CreateEvent{Object: svc("app", "podinfox")})},
		{"the backend's name in another namespace", false, services.Create(event.CreateEvent{Object: svc("other", "podinfo")})},
		{"an unrelated mirror's slice", false, slices.Update(event.UpdateEvent{ObjectOld: slice("app", "svc-001-east"), ObjectNew: slice("app", "svc-001-east")})},
	} {
		if tc.got != tc.pass {
			t.Errorf("%s: passed = %v, want %v", tc.what, tc.got, tc.pass)
		}
	}
}
