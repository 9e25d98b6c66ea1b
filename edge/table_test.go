package edge

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossmap/crossmap/emissary/fixture"
)

// Unit tests of Build and Route, without HTTP.

// routeTo routes a request for rawURL (with its host) and returns the
// Mapping's name, or "" for no route.
func routeTo(t *testing.T, tbl *Table, method, rawURL string, draw int, hdr ...string) string {
	t.Helper()
	r := httptest.NewRequest(method, rawURL, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	target, ok := tbl.Route(r, draw)
	if !ok {
		return ""
	}
	return target.Mapping
}

// counts routes a request once per draw 0..99 and counts the Mappings.
func counts(t *testing.T, tbl *Table, method, rawURL string, hdr ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for d := range 100 {
		out[routeTo(t, tbl, method, rawURL, d, hdr...)]++
	}
	return out
}

// TestVhostSelection checks Envoy's choice of virtual host: exact, then
// the longest suffix wildcard, then the longest prefix wildcard, then "*";
// a wildcard never matches the empty string.
func TestVhostSelection(t *testing.T) {
	hosts := []*host{
		{name: "any", hostname: "*"},
		{name: "exact", hostname: "a.example.com"},
		{name: "suffix", hostname: "*.example.com"},
		{name: "longer-suffix", hostname: "*.b.example.com"},
		{name: "prefix", hostname: "a.*"},
		{name: "longer-prefix", hostname: "a.example.*"},
	}
	v := newVhosts(hosts)
	for _, tc := range []struct{ host, want string }{
		{"a.example.com", "exact"},
		{"A.Example.COM", "exact"},
		{"x.example.com", "suffix"},
		{"x.b.example.com", "longer-suffix"},
		{"b.example.com", "suffix"},
		{"a.example.org", "longer-prefix"},
		{"a.other", "prefix"},
		{"example.com", "any"},
		{".example.com", "any"}, // the * of "*.example.com" would match ""
		{"other", "any"},
	} {
		if got, _ := v.Find(tc.host); got == nil || got.name != tc.want {
			t.Errorf("find(%q) = %v, want %s", tc.host, got, tc.want)
		}
	}
	if got, ok := newVhosts(hosts[1:2]).Find("b.example.com"); ok {
		t.Errorf("find without a match = %v, want nil", got.name)
	}
}

// TestRouteOrder checks Emissary's route order (ir/irhttpmapping.py
// _route_weight, ir/ir.py ordered_groups): precedence, then prefix length,
// then header length, then query length, then the prefix, header and query
// keys, each descending.
func TestRouteOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mappings []*ambv3.Mapping
		want     []string
	}{{
		name: "precedence beats prefix length",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("long", "/podinfo/api/", "a"),
			fixture.Mapping("prec", "/", "a", fixture.Precedence(1)),
			fixture.Mapping("neg", "/podinfo/api/v1/", "a", fixture.Precedence(-1)),
		},
		want: []string{"prec", "long", "neg"},
	}, {
		name: "prefix length, then headers, then query parameters",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("short", "/a/", "a"),
			fixture.Mapping("long", "/a/b/", "a"),
			fixture.Mapping("hdr", "/a/", "a", fixture.Headers("x-a", "1")),
			fixture.Mapping("qp", "/a/", "a", fixture.Query("a", "1")),
			fixture.Mapping("both", "/a/", "a", fixture.Headers("x", "1"), fixture.Query("a", "1")),
		},
		// header length counts name and value: x-a+1 = 4, x+1 = 2, plus
		// :authority+* = 11 for every Mapping.
		want: []string{"long", "hdr", "both", "qp", "short"},
	}, {
		name: "equal lengths: the prefix descending, then header keys",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("ab", "/ab/", "a"),
			fixture.Mapping("ba", "/ba/", "a"),
			fixture.Mapping("hx", "/ab/", "a", fixture.Headers("x", "2")),
			fixture.Mapping("hy", "/ab/", "a", fixture.Headers("y", "1")),
		},
		want: []string{"hy", "hx", "ba", "ab"},
	}, {
		name: "a hostname is an :authority header: longer globs first",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("star", "/", "a"),
			fixture.Mapping("named", "/", "a", fixture.Hostname("*.example.com")),
		},
		want: []string{"named", "star"},
	}, {
		name: "a method is a :method header",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("get", "/", "a"),
			fixture.Mapping("post", "/", "a", fixture.Method("POST")),
		},
		want: []string{"post", "get"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tbl, problems := Build(Input{Mappings: tc.mappings})
			assertServiceProblemsOnly(t, problems)
			var got []string
			for _, r := range tbl.hosts[0].routes { // the default Host's
				if r.group.Builtin == "" {
					got = append(got, strings.TrimPrefix(r.mapping, "test/"))
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("route order = %v, want %v", got, tc.want)
			}
		})
	}
}

