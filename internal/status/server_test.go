package status_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

var (
	westLink = status.Link{
		Namespace: "crossmap-system", Name: "west", Cluster: "west", Mode: "gateway",
		RemoteReachable: true, GatewayAlive: true, GatewayProbed: true, ProbeLatency: "2ms",
		GatewayAddresses: []string{"172.18.0.3"}, MirroredServices: []string{"test/podinfo-west"},
		LastSync: t0,
	}
	eastLink = status.Link{
		Namespace: "crossmap-system", Name: "east", Cluster: "east", Mode: "flat",
		LastError: "dial tcp: connection refused", MirroredServices: []string{},
	}
	westService = status.Service{
		Namespace: "test", Name: "podinfo-west", Link: "crossmap-system/west", Cluster: "west",
		Source: "test/podinfo", Mode: "gateway", Endpoints: 2, ReadyEndpoints: 1, Ready: true,
		Lag: "40ms", LastSync: t0,
	}
	otherService = status.Service{
		Namespace: "test", Name: "other-west", Link: "crossmap-system/west", Cluster: "west",
		Source: "test/other", Mode: "gateway",
	}
	podinfoRoute = status.Route{Namespace: "test", Name: "podinfo", Failover: "weighted", Backends: []mapper.RouteBackend{
		{Service: "test/podinfo", Configured: 50, Effective: 100, Healthy: true, Reason: "failover: unhealthy remotes' weight moved here"},
		{Cluster: "west", Service: "test/podinfo-west", Configured: 50, Effective: 0, Reason: "no ready endpoints"},
	}}
	// brokenRoute is held with no backends: the model has nil, the API
	// says [] (servedBroken).
	brokenRoute  = status.Route{Namespace: "test", Name: "broken", Held: true}
	servedBroken = status.Route{Namespace: "test", Name: "broken", Held: true, Backends: []mapper.RouteBackend{}}
	// badSplit is a problem of brokenRoute's Mapping.
	badSplit = mapper.Problem{Reason: mapper.ReasonInvalidAnnotation,
		Object:  mapper.ObjectRef{Kind: "Mapping", Namespace: "test", Name: "broken"},
		Message: `crossmap.io/split: weight "abc" is not a number`}
)

// newStatusServer serves a model holding westLink, eastLink, west's two
// mirrors, podinfoRoute, brokenRoute and a problem of each of export and
// brokenRoute on a loopback httptest server.
func newStatusServer(t *testing.T, ready func() error) *httptest.Server {
	t.Helper()
	m := status.NewModel()
	m.SetLink(westLink)
	m.SetLink(eastLink)
	m.SetServices(westLink.Key(), []status.Service{westService, otherService})
	m.SetRoutes([]status.Route{podinfoRoute, brokenRoute})
	m.SetProblems("export", []mapper.Problem{conflict}, t0)
	m.SetProblems("route/test/broken", []mapper.Problem{badSplit}, t1)
	srv := httptest.NewServer((&status.Server{Model: m, Ready: ready}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

// do does a request and returns the status code and body, failing the test
// unless the answer is JSON.
func do(t *testing.T, method, url string) (int, []byte) {
	t.Helper()
	resp, body := request(t, method, url)
	return resp.StatusCode, body
}

// request is do that also returns the response, for its headers.
func request(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	resp, body := fetch(t, method, url)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q; want application/json", method, url, ct)
	}
	return resp, body
}

// fetch does a request and returns the response and its body, whatever its
// type.
func fetch(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, body
}

// decode decodes body into a new T, failing the test on any field T lacks.
func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, body, err)
	}
	return v
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
	Code  int    `json:"code"`
}

