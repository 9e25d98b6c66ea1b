package emissary

import (
	"cmp"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// This file holds how Envoy matches a request against the routes Emissary
// writes (envoy/v3/v3route.py, V3Route.__init__, generate_headers and
// generate_query_parameters), and how it picks the virtual host
// (RouteMatcher::findVirtualHost). The dev edge routes with it and
// `crossmap explain` explains with it, so that the two cannot disagree.

// Request is what Envoy's route matching reads of an HTTP request.
type Request struct {
	Method string
	// Authority is the request's :authority (Host) without a port.
	Authority string
	// Path is the path as the client wrote it (percent-encoded; Emissary
	// does not normalize paths unless the Module asks it to), without the
	// query string.
	Path string
	// RawQuery is the query string, without "?".
	RawQuery string
	Header   http.Header
	// Secure is true for a request over TLS (:scheme https).
	Secure bool

	query  url.Values
	parsed bool
}

// RequestOf reads r as Envoy's route matching sees it.
func RequestOf(r *http.Request) Request {
	return Request{Method: r.Method, Authority: Authority(r.Host), Path: r.URL.EscapedPath(),
		RawQuery: r.URL.RawQuery, Header: r.Header, Secure: r.TLS != nil}
}

// Authority is the request's :authority without a port. Emissary's
// strip_matching_host_port drops the port when it is the listener's; the
// dev edge listens on one port, usually behind a port-forward that changes
// the number the client wrote, so it drops any port.
func Authority(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return hostport
}

// HeaderValue returns the value Envoy matches a header matcher against, and
// whether the request has the header. Pseudo-headers come from the request
// line; a header sent more than once is matched as its values joined with
// commas, as Envoy does.
func (r *Request) HeaderValue(name string) (string, bool) {
	switch strings.ToLower(name) {
	case ":authority":
		// Envoy's HTTP/1 codec turns Host into :authority (so a matcher
		// on "host" finds nothing); Go keeps it in r.Host.
		return r.Authority, true
	case ":method":
		return r.Method, true
	case ":path":
		if r.RawQuery != "" {
			return r.Path + "?" + r.RawQuery, true
		}
		return r.Path, true
	case ":scheme":
		if r.Secure {
			return "https", true
		}
		return "http", true
	}
	if strings.HasPrefix(name, ":") {
		return "", false
	}
	vs := r.Header.Values(name)
	if len(vs) == 0 {
		return "", false
	}
	return strings.Join(vs, ","), true
}

// QueryValue returns the first value of the query parameter name, decoded,
// and whether the request has it (Envoy's QueryParameterMatcher looks at
// the first value only).
func (r *Request) QueryValue(name string) (string, bool) {
	if !r.parsed {
		// ParseQuery keeps what it can parse; Envoy also skips malformed
		// pairs.
		r.query, _ = url.ParseQuery(r.RawQuery)
		r.parsed = true
	}
	vs, ok := r.query[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// PathKind is how a route matches the path.
type PathKind int

// Path kinds.
const (
	PathPrefix PathKind = iota // Envoy "prefix"
	PathExact                  // Envoy "path": prefix_exact
	PathRegex                  // Envoy "safe_regex": prefix_regex
)

func (k PathKind) String() string {
	return [...]string{PathPrefix: "prefix", PathExact: "path", PathRegex: "regex"}[k]
}

// PathMatch matches the path of a request.
type PathMatch struct {
	Kind  PathKind
	Value string         // the Mapping's prefix
	Regex *regexp.Regexp // PathRegex: the prefix, anchored at both ends
	// CaseSensitive: Envoy ignores it for safe_regex.
	CaseSensitive bool
}

// Match reports whether path matches, and how many bytes of it the match
// covers, which is what prefix_rewrite replaces: the prefix for a prefix
// match, the whole path for a path or regex match.
func (m *PathMatch) Match(path string) (int, bool) {
	switch m.Kind {
	case PathExact:
		if m.CaseSensitive && path == m.Value || !m.CaseSensitive && asciiEqualFold(path, m.Value) {
			return len(path), true
		}
	case PathRegex:
		// Envoy's safe_regex route match is a full match of the path.
		if m.Regex.MatchString(path) {
			return len(path), true
		}
	default:
		if len(path) >= len(m.Value) && (m.CaseSensitive && path[:len(m.Value)] == m.Value || !m.CaseSensitive && asciiEqualFold(path[:len(m.Value)], m.Value)) {
			return len(m.Value), true
		}
	}
	return 0, false
}

// asciiEqualFold is absl::EqualsIgnoreCase: ASCII letters only.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// ValueKind is how a header or query parameter value is matched.
type ValueKind int

// Value kinds.
const (
	ValueExact  ValueKind = iota // exact_match / string_match.exact
	ValueRegex                   // safe_regex_match: a full match
	ValuePrefix                  // prefix_match (a "host.*" hostname)
	ValueSuffix                  // suffix_match (a "*.host" hostname)
)

func (k ValueKind) String() string {
	return [...]string{ValueExact: "exact", ValueRegex: "regex", ValuePrefix: "prefix", ValueSuffix: "suffix"}[k]
}

// ValueMatch is one header or query parameter matcher.
type ValueMatch struct {
	Name  string
	Kind  ValueKind
	Value string
	Regex *regexp.Regexp
}

// Matches reports whether v satisfies the matcher.
func (m *ValueMatch) Matches(v string) bool {
	switch m.Kind {
	case ValueRegex:
		return m.Regex.MatchString(v)
	case ValuePrefix:
		return strings.HasPrefix(v, m.Value)
	case ValueSuffix:
		return strings.HasSuffix(v, m.Value)
	}
	return v == m.Value
}

// String reads like `x-crossmap-cluster: dev-alice`, `:authority ending in
// .example.com` or `x-canary matching ^(?:yes|on)$`.
func (m *ValueMatch) String() string {
	switch m.Kind {
	case ValueRegex:
		return fmt.Sprintf("%s matching %s", m.Name, m.Value)
	case ValuePrefix:
		return fmt.Sprintf("%s starting with %s", m.Name, m.Value)
	case ValueSuffix:
		return fmt.Sprintf("%s ending in %s", m.Name, m.Value)
	}
	return m.Name + ": " + m.Value
}

// ValueMatches builds the Envoy matchers for headers (hostGlob: an exact
// :authority is a glob) or query parameters.
func ValueMatches(kvs []KV, hostGlob bool) ([]ValueMatch, error) {
	var out []ValueMatch
	for _, h := range kvs {
		vm := ValueMatch{Name: h.Name, Value: h.Value}
		switch {
		case h.Regex:
			re, err := FullMatch(h.Value)
			if err != nil {
				return nil, fmt.Errorf("the regex %q for %s is not a valid RE2 regex (%v)", h.Value, h.Name, err)
			}
			vm.Kind, vm.Regex = ValueRegex, re
		case hostGlob && h.Name == ":authority":
			// generate_headers: a hostname is a glob; "*" matches
			// everything and is left out.
			switch {
			case h.Value == "*":
				continue
			case strings.HasPrefix(h.Value, "*"):
				vm.Kind, vm.Value = ValueSuffix, h.Value[1:]
			case strings.HasSuffix(h.Value, "*"):
				vm.Kind, vm.Value = ValuePrefix, h.Value[:len(h.Value)-1]
			}
		}
		out = append(out, vm)
	}
	return out, nil
}

// FullMatch compiles re as Envoy's safe_regex (RE2) uses it: the whole
// value must match.
func FullMatch(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + re + `)$`)
}

// RouteMatch is the match of one Envoy route Emissary writes for a member
// of a group: the member's path, the group's headers and query parameters.
type RouteMatch struct {
	Path    PathMatch
	Headers []ValueMatch
	Query   []ValueMatch
}

// Mismatch is the first matcher of a route that a request fails: Part is
// "path", "header" or "query"; Matcher is the header or query matcher (nil
// for the path); Missing says the request lacks the header or parameter,
// and Got is what it has.
type Mismatch struct {
	Part    string
	Matcher *ValueMatch
	Missing bool
	Got     string
}

// Check matches req against the route as Envoy does: the path first, then
// every header, then every query parameter. It returns how many bytes of
// the path the match covers and, when the route does not take req, the
// first matcher that failed.
func (m *RouteMatch) Check(req *Request) (int, *Mismatch) {
	n, miss, ok := m.check(req)
	if !ok {
		return 0, &miss
	}
	return n, nil
}

// Takes is Check without the mismatch, for the dev edge's request path:
// a request is checked against every route before the one that takes it,
// and a Mismatch for each would cost an allocation per route.
func (m *RouteMatch) Takes(req *Request) (int, bool) {
	n, _, ok := m.check(req)
	return n, ok
}

func (m *RouteMatch) check(req *Request) (int, Mismatch, bool) {
	n, ok := m.Path.Match(req.Path)
	if !ok {
		return 0, Mismatch{Part: "path", Got: req.Path}, false
	}
	for i := range m.Headers {
		v, ok := req.HeaderValue(m.Headers[i].Name)
		if !ok || !m.Headers[i].Matches(v) {
			return 0, Mismatch{Part: "header", Matcher: &m.Headers[i], Missing: !ok, Got: v}, false
		}
	}
	for i := range m.Query {
		v, ok := req.QueryValue(m.Query[i].Name)
		if !ok || !m.Query[i].Matches(v) {
			return 0, Mismatch{Part: "query", Matcher: &m.Query[i], Missing: !ok, Got: v}, false
		}
	}
	return n, Mismatch{}, true
}

// RouteMatches compiles the Envoy route match of each member of g, indexed
// like g.Members, as IRHTTPMappingGroup.finalize flattens the group and
// V3Route writes it: the path kind is the first Mapping's (prefix_regex,
// prefix_exact), each member keeps its prefix, case_sensitive is the
// member's, else the last Mapping's of the group that has it, else true;
// headers and query parameters are the group's. errs[i] is set when member
// i's match cannot be compiled (a prefix that is no RE2 regex in a regex
// group, a header or query regex): Envoy would refuse the configuration.
func RouteMatches(g *Group) (routes []RouteMatch, errs []error) {
	routes, errs = make([]RouteMatch, len(g.Members)), make([]error, len(g.Members))
	headers, herr := ValueMatches(g.Match.Headers, true)
	query, qerr := ValueMatches(g.Query, false)
	kind := PathPrefix
	switch sp := &g.First.Spec; {
	case sp.PrefixRegex != nil && *sp.PrefixRegex:
		kind = PathRegex
	case sp.PrefixExact != nil && *sp.PrefixExact:
		kind = PathExact
	}
	var groupCase *bool
	for _, name := range g.Mappings {
		i := slices.IndexFunc(g.Members, func(mem *Member) bool { return mem.Name == name })
		if i < 0 {
			continue
		}
		if c := g.Members[i].Mapping.Spec.CaseSensitive; c != nil {
			groupCase = c
		}
	}
	for i, mem := range g.Members {
		sp := &mem.Mapping.Spec
		rm := RouteMatch{Path: PathMatch{Kind: kind, Value: sp.Prefix, CaseSensitive: true}, Headers: headers, Query: query}
		if c := cmp.Or(sp.CaseSensitive, groupCase); c != nil {
			rm.Path.CaseSensitive = *c
		}
		errs[i] = cmp.Or(herr, qerr)
		if kind == PathRegex {
			// A member that does not say prefix_regex in a regex group:
			// its prefix is still matched as the group's regex.
			re, err := FullMatch(sp.Prefix)
			if err != nil {
				errs[i] = fmt.Errorf("the group's prefix_regex %q is not a valid RE2 regex (%v)", sp.Prefix, err)
			}
			rm.Path.Regex = re
		}
		routes[i] = rm
	}
	return routes, errs
}

// VirtualHosts picks the Envoy virtual host for a request's :authority, as
// RouteMatcher::findVirtualHost does: an exact domain first, then the
// longest "*suffix" wildcard, then the longest "prefix*" wildcard, then
// "*". A wildcard never matches the empty string. Domains compare without
// regard to case. Emissary makes one virtual host per Host hostname.
type VirtualHosts[T any] struct {
	exact    map[string]T
	suffixes []domain[T] // "*suffix", longest suffix first
	prefixes []domain[T] // "prefix*", longest prefix first
	any      *T          // "*"
}

type domain[T any] struct {
	part string // the suffix or prefix, lower case
	v    T
}

// NewVirtualHosts indexes vs by their hostnames (hostname(v), a DNS glob).
func NewVirtualHosts[T any](vs []T, hostname func(T) string) VirtualHosts[T] {
	out := VirtualHosts[T]{exact: map[string]T{}}
	for _, v := range vs {
		d := strings.ToLower(hostname(v))
		switch {
		case d == "*":
			out.any = &v
		case strings.HasPrefix(d, "*"):
			out.suffixes = setDomain(out.suffixes, d[1:], v)
		case strings.HasSuffix(d, "*"):
			out.prefixes = setDomain(out.prefixes, d[:len(d)-1], v)
		default:
			out.exact[d] = v
		}
	}
	longestFirst := func(a, b domain[T]) int { return cmp.Compare(len(b.part), len(a.part)) }
	slices.SortStableFunc(out.suffixes, longestFirst)
	slices.SortStableFunc(out.prefixes, longestFirst)
	return out
}

// setDomain adds v for part, or replaces the one already there: of two
// values with one hostname the later wins, for globs as for exact names
// and "*".
func setDomain[T any](ds []domain[T], part string, v T) []domain[T] {
	if i := slices.IndexFunc(ds, func(d domain[T]) bool { return d.part == part }); i >= 0 {
		ds[i].v = v
		return ds
	}
	return append(ds, domain[T]{part, v})
}

// Find returns the virtual host for authority, and false when none takes
// it.
func (v VirtualHosts[T]) Find(authority string) (T, bool) {
	d := strings.ToLower(authority)
	if h, ok := v.exact[d]; ok {
		return h, true
	}
	for _, s := range v.suffixes {
		if len(d) > len(s.part) && strings.HasSuffix(d, s.part) {
			return s.v, true
		}
	}
	for _, p := range v.prefixes {
		if len(d) > len(p.part) && strings.HasPrefix(d, p.part) {
			return p.v, true
		}
	}
	if v.any != nil {
		return *v.any, true
	}
	var zero T
	return zero, false
}
