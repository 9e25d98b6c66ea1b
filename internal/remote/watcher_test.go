package remote

import (
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// TestStripManagedFields: the remote objects are cached without their
// managed fields, and everything else is left as it came; tombstones pass.
func TestStripManagedFields(t *testing.T) {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
		Name: "podinfo-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: "podinfo"},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "endpointslice-controller", Operation: metav1.ManagedFieldsOperationUpdate}},
	}}
	out, err := stripManagedFields(es)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*discoveryv1.EndpointSlice)
	if got.ManagedFields != nil || got.Name != "podinfo-abcde" || got.Labels[discoveryv1.LabelServiceName] != "podinfo" {
		t.Errorf("stripManagedFields = %+v; want the slice without managed fields, and nothing else changed", got.ObjectMeta)
	}
	tomb := cache.DeletedFinalStateUnknown{Key: "ns/podinfo-abcde", Obj: es}
	if out, err := stripManagedFields(tomb); err != nil || out != any(tomb) {
		t.Errorf("stripManagedFields(tombstone) = %v, %v; want it unchanged", out, err)
	}
}
