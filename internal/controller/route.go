package controller

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	splitv1alpha1 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha1"
	splitv1alpha2 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// routesKey is the one work item of the route role: Emissary groups
// Mappings across namespaces, so every change is a reason to recompute all
// routes, and the recompute reads caches only.
var routesKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "routes"}}

// RouteReconciler turns annotated Mappings into sibling Mappings (and
// TrafficSplits) whose weights follow the health of every backend.
type RouteReconciler struct {
	Client   client.Client
	Applier  *Applier
	Reporter *Reporter
	Model    *status.Model
	Metrics  *Metrics
	Config   Config
	// Health, when the import role runs in the same process, has the
	// gateways' verdicts before the Links' conditions do; nil reads the
	// conditions only.
	Health *GatewayHealth

	// memo remembers Diff's comparisons; the single work item means one
	// reconcile at a time.
	memo mapper.DiffMemo
	// sources are the annotated Mappings last reported on, so that the
	// problems of a Mapping that lost its annotation are cleared.
	sources map[string]bool
	// deps filters the Service and EndpointSlice events to those of the
	// Services routes depend on.
	deps routeDeps
}

// SetupWithManager registers the route role with mgr.
func (r *RouteReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.sources = map[string]bool{}
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{routesKey}
	})
	// A gateway verdict recomputes the routes at once. One pending
	// wake-up is enough: the reconcile it causes reads every verdict.
	kicks := make(chan event.GenericEvent, 1)
	if r.Health != nil {
		r.Health.Subscribe(func() {
			select {
			case kicks <- event.GenericEvent{Object: &crossmapv1.Link{}}:
			default:
			}
		})
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("route").
		WatchesRawSource(source.Channel(kicks, all)).
		Watches(&ambv3.Mapping{}, all).
		Watches(&ambv3.Host{}, all).
		// Only the Services annotated Mappings route to, and their mirrors,
		// change a route (routeDeps).
		Watches(&corev1.Service{}, all, builder.WithPredicates(r.deps.services())).
		// Ready endpoints are health: local ones for the local backend,
		// mirrored ones (marked not ready while a gateway is dead) for the
		// remote backends.
		Watches(&discoveryv1.EndpointSlice{}, all, builder.WithPredicates(r.deps.slices())).
		Watches(&crossmapv1.Link{}, all).
		Complete(counted("route", r.Metrics, r))
}

// Reconcile recomputes every route from the caches and applies the
// difference, and comes back when a drill ends.
func (r *RouteReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	drillEnd, err := r.reconcile(ctx)
	return reconcile.Result{RequeueAfter: drillEnd}, err
}

// reconcile is Reconcile; it returns how long until the first active
// drill ends (zero: no drill), when the routes are recomputed.
func (r *RouteReconciler) reconcile(ctx context.Context) (time.Duration, error) {
	logger := log.FromContext(ctx)
	snap, links, err := r.snapshot(ctx)
	if err != nil {
		return 0, err
	}
	r.recordRouting(snap, links)
	drillEnd := nextDrillEnd(links, time.Now())

	owner := mapper.RouteSelector()
	var existing []mapper.Object
	for _, l := range []client.ObjectList{&ambv3.MappingList{}, r.splitList()} {
		objs, err := listOwned(ctx, r.Client, owner, l)
		if meta.IsNoMatchError(err) {
			// No TrafficSplit CRD in this cluster: nothing of that kind is
			// owned, and a write of one fails with a clear error.
			continue
		}
		if err != nil {
			return 0, err
		}
		existing = append(existing, objs...)
	}

	routes, desired, views := RouteViews(snap, existing)
	seen := map[string]bool{}
	for _, rt := range routes {
		key := rt.Source.Namespace + "/" + rt.Source.Name
		seen[key] = true
		regarding := &ambv3.Mapping{}
		regarding.Namespace, regarding.Name = rt.Source.Namespace, rt.Source.Name
		r.Reporter.Report(ctx, "route/"+key, rt.Problems, func(mapper.Problem) client.Object { return regarding })
	}
	for key := range r.sources {
		if !seen[key] {
			r.Reporter.Report(ctx, "route/"+key, nil, func(mapper.Problem) client.Object { return nil })
		}
	}
	r.sources = seen
	r.recordWeights(ctx, views)
	r.Model.SetRoutes(views)

	current, err := currentObjects(ctx, r.Client, desired, existing)
	if err != nil {
		return 0, err
	}
	plan := mapper.DiffWith(desired, current, func(o mapper.Object) bool { return mapper.RouteOwned(o, snap) }, r.memo.Differs)
	r.Reporter.Report(ctx, "route-conflicts", plan.Conflicts, func(p mapper.Problem) client.Object { return refObject(p.Object) })
	if plan.Empty() {
		logger.V(1).Info("Routes are up to date", "routes", len(routes))
		return drillEnd, nil
	}
	logger.Info("Applying route plan", "plan", plan.String(), "routes", len(routes))
	if err := r.Applier.Apply(ctx, plan); err != nil {
		return 0, fmt.Errorf("apply route plan: %w", err)
	}
	return drillEnd, nil
}

