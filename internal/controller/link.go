package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/remote"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// lastSyncResolution is how stale a Link's status.lastSyncTime may be.
const lastSyncResolution = 30 * time.Second

// connectGrace is how long a new remote watcher may take to list the
// remote cluster before the Link says it is still connecting.
const connectGrace = 5 * time.Second

// LinkReconciler is the import role: for each Link it runs a remote Watcher
// (and a gateway Prober when the Link asks for one) and keeps the local
// mirrors equal to what the remote cluster exports.
//
// Its files: link.go wires the role and reconciles; link_remote.go runs
// the remote Watchers; link_gateway.go resolves and probes gateways;
// link_tls.go holds the client certificate; link_status.go is the pure
// function from what is known to the Link's conditions and status view;
// link_report.go writes them and tells of their changes.
type LinkReconciler struct {
	Client   client.Client
	Applier  *Applier
	Reporter *Reporter
	Model    *status.Model
	Metrics  *Metrics
	Config   Config
	// Resolve looks up gateway DNS names; tests inject their own.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Echoes is the Applier's: it tells the events of the Link's own
	// mirror writes, which need no reconcile. Nil sees every event.
	Echoes *Echoes

	// Health receives every verdict on a gateway, for the route role.
	Health *GatewayHealth
	// ClustersetChanged, if set, is called whenever what Clusterset
	// returns may have changed: after each reconcile of a Link, and when
	// one is deleted. The MCS role sets it.
	ClustersetChanged func()

	events   chan event.TypedGenericEvent[*crossmapv1.Link]
	stopping chan struct{}
	mu       sync.Mutex
	links    map[types.NamespacedName]*linkEntry
	// clientMaterial caches the parsed client certificate (guarded by mu).
	clientMaterial clientMaterial
}

// SetupWithManager registers the import role with mgr.
func (r *LinkReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.events = make(chan event.TypedGenericEvent[*crossmapv1.Link], 1024)
	r.stopping = make(chan struct{})
	r.links = map[types.NamespacedName]*linkEntry{}
	if r.Resolve == nil {
		r.Resolve = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	// Stop every Watcher and Prober when the manager stops.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		close(r.stopping)
		r.stopAll()
		return nil
	})); err != nil {
		return err
	}
	if r.Echoes != nil {
		// An event the echo filter held back, that turned out not to be
		// an echo, reaches the Link late but surely.
		r.Echoes.Missed = func(obj client.Object) {
			for _, req := range r.linkOfMirror(context.Background(), obj) {
				r.notifier(req.NamespacedName)()
			}
		}
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("link").
		For(&crossmapv1.Link{}).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.linksForSecret)).
		// The echoes of the Link's own mirror writes are dropped: see Echoes.
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(r.linkOfMirror),
			builder.WithPredicates(r.Echoes.Filter(corev1.SchemeGroupVersion.WithKind("Service").GroupKind()))).
		Watches(&discoveryv1.EndpointSlice{}, handler.EnqueueRequestsFromMapFunc(r.linkOfMirror),
			builder.WithPredicates(r.Echoes.Filter(discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice").GroupKind()))).
		// A namespace that appears may unblock a skipped mirror.
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.allLinks)).
		WatchesRawSource(source.Channel(r.events, &handler.TypedEnqueueRequestForObject[*crossmapv1.Link]{})).
		Complete(counted("link", r.Metrics, r))
}

func (r *LinkReconciler) linksForSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var links crossmapv1.LinkList
	if err := r.Client.List(ctx, &links, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var out []reconcile.Request
	// Every Link's probe uses the client certificate and trust anchor.
	tlsSecret := o.GetName() == ingress.ClientCertSecret || o.GetName() == ingress.TrustCASecret
	for _, l := range links.Items {
		if tlsSecret || l.Spec.CredentialsSecret.Name == o.GetName() {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&l)})
		}
	}
	return out
}

func (r *LinkReconciler) allLinks(ctx context.Context, _ client.Object) []reconcile.Request {
	var links crossmapv1.LinkList
	if err := r.Client.List(ctx, &links, client.InNamespace(r.Config.Namespace)); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(links.Items))
	for _, l := range links.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&l)})
	}
	return out
}

