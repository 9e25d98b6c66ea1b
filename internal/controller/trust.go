package controller

import (
	"cmp"
	"context"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/pki"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// Problem reasons of the trust role.
const (
	ReasonTrustAnchorMissing = "TrustAnchorMissing"
	ReasonTrustAnchorInvalid = "TrustAnchorInvalid"
)

// trustKey is the one work item of the trust role.
var trustKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "trust"}}

// TrustReconciler is the trust role, on when cross-cluster mTLS is: from
// the trust anchor Secret it issues this cluster's gateway and client
// certificates, renews them after two thirds of their life, publishes the
// anchor's certificate (without its key) for Emissary's ca_secret, and,
// with the route role on, writes the TLSContext each linked cluster's
// routes originate TLS with.
//
// Issuing is the one step of crossmap that is not a pure translation (keys
// come from crypto/rand), so the certificates are decided here and handed
// to the same diff and apply as everything else: a certificate that is
// still good is rendered as it stands, and a steady state writes nothing.
type TrustReconciler struct {
	Client   client.Client
	Applier  *Applier
	Reporter *Reporter
	Model    *status.Model
	Metrics  *Metrics
	Config   Config
	// Now is the clock; tests inject one.
	Now  func() time.Time
	memo mapper.DiffMemo
}

// SetupWithManager registers the trust role with mgr.
func (r *TrustReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Now == nil {
		r.Now = time.Now
	}
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{trustKey}
	})
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return labels.SelectorFromSet(mapper.TrustSelector()).Matches(labels.Set(o.GetLabels()))
	})
	anchorOrOurs := predicate.Or(ours, predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetNamespace() == r.Config.Namespace && o.GetName() == r.Config.TrustAnchorSecret
	}))
	b := ctrl.NewControllerManagedBy(mgr).
		Named("trust").
		Watches(&corev1.Secret{}, all, builder.WithPredicates(anchorOrOurs))
	if r.Config.Routes {
		// The TLSContexts are for the route role's Mappings, one per
		// linked cluster: without that role there is nothing to name them,
		// and no Emissary CRDs need be installed (Config.Needs).
		b = b.Watches(&ambv3.TLSContext{}, all, builder.WithPredicates(ours)).
			Watches(&crossmapv1.Link{}, all)
	}
	return b.
		// Once at start: an export-only cluster without a trust anchor has
		// no event that would otherwise say so.
		WatchesRawSource(source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
			q.Add(trustKey)
			return nil
		})).
		Complete(counted("trust", r.Metrics, r))
}

// origins are the linked clusters the route role's Mappings reach through
// a gateway, each of which gets a TLSContext.
func (r *TrustReconciler) origins(ctx context.Context) ([]mapper.OriginLink, error) {
	var links crossmapv1.LinkList
	if err := r.Client.List(ctx, &links, client.InNamespace(r.Config.Namespace)); err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	slices.SortFunc(links.Items, func(a, b crossmapv1.Link) int { return cmp.Compare(a.Name, b.Name) })
	var origins []mapper.OriginLink
	for _, l := range links.Items {
		if linkRef(&l).Mode == crossmapv1.ModeGateway {
			origins = append(origins, mapper.OriginLink{Cluster: l.Spec.ClusterName, Identity: linkIdentity(&l)})
		}
	}
	return origins, nil
}

// leaf is one certificate this cluster issues to itself.
type leaf struct {
	secret string
	usage  pki.Usage
}

func (r *TrustReconciler) leaves() []leaf {
	var out []leaf
	if r.Config.Export {
		out = append(out, leaf{ingress.GatewayCertSecret, pki.Server})
	}
	if r.Config.Import || r.Config.Routes {
		out = append(out, leaf{ingress.ClientCertSecret, pki.Client})
	}
	return out
}

