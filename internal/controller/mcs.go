package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
)

// mcsKey is the one work item of the MCS role: any change to an export,
// local or remote, may change every ServiceImport (conflicts are decided
// across all of a service's exports), so the whole clusterset is
// recomputed.
var mcsKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "mcs"}}

// MCSReconciler is the Multi-Cluster Services role (KEP-1645): it merges
// this cluster's ServiceExports and every linked cluster's (read through
// the Links' remote Watchers) into ServiceImports, their derived Services
// and EndpointSlices here, and sets the conditions of this cluster's
// ServiceExports. It writes only in this cluster; each linked cluster's
// crossmap sets the conditions of that cluster's exports, from the same
// merge.
type MCSReconciler struct {
	Client   client.Client
	Applier  *Applier
	Reporter *Reporter
	Metrics  *Metrics
	Config   Config
	// Links is the import role of this process, whose Watchers hold the
	// linked clusters' exports; nil without it (only self-imports then).
	Links *LinkReconciler

	events chan event.GenericEvent
	// memo remembers Diff's comparisons; the single work item means one
	// reconcile at a time.
	memo mapper.DiffMemo

	// started is when the first reconcile ran: for connectGrace after it,
	// Links not reconciled yet are waited for.
	started time.Time
}

// Kick asks for a reconcile. Kicks are coalesced: one waiting in the
// channel is enough, since it is bound to reach the work queue.
func (r *MCSReconciler) Kick() {
	select {
	case r.events <- event.GenericEvent{Object: &mcsv1beta1.ServiceImport{}}:
	default:
	}
}

// SetupWithManager registers the MCS role with mgr.
func (r *MCSReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.events = make(chan event.GenericEvent, 1)
	if r.Links != nil {
		r.Links.ClustersetChanged = r.Kick
	}
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{mcsKey}
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("mcs").
		Watches(&mcsv1beta1.ServiceExport{}, all).
		Watches(&mcsv1beta1.ServiceImport{}, all).
		// A ServiceExport may name any Service, and a local slice of any
		// exported Service is an endpoint of the import.
		Watches(&corev1.Service{}, all).
		Watches(&discoveryv1.EndpointSlice{}, all).
		// A service is imported only where its namespace exists.
		Watches(&corev1.Namespace{}, all).
		WatchesRawSource(source.Channel(r.events, all))
	if r.Links != nil {
		// A new or deleted Link changes whose exports are waited for.
		b = b.Watches(&crossmapv1.Link{}, all)
	}
	return b.Complete(counted("mcs", r.Metrics, r))
}

