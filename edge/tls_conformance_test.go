package edge

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossmap/crossmap/emissary/fixture"
	"github.com/crossmap/crossmap/internal/pki"
)

// The TLS conformance tests run real TLS over 127.0.0.1 through the
// proxy's listener, with certificates from a real trust anchor, against
// the objects crossmap writes for cross-cluster mutual TLS: the export
// side's gateway Host (termination) and the import side's TLSContext and
// sibling Mapping (origination). Each case cites the Emissary 3.10 source
// (python/ambassador/...) whose rule it checks.

// mtls is one trust anchor with the certificates of two clusters, and a
// second anchor that trusts neither.
type mtls struct {
	ca, otherCA authority
	gateway     leaf // east's gateway: server, east's identity
	client      leaf // west's edge: client
}

func newMTLS(t *testing.T) *mtls {
	m := &mtls{ca: newAuthority(t, "crossmap trust anchor"), otherCA: newAuthority(t, "another anchor")}
	m.gateway = m.ca.issue(t, eastIdentity, pki.Server)
	m.client = m.ca.issue(t, westIdentity, pki.Client)
	return m
}

// gatewayInput is east: the gateway Host and Mapping crossmap writes, with
// gateway as the Host's certificate, podinfo behind it, and the Hosts of
// extra.
func (m *mtls) gatewayInput(t *testing.T, gateway leaf, extra ...*ambv3.Host) Input {
	svc, slices := startBackend(t, backendSpec{name: "podinfo"})
	return Input{
		Hosts:    append([]*ambv3.Host{gatewayHostObj()}, extra...),
		Mappings: []*ambv3.Mapping{gatewayMappingObj()},
		Services: []*corev1.Service{svc},
		Slices:   slices,
		Secrets: []*corev1.Secret{
			tlsSecretObj(ctrlNamespace, gatewaySecret, gateway),
			caSecretObj(ctrlNamespace, trustSecret, m.ca),
		},
	}
}

// originInput is west: the sibling Mapping to east through the mirror
// Service podinfo-east, whose endpoint is east's gateway at gatewayAddr,
// and the TLSContext it names.
func (m *mtls) originInput(t *testing.T, gatewayAddr string, client leaf, ctxs ...*ambv3.TLSContext) Input {
	host, port, err := net.SplitHostPort(gatewayAddr)
	if err != nil {
		t.Fatal(err)
	}
	var p int32
	fmt.Sscan(port, &p)
	return Input{
		Mappings:    []*ambv3.Mapping{siblingMappingObj()},
		Services:    []*corev1.Service{serviceObj("podinfo-east")},
		Slices:      []*discoveryv1.EndpointSlice{sliceObj("podinfo-east-gw", "podinfo-east", p, endpoint{addr: host})},
		TLSContexts: ctxs,
		Secrets: []*corev1.Secret{
			tlsSecretObj(ctrlNamespace, clientSecret, client),
			caSecretObj(ctrlNamespace, trustSecret, m.ca),
		},
	}
}

// startEdge builds in and serves it.
func startEdge(t *testing.T, in Input) (*Proxy, *edgeServer, []Problem) {
	t.Helper()
	tbl, problems := Build(in)
	p := NewProxy()
	p.SetTable(tbl)
	return p, serveEdge(t, p), problems
}

