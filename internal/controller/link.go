package controller

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
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
	"github.com/crossmap/crossmap/internal/pki"
	"github.com/crossmap/crossmap/internal/remote"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// Condition reasons on a Link.
const (
	ReasonSecretNotFound     = "SecretNotFound"
	ReasonInvalidCredentials = "InvalidCredentials"
	ReasonConnecting         = "Connecting"
	ReasonUnreachable        = "Unreachable"
	ReasonConnected          = "Connected"
	ReasonProbeSucceeded     = "ProbeSucceeded"
	ReasonProbeFailed        = "ProbeFailed"
	ReasonNotProbed          = "NotProbed"
	ReasonSynced             = "Synced"
	ReasonInvalidSelector    = "InvalidSelector"
	ReasonResolveFailed      = "ResolveFailed"
	ReasonForbidden          = "Forbidden"
	ReasonUnauthorized       = "Unauthorized"
	// ReasonNoClientCertificate: mutual TLS is on but the trust role has
	// not issued this cluster's client certificate (no trust anchor).
	ReasonNoClientCertificate = "NoClientCertificate"
	// ReasonHandshakeSucceeded: the probe's mutual TLS handshake worked.
	// Failures carry pki's reasons (UnknownCA, CertificateExpired,
	// IdentityMismatch, CertificateRejected, HandshakeFailed).
	ReasonHandshakeSucceeded = "HandshakeSucceeded"
)

// lastSyncResolution is how stale a Link's status.lastSyncTime may be.
const lastSyncResolution = 30 * time.Second

// connectGrace is how long a new remote watcher may take to list the
// remote cluster before the Link says it is still connecting.
const connectGrace = 5 * time.Second

// remoteReason tells credentials that the remote cluster refuses from a
// remote cluster that does not answer.
func remoteReason(err error) string {
	switch {
	case apierrors.IsForbidden(err):
		return ReasonForbidden
	case apierrors.IsUnauthorized(err):
		return ReasonUnauthorized
	}
	return ReasonUnreachable
}

// LinkReconciler is the import role: for each Link it runs a remote Watcher
// (and a gateway Prober when the Link asks for one) and keeps the local
// mirrors equal to what the remote cluster exports.
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

	events   chan event.TypedGenericEvent[*crossmapv1.Link]
	stopping chan struct{}
	mu       sync.Mutex
	remotes  map[types.NamespacedName]*linkRuntime
	// clientMaterial caches the parsed client certificate (guarded by mu).
	clientMaterial clientMaterial
}

// linkRuntime is what runs on behalf of one Link.
type linkRuntime struct {
	hash     string
	started  time.Time
	watcher  *remote.Watcher
	prober   *remote.Prober
	probeKey string
	// addrs is the last successful resolution of the gateway addresses:
	// a failed DNS lookup keeps them rather than cutting traffic.
	addrs []netip.Addr
	// lastSync is when this Link's mirrors last changed, exactly.
	lastSync time.Time
	// memo remembers Diff's comparisons for this Link's objects.
	memo mapper.DiffMemo
	// imports remembers the translation of each remote Service.
	imports mapper.ImportMemo
	// lags holds, per mirror Service (namespace/name), the propagation
	// lag and time of its last change, for the status API.
	lags map[string]syncRecord
	// tlsErr and tlsErrAt are the last failed handshake, kept across
	// probers (a renewed certificate starts a new one) for the status API.
	tlsErr   string
	tlsErrAt time.Time
}

type syncRecord struct {
	lag time.Duration
	at  time.Time
}

// recordLag notes the lag of every mirror the plan wrote.
func (rt *linkRuntime) recordLag(p mapper.Plan, lag time.Duration, at time.Time) {
	if rt.lags == nil {
		rt.lags = map[string]syncRecord{}
	}
	for _, group := range [][]client.Object{p.Create, p.Update, p.Delete} {
		for _, o := range group {
			name := o.GetName()
			if es, ok := o.(*discoveryv1.EndpointSlice); ok {
				name = es.Labels[discoveryv1.LabelServiceName]
			}
			rt.lags[o.GetNamespace()+"/"+name] = syncRecord{lag: lag, at: at}
		}
	}
}

