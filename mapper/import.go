package mapper

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// LinkRef is what the import translation needs to know of a Link.
type LinkRef struct {
	Namespace, Name  string
	Cluster          string
	Mode             crossmapv1.Mode
	GatewayPort      int32
	CreateNamespaces bool
}

// ImportSnapshot is one Link's view of its remote cluster, plus the few local
// facts the mirrors depend on.
type ImportSnapshot struct {
	Link LinkRef
	// GatewayAddresses are the gateway's resolved IP addresses.
	GatewayAddresses []netip.Addr
	// GatewayAlive is false while the gateway fails its probe; gateway-mode
	// endpoints are then marked not ready.
	GatewayAlive bool
	// Services are the remote Services that match the Link's export selector.
	Services []*corev1.Service
	// Slices are the remote EndpointSlices; those of Services not exported
	// are ignored.
	Slices []*discoveryv1.EndpointSlice
	// LocalNamespaces are the namespaces that exist in this cluster.
	LocalNamespaces sets.Set[string]
}

// MirrorName is the local name of remote Service name from cluster.
func MirrorName(name, cluster string) string { return name + "-" + cluster }

// Import translates a Link's remote Services into local mirrors: one Service
// per exported remote Service, with the same ports and no selector, and the
// EndpointSlices that back it. In gateway mode the endpoints are the gateway
// addresses and port, ready while the remote Service has a ready endpoint and
// the gateway is alive. In flat mode they are the remote endpoints
// themselves.
//
// A Namespace is rendered only while it is missing and the Link may create
// it. The caller must never count Namespaces as owned: once created, a
// namespace may hold anybody's objects, so it is never pruned.
//
// The returned count is how many Services are mirrored.
func Import(s ImportSnapshot) (objs []Object, mirrored int, problems []Problem) {
	return importWith(s, translateService)
}

// importWith is Import, with the translation of each remote Service (and
// its slices) done by translate, which ImportMemo remembers.
func importWith(s ImportSnapshot, translate func(ImportSnapshot, *corev1.Service, []*discoveryv1.EndpointSlice) mirrorResult) (objs []Object, mirrored int, problems []Problem) {
	svcs := slices.Clone(s.Services)
	slices.SortFunc(svcs, compareObjects)
	slicesBySvc := make(map[serviceName][]*discoveryv1.EndpointSlice, len(svcs))
	for _, es := range s.Slices {
		key := serviceName{es.Namespace, es.Labels[discoveryv1.LabelServiceName]}
		slicesBySvc[key] = append(slicesBySvc[key], es)
	}
	linkRef := ObjectRef{Kind: "Link", Namespace: s.Link.Namespace, Name: s.Link.Name}
	if s.Link.Mode != crossmapv1.ModeFlat && len(s.GatewayAddresses) == 0 && len(svcs) > 0 {
		problems = append(problems, Problem{Reason: ReasonNoGatewayAddress, Object: linkRef,
			Message: fmt.Sprintf("Link %s/%s is in gateway mode but has no resolved gateway address; mirrors have no endpoints", s.Link.Namespace, s.Link.Name)})
	}
	objs = make([]Object, 0, 2*len(svcs))
	namespacesAdded := sets.New[string]()
	for _, svc := range svcs {
		// A remote object crossmap wrote is a mirror of a third cluster (or
		// of this one); following it would chain or loop routes.
		if svc.Labels[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy {
			continue
		}
		r := translate(s, svc, slicesBySvc[serviceName{svc.Namespace, svc.Name}])
		if r.nameProblem != nil {
			problems = append(problems, *r.nameProblem)
			continue
		}
		if !s.LocalNamespaces.Has(svc.Namespace) {
			if !s.Link.CreateNamespaces {
				problems = append(problems, Problem{Reason: ReasonMissingNamespace, Object: linkRef,
					Message: fmt.Sprintf("namespace %q does not exist here, so Service %s/%s from cluster %s is not mirrored; create it, or set spec.createNamespaces on the Link", svc.Namespace, svc.Namespace, svc.Name, s.Link.Cluster)})
				continue
			}
			if !namespacesAdded.Has(svc.Namespace) {
				namespacesAdded.Insert(svc.Namespace)
				objs = append(objs, Stamp(mirrorNamespace(s.Link, svc.Namespace)))
			}
		}
		if r.problem != nil {
			problems = append(problems, *r.problem)
			continue
		}
		objs = append(objs, r.objs...)
		mirrored++
	}
	return objs, mirrored, problems
}

// serviceName is a Service's namespace and name.
type serviceName struct{ namespace, name string }

// mirrorResult is the translation of one remote Service, apart from its
// namespace (which depends on the other Services and on the local
// cluster): the problem with its mirror's name, which stops everything
// else; or the problem that stops the mirror; or the mirror Service and
// its EndpointSlices, stamped.
type mirrorResult struct {
	nameProblem *Problem
	problem     *Problem
	objs        []Object
}

// translateService translates one remote Service and its EndpointSlices
// (remote, which it may reorder).
func translateService(s ImportSnapshot, svc *corev1.Service, remote []*discoveryv1.EndpointSlice) mirrorResult {
	linkRef := ObjectRef{Kind: "Link", Namespace: s.Link.Namespace, Name: s.Link.Name}
	name := MirrorName(svc.Name, s.Link.Cluster)
	if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
		return mirrorResult{nameProblem: &Problem{Reason: ReasonNameTooLong, Object: linkRef,
			Message: fmt.Sprintf("mirror of Service %s/%s from cluster %s would be named %q, which is not a valid Service name: %s", svc.Namespace, svc.Name, s.Link.Cluster, name, errs[0])}}
	}
	ports, why := svc.Spec.Ports, "has no ports"
	if s.Link.Mode != crossmapv1.ModeFlat {
		ports, why = ingress.GatewayPorts(ports), "has no TCP port, and the gateway carries only TCP"
	}
	if len(ports) == 0 {
		return mirrorResult{problem: &Problem{Reason: ReasonNoPorts, Object: linkRef,
			Message: fmt.Sprintf("Service %s/%s from cluster %s %s; it is not mirrored", svc.Namespace, svc.Name, s.Link.Cluster, why)}}
	}
	objs := []Object{Stamp(mirrorService(s.Link, svc, name, ports))}
	slices.SortFunc(remote, compareObjects)
	if s.Link.Mode == crossmapv1.ModeFlat {
		for _, es := range remote {
			objs = append(objs, Stamp(flatSlice(s.Link, svc, name, es)))
		}
	} else {
		for _, es := range gatewaySlices(s, svc, name, ports, remote) {
			objs = append(objs, Stamp(es))
		}
	}
	return mirrorResult{objs: objs}
}

