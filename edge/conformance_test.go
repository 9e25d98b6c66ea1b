package edge

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/crossmap/crossmap/emissary/fixture"
)

// The conformance tests run real HTTP through the Proxy: each case's
// backends are httptest servers on 127.0.0.1 that answer with their name,
// the Services and EndpointSlices point at them, and the draws are
// deterministic, so that traffic shares can be counted exactly: a share
// probe sends one request for each draw 0..99.
//
// Each case cites the Emissary 3.10 source (python/ambassador/...) or
// documentation page whose rule it checks.

// echo is what a test backend answers.
type echo struct {
	Backend  string      `json:"backend"`  // the Service name
	Endpoint int         `json:"endpoint"` // which of its endpoints
	Method   string      `json:"method"`
	Path     string      `json:"path"` // as sent, percent-encoded
	Query    string      `json:"query"`
	Host     string      `json:"host"`
	Header   http.Header `json:"header"`
}

// backendSpec describes a Service's endpoints. Each endpoint is a server;
// ready says, per endpoint, what its EndpointSlice says (nil: unset).
type backendSpec struct {
	name  string
	ready []*bool // one per endpoint; empty means one endpoint, ready unset
	slow  bool    // answers only after 10s, or when the request goes away
}

// probe is one request and what should come of it.
type probe struct {
	method, host, path string
	header             []string // name, value, ...
	draw               int

	status   int    // default 200
	backend  string // the backend that should answer (for 200)
	mapping  string // the x-crossmap-mapping header (default: none checked)
	upPath   string // the path the backend should see, when set
	upHost   string // the Host the backend should see, when set
	upHeader []string
}

// shares sends a request per draw 0..99 and counts who answers: the
// backend name for a 200, otherwise the status code.
type shares struct {
	method, host, path string
	header             []string
	n                  int  // requests to send (default 100, draws i%100)
	byEndpoint         bool // count "backend#endpoint" instead
	want               map[string]int
}

type conformanceCase struct {
	name     string
	source   string
	mappings []*ambv3.Mapping
	hosts    []*ambv3.Host
	backends []backendSpec // default: one ready endpoint per service the Mappings name
	probes   []probe
	shares   []shares
	problems []string // "namespace/name field" of each expected problem, sorted
}

