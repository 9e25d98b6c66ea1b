package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/edge"
	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/pki"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// The tests of cross-cluster mutual TLS (issue 7), on real control planes
// with crossmap's dev edge as east's gateway and west's edge, and real
// podinfo behind them. Certificates the tests make themselves (another
// CA's, expired ones) come from internal/pki, as crossmap's own do.

// statusBase waits for ctl's status API to listen and returns its URL.
func (h *harness) statusBase(ctl *controller.Controller) string {
	h.t.Helper()
	var base string
	h.eventually("status API listening", func(context.Context) error {
		addr := ctl.Status.ListenAddr()
		if addr == nil {
			return errors.New("the status API does not listen yet")
		}
		base = "http://" + addr.String()
		return nil
	})
	return base
}

// statusLink reads one Link from west's status API over HTTP.
func (h *harness) statusLink(ctx context.Context, base, name string) (status.Link, error) {
	var l status.Link
	err := statusGetJSON(ctx, base+"/status/links/"+h.ctrlNS+"/"+name, http.StatusOK, &l)
	if err == nil && l.TLS == nil {
		err = fmt.Errorf("link %s has no tls in the status API: %+v", name, l)
	}
	return l, err
}

// metricLine finds the sample of metric name whose labels include each of
// labels (`key="value"`) in a /metrics answer, and returns its value.
func metricLine(ctx context.Context, base, name string, labels ...string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		if !all(labels, func(l string) bool { return strings.Contains(line, l) }) {
			continue
		}
		return line[strings.LastIndexByte(line, ' ')+1:], nil
	}
	return "", fmt.Errorf("no %s{%s} in /metrics", name, strings.Join(labels, ","))
}

// edgeTLS reads the TLS side of a dev edge's /status.
func edgeTLS(ctx context.Context, addr net.Addr) (edge.TLSStatus, time.Time, error) {
	var body struct {
		Built time.Time      `json:"built"`
		TLS   edge.TLSStatus `json:"tls"`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr.String()+"/status", nil)
	if err != nil {
		return body.TLS, body.Built, err
	}
	err = do(req, &body)
	return body.TLS, body.Built, err
}

// edgeCert is the certificate of use (edge.UseServer, UseClient, UseCA) in
// an edge's status whose names include name ("" for any).
func edgeCert(st edge.TLSStatus, use, name string) (edge.Certificate, bool) {
	for _, c := range st.Certificates {
		if c.Use == use && (name == "" || slices.Contains(c.Names, name)) {
			return c, true
		}
	}
	return edge.Certificate{}, false
}

// traffic sends requests through west's edge back to back, on workers
// goroutines, until stopped, counting answers by podinfo message; every
// failure is kept.
type traffic struct {
	stop   context.CancelFunc
	done   sync.WaitGroup
	mu     sync.Mutex
	counts map[string]int
	fails  []string
	total  atomic.Int64
}

func (s *story) startTraffic(workers int) *traffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &traffic{stop: cancel, counts: map[string]int{}}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}}
	for range workers {
		tr.done.Add(1)
		go func() {
			defer tr.done.Done()
			for ctx.Err() == nil {
				msg, err := func() (string, error) {
					resp, err := c.Get(s.edgeURL + "/podinfo/")
					if err != nil {
						return "", err
					}
					defer resp.Body.Close()
					body, _ := io.ReadAll(resp.Body)
					var p struct {
						Message string `json:"message"`
					}
					if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &p) != nil {
						return "", fmt.Errorf("HTTP %d from %s: %s", resp.StatusCode, resp.Header.Get(edge.MappingHeader), strings.TrimSpace(string(body)))
					}
					return p.Message, nil
				}()
				tr.total.Add(1)
				tr.mu.Lock()
				if err != nil {
					tr.fails = append(tr.fails, time.Now().Format("15:04:05.000")+" "+err.Error())
				} else {
					tr.counts[msg]++
				}
				tr.mu.Unlock()
			}
		}()
	}
	s.h.t.Cleanup(func() { tr.finish() })
	return tr
}

// finish stops the traffic and returns the answers by message and the
// failures.
func (tr *traffic) finish() (map[string]int, []string) {
	tr.stop()
	tr.done.Wait()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.counts, tr.fails
}

// wantMore waits until at least n more requests have been answered.
func (tr *traffic) wantMore(h *harness, what string, n int64) {
	h.t.Helper()
	from := tr.total.Load()
	h.eventually(what, func(context.Context) error {
		if got := tr.total.Load() - from; got < n {
			return fmt.Errorf("%d requests since, want %d", got, n)
		}
		return nil
	})
}