// assertServiceProblemsOnly fails on any problem but the missing Services
// of tests that build no Services.
func assertServiceProblemsOnly(t *testing.T, problems []Problem) {
	t.Helper()
	for _, p := range problems {
		if p.Field != "service" {
			t.Errorf("unexpected problem %s", p)
		}
	}
}

// TestWeightsFallThrough: weights below 100 without a weightless Mapping
// leave draws to the routes after the group (irbasemappinggroup.py,
// normalize_weights_in_mappings: no member reaches 100).
func TestWeightsFallThrough(t *testing.T) {
	tbl, _ := Build(Input{Mappings: []*ambv3.Mapping{
		fixture.Mapping("canary-a", "/app/", "a", fixture.Weight(20)),
		fixture.Mapping("canary-b", "/app/", "b", fixture.Weight(10)),
		fixture.Mapping("rest", "/", "c"),
	}})
	got := counts(t, tbl, "GET", "http://example.com/app/x")
	want := map[string]int{"test/canary-a": 20, "test/canary-b": 10, "test/rest": 70}
	if !mapsEqual(got, want) {
		t.Errorf("counts = %v, want %v", got, want)
	}
	// The draws are taken in route order: canary-a has 0..19.
	if got := routeTo(t, tbl, "GET", "http://example.com/app/x", 19); got != "test/canary-a" {
		t.Errorf("draw 19 went to %q, want canary-a", got)
	}
	if got := routeTo(t, tbl, "GET", "http://example.com/app/x", 20); got != "test/canary-b" {
		t.Errorf("draw 20 went to %q, want canary-b", got)
	}
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestMatching covers the matchers of a route.
func TestMatching(t *testing.T) {
	for _, tc := range []struct {
		name    string
		source  string
		mapping *ambv3.Mapping
		method  string
		url     string
		hdr     []string
		want    bool
	}{
		{"prefix is case sensitive by default", "v3route.py: case_sensitive defaults to True", fixture.Mapping("m", "/Api/", "a"), "GET", "http://h/api/x", nil, false},
		{"case_sensitive false", "v3route.py: match.case_sensitive", fixture.Mapping("m", "/Api/", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.CaseSensitive = ptr(false) })), "GET", "http://h/api/x", nil, true},
		{"prefix_exact matches the path only", "common.py EnvoyRoute: path", fixture.Mapping("m", "/api", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.PrefixExact = ptr(true) })), "GET", "http://h/api/x", nil, false},
		{"prefix_exact ignores the query", "common.py EnvoyRoute: path", fixture.Mapping("m", "/api", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.PrefixExact = ptr(true) })), "GET", "http://h/api?x=1", nil, true},
		{"prefix_regex is a full match", "v3route.py regex_matcher: safe_regex", fixture.Mapping("m", "/items/[0-9]+", "a", fixture.PrefixRegex()), "GET", "http://h/items/42/x", nil, false},
		{"prefix_regex ignores case_sensitive", "Envoy: case_sensitive does not apply to safe_regex", fixture.Mapping("m", "/items/[0-9]+", "a", fixture.PrefixRegex(), fixture.Spec(func(s *ambv3.MappingSpec) { s.CaseSensitive = ptr(false) })), "GET", "http://h/ITEMS/42", nil, false},
		{"header exact", "v3route.py generate_headers: exact_match", fixture.Mapping("m", "/", "a", fixture.Headers("x-env", "dev")), "GET", "http://h/", []string{"X-Env", "dev"}, true},
		{"header exact, other value", "v3route.py generate_headers", fixture.Mapping("m", "/", "a", fixture.Headers("x-env", "dev")), "GET", "http://h/", []string{"X-Env", "prod"}, false},
		{"header \"true\" is an exact value in v3alpha1", "getambassador.io/v2 conversion: v2 true becomes regex_headers .*", fixture.Mapping("m", "/", "a", fixture.Headers("x-flag", "true")), "GET", "http://h/", []string{"x-flag", "yes"}, false},
		{"regex header .* needs the header", "Envoy HeaderMatcher: an absent header never matches", fixture.Mapping("m", "/", "a", fixture.RegexHeaders("x-flag", ".*")), "GET", "http://h/", nil, false},
		{"regex header is a full match", "v3route.py generate_headers: safe_regex_match", fixture.Mapping("m", "/", "a", fixture.RegexHeaders("x-v", "v[0-9]")), "GET", "http://h/", []string{"x-v", "v10"}, false},
		{"repeated header values join with commas", "Envoy HeaderUtility::getAllOfHeaderAsString", fixture.Mapping("m", "/", "a", fixture.Headers("x-a", "1,2")), "GET", "http://h/", []string{"x-a", "1", "x-a", "2"}, true},
		{"hostname suffix glob", "v3route.py generate_headers: suffix_match", fixture.Mapping("m", "/", "a", fixture.Hostname("*.example.com")), "GET", "http://a.example.com/", nil, true},
		{"hostname prefix glob", "v3route.py generate_headers: prefix_match", fixture.Mapping("m", "/", "a", fixture.Hostname("api.*")), "GET", "http://api.example.com:8080/", nil, true},
		{"hostname exact", "v3route.py generate_headers: exact_match", fixture.Mapping("m", "/", "a", fixture.Hostname("example.com")), "GET", "http://other.com/", nil, false},
		{"host_regex", "irhttpmapping.py: host_regex makes a regex :authority match", fixture.Mapping("m", "/", "a", fixture.Hostname(""), fixture.Spec(func(s *ambv3.MappingSpec) {
			s.DeprecatedHost = "[a-z]+\\.example\\.com"
			s.DeprecatedHostRegex = ptr(true)
		})), "GET", "http://abc.example.com/", nil, true},
		{"method", "irhttpmapping.py: method becomes a :method header", fixture.Mapping("m", "/", "a", fixture.Method("POST")), "GET", "http://h/", nil, false},
		{"method_regex", "irhttpmapping.py: method_regex", fixture.Mapping("m", "/", "a", fixture.Method("P(OST|UT)"), fixture.Spec(func(s *ambv3.MappingSpec) { s.MethodRegex = ptr(true) })), "PUT", "http://h/", nil, true},
		{"query parameter, decoded", "v3route.py generate_query_parameters", fixture.Mapping("m", "/", "a", fixture.Query("q", "a b")), "GET", "http://h/?q=a%20b", nil, true},
		{"query parameter, first value", "Envoy QueryParameterMatcher", fixture.Mapping("m", "/", "a", fixture.Query("q", "2")), "GET", "http://h/?q=1&q=2", nil, false},
		{"regex query parameter", "v3route.py generate_query_parameters: safe_regex", fixture.Mapping("m", "/", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.RegexQueryParameters = map[string]string{"v": "[0-9]+"} })), "GET", "http://h/?v=12", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl, problems := Build(Input{Mappings: []*ambv3.Mapping{tc.mapping}})
			assertServiceProblemsOnly(t, problems)
			if got := routeTo(t, tbl, tc.method, tc.url, 0, tc.hdr...) != ""; got != tc.want {
				t.Errorf("matched = %v, want %v (%s)", got, tc.want, tc.source)
			}
		})
	}
}

