package edge

import (
	"cmp"
	"net"
	"slices"
	"strings"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// host is an Emissary Host as the edge uses it: one Envoy virtual host.
type host struct {
	name     string // namespace/name, or "default-host"
	hostname string // a DNS glob; "*" when the Host gives none
	// selector is the Host's mappingSelector.matchLabels; hasSelector is
	// false when the Host has no mappingSelector (nor the deprecated
	// selector), which is not the same as one with no labels.
	selector    map[string]string
	hasSelector bool
	routes      []*route // the routes of the groups the Host accepts, in order
}

// defaultHost is the Host Emissary makes up when the installation has none
// (ir/irhost.py, HostFactory.finalize): hostname "*", no mappingSelector,
// cleartext routed.
func defaultHost() *host {
	return &host{name: "default-host", hostname: "*"}
}

// newHost reads h.
func newHost(h *ambv3.Host) *host {
	out := &host{name: objectName(h.Namespace, h.Name), hostname: "*"}
	if h.Spec == nil {
		return out
	}
	// ir/irhost.py, IRHost.setup: hostname defaults to "*"; the
	// deprecated selector stands in for a missing mappingSelector.
	out.hostname = cmp.Or(h.Spec.Hostname, "*")
	sel := h.Spec.MappingSelector
	if !selectorSet(sel) {
		sel = h.Spec.DeprecatedSelector
	}
	if selectorSet(sel) {
		out.hasSelector = true
		out.selector = sel.MatchLabels
	}
	return out
}

// selectorSet reports whether Emissary sees a selector at all: Python
// treats an empty dict as false, and an empty matchLabels is dropped from
// the JSON Emissary reads, so {} and {matchLabels: {}} are no selector.
// Emissary ignores matchExpressions, but a selector with only
// matchExpressions is still a (match-everything) selector.
func selectorSet(sel *metav1.LabelSelector) bool {
	return sel != nil && (len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0)
}

// accepts is Emissary's IRHost.matches_httpgroup (ir/irhost.py) with strict
// label selectors (the 3.x default): the Host takes a group when
//
//   - it has a mappingSelector and the group a hostname: both must match;
//   - only a mappingSelector: the group's labels must meet it;
//   - only the group has a hostname: the globs must overlap;
//   - neither: never. A Mapping without hostname binds only to Hosts that
//     select it by label.
//
// A host_regex hostname counts as matching every Host.
func (h *host) accepts(g *group) bool {
	hasHostname, hostMatch := false, false
	switch {
	case g.hostRegex:
		hasHostname, hostMatch = true, true
	case g.host != "":
		hasHostname, hostMatch = true, hostglobMatches(h.hostname, g.host)
	}
	selMatch := h.hasSelector && selectorMatches(h.selector, g.labels)
	switch {
	case h.hasSelector && hasHostname:
		return hostMatch && selMatch
	case h.hasSelector:
		return selMatch
	case hasHostname:
		return hostMatch
	}
	return false
}

// selectorMatches is Emissary's selector_matches (ir/irutils.py) with strict
// selectors: every matchLabels entry must be among labels. No matchLabels
// matches everything.
func selectorMatches(match, labels map[string]string) bool {
	for k, v := range match {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// hostglobMatches is Emissary's hostglob_matches (ir/irutils.py): whether
// some hostname could match both DNS globs. A "*" may stand only at the
// start or the end of a glob, and never matches the empty string.
func hostglobMatches(g1, g2 string) bool {
	if g1 == g2 || g1 == "*" || g2 == "*" {
		return true
	}
	if g1 == "" || g2 == "" || g1[0] == '.' || g2[0] == '.' {
		return false
	}
	g1start, g1end := g1[0] == '*', g1[len(g1)-1] == '*'
	g2start, g2end := g2[0] == '*', g2[len(g2)-1] == '*'
	if (g1start && g1end) || (g2start && g2end) {
		return g1 == g2
	}
	if !(g1start || g1end || g2start || g2end) {
		return false
	}
	if (g1start && g2end) || (g2start && g1end) {
		return true
	}
	switch {
	case g1start:
		return hostglobMatchesStart(g1, g2, g2start)
	case g2start:
		return hostglobMatchesStart(g2, g1, g1start)
	case g1end:
		return hostglobMatchesEnd(g1, g2, g2end)
	default: // g2end
		return hostglobMatchesEnd(g2, g1, g1end)
	}
}

// hostglobMatchesStart has g1 starting with "*" (hostglob_matches_start).
// Lengths are in bytes where Python counts code points; hostnames are
// ASCII, and for the rest only the comparison of lengths matters.
func hostglobMatchesStart(g1, g2 string, g2start bool) bool {
	g1match, g2match := g1[1:], g2
	if g2start {
		g2match = g2[1:]
	}
	if len(g1) > len(g2match) {
		if !g2start {
			return false
		}
		g1match, g2match = g2[1:], g1[1:]
	}
	return strings.HasSuffix(g2match, g1match)
}

// hostglobMatchesEnd has g1 ending with "*" (hostglob_matches_end).
func hostglobMatchesEnd(g1, g2 string, g2end bool) bool {
	g1match, g2match := g1[:len(g1)-1], g2
	if g2end {
		g2match = g2[:len(g2)-1]
	}
	if len(g1) > len(g2match) {
		if !g2end {
			return false
		}
		g1match, g2match = g2[:len(g2)-1], g1[:len(g1)-1]
	}
	return strings.HasPrefix(g2match, g1match)
}

// vhosts is the set of Envoy virtual hosts, one per distinct Host
// hostname, and picks one for a request the way Envoy does
// (RouteMatcher::findVirtualHost): an exact domain first, then the longest
// "*suffix" wildcard, then the longest "prefix*" wildcard, then "*". A
// wildcard never matches the empty string. Domains compare without regard
// to case.
type vhosts struct {
	exact    map[string]*host
	suffixes []*host // "*suffix", longest suffix first
	prefixes []*host // "prefix*", longest prefix first
	any      *host   // "*"
}

func newVhosts(hosts []*host) vhosts {
	v := vhosts{exact: map[string]*host{}}
	for _, h := range hosts {
		d := strings.ToLower(h.hostname)
		switch {
		case d == "*":
			v.any = h
		case strings.HasPrefix(d, "*"):
			v.suffixes = append(v.suffixes, h)
		case strings.HasSuffix(d, "*"):
			v.prefixes = append(v.prefixes, h)
		default:
			v.exact[d] = h
		}
	}
	longestFirst := func(a, b *host) int { return cmp.Compare(len(b.hostname), len(a.hostname)) }
	slices.SortStableFunc(v.suffixes, longestFirst)
	slices.SortStableFunc(v.prefixes, longestFirst)
	return v
}

func (v vhosts) find(hostname string) *host {
	d := strings.ToLower(hostname)
	if h, ok := v.exact[d]; ok {
		return h
	}
	for _, h := range v.suffixes {
		suffix := strings.ToLower(h.hostname[1:])
		if len(d) > len(suffix) && strings.HasSuffix(d, suffix) {
			return h
		}
	}
	for _, h := range v.prefixes {
		prefix := strings.ToLower(h.hostname[:len(h.hostname)-1])
		if len(d) > len(prefix) && strings.HasPrefix(d, prefix) {
			return h
		}
	}
	return v.any
}

// requestHost is the request's :authority without a port. Emissary's
// strip_matching_host_port drops the port when it is the listener's; the
// dev edge listens on one port, usually behind a port-forward that changes
// the number the client wrote, so it drops any port.
func requestHost(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return hostport
}
