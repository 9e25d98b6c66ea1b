package explain

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossmap/crossmap/edge"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
	mt "github.com/crossmap/crossmap/mapper/mappertest"
)

// world is a west cluster as the route role sees it: podinfo here, its
// mirrors from east and dev-alice, and the user's Mapping with the
// annotations given; the Mappings crossmap generates for it are added by
// translating it with mapper.Routes, as the route role would.
type world struct {
	snap   mapper.RouteSnapshot
	routes map[string]Route
}

func newWorld(annotations map[string]string, extra ...*ambv3.Mapping) *world {
	w := &world{}
	s := &w.snap
	s.DevHeader = "x-crossmap-cluster"
	s.Links = []mapper.LinkHealth{
		{Namespace: "crossmap-system", Name: "east", Cluster: "east", Mode: crossmapv1.ModeGateway, GatewayAlive: true, OriginTLS: "crossmap-origin-east"},
		{Namespace: "crossmap-system", Name: "dev-alice", Cluster: "dev-alice", Mode: crossmapv1.ModeGateway, GatewayAlive: true, OriginTLS: "crossmap-origin-dev-alice"},
	}
	s.Services = append(s.Services, mt.Service("test", "podinfo", mt.Port("http", 9898, 9898)))
	s.Slices = append(s.Slices, mt.Slice("test", "podinfo-1", "podinfo", discoveryv1.AddressTypeIPv4, mt.Endpoint("10.0.0.1", true), mt.SlicePort("http", 9898)))
	for _, c := range []string{"east", "dev-alice"} {
		s.Services = append(s.Services, mt.Service("test", "podinfo-"+c, mt.Port("http", 9898, 9898), mt.Labels(map[string]string{
			crossmapv1.LabelManagedBy: crossmapv1.ManagedBy, crossmapv1.LabelRole: crossmapv1.RoleMirror,
			crossmapv1.LabelLink: c, crossmapv1.LabelLinkNamespace: "crossmap-system",
			crossmapv1.LabelSourceNamespace: "test", crossmapv1.LabelSourceName: "podinfo",
		})))
		s.Slices = append(s.Slices, mt.Slice("test", "podinfo-"+c+"-1", "podinfo-"+c, discoveryv1.AddressTypeIPv4, mt.Endpoint("10.1.0.1", true), mt.SlicePort("http", 4143)))
	}
	s.Mappings = append(s.Mappings, mt.Mapping("test", "podinfo", "/podinfo/", "podinfo.test:9898", mt.Annotations(annotations)))
	s.Mappings = append(s.Mappings, extra...)
	w.translate()
	return w
}