// TestRewrite checks the path and Host a route sends.
func TestRewrite(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mapping  *ambv3.Mapping
		url      string
		wantPath string
		wantHost string
	}{
		{"default rewrite replaces the prefix with /", fixture.Mapping("m", "/podinfo/", "a"), "http://h/podinfo/foo", "/foo", ""},
		{"rewrite /api/", fixture.Mapping("m", "/podinfo/", "a", fixture.Rewrite("/api/")), "http://h/podinfo/foo", "/api/foo", ""},
		{"rewrite \"\" keeps the path", fixture.Mapping("m", "/podinfo/", "a", fixture.Rewrite("")), "http://h/podinfo/foo", "/podinfo/foo", ""},
		{"a prefix without slash leaves a double slash", fixture.Mapping("m", "/podinfo", "a"), "http://h/podinfo/foo", "//foo", ""},
		{"encoding is kept", fixture.Mapping("m", "/p/", "a"), "http://h/p/a%2Fb", "/a%2Fb", ""},
		{"case-insensitive prefix: the matched bytes go", fixture.Mapping("m", "/p/", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.CaseSensitive = ptr(false) })), "http://h/P/x", "/x", ""},
		{"a regex match is replaced whole", fixture.Mapping("m", "/items/[0-9]+", "a", fixture.PrefixRegex(), fixture.Rewrite("/item")), "http://h/items/42", "/item", ""},
		{"regex_rewrite turns rewrite off", fixture.Mapping("m", "/p/", "a", fixture.Spec(func(s *ambv3.MappingSpec) {
			s.RegexRewrite = &ambv3.RegexMap{Pattern: "/p/(.*)", Substitution: "/\\1"}
		})), "http://h/p/x", "/p/x", ""},
		{"host_rewrite", fixture.Mapping("m", "/", "a", fixture.HostRewrite("podinfo.test.svc.cluster.local")), "http://h/", "/", "podinfo.test.svc.cluster.local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl, _ := Build(Input{Mappings: []*ambv3.Mapping{tc.mapping}})
			target, ok := tbl.Route(httptest.NewRequest("GET", tc.url, nil), 0)
			if !ok {
				t.Fatal("no route")
			}
			if target.Path != tc.wantPath || target.Host != tc.wantHost {
				t.Errorf("path, host = %q, %q; want %q, %q", target.Path, target.Host, tc.wantPath, tc.wantHost)
			}
		})
	}
}

