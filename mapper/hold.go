package mapper

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	splitv1alpha1 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha1"
	splitv1alpha2 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha2"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// This file holds what crossmap keeps while it cannot act on its input,
// with health still applied (issue 13): a Link whose remote cluster
// cannot be read keeps its mirrors, and a route held by bad input keeps
// its last valid configuration, and both still follow the gateway probe.
// What is kept is read back from the objects crossmap wrote, never from
// memory, so a restarted controller keeps it too.

// HoldMirrors is what a Link's mirrors should be while its remote cluster
// cannot be read (credentials missing or refused, the remote API server
// down, a watcher not synced yet): the owned objects exactly as they are,
// except that the endpoints of each gateway-mode EndpointSlice are ready
// while the gateway is alive and the remote Service had a ready endpoint
// when last seen (AnnotationRemoteReady). Slices whose readiness already
// agrees are returned as given, so a steady state plans no write; owned
// is only read.
func HoldMirrors(owned []Object, gatewayAlive bool) []Object {
	out := make([]Object, 0, len(owned))
	for _, o := range owned {
		es, ok := o.(*discoveryv1.EndpointSlice)
		if !ok {
			out = append(out, o)
			continue
		}
		remote, ok := es.Annotations[crossmapv1.AnnotationRemoteReady]
		if !ok {
			// A flat-mode slice (the remote's own readiness), or one written
			// before the annotation existed: nothing to apply health to.
			out = append(out, o)
			continue
		}
		ready := gatewayAlive && remote == "true"
		if slices.IndexFunc(es.Endpoints, func(ep discoveryv1.Endpoint) bool {
			return ptr.Deref(ep.Conditions.Ready, true) != ready
		}) < 0 {
			out = append(out, o)
			continue
		}
		out = append(out, Stamp(regatedSlice(es, remote, ready)))
	}
	return out
}

// mirrorLabelKeys are the labels Import puts on a mirror EndpointSlice.
var mirrorLabelKeys = []string{
	crossmapv1.LabelManagedBy, crossmapv1.LabelRole, crossmapv1.LabelLink, crossmapv1.LabelLinkNamespace,
	crossmapv1.LabelSourceCluster, crossmapv1.LabelSourceNamespace, crossmapv1.LabelSourceName,
	discoveryv1.LabelServiceName, discoveryv1.LabelManagedBy,
}

// regatedSlice renders es again as gatewaySlices renders it, with ready
// set on every endpoint: only the fields crossmap writes, so the spec hash
// is the one Import gives for the same remote state.
func regatedSlice(es *discoveryv1.EndpointSlice, remote string, ready bool) *discoveryv1.EndpointSlice {
	labels := map[string]string{}
	for _, k := range mirrorLabelKeys {
		if v, ok := es.Labels[k]; ok {
			labels[k] = v
		}
	}
	eps := make([]discoveryv1.Endpoint, 0, len(es.Endpoints))
	for _, ep := range es.Endpoints {
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  slices.Clone(ep.Addresses),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)},
		})
	}
	ports := make([]discoveryv1.EndpointPort, 0, len(es.Ports))
	for _, p := range es.Ports {
		ports = append(ports, *p.DeepCopy())
	}
	return &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{Name: es.Name, Namespace: es.Namespace, Labels: labels,
			Annotations: map[string]string{crossmapv1.AnnotationRemoteReady: remote}},
		AddressType: es.AddressType,
		Endpoints:   eps,
		Ports:       ports,
	}
}

// RouteConfig is a route's last valid configuration, as the route role
// records it on every object it generates (AnnotationRouteConfig).
type RouteConfig struct {
	// Failover is the policy (ingress.FailoverPolicy).
	Failover string `json:"failover,omitempty"`
	// Budget is the share crossmap's backends split (see Effective).
	Budget int `json:"budget"`
	// Local is the local backend's Service, namespace/name.
	Local string `json:"local"`
	// Split is one entry per remote backend, in split order.
	Split []RouteConfigBackend `json:"split,omitempty"`
	// Priority are the tiers of priority failover
	// (ingress.RouteAnnotations.Priority).
	Priority [][]string `json:"priority,omitempty"`
}

