package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http/httptest"
	"strings"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/explain"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
	mt "github.com/crossmap/crossmap/mapper/mappertest"
)

// explainAPI serves the status API's own handlers over a model whose
// routing snapshot has podinfo split with east (the Mappings mapper.Routes
// generates for it) and a dev route to east.
func explainAPI(t *testing.T) *httptest.Server {
	t.Helper()
	snap := mapper.RouteSnapshot{
		DevHeader: "x-crossmap-cluster",
		Links:     []mapper.LinkHealth{{Namespace: "crossmap-system", Name: "east", Cluster: "east", Mode: crossmapv1.ModeGateway, GatewayAlive: true, OriginTLS: "crossmap-origin-east"}},
		Mappings: []*ambv3.Mapping{mt.Mapping("test", "podinfo", "/podinfo/", "podinfo.test:9898",
			mt.Annotations(map[string]string{"crossmap.io/split": "east=50", "crossmap.io/dev-routes": "east"}))},
		Services: []*corev1.Service{
			mt.Service("test", "podinfo", mt.Port("http", 9898, 9898)),
			mt.Service("test", "podinfo-east", mt.Port("http", 9898, 9898), mt.Labels(map[string]string{
				crossmapv1.LabelManagedBy: crossmapv1.ManagedBy, crossmapv1.LabelRole: crossmapv1.RoleMirror,
				crossmapv1.LabelLink: "east", crossmapv1.LabelLinkNamespace: "crossmap-system",
				crossmapv1.LabelSourceNamespace: "test", crossmapv1.LabelSourceName: "podinfo"})),
		},
		Slices: []*discoveryv1.EndpointSlice{
			mt.Slice("test", "podinfo-1", "podinfo", discoveryv1.AddressTypeIPv4, mt.Endpoint("10.0.0.1", true)),
			mt.Slice("test", "podinfo-east-1", "podinfo-east", discoveryv1.AddressTypeIPv4, mt.Endpoint("10.1.0.1", true)),
		},
	}
	m := status.NewModel()
	var views []status.Route
	for _, r := range mapper.Routes(snap) {
		for _, o := range r.Objects {
			if gm, ok := o.(*ambv3.Mapping); ok {
				snap.Mappings = append(snap.Mappings, gm)
			}
		}
		views = append(views, status.Route{Namespace: r.Source.Namespace, Name: r.Source.Name, Failover: r.Failover, Backends: r.Backends})
	}
	m.SetRoutes(views)
	m.SetRouting(explain.Input{Snapshot: snap, Cluster: "west", Identities: map[string]string{"crossmap-system/east": "east.example"}})
	srv := httptest.NewServer((&status.Server{Model: m}).Handler())
	t.Cleanup(srv.Close)
	return srv
}

// TestRunExplain: flags before and after the request, the table and the
// JSON, and the API's error for bad input.
func TestRunExplain(t *testing.T) {
	srv := explainAPI(t)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"explain", "GET", "http://podinfo.example.com/podinfo/api/info", "--server", srv.URL}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	table := stdout.String()
	t.Logf("\n%s", table)
	for _, want := range []string{
		"Answer:  routed: GET http://podinfo.example.com/podinfo/api/info: the group of test/podinfo",
		"Group of test/podinfo: 100% of these requests",
		"test/podinfo-east  crossmap  east",
		"50%",
		"east.example (crossmap-origin-east)",
		"dev route: x-crossmap-cluster: east -> east (test/podinfo-east-dev), healthy yes",
		"test/podinfo-east-dev  HeaderMissing",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q", want)
		}
	}

	stdout.Reset()
	if err := run(t.Context(), []string{"explain", "--server", srv.URL, "-o", "json", "http://podinfo.example.com/podinfo/", "-H", "x-crossmap-cluster: east"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	var e explain.Explanation
	if err := json.Unmarshal(stdout.Bytes(), &e); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout.String())
	}
	if len(e.Groups) != 1 || e.Groups[0].DevHeader != "x-crossmap-cluster: east" || e.Groups[0].Backends[0].Cluster != "east" || e.Groups[0].Backends[0].Share != 100 {
		t.Errorf("with the dev header: %s", stdout.String())
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"http://podinfo.example.com/", "-H", "x-crossmap-cluster"}, `header "x-crossmap-cluster": want "name: value"`},
		{[]string{"GET"}, `scheme must be http or https`},
		{[]string{}, "want [METHOD] URL"},
		{[]string{"GET", "http://a/", "extra"}, "want [METHOD] URL"},
	} {
		err := run(t.Context(), append([]string{"explain", "--server", srv.URL}, tc.args...), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("explain %q: %v; want an error with %q", tc.args, err, tc.want)
		}
	}
	stderr.Reset()
	if err := run(t.Context(), []string{"explain", "--help"}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stderr.String(), "Usage: crossmap explain") {
		t.Errorf("--help: %v %s", err, stderr.String())
	}
}
