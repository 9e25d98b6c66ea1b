package edge

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// This file holds the request matchers of a route, as Envoy evaluates the
// match Emissary writes (envoy/v3/v3route.py, V3Route.__init__,
// generate_headers and generate_query_parameters).

// pathKind is how a route matches the path.
type pathKind int

const (
	pathPrefix pathKind = iota // Envoy "prefix"
	pathExact                  // Envoy "path": prefix_exact
	pathRegex                  // Envoy "safe_regex": prefix_regex
)

// pathMatch matches the path of a request: the :path header without its
// query string, as the client wrote it (percent-encoded; Emissary does not
// normalize paths unless the Module asks it to).
type pathMatch struct {
	kind          pathKind
	value         string         // the Mapping's prefix
	re            *regexp.Regexp // pathRegex: the prefix, anchored at both ends
	caseSensitive bool           // Envoy ignores it for safe_regex
}

// match reports whether path matches, and how many bytes of it the match
// covers, which is what prefix_rewrite replaces: the prefix for a prefix
// match, the whole path for a path or regex match.
func (m *pathMatch) match(path string) (int, bool) {
	switch m.kind {
	case pathExact:
		if m.caseSensitive && path == m.value || !m.caseSensitive && asciiEqualFold(path, m.value) {
			return len(path), true
		}
	case pathRegex:
		// Envoy's safe_regex route match is a full match of the path.
		if m.re.MatchString(path) {
			return len(path), true
		}
	default:
		if len(path) >= len(m.value) && (m.caseSensitive && path[:len(m.value)] == m.value || !m.caseSensitive && asciiEqualFold(path[:len(m.value)], m.value)) {
			return len(m.value), true
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

// matchKind is how a header or query parameter value is matched.
type matchKind int

const (
	matchExact  matchKind = iota // exact_match / string_match.exact
	matchRegex                   // safe_regex_match: a full match
	matchPrefix                  // prefix_match (a "host.*" hostname)
	matchSuffix                  // suffix_match (a "*.host" hostname)
)

// valueMatch is one header or query parameter matcher.
type valueMatch struct {
	name  string
	kind  matchKind
	value string
	re    *regexp.Regexp
}

func (m *valueMatch) matches(v string) bool {
	switch m.kind {
	case matchRegex:
		return m.re.MatchString(v)
	case matchPrefix:
		return strings.HasPrefix(v, m.value)
	case matchSuffix:
		return strings.HasSuffix(v, m.value)
	}
	return v == m.value
}

// header returns the value Envoy matches a header matcher against, and
// whether the request has the header. Pseudo-headers come from the request
// line; a header sent more than once is matched as its values joined with
// commas, as Envoy does. host is the request's :authority without port.
func header(r *http.Request, host, name string) (string, bool) {
	switch strings.ToLower(name) {
	case ":authority":
		// Envoy's HTTP/1 codec turns Host into :authority (so a matcher
		// on "host" finds nothing); Go keeps it in r.Host.
		return host, true
	case ":method":
		return r.Method, true
	case ":path":
		return r.URL.RequestURI(), true
	case ":scheme":
		if r.TLS != nil {
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

// queryValue returns the first value of the query parameter name, decoded,
// and whether the request has it (Envoy's QueryParameterMatcher looks at
// the first value only).
func queryValue(q url.Values, name string) (string, bool) {
	vs, ok := q[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// fullMatch compiles re as Envoy's safe_regex (RE2) uses it: the whole
// value must match.
func fullMatch(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + re + `)$`)
}