// ImportMemo is Import that remembers, per remote Service, what it
// rendered, and renders again only the Services that changed: a remote
// change costs the translation of one Service, not of all of them (issue
// 6: at a thousand exported Services, translating and stamping all of
// them was the largest part of propagating one change).
//
// A Service's translation depends on the Service, its EndpointSlices and
// the Link-wide inputs (the Link, the gateway addresses and whether the
// gateway is alive). The remote objects are named by their UID and
// resourceVersion, which change whenever the object does; a change of a
// Link-wide input forgets everything. An object without a resourceVersion
// (a test fixture) is translated every time.
//
// Import through a memo returns exactly what Import returns. The objects
// it returns are shared with later calls: callers must not change them.
// Keep one per Link; it is not safe for concurrent use.
type ImportMemo struct {
	link    LinkRef
	gateway []netip.Addr
	alive   bool
	gen     uint64
	entries map[serviceName]*memoMirror
}

type memoMirror struct {
	service objectVersion
	slices  []objectVersion
	result  mirrorResult
	// gen is the last Import call that saw this Service.
	gen uint64
}

// objectVersion names one version of one object.
type objectVersion struct{ uid, version string }

func versionOf(o Object) objectVersion {
	return objectVersion{uid: string(o.GetUID()), version: o.GetResourceVersion()}
}

// Import is Import, remembering.
func (m *ImportMemo) Import(s ImportSnapshot) (objs []Object, mirrored int, problems []Problem) {
	if m.entries == nil || m.link != s.Link || m.alive != s.GatewayAlive || !slices.Equal(m.gateway, s.GatewayAddresses) {
		m.link, m.alive, m.gateway = s.Link, s.GatewayAlive, slices.Clone(s.GatewayAddresses)
		m.entries = map[serviceName]*memoMirror{}
	}
	m.gen++
	objs, mirrored, problems = importWith(s, m.translate)
	for k, e := range m.entries {
		if e.gen != m.gen {
			delete(m.entries, k)
		}
	}
	return objs, mirrored, problems
}

