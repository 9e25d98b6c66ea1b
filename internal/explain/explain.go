package explain

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/crossmap/crossmap/emissary"
	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
)

// Input is what Explain reads: the route role's last snapshot, and what
// status knows of the routes it computed.
type Input struct {
	// Snapshot is what the route role last read: every Mapping, Host,
	// Service, EndpointSlice and Link health of the cluster.
	Snapshot mapper.RouteSnapshot
	// Cluster is this cluster's name (the controller's --cluster-name),
	// where local backends live.
	Cluster string
	// Identities are, by Link namespace/name, the names the Link's gateway
	// certificate must carry (spec.gateway.identity, defaulted): the SNI
	// of crossmap's routes to it.
	Identities map[string]string
	// Routes are the annotated Mappings' routes as /status has them, by
	// namespace/name.
	Routes map[string]Route
}

// Route is what Explain shows of an annotated Mapping's route.
type Route struct {
	Failover string
	Held     bool
	Backends []mapper.RouteBackend
}

// Answers: what Emissary does with the request.
const (
	// AnswerRouted: a route takes the request (for every draw, or some).
	AnswerRouted = "routed"
	// AnswerNoRoute: no route matches; Envoy answers 404.
	AnswerNoRoute = "no route"
	// AnswerRedirect: a cleartext request to a Host whose insecure action
	// is Redirect gets a 301 to https.
	AnswerRedirect = "redirect to https"
	// AnswerRejected: a cleartext request to a Host whose insecure action
	// is Reject gets Envoy's 404.
	AnswerRejected = "rejected: cleartext"
)

// Reasons a Mapping did not take the request.
const (
	ReasonAmbassadorID   = "AmbassadorID"
	ReasonRejected       = "RejectedByEmissary"
	ReasonShadow         = "Shadow"
	ReasonHostRedirect   = "HostRedirect"
	ReasonInvalidWeights = "InvalidWeights"
	ReasonHostDiffers    = "HostDiffers"
	ReasonNotBound       = "NotBoundToHost"
	ReasonMethodDiffers  = "MethodDiffers"
	ReasonPrefixDiffers  = "PrefixDiffers"
	ReasonHeaderMissing  = "HeaderMissing"
	ReasonHeaderDiffers  = "HeaderDiffers"
	ReasonQueryMissing   = "QueryParameterMissing"
	ReasonQueryDiffers   = "QueryParameterDiffers"
	ReasonEarlierRoute   = "EarlierRouteWon"
	ReasonCleartext      = "CleartextNotRouted"
)

// Explanation is Explain's answer; /explain serves it as JSON and `crossmap
// explain` as a table.
type Explanation struct {
	Request RequestView `json:"request"`
	// AmbassadorID is the Emissary installation explained.
	AmbassadorID []string `json:"ambassadorID"`
	// Host is the Host whose virtual host the request's hostname selects.
	Host HostView `json:"host"`
	// Answer is one of the Answer constants; Summary says it in a line.
	Answer  string `json:"answer"`
	Summary string `json:"summary"`
	// Groups are the Mapping groups that take the request, in Emissary's
	// route order: usually one, which takes every request. A weighted
	// group whose weights add up to less than 100 leaves the other draws
	// to the routes after it.
	Groups []Group `json:"groups"`
	// Unrouted is the percentage of such requests no route takes (404).
	Unrouted int `json:"unrouted"`
	// NotMatched are the other Mappings, in route order, each with the
	// reason it does not take the request.
	NotMatched []Candidate `json:"notMatched"`
}

// HostView is the virtual host that serves the request.
type HostView struct {
	// Name is the Host's namespace/name, or "default-host" when the
	// installation has none.
	Name     string `json:"name"`
	Hostname string `json:"hostname"`
	// Insecure is what a cleartext request gets: Route, Redirect or
	// Reject.
	Insecure string `json:"insecure"`
}

