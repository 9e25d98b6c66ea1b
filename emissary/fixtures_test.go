package emissary_test

import (
	"strconv"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Fixture builders for the tests, in the style of Contour's
// internal/fixture and the same as the edge's: the defaults are the common
// case (namespace "test", hostname "*", port 9898), options say what
// differs.

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

func hostRegex(re string) func(*ambv3.Mapping) {
	return spec(func(s *ambv3.MappingSpec) { s.DeprecatedHost, s.DeprecatedHostRegex = re, ptr(true) })
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

// hostObj builds Host test/name with a cleartext, routed request policy.
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
