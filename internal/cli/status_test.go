package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// fixedView is a controller's view with three Links: east healthy and
// probed, dev with its API server gone, flat with a dead gateway and no
// probe latency; two routes, one of them with a problem; and problems of
// a Link, a route and the export role.
func fixedView() status.View {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	return status.View{
		Links: []status.Link{
			{Namespace: "crossmap-system", Name: "dev", Cluster: "dev-alice", Mode: "gateway", RemoteReachable: false, GatewayAlive: true,
				MirroredServices: []string{}},
			{Namespace: "crossmap-system", Name: "east", Cluster: "east", Mode: "gateway", RemoteReachable: true, GatewayAlive: true,
				GatewayProbed: true, ProbeLatency: "1.2ms", MirroredServices: []string{"test/podinfo-east", "test/web-east"}},
			{Namespace: "crossmap-system", Name: "flat", Cluster: "flat", Mode: "flat", RemoteReachable: true, GatewayAlive: false,
				GatewayProbed: true, MirroredServices: []string{"test/web-flat"}},
		},
		Routes: []status.Route{
			{Namespace: "test", Name: "podinfo", Failover: "weighted", Backends: []mapper.RouteBackend{
				{Service: "podinfo.test:9898", Configured: 50, Effective: 50, Healthy: true},
				{Cluster: "east", Service: "podinfo-east.test:9898", Configured: 50, Effective: 50, Healthy: true},
				{Cluster: "dev-alice", Service: "podinfo-dev-alice.test:9898", Header: "x-crossmap-cluster"},
			}},
			{Namespace: "test", Name: "web", Failover: "off", Held: true, Backends: []mapper.RouteBackend{
				{Service: "web.test:80", Configured: 70, Effective: 70, Healthy: true},
				{Cluster: "east", Service: "web-east.test:80", Configured: 30, Effective: 30, Healthy: true},
			}},
		},
		Problems: []status.Problem{
			{Source: "export", Since: since, Problem: mapper.Problem{Reason: "NoPorts",
				Object: mapper.ObjectRef{Kind: "Service", Namespace: "test", Name: "empty"}, Message: "Service has no ports"}},
			{Source: "link/crossmap-system/dev", Since: since, Problem: mapper.Problem{Reason: "Unreachable",
				Object: mapper.ObjectRef{Kind: "Link", Namespace: "crossmap-system", Name: "dev"}, Message: "dial tcp 192.0.2.1:6443:\tconnect: connection refused\n"}},
			{Source: "route/test/web", Since: since, Problem: mapper.Problem{Reason: "InvalidAnnotation",
				Object: mapper.ObjectRef{Kind: "Mapping", Namespace: "test", Name: "web"}, Message: `crossmap.io/split "east=3O": weight "3O" is not a number`}},
		},
	}
}

