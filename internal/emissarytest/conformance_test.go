package emissarytest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
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
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/edge"
	"github.com/crossmap/crossmap/emissary/fixture"
	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/emissarytest"
	"github.com/crossmap/crossmap/internal/pki"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
	"github.com/crossmap/crossmap/mapper/mappertest"
)

// The conformance test: Emissary's own compiler as the judge of what
// crossmap writes and reports. Each scenario is a cluster as the route role
// sees it; the test runs the route role's reconcile on it
// (controller.RouteViews), compiles the Mappings the cluster then holds
// (the user's, crossmap's siblings and dev routes, any others) with its
// Hosts and TLSContexts, runs the reconcile again on that cluster, as the
// write wakes the route role, and serves its status as the status API does.
// It checks that
//
//   - Emissary reports no error;
//   - the second reconcile writes nothing: the compiled objects are the
//     ones in force;
//   - every member of the Emissary group of every annotated Mapping, and
//     of every dev route, has the share /status/routes reports for it
//     (reportedShares), the whole group included, whoever wrote it;
//   - the dev edge, built from the same objects, has the same routes in
//     every virtual host, in the same order, with the same match, backend,
//     rewrites, TLS origination and cumulative weight.

const ns = "test"

// remote is a linked cluster that exports the Service podinfo.
type remote struct {
	name     string
	flat     bool // flat mode: no gateway, no host_rewrite
	dead     bool // the gateway fails its probe
	notReady bool // the mirror has no ready endpoint
	mtls     bool // generated Mappings originate TLS with the Link's TLSContext
}

// scenario is one cluster: the Mapping podinfo (prefix /podinfo/, service
// podinfo.test:9898) with the annotations ann, changed by spec; the linked
// clusters; and whatever else the cluster has.
type scenario struct {
	name string
	ann  map[string]string
	// spec changes the user's Mapping (match fields, labels...).
	spec      func(m *ambv3.Mapping)
	localDown bool // the local podinfo has no ready endpoint
	remotes   []remote
	// others are more Mappings in the cluster (a canary, a sibling without
	// weight...); each gets a ready Service of its own.
	others []*ambv3.Mapping
	hosts  []*ambv3.Host
	// reasons are the Problems mapper must report, by reason; a scenario
	// that gets others did not test what it says.
	reasons []string
	// shared is true when Mappings crossmap does not own take a share of
	// the group once crossmap's routes are written: /status then reports
	// a SharedGroup problem as well.
	shared bool
	// generated is how many Mappings mapper must write.
	generated int
	// servedBy is the served-by header (RouteSnapshot.ServedByHeader).
	servedBy string
}

