package emissary_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"k8s.io/utils/ptr"

	"github.com/crossmap/crossmap/emissary"
	"github.com/crossmap/crossmap/emissary/fixture"
)

// member finds the group and member of Mapping test/name.
func member(groups []*emissary.Group, name string) (*emissary.Group, *emissary.Member) {
	for _, g := range groups {
		for _, m := range g.Members {
			if m.Name == "test/"+name {
				return g, m
			}
		}
	}
	return nil, nil
}

// TestGroupsWhereTheCopiesDiffered is issue 12's fourth case: mapper and
// the dev edge each had a group key, and they differed on the method, regex
// headers, the deprecated host (and, for mapper, the ambassador_id). Each
// row says what Emissary 3.10 does with the pair, and why.
//
// Before: mapper put regex values apart ("~v"), treated a host_regex host
// as a hostname (no selector labels), added selector labels next to an
// exact :authority header, and keyed on the ambassador_id list; the edge
// was right. After: one GroupKey, Emissary's.
func TestGroupsWhereTheCopiesDiffered(t *testing.T) {
	selectFoo := fixture.Host("foo-host", "*.example.com", map[string]string{"host": "foo"})
	noHostname := fixture.Spec(func(s *ambv3.MappingSpec) { s.Hostname = "" })
	for _, tc := range []struct {
		name  string
		a, b  *ambv3.Mapping
		hosts []*ambv3.Host
		// want: "together", "apart", or "rejected" (b shares a's group ID
		// but Emissary refuses it: a core field differs).
		want string
		why  string
	}{{
		name: "no method and method GET",
		a:    fixture.Mapping("a", "/p/", "a"),
		b:    fixture.Mapping("b", "/p/", "b", fixture.Method("GET")),
		want: "apart",
		why:  "a method becomes a :method header (IRHTTPMapping.__init__), and headers are in _group_id",
	}, {
		name: "method_regex",
		a:    fixture.Mapping("a", "/p/", "a", fixture.Method("GET")),
		b:    fixture.Mapping("b", "/p/", "b", fixture.Method("GET"), fixture.Spec(func(s *ambv3.MappingSpec) { s.MethodRegex = ptr.To(true) })),
		want: "rejected",
		why:  "_group_id has the :method header's name and value only; the regex flag is in headers, a CoreMappingKey",
	}, {
		name: "regex_headers and headers with one value",
		a:    fixture.Mapping("a", "/p/", "a", fixture.Headers("x-canary", "yes")),
		b:    fixture.Mapping("b", "/p/", "b", fixture.RegexHeaders("x-canary", "yes")),
		want: "rejected",
		why:  "the same name and value in _group_id; headers (a CoreMappingKey) differ in the regex flag",
	}, {
		name: "deprecated host and hostname",
		a:    fixture.Mapping("a", "/p/", "a", fixture.Hostname("foo.example.com")),
		b:    fixture.Mapping("b", "/p/", "b", noHostname, fixture.Spec(func(s *ambv3.MappingSpec) { s.DeprecatedHost = "foo.example.com" })),
		want: "together",
		why:  "host and hostname both become the :authority header",
	}, {
		name:  "host_regex: the selector labels count",
		a:     fixture.Mapping("a", "/p/", "a", noHostname, fixture.HostRegex("^foo.*"), fixture.Labels("host", "foo")),
		b:     fixture.Mapping("b", "/p/", "b", noHostname, fixture.HostRegex("^foo.*")),
		hosts: []*ambv3.Host{selectFoo},
		want:  "apart",
		why:   "a regex host leaves self.host unset, so the matchLabels of the Hosts that select a join its ID",
	}, {
		name:  "exact :authority header: the selector labels do not count",
		a:     fixture.Mapping("a", "/p/", "a", noHostname, fixture.Headers(":authority", "foo.example.com"), fixture.Labels("host", "foo")),
		b:     fixture.Mapping("b", "/p/", "b", noHostname, fixture.Headers(":authority", "foo.example.com")),
		hosts: []*ambv3.Host{selectFoo},
		want:  "together",
		why:   "an exact :authority header is the Mapping's host, and only Mappings without one add labels",
	}, {
		name: "ambassador_id lists",
		a:    fixture.Mapping("a", "/p/", "a"),
		b:    fixture.Mapping("b", "/p/", "b", fixture.AmbassadorID("default", "blue")),
		want: "together",
		why:  "the installation sees both; the ambassador_id is not in _group_id",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			groups, rejected := emissary.Groups(emissary.Input{Mappings: []*ambv3.Mapping{tc.a, tc.b}, Hosts: tc.hosts})
			ga, _ := member(groups, "a")
			gb, _ := member(groups, "b")
			got := "apart"
			switch {
			case ga == nil:
				t.Fatalf("a is in no group (rejected: %v)", rejected)
			case gb == nil && len(rejected) == 1 && rejected[0].Mapping == "test/b" && strings.Contains(rejected[0].Message, "mismatched headers"):
				got = "rejected"
			case gb == nil:
				t.Fatalf("b is in no group (rejected: %v)", rejected)
			case ga == gb:
				got = "together"
			}
			if got != tc.want {
				t.Errorf("a and b are %s, want %s: %s", got, tc.want, tc.why)
			}
		})
	}
}