func TestServerStatus(t *testing.T) {
	srv := newStatusServer(t, nil)

	code, body := do(t, http.MethodGet, srv.URL+"/status")
	if code != http.StatusOK {
		t.Fatalf("GET /status: %d %s; want 200", code, body)
	}
	got := decode[status.View](t, body)
	if want := []status.Link{eastLink, westLink}; !reflect.DeepEqual(got.Links, want) {
		t.Errorf("GET /status links = %+v; want %+v", got.Links, want)
	}
	if want := []status.Problem{{Source: "export", Problem: conflict, Since: t0}, {Source: "route/test/broken", Problem: badSplit, Since: t1}}; !reflect.DeepEqual(got.Problems, want) {
		t.Errorf("GET /status problems = %+v; want %+v", got.Problems, want)
	}
	if want := []status.Service{otherService, westService}; !reflect.DeepEqual(got.Services, want) {
		t.Errorf("GET /status services = %+v; want %+v", got.Services, want)
	}
	if want := []status.Route{servedBroken, podinfoRoute}; !reflect.DeepEqual(got.Routes, want) {
		t.Errorf("GET /status routes = %+v; want %+v", got.Routes, want)
	}

	// The field names are the API: check them on the raw JSON.
	var raw struct {
		Links    []map[string]any `json:"links"`
		Services []map[string]any `json:"services"`
		Problems []map[string]any `json:"problems"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"namespace", "name", "cluster", "mode", "remoteReachable", "gatewayAlive", "gatewayProbed",
		"probeLatency", "gatewayAddresses", "mirroredServices", "lastSync"} {
		if _, ok := raw.Links[1][k]; !ok {
			t.Errorf("GET /status: link west has no %q field: %v", k, raw.Links[1])
		}
	}
	// East has no probe, error-free gateway data or sync time: those are
	// left out, but its (empty) mirror list is always there.
	for k, want := range map[string]bool{"probeLatency": false, "gatewayAddresses": false, "lastSync": false, "lastError": true, "mirroredServices": true} {
		if _, ok := raw.Links[0][k]; ok != want {
			t.Errorf("GET /status: link east has field %q: %t; want %t (%v)", k, ok, want, raw.Links[0])
		}
	}
	for _, k := range []string{"source", "reason", "object", "message", "since"} {
		if _, ok := raw.Problems[0][k]; !ok {
			t.Errorf("GET /status: problem has no %q field: %v", k, raw.Problems[0])
		}
	}
	for _, k := range []string{"namespace", "name", "link", "cluster", "source", "mode", "endpoints", "readyEndpoints", "ready", "lag", "lastSync"} {
		if _, ok := raw.Services[1][k]; !ok {
			t.Errorf("GET /status: service podinfo-west has no %q field: %v", k, raw.Services[1])
		}
	}
}

func TestServerEmptyStatus(t *testing.T) {
	srv := httptest.NewServer((&status.Server{Model: status.NewModel()}).Handler())
	t.Cleanup(srv.Close)

	code, body := do(t, http.MethodGet, srv.URL+"/status")
	if code != http.StatusOK {
		t.Fatalf("GET /status of an empty model: %d %s; want 200", code, body)
	}
	// Every list is [], not null.
	for field, value := range decode[map[string]any](t, body) {
		if field == "trust" {
			if certs := value.(map[string]any)["certificates"]; certs == nil {
				t.Errorf("GET /status of an empty model: trust.certificates is null; want []")
			}
			continue
		}
		if list, ok := value.([]any); !ok || len(list) != 0 {
			t.Errorf("GET /status of an empty model: %q is %v; want []", field, value)
		}
	}

	code, body = do(t, http.MethodGet, srv.URL+"/status/links")
	if list := decode[[]any](t, body); code != http.StatusOK || list == nil || len(list) != 0 {
		t.Errorf("GET /status/links of an empty model: %d %s; want 200 []", code, body)
	}
}

func TestServerLinks(t *testing.T) {
	srv := newStatusServer(t, nil)

	code, body := do(t, http.MethodGet, srv.URL+"/status/links")
	if code != http.StatusOK {
		t.Fatalf("GET /status/links: %d %s; want 200", code, body)
	}
	if got, want := decode[[]status.Link](t, body), []status.Link{eastLink, westLink}; !reflect.DeepEqual(got, want) {
		t.Errorf("GET /status/links = %+v; want %+v", got, want)
	}

	code, body = do(t, http.MethodGet, srv.URL+"/status/links/crossmap-system/west")
	if code != http.StatusOK {
		t.Fatalf("GET /status/links/crossmap-system/west: %d %s; want 200", code, body)
	}
	if got := decode[status.Link](t, body); !reflect.DeepEqual(got, westLink) {
		t.Errorf("GET /status/links/crossmap-system/west = %+v; want %+v", got, westLink)
	}
}

// TestServerErrors checks that every error is a JSON object with the error
// and its code.
func TestServerErrors(t *testing.T) {
	srv := newStatusServer(t, nil)
	cases := []struct {
		method, path string
		wantCode     int
		wantError    string
	}{
		{http.MethodGet, "/status/links/crossmap-system/north", http.StatusNotFound, "no Link crossmap-system/north"},
		{http.MethodGet, "/status/links/other/west", http.StatusNotFound, "no Link other/west"},
		{http.MethodGet, "/status/links/north", http.StatusNotFound, "no Link named north"},
		{http.MethodGet, "/status/links/crossmap-system/west/extra", http.StatusNotFound, "no such path: /status/links/crossmap-system/west/extra"},
		{http.MethodGet, "/status/services/test/nope", http.StatusNotFound, "no mirrored Service test/nope"},
		{http.MethodGet, "/status/services/test", http.StatusNotFound, "no such path: /status/services/test"},
		{http.MethodGet, "/status/routes/test/nope", http.StatusNotFound, "no annotated Mapping test/nope"},
		{http.MethodGet, "/status/routes/podinfo", http.StatusNotFound, "no such path: /status/routes/podinfo"},
		{http.MethodGet, "/status/", http.StatusNotFound, "no such path: /status/"},
		{http.MethodGet, "/nope", http.StatusNotFound, "no such path: /nope"},
		{http.MethodGet, "/metrics", http.StatusNotFound, "no metrics: this server has no Gatherer"},
		{http.MethodPost, "/status", http.StatusMethodNotAllowed, "POST is not allowed on /status"},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "POST is not allowed on /"},
		{http.MethodDelete, "/status/links/crossmap-system/west", http.StatusMethodNotAllowed, "DELETE is not allowed on /status/links/crossmap-system/west"},
		{http.MethodPatch, "/status/links/west", http.StatusMethodNotAllowed, "PATCH is not allowed on /status/links/west"},
		{http.MethodPut, "/status/services/test/podinfo-west", http.StatusMethodNotAllowed, "PUT is not allowed on /status/services/test/podinfo-west"},
		{http.MethodPost, "/metrics", http.StatusMethodNotAllowed, "POST is not allowed on /metrics"},
		{http.MethodPut, "/readyz", http.StatusMethodNotAllowed, "PUT is not allowed on /readyz"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, body := request(t, tc.method, srv.URL+tc.path)
			if resp.StatusCode != tc.wantCode {
				t.Errorf("%s %s: code %d; want %d", tc.method, tc.path, resp.StatusCode, tc.wantCode)
			}
			if got, want := decode[apiError](t, body), (apiError{Error: tc.wantError, Code: tc.wantCode}); got != want {
				t.Errorf("%s %s: body %+v; want %+v", tc.method, tc.path, got, want)
			}
			// A 405 says what is allowed (RFC 9110 section 15.5.6); the
			// API only reads.
			wantAllow := ""
			if tc.wantCode == http.StatusMethodNotAllowed {
				wantAllow = "GET, HEAD"
			}
			if got := resp.Header.Get("Allow"); got != wantAllow {
				t.Errorf("%s %s: Allow %q; want %q", tc.method, tc.path, got, wantAllow)
			}
		})
	}
}

func TestServerHealth(t *testing.T) {
	cases := []struct {
		name     string
		ready    func() error
		path     string
		wantCode int
		wantBody map[string]any
	}{
		{"healthz", func() error { return errors.New("not ready") }, "/healthz", http.StatusOK, map[string]any{"status": "ok"}},
		{"readyz without a check", nil, "/readyz", http.StatusOK, map[string]any{"status": "ready"}},
		{"readyz ready", func() error { return nil }, "/readyz", http.StatusOK, map[string]any{"status": "ready"}},
		{"readyz not ready", func() error { return errors.New("caches not synced yet") }, "/readyz",
			http.StatusServiceUnavailable, map[string]any{"error": "caches not synced yet", "code": float64(http.StatusServiceUnavailable)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newStatusServer(t, tc.ready)
			code, body := do(t, http.MethodGet, srv.URL+tc.path)
			if code != tc.wantCode {
				t.Errorf("GET %s: code %d; want %d", tc.path, code, tc.wantCode)
			}
			if got := decode[map[string]any](t, body); !reflect.DeepEqual(got, tc.wantBody) {
				t.Errorf("GET %s: body %v; want %v", tc.path, got, tc.wantBody)
			}
		})
	}
}

// TestServerStart runs the server as the manager does: Listen learns the
// port, Start serves until its context ends and then returns nil.
func TestServerStart(t *testing.T) {
	s := &status.Server{Addr: "127.0.0.1:0", Model: status.NewModel()}
	if s.NeedLeaderElection() {
		t.Error("NeedLeaderElection() = true; want every replica to serve its status")
	}
	if a := s.ListenAddr(); a != nil {
		t.Errorf("ListenAddr() before Listen = %v; want nil", a)
	}
	addr, err := s.Listen()
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	if a := s.ListenAddr(); a == nil || a.String() != addr.String() {
		t.Errorf("ListenAddr() after Listen = %v; want %v", a, addr)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()

	code, body := do(t, http.MethodGet, "http://"+addr.String()+"/healthz")
	if code != http.StatusOK {
		t.Errorf("GET /healthz: %d %s; want 200", code, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start returned %v after its context ended; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Start did not return within 10s of its context ending")
	}
}

// TestServerLinkByName: /status/links/{name} finds a Link by its name alone,
// and when the name is in several namespaces says which instead of
// guessing.
func TestServerLinkByName(t *testing.T) {
	srv := newStatusServer(t, nil)

	code, body := do(t, http.MethodGet, srv.URL+"/status/links/west")
	if code != http.StatusOK {
		t.Fatalf("GET /status/links/west: %d %s; want 200", code, body)
	}
	if got := decode[status.Link](t, body); !reflect.DeepEqual(got, westLink) {
		t.Errorf("GET /status/links/west = %+v; want %+v", got, westLink)
	}

	m := status.NewModel()
	for _, ns := range []string{"team-b", "crossmap-system", "team-a"} {
		l := westLink
		l.Namespace = ns
		m.SetLink(l)
	}
	m.SetLink(eastLink)
	amb := httptest.NewServer((&status.Server{Model: m}).Handler())
	t.Cleanup(amb.Close)

	code, body = do(t, http.MethodGet, amb.URL+"/status/links/west")
	if code != http.StatusConflict {
		t.Fatalf("GET /status/links/west with west in three namespaces: %d %s; want 409", code, body)
	}
	type ambiguous struct {
		Error      string   `json:"error"`
		Code       int      `json:"code"`
		Namespaces []string `json:"namespaces"`
	}
	want := ambiguous{
		Error: "Link name west is in several namespaces (crossmap-system, team-a, team-b): " +
			"ask for /status/links/{namespace}/west",
		Code:       http.StatusConflict,
		Namespaces: []string{"crossmap-system", "team-a", "team-b"},
	}
	if got := decode[ambiguous](t, body); !reflect.DeepEqual(got, want) {
		t.Errorf("GET /status/links/west with west in three namespaces = %+v; want %+v", got, want)
	}

	// The name is ambiguous; each namespace/name is not.
	code, body = do(t, http.MethodGet, amb.URL+"/status/links/team-a/west")
	if got := decode[status.Link](t, body); code != http.StatusOK || got.Namespace != "team-a" {
		t.Errorf("GET /status/links/team-a/west: %d %+v; want 200 and the Link in team-a", code, got)
	}
	code, body = do(t, http.MethodGet, amb.URL+"/status/links/east")
	if got := decode[status.Link](t, body); code != http.StatusOK || !reflect.DeepEqual(got, eastLink) {
		t.Errorf("GET /status/links/east: %d %+v; want 200 %+v", code, got, eastLink)
	}
}

func TestServerServices(t *testing.T) {
	srv := newStatusServer(t, nil)

	code, body := do(t, http.MethodGet, srv.URL+"/status/services")
	if code != http.StatusOK {
		t.Fatalf("GET /status/services: %d %s; want 200", code, body)
	}
	if got, want := decode[[]status.Service](t, body), []status.Service{otherService, westService}; !reflect.DeepEqual(got, want) {
		t.Errorf("GET /status/services = %+v; want %+v", got, want)
	}

	code, body = do(t, http.MethodGet, srv.URL+"/status/services/test/podinfo-west")
	if code != http.StatusOK {
		t.Fatalf("GET /status/services/test/podinfo-west: %d %s; want 200", code, body)
	}
	if got := decode[status.Service](t, body); !reflect.DeepEqual(got, westService) {
		t.Errorf("GET /status/services/test/podinfo-west = %+v; want %+v", got, westService)
	}
	// A mirror that has never synced has no lag or sync time.
	code, body = do(t, http.MethodGet, srv.URL+"/status/services/test/other-west")
	raw := decode[map[string]any](t, body)
	for k, want := range map[string]bool{"lag": false, "lastSync": false, "endpoints": true, "readyEndpoints": true, "ready": true} {
		if _, ok := raw[k]; code != http.StatusOK || ok != want {
			t.Errorf("GET /status/services/test/other-west: %d, has field %q: %t; want 200, %t (%v)", code, k, ok, want, raw)
		}
	}

	empty := httptest.NewServer((&status.Server{Model: status.NewModel()}).Handler())
	t.Cleanup(empty.Close)
	code, body = do(t, http.MethodGet, empty.URL+"/status/services")
	if list := decode[[]any](t, body); code != http.StatusOK || list == nil || len(list) != 0 {
		t.Errorf("GET /status/services of an empty model: %d %s; want 200 []", code, body)
	}
}

// routeView is the JSON of one route: the Route and its Mapping's problems.
type routeView struct {
	status.Route
	Problems []status.Problem `json:"problems"`
}

func TestServerRoutes(t *testing.T) {
	srv := newStatusServer(t, nil)

	code, body := do(t, http.MethodGet, srv.URL+"/status/routes")
	if code != http.StatusOK {
		t.Fatalf("GET /status/routes: %d %s; want 200", code, body)
	}
	want := []routeView{
		{Route: servedBroken, Problems: []status.Problem{{Source: "route/test/broken", Problem: badSplit, Since: t1}}},
		// The export conflict is about a Service, not this Mapping.
		{Route: podinfoRoute, Problems: []status.Problem{}},
	}
	if got := decode[[]routeView](t, body); !reflect.DeepEqual(got, want) {
		t.Errorf("GET /status/routes = %+v; want %+v", got, want)
	}

	code, body = do(t, http.MethodGet, srv.URL+"/status/routes/test/podinfo")
	if code != http.StatusOK {
		t.Fatalf("GET /status/routes/test/podinfo: %d %s; want 200", code, body)
	}
	if got := decode[routeView](t, body); !reflect.DeepEqual(got, want[1]) {
		t.Errorf("GET /status/routes/test/podinfo = %+v; want %+v", got, want[1])
	}
	// The backend field names are the API too.
	var raw struct {
		Backends []map[string]any `json:"backends"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"cluster", "service", "configured", "effective", "healthy", "reason"} {
		if _, ok := raw.Backends[1][k]; !ok {
			t.Errorf("GET /status/routes/test/podinfo: backend west has no %q field: %v", k, raw.Backends[1])
		}
	}
	if _, ok := raw.Backends[0]["cluster"]; ok {
		t.Errorf("GET /status/routes/test/podinfo: the local backend has a cluster: %v", raw.Backends[0])
	}
}