// Reconcile recomputes every ServiceImport from the clusterset's exports
// and applies the difference, then writes the ServiceImports' and the
// local ServiceExports' status.
func (r *MCSReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	var clusters []mapper.ClusterExports
	if r.started.IsZero() {
		r.started = time.Now()
	}
	if r.Links != nil {
		var links crossmapv1.LinkList
		if err := r.Client.List(ctx, &links, client.InNamespace(r.Config.Namespace)); err != nil {
			return reconcile.Result{}, fmt.Errorf("list links: %w", err)
		}
		keys := make([]types.NamespacedName, 0, len(links.Items))
		for _, l := range links.Items {
			keys = append(keys, client.ObjectKeyFromObject(&l))
		}
		// A controller that just started has not reconciled its Links
		// yet; without them it would drop every remote cluster's part.
		var pending []string
		clusters, pending = r.Links.Clusterset(keys, time.Since(r.started) < connectGrace)
		if len(pending) > 0 {
			// A Watcher that just started lists its remote within
			// moments: computing without it would drop that cluster's
			// endpoints and conflicts for as long, and write twice.
			logger.V(1).Info("Waiting for linked clusters to be listed", "clusters", pending)
			return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
		}
	}
	var (
		exports mcsv1beta1.ServiceExportList
		svcs    corev1.ServiceList
		eps     discoveryv1.EndpointSliceList
		nss     corev1.NamespaceList
	)
	// Read-only: mapper.MCS copies what it keeps, and the status writes
	// below patch copies.
	for _, l := range []client.ObjectList{&exports, &svcs, &eps, &nss} {
		if err := r.Client.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return reconcile.Result{}, fmt.Errorf("list clusterset inputs: %w", err)
		}
	}
	clusters = append(clusters, mapper.ClusterExports{
		Cluster:  r.Config.ClusterName,
		Local:    true,
		Exports:  pointers(exports.Items),
		Services: pointers(svcs.Items),
		Slices:   pointers(eps.Items),
	})
	owner := mapper.MCSSelector()
	owned, err := listOwned(ctx, r.Client, owner, &mcsv1beta1.ServiceImportList{}, &corev1.ServiceList{}, &discoveryv1.EndpointSliceList{})
	if err != nil {
		return reconcile.Result{}, err
	}
	snap := mapper.MCSSnapshot{Clusters: clusters, LocalNamespaces: sets.New[string]()}
	for _, ns := range nss.Items {
		snap.LocalNamespaces.Insert(ns.Name)
	}
	for _, o := range owned {
		switch o := o.(type) {
		case *mcsv1beta1.ServiceImport:
			snap.Imports = append(snap.Imports, o)
		case *corev1.Service:
			snap.Derived = append(snap.Derived, o)
		}
	}
	res := mapper.MCS(snap)

	current, err := currentObjects(ctx, r.Client, res.Objects, owned)
	if err != nil {
		return reconcile.Result{}, err
	}
	others := sets.New(current[len(owned):]...)
	plan := mapper.DiffWith(res.Objects, current, func(o mapper.Object) bool {
		return !others.Has(o) || hasLabels(o, owner)
	}, r.memo.Differs)
	problems := slices.Concat(res.Problems, plan.Conflicts)
	r.Reporter.Report(ctx, "mcs", problems, func(p mapper.Problem) client.Object { return refObject(p.Object) })
	// The conditions as they stand once written, transition times
	// included: what the status writes below write, and what /status
	// shows now.
	exportByKey := map[types.NamespacedName]*mcsv1beta1.ServiceExport{}
	for i := range exports.Items {
		exportByKey[client.ObjectKeyFromObject(&exports.Items[i])] = &exports.Items[i]
	}
	importByKey := map[types.NamespacedName]*mcsv1beta1.ServiceImport{}
	for _, im := range snap.Imports {
		importByKey[client.ObjectKeyFromObject(im)] = im
	}
	for i, st := range res.Exports {
		if ex := exportByKey[types.NamespacedName{Namespace: st.Namespace, Name: st.Name}]; ex != nil {
			res.Exports[i].Conditions = inForce(ex.Status.Conditions, st.Conditions, ex.Generation, exportConditionTypes...)
		}
	}
	for i, st := range res.Imports {
		if im := importByKey[types.NamespacedName{Namespace: st.Namespace, Name: st.Name}]; im != nil {
			res.Imports[i].Status.Conditions = inForce(im.Status.Conditions, st.Status.Conditions, im.Generation, importConditionTypes...)
		}
	}
	r.publish(res)

	if !plan.Empty() {
		logger.Info("Applying ServiceImport plan", "plan", plan.String(), "clusters", len(clusters))
		if err := r.Applier.Apply(ctx, plan); err != nil {
			return reconcile.Result{}, fmt.Errorf("apply ServiceImport plan: %w", err)
		}
	} else {
		logger.V(1).Info("ServiceImports are up to date", "imports", len(res.Imports))
	}
	conflicted := sets.New[mapper.Key]()
	for _, p := range plan.Conflicts {
		conflicted.Insert(mapper.Key{Group: mcsv1beta1.GroupName, Kind: p.Object.Kind, Namespace: p.Object.Namespace, Name: p.Object.Name})
	}
	var errs []error
	for _, st := range res.Imports {
		if conflicted.Has(mapper.Key{Group: mcsv1beta1.GroupName, Kind: mcsv1beta1.ServiceImportKindName, Namespace: st.Namespace, Name: st.Name}) {
			continue // somebody else's ServiceImport: never touched
		}
		// One not created yet gets its status on a later reconcile (its
		// creation triggers one).
		if im := importByKey[types.NamespacedName{Namespace: st.Namespace, Name: st.Name}]; im != nil {
			if err := r.writeImportStatus(ctx, im, st.Status); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, st := range res.Exports {
		if ex := exportByKey[types.NamespacedName{Namespace: st.Namespace, Name: st.Name}]; ex != nil {
			if err := r.writeExportStatus(ctx, ex, st.Conditions); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return reconcile.Result{}, fmt.Errorf("write MCS status: %w", errors.Join(errs...))
	}
	return reconcile.Result{}, nil
}

// The condition types the MCS role sets on ServiceExports and on
// ServiceImports; others' conditions on them are left alone.
var (
	exportConditionTypes = []string{string(mcsv1beta1.ServiceExportConditionValid), string(mcsv1beta1.ServiceExportConditionReady),
		string(mcsv1beta1.ServiceExportConditionConflict)}
	importConditionTypes = []string{string(mcsv1beta1.ServiceImportConditionReady)}
)

// inForce is want as it stands once set on an object whose conditions are
// have: each keeps have's transition time where its status did not
// change, and gets now where it did.
func inForce(have, want []metav1.Condition, generation int64, ours ...string) []metav1.Condition {
	merged := mergeConditions(have, want, generation, ours...)
	return slices.DeleteFunc(merged, func(c metav1.Condition) bool {
		return !slices.ContainsFunc(want, func(w metav1.Condition) bool { return w.Type == c.Type })
	})
}

// mergeConditions sets each of want on a copy of have, keeping the
// transition time of a condition whose status did not change, and drops
// the condition types crossmap sets that want leaves out.
func mergeConditions(have, want []metav1.Condition, generation int64, ours ...string) []metav1.Condition {
	out := slices.Clone(have)
	for _, t := range ours {
		if !slices.ContainsFunc(want, func(c metav1.Condition) bool { return c.Type == t }) {
			meta.RemoveStatusCondition(&out, t)
		}
	}
	for _, c := range want {
		c.ObservedGeneration = generation
		meta.SetStatusCondition(&out, c)
	}
	return out
}

// writeImportStatus writes one ServiceImport's status subresource if it
// differs from want. im is the cache's: it is copied first.
func (r *MCSReconciler) writeImportStatus(ctx context.Context, im *mcsv1beta1.ServiceImport, want mcsv1beta1.ServiceImportStatus) error {
	want.Conditions = mergeConditions(im.Status.Conditions, want.Conditions, im.Generation, importConditionTypes...)
	if equality.Semantic.DeepEqual(im.Status, want) || r.Applier.DryRun {
		return nil
	}
	cur := im.DeepCopy()
	patch := client.MergeFrom(im.DeepCopy())
	cur.Status = want
	r.Metrics.Writes.WithLabelValues("status").Inc()
	if err := r.Client.Status().Patch(ctx, cur, patch); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("update ServiceImport %s/%s status: %w", im.Namespace, im.Name, err))
	}
	return nil
}