// services describes the mirrors in desired for the status API. mirrored
// lists the mirror Services that are not in conflict.
func (rt *linkRuntime) services(ref mapper.LinkRef, desired []client.Object, mirrored []string) []status.Service {
	var out []status.Service
	isMirrored := sets.New(mirrored...)
	slicesOf := map[string][]*discoveryv1.EndpointSlice{}
	for _, o := range desired {
		if es, ok := o.(*discoveryv1.EndpointSlice); ok {
			k := es.Namespace + "/" + es.Labels[discoveryv1.LabelServiceName]
			slicesOf[k] = append(slicesOf[k], es)
		}
	}
	for _, d := range desired {
		svc, ok := d.(*corev1.Service)
		if !ok || !isMirrored.Has(svc.Namespace+"/"+svc.Name) {
			continue
		}
		s := status.Service{
			Namespace: svc.Namespace, Name: svc.Name,
			Link: ref.Namespace + "/" + ref.Name, Cluster: ref.Cluster, Mode: string(ref.Mode),
			Source: svc.Labels[crossmapv1.LabelSourceNamespace] + "/" + svc.Labels[crossmapv1.LabelSourceName],
		}
		for _, es := range slicesOf[svc.Namespace+"/"+svc.Name] {
			for _, ep := range es.Endpoints {
				s.Endpoints++
				if ptr.Deref(ep.Conditions.Ready, true) {
					s.ReadyEndpoints++
				}
			}
		}
		s.Ready = s.ReadyEndpoints > 0
		if rec, ok := rt.lags[s.Key()]; ok {
			s.Lag, s.LastSync = rec.lag.String(), rec.at
		}
		out = append(out, s)
	}
	return out
}

