package edge

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
)

// This file turns Mappings into Emissary's match headers, group keys, route
// weights and groups (ir/irhttpmapping.py, IRHTTPMapping.__init__,
// _group_id and _route_weight; ir/irhttpmappinggroup.py, add_mapping).

// kv is Emissary's KeyValueDecorator: one header or query parameter match
// as the group key and route weight see it.
type kv struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Regex bool   `json:"regex,omitempty"`
}

// length is KeyValueDecorator.length: the name, the value ("*" when empty)
// and one more for a regex, in code points as Python counts them.
func (h kv) length() int {
	n := utf8.RuneCountInString(h.Name) + utf8.RuneCountInString(cmp.Or(h.Value, "*"))
	if h.Regex {
		n++
	}
	return n
}

// key is KeyValueDecorator.key.
func (h kv) key() string { return h.Name + "-" + cmp.Or(h.Value, "*") }

// matchHeaders returns the header matches Emissary derives from m, in its
// order: headers, regex_headers, then :authority from hostname (or host,
// or an exact :authority header; hostname wins over host, host over the
// header) and :method from method. Go maps have no order; Emissary reads
// the Mapping as JSON that Go encoded, with sorted keys, so each map is
// taken in key order.
//
// host is the Mapping's host glob ("" when none, or when it is a regex);
// hostRegex says it is a host_regex. deferred is the error Emissary defers
// to setup for an exact host or :authority header containing "*", which
// makes it reject the Mapping.
func matchHeaders(sp *ambv3.MappingSpec) (hdrs []kv, host string, hostRegex bool, deferred string) {
	var authority string
	for _, k := range slices.Sorted(maps.Keys(sp.Headers)) {
		v := sp.Headers[k]
		if strings.ToLower(k) == ":authority" {
			if strings.Contains(v, "*") {
				deferred = fmt.Sprintf(":authority exact-match %q contains *, which cannot match anything", v)
			} else {
				authority = v
			}
			continue
		}
		hdrs = append(hdrs, kv{Name: k, Value: v})
	}
	for _, k := range slices.Sorted(maps.Keys(sp.RegexHeaders)) {
		hdrs = append(hdrs, kv{Name: k, Value: sp.RegexHeaders[k], Regex: true})
	}
	h := authority
	if sp.DeprecatedHost != "" {
		h = sp.DeprecatedHost
		hostRegex = sp.DeprecatedHostRegex != nil && *sp.DeprecatedHostRegex
		if !hostRegex && strings.Contains(h, "*") {
			deferred = fmt.Sprintf("host exact-match %q contains *, which cannot match anything", h)
		}
	}
	if sp.Hostname != "" {
		h, hostRegex = sp.Hostname, false
	}
	if h != "" {
		hdrs = append(hdrs, kv{Name: ":authority", Value: h, Regex: hostRegex})
		if !hostRegex {
			host = h
		}
	}
	if sp.Method != "" {
		hdrs = append(hdrs, kv{Name: ":method", Value: sp.Method, Regex: sp.MethodRegex != nil && *sp.MethodRegex})
	}
	return hdrs, host, hostRegex, deferred
}

