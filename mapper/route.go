package mapper

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/crossmap/crossmap/emissary"
	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// Reasons of route Problems.
const (
	ReasonInvalidAnnotation    = "InvalidAnnotation"
	ReasonInvalidService       = "InvalidService"
	ReasonNotKubernetesService = "NotKubernetesService"
	ReasonUnknownCluster       = "UnknownCluster"
	ReasonNotExported          = "NotExported"
	ReasonPortMismatch         = "PortMismatch"
	ReasonInvalidWeights       = "InvalidWeights"
	ReasonUnsupportedMapping   = "UnsupportedMapping"
	ReasonHostBinding          = "HostBinding"
	ReasonNameCollision        = "NameCollision"
	ReasonAmbiguousGroup       = "AmbiguousGroup"
	ReasonSharedGroup          = "SharedGroup"
)

// RoleRoute marks the objects the route role writes.
const RoleRoute = "route"

// LabelTargetCluster names the remote cluster a generated route sends to.
const LabelTargetCluster = "crossmap.io/target-cluster"

// LinkHealth is what the route translation knows of one Link.
type LinkHealth struct {
	Namespace, Name string
	Cluster         string
	Mode            crossmapv1.Mode
	// GatewayAlive is false while the Link's gateway fails its probe.
	GatewayAlive bool
	// Drained is true while a drill drains the cluster: its backends are
	// unhealthy, as if its gateway had died, in either mode.
	Drained bool
	// OriginTLS names the TLSContext that generated Mappings to this
	// cluster's gateway originate mutual TLS with; empty for cleartext.
	OriginTLS string
}

// RouteSnapshot is the local cluster as the route role sees it.
type RouteSnapshot struct {
	// Mappings are all Mappings in the cluster, crossmap's own included:
	// the annotated ones are the sources, and all of them matter for
	// Emissary's weighted groups.
	Mappings []*ambv3.Mapping
	// Hosts decide which Mappings bind where.
	Hosts []*ambv3.Host
	// Services are the local Services, mirrors included.
	Services []*corev1.Service
	// Slices are the local EndpointSlices: ready endpoints are health.
	Slices []*discoveryv1.EndpointSlice
	// Links are this cluster's Links.
	Links []LinkHealth
	// AmbassadorID is the Emissary installation crossmap routes for: only
	// Mappings that installation serves are sources.
	AmbassadorID []string
	// DevHeader is the request header that selects a dev route.
	DevHeader string
	// ServedByHeader is the response header dev routes add, naming their
	// cluster (ingress.ServedBy); empty for none.
	ServedByHeader string
	// TrafficSplit is the default for Mappings that do not say.
	TrafficSplit bool
	// TrafficSplitVersion is ingress.TrafficSplitV1alpha2 or V1alpha1.
	TrafficSplitVersion string
}

// RouteBackend is one backend of a route, for the status API.
type RouteBackend struct {
	// Cluster is empty for the local backend.
	Cluster string `json:"cluster,omitempty"`
	Service string `json:"service"`
	// Configured is the weight the annotation asks for (the local backend's
	// is what the others leave).
	Configured int `json:"configured"`
	// Effective is the weight written now.
	Effective int  `json:"effective"`
	Healthy   bool `json:"healthy"`
	// Reason explains an Effective that differs from Configured.
	Reason string `json:"reason,omitempty"`
	// Header is set on dev routes: the request header that selects them.
	Header string `json:"header,omitempty"`
}

// Owners of the members of a RouteGroup.
const (
	OwnerUser     = "user"     // the annotated Mapping itself: the local backend
	OwnerCrossmap = "crossmap" // a route crossmap generated for it
	OwnerOther    = "other"    // anybody else's Mapping
)

// GroupMember is one Mapping of an annotated Mapping's Emissary group, as
// Emissary reads the Mappings that exist now (emissary.Groups).
type GroupMember struct {
	// Mapping is namespace/name.
	Mapping string `json:"mapping"`
	// Owner is OwnerUser, OwnerCrossmap or OwnerOther.
	Owner string `json:"owner"`
	// Cluster is the target cluster of crossmap's routes.
	Cluster string `json:"cluster,omitempty"`
	// Service is the Mapping's service field.
	Service string `json:"service"`
	// Weight is the Mapping's weight field; null when it has none.
	Weight *int `json:"weight"`
	// Share is its share of the group's requests now, in percent.
	Share int `json:"share"`
	// Configured is the share crossmap configured for the user's Mapping
	// and crossmap's routes (what Backends says); unset for others' and
	// while the route is held.
	Configured *int `json:"configured,omitempty"`
	// Reason explains a Share that differs from Configured.
	Reason string `json:"reason,omitempty"`
}

// RouteGroup is the Emissary group an annotated Mapping is in, as the
// Mappings that exist now form it: every member, in the order of their
// Envoy routes.
type RouteGroup struct {
	Members []GroupMember `json:"members"`
	// Error is set when Emissary rejects the group's weights; the shares
	// are then all 0 here (see emissary.Shares).
	Error string `json:"error,omitempty"`
}