// RouteViews is the pure part of a reconcile of the route role: the routes
// of snap (mapper.Routes), the objects crossmap wants in the cluster, and
// what the status API shows of each route. A held route keeps the objects
// it generated before, found among owned, with health applied to its last
// valid configuration (issue 13). Reconcile and the conformance test
// (internal/emissarytest), which holds /status/routes against Emissary's
// compiler, both build the status of routes here.
func RouteViews(snap mapper.RouteSnapshot, owned []mapper.Object) ([]mapper.Route, []mapper.Object, []status.Route) {
	t := mapper.TranslateRoutes(snap)
	var desired []mapper.Object
	views := make([]status.Route, 0, len(t.Routes))
	for _, rt := range t.Routes {
		objs, backends, failover := rt.Objects, rt.Backends, rt.Failover
		if rt.Held {
			// Keep what was generated before: a bad annotation must not
			// take traffic away from a working route. Its last valid
			// configuration still follows health (issue 13).
			objs, backends, failover = t.HeldRoute(ownedBy(owned, rt.Source))
		}
		desired = append(desired, objs...)
		views = append(views, status.Route{Namespace: rt.Source.Namespace, Name: rt.Source.Name, Failover: failover,
			Held: rt.Held, HeldReason: rt.HeldReason, Backends: backends, Group: rt.Group})
	}
	return t.Routes, desired, views
}

// splitList is the list crossmap reads its own TrafficSplits into. It is
// unstructured on purpose: the SMI CRD serves v1alpha1 and v1alpha2 of one
// stored object without conversion, so a v1alpha1 TrafficSplit of somebody
// else's (weight: 500m) cannot be decoded as a typed v1alpha2 one, and a
// typed list would fail on it and stop every route.
func (r *RouteReconciler) splitList() client.ObjectList {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(trafficSplitGVK(r.Config.TrafficSplitVersion).GroupVersion().WithKind("TrafficSplitList"))
	return l
}

func trafficSplitGVK(version string) schema.GroupVersionKind {
	if version == ingress.TrafficSplitV1alpha1 {
		return splitv1alpha1.SchemeGroupVersion.WithKind("TrafficSplit")
	}
	return splitv1alpha2.SchemeGroupVersion.WithKind("TrafficSplit")
}

// recordWeights counts effective weight changes and failovers against what
// the model held before, and tells people: an Event on the Mapping and a
// log line whenever its effective weights change.
func (r *RouteReconciler) recordWeights(ctx context.Context, views []status.Route) {
	for _, v := range views {
		prev, known := r.Model.Route(v.Key())
		before := map[string]mapper.RouteBackend{}
		for _, b := range prev.Backends {
			before[b.Cluster+"/"+b.Header] = b
		}
		changed, degraded := false, false
		for _, b := range v.Backends {
			old, ok := before[b.Cluster+"/"+b.Header]
			if ok && old.Effective != b.Effective {
				changed = true
				r.Metrics.RouteWeightChanges.WithLabelValues(v.Key(), b.Cluster).Inc()
			}
			if b.Cluster != "" && b.Effective != b.Configured {
				degraded = true
				if !ok || old.Effective == old.Configured {
					r.Metrics.Failovers.WithLabelValues(v.Key(), b.Cluster).Inc()
				}
			}
		}
		if !known || !changed {
			continue
		}
		typ, reason := corev1.EventTypeNormal, "WeightsRestored"
		if degraded {
			typ, reason = corev1.EventTypeWarning, "Failover"
		}
		summary := weightSummary(v.Backends)
		log.FromContext(ctx).Info("Route weights changed", "mapping", v.Key(), "weights", summary)
		m := &ambv3.Mapping{}
		m.Namespace, m.Name = v.Namespace, v.Name
		r.Reporter.Recorder.Eventf(m, typ, reason, "effective weights now %s", summary)
	}
}

// weightSummary reads like "local 100, east 0 (gateway of cluster east is
// dead)".
func weightSummary(bs []mapper.RouteBackend) string {
	var parts []string
	for _, b := range bs {
		if b.Header != "" {
			continue
		}
		name := cmp.Or(b.Cluster, "local")
		part := fmt.Sprintf("%s %d", name, b.Effective)
		if b.Reason != "" {
			part += " (" + b.Reason + ")"
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

func (r *RouteReconciler) snapshot(ctx context.Context) (mapper.RouteSnapshot, []crossmapv1.Link, error) {
	snap := mapper.RouteSnapshot{
		AmbassadorID:        r.Config.AmbassadorID,
		DevHeader:           r.Config.DevHeader,
		ServedByHeader:      r.Config.ServedByHeader,
		TrafficSplit:        r.Config.TrafficSplit,
		TrafficSplitVersion: r.Config.TrafficSplitVersion,
	}
	// The Services routes depend on are known before the Services are
	// read: see routeDeps.
	var mappings ambv3.MappingList
	if err := r.Client.List(ctx, &mappings, client.UnsafeDisableDeepCopy); err != nil {
		return snap, nil, fmt.Errorf("list mappings: %w", err)
	}
	r.deps.update(mappings.Items)
	objs, err := ListRoutingObjects(ctx, r.Client)
	if err != nil {
		return snap, nil, err
	}
	snap.Mappings, snap.Hosts, snap.Services, snap.Slices = objs.Mappings, objs.Hosts, objs.Services, objs.Slices
	var links crossmapv1.LinkList
	if err := r.Client.List(ctx, &links); err != nil {
		return snap, nil, fmt.Errorf("list links: %w", err)
	}
	now := time.Now()
	snap.Links = LinkHealths(links.Items, now, r.Health, r.Config.MutualTLS())
	return snap, links.Items, nil
}

// ownedBy picks the objects generated for the annotated Mapping src.
func ownedBy(objs []mapper.Object, src mapper.ObjectRef) []mapper.Object {
	return slices.DeleteFunc(slices.Clone(objs), func(o mapper.Object) bool {
		l := o.GetLabels()
		return l[crossmapv1.LabelSourceNamespace] != src.Namespace || l[crossmapv1.LabelSourceName] != src.Name
	})
}
