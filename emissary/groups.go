package emissary

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
)

// Input is what one Emissary installation reads: the Mappings and Hosts
// that exist. Nil entries are skipped; neither is kept nor modified.
type Input struct {
	Mappings []*ambv3.Mapping
	Hosts    []*ambv3.Host
	// AmbassadorID is the installation's ID; objects whose ambassador_id
	// names none of these are not seen. Empty means "default".
	AmbassadorID []string
}

// Group is an Emissary mapping group (IRHTTPMappingGroup): the Mappings
// that share a group ID, routed as one weighted set of Envoy routes.
type Group struct {
	// Key is the group ID's text (GroupKey).
	Key string
	// Weight orders the groups: the highest route weight of its members.
	Weight RouteWeight
	// First is the Mapping that made the group; its match is the group's.
	First *ambv3.Mapping
	Match Match
	// Host and HostRegex are the group's hostname for Host binding.
	Host      string
	HostRegex bool
	// Members are the Mappings that take traffic, in the order of their
	// Envoy routes: weighted ones first, then those without a weight,
	// each in the order they joined (namespace/name).
	Members []*Member
	// Shadows are the shadow Mappings of the group (namespace/name): they
	// mirror the members' requests and take none.
	Shadows []string
	// Redirect is the group's host_redirect Mapping, which makes the
	// group route nothing but redirects.
	Redirect string
	// Mappings are every Mapping that joined, in order (namespace/name).
	Mappings []string
	// Labels are the members' labels merged, later ones winning: what Host
	// binding sees of the group.
	Labels map[string]string
	// Query are the group's query parameter matches: the last member's
	// (the group is flattened onto its last Mapping).
	Query []KV
	// Err is set when Emissary rejects the group's weights (Shares); the
	// members' shares are then all 0.
	Err error
	// Builtin is BuiltinReady or BuiltinAlive for Emissary's own probe
	// Mappings; "" for the user's groups.
	Builtin string

	core map[string]string
}

// Member is a Mapping of a group that takes traffic.
type Member struct {
	// Mapping is the Mapping; a made-up one for Emissary's own.
	Mapping *ambv3.Mapping
	// Name is namespace/name.
	Name  string
	Match Match
	// Weight is the Mapping's weight field; nil when it has none.
	Weight *int
	// Share is the member's share of the group's requests, in percent.
	Share int
	// Numerator is the member's cumulative runtime_fraction numerator:
	// the route takes the draws in [previous numerator, Numerator).
	Numerator int
}

// Rejection is a Mapping Emissary leaves out of every group, and why.
type Rejection struct {
	Mapping string // namespace/name
	Field   string // the spec field at fault, "" for the whole Mapping
	Message string
}

// Emissary's own answers on its listeners: the readiness and liveness
// probes. Emissary adds a Mapping for each (ir/irambassador.py,
// IRAmbassador.add_mappings: prefix and rewrite the path, hostname "*",
// timeout_ms 10000, service 127.0.0.1:8877), which every Host takes
// (ir/irhost.py, matches_httpgroup).
const (
	BuiltinReady = "/ambassador/v0/check_ready"
	BuiltinAlive = "/ambassador/v0/check_alive"
)

var builtinNames = map[string]string{
	BuiltinReady: "internal_readiness_probe_mapping",
	BuiltinAlive: "internal_liveness_probe_mapping",
}