// Route is the result of translating one annotated Mapping.
type Route struct {
	Source   ObjectRef
	Objects  []Object
	Problems []Problem
	// Backends are what crossmap configures: per backend the weight the
	// annotation asks for and the one written now.
	Backends []RouteBackend
	// Group is what is in force: the Mapping's Emissary group as it stands,
	// whoever wrote its members. Nil when Emissary puts the Mapping in no
	// group (it rejects it, or the installation does not serve it).
	Group *RouteGroup
	// Failover is the failover policy in force: the annotation's, or, for a
	// held route, the one the routes kept in place were written with.
	Failover string
	// Held is true when the annotated Mapping has a problem: the caller
	// keeps whatever was generated for it before, so a typo never takes
	// traffic away from a working route.
	Held bool
	// HeldReason is the problem that holds the route.
	HeldReason string
}

// RouteOwned reports whether o, an object labelled by RouteSelector, is the
// business of the crossmap that sees snapshot s. Several crossmaps may serve
// different Emissary installations (ambassador_id) in one cluster, so it is
// when its source Mapping is served by s.AmbassadorID, or when its source is
// gone and (for a Mapping) it is itself served by s.AmbassadorID: an orphan
// to prune.
func RouteOwned(o Object, s RouteSnapshot) bool {
	l := o.GetLabels()
	if l[crossmapv1.LabelManagedBy] != crossmapv1.ManagedBy || l[crossmapv1.LabelRole] != RoleRoute {
		return false
	}
	ns, name := l[crossmapv1.LabelSourceNamespace], l[crossmapv1.LabelSourceName]
	for _, m := range s.Mappings {
		if m.Namespace == ns && m.Name == name {
			return emissary.Served(m.Spec.AmbassadorID, s.AmbassadorID)
		}
	}
	if m, ok := o.(*ambv3.Mapping); ok {
		return emissary.Served(m.Spec.AmbassadorID, s.AmbassadorID)
	}
	return true
}

// RouteSelector selects every object the route role owns.
func RouteSelector() map[string]string {
	return map[string]string{
		crossmapv1.LabelManagedBy: crossmapv1.ManagedBy,
		crossmapv1.LabelRole:      RoleRoute,
	}
}

// Routes translates every annotated Mapping into its sibling Mappings (one
// per remote backend of the split), dev routes and, when asked, a
// TrafficSplit. A caller that keeps held routes (Route.Held) uses
// TranslateRoutes instead.
func Routes(s RouteSnapshot) []Route {
	return TranslateRoutes(s).Routes
}

// RouteTranslation is the route translation of one snapshot: the Routes of
// its annotated Mappings, and what each held one keeps (HeldRoute). Both
// read one index of the snapshot (its Services, ready endpoints, Links and
// Emissary groups), built once by TranslateRoutes.
type RouteTranslation struct {
	Routes []Route

	ix *routeIndex
}

// TranslateRoutes translates s as Routes does, and keeps the snapshot's
// index for HeldRoute.
func TranslateRoutes(s RouteSnapshot) *RouteTranslation {
	ix := newRouteIndex(s)
	return &RouteTranslation{Routes: ix.routes(), ix: ix}
}

// routes translates every annotated Mapping of the index's snapshot.
func (ix *routeIndex) routes() []Route {
	s := ix.s
	var out []Route
	sources := slices.Clone(s.Mappings)
	slices.SortFunc(sources, compareObjects)
	splitOwners := map[string]string{}
	names := map[Key]string{}
	for _, m := range sources {
		if m.Labels[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy || !ingress.Annotated(m.Annotations) ||
			!emissary.Served(m.Spec.AmbassadorID, s.AmbassadorID) {
			continue
		}
		r := ix.route(m)
		src := r.Source.Namespace + "/" + r.Source.Name
		// Two Mappings may route to one Service; only the first gets the
		// TrafficSplit, since SMI leaves two splits of one apex undefined.
		for i, o := range r.Objects {
			if o.GetObjectKind().GroupVersionKind().Kind != "TrafficSplit" {
				continue
			}
			key := o.GetNamespace() + "/" + o.GetName()
			if owner, ok := splitOwners[key]; ok {
				r.Problems = append(r.Problems, Problem{Reason: ReasonUnsupportedMapping, Object: r.Source,
					Message: fmt.Sprintf("Mapping %s asks for a TrafficSplit of Service %s, which Mapping %s already has; only one is written", src, key, owner)})
				r.Objects = slices.Delete(r.Objects, i, i+1)
			}
			break
		}
		// Generated names join a Mapping's name and a cluster's with "-",
		// and both may contain "-": two objects, of one route or of two,
		// can ask for one name. The first (by namespace/name) keeps it.
		mine := map[Key]bool{}
		for _, o := range r.Objects {
			k := KeyOf(o)
			owner, taken := names[k]
			if mine[k] {
				owner, taken = src, true
			}
			if taken {
				r.Problems = append(r.Problems, Problem{Reason: ReasonNameCollision, Object: r.Source,
					Message: fmt.Sprintf("Mapping %s would generate %s, which %s also generates; rename a Mapping or a cluster; routes are left as they were", src, k, owner)})
				r.Objects, r.Held, r.Backends = nil, true, nil
				break
			}
			mine[k] = true
		}
		if r.Held {
			// A held route keeps what it generated before: those names
			// stay taken.
			for _, g := range ix.generatedBy(r.Source) {
				names[KeyOf(g)] = src
			}
		}
		for _, o := range r.Objects {
			names[KeyOf(o)] = src
			if o.GetObjectKind().GroupVersionKind().Kind == "TrafficSplit" {
				splitOwners[o.GetNamespace()+"/"+o.GetName()] = src
			}
		}
		ix.inForce(m, &r)
		out = append(out, r)
	}
	return out
}

type routeIndex struct {
	s        RouteSnapshot
	services map[string]*corev1.Service
	ready    map[string]int
	links    map[string][]LinkHealth
	// groups caches the Emissary groups of the snapshot, by member.
	groups map[*ambv3.Mapping][]*emissary.Group
}

func newRouteIndex(s RouteSnapshot) *routeIndex {
	ix := &routeIndex{s: s, services: map[string]*corev1.Service{}, ready: map[string]int{}, links: map[string][]LinkHealth{}}
	for _, svc := range s.Services {
		ix.services[svc.Namespace+"/"+svc.Name] = svc
	}
	for _, es := range s.Slices {
		key := es.Namespace + "/" + es.Labels[discoveryv1.LabelServiceName]
		for _, ep := range es.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) {
				ix.ready[key]++
			}
		}
	}
	for _, l := range s.Links {
		ix.links[l.Cluster] = append(ix.links[l.Cluster], l)
	}
	return ix
}