// writeExportStatus writes the KEP's conditions on one of this cluster's
// ServiceExports if they differ. ex is the cache's: it is copied first.
func (r *MCSReconciler) writeExportStatus(ctx context.Context, ex *mcsv1beta1.ServiceExport, conds []metav1.Condition) error {
	want := mergeConditions(ex.Status.Conditions, conds, ex.Generation, exportConditionTypes...)
	if equality.Semantic.DeepEqual(ex.Status.Conditions, want) || r.Applier.DryRun {
		return nil
	}
	cur := ex.DeepCopy()
	patch := client.MergeFrom(ex.DeepCopy())
	cur.Status.Conditions = want
	r.Metrics.Writes.WithLabelValues("status").Inc()
	if err := r.Client.Status().Patch(ctx, cur, patch); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("update ServiceExport %s/%s status: %w", ex.Namespace, ex.Name, err))
	}
	for _, c := range want {
		if old := meta.FindStatusCondition(ex.Status.Conditions, c.Type); old == nil || old.Status != c.Status || old.Reason != c.Reason {
			log.FromContext(ctx).Info("ServiceExport condition changed", "namespace", ex.Namespace, "name", ex.Name,
				"condition", c.Type, "status", c.Status, "reason", c.Reason)
		}
	}
	return nil
}