// Groups computes every group of the installation in, as Emissary 3.10
// forms them from the Mappings and Hosts that exist, in route order (the
// order of their Envoy routes: ir/ir.py, ordered_groups), each member with
// its share of the group's requests. Emissary's own probe Mappings are
// groups too (Group.Builtin). Mappings Emissary rejects are left out and
// listed, sorted.
//
// Mappings join groups in namespace/name order, the order Emissary is
// assumed to add them in; Hosts are read in the same order.
func Groups(in Input) ([]*Group, []Rejection) {
	hosts := Hosts(in)
	var order []*Group
	byKey := map[string]*Group{}
	var rejected []Rejection
	reject := func(name, field, format string, args ...any) {
		rejected = append(rejected, Rejection{Mapping: name, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	for _, path := range []string{BuiltinReady, BuiltinAlive} {
		order = append(order, builtin(path))
	}

	mappings := slices.DeleteFunc(slices.Clone(in.Mappings), func(m *ambv3.Mapping) bool {
		return m == nil || !Served(m.Spec.AmbassadorID, in.AmbassadorID)
	})
	// Emissary reads its resources in the order of their keys,
	// name.namespace (fetch/fetcher.py sorts them before the IR sees them),
	// so that is the order a group's members, and their routes, come in.
	slices.SortFunc(mappings, func(a, b *ambv3.Mapping) int {
		return cmp.Or(cmp.Compare(a.Name+"."+a.Namespace, b.Name+"."+b.Namespace), cmp.Compare(a.Namespace, b.Namespace))
	})
	for _, m := range mappings {
		name := m.Namespace + "/" + m.Name
		sp := &m.Spec
		match := MatchOf(sp)
		if match.Deferred != "" {
			reject(name, "", "Emissary rejects the Mapping: %s", match.Deferred)
			continue
		}
		key := GroupKey(sp, m.Labels, match, hosts)
		core := CoreFields(sp, match)
		g, ok := byKey[key]
		if !ok {
			g = &Group{Key: key, Weight: RouteWeightOf(sp, match), First: m, Match: match,
				Host: match.Host, HostRegex: match.HostRegex, Labels: map[string]string{}, core: core}
			byKey[key] = g
			order = append(order, g)
		}
		if bad := CoreMismatch(g.core, core); len(bad) > 0 {
			reject(name, "", "Emissary rejects the Mapping from the group of %s: mismatched %s; Mappings in one group (same prefix, headers, query parameters, precedence) must agree on these fields", g.Mappings[0], strings.Join(bad, ", "))
			continue
		}
		g.Mappings = append(g.Mappings, name)
		switch {
		case sp.Shadow != nil && *sp.Shadow:
			// Emissary keeps a shadow apart from the group's Mappings: it
			// mirrors their requests and takes none.
			g.Shadows = append(g.Shadows, name)
		case sp.HostRedirect != nil && *sp.HostRedirect:
			switch {
			case g.Redirect != "":
				reject(name, "host_redirect", "Emissary rejects a second host_redirect Mapping in the group of %s", g.Redirect)
			case len(g.Members) > 0:
				reject(name, "host_redirect", "Emissary rejects a host_redirect Mapping in a group that already has Mappings without host_redirect (%s)", g.Members[0].Name)
			default:
				g.Redirect = name
			}
		default:
			if g.Redirect != "" {
				reject(name, "", "Emissary rejects the Mapping: its group already has the host_redirect Mapping %s", g.Redirect)
				continue
			}
			g.Members = append(g.Members, &Member{Mapping: m, Name: name, Match: match, Weight: sp.Weight})
			if w := RouteWeightOf(sp, match); CompareRouteWeights(w, g.Weight) > 0 {
				g.Weight = w
			}
		}
	}
	for _, g := range order {
		if g.Builtin == "" {
			weigh(g)
		}
	}

	// ir.py, ordered_groups: reversed(sorted(groups, key=group_weight)).
	// The sort is stable, so groups with equal weights come out in the
	// reverse of the order they were made in: here, the group whose first
	// Mapping sorts last by namespace/name comes first.
	slices.SortStableFunc(order, func(a, b *Group) int { return CompareRouteWeights(a.Weight, b.Weight) })
	slices.Reverse(order)
	slices.SortFunc(rejected, func(x, y Rejection) int {
		return cmp.Or(cmp.Compare(x.Mapping, y.Mapping), cmp.Compare(x.Field, y.Field), cmp.Compare(x.Message, y.Message))
	})
	return order, slices.Compact(rejected)
}

// Hosts are the Hosts of the installation in, in namespace/name order.
func Hosts(in Input) []Host {
	hs := slices.DeleteFunc(slices.Clone(in.Hosts), func(h *ambv3.Host) bool {
		return h == nil || h.Spec == nil && !Served(nil, in.AmbassadorID) || h.Spec != nil && !Served(h.Spec.AmbassadorID, in.AmbassadorID)
	})
	slices.SortFunc(hs, func(a, b *ambv3.Host) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	out := make([]Host, len(hs))
	for i, h := range hs {
		out[i] = HostOf(h)
	}
	return out
}

// weigh is IRHTTPMappingGroup.finalize's part that concerns the shares: it
// merges the members' labels, takes the last member's query parameters,
// orders the members as their Envoy routes and gives each its share
// (normalize_weights_in_mappings, through Shares).
func weigh(g *Group) {
	for _, mem := range g.Members {
		maps.Copy(g.Labels, mem.Mapping.Labels)
	}
	if len(g.Members) == 0 {
		return
	}
	g.Query = g.Members[len(g.Members)-1].Match.Query
	ws := make([]Weighted, len(g.Members))
	for i, mem := range g.Members {
		ws[i] = Weighted{Name: mem.Name, Weight: mem.Weight}
	}
	shares, err := Shares(ws)
	if err != nil {
		g.Err = err
		return
	}
	for i, mem := range g.Members {
		mem.Share = shares[i]
	}
	// Envoy routes: weighted members first, then weightless ones, each in
	// the order added (a group of one is just its member). Each route
	// takes the draws below its numerator that earlier routes did not, so
	// the numerators are the running sums of the shares in that order.
	if len(g.Members) > 1 {
		slices.SortStableFunc(g.Members, func(a, b *Member) int {
			return cmp.Compare(boolInt(a.Weight == nil), boolInt(b.Weight == nil))
		})
	}
	cum := 0
	for _, mem := range g.Members {
		cum += mem.Share
		mem.Numerator = cum
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func builtin(path string) *Group {
	m := &ambv3.Mapping{Spec: ambv3.MappingSpec{Prefix: path, Hostname: "*", Rewrite: &path,
		Timeout: &ambv3.MillisecondDuration{Duration: 10 * time.Second}, Service: "127.0.0.1:8877"}}
	m.Name = builtinNames[path]
	match := MatchOf(&m.Spec)
	return &Group{
		Key: "builtin " + path, Weight: RouteWeightOf(&m.Spec, match), First: m, Match: match, Host: match.Host,
		Members:  []*Member{{Mapping: m, Name: m.Name, Match: match, Share: 100, Numerator: 100}},
		Mappings: []string{m.Name}, Labels: map[string]string{}, Builtin: path,
	}
}
