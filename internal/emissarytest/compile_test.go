package emissarytest_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/internal/emissarytest"
	"github.com/crossmap/crossmap/mapper/mappertest"
)

// Tests of the harness itself: hand-written Mappings whose Envoy routes are
// known, compiled and read back exactly.

// emissaryOwn are the routes Emissary 3.10 adds to every virtual host for
// its readiness, liveness and diagnostics endpoints (ir/irambassador.py,
// add_mappings: diag at 127.0.0.1:8877, timeout_ms 10000, the prefix
// rewritten to itself). They sort before a user's /podinfo/ Mapping: their
// prefixes are longer (ir/irhttpmapping.py, _route_weight).
func emissaryOwn() []emissarytest.Route {
	own := func(prefix string) emissarytest.Route {
		return emissarytest.Route{
			Match: emissarytest.Match{Prefix: prefix, CaseSensitive: true},
			Members: []emissarytest.Member{{
				Cluster: "cluster_127_0_0_1_8877_default", Service: "127.0.0.1:8877",
				Numerator: 100, Share: 100, PrefixRewrite: prefix, Timeout: "10.000s",
			}},
		}
	}
	return []emissarytest.Route{own("/ambassador/v0/check_ready"), own("/ambassador/v0/check_alive"), own("/ambassador/v0/")}
}

