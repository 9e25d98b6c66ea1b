package controller

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/remote"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// This file is the lifecycle of what runs for each Link: the remote
// cluster's Watcher, started from the credentials Secret, and the memory
// a Link keeps across Watchers. The gateway's prober lives apart
// (link_gateway.go): it must not wait on credentials.

// linkEntry is what runs and is remembered on behalf of one Link. Its
// fields are touched by that Link's reconciles only (controller-runtime
// never runs two for one key), and by forget and stopAll.
type linkEntry struct {
	// remote is nil until the credentials have worked once.
	remote  *remoteRuntime
	gateway gatewayRuntime
	// lastSync is when this Link's mirrors last changed, exactly.
	lastSync time.Time
	// lags holds, per mirror Service (namespace/name), the propagation
	// lag and time of its last change, for the status API.
	lags map[string]syncRecord
	// importProblems are what the last read of the remote cluster found
	// wrong with its Services (MissingNamespace, NameTooLong, NoPorts...).
	// While the remote cannot be read they stand: their cause can be seen
	// neither gone nor still there, and calling them resolved would be
	// false (issue 13).
	importProblems []mapper.Problem
	// cluster is the Link's clusterName when last reconciled, for the
	// drill metrics to forget.
	cluster string
	// clusterset is what the MCS role reads of this Link (guarded by the
	// reconciler's mu: the MCS role reads it from its own goroutine).
	clusterset linkClusterset
}

// linkClusterset is what the last reconcile of a Link knew of how its
// cluster's endpoints are reached, for the MCS role.
type linkClusterset struct {
	set   bool
	ref   mapper.LinkRef
	addrs []netip.Addr
	alive bool
}

// remoteRuntime is the Watcher of one Link's remote cluster.
type remoteRuntime struct {
	hash    string
	started time.Time
	watcher *remote.Watcher
	// memo remembers Diff's comparisons for this Link's objects.
	memo mapper.DiffMemo
	// imports remembers the translation of each remote Service.
	imports mapper.ImportMemo
}

type syncRecord struct {
	lag time.Duration
	at  time.Time
}

// entry returns the Link's entry, creating it.
func (r *LinkReconciler) entry(key types.NamespacedName) *linkEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.links[key]
	if e == nil {
		e = &linkEntry{}
		r.links[key] = e
	}
	return e
}

// recordLag notes the lag of every mirror the plan wrote.
func (e *linkEntry) recordLag(p mapper.Plan, lag time.Duration, at time.Time) {
	if e.lags == nil {
		e.lags = map[string]syncRecord{}
	}
	for _, group := range [][]mapper.Object{p.Create, p.Update, p.Delete} {
		for _, o := range group {
			name := o.GetName()
			if es, ok := o.(*discoveryv1.EndpointSlice); ok {
				name = es.Labels[discoveryv1.LabelServiceName]
			}
			e.lags[o.GetNamespace()+"/"+name] = syncRecord{lag: lag, at: at}
		}
	}
}

// services describes the mirrors in desired for the status API. mirrored
// lists the mirror Services that are not in conflict.
func (e *linkEntry) services(ref mapper.LinkRef, desired []mapper.Object, mirrored []string) []status.Service {
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
		if rec, ok := e.lags[s.Key()]; ok {
			s.Lag, s.LastSync = rec.lag.String(), rec.at
		}
		out = append(out, s)
	}
	return out
}

// setupError is why a Link's remote cluster cannot be watched at all, with
// the reason its condition and problem carry.
type setupError struct {
	reason string
	err    error
}

func (e *setupError) Error() string { return e.err.Error() }
func (e *setupError) Unwrap() error { return e.err }

