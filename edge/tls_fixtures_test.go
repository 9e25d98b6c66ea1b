package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossmap/crossmap/emissary/fixture"
	"github.com/crossmap/crossmap/internal/pki"
)

// Fixture builders for the TLS tests: a trust anchor that issues real
// certificates (internal/pki), and the objects crossmap's controller
// writes for cross-cluster mutual TLS, with the names it gives them.

const (
	ctrlNamespace  = "crossmap-system"
	gatewayHostGlb = "*.svc.cluster.local"
	eastIdentity   = "east.crossmap-gateway.svc.cluster.local"
	westIdentity   = "west.crossmap-gateway.svc.cluster.local"
	podinfoGateway = "podinfo.test.svc.cluster.local"
	gatewaySecret  = "crossmap-gateway-tls"
	clientSecret   = "crossmap-client-tls"
	trustSecret    = "crossmap-trust-ca"
	originContext  = "crossmap-origin-east"
)

// testNow is the tests' clock: certificates are issued relative to it.
var testNow = time.Now()

// authority is a test trust anchor.
type authority struct {
	*pki.Authority
}

func newAuthority(t *testing.T, name string) authority {
	t.Helper()
	certPEM, keyPEM, err := pki.NewCA(name, 24*time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	a, err := pki.ParseAuthority(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return authority{a}
}

// leaf is an issued certificate, as PEM and ready for crypto/tls.
type leaf struct {
	certPEM, keyPEM []byte
	pair            tls.Certificate
}

// issue issues a certificate for identity valid for an hour from now.
func (a authority) issue(t *testing.T, identity string, usage pki.Usage) leaf {
	t.Helper()
	return a.issueAt(t, identity, usage, testNow, time.Hour)
}

// issueAt issues a certificate valid for validity from now (backdated
// by pki's few minutes): a now two hours ago and an hour's validity make
// an expired certificate.
func (a authority) issueAt(t *testing.T, identity string, usage pki.Usage, now time.Time, validity time.Duration) leaf {
	t.Helper()
	certPEM, keyPEM, err := a.Issue(identity, usage, validity, now)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return leaf{certPEM: certPEM, keyPEM: keyPEM, pair: pair}
}

func (a authority) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Cert)
	return p
}

// tlsSecretObj is a kubernetes.io/tls Secret.
func tlsSecretObj(namespace, name string, l leaf) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": l.certPEM, "tls.key": l.keyPEM},
	}
}

// caSecretObj is a ca_secret: the CA certificate alone in tls.crt.
func caSecretObj(namespace, name string, a authority) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"tls.crt": a.CertPEM},
	}
}

// gatewayLabels are the labels the gateway Host selects.
var gatewayLabels = map[string]string{"app.kubernetes.io/managed-by": "crossmap", "crossmap.io/role": "gateway"}

// gatewayHostObj is the export side's gateway Host with mutual TLS, as
// crossmap writes it.
func gatewayHostObj() *ambv3.Host {
	return &ambv3.Host{
		ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNamespace, Name: "crossmap-gateway"},
		Spec: &ambv3.HostSpec{
			Hostname:        gatewayHostGlb,
			MappingSelector: &metav1.LabelSelector{MatchLabels: gatewayLabels},
			AcmeProvider:    &ambv3.ACMEProviderSpec{Authority: "none"},
			TLSSecret:       &corev1.SecretReference{Name: gatewaySecret},
			TLS:             &ambv3.TLSConfig{CASecret: trustSecret, CertRequired: ptr(true), MinTLSVersion: "v1.2"},
			RequestPolicy:   &ambv3.RequestPolicy{Insecure: ambv3.InsecureRequestPolicy{Action: "Reject"}},
		},
	}
}

// gatewayMappingObj routes the gateway hostname of Service test/podinfo to
// it, as crossmap's export does.
func gatewayMappingObj() *ambv3.Mapping {
	m := fixture.Mapping("podinfo-gateway", "/", "podinfo", fixture.Hostname(podinfoGateway))
	m.Namespace = ctrlNamespace
	m.Labels = gatewayLabels
	m.Spec.Service = "podinfo.test:9898"
	return m
}

// originContextObj is the import side's TLSContext toward east's gateway.
func originContextObj(sni string) *ambv3.TLSContext {
	return &ambv3.TLSContext{
		ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNamespace, Name: originContext},
		Spec:       ambv3.TLSContextSpec{Secret: clientSecret, CASecret: trustSecret, SNI: sni, MinTLSVersion: "v1.2"},
	}
}

// siblingMappingObj is the import side's Mapping to east, through the
// mirror Service podinfo-east.
func siblingMappingObj() *ambv3.Mapping {
	return fixture.Mapping("podinfo-east", "/podinfo/", "podinfo-east", fixture.HostRewrite(podinfoGateway), fixture.Spec(func(s *ambv3.MappingSpec) {
		s.TLS = originContext
	}))
}

// edgeServer serves p on 127.0.0.1 through its TLS-or-cleartext listener.
// Every request's TLS client certificate is recorded, so that tests see
// which certificate a client presented.
type edgeServer struct {
	addr  string
	mu    sync.Mutex
	seen  map[string]int  // client certificate fingerprint -> requests
	peers map[string]bool // the client addresses of requests: one per connection
	open  map[net.Conn]bool
}

func serveEdge(t *testing.T, p *Proxy) *edgeServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	es := &edgeServer{addr: l.Addr().String(), seen: map[string]int{}, peers: map[string]bool{}, open: map[net.Conn]bool{}}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			es.mu.Lock()
			if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
				es.seen[pki.Fingerprint(r.TLS.PeerCertificates[0])]++
			}
			es.peers[r.RemoteAddr] = true
			es.mu.Unlock()
			p.ServeHTTP(w, r)
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			es.mu.Lock()
			defer es.mu.Unlock()
			switch s {
			case http.StateNew:
				es.open[c] = true
			case http.StateClosed, http.StateHijacked:
				delete(es.open, c)
			}
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(p.Listener(l)) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return es
}

// requestsWith says how many requests came with the client certificate l.
func (es *edgeServer) requestsWith(l leaf) int {
	es.mu.Lock()
	defer es.mu.Unlock()
	return es.seen[pki.Fingerprint(l.pair.Leaf)]
}

// connections says how many connections requests came on, and how many
// are open.
func (es *edgeServer) connections() (used, open int) {
	es.mu.Lock()
	defer es.mu.Unlock()
	return len(es.peers), len(es.open)
}

// tlsClient is an HTTP client of an edge: it connects to addr whatever the
// URL says, sends sni, verifies the edge against roots and presents cert
// (when set). maxVersion 0 leaves Go's default.
func tlsClient(addr, sni string, roots *x509.CertPool, cert *tls.Certificate, maxVersion uint16) *http.Client {
	cfg := clientConfig(sni, roots, cert)
	cfg.MaxVersion = maxVersion
	return &http.Client{
		Transport: &http.Transport{
			TLSClientConfig: cfg,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		},
		Timeout: 10 * time.Second,
	}
}

// clientConfig is a TLS client's configuration. It presents cert whatever
// CAs the server says it accepts (Go would send none when they do not name
// its issuer), as Envoy does.
func clientConfig(sni string, roots *x509.CertPool, cert *tls.Certificate) *tls.Config {
	cfg := &tls.Config{ServerName: sni, RootCAs: roots}
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
