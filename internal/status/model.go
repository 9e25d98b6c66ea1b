package status

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/crossmap/crossmap/internal/explain"
	"github.com/crossmap/crossmap/mapper"
)

// Link is what the status API shows of one Link.
type Link struct {
	Namespace        string    `json:"namespace"`
	Name             string    `json:"name"`
	Cluster          string    `json:"cluster"`
	Mode             string    `json:"mode"`
	RemoteReachable  bool      `json:"remoteReachable"`
	GatewayAlive     bool      `json:"gatewayAlive"`
	GatewayProbed    bool      `json:"gatewayProbed"`
	ProbeLatency     string    `json:"probeLatency,omitempty"`
	LastError        string    `json:"lastError,omitempty"`
	GatewayAddresses []string  `json:"gatewayAddresses,omitempty"`
	MirroredServices []string  `json:"mirroredServices"`
	LastSync         time.Time `json:"lastSync,omitzero"`
	// TLS is the state of mutual TLS toward the Link's gateway; nil in
	// flat mode, where there is no gateway.
	TLS *LinkTLS `json:"tls,omitempty"`
	// Drill is the Link's drill, active or the last one; nil without one.
	Drill *LinkDrill `json:"drill,omitempty"`
}

// LinkDrill is what the status API shows of a Link's drill (its
// spec.drill): while Active, the cluster is drained for routing.
type LinkDrill struct {
	Active    bool      `json:"active"`
	By        string    `json:"by"`
	StartedAt time.Time `json:"startedAt"`
	Until     time.Time `json:"until"`
	// Ended is "expired" or "stopped" once the drill is over.
	Ended     string    `json:"ended,omitempty"`
	StoppedAt time.Time `json:"stoppedAt,omitzero"`
	StoppedBy string    `json:"stoppedBy,omitempty"`
}

// LinkTLS is what the status API shows of mutual TLS toward one Link's
// gateway.
type LinkTLS struct {
	// Mode is "mutual", or "cleartext" when crossmap runs with
	// --insecure-cleartext.
	Mode string `json:"mode"`
	// Identity is the name the gateway's certificate must carry.
	Identity string `json:"identity,omitempty"`
	// Verified is true while the last probe's handshake succeeded.
	Verified bool `json:"verified"`
	// Reason is the last handshake's verdict: HandshakeSucceeded, or why it
	// failed (UnknownCA, CertificateExpired, IdentityMismatch, ...).
	Reason string `json:"reason,omitempty"`
	// LastError is the last handshake failure, kept after a recovery.
	LastError   string    `json:"lastError,omitempty"`
	LastErrorAt time.Time `json:"lastErrorAt,omitzero"`
	// GatewayCertExpiry is when the certificate the gateway presented
	// expires; ClientCertExpiry when ours does.
	GatewayCertExpiry time.Time `json:"gatewayCertExpiry,omitzero"`
	ClientCertExpiry  time.Time `json:"clientCertExpiry,omitzero"`
}

// Certificate is one certificate crossmap issued in this cluster.
type Certificate struct {
	// Secret is the namespace/name of the Secret holding it.
	Secret   string    `json:"secret"`
	Usage    string    `json:"usage"`
	Identity string    `json:"identity"`
	NotAfter time.Time `json:"notAfter"`
	// RenewAt is when crossmap replaces it.
	RenewAt time.Time `json:"renewAt"`
}

// Trust is the state of this cluster's side of cross-cluster mTLS.
type Trust struct {
	// Mode is "mutual" or "cleartext".
	Mode string `json:"mode"`
	// TrustAnchor is the namespace/name of the trust anchor Secret, and
	// TrustAnchorExpiry when its CA certificate expires.
	TrustAnchor       string        `json:"trustAnchor,omitempty"`
	TrustAnchorExpiry time.Time     `json:"trustAnchorExpiry,omitzero"`
	Certificates      []Certificate `json:"certificates"`
}

// Key is the Link's namespace/name.
func (l Link) Key() string { return l.Namespace + "/" + l.Name }

// Service is what the status API shows of one mirrored Service.
type Service struct {
	Namespace string `json:"namespace"`
	// Name is the mirror's name, <source name>-<cluster>.
	Name string `json:"name"`
	// Link is the namespace/name of the Link that owns the mirror.
	Link    string `json:"link"`
	Cluster string `json:"cluster"`
	// Source is the namespace/name of the Service in the remote cluster.
	Source string `json:"source"`
	Mode   string `json:"mode"`
	// Endpoints and ReadyEndpoints count the mirror's endpoints.
	Endpoints      int  `json:"endpoints"`
	ReadyEndpoints int  `json:"readyEndpoints"`
	Ready          bool `json:"ready"`
	// Lag is how long the last change of the mirror took from the remote
	// change reaching crossmap to the mirror being written.
	Lag      string    `json:"lag,omitempty"`
	LastSync time.Time `json:"lastSync,omitzero"`
}

// Key is the mirror's namespace/name.
func (s Service) Key() string { return s.Namespace + "/" + s.Name }

// Problem is a mapper.Problem with the part of crossmap that found it.
type Problem struct {
	Source string `json:"source"`
	mapper.Problem
	Since time.Time `json:"since"`
}

// Route is what the status API shows of one annotated Mapping: what
// crossmap configures (each backend's configured and effective weight, and
// why they differ) and what is in force (the Mapping's Emissary group as
// the Mappings that exist form it, whoever wrote them).
type Route struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Failover is the failover policy in force.
	Failover string `json:"failover"`
	// Held is true while a problem keeps the last good routes in place;
	// HeldReason is that problem.
	Held       bool                  `json:"held"`
	HeldReason string                `json:"heldReason,omitempty"`
	Backends   []mapper.RouteBackend `json:"backends"`
	// Group is the Emissary group in force, every member with its share of
	// the requests; absent when Emissary puts the Mapping in no group.
	Group *mapper.RouteGroup `json:"group,omitempty"`
}