// ensureRuntime starts, or restarts when its credentials or selector
// changed, the Watcher of the Link's remote cluster. A *setupError says the
// Link's input is unusable; other errors are transient. On any error the
// Watcher that ran before (if any) is left as it was.
func (r *LinkReconciler) ensureRuntime(ctx context.Context, link *crossmapv1.Link, e *linkEntry) (*remoteRuntime, error) {
	key := client.ObjectKeyFromObject(link)
	selector, err := exportSelector(link)
	if err != nil {
		return nil, &setupError{ReasonInvalidSelector, fmt.Errorf("spec.exportSelector: %w", err)}
	}
	secretKey := cmp.Or(link.Spec.CredentialsSecret.Key, crossmapv1.DefaultCredentialsKey)
	var secret corev1.Secret
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: link.Namespace, Name: link.Spec.CredentialsSecret.Name}, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &setupError{ReasonSecretNotFound, fmt.Errorf("credentials Secret %s/%s not found", link.Namespace, link.Spec.CredentialsSecret.Name)}
		}
		return nil, fmt.Errorf("get credentials secret: %w", err)
	}
	kubeconfig, ok := secret.Data[secretKey]
	if !ok {
		return nil, &setupError{ReasonInvalidCredentials, fmt.Errorf("credentials Secret %s/%s has no key %q", secret.Namespace, secret.Name, secretKey)}
	}
	sum := sha256.Sum256(append(append([]byte{}, kubeconfig...), selector.String()...))
	hash := hex.EncodeToString(sum[:])
	if e.remote != nil && e.remote.hash == hash {
		return e.remote, nil
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, &setupError{ReasonInvalidCredentials, fmt.Errorf("credentials Secret %s/%s key %q is not a usable kubeconfig: %w", secret.Namespace, secret.Name, secretKey, err)}
	}
	w, err := remote.Start(context.WithoutCancel(ctx), cfg, remote.Options{
		Selector:     selector,
		HealthPeriod: r.Config.RemoteHealthPeriod,
		Notify:       r.notifier(key),
		// With the MCS role, ServiceExports are an export signal too.
		ServiceExports: r.Config.MCS,
	})
	if err != nil {
		return nil, &setupError{ReasonInvalidCredentials, err}
	}
	log.FromContext(ctx).Info("Started watching remote cluster", "cluster", link.Spec.ClusterName, "restart", e.remote != nil)
	// The MCS role reads e.remote from its own goroutine (Clusterset):
	// the new Watcher is put in place under the lock, then the old one
	// stopped.
	old := e.remote
	r.mu.Lock()
	e.remote = &remoteRuntime{hash: hash, watcher: w, started: time.Now()}
	r.mu.Unlock()
	if old != nil {
		old.watcher.Stop()
	}
	return e.remote, nil
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

// stop ends what runs for the Link.
func (e *linkEntry) stop() {
	if e.remote != nil {
		e.remote.watcher.Stop()
	}
	e.gateway.stopProber()
}

// forget stops what ran for a deleted Link and deletes everything it owned.
func (r *LinkReconciler) forget(ctx context.Context, key types.NamespacedName) error {
	r.mu.Lock()
	e := r.links[key]
	delete(r.links, key)
	r.mu.Unlock()
	if e != nil {
		e.stop()
	}
	r.Health.Forget(key.String())
	// Its cluster's part of every ServiceImport goes with it.
	r.clustersetChanged()
	r.Model.DeleteLink(key.String())
	r.Metrics.MirroredServices.DeleteLabelValues(key.String())
	r.Metrics.GatewayAlive.DeleteLabelValues(key.String())
	if e != nil {
		r.setDrillMetrics(e.cluster, drillFacts{})
	}
	r.Metrics.ProbeLatency.DeleteLabelValues(key.String())
	r.Reporter.Report(ctx, "link/"+key.String(), nil, func(mapper.Problem) client.Object { return nil })
	owner := mapper.MirrorSelector(mapper.LinkRef{Namespace: key.Namespace, Name: key.Name})
	owned, err := listOwned(ctx, r.Client, owner, &corev1.ServiceList{}, &discoveryv1.EndpointSliceList{})
	if err != nil {
		return err
	}
	plan := mapper.Diff(nil, owned, func(mapper.Object) bool { return true })
	if plan.Empty() {
		return nil
	}
	log.FromContext(ctx).Info("Link deleted; removing its mirrors", "plan", plan.String())
	return r.Applier.Apply(ctx, plan)
}

func (r *LinkReconciler) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range r.links {
		e.stop()
		delete(r.links, k)
	}
}

// clustersetChanged tells the MCS role that a Link's part of the
// clusterset may have changed.
func (r *LinkReconciler) clustersetChanged() {
	if r.ClustersetChanged != nil {
		r.ClustersetChanged()
	}
}

// Clusterset returns, for the MCS role, the exports of each linked
// cluster (the Links named by keys) as its Link's remote Watcher caches
// them, and how its endpoints are reached. A Link whose remote cannot be
// read now keeps what was read last, as its mirrors do; one whose Watcher
// never listed its remote (broken credentials) is left out. pending names
// the Links about to be known: not reconciled yet (when waitUnseen: a
// controller that just started), or whose new Watcher is still within
// connectGrace, so that the caller waits rather than drop their clusters'
// endpoints for a moment.
func (r *LinkReconciler) Clusterset(keys []types.NamespacedName, waitUnseen bool) (clusters []mapper.ClusterExports, pending []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, key := range keys {
		e := r.links[key]
		if e == nil || !e.clusterset.set {
			if waitUnseen {
				pending = append(pending, key.String())
			}
			continue
		}
		cs := e.clusterset
		if e.remote == nil {
			continue
		}
		w := e.remote.watcher
		if !w.Synced() {
			if time.Since(e.remote.started) < connectGrace {
				pending = append(pending, key.String())
			}
			continue
		}
		clusters = append(clusters, mapper.ClusterExports{
			Cluster:          cs.ref.Cluster,
			Mode:             cs.ref.Mode,
			GatewayAddresses: cs.addrs,
			GatewayPort:      cs.ref.GatewayPort,
			GatewayAlive:     cs.alive,
			Exports:          w.ServiceExports(),
			Services:         w.Services(),
			Slices:           w.Slices(),
		})
	}
	return clusters, pending
}