func TestTLSTermination(t *testing.T) {
	m := newMTLS(t)
	expired := m.ca.issueAt(t, westIdentity, pki.Client, testNow.Add(-3*time.Hour), time.Hour)
	stranger := m.otherCA.issue(t, westIdentity, pki.Client)

	plain := fixture.Host("plain", "plain.example.com", nil) // requestPolicy Route
	secure := fixture.Host("secure", "secure.example.com", nil)
	secure.Spec.RequestPolicy = nil // Emissary's default: Redirect
	in := m.gatewayInput(t, m.gateway, plain, secure)
	for _, name := range []string{"plain", "secure"} {
		in.Mappings = append(in.Mappings, fixture.Mapping(name, "/", name, fixture.Hostname(name+".example.com")))
		svc, es := startBackend(t, backendSpec{name: name})
		in.Services, in.Slices = append(in.Services, svc), append(in.Slices, es...)
	}
	p, edge, problems := startEdge(t, in)
	if len(problems) > 0 {
		t.Fatalf("problems:\n%s", problemList(problems))
	}

	for _, tc := range []struct {
		name, source string
		// The connection: TLS with sni and cert, or cleartext.
		tls  bool
		sni  string
		cert *tls.Certificate
		// The request.
		host, path string
		// What should come of it: a refused handshake, with the reason
		// pki.Classify gives the client's error and the one the edge
		// counts, or an answer.
		clientReason, serverReason string
		status                     int
		backend, body, location    string
		upHeader                   []string
	}{{
		name:   "a client certificate of the trust anchor: SNI picks the TLS Host, the Host header the route",
		source: "envoy/v3/v3listener.py finalize_http (server_names from the Host's sni); envoy/v3/v3tls.py (trusted_ca, require_client_certificate)",
		tls:    true, sni: eastIdentity, cert: &m.client.pair,
		host: podinfoGateway, path: "/api/info",
		status: http.StatusOK, backend: "podinfo",
		upHeader: []string{"X-Forwarded-Proto", "https"},
	}, {
		name:   "no client certificate: refused at the handshake",
		source: "envoy/v3/v3tls.py: cert_required is require_client_certificate",
		tls:    true, sni: eastIdentity,
		// Go's server answers a missing certificate with a
		// handshake_failure alert, which names no certificate.
		clientReason: pki.ReasonHandshakeFailed, serverReason: pki.ReasonHandshakeFailed,
	}, {
		name:   "a client certificate of another CA: refused at the handshake",
		source: "envoy/v3/v3tls.py: ca_secret is the validation context's trusted_ca",
		tls:    true, sni: eastIdentity, cert: &stranger.pair,
		clientReason: pki.ReasonCertificateRejected, serverReason: pki.ReasonUnknownCA,
	}, {
		name:   "an expired client certificate: refused at the handshake",
		source: "Envoy's certificate validation",
		tls:    true, sni: eastIdentity, cert: &expired.pair,
		clientReason: pki.ReasonCertificateRejected, serverReason: pki.ReasonCertificateExpired,
	}, {
		name:   "an SNI no TLS Host serves: refused at the handshake",
		source: "envoy/v3/v3listener.py finalize_http: no filter chain matches, and the cleartext chain cannot speak TLS",
		tls:    true, sni: "other.example.org", cert: &m.client.pair,
		clientReason: pki.ReasonHandshakeFailed, serverReason: ReasonUnknownServerName,
	}, {
		name:   "cleartext to a Host whose insecure action is Reject: no route, 404",
		source: "envoy/v3/v3listener.py compute_http_routes: a Reject Host gets only the X-Forwarded-Proto: https variant of each route",
		host:   podinfoGateway, path: "/api/info",
		status: http.StatusNotFound,
	}, {
		name:   "cleartext to a Host whose insecure action is Route: routed",
		source: "envoy/v3/v3listener.py compute_http_routes: the insecure variant with action Route",
		host:   "plain.example.com", path: "/",
		status: http.StatusOK, backend: "plain",
		upHeader: []string{"X-Forwarded-Proto", "http"},
	}, {
		name:   "cleartext to a Host with the default insecure action, Redirect: 301 to https",
		source: "ir/irhost.py IRHost.setup (insecure action defaults to Redirect); envoy/v3/v3route.py action_redirect (https_redirect)",
		host:   "secure.example.com", path: "/a?b=c",
		status: http.StatusMovedPermanently, location: "https://secure.example.com/a?b=c",
	}, {
		name:   "a TLS connection reaches only its TLS Host's virtual hosts",
		source: "envoy/v3/v3listener.py finalize_http: each TLS filter chain has the virtual hosts of its own Hosts",
		tls:    true, sni: eastIdentity, cert: &m.client.pair,
		host: "plain.example.com", path: "/",
		status: http.StatusNotFound,
	}, {
		name:   "check_ready through mutual TLS, with a Host header the gateway Host takes",
		source: "ir/irambassador.py add_mappings (internal_readiness_probe_mapping, hostname *); ir/irhost.py matches_httpgroup (every Host takes it)",
		tls:    true, sni: eastIdentity, cert: &m.client.pair,
		host: eastIdentity, path: BuiltinReady,
		status: http.StatusOK, body: "ambassador readiness check OK",
	}, {
		name:   "check_ready through mutual TLS with the gateway's address as Host header: no virtual host, 404",
		source: "envoy/v3/v3listener.py finalize_http: the TLS chain's only virtual host has domains [*.svc.cluster.local]",
		tls:    true, sni: eastIdentity, cert: &m.client.pair,
		host: "127.0.0.1", path: BuiltinReady,
		status: http.StatusNotFound,
	}, {
		name:   "check_alive in cleartext through a Route Host",
		source: "ir/irambassador.py add_mappings (internal_liveness_probe_mapping)",
		host:   "plain.example.com", path: BuiltinAlive,
		status: http.StatusOK, body: "ambassador liveness check OK",
	}, {
		name:   "check_ready in cleartext through a Reject Host: 404 like every route there",
		source: "envoy/v3/v3listener.py compute_http_routes: the probe Mappings are routes like the others",
		host:   podinfoGateway, path: BuiltinReady,
		status: http.StatusNotFound,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("source: %s", tc.source)
			cfg := clientConfig(tc.sni, m.ca.pool(), tc.cert)
			if tc.clientReason != "" {
				before := p.TLSStatus().HandshakeErrors[SideServer][tc.serverReason]
				// TLS 1.2, so that a refused client certificate fails the
				// client's handshake itself (TLS 1.3 reports it on the first
				// read).
				cfg.MaxVersion = tls.VersionTLS12
				conn, err := tls.Dial("tcp", edge.addr, cfg)
				if err == nil {
					conn.Close()
					t.Fatal("the handshake succeeded")
				}
				if reason, _ := pki.Classify(err); reason != tc.clientReason {
					t.Errorf("client error %q classified %q, want %q", err, reason, tc.clientReason)
				}
				eventually(t, "the edge to count "+tc.serverReason, func() bool {
					return p.TLSStatus().HandshakeErrors[SideServer][tc.serverReason] == before+1
				})
				return
			}
			scheme, client := "http", &http.Client{Transport: &http.Transport{DialContext: dialTo(edge.addr)}}
			if tc.tls {
				scheme, client = "https", &http.Client{Transport: &http.Transport{DialContext: dialTo(edge.addr), TLSClientConfig: cfg}}
			}
			client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			defer client.CloseIdleConnections()
			resp, err := client.Get(scheme + "://" + tc.host + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tc.status)
			}
			if got := resp.Header.Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
			if tc.body != "" && !strings.Contains(string(body), tc.body) {
				t.Errorf("body %q, want %q in it", body, tc.body)
			}
			if tc.backend != "" {
				var e echo
				if err := json.Unmarshal(body, &e); err != nil || e.Backend != tc.backend {
					t.Fatalf("answered %q (%v), want backend %s", body, err, tc.backend)
				}
				for i := 0; i+1 < len(tc.upHeader); i += 2 {
					if got := e.Header.Get(tc.upHeader[i]); got != tc.upHeader[i+1] {
						t.Errorf("the backend saw %s %q, want %q", tc.upHeader[i], got, tc.upHeader[i+1])
					}
				}
			}
		})
	}
}

