package mapper_test

import (
	"maps"
	"slices"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
)

// hashes maps each object's key to its spec hash: two renderings with the
// same hashes plan no write between them.
func hashes(objs []mapper.Object) map[string]string {
	out := map[string]string{}
	for _, o := range objs {
		out[mapper.KeyOf(o).String()] = o.GetAnnotations()[crossmapv1.AnnotationSpecHash]
	}
	return out
}

func importWith(t *testing.T, name string, alive bool) []mapper.Object {
	s := loadImport(t, name)
	s.GatewayAlive = alive
	objs, _, _ := mapper.Import(s)
	return objs
}

// TestHoldMirrors: while the remote cannot be read, the mirrors crossmap
// wrote still follow the gateway: what HoldMirrors makes of them is
// exactly what Import would render for the last seen remote with the
// gateway's health now (issue 13: with the credentials Secret deleted, a
// dead gateway kept its mirror endpoints ready).
func TestHoldMirrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		// remoteReady: the remote Service had a ready endpoint.
		remoteReady bool
	}{
		{"gateway-single-port-ready", true},
		{"gateway-dual-stack", true},
		{"gateway-endpoints-not-ready", false},
		{"flat-mixed-readiness", false},
	} {
		for _, written := range []bool{true, false} {
			for _, alive := range []bool{true, false} {
				before := importWith(t, tc.name, written)
				got := mapper.HoldMirrors(before, alive)
				want := importWith(t, tc.name, alive)
				if tc.name == "flat-mixed-readiness" {
					// Flat mode has no gateway: what is there stays.
					want = before
				}
				if g, w := hashes(got), hashes(want); !maps.Equal(g, w) {
					t.Errorf("%s, written alive=%v, now alive=%v: hashes %v, want Import's %v", tc.name, written, alive, g, w)
				}
				for i, o := range got {
					es, ok := o.(*discoveryv1.EndpointSlice)
					if !ok || es.Annotations[crossmapv1.AnnotationRemoteReady] == "" {
						continue
					}
					for _, ep := range es.Endpoints {
						if r := ptr.Deref(ep.Conditions.Ready, true); r != (alive && tc.remoteReady) {
							t.Errorf("%s, alive=%v: %s endpoint ready=%v", tc.name, alive, es.Name, r)
						}
					}
					if written == alive && o != before[i] {
						t.Errorf("%s: %s was rendered again though its readiness stands", tc.name, es.Name)
					}
				}
			}
		}
	}
}

// routeWith renders the case's first route with its gateway alive or dead
// and its annotations changed by mutate; TrafficSplits are turned into
// unstructured objects, as the route role reads them from the cluster.
func routeWith(t *testing.T, name string, alive bool, mutate func(map[string]string)) (mapper.Route, mapper.RouteSnapshot) {
	t.Helper()
	s := loadRoutes(t, name)
	for i := range s.Links {
		s.Links[i].GatewayAlive = alive
	}
	for _, m := range s.Mappings {
		if m.Annotations["crossmap.io/split"] != "" {
			m.Annotations["crossmap.io/failover"] = "weighted"
			mutate(m.Annotations)
		}
	}
	rts := mapper.Routes(s)
	if len(rts) == 0 {
		t.Fatalf("%s: no route", name)
	}
	rt := rts[0]
	for i, o := range rt.Objects {
		if _, ok := o.(*ambv3.Mapping); ok {
			continue
		}
		raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		if err != nil {
			t.Fatal(err)
		}
		rt.Objects[i] = &unstructured.Unstructured{Object: raw}
	}
	return rt, s
}