// TestGroupsShares is issue 12's first case as Emissary reads it: the user's
// podinfo (no weight), crossmap's podinfo-east (weight 50) and somebody's
// podinfo-v2 (no weight) share a group; the weighted route comes first, and
// the two without a weight split the remaining 50
// (normalize_weights_in_mappings).
func TestGroupsShares(t *testing.T) {
	groups, rejected := emissary.Groups(emissary.Input{Mappings: []*ambv3.Mapping{
		fixture.Mapping("podinfo", "/podinfo/", "podinfo"),
		fixture.Mapping("podinfo-east", "/podinfo/", "podinfo-east", fixture.Weight(50)),
		fixture.Mapping("podinfo-v2", "/podinfo/", "podinfo-v2"),
	}})
	if len(rejected) > 0 {
		t.Fatalf("rejected: %v", rejected)
	}
	g, _ := member(groups, "podinfo")
	if g == nil {
		t.Fatal("podinfo is in no group")
	}
	var got []string
	for _, m := range g.Members {
		got = append(got, m.Name+" "+strconv.Itoa(m.Share)+" "+strconv.Itoa(m.Numerator))
	}
	// Emissary orders members by name.namespace: podinfo-v2.test before podinfo.test.
	want := []string{"test/podinfo-east 50 50", "test/podinfo-v2 25 75", "test/podinfo 25 100"}
	if !slices.Equal(got, want) {
		t.Errorf("members (name share numerator) %q, want %q", got, want)
	}
}

// TestGroupsRouteOrder checks that Groups lists groups in Emissary's route
// order, its own probe Mappings among them, and that a group Emissary
// rejects for its weights has no shares.
func TestGroupsRouteOrder(t *testing.T) {
	groups, _ := emissary.Groups(emissary.Input{Mappings: []*ambv3.Mapping{
		fixture.Mapping("root", "/", "a"),
		fixture.Mapping("long", "/podinfo/api/", "a"),
		fixture.Mapping("prec", "/", "a", fixture.Precedence(1), fixture.Headers("x", "1")),
		fixture.Mapping("over-a", "/over/", "a", fixture.Weight(60)),
		fixture.Mapping("over-b", "/over/", "b", fixture.Weight(50)),
	}})
	var order []string
	for _, g := range groups {
		name := g.Builtin
		if name == "" {
			name = g.Members[0].Name
		}
		order = append(order, name)
	}
	want := []string{"test/prec", "/ambassador/v0/check_ready", "/ambassador/v0/check_alive", "test/long", "test/over-a", "test/root"}
	if !slices.Equal(order, want) {
		t.Errorf("route order %q, want %q", order, want)
	}
	g, _ := member(groups, "over-a")
	if g == nil || g.Err == nil || g.Members[0].Share != 0 || g.Members[1].Share != 0 {
		t.Errorf("group of 60 and 50: %+v, want an error and no shares", g)
	}
}