// SetupWithManager registers the import role with mgr.
func (r *LinkReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.events = make(chan event.TypedGenericEvent[*crossmapv1.Link], 1024)
	r.stopping = make(chan struct{})
	r.remotes = map[types.NamespacedName]*linkRuntime{}
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

// Reconcile brings one Link's mirrors in line with its remote cluster.
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
	st := linkState{link: &link, view: status.Link{
		Namespace: link.Namespace, Name: link.Name, Cluster: ref.Cluster, Mode: string(ref.Mode),
		MirroredServices: []string{},
	}}
	defer func() { r.Model.SetLink(st.view) }()

	rt, err := r.ensureRuntime(ctx, &link, &st)
	if err != nil {
		// Credentials or selector problems: the Link says so, the mirrors stay
		// as they were, and a change to the Link or Secret retries.
		st.remote(metav1.ConditionFalse, st.reason, err.Error())
		st.ready(metav1.ConditionFalse, st.reason, "remote cluster cannot be watched: "+err.Error())
		r.Reporter.Report(ctx, "link/"+req.String(), []mapper.Problem{{
			Reason: st.reason, Object: mapper.ObjectRef{Kind: "Link", Namespace: link.Namespace, Name: link.Name}, Message: err.Error(),
		}}, func(mapper.Problem) client.Object { return &link })
		st.view.LastError = err.Error()
		return reconcile.Result{}, r.writeStatus(ctx, &st)
	}

	health := rt.watcher.Health()
	synced := rt.watcher.Synced()
	if !synced && health.Err == nil && time.Since(rt.started) < connectGrace {
		// A watcher that just started (a controller restart, rotated
		// credentials) lists the remote within moments. Saying
		// "Connecting" meanwhile would write the Link's status twice and
		// send Events on every start, for nothing.
		return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	// remoteProblems says why the remote cluster cannot be read, if it
	// cannot: in the status API as well as in the condition.
	var remoteProblems []mapper.Problem
	linkObj := mapper.ObjectRef{Kind: "Link", Namespace: link.Namespace, Name: link.Name}
	switch {
	case !synced && health.Err != nil:
		reason := remoteReason(health.Err)
		st.remote(metav1.ConditionFalse, reason, health.Err.Error())
		remoteProblems = append(remoteProblems, mapper.Problem{Reason: reason, Object: linkObj,
			Message: fmt.Sprintf("cluster %s: %v; existing mirrors are kept", ref.Cluster, health.Err)})
	case !synced:
		st.remote(metav1.ConditionUnknown, ReasonConnecting, "waiting for the first list of the remote cluster")
	case !health.Reachable && health.Err != nil:
		reason := remoteReason(health.Err)
		st.remote(metav1.ConditionFalse, reason, health.Err.Error()+"; mirrors are kept as last seen")
		remoteProblems = append(remoteProblems, mapper.Problem{Reason: reason, Object: linkObj,
			Message: fmt.Sprintf("cluster %s: %v; mirrors are kept as last seen", ref.Cluster, health.Err)})
	default:
		st.remote(metav1.ConditionTrue, ReasonConnected, "remote API server answers")
	}
	st.view.RemoteReachable = synced && (health.Reachable || health.Err == nil)
	if health.Err != nil {
		st.view.LastError = health.Err.Error()
	}

	addrs, resolveErr := r.resolve(ctx, &link, rt)
	for _, a := range addrs {
		st.view.GatewayAddresses = append(st.view.GatewayAddresses, a.String())
	}
	alive := r.probe(ctx, &link, rt, addrs, &st)

	// Until the remote cluster has been listed once, its state is unknown:
	// computing mirrors from an empty cache would delete them all.
	if !synced {
		st.ready(metav1.ConditionFalse, ReasonConnecting, "waiting for the remote cluster; existing mirrors are kept")
		r.Reporter.Report(ctx, "link/"+req.String(), remoteProblems, func(mapper.Problem) client.Object { return &link })
		if err := r.writeStatus(ctx, &st); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{RequeueAfter: time.Second}, nil
	}

	var nsList corev1.NamespaceList
	// Read-only, so not deep-copied out of the cache: only names are read.
	if err := r.Client.List(ctx, &nsList, client.UnsafeDisableDeepCopy); err != nil {
		return reconcile.Result{}, fmt.Errorf("list namespaces: %w", err)
	}
	local := sets.New[string]()
	for _, ns := range nsList.Items {
		local.Insert(ns.Name)
	}
	// Every remote change that arrived before this point is in the caches
	// read below: its lag ends when the plan built from them is written.
	pendingSince := rt.watcher.TakePending()
	desired, mirrored, problems := rt.imports.Import(mapper.ImportSnapshot{
		Link:             ref,
		GatewayAddresses: addrs,
		GatewayAlive:     alive,
		Services:         rt.watcher.Services(),
		Slices:           rt.watcher.Slices(),
		LocalNamespaces:  local,
	})
	problems = append(remoteProblems, problems...)
	if resolveErr != nil {
		problems = append(problems, mapper.Problem{Reason: ReasonResolveFailed,
			Object: mapper.ObjectRef{Kind: "Link", Namespace: link.Namespace, Name: link.Name}, Message: resolveErr.Error()})
	}
	owner := mapper.MirrorSelector(ref)
	owned, err := listOwned(ctx, r.Client, owner, &corev1.ServiceList{}, &discoveryv1.EndpointSliceList{})
	if err != nil {
		return reconcile.Result{}, err
	}
	current, err := currentObjects(ctx, r.Client, desired, owned)
	if err != nil {
		return reconcile.Result{}, err
	}
	// current starts with owned, which the list selected by the owner
	// labels already; only what stands at a desired key is checked again.
	others := sets.New(current[len(owned):]...)
	plan := mapper.DiffWith(desired, current, func(o client.Object) bool {
		_, isNS := o.(*corev1.Namespace)
		// Namespaces are created when missing but never deleted: by then
		// they may hold anybody's objects.
		return !isNS && (!others.Has(o) || hasLabels(o, owner))
	}, rt.memo.Differs)
	problems = append(problems, plan.Conflicts...)
	r.Reporter.Report(ctx, "link/"+req.String(), problems, func(mapper.Problem) client.Object { return &link })

	for _, d := range desired {
		if svc, ok := d.(*corev1.Service); ok && !slices.ContainsFunc(plan.Conflicts, func(p mapper.Problem) bool {
			return p.Object.Kind == "Service" && p.Object.Namespace == svc.Namespace && p.Object.Name == svc.Name
		}) {
			st.view.MirroredServices = append(st.view.MirroredServices, svc.Namespace+"/"+svc.Name)
		}
	}
	mirrored -= countKind(plan.Conflicts, "Service")
	st.link.Status.MirroredServices = int32(mirrored)
	r.Metrics.MirroredServices.WithLabelValues(req.String()).Set(float64(mirrored))

	if !plan.Empty() {
		logger.Info("Applying mirror plan", "plan", plan.String(), "cluster", ref.Cluster)
		if err := r.Applier.Apply(ctx, plan); err != nil {
			st.ready(metav1.ConditionFalse, "ApplyFailed", err.Error())
			st.view.LastError = err.Error()
			_ = r.writeStatus(ctx, &st)
			return reconcile.Result{}, fmt.Errorf("apply mirror plan: %w", err)
		}
		now := metav1.Now()
		rt.lastSync = now.Time
		// The status field moves in steps of lastSyncResolution: writing
		// it on every change would double the API writes of a busy Link.
		// The status API shows the exact time.
		if last := st.link.Status.LastSyncTime; last == nil || now.Sub(last.Time) >= lastSyncResolution {
			st.link.Status.LastSyncTime = &now
		}
		if !pendingSince.IsZero() {
			lag := now.Sub(pendingSince)
			r.Metrics.PropagationLag.WithLabelValues(req.String()).Observe(lag.Seconds())
			rt.recordLag(plan, lag, now.Time)
		}
	} else if st.link.Status.LastSyncTime == nil {
		now := metav1.Now()
		st.link.Status.LastSyncTime = &now
	}
	st.view.LastSync = rt.lastSync
	if st.link.Status.LastSyncTime != nil && st.link.Status.LastSyncTime.After(rt.lastSync) {
		st.view.LastSync = st.link.Status.LastSyncTime.Time
	}
	r.Model.SetServices(req.String(), rt.services(ref, desired, st.view.MirroredServices))
	switch {
	case len(problems) > 0:
		st.ready(metav1.ConditionFalse, problems[0].Reason, fmt.Sprintf("%d problem(s); first: %s", len(problems), problems[0].Message))
	case meta.IsStatusConditionFalse(link.Status.Conditions, crossmapv1.ConditionRemoteReachable):
		st.ready(metav1.ConditionFalse, ReasonUnreachable, "remote cluster unreachable; mirrors are kept as last seen")
	default:
		st.ready(metav1.ConditionTrue, ReasonSynced, fmt.Sprintf("%d service(s) mirrored", mirrored))
	}
	if err := r.writeStatus(ctx, &st); err != nil {
		return reconcile.Result{}, err
	}
	var res reconcile.Result
	if hasDNSNames(link.Spec.Gateway.Addresses) {
		res.RequeueAfter = r.Config.ResolvePeriod
	}
	return res, nil
}

func countKind(ps []mapper.Problem, kind string) int {
	n := 0
	for _, p := range ps {
		if p.Object.Kind == kind {
			n++
		}
	}
	return n
}

// linkState gathers the Link's new status during a reconcile.
type linkState struct {
	link   *crossmapv1.Link
	view   status.Link
	reason string
}

func (s *linkState) key() string { return s.link.Namespace + "/" + s.link.Name }

func (s *linkState) set(typ string, st metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&s.link.Status.Conditions, metav1.Condition{
		Type: typ, Status: st, Reason: reason, Message: msg, ObservedGeneration: s.link.Generation,
	})
}
func (s *linkState) remote(st metav1.ConditionStatus, reason, msg string) {
	s.set(crossmapv1.ConditionRemoteReachable, st, reason, msg)
}
func (s *linkState) ready(st metav1.ConditionStatus, reason, msg string) {
	s.set(crossmapv1.ConditionReady, st, reason, msg)
}
func (s *linkState) gateway(st metav1.ConditionStatus, reason, msg string) {
	s.set(crossmapv1.ConditionGatewayAlive, st, reason, msg)
}
func (s *linkState) mutualTLS(st metav1.ConditionStatus, reason, msg string) {
	s.set(crossmapv1.ConditionMutualTLS, st, reason, msg)
}