// Reconcile issues or keeps the certificates and TLSContexts, and requeues
// itself for the next renewal.
func (r *TrustReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	logger := log.FromContext(ctx)
	now := r.Now()
	lists := []client.ObjectList{&corev1.SecretList{}}
	if r.Config.Routes {
		lists = append(lists, &ambv3.TLSContextList{})
	}
	owned, err := listOwned(ctx, r.Client, mapper.TrustSelector(), lists...)
	if err != nil {
		return reconcile.Result{}, err
	}
	var desired []mapper.Object
	if r.Config.Routes {
		origins, err := r.origins(ctx)
		if err != nil {
			return reconcile.Result{}, err
		}
		desired = mapper.OriginContexts(r.Config.Namespace, r.Config.AmbassadorID, origins)
	}

	view := status.Trust{Mode: "mutual", TrustAnchor: r.Config.Namespace + "/" + r.Config.TrustAnchorSecret, Certificates: []status.Certificate{}}
	secrets, next, problems := r.secrets(ctx, now, owned, &view)
	desired = append(desired, secrets...)

	current, err := currentObjects(ctx, r.Client, desired, owned)
	if err != nil {
		return reconcile.Result{}, err
	}
	plan := mapper.DiffWith(desired, current, func(o mapper.Object) bool {
		return labels.SelectorFromSet(mapper.TrustSelector()).Matches(labels.Set(o.GetLabels()))
	}, r.memo.Differs)
	// A certificate no role needs any more (--export=false, say) is left
	// in place rather than deleted: a key is cheap to keep and costly to
	// lose, and crossmap's RBAC holds no delete on Secrets.
	plan.Delete = slices.DeleteFunc(plan.Delete, func(o mapper.Object) bool {
		_, isSecret := o.(*corev1.Secret)
		return isSecret
	})
	problems = append(problems, plan.Conflicts...)
	r.Reporter.Report(ctx, "trust", problems, func(p mapper.Problem) client.Object { return refObject(p.Object) })
	r.Model.SetTrust(view)
	for _, c := range view.Certificates {
		r.Metrics.CertificateExpiry.WithLabelValues(c.Secret).Set(float64(c.NotAfter.Unix()))
	}

	var res reconcile.Result
	if !next.IsZero() {
		// Come back for the next renewal; the second of slack makes sure
		// the certificate is due by then.
		res.RequeueAfter = max(next.Sub(now)+time.Second, time.Second)
	}
	if plan.Empty() {
		return res, nil
	}
	logger.Info("Applying trust plan", "plan", plan.String())
	if err := r.Applier.Apply(ctx, plan); err != nil {
		return reconcile.Result{}, fmt.Errorf("apply trust plan: %w", err)
	}
	return res, nil
}

// secrets renders the trust anchor's public copy and this cluster's leaf
// certificates: as they stand while they are good, freshly issued when
// missing, due for renewal, or no longer matching the anchor or identity.
// next is the earliest renewal. Without a usable trust anchor, the Secrets
// crossmap already owns are rendered as they are, so nothing in service is
// taken away.
func (r *TrustReconciler) secrets(ctx context.Context, now time.Time, owned []mapper.Object, view *status.Trust) (out []mapper.Object, next time.Time, problems []mapper.Problem) {
	ownedSecret := map[string]*corev1.Secret{}
	for _, o := range owned {
		if s, ok := o.(*corev1.Secret); ok {
			ownedSecret[s.Name] = s
		}
	}
	keepAll := func() []mapper.Object {
		var keep []mapper.Object
		for _, name := range slices.Sorted(maps.Keys(ownedSecret)) {
			keep = append(keep, ownedSecret[name])
		}
		return keep
	}
	anchorRef := mapper.ObjectRef{Kind: "Secret", Namespace: r.Config.Namespace, Name: r.Config.TrustAnchorSecret}
	var anchor corev1.Secret
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: r.Config.Namespace, Name: r.Config.TrustAnchorSecret}, &anchor); err != nil {
		if !apierrors.IsNotFound(err) {
			problems = append(problems, mapper.Problem{Reason: ReasonTrustAnchorInvalid, Object: anchorRef, Message: fmt.Sprintf("read trust anchor: %v", err)})
			return keepAll(), next, problems
		}
		problems = append(problems, mapper.Problem{Reason: ReasonTrustAnchorMissing, Object: anchorRef, Message: fmt.Sprintf(
			"trust anchor Secret %s not found: cross-cluster mTLS needs the same one in every linked cluster; create it with 'crossmap trust generate --namespace %s --name %s | kubectl apply -f -' and apply that file in every linked cluster, or run with --insecure-cleartext on dev clusters",
			anchorRef.Namespace+"/"+anchorRef.Name, r.Config.Namespace, r.Config.TrustAnchorSecret)})
		return keepAll(), next, problems
	}
	ca, err := pki.ParseAuthority(anchor.Data[pki.CACertKey], anchor.Data[pki.CAKeyKey])
	if err != nil {
		problems = append(problems, mapper.Problem{Reason: ReasonTrustAnchorInvalid, Object: anchorRef,
			Message: fmt.Sprintf("trust anchor Secret %s/%s (keys %s, %s): %v", anchor.Namespace, anchor.Name, pki.CACertKey, pki.CAKeyKey, err)})
		return keepAll(), next, problems
	}
	view.TrustAnchorExpiry = ca.Cert.NotAfter
	// The whole ca.crt is trusted, so that during a rotation of the anchor
	// (new CA first, old one after it) certificates of both are accepted.
	bundle := anchor.Data[pki.CACertKey]
	roots, err := pki.Pool(bundle)
	if err != nil {
		problems = append(problems, mapper.Problem{Reason: ReasonTrustAnchorInvalid, Object: anchorRef, Message: err.Error()})
		return keepAll(), next, problems
	}
	out = append(out, mapper.Stamp(r.secret(ingress.TrustCASecret, corev1.SecretTypeOpaque, map[string][]byte{pki.CertKey: bundle})))

	identity := ingress.GatewayIdentity(r.Config.ClusterName)
	for _, lf := range r.leaves() {
		certPEM, keyPEM, cert, why := r.keepOrIssue(ownedSecret[lf.secret], ca, roots, identity, lf.usage, now)
		if why != "" {
			log.FromContext(ctx).Info("Issued certificate", "secret", r.Config.Namespace+"/"+lf.secret, "usage", lf.usage.String(),
				"identity", identity, "notAfter", cert.NotAfter, "fingerprint", pki.Fingerprint(cert), "why", why)
		}
		out = append(out, mapper.Stamp(r.secret(lf.secret, corev1.SecretTypeTLS, map[string][]byte{
			pki.CertKey: certPEM, pki.KeyKey: keyPEM, pki.CACertKey: bundle,
		})))
		renew := pki.RenewAt(cert)
		if next.IsZero() || renew.Before(next) {
			next = renew
		}
		view.Certificates = append(view.Certificates, status.Certificate{
			Secret: r.Config.Namespace + "/" + lf.secret, Usage: lf.usage.String(), Identity: identity,
			NotAfter: cert.NotAfter, RenewAt: renew,
		})
	}
	return out, next, problems
}