// Issue 12 lists what the scenarios must cover: a split, several clusters, a
// canary with its own weight, unweighted siblings, two annotated Mappings in
// one group, prefix_regex, headers and regex headers, query parameters,
// method, precedence, Host binding through mappingSelector, every failover
// state, dev routes and TLS origination.
func scenarios() []scenario {
	split := func(s string) map[string]string { return map[string]string{"crossmap.io/split": s} }
	withAnn := func(a map[string]string, k, v string) map[string]string {
		a = maps.Clone(a)
		a[k] = v
		return a
	}
	eastWest := []remote{{name: "east"}, {name: "west"}}
	out := []scenario{
		{name: "split", ann: split("east=50"), remotes: []remote{{name: "east"}}, generated: 1},
		{
			// The siblings live with the Mapping, the mirrors with the
			// Service.
			name: "Mapping in another namespace than its Service", ann: split("east=50"), remotes: []remote{{name: "east"}}, generated: 1,
			spec: func(m *ambv3.Mapping) { m.Namespace = "shop" },
		},
		{name: "split all remote", ann: split("east=100"), remotes: []remote{{name: "east"}}, generated: 1},
		{name: "several clusters", ann: split("east=30,west=20,north=5"),
			remotes: []remote{{name: "east"}, {name: "west", flat: true}, {name: "north"}}, generated: 3},
		{name: "canary with its own weight", ann: split("east=50"), remotes: []remote{{name: "east"}},
			others: []*ambv3.Mapping{canary(20)}, shared: true, generated: 1},
		{name: "canary overflows the split", ann: split("east=50"), remotes: []remote{{name: "east"}},
			others: []*ambv3.Mapping{canary(60)}, reasons: []string{mapper.ReasonInvalidWeights}, shared: true, generated: 1},
		{name: "unweighted sibling", ann: split("east=50"), remotes: []remote{{name: "east"}},
			others: []*ambv3.Mapping{mappertest.Mapping(ns, "podinfo-v2", "/podinfo/", "podinfo-v2.test:9898")}, shared: true, generated: 1},
		{name: "two annotated Mappings in one group", ann: split("east=50"), remotes: []remote{{name: "east"}},
			others: []*ambv3.Mapping{mappertest.Mapping(ns, "podinfo-zz", "/podinfo/", "podinfo-zz.test:9898",
				mappertest.Annotations(split("east=20")))},
			reasons: []string{mapper.ReasonAmbiguousGroup}, shared: true, generated: 1},
		{name: "prefix_regex", ann: split("east=40"), remotes: []remote{{name: "east"}}, generated: 1,
			spec: func(m *ambv3.Mapping) {
				m.Spec.Prefix, m.Spec.PrefixRegex = "/podinfo/(api|ui)/.*", ptr.To(true)
			}},
		{name: "headers and regex headers", ann: split("east=25"), remotes: []remote{{name: "east"}}, generated: 1,
			spec: func(m *ambv3.Mapping) {
				m.Spec.Headers = map[string]string{"x-team": "blue", "x-canary": "yes"}
				m.Spec.RegexHeaders = map[string]string{"x-user": "al[a-z]+"}
			}},
		{name: "query parameters", ann: split("east=25"), remotes: []remote{{name: "east"}}, generated: 1,
			spec: func(m *ambv3.Mapping) {
				m.Spec.QueryParameters = map[string]string{"debug": "1"}
				m.Spec.RegexQueryParameters = map[string]string{"user": "[0-9]+"}
			}},
		{name: "method", ann: split("east=50"), remotes: []remote{{name: "east"}}, generated: 1,
			spec: func(m *ambv3.Mapping) { m.Spec.Method = "POST" }},
		{name: "hostname glob", ann: split("east=50"), remotes: []remote{{name: "east"}}, generated: 1,
			spec: func(m *ambv3.Mapping) { m.Spec.Hostname = "*.example.com" }},
		{
			// Two groups with one match: the higher precedence comes
			// first, and the other gets what the first's routes leave,
			// which is nothing.
			name: "precedence", ann: split("east=50"), remotes: []remote{{name: "east"}}, generated: 1,
			spec:   func(m *ambv3.Mapping) { m.Spec.Precedence = ptr.To(10) },
			others: []*ambv3.Mapping{mappertest.Mapping(ns, "podinfo-legacy", "/podinfo/", "podinfo-legacy.test:9898")},
		},
		{
			// A Mapping without hostname binds to the Hosts whose
			// mappingSelector its labels meet; its siblings carry its
			// labels, so they bind there too, and not to the other Host.
			name: "Host binding through mappingSelector", ann: split("east=50"), remotes: []remote{{name: "east"}}, generated: 1,
			spec: func(m *ambv3.Mapping) {
				m.Spec.Hostname = ""
				m.Labels = map[string]string{"team": "blue"}
			},
			hosts: []*ambv3.Host{
				fixture.Host("podinfo", "podinfo.example.com", map[string]string{"team": "blue"}),
				fixture.Host("other", "other.example.com", map[string]string{"team": "green"}),
			},
			others: []*ambv3.Mapping{with(mappertest.Mapping(ns, "green", "/green/", "green.test:9898"),
				func(m *ambv3.Mapping) { m.Spec.Hostname, m.Labels = "", map[string]string{"team": "green"} })},
		},
		{name: "dev routes", ann: withAnn(split("east=50"), "crossmap.io/dev-routes", "dev-alice,dev-bob"),
			remotes: []remote{{name: "east"}, {name: "dev-alice"}, {name: "dev-bob", flat: true}}, generated: 3},
		{name: "dev routes alone", ann: map[string]string{"crossmap.io/dev-routes": "dev-alice"},
			remotes: []remote{{name: "dev-alice"}}, generated: 1},
		{name: "TLS origination", ann: split("east=30,north=20"),
			remotes: []remote{{name: "east", mtls: true}, {name: "north", mtls: true}}, generated: 2},
		{name: "TLS origination with dev route", ann: withAnn(split("east=50"), "crossmap.io/dev-routes", "dev-alice"),
			remotes: []remote{{name: "east", mtls: true}, {name: "dev-alice", mtls: true}}, generated: 2},
		{name: "add_request_headers and host_rewrite", ann: split("east=50"), remotes: []remote{{name: "east"}}, generated: 1,
			spec: func(m *ambv3.Mapping) {
				m.Spec.AddRequestHeaders = &map[string]ambv3.AddedHeader{"x-from": {Value: "west"}}
				m.Spec.Rewrite = ptr.To("/api/")
			}},
	}
	// Served-by (issue 16): the dev route names its cluster in a response
	// header; the weighted sibling cannot, since Emissary gives every route
	// of a group the union of its members' add_response_headers, and adds
	// none, so the local backend's answers carry no header.
	out = append(out, scenario{name: "served-by header", servedBy: "x-crossmap-cluster",
		ann:     withAnn(split("east=50"), "crossmap.io/dev-routes", "west"),
		remotes: eastWest, generated: 2})
	// Every failover state, for every policy: east=30 and west=10; for
	// priority the tiers local, east, west.
	for _, policy := range []string{"weighted", "local-first", "priority"} {
		for _, st := range []struct {
			name      string
			localDown bool
			remotes   []remote
		}{
			{"healthy", false, eastWest},
			{"remote unhealthy (gateway dead)", false, []remote{{name: "east", dead: true}, {name: "west"}}},
			{"remote unhealthy (no endpoints)", false, []remote{{name: "east"}, {name: "west", notReady: true}}},
			{"local unhealthy", true, eastWest},
			{"nothing healthy", true, []remote{{name: "east", dead: true}, {name: "west", notReady: true}}},
		} {
			ann := withAnn(split("east=30,west=10"), "crossmap.io/failover", policy)
			if policy == "priority" {
				ann = withAnn(ann, "crossmap.io/priority", "local,east,west")
			}
			out = append(out, scenario{
				name:      "failover " + policy + " " + st.name,
				ann:       ann,
				localDown: st.localDown, remotes: st.remotes, generated: 2,
			})
		}
	}
	return out
}