// TestTimeout checks the route timeout: 3000ms by default, timeout_ms
// otherwise, and 0 for none (v3route.py: "%0.3fs" of timeout_ms).
func TestTimeout(t *testing.T) {
	for _, tc := range []struct {
		m    *ambv3.Mapping
		want time.Duration
	}{
		{fixture.Mapping("m", "/", "a"), 3 * time.Second},
		{fixture.Mapping("m", "/", "a", fixture.TimeoutMS(100)), 100 * time.Millisecond},
		{fixture.Mapping("m", "/", "a", fixture.TimeoutMS(0)), 0},
	} {
		tbl, _ := Build(Input{Mappings: []*ambv3.Mapping{tc.m}})
		target, _ := tbl.Route(httptest.NewRequest("GET", "http://h/", nil), 0)
		if target.Timeout != tc.want {
			t.Errorf("timeout = %v, want %v", target.Timeout, tc.want)
		}
	}
}

// TestResolve checks how a service field becomes endpoints.
func TestResolve(t *testing.T) {
	svc := serviceObj("podinfo")
	other := sliceObj("other-ns", "podinfo", 1, endpoint{addr: "10.0.9.9"})
	other.Namespace = "elsewhere"
	wrongPort := sliceObj("wrong-port", "podinfo", 2, endpoint{addr: "10.0.8.8"})
	wrongPort.Ports[0].Name = ptr("metrics")
	in := Input{
		Mappings: []*ambv3.Mapping{fixture.Mapping("m", "/", "podinfo")},
		Services: []*corev1.Service{svc},
		Slices: []*discoveryv1.EndpointSlice{
			sliceObj("a", "podinfo", 8080,
				endpoint{addr: "10.0.0.2"},
				endpoint{addr: "10.0.0.1", ready: ptr(true)},
				endpoint{addr: "10.0.0.3", ready: ptr(false)}),
			// The same endpoint in a second slice, during a move.
			sliceObj("b", "podinfo", 8080, endpoint{addr: "10.0.0.2"}),
			other, wrongPort, nil,
		},
	}
	tbl, problems := Build(in)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	target, _ := tbl.Route(httptest.NewRequest("GET", "http://h/", nil), 0)
	want := []string{"10.0.0.1:8080", "10.0.0.2:8080"}
	if !slices.Equal(target.Endpoints, want) || target.Backend != "podinfo.test:9898" || target.Scheme != "http" {
		t.Errorf("target = %+v, want endpoints %v of podinfo.test:9898", target, want)
	}
}

