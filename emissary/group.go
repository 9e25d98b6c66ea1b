package emissary

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
)

// GroupKey is the text Emissary hashes into a group ID (ir/irhttpmapping.py,
// _group_id): "HTTP-", the method, the prefix, each header's name and value,
// each query parameter's name and value, for a Mapping without a
// (non-regex) host the matchLabels of every Host whose mappingSelector its
// labels meet, and the precedence unless it is 0. The pieces are
// concatenated without separators, as Emissary does, so that crossmap
// groups exactly the Mappings Emissary groups, accidental collisions
// included. hosts are the installation's Hosts, in Emissary's order.
//
// Where crossmap's two readings of this rule used to differ (issue 12),
// Emissary's own code settles it:
//
//   - method: always "GET" here. IRHTTPMapping never keeps the method
//     field itself (it is not in AllowedKeys; only the :method header it
//     derives is), so self.get("method") is always unset. A method still
//     splits groups, through its :method header, and method_regex with
//     it (the header is then a regex match).
//   - regex headers: a regex_headers entry adds its name and value like
//     any header; whether it is a regex does not reach the ID, so
//     headers {x: a} and regex_headers {x: a} share a group.
//   - the deprecated host: an :authority header like hostname; with
//     host_regex it is still in the ID, but the Mapping has no host for
//     Host binding, so the Hosts' matchLabels count too.
//   - the ambassador_id: not part of the ID; an installation never sees
//     the Mappings of another (Groups takes one installation's).
func GroupKey(sp *ambv3.MappingSpec, labels map[string]string, m Match, hosts []Host) string {
	var b strings.Builder
	b.WriteString("HTTP-GET")
	b.WriteString(sp.Prefix)
	for _, h := range m.Headers {
		b.WriteString(h.Name)
		b.WriteString(h.Value)
	}
	for _, q := range m.Query {
		b.WriteString(q.Name)
		b.WriteString(q.Value)
	}
	if m.Host == "" {
		for _, h := range hosts {
			if h.HasSelector && len(labels) > 0 && SelectorMatches(h.Selector, labels) {
				for _, k := range slices.Sorted(maps.Keys(h.Selector)) {
					b.WriteString(k)
					b.WriteString(h.Selector[k])
				}
			}
		}
	}
	if p := Precedence(sp); p != 0 {
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}

// Precedence is the Mapping's precedence, 0 when unset.
func Precedence(sp *ambv3.MappingSpec) int {
	if sp.Precedence == nil {
		return 0
	}
	return *sp.Precedence
}

// RouteWeight is Emissary's _route_weight: [precedence, len(prefix), total
// header length, total query parameter length, prefix, method, header
// keys..., query parameter keys...]. Groups are routed in descending order
// of it (CompareRouteWeights), compared as Python compares lists.
type RouteWeight struct {
	nums [4]int
	strs []string // prefix, method, header keys, query keys
}

// RouteWeightOf is the route weight of a Mapping with spec sp and match m.
func RouteWeightOf(sp *ambv3.MappingSpec, m Match) RouteWeight {
	w := RouteWeight{nums: [4]int{Precedence(sp), utf8.RuneCountInString(sp.Prefix)}}
	for _, h := range m.Headers {
		w.nums[2] += h.Length()
	}
	for _, q := range m.Query {
		w.nums[3] += q.Length()
	}
	// The method slot: self.get("method", "GET") is always "GET", for the
	// reason given at GroupKey.
	w.strs = append(w.strs, sp.Prefix, "GET")
	for _, h := range m.Headers {
		w.strs = append(w.strs, h.Key())
	}
	for _, q := range m.Query {
		w.strs = append(w.strs, q.Key())
	}
	return w
}

// CompareRouteWeights compares as Python compares the two lists: element by
// element, and a list that is a prefix of the other is smaller. Python
// compares strings by code point, which is the byte order of UTF-8.
func CompareRouteWeights(a, b RouteWeight) int {
	for i := range a.nums {
		if c := cmp.Compare(a.nums[i], b.nums[i]); c != 0 {
			return c
		}
	}
	return slices.Compare(a.strs, b.strs)
}

// CoreFields are the values of the Mapping fields Emissary requires to be
// equal across a group (IRHTTPMappingGroup.CoreMappingKeys), as JSON; a
// missing entry is a field the Mapping does not set.
func CoreFields(sp *ambv3.MappingSpec, m Match) map[string]string {
	out := map[string]string{}
	set := func(k string, present bool, v any) {
		if present {
			out[k] = jsonText(v)
		}
	}
	set("prefix", true, sp.Prefix)
	set("headers", true, m.Headers)
	set("prefix_regex", sp.PrefixRegex != nil, sp.PrefixRegex)
	set("prefix_exact", sp.PrefixExact != nil, sp.PrefixExact)
	set("bypass_auth", sp.BypassAuth != nil, sp.BypassAuth)
	set("bypass_error_response_overrides", sp.BypassErrorResponseOverrides != nil, sp.BypassErrorResponseOverrides)
	// IRBaseMapping.setup always sets circuit_breakers (to the Module's,
	// None here), so it is present on every Mapping.
	if len(sp.CircuitBreakers) > 0 {
		out["circuit_breakers"] = jsonText(sp.CircuitBreakers)
	} else {
		out["circuit_breakers"] = "null"
	}
	set("connect_timeout_ms", sp.ConnectTimeout != nil, sp.ConnectTimeout)
	set("cluster_idle_timeout_ms", sp.ClusterIdleTimeout != nil, sp.ClusterIdleTimeout)
	set("cluster_max_connection_lifetime_ms", sp.ClusterMaxConnectionLifetime != nil, sp.ClusterMaxConnectionLifetime)
	set("keepalive", sp.KeepAlive != nil, sp.KeepAlive)
	set("labels", len(sp.Labels) > 0, sp.Labels)
	set("load_balancer", sp.LoadBalancer != nil, sp.LoadBalancer)
	return out
}

// CoreMismatch is add_mapping's check: a field the new Mapping sets must be
// set, to the same value, by the group's first Mapping. (It is one-sided,
// as in Emissary: a field only the first Mapping sets is no mismatch.) It
// lists the fields that differ, "field: new != first".
func CoreMismatch(first, next map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(next)) {
		if v, ok := first[k]; !ok || v != next[k] {
			out = append(out, fmt.Sprintf("%s: %s != %s", k, next[k], cmp.Or(first[k], "-unset-")))
		}
	}
	return out
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}
