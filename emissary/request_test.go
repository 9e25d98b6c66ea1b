package emissary

import (
	"net/http"
	"net/http/httptest"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
)

// TestRouteMatchCheck: Check takes a request exactly when every matcher
// holds, and otherwise names the first matcher that failed, in Envoy's
// order: path, headers (Emissary's order), query parameters.
func TestRouteMatchCheck(t *testing.T) {
	m := &ambv3.Mapping{Spec: ambv3.MappingSpec{Prefix: "/api/", Hostname: "*.example.com", Method: "GET",
		Headers: map[string]string{"x-dev": "alice"}, QueryParameters: map[string]string{"v": "2"}}}
	m.Namespace, m.Name = "test", "api"
	groups, _ := Groups(Input{Mappings: []*ambv3.Mapping{m}})
	var g *Group
	for _, x := range groups {
		if x.Builtin == "" {
			g = x
		}
	}
	routes, errs := RouteMatches(g)
	if len(routes) != 1 || errs[0] != nil {
		t.Fatalf("RouteMatches: %v %v", routes, errs)
	}
	for _, tc := range []struct {
		url, method string
		header      map[string]string
		part, name  string
		missing     bool
	}{
		{"http://a.example.com/api/x?v=2", "GET", map[string]string{"X-Dev": "alice"}, "", "", false},
		{"http://a.example.com/other?v=2", "GET", map[string]string{"X-Dev": "alice"}, "path", "", false},
		{"http://a.example.org/api/x?v=2", "GET", map[string]string{"X-Dev": "alice"}, "header", ":authority", false},
		{"http://a.example.com/api/x?v=2", "POST", map[string]string{"X-Dev": "alice"}, "header", ":method", false},
		{"http://a.example.com/api/x?v=2", "GET", nil, "header", "x-dev", true},
		{"http://a.example.com/api/x?v=2", "GET", map[string]string{"X-Dev": "bob"}, "header", "x-dev", false},
		{"http://a.example.com/api/x", "GET", map[string]string{"X-Dev": "alice"}, "query", "v", true},
		{"http://a.example.com/api/x?v=3", "GET", map[string]string{"X-Dev": "alice"}, "query", "v", false},
	} {
		r := httptest.NewRequest(tc.method, tc.url, nil)
		for k, v := range tc.header {
			r.Header.Set(k, v)
		}
		req := RequestOf(r)
		n, miss := routes[0].Check(&req)
		switch {
		case tc.part == "" && (miss != nil || n != len("/api/")):
			t.Errorf("%s %s %v: %d %+v, want a match of 5 bytes", tc.method, tc.url, tc.header, n, miss)
		case tc.part != "" && (miss == nil || miss.Part != tc.part || miss.Missing != tc.missing || tc.name != "" && miss.Matcher.Name != tc.name):
			t.Errorf("%s %s %v: %+v, want a %s mismatch on %q (missing %v)", tc.method, tc.url, tc.header, miss, tc.part, tc.name, tc.missing)
		}
	}
}

func TestAuthority(t *testing.T) {
	for in, want := range map[string]string{"a.example.com:8080": "a.example.com", "a.example.com": "a.example.com", "[::1]:80": "[::1]", "10.0.0.1:1": "10.0.0.1"} {
		if got := Authority(in); got != want {
			t.Errorf("Authority(%q) = %q, want %q", in, got, want)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "http://h/p?q=1", nil)
	req := RequestOf(r)
	if v, _ := req.HeaderValue(":path"); v != "/p?q=1" {
		t.Errorf(":path %q", v)
	}
}

// TestVirtualHostsLaterWins: of two values with one hostname the later is
// the virtual host, for exact names, "*" and globs alike, so that callers
// (the dev edge, explain) need not drop duplicates first.
func TestVirtualHostsLaterWins(t *testing.T) {
	type v struct{ name, hostname string }
	vs := []v{
		{"a", "podinfo.example.com"}, {"b", "podinfo.example.com"},
		{"c", "*.example.com"}, {"d", "*.example.com"},
		{"e", "podinfo.*"}, {"f", "podinfo.*"},
		{"g", "*"}, {"h", "*"},
	}
	vh := NewVirtualHosts(vs, func(x v) string { return x.hostname })
	for authority, want := range map[string]string{
		"podinfo.example.com": "b",
		"www.example.com":     "d",
		"podinfo.test":        "f",
		"other.test":          "h",
	} {
		if got, ok := vh.Find(authority); !ok || got.name != want {
			t.Errorf("Find(%q) = %q, %v; want %q", authority, got.name, ok, want)
		}
	}
}