func TestConformance(t *testing.T) {
	notReady, ready := ptr(false), ptr(true)
	localDev := func(name string, opts ...func(*ambv3.Mapping)) *ambv3.Mapping {
		return fixture.Mapping(name, "/podinfo/", "podinfo", opts...)
	}

	cases := []conformanceCase{{
		name:     "single Mapping",
		source:   "irbasemappinggroup.py normalize_weights_in_mappings: a group of one gets 100",
		mappings: []*ambv3.Mapping{localDev("podinfo")},
		shares:   []shares{{path: "/podinfo/", want: map[string]int{"podinfo": 100}}},
		probes:   []probe{{path: "/podinfo/", backend: "podinfo", mapping: "test/podinfo"}},
	}, {
		name:   "weighted 50/50: the user's unweighted Mapping and a sibling with weight 50",
		source: "irbasemappinggroup.py normalize_weights_in_mappings: weighted members first, the weightless one gets the rest",
		mappings: []*ambv3.Mapping{
			localDev("podinfo"),
			fixture.Mapping("podinfo-east", "/podinfo/", "podinfo-east", fixture.Weight(50)),
		},
		shares: []shares{{path: "/podinfo/", want: map[string]int{"podinfo": 50, "podinfo-east": 50}}},
	}, {
		name:   "east=30, dev=10: the local Mapping keeps 60",
		source: "irbasemappinggroup.py normalize_weights_in_mappings; v3route.py runtime_fraction numerators 30, 40, 100",
		mappings: []*ambv3.Mapping{
			localDev("podinfo"),
			fixture.Mapping("podinfo-east", "/podinfo/", "podinfo-east", fixture.Weight(30)),
			fixture.Mapping("podinfo-dev", "/podinfo/", "podinfo-dev", fixture.Weight(10)),
		},
		shares: []shares{{path: "/podinfo/x", want: map[string]int{"podinfo": 60, "podinfo-east": 30, "podinfo-dev": 10}}},
	}, {
		name:   "all remote: east=100, the local Mapping gets 0",
		source: "irbasemappinggroup.py normalize_weights_in_mappings: at 100 the weightless Mapping adds round(0/1) = 0 (the canary-at-100 case in its comment)",
		mappings: []*ambv3.Mapping{
			localDev("podinfo"),
			fixture.Mapping("podinfo-east", "/podinfo/", "podinfo-east", fixture.Weight(100)),
		},
		shares: []shares{{path: "/podinfo/", want: map[string]int{"podinfo-east": 100}}},
	}, {
		name:   "three unweighted Mappings: round(100/3) = 33 each, the last set to 100",
		source: "irbasemappinggroup.py normalize_weights_in_mappings: numerators 33, 66, 100",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("a", "/", "a", fixture.Hostname("*")),
			fixture.Mapping("b", "/", "b"),
			fixture.Mapping("c", "/", "c"),
		},
		shares: []shares{{path: "/", want: map[string]int{"a": 33, "b": 33, "c": 34}}},
	}, {
		name:   "Python rounds half to even: 95 and two weightless get round(2.5) = 2",
		source: "irbasemappinggroup.py normalize_weights_in_mappings: round(remaining_weight / num_weightless_mappings); numerators 95, 97, 100",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("a", "/", "a"),
			fixture.Mapping("b", "/", "b"),
			fixture.Mapping("c", "/", "c", fixture.Weight(95)),
		},
		shares: []shares{{path: "/", want: map[string]int{"c": 95, "a": 2, "b": 3}}},
	}, {
		name:   "weights below 100 and nothing weightless: the rest falls through to the next route",
		source: "irbasemappinggroup.py normalize_weights_in_mappings (no member reaches 100; a group of one would get 100 whatever its weight); v3route.py runtime_fraction",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("canary-a", "/app/", "canary-a", fixture.Weight(20)),
			fixture.Mapping("canary-b", "/app/", "canary-b", fixture.Weight(10)),
			fixture.Mapping("catchall", "/", "catchall"),
		},
		shares: []shares{{path: "/app/", want: map[string]int{"canary-a": 20, "canary-b": 10, "catchall": 70}}},
	}, {
		name:     "a group of one gets 100 whatever its weight",
		source:   "irbasemappinggroup.py normalize_weights_in_mappings: len(self.mappings) == 1",
		mappings: []*ambv3.Mapping{fixture.Mapping("canary", "/app/", "canary", fixture.Weight(20)), fixture.Mapping("catchall", "/", "catchall")},
		shares:   []shares{{path: "/app/", want: map[string]int{"canary": 100}}},
	}, {
		name:   "precedence beats a longer prefix",
		source: "irhttpmapping.py _route_weight: precedence comes first",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("long", "/podinfo/api/", "long"),
			fixture.Mapping("prec", "/podinfo/", "prec", fixture.Precedence(1)),
		},
		probes: []probe{{path: "/podinfo/api/x", backend: "prec"}},
	}, {
		name:   "a longer prefix beats a shorter one",
		source: "irhttpmapping.py _route_weight: len(prefix) after precedence",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("short", "/podinfo/", "short"),
			fixture.Mapping("long", "/podinfo/api/", "long"),
		},
		probes: []probe{
			{path: "/podinfo/api/x", backend: "long"},
			{path: "/podinfo/x", backend: "short"},
		},
	}, {
		name:   "a header route beats the plain one: the dev route takes x-crossmap-cluster: dev, and only that",
		source: "irhttpmapping.py _group_id (headers make a group of their own) and _route_weight (header length)",
		mappings: []*ambv3.Mapping{
			localDev("podinfo"),
			fixture.Mapping("podinfo-dev-dev", "/podinfo/", "podinfo-dev", fixture.Headers("x-crossmap-cluster", "dev")),
		},
		shares: []shares{
			{path: "/podinfo/", header: []string{"X-Crossmap-Cluster", "dev"}, want: map[string]int{"podinfo-dev": 100}},
			{path: "/podinfo/", want: map[string]int{"podinfo": 100}},
			{path: "/podinfo/", header: []string{"X-Crossmap-Cluster", "east"}, want: map[string]int{"podinfo": 100}},
		},
	}, {
		name:   "query parameter match",
		source: "v3route.py generate_query_parameters: string_match exact",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("v1", "/api/", "v1"),
			fixture.Mapping("v2", "/api/", "v2", fixture.Query("version", "2")),
		},
		probes: []probe{
			{path: "/api/x?version=2", backend: "v2", upPath: "/x"},
			{path: "/api/x?version=3", backend: "v1"},
			{path: "/api/x", backend: "v1"},
		},
	}, {
		name:   "method match",
		source: "irhttpmapping.py: method becomes a :method header match",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("any", "/api/", "any"),
			fixture.Mapping("post", "/api/", "post", fixture.Method("POST")),
		},
		probes: []probe{
			{method: "POST", path: "/api/", backend: "post"},
			{method: "GET", path: "/api/", backend: "any"},
			{method: "PUT", path: "/api/", backend: "any"},
		},
	}, {
		name:     "hostname match and non-match",
		source:   "v3route.py generate_headers (:authority exact/suffix/prefix match); ir/irhost.py HostFactory.finalize (default Host *)",
		mappings: []*ambv3.Mapping{fixture.Mapping("foo", "/", "foo", fixture.Hostname("foo.example.com")), fixture.Mapping("wild", "/", "wild", fixture.Hostname("*.wild.example"))},
		probes: []probe{
			{host: "foo.example.com", path: "/", backend: "foo"},
			{host: "foo.example.com:8080", path: "/", backend: "foo"},
			{host: "a.wild.example", path: "/", backend: "wild"},
			{host: "wild.example", path: "/", status: http.StatusNotFound},
			{host: "bar.example.com", path: "/", status: http.StatusNotFound},
		},
	}, {
		name:     "prefix_regex: an RE2 full match of the path",
		source:   "envoy/common.py EnvoyRoute (regex), v3route.py regex_matcher: safe_regex",
		mappings: []*ambv3.Mapping{fixture.Mapping("items", "/items/[0-9]+", "items", fixture.PrefixRegex(), fixture.Rewrite(""))},
		probes: []probe{
			{path: "/items/42", backend: "items", upPath: "/items/42"},
			{path: "/items/42?x=1", backend: "items"},
			{path: "/items/42/x", status: http.StatusNotFound},
			{path: "/items/abc", status: http.StatusNotFound},
		},
	}, {
		name:   "rewrite: default /, explicit /api/, and \"\"",
		source: "irhttpmapping.py __init__ (rewrite defaults to /); v3route.py: prefix_rewrite only when rewrite is not empty",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("default", "/podinfo/", "a"),
			fixture.Mapping("api", "/v1/", "a", fixture.Rewrite("/api/")),
			fixture.Mapping("none", "/keep/", "a", fixture.Rewrite("")),
		},
		probes: []probe{
			{path: "/podinfo/foo", backend: "a", upPath: "/foo", upHeader: []string{"X-Envoy-Original-Path", "/podinfo/foo"}},
			{path: "/podinfo/foo%2Fbar?x=1", backend: "a", upPath: "/foo%2Fbar"},
			{path: "/v1/foo", backend: "a", upPath: "/api/foo"},
			{path: "/keep/foo", backend: "a", upPath: "/keep/foo", upHeader: []string{"X-Envoy-Original-Path", ""}},
		},
	}, {
		name:   "host_rewrite sets the Host header; without it the request's Host is kept",
		source: "v3route.py: host_rewrite_literal",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("rw", "/rw/", "a", fixture.HostRewrite("podinfo.test.svc.cluster.local")),
			fixture.Mapping("keep", "/keep/", "a"),
		},
		probes: []probe{
			{host: "edge.example.com", path: "/rw/", backend: "a", upHost: "podinfo.test.svc.cluster.local", upHeader: []string{"X-Forwarded-Host", "edge.example.com"}},
			{host: "edge.example.com", path: "/keep/", backend: "a", upHost: "edge.example.com"},
		},
	}, {
		name:   "add_request_headers: appended by default",
		source: "v3route.py generate_headers_to_add: append defaults to True",
		mappings: []*ambv3.Mapping{fixture.Mapping("m", "/", "a", fixture.Spec(func(s *ambv3.MappingSpec) {
			s.AddRequestHeaders = &map[string]ambv3.AddedHeader{"x-env": {Value: "dev"}, "x-set": {Value: "edge", Append: ptr(false)}}
		}))},
		probes: []probe{
			{path: "/", header: []string{"X-Env", "client", "X-Set", "client"}, backend: "a", upHeader: []string{"X-Env", "client,dev", "X-Set", "edge"}},
		},
	}, {
		name:     "timeout_ms gives 504 against a slow backend",
		source:   "v3route.py: route timeout from timeout_ms (default 3000ms)",
		mappings: []*ambv3.Mapping{fixture.Mapping("slow", "/", "slow", fixture.TimeoutMS(100))},
		backends: []backendSpec{{name: "slow", slow: true}},
		probes:   []probe{{path: "/", status: http.StatusGatewayTimeout, mapping: "test/slow"}},
	}, {
		name:   "no ready endpoint: 503, without falling through to the next route",
		source: "Envoy: a route whose cluster has no healthy host answers 503 \"no healthy upstream\"",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("down", "/podinfo/", "down"),
			fixture.Mapping("catchall", "/", "up"),
		},
		backends: []backendSpec{{name: "down", ready: []*bool{notReady}}, {name: "up"}},
		probes: []probe{
			{path: "/podinfo/", status: http.StatusServiceUnavailable, mapping: "test/down"},
			{path: "/other", backend: "up", mapping: "test/catchall"},
		},
	}, {
		name:     "endpoints whose ready condition is false get no requests; round robin over the rest",
		source:   "EndpointSlice conditions.ready (unset means ready); kube-proxy serves ready endpoints only",
		mappings: []*ambv3.Mapping{fixture.Mapping("m", "/", "a")},
		backends: []backendSpec{{name: "a", ready: []*bool{ready, notReady, nil}}},
		shares:   []shares{{path: "/", n: 6, byEndpoint: true, want: map[string]int{"a#0": 3, "a#2": 3}}},
	}, {
		name:   "an unsupported field is a problem, and the Mapping still routes",
		source: "the dev edge's contract (fields.go); Emissary would apply cors and retry_policy",
		mappings: []*ambv3.Mapping{fixture.Mapping("m", "/", "a", fixture.Spec(func(s *ambv3.MappingSpec) {
			s.CORS = &ambv3.CORS{Origins: []string{"https://example.com"}}
			s.RetryPolicy = &ambv3.RetryPolicy{RetryOn: "5xx"}
		}))},
		problems: []string{"test/m cors", "test/m retry_policy"},
		probes:   []probe{{path: "/", backend: "a"}},
	}, {
		name:   "a group over 100 is a problem and routes nothing",
		source: "irbasemappinggroup.py normalize_weights_in_mappings: \"Total weight of mappings exceeds 100\"",
		mappings: []*ambv3.Mapping{
			localDev("podinfo", fixture.Weight(60)),
			fixture.Mapping("podinfo-east", "/podinfo/", "podinfo-east", fixture.Weight(50)),
		},
		problems: []string{"test/podinfo weight", "test/podinfo-east weight"},
		probes:   []probe{{path: "/podinfo/", status: http.StatusNotFound}},
	}, {
		name:   "a Mapping of another ambassador_id is ignored",
		source: "config/config.py good_ambassador_id; v3alpha1 AmbassadorID.Matches",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("other", "/", "other", fixture.AmbassadorID("other")),
			fixture.Mapping("ours", "/ours/", "ours"),
		},
		probes: []probe{
			{path: "/x", status: http.StatusNotFound},
			{path: "/ours/", backend: "ours"},
		},
	}, {
		name:   "a Host's mappingSelector excludes a Mapping without its labels",
		source: "ir/irhost.py matches_httpgroup: with a mappingSelector and a hostname, both must match; https://emissary-ingress.dev/docs/3.6/topics/running/host-crd (Controlling Association with Mappings)",
		hosts:  []*ambv3.Host{fixture.Host("edge", "*", map[string]string{"exposed": "true"})},
		mappings: []*ambv3.Mapping{
			fixture.Mapping("exposed", "/exposed/", "a", fixture.Labels("exposed", "true")),
			fixture.Mapping("hidden", "/hidden/", "a"),
		},
		problems: []string{"test/hidden "},
		probes: []probe{
			{path: "/exposed/", backend: "a"},
			{path: "/hidden/", status: http.StatusNotFound},
		},
	}, {
		name:   "a shadow Mapping takes no traffic from its group",
		source: "irhttpmappinggroup.py add_mapping: a shadow Mapping is kept apart from the group's mappings",
		mappings: []*ambv3.Mapping{
			fixture.Mapping("primary", "/", "a"),
			fixture.Mapping("shadow", "/", "b", fixture.Spec(func(s *ambv3.MappingSpec) { s.Shadow = ptr(true) })),
		},
		problems: []string{"test/shadow shadow"},
		shares:   []shares{{path: "/", want: map[string]int{"a": 100}}},
	}}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Logf("source: %s", tc.source)
			runConformance(t, tc)
		})
	}
}