func canary(weight int) *ambv3.Mapping {
	return mappertest.Mapping(ns, "podinfo-canary", "/podinfo/", "podinfo-canary.test:9898", mappertest.Weight(weight))
}

func with(m *ambv3.Mapping, f func(*ambv3.Mapping)) *ambv3.Mapping {
	f(m)
	return m
}

// service is a Service ns/name with port 9898 and one endpoint, ready or
// not; labels make it a mirror.
func service(name string, ready bool, labels map[string]string) (*corev1.Service, *discoveryv1.EndpointSlice) {
	svc := mappertest.Service(ns, name, mappertest.Port("http", 9898, 9898), mappertest.Labels(labels))
	es := mappertest.Slice(ns, name+"-abcde", name, discoveryv1.AddressTypeIPv4,
		mappertest.Endpoint("10.244.0.10", ready), mappertest.SlicePort("http", 9898))
	return svc, es
}

// cluster is what the scenario's cluster holds before crossmap routes.
type cluster struct {
	snap        mapper.RouteSnapshot
	tlsContexts []*ambv3.TLSContext
	secrets     []*corev1.Secret
}

func (sc scenario) cluster(t *testing.T) cluster {
	t.Helper()
	user := mappertest.Mapping(ns, "podinfo", "/podinfo/", "podinfo.test:9898",
		mappertest.UID("0b7e4c1a-0000-4000-8000-000000000001"), mappertest.Annotations(sc.ann))
	if sc.spec != nil {
		sc.spec(user)
	}
	c := cluster{snap: mapper.RouteSnapshot{DevHeader: "x-crossmap-cluster", ServedByHeader: sc.servedBy, Hosts: sc.hosts}}
	c.snap.Mappings = append([]*ambv3.Mapping{user}, sc.others...)
	add := func(name string, ready bool, labels map[string]string) {
		svc, es := service(name, ready, labels)
		c.snap.Services = append(c.snap.Services, svc)
		c.snap.Slices = append(c.snap.Slices, es)
	}
	// The remotes export podinfo, and the Service of any other annotated
	// Mapping.
	exported := []string{"podinfo"}
	add("podinfo", !sc.localDown, nil)
	for _, o := range sc.others {
		ref, err := ingress.ParseService(o.Spec.Service, o.Namespace)
		if err != nil {
			t.Fatalf("scenario %s: Mapping %s: %v", sc.name, o.Name, err)
		}
		add(ref.Name, true, nil)
		if ingress.Annotated(o.Annotations) {
			exported = append(exported, ref.Name)
		}
	}
	for _, r := range sc.remotes {
		for _, svc := range exported {
			add(mapper.MirrorName(svc, r.name), !r.notReady, map[string]string{
				crossmapv1.LabelManagedBy:       crossmapv1.ManagedBy,
				crossmapv1.LabelRole:            crossmapv1.RoleMirror,
				crossmapv1.LabelLink:            r.name,
				crossmapv1.LabelLinkNamespace:   "crossmap-system",
				crossmapv1.LabelSourceCluster:   r.name,
				crossmapv1.LabelSourceNamespace: ns,
				crossmapv1.LabelSourceName:      svc,
			})
		}
		link := mapper.LinkHealth{Namespace: "crossmap-system", Name: r.name, Cluster: r.name,
			Mode: crossmapv1.ModeGateway, GatewayAlive: !r.dead}
		if r.flat {
			link.Mode = crossmapv1.ModeFlat
		}
		if r.mtls {
			link.OriginTLS = ingress.OriginContextName(r.name)
			c.tlsContexts = append(c.tlsContexts, ingress.OriginTLSContext(
				metav1.ObjectMeta{Namespace: "crossmap-system", Name: link.OriginTLS}, ingress.GatewayIdentity(r.name), nil))
		}
		c.snap.Links = append(c.snap.Links, link)
	}
	if len(c.tlsContexts) > 0 {
		c.secrets = trustSecrets(t)
	}
	return c
}