// TestMTLSSplitEndToEnd: with crossmap's defaults (mutual TLS, the Link's
// identity the default one for its cluster), west's edge splits podinfo
// 50/50 with east, the east half over mutual TLS to east's gateway, which
// terminates it and refuses cleartext. What crossmap wrote for that is
// checked too: the gateway Host, the TLSContext, the sibling's tls.
func TestMTLSSplitEndToEnd(t *testing.T) {
	s := newStoryWith(t, storyOptions{defaultIdentity: true,
		annotations: func(cluster string) map[string]string { return map[string]string{"crossmap.io/split": cluster + "=50"} }})
	h := s.h
	identity := ingress.GatewayIdentity(h.eastCluster)
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")

	h.eventually("gateway Host, TLSContext, sibling and mirror set up for mutual TLS", func(ctx context.Context) error {
		var errs []string
		var host ambv3.Host
		if err := h.east.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: "crossmap-gateway"}, &host); err != nil {
			return err
		}
		if sp := host.Spec; sp.TLSSecret == nil || sp.TLSSecret.Name != ingress.GatewayCertSecret || sp.TLS == nil ||
			sp.TLS.CASecret != ingress.TrustCASecret || !ptr.Deref(sp.TLS.CertRequired, false) || sp.RequestPolicy.Insecure.Action != "Reject" {
			errs = append(errs, fmt.Sprintf("gateway Host: tlsSecret=%v tls=%+v requestPolicy=%+v", sp.TLSSecret, sp.TLS, sp.RequestPolicy))
		}
		var tc ambv3.TLSContext
		if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: ingress.OriginContextName(s.cluster)}, &tc); err != nil {
			errs = append(errs, fmt.Sprintf("TLSContext: %v", err))
		} else if tc.Spec.Secret != ingress.ClientCertSecret || tc.Spec.CASecret != ingress.TrustCASecret || tc.Spec.SNI != identity {
			errs = append(errs, fmt.Sprintf("TLSContext spec = %+v", tc.Spec))
		}
		m, err := h.sibling(ctx, s.sibling())
		if err != nil {
			return err
		}
		if m.Spec.TLS != ingress.OriginContextName(s.cluster) || ptr.Deref(m.Spec.Weight, -1) != 50 {
			errs = append(errs, fmt.Sprintf("sibling tls=%q weight=%v", m.Spec.TLS, ptr.Deref(m.Spec.Weight, -1)))
		}
		var es discoveryv1.EndpointSliceList
		if err := h.west.List(ctx, &es, client.InNamespace(h.ns), client.MatchingLabels{discoveryv1.LabelServiceName: s.sibling()}); err != nil {
			return err
		}
		if got, want := endpoints(es.Items), []string{s.gwAddr.String() + ":4143 ready=true"}; !slices.Equal(got, want) {
			errs = append(errs, fmt.Sprintf("mirror endpoints %v, want %v", got, want))
		}
		return joinErrs(errs)
	})

	h.eventually("both clusters answer through west's edge", func(context.Context) error {
		if c := s.hit(40, nil); c["east"] == 0 || c["west"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})
	// 50/50 within statistical bounds: 400 requests, σ = 10, allow ±5σ.
	c := s.hit(400, nil)
	t.Logf("split over 400 requests, east over mutual TLS: %v", c)
	if c["error"] > 0 || c["east"] < 150 || c["east"] > 250 || c["east"]+c["west"] != 400 {
		t.Fatalf("split %v is not 50/50 within bounds, without errors", c)
	}

	// East's gateway answers only over mutual TLS: with west's client
	// certificate it serves podinfo, in cleartext it does not.
	gw := netip.AddrPortFrom(s.gwAddr, 4143)
	ctx := t.Context()
	cfg, err := h.westClientTLS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if code, msg, err := h.gatewayGet(ctx, gw, cfg, "podinfo"); err != nil || code != http.StatusOK || msg != "east" {
		t.Errorf("GET through the gateway with west's certificate: HTTP %d, message %q, err %v; want 200 from east", code, msg, err)
	}
	code, msg, err := h.gatewayGet(ctx, gw, nil, "podinfo")
	t.Logf("cleartext GET to the gateway: HTTP %d, message %q, err %v", code, msg, err)
	if err == nil && (code == http.StatusOK || msg != "") {
		t.Errorf("cleartext GET to the gateway: HTTP %d, message %q; want it refused", code, msg)
	}
	// Cluster isolation holds over TLS too: an unexported Service is not
	// reachable through the gateway, certificate or not.
	if code, msg, err := h.gatewayGet(ctx, gw, cfg, "private"); err != nil || code != http.StatusNotFound {
		t.Errorf("GET of an unexported Service through the gateway: HTTP %d, message %q, err %v; want 404", code, msg, err)
	}
	s.wantUserObjectsUnchanged()
}

// TestMTLSGatewayRefusesUntrustedClients: east's gateway refuses, in the
// handshake, a client without a certificate, with one from another CA,
// with an expired one, and with a server certificate; the same request
// with a good client certificate is answered by east's podinfo. East's
// gateway counts each refusal on its /status.
func TestMTLSGatewayRefusesUntrustedClients(t *testing.T) {
	s := newStory(t, nil)
	h := s.h
	gw := netip.AddrPortFrom(s.gwAddr, 4143)
	identity := ingress.GatewayIdentity(h.eastCluster)
	a := testAnchor()
	other := newAnchor(t, "another CA")
	// The client presents its certificate whatever the gateway asks for:
	// Go's client would otherwise send none when the certificate is not
	// from a CA the gateway names, and the case would test nothing new.
	clientTLS := func(certs ...tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: a.pool(), ServerName: identity, MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if len(certs) == 0 {
					return &tls.Certificate{}, nil
				}
				return &certs[0], nil
			}}
	}
	now := time.Now()
	good := clientTLS(a.issue(t, "stranger.example", pki.Client, time.Hour, now))
	h.eventually("a client certificate from the trust anchor is served", func(ctx context.Context) error {
		code, msg, err := h.gatewayGet(ctx, gw, good, "podinfo")
		if err != nil || code != http.StatusOK || msg != "east" {
			return fmt.Errorf("HTTP %d, message %q, err %v", code, msg, err)
		}
		return nil
	})

	for _, tc := range []struct {
		name   string
		cfg    *tls.Config
		reason string // the reason east's gateway counts, "" for any
	}{
		{"no certificate", clientTLS(), ""},
		{"a certificate from another CA", clientTLS(other.issue(t, "west.crossmap-gateway.svc.cluster.local", pki.Client, time.Hour, now)), pki.ReasonUnknownCA},
		{"an expired certificate", clientTLS(a.issue(t, "west.crossmap-gateway.svc.cluster.local", pki.Client, time.Hour, now.Add(-3*time.Hour))), pki.ReasonCertificateExpired},
		{"a server certificate", clientTLS(a.issue(t, "west.crossmap-gateway.svc.cluster.local", pki.Server, time.Hour, now)), ""},
	} {
		before, _, err := edgeTLS(t.Context(), s.gatewayStatus())
		if err != nil {
			t.Fatal(err)
		}
		code, msg, err := h.gatewayGet(t.Context(), gw, tc.cfg, "podinfo")
		t.Logf("%s: HTTP %d, message %q, err %v", tc.name, code, msg, err)
		if err == nil {
			t.Errorf("%s: HTTP %d, message %q; want the handshake refused", tc.name, code, msg)
			continue
		}
		h.eventually(tc.name+": counted by east's gateway", func(ctx context.Context) error {
			after, _, err := edgeTLS(ctx, s.gatewayStatus())
			if err != nil {
				return err
			}
			if tc.reason != "" {
				if after.HandshakeErrors[edge.SideServer][tc.reason] <= before.HandshakeErrors[edge.SideServer][tc.reason] {
					return fmt.Errorf("server-side %s handshake errors %v (before %v)", tc.reason, after.HandshakeErrors, before.HandshakeErrors)
				}
				return nil
			}
			if sum(after.HandshakeErrors[edge.SideServer]) <= sum(before.HandshakeErrors[edge.SideServer]) {
				return fmt.Errorf("server-side handshake errors %v (before %v)", after.HandshakeErrors, before.HandshakeErrors)
			}
			return nil
		})
	}
	// And the good client still gets through: the refusals were the
	// certificates', not the gateway's.
	if code, msg, err := h.gatewayGet(t.Context(), gw, good, "podinfo"); err != nil || code != http.StatusOK || msg != "east" {
		t.Errorf("good client after the refusals: HTTP %d, message %q, err %v", code, msg, err)
	}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// gatewayStatus is the address of east's gateway's /status.