// TestTLSTerminationTLS13 checks a refused client certificate with TLS
// 1.3, where the client learns of it when it reads, not at its handshake:
// the request fails either way, and the edge counts the reason.
func TestTLSTerminationTLS13(t *testing.T) {
	m := newMTLS(t)
	p, edge, _ := startEdge(t, m.gatewayInput(t, m.gateway))
	stranger := m.otherCA.issue(t, westIdentity, pki.Client)
	client := tlsClient(edge.addr, eastIdentity, m.ca.pool(), &stranger.pair, 0)
	if resp, err := client.Get("https://" + podinfoGateway + "/"); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d, want a failed request", resp.StatusCode)
	}
	eventually(t, "the edge to count UnknownCA", func() bool {
		return p.TLSStatus().HandshakeErrors[SideServer][pki.ReasonUnknownCA] == 1
	})
}

func TestTLSOrigination(t *testing.T) {
	m := newMTLS(t)
	north := m.ca.issue(t, "north.crossmap-gateway.svc.cluster.local", pki.Server)
	strangeGateway := m.otherCA.issue(t, eastIdentity, pki.Server)
	strangeClient := m.otherCA.issue(t, westIdentity, pki.Client)
	other := func(f func(*ambv3.TLSContext)) *ambv3.TLSContext {
		c := originContextObj(eastIdentity)
		f(c)
		return c
	}

	for _, tc := range []struct {
		name, source    string
		gateway, client *leaf // default m.gateway, m.client
		gatewayHost     func(*ambv3.Host)
		contexts        []*ambv3.TLSContext
		noContexts      bool
		// What the request through the originating edge gets; on 503,
		// the reason its client side counts (if the handshake failed).
		status       int
		clientReason string
		problems     []string // "mapping field" or "tlsContext field"
	}{{
		name:   "the TLSContext's client certificate, trust anchor and SNI reach the gateway",
		source: "ir/ircluster.py (a Mapping's tls names a TLSContext: originate TLS); envoy/v3/v3tls.py (certificate_chain, trusted_ca, sni)",
		status: http.StatusOK,
	}, {
		name:    "the gateway's certificate names another identity: 503, IdentityMismatch",
		source:  "the dev edge checks the sni against the certificate (Envoy 1.27 as Emissary 3.10 configures it checks the chain only)",
		gateway: &north, status: http.StatusServiceUnavailable, clientReason: pki.ReasonIdentityMismatch,
	}, {
		name:    "the gateway's certificate is of another CA: 503, UnknownCA",
		source:  "envoy/v3/v3tls.py: ca_secret is the upstream validation context's trusted_ca",
		gateway: &strangeGateway, status: http.StatusServiceUnavailable, clientReason: pki.ReasonUnknownCA,
	}, {
		name:   "the client certificate is of another CA: the gateway refuses it, 503",
		source: "envoy/v3/v3tls.py on the gateway: require_client_certificate",
		client: &strangeClient, status: http.StatusServiceUnavailable, clientReason: pki.ReasonCertificateRejected,
	}, {
		name:       "no such TLSContext: 503 and a problem, never cleartext",
		source:     "ir/ircluster.py: Emissary reports \"Originate-TLS context ... is not defined\" and originates cleartext; the dev edge refuses",
		noContexts: true, status: http.StatusServiceUnavailable,
		problems: []string{"test/podinfo-east tls"},
	}, {
		name:     "a TLSContext without ca_secret: 503 and a problem, never unverified",
		source:   "envoy/v3/v3tls.py: without cacert_chain_file there is no validation context, and Envoy would not verify the upstream",
		contexts: []*ambv3.TLSContext{other(func(c *ambv3.TLSContext) { c.Spec.CASecret = "" })},
		status:   http.StatusServiceUnavailable,
		problems: []string{"test/podinfo-east tls"},
	}, {
		name:     "a TLSContext whose secret does not exist: 503 and a problem",
		source:   "ir/irtlscontext.py resolve: \"found no certificate\", the TLSContext is not used",
		contexts: []*ambv3.TLSContext{other(func(c *ambv3.TLSContext) { c.Spec.Secret = "missing" })},
		status:   http.StatusServiceUnavailable,
		problems: []string{"test/podinfo-east tls"},
	}, {
		name:   "one TLSContext name in two namespaces: ambiguous, 503 and a problem",
		source: "config/config.py safe_store: the first loaded keeps the name, the others are renamed name.namespace; ir/ir.py get_tls_context looks up by name",
		contexts: []*ambv3.TLSContext{originContextObj(eastIdentity), other(func(c *ambv3.TLSContext) {
			c.Namespace = "other"
		})},
		status:   http.StatusServiceUnavailable,
		problems: []string{"test/podinfo-east tls"},
	}, {
		name:   "a TLSContext in another namespace than the Mapping's is found by name",
		source: "ir/ir.py get_tls_context: by name alone; ir/irtlscontext.py resolve_secret: name.namespace names a Secret of another namespace",
		contexts: []*ambv3.TLSContext{other(func(c *ambv3.TLSContext) {
			c.Namespace = "elsewhere"
			c.Spec.Secret = clientSecret + "." + ctrlNamespace
			c.Spec.CASecret = trustSecret + "." + ctrlNamespace
		})},
		status: http.StatusOK,
	}, {
		name:     "a TLSContext without sni finds no TLS Host on the gateway: 503",
		source:   "envoy/v3/v3listener.py finalize_http: the gateway Host's filter chain matches server_names [*.svc.cluster.local]",
		contexts: []*ambv3.TLSContext{originContextObj("")},
		status:   http.StatusServiceUnavailable, clientReason: pki.ReasonHandshakeFailed,
	}, {
		name:        "a TLSContext without sni, to a TLS Host for \"*\": the chain is verified, no name",
		source:      "envoy/v3/v3tls.py: no sni, and Envoy's upstream validation checks the chain against trusted_ca alone",
		gatewayHost: func(h *ambv3.Host) { h.Spec.Hostname = "*" },
		contexts:    []*ambv3.TLSContext{originContextObj("")},
		gateway:     &north, status: http.StatusOK,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("source: %s", tc.source)
			gateway, client := m.gateway, m.client
			if tc.gateway != nil {
				gateway = *tc.gateway
			}
			if tc.client != nil {
				client = *tc.client
			}
			gin := m.gatewayInput(t, gateway)
			if tc.gatewayHost != nil {
				tc.gatewayHost(gin.Hosts[0])
			}
			_, gw, _ := startEdge(t, gin)
			ctxs := tc.contexts
			if ctxs == nil && !tc.noContexts {
				ctxs = []*ambv3.TLSContext{originContextObj(eastIdentity)}
			}
			in := m.originInput(t, gw.addr, client, ctxs...)
			origin, edge, problems := startEdge(t, in)
			var got []string
			for _, p := range problems {
				got = append(got, strings.TrimSpace(p.Mapping+p.TLSContext+" "+p.Field))
			}
			if !slices.Equal(got, tc.problems) {
				t.Errorf("problems = %q, want %q:\n%s", got, tc.problems, problemList(problems))
			}

			httpClient := &http.Client{Transport: &http.Transport{DialContext: dialTo(edge.addr)}}
			defer httpClient.CloseIdleConnections()
			resp, err := httpClient.Get("http://edge.example.com/podinfo/api/info")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, body, tc.status)
			}
			if tc.status == http.StatusOK {
				var e echo
				if err := json.Unmarshal(body, &e); err != nil || e.Backend != "podinfo" || e.Host != podinfoGateway || e.Path != "/api/info" {
					t.Errorf("answered %q (%v), want podinfo through the gateway, for Host %s and path /api/info", body, err, podinfoGateway)
				}
				if n := gw.requestsWith(client); n != 1 {
					t.Errorf("the gateway saw %d requests with the client certificate, want 1", n)
				}
			}
			errs := origin.TLSStatus().HandshakeErrors[SideClient]
			if tc.clientReason == "" && len(errs) > 0 {
				t.Errorf("handshake errors %v, want none", errs)
			}
			if tc.clientReason != "" && errs[tc.clientReason] != 1 {
				t.Errorf("handshake errors %v, want one %s", errs, tc.clientReason)
			}
		})
	}
}

