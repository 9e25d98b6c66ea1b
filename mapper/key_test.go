package mapper_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/crossmap/crossmap/mapper"
)

// TestKeyOfReadsGroupsLikeParseGroupVersion: KeyOf's shortcut for typed
// objects finds the group schema.ParseGroupVersion finds, malformed
// apiVersions included, and agrees with the unstructured path (which drops
// the kind too when the apiVersion does not parse).
func TestKeyOfReadsGroupsLikeParseGroupVersion(t *testing.T) {
	for _, apiVersion := range []string{"", "v1", "apps/v1", "discovery.k8s.io/v1", "getambassador.io/v3alpha1", "/", "/v1", "g/", "a/b/c", "//"} {
		svc := &corev1.Service{}
		svc.APIVersion, svc.Kind, svc.Namespace, svc.Name = apiVersion, "Service", "ns", "name"
		want := mapper.Key{Group: schema.FromAPIVersionAndKind(apiVersion, "Service").Group, Kind: "Service", Namespace: "ns", Name: "name"}
		if got := mapper.KeyOf(svc); got != want {
			t.Errorf("apiVersion %q: KeyOf = %+v, want %+v", apiVersion, got, want)
		}
		if _, err := schema.ParseGroupVersion(apiVersion); err != nil {
			continue
		}
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(apiVersion)
		u.SetKind("Service")
		u.SetNamespace("ns")
		u.SetName("name")
		if got := mapper.KeyOf(u); got != want {
			t.Errorf("apiVersion %q, unstructured: KeyOf = %+v, want %+v", apiVersion, got, want)
		}
	}
}
