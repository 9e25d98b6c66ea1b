package emissary

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
)

// KV is Emissary's KeyValueDecorator: one header or query parameter match
// as the group ID and the route weight see it.
type KV struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Regex bool   `json:"regex,omitempty"`
}

// Length is KeyValueDecorator.length: the name, the value ("*" when empty)
// and one more for a regex, in code points as Python counts them.
func (h KV) Length() int {
	n := utf8.RuneCountInString(h.Name) + utf8.RuneCountInString(cmp.Or(h.Value, "*"))
	if h.Regex {
		n++
	}
	return n
}

// Key is KeyValueDecorator.key.
func (h KV) Key() string { return h.Name + "-" + cmp.Or(h.Value, "*") }

// Match is what Emissary derives from a Mapping's match fields.
type Match struct {
	// Headers are the header matches in Emissary's order: headers,
	// regex_headers, then :authority from hostname (or host, or an exact
	// :authority header; hostname wins over host, host over the header)
	// and :method from method. Go maps have no order; Emissary reads the
	// Mapping as JSON that Go encoded, with sorted keys, so each map is
	// taken in key order.
	Headers []KV
	// Query are the query parameter matches: query_parameters, then
	// regex_query_parameters, each in key order.
	Query []KV
	// Host is the Mapping's host glob: "" when it has none, or when it is
	// a regex (HostRegex).
	Host      string
	HostRegex bool
	// Deferred is the error Emissary defers to setup for an exact host or
	// :authority header containing "*", which makes it reject the
	// Mapping; "" when none.
	Deferred string
}

// MatchOf reads the match fields of sp as IRHTTPMapping.__init__ does.
//
// regex_headers are matches of their own, a regex :authority included
// (Emissary does no host filtering on it). The deprecated host counts as
// a hostname unless host_regex says it is a regex; hostname overrides it.
// The method field reaches the group only as a :method header: see
// GroupKey.
func MatchOf(sp *ambv3.MappingSpec) Match {
	var m Match
	var authority string
	for _, k := range slices.Sorted(maps.Keys(sp.Headers)) {
		v := sp.Headers[k]
		if strings.ToLower(k) == ":authority" {
			if strings.Contains(v, "*") {
				m.Deferred = fmt.Sprintf(":authority exact-match %q contains *, which cannot match anything", v)
			} else {
				authority = v
			}
			continue
		}
		m.Headers = append(m.Headers, KV{Name: k, Value: v})
	}
	for _, k := range slices.Sorted(maps.Keys(sp.RegexHeaders)) {
		m.Headers = append(m.Headers, KV{Name: k, Value: sp.RegexHeaders[k], Regex: true})
	}
	h, hostRegex := authority, false
	if sp.DeprecatedHost != "" {
		h = sp.DeprecatedHost
		hostRegex = sp.DeprecatedHostRegex != nil && *sp.DeprecatedHostRegex
		if !hostRegex && strings.Contains(h, "*") {
			m.Deferred = fmt.Sprintf("host exact-match %q contains *, which cannot match anything", h)
		}
	}
	if sp.Hostname != "" {
		h, hostRegex = sp.Hostname, false
	}
	if h != "" {
		m.Headers = append(m.Headers, KV{Name: ":authority", Value: h, Regex: hostRegex})
		m.HostRegex = hostRegex
		if !hostRegex {
			m.Host = h
		}
	}
	if sp.Method != "" {
		m.Headers = append(m.Headers, KV{Name: ":method", Value: sp.Method, Regex: sp.MethodRegex != nil && *sp.MethodRegex})
	}
	for _, k := range slices.Sorted(maps.Keys(sp.QueryParameters)) {
		m.Query = append(m.Query, KV{Name: k, Value: sp.QueryParameters[k]})
	}
	for _, k := range slices.Sorted(maps.Keys(sp.RegexQueryParameters)) {
		m.Query = append(m.Query, KV{Name: k, Value: sp.RegexQueryParameters[k], Regex: true})
	}
	return m
}