func (s *story) gatewayStatus() net.Addr {
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(s.gwAddr, 8877))
}

// TestMTLSWrongGatewayIdentity: when the gateway does not carry the
// identity the Link names, west's edge refuses it: no request reaches
// east's podinfo, the Link's MutualTLS condition says IdentityMismatch, and
// once the probe has failed failureThreshold times the gateway is dead and
// traffic fails over. Restoring the identity recovers everything.
func TestMTLSWrongGatewayIdentity(t *testing.T) {
	s := newStoryWith(t, storyOptions{defaultIdentity: true,
		annotations: func(cluster string) map[string]string {
			return map[string]string{"crossmap.io/split": cluster + "=50", "crossmap.io/failover": "weighted"}
		},
		// So many failures before the gateway is declared dead that
		// the first phase sees the edge's refusal alone.
		link: func(l *crossmapv1.Link) { l.Spec.Probe.FailureThreshold = 65535 }})
	h := s.h
	base := h.statusBase(h.westCtl)
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")
	h.eventually("both clusters answer", func(context.Context) error {
		if c := s.hit(40, nil); c["east"] == 0 || c["west"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})

	impostor := "impostor.crossmap-gateway.svc.cluster.local"
	link := &crossmapv1.Link{}
	link.Namespace, link.Name = h.ctrlNS, "east"
	update(h, h.west, link, func(l *crossmapv1.Link) { l.Spec.Gateway.Identity = impostor })
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "False/"+pki.ReasonIdentityMismatch)
	h.eventually("status API: link tls IdentityMismatch", func(ctx context.Context) error {
		l, err := h.statusLink(ctx, base, "east")
		if err != nil {
			return err
		}
		if l.TLS.Reason != pki.ReasonIdentityMismatch || l.TLS.Verified || l.TLS.Identity != impostor || !strings.Contains(l.TLS.LastError, impostor) {
			return fmt.Errorf("link tls = %+v", *l.TLS)
		}
		return nil
	})
	if n := counter(t, h.westMetrics, "crossmap_tls_handshake_failures_total", map[string]string{"reason": pki.ReasonIdentityMismatch}); n == 0 {
		t.Errorf("crossmap_tls_handshake_failures_total{reason=IdentityMismatch} = 0")
	}
	// West's edge now sends the impostor's name and refuses east's
	// certificate: the requests the split sends east fail at the edge.
	h.eventually("west's edge refuses east's gateway", func(ctx context.Context) error {
		s.hit(10, nil)
		st, _, err := edgeTLS(ctx, s.westEdge.StatusAddr())
		if err != nil {
			return err
		}
		if st.HandshakeErrors[edge.SideClient][pki.ReasonIdentityMismatch] == 0 {
			return fmt.Errorf("west edge handshake errors %v, last %q", st.HandshakeErrors, st.LastError)
		}
		return nil
	})
	c := s.hit(100, nil)
	t.Logf("wrong identity, gateway not yet declared dead: %v", c)
	if c["east"] > 0 || c["error"] == 0 || c["west"] == 0 {
		t.Errorf("answers %v; want none from east, the requests sent east refused, the rest answered by west", c)
	}
	if got := condition(mustLink(t, h), crossmapv1.ConditionGatewayAlive); got != "True/ProbeSucceeded" {
		t.Errorf("GatewayAlive = %s while under the failure threshold", got)
	}

	// The probe's failures count now: the gateway is dead, for the reason
	// the handshake gave, and the split fails over to west.
	update(h, h.west, link, func(l *crossmapv1.Link) { l.Spec.Probe.FailureThreshold = 2 })
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "False/"+pki.ReasonIdentityMismatch)
	h.wantWeight("failover: east gets nothing", s.sibling(), 0)
	h.eventually("status API: gateway dead", func(ctx context.Context) error {
		l, err := h.statusLink(ctx, base, "east")
		if err != nil {
			return err
		}
		if l.GatewayAlive || l.TLS.Reason != pki.ReasonIdentityMismatch {
			return fmt.Errorf("link gatewayAlive=%v tls=%+v", l.GatewayAlive, *l.TLS)
		}
		return nil
	})
	h.eventually("every request answered by west", func(context.Context) error {
		if c := s.hit(50, nil); c["west"] != 50 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})

	// The right identity again: everything recovers.
	update(h, h.west, link, func(l *crossmapv1.Link) { l.Spec.Gateway.Identity = "" })
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
	h.wantWeight("split restored", s.sibling(), 50)
	h.eventually("east answers again", func(context.Context) error {
		if c := s.hit(40, nil); c["east"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})
	h.eventually("status API: verified with the default identity", func(ctx context.Context) error {
		l, err := h.statusLink(ctx, base, "east")
		if err != nil {
			return err
		}
		if !l.GatewayAlive || !l.TLS.Verified || l.TLS.Reason != controller.ReasonHandshakeSucceeded || l.TLS.Identity != ingress.GatewayIdentity(h.eastCluster) {
			return fmt.Errorf("link gatewayAlive=%v tls=%+v", l.GatewayAlive, *l.TLS)
		}
		return nil
	})
}