func runConformance(t *testing.T, tc conformanceCase) {
	backends := tc.backends
	if backends == nil {
		seen := map[string]bool{}
		for _, m := range tc.mappings {
			name, _, _ := strings.Cut(m.Spec.Service, ":")
			if !seen[name] {
				seen[name] = true
				backends = append(backends, backendSpec{name: name})
			}
		}
	}
	in := Input{Mappings: tc.mappings, Hosts: tc.hosts}
	for _, b := range backends {
		svc, es := startBackend(t, b)
		in.Services = append(in.Services, svc)
		in.Slices = append(in.Slices, es...)
	}
	tbl, problems := Build(in)
	var got []string
	for _, p := range problems {
		got = append(got, p.Mapping+" "+p.Field)
	}
	if !slices.Equal(got, tc.problems) {
		t.Errorf("problems = %q, want %q:\n%s", got, tc.problems, problemList(problems))
	}

	var draw atomic.Int64
	proxy := NewProxy(WithDraw(func() int { return int(draw.Load()) }))
	proxy.SetTable(tbl)
	front := newLoopbackServer(t, proxy)

	for _, p := range tc.probes {
		draw.Store(int64(p.draw))
		resp, e := send(t, front, p.method, p.host, p.path, p.header)
		what := fmt.Sprintf("%s %s%s", cmpOr(p.method, "GET"), cmpOr(p.host, "example.com"), p.path)
		if want := cmpInt(p.status, http.StatusOK); resp.StatusCode != want {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, want)
			continue
		}
		if p.mapping != "" && resp.Header.Get(MappingHeader) != p.mapping {
			t.Errorf("%s: %s = %q, want %q", what, MappingHeader, resp.Header.Get(MappingHeader), p.mapping)
		}
		if resp.StatusCode != http.StatusOK {
			continue
		}
		if e.Backend != p.backend {
			t.Errorf("%s: answered by %q, want %q", what, e.Backend, p.backend)
		}
		if p.upPath != "" && e.Path != p.upPath {
			t.Errorf("%s: the backend saw path %q, want %q", what, e.Path, p.upPath)
		}
		if p.upHost != "" && e.Host != p.upHost {
			t.Errorf("%s: the backend saw Host %q, want %q", what, e.Host, p.upHost)
		}
		for i := 0; i+1 < len(p.upHeader); i += 2 {
			if got := strings.Join(e.Header.Values(p.upHeader[i]), ","); got != p.upHeader[i+1] {
				t.Errorf("%s: the backend saw %s %q, want %q", what, p.upHeader[i], got, p.upHeader[i+1])
			}
		}
	}

	for _, s := range tc.shares {
		n := cmpInt(s.n, 100)
		got := map[string]int{}
		for i := range n {
			draw.Store(int64(i % 100))
			resp, e := send(t, front, s.method, s.host, s.path, s.header)
			key := strconv.Itoa(resp.StatusCode)
			if resp.StatusCode == http.StatusOK {
				key = e.Backend
				if s.byEndpoint {
					key = fmt.Sprintf("%s#%d", e.Backend, e.Endpoint)
				}
			}
			got[key]++
		}
		if !mapsEqual(got, s.want) {
			t.Errorf("%s %s with %v, %d requests: counts %v, want %v", cmpOr(s.method, "GET"), s.path, s.header, n, got, s.want)
		}
	}
}