// TestProblems checks what Build reports, and what it then routes.
func TestProblems(t *testing.T) {
	svc := serviceObj("a")
	type want struct{ mapping, host, field, message string }
	for _, tc := range []struct {
		name      string
		in        Input
		want      []want
		routes    string // the Mapping GET http://example.com/x goes to; "" for none
		routesFor string // the URL, when not http://example.com/x
	}{{
		name: "unsupported fields are reported and ignored",
		in: Input{Mappings: []*ambv3.Mapping{fixture.Mapping("m", "/", "a", fixture.Spec(func(s *ambv3.MappingSpec) {
			s.CORS = &ambv3.CORS{Origins: []string{"*"}}
			s.RetryPolicy = &ambv3.RetryPolicy{RetryOn: "5xx"}
			s.BypassAuth = ptr(false) // Emissary's default: nothing to report
			s.V2BoolHeaders = []string{"x"}
		}))}},
		want: []want{
			{"test/m", "", "cors", "not supported by the dev edge; Emissary would answer CORS preflight requests"},
			{"test/m", "", "retry_policy", "not supported by the dev edge; Emissary would retry failed requests"},
		},
		routes: "test/m",
	}, {
		name: "shadow and host_redirect Mappings are not routed",
		in: Input{Mappings: []*ambv3.Mapping{
			fixture.Mapping("shadow", "/x", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.Shadow = ptr(true) })),
			fixture.Mapping("redirect", "/x", "a", fixture.Headers("x", "1"), fixture.Spec(func(s *ambv3.MappingSpec) {
				s.HostRedirect = ptr(true)
				s.PathRedirect = "/y"
			})),
			fixture.Mapping("plain", "/", "a"),
		}},
		want: []want{
			{"test/redirect", "", "host_redirect", "answer with a redirect"},
			{"test/shadow", "", "shadow", "mirror the group's requests"},
		},
		routes: "test/plain",
	}, {
		name: "a Mapping after a host_redirect Mapping in its group is rejected",
		in: Input{Mappings: []*ambv3.Mapping{
			fixture.Mapping("a-redirect", "/x", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.HostRedirect = ptr(true) })),
			fixture.Mapping("b", "/x", "a"),
		}},
		want: []want{
			{"test/a-redirect", "", "host_redirect", "answer with a redirect"},
			{"test/b", "", "", "its group already has the host_redirect Mapping test/a-redirect"},
		},
	}, {
		name: "a group over 100 routes nothing",
		in: Input{Mappings: []*ambv3.Mapping{
			fixture.Mapping("a", "/", "a", fixture.Weight(60)),
			fixture.Mapping("b", "/", "a", fixture.Weight(50)),
		}},
		want: []want{
			{"test/a", "", "weight", "the weights add up to 110, more than 100; Emissary rejects the group"},
			{"test/b", "", "weight", "the weights add up to 110"},
		},
	}, {
		name: "mismatched core fields: Emissary rejects the later Mapping",
		in: Input{Mappings: []*ambv3.Mapping{
			fixture.Mapping("a", "/", "a"),
			fixture.Mapping("b", "/", "a", fixture.Weight(50), fixture.Spec(func(s *ambv3.MappingSpec) { s.PrefixExact = ptr(false) })),
		}},
		want: []want{
			{"test/b", "", "", "Emissary rejects the Mapping from the group of test/a: mismatched prefix_exact: false != -unset-"},
		},
		routes: "test/a",
	}, {
		name: "an invalid load_balancer rejects the Mapping; a supported one is fine",
		in: Input{Mappings: []*ambv3.Mapping{
			fixture.Mapping("a", "/x", "a", fixture.Spec(func(s *ambv3.MappingSpec) {
				s.LoadBalancer = &ambv3.LoadBalancer{Policy: "round_robin", Header: "x"}
			})),
			fixture.Mapping("b", "/", "a", fixture.Spec(func(s *ambv3.MappingSpec) {
				s.LoadBalancer = &ambv3.LoadBalancer{Policy: "round_robin"}
			})),
			fixture.Mapping("c", "/y", "a", fixture.Spec(func(s *ambv3.MappingSpec) {
				s.LoadBalancer = &ambv3.LoadBalancer{Policy: "ring_hash", Header: "x"}
			})),
		}},
		want: []want{
			{"test/a", "", "load_balancer", "Emissary rejects the Mapping"},
			{"test/c", "", "load_balancer", "Emissary would balance with policy ring_hash"},
		},
		routes: "test/b",
	}, {
		name: "an exact host with * is rejected",
		in: Input{Mappings: []*ambv3.Mapping{
			fixture.Mapping("a", "/x", "a", fixture.Headers(":authority", "*.example.com")),
			fixture.Mapping("b", "/", "a"),
		}},
		want:   []want{{"test/a", "", "", "Emissary rejects the Mapping: :authority exact-match \"*.example.com\" contains *"}},
		routes: "test/b",
	}, {
		name: "invalid regexes leave the Mapping out",
		in: Input{Mappings: []*ambv3.Mapping{
			fixture.Mapping("a", "/x(", "a", fixture.PrefixRegex()),
			fixture.Mapping("b", "/x", "a", fixture.RegexHeaders("x", "(")),
		}},
		want: []want{
			{"test/a", "", "prefix", "not a valid RE2 regex"},
			{"test/b", "", "", "not a valid RE2 regex"},
		},
	}, {
		name: "services the edge cannot resolve answer 503",
		in: Input{Mappings: []*ambv3.Mapping{
			fixture.Mapping("missing", "/m", "nope"),
			fixture.Mapping("port", "/p", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.Service = "a:81" })),
			fixture.Mapping("ip", "/i", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.Service = "10.0.0.1:80" })),
		}},
		want: []want{
			{"test/ip", "", "service", "not a Kubernetes Service"},
			{"test/missing", "", "service", "Service test/nope does not exist"},
			{"test/port", "", "service", "Service test/a has no port 81"},
		},
		routes: "test/missing", routesFor: "http://example.com/m",
	}, {
		name: "without Hosts, a Mapping without hostname is not served",
		in: Input{Mappings: []*ambv3.Mapping{
			fixture.Mapping("a", "/", "a", fixture.Hostname("")),
		}},
		want: []want{{"test/a", "", "", "the installation has no Host, and Emissary's default Host"}},
	}, {
		name: "Hosts: TLS without its Secret, a duplicate hostname, another installation",
		in: Input{
			Mappings: []*ambv3.Mapping{fixture.Mapping("a", "/", "a")},
			Hosts: []*ambv3.Host{
				{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "tls"}, Spec: &ambv3.HostSpec{Hostname: "*", TLSSecret: &corev1.SecretReference{Name: "cert"}}},
				fixture.Host("z-same", "*", nil),
				func() *ambv3.Host {
					h := fixture.Host("other", "*", nil)
					h.Spec.AmbassadorID = []string{"other"}
					h.Spec.TLSSecret = &corev1.SecretReference{Name: "cert"}
					return h
				}(),
			},
		},
		want: []want{
			{"", "test/tls", "hostname", "Host test/z-same has the same hostname \"*\""},
			{"", "test/tls", "tlsSecret", "Secret test/cert does not exist; the dev edge fails every TLS handshake for this Host"},
		},
		routes: "test/a",
	}, {
		name: "Mappings of other installations are ignored",
		in: Input{
			Mappings: []*ambv3.Mapping{
				fixture.Mapping("other", "/", "a", fixture.AmbassadorID("other"), fixture.Spec(func(s *ambv3.MappingSpec) { s.CORS = &ambv3.CORS{} })),
				fixture.Mapping("automatic", "/x", "a", fixture.AmbassadorID("_automatic_")),
			},
		},
		routes: "test/automatic",
	}, {
		name: "the installation's own ambassador_id",
		in: Input{
			AmbassadorID: []string{"east"},
			Mappings: []*ambv3.Mapping{
				fixture.Mapping("default", "/", "a"),
				fixture.Mapping("east", "/x", "a", fixture.AmbassadorID("west", "east")),
			},
		},
		routes: "test/east",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.Services == nil {
				tc.in.Services = []*corev1.Service{svc}
			}
			tbl, problems := Build(tc.in)
			if len(problems) != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%s", len(problems), len(tc.want), problemList(problems))
			}
			for i := range min(len(problems), len(tc.want)) {
				p, w := problems[i], tc.want[i]
				if p.Mapping != w.mapping || p.Host != w.host || p.Field != w.field || !strings.Contains(p.Message, w.message) {
					t.Errorf("problem %d = %s, want %+v", i, p, w)
				}
			}
			u := cmpOr(tc.routesFor, "http://example.com/x")
			if got := routeTo(t, tbl, "GET", u, 0); got != tc.routes {
				t.Errorf("GET %s went to %q, want %q", u, got, tc.routes)
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func problemList(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("  " + p.String() + "\n")
	}
	return b.String()
}