// linkOfMirror maps a mirror back to its Link, so that a mirror someone
// edited or deleted is put right. Mirrors of Links in another namespace
// belong to another crossmap installation, whose Links this one neither
// caches nor may read.
func (r *LinkReconciler) linkOfMirror(_ context.Context, o client.Object) []reconcile.Request {
	l := o.GetLabels()
	if l[crossmapv1.LabelManagedBy] != crossmapv1.ManagedBy || l[crossmapv1.LabelRole] != crossmapv1.RoleMirror ||
		l[crossmapv1.LabelLinkNamespace] != r.Config.Namespace {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: l[crossmapv1.LabelLinkNamespace], Name: l[crossmapv1.LabelLink]}}}
}

// notifier returns the callback remote Watchers and Probers use to wake the
// Link up. The send blocks only while the channel's buffer is full, and the
// controller's channel source drains it into the work queue at once; a
// wake-up is never dropped, since the Link it names might have no other.
func (r *LinkReconciler) notifier(key types.NamespacedName) func() {
	return func() {
		select {
		case r.events <- event.TypedGenericEvent[*crossmapv1.Link]{Object: &crossmapv1.Link{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}}:
		case <-r.stopping:
			// The manager is stopping and nobody reads the channel.
		}
	}
}

// Reconcile brings one Link's mirrors in line with its remote cluster and
// its gateway's health, and says how the Link is.
func (r *LinkReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	var link crossmapv1.Link
	if err := r.Client.Get(ctx, req.NamespacedName, &link); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, r.forget(ctx, req.NamespacedName)
		}
		return reconcile.Result{}, fmt.Errorf("get link: %w", err)
	}
	ref := linkRef(&link)
	e := r.entry(req.NamespacedName)
	now := time.Now()
	facts := linkFacts{Namespace: link.Namespace, Name: link.Name, Cluster: ref.Cluster, Mode: ref.Mode,
		Generation: link.Generation, Now: now.Truncate(time.Second), Previous: link.Status.Conditions,
		Drill: readDrill(link.Spec.Drill, now)}
	e.cluster = ref.Cluster

	// The gateway first, whatever the state of the remote API: its health
	// drives the mirrors and the routes by itself (issue 13).
	gateway, addrs, resolveErr := r.ensureGateway(ctx, &link, e)
	facts.Gateway = gateway
	// A drill drains the mirrors as a dead gateway does, once the routes
	// have left them (drillMirrorDelay). The gateway's own verdict (the
	// probe, the GatewayAlive condition) stays the truth.
	alive := gatewayAlive(facts) && !facts.Drill.DrainMirrors

	rt, err := r.ensureRuntime(ctx, &link, e)
	var setup *setupError
	switch {
	case errors.As(err, &setup):
		// Credentials or selector problems: the Link says so, the mirrors
		// stay (following the gateway), and a change to the Link or
		// Secret retries.
		facts.Remote.SetupReason, facts.Remote.SetupErr = setup.reason, setup.err
	case err != nil:
		return reconcile.Result{}, err
	default:
		health := rt.watcher.Health()
		facts.Remote.Synced, facts.Remote.Reachable, facts.Remote.Err = rt.watcher.Synced(), health.Reachable, health.Err
	}
	// A watcher that just started (a controller restart, rotated
	// credentials) lists the remote within moments. Saying "Connecting"
	// meanwhile would write the Link's status twice and send Events on
	// every start, for nothing: the remote's side of the status waits
	// until then. The gateway's does not.
	grace := rt != nil && !facts.Remote.Synced && facts.Remote.Err == nil && time.Since(rt.started) < connectGrace

	owner := mapper.MirrorSelector(ref)
	owned, err := listOwned(ctx, r.Client, owner, &corev1.ServiceList{}, &discoveryv1.EndpointSliceList{})
	if err != nil {
		return reconcile.Result{}, err
	}
	var (
		desired        []mapper.Object
		importProblems []mapper.Problem
		pendingSince   time.Time
		differs        = mapper.Differs
	)
	if facts.Remote.readable() {
		var nsList corev1.NamespaceList
		// Read-only, so not deep-copied out of the cache: only names are read.
		if err := r.Client.List(ctx, &nsList, client.UnsafeDisableDeepCopy); err != nil {
			return reconcile.Result{}, fmt.Errorf("list namespaces: %w", err)
		}
		local := sets.New[string]()
		for _, ns := range nsList.Items {
			local.Insert(ns.Name)
		}
		// Every remote change that arrived before this point is in the
		// caches read below: its lag ends when the plan built from them is
		// written.
		pendingSince = rt.watcher.TakePending()
		desired, _, importProblems = rt.imports.Import(mapper.ImportSnapshot{
			Link:             ref,
			GatewayAddresses: addrs,
			GatewayAlive:     alive,
			Services:         rt.watcher.Services(),
			Slices:           rt.watcher.Slices(),
			LocalNamespaces:  local,
		})
		e.importProblems = importProblems
		differs = rt.memo.Differs
	} else {
		// The remote cannot be read (or not yet): computing mirrors from an
		// empty cache would delete them all. They stay as they are, with
		// the gateway's health applied, and so do the problems found when
		// the remote was last read.
		desired = mapper.HoldMirrors(owned, alive)
		importProblems = e.importProblems
	}
	problems := slices.Concat(remoteProblems(facts), importProblems)
	if rt != nil {
		if err := rt.watcher.ServiceExportsErr(); err != nil && !errors.Is(err, remote.ErrServiceExportsNotServed) {
			problems = append(problems, mapper.Problem{Reason: ReasonServiceExportsUnreadable,
				Object: mapper.ObjectRef{Kind: "Link", Namespace: link.Namespace, Name: link.Name}, Message: err.Error()})
		}
	}
	if resolveErr != nil {
		problems = append(problems, mapper.Problem{Reason: ReasonResolveFailed,
			Object: mapper.ObjectRef{Kind: "Link", Namespace: link.Namespace, Name: link.Name}, Message: resolveErr.Error()})
	}
	current, err := currentObjects(ctx, r.Client, desired, owned)
	if err != nil {
		return reconcile.Result{}, err
	}
	// current starts with owned, which the list selected by the owner
	// labels already; only what stands at a desired key is checked again.
	others := sets.New(current[len(owned):]...)
	plan := mapper.DiffWith(desired, current, func(o mapper.Object) bool {
		_, isNS := o.(*corev1.Namespace)
		// Namespaces are created when missing but never deleted: by then
		// they may hold anybody's objects.
		return !isNS && (!others.Has(o) || hasLabels(o, owner))
	}, differs)
	problems = append(problems, plan.Conflicts...)
	if !grace {
		r.Reporter.Report(ctx, "link/"+req.String(), problems, func(mapper.Problem) client.Object { return &link })
	}

	mirroredList := []string{}
	for _, d := range desired {
		if svc, ok := d.(*corev1.Service); ok && !slices.ContainsFunc(plan.Conflicts, func(p mapper.Problem) bool {
			return p.Object.Kind == "Service" && p.Object.Namespace == svc.Namespace && p.Object.Name == svc.Name
		}) {
			mirroredList = append(mirroredList, svc.Namespace+"/"+svc.Name)
		}
	}
	facts.Problems, facts.Mirrored = problems, len(mirroredList)
	link.Status.MirroredServices = int32(len(mirroredList))
	r.Metrics.MirroredServices.WithLabelValues(req.String()).Set(float64(len(mirroredList)))

	if !plan.Empty() {
		logger.Info("Applying mirror plan", "plan", plan.String(), "cluster", ref.Cluster)
		if err := r.Applier.Apply(ctx, plan); err != nil {
			facts.ApplyErr = err
			_ = r.setStatus(ctx, &link, facts, grace, addrs, mirroredList, e)
			return reconcile.Result{}, fmt.Errorf("apply mirror plan: %w", err)
		}
		now := metav1.Now()
		e.lastSync = now.Time
		// The status field moves in steps of lastSyncResolution: writing
		// it on every change would double the API writes of a busy Link.
		// The status API shows the exact time.
		if last := link.Status.LastSyncTime; last == nil || now.Sub(last.Time) >= lastSyncResolution {
			link.Status.LastSyncTime = &now
		}
		if !pendingSince.IsZero() {
			lag := now.Sub(pendingSince)
			r.Metrics.PropagationLag.WithLabelValues(req.String()).Observe(lag.Seconds())
			e.recordLag(plan, lag, now.Time)
		}
	} else if link.Status.LastSyncTime == nil && facts.Remote.readable() {
		now := metav1.Now()
		link.Status.LastSyncTime = &now
	}
	r.Model.SetServices(req.String(), e.services(ref, desired, mirroredList))
	r.mu.Lock()
	e.clusterset = linkClusterset{set: true, ref: ref, addrs: addrs, alive: alive}
	r.mu.Unlock()
	r.clustersetChanged()
	if err := r.setStatus(ctx, &link, facts, grace, addrs, mirroredList, e); err != nil {
		return reconcile.Result{}, err
	}
	var res reconcile.Result
	switch {
	case grace:
		res.RequeueAfter = 200 * time.Millisecond
	case facts.Remote.SetupErr == nil && !facts.Remote.Synced:
		res.RequeueAfter = time.Second
	case hasDNSNames(link.Spec.Gateway.Addresses):
		res.RequeueAfter = r.Config.ResolvePeriod
	}
	// The drain ends at the drill's end, not at whatever wakes the Link
	// next.
	res.RequeueAfter = earlier(res.RequeueAfter, drillRequeue(facts.Drill, now))
	return res, nil
}

