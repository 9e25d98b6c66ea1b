package edge

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/crossmap/crossmap/emissary"
)

// Input is the snapshot the table is built from: the objects of one
// cluster, as the edge's watch lists them. Nil entries are skipped. Build
// neither keeps nor modifies them.
type Input struct {
	Mappings []*ambv3.Mapping
	Hosts    []*ambv3.Host
	Services []*corev1.Service
	Slices   []*discoveryv1.EndpointSlice
	// TLSContexts and Secrets give Hosts and Mappings their TLS: the
	// certificates a TLS Host serves and asks for, and those a Mapping's
	// tls originates with.
	TLSContexts []*ambv3.TLSContext
	Secrets     []*corev1.Secret
	// AmbassadorID is the installation the edge stands in for: Mappings
	// and Hosts whose ambassador_id names none of these are ignored, as
	// Emissary ignores them. Empty means "default", Emissary's own default.
	AmbassadorID []string
}

// Problem is a Mapping (or Host, or TLSContext) the edge does not route
// the way Emissary would, or not at all: a field it does not implement, a
// group or Mapping Emissary rejects, a service it cannot resolve, TLS it
// cannot set up. Problems do not stop the build; Message says what the
// edge does instead. Exactly one of Mapping, Host and TLSContext is set.
type Problem struct {
	Mapping    string `json:"mapping,omitempty"`    // namespace/name of the Mapping
	Host       string `json:"host,omitempty"`       // namespace/name of the Host
	TLSContext string `json:"tlsContext,omitempty"` // namespace/name of the TLSContext
	Field      string `json:"field,omitempty"`      // the spec field as written in YAML, e.g. "regex_rewrite"; empty for the whole object
	Message    string `json:"message"`
}

func (p Problem) String() string {
	obj := "Mapping " + p.Mapping
	switch {
	case p.Host != "":
		obj = "Host " + p.Host
	case p.TLSContext != "":
		obj = "TLSContext " + p.TLSContext
	}
	if p.Field != "" {
		return fmt.Sprintf("%s: %s: %s", obj, p.Field, p.Message)
	}
	return fmt.Sprintf("%s: %s", obj, p.Message)
}

// DefaultTimeout is the request timeout of a Mapping without timeout_ms:
// Emissary's default when the Module sets no cluster_request_timeout_ms
// (envoy/v3/v3route.py).
const DefaultTimeout = 3000 * time.Millisecond

// Target is where Table.Route sends a request.
type Target struct {
	// Mapping is the namespace/name of the Mapping that routed it.
	Mapping string
	// Scheme is the upstream scheme, "http" or "https" (a service field
	// with https://).
	Scheme string
	// Backend names the Service port, "namespace/name:port" ("" when the
	// service field is not a Service): the key to round-robin on.
	Backend string
	// Endpoints are the ready endpoints, host:port, sorted. Empty means
	// no healthy upstream: answer 503. Shared with the table: do not
	// modify.
	Endpoints []string
	// Path is the path to send, percent-encoded, after the Mapping's
	// rewrite; the query string is the request's. Rewritten says whether
	// a rewrite applied.
	Path      string
	Rewritten bool
	// Host is the Host header to send: host_rewrite, or "" to keep the
	// request's.
	Host string
	// Timeout is the request timeout; 0 means none (timeout_ms: 0).
	Timeout time.Duration
	// Headers are add_request_headers, in the order to apply them. Shared
	// with the table: do not modify.
	Headers []AddedHeader
	// ResponseHeaders are add_response_headers, added to the upstream's
	// response in this order. Shared with the table: do not modify.
	ResponseHeaders []AddedHeader
	// Cluster is the cluster whose backend the route sends to: the
	// Mapping's crossmap.io/target-cluster label (crossmap's routes to
	// other clusters carry it), or "" for this cluster's own backends.
	Cluster string
	// Origin is the TLS the request goes upstream with, from the
	// Mapping's tls; nil for none (or for TLS without verification, an
	// https:// service).
	Origin *Origin
	// Redirect says to answer 301 with the request's URL in https: a
	// cleartext request to a Host whose insecure action is Redirect.
	Redirect bool
	// Builtin names an answer of Emissary's own rather than a Mapping's:
	// BuiltinReady or BuiltinAlive. Mapping is empty then.
	Builtin string
}

