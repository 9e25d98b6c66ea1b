package edge

import (
	"cmp"
	"fmt"
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
	// insecure is requestPolicy.insecure.action, what a cleartext request
	// gets: Route, Redirect (to https) or Reject. The secure action is
	// always Route (ir/irhost.py, IRHost.setup).
	insecure string
	// term is the Host's TLS; nil for a Host without tlsSecret, which
	// serves cleartext only.
	term *termination
}

// Insecure actions (ir/irhost.py, IRHost.setup; the Host CRD's enum).
const (
	actionRoute    = "Route"
	actionRedirect = "Redirect"
	actionReject   = "Reject"
)

// defaultHost is the Host Emissary makes up when the installation has none
// (ir/irhost.py, HostFactory.finalize): hostname "*", no mappingSelector,
// cleartext routed.
func defaultHost() *host {
	return &host{name: "default-host", hostname: "*", insecure: actionRoute}
}

// newHost reads h.
func newHost(h *ambv3.Host) *host {
	out := &host{name: objectName(h.Namespace, h.Name), hostname: "*", insecure: actionRedirect}
	if h.Spec == nil {
		return out
	}
	// ir/irhost.py, IRHost.setup: hostname defaults to "*"; the
	// deprecated selector stands in for a missing mappingSelector; the
	// insecure action defaults to Redirect.
	out.hostname = cmp.Or(h.Spec.Hostname, "*")
	if rp := h.Spec.RequestPolicy; rp != nil && rp.Insecure.Action != "" {
		out.insecure = rp.Insecure.Action
	}
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
// A host_regex hostname counts as matching every Host, and Emissary's own
// probe Mappings go to every Host.
func (h *host) accepts(g *group) bool {
	if g.builtin != "" {
		// "The synthetic Mappings for diagnostics, readiness, and
		// liveness probes always match all Hosts."
		return true
	}
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

// tlsChain is an Envoy filter chain with TLS (envoy/v3/v3listener.py,
// V3Chain): the TLS Hosts of one server name, the handshake they share,
// and their virtual hosts, the only ones a request on such a connection
// can reach.
type tlsChain struct {
	serverName string
	term       *termination
	hosts      []*host
	vhosts     vhosts
}

// tlsChains picks the TLS chain for a connection's SNI as Envoy matches
// filter_chain_match.server_names: the exact name first, then the longest
// "*.suffix" wildcard (a.b.example.com tries *.b.example.com, then
// *.example.com, then *.com), then the chain without server_names, which
// a Host with hostname "*" makes (V3Listener.finalize_http leaves
// server_names out when it would hold "*"). No chain: the handshake
// fails, as Envoy's cleartext chain cannot speak TLS.
type tlsChains map[string]*tlsChain // by server name: "*", "*.suffix" or exact

func (c tlsChains) find(sni string) *tlsChain {
	sni = strings.ToLower(sni)
	if sni != "" && !strings.Contains(sni, "*") {
		if ch, ok := c[sni]; ok {
			return ch
		}
		for i := strings.IndexByte(sni, '.'); i >= 0; {
			if ch, ok := c["*"+sni[i:]]; ok {
				return ch
			}
			j := strings.IndexByte(sni[i+1:], '.')
			if j < 0 {
				break
			}
			i += 1 + j
		}
	}
	return c["*"]
}

// newTLSChains makes the TLS chains of the installed Hosts, as
// V3Listener.compute_httpchains does: Hosts in hostname order, one chain
// per server name (the hostname without a port, IRHost.setup's sni). A
// second Host of the same server name joins the chain only when both name
// the same TLSContext (V3Chain.add_httphost); otherwise Emissary discards
// it from TLS.
func (b *builder) newTLSChains(hosts []*host) tlsChains {
	c := tlsChains{}
	tlsHosts := slices.DeleteFunc(slices.Clone(hosts), func(h *host) bool { return h.term == nil })
	slices.SortStableFunc(tlsHosts, func(a, b *host) int { return cmp.Compare(a.hostname, b.hostname) })
	for _, h := range tlsHosts {
		sni := strings.ToLower(h.hostname)
		if i := strings.LastIndexByte(sni, ':'); i >= 0 {
			sni = sni[:i]
		}
		if sni != "*" && strings.Contains(strings.TrimPrefix(sni, "*."), "*") {
			b.problems = append(b.problems, Problem{Host: h.name, Field: "hostname", Message: fmt.Sprintf("Envoy matches a TLS server name only with a leading \"*.\", not %q; the dev edge serves no TLS for this Host", h.hostname)})
			continue
		}
		if ch, ok := c[sni]; ok {
			if h.term.context == "" || h.term.context != ch.term.context {
				b.problems = append(b.problems, Problem{Host: h.name, Field: "hostname", Message: fmt.Sprintf("Host %s already serves TLS for %q; Emissary shares a TLS server name only between Hosts that name the same tlsContext, and leaves this Host out of TLS (envoy/v3/v3listener.py, V3Chain.add_httphost)", ch.hosts[0].name, sni)})
				continue
			}
			ch.hosts = append(ch.hosts, h)
			continue
		}
		c[sni] = &tlsChain{serverName: sni, term: h.term, hosts: []*host{h}}
	}
	return c
}

// finish makes each chain's virtual hosts, once the Hosts have their
// routes.
func (c tlsChains) finish() {
	for _, ch := range c {
		ch.vhosts = newVhosts(ch.hosts)
	}
}