// setStatus turns the facts into the Link's conditions and status view
// (linkStatus), records the view and writes the status. During a new
// watcher's grace the remote's conditions stay as they were.
func (r *LinkReconciler) setStatus(ctx context.Context, link *crossmapv1.Link, facts linkFacts, grace bool, addrs []netip.Addr, mirrored []string, e *linkEntry) error {
	v := linkStatus(facts)
	if grace {
		v.Conditions = keepConditions(v.Conditions, facts.Previous, crossmapv1.ConditionRemoteReachable, crossmapv1.ConditionReady)
	}
	link.Status.Conditions = v.Conditions
	view := v.View
	view.MirroredServices = mirrored
	for _, a := range addrs {
		view.GatewayAddresses = append(view.GatewayAddresses, a.String())
	}
	view.LastSync = e.lastSync
	if link.Status.LastSyncTime != nil && link.Status.LastSyncTime.After(e.lastSync) {
		view.LastSync = link.Status.LastSyncTime.Time
	}
	r.Model.SetLink(view)
	r.setDrillMetrics(facts.Cluster, facts.Drill)
	if p := facts.Gateway.Probe; p == nil || !p.Probed {
		// A probe that has run writes this itself, after every round.
		r.Metrics.GatewayAlive.WithLabelValues(view.Key()).Set(boolGauge(view.GatewayAlive))
	}
	return r.writeStatus(ctx, link)
}

// keepConditions puts back the previous conditions of the given types in
// conds, where they were; a type that had none is dropped.
func keepConditions(conds, previous []metav1.Condition, types ...string) []metav1.Condition {
	out := make([]metav1.Condition, 0, len(conds))
	for _, c := range conds {
		if !slices.Contains(types, c.Type) {
			out = append(out, c)
			continue
		}
		if old := meta.FindStatusCondition(previous, c.Type); old != nil {
			out = append(out, *old)
		}
	}
	return out
}

func linkRef(l *crossmapv1.Link) mapper.LinkRef {
	return mapper.LinkRef{
		Namespace:        l.Namespace,
		Name:             l.Name,
		Cluster:          l.Spec.ClusterName,
		Mode:             cmp.Or(l.Spec.Mode, crossmapv1.ModeGateway),
		GatewayPort:      cmp.Or(l.Spec.Gateway.Port, crossmapv1.DefaultGatewayPort),
		CreateNamespaces: l.Spec.CreateNamespaces,
	}
}