func (ix *routeIndex) route(m *ambv3.Mapping) (r Route) {
	r = Route{Source: ObjectRef{Kind: "Mapping", Namespace: m.Namespace, Name: m.Name}}
	problem := func(reason, format string, args ...any) {
		r.Problems = append(r.Problems, Problem{Reason: reason, Object: r.Source, Message: fmt.Sprintf(format, args...)})
	}
	// Every early return below is bad input: the route is held at what was
	// generated before. The one problem that is not held (a weighted group
	// that overflows because of other Mappings) clears this itself.
	held := true
	defer func() { r.Held = held && len(r.Problems) > 0 }()

	if errs := validation.IsValidLabelValue(m.Name); len(errs) > 0 {
		problem(ReasonNameTooLong, "Mapping %s/%s: crossmap records the Mapping's name in a label, and %s; rename the Mapping to route it across clusters", m.Namespace, m.Name, errs[0])
		return r
	}
	ann, err := ingress.ParseRouteAnnotations(m.Annotations)
	if err != nil {
		problem(ReasonInvalidAnnotation, "Mapping %s/%s: %v", m.Namespace, m.Name, err)
		return r
	}
	r.Failover = string(ann.Failover)
	if m.Spec.Shadow != nil && *m.Spec.Shadow || m.Spec.HostRedirect != nil && *m.Spec.HostRedirect {
		problem(ReasonUnsupportedMapping, "Mapping %s/%s is a shadow or host_redirect Mapping; crossmap routes only Mappings that proxy to a service", m.Namespace, m.Name)
		return r
	}
	ref, err := ingress.ParseService(m.Spec.Service, m.Namespace)
	switch {
	case errors.Is(err, ingress.ErrNotKubernetesService):
		problem(ReasonNotKubernetesService, "Mapping %s/%s: %v; crossmap can only mirror Kubernetes Services", m.Namespace, m.Name, err)
		return r
	case err != nil:
		problem(ReasonInvalidService, "Mapping %s/%s: %v", m.Namespace, m.Name, err)
		return r
	}
	local, ok := ix.services[ref.Namespace+"/"+ref.Name]
	if !ok {
		problem(ReasonNotKubernetesService, "Mapping %s/%s: service %q names no Service %s/%s in this cluster", m.Namespace, m.Name, m.Spec.Service, ref.Namespace, ref.Name)
		return r
	}
	if !hasPort(local, ref.Port) {
		problem(ReasonPortMismatch, "Mapping %s/%s: Service %s/%s has no port %d (it has %s)", m.Namespace, m.Name, ref.Namespace, ref.Name, ref.Port, portList(local))
		return r
	}
	if m.Spec.Weight != nil {
		problem(ReasonInvalidWeights, "Mapping %s/%s sets weight %d; remove it: with crossmap.io/split the local backend keeps what the remote clusters do not take", m.Namespace, m.Name, *m.Spec.Weight)
		return r
	}

	// Every cluster the annotations name must be linked and export the
	// Service on the same port.
	type target struct {
		link   LinkHealth
		mirror *corev1.Service
	}
	targets := map[string]target{}
	clusters := make([]string, 0, len(ann.Split)+len(ann.DevRoutes))
	for _, cw := range ann.Split {
		clusters = append(clusters, cw.Cluster)
	}
	clusters = append(clusters, ann.DevRoutes...)
	// Priority tiers may name clusters the split gives no weight: they
	// get a route too, with weight 0 until their tier is in force.
	asked := slices.Clone(ann.Split)
	for _, tier := range ann.Priority {
		for _, c := range tier {
			if c != ingress.LocalTier && !slices.ContainsFunc(asked, func(cw ingress.ClusterWeight) bool { return cw.Cluster == c }) {
				asked = append(asked, ingress.ClusterWeight{Cluster: c})
				clusters = append(clusters, c)
			}
		}
	}
	for _, c := range clusters {
		if _, done := targets[c]; done {
			continue
		}
		links, ok := ix.links[c]
		if !ok {
			problem(ReasonUnknownCluster, "Mapping %s/%s: no Link has clusterName %q (linked: %s)", m.Namespace, m.Name, c, ix.linkedClusters())
			continue
		}
		// Two Links may name one cluster; the mirror says which one it
		// belongs to.
		mirror, ok := ix.services[ref.Namespace+"/"+MirrorName(ref.Name, c)]
		i := slices.IndexFunc(links, func(l LinkHealth) bool { return ok && isMirrorOf(mirror, l, ref) })
		if i < 0 {
			problem(ReasonNotExported, "Mapping %s/%s: cluster %q does not export Service %s/%s (no mirror %s/%s here); label it %s=true there", m.Namespace, m.Name, c, ref.Namespace, ref.Name, ref.Namespace, MirrorName(ref.Name, c), crossmapv1.ExportLabel)
			continue
		}
		if !hasPort(mirror, ref.Port) {
			problem(ReasonPortMismatch, "Mapping %s/%s: Service %s/%s in cluster %q has no port %d (it has %s)", m.Namespace, m.Name, ref.Namespace, ref.Name, c, ref.Port, portList(mirror))
			continue
		}
		targets[c] = target{link: links[i], mirror: mirror}
	}
	if len(r.Problems) > 0 {
		return r
	}

	// Emissary rejects a weighted group whose weights exceed 100 (and then
	// routes it with wrong weights, losing some of its traffic), so
	// the other members of the group the siblings join count too.
	others := ix.groupOthers(m)
	for _, o := range others {
		if o.Labels[crossmapv1.LabelManagedBy] != crossmapv1.ManagedBy && ingress.Annotated(o.Annotations) &&
			emissary.Served(o.Spec.AmbassadorID, ix.s.AmbassadorID) && compareObjects(o, m) < 0 {
			// Both would split the one group's remainder and leave their
			// local backends nothing.
			problem(ReasonAmbiguousGroup, "Mapping %s/%s and the annotated Mapping %s/%s are in one Emissary group (same method, prefix, headers, query parameters and precedence); crossmap splits a group once, for the first of them, so annotate only one", m.Namespace, m.Name, o.Namespace, o.Name)
			// Not held: this Mapping's siblings would take the first
			// one's remainder, so they go.
			held = false
			return r
		}
	}
	budget := 100
	for _, o := range others {
		if o.Spec.Weight != nil {
			budget -= *o.Spec.Weight
		}
	}
	configured := 0
	for _, cw := range asked {
		configured += cw.Weight
	}
	split := slices.Clone(asked)
	if configured > budget {
		if budget < 0 {
			problem(ReasonInvalidWeights, "Mapping %s/%s: other Mappings in its Emissary group (%s) already take %d%%, more than 100%%, which Emissary rejects; routes are left as they were", m.Namespace, m.Name, mappingNames(others), 100-budget)
			return r
		}
		// Keeping the old weights would leave a group Emissary rejects and
		// routes with wrong weights, losing part of its traffic. Scale the
		// split into what is left instead, and say so.
		// The local backend's configured share (what the split leaves of
		// 100) is scaled with the remotes', so every backend keeps its
		// proportion.
		scaled := largestRemainder(budget, append(weightsOf(split), 100-configured))
		problem(ReasonInvalidWeights, "Mapping %s/%s: the split takes %d%%, but other Mappings in its Emissary group (%s) take %d%%, and Emissary rejects a group above 100%%; the split is scaled down to %d%% until that is fixed", m.Namespace, m.Name, configured, mappingNames(others), 100-budget, budget)
		held = false
		configured = 0
		for i := range split {
			split[i].Weight = scaled[i]
			configured += scaled[i]
		}
	}

	// Health: ready endpoints on both sides, and the gateway.
	localKey := ref.Namespace + "/" + ref.Name
	localHealthy := ix.ready[localKey] > 0
	backends := make([]RouteBackend, 0, len(split))
	remotes := make([]Backend, 0, len(split))
	splitClusters := make([]string, 0, len(split))
	for i, cw := range split {
		t := targets[cw.Cluster]
		healthy, why := ix.remoteHealth(t.link, t.mirror)
		remotes = append(remotes, Backend{Configured: cw.Weight, Healthy: healthy})
		splitClusters = append(splitClusters, cw.Cluster)
		backends = append(backends, RouteBackend{Cluster: cw.Cluster, Service: ref.Namespace + "/" + t.mirror.Name, Configured: asked[i].Weight, Healthy: healthy, Reason: why})
	}
	effective, tierReason := effectiveWeights(string(ann.Failover), budget, ann.Priority, localHealthy, splitClusters, remotes)
	localShare := budget
	for i := range backends {
		backends[i].Effective = effective[i]
		localShare -= effective[i]
		switch {
		case effective[i] == backends[i].Configured:
			backends[i].Reason = "" // health made no difference
		case backends[i].Reason == "" && effective[i] != split[i].Weight:
			backends[i].Reason = cmp.Or(tierReason, failoverReason(ann.Failover, localHealthy))
		case backends[i].Reason == "":
			backends[i].Reason = "scaled down: other Mappings in the Emissary group take weight"
		}
	}
	localBackend := RouteBackend{Service: localKey, Configured: 100 - sumWeights(ann.Split), Effective: localShare, Healthy: localHealthy}
	switch {
	case localShare == localBackend.Configured:
	case !localHealthy:
		localBackend.Reason = "no ready endpoints in this cluster"
	case tierReason != "":
		localBackend.Reason = tierReason
	case ann.Failover == ingress.FailoverLocalFirst && localShare == budget:
		localBackend.Reason = "local-first: takes all traffic while it has ready endpoints"
	case localShare > budget-configured:
		localBackend.Reason = "takes the share of unhealthy remote backends"
	default:
		localBackend.Reason = "other Mappings in the Emissary group take part of the remainder"
	}
	r.Backends = append([]RouteBackend{localBackend}, backends...)

	// Every generated object records this valid configuration, so that a
	// route held by bad input later still fails over on it (HeldRoute).
	cfg := RouteConfig{Failover: string(ann.Failover), Budget: budget, Local: localKey, Priority: ann.Priority}
	for i, cw := range split {
		t := targets[cw.Cluster]
		cfg.Split = append(cfg.Split, RouteConfigBackend{Cluster: cw.Cluster, Link: t.link.Namespace + "/" + t.link.Name,
			Mirror: ref.Namespace + "/" + t.mirror.Name, Weight: cw.Weight, Configured: asked[i].Weight})
	}
	config := cfg.encode()

	// The siblings, in split order, then dev routes.
	for i, cw := range split {
		t := targets[cw.Cluster]
		r.Objects = append(r.Objects, Stamp(withRouteConfig(ix.sibling(m, ref, t.link, t.mirror, ann.Failover, ptr.To(effective[i]), "", ""), config)))
	}
	for _, c := range ann.DevRoutes {
		t := targets[c]
		r.Objects = append(r.Objects, Stamp(withRouteConfig(ix.sibling(m, ref, t.link, t.mirror, ann.Failover, nil, ix.s.DevHeader, c), config)))
		healthy, why := ix.remoteHealth(t.link, t.mirror)
		r.Backends = append(r.Backends, RouteBackend{Cluster: c, Service: ref.Namespace + "/" + t.mirror.Name, Healthy: healthy, Reason: why, Header: ix.s.DevHeader + ": " + c})
	}
	for _, o := range r.Objects {
		if msg := ix.hostBinding(m, o.(*ambv3.Mapping)); msg != "" {
			problem(ReasonHostBinding, "%s", msg)
			r.Objects, r.Backends = nil, nil
			return r
		}
	}
	if ptr.Deref(ann.TrafficSplit, ix.s.TrafficSplit) && len(split) > 0 {
		splitBackends := []ingress.SplitBackend{{Service: ref.Name, Weight: localShare}}
		for i, cw := range split {
			splitBackends = append(splitBackends, ingress.SplitBackend{Service: MirrorName(ref.Name, cw.Cluster), Weight: effective[i]})
		}
		// The TrafficSplit lives with its Service, which may be in another
		// namespace than the Mapping; an owner reference cannot cross
		// namespaces, so then only the labels (and RouteOwned) tie it to
		// its source.
		meta := routeMeta(m, ref.Name, "")
		if meta.Namespace = ref.Namespace; ref.Namespace != m.Namespace {
			meta.OwnerReferences = nil
		}
		ts, err := ingress.TrafficSplit(ix.s.TrafficSplitVersion, meta, ref.Name, splitBackends)
		if err != nil {
			problem(ReasonUnsupportedMapping, "%v", err)
			r.Objects, r.Backends = nil, nil
			return r
		}
		r.Objects = append(r.Objects, Stamp(withRouteConfig(ts, config)))
	}
	return r
}