// translate adds what mapper.Routes generates, and the routes /status
// would show.
func (w *world) translate() {
	w.snap.Mappings = slices.DeleteFunc(w.snap.Mappings, func(m *ambv3.Mapping) bool {
		return m.Labels[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy
	})
	w.routes = map[string]Route{}
	var generated []*ambv3.Mapping
	for _, r := range mapper.Routes(w.snap) {
		w.routes[r.Source.Namespace+"/"+r.Source.Name] = Route{Failover: r.Failover, Held: r.Held, Backends: r.Backends}
		for _, o := range r.Objects {
			if m, ok := o.(*ambv3.Mapping); ok {
				generated = append(generated, m)
			}
		}
	}
	w.snap.Mappings = append(w.snap.Mappings, generated...)
}

func (w *world) input() Input {
	return Input{Snapshot: w.snap, Cluster: "west", Routes: w.routes,
		Identities: map[string]string{"crossmap-system/east": "east.crossmap-gateway.svc.cluster.local", "crossmap-system/dev-alice": "dev-alice.crossmap-gateway.svc.cluster.local"}}
}

// with is m changed by f.
func with(m *ambv3.Mapping, f func(*ambv3.Mapping)) *ambv3.Mapping {
	f(m)
	return m
}

func host(ns, name, hostname string, mutate ...func(*ambv3.Host)) *ambv3.Host {
	h := &ambv3.Host{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: &ambv3.HostSpec{Hostname: hostname,
		RequestPolicy: &ambv3.RequestPolicy{Insecure: ambv3.InsecureRequestPolicy{Action: "Route"}}}}
	for _, f := range mutate {
		f(h)
	}
	return h
}

// shares sums the explained shares by cluster, and by Mapping.
func shares(e *Explanation) (byCluster, byMapping map[string]int) {
	byCluster, byMapping = map[string]int{}, map[string]int{}
	for _, g := range e.Groups {
		for _, b := range g.Backends {
			if b.Share > 0 {
				byCluster[b.Cluster] += b.Share
				byMapping[b.Mapping] += b.Share
			}
		}
	}
	return byCluster, byMapping
}

func reasons(e *Explanation) map[string]string {
	out := map[string]string{}
	for _, c := range e.NotMatched {
		out[c.Mapping] = c.Reason
	}
	return out
}

var split = map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted", "crossmap.io/dev-routes": "dev-alice"}

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		world   func() *world
		request Request
		answer  string
		// clusters are the shares by cluster; notMatched the reasons of
		// the Mappings that do not take the request.
		clusters   map[string]int
		unrouted   int
		notMatched map[string]string
		check      func(t *testing.T, e *Explanation)
	}{{
		name:     "the split, and the Mappings that do not match",
		request:  Request{Method: "GET", URL: "http://podinfo.example.com/podinfo/api/info"},
		answer:   AnswerRouted,
		clusters: map[string]int{"west": 50, "east": 50},
		world: func() *world {
			return newWorld(split,
				mt.Mapping("test", "other", "/other/", "other.test:80"),
				with(mt.Mapping("test", "elsewhere", "/podinfo/", "podinfo.test:9898"), func(m *ambv3.Mapping) { m.Spec.Hostname = "other.example.com" }),
				with(mt.Mapping("test", "posts", "/podinfo/", "podinfo.test:9898"), func(m *ambv3.Mapping) { m.Spec.Method = "POST" }),
				with(mt.Mapping("test", "canary", "/podinfo/", "podinfo.test:9898"), func(m *ambv3.Mapping) { m.Spec.Headers = map[string]string{"x-canary": "yes"} }),
				with(mt.Mapping("test", "tagged", "/podinfo/", "podinfo.test:9898"), func(m *ambv3.Mapping) { m.Spec.QueryParameters = map[string]string{"tag": "a"} }),
				mt.Mapping("test", "theirs", "/podinfo/", "podinfo.test:9898", mt.AmbassadorID("other")),
			)
		},
		notMatched: map[string]string{
			"test/podinfo-dev-alice-dev": ReasonHeaderMissing,
			"test/other":                 ReasonPrefixDiffers,
			"test/elsewhere":             ReasonHostDiffers,
			"test/posts":                 ReasonMethodDiffers,
			"test/canary":                ReasonHeaderMissing,
			"test/tagged":                ReasonQueryMissing,
			"test/theirs":                ReasonAmbassadorID,
		},
		check: func(t *testing.T, e *Explanation) {
			g := e.Groups[0]
			if g.Route != "test/podinfo" || g.Failover != "weighted" || g.Held {
				t.Errorf("group route %q failover %q held %v", g.Route, g.Failover, g.Held)
			}
			want := []DevRoute{{Cluster: "dev-alice", Header: "x-crossmap-cluster: dev-alice", Mapping: "test/podinfo-dev-alice-dev", Healthy: true}}
			if !slices.Equal(g.DevRoutes, want) {
				t.Errorf("dev routes %+v, want %+v", g.DevRoutes, want)
			}
			for _, b := range g.Backends {
				switch b.Cluster {
				case "east":
					if b.TLS == nil || b.TLS.Context != "crossmap-origin-east" || b.TLS.Identity != "east.crossmap-gateway.svc.cluster.local" || b.HostRewrite == "" {
						t.Errorf("east backend %+v: want TLS crossmap-origin-east with east's identity and a host rewrite", b)
					}
				case "west":
					if b.TLS != nil || b.Owner != mapper.OwnerUser || b.Healthy == nil || !*b.Healthy || b.ReadyEndpoints != 1 {
						t.Errorf("west backend %+v", b)
					}
				}
			}
			for _, c := range e.NotMatched {
				if c.Mapping == "test/podinfo-dev-alice-dev" && !strings.Contains(c.Message, "x-crossmap-cluster: dev-alice") {
					t.Errorf("dev route's reason %q does not name the header value that selects it", c.Message)
				}
			}
		},
	}, {
		name:     "the dev header selects the dev route",
		world:    func() *world { return newWorld(split) },
		request:  Request{Method: "GET", URL: "http://podinfo.example.com/podinfo/", Headers: []string{"X-Crossmap-Cluster: dev-alice"}},
		answer:   AnswerRouted,
		clusters: map[string]int{"dev-alice": 100},
		notMatched: map[string]string{
			"test/podinfo": ReasonEarlierRoute, "test/podinfo-east": ReasonEarlierRoute,
		},
		check: func(t *testing.T, e *Explanation) {
			if e.Groups[0].DevHeader != "x-crossmap-cluster: dev-alice" {
				t.Errorf("devHeader %q", e.Groups[0].DevHeader)
			}
			if d := e.Groups[0].DevRoutes; len(d) != 1 || !d[0].Selected || e.Groups[0].Route != "test/podinfo" {
				t.Errorf("route %q dev routes %+v: want test/podinfo's, selected by this request", e.Groups[0].Route, d)
			}
			for _, c := range e.NotMatched {
				if !strings.Contains(c.Message, "header matches are longer") {
					t.Errorf("%s: %q, want the longer header match named", c.Mapping, c.Message)
				}
			}
		},
	}, {
		name: "a dead gateway: east's share goes to west",
		world: func() *world {
			w := newWorld(split)
			w.snap.Links[0].GatewayAlive = false
			w.translate()
			return w
		},
		request:  Request{URL: "http://podinfo.example.com/podinfo/"},
		answer:   AnswerRouted,
		clusters: map[string]int{"west": 100},
		check: func(t *testing.T, e *Explanation) {
			for _, b := range e.Groups[0].Backends {
				if b.Cluster == "east" && (b.Share != 0 || b.Healthy == nil || *b.Healthy || b.Reason != "gateway of cluster east is dead") {
					t.Errorf("east backend %+v: want share 0, unhealthy, gateway dead", b)
				}
			}
		},
	}, {
		name: "a drill drains east: its share goes to west, and explain says why",
		world: func() *world {
			w := newWorld(split)
			w.snap.Links[0].Drained = true
			w.translate()
			return w
		},
		request:  Request{URL: "http://podinfo.example.com/podinfo/"},
		answer:   AnswerRouted,
		clusters: map[string]int{"west": 100},
		check: func(t *testing.T, e *Explanation) {
			for _, b := range e.Groups[0].Backends {
				if b.Cluster == "east" && (b.Share != 0 || b.Healthy == nil || *b.Healthy || b.Reason != "cluster east is drained by a drill") {
					t.Errorf("east backend %+v: want share 0, unhealthy, drained by a drill", b)
				}
			}
		},
	}, {
		name: "precedence wins",
		world: func() *world {
			return newWorld(split, with(mt.Mapping("test", "first", "/podinfo/", "podinfo.test:9898"), func(m *ambv3.Mapping) { m.Spec.Precedence = new(int); *m.Spec.Precedence = 10 }))
		},
		request:    Request{URL: "http://podinfo.example.com/podinfo/"},
		answer:     AnswerRouted,
		clusters:   map[string]int{"west": 100},
		notMatched: map[string]string{"test/podinfo": ReasonEarlierRoute, "test/podinfo-east": ReasonEarlierRoute},
		check: func(t *testing.T, e *Explanation) {
			if e.Groups[0].Name != "test/first" {
				t.Errorf("group %v, want test/first's", e.Groups[0].Mappings)
			}
			for _, c := range e.NotMatched {
				if c.Mapping == "test/podinfo" && !strings.Contains(c.Message, "precedence 10 beats 0") {
					t.Errorf("%q", c.Message)
				}
			}
		},
	}, {
		name: "weights under 100 leave draws to the next route",
		world: func() *world {
			w := newWorld(nil,
				mt.Mapping("test", "a", "/api/", "podinfo.test:9898", mt.Weight(30)),
				mt.Mapping("test", "b", "/api/", "podinfo-east.test:9898", mt.Weight(30)),
				mt.Mapping("test", "root", "/", "podinfo-dev-alice.test:9898"))
			return w
		},
		request:  Request{URL: "http://podinfo.example.com/api/x"},
		answer:   AnswerRouted,
		clusters: map[string]int{"west": 30, "east": 30, "dev-alice": 40},
		check: func(t *testing.T, e *Explanation) {
			if len(e.Groups) != 2 || e.Groups[1].Name != "test/root" || e.Groups[1].Share != 40 {
				t.Errorf("groups %+v: want the /api/ group, then test/root with 40", e.Groups)
			}
		},
	}, {
		name: "weights under 100 and nothing after: the rest is a 404",
		world: func() *world {
			return newWorld(nil, mt.Mapping("test", "a", "/api/", "podinfo.test:9898", mt.Weight(30)), mt.Mapping("test", "b", "/api/", "podinfo-east.test:9898", mt.Weight(30)))
		},
		request:  Request{URL: "http://podinfo.example.com/api/x"},
		answer:   AnswerRouted,
		clusters: map[string]int{"west": 30, "east": 30},
		unrouted: 40,
	}, {
		name:     "no route",
		world:    func() *world { return newWorld(split) },
		request:  Request{URL: "http://podinfo.example.com/nothing/"},
		answer:   AnswerNoRoute,
		clusters: map[string]int{},
		unrouted: 100,
		notMatched: map[string]string{
			"test/podinfo": ReasonPrefixDiffers, "test/podinfo-east": ReasonPrefixDiffers, "test/podinfo-dev-alice-dev": ReasonPrefixDiffers,
		},
	}, {
		name: "a Host that rejects cleartext",
		world: func() *world {
			w := newWorld(split)
			w.snap.Hosts = []*ambv3.Host{host("test", "edge", "*", func(h *ambv3.Host) { h.Spec.RequestPolicy.Insecure.Action = "Reject" })}
			return w
		},
		request:  Request{URL: "http://podinfo.example.com/podinfo/"},
		answer:   AnswerRejected,
		clusters: map[string]int{},
		unrouted: 100,
		notMatched: map[string]string{
			"test/podinfo": ReasonCleartext, "test/podinfo-east": ReasonCleartext, "test/podinfo-dev-alice-dev": ReasonHeaderMissing,
		},
	}, {
		name: "over https the same Host routes",
		world: func() *world {
			w := newWorld(split)
			w.snap.Hosts = []*ambv3.Host{host("test", "edge", "*", func(h *ambv3.Host) { h.Spec.RequestPolicy.Insecure.Action = "Reject" })}
			return w
		},
		request:  Request{URL: "https://podinfo.example.com/podinfo/"},
		answer:   AnswerRouted,
		clusters: map[string]int{"west": 50, "east": 50},
	}, {
		name: "a Host whose mappingSelector the Mapping does not meet",
		world: func() *world {
			w := newWorld(nil, with(mt.Mapping("test", "unlabelled", "/x/", "podinfo.test:9898"), func(m *ambv3.Mapping) { m.Spec.Hostname = "" }))
			w.snap.Hosts = []*ambv3.Host{host("test", "edge", "*", func(h *ambv3.Host) {
				h.Spec.MappingSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "edge"}}
			})}
			return w
		},
		request:    Request{URL: "http://podinfo.example.com/x/"},
		answer:     AnswerNoRoute,
		clusters:   map[string]int{},
		unrouted:   100,
		notMatched: map[string]string{"test/unlabelled": ReasonNotBound, "test/podinfo": ReasonNotBound},
	}, {
		// Regression: Check ran on the nil regex of a route that did not
		// compile, and panicked.
		name: "a prefix_regex Envoy cannot compile",
		world: func() *world {
			regex := true
			return newWorld(nil, with(mt.Mapping("test", "broken", "/podinfo/(", "podinfo.test:9898"), func(m *ambv3.Mapping) { m.Spec.PrefixRegex = &regex }))
		},
		request:    Request{URL: "http://podinfo.example.com/podinfo/"},
		answer:     AnswerRouted,
		clusters:   map[string]int{"west": 100},
		notMatched: map[string]string{"test/broken": ReasonRejected},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			w := tc.world()
			e, err := Explain(w.input(), tc.request)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", e.Summary)
			if e.Answer != tc.answer {
				t.Errorf("answer %q, want %q", e.Answer, tc.answer)
			}
			clusters, _ := shares(e)
			if fmt.Sprint(clusters) != fmt.Sprint(tc.clusters) || e.Unrouted != tc.unrouted {
				t.Errorf("shares %v unrouted %d, want %v and %d", clusters, e.Unrouted, tc.clusters, tc.unrouted)
			}
			got := reasons(e)
			for m, want := range tc.notMatched {
				if got[m] != want {
					t.Errorf("%s: reason %q, want %q (all: %v)", m, got[m], want, e.NotMatched)
				}
			}
			for _, c := range e.NotMatched {
				if c.Message == "" {
					t.Errorf("%s: %s without a message", c.Mapping, c.Reason)
				}
			}
			if tc.check != nil {
				tc.check(t, e)
			}
		})
	}
}