// TestServerMetrics: /metrics serves the Gatherer in Prometheus' text
// format.
func TestServerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	writes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crossmap_api_writes_total", Help: "Writes."}, []string{"op"})
	reg.MustRegister(writes)
	writes.WithLabelValues("create").Add(3)
	srv := httptest.NewServer((&status.Server{Model: status.NewModel(), Gatherer: reg}).Handler())
	t.Cleanup(srv.Close)

	resp, body := fetch(t, http.MethodGet, srv.URL+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s; want 200", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("GET /metrics: Content-Type %q; want Prometheus' text format", ct)
	}
	for _, want := range []string{"# TYPE crossmap_api_writes_total counter", `crossmap_api_writes_total{op="create"} 3`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("GET /metrics has no line %q:\n%s", want, body)
		}
	}
}

// TestServerHead: HEAD answers wherever GET does, with no body.
func TestServerHead(t *testing.T) {
	srv := newStatusServer(t, nil)
	for _, path := range []string{"/", "/status", "/status/links/west", "/healthz"} {
		resp, body := fetch(t, http.MethodHead, srv.URL+path)
		if resp.StatusCode != http.StatusOK || len(body) != 0 {
			t.Errorf("HEAD %s: %d with %d bytes; want 200 and no body", path, resp.StatusCode, len(body))
		}
	}
}

// TestServerStartListens: Start listens itself when Listen was not called,
// and ListenAddr tells where, safely while Start runs.
func TestServerStartListens(t *testing.T) {
	s := &status.Server{Addr: "127.0.0.1:0", Model: status.NewModel()}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Start: %v", err)
		}
	})

	var addr net.Addr
	err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		addr = s.ListenAddr()
		return addr != nil, nil
	})
	if err != nil {
		t.Fatalf("ListenAddr() still nil 10s after Start: %v", err)
	}
	code, body := do(t, http.MethodGet, "http://"+addr.String()+"/readyz")
	if code != http.StatusOK {
		t.Errorf("GET /readyz: %d %s; want 200", code, body)
	}
}

// TestServerHandlerConcurrent: two Servers may build their handlers at the
// same time, as the end-to-end tests' two controllers do. Before, every
// route shared one package-level method list that mux upper-cases in place,
// and -race reported the writes; now each route gets its own.
func TestServerHandlerConcurrent(t *testing.T) {
	done := make(chan http.Handler, 2)
	for range 2 {
		go func() { done <- (&status.Server{Model: status.NewModel()}).Handler() }()
	}
	for range 2 {
		if h := <-done; h == nil {
			t.Error("Handler() = nil")
		}
	}
}
