package edge

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"

	"github.com/crossmap/crossmap/emissary/fixture"
	"github.com/crossmap/crossmap/internal/pki"
)

// Certificate rotation: a new table with new certificates takes effect at
// the next handshake, and nothing under way fails.

// TestRotationUnderTraffic rotates east's gateway certificate and west's
// client certificate, five times each, while a steady stream of requests
// flows from clients through west's edge (originating TLS) to east's
// gateway (terminating it) and on to podinfo. Every request must succeed,
// and each new certificate must be in use as soon as its table is set.
func TestRotationUnderTraffic(t *testing.T) {
	m := newMTLS(t)
	gin := m.gatewayInput(t, m.gateway)
	gwProxy, gw, _ := startEdge(t, gin)
	oin := m.originInput(t, gw.addr, m.client, originContextObj(eastIdentity))
	origin, edge, problems := startEdge(t, oin)
	if len(problems) > 0 {
		t.Fatalf("problems:\n%s", problemList(problems))
	}

	var (
		succeeded, failed atomic.Int64
		errMu             sync.Mutex
		errs              []string
		stop              = make(chan struct{})
		wg                sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{DialContext: dialTo(edge.addr)}}
			defer client.CloseIdleConnections()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("http://edge.example.com/podinfo/")
				if err == nil {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
					}
				}
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					errs = append(errs, err.Error())
					errMu.Unlock()
					continue
				}
				succeeded.Add(1)
			}
		})
	}
	// progress waits for requests that started after now to succeed.
	progress := func(what string) {
		n := succeeded.Load()
		eventually(t, what, func() bool { return succeeded.Load() >= n+50 })
	}

	progress("traffic to flow")
	for round := range 5 {
		serving := m.ca.issue(t, eastIdentity, pki.Server)
		gin.Secrets[0] = tlsSecretObj(ctrlNamespace, gatewaySecret, serving)
		tbl, _ := Build(gin)
		gwProxy.SetTable(tbl)
		if got, want := servedCertificate(t, gw.addr, m), pki.Fingerprint(serving.pair.Leaf); got != want {
			t.Errorf("round %d: the gateway served %s after the rotation, want %s", round, got, want)
		}
		progress(fmt.Sprintf("round %d: requests after the gateway's rotation", round))

		client := m.ca.issue(t, westIdentity, pki.Client)
		oin.Secrets[0] = tlsSecretObj(ctrlNamespace, clientSecret, client)
		tbl, _ = Build(oin)
		origin.SetTable(tbl)
		eventually(t, fmt.Sprintf("round %d: the gateway to see the new client certificate", round), func() bool {
			return gw.requestsWith(client) > 0
		})
		progress(fmt.Sprintf("round %d: requests after the client's rotation", round))
	}
	close(stop)
	wg.Wait()

	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed, the first: %v", n, n+succeeded.Load(), errs[0])
	}
	t.Logf("%d requests through 5 rotations of each certificate", succeeded.Load())
	if errs := gwProxy.TLSStatus().HandshakeErrors; len(errs) > 0 {
		t.Errorf("the gateway counted failed handshakes: %v, the last: %s", errs, gwProxy.TLSStatus().LastError)
	}
	if errs := origin.TLSStatus().HandshakeErrors; len(errs) > 0 {
		t.Errorf("the edge counted failed handshakes: %v", errs)
	}
	origin.mu.Lock()
	defer origin.mu.Unlock()
	if len(origin.transports) != 1 {
		t.Errorf("the edge keeps %d transports, want 1: the retired ones must go", len(origin.transports))
	}
}

// servedCertificate is the fingerprint of the certificate the edge at addr
// serves a client of the trust anchor.
func servedCertificate(t *testing.T, addr string, m *mtls) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, clientConfig(eastIdentity, m.ca.pool(), &m.client.pair))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return pki.Fingerprint(conn.ConnectionState().PeerCertificates[0])
}

// TestOriginTransportReuse: a table rebuilt for an unrelated change keeps
// the upstream transport and its kept-alive connection; a rotated client
// certificate gets a new transport, and the old one's idle connection is
// closed.
func TestOriginTransportReuse(t *testing.T) {
	m := newMTLS(t)
	_, gw, _ := startEdge(t, m.gatewayInput(t, m.gateway))
	oin := m.originInput(t, gw.addr, m.client, originContextObj(eastIdentity))
	origin, edge, _ := startEdge(t, oin)
	client := &http.Client{Transport: &http.Transport{DialContext: dialTo(edge.addr)}}
	defer client.CloseIdleConnections()
	send := func() {
		t.Helper()
		resp, err := client.Get("http://edge.example.com/podinfo/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	transport := func() *http.Transport {
		origin.mu.Lock()
		defer origin.mu.Unlock()
		if len(origin.transports) != 1 {
			t.Fatalf("%d transports, want 1", len(origin.transports))
		}
		for _, tr := range origin.transports {
			return tr
		}
		return nil
	}

	send()
	first := transport()
	oin.Mappings = append(oin.Mappings, fixture.Mapping("other", "/other/", "podinfo-east", fixture.Spec(func(s *ambv3.MappingSpec) { s.TLS = originContext })))
	tbl, _ := Build(oin)
	origin.SetTable(tbl)
	send()
	if transport() != first {
		t.Error("a rebuild with the same certificates made a new transport")
	}
	if used, _ := gw.connections(); used != 1 {
		t.Errorf("the gateway saw requests on %d connections, want 1 kept alive", used)
	}

	oin.Secrets[0] = tlsSecretObj(ctrlNamespace, clientSecret, m.ca.issue(t, westIdentity, pki.Client))
	tbl, _ = Build(oin)
	origin.SetTable(tbl)
	if transport() == first {
		t.Error("a rotated client certificate kept the old transport")
	}
	send()
	eventually(t, "the retired transport's connection to close", func() bool {
		used, open := gw.connections()
		return used == 2 && open == 1
	})
}
