package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/ingress"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/pki"
)

// Cross-cluster mutual TLS is on by default, so every test needs the
// trust anchor its clusters share, and tests that stand in for a gateway
// or a client need certificates from it (or from another CA, or expired):
// made with internal/pki, as crossmap makes its own.

// testAnchor is the trust anchor every test shares. One per test process
// is enough; each test copies it into its own controller namespace in both
// clusters (newBareHarness).
var testAnchor = sync.OnceValue(func() *anchor {
	certPEM, keyPEM, err := pki.NewCA("crossmap e2e trust anchor", 24*time.Hour, time.Now())
	if err != nil {
		panic(fmt.Sprintf("make the e2e trust anchor: %v", err))
	}
	ca, err := pki.ParseAuthority(certPEM, keyPEM)
	if err != nil {
		panic(fmt.Sprintf("parse the e2e trust anchor: %v", err))
	}
	return &anchor{certPEM: certPEM, keyPEM: keyPEM, ca: ca}
})

// anchor is a trust anchor: the CA certificate and key a trust anchor
// Secret holds, and the authority tests issue their own certificates with.
type anchor struct {
	certPEM, keyPEM []byte
	ca              *pki.Authority
}

// secret is the trust anchor Secret as an operator creates it.
func (a *anchor) secret(namespace string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: controller.DefaultConfig().TrustAnchorSecret},
		Data:       map[string][]byte{pki.CACertKey: a.certPEM, pki.CAKeyKey: a.keyPEM},
	}
}

// discardLog takes the handshake errors of stand-in gateways, which the
// tests provoke on purpose.
var discardLog = log.New(io.Discard, "", 0)

// newAnchor makes a trust anchor other than the one every test shares.
func newAnchor(t *testing.T, name string) *anchor {
	t.Helper()
	certPEM, keyPEM, err := pki.NewCA(name, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseAuthority(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &anchor{certPEM: certPEM, keyPEM: keyPEM, ca: ca}
}

// issue signs a leaf certificate for identity, valid from issuedAt (less
// pki's backdating) for validity.
func (a *anchor) issue(t testing.TB, identity string, usage pki.Usage, validity time.Duration, issuedAt time.Time) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := a.ca.Issue(identity, usage, validity, issuedAt)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func (a *anchor) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.ca.Cert)
	return p
}

// gatewayTLS is the TLS of a stand-in for east's gateway, as crossmap sets
// east's up: a certificate for east's gateway identity from the shared
// trust anchor, and client certificates required from it.
func (h *harness) gatewayTLS() *tls.Config {
	a := testAnchor()
	return standInTLS(a.issue(h.t, ingress.GatewayIdentity(h.eastCluster), pki.Server, time.Hour, time.Now()), a)
}

// standInTLS serves cert and requires client certificates from trusted.
func standInTLS(cert tls.Certificate, trusted *anchor) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: trusted.pool(),
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}

// westClientTLS is what west's edge originates toward east's gateway with:
// the client certificate west's crossmap issued (read from its Secret),
// the trust anchor, and east's gateway identity as SNI.
func (h *harness) westClientTLS(ctx context.Context) (*tls.Config, error) {
	var sec corev1.Secret
	if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: ingress.ClientCertSecret}, &sec); err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(sec.Data[pki.CertKey], sec.Data[pki.KeyKey])
	if err != nil {
		return nil, err
	}
	roots, err := pki.Pool(sec.Data[pki.CACertKey])
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: roots,
		ServerName: ingress.GatewayIdentity(h.eastCluster), MinVersion: tls.VersionTLS12}, nil
}

// gatewayGet sends one GET for exported Service name straight to east's
// gateway at addr, over TLS with cfg (cleartext when cfg is nil), and
// returns the HTTP status and podinfo's message.
func (h *harness) gatewayGet(ctx context.Context, addr netip.AddrPort, cfg *tls.Config, name string) (int, string, error) {
	scheme := "http://"
	if cfg != nil {
		scheme = "https://"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+addr.String()+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = name + "." + h.ns + ".svc.cluster.local"
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true,
		DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(body, &p)
	return resp.StatusCode, p.Message, nil
}

// secretCert reads the leaf certificate in Secret name of ctrlNS in c.
func (h *harness) secretCert(ctx context.Context, c client.Client, name string) (*x509.Certificate, *corev1.Secret, error) {
	var sec corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: name}, &sec); err != nil {
		return nil, nil, err
	}
	cert, err := pki.ParseCertificate(sec.Data[pki.CertKey])
	return cert, &sec, err
}

// describeCert is a certificate's names, expiry and fingerprint, for logs.
func describeCert(certPEM []byte) string {
	if len(certPEM) == 0 {
		return ""
	}
	c, err := pki.ParseCertificate(certPEM)
	if err != nil {
		return "unparsable certificate: " + err.Error()
	}
	return fmt.Sprintf("cert names=%v issuer=%q notAfter=%s fingerprint=%s", c.DNSNames, c.Issuer.CommonName, c.NotAfter.UTC().Format(time.RFC3339), pki.Fingerprint(c))
}