func TestWriteStatusTable(t *testing.T) {
	var out bytes.Buffer
	if err := WriteStatusTable(&out, fixedView()); err != nil {
		t.Fatal(err)
	}
	want := `CLUSTER    ALIVE         LATENCY  SERVICES  ROUTES  PROBLEMS
dev-alice  no (api)      -        0         1       1
east       yes           1.2ms    2         2       1
flat       no (gateway)  -        1         0       0

Problems (3):
REASON             OBJECT                    MESSAGE
NoPorts            Service test/empty        Service has no ports
Unreachable        Link crossmap-system/dev  dial tcp 192.0.2.1:6443: connect: connection refused
InvalidAnnotation  Mapping test/web          crossmap.io/split "east=3O": weight "3O" is not a number
`
	if got := out.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestStatusRowsAlive(t *testing.T) {
	cases := []struct {
		api, gateway bool
		want         string
	}{
		{true, true, "yes"},
		{false, true, "no (api)"},
		{true, false, "no (gateway)"},
		{false, false, "no (api, gateway)"},
	}
	for _, tc := range cases {
		rows := StatusRows(status.View{Links: []status.Link{{Cluster: "east", RemoteReachable: tc.api, GatewayAlive: tc.gateway}}})
		if len(rows) != 1 || rows[0].Alive != tc.want {
			t.Errorf("api=%v gateway=%v: rows %+v, want ALIVE %q", tc.api, tc.gateway, rows, tc.want)
		}
	}
}

func TestWriteStatusTableEmpty(t *testing.T) {
	var out bytes.Buffer
	if err := WriteStatusTable(&out, status.View{Links: []status.Link{}, Routes: []status.Route{}, Problems: []status.Problem{}}); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "No Links: link a cluster with 'crossmap link NAME --kubeconfig FILE'.\n"; got != want {
		t.Errorf("empty view printed %q, want %q", got, want)
	}
}

// statusServer serves a model holding fixedView through the status API's
// own handlers.
func statusServer(t *testing.T) *httptest.Server {
	t.Helper()
	m := status.NewModel()
	v := fixedView()
	for _, l := range v.Links {
		m.SetLink(l)
	}
	m.SetRoutes(v.Routes)
	for _, p := range v.Problems {
		m.SetProblems(p.Source, []mapper.Problem{p.Problem}, p.Since)
	}
	srv := httptest.NewServer((&status.Server{Model: m}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func TestShowStatusTable(t *testing.T) {
	srv := statusServer(t)
	var out bytes.Buffer
	if err := ShowStatus(t.Context(), StatusOptions{Server: srv.URL, Output: OutputTable}, &out); err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := WriteStatusTable(&want, fixedView()); err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Errorf("status from the API:\n%s\nwant:\n%s", out.String(), want.String())
	}
}

func TestShowStatusJSON(t *testing.T) {
	srv := statusServer(t)
	for _, server := range []string{srv.URL, srv.URL + "/", strings.TrimPrefix(srv.URL, "http://")} {
		var out bytes.Buffer
		if err := ShowStatus(t.Context(), StatusOptions{Server: server, Output: OutputJSON}, &out); err != nil {
			t.Fatalf("--server %s: %v", server, err)
		}
		var got status.View
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("-o json printed %q: %v", out.String(), err)
		}
		if len(got.Links) != 3 || len(got.Routes) != 2 || len(got.Problems) != 3 {
			t.Errorf("-o json printed %d links, %d routes, %d problems; want 3, 2, 3", len(got.Links), len(got.Routes), len(got.Problems))
		}
		if !strings.HasPrefix(out.String(), "{\n  \"links\": [\n") || !strings.HasSuffix(out.String(), "}\n") {
			t.Errorf("-o json is not indented:\n%s", out.String())
		}
	}
}

func TestShowStatusErrors(t *testing.T) {
	// A port nothing listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	notJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("<html>hello</html>"))
	}))
	defer notJSON.Close()
	otherJSON := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"kind": "Status"}`))
	}))
	defer otherJSON.Close()
	api := statusServer(t)

	cases := []struct {
		name, server string
		want         []string
	}{
		{"unreachable", closed, []string{"cannot reach the crossmap status API at " + closed + "/status", "connection refused", "--server", "controller running"}},
		{"not found", api.URL + "/nope", []string{"GET " + api.URL + "/nope/status: 404 Not Found: no such path: /nope/status"}},
		{"not JSON", notJSON.URL, []string{"not crossmap status JSON", "is --server a crossmap status API?"}},
		{"other JSON", otherJSON.URL, []string{"none of links, routes or problems"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := ShowStatus(t.Context(), StatusOptions{Server: tc.server, Output: OutputTable}, &out)
			if err == nil {
				t.Fatalf("ShowStatus(%s) = nil, printed %q; want an error", tc.server, out.String())
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("ShowStatus(%s) = %q; want it to hold %q", tc.server, err, want)
				}
			}
			if out.Len() != 0 {
				t.Errorf("ShowStatus(%s) printed %q before failing; want nothing", tc.server, out.String())
			}
		})
	}
}

func TestStatusOptionsValidate(t *testing.T) {
	cases := []struct {
		opts StatusOptions
		want []string // empty: valid
	}{
		{DefaultStatusOptions(), nil},
		{StatusOptions{Server: "127.0.0.1:8090", Output: OutputJSON}, nil},
		{StatusOptions{Server: "https://crossmap.example.com/base/", Output: OutputTable}, nil},
		{StatusOptions{Server: "", Output: "yaml"}, []string{"--server must not be empty", `-o "yaml": want table or json`}},
		{StatusOptions{Server: "ftp://x", Output: OutputTable}, []string{"scheme must be http or https"}},
		{StatusOptions{Server: "http://x/?a=b", Output: OutputTable}, []string{"without query"}},
	}
	for _, tc := range cases {
		err := tc.opts.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("Validate(%+v) = %v; want nil", tc.opts, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Validate(%+v) = nil; want an error", tc.opts)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Validate(%+v) = %q; want it to hold %q", tc.opts, err, want)
			}
		}
	}
}

// TestWriteStatusTableInForce: issue 12. Below the problems, each route
// with its Emissary group in force: every member's share, who owns it, and
// what crossmap configured where the share differs.
func TestWriteStatusTableInForce(t *testing.T) {
	fifty := 50
	v := status.View{Links: []status.Link{}, Problems: []status.Problem{}, Routes: []status.Route{{
		Namespace: "test", Name: "podinfo", Failover: "off",
		Group: &mapper.RouteGroup{Members: []mapper.GroupMember{
			{Mapping: "test/podinfo-east", Owner: mapper.OwnerCrossmap, Cluster: "east", Weight: &fifty, Share: 50, Configured: &fifty},
			{Mapping: "test/podinfo", Owner: mapper.OwnerUser, Share: 25, Configured: &fifty},
			{Mapping: "test/podinfo-v2", Owner: mapper.OwnerOther, Share: 25},
		}},
	}, {Namespace: "test", Name: "nogroup", Failover: "off"}}}
	var out bytes.Buffer
	if err := WriteStatusTable(&out, v); err != nil {
		t.Fatal(err)
	}
	want := `No Links: link a cluster with 'crossmap link NAME --kubeconfig FILE'.

