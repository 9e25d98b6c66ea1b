package status_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// Fixtures of issue 15: the Multi-Cluster Services API's ServiceExports
// (with the KEP-1645 conditions) and ServiceImports (with the clusters
// behind them).
var (
	// podinfoExport is exported cleanly: Valid, Ready, NoConflicts.
	podinfoExport = status.Export{Namespace: "test", Name: "podinfo", Conditions: []status.Condition{
		{Type: "Valid", Status: "True", Reason: "Valid", Since: t0},
		{Type: "Ready", Status: "True", Reason: "Ready", Since: t0},
		{Type: "Conflict", Status: "False", Reason: "NoConflicts", Since: t0},
	}}
	// helloExport conflicts on its ports with an older export elsewhere.
	helloExport = status.Export{Namespace: "test", Name: "hello", Conditions: []status.Condition{
		{Type: "Valid", Status: "True", Reason: "Valid", Since: t0},
		{Type: "Ready", Status: "True", Reason: "Ready", Since: t0},
		{Type: "Conflict", Status: "True", Reason: "PortConflict", Since: t1,
			Message: "port tcp of test/hello: 43/TCP here, 42/TCP in the oldest export (west); the oldest wins"},
	}}
	// nameExport has no Service of its name.
	nameExport = status.Export{Namespace: "test", Name: "ghost", Conditions: []status.Condition{
		{Type: "Valid", Status: "False", Reason: "NoService", Message: "no Service test/ghost to export", Since: t1},
	}}
	podinfoImport = status.Import{Namespace: "test", Name: "podinfo", Type: "ClusterSetIP", IPs: []string{"10.0.0.77"},
		Ports: []status.ImportPort{{Name: "http", Protocol: "TCP", Port: 9898}},
		Clusters: []status.ImportCluster{
			{Cluster: "east", Endpoints: 1, ReadyEndpoints: 1},
			{Cluster: "west", Local: true, Endpoints: 2, ReadyEndpoints: 2},
		},
		Conditions: []status.Condition{{Type: "Ready", Status: "True", Reason: "Ready", Since: t0}},
	}
	// headlessImport has no clusterset IP and, here, no ready endpoint.
	headlessImport = status.Import{Namespace: "test", Name: "db", Type: "Headless",
		Ports:    []status.ImportPort{{Protocol: "TCP", Port: 5432}},
		Clusters: []status.ImportCluster{{Cluster: "east", Endpoints: 1}},
	}
)

func mcsModel() *status.Model {
	m := status.NewModel()
	m.SetExports([]status.Export{podinfoExport, nameExport, helloExport})
	m.SetImports([]status.Import{podinfoImport, headlessImport})
	return m
}

// TestModelMCS: the model keeps the exports and imports it was last given,
// sorted by namespace/name, as copies its caller cannot change afterwards.
func TestModelMCS(t *testing.T) {
	exports := []status.Export{podinfoExport, nameExport, helloExport}
	imp := podinfoImport
	imp.Clusters = append([]status.ImportCluster{}, podinfoImport.Clusters...)
	m := status.NewModel()
	m.SetExports(exports)
	m.SetImports([]status.Import{imp, headlessImport})
	exports[0].Conditions = nil
	imp.Clusters[0].ReadyEndpoints = 99

	v := m.View()
	if want := []status.Export{nameExport, helloExport, podinfoExport}; !reflect.DeepEqual(v.Exports, want) {
		t.Errorf("View().Exports = %+v; want %+v (sorted by key)", v.Exports, want)
	}
	wantHeadless := headlessImport
	wantHeadless.IPs, wantHeadless.Conditions = []string{}, []status.Condition{}
	if want := []status.Import{wantHeadless, podinfoImport}; !reflect.DeepEqual(v.Imports, want) {
		t.Errorf("View().Imports = %+v; want %+v (sorted, IPs and conditions [] not nil)", v.Imports, want)
	}
	v.Imports[1].Clusters[0].Cluster = "changed"
	if got := m.View().Imports[1].Clusters[0].Cluster; got != "east" {
		t.Errorf("a change to a View changed the model: cluster %q; want east", got)
	}

	m.SetExports(nil)
	m.SetImports(nil)
	if v := m.View(); v.Exports == nil || v.Imports == nil || len(v.Exports)+len(v.Imports) != 0 {
		t.Errorf("after SetExports(nil), SetImports(nil): exports %v, imports %v; want [] and []", v.Exports, v.Imports)
	}
}