// inForce fills in what of r is in force: the Mapping's Emissary group as
// the Mappings that exist form it (not what crossmap is about to write,
// nor what it remembers), the failover policy the routes in force were
// written with, and why a held route is held. A Mapping crossmap does not
// own that takes a share of the group is a SharedGroup problem: it changes
// what the local backend gets, and status would otherwise not say so.
func (ix *routeIndex) inForce(m *ambv3.Mapping, r *Route) {
	if r.Held {
		for _, p := range r.Problems {
			r.HeldReason = p.Reason + ": " + p.Message
			break
		}
		// The policy the kept routes were written with, as they record it.
		// With none kept, nothing of crossmap's acts on the traffic; routes
		// written before crossmap recorded it are taken to follow the
		// annotation.
		kept := ix.generatedBy(r.Source)
		policy := string(ingress.FailoverOff)
		if len(kept) > 0 {
			policy = r.Failover
		}
		for _, g := range kept {
			if p := g.GetAnnotations()[crossmapv1.AnnotationFailoverPolicy]; p != "" {
				policy = p
				break
			}
		}
		r.Failover = policy
	}
	if r.Failover == "" {
		// The annotations did not parse, but the route is not held (it
		// lost its group): nothing of crossmap's is in force.
		r.Failover = string(ingress.FailoverOff)
	}

	groups := ix.groupsOf(m)
	if len(groups) == 0 {
		return
	}
	g := groups[0]
	// What crossmap configures, by Mapping name; only while not held, when
	// crossmap writes what it computed.
	configured := map[string]int{}
	if !r.Held && len(r.Backends) > 0 {
		configured[m.Namespace+"/"+m.Name] = r.Backends[0].Effective
		for _, o := range r.Objects {
			if gm, ok := o.(*ambv3.Mapping); ok && gm.Spec.Weight != nil {
				configured[gm.Namespace+"/"+gm.Name] = *gm.Spec.Weight
			}
		}
	}
	rg := &RouteGroup{Members: []GroupMember{}}
	if g.Err != nil {
		rg.Error = g.Err.Error()
	}
	var others []string
	othersShare := 0
	for _, mem := range g.Members {
		o := mem.Mapping
		gm := GroupMember{Mapping: mem.Name, Owner: OwnerOther, Service: o.Spec.Service, Weight: mem.Weight, Share: mem.Share}
		switch {
		case o == m:
			gm.Owner = OwnerUser
		case generatedFor(o, m):
			gm.Owner, gm.Cluster = OwnerCrossmap, o.Labels[LabelTargetCluster]
		}
		if gm.Owner != OwnerOther && !r.Held && len(r.Backends) > 0 {
			c, ok := configured[mem.Name]
			if !ok {
				c = 0 // crossmap no longer writes it: it is to be removed
			}
			gm.Configured = ptr.To(c)
		}
		if gm.Owner == OwnerOther && mem.Share > 0 {
			weight := "no weight"
			if mem.Weight != nil {
				weight = fmt.Sprintf("weight %d", *mem.Weight)
			}
			others = append(others, fmt.Sprintf("%s (%s) %d%%", mem.Name, weight, mem.Share))
			othersShare += mem.Share
		}
		rg.Members = append(rg.Members, gm)
	}
	// crossmap's routes in force differ from what it configures until its
	// writes land (the next reconcile shows them).
	pending := false
	for name := range configured {
		i := slices.IndexFunc(rg.Members, func(gm GroupMember) bool { return gm.Mapping == name })
		pending = pending || i < 0 || *rg.Members[i].Configured != rg.Members[i].Share && rg.Members[i].Owner == OwnerCrossmap
	}
	for i := range rg.Members {
		gm := &rg.Members[i]
		var why []string
		switch {
		case gm.Configured == nil || *gm.Configured == gm.Share:
			continue
		case rg.Error != "":
			why = append(why, "Emissary rejects the group's weights")
		case gm.Owner == OwnerCrossmap:
			why = append(why, "being written: crossmap applies its routes now")
		default:
			if pending {
				why = append(why, "crossmap's routes are being written")
			}
			if othersShare > 0 {
				why = append(why, fmt.Sprintf("other Mappings in the Emissary group take %d%%: %s", othersShare, strings.Join(others, ", ")))
			}
		}
		gm.Reason = strings.Join(why, "; ")
	}
	r.Group = rg

	// While crossmap's own routes are being written the shares are about
	// to change; the next reconcile, which their write triggers, reports
	// the numbers that hold (rather than a Warning and a Resolved Event
	// for figures that never were in force for long).
	if len(others) == 0 || pending || slices.ContainsFunc(r.Problems, func(p Problem) bool { return p.Reason == ReasonAmbiguousGroup }) {
		return
	}
	src := m.Namespace + "/" + m.Name
	gets := ""
	for _, gm := range rg.Members {
		if gm.Owner == OwnerUser {
			gets = fmt.Sprintf("; the Mapping itself gets %d%%", gm.Share)
			if gm.Configured != nil && *gm.Configured != gm.Share {
				gets += fmt.Sprintf(" where crossmap configured %d%%", *gm.Configured)
			}
		}
	}
	r.Problems = append(r.Problems, Problem{Reason: ReasonSharedGroup, Object: r.Source,
		Message: fmt.Sprintf("Mapping %s: Mappings crossmap does not own are in its Emissary group (same method, prefix, headers, query parameters and precedence) and take %d%% of its requests: %s%s; give them a match of their own, or remove them", src, othersShare, strings.Join(others, ", "), gets)})
}