// TestHostAssociation checks which Hosts serve which Mappings
// (ir/irhost.py, matches_httpgroup).
func TestHostAssociation(t *testing.T) {
	hosts := []*ambv3.Host{
		fixture.Host("foo", "foo.example.com", map[string]string{"host": "foo"}),
		fixture.Host("bar", "bar.example.com", nil),
	}
	mappings := []*ambv3.Mapping{
		// Labels only: served by foo-host.
		fixture.Mapping("labelled", "/labelled/", "a", fixture.Hostname(""), fixture.Labels("host", "foo")),
		// A hostname matching foo, without the labels: foo-host has a
		// selector, so both must match.
		fixture.Mapping("foo-unlabelled", "/foo-unlabelled/", "a", fixture.Hostname("foo.example.com")),
		// "*": bar-host (no selector) takes it by hostname alone.
		fixture.Mapping("star", "/star/", "a"),
		// No hostname, no labels: nowhere.
		fixture.Mapping("bare", "/bare/", "a", fixture.Hostname("")),
	}
	tbl, problems := Build(Input{Mappings: mappings, Hosts: hosts, Services: []*corev1.Service{serviceObj("a")}})
	for _, tc := range []struct{ url, want string }{
		{"http://foo.example.com/labelled/", "test/labelled"},
		{"http://bar.example.com/labelled/", ""},
		{"http://foo.example.com/foo-unlabelled/", ""},
		{"http://bar.example.com/star/", "test/star"},
		{"http://foo.example.com/star/", ""},
		{"http://other.example.com/star/", ""}, // no virtual host
		{"http://foo.example.com/bare/", ""},
	} {
		if got := routeTo(t, tbl, "GET", tc.url, 0); got != tc.want {
			t.Errorf("GET %s went to %q, want %q", tc.url, got, tc.want)
		}
	}
	var unserved []string
	for _, p := range problems {
		if strings.HasPrefix(p.Message, "no Host serves it") {
			unserved = append(unserved, p.Mapping)
		}
	}
	if want := []string{"test/bare", "test/foo-unlabelled"}; !slices.Equal(unserved, want) {
		t.Errorf("unserved = %v, want %v\n%s", unserved, want, problemList(problems))
	}
}