func mustLink(t *testing.T, h *harness) *crossmapv1.Link {
	t.Helper()
	l, err := h.getLink(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestMTLSTrustAnchorRotationUnderTraffic: the operator rotates the trust
// anchor in the three steps crossmap supports (the new CA appended, then
// first with its key, then alone), in both clusters, one cluster after the
// other, while requests flow west's edge -> east's gateway -> podinfo. Not
// one request fails, and both clusters' certificates are reissued from the
// new CA.
func TestMTLSTrustAnchorRotationUnderTraffic(t *testing.T) {
	s := newStory(t, map[string]string{"crossmap.io/split": "east=50"})
	h := s.h
	ctx := t.Context()
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")
	h.eventually("both clusters answer", func(context.Context) error {
		if c := s.hit(40, nil); c["east"] == 0 || c["west"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})
	gwBefore, _, err := h.secretCert(ctx, h.east, ingress.GatewayCertSecret)
	if err != nil {
		t.Fatal(err)
	}
	clientBefore, _, err := h.secretCert(ctx, h.west, ingress.ClientCertSecret)
	if err != nil {
		t.Fatal(err)
	}

	old, next := testAnchor(), newAnchor(t, "crossmap e2e trust anchor, rotated")
	tr := s.startTraffic(2)
	tr.wantMore(h, "traffic flowing", 50)

	n := 0
	step := func(name string, caPEM, keyPEM []byte, issuer *anchor) {
		t.Helper()
		n++
		for _, side := range []struct {
			name string
			c    client.Client
			leaf string
		}{{"east", h.east, ingress.GatewayCertSecret}, {"west", h.west, ingress.ClientCertSecret}} {
			sec := &corev1.Secret{}
			sec.Namespace, sec.Name = h.ctrlNS, controller.DefaultConfig().TrustAnchorSecret
			update(h, side.c, sec, func(sec *corev1.Secret) {
				sec.Data = map[string][]byte{pki.CACertKey: caPEM, pki.CAKeyKey: keyPEM}
			})
			h.eventually(name+": "+side.name+"'s certificates follow the anchor", func(ctx context.Context) error {
				for _, secret := range []string{ingress.TrustCASecret, side.leaf} {
					var sec corev1.Secret
					if err := side.c.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: secret}, &sec); err != nil {
						return err
					}
					bundle := sec.Data[pki.CertKey]
					if secret == side.leaf {
						bundle = sec.Data[pki.CACertKey]
						cert, err := pki.ParseCertificate(sec.Data[pki.CertKey])
						if err != nil {
							return err
						}
						if err := cert.CheckSignatureFrom(issuer.ca.Cert); err != nil {
							return fmt.Errorf("%s not signed by %q yet", secret, issuer.ca.Cert.Subject.CommonName)
						}
					}
					if string(bundle) != string(caPEM) {
						return fmt.Errorf("%s does not hold the new bundle yet", secret)
					}
				}
				return nil
			})
			// Each step is complete before the next cluster's: the edges
			// have rebuilt their tables since (a Service both edges watch
			// is created to make sure of a rebuild after the Secrets).
			h.edgesRebuilt(s, fmt.Sprintf("%d-%s", n, side.name))
		}
		tr.wantMore(h, "traffic after "+name, 50)
	}
	bundle := func(pems ...[]byte) []byte { return slices.Concat(pems...) }
	step("step 1, the new CA trusted", bundle(old.certPEM, next.certPEM), old.keyPEM, old)
	step("step 2, the new CA signs", bundle(next.certPEM, old.certPEM), next.keyPEM, next)
	step("step 3, the old CA retired", next.certPEM, next.keyPEM, next)
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")
	tr.wantMore(h, "traffic after the rotation", 100)
	counts, fails := tr.finish()
	t.Logf("during the rotation: %v answers, %d failures", counts, len(fails))
	if len(fails) > 0 {
		h.dump()
		t.Errorf("%d of %d requests failed during the rotation; first ones: %q", len(fails), len(fails)+counts["east"]+counts["west"], fails[:min(len(fails), 5)])
	}
	if counts["east"] == 0 || counts["west"] == 0 {
		t.Errorf("answers %v; want both clusters answering throughout", counts)
	}

	gwAfter, _, err := h.secretCert(ctx, h.east, ingress.GatewayCertSecret)
	if err != nil {
		t.Fatal(err)
	}
	clientAfter, _, err := h.secretCert(ctx, h.west, ingress.ClientCertSecret)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name          string
		before, after *x509.Certificate
	}{{"east's gateway certificate", gwBefore, gwAfter}, {"west's client certificate", clientBefore, clientAfter}} {
		if pki.Fingerprint(c.before) == pki.Fingerprint(c.after) || c.after.Issuer.CommonName != next.ca.Cert.Subject.CommonName {
			t.Errorf("%s: before %s from %q, after %s from %q; want a new one from the new CA", c.name,
				pki.Fingerprint(c.before), c.before.Issuer.CommonName, pki.Fingerprint(c.after), c.after.Issuer.CommonName)
		}
	}
	// Both edges serve, present and trust the new material.
	h.eventually("the edges use the new certificates and CA", func(ctx context.Context) error {
		var errs []string
		for _, e := range []struct {
			name, use string
			addr      net.Addr
			leaf      *x509.Certificate
		}{{"east's gateway", edge.UseServer, s.gatewayStatus(), gwAfter}, {"west's edge", edge.UseClient, s.westEdge.StatusAddr(), clientAfter}} {
			st, _, err := edgeTLS(ctx, e.addr)
			if err != nil {
				return err
			}
			if c, ok := edgeCert(st, e.use, ""); !ok || c.Fingerprint != pki.Fingerprint(e.leaf) {
				errs = append(errs, fmt.Sprintf("%s %s certificate %+v, want fingerprint %s", e.name, e.use, c, pki.Fingerprint(e.leaf)))
			}
			if c, ok := edgeCert(st, edge.UseCA, ""); !ok || c.Fingerprint != pki.Fingerprint(next.ca.Cert) {
				errs = append(errs, fmt.Sprintf("%s trusts %+v, want the new CA %s", e.name, c, pki.Fingerprint(next.ca.Cert)))
			}
		}
		return joinErrs(errs)
	})
	// What the status API says is what is served: the gateway certificate
	// the probe saw, and west's certificate, are the new ones.
	base := h.statusBase(h.westCtl)
	h.eventually("the status API shows the new certificates", func(ctx context.Context) error {
		l, err := h.statusLink(ctx, base, "east")
		if err != nil {
			return err
		}
		if !l.TLS.Verified || !l.TLS.GatewayCertExpiry.Equal(gwAfter.NotAfter) || !l.TLS.ClientCertExpiry.Equal(clientAfter.NotAfter) {
			return fmt.Errorf("link tls %+v; want verified, gatewayCertExpiry %s and clientCertExpiry %s", *l.TLS, gwAfter.NotAfter, clientAfter.NotAfter)
		}
		return nil
	})
}

