package remote_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crossmap/crossmap/internal/pki"
	"github.com/crossmap/crossmap/internal/remote"
)

const gatewayID = "east.crossmap-gateway.svc.cluster.local"

// TestProberMutualTLS probes a gateway on loopback that requires a client
// certificate, as crossmap's gateway Host does: a good handshake is
// recorded with the gateway certificate's expiry, the Host header is the
// identity, and a gateway naming another identity fails with
// IdentityMismatch, counted once per round.
func TestProberMutualTLS(t *testing.T) {
	now := time.Now()
	caPEM, caKey, err := pki.NewCA("probe test", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ParseAuthority(caPEM, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots, _ := pki.Pool(caPEM)
	pair := func(id string, usage pki.Usage) tls.Certificate {
		c, k, err := ca.Issue(id, usage, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		p, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	client := pair("west.crossmap-gateway.svc.cluster.local", pki.Client)

	for _, tc := range []struct {
		name       string
		serverID   string
		wantReason string
	}{
		{name: "good", serverID: gatewayID},
		{name: "wrong identity", serverID: "south.crossmap-gateway.svc.cluster.local", wantReason: pki.ReasonIdentityMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				hosts []string
			)
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hosts = append(hosts, r.Host)
				mu.Unlock()
			}))
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv.Listener = l
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair(tc.serverID, pki.Server)}, ClientCAs: roots,
				ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
			srv.StartTLS()
			t.Cleanup(srv.Close)

			var failures atomic.Int64
			p := remote.StartProber(t.Context(), remote.ProbeConfig{
				Addresses: []netip.Addr{loopback}, Port: int32(l.Addr().(*net.TCPAddr).Port), Path: probePath,
				Period: 20 * time.Millisecond, Timeout: time.Second, FailureThreshold: 2, Host: gatewayID,
				TLS:          &tls.Config{Certificates: []tls.Certificate{client}, RootCAs: roots, ServerName: gatewayID, MinVersion: tls.VersionTLS12},
				OnTLSFailure: func(string) { failures.Add(1) },
			})
			t.Cleanup(p.Stop)
			if tc.wantReason == "" {
				eventually(t, "a good handshake", func() bool { r := p.Result(); return r.Alive && r.TLS.Checked && r.TLS.Reason == "" })
				r := p.Result()
				if !r.TLS.PeerNotAfter.Equal(now.Add(time.Hour).Truncate(time.Second)) {
					t.Errorf("PeerNotAfter = %s; want the gateway certificate's %s", r.TLS.PeerNotAfter, now.Add(time.Hour).Truncate(time.Second))
				}
				mu.Lock()
				defer mu.Unlock()
				for _, h := range hosts {
					if h != gatewayID {
						t.Errorf("probe Host header %q; want the identity %q", h, gatewayID)
					}
				}
				return
			}
			eventually(t, "the gateway dead with "+tc.wantReason, func() bool {
				r := p.Result()
				return !r.Alive && r.TLS.Reason == tc.wantReason && r.TLS.Err != nil
			})
			if failures.Load() < 2 {
				t.Errorf("OnTLSFailure called %d times; want once per failed round (at least 2)", failures.Load())
			}
			mu.Lock()
			defer mu.Unlock()
			if len(hosts) != 0 {
				t.Errorf("a request reached a gateway of the wrong identity: %v", hosts)
			}
		})
	}
}
