package edge

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"

	"github.com/crossmap/crossmap/emissary"
)

// host is an Emissary Host as the edge uses it: one Envoy virtual host.
type host struct {
	name     string // namespace/name, or "default-host"
	hostname string // a DNS glob; "*" when the Host gives none
	// bind is the Host as Mapping binding sees it.
	bind   emissary.Host
	routes []*route // the routes of the groups the Host accepts, in order
	// insecure is requestPolicy.insecure.action, what a cleartext request
	// gets: Route, Redirect (to https) or Reject. The secure action is
	// always Route (ir/irhost.py, IRHost.setup).
	insecure string
	// term is the Host's TLS; nil for a Host without tlsSecret, which
	// serves cleartext only.
	term *termination
}

// Insecure actions (emissary.Host.Insecure).
const (
	actionRoute    = emissary.InsecureRoute
	actionRedirect = emissary.InsecureRedirect
	actionReject   = emissary.InsecureReject
)

// defaultHost is the Host Emissary makes up when the installation has none
// (emissary.DefaultHost), cleartext routed.
func defaultHost() *host {
	d := emissary.DefaultHost()
	return &host{name: d.Name, hostname: d.Hostname, bind: d, insecure: d.Insecure}
}

// newHost reads h.
func newHost(h *ambv3.Host) *host {
	bind := emissary.HostOf(h)
	return &host{name: bind.Name, hostname: bind.Hostname, bind: bind, insecure: bind.Insecure}
}

// accepts is emissary.Host.Accepts: whether the Host takes the group.
func (h *host) accepts(g *group) bool { return h.bind.Accepts(g.Group) }

// newVhosts makes the Envoy virtual hosts of hosts, one per distinct
// hostname (emissary.VirtualHosts picks one for a request).
func newVhosts(hosts []*host) emissary.VirtualHosts[*host] {
	return emissary.NewVirtualHosts(hosts, func(h *host) string { return h.hostname })
}

// tlsChain is an Envoy filter chain with TLS (envoy/v3/v3listener.py,
// V3Chain): the TLS Hosts of one server name, the handshake they share,
// and their virtual hosts, the only ones a request on such a connection
// can reach.
type tlsChain struct {
	serverName string
	term       *termination
	hosts      []*host
	vhosts     emissary.VirtualHosts[*host]
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
