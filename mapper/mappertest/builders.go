package mappertest

import (
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// ServiceOption changes a Service built by Service.
type ServiceOption interface{ applyService(*corev1.Service) }

// SliceOption changes an EndpointSlice built by Slice.
type SliceOption interface {
	applySlice(*discoveryv1.EndpointSlice)
}

// MetaOption changes object metadata; it is both a ServiceOption and a
// SliceOption.
type MetaOption func(metav1.Object)

func (o MetaOption) applyService(s *corev1.Service)          { o(s) }
func (o MetaOption) applySlice(s *discoveryv1.EndpointSlice) { o(s) }

type serviceOption func(*corev1.Service)

func (o serviceOption) applyService(s *corev1.Service) { o(s) }

type sliceOption func(*discoveryv1.EndpointSlice)

func (o sliceOption) applySlice(s *discoveryv1.EndpointSlice) { o(s) }

// Labels adds labels, keeping those already set.
func Labels(kv map[string]string) MetaOption {
	return func(o metav1.Object) {
		l := o.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		for k, v := range kv {
			l[k] = v
		}
		o.SetLabels(l)
	}
}

// UID sets the object's UID.
func UID(uid string) MetaOption {
	return func(o metav1.Object) { o.SetUID(types.UID(uid)) }
}

// Service is a ClusterIP Service ns/name with no ports; add them with Port.
func Service(ns, name string, opts ...ServiceOption) *corev1.Service {
	s := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP},
	}
	for _, o := range opts {
		o.applyService(s)
	}
	return s
}

// Port appends a TCP port. A targetPort of 0 leaves it unset.
func Port(name string, port, targetPort int32) ServiceOption {
	return serviceOption(func(s *corev1.Service) {
		p := corev1.ServicePort{Name: name, Protocol: corev1.ProtocolTCP, Port: port}
		if targetPort != 0 {
			p.TargetPort = intstr.FromInt32(targetPort)
		}
		s.Spec.Ports = append(s.Spec.Ports, p)
	})
}

// Slice is an EndpointSlice ns/name of Service svc, labelled the way the
// Kubernetes EndpointSlice controller labels its slices; add endpoints with
// Endpoint and ports with SlicePort.
func Slice(ns, name, svc string, addrType discoveryv1.AddressType, opts ...SliceOption) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			discoveryv1.LabelServiceName: svc,
			discoveryv1.LabelManagedBy:   "endpointslice-controller.k8s.io",
		}},
		AddressType: addrType,
	}
	for _, o := range opts {
		o.applySlice(es)
	}
	return es
}

// Endpoint appends an endpoint with one address and an explicit ready
// condition; serving follows ready and terminating is false.
func Endpoint(addr string, ready bool) SliceOption {
	return sliceOption(func(es *discoveryv1.EndpointSlice) {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{addr},
			Conditions: discoveryv1.EndpointConditions{
				Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false),
			},
		})
	})
}

// SlicePort appends a TCP port.
func SlicePort(name string, port int32) SliceOption {
	return sliceOption(func(es *discoveryv1.EndpointSlice) {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{
			Name: ptr.To(name), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(port),
		})
	})
}
