package edgeserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/edge"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/pki"
	"github.com/crossmap/crossmap/internal/testenv"
)

const (
	ns       = "crossmap-system"
	identity = "east.crossmap-gateway.svc.cluster.local"
)

// TestGatewayTLS runs the edge against a real API server as east's
// gateway, with the Host and Secrets crossmap writes for mutual TLS, and
// checks what only the watch can break: the Secrets reach the table, a
// rotated certificate is served from the next handshake on while a
// kept-alive connection carries on, a TLSContext appearing clears the
// problem of the Mapping that names it, and /status shows the TLS side.
func TestGatewayTLS(t *testing.T) {
	ctx := t.Context()
	bed, err := testenv.Start(ctx, []string{"east"}, testenv.Options{CRDDirs: []string{}})
	if err != nil {
		t.Fatalf("start test bed: %v", err)
	}
	t.Cleanup(func() {
		if err := bed.Stop(); err != nil {
			t.Errorf("stop test bed: %v", err)
		}
	})
	plane := bed.Plane("east")
	c, err := plane.Client(controller.NewScheme())
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	caPEM, caKey, err := pki.NewCA("crossmap trust anchor", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseAuthority(caPEM, caKey)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(id string, u pki.Usage) (certPEM, keyPEM []byte) {
		t.Helper()
		certPEM, keyPEM, err := ca.Issue(id, u, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		return certPEM, keyPEM
	}
	servingV1, keyV1 := issue(identity, pki.Server)
	clientPEM, clientKey := issue("west.crossmap-gateway.svc.cluster.local", pki.Client)
	clientPair, err := tls.X509KeyPair(clientPEM, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)

	gatewaySecret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "crossmap-gateway-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": servingV1, "tls.key": keyV1},
	}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		gatewaySecret,
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "crossmap-trust-ca"},
			Data:       map[string][]byte{"tls.crt": caPEM},
		},
		&ambv3.Host{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "crossmap-gateway"},
			Spec: &ambv3.HostSpec{
				Hostname:        "*.svc.cluster.local",
				MappingSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"crossmap.io/role": "gateway"}},
				TLSSecret:       &corev1.SecretReference{Name: "crossmap-gateway-tls"},
				TLS:             &ambv3.TLSConfig{CASecret: "crossmap-trust-ca", CertRequired: ptr(true), MinTLSVersion: "v1.2"},
				RequestPolicy:   &ambv3.RequestPolicy{Insecure: ambv3.InsecureRequestPolicy{Action: "Reject"}},
			},
		},
		// A Mapping to another cluster, whose TLSContext is not there yet.
		&ambv3.Mapping{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "to-north", Labels: map[string]string{"crossmap.io/role": "gateway"}},
			Spec:       ambv3.MappingSpec{Prefix: "/north/", Service: "podinfo-north.test:9898", TLS: "crossmap-origin-north"},
		},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
		}
	}

	srv, err := New(plane.Config, Config{Listen: "127.0.0.1:0", StatusAddr: "127.0.0.1:0", Name: "east-gateway"}, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("edge: %v", err)
		}
	})
	addr := srv.Addr().String()

	// The probe crossmap's controller sends: mutual TLS, SNI and Host the
	// gateway identity.
	tlsCfg := &tls.Config{
		ServerName:           identity,
		RootCAs:              roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &clientPair, nil },
	}
	probe := &http.Client{Transport: &http.Transport{
		TLSClientConfig: tlsCfg,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	defer probe.CloseIdleConnections()
	var kept *tls.ConnectionState
	eventually(t, "check_ready through mutual TLS", func() bool {
		resp, err := probe.Get("https://" + identity + edge.BuiltinReady)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		kept = resp.TLS
		return resp.StatusCode == http.StatusOK
	})
	if got, want := pki.Fingerprint(kept.PeerCertificates[0]), fingerprint(t, servingV1); got != want {
		t.Fatalf("served %s, want the first certificate %s", got, want)
	}

	// Rotate: the next handshake serves the new certificate; the kept-alive
	// connection carries on with the one it shook hands with.
	servingV2, keyV2 := issue(identity, pki.Server)
	gatewaySecret.Data = map[string][]byte{"tls.crt": servingV2, "tls.key": keyV2}
	if err := c.Update(ctx, gatewaySecret); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a new handshake to serve the rotated certificate", func() bool {
		conn, err := tls.Dial("tcp", addr, tlsCfg)
		if err != nil {
			return false
		}
		defer conn.Close()
		return pki.Fingerprint(conn.ConnectionState().PeerCertificates[0]) == fingerprint(t, servingV2)
	})
	resp, err := probe.Get("https://" + identity + edge.BuiltinReady)
	if err != nil {
		t.Fatalf("the kept-alive connection failed after the rotation: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || pki.Fingerprint(resp.TLS.PeerCertificates[0]) != fingerprint(t, servingV1) {
		t.Errorf("after the rotation: %d on a connection with %s, want 200 on the kept-alive connection (%s)", resp.StatusCode, pki.Fingerprint(resp.TLS.PeerCertificates[0]), fingerprint(t, servingV1))
	}

	// A client without a certificate is refused and counted.
	if conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: identity, RootCAs: roots, MaxVersion: tls.VersionTLS12}); err == nil {
		conn.Close()
		t.Error("a handshake without a client certificate succeeded")
	}

	// The Mapping's missing TLSContext is a problem until it exists.
	hasProblem := func() bool {
		for _, p := range srv.Problems() {
			if p.Mapping == ns+"/to-north" && p.Field == "tls" {
				return true
			}
		}
		return false
	}
	eventually(t, "the problem of the missing TLSContext", hasProblem)
	if err := c.Create(ctx, &ambv3.TLSContext{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "crossmap-origin-north"},
		Spec:       ambv3.TLSContextSpec{Secret: "crossmap-gateway-tls", CASecret: "crossmap-trust-ca", SNI: "north.crossmap-gateway.svc.cluster.local"},
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the problem to clear", func() bool { return !hasProblem() })

	// /status: the certificates in use and the failed handshake.
	var status struct {
		TLS edge.TLSStatus `json:"tls"`
	}
	eventually(t, "/status to count the refused handshake", func() bool {
		resp, err := http.Get("http://" + srv.StatusAddr().String() + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		status.TLS = edge.TLSStatus{}
		return json.NewDecoder(resp.Body).Decode(&status) == nil && status.TLS.HandshakeErrors[edge.SideServer][pki.ReasonHandshakeFailed] == 1
	})
	if !strings.Contains(status.TLS.LastError, "HandshakeFailed") {
		t.Errorf("lastError = %q, want the refused handshake", status.TLS.LastError)
	}
	var served bool
	for _, cert := range status.TLS.Certificates {
		if cert.Secret == ns+"/crossmap-gateway-tls" && cert.Use == edge.UseServer {
			served = cert.Fingerprint == fingerprint(t, servingV2) && !cert.NotAfter.IsZero()
		}
	}
	if !served {
		t.Errorf("certificates = %+v, want the rotated serving certificate with its notAfter", status.TLS.Certificates)
	}
}

func fingerprint(t *testing.T, certPEM []byte) string {
	t.Helper()
	cert, err := pki.ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pki.Fingerprint(cert)
}

// eventually polls cond until it holds or 30 seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

func ptr[T any](v T) *T { return &v }