// edgesRebuilt makes both edges of s rebuild their tables (a new Service
// in each cluster) and waits until they have, so that what the clusters
// held before is what they serve.
func (h *harness) edgesRebuilt(s *story, marker string) {
	h.t.Helper()
	since := time.Now()
	for _, c := range []client.Client{h.east, h.west} {
		h.create(c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "marker-" + marker},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}})
	}
	h.eventually("edges rebuilt ("+marker+")", func(ctx context.Context) error {
		for _, a := range []net.Addr{s.gatewayStatus(), s.westEdge.StatusAddr()} {
			_, built, err := edgeTLS(ctx, a)
			if err != nil {
				return err
			}
			if !built.After(since) {
				return fmt.Errorf("edge %s last built %s, before %s", a, built, since)
			}
		}
		return nil
	})
}

// TestMTLSRenewalUnderTraffic: with a short --cert-validity, crossmap
// renews the gateway and client certificates once two thirds of their
// life have passed, and no request flowing west -> east fails while they
// are replaced.
func TestMTLSRenewalUnderTraffic(t *testing.T) {
	const validity = 30 * time.Second
	short := func(c *controller.Config) { c.CertValidity = validity }
	s := newStoryWith(t, storyOptions{east: short, west: short,
		annotations: func(cluster string) map[string]string { return map[string]string{"crossmap.io/split": cluster + "=50"} }})
	h := s.h
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")
	h.eventually("both clusters answer", func(context.Context) error {
		if c := s.hit(40, nil); c["east"] == 0 || c["west"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})

	// What the status API says of each certificate: renewed at two thirds
	// of its validity. Checked loosely (not in the first half of its
	// life), so that some backdating of notBefore does not count.
	for _, side := range []struct {
		name string
		ctl  *controller.Controller
	}{{"east", h.eastCtl}, {"west", h.westCtl}} {
		var trust status.Trust
		if err := statusGetJSON(t.Context(), h.statusBase(side.ctl)+"/status/trust", http.StatusOK, &trust); err != nil {
			t.Fatal(err)
		}
		for _, c := range trust.Certificates {
			issued := c.NotAfter.Add(-validity)
			if c.RenewAt.Before(issued.Add(validity / 2)) {
				t.Errorf("%s: certificate %s valid until %s is renewed at %s, %s after it was issued; want two thirds of --cert-validity %s, %s",
					side.name, c.Secret, c.NotAfter.Format(time.RFC3339), c.RenewAt.Format(time.RFC3339), c.RenewAt.Sub(issued), validity, validity*2/3)
			}
		}
	}

	// Watch the certificates turn over under traffic, for a little more
	// than one renewal period.
	seen := map[string]map[string]bool{"east": {}, "west": {}}
	record := func(ctx context.Context) error {
		for _, side := range []struct {
			name, secret string
			c            client.Client
		}{{"east", ingress.GatewayCertSecret, h.east}, {"west", ingress.ClientCertSecret, h.west}} {
			cert, _, err := h.secretCert(ctx, side.c, side.secret)
			if err != nil {
				return err
			}
			seen[side.name][pki.Fingerprint(cert)] = true
		}
		return nil
	}
	if err := record(t.Context()); err != nil {
		t.Fatal(err)
	}
	tr := s.startTraffic(2)
	start := time.Now()
	h.eventually("both certificates renewed", func(ctx context.Context) error {
		if err := record(ctx); err != nil {
			return err
		}
		if len(seen["east"]) < 2 || len(seen["west"]) < 2 {
			return fmt.Errorf("certificates seen: east %d, west %d", len(seen["east"]), len(seen["west"]))
		}
		return nil
	})
	t.Logf("renewed after %s", time.Since(start).Round(time.Millisecond))
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")
	tr.wantMore(h, "traffic after the renewal", 100)
	if err := record(t.Context()); err != nil {
		t.Fatal(err)
	}
	counts, fails := tr.finish()
	elapsed := time.Since(start)
	t.Logf("over %s: %v answers, %d failures; certificates seen: east %d, west %d", elapsed.Round(time.Millisecond), counts, len(fails), len(seen["east"]), len(seen["west"]))
	if len(fails) > 0 {
		t.Errorf("%d requests failed while the certificates were renewed; first ones: %q", len(fails), fails[:min(len(fails), 5)])
	}
	if counts["east"] == 0 {
		t.Errorf("answers %v; want east answering throughout", counts)
	}
	// One renewal per two thirds of the validity, give or take one: more
	// means certificates are reissued before they are due.
	if most := int(elapsed/(validity*2/3)) + 2; len(seen["east"]) > most || len(seen["west"]) > most {
		t.Errorf("%d east and %d west certificates in %s; want at most %d (one renewal per %s)", len(seen["east"]), len(seen["west"]), elapsed.Round(time.Millisecond), most, validity*2/3)
	}
}

// TestMTLSStatusReportsExpiryAndHandshakeErrors: the status API and the
// metrics show when each certificate expires (crossmap's own, and the one
// the gateway presents) and, when the gateway's handshake fails, why:
// UnknownCA, CertificateExpired, CertificateRejected.
func TestMTLSStatusReportsExpiryAndHandshakeErrors(t *testing.T) {
	s := newStoryWith(t, storyOptions{defaultIdentity: true})
	h := s.h
	ctx := t.Context()
	west, east := h.statusBase(h.westCtl), h.statusBase(h.eastCtl)
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")
	gwCert, _, err := h.secretCert(ctx, h.east, ingress.GatewayCertSecret)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, _, err := h.secretCert(ctx, h.west, ingress.ClientCertSecret)
	if err != nil {
		t.Fatal(err)
	}
	linkKey := h.ctrlNS + "/east"

	// Expiry: /status/trust on each side, the link's tls, the metrics.
	for _, side := range []struct {
		name, base, secret, usage string
		cert                      *x509.Certificate
		cluster                   string
	}{
		{"east", east, ingress.GatewayCertSecret, "server", gwCert, h.eastCluster},
		{"west", west, ingress.ClientCertSecret, "client", clientCert, "west-" + h.id},
	} {
		want := h.ctrlNS + "/" + side.secret
		h.eventually(side.name+": /status/trust and the expiry metric", func(ctx context.Context) error {
			var trust status.Trust
			if err := statusGetJSON(ctx, side.base+"/status/trust", http.StatusOK, &trust); err != nil {
				return err
			}
			c, ok := firstWhere(trust.Certificates, func(c status.Certificate) bool { return c.Secret == want })
			switch {
			case trust.Mode != "mutual" || trust.TrustAnchor != h.ctrlNS+"/crossmap-trust-anchor" || !trust.TrustAnchorExpiry.Equal(testAnchor().ca.Cert.NotAfter):
				return fmt.Errorf("/status/trust = %+v; want mode mutual, the trust anchor and its expiry %s", trust, testAnchor().ca.Cert.NotAfter)
			case !ok:
				return fmt.Errorf("/status/trust has no certificate %s: %+v", want, trust.Certificates)
			case !c.NotAfter.Equal(side.cert.NotAfter) || c.Usage != side.usage || c.Identity != ingress.GatewayIdentity(side.cluster) ||
				!c.RenewAt.After(time.Now()) || !c.RenewAt.Before(c.NotAfter):
				return fmt.Errorf("/status/trust certificate %+v; want %s usage, identity %s, notAfter %s, renewAt before it", c, side.usage, ingress.GatewayIdentity(side.cluster), side.cert.NotAfter)
			}
			got, err := metricLine(ctx, side.base, "crossmap_certificate_expiry_timestamp_seconds", `secret="`+want+`"`)
			if err != nil {
				return err
			}
			if got != fmt.Sprint(side.cert.NotAfter.Unix()) && got != fmt.Sprintf("%g", float64(side.cert.NotAfter.Unix())) {
				return fmt.Errorf("crossmap_certificate_expiry_timestamp_seconds{secret=%q} = %s; want %d", want, got, side.cert.NotAfter.Unix())
			}
			return nil
		})
	}
	h.eventually("link tls shows both certificates' expiry", func(ctx context.Context) error {
		l, err := h.statusLink(ctx, west, "east")
		if err != nil {
			return err
		}
		if lt := *l.TLS; lt.Mode != "mutual" || !lt.Verified || lt.Reason != controller.ReasonHandshakeSucceeded || lt.Identity != ingress.GatewayIdentity(h.eastCluster) ||
			!lt.GatewayCertExpiry.Equal(gwCert.NotAfter) || !lt.ClientCertExpiry.Equal(clientCert.NotAfter) {
			return fmt.Errorf("link tls = %+v; want gatewayCertExpiry %s, clientCertExpiry %s", lt, gwCert.NotAfter, clientCert.NotAfter)
		}
		return nil
	})
	if got, err := metricLine(ctx, west, "crossmap_gateway_certificate_expiry_timestamp_seconds", `link="`+linkKey+`"`); err != nil ||
		got != fmt.Sprint(gwCert.NotAfter.Unix()) && got != fmt.Sprintf("%g", float64(gwCert.NotAfter.Unix())) {
		t.Errorf("crossmap_gateway_certificate_expiry_timestamp_seconds{link=%q} = %s (err %v); want %d", linkKey, got, err, gwCert.NotAfter.Unix())
	}

	// Handshake errors: east's gateway replaced, on its address, by
	// stand-ins whose TLS is wrong in one way each.
	s.stopGW()
	identity := ingress.GatewayIdentity(h.eastCluster)
	a, other := testAnchor(), newAnchor(t, "another CA")
	now := time.Now()
	for _, tc := range []struct {
		name, reason, lastError string
		cfg                     *tls.Config
	}{
		{"a gateway certificate from another CA", pki.ReasonUnknownCA, "unknown authority",
			standInTLS(other.issue(t, identity, pki.Server, time.Hour, now), a)},
		{"an expired gateway certificate", pki.ReasonCertificateExpired, "expired",
			standInTLS(a.issue(t, identity, pki.Server, time.Hour, now.Add(-3*time.Hour)), a)},
		{"a gateway that does not trust west's certificate", pki.ReasonCertificateRejected, "",
			standInTLS(a.issue(t, identity, pki.Server, time.Hour, now), other)},
	} {
		stop := h.standInGateway(s.gwAddr, tc.cfg)
		before := counter(t, h.westMetrics, "crossmap_tls_handshake_failures_total", map[string]string{"link": linkKey, "reason": tc.reason})
		h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "False/"+tc.reason)
		h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "False/"+tc.reason)
		h.eventually(tc.name+": status API and metrics", func(ctx context.Context) error {
			l, err := h.statusLink(ctx, west, "east")
			if err != nil {
				return err
			}
			if lt := *l.TLS; lt.Verified || lt.Reason != tc.reason || !strings.Contains(lt.LastError, tc.lastError) || lt.LastErrorAt.Before(now) || l.GatewayAlive {
				return fmt.Errorf("link gatewayAlive=%v tls=%+v; want reason %s, lastError mentioning %q", l.GatewayAlive, lt, tc.reason, tc.lastError)
			}
			got, err := metricLine(ctx, west, "crossmap_tls_handshake_failures_total", `link="`+linkKey+`"`, `reason="`+tc.reason+`"`)
			if err != nil {
				return err
			}
			if got == "0" || counter(t, h.westMetrics, "crossmap_tls_handshake_failures_total", map[string]string{"link": linkKey, "reason": tc.reason}) <= before {
				return fmt.Errorf("crossmap_tls_handshake_failures_total{reason=%s} = %s, not counting", tc.reason, got)
			}
			return nil
		})
		stop()
	}
	if !slices.ContainsFunc(h.events(h.west, h.ctrlNS), func(e corev1.Event) bool {
		return e.InvolvedObject.Name == "east" && (strings.Contains(e.Message, pki.ReasonUnknownCA) || strings.Contains(e.Reason, pki.ReasonUnknownCA))
	}) {
		t.Errorf("no Event on the Link mentions %s", pki.ReasonUnknownCA)
	}

	// East's own gateway back: verified again, the last error kept.
	s.startGateway()
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")
	h.eventually("status API: verified again, the last error kept", func(ctx context.Context) error {
		l, err := h.statusLink(ctx, west, "east")
		if err != nil {
			return err
		}
		if !l.TLS.Verified || l.TLS.LastError == "" || !l.GatewayAlive {
			return fmt.Errorf("link gatewayAlive=%v tls=%+v", l.GatewayAlive, *l.TLS)
		}
		return nil
	})
}

