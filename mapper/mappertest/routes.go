package mappertest

import (
	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	splitv1alpha2 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// Builders for the route role: the Emissary Mappings that are its sources
// and the objects it writes. They do not import mapper, so that tests inside
// package mapper can use them too; RouteLabels spells the route role's
// labels out instead of calling mapper.RouteSelector.

// MappingOption changes a Mapping built by Mapping. MetaOptions (Labels,
// UID, Annotations) are MappingOptions too.
type MappingOption interface{ applyMapping(*ambv3.Mapping) }

type mappingOption func(*ambv3.Mapping)

func (o mappingOption) applyMapping(m *ambv3.Mapping) { o(m) }

func (o MetaOption) applyMapping(m *ambv3.Mapping) { o(m) }

// Mapping is a getambassador.io/v3alpha1 Mapping ns/name that routes prefix
// to service, for any hostname ("*"), as the README's example writes it.
func Mapping(ns, name, prefix, service string, opts ...MappingOption) *ambv3.Mapping {
	m := &ambv3.Mapping{
		TypeMeta:   metav1.TypeMeta{APIVersion: ambv3.GroupVersion.String(), Kind: "Mapping"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       ambv3.MappingSpec{Hostname: "*", Prefix: prefix, Service: service},
	}
	for _, o := range opts {
		o.applyMapping(m)
	}
	return m
}

// Annotations adds annotations, keeping those already set.
func Annotations(kv map[string]string) MetaOption {
	return func(o metav1.Object) {
		a := o.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		for k, v := range kv {
			a[k] = v
		}
		o.SetAnnotations(a)
	}
}

// AmbassadorID sets the Mapping's ambassador_id.
func AmbassadorID(ids ...string) MappingOption {
	return mappingOption(func(m *ambv3.Mapping) { m.Spec.AmbassadorID = ids })
}

// Weight sets the Mapping's weight.
func Weight(w int) MappingOption {
	return mappingOption(func(m *ambv3.Mapping) { m.Spec.Weight = &w })
}

// RouteLabels are the labels the route role puts on what it writes for the
// annotated Mapping sourceNS/sourceName.
func RouteLabels(sourceNS, sourceName string) MetaOption {
	return Labels(map[string]string{
		crossmapv1.LabelManagedBy:       crossmapv1.ManagedBy,
		crossmapv1.LabelRole:            "route",
		crossmapv1.LabelSourceNamespace: sourceNS,
		crossmapv1.LabelSourceName:      sourceName,
	})
}

// TrafficSplit is an SMI v1alpha2 TrafficSplit ns/name for apex with no
// backends, as the route role writes it (with RouteLabels) or anyone else.
func TrafficSplit(ns, name, apex string, opts ...MetaOption) *splitv1alpha2.TrafficSplit {
	ts := &splitv1alpha2.TrafficSplit{
		TypeMeta:   metav1.TypeMeta{APIVersion: splitv1alpha2.SchemeGroupVersion.String(), Kind: "TrafficSplit"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       splitv1alpha2.TrafficSplitSpec{Service: apex},
	}
	for _, o := range opts {
		o(ts)
	}
	return ts
}