// remoteHealth says whether a remote backend can take traffic, and why not.
func (ix *routeIndex) remoteHealth(link LinkHealth, mirror *corev1.Service) (bool, string) {
	if down := link.Down(); down != "" {
		return false, down
	}
	if ix.ready[mirror.Namespace+"/"+mirror.Name] == 0 {
		return false, "no ready endpoints in cluster " + link.Cluster
	}
	return true, ""
}

// Down says why no request may go to the Link's cluster whatever its
// endpoints, or "" when the Link itself lets them through: a drill drains
// it, or its gateway is dead (flat mode has no gateway). The route role
// and crossmap explain both ask it, so they give one reason.
func (link LinkHealth) Down() string {
	switch {
	case link.Drained:
		return "cluster " + link.Cluster + " is drained by a drill"
	case !link.GatewayAlive && link.Mode != crossmapv1.ModeFlat:
		return "gateway of cluster " + link.Cluster + " is dead"
	}
	return ""
}

func sumWeights(cws []ingress.ClusterWeight) int {
	n := 0
	for _, cw := range cws {
		n += cw.Weight
	}
	return n
}

func weightsOf(cws []ingress.ClusterWeight) []int {
	out := make([]int, len(cws))
	for i, cw := range cws {
		out[i] = cw.Weight
	}
	return out
}