// TestMTLSTrustAnchorMissingAtStart: clusters without the trust anchor get
// a clear problem (status API, Warning Event, log) saying how to make one;
// west's Link cannot reach the gateway without a client certificate and
// says so; east's gateway never falls back to cleartext. Creating the
// trust anchor fixes everything.
func TestMTLSTrustAnchorMissingAtStart(t *testing.T) {
	h := newBareHarness(t)
	h.logs = &logLines{}
	for i, c := range []client.Client{h.east, h.west} {
		if err := c.Delete(t.Context(), h.anchors[i]); err != nil {
			t.Fatal(err)
		}
	}
	h.startControllers(nil, nil)
	h.exportService("podinfo", []int32{9898}, "10.244.30.1")
	h.link(nil)
	anchorName := h.ctrlNS + "/crossmap-trust-anchor"

	for _, side := range []struct {
		name string
		c    client.Client
		ctl  *controller.Controller
	}{{"west", h.west, h.westCtl}, {"east", h.east, h.eastCtl}} {
		base := h.statusBase(side.ctl)
		// Each side is checked to the end, so that one failing does not
		// hide the other.
		h.eventuallyOr(side.name+": TrustAnchorMissing reported", func(ctx context.Context) error {
			var v status.View
			if err := statusGetJSON(ctx, base+"/status", http.StatusOK, &v); err != nil {
				return err
			}
			p, ok := firstWhere(v.Problems, func(p status.Problem) bool { return p.Reason == controller.ReasonTrustAnchorMissing })
			if !ok || !strings.Contains(p.Message, anchorName) || !strings.Contains(p.Message, "crossmap trust generate") {
				return fmt.Errorf("problems %+v; want %s naming %s and the command that makes it", v.Problems, controller.ReasonTrustAnchorMissing, anchorName)
			}
			if !slices.ContainsFunc(h.events(side.c, h.ctrlNS), func(e corev1.Event) bool {
				return e.Type == corev1.EventTypeWarning && e.Reason == controller.ReasonTrustAnchorMissing
			}) {
				return fmt.Errorf("no Warning Event %s in %s", controller.ReasonTrustAnchorMissing, h.ctrlNS)
			}
			if _, ok := h.logs.find(controller.ReasonTrustAnchorMissing, side.name); !ok {
				return fmt.Errorf("no log line of %s mentions %s", side.name, controller.ReasonTrustAnchorMissing)
			}
			return nil
		})
	}
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "False/"+controller.ReasonNoClientCertificate)
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "False/"+controller.ReasonNoClientCertificate)
	h.wantMirror("the mirror is not ready: nothing can reach the gateway", "podinfo", []int32{9898}, gatewayIP+":4143 ready=false")
	// East's gateway Host still requires mutual TLS: without a certificate
	// it serves nothing rather than cleartext.
	var host ambv3.Host
	h.eventually("east's gateway Host", func(ctx context.Context) error {
		return h.east.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: "crossmap-gateway"}, &host)
	})
	if host.Spec.RequestPolicy == nil || host.Spec.RequestPolicy.Insecure.Action != "Reject" || host.Spec.TLS == nil || !ptr.Deref(host.Spec.TLS.CertRequired, false) {
		t.Errorf("east's gateway Host without a trust anchor: tls=%+v requestPolicy=%+v; want mutual TLS required, cleartext rejected", host.Spec.TLS, host.Spec.RequestPolicy)
	}
	for _, c := range []client.Client{h.east, h.west} {
		var secrets corev1.SecretList
		if err := c.List(t.Context(), &secrets, client.InNamespace(h.ctrlNS), client.MatchingLabels(mapper.TrustSelector())); err != nil {
			t.Fatal(err)
		}
		if len(secrets.Items) > 0 {
			t.Errorf("certificate Secrets without a trust anchor: %d", len(secrets.Items))
		}
	}

	// The operator creates the trust anchor: certificates are issued, the
	// problem is resolved, the Link is whole again.
	for _, c := range []client.Client{h.east, h.west} {
		h.create(c, testAnchor().secret(h.ctrlNS))
	}
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/NotProbed")
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "Unknown/NotProbed")
	h.wantMirror("the mirror is ready", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
	for _, side := range []struct {
		name string
		c    client.Client
		ctl  *controller.Controller
	}{{"east", h.east, h.eastCtl}, {"west", h.west, h.westCtl}} {
		h.eventuallyOr(side.name+": problem resolved", func(ctx context.Context) error {
			for _, p := range side.ctl.Model.View().Problems {
				if p.Reason == controller.ReasonTrustAnchorMissing {
					return fmt.Errorf("still reported: %s", p.Message)
				}
			}
			if !slices.ContainsFunc(h.events(side.c, h.ctrlNS), func(e corev1.Event) bool {
				return e.Type == corev1.EventTypeNormal && e.Reason == "Resolved" && e.InvolvedObject.Name == "crossmap-trust-anchor"
			}) {
				return fmt.Errorf("no Normal Resolved Event on the trust anchor Secret")
			}
			return nil
		})
	}
}

