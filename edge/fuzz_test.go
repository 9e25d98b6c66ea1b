package edge

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"

	"github.com/crossmap/crossmap/emissary/fixture"
)

// fuzzTable has a route of every kind: prefixes with and without rewrite,
// case-insensitive, exact and regex paths, header, regex header, query,
// method and hostname matches, and a weighted group.
func fuzzTable() (*Table, map[string]bool) {
	mappings := []*ambv3.Mapping{
		fixture.Mapping("podinfo", "/podinfo/", "a"),
		fixture.Mapping("podinfo-east", "/podinfo/", "a", fixture.Weight(30)),
		fixture.Mapping("podinfo-dev", "/podinfo/", "a", fixture.Headers("x-crossmap-cluster", "dev")),
		fixture.Mapping("api", "/api/", "a", fixture.Rewrite("/v1/"), fixture.Query("version", "2")),
		fixture.Mapping("ci", "/CI/", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.CaseSensitive = ptr(false) })),
		fixture.Mapping("exact", "/exact", "a", fixture.Spec(func(s *ambv3.MappingSpec) { s.PrefixExact = ptr(true) })),
		fixture.Mapping("regex", "/items/[0-9]+(/.*)?", "a", fixture.PrefixRegex(), fixture.Rewrite("/item")),
		fixture.Mapping("hdr-re", "/re/", "a", fixture.RegexHeaders("x-v", "v[0-9]+")),
		fixture.Mapping("post", "/", "a", fixture.Method("POST")),
		fixture.Mapping("named", "/", "a", fixture.Hostname("*.example.com")),
		fixture.Mapping("prefixed", "/", "a", fixture.Hostname("api.*")),
		fixture.Mapping("catchall", "/", "a", fixture.Precedence(-1)),
	}
	names := map[string]bool{}
	for _, m := range mappings {
		names[m.Namespace+"/"+m.Name] = true
	}
	tbl, _ := Build(Input{Mappings: mappings, Services: []*corev1.Service{serviceObj("a")}})
	return tbl, names
}

// FuzzRoute routes arbitrary requests: Route never panics, routes only to
// Mappings of the table, and a rewritten path keeps the request's suffix.
func FuzzRoute(f *testing.F) {
	f.Add("GET", "example.com", "/podinfo/foo", "", "dev", uint8(0))
	f.Add("POST", "a.example.com:8080", "/api/x", "version=2&version=3", "v12", uint8(99))
	f.Add("GET", "API.other", "/ci/x", "%zz=1;a", "", uint8(50))
	f.Add("PUT", "[::1]:80", "/items/42/x", "", "\x00", uint8(7))
	f.Add("", "", "", "", "", uint8(255))
	f.Add("GET", "h", "/exact%2F", "", "", uint8(1))
	f.Add("GET", ":", "*", "?", ",", uint8(3))
	f.Add("GET", "example.com", "/ambassador/v0/check_ready", "", "", uint8(4))

	tbl, names := fuzzTable()
	f.Fuzz(func(t *testing.T, method, host, path, rawQuery, hv string, d uint8) {
		r := &http.Request{
			Method: method,
			Host:   host,
			URL:    &url.URL{Path: path, RawQuery: rawQuery},
			Header: http.Header{"X-Crossmap-Cluster": {hv}, "X-V": {hv, hv}},
		}
		if u, err := url.ParseRequestURI(path); err == nil {
			u.RawQuery = rawQuery
			r.URL = u
		}
		target, ok := tbl.Route(r, int(d)%100)
		if !ok {
			return
		}
		if target.Builtin != "" {
			if target.Mapping != "" || !strings.HasPrefix(r.URL.EscapedPath(), target.Builtin) {
				t.Fatalf("%q routed to the built-in %s with Mapping %q", r.URL.EscapedPath(), target.Builtin, target.Mapping)
			}
			return
		}
		if !names[target.Mapping] {
			t.Fatalf("routed to unknown Mapping %q", target.Mapping)
		}
		if target.Mapping == "test/api" && !strings.HasPrefix(target.Path, "/v1/") {
			t.Fatalf("api rewrote %q to %q", r.URL.EscapedPath(), target.Path)
		}
		if target.Rewritten == false && target.Path != r.URL.EscapedPath() {
			t.Fatalf("path changed without a rewrite: %q -> %q", r.URL.EscapedPath(), target.Path)
		}
	})
}

// FuzzBuild builds tables from arbitrary match fields: Build never panics
// and always returns a table that routes without panicking.
func FuzzBuild(f *testing.F) {
	f.Add("/podinfo/", "x-a", "1", "*", true, false, int16(50), int16(0))
	f.Add("/x(", ":authority", "*", "a.*", false, true, int16(101), int16(-1))
	f.Add("", "", "", "", false, false, int16(-5), int16(3))
	f.Add("[", "x", "(", "*.*", true, true, int16(0), int16(100))

	f.Fuzz(func(t *testing.T, prefix, hname, hvalue, hostGlob string, regex, exact bool, w, prec int16) {
		opts := []func(*ambv3.Mapping){
			fixture.Hostname(hostGlob),
			fixture.Headers(hname, hvalue),
			fixture.RegexHeaders(hname, hvalue),
			fixture.Precedence(int(prec)),
			fixture.Spec(func(s *ambv3.MappingSpec) {
				s.PrefixRegex = ptr(regex)
				s.PrefixExact = ptr(exact)
			}),
		}
		mappings := []*ambv3.Mapping{
			fixture.Mapping("a", prefix, "a", opts...),
			fixture.Mapping("b", prefix, "b", append(opts, fixture.Weight(int(w)))...),
			fixture.Mapping("c", prefix, "c", fixture.Hostname(hostGlob), fixture.Labels(hname, hvalue)),
		}
		hosts := []*ambv3.Host{fixture.Host("h", hostGlob, map[string]string{hname: hvalue})}
		tbl, _ := Build(Input{Mappings: mappings, Hosts: hosts})
		r := &http.Request{Method: "GET", Host: hostGlob, URL: &url.URL{Path: prefix}, Header: http.Header{hname: {hvalue}}}
		for d := range 100 {
			tbl.Route(r, d)
		}
	})
}