// effectiveWeights is Effective, or for priority failover Tiered with
// the tiers of priority (clusters names the remotes). For priority it
// also says which tier is in force, for the status API.
func effectiveWeights(policy string, budget int, priority [][]string, localHealthy bool, clusters []string, remotes []Backend) ([]int, string) {
	if policy != failoverPriority {
		return Effective(policy, budget, localHealthy, remotes), ""
	}
	localTier, tierOf := 0, map[string]int{}
	for i, tier := range priority {
		for _, c := range tier {
			if c == ingress.LocalTier {
				localTier = i
			} else {
				tierOf[c] = i
			}
		}
	}
	tiered := make([]Backend, len(remotes))
	first := -1
	if localHealthy {
		first = localTier
	}
	for i, r := range remotes {
		r.Tier = tierOf[clusters[i]]
		tiered[i] = r
		if r.Healthy && (first < 0 || r.Tier < first) {
			first = r.Tier
		}
	}
	why := "priority: no tier has a healthy backend, so the configured weights stand"
	if first >= 0 {
		why = fmt.Sprintf("priority: tier %d (%s) is the first with a healthy backend", first+1, strings.Join(priority[first], "|"))
	}
	return Tiered(budget, localTier, localHealthy, tiered), why
}

func failoverReason(policy ingress.FailoverPolicy, localHealthy bool) string {
	switch {
	case !localHealthy:
		return "failover: the local backend has no ready endpoints"
	case policy == ingress.FailoverLocalFirst:
		return "local-first: remote backends take traffic only while the local one is down"
	default:
		return "failover: takes a share of unhealthy backends"
	}
}

