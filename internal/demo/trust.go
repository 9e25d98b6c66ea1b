package demo

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/cli"
	"github.com/crossmap/crossmap/internal/netns"
	"github.com/crossmap/crossmap/internal/pki"
)

// The mTLS side of the story: the operator's one-time setup (a trust
// anchor shared by every cluster), what crossmap issues from it, and what a
// gateway does with a request that does not come from a linked cluster.

// clusters are the demo's clusters, in the order the story lists them.
var clusters = []string{"west", "east", devCluster}

// timeFormat is how the story prints certificate times.
const timeFormat = "2006-01-02 15:04 UTC"

func (d *demo) ensureNamespace(ctx context.Context, cluster, name string) error {
	err := d.clients[cluster].Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// shareTrustAnchor does what an operator does once: generate a trust
// anchor (`crossmap trust generate`) and apply that one Secret in the
// controller namespace of every cluster that links.
func (d *demo) shareTrustAnchor(ctx context.Context) error {
	o := cli.DefaultTrustOptions()
	o.Namespace = ctrlNamespace
	anchor, err := cli.TrustAnchorSecret(o, time.Now())
	if err != nil {
		return err
	}
	ca, err := pki.ParseAuthority(anchor.Data[pki.CACertKey], anchor.Data[pki.CAKeyKey])
	if err != nil {
		return fmt.Errorf("the generated trust anchor: %w", err)
	}
	d.anchor = anchor
	d.say("  crossmap trust generate: a CA %q, valid until %s (fingerprint %s)",
		ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format(timeFormat), pki.Fingerprint(ca.Cert))
	for _, cluster := range clusters {
		if err := d.ensureNamespace(ctx, cluster, ctrlNamespace); err != nil {
			return err
		}
		if err := d.clients[cluster].Create(ctx, anchor.DeepCopy()); err != nil {
			return fmt.Errorf("apply the trust anchor to %s: %w", cluster, err)
		}
	}
	d.say("  applied Secret %s/%s (%s, %s) to %s: the same CA in every cluster, so that they trust each other and nobody else",
		anchor.Namespace, anchor.Name, pki.CACertKey, pki.CAKeyKey, strings.Join(clusters, ", "))
	return nil
}

// insecure says, loudly, that this run has no mTLS between the clusters.
func (d *demo) insecure(context.Context) error {
	d.o.Log.Error(errors.New("cross-cluster mTLS is off (--insecure-cleartext)"),
		"INSECURE: the demo's gateways route cleartext from anyone who can reach them, and routes between clusters are cleartext")
	d.say("  WARNING: every crossmap runs with --insecure-cleartext. Gateways accept cleartext from anyone who")
	d.say("  WARNING: can reach them, and west's edge sends cleartext to them. Use this on dev clusters only;")
	d.say("  WARNING: without the flag, the demo runs with mTLS from a shared trust anchor.")
	return nil
}

// certificates shows what each cluster's crossmap issued itself from the
// trust anchor, and checks that every certificate chains to it and names
// the cluster's gateway identity.
func (d *demo) certificates(ctx context.Context) error {
	roots, err := pki.Pool(d.anchor.Data[pki.CACertKey])
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(d.o.Out, 0, 4, 2, ' ', 0)
	for _, cluster := range clusters {
		err := d.wait(ctx, cluster+"'s certificates", func(ctx context.Context) error {
			certs := d.ctls[cluster].Model.View().Trust.Certificates
			if len(certs) != 2 {
				return fmt.Errorf("%s has issued %d certificates, want a gateway and a client certificate", cluster, len(certs))
			}
			for _, c := range certs {
				ns, name, _ := strings.Cut(c.Secret, "/")
				var s corev1.Secret
				if err := d.clients[cluster].Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
					return err
				}
				usage := pki.Server
				if c.Usage == pki.Client.String() {
					usage = pki.Client
				}
				if _, err := pki.VerifyLeaf(s.Data[pki.CertKey], s.Data[pki.KeyKey], roots, ingress.GatewayIdentity(cluster), usage, time.Now()); err != nil {
					return fmt.Errorf("%s: Secret %s: %w", cluster, c.Secret, err)
				}
			}
			for _, c := range certs {
				fmt.Fprintf(tw, "  %s\t%s certificate\t%s\tvalid until %s, renewed at %s\t(Secret %s)\n",
					cluster, c.Usage, c.Identity, c.NotAfter.UTC().Format(timeFormat), c.RenewAt.UTC().Format(timeFormat), c.Secret)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	d.say("  (a gateway serves its server certificate; an edge presents its client certificate to other clusters' gateways)")
	return nil
}

// mutualTLS waits until west's Links have checked their gateways' mutual
// TLS, and shows the verdict.
func (d *demo) mutualTLS(ctx context.Context) error {
	for _, cluster := range remoteClusters {
		var cond *metav1.Condition
		err := d.wait(ctx, "Link "+cluster+" MutualTLS", func(ctx context.Context) error {
			var l crossmapv1.Link
			if err := d.clients["west"].Get(ctx, client.ObjectKey{Namespace: ctrlNamespace, Name: cluster}, &l); err != nil {
				return err
			}
			cond = meta.FindStatusCondition(l.Status.Conditions, crossmapv1.ConditionMutualTLS)
			if cond == nil || cond.Status != metav1.ConditionTrue {
				return fmt.Errorf("Link %s MutualTLS: %+v", cluster, cond)
			}
			return nil
		})
		if err != nil {
			return err
		}
		d.say("  west: Link %s MutualTLS=True (%s): %s", cluster, cond.Reason, cond.Message)
	}
	return nil
}

// cleartext sends requests to east's gateway that do not come from a
// linked cluster: in cleartext, and over TLS without a client certificate.
// Both are refused with mTLS on; with --insecure-cleartext the cleartext
// one reaches east's podinfo.
func (d *demo) cleartext(ctx context.Context) error {
	gw := netip.AddrPortFrom(gatewayAddr["east"], gatewayPort)
	// Only ever to the address the demo created in its own namespace.
	if !netns.Inside() || !netns.Exists(gw.Addr()) {
		return fmt.Errorf("east's gateway address %s is not one of the demo's network namespace", gw.Addr())
	}
	host := service + "." + appNamespace + ingress.GatewayHostSuffix
	dial := (&net.Dialer{Timeout: time.Second}).DialContext

	plain := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: dial}}
	code, answer, err := get(ctx, plain, "http://"+gw.String()+"/", host)
	if err != nil {
		return fmt.Errorf("cleartext GET to east's gateway: %w", err)
	}
	d.say("  GET http://%s/ (Host %s), in cleartext: %d %s, %s", gw, host, code, http.StatusText(code), answer)
	if d.o.InsecureCleartext {
		if code != http.StatusOK || answer != "answered by east" {
			return fmt.Errorf("cleartext GET to east's gateway: %d, %s; want east's podinfo to answer", code, answer)
		}
		d.say("  WARNING: anyone who can reach east's gateway reaches every Service east exports.")
		return nil
	}
	if code == http.StatusOK {
		return fmt.Errorf("east's gateway answered a cleartext request: %s", answer)
	}
	d.say("  refused: east's gateway Host rejects cleartext (requestPolicy.insecure.action: Reject)")

	// TLS that trusts the anchor and asks for east's identity, as west's
	// edge does, but presents no certificate.
	roots, err := pki.Pool(d.anchor.Data[pki.CACertKey])
	if err != nil {
		return err
	}
	noCert := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: dial,
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: ingress.GatewayIdentity("east"), MinVersion: tls.VersionTLS12}}}
	code, answer, err = get(ctx, noCert, "https://"+gw.String()+"/", host)
	if err == nil {
		return fmt.Errorf("east's gateway answered TLS without a client certificate: %d, %s", code, answer)
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	d.say("  GET https://%s/ trusting the anchor, with no client certificate: refused (%v)", gw, err)
	return nil
}

// get sends one GET with the Host header host and says who answered.
func get(ctx context.Context, c *http.Client, u, host string) (code int, answer string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body struct {
		Message string `json:"message"`
	}
	if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&body) == nil && body.Message != "" {
		return resp.StatusCode, "answered by " + body.Message, nil
	}
	return resp.StatusCode, "no backend reached", nil
}
