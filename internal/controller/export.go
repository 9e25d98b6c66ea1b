package controller

import (
	"context"
	"fmt"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
)

// exportKey is the one work item of the export role: every change to an
// exported Service or a gateway object means "recompute the gateway".
var exportKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "export"}}

// ExportReconciler keeps the gateway Mappings and Host in step with the
// exported Services of this cluster.
type ExportReconciler struct {
	Client   client.Client
	Applier  *Applier
	Reporter *Reporter
	Metrics  *Metrics
	Config   Config
	selector labels.Selector
	// memo remembers Diff's comparisons; the single work item means one
	// reconcile at a time.
	memo mapper.DiffMemo
}

// SetupWithManager registers the export role with mgr.
func (r *ExportReconciler) SetupWithManager(mgr ctrl.Manager) error {
	sel, err := labels.Parse(r.Config.ExportSelector)
	if err != nil {
		return fmt.Errorf("parse export selector: %w", err)
	}
	r.selector = sel
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{exportKey}
	})
	ours := builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
		return labels.SelectorFromSet(r.gatewaySelector()).Matches(labels.Set(o.GetLabels()))
	}))
	b := ctrl.NewControllerManagedBy(mgr).
		Named("export").
		// Any Service may start or stop matching the selector, so every
		// Service change is looked at; the reconcile itself is cheap.
		Watches(&corev1.Service{}, all).
		Watches(&ambv3.Mapping{}, all, ours).
		Watches(&ambv3.Host{}, all, ours)
	if r.Config.MCS {
		// A ServiceExport exports its Service too.
		b = b.Watches(&mcsv1beta1.ServiceExport{}, all)
	}
	return b.Complete(counted("export", r.Metrics, r))
}

func (r *ExportReconciler) gatewaySelector() map[string]string {
	sel := mapper.GatewaySelector()
	sel[crossmapv1.LabelSourceCluster] = r.Config.ClusterName
	return sel
}

// Reconcile recomputes the gateway objects from the cache and applies the
// difference.
func (r *ExportReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	var svcs corev1.ServiceList
	if err := r.Client.List(ctx, &svcs, client.MatchingLabelsSelector{Selector: r.selector}); err != nil {
		return reconcile.Result{}, fmt.Errorf("list exported services: %w", err)
	}
	snap := mapper.ExportSnapshot{
		Cluster:          r.Config.ClusterName,
		GatewayNamespace: r.Config.Namespace,
		GatewayHostName:  r.Config.GatewayHostName,
		AmbassadorID:     r.Config.AmbassadorID,
		MutualTLS:        r.Config.MutualTLS(),
		ServedByHeader:   r.Config.ServedByHeader,
	}
	for i := range svcs.Items {
		snap.Services = append(snap.Services, &svcs.Items[i])
	}
	if r.Config.MCS {
		more, err := r.exportedByServiceExport(ctx, svcs.Items)
		if err != nil {
			return reconcile.Result{}, err
		}
		snap.Services = append(snap.Services, more...)
	}
	desired, problems := mapper.Export(snap)

	owned, err := listOwned(ctx, r.Client, r.gatewaySelector(), &ambv3.MappingList{}, &ambv3.HostList{})
	if err != nil {
		return reconcile.Result{}, err
	}
	current, err := currentObjects(ctx, r.Client, desired, owned)
	if err != nil {
		return reconcile.Result{}, err
	}
	plan := mapper.DiffWith(desired, current, func(o mapper.Object) bool {
		return labels.SelectorFromSet(r.gatewaySelector()).Matches(labels.Set(o.GetLabels()))
	}, r.memo.Differs)
	problems = append(problems, plan.Conflicts...)
	r.Reporter.Report(ctx, "export", problems, func(p mapper.Problem) client.Object {
		return refObject(p.Object)
	})
	if plan.Empty() {
		logger.V(1).Info("Gateway objects are up to date", "exported", len(snap.Services))
		return reconcile.Result{}, nil
	}
	logger.Info("Applying gateway plan", "plan", plan.String(), "exported", len(snap.Services))
	if err := r.Applier.Apply(ctx, plan); err != nil {
		return reconcile.Result{}, fmt.Errorf("apply gateway plan: %w", err)
	}
	return reconcile.Result{}, nil
}

// exportedByServiceExport returns the Services a ServiceExport names that
// the selector did not already pick (have). An ExternalName Service is not
// exported (its ServiceExport is not Valid: see mapper.MCS).
func (r *ExportReconciler) exportedByServiceExport(ctx context.Context, have []corev1.Service) ([]*corev1.Service, error) {
	var exports mcsv1beta1.ServiceExportList
	if err := r.Client.List(ctx, &exports); err != nil {
		return nil, fmt.Errorf("list service exports: %w", err)
	}
	picked := map[types.NamespacedName]bool{}
	for i := range have {
		picked[client.ObjectKeyFromObject(&have[i])] = true
	}
	var out []*corev1.Service
	for _, ex := range exports.Items {
		key := client.ObjectKeyFromObject(&ex)
		if picked[key] {
			continue
		}
		var svc corev1.Service
		if err := r.Client.Get(ctx, key, &svc); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return nil, fmt.Errorf("get exported service: %w", err)
		}
		if svc.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		picked[key] = true
		out = append(out, &svc)
	}
	return out, nil
}

// refObject is a stand-in carrying only the identity of the object a Problem
// names, enough to record an Event on it.
func refObject(ref mapper.ObjectRef) client.Object {
	meta := metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}
	switch ref.Kind {
	case "Service":
		return &corev1.Service{ObjectMeta: meta}
	case "Mapping":
		return &ambv3.Mapping{ObjectMeta: meta}
	case "Host":
		return &ambv3.Host{ObjectMeta: meta}
	case "Link":
		return &crossmapv1.Link{ObjectMeta: meta}
	case mcsv1beta1.ServiceExportKindName:
		return &mcsv1beta1.ServiceExport{ObjectMeta: meta}
	case "Secret":
		// The trust anchor, even when missing: the Event is still found by
		// its name (kubectl get events --field-selector
		// involvedObject.name=...).
		return &corev1.Secret{ObjectMeta: meta}
	case "EndpointSlice", "Namespace":
		// Not worth an Event of their own: the owning Link gets one.
		return nil
	}
	return nil
}