func (m *ImportMemo) translate(s ImportSnapshot, svc *corev1.Service, remote []*discoveryv1.EndpointSlice) mirrorResult {
	slices.SortFunc(remote, compareObjects)
	key := serviceName{svc.Namespace, svc.Name}
	if e, ok := m.entries[key]; ok && e.matches(svc, remote) {
		e.gen = m.gen
		return e.result
	}
	r := translateService(s, svc, remote)
	e := &memoMirror{service: versionOf(svc), result: r, gen: m.gen}
	for _, es := range remote {
		e.slices = append(e.slices, versionOf(es))
	}
	if e.service.version == "" || slices.ContainsFunc(e.slices, func(v objectVersion) bool { return v.version == "" }) {
		delete(m.entries, key)
		return r
	}
	m.entries[key] = e
	return r
}

// matches reports whether svc and its slices (sorted) are the versions the
// entry was rendered from.
func (e *memoMirror) matches(svc *corev1.Service, remote []*discoveryv1.EndpointSlice) bool {
	if e.service.version == "" || versionOf(svc) != e.service || len(remote) != len(e.slices) {
		return false
	}
	for i, es := range remote {
		if versionOf(es) != e.slices[i] {
			return false
		}
	}
	return true
}

// MirrorSelector selects every object a Link owns.
func MirrorSelector(link LinkRef) map[string]string {
	return map[string]string{
		crossmapv1.LabelManagedBy:     crossmapv1.ManagedBy,
		crossmapv1.LabelRole:          crossmapv1.RoleMirror,
		crossmapv1.LabelLink:          link.Name,
		crossmapv1.LabelLinkNamespace: link.Namespace,
	}
}

func mirrorLabels(link LinkRef, svc *corev1.Service) map[string]string {
	l := MirrorSelector(link)
	l[crossmapv1.LabelSourceCluster] = link.Cluster
	l[crossmapv1.LabelSourceNamespace] = svc.Namespace
	l[crossmapv1.LabelSourceName] = svc.Name
	return l
}

func mirrorNamespace(link LinkRef, name string) *corev1.Namespace {
	l := MirrorSelector(link)
	l[crossmapv1.LabelSourceCluster] = link.Cluster
	return &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
	}
}

func mirrorService(link LinkRef, svc *corev1.Service, name string, remotePorts []corev1.ServicePort) *corev1.Service {
	ports := make([]corev1.ServicePort, 0, len(remotePorts))
	for _, p := range remotePorts {
		target := p.TargetPort
		if target.IntVal == 0 && target.StrVal == "" {
			// The API server defaults an unset target port to the port;
			// rendering it that way keeps Differs from seeing a change.
			target = intstr.FromInt32(p.Port)
		}
		ports = append(ports, corev1.ServicePort{
			Name:        p.Name,
			Protocol:    cmp.Or(p.Protocol, corev1.ProtocolTCP),
			AppProtocol: clonePtr(p.AppProtocol),
			Port:        p.Port,
			// A Service without a selector takes its endpoints' ports from
			// the EndpointSlices, by port name; the target port only matters
			// to readers, so it says where the traffic really ends up.
			TargetPort: target,
		})
	}
	return &corev1.Service{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: svc.Namespace,
			Labels:    mirrorLabels(link, svc),
		},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: ports,
		},
	}
}

func sliceMeta(link LinkRef, svc *corev1.Service, mirror, name string) metav1.ObjectMeta {
	l := mirrorLabels(link, svc)
	l[discoveryv1.LabelServiceName] = mirror
	// Tell the Kubernetes EndpointSlice controllers these slices are not
	// theirs to reconcile.
	l[discoveryv1.LabelManagedBy] = "crossmap.io"
	return metav1.ObjectMeta{Name: name, Namespace: svc.Namespace, Labels: l}
}

// flatSlice mirrors one remote EndpointSlice as is: addresses, ports and
// readiness. Topology that only makes sense in the remote cluster (node
// names, target references, zones and hints) is dropped.
func flatSlice(link LinkRef, svc *corev1.Service, mirror string, es *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	eps := make([]discoveryv1.Endpoint, 0, len(es.Endpoints))
	for _, ep := range es.Endpoints {
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  slices.Clone(ep.Addresses),
			Conditions: endpointConditions(ep.Conditions),
		})
	}
	ports := make([]discoveryv1.EndpointPort, 0, len(es.Ports))
	for _, p := range es.Ports {
		ports = append(ports, discoveryv1.EndpointPort{
			Name:        ptr.To(ptr.Deref(p.Name, "")),
			Protocol:    ptr.To(ptr.Deref(p.Protocol, corev1.ProtocolTCP)),
			Port:        p.Port,
			AppProtocol: clonePtr(p.AppProtocol),
		})
	}
	return &discoveryv1.EndpointSlice{
		TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta:  sliceMeta(link, svc, mirror, mirror+"-"+shortHash(es.Name)),
		AddressType: es.AddressType,
		Endpoints:   eps,
		Ports:       ports,
	}
}