// TestMTLSTrustAnchorRemovedInService: deleting the trust anchor while
// traffic flows is reported, and takes nothing away: the certificates,
// TLSContext, routes and mirrors crossmap wrote stay exactly as they were,
// requests keep flowing over mutual TLS, also after west's controller
// restarts without an anchor; putting it back changes nothing either.
func TestMTLSTrustAnchorRemovedInService(t *testing.T) {
	s := newStory(t, map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"})
	h := s.h
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")
	h.eventually("both clusters answer", func(context.Context) error {
		if c := s.hit(40, nil); c["east"] == 0 || c["west"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})
	before := h.ownedVersions()

	for i, c := range []client.Client{h.east, h.west} {
		if err := c.Delete(t.Context(), h.anchors[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, ctl := range []*controller.Controller{h.eastCtl, h.westCtl} {
		h.eventually("TrustAnchorMissing reported", func(context.Context) error {
			if _, ok := firstWhere(ctl.Model.View().Problems, func(p status.Problem) bool { return p.Reason == controller.ReasonTrustAnchorMissing }); !ok {
				return fmt.Errorf("problems %+v", ctl.Model.View().Problems)
			}
			return nil
		})
	}
	check := func(when string) {
		t.Helper()
		if c := s.hit(100, nil); c["error"] > 0 || c["east"] == 0 {
			t.Errorf("%s: answers %v; want east still answering, no error", when, c)
		}
		if got := condition(mustLink(t, h), crossmapv1.ConditionMutualTLS); got != "True/HandshakeSucceeded" {
			t.Errorf("%s: MutualTLS = %s", when, got)
		}
		if after := h.ownedVersions(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("%s: crossmap's objects changed:\nbefore %v\nafter  %v", when, before, after)
		}
	}
	check("trust anchor deleted")

	// A restart without the anchor: the certificates in service stay.
	s.west.stop()
	s.west = h.run(bed.Plane("west"), s.west.mutate)
	h.westCtl, h.westMetrics = s.west.ctl, s.west.reg
	h.eventually("restarted west reports TrustAnchorMissing", func(context.Context) error {
		if _, ok := firstWhere(h.westCtl.Model.View().Problems, func(p status.Problem) bool { return p.Reason == controller.ReasonTrustAnchorMissing }); !ok {
			return fmt.Errorf("problems %+v", h.westCtl.Model.View().Problems)
		}
		return nil
	})
	h.wantLinkCondition(crossmapv1.ConditionMutualTLS, "True/HandshakeSucceeded")
	check("west restarted without a trust anchor")

	// The same anchor back: the certificates are still good, so nothing
	// is reissued.
	for _, c := range []client.Client{h.east, h.west} {
		h.create(c, testAnchor().secret(h.ctrlNS))
	}
	for _, ctl := range []*controller.Controller{h.eastCtl, h.westCtl} {
		h.eventually("TrustAnchorMissing resolved", func(context.Context) error {
			if p, ok := firstWhere(ctl.Model.View().Problems, func(p status.Problem) bool { return p.Reason == controller.ReasonTrustAnchorMissing }); ok {
				return fmt.Errorf("still reported: %s", p.Message)
			}
			return nil
		})
	}
	check("trust anchor back")
}

// TestMTLSInsecureCleartext: the opt-out. With --insecure-cleartext on
// both clusters, east's gateway Host routes cleartext, the sibling Mapping
// originates no TLS, no certificate or TLSContext is written, the status
// API says cleartext, the controllers say INSECURE in their log, and the
// split works end to end in cleartext.
func TestMTLSInsecureCleartext(t *testing.T) {
	cleartext := func(c *controller.Config) { c.InsecureCleartext = true }
	logs := &logLines{}
	s := newStoryWith(t, storyOptions{east: cleartext, west: cleartext, logs: logs,
		annotations: func(cluster string) map[string]string { return map[string]string{"crossmap.io/split": cluster + "=50"} }})
	h := s.h
	ctx := t.Context()
	h.wantWeight("split written", s.sibling(), 50)
	h.eventually("both clusters answer, in cleartext", func(context.Context) error {
		if c := s.hit(40, nil); c["east"] == 0 || c["west"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})
	if code, msg, err := h.gatewayGet(ctx, netip.AddrPortFrom(s.gwAddr, 4143), nil, "podinfo"); err != nil || code != http.StatusOK || msg != "east" {
		t.Errorf("cleartext GET to the gateway: HTTP %d, message %q, err %v; want 200 from east", code, msg, err)
	}

	var host ambv3.Host
	if err := h.east.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: "crossmap-gateway"}, &host); err != nil {
		t.Fatal(err)
	}
	if sp := host.Spec; sp.TLSSecret != nil || sp.TLS != nil || sp.RequestPolicy == nil || sp.RequestPolicy.Insecure.Action != "Route" {
		t.Errorf("gateway Host: tlsSecret=%v tls=%+v requestPolicy=%+v; want cleartext routed", sp.TLSSecret, sp.TLS, sp.RequestPolicy)
	}
	m, err := h.sibling(ctx, s.sibling())
	if err != nil {
		t.Fatal(err)
	}
	if m.Spec.TLS != "" {
		t.Errorf("sibling Mapping tls = %q; want none", m.Spec.TLS)
	}
	for name, c := range map[string]client.Client{"east": h.east, "west": h.west} {
		var secrets corev1.SecretList
		var ctxs ambv3.TLSContextList
		if err := c.List(ctx, &secrets, client.InNamespace(h.ctrlNS), client.MatchingLabels(mapper.TrustSelector())); err != nil {
			t.Fatal(err)
		}
		if err := c.List(ctx, &ctxs, client.InNamespace(h.ctrlNS)); err != nil {
			t.Fatal(err)
		}
		if len(secrets.Items)+len(ctxs.Items) > 0 {
			t.Errorf("%s: %d certificate Secrets and %d TLSContexts written in cleartext mode", name, len(secrets.Items), len(ctxs.Items))
		}
	}
	for _, side := range []struct {
		name string
		ctl  *controller.Controller
	}{{"east", h.eastCtl}, {"west", h.westCtl}} {
		var trust status.Trust
		if err := statusGetJSON(ctx, h.statusBase(side.ctl)+"/status/trust", http.StatusOK, &trust); err != nil {
			t.Fatal(err)
		}
		if trust.Mode != "cleartext" || len(trust.Certificates) > 0 {
			t.Errorf("%s /status/trust = %+v; want mode cleartext, no certificates", side.name, trust)
		}
		if line, ok := logs.find("ERROR", "INSECURE", side.name); !ok {
			t.Errorf("%s logged no INSECURE error line", side.name)
		} else {
			t.Logf("%s logged: %s", side.name, line)
		}
	}
	l, err := h.statusLink(ctx, h.statusBase(h.westCtl), "east")
	if err != nil {
		t.Fatal(err)
	}
	if l.TLS.Mode != "cleartext" {
		t.Errorf("status link tls = %+v; want mode cleartext", *l.TLS)
	}
	if got := condition(mustLink(t, h), crossmapv1.ConditionMutualTLS); got != "absent" {
		t.Errorf("Link MutualTLS = %s in cleartext mode; want no such condition", got)
	}
}