// SiblingName is the name of the Mapping that sends mapping's traffic to
// cluster; dev routes get a -dev suffix.
func SiblingName(mapping, cluster string, dev bool) string {
	if dev {
		return mapping + "-" + cluster + "-dev"
	}
	return mapping + "-" + cluster
}

func routeMeta(m *ambv3.Mapping, name, cluster string) metav1.ObjectMeta {
	l := RouteSelector()
	l[crossmapv1.LabelSourceNamespace] = m.Namespace
	l[crossmapv1.LabelSourceName] = m.Name
	if cluster != "" {
		l[LabelTargetCluster] = cluster
	}
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: m.Namespace,
		Labels:    l,
		// Same-cluster children: deleting the user's Mapping lets the API
		// server's garbage collector remove them even while crossmap is
		// down.
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: ambv3.GroupVersion.String(), Kind: "Mapping", Name: m.Name, UID: m.UID,
		}},
	}
}

func (ix *routeIndex) sibling(m *ambv3.Mapping, ref ingress.ServiceRef, link LinkHealth, mirror *corev1.Service, policy ingress.FailoverPolicy, weight *int, header, devCluster string) *ambv3.Mapping {
	cluster := link.Cluster
	meta := routeMeta(m, SiblingName(m.Name, cluster, header != ""), cluster)
	meta.Annotations = map[string]string{crossmapv1.AnnotationFailoverPolicy: string(policy)}
	// The user's labels come along so that the sibling binds to the same
	// Hosts (mappingSelector) and joins the same Emissary group; crossmap's
	// own labels win on the few keys they share.
	l := maps.Clone(m.Labels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, meta.Labels)
	meta.Labels = l
	mirrorRef := ingress.ServiceRef{Scheme: ref.Scheme, Name: mirror.Name, Namespace: mirror.Namespace, Port: ref.Port}
	route := ingress.RemoteRoute{Meta: meta, Cluster: cluster, Service: mirrorRef, Weight: weight}
	if link.Mode != crossmapv1.ModeFlat {
		route.HostRewrite = gatewayHostname(ref, mirror)
		route.TLS = link.OriginTLS
	}
	if header != "" {
		route.Headers = map[string]string{header: devCluster}
		// A dev route is a group of its own, so its response header is
		// its own. A weighted sibling's would not be: Emissary gives every
		// route of a group the union of its members' add_response_headers
		// (irhttpmappinggroup.py, finalize), so the local backend's answers
		// would name the remote cluster too. Those answers are named by
		// the remote cluster's gateway Mapping instead (Export).
		route.ResponseHeaders = ingress.ServedBy(ix.s.ServedByHeader, devCluster)
	}
	return ingress.SiblingMapping(m, route)
}

// gatewayHostname is the hostname the remote gateway routes port ref.Port
// of the Service by. The mirror has the remote Service's gateway ports in
// the remote order, which is what the exporting side indexes.
func gatewayHostname(ref ingress.ServiceRef, mirror *corev1.Service) string {
	ports := ingress.GatewayPorts(mirror.Spec.Ports)
	for i, p := range ports {
		if p.Port == ref.Port {
			return ingress.GatewayHostname(ref.Namespace, ref.Name, p, i)
		}
	}
	return ingress.GatewayHostname(ref.Namespace, ref.Name, corev1.ServicePort{Port: ref.Port}, 0)
}