// TestTLSProblems checks what Build reports about TLS it cannot set up, and
// that a Host whose TLS it cannot set up still claims its server name, so
// that its handshakes fail rather than reach another TLS Host.
func TestTLSProblems(t *testing.T) {
	m := newMTLS(t)
	secrets := []*corev1.Secret{
		tlsSecretObj(ctrlNamespace, gatewaySecret, m.gateway),
		caSecretObj(ctrlNamespace, trustSecret, m.ca),
	}
	gatewayWith := func(f func(*ambv3.HostSpec)) *ambv3.Host {
		h := gatewayHostObj()
		f(h.Spec)
		return h
	}
	for _, tc := range []struct {
		name     string
		host     *ambv3.Host
		contexts []*ambv3.TLSContext
		secrets  []*corev1.Secret
		want     []string // "host field: message part"
		usable   bool     // the Host's TLS works
	}{{
		name:   "the gateway Host as crossmap writes it",
		host:   gatewayHostObj(),
		usable: true,
	}, {
		name:    "its certificate Secret missing",
		host:    gatewayHostObj(),
		secrets: secrets[1:],
		want:    []string{"crossmap-system/crossmap-gateway tlsSecret: Secret crossmap-system/crossmap-gateway-tls does not exist"},
	}, {
		name:    "its certificate Secret without a key",
		host:    gatewayHostObj(),
		secrets: []*corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNamespace, Name: gatewaySecret}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{"tls.crt": m.gateway.certPEM}}, secrets[1]},
		want:    []string{"crossmap-system/crossmap-gateway tlsSecret: has no tls.key"},
	}, {
		name:    "its ca_secret missing",
		host:    gatewayHostObj(),
		secrets: secrets[:1],
		want:    []string{"crossmap-system/crossmap-gateway tls: ca_secret of Host crossmap-system/crossmap-gateway: Secret crossmap-system/crossmap-trust-ca does not exist"},
	}, {
		name: "cert_required without ca_secret",
		host: gatewayWith(func(s *ambv3.HostSpec) { s.TLS.CASecret = "" }),
		want: []string{"crossmap-system/crossmap-gateway tls: sets cert_required without ca_secret"},
	}, {
		name: "a TLS version Emissary does not know",
		host: gatewayWith(func(s *ambv3.HostSpec) { s.TLS.MinTLSVersion = "1.2" }),
		want: []string{"crossmap-system/crossmap-gateway tls: min_tls_version \"1.2\" is not one of"},
	}, {
		name: "a CRL the edge would not check",
		host: gatewayWith(func(s *ambv3.HostSpec) { s.TLS.CRLSecret = "crl" }),
		want: []string{"crossmap-system/crossmap-gateway tls: sets crl_secret"},
	}, {
		name: "both tls and tlsContext",
		host: gatewayWith(func(s *ambv3.HostSpec) { s.TLSContext = &corev1.LocalObjectReference{Name: "x"} }),
		want: []string{"crossmap-system/crossmap-gateway tlsContext: both tls and tlsContext are set"},
	}, {
		name: "a tlsContext that does not exist",
		host: gatewayWith(func(s *ambv3.HostSpec) { s.TLS, s.TLSContext = nil, &corev1.LocalObjectReference{Name: "gw"} }),
		want: []string{"crossmap-system/crossmap-gateway tlsContext: TLSContext gw does not exist"},
	}, {
		name: "a tlsContext with the same settings as tls",
		host: gatewayWith(func(s *ambv3.HostSpec) { s.TLS, s.TLSContext = nil, &corev1.LocalObjectReference{Name: "gw"} }),
		contexts: []*ambv3.TLSContext{{
			ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNamespace, Name: "gw"},
			Spec:       ambv3.TLSContextSpec{Secret: gatewaySecret, CASecret: trustSecret, CertRequired: ptr(true)},
		}},
		usable: true,
	}, {
		name: "a tlsContext whose secret is not the Host's",
		host: gatewayWith(func(s *ambv3.HostSpec) { s.TLS, s.TLSContext = nil, &corev1.LocalObjectReference{Name: "gw"} }),
		contexts: []*ambv3.TLSContext{{
			ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNamespace, Name: "gw"},
			Spec:       ambv3.TLSContextSpec{Secret: "other", CASecret: trustSecret},
		}},
		want: []string{"crossmap-system/crossmap-gateway tlsContext: TLSContext crossmap-system/gw has secret other, not the Host's tlsSecret"},
	}, {
		name: "the implicit <host>-context TLSContext",
		host: gatewayWith(func(s *ambv3.HostSpec) { s.TLS = nil }),
		contexts: []*ambv3.TLSContext{{
			ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNamespace, Name: "crossmap-gateway-context"},
			Spec:       ambv3.TLSContextSpec{CASecret: trustSecret, CertRequired: ptr(true), ALPNProtocols: "h2"},
		}},
		want:   []string{"crossmap-system/crossmap-gateway tls: TLSContext crossmap-system/crossmap-gateway-context sets alpn_protocols"},
		usable: true,
	}, {
		name: "tls without tlsSecret: cleartext only",
		host: gatewayWith(func(s *ambv3.HostSpec) { s.TLSSecret = nil }),
		want: []string{"crossmap-system/crossmap-gateway tlsSecret: the Host has tls or tlsContext but no tlsSecret"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.secrets == nil {
				tc.secrets = secrets
			}
			// A Host for every other name, with TLS: a failed Host must
			// not fall back to it.
			fallback := fixture.Host("fallback", "*", nil)
			fallback.Spec.TLSSecret = &corev1.SecretReference{Name: "fallback"}
			tbl, problems := Build(Input{
				Hosts:       []*ambv3.Host{tc.host, fallback},
				TLSContexts: tc.contexts,
				Secrets:     append([]*corev1.Secret{tlsSecretObj(fixture.Namespace, "fallback", m.ca.issue(t, "fallback", pki.Server))}, tc.secrets...),
			})
			if len(problems) != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%s", len(problems), len(tc.want), problemList(problems))
			}
			for i := range min(len(problems), len(tc.want)) {
				p := problems[i]
				where, msg, _ := strings.Cut(tc.want[i], ": ")
				if p.Host+" "+p.Field != where || !strings.Contains(p.Message, msg) {
					t.Errorf("problem %d = %s, want %s", i, p, tc.want[i])
				}
			}
			ch := tbl.chains.find(eastIdentity)
			switch {
			case tc.host.Spec.TLSSecret == nil:
				if ch == nil || ch.hosts[0].name != "test/fallback" {
					t.Errorf("the SNI of a cleartext-only Host went to %v, want the fallback", ch)
				}
			case ch == nil || ch.hosts[0].name != "crossmap-system/crossmap-gateway":
				t.Errorf("the gateway's SNI went to %v, want the gateway Host", ch)
			case (ch.term.config != nil) != tc.usable:
				t.Errorf("usable = %v (%s), want %v", ch.term.config != nil, ch.term.err, tc.usable)
			}
		})
	}
}