// TestGroupSettings checks the settings Emissary flattens over a group:
// add_request_headers merge, labels merge for Host association, and
// case_sensitive falls back to the group's.
func TestGroupSettings(t *testing.T) {
	addHeaders := func(kv ...string) func(*ambv3.Mapping) {
		return fixture.Spec(func(s *ambv3.MappingSpec) {
			h := map[string]ambv3.AddedHeader{}
			for i := 0; i+1 < len(kv); i += 2 {
				h[kv[i]] = ambv3.AddedHeader{Value: kv[i+1]}
			}
			s.AddRequestHeaders = &h
		})
	}
	tbl, _ := Build(Input{
		Hosts: []*ambv3.Host{fixture.Host("h", "*", map[string]string{"a": "1", "b": "2"})},
		Mappings: []*ambv3.Mapping{
			fixture.Mapping("a", "/Case/", "a", fixture.Weight(50), fixture.Labels("a", "1"), addHeaders("x-a", "a", "x-both", "from-a"),
				fixture.Spec(func(s *ambv3.MappingSpec) { s.CaseSensitive = ptr(false) })),
			fixture.Mapping("b", "/Case/", "a", fixture.Labels("b", "2"), addHeaders("x-both", "from-b")),
		},
	})
	// Neither Mapping alone meets the selector; the group's merged
	// labels do. Mapping b has no case_sensitive: it takes the group's.
	got := counts(t, tbl, "GET", "http://example.com/case/")
	if want := map[string]int{"test/a": 50, "test/b": 50}; !mapsEqual(got, want) {
		t.Fatalf("counts = %v, want %v", got, want)
	}
	target, _ := tbl.Route(httptest.NewRequest("GET", "http://example.com/case/", nil), 99)
	want := []AddedHeader{{"x-a", "a", true}, {"x-both", "from-b", true}}
	if !slices.Equal(target.Headers, want) {
		t.Errorf("headers = %v, want %v", target.Headers, want)
	}
}