func cmpInt(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// send sends one request to the front server and decodes the backend's
// echo (zero for a non-200).
func send(t *testing.T, front *httptest.Server, method, host, path string, hdr []string) (*http.Response, echo) {
	t.Helper()
	req, err := http.NewRequest(cmpOr(method, "GET"), front.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = cmpOr(host, "example.com")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := front.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", req.Method, path, err)
	}
	var e echo
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s %s: decode %q: %v", req.Method, path, body, err)
		}
	}
	return resp, e
}

// startBackend starts b's endpoints and returns its Service and
// EndpointSlices. Every server listens on 127.0.0.1, so each endpoint gets
// a slice of its own, with its own port: Kubernetes allows the slices of
// one Service to give a named port different numbers.
func startBackend(t *testing.T, b backendSpec) (*corev1.Service, []*discoveryv1.EndpointSlice) {
	t.Helper()
	ready := b.ready
	if len(ready) == 0 {
		ready = []*bool{nil}
	}
	var slices []*discoveryv1.EndpointSlice
	for i, r := range ready {
		srv := newLoopbackServer(t, echoHandler(b.name, i, b.slow))
		addr, port := splitAddr(t, srv.Listener.Addr())
		slices = append(slices, sliceObj(fmt.Sprintf("%s-%d", b.name, i), b.name, port, endpoint{addr: addr, ready: r}))
	}
	return serviceObj(b.name), slices
}

func splitAddr(t *testing.T, a net.Addr) (string, int32) {
	t.Helper()
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		t.Fatalf("listener address %v is not TCP", a)
	}
	return tcp.IP.String(), int32(tcp.Port)
}

// newLoopbackServer starts h on 127.0.0.1 only.
func newLoopbackServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	return newServerAt(t, "127.0.0.1:0", h)
}

func newServerAt(t *testing.T, addr string, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// echoHandler answers with an echo naming the backend and endpoint. A slow
// one holds the request for 10s or until the client goes away: the only
// wait in these tests, standing for an upstream that does not answer.
func echoHandler(name string, endpoint int, slow bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Second):
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(echo{
			Backend: name, Endpoint: endpoint, Method: r.Method,
			Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Host: r.Host, Header: r.Header,
		})
	})
}