// writeStatus writes the Link's status only when it changed, so that a
// steady state makes no writes at all.
func (r *LinkReconciler) writeStatus(ctx context.Context, st *linkState) error {
	var cur crossmapv1.Link
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(st.link), &cur); err != nil {
		return client.IgnoreNotFound(err)
	}
	st.link.Status.ObservedGeneration = st.link.Generation
	if equality.Semantic.DeepEqual(cur.Status, st.link.Status) || r.Applier.DryRun {
		return nil
	}
	before := cur.Status.DeepCopy()
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Status = st.link.Status
	r.Metrics.Writes.WithLabelValues("status").Inc()
	if err := r.Client.Status().Patch(ctx, &cur, patch); err != nil {
		return fmt.Errorf("update link status: %w", err)
	}
	r.recordTransitions(ctx, &cur, before.Conditions)
	return nil
}

// recordTransitions records an Event and a log line for every condition
// whose status changed, so that "the gateway died at 10:42" can be read
// from kubectl describe long after the condition has recovered.
func (r *LinkReconciler) recordTransitions(ctx context.Context, link *crossmapv1.Link, before []metav1.Condition) {
	for _, c := range link.Status.Conditions {
		old := meta.FindStatusCondition(before, c.Type)
		// A new reason for the same failure (UnknownCA, then
		// CertificateExpired) is news too.
		if old != nil && old.Status == c.Status && (c.Status == metav1.ConditionTrue || old.Reason == c.Reason) {
			continue
		}
		typ := corev1.EventTypeNormal
		if c.Status != metav1.ConditionTrue {
			typ = corev1.EventTypeWarning
		}
		if old == nil && c.Status != metav1.ConditionFalse {
			// A Link that starts healthy, or not checked yet (no probe,
			// still connecting), is not news.
			continue
		}
		log.FromContext(ctx).Info("Link condition changed", "condition", c.Type, "status", c.Status, "reason", c.Reason, "message", c.Message)
		r.Reporter.Recorder.Eventf(link, typ, c.Reason, "%s is %s: %s", c.Type, c.Status, c.Message)
	}
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

// ensureRuntime starts, or restarts when its credentials or selector
// changed, the Watcher of the Link's remote cluster.
func (r *LinkReconciler) ensureRuntime(ctx context.Context, link *crossmapv1.Link, st *linkState) (*linkRuntime, error) {
	key := client.ObjectKeyFromObject(link)
	selector, err := exportSelector(link)
	if err != nil {
		st.reason = ReasonInvalidSelector
		return nil, fmt.Errorf("spec.exportSelector: %w", err)
	}
	secretKey := cmp.Or(link.Spec.CredentialsSecret.Key, crossmapv1.DefaultCredentialsKey)
	var secret corev1.Secret
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: link.Namespace, Name: link.Spec.CredentialsSecret.Name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			st.reason = ReasonSecretNotFound
			return nil, fmt.Errorf("credentials Secret %s/%s not found", link.Namespace, link.Spec.CredentialsSecret.Name)
		}
		return nil, fmt.Errorf("get credentials secret: %w", err)
	}
	kubeconfig, ok := secret.Data[secretKey]
	if !ok {
		st.reason = ReasonInvalidCredentials
		return nil, fmt.Errorf("credentials Secret %s/%s has no key %q", secret.Namespace, secret.Name, secretKey)
	}
	sum := sha256.Sum256(append(append([]byte{}, kubeconfig...), selector.String()...))
	hash := hex.EncodeToString(sum[:])

	r.mu.Lock()
	rt := r.remotes[key]
	r.mu.Unlock()
	if rt != nil && rt.hash == hash {
		return rt, nil
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		st.reason = ReasonInvalidCredentials
		return nil, fmt.Errorf("credentials Secret %s/%s key %q is not a usable kubeconfig: %w", secret.Namespace, secret.Name, secretKey, err)
	}
	w, err := remote.Start(context.WithoutCancel(ctx), cfg, remote.Options{
		Selector:     selector,
		HealthPeriod: r.Config.RemoteHealthPeriod,
		Notify:       r.notifier(key),
	})
	if err != nil {
		st.reason = ReasonInvalidCredentials
		return nil, err
	}
	log.FromContext(ctx).Info("Started watching remote cluster", "cluster", link.Spec.ClusterName, "restart", rt != nil)
	next := &linkRuntime{hash: hash, watcher: w, started: time.Now()}
	r.mu.Lock()
	if rt != nil {
		rt.watcher.Stop()
		next.prober, next.probeKey, next.addrs, next.lags, next.lastSync = rt.prober, rt.probeKey, rt.addrs, rt.lags, rt.lastSync
		next.tlsErr, next.tlsErrAt = rt.tlsErr, rt.tlsErrAt
	}
	r.remotes[key] = next
	r.mu.Unlock()
	return next, nil
}