// trustSecrets are the Secrets the origination TLSContexts name: the
// client certificate of this cluster (west) and the trust anchor, as
// crossmap's trust role writes them (ingress.ClientCertSecret,
// ingress.TrustCASecret).
func trustSecrets(t *testing.T) []*corev1.Secret {
	t.Helper()
	now := time.Now()
	caPEM, caKey, err := pki.NewCA("emissarytest trust anchor", time.Hour, now)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	ca, err := pki.ParseAuthority(caPEM, caKey)
	if err != nil {
		t.Fatalf("parse CA: %v", err)
	}
	crt, key, err := ca.Issue(ingress.GatewayIdentity("west"), pki.Client, time.Hour, now)
	if err != nil {
		t.Fatalf("issue client certificate: %v", err)
	}
	secret := func(name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "crossmap-system", Name: name},
			Type:       typ, Data: data,
		}
	}
	return []*corev1.Secret{
		secret(ingress.ClientCertSecret, corev1.SecretTypeTLS, map[string][]byte{pki.CertKey: crt, pki.KeyKey: key}),
		secret(ingress.TrustCASecret, corev1.SecretTypeOpaque, map[string][]byte{pki.CertKey: caPEM}),
	}
}

// knownMismatches are scenarios whose compiled shares differ from what
// /status reports, and why. Their mismatches are logged, not failed; a
// listed scenario that matches fails the test until its entry is deleted,
// so that the list never outlives a fix. There are none: /status reports
// the group in force (issue 12).
var knownMismatches = map[string]string{}

// knownEdgeMismatches are scenarios whose dev edge routes differ from
// Emissary's, and why; handled like knownMismatches.
var knownEdgeMismatches = map[string]string{}

