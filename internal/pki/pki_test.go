package pki_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/crossmap/crossmap/internal/pki"
)

var now = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

const (
	gatewayID = "east.crossmap-gateway.svc.cluster.local"
	clientID  = "west.crossmap-gateway.svc.cluster.local"
)

func mustCA(t *testing.T) *pki.Authority {
	t.Helper()
	certPEM, keyPEM, err := pki.NewCA("test trust anchor", 365*24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseAuthority(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func mustLeaf(t *testing.T, ca *pki.Authority, id string, usage pki.Usage, validity time.Duration, at time.Time) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue(id, usage, validity, at)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func TestIssueVerify(t *testing.T) {
	ca := mustCA(t)
	roots, err := pki.Pool(ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(gatewayID, pki.Server, 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.VerifyLeaf(certPEM, keyPEM, roots, gatewayID, pki.Server, now)
	if err != nil {
		t.Fatalf("VerifyLeaf: %v", err)
	}
	if want := now.Add(16 * time.Hour); !pki.RenewAt(cert).After(want.Add(-6*time.Minute)) || pki.RenewAt(cert).After(want) {
		t.Errorf("RenewAt = %s, want about two thirds into the lifetime (%s)", pki.RenewAt(cert), want)
	}
	for _, tc := range []struct {
		name     string
		id       string
		usage    pki.Usage
		at       time.Time
		keyPEM   []byte
		wantFail bool
	}{
		{name: "other identity", id: clientID, usage: pki.Server, at: now, wantFail: true},
		{name: "client usage", id: gatewayID, usage: pki.Client, at: now, wantFail: true},
		{name: "expired", id: gatewayID, usage: pki.Server, at: now.Add(25 * time.Hour), wantFail: true},
		{name: "other key", id: gatewayID, usage: pki.Server, at: now, keyPEM: ca.CertPEM, wantFail: true},
		{name: "valid", id: gatewayID, usage: pki.Server, at: now.Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := keyPEM
			if tc.keyPEM != nil {
				k = tc.keyPEM
			}
			_, err := pki.VerifyLeaf(certPEM, k, roots, tc.id, tc.usage, tc.at)
			if (err != nil) != tc.wantFail {
				t.Errorf("VerifyLeaf error = %v, want failure %v", err, tc.wantFail)
			}
		})
	}
}

func TestIssueNeverOutlivesCA(t *testing.T) {
	certPEM, keyPEM, err := pki.NewCA("short", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseAuthority(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM, _, err := ca.Issue(gatewayID, pki.Server, 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := pki.ParseCertificate(leafPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.NotAfter.Equal(ca.Cert.NotAfter) {
		t.Errorf("leaf NotAfter %s, want the CA's %s", leaf.NotAfter, ca.Cert.NotAfter)
	}
}

func TestParseAuthorityRejects(t *testing.T) {
	ca := mustCA(t)
	otherCert, otherKey, err := pki.NewCA("other", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM, leafKey, err := ca.Issue(gatewayID, pki.Server, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2][]byte{
		"mismatched key": {otherCert, leafKey},
		"leaf, not a CA": {leafPEM, leafKey},
		"no PEM":         {[]byte("not pem"), otherKey},
		"no key":         {otherCert, nil},
	} {
		if _, err := pki.ParseAuthority(pair[0], pair[1]); err == nil {
			t.Errorf("%s: ParseAuthority succeeded", name)
		}
	}
}

// TestClassify runs real handshakes over loopback and checks that each
// failure is told apart the way a Link condition reports it.
func TestClassify(t *testing.T) {
	ca, other := mustCA(t), mustCA(t)
	roots, _ := pki.Pool(ca.CertPEM)
	real := time.Now()
	good := mustLeaf(t, ca, gatewayID, pki.Server, time.Hour, real)
	client := mustLeaf(t, ca, clientID, pki.Client, time.Hour, real)
	for _, tc := range []struct {
		name       string
		serverCert tls.Certificate
		clientCert *tls.Certificate
		serverName string
		want       string
	}{
		{name: "valid", serverCert: good, clientCert: &client, serverName: gatewayID, want: ""},
		{name: "gateway from another CA", serverCert: mustLeaf(t, other, gatewayID, pki.Server, time.Hour, real), clientCert: &client, serverName: gatewayID, want: pki.ReasonUnknownCA},
		{name: "expired gateway", serverCert: mustLeaf(t, ca, gatewayID, pki.Server, time.Hour, real.Add(-3*time.Hour)), clientCert: &client, serverName: gatewayID, want: pki.ReasonCertificateExpired},
		{name: "wrong identity", serverCert: mustLeaf(t, ca, "south.crossmap-gateway.svc.cluster.local", pki.Server, time.Hour, real), clientCert: &client, serverName: gatewayID, want: pki.ReasonIdentityMismatch},
		{name: "no client certificate", serverCert: good, serverName: gatewayID, want: pki.ReasonCertificateRejected},
		{name: "client from another CA", serverCert: good, clientCert: ptr(mustLeaf(t, other, clientID, pki.Client, time.Hour, real)), serverName: gatewayID, want: pki.ReasonCertificateRejected},
		{name: "expired client", serverCert: good, clientCert: ptr(mustLeaf(t, ca, clientID, pki.Client, time.Hour, real.Add(-3*time.Hour))), serverName: gatewayID, want: pki.ReasonCertificateRejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := handshake(t, tc.serverCert, roots, tc.clientCert, tc.serverName)
			got, ok := pki.Classify(err)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("handshake failed: %v", err)
				}
				return
			}
			if !ok || got != tc.want {
				t.Errorf("Classify(%v) = %q, %v; want %q", err, got, ok, tc.want)
			}
		})
	}
	if reason, ok := pki.Classify(&net.OpError{Op: "dial", Err: errors.New("connection refused")}); ok {
		t.Errorf("a refused connection classified as a TLS failure %q", reason)
	}
}

func ptr[T any](v T) *T { return &v }

// handshake serves one mTLS connection on loopback and returns the client's
// error: from the handshake, or from the first read, which is where TLS 1.3
// reports a client certificate the server refused.
func handshake(t *testing.T, serverCert tls.Certificate, roots *x509.CertPool, clientCert *tls.Certificate, serverName string) error {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientCAs:    roots,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if err := c.(*tls.Conn).Handshake(); err == nil {
			_, _ = c.Write([]byte("ok"))
		}
	}()
	cfg := &tls.Config{RootCAs: roots, ServerName: serverName, MinVersion: tls.VersionTLS12}
	if clientCert != nil {
		cfg.Certificates = []tls.Certificate{*clientCert}
	}
	c, err := tls.Dial("tcp", l.Addr().String(), cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2)
	_, err = io.ReadFull(c, buf)
	return err
}

// TestRenewAtAfterIssue is the regression test of a renewal storm: with a
// fixed five-minute backdate, a certificate valid for 30s was due for
// renewal 80s before it was issued, so the trust role reissued it on every
// reconcile. Renewal must fall two thirds into the requested validity, give
// or take the backdate, for short and long validities alike.
func TestRenewAtAfterIssue(t *testing.T) {
	ca := mustCA(t)
	for _, validity := range []time.Duration{30 * time.Second, time.Minute, 10 * time.Minute, 24 * time.Hour} {
		certPEM, _, err := ca.Issue(gatewayID, pki.Server, validity, now)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := pki.ParseCertificate(certPEM)
		if err != nil {
			t.Fatal(err)
		}
		renew := pki.RenewAt(cert).Sub(now)
		if lo, hi := validity/2, validity*2/3; renew < lo || renew > hi {
			t.Errorf("validity %s: renewal %s after issue; want between %s and %s", validity, renew, lo, hi)
		}
	}
}