func exportSelector(link *crossmapv1.Link) (labels.Selector, error) {
	if link.Spec.ExportSelector == nil {
		return labels.SelectorFromSet(labels.Set{crossmapv1.ExportLabel: "true"}), nil
	}
	sel, err := metav1.LabelSelectorAsSelector(link.Spec.ExportSelector)
	if err != nil {
		return nil, err
	}
	if sel.Empty() {
		return nil, errors.New("an empty selector would mirror every remote Service")
	}
	return sel, nil
}

// resolve turns the gateway addresses into IPs, keeping the last good
// answer when a lookup fails.
func (r *LinkReconciler) resolve(ctx context.Context, link *crossmapv1.Link, rt *linkRuntime) ([]netip.Addr, error) {
	if link.Spec.Mode == crossmapv1.ModeFlat {
		return nil, nil
	}
	var (
		out  []netip.Addr
		errs []error
	)
	for _, a := range link.Spec.Gateway.Addresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, ip.Unmap())
			continue
		}
		lookup, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := r.Resolve(lookup, a)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve gateway address %q: %w", a, err))
			continue
		}
		for _, ip := range ips {
			out = append(out, ip.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	out = slices.Compact(out)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(errs) > 0 && len(rt.addrs) > 0 {
		return rt.addrs, fmt.Errorf("%w; keeping the last resolved addresses", errors.Join(errs...))
	}
	rt.addrs = out
	return out, errors.Join(errs...)
}

func hasDNSNames(addrs []string) bool {
	return slices.ContainsFunc(addrs, func(a string) bool {
		_, err := netip.ParseAddr(a)
		return err != nil
	})
}

// probe keeps the Link's Prober in line with its spec and returns whether
// the gateway counts as alive. With mutual TLS on, the probe goes through
// the gateway's TLS with this cluster's client certificate, so its verdict
// on the handshake becomes the MutualTLS condition.
func (r *LinkReconciler) probe(ctx context.Context, link *crossmapv1.Link, rt *linkRuntime, addrs []netip.Addr, st *linkState) bool {
	spec := link.Spec.Probe
	gatewayMode := link.Spec.Mode != crossmapv1.ModeFlat
	var tlsView *status.LinkTLS
	if gatewayMode {
		tlsView = &status.LinkTLS{Mode: "cleartext"}
		st.view.TLS = tlsView
	}
	if !gatewayMode || !r.Config.MutualTLS() {
		meta.RemoveStatusCondition(&st.link.Status.Conditions, crossmapv1.ConditionMutualTLS)
	}
	var (
		tlsCfg      *tls.Config
		fingerprint string
	)
	if gatewayMode && r.Config.MutualTLS() {
		tlsView.Mode, tlsView.Identity = "mutual", linkIdentity(link)
		var err error
		tlsCfg, tlsView.ClientCertExpiry, fingerprint, err = r.clientTLS(ctx, linkIdentity(link))
		if err != nil {
			// Without a client certificate no request can reach the
			// gateway: the gateway is as good as dead to this cluster.
			r.stopProber(rt)
			st.mutualTLS(metav1.ConditionFalse, ReasonNoClientCertificate, err.Error())
			st.gateway(metav1.ConditionFalse, ReasonNoClientCertificate, err.Error())
			tlsView.Reason, tlsView.LastError = ReasonNoClientCertificate, err.Error()
			st.view.LastError = err.Error()
			r.Metrics.GatewayAlive.WithLabelValues(st.key()).Set(0)
			return false
		}
	}
	if spec == nil || !gatewayMode {
		r.stopProber(rt)
		st.gateway(metav1.ConditionTrue, ReasonNotProbed, "no probe configured; the gateway is taken to be alive")
		if tlsCfg != nil {
			st.mutualTLS(metav1.ConditionUnknown, ReasonNotProbed, "the gateway's certificate is checked by the probe; set spec.probe to have it checked")
			tlsView.Reason = ReasonNotProbed
		}
		st.view.GatewayAlive = true
		r.Metrics.GatewayAlive.WithLabelValues(st.key()).Set(1)
		return true
	}
	key := st.key()
	cfg := remote.ProbeConfig{
		Addresses:        addrs,
		Port:             cmp.Or(spec.Port, link.Spec.Gateway.Port, crossmapv1.DefaultGatewayPort),
		Path:             cmp.Or(spec.Path, crossmapv1.DefaultProbePath),
		Period:           cmp.Or(spec.Period.Duration, crossmapv1.DefaultProbePeriod),
		Timeout:          cmp.Or(spec.Timeout.Duration, crossmapv1.DefaultProbeTimeout),
		FailureThreshold: int(cmp.Or(spec.FailureThreshold, crossmapv1.DefaultFailureThreshold)),
		Host:             linkIdentity(link),
		TLS:              tlsCfg,
		Notify:           r.notifier(client.ObjectKeyFromObject(link)),
		OnTLSFailure: func(reason string) {
			r.Metrics.HandshakeFailures.WithLabelValues(key, reason).Inc()
		},
	}
	probeKey := fmt.Sprint(cfg.Addresses, cfg.Port, cfg.Path, cfg.Period, cfg.Timeout, cfg.FailureThreshold, cfg.Host)
	if tlsCfg != nil {
		// A renewed client certificate or trust anchor starts a new prober
		// with the new material.
		probeKey += " tls " + tlsCfg.ServerName + " " + fingerprint
	}
	r.mu.Lock()
	if rt.probeKey != probeKey {
		if rt.prober != nil {
			rt.prober.Stop()
		}
		rt.prober = remote.StartProber(context.WithoutCancel(ctx), cfg)
		rt.probeKey = probeKey
	}
	p := rt.prober
	r.mu.Unlock()

	res := p.Result()
	st.view.GatewayProbed = res.Probed
	st.view.GatewayAlive = res.Alive
	r.Metrics.GatewayAlive.WithLabelValues(key).Set(map[bool]float64{true: 1, false: 0}[res.Alive])
	if res.Probed && res.Err == nil {
		st.view.ProbeLatency = res.Latency.String()
		r.Metrics.ProbeLatency.WithLabelValues(key).Set(res.Latency.Seconds())
	}
	switch {
	case !res.Alive:
		reason := ReasonProbeFailed
		if res.TLS.Reason != "" {
			reason = res.TLS.Reason
		}
		st.gateway(metav1.ConditionFalse, reason, res.Err.Error())
		st.view.LastError = res.Err.Error()
	case !res.Probed:
		// A new prober (a restart, a changed probe) has no verdict yet;
		// what the Link said before still stands until it has one.
		if meta.FindStatusCondition(st.link.Status.Conditions, crossmapv1.ConditionGatewayAlive) == nil {
			st.gateway(metav1.ConditionUnknown, ReasonNotProbed, "first probe pending")
		}
	default:
		// Also while probes fail fewer times in a row than the threshold:
		// the condition says what counts (alive), and a message that
		// followed each round would be a status write per round. The
		// status API has the last error.
		st.gateway(metav1.ConditionTrue, ReasonProbeSucceeded, "gateway answers its probe")
		if res.Err != nil {
			st.view.LastError = res.Err.Error()
		}
	}
	if tlsCfg != nil {
		r.mu.Lock()
		if res.TLS.Err != nil {
			rt.tlsErr, rt.tlsErrAt = res.TLS.Err.Error(), res.TLS.At
		}
		tlsView.LastError, tlsView.LastErrorAt = rt.tlsErr, rt.tlsErrAt
		r.mu.Unlock()
		r.tlsVerdict(res.TLS, st, tlsView)
	}
	return res.Alive
}

// tlsVerdict turns the probe's view of the handshake into the MutualTLS
// condition, the status API and the gateway certificate metric.
func (r *LinkReconciler) tlsVerdict(res remote.TLSResult, st *linkState, view *status.LinkTLS) {
	view.GatewayCertExpiry = res.PeerNotAfter
	if !res.PeerNotAfter.IsZero() {
		r.Metrics.GatewayCertificateExpiry.WithLabelValues(st.key()).Set(float64(res.PeerNotAfter.Unix()))
	}
	switch {
	case !res.Checked:
		// No handshake yet (a new prober, or a gateway that does not
		// answer at all): what the Link said before stands.
		if meta.FindStatusCondition(st.link.Status.Conditions, crossmapv1.ConditionMutualTLS) == nil {
			st.mutualTLS(metav1.ConditionUnknown, ReasonNotProbed, "no handshake with the gateway yet")
		}
		view.Reason = ReasonNotProbed
	case res.Reason != "":
		msg := fmt.Sprintf("handshake with the gateway failed (%s): %v", res.Reason, res.Err)
		st.mutualTLS(metav1.ConditionFalse, res.Reason, msg)
		view.Reason = res.Reason
		st.view.LastError = msg
	default:
		view.Verified, view.Reason = true, ReasonHandshakeSucceeded
		st.mutualTLS(metav1.ConditionTrue, ReasonHandshakeSucceeded,
			fmt.Sprintf("the gateway presents %s, valid until %s, and accepts this cluster's certificate", view.Identity, res.PeerNotAfter.UTC().Format(time.RFC3339)))
	}
}

// clientTLS is the TLS configuration toward a gateway named identity: this
// cluster's client certificate and the trust anchor, read from the Secrets
// the trust role writes. fingerprint changes with the Secret's material.
func (r *LinkReconciler) clientTLS(ctx context.Context, identity string) (cfg *tls.Config, notAfter time.Time, fingerprint string, err error) {
	var sec corev1.Secret
	key := types.NamespacedName{Namespace: r.Config.Namespace, Name: ingress.ClientCertSecret}
	if err := r.Client.Get(ctx, key, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, time.Time{}, "", fmt.Errorf("client certificate Secret %s not issued yet; is the trust anchor Secret %s/%s present? (see the status API's problems)", key, r.Config.Namespace, r.Config.TrustAnchorSecret)
		}
		return nil, time.Time{}, "", err
	}
	// Every reconcile of every Link asks, and the Secret changes once a
	// renewal: parse it once per version.
	r.mu.Lock()
	m := r.clientMaterial
	r.mu.Unlock()
	if m.version != sec.ResourceVersion || m.version == "" {
		pair, err := tls.X509KeyPair(sec.Data[pki.CertKey], sec.Data[pki.KeyKey])
		if err != nil {
			return nil, time.Time{}, "", fmt.Errorf("client certificate Secret %s: %w", key, err)
		}
		roots, err := pki.Pool(sec.Data[pki.CACertKey])
		if err != nil {
			return nil, time.Time{}, "", fmt.Errorf("client certificate Secret %s key %s: %w", key, pki.CACertKey, err)
		}
		sum := sha256.Sum256(slices.Concat(sec.Data[pki.CertKey], sec.Data[pki.CACertKey]))
		// X509KeyPair fills in the parsed leaf.
		m = clientMaterial{version: sec.ResourceVersion, pair: pair, roots: roots,
			notAfter: pair.Leaf.NotAfter, fingerprint: hex.EncodeToString(sum[:8])}
		r.mu.Lock()
		r.clientMaterial = m
		r.mu.Unlock()
	}
	return &tls.Config{
		Certificates: []tls.Certificate{m.pair},
		RootCAs:      m.roots,
		ServerName:   identity,
		MinVersion:   tls.VersionTLS12,
	}, m.notAfter, m.fingerprint, nil
}