func TestConformance(t *testing.T) {
	// The route role for every scenario, then one run of the compiler for
	// all.
	type run struct {
		scenario
		cluster
		routes  []mapper.Route // the first reconcile's, which writes
		desired []mapper.Object
		objs    []client.Object
	}
	var runs []run
	var sets [][]client.Object
	for _, sc := range scenarios() {
		c := sc.cluster(t)
		routes, desired, _ := controller.RouteViews(c.snap, nil)
		runs = append(runs, run{sc, c, routes, desired, clusterObjects(c, desired)})
		sets = append(sets, runs[len(runs)-1].objs)
	}
	results, err := emissarytest.CompileAll(context.Background(), sets...)
	if err != nil {
		t.Fatal(err)
	}

	for i, rn := range runs {
		sc, c, routes, objs, res := rn.scenario, rn.cluster, rn.routes, rn.objs, results[i]
		t.Run(sc.name, func(t *testing.T) {
			checkMapper(t, sc, routes)
			for _, e := range res.Errors {
				t.Errorf("Emissary: %s", e)
			}
			mappingOf := mappingsByService(t, objs)
			emissary := emissaryRoutes(t, res, mappingOf)
			if len(emissary) == 0 {
				t.Fatalf("Emissary routes nothing: %s", dump(res))
			}

			// (a) Emissary's groups against the shares /status reports
			// once crossmap's routes are in the cluster.
			reported := statusRoutes(t, sc, c, rn.desired)
			known(t, "knownMismatches", knownMismatches[sc.name], func(r reporter) {
				checkShares(r, res, mappingOf, reportedShares(reported))
			})

			// (c) Served-by: what Emissary makes of crossmap's response
			// headers. Only a dev route's answers name a cluster, with
			// its own name; the split's answers, local ones included,
			// carry no header from this cluster's routes.
			if sc.servedBy != "" {
				checkServedBy(t, sc.servedBy, res, mappingOf)
			}

			// (b) The dev edge's table against Emissary's routes.
			in := edge.Input{Services: c.snap.Services, Slices: c.snap.Slices, TLSContexts: c.tlsContexts, Secrets: c.secrets}
			for _, o := range append(objs, res.Added...) {
				switch o := o.(type) {
				case *ambv3.Mapping:
					in.Mappings = append(in.Mappings, o)
				case *ambv3.Host:
					in.Hosts = append(in.Hosts, o)
				}
			}
			table, problems := edge.Build(in)
			for _, p := range problems {
				t.Errorf("edge: %s", p)
			}
			edgeRoutes := edgeRoutes(table)
			known(t, "knownEdgeMismatches", knownEdgeMismatches[sc.name], func(r reporter) {
				for _, hostname := range slices.Sorted(maps.Keys(emissary)) {
					if got, want := edgeRoutes[hostname], emissary[hostname]; !slices.Equal(got, want) {
						r.Errorf("virtual host %s: the dev edge's routes differ from Emissary's\nedge:\n%s\nEmissary:\n%s",
							hostname, strings.Join(got, "\n"), strings.Join(want, "\n"))
					}
				}
				for _, hostname := range slices.Sorted(maps.Keys(edgeRoutes)) {
					if _, ok := emissary[hostname]; !ok {
						r.Errorf("the dev edge has virtual host %s, Emissary has not", hostname)
					}
				}
			})
			if t.Failed() {
				t.Logf("mapper's routes:\n%s\n/status/routes:\n%s", dump(routes), dump(reported))
			}
		})
	}
}

// statusRoutes is /status/routes once crossmap's routes are written: the
// route role reconciles the cluster that then holds them (the write wakes
// it), as the reconciler does (controller.RouteViews, its problems as the
// Reporter records them), and the status API serves the model. That
// reconcile must write nothing, or the compiled objects would not be the
// ones in force; and it reports the scenario's problems, with SharedGroup
// when others take a share of the group.
func statusRoutes(t *testing.T, sc scenario, c cluster, written []mapper.Object) []statusRoute {
	t.Helper()
	after := c.snap
	after.Mappings = slices.Clone(c.snap.Mappings)
	for _, o := range written {
		if m, ok := o.(*ambv3.Mapping); ok {
			after.Mappings = append(after.Mappings, m)
		}
	}
	routes, desired, views := controller.RouteViews(after, written)
	if plan := mapper.Diff(desired, written, func(mapper.Object) bool { return true }); !plan.Empty() {
		t.Errorf("the reconcile after crossmap's writes plans %s; the compiled objects are not the ones in force", plan)
	}

	model := status.NewModel()
	model.SetRoutes(views)
	var reasons []string
	for _, rt := range routes {
		model.SetProblems("route/"+rt.Source.Namespace+"/"+rt.Source.Name, rt.Problems, time.Unix(0, 0))
		for _, p := range rt.Problems {
			reasons = append(reasons, p.Reason)
		}
	}
	want := slices.Clone(sc.reasons)
	if sc.shared {
		want = append(want, mapper.ReasonSharedGroup)
	}
	slices.Sort(reasons)
	slices.Sort(want)
	if !slices.Equal(reasons, want) {
		t.Errorf("once crossmap's routes are written, the route role reports %v, want %v", reasons, want)
	}

	rec := httptest.NewRecorder()
	(&status.Server{Model: model}).Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/status/routes", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /status/routes: %d %s", rec.Code, rec.Body)
	}
	var out []statusRoute
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("decode /status/routes: %v\n%s", err, rec.Body)
	}
	if len(out) != len(views) {
		t.Fatalf("/status/routes has %d routes, the route role %d", len(out), len(views))
	}
	return out
}