// TestServerMCS: /status carries exports and imports, /status/exports and
// /status/imports list them, and one of each is found by namespace/name.
func TestServerMCS(t *testing.T) {
	srv := httptest.NewServer((&status.Server{Model: mcsModel()}).Handler())
	t.Cleanup(srv.Close)

	code, body := do(t, http.MethodGet, srv.URL+"/status")
	if code != http.StatusOK {
		t.Fatalf("GET /status: %d %s", code, body)
	}
	v := decode[status.View](t, body)
	if len(v.Exports) != 3 || len(v.Imports) != 2 {
		t.Fatalf("GET /status: %d exports, %d imports; want 3 and 2", len(v.Exports), len(v.Imports))
	}
	if !reflect.DeepEqual(v.Imports[1], podinfoImport) {
		t.Errorf("GET /status imports[1] = %+v; want %+v", v.Imports[1], podinfoImport)
	}

	// The field names are the API: check them on the raw JSON.
	var raw struct {
		Exports []map[string]any `json:"exports"`
		Imports []map[string]any `json:"imports"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"namespace", "name", "conditions"} {
		if _, ok := raw.Exports[0][k]; !ok {
			t.Errorf("GET /status: export has no %q field: %v", k, raw.Exports[0])
		}
	}
	cond := raw.Exports[0]["conditions"].([]any)[0].(map[string]any)
	for _, k := range []string{"type", "status", "reason", "message", "since"} {
		if _, ok := cond[k]; !ok {
			t.Errorf("GET /status: export condition has no %q field: %v", k, cond)
		}
	}
	for _, k := range []string{"namespace", "name", "type", "ips", "ports", "clusters", "conditions"} {
		if _, ok := raw.Imports[0][k]; !ok {
			t.Errorf("GET /status: import has no %q field: %v", k, raw.Imports[0])
		}
	}
	cluster := raw.Imports[1]["clusters"].([]any)[1].(map[string]any)
	for _, k := range []string{"cluster", "local", "endpoints", "readyEndpoints"} {
		if _, ok := cluster[k]; !ok {
			t.Errorf("GET /status: import cluster has no %q field: %v", k, cluster)
		}
	}

	code, body = do(t, http.MethodGet, srv.URL+"/status/exports")
	if got := decode[[]status.Export](t, body); code != http.StatusOK || len(got) != 3 || got[1].Key() != "test/hello" {
		t.Errorf("GET /status/exports: %d %s; want the three exports, sorted", code, body)
	}
	code, body = do(t, http.MethodGet, srv.URL+"/status/exports/test/hello")
	if got := decode[status.Export](t, body); code != http.StatusOK || !reflect.DeepEqual(got, helloExport) {
		t.Errorf("GET /status/exports/test/hello: %d %+v; want 200 %+v", code, got, helloExport)
	}
	code, body = do(t, http.MethodGet, srv.URL+"/status/imports")
	if got := decode[[]status.Import](t, body); code != http.StatusOK || len(got) != 2 || got[0].Key() != "test/db" {
		t.Errorf("GET /status/imports: %d %s; want the two imports, sorted", code, body)
	}
	code, body = do(t, http.MethodGet, srv.URL+"/status/imports/test/podinfo")
	if got := decode[status.Import](t, body); code != http.StatusOK || !reflect.DeepEqual(got, podinfoImport) {
		t.Errorf("GET /status/imports/test/podinfo: %d %+v; want 200 %+v", code, got, podinfoImport)
	}
	for path, want := range map[string]string{
		"/status/exports/test/nope": "no ServiceExport test/nope",
		"/status/imports/test/nope": "no ServiceImport test/nope",
	} {
		code, body := do(t, http.MethodGet, srv.URL+path)
		if e := decode[apiError](t, body); code != http.StatusNotFound || e.Error != want {
			t.Errorf("GET %s: %d %q; want 404 %q", path, code, e.Error, want)
		}
	}
}

// TestServerPageMCS: the page shows each export with its three KEP
// conditions (a conflict as a warning with its reason and message, an
// invalid export as bad) and each import with its type, clusterset IP,
// ports and the clusters behind it.
func TestServerPageMCS(t *testing.T) {
	doc, _ := servePage(t, mcsModel())

	if got := text(one(t, doc, "data-summary", "exports")); got != "3 exports, 1 invalid, 1 in conflict" {
		t.Errorf("summary of exports %q; want 3 exports, 1 invalid, 1 in conflict", got)
	}
	if got := text(one(t, doc, "data-summary", "imports")); got != "2 imports, 1 ready" {
		t.Errorf("summary of imports %q; want 2 imports, 1 ready", got)
	}
	for _, tc := range []struct {
		key, health, valid, ready, conflict, message string
	}{
		{"test/podinfo", "ok", "valid", "ready", "no conflicts", "–"},
		{"test/hello", "warn", "valid", "ready", "PortConflict", "42/TCP in the oldest export (west)"},
		{"test/ghost", "bad", "NoService", "–", "–", "no Service test/ghost to export"},
	} {
		row := one(t, doc, "data-export", tc.key)
		if got := attr(row, "data-health"); got != tc.health {
			t.Errorf("export %s: health %q; want %q", tc.key, got, tc.health)
		}
		for cond, want := range map[string]string{"Valid": tc.valid, "Ready": tc.ready, "Conflict": tc.conflict} {
			if got := text(one(t, row, "data-condition", cond)); got != want {
				t.Errorf("export %s: %s shows %q; want %q", tc.key, cond, got, want)
			}
		}
		if !strings.Contains(text(row), tc.message) {
			t.Errorf("export %s: row %q does not show %q", tc.key, text(row), tc.message)
		}
	}

	podinfo := one(t, doc, "data-import", "test/podinfo")
	for _, want := range []string{"ClusterSetIP", "10.0.0.77", "http 9898/TCP"} {
		if !strings.Contains(text(podinfo), want) {
			t.Errorf("import test/podinfo: row %q does not show %q", text(podinfo), want)
		}
	}
	for cluster, want := range map[string]string{"east": "1 / 1 ready", "west": "(this cluster): 2 / 2 ready"} {
		if got := text(one(t, podinfo, "data-import-cluster", cluster)); !strings.Contains(got, want) {
			t.Errorf("import test/podinfo: cluster %s shows %q; want %q", cluster, got, want)
		}
	}
	if got := attr(podinfo, "data-health"); got != "ok" {
		t.Errorf("import test/podinfo: health %q; want ok", got)
	}
	db := one(t, doc, "data-import", "test/db")
	for _, want := range []string{"Headless", "none", "5432/TCP", "0 / 1 ready"} {
		if !strings.Contains(text(db), want) {
			t.Errorf("import test/db: row %q does not show %q", text(db), want)
		}
	}
	if got := attr(db, "data-health"); got != "warn" {
		t.Errorf("import test/db (no ready endpoint): health %q; want warn", got)
	}
}

// TestServerEmptyPageMCS: with no exports or imports, the page says so.
func TestServerEmptyPageMCS(t *testing.T) {
	doc, _ := servePage(t, status.NewModel())
	for id, want := range map[string]string{"no-exports": "No ServiceExports", "no-imports": "No ServiceImports"} {
		if got := text(byID(t, doc, id)); !strings.Contains(got, want) {
			t.Errorf("empty page: #%s says %q; want %q", id, got, want)
		}
	}
	if got := text(one(t, doc, "data-summary", "exports")); got != "0 exports" {
		t.Errorf("empty page: summary of exports %q; want 0 exports", got)
	}
}

// TestFromMCS: the status API's exports and imports are the MCS
// translation's plain data: conditions with their transition times, and
// per cluster of status.clusters the endpoints of the EndpointSlices that
// carry its multicluster.kubernetes.io/source-cluster label.
func TestFromMCS(t *testing.T) {
	since := metav1.NewTime(t0)
	exports := status.ExportsFrom([]mapper.ExportStatus{{Namespace: "test", Name: "hello", Conditions: []metav1.Condition{
		{Type: "Valid", Status: metav1.ConditionTrue, Reason: "Valid", LastTransitionTime: since},
		{Type: "Conflict", Status: metav1.ConditionTrue, Reason: "PortConflict", Message: "ports differ", LastTransitionTime: since},
	}}})
	wantExports := []status.Export{{Namespace: "test", Name: "hello", Conditions: []status.Condition{
		{Type: "Valid", Status: "True", Reason: "Valid", Since: t0},
		{Type: "Conflict", Status: "True", Reason: "PortConflict", Message: "ports differ", Since: t0},
	}}}
	if !reflect.DeepEqual(exports, wantExports) {
		t.Errorf("ExportsFrom = %+v; want %+v", exports, wantExports)
	}

	slice := func(ns, svc, cluster string, ready ...*bool) mapper.Object {
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svc + "-" + cluster,
			Labels: map[string]string{mcsv1beta1.LabelServiceName: svc, mcsv1beta1.LabelSourceCluster: cluster}}}
		for _, r := range ready {
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.1.2.3"},
				Conditions: discoveryv1.EndpointConditions{Ready: r}})
		}
		return es
	}
	objs := []mapper.Object{
		slice("test", "hello", "west", ptr.To(true), nil), // no condition: ready
		slice("test", "hello", "west", ptr.To(false)),     // a second slice of west
		slice("test", "hello", "east", ptr.To(false)),
		slice("other", "hello", "east", ptr.To(true)), // another namespace's import
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: mapper.DerivedServiceName("hello")}},
	}
	imports := status.ImportsFrom([]mapper.ImportStatus{{
		Namespace: "test", Name: "hello", Type: mcsv1beta1.ClusterSetIP, IPs: []string{"10.96.0.42"},
		Ports: []mcsv1beta1.ServicePort{{Name: "tcp", Protocol: corev1.ProtocolTCP, Port: 42}},
		Status: mcsv1beta1.ServiceImportStatus{
			Clusters:   []mcsv1beta1.ClusterStatus{{Cluster: "east"}, {Cluster: "west"}},
			Conditions: []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Ready", LastTransitionTime: since}},
		},
	}}, objs, "west")
	wantImports := []status.Import{{Namespace: "test", Name: "hello", Type: "ClusterSetIP", IPs: []string{"10.96.0.42"},
		Ports: []status.ImportPort{{Name: "tcp", Protocol: "TCP", Port: 42}},
		Clusters: []status.ImportCluster{
			{Cluster: "east", Endpoints: 1, ReadyEndpoints: 0},
			{Cluster: "west", Local: true, Endpoints: 3, ReadyEndpoints: 2},
		},
		Conditions: []status.Condition{{Type: "Ready", Status: "True", Reason: "Ready", Since: t0}},
	}}
	if !reflect.DeepEqual(imports, wantImports) {
		t.Errorf("ImportsFrom = %+v; want %+v", imports, wantImports)
	}
}