// keepOrIssue returns the certificate in current when it is still good,
// else a new one and why it was issued.
func (r *TrustReconciler) keepOrIssue(current *corev1.Secret, ca *pki.Authority, roots *x509.CertPool, identity string, usage pki.Usage, now time.Time) (certPEM, keyPEM []byte, cert *x509.Certificate, why string) {
	why = "missing"
	if current != nil {
		c, err := pki.VerifyLeaf(current.Data[pki.CertKey], current.Data[pki.KeyKey], roots, identity, usage, now)
		switch {
		case err != nil:
			why = "current certificate unusable: " + err.Error()
		case !now.Before(pki.RenewAt(c)):
			why = "renewal due"
		case c.NotAfter.Sub(c.NotBefore) > r.Config.CertValidity+time.Hour:
			// A shorter --cert-validity applies at once.
			why = "validity shortened"
		case c.CheckSignatureFrom(ca.Cert) != nil:
			// The anchor's signing CA changed (the second step of a
			// rotation): move to it now, while the old one is still
			// trusted.
			why = "signed by another CA than the trust anchor's first"
		default:
			return current.Data[pki.CertKey], current.Data[pki.KeyKey], c, ""
		}
	}
	certPEM, keyPEM, err := ca.Issue(identity, usage, r.Config.CertValidity, now)
	if err != nil {
		// Only crypto/rand or a broken CA key can fail here.
		panic(fmt.Sprintf("issue %s certificate: %v", usage, err))
	}
	c, err := pki.ParseCertificate(certPEM)
	if err != nil {
		panic(fmt.Sprintf("parse issued certificate: %v", err))
	}
	return certPEM, keyPEM, c, why
}

func (r *TrustReconciler) secret(name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	l := mapper.TrustSelector()
	l[crossmapv1.LabelSourceCluster] = r.Config.ClusterName
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.Config.Namespace, Labels: l},
		Type:       typ,
		Data:       data,
	}
}

// linkIdentity is the name the Link's gateway certificate must carry.
func linkIdentity(l *crossmapv1.Link) string {
	return cmp.Or(l.Spec.Gateway.Identity, ingress.GatewayIdentity(l.Spec.ClusterName))
}