// statusRoute is one route of /status/routes as a client reads it.
type statusRoute struct {
	status.Route
	Problems []status.Problem `json:"problems"`
}

// clusterObjects are the objects of the cluster once crossmap has applied
// its routes (written): the scenario's Mappings, Hosts and TLSContexts,
// and the Mappings the route role wrote.
func clusterObjects(c cluster, written []mapper.Object) []client.Object {
	var objs []client.Object
	for _, m := range c.snap.Mappings {
		objs = append(objs, m)
	}
	for _, o := range written {
		if m, ok := o.(*ambv3.Mapping); ok {
			objs = append(objs, m)
		}
	}
	for _, h := range c.snap.Hosts {
		objs = append(objs, h)
	}
	for _, tc := range c.tlsContexts {
		objs = append(objs, tc)
	}
	for _, sec := range c.secrets {
		objs = append(objs, sec)
	}
	return objs
}

// checkMapper checks that mapper did what the scenario is about: the
// problems it expects, and as many generated Mappings.
func checkMapper(t *testing.T, sc scenario, routes []mapper.Route) {
	t.Helper()
	var reasons []string
	generated := 0
	for _, r := range routes {
		for _, p := range r.Problems {
			reasons = append(reasons, p.Reason)
		}
		for _, o := range r.Objects {
			if _, ok := o.(*ambv3.Mapping); ok {
				generated++
			}
		}
	}
	if !slices.Equal(reasons, sc.reasons) {
		t.Fatalf("mapper reported %v, want %v: %s", reasons, sc.reasons, dump(routes))
	}
	if generated != sc.generated {
		t.Fatalf("mapper generated %d Mappings, want %d: %s", generated, sc.generated, dump(routes))
	}
}

// mappingsByService maps each Mapping's service (as Emissary names its
// cluster's service: without a scheme) to the Mapping's namespace/name. The
// scenarios give every Mapping a service of its own, which is what lets an
// Envoy route, which knows only its cluster, be traced to its Mapping.
func mappingsByService(t *testing.T, objs []client.Object) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		m, ok := o.(*ambv3.Mapping)
		if !ok {
			continue
		}
		svc := m.Spec.Service
		if i := strings.Index(svc, "://"); i >= 0 {
			svc = svc[i+3:]
		}
		if other, dup := out[svc]; dup {
			t.Fatalf("Mappings %s and %s/%s share service %s; give each Mapping of a scenario its own", other, m.Namespace, m.Name, svc)
		}
		out[svc] = m.Namespace + "/" + m.Name
	}
	return out
}

// emissaryDiag is the prefix of Emissary's diagnostics route, which the dev
// edge does not serve (it answers only the readiness and liveness probes).
const emissaryDiag = "/ambassador/v0/"