// TestHeldRouteAppliesHealth: a route held by bad input keeps its last
// valid configuration and still fails over and ramps back on it (issue
// 13: with crossmap.io/split=east=50% the dead cluster kept its share).
// What HeldRoute writes is what the valid annotation would give with the
// health of now, TrafficSplits included.
func TestHeldRouteAppliesHealth(t *testing.T) {
	valid := func(map[string]string) {}
	invalid := func(a map[string]string) { a["crossmap.io/split"] = "east=50%" }
	for _, name := range []string{"failover-weighted-gateway-dead", "traffic-split-v1alpha1", "traffic-split-v1alpha2"} {
		for _, alive := range []bool{false, true} {
			written, _ := routeWith(t, name, !alive, valid)
			want, _ := routeWith(t, name, alive, valid)
			held, snap := routeWith(t, name, alive, invalid)
			if !held.Held {
				t.Fatalf("%s: the route with %q is not held", name, "east=50%")
			}
			got, backends, policy := mapper.TranslateRoutes(snap).HeldRoute(written.Objects)
			if g, w := hashes(got), hashes(want.Objects); !maps.Equal(g, w) {
				t.Errorf("%s, gateway alive=%v: held route hashes %v, want those of the valid route %v", name, alive, g, w)
			}
			if policy != "weighted" {
				t.Errorf("%s: policy %q, want weighted", name, policy)
			}
			if len(backends) < 2 || len(want.Backends) < 2 {
				t.Fatalf("%s: backends %+v, want %+v", name, backends, want.Backends)
			}
			for i := range 2 {
				if backends[i].Effective != want.Backends[i].Effective || backends[i].Healthy != want.Backends[i].Healthy ||
					backends[i].Reason != want.Backends[i].Reason {
					t.Errorf("%s, alive=%v: backend %d = %+v, want %+v", name, alive, i, backends[i], want.Backends[i])
				}
			}
			// Weights that stand are not rendered again.
			same, _, _ := mapper.TranslateRoutes(snap).HeldRoute(want.Objects)
			for i := range same {
				if same[i] != want.Objects[i] {
					t.Errorf("%s: %s rendered again though its weights stand", name, mapper.KeyOf(same[i]))
				}
			}
		}
	}
}

// TestHeldRouteWithoutConfig: objects an older crossmap wrote carry no
// configuration; they are kept exactly as they are.
func TestHeldRouteWithoutConfig(t *testing.T) {
	rt, snap := routeWith(t, "failover-weighted-gateway-dead", true, func(map[string]string) {})
	for _, o := range rt.Objects {
		ann := maps.Clone(o.GetAnnotations())
		delete(ann, crossmapv1.AnnotationRouteConfig)
		o.SetAnnotations(ann)
	}
	for i := range snap.Links {
		snap.Links[i].GatewayAlive = false
	}
	got, backends, _ := mapper.TranslateRoutes(snap).HeldRoute(rt.Objects)
	if len(got) != len(rt.Objects) || backends != nil {
		t.Fatalf("got %d objects and backends %v", len(got), backends)
	}
	for i := range got {
		if got[i] != rt.Objects[i] {
			t.Errorf("%s changed", mapper.KeyOf(got[i]))
		}
	}
}

// TestHeldPriorityRouteAppliesHealth: a priority route held by bad input
// still walks its tiers (issue 16): written while everything was healthy
// (local 100), then its tiers get a typo while local, and then east too,
// lose their endpoints. What HeldRoute writes is what the valid tiers give
// with the health of now.
func TestHeldPriorityRouteAppliesHealth(t *testing.T) {
	const name = "priority-local-healthy"
	written := mapper.Routes(loadRoutes(t, name))[0]
	for _, down := range [][]string{{"podinfo"}, {"podinfo", "podinfo-east"}} {
		now := func(priority string) (mapper.Route, mapper.RouteSnapshot) {
			s := loadRoutes(t, name)
			for _, es := range s.Slices {
				if slices.Contains(down, es.Labels[discoveryv1.LabelServiceName]) {
					for i := range es.Endpoints {
						es.Endpoints[i].Conditions.Ready = ptr.To(false)
					}
				}
			}
			s.Mappings[0].Annotations["crossmap.io/priority"] = priority
			return mapper.Routes(s)[0], s
		}
		want, _ := now("local,east,dev-alice")
		held, snap := now("local,,east,dev-alice")
		if !held.Held || want.Held {
			t.Fatalf("down %v: held %v with the typo, %v without; want held only with it", down, held.Held, want.Held)
		}
		got, backends, policy := mapper.TranslateRoutes(snap).HeldRoute(written.Objects)
		if g, w := hashes(got), hashes(want.Objects); !maps.Equal(g, w) {
			t.Errorf("down %v: held route hashes %v, want those of the valid route %v", down, g, w)
		}
		if policy != "priority" {
			t.Errorf("policy %q, want priority", policy)
		}
		if len(backends) != len(want.Backends) {
			t.Fatalf("down %v: backends %+v, want %+v", down, backends, want.Backends)
		}
		for i := range backends {
			if backends[i].Effective != want.Backends[i].Effective || backends[i].Reason != want.Backends[i].Reason {
				t.Errorf("down %v: backend %d = %+v, want %+v", down, i, backends[i], want.Backends[i])
			}
		}
		if last := backends[len(down)]; last.Effective != 100 {
			t.Errorf("down %v: %s gets %d, want 100: its tier is the first with a healthy backend", down, last.Service, last.Effective)
		}
	}
}