func TestExplainBadInput(t *testing.T) {
	w := newWorld(split)
	w.snap.Hosts = []*ambv3.Host{host("test", "edge", "podinfo.example.com")}
	for _, tc := range []struct {
		request Request
		want    error
		message string
	}{
		{Request{URL: "http://other.example.com/podinfo/"}, ErrNoHost, `no Host's hostname matches "other.example.com" (Hosts: test/edge (podinfo.example.com))`},
		{Request{URL: "http://podinfo.example.com/", Headers: []string{"x-crossmap-cluster dev-alice"}}, ErrBadRequest, `header "x-crossmap-cluster dev-alice": want "name: value"`},
		{Request{URL: "http://podinfo.example.com/", Headers: []string{"bad header: x"}}, ErrBadRequest, `"bad header" is not a valid header name`},
		{Request{URL: "http://podinfo.example.com/", Headers: []string{"Host: a"}}, ErrBadRequest, "put it in the URL"},
		{Request{URL: "podinfo.example.com/podinfo/"}, ErrBadRequest, "the scheme must be http or https"},
		{Request{URL: ""}, ErrBadRequest, "no URL"},
		{Request{Method: "GE T", URL: "http://podinfo.example.com/"}, ErrBadRequest, `method "GE T" is not an HTTP method`},
	} {
		_, err := Explain(w.input(), tc.request)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
			t.Errorf("%+v: %v, want %v containing %q", tc.request, err, tc.want, tc.message)
		}
	}
}