// TestTLSChainSelection checks Envoy's choice of TLS filter chain by SNI.
func TestTLSChainSelection(t *testing.T) {
	c := tlsChains{}
	for _, name := range []string{"*", "a.example.com", "*.example.com", "*.b.example.com", "*.com"} {
		c[name] = &tlsChain{serverName: name}
	}
	for _, tc := range []struct{ sni, want string }{
		{"a.example.com", "a.example.com"},
		{"A.EXAMPLE.com", "a.example.com"},
		{"x.example.com", "*.example.com"},
		{"x.b.example.com", "*.b.example.com"},
		{"x.y.b.example.com", "*.b.example.com"},
		{"example.com", "*.com"},
		{"example.org", "*"},
		{"", "*"},
		{"*.example.com", "*"}, // a wildcard SNI matches no name
	} {
		if got := c.find(tc.sni); got == nil || got.serverName != tc.want {
			t.Errorf("find(%q) = %v, want %s", tc.sni, got, tc.want)
		}
	}
	delete(c, "*")
	if got := c.find("example.org"); got != nil {
		t.Errorf("find without a match = %v, want nil", got.serverName)
	}
}

// TestBuiltinProbes checks Emissary's probe answers on a proxy without
// Hosts (Emissary's default Host: everything in cleartext).
func TestBuiltinProbes(t *testing.T) {
	p := NewProxy()
	if w := get(p, "anything", BuiltinReady); w.Code != http.StatusServiceUnavailable {
		t.Errorf("before the first table: %d, want 503", w.Code)
	}
	tbl, _ := Build(Input{Mappings: []*ambv3.Mapping{
		fixture.Mapping("all", "/", "a"),
		// A longer prefix would shadow check_ready, as in Emissary; this
		// one is shorter.
		fixture.Mapping("ambassador", "/ambassador/", "a"),
	}})
	p.SetTable(tbl)
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", BuiltinReady, http.StatusOK, "ambassador readiness check OK"},
		{"GET", BuiltinReady + "?x=1", http.StatusOK, "ambassador readiness check OK"},
		{"GET", BuiltinAlive, http.StatusOK, "ambassador liveness check OK"},
		{"HEAD", BuiltinReady, http.StatusOK, ""},
		{"POST", BuiltinReady, http.StatusMethodNotAllowed, ""},
		{"GET", BuiltinReady + "/x", http.StatusNotFound, ""},
	} {
		r := httptest.NewRequest(tc.method, "http://10.0.0.1:8080"+tc.path, nil)
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) || w.Header().Get(MappingHeader) != "" {
			t.Errorf("%s %s: %d %q %v, want %d %q without %s", tc.method, tc.path, w.Code, w.Body, w.Header(), tc.status, tc.body, MappingHeader)
		}
	}
}

func dialTo(addr string) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}
