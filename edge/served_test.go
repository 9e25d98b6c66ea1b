package edge

import (
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/crossmap/crossmap/emissary/fixture"
)

// Tests of add_response_headers and of the per-cluster count of answers
// (issue 16, served-by).

// servedBackends starts one loopback backend per name, each answering
// with its name in the JSON body and a header X-Upstream: <name>, and
// returns the Services and EndpointSlices that point at them.
func servedBackends(t *testing.T, names ...string) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	t.Helper()
	var svcs []*corev1.Service
	var eps []*discoveryv1.EndpointSlice
	for _, name := range names {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		echo := echoHandler(name, 0, false)
		srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Upstream", name)
			echo.ServeHTTP(w, r)
		})}}
		srv.Start()
		t.Cleanup(srv.Close)
		addr, port := splitAddr(t, l.Addr())
		svcs = append(svcs, serviceObj(name))
		eps = append(eps, sliceObj(name, name, port, endpoint{addr: addr}))
	}
	return svcs, eps
}

func backendOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e echo
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("%d %q: %v", w.Code, w.Body, err)
	}
	return e.Backend
}

// TestProxyResponseHeaders: add_response_headers as Envoy adds
// response_headers_to_add (v3route.py, generate_headers_to_add): appended
// to the upstream's own values unless append is false, which replaces
// them.
func TestProxyResponseHeaders(t *testing.T) {
	svcs, eps := servedBackends(t, "a")
	tbl, problems := Build(Input{
		Mappings: []*ambv3.Mapping{fixture.Mapping("m", "/", "a", fixture.Spec(func(s *ambv3.MappingSpec) {
			s.AddResponseHeaders = &map[string]ambv3.AddedHeader{
				"x-env":      {Value: "dev"},
				"x-upstream": {Value: "edge", Append: ptr(false)},
			}
		}))},
		Services: svcs, Slices: eps,
	})
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	p := NewProxy()
	p.SetTable(tbl)
	w := get(p, "example.com", "/")
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if got := w.Header().Values("X-Env"); !slices.Equal(got, []string{"dev"}) {
		t.Errorf("X-Env = %q, want [dev]", got)
	}
	if got := w.Header().Values("X-Upstream"); !slices.Equal(got, []string{"edge"}) {
		t.Errorf("X-Upstream = %q, want [edge]: append false replaces the upstream's value", got)
	}
}

// TestProxyResponseHeadersGroupWide: Emissary merges add_response_headers
// over a weighted group and adds them on every route of it
// (irhttpmappinggroup.py, finalize), so the one member that sets a header
// sets it for the others' answers too. This is why crossmap cannot name
// the answering cluster with a header on its weighted siblings.
func TestProxyResponseHeadersGroupWide(t *testing.T) {
	svcs, eps := servedBackends(t, "local", "east")
	sibling := fixture.Mapping("m-east", "/", "east", fixture.Weight(50), fixture.Labels(TargetClusterLabel, "east"), fixture.Spec(func(s *ambv3.MappingSpec) {
		s.AddResponseHeaders = &map[string]ambv3.AddedHeader{"x-crossmap-cluster": {Value: "east"}}
	}))
	tbl, problems := Build(Input{Mappings: []*ambv3.Mapping{fixture.Mapping("m", "/", "local"), sibling}, Services: svcs, Slices: eps})
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	draw := 0
	p := NewProxy(WithDraw(func() int { return draw }))
	p.SetTable(tbl)
	for _, d := range []int{0, 99} {
		draw = d
		w := get(p, "example.com", "/")
		if got := w.Header().Get("X-Crossmap-Cluster"); got != "east" {
			t.Errorf("draw %d: answered by %s with x-crossmap-cluster %q, want east on every member's answer", d, backendOf(t, w), got)
		}
	}
}

// TestProxyServedByCluster: answers are counted by the cluster whose
// backend gave them: the route's target-cluster label, LocalCluster
// without one. A request no backend answered is not counted.
func TestProxyServedByCluster(t *testing.T) {
	svcs, eps := servedBackends(t, "local", "east")
	svcs = append(svcs, serviceObj("gone")) // no endpoints: 503
	tbl, problems := Build(Input{
		Mappings: []*ambv3.Mapping{
			fixture.Mapping("m", "/", "local"),
			fixture.Mapping("m-east", "/", "east", fixture.Weight(30), fixture.Labels(TargetClusterLabel, "east")),
			fixture.Mapping("gone", "/gone/", "gone", fixture.Labels(TargetClusterLabel, "west")),
		},
		Services: svcs, Slices: eps,
	})
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	draw := 0
	p := NewProxy(WithDraw(func() int { return draw }))
	p.SetTable(tbl)
	want := map[string]uint64{}
	for i := range 10 {
		draw = i * 10 // 0..29 east, the rest local
		w := get(p, "example.com", "/")
		b := backendOf(t, w)
		if b == "local" {
			want[LocalCluster]++
		} else {
			want[b]++
		}
	}
	if w := get(p, "example.com", "/gone/"); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("/gone/: status %d, want 503", w.Code)
	}
	if got := p.Served(); !maps.Equal(got, want) || want["east"] != 3 {
		t.Errorf("Served() = %v, want %v (3 east)", got, want)
	}
}