func TestCompilePlainMapping(t *testing.T) {
	res, err := emissarytest.Compile(context.Background(),
		mappertest.Mapping("test", "podinfo", "/podinfo/", "podinfo.test:9898"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("Emissary's errors: %v", res.Errors)
	}
	if len(res.Added) != 2 {
		t.Errorf("Compile added %d objects, want a Listener and a Host", len(res.Added))
	}
	want := []emissarytest.VirtualHost{{
		Name: "emissarytest-http-*", Domains: []string{"*"},
		Routes: append(emissaryOwn(), emissarytest.Route{
			Match: emissarytest.Match{Prefix: "/podinfo/", CaseSensitive: true},
			Members: []emissarytest.Member{{
				Cluster: "cluster_podinfo_test_9898_test", Service: "podinfo.test:9898",
				Numerator: 100, Share: 100, PrefixRewrite: "/", Timeout: "3.000s",
			}},
		}),
	}}
	for _, vh := range res.VirtualHosts {
		clearGroups(t, vh.Routes)
	}
	if !reflect.DeepEqual(res.VirtualHosts, want) {
		t.Errorf("virtual hosts:\n%s\nwant:\n%s", dump(res.VirtualHosts), dump(want))
	}
}

// A group of three: two weighted Mappings and one without weight. Emissary
// emits the weighted ones first, in the order it adds them (by name here),
// each with its running total, and the weightless one last at 100
// (ir/irbasemappinggroup.py, normalize_weights_in_mappings).
func TestCompileWeightedGroup(t *testing.T) {
	res, err := emissarytest.Compile(context.Background(),
		mappertest.Mapping("test", "a-local", "/podinfo/", "podinfo.test:9898"),
		mappertest.Mapping("test", "b-east", "/podinfo/", "podinfo-east.test:9898", mappertest.Weight(30)),
		mappertest.Mapping("test", "c-west", "/podinfo/", "podinfo-west.test:9898", mappertest.Weight(20)),
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("Emissary's errors: %v", res.Errors)
	}
	vh := res.VirtualHost("*")
	if vh == nil {
		t.Fatalf("no virtual host for *: %s", dump(res))
	}
	member := func(svc, cluster string, num, share int) emissarytest.Member {
		return emissarytest.Member{Cluster: cluster, Service: svc, Numerator: num, Share: share, PrefixRewrite: "/", Timeout: "3.000s"}
	}
	want := append(emissaryOwn(), emissarytest.Route{
		Match: emissarytest.Match{Prefix: "/podinfo/", CaseSensitive: true},
		Members: []emissarytest.Member{
			member("podinfo-east.test:9898", "cluster_podinfo_east_test_9898_test", 30, 30),
			member("podinfo-west.test:9898", "cluster_podinfo_west_test_9898_test", 50, 20),
			member("podinfo.test:9898", "cluster_podinfo_test_9898_test", 100, 50),
		},
	})
	clearGroups(t, vh.Routes)
	if !reflect.DeepEqual(vh.Routes, want) {
		t.Errorf("routes:\n%s\nwant:\n%s", dump(vh.Routes), dump(want))
	}
}

// TestCompileResponseHeadersGroupWide pins the Emissary rule the served-by
// header is designed around (issue 16): add_response_headers of a weighted
// group's members are merged, later members winning, and added on every
// route of the group, the unweighted local member's included. A served-by
// header on crossmap's weighted siblings would therefore name one remote
// cluster on every answer; crossmap puts it on gateway Mappings and dev
// routes instead, which are groups of their own.
func TestCompileResponseHeadersGroupWide(t *testing.T) {
	named := func(m *ambv3.Mapping, cluster string) *ambv3.Mapping {
		no := false
		m.Spec.AddResponseHeaders = &map[string]ambv3.AddedHeader{"x-crossmap-cluster": {Value: cluster, Append: &no}}
		return m
	}
	res, err := emissarytest.Compile(context.Background(),
		mappertest.Mapping("test", "a-local", "/podinfo/", "podinfo.test:9898"),
		named(mappertest.Mapping("test", "b-east", "/podinfo/", "podinfo-east.test:9898", mappertest.Weight(30)), "east"),
		named(mappertest.Mapping("test", "c-west", "/podinfo/", "podinfo-west.test:9898", mappertest.Weight(20)), "west"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		t.Fatalf("Emissary's errors: %v", res.Errors)
	}
	vh := res.VirtualHost("*")
	if vh == nil {
		t.Fatalf("no virtual host for *: %s", dump(res))
	}
	i := slices.IndexFunc(vh.Routes, func(r emissarytest.Route) bool { return r.Match.Prefix == "/podinfo/" })
	if i < 0 || len(vh.Routes[i].Members) != 3 {
		t.Fatalf("no group of three for /podinfo/: %s", dump(vh.Routes))
	}
	want := []emissarytest.AddedHeader{{Name: "x-crossmap-cluster", Value: "west", Append: false}}
	for _, mem := range vh.Routes[i].Members {
		if !reflect.DeepEqual(mem.ResponseHeaders, want) {
			t.Errorf("route to %s adds the response headers %+v, want %+v (the group's merge)", mem.Service, mem.ResponseHeaders, want)
		}
	}
}

// On a Listener with securityModel XFP, Emissary writes every route twice:
// for x-forwarded-proto https and, with the Host's insecure action, for the
// rest. Compile keeps the https ones, so the routes read the same as on the
// SECURE Listener it adds itself.
func TestCompileXFPListener(t *testing.T) {
	objs := []client.Object{
		mappertest.Mapping("test", "a-local", "/podinfo/", "podinfo.test:9898"),
		mappertest.Mapping("test", "b-east", "/podinfo/", "podinfo-east.test:9898", mappertest.Weight(30)),
	}
	xfp := append(slices.Clone(objs),
		&ambv3.Listener{
			TypeMeta:   metav1.TypeMeta{APIVersion: ambv3.GroupVersion.String(), Kind: "Listener"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "xfp"},
			Spec: &ambv3.ListenerSpec{Port: 8080, Protocol: "HTTP", SecurityModel: "XFP",
				HostBinding: ambv3.HostBindingType{Namespace: ambv3.NamespaceBindingType{From: "ALL"}}},
		},
		&ambv3.Host{
			TypeMeta:   metav1.TypeMeta{APIVersion: ambv3.GroupVersion.String(), Kind: "Host"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "any"},
			Spec: &ambv3.HostSpec{Hostname: "*",
				RequestPolicy: &ambv3.RequestPolicy{Insecure: ambv3.InsecureRequestPolicy{Action: "Route"}}},
		})
	res, err := emissarytest.CompileAll(context.Background(), objs, xfp)
	if err != nil {
		t.Fatal(err)
	}
	if len(res[1].Added) != 0 {
		t.Errorf("Compile added %d objects to a Listener and a Host", len(res[1].Added))
	}
	secure, plain := res[0].VirtualHost("*"), res[1].VirtualHost("*")
	if secure == nil || plain == nil {
		t.Fatalf("no virtual host for *: %s", dump(res))
	}
	if !reflect.DeepEqual(plain.Routes, secure.Routes) {
		t.Errorf("routes on an XFP Listener:\n%s\nwant, as on a SECURE one:\n%s", dump(plain.Routes), dump(secure.Routes))
	}
	if n := len(secure.Routes); n != 4 || len(secure.Routes[n-1].Members) != 2 {
		t.Errorf("routes: %s\nwant Emissary's three and one group of two", dump(secure.Routes))
	}
}

// A group over 100 is an error of Emissary's, which Compile reports as
// such rather than failing.
func TestCompileReportsEmissaryErrors(t *testing.T) {
	res, err := emissarytest.Compile(context.Background(),
		mappertest.Mapping("test", "a", "/podinfo/", "podinfo.test:9898", mappertest.Weight(60)),
		mappertest.Mapping("test", "b", "/podinfo/", "podinfo-east.test:9898", mappertest.Weight(50)),
	)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range res.Errors {
		found = found || strings.Contains(e.Message, "Total weight of mappings exceeds 100")
	}
	if !found {
		t.Fatalf("Emissary's errors for a group of 60 and 50 = %v, want \"Total weight of mappings exceeds 100\"", res.Errors)
	}
}

// clearGroups checks that every route has the id of its Emissary group, a
// different one each, and clears it: the ids are hashes.
func clearGroups(t *testing.T, routes []emissarytest.Route) {
	t.Helper()
	seen := map[string]bool{}
	for i := range routes {
		if g := routes[i].Group; g == "" || seen[g] {
			t.Errorf("route %d has group id %q; want one of its own", i, g)
		}
		seen[routes[i].Group] = true
		routes[i].Group = ""
	}
}

func dump(v any) string {
	data, _ := json.MarshalIndent(v, "", "  ")
	return string(data)
}