// AddedHeader is one of a Mapping's add_request_headers or
// add_response_headers. Append adds the value to any the request (or
// response) has, Emissary's default; otherwise the value replaces them.
type AddedHeader struct {
	Name, Value string
	Append      bool
}

// Table is the routing table of the dev edge. It is immutable once built,
// and safe for concurrent use.
type Table struct {
	// vhosts are those of Envoy's cleartext filter chain: every Host's.
	vhosts emissary.VirtualHosts[*host]
	// hosts are the same virtual hosts in Host order, for VirtualHosts.
	hosts []*host
	// chains are the TLS filter chains, by server name; a TLS connection
	// reaches only the virtual hosts of its chain.
	chains       tlsChains
	origins      []*Origin // the usable ones, each once
	certificates []Certificate
}

// route is one Envoy route: a Mapping in its group.
type route struct {
	group     *group
	mapping   string
	numerator int // the route matches draws below it (runtime_fraction)
	// match is the Envoy route match (emissary.RouteMatches): the path,
	// the group's headers and query parameters.
	match   emissary.RouteMatch
	rewrite string // prefix_rewrite; "" means none
	hostRw  string
	timeout time.Duration
	backend backend
	// addHeaders are the group's add_request_headers, respHeaders its
	// add_response_headers: Emissary merges each over the group and adds
	// them on every route of it (irhttpmappinggroup.py, finalize), so a
	// member's response header is every member's.
	addHeaders  []AddedHeader
	respHeaders []AddedHeader
	origin      *Origin
	// cluster is the Mapping's TargetClusterLabel.
	cluster string
}

// group is an Emissary mapping group (emissary.Group) with its Envoy
// routes.
type group struct {
	*emissary.Group
	routes []*route
}