// emissaryRoutes are the routes of Emissary's virtual hosts, by hostname,
// one line per Envoy route, in Envoy's order.
func emissaryRoutes(t *testing.T, res *emissarytest.Result, mappingOf map[string]string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, vh := range res.VirtualHosts {
		hostname := vh.Domains[0]
		lines := []string{}
		for _, r := range vh.Routes {
			m := r.Match
			if m.Prefix == emissaryDiag {
				continue
			}
			kind, path := "prefix", m.Prefix
			switch {
			case m.Path != "":
				kind, path = "path", m.Path
			case m.Regex != "":
				kind, path = "regex", m.Regex
			}
			var hdrs, qs []string
			for _, h := range m.Headers {
				hdrs = append(hdrs, h.Name+" "+h.Kind+" "+h.Value)
			}
			for _, q := range m.Query {
				qs = append(qs, q.Name+" "+q.Kind+" "+q.Value)
			}
			match := matchLine(kind, path, m.CaseSensitive, hdrs, qs)
			for _, mem := range r.Members {
				name, ok := mappingOf[mem.Service]
				switch {
				case mem.Service == "127.0.0.1:8877":
					name = "emissary " + path
				case !ok:
					t.Errorf("virtual host %s: a route to %s, which no Mapping names", hostname, mem.Service)
				}
				var added []string
				for _, h := range mem.AddedHeaders {
					added = append(added, fmt.Sprintf("%s=%s append=%v", h.Name, h.Value, h.Append))
				}
				for _, h := range mem.ResponseHeaders {
					added = append(added, fmt.Sprintf("response %s=%s append=%v", h.Name, h.Value, h.Append))
				}
				lines = append(lines, routeLine(match, name, mem.Numerator, mem.HostRewrite, mem.PrefixRewrite, mem.TLSContext, added))
			}
		}
		out[hostname] = lines
	}
	return out
}

// edgeRoutes are the dev edge's routes in the form of emissaryRoutes.
func edgeRoutes(t *edge.Table) map[string][]string {
	out := map[string][]string{}
	for _, vh := range t.VirtualHosts() {
		lines := []string{}
		for _, r := range vh.Routes {
			var hdrs, qs []string
			for _, h := range r.Headers {
				hdrs = append(hdrs, h.Name+" "+h.Kind+" "+h.Value)
			}
			for _, q := range r.Query {
				qs = append(qs, q.Name+" "+q.Kind+" "+q.Value)
			}
			name := r.Mapping
			if r.Builtin != "" {
				name = "emissary " + r.Builtin
			}
			// The edge names a TLSContext namespace/name; Emissary by its
			// name, which is how a Mapping's tls finds it.
			tlsContext := r.TLSContext
			if i := strings.LastIndex(tlsContext, "/"); i >= 0 {
				tlsContext = tlsContext[i+1:]
			}
			var added []string
			for _, h := range r.AddedHeaders {
				added = append(added, fmt.Sprintf("%s=%s append=%v", h.Name, h.Value, h.Append))
			}
			for _, h := range r.ResponseHeaders {
				added = append(added, fmt.Sprintf("response %s=%s append=%v", h.Name, h.Value, h.Append))
			}
			lines = append(lines, routeLine(matchLine(r.PathKind, r.Path, r.CaseSensitive, hdrs, qs),
				name, r.Numerator, r.HostRewrite, r.PrefixRewrite, tlsContext, added))
		}
		out[vh.Hostname] = lines
	}
	return out
}

// matchLine writes a route's match; Envoy ANDs the header and query
// matchers, so their order does not matter and they are sorted.
func matchLine(kind, path string, caseSensitive bool, hdrs, qs []string) string {
	slices.Sort(hdrs)
	slices.Sort(qs)
	return fmt.Sprintf("%s %q case=%v headers=[%s] query=[%s]", kind, path, caseSensitive, strings.Join(hdrs, "; "), strings.Join(qs, "; "))
}

func routeLine(match, mapping string, numerator int, hostRewrite, prefixRewrite, tlsContext string, added []string) string {
	return fmt.Sprintf("%s -> %s numerator=%d host_rewrite=%q prefix_rewrite=%q tls=%q add=[%s]",
		match, mapping, numerator, hostRewrite, prefixRewrite, tlsContext, strings.Join(added, "; "))
}

// reportedGroup is an Emissary group as /status/routes reports it.
type reportedGroup struct {
	// mapping is the annotated Mapping or dev route the group is
	// reported for (namespace/name).
	mapping string
	// shares are each member's share in percent, by namespace/name; nil
	// when /status says Emissary puts the Mapping in no group.
	shares map[string]int
}

