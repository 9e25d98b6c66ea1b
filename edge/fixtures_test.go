package edge

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossmap/crossmap/emissary/fixture"
)

// Fixture builders for the tests beside package fixture's Mappings and
// Hosts: the defaults are the common case (namespace "test", port 9898
// named "http"), options say what differs.

func ptr[T any](v T) *T { return &v }

// serviceObj builds Service test/name with port 9898 named "http".
func serviceObj(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: fixture.Namespace, Name: name},
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Name: "http", Port: fixture.Port}},
		},
	}
}

// endpoint is one endpoint of a slice; ready nil leaves the condition
// unset.
type endpoint struct {
	addr  string
	ready *bool
}

// sliceObj builds an EndpointSlice for Service test/service with port
// "http" at port.
func sliceObj(name, service string, port int32, eps ...endpoint) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: fixture.Namespace, Name: name,
			Labels: map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Port: ptr(port)}},
	}
	for _, ep := range eps {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{ep.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: ep.ready},
		})
	}
	return es
}
