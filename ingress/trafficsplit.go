package ingress

import (
	"fmt"

	splitv1alpha1 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha1"
	splitv1alpha2 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Object is a rendered API object: the method set of controller-runtime's
// client.Object, named here because ingress, like mapper, which imports
// it, imports no client library.
type Object interface {
	metav1.Object
	runtime.Object
}

// TrafficSplit versions crossmap can write.
const (
	TrafficSplitV1alpha2 = "v1alpha2"
	TrafficSplitV1alpha1 = "v1alpha1"
)

// SplitBackend is one backend of a TrafficSplit with its weight in percent.
type SplitBackend struct {
	Service string
	Weight  int
}

// TrafficSplit renders an SMI TrafficSplit for the apex Service, so that
// meshed in-cluster traffic splits like edge traffic. v1alpha2 carries
// integer weights; v1alpha1 carries quantities, where crossmap writes a
// percent p as p×10 milli-units so that 50/50 reads "500m", as in the
// Linkerd/Ambassador recipe.
func TrafficSplit(version string, meta metav1.ObjectMeta, apex string, backends []SplitBackend) (Object, error) {
	switch version {
	case TrafficSplitV1alpha2, "":
		ts := &splitv1alpha2.TrafficSplit{
			TypeMeta:   metav1.TypeMeta{APIVersion: splitv1alpha2.SchemeGroupVersion.String(), Kind: "TrafficSplit"},
			ObjectMeta: meta,
			Spec:       splitv1alpha2.TrafficSplitSpec{Service: apex},
		}
		for _, b := range backends {
			ts.Spec.Backends = append(ts.Spec.Backends, splitv1alpha2.TrafficSplitBackend{Service: b.Service, Weight: b.Weight})
		}
		return ts, nil
	case TrafficSplitV1alpha1:
		ts := &splitv1alpha1.TrafficSplit{
			TypeMeta:   metav1.TypeMeta{APIVersion: splitv1alpha1.SchemeGroupVersion.String(), Kind: "TrafficSplit"},
			ObjectMeta: meta,
			Spec:       splitv1alpha1.TrafficSplitSpec{Service: apex},
		}
		for _, b := range backends {
			q := resource.NewMilliQuantity(int64(b.Weight)*10, resource.DecimalSI)
			ts.Spec.Backends = append(ts.Spec.Backends, splitv1alpha1.TrafficSplitBackend{Service: b.Service, Weight: q})
		}
		return ts, nil
	}
	return nil, fmt.Errorf("unknown TrafficSplit version %q (want %s or %s)", version, TrafficSplitV1alpha2, TrafficSplitV1alpha1)
}