// Key is the Route's namespace/name.
func (r Route) Key() string { return r.Namespace + "/" + r.Name }

// View is a consistent copy of the whole model.
type View struct {
	Links    []Link    `json:"links"`
	Services []Service `json:"services"`
	Routes   []Route   `json:"routes"`
	Problems []Problem `json:"problems"`
	Trust    Trust     `json:"trust"`
	// Exports and Imports are the Multi-Cluster Services API's
	// ServiceExports of this cluster and the ServiceImports crossmap wrote.
	Exports []Export `json:"exports"`
	Imports []Import `json:"imports"`
}

// Model is the reconcilers' shared record of what crossmap is doing. It is
// safe for concurrent use.
type Model struct {
	mu       sync.RWMutex
	links    map[string]Link
	services map[string][]Service // by Link key
	routes   map[string]Route
	problems map[string][]Problem
	trust    Trust
	// routing is what /explain reads (SetRouting).
	routing *explain.Input
	exports map[string]Export
	imports map[string]Import
}

// NewModel returns an empty model.
func NewModel() *Model {
	return &Model{links: map[string]Link{}, services: map[string][]Service{}, routes: map[string]Route{}, problems: map[string][]Problem{},
		exports: map[string]Export{}, imports: map[string]Import{}}
}

// SetLink records l, replacing what was known of the same Link.
func (m *Model) SetLink(l Link) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.links[l.Key()] = l
}

// UpdateLink changes the Link key in place with update, if the model
// knows it: a writer of a few fields (the gateway probe, after every
// round) leaves the others as their writers left them.
func (m *Model) UpdateLink(key string, update func(*Link)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := m.links[key]; ok {
		update(&l)
		m.links[key] = l
	}
}

// DeleteLink forgets a Link and its mirrors.
func (m *Model) DeleteLink(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.links, key)
	delete(m.services, key)
}

// SetTrust records the state of this cluster's certificates.
func (m *Model) SetTrust(t Trust) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t.Certificates = slices.Clone(t.Certificates)
	m.trust = t
}

// SetServices replaces the mirrors of the Link linkKey.
func (m *Model) SetServices(linkKey string, svcs []Service) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.services[linkKey] = slices.Clone(svcs)
}

// Services returns the mirrors of the Link linkKey.
func (m *Model) Services(linkKey string) []Service {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.services[linkKey])
}

// SetRoutes replaces every route with routes.
func (m *Model) SetRoutes(routes []Route) {
	next := make(map[string]Route, len(routes))
	for _, r := range routes {
		next[r.Key()] = r
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.routes = next
}

// Route returns the route of the annotated Mapping key, if any.
func (m *Model) Route(key string) (Route, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.routes[key]
	return r, ok
}

// SetProblems replaces the problems found by source and returns those that
// are new and those that went away, so that the caller reports each change
// once instead of on every reconcile.
func (m *Model) SetProblems(source string, found []mapper.Problem, now time.Time) (added, resolved []mapper.Problem) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := map[mapper.Problem]time.Time{}
	for _, p := range m.problems[source] {
		old[p.Problem] = p.Since
	}
	next := make([]Problem, 0, len(found))
	seen := map[mapper.Problem]bool{}
	for _, p := range found {
		if seen[p] {
			continue
		}
		seen[p] = true
		since, ok := old[p]
		if !ok {
			since = now
			added = append(added, p)
		}
		next = append(next, Problem{Source: source, Problem: p, Since: since})
	}
	for p := range old {
		if !seen[p] {
			resolved = append(resolved, p)
		}
	}
	slices.SortFunc(resolved, compareProblems)
	if len(next) == 0 {
		delete(m.problems, source)
	} else {
		m.problems[source] = next
	}
	return added, resolved
}

// View returns a copy of the model, sorted for stable output.
func (m *Model) View() View {
	m.mu.RLock()
	defer m.mu.RUnlock()
	v := View{Links: []Link{}, Services: []Service{}, Routes: []Route{}, Problems: []Problem{}, Trust: m.trust}
	v.Trust.Certificates = append([]Certificate{}, m.trust.Certificates...)
	for _, k := range slices.Sorted(maps.Keys(m.links)) {
		l := m.links[k]
		l.MirroredServices = slices.Clone(l.MirroredServices)
		l.GatewayAddresses = slices.Clone(l.GatewayAddresses)
		if l.TLS != nil {
			t := *l.TLS
			l.TLS = &t
		}
		if l.Drill != nil {
			d := *l.Drill
			l.Drill = &d
		}
		v.Links = append(v.Links, l)
	}
	for _, k := range slices.Sorted(maps.Keys(m.services)) {
		v.Services = append(v.Services, m.services[k]...)
	}
	slices.SortFunc(v.Services, func(a, b Service) int { return cmp.Compare(a.Key(), b.Key()) })
	for _, k := range slices.Sorted(maps.Keys(m.routes)) {
		r := m.routes[k]
		r.Backends = slices.Clone(r.Backends)
		v.Routes = append(v.Routes, r)
	}
	for _, k := range slices.Sorted(maps.Keys(m.problems)) {
		v.Problems = append(v.Problems, m.problems[k]...)
	}
	m.mcsView(&v)
	return v
}

func compareProblems(a, b mapper.Problem) int {
	return cmp.Or(cmp.Compare(a.Object.String(), b.Object.String()), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Message, b.Message))
}