// Group is a Mapping group that takes (some of) the request's draws.
type Group struct {
	// Mappings are the group's Mappings (namespace/name) as Emissary adds
	// them.
	Mappings []string `json:"mappings"`
	// Position is the group's place among the groups of the virtual host,
	// in Emissary's route order, counting from 1; Of is how many there
	// are.
	Position int `json:"position"`
	Of       int `json:"of"`
	// Why says why Emissary picks it: the match that holds, and the
	// earlier groups that do not.
	Why string `json:"why"`
	// Share is the percentage of such requests the group takes.
	Share int `json:"share"`
	// Route is the annotated Mapping whose route this group is, if any,
	// with its failover policy in force and whether a problem holds it.
	Route string `json:"route,omitempty"`
	// Name is how the explanation calls the group: its annotated Mapping
	// when that is a member, else its first Mapping.
	Name     string `json:"name"`
	Failover string `json:"failover,omitempty"`
	Held     bool   `json:"held,omitempty"`
	// DevHeader is set when the group is a dev route: the header and
	// value that select it.
	DevHeader string `json:"devHeader,omitempty"`
	// Error is set when Emissary rejects the group's weights.
	Error    string    `json:"error,omitempty"`
	Backends []Backend `json:"backends"`
	// DevRoutes are the route's dev routes: which header value sends a
	// request to which cluster instead.
	DevRoutes []DevRoute `json:"devRoutes,omitempty"`
}

// Backend is one member of a group: a Mapping and where it sends requests.
type Backend struct {
	Mapping string `json:"mapping"`
	// Owner is mapper.OwnerUser (the annotated Mapping), OwnerCrossmap or
	// OwnerOther.
	Owner string `json:"owner"`
	// Cluster is where the Service's endpoints are: this cluster's name
	// for a local Service, the Link's cluster for a mirror.
	Cluster string `json:"cluster"`
	// Service is the Mapping's service field.
	Service string `json:"service"`
	// Weight is the Mapping's weight field; null when it has none.
	Weight *int `json:"weight"`
	// Share is the percentage of such requests it takes.
	Share int `json:"share"`
	// Healthy is whether the backend can serve: null when crossmap cannot
	// tell (the service is no Service of this cluster). Reason says why
	// not.
	Healthy        *bool  `json:"healthy"`
	Reason         string `json:"reason,omitempty"`
	ReadyEndpoints int    `json:"readyEndpoints"`
	// TLS is the TLS the request goes upstream with; nil for cleartext.
	TLS *TLS `json:"tls,omitempty"`
	// HostRewrite is the Host header sent upstream, when rewritten (the
	// remote gateway's name for the Service).
	HostRewrite string `json:"hostRewrite,omitempty"`
}

// TLS is a backend's TLS origination.
type TLS struct {
	// Context is the TLSContext the Mapping's tls names.
	Context string `json:"tlsContext"`
	// Identity is the name the gateway's certificate must carry, sent as
	// SNI: the Link's spec.gateway.identity. Empty when the backend is no
	// Link's.
	Identity string `json:"identity,omitempty"`
}

// DevRoute is a header value that sends a route's requests to a dev
// cluster.
type DevRoute struct {
	Cluster string `json:"cluster"`
	// Header is "name: value", the header a request carries to take it.
	Header  string `json:"header"`
	Mapping string `json:"mapping"`
	Healthy bool   `json:"healthy"`
	// Selected is true when the explained request carries the header.
	Selected bool `json:"selected"`
}