// clientMaterial is the parsed client certificate Secret at one version.
type clientMaterial struct {
	version     string
	pair        tls.Certificate
	roots       *x509.CertPool
	notAfter    time.Time
	fingerprint string
}

func (r *LinkReconciler) stopProber(rt *linkRuntime) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rt.prober != nil {
		rt.prober.Stop()
		rt.prober, rt.probeKey = nil, ""
	}
}

// forget stops what ran for a deleted Link and deletes everything it owned.
func (r *LinkReconciler) forget(ctx context.Context, key types.NamespacedName) error {
	r.mu.Lock()
	rt := r.remotes[key]
	delete(r.remotes, key)
	r.mu.Unlock()
	if rt != nil {
		rt.watcher.Stop()
		if rt.prober != nil {
			rt.prober.Stop()
		}
	}
	r.Model.DeleteLink(key.String())
	r.Metrics.MirroredServices.DeleteLabelValues(key.String())
	r.Metrics.GatewayAlive.DeleteLabelValues(key.String())
	r.Metrics.ProbeLatency.DeleteLabelValues(key.String())
	r.Reporter.Report(ctx, "link/"+key.String(), nil, func(mapper.Problem) client.Object { return nil })
	owner := mapper.MirrorSelector(mapper.LinkRef{Namespace: key.Namespace, Name: key.Name})
	owned, err := listOwned(ctx, r.Client, owner, &corev1.ServiceList{}, &discoveryv1.EndpointSliceList{})
	if err != nil {
		return err
	}
	plan := mapper.Diff(nil, owned, func(client.Object) bool { return true })
	if plan.Empty() {
		return nil
	}
	log.FromContext(ctx).Info("Link deleted; removing its mirrors", "plan", plan.String())
	return r.Applier.Apply(ctx, plan)
}

func (r *LinkReconciler) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, rt := range r.remotes {
		rt.watcher.Stop()
		if rt.prober != nil {
			rt.prober.Stop()
		}
		delete(r.remotes, k)
	}
}