func endpointConditions(c discoveryv1.EndpointConditions) discoveryv1.EndpointConditions {
	// The API treats an unset ready as ready; say so explicitly so that a
	// mirror reads the same to every consumer.
	return discoveryv1.EndpointConditions{
		Ready:       ptr.To(ptr.Deref(c.Ready, true)),
		Serving:     ptr.To(ptr.Deref(c.Serving, ptr.Deref(c.Ready, true))),
		Terminating: ptr.To(ptr.Deref(c.Terminating, false)),
	}
}

// gatewaySlices points the mirror at the gateway: one slice per address
// family, every Service port served on the gateway port.
func gatewaySlices(s ImportSnapshot, svc *corev1.Service, mirror string, svcPorts []corev1.ServicePort, remote []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	if len(s.GatewayAddresses) == 0 {
		return nil
	}
	remoteReady := hasReadyEndpoint(remote)
	ready := s.GatewayAlive && remoteReady
	ports := make([]discoveryv1.EndpointPort, 0, len(svcPorts))
	for _, p := range svcPorts {
		ports = append(ports, discoveryv1.EndpointPort{
			Name:     ptr.To(p.Name),
			Protocol: ptr.To(corev1.ProtocolTCP),
			Port:     ptr.To(s.Link.GatewayPort),
		})
	}
	var out []*discoveryv1.EndpointSlice
	for _, family := range gatewayEndpoints(s.GatewayAddresses, ready) {
		meta := sliceMeta(s.Link, svc, mirror, mirror+"-"+family.suffix)
		meta.Annotations = map[string]string{crossmapv1.AnnotationRemoteReady: strconv.FormatBool(remoteReady)}
		out = append(out, &discoveryv1.EndpointSlice{
			TypeMeta:    metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
			ObjectMeta:  meta,
			AddressType: family.typ,
			Endpoints:   family.endpoints,
			Ports:       ports,
		})
	}
	return out
}

// gatewayFamily is the endpoints of one address family of a gateway, and
// the suffix of the slice that holds them.
type gatewayFamily struct {
	suffix    string
	typ       discoveryv1.AddressType
	endpoints []discoveryv1.Endpoint
}

// gatewayEndpoints makes a gateway's addresses endpoints, ready or not as
// one, grouped by address family (an EndpointSlice holds one); a family
// without an address is left out. Mirrors and MCS imports both point at a
// gateway so.
func gatewayEndpoints(gateway []netip.Addr, ready bool) []gatewayFamily {
	var addrs []netip.Addr
	for _, a := range gateway {
		// An IPv4 address in IPv6 form is still IPv4 to an EndpointSlice,
		// and a zoned address is link-local, which no slice accepts.
		if a = a.Unmap(); a.IsValid() && a.Zone() == "" {
			addrs = append(addrs, a)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	addrs = slices.Compact(addrs)
	var out []gatewayFamily
	for _, family := range []struct {
		suffix string
		typ    discoveryv1.AddressType
		is     func(netip.Addr) bool
	}{
		{"gw4", discoveryv1.AddressTypeIPv4, netip.Addr.Is4},
		{"gw6", discoveryv1.AddressTypeIPv6, netip.Addr.Is6},
	} {
		var eps []discoveryv1.Endpoint
		for _, a := range addrs {
			if family.is(a) {
				eps = append(eps, discoveryv1.Endpoint{
					Addresses: []string{a.String()},
					Conditions: discoveryv1.EndpointConditions{
						Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false),
					},
				})
			}
		}
		if len(eps) > 0 {
			out = append(out, gatewayFamily{suffix: family.suffix, typ: family.typ, endpoints: eps})
		}
	}
	return out
}

// HasReadyEndpoint reports whether any endpoint in the slices is ready. An
// unset ready condition counts as ready, as the EndpointSlice API defines.
func hasReadyEndpoint(slices []*discoveryv1.EndpointSlice) bool {
	for _, es := range slices {
		for _, ep := range es.Endpoints {
			if ptr.Deref(ep.Conditions.Ready, true) {
				return true
			}
		}
	}
	return false
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:10]
}

// clonePtr copies what p points at, so rendered objects share no memory
// with the snapshot (which holds cache objects).
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