// generatedBy returns the Mappings in the snapshot that the route role
// generated for src.
func (ix *routeIndex) generatedBy(src ObjectRef) []Object {
	var out []Object
	for _, g := range ix.s.Mappings {
		l := g.Labels
		if l[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy && l[crossmapv1.LabelRole] == RoleRoute &&
			l[crossmapv1.LabelSourceNamespace] == src.Namespace && l[crossmapv1.LabelSourceName] == src.Name {
			c := g.DeepCopy()
			c.SetGroupVersionKind(ambv3.GroupVersion.WithKind("Mapping"))
			out = append(out, c)
		}
	}
	return out
}

// groupOthers returns the Mappings Emissary puts in m's weighted group,
// other than m and crossmap's own routes for m, by namespace/name. Shadow
// and host_redirect Mappings are not members: Emissary keeps them out of
// the weighting (emissary.Groups).
func (ix *routeIndex) groupOthers(m *ambv3.Mapping) []*ambv3.Mapping {
	var out []*ambv3.Mapping
	for _, g := range ix.groupsOf(m) {
		for _, mem := range g.Members {
			o := mem.Mapping
			if o == m || o.Namespace == m.Namespace && o.Name == m.Name || generatedFor(o, m) || slices.Contains(out, o) {
				continue
			}
			out = append(out, o)
		}
	}
	slices.SortFunc(out, compareObjects)
	return out
}

// groupsOf returns the group m is a member of in each Emissary
// installation crossmap routes for that serves m (usually one).
func (ix *routeIndex) groupsOf(m *ambv3.Mapping) []*emissary.Group {
	if ix.groups == nil {
		// Computed once per snapshot: every route asks about its group.
		ix.groups = map[*ambv3.Mapping][]*emissary.Group{}
		ids := slices.Clone(ix.s.AmbassadorID)
		if len(ids) == 0 {
			ids = []string{"default"}
		}
		slices.Sort(ids)
		for _, id := range slices.Compact(ids) {
			// Emissary installations with different IDs never see each
			// other's Mappings: one set of groups per installation.
			groups, _ := emissary.Groups(emissary.Input{Mappings: ix.s.Mappings, Hosts: ix.s.Hosts, AmbassadorID: []string{id}})
			for _, g := range groups {
				for _, mem := range g.Members {
					ix.groups[mem.Mapping] = append(ix.groups[mem.Mapping], g)
				}
			}
		}
	}
	return ix.groups[m]
}

// generatedFor reports whether o is a route crossmap generated for the
// annotated Mapping m.
func generatedFor(o, m *ambv3.Mapping) bool {
	l := o.Labels
	return l[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy && l[crossmapv1.LabelRole] == RoleRoute &&
		l[crossmapv1.LabelSourceNamespace] == m.Namespace && l[crossmapv1.LabelSourceName] == m.Name
}

// hostBinding checks that a generated Mapping binds to exactly the Hosts the
// user's Mapping binds to (emissary.Host.Binds), as far as labels decide it
// (the hostname is copied, so it cannot differ).
func (ix *routeIndex) hostBinding(user, gen *ambv3.Mapping) string {
	// Emissary ignores Hosts of other installations.
	for _, h := range emissary.Hosts(emissary.Input{Hosts: ix.s.Hosts, AmbassadorID: servedIDs(user.Spec.AmbassadorID)}) {
		if !h.HasSelector {
			continue
		}
		u, g := h.Binds(user), h.Binds(gen)
		if u != g {
			return fmt.Sprintf("Mapping %s/%s: the generated Mapping %s would %s Host %s, unlike the Mapping itself, because crossmap's labels meet the Host's mappingSelector; routes are left as they were",
				user.Namespace, user.Name, gen.Name, map[bool]string{true: "bind to", false: "not bind to"}[g], h.Name)
		}
	}
	return ""
}

// servedIDs are the installations a Mapping with ambassador_id aid is
// served by, as far as its own field says ("default" when unset).
func servedIDs(aid ambv3.AmbassadorID) []string {
	if len(aid) == 0 {
		return []string{"default"}
	}
	return aid
}

func isMirrorOf(mirror *corev1.Service, link LinkHealth, ref ingress.ServiceRef) bool {
	l := mirror.Labels
	return l[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy && l[crossmapv1.LabelRole] == crossmapv1.RoleMirror &&
		l[crossmapv1.LabelLink] == link.Name && l[crossmapv1.LabelLinkNamespace] == link.Namespace &&
		l[crossmapv1.LabelSourceName] == ref.Name && l[crossmapv1.LabelSourceNamespace] == ref.Namespace
}

func hasPort(svc *corev1.Service, port int32) bool {
	return slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == port })
}

func portList(svc *corev1.Service) string {
	var ps []string
	for _, p := range svc.Spec.Ports {
		ps = append(ps, fmt.Sprint(p.Port))
	}
	if len(ps) == 0 {
		return "none"
	}
	return strings.Join(ps, ", ")
}

func mappingNames(ms []*ambv3.Mapping) string {
	var names []string
	for _, m := range ms {
		names = append(names, m.Namespace+"/"+m.Name)
	}
	return strings.Join(names, ", ")
}

func (ix *routeIndex) linkedClusters() string {
	cs := slices.Sorted(maps.Keys(ix.links))
	if len(cs) == 0 {
		return "none"
	}
	return strings.Join(cs, ", ")
}