// Build turns a snapshot into a routing table, and reports what it cannot
// route as Emissary would. It never fails: a Mapping it cannot use is
// reported and left out. The problems are sorted.
func Build(in Input) (*Table, []Problem) {
	b := builder{origins: map[string]originResult{}}
	ids := in.AmbassadorID
	if len(ids) == 0 {
		ids = []string{"default"}
	}

	// Hosts, in namespace/name order.
	hosts := slices.DeleteFunc(slices.Clone(in.Hosts), func(h *ambv3.Host) bool {
		return h == nil || !emissary.Served(hostID(h), ids)
	})
	slices.SortFunc(hosts, func(a, b *ambv3.Host) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	ctxs, secrets := newContextIndex(in.TLSContexts, func(aid ambv3.AmbassadorID) bool { return emissary.Served(aid, ids) }), newSecretIndex(in.Secrets)
	var installed []*host
	for _, h := range hosts {
		ih := newHost(h)
		ih.term = b.hostTLS(h, ctxs, secrets)
		installed = append(installed, ih)
		b.hostProblems(h, ih)
	}
	vhostList := b.dedupeHosts(installed)
	if len(installed) == 0 {
		vhostList = []*host{defaultHost()}
	}
	chains := b.newTLSChains(vhostList)

	// Mappings the edge cannot route at all are left out before they are
	// grouped; Emissary's rules (emissary.Groups) do the rest, and give
	// the groups in route order, Emissary's own probe Mappings included.
	var admitted []*ambv3.Mapping
	for _, m := range in.Mappings {
		if m != nil && emissary.Served(m.Spec.AmbassadorID, ids) && b.admit(m) {
			admitted = append(admitted, m)
		}
	}
	groups, rejected := emissary.Groups(emissary.Input{Mappings: admitted, Hosts: hosts, AmbassadorID: ids})
	for _, r := range rejected {
		b.problem(r.Mapping, r.Field, "%s", r.Message)
	}
	svcs := newServices(in.Services, in.Slices)
	ordered := make([]*group, len(groups))
	for i, eg := range groups {
		ordered[i] = b.finalize(eg, svcs, ctxs, secrets)
	}

	served := map[*group]bool{}
	for _, h := range vhostList {
		for _, g := range ordered {
			if len(g.routes) > 0 && h.accepts(g) {
				h.routes = append(h.routes, g.routes...)
				served[g] = true
			}
		}
	}
	for _, g := range ordered {
		if len(g.routes) > 0 && !served[g] && g.Builtin == "" {
			for _, r := range g.routes {
				b.problem(r.mapping, "", "%s", noHostMessage(g, len(installed) == 0))
			}
		}
	}

	chains.finish()
	t := &Table{vhosts: newVhosts(vhostList), hosts: vhostList, chains: chains}
	seen := map[*Origin]bool{}
	for _, g := range ordered {
		for _, r := range g.routes {
			if o := r.origin; o != nil && o.config != nil && !seen[o] {
				seen[o] = true
				t.origins = append(t.origins, o)
			}
		}
	}
	for _, ch := range chains {
		if ch.term.config != nil {
			b.certificates = append(b.certificates, ch.term.certs...)
		}
	}
	slices.SortFunc(b.certificates, func(x, y Certificate) int {
		return cmp.Or(cmp.Compare(x.Secret, y.Secret), cmp.Compare(x.Use, y.Use))
	})
	t.certificates = slices.CompactFunc(b.certificates, func(x, y Certificate) bool { return x.Secret == y.Secret && x.Use == y.Use })

	slices.SortFunc(b.problems, func(x, y Problem) int {
		return cmp.Or(cmp.Compare(x.Mapping, y.Mapping), cmp.Compare(x.Host, y.Host), cmp.Compare(x.TLSContext, y.TLSContext), cmp.Compare(x.Field, y.Field), cmp.Compare(x.Message, y.Message))
	})
	return t, slices.Compact(b.problems)
}

// Certificates are the certificates the table serves, presents and trusts,
// by Secret.
func (t *Table) Certificates() []Certificate {
	if t == nil {
		return nil
	}
	return slices.Clone(t.certificates)
}

func noHostMessage(g *group, defaultOnly bool) string {
	switch {
	case defaultOnly && g.Host == "" && !g.HostRegex:
		return "no Host serves it: the installation has no Host, and Emissary's default Host (hostname \"*\", no mappingSelector) takes only Mappings with a hostname; add hostname: \"*\""
	case g.Host == "" && !g.HostRegex:
		return "no Host serves it: a Mapping without hostname binds only to Hosts whose mappingSelector its labels meet"
	}
	return fmt.Sprintf("no Host serves it: no Host's hostname matches %q with a mappingSelector its labels meet", g.Host)
}

func hostID(h *ambv3.Host) ambv3.AmbassadorID {
	if h.Spec == nil {
		return nil
	}
	return h.Spec.AmbassadorID
}

// builder accumulates problems, origins and certificates.
type builder struct {
	problems     []Problem
	origins      map[string]originResult // by the name a Mapping's tls gives
	certificates []Certificate
}

func (b *builder) problem(mapping, field, format string, args ...any) {
	b.problems = append(b.problems, Problem{Mapping: mapping, Field: field, Message: fmt.Sprintf(format, args...)})
}

// hostProblems reports what a Host asks for that the edge does not do.
// Its TLS is hostTLS's.
func (b *builder) hostProblems(h *ambv3.Host, ih *host) {
	name := objectName(h.Namespace, h.Name)
	p := func(field, msg string) {
		b.problems = append(b.problems, Problem{Host: name, Field: field, Message: msg})
	}
	switch ih.insecure {
	case actionRoute, actionRedirect, actionReject:
	default:
		p("requestPolicy", fmt.Sprintf("insecure action %q is not Route, Redirect or Reject; the dev edge rejects cleartext requests to this Host", ih.insecure))
		ih.insecure = actionReject
	}
	if h.Spec != nil && h.Spec.RequestPolicy != nil && h.Spec.RequestPolicy.Insecure.AdditionalPort != nil {
		p("requestPolicy", "insecure.additionalPort is not supported by the dev edge, which listens on one port; Emissary would also take cleartext on that port")
	}
}

// dedupeHosts keeps one Host per hostname: Emissary makes one virtual host
// per hostname, and a later Host replaces an earlier one with the same
// hostname (envoy/v3/v3listener.py, V3Chain.add_httphost). The later one
// here is the later by namespace/name.
func (b *builder) dedupeHosts(hosts []*host) []*host {
	byName := map[string]int{}
	var out []*host
	for _, h := range hosts {
		if i, ok := byName[h.hostname]; ok {
			b.problems = append(b.problems, Problem{Host: out[i].name, Field: "hostname", Message: fmt.Sprintf("Host %s has the same hostname %q; Emissary keeps one virtual host per hostname, and the dev edge keeps the later by namespace/name", h.name, h.hostname)})
			out[i] = h
			continue
		}
		byName[h.hostname] = len(out)
		out = append(out, h)
	}
	return out
}

// admit reports whether the edge can route m at all, and reports what it
// cannot do: a load_balancer it rejects, or a regex that Envoy would
// refuse the whole configuration for (the edge leaves out just the
// Mapping). Fields it does not implement are reported and routed without.
func (b *builder) admit(m *ambv3.Mapping) bool {
	name := objectName(m.Namespace, m.Name)
	sp := &m.Spec
	fc := checkFields(m)
	b.problems = append(b.problems, fc.problems...)
	if fc.rejected != "" {
		b.problem(name, "load_balancer", "%s", fc.rejected)
		return false
	}
	match := emissary.MatchOf(sp)
	if match.Deferred != "" {
		return true // emissary.Groups rejects it, and says why
	}
	if sp.PrefixRegex != nil && *sp.PrefixRegex {
		if _, err := emissary.FullMatch(sp.Prefix); err != nil {
			b.problem(name, "prefix", "prefix_regex %q is not a valid RE2 regex (%v); Envoy would refuse the configuration, the dev edge leaves the Mapping out", sp.Prefix, err)
			return false
		}
	}
	_, err := emissary.ValueMatches(match.Headers, true)
	if err == nil {
		_, err = emissary.ValueMatches(match.Query, false)
	}
	if err != nil {
		b.problem(name, "", "%v; Envoy would refuse the configuration, the dev edge leaves the Mapping out", err)
		return false
	}
	return true
}

// finalize is the rest of IRHTTPMappingGroup.finalize, and V3Route: it
// makes the Envoy routes of a group emissary.Groups formed and weighed.
func (b *builder) finalize(eg *emissary.Group, svcs services, ctxs contextIndex, secrets secretIndex) *group {
	g := &group{Group: eg}
	if eg.Builtin != "" {
		g.routes = []*route{builtinRoute(g)}
		return g
	}
	if eg.Redirect != "" || len(eg.Members) == 0 {
		return g
	}
	if eg.Err != nil {
		for _, mem := range eg.Members {
			b.problem(mem.Name, "weight", "%s; Emissary rejects the group (%s), the dev edge routes none of it", strings.TrimPrefix(eg.Err.Error(), emissary.ErrInvalidGroup.Error()+": "), strings.Join(eg.Mappings, ", "))
		}
		return g
	}
	// Flattened group settings: add_request_headers and
	// add_response_headers merge, later Mappings winning (case_sensitive,
	// the labels and query parameters are emissary's). Members of a group
	// have equal route weights, so finalize's sort by route weight keeps
	// the order they were added in.
	var addHeaders, respHeaders map[string]ambv3.AddedHeader
	for _, name := range eg.Mappings {
		i := slices.IndexFunc(eg.Members, func(mem *emissary.Member) bool { return mem.Name == name })
		if i < 0 {
			continue
		}
		sp := &eg.Members[i].Mapping.Spec
		if h := sp.AddRequestHeaders; h != nil {
			if addHeaders == nil {
				addHeaders = map[string]ambv3.AddedHeader{}
			}
			maps.Copy(addHeaders, *h)
		}
		if h := sp.AddResponseHeaders; h != nil {
			if respHeaders == nil {
				respHeaders = map[string]ambv3.AddedHeader{}
			}
			maps.Copy(respHeaders, *h)
		}
	}
	added, respAdded := addedHeaders(addHeaders), addedHeaders(respHeaders)

	// The members come in the order of their Envoy routes, each with the
	// cumulative numerator of its runtime_fraction.
	matches, errs := emissary.RouteMatches(eg)
	for i, mem := range eg.Members {
		sp := &mem.Mapping.Spec
		if errs[i] != nil {
			// Header and query regexes were checked in admit: this is a
			// member's prefix in a prefix_regex group.
			b.problem(mem.Name, "prefix", "%v; the dev edge leaves the Mapping out", errs[i])
			continue
		}
		rt := &route{
			group:     g,
			mapping:   mem.Name,
			numerator: mem.Numerator,
			match:     matches[i],
			rewrite:   "/",
			hostRw:    sp.HostRewrite,
			timeout:   DefaultTimeout,
		}
		// rewrite defaults to "/"; "" turns it off; regex_rewrite turns
		// it off too (irhttpmapping.py).
		if sp.Rewrite != nil {
			rt.rewrite = *sp.Rewrite
		}
		if sp.RegexRewrite != nil {
			rt.rewrite = ""
		}
		if sp.Timeout != nil {
			rt.timeout = sp.Timeout.Duration
		}
		be, problem := svcs.resolve(sp.Service, mem.Mapping.Namespace)
		if problem != "" {
			b.problem(mem.Name, "service", "%s", problem)
		}
		rt.backend = be
		rt.addHeaders, rt.respHeaders = added, respAdded
		rt.cluster = mem.Mapping.Labels[TargetClusterLabel]
		// The Mapping's own tls, not the group's: Emissary makes a
		// cluster per Mapping (irhttpmappinggroup.py,
		// add_cluster_for_mapping, ctx_name=mapping.get("tls")).
		if sp.TLS != "" {
			o, problems := b.origin(sp.TLS, ctxs, secrets)
			for _, msg := range problems {
				b.problem(mem.Name, "tls", "%s", msg)
			}
			rt.origin = o
		}
		g.routes = append(g.routes, rt)
	}
	return g
}

// addedHeaders lists a group's merged headers to add, by name. v3alpha1
// has one form, {value, append}; append is true unless it says false (a
// v2 Mapping's plain string value converts to that form, appending).
func addedHeaders(hs map[string]ambv3.AddedHeader) []AddedHeader {
	var out []AddedHeader
	for _, k := range slices.Sorted(maps.Keys(hs)) {
		h := hs[k]
		out = append(out, AddedHeader{Name: k, Value: h.Value, Append: h.Append == nil || *h.Append})
	}
	return out
}

// TargetClusterLabel names the cluster a Mapping crossmap generated sends
// to (mapper.LabelTargetCluster, repeated here: the edge does not import
// the route role). The proxy counts answers by it.
const TargetClusterLabel = "crossmap.io/target-cluster"

// Route picks the route for r, as Envoy would with draw as the request's
// random value (0 to 99; one per request, shared by every route): the
// virtual host r's Host header selects, then the first of its routes whose
// match holds and whose runtime fraction takes draw. In a weighted group
// that is the member whose cumulative numerator first exceeds draw; draws
// a group's weights leave over fall through to the routes after it.
//
// ok is false when no route matches (Envoy answers 404).
func (t *Table) Route(r *http.Request, draw int) (target *Target, ok bool) {
	if t == nil {
		return nil, false
	}
	req := emissary.RequestOf(r)
	secure := req.Secure
	vhosts := t.vhosts
	if secure {
		// The connection's TLS chain, chosen again by its SNI: the
		// table may have changed since the handshake.
		ch := t.chains.find(r.TLS.ServerName)
		if ch == nil || ch.term.config == nil {
			return nil, false
		}
		vhosts = ch.vhosts
	}
	vh, _ := vhosts.Find(req.Authority)
	// Emissary's listener takes cleartext and TLS (XFP security model,
	// Envoy setting X-Forwarded-Proto from the connection), and writes
	// each route of a virtual host twice: for X-Forwarded-Proto https,
	// and for the rest with the Host's insecure action, which is Route,
	// a redirect to https, or no route at all for Reject
	// (envoy/v3/v3listener.py, compute_http_routes; v3route.py,
	// V3RouteVariants). A rejected request therefore gets Envoy's 404.
	if vh == nil || !secure && vh.insecure == actionReject {
		return nil, false
	}
	for _, rt := range vh.routes {
		if draw >= rt.numerator {
			continue
		}
		n, ok := rt.match.Takes(&req)
		if !ok {
			continue
		}
		target := rt.target(req.Path, n)
		target.Redirect = !secure && vh.insecure == actionRedirect
		return target, true
	}
	return nil, false
}

// target is the Target for a request with path, of which the route's
// match covered the first n bytes.
func (rt *route) target(path string, n int) *Target {
	t := &Target{
		Mapping:         rt.mapping,
		Scheme:          rt.backend.scheme,
		Backend:         rt.backend.key,
		Endpoints:       rt.backend.endpoints,
		Path:            path,
		Host:            rt.hostRw,
		Timeout:         rt.timeout,
		Headers:         rt.addHeaders,
		Origin:          rt.origin,
		Cluster:         rt.cluster,
		ResponseHeaders: rt.respHeaders,
		Builtin:         rt.group.Builtin,
	}
	if rt.origin != nil {
		t.Scheme = "https"
	}
	if rt.rewrite != "" {
		// Envoy's prefix_rewrite replaces what the match covered: the
		// prefix, or the whole path for a path or regex match.
		t.Path, t.Rewritten = rt.rewrite+path[n:], true
	}
	return t
}

func objectName(namespace, name string) string { return namespace + "/" + name }