// RouteConfigBackend is one remote backend of a RouteConfig.
type RouteConfigBackend struct {
	Cluster string `json:"cluster"`
	// Link is the Link's namespace/name; Mirror the mirror Service's.
	Link   string `json:"link"`
	Mirror string `json:"mirror"`
	// Weight is what Effective splits with (scaled into the budget);
	// Configured is what the annotation asked for.
	Weight     int `json:"weight"`
	Configured int `json:"configured"`
}

func (c RouteConfig) encode() string {
	raw, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("encode route config: %v", err))
	}
	return string(raw)
}

// withRouteConfig records cfg on a generated object before it is stamped.
func withRouteConfig[T Object](obj T, cfg string) T {
	ann := maps.Clone(obj.GetAnnotations())
	if ann == nil {
		ann = map[string]string{}
	}
	ann[crossmapv1.AnnotationRouteConfig] = cfg
	obj.SetAnnotations(ann)
	return obj
}

// HeldRoute applies health to the objects generated before for a route
// that is now held by bad input (Route.Held): their last valid
// configuration, read back from them, gets the weights health calls for
// now, exactly as Routes computes them for a valid route, from the same
// index of the snapshot. It returns the objects to keep, the backends for
// the status API and the policy. Objects whose weights do not change are
// returned as given; generated (read from the cluster) is only read.
// Objects that carry no configuration (written by an older crossmap) are
// kept as they are.
func (t *RouteTranslation) HeldRoute(generated []Object) ([]Object, []RouteBackend, string) {
	var (
		cfg   RouteConfig
		found bool
	)
	for _, o := range generated {
		if raw, ok := o.GetAnnotations()[crossmapv1.AnnotationRouteConfig]; ok && json.Unmarshal([]byte(raw), &cfg) == nil {
			found = true
			break
		}
	}
	if !found {
		return generated, nil, ""
	}
	ix := t.ix
	localHealthy := ix.ready[cfg.Local] > 0
	remotes := make([]Backend, 0, len(cfg.Split))
	clusters := make([]string, 0, len(cfg.Split))
	backends := make([]RouteBackend, 0, len(cfg.Split)+1)
	for _, b := range cfg.Split {
		healthy, why := false, "no Link for cluster "+b.Cluster
		for _, l := range ix.links[b.Cluster] {
			if l.Namespace+"/"+l.Name != b.Link {
				continue
			}
			if mirror, ok := ix.services[b.Mirror]; ok {
				healthy, why = ix.remoteHealth(l, mirror)
			} else {
				why = "no mirror " + b.Mirror + " here"
			}
		}
		remotes = append(remotes, Backend{Configured: b.Weight, Healthy: healthy})
		clusters = append(clusters, b.Cluster)
		backends = append(backends, RouteBackend{Cluster: b.Cluster, Service: b.Mirror, Configured: b.Configured, Healthy: healthy, Reason: why})
	}
	effective, tierReason := effectiveWeights(cfg.Failover, cfg.Budget, cfg.Priority, localHealthy, clusters, remotes)
	localShare, configured := cfg.Budget, 100
	weightOf := map[string]int{}
	for i := range backends {
		backends[i].Effective = effective[i]
		localShare -= effective[i]
		configured -= backends[i].Configured
		weightOf[cfg.Split[i].Cluster] = effective[i]
		if effective[i] == backends[i].Configured {
			backends[i].Reason = ""
		} else if backends[i].Reason == "" {
			backends[i].Reason = cmp.Or(tierReason, failoverReason(ingress.FailoverPolicy(cfg.Failover), localHealthy))
		}
	}
	local := RouteBackend{Service: cfg.Local, Configured: configured, Effective: localShare, Healthy: localHealthy}
	if !localHealthy && localShare != configured {
		local.Reason = "no ready endpoints in this cluster"
	} else if localShare != configured {
		local.Reason = cmp.Or(tierReason, "takes the share of unhealthy remote backends")
	}
	backends = append([]RouteBackend{local}, backends...)

	out := make([]Object, 0, len(generated))
	for _, o := range generated {
		switch g := o.(type) {
		case *ambv3.Mapping:
			w, ok := weightOf[g.Labels[LabelTargetCluster]]
			if g.Spec.Weight == nil || !ok || *g.Spec.Weight == w {
				// A dev route (no weight), or a weight that stands.
				out = append(out, o)
				continue
			}
			out = append(out, Stamp(reweighedMapping(g, w)))
		case *unstructured.Unstructured:
			if ts, changed := reweighedSplit(g, cfg, localShare, weightOf); changed {
				out = append(out, Stamp(ts))
				continue
			}
			out = append(out, o)
		default:
			out = append(out, o)
		}
	}
	return out, backends, cfg.Failover
}