// Candidate is a Mapping that does not take the request, and why.
type Candidate struct {
	Mapping string `json:"mapping"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// draws are Envoy's runtime draws for runtime_fraction: 0 to 99.
const draws = 100

// route is one Envoy route of the virtual host: a member of a group.
type route struct {
	group  *emissary.Group
	member *emissary.Member
	match  emissary.RouteMatch
	err    error
}

// Explain answers what Emissary, reading in's snapshot, does with r. The
// error wraps ErrBadRequest when r is malformed and ErrNoHost when no Host
// serves its hostname.
func Explain(in Input, r Request) (*Explanation, error) {
	req, view, err := r.parse()
	if err != nil {
		return nil, err
	}
	s := in.Snapshot
	ids := s.AmbassadorID
	if len(ids) == 0 {
		ids = []string{"default"}
	}
	out := &Explanation{Request: view, AmbassadorID: ids, Groups: []Group{}, NotMatched: []Candidate{}}

	groups, rejected := emissary.Groups(emissary.Input{Mappings: s.Mappings, Hosts: s.Hosts, AmbassadorID: ids})
	vh, err := virtualHost(emissary.Hosts(emissary.Input{Hosts: s.Hosts, AmbassadorID: ids}), req.Authority)
	if err != nil {
		return nil, err
	}
	out.Host = HostView{Name: vh.Name, Hostname: vh.Hostname, Insecure: vh.Insecure}

	// The virtual host's routes, in Emissary's route order, as the dev
	// edge builds them.
	var routes []route
	var accepted []*emissary.Group
	for _, g := range groups {
		if !vh.Accepts(g) || g.Redirect != "" || len(g.Members) == 0 {
			continue
		}
		accepted = append(accepted, g)
		matches, errs := emissary.RouteMatches(g)
		for i, mem := range g.Members {
			routes = append(routes, route{group: g, member: mem, match: matches[i], err: errs[i]})
		}
	}

	// Over https the SNI is taken to be the URL's hostname, and the
	// virtual host is chosen among every Host's, as it is for cleartext:
	// Envoy first picks the TLS filter chain by SNI, which for a request
	// whose SNI is its Host header holds the same Host.
	if vh.Insecure != emissary.InsecureRoute && vh.Insecure != emissary.InsecureRedirect {
		// An action Emissary does not know: the dev edge rejects
		// cleartext then, and so does the answer here.
		vh.Insecure = emissary.InsecureReject
	}
	cleartextBlocked := !req.Secure && vh.Insecure != emissary.InsecureRoute
	// Every draw, as Envoy takes it: the first route whose match holds
	// and whose runtime fraction takes the draw.
	counts := map[*emissary.Member]int{}
	matched := map[*emissary.Member]bool{}
	for _, rt := range routes {
		if rt.err != nil {
			continue // Envoy could not compile it: see candidates
		}
		if _, ok := rt.match.Takes(&req); ok {
			matched[rt.member] = true
		}
	}
	if !cleartextBlocked {
		for d := range draws {
			for _, rt := range routes {
				if rt.err == nil && matched[rt.member] && d < rt.member.Numerator && rt.group.Err == nil {
					counts[rt.member]++
					break
				}
			}
		}
	}
	taken := 0
	for _, n := range counts {
		taken += n
	}

	ix := newIndex(in)
	var winners []*emissary.Group
	for pos, g := range accepted {
		share := 0
		for _, mem := range g.Members {
			share += counts[mem]
		}
		if share == 0 {
			continue
		}
		winners = append(winners, g)
		out.Groups = append(out.Groups, ix.group(g, pos+1, len(accepted), share, counts, accepted[:pos], &req))
	}
	switch {
	case cleartextBlocked && vh.Insecure == emissary.InsecureReject:
		out.Answer = AnswerRejected
		out.Unrouted = 100
	case cleartextBlocked:
		out.Answer = AnswerRedirect
	case taken == 0:
		out.Answer = AnswerNoRoute
		out.Unrouted = 100
	default:
		out.Answer = AnswerRouted
		out.Unrouted = draws - taken
	}

	// Every other Mapping, in route order, then those no group holds.
	inGroups := map[string]bool{}
	for _, g := range groups {
		if g.Builtin != "" {
			continue
		}
		for _, name := range g.Mappings {
			inGroups[name] = true
		}
		if slices.Contains(winners, g) && !cleartextBlocked {
			// Its members are the backends; shadows and a host_redirect
			// are still worth a line.
			for _, name := range g.Shadows {
				out.NotMatched = append(out.NotMatched, Candidate{Mapping: name, Reason: ReasonShadow,
					Message: "a shadow Mapping: it gets a copy of the group's requests, and its answers are dropped"})
			}
			continue
		}
		out.NotMatched = append(out.NotMatched, ix.candidates(g, vh, slices.Contains(accepted, g), winners, cleartextBlocked, &req)...)
	}
	for _, rej := range rejected {
		inGroups[rej.Mapping] = true
		out.NotMatched = append(out.NotMatched, Candidate{Mapping: rej.Mapping, Reason: ReasonRejected, Message: rej.Message})
	}
	for _, m := range sortedMappings(s.Mappings) {
		name := m.Namespace + "/" + m.Name
		if !inGroups[name] && !emissary.Served(m.Spec.AmbassadorID, ids) {
			out.NotMatched = append(out.NotMatched, Candidate{Mapping: name, Reason: ReasonAmbassadorID,
				Message: fmt.Sprintf("ambassador_id %s: the installation %s does not serve it", aidText(m.Spec.AmbassadorID), strings.Join(ids, ", "))})
		}
	}
	out.Summary = summary(out)
	return out, nil
}

// virtualHost is the Host whose virtual host Envoy picks for authority:
// one virtual host per Host hostname, a later Host (by namespace/name)
// replacing an earlier one of the same hostname, as the dev edge keeps
// them; Emissary's default Host when the installation has none.
func virtualHost(hosts []emissary.Host, authority string) (emissary.Host, error) {
	if len(hosts) == 0 {
		return emissary.DefaultHost(), nil
	}
	if h, ok := emissary.NewVirtualHosts(hosts, func(h emissary.Host) string { return h.Hostname }).Find(authority); ok {
		return h, nil
	}
	var names []string
	for _, h := range hosts {
		names = append(names, fmt.Sprintf("%s (%s)", h.Name, h.Hostname))
	}
	return emissary.Host{}, fmt.Errorf("%w: no Host's hostname matches %q (Hosts: %s); Envoy answers 404", ErrNoHost, authority, strings.Join(names, ", "))
}

// index looks up what the backends need: Services' ready endpoints, Links
// by cluster and by name.
type index struct {
	in     Input
	ready  map[string]int // by Service namespace/name
	links  map[string]mapper.LinkHealth
	byName map[string]mapper.LinkHealth // by namespace/name
	mirror map[string]string            // Service namespace/name -> Link namespace/name
	known  map[string]bool              // Services of the cluster
}

func newIndex(in Input) *index {
	ix := &index{in: in, ready: map[string]int{}, links: map[string]mapper.LinkHealth{},
		byName: map[string]mapper.LinkHealth{}, mirror: map[string]string{}, known: map[string]bool{}}
	for _, es := range in.Snapshot.Slices {
		key := es.Namespace + "/" + es.Labels[discoveryv1.LabelServiceName]
		for _, ep := range es.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) {
				ix.ready[key]++
			}
		}
	}
	for _, l := range in.Snapshot.Links {
		ix.links[l.Cluster] = l
		ix.byName[l.Namespace+"/"+l.Name] = l
	}
	for _, svc := range in.Snapshot.Services {
		key := svc.Namespace + "/" + svc.Name
		ix.known[key] = true
		if l := svc.Labels; l[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy && l[crossmapv1.LabelRole] == crossmapv1.RoleMirror {
			ix.mirror[key] = l[crossmapv1.LabelLinkNamespace] + "/" + l[crossmapv1.LabelLink]
		}
	}
	return ix
}

// routeOf is the annotated Mapping (namespace/name) whose route m is: m
// itself when annotated, its source for one of crossmap's routes.
func (ix *index) routeOf(m *ambv3.Mapping) string {
	switch l := m.Labels; {
	case l[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy && l[crossmapv1.LabelRole] == mapper.RoleRoute:
		return l[crossmapv1.LabelSourceNamespace] + "/" + l[crossmapv1.LabelSourceName]
	case ingress.Annotated(m.Annotations):
		return m.Namespace + "/" + m.Name
	}
	return ""
}

func (ix *index) owner(m *ambv3.Mapping) string {
	switch l := m.Labels; {
	case l[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy && l[crossmapv1.LabelRole] == mapper.RoleRoute:
		return mapper.OwnerCrossmap
	case ingress.Annotated(m.Annotations):
		return mapper.OwnerUser
	}
	return mapper.OwnerOther
}

// devValue is the value of the dev header a dev route of crossmap's
// matches; "" for any other Mapping.
func (ix *index) devValue(m *ambv3.Mapping) string {
	if ix.owner(m) != mapper.OwnerCrossmap || m.Spec.Weight != nil || ix.in.Snapshot.DevHeader == "" {
		return ""
	}
	return m.Spec.Headers[ix.in.Snapshot.DevHeader]
}

// backend is where member mem sends requests, and whether it can serve.
func (ix *index) backend(g *emissary.Group, mem *emissary.Member, share int) Backend {
	m := mem.Mapping
	sp := &m.Spec
	b := Backend{Mapping: mem.Name, Owner: ix.owner(m), Cluster: cmp.Or(ix.in.Cluster, "local"), Service: sp.Service,
		Weight: mem.Weight, Share: share, HostRewrite: sp.HostRewrite}
	if g.Builtin != "" {
		b.Owner, b.Reason = "emissary", "Emissary answers it itself"
		return b
	}
	ref, err := ingress.ParseService(sp.Service, m.Namespace)
	key := ref.Namespace + "/" + ref.Name
	if err != nil || !ix.known[key] {
		b.Reason = "not a Service of this cluster: crossmap does not know its health"
		if err != nil {
			b.Reason = fmt.Sprintf("%v: crossmap does not know its health", err)
		}
		return b
	}
	b.ReadyEndpoints = ix.ready[key]
	var link *mapper.LinkHealth
	if name, ok := ix.mirror[key]; ok {
		if l, ok := ix.byName[name]; ok {
			link = &l
		}
	}
	if c := m.Labels[mapper.LabelTargetCluster]; c != "" && link == nil {
		if l, ok := ix.links[c]; ok {
			link = &l
		}
	}
	healthy := true
	where := "in this cluster"
	if link != nil {
		b.Cluster, where = link.Cluster, "in cluster "+link.Cluster
	}
	switch {
	case link != nil && link.Down() != "":
		healthy, b.Reason = false, link.Down()
	case b.ReadyEndpoints == 0:
		healthy, b.Reason = false, "no ready endpoints "+where
	}
	b.Healthy = &healthy
	if sp.TLS != "" {
		b.TLS = &TLS{Context: sp.TLS}
		if link != nil && sp.TLS == link.OriginTLS {
			b.TLS.Identity = ix.in.Identities[link.Namespace+"/"+link.Name]
		}
	}
	return b
}

// group explains a group that takes share of the draws.
func (ix *index) group(g *emissary.Group, pos, of, share int, counts map[*emissary.Member]int, earlier []*emissary.Group, req *emissary.Request) Group {
	out := Group{Mappings: slices.Clone(g.Mappings), Position: pos, Of: of, Share: share, Backends: []Backend{}}
	if g.Builtin != "" {
		out.Why = "Emissary's own " + g.Builtin + ", which every Host serves"
	}
	for _, mem := range g.Members {
		out.Backends = append(out.Backends, ix.backend(g, mem, counts[mem]))
		if out.Route == "" {
			out.Route = ix.routeOf(mem.Mapping)
		}
		if v := ix.devValue(mem.Mapping); v != "" {
			out.DevHeader = ix.in.Snapshot.DevHeader + ": " + v
		}
	}
	if g.Err != nil {
		out.Error = g.Err.Error()
	}
	if rt, ok := ix.in.Routes[out.Route]; ok {
		out.Failover, out.Held = rt.Failover, rt.Held
		ns, name, _ := strings.Cut(out.Route, "/")
		for _, b := range rt.Backends {
			if b.Header == "" {
				continue
			}
			header, value, _ := strings.Cut(b.Header, ": ")
			got, has := req.HeaderValue(header)
			out.DevRoutes = append(out.DevRoutes, DevRoute{Cluster: b.Cluster, Header: b.Header,
				Mapping: ns + "/" + mapper.SiblingName(name, b.Cluster, true), Healthy: b.Healthy,
				Selected: has && got == value})
		}
	}
	if out.Why == "" {
		out.Why = why(g, earlier)
	}
	out.Name = ix.groupName(g)
	return out
}

// groupName is the group's annotated Mapping when that is a member, else
// its first Mapping.
func (ix *index) groupName(g *emissary.Group) string {
	for _, mem := range g.Members {
		if ix.owner(mem.Mapping) == mapper.OwnerUser {
			return mem.Name
		}
	}
	return g.Mappings[0]
}

// why says why g takes the request: what of it matches, and that the
// groups before it in route order do not.
func why(g *emissary.Group, earlier []*emissary.Group) string {
	s := "its match holds (" + matchText(g) + ")"
	builtins := 0
	for _, e := range earlier {
		if e.Builtin != "" {
			builtins++
		}
	}
	var probes string
	switch builtins {
	case 0:
	case len(earlier):
		probes = " (Emissary's own probe routes)"
	default:
		probes = fmt.Sprintf(" (%d of them Emissary's own probe routes)", builtins)
	}
	switch len(earlier) {
	case 0:
		return s + "; it is the first route on the Host in Emissary's route order"
	case 1:
		return s + "; the one group before it in Emissary's route order" + probes + " does not take the request"
	}
	return s + fmt.Sprintf("; the %d groups before it in Emissary's route order%s do not take the request", len(earlier), probes)
}

// matchText reads like "prefix /podinfo/, hostname *, header
// x-crossmap-cluster: dev-alice, precedence 10".
func matchText(g *emissary.Group) string {
	sp := &g.First.Spec
	kind := "prefix"
	switch {
	case sp.PrefixRegex != nil && *sp.PrefixRegex:
		kind = "prefix_regex"
	case sp.PrefixExact != nil && *sp.PrefixExact:
		kind = "exact path"
	}
	parts := []string{kind + " " + sp.Prefix}
	for _, h := range g.Match.Headers {
		switch {
		case h.Name == ":authority":
			parts = append(parts, "hostname "+h.Value)
		case h.Name == ":method":
			parts = append(parts, "method "+h.Value)
		case h.Regex:
			parts = append(parts, fmt.Sprintf("header %s matching %s", h.Name, h.Value))
		default:
			parts = append(parts, fmt.Sprintf("header %s: %s", h.Name, h.Value))
		}
	}
	for _, q := range g.Query {
		parts = append(parts, fmt.Sprintf("query %s=%s", q.Name, q.Value))
	}
	if p := emissary.Precedence(sp); p != 0 {
		parts = append(parts, fmt.Sprintf("precedence %d", p))
	}
	return strings.Join(parts, ", ")
}

// candidates says why each Mapping of g, a group that takes none of the
// request, does not take it.
func (ix *index) candidates(g *emissary.Group, vh emissary.Host, accepted bool, winners []*emissary.Group, cleartextBlocked bool, req *emissary.Request) []Candidate {
	var out []Candidate
	add := func(name, reason, format string, args ...any) {
		out = append(out, Candidate{Mapping: name, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	var miss *emissary.Mismatch
	var routeErr error
	if len(g.Members) > 0 {
		matches, errs := emissary.RouteMatches(g)
		// The members share the group's match: its first speaks for
		// them.
		if routeErr = errs[0]; routeErr == nil {
			_, miss = matches[0].Check(req)
		}
	}
	for _, name := range g.Mappings {
		switch {
		case slices.Contains(g.Shadows, name):
			add(name, ReasonShadow, "a shadow Mapping: it gets a copy of its group's requests, and its answers are dropped")
		case g.Redirect != "":
			add(name, ReasonHostRedirect, "a host_redirect Mapping: Emissary answers its requests with a redirect; crossmap explain (like the dev edge) does not follow it")
		case routeErr != nil:
			add(name, ReasonRejected, "%v: Envoy would refuse the configuration", routeErr)
		case miss != nil && miss.Part == "header" && miss.Matcher.Name == ":authority":
			add(name, ReasonHostDiffers, "hostname %s does not match the request's host %s", hostnameOf(g), req.Authority)
		case !accepted:
			add(name, ReasonNotBound, "%s", notBound(g, vh))
		case miss != nil:
			reason, msg := mismatchText(miss, g)
			add(name, reason, "%s", msg)
		case cleartextBlocked:
			add(name, ReasonCleartext, "its match holds, but Host %s %s cleartext requests", vh.Name, map[string]string{emissary.InsecureReject: "rejects", emissary.InsecureRedirect: "redirects to https"}[vh.Insecure])
		case g.Err != nil:
			add(name, ReasonInvalidWeights, "its match holds, but Emissary rejects its group's weights (%v), and the group takes no requests", g.Err)
		default:
			add(name, ReasonEarlierRoute, "%s", ix.earlierWon(g, winners))
		}
	}
	return out
}

func hostnameOf(g *emissary.Group) string {
	for _, h := range g.Match.Headers {
		if h.Name == ":authority" {
			return h.Value
		}
	}
	return "*"
}

// notBound says why Host vh does not take g (emissary.Host.Accepts).
func notBound(g *emissary.Group, vh emissary.Host) string {
	switch {
	case g.Host == "" && !g.HostRegex && !vh.HasSelector:
		return fmt.Sprintf("not bound to Host %s (hostname %s), which serves the request: a Mapping without hostname binds only to Hosts whose mappingSelector its labels meet, and this Host has none", vh.Name, vh.Hostname)
	case vh.HasSelector && !emissary.SelectorMatches(vh.Selector, g.Labels):
		return fmt.Sprintf("not bound to Host %s (hostname %s), which serves the request: its labels do not meet the Host's mappingSelector %s", vh.Name, vh.Hostname, labelsText(vh.Selector))
	}
	return fmt.Sprintf("not bound to Host %s (hostname %s), which serves the request: its hostname %s does not match the Host's", vh.Name, vh.Hostname, hostnameOf(g))
}

func labelsText(l map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// mismatchText names the matcher the request failed.
func mismatchText(miss *emissary.Mismatch, g *emissary.Group) (string, string) {
	switch {
	case miss.Part == "path":
		return ReasonPrefixDiffers, fmt.Sprintf("%s does not match the path %s", strings.SplitN(matchText(g), ", ", 2)[0], miss.Got)
	case miss.Part == "header" && miss.Matcher.Name == ":method":
		return ReasonMethodDiffers, fmt.Sprintf("method %s, not %s", miss.Matcher.Value, miss.Got)
	case miss.Part == "header" && miss.Missing:
		return ReasonHeaderMissing, fmt.Sprintf("wants the header %s, which the request does not have", miss.Matcher)
	case miss.Part == "header":
		return ReasonHeaderDiffers, fmt.Sprintf("wants the header %s, the request has %s: %s", miss.Matcher, miss.Matcher.Name, miss.Got)
	case miss.Missing:
		return ReasonQueryMissing, fmt.Sprintf("wants the query parameter %s, which the request does not have", queryText(miss.Matcher))
	}
	return ReasonQueryDiffers, fmt.Sprintf("wants the query parameter %s, the request has %s=%s", queryText(miss.Matcher), miss.Matcher.Name, miss.Got)
}

func queryText(m *emissary.ValueMatch) string {
	if m.Kind == emissary.ValueRegex {
		return m.Name + " matching " + m.Value
	}
	return m.Name + "=" + m.Value
}

// earlierWon says which group took the request before g, and what puts it
// first in Emissary's route order (_route_weight: precedence, prefix
// length, header and query parameter lengths).
func (ix *index) earlierWon(g *emissary.Group, winners []*emissary.Group) string {
	if len(winners) == 0 {
		return "its match holds, but its routes take none of the draws"
	}
	w := winners[0]
	a, b := weightOf(w), weightOf(g)
	var because string
	switch {
	case a[0] != b[0]:
		because = fmt.Sprintf("precedence %d beats %d", a[0], b[0])
	case a[1] != b[1]:
		because = fmt.Sprintf("its prefix is longer (%d characters against %d)", a[1], b[1])
	case a[2] != b[2]:
		because = fmt.Sprintf("its header matches are longer (%d characters against %d)", a[2], b[2])
	case a[3] != b[3]:
		because = fmt.Sprintf("its query parameter matches are longer (%d characters against %d)", a[3], b[3])
	default:
		because = "Emissary's tie-break on the prefix and match names puts it first"
	}
	return fmt.Sprintf("its match holds, but the group of %s comes earlier in Emissary's route order and takes the request: %s", ix.groupName(w), because)
}

// weightOf is the numeric part of a group's route weight
// (emissary.RouteWeightOf): precedence, prefix length, header length,
// query parameter length.
func weightOf(g *emissary.Group) [4]int {
	sp := &g.First.Spec
	w := [4]int{emissary.Precedence(sp), utf8.RuneCountInString(sp.Prefix)}
	for _, h := range g.Match.Headers {
		w[2] += h.Length()
	}
	for _, q := range g.Match.Query {
		w[3] += q.Length()
	}
	return w
}

func aidText(aid ambv3.AmbassadorID) string {
	if len(aid) == 0 {
		return "default"
	}
	return "[" + strings.Join(aid, ", ") + "]"
}

func sortedMappings(ms []*ambv3.Mapping) []*ambv3.Mapping {
	out := slices.DeleteFunc(slices.Clone(ms), func(m *ambv3.Mapping) bool { return m == nil })
	slices.SortFunc(out, func(a, b *ambv3.Mapping) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// summary reads like "GET http://podinfo.example.com/podinfo/: routed by
// the group of test/podinfo (3rd of 5 on Host test/edge): west 50%, east
// 50%".
func summary(e *Explanation) string {
	r := e.Request
	target := fmt.Sprintf("%s %s://%s%s", r.Method, r.Scheme, r.Host, r.Path)
	if r.Query != "" {
		target += "?" + r.Query
	}
	switch e.Answer {
	case AnswerRejected:
		return fmt.Sprintf("%s: Host %s rejects cleartext requests (Envoy answers 404); send it over https", target, e.Host.Name)
	case AnswerRedirect:
		return fmt.Sprintf("%s: Host %s redirects cleartext requests to https (301)", target, e.Host.Name)
	case AnswerNoRoute:
		return fmt.Sprintf("%s: no route of Host %s matches; Envoy answers 404", target, e.Host.Name)
	}
	var parts []string
	for _, g := range e.Groups {
		var bs []string
		for _, b := range g.Backends {
			if b.Share > 0 {
				bs = append(bs, fmt.Sprintf("%s %d%%", b.Cluster, b.Share))
			}
		}
		parts = append(parts, fmt.Sprintf("the group of %s (%d of %d on Host %s): %s", g.Name, g.Position, g.Of, e.Host.Name, strings.Join(bs, ", ")))
	}
	s := target + ": " + strings.Join(parts, "; then ")
	if e.Unrouted > 0 {
		s += fmt.Sprintf("; %d%% match no route (404)", e.Unrouted)
	}
	return s
}
