package edge

import (
	"strconv"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Fixture builders for the tests, in the style of Contour's
// internal/fixture: the defaults are the common case (namespace "test",
// hostname "*", port 9898 named "http"), options say what differs.

const (
	testNamespace = "test"
	testPort      = 9898
)

func ptr[T any](v T) *T { return &v }

// mapping builds Mapping test/name routing prefix to service (a Service
// name in namespace test, port 9898), with hostname "*".
func mapping(name, prefix, service string, opts ...func(*ambv3.Mapping)) *ambv3.Mapping {
	m := &ambv3.Mapping{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name},
		Spec: ambv3.MappingSpec{
			Hostname: "*",
			Prefix:   prefix,
			Service:  service + ":" + strconv.Itoa(testPort),
		},
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

func spec(f func(*ambv3.MappingSpec)) func(*ambv3.Mapping) {
	return func(m *ambv3.Mapping) { f(&m.Spec) }
}

func weight(w int) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.Weight = ptr(w) })
}

func precedenceOf(p int) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.Precedence = ptr(p) })
}

func headers(kv ...string) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.Headers = pairs(kv) })
}

func regexHeaders(kv ...string) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.RegexHeaders = pairs(kv) })
}

func query(kv ...string) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.QueryParameters = pairs(kv) })
}

func method(m string) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.Method = m })
}

func hostname(h string) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.Hostname = h })
}

func rewrite(r string) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.Rewrite = ptr(r) })
}

func hostRewrite(h string) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.HostRewrite = h })
}

func timeoutMS(ms int) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) {
		s.Timeout = &ambv3.MillisecondDuration{Duration: time.Duration(ms) * time.Millisecond}
	})
}

func prefixRegex() func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.PrefixRegex = ptr(true) })
}

func ambassadorID(ids ...string) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.AmbassadorID = ids })
}

func labels(kv ...string) func(*ambv3.Mapping) {
	return func(m *ambv3.Mapping) { m.Labels = pairs(kv) }
}

func pairs(kv []string) map[string]string {
	out := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// hostObj builds Host test/name with a cleartext, routed request policy
// (what a dev Host says; the edge reports any other).
func hostObj(name, hostname string, selector map[string]string) *ambv3.Host {
	h := &ambv3.Host{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name},
		Spec: &ambv3.HostSpec{
			Hostname:      hostname,
			RequestPolicy: &ambv3.RequestPolicy{Insecure: ambv3.InsecureRequestPolicy{Action: "Route"}},
		},
	}
	if selector != nil {
		h.Spec.MappingSelector = &metav1.LabelSelector{MatchLabels: selector}
	}
	return h
}

// serviceObj builds Service test/name with port 9898 named "http".
func serviceObj(name string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: name},
		Spec: corev1.ServiceSpec{
			Ports: []corev1.ServicePort{{Name: "http", Port: testPort}},
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
			Namespace: testNamespace, Name: name,
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