Routes in force (1):
ROUTE         FAILOVER  HELD  EMISSARY GROUP: MAPPING SHARE% (OWNER)
test/podinfo  off       no    test/podinfo-east 50 (crossmap, east); test/podinfo 25 (this Mapping, configured 50); test/podinfo-v2 25 (other)
`
	if got := out.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

// TestWriteStatusTableDrill: an active drill and an ended one are listed
// under the Links, with who, since and until.
func TestWriteStatusTableDrill(t *testing.T) {
	v := fixedView()
	start := time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)
	v.Links[1].Drill = &status.LinkDrill{Active: true, By: "alice", StartedAt: start, Until: start.Add(10 * time.Minute)}
	v.Links[2].Drill = &status.LinkDrill{By: "alice", StartedAt: start, Until: start.Add(time.Hour), Ended: "stopped", StoppedBy: "bob", StoppedAt: start.Add(time.Minute)}
	var out bytes.Buffer
	if err := WriteStatusTable(&out, v); err != nil {
		t.Fatal(err)
	}
	want := `Drills (2):
CLUSTER  DRILL                        BY     STARTED               UNTIL
east     active: drained for routing  alice  2026-12-03T13:00:00Z  2026-12-03T13:10:00Z
flat     stopped by bob               alice  2026-12-03T13:00:00Z  2026-12-03T14:00:00Z
`
	if !strings.Contains(out.String(), want) {
		t.Errorf("status table:\n%s\nwant it to hold:\n%s", out.String(), want)
	}
}