// TestDeterministic: the table and the problems do not depend on the
// order of the input.
func TestDeterministic(t *testing.T) {
	in := Input{
		Mappings: []*ambv3.Mapping{
			fixture.Mapping("a", "/", "a"),
			fixture.Mapping("b", "/", "b", fixture.Weight(30)),
			fixture.Mapping("c", "/", "c", fixture.Weight(10)),
			fixture.Mapping("d", "/x/", "a", fixture.Precedence(2), fixture.Spec(func(s *ambv3.MappingSpec) { s.CORS = &ambv3.CORS{} })),
			fixture.Mapping("e", "/x/", "a", fixture.Headers("x", "1"), fixture.Spec(func(s *ambv3.MappingSpec) { s.Docs = &ambv3.DocsInfo{Path: "/d"} })),
		},
		Services: []*corev1.Service{serviceObj("a"), serviceObj("b")},
	}
	tbl, problems := Build(in)
	want := counts(t, tbl, "GET", "http://example.com/")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10 {
		shuffled := in
		shuffled.Mappings = slices.Clone(in.Mappings)
		rng.Shuffle(len(shuffled.Mappings), func(i, j int) {
			shuffled.Mappings[i], shuffled.Mappings[j] = shuffled.Mappings[j], shuffled.Mappings[i]
		})
		tbl2, problems2 := Build(shuffled)
		if !slices.Equal(problems, problems2) {
			t.Fatalf("problems differ:\n%s\nvs\n%s", problemList(problems), problemList(problems2))
		}
		if got := counts(t, tbl2, "GET", "http://example.com/"); !mapsEqual(got, want) {
			t.Fatalf("counts differ: %v vs %v", got, want)
		}
	}
	if want := (map[string]int{"test/b": 30, "test/c": 10, "test/a": 60}); !mapsEqual(counts(t, tbl, "GET", "http://example.com/"), want) {
		t.Errorf("counts = %v, want %v", counts(t, tbl, "GET", "http://example.com/"), want)
	}
}

// TestNilTable: a nil table routes nothing.
func TestNilTable(t *testing.T) {
	var tbl *Table
	if _, ok := tbl.Route(httptest.NewRequest("GET", "http://h/", nil), 0); ok {
		t.Error("nil table routed")
	}
	if _, ok := (&Table{}).Route(&http.Request{Host: "h", URL: httptest.NewRequest("GET", "/", nil).URL}, 0); ok {
		t.Error("empty table routed")
	}
}

// TestRoutesView checks the table's read-only view against emissary.Groups
// on issue 12's first case: the user's podinfo and somebody's podinfo-v2,
// both without a weight, and crossmap's podinfo-east at 50 share a group;
// the edge routes 50, 25 and 25, in that order, and says so.
func TestRoutesView(t *testing.T) {
	in := Input{Mappings: []*ambv3.Mapping{
		fixture.Mapping("podinfo", "/podinfo/", "podinfo"),
		fixture.Mapping("podinfo-east", "/podinfo/", "podinfo-east", fixture.Weight(50)),
		fixture.Mapping("podinfo-v2", "/podinfo/", "podinfo-v2"),
	}}
	tbl, _ := Build(in)
	// A route's share is its numerator less the one before it in its
	// group: the runtime fractions are cumulative within a group.
	var got []string
	for _, vh := range tbl.VirtualHosts() {
		prev, group := 0, ""
		for _, r := range vh.Routes {
			if r.Group != group {
				prev, group = 0, r.Group
			}
			if r.Builtin == "" {
				got = append(got, fmt.Sprintf("%s %s %d %d", vh.Host, r.Mapping, r.Numerator-prev, r.Numerator))
			}
			prev = r.Numerator
		}
	}
	// Emissary orders members by name.namespace: podinfo-v2.test before podinfo.test.
	want := []string{"default-host test/podinfo-east 50 50", "default-host test/podinfo-v2 25 75", "default-host test/podinfo 25 100"}
	if !slices.Equal(got, want) {
		t.Errorf("VirtualHosts() routes = %q, want %q", got, want)
	}
	// The draws agree with the view.
	c := counts(t, tbl, "GET", "http://example.com/podinfo/")
	if c["test/podinfo-east"] != 50 || c["test/podinfo"] != 25 || c["test/podinfo-v2"] != 25 {
		t.Errorf("draws 0..99 route %v, want 50/25/25", c)
	}
}