// matchQuery returns the query parameter matches of m: query_parameters,
// then regex_query_parameters, each in key order.
func matchQuery(sp *ambv3.MappingSpec) []kv {
	var qs []kv
	for _, k := range slices.Sorted(maps.Keys(sp.QueryParameters)) {
		qs = append(qs, kv{Name: k, Value: sp.QueryParameters[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(sp.RegexQueryParameters)) {
		qs = append(qs, kv{Name: k, Value: sp.RegexQueryParameters[k], Regex: true})
	}
	return qs
}

// groupKey is the text Emissary hashes into a group ID (_group_id):
// "HTTP-", the method, the prefix, each header's name and value, each query
// parameter's name and value, for a Mapping without a (non-regex) host the
// matchLabels of every Host whose mappingSelector its labels meet, and the
// precedence unless it is 0. The pieces are concatenated without
// separators, as Emissary does, so the edge groups exactly the Mappings
// Emissary groups, accidental collisions included.
//
// The method is always "GET" here: Emissary's IRHTTPMapping never keeps
// the method field itself (it is not in AllowedKeys; only the :method
// header is), so self.get("method") is always unset. A method still splits
// groups, through its :method header.
func groupKey(sp *ambv3.MappingSpec, labels map[string]string, hdrs, qs []kv, host string, hosts []*host) string {
	var b strings.Builder
	b.WriteString("HTTP-GET")
	b.WriteString(sp.Prefix)
	for _, h := range hdrs {
		b.WriteString(h.Name)
		b.WriteString(h.Value)
	}
	for _, q := range qs {
		b.WriteString(q.Name)
		b.WriteString(q.Value)
	}
	if host == "" {
		for _, h := range hosts {
			if h.hasSelector && len(labels) > 0 && selectorMatches(h.selector, labels) {
				for _, k := range slices.Sorted(maps.Keys(h.selector)) {
					b.WriteString(k)
					b.WriteString(h.selector[k])
				}
			}
		}
	}
	if p := precedence(sp); p != 0 {
		b.WriteString(strconv.Itoa(p))
	}
	return b.String()
}

func precedence(sp *ambv3.MappingSpec) int {
	if sp.Precedence == nil {
		return 0
	}
	return *sp.Precedence
}

// routeWeight is Emissary's _route_weight: [precedence, len(prefix),
// total header length, total query parameter length, prefix, method,
// header keys..., query parameter keys...]. Groups are routed in
// descending order of it, compared as Python compares lists.
type routeWeight struct {
	nums [4]int
	strs []string // prefix, method, header keys, query keys
}

func newRouteWeight(sp *ambv3.MappingSpec, hdrs, qs []kv) routeWeight {
	w := routeWeight{nums: [4]int{precedence(sp), utf8.RuneCountInString(sp.Prefix)}}
	for _, h := range hdrs {
		w.nums[2] += h.length()
	}
	for _, q := range qs {
		w.nums[3] += q.length()
	}
	// The method slot: self.get("method", "GET") is always "GET", for the
	// reason given at groupKey.
	w.strs = append(w.strs, sp.Prefix, "GET")
	for _, h := range hdrs {
		w.strs = append(w.strs, h.key())
	}
	for _, q := range qs {
		w.strs = append(w.strs, q.key())
	}
	return w
}

// compareWeights compares as Python compares the two lists: element by
// element, and a list that is a prefix of the other is smaller. Python
// compares strings by code point, which is the byte order of UTF-8.
func compareWeights(a, b routeWeight) int {
	for i := range a.nums {
		if c := cmp.Compare(a.nums[i], b.nums[i]); c != 0 {
			return c
		}
	}
	return slices.Compare(a.strs, b.strs)
}

// coreFields are the values of the Mapping fields Emissary requires to be
// equal across a group (IRHTTPMappingGroup.CoreMappingKeys), as JSON; a
// missing entry is a field the Mapping does not set.
func coreFields(sp *ambv3.MappingSpec, hdrs []kv) map[string]string {
	out := map[string]string{}
	set := func(k string, present bool, v any) {
		if present {
			out[k] = string(mustJSON(v))
		}
	}
	set("prefix", true, sp.Prefix)
	set("headers", true, hdrs)
	set("prefix_regex", sp.PrefixRegex != nil, sp.PrefixRegex)
	set("prefix_exact", sp.PrefixExact != nil, sp.PrefixExact)
	set("bypass_auth", sp.BypassAuth != nil, sp.BypassAuth)
	set("bypass_error_response_overrides", sp.BypassErrorResponseOverrides != nil, sp.BypassErrorResponseOverrides)
	// IRBaseMapping.setup always sets circuit_breakers (to the Module's,
	// None here), so it is present on every Mapping.
	if len(sp.CircuitBreakers) > 0 {
		out["circuit_breakers"] = string(mustJSON(sp.CircuitBreakers))
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

// coreMismatch is add_mapping's check: a field the new Mapping sets must be
// set, to the same value, by the group's first Mapping. (It is one-sided,
// as in Emissary: a field only the first Mapping sets is no mismatch.)
func coreMismatch(first, next map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(next)) {
		if v, ok := first[k]; !ok || v != next[k] {
			out = append(out, fmt.Sprintf("%s: %s != %s", k, next[k], cmp.Or(first[k], "-unset-")))
		}
	}
	return out
}