// TestExplainAgreesWithEdge: for every one of Envoy's draws, the dev edge
// built from the same objects routes the request to the Mapping explain
// gives that draw, so that the shares agree exactly.
func TestExplainAgreesWithEdge(t *testing.T) {
	worlds := map[string]*world{
		"split":  newWorld(split),
		"canary": newWorld(split, mt.Mapping("test", "canary", "/podinfo/", "podinfo.test:9898", mt.Weight(20))),
		"under 100": newWorld(nil,
			mt.Mapping("test", "a", "/api/", "podinfo.test:9898", mt.Weight(30)),
			mt.Mapping("test", "b", "/api/", "podinfo-east.test:9898", mt.Weight(25)),
			mt.Mapping("test", "root", "/", "podinfo-dev-alice.test:9898")),
	}
	dead := newWorld(split)
	dead.snap.Links[0].GatewayAlive = false
	dead.translate()
	worlds["dead gateway"] = dead
	requests := []Request{
		{URL: "http://podinfo.example.com/podinfo/"},
		{URL: "http://podinfo.example.com/podinfo/", Headers: []string{"x-crossmap-cluster: dev-alice"}},
		{URL: "http://podinfo.example.com/api/x"},
		{URL: "http://podinfo.example.com/nothing"},
	}
	for name, w := range worlds {
		tbl, _ := edge.Build(edge.Input{Mappings: w.snap.Mappings, Hosts: w.snap.Hosts, Services: w.snap.Services, Slices: w.snap.Slices})
		for _, r := range requests {
			e, err := Explain(w.input(), r)
			if err != nil {
				t.Fatal(err)
			}
			_, want := shares(e)
			got := map[string]int{}
			hr := httptest.NewRequest(http.MethodGet, r.URL, nil)
			for _, hl := range r.Headers {
				k, v, _ := strings.Cut(hl, ": ")
				hr.Header.Set(k, v)
			}
			for d := range 100 {
				if target, ok := tbl.Route(hr, d); ok {
					got[target.Mapping]++
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s, %v: the edge routes %v, explain says %v", name, r, got, want)
			}
		}
	}
}

// TestSampleURL: the page's link asks about a request the Mapping takes.
func TestSampleURL(t *testing.T) {
	regex := true
	for _, tc := range []struct {
		name  string
		hosts []*ambv3.Host
		m     *ambv3.Mapping
		want  string
	}{
		{"no Host", nil, mt.Mapping("test", "podinfo", "/podinfo/", "podinfo.test:9898"), "http://example.com/podinfo/"},
		{"a Host's name", []*ambv3.Host{host("test", "any", "*"), host("test", "edge", "podinfo.example.com")},
			mt.Mapping("test", "podinfo", "/podinfo/", "podinfo.test:9898"), "http://podinfo.example.com/podinfo/"},
		{"an exact hostname", nil, with(mt.Mapping("test", "podinfo", "/p/", "podinfo.test:9898"), func(m *ambv3.Mapping) { m.Spec.Hostname = "a.example.org" }), "http://a.example.org/p/"},
		{"a glob", nil, with(mt.Mapping("test", "podinfo", "/p/", "podinfo.test:9898"), func(m *ambv3.Mapping) { m.Spec.Hostname = "*.example.org" }), "http://www.example.org/p/"},
		{"a regex", nil, with(mt.Mapping("test", "podinfo", "^/p/.*$", "podinfo.test:9898"), func(m *ambv3.Mapping) { m.Spec.PrefixRegex = &regex }), "http://example.com/"},
	} {
		w := newWorld(nil)
		w.snap.Mappings = []*ambv3.Mapping{tc.m}
		w.snap.Hosts = tc.hosts
		got := SampleURL(w.input(), tc.m)
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
		if tc.m.Spec.PrefixRegex != nil {
			continue
		}
		e, err := Explain(w.input(), Request{URL: got})
		if err != nil || len(e.Groups) != 1 || e.Groups[0].Name != "test/podinfo" {
			t.Errorf("%s: explaining %s: %v %+v", tc.name, got, err, e)
		}
	}
}