// generatedMeta is the part of a generated object's metadata crossmap
// writes: its labels, its own annotations and its owner references.
func generatedMeta(o Object) metav1.ObjectMeta {
	ann := map[string]string{}
	for _, k := range []string{crossmapv1.AnnotationRouteConfig, crossmapv1.AnnotationFailoverPolicy} {
		if v, ok := o.GetAnnotations()[k]; ok {
			ann[k] = v
		}
	}
	return metav1.ObjectMeta{Name: o.GetName(), Namespace: o.GetNamespace(), Labels: maps.Clone(o.GetLabels()),
		Annotations: ann, OwnerReferences: slices.Clone(o.GetOwnerReferences())}
}

func reweighedMapping(g *ambv3.Mapping, weight int) *ambv3.Mapping {
	spec := g.Spec.DeepCopy()
	spec.Weight = ptr.To(weight)
	return &ambv3.Mapping{
		TypeMeta:   metav1.TypeMeta{APIVersion: ambv3.GroupVersion.String(), Kind: "Mapping"},
		ObjectMeta: generatedMeta(g),
		Spec:       *spec,
	}
}

// reweighedSplit sets a held TrafficSplit's weights: the local Service's
// to localShare, each mirror's to its cluster's weight. v1alpha1 weights
// are quantities in milli-units (ingress.TrafficSplit), v1alpha2 integers.
func reweighedSplit(ts *unstructured.Unstructured, cfg RouteConfig, localShare int, weightOf map[string]int) (Object, bool) {
	backends, _, _ := unstructured.NestedSlice(ts.Object, "spec", "backends")
	_, localName, _ := cutKey(cfg.Local)
	want := map[string]int{localName: localShare}
	for _, b := range cfg.Split {
		_, mirror, _ := cutKey(b.Mirror)
		want[mirror] = weightOf[b.Cluster]
	}
	v1alpha1 := ts.GetAPIVersion() == "split.smi-spec.io/v1alpha1"
	changed := false
	next := make([]any, 0, len(backends))
	for _, raw := range backends {
		b, ok := raw.(map[string]any)
		if !ok {
			return nil, false
		}
		b = maps.Clone(b)
		svc, _ := b["service"].(string)
		if w, ok := want[svc]; ok {
			var v any = int64(w)
			if v1alpha1 {
				v = resource.NewMilliQuantity(int64(w)*10, resource.DecimalSI).String()
			}
			if fmt.Sprint(b["weight"]) != fmt.Sprint(v) {
				changed = true
			}
			b["weight"] = v
		}
		next = append(next, b)
	}
	if !changed {
		return nil, false
	}
	spec, _, _ := unstructured.NestedMap(ts.Object, "spec")
	spec = maps.Clone(spec)
	spec["backends"] = next
	// Rendered as the typed object ingress.TrafficSplit renders, so that
	// its spec hash is the one a valid route gives for the same weights.
	var typed Object = &splitv1alpha2.TrafficSplit{}
	if v1alpha1 {
		typed = &splitv1alpha1.TrafficSplit{}
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(map[string]any{"spec": spec}, typed); err != nil {
		return nil, false
	}
	typed.GetObjectKind().SetGroupVersionKind(ts.GroupVersionKind())
	m := generatedMeta(ts)
	typed.SetName(m.Name)
	typed.SetNamespace(m.Namespace)
	typed.SetLabels(m.Labels)
	typed.SetAnnotations(m.Annotations)
	typed.SetOwnerReferences(m.OwnerReferences)
	return typed, true
}

func cutKey(key string) (namespace, name string, ok bool) {
	namespace, name, ok = strings.Cut(key, "/")
	if !ok {
		return "", key, false
	}
	return namespace, name, true
}