// reportedShares is the one place that reads the effective shares /status
// reports: for each annotated Mapping its group in force (Route.Group),
// every member with its share, whoever wrote it; and for each dev route
// (a backend with a header) the group of its own that its one Mapping
// makes, which takes every request that carries the header: 100.
func reportedShares(routes []statusRoute) []reportedGroup {
	var out []reportedGroup
	for _, r := range routes {
		g := reportedGroup{mapping: r.Key()}
		if r.Group != nil {
			g.shares = map[string]int{}
			for _, mem := range r.Group.Members {
				g.shares[mem.Mapping] = mem.Share
			}
		}
		out = append(out, g)
		for _, b := range r.Backends {
			if b.Header != "" {
				dev := r.Namespace + "/" + mapper.SiblingName(r.Name, b.Cluster, true)
				out = append(out, reportedGroup{mapping: dev, shares: map[string]int{dev: 100}})
			}
		}
	}
	return out
}

// checkShares finds, for each reported group, every Emissary route of the
// Mapping it is reported for, in every virtual host that has it, and
// compares their members and shares. A Mapping reported in no group must
// be in no Emissary route.
func checkShares(t reporter, res *emissarytest.Result, mappingOf map[string]string, reported []reportedGroup) {
	for _, want := range reported {
		found := false
		for _, vh := range res.VirtualHosts {
			for _, r := range vh.Routes {
				got := map[string]int{}
				for _, mem := range r.Members {
					got[mappingOf[mem.Service]] = mem.Share
				}
				if _, ok := got[want.mapping]; !ok {
					continue
				}
				found = true
				switch {
				case want.shares == nil:
					t.Errorf("virtual host %s, route %s: Emissary routes Mapping %s with shares %v, /status reports it in no group",
						vh.Domains[0], matchSummary(r.Match), want.mapping, got)
				case !maps.Equal(got, want.shares):
					t.Errorf("virtual host %s, route %s: Emissary's shares %v, /status reports %v for Mapping %s",
						vh.Domains[0], matchSummary(r.Match), got, want.shares, want.mapping)
				}
			}
		}
		if !found && want.shares != nil {
			t.Errorf("no Emissary route has Mapping %s, whose group /status reports as %v", want.mapping, want.shares)
		}
	}
}

func matchSummary(m emissarytest.Match) string {
	s := m.Prefix + m.Path + m.Regex
	for _, h := range m.Headers {
		s += " " + h.String()
	}
	for _, q := range m.Query {
		s += " ?" + q.String()
	}
	return s
}

// known runs check. When why is set (an entry of the list named list),
// the check is known to fail: its errors are logged, and its passing is an
// error, since the entry then outlives its cause.
func known(t *testing.T, list, why string, check func(reporter)) {
	t.Helper()
	if why == "" {
		check(t)
		return
	}
	var rec recorder
	check(&rec)
	if len(rec.errs) == 0 {
		t.Errorf("the check passes now, but %s says it does not (%s); delete the entry", list, why)
		return
	}
	t.Logf("known mismatch (%s):\n%s", why, strings.Join(rec.errs, "\n"))
}

// reporter is what a check reports to: the test itself, or a recorder for
// a known mismatch.
type reporter interface {
	Errorf(format string, args ...any)
}

type recorder struct{ errs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// checkServedBy checks the response headers of every route to podinfo's
// backends in Emissary's output: a dev route (podinfo-<cluster>-dev) sets
// header to its cluster, replacing any value; every other route adds no
// header.
func checkServedBy(t *testing.T, header string, res *emissarytest.Result, mappingOf map[string]string) {
	t.Helper()
	devRoutes := 0
	for _, vh := range res.VirtualHosts {
		for _, r := range vh.Routes {
			for _, mem := range r.Members {
				name, ok := mappingOf[mem.Service]
				if !ok {
					continue
				}
				var want []emissarytest.AddedHeader
				if cluster, dev := strings.CutSuffix(strings.TrimPrefix(name, ns+"/podinfo-"), "-dev"); dev {
					want = []emissarytest.AddedHeader{{Name: header, Value: cluster, Append: false}}
					devRoutes++
				}
				if !slices.Equal(mem.ResponseHeaders, want) {
					t.Errorf("virtual host %s: Emissary's route for %s adds the response headers %v, want %v", vh.Name, name, mem.ResponseHeaders, want)
				}
			}
		}
	}
	if devRoutes == 0 {
		t.Errorf("Emissary has no dev route: the served-by scenario checked nothing")
	}
}
