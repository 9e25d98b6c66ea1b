package mapper_test

import (
	"fmt"
	"net/netip"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/sets"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
	"github.com/crossmap/crossmap/mapper/mappertest"
)

// Benchmarks of the translate and diff stages, at the sizes a Link sees:
// 10, 100 and 1000 exported Services of 10 endpoints each. `make bench`
// runs them with the others and prints their medians.
//
//	go test ./mapper -run '^$' -bench . -benchmem

// benchSizes are the numbers of exported Services the import benchmarks
// mirror.
var benchSizes = []int{10, 100, 1000}

// benchEndpoints is how many endpoints each exported Service has.
const benchEndpoints = 10

// flatLink mirrors in flat mode: every remote endpoint is rendered and
// compared, so the endpoints count (in gateway mode they only decide one
// ready condition).
var flatLink = mapper.LinkRef{Namespace: "crossmap-system", Name: "east", Cluster: "east", Mode: crossmapv1.ModeFlat}

// exported is east's side of a Link: n exported Services in namespace
// apps, each with one EndpointSlice of benchEndpoints ready endpoints.
func exported(n int) mapper.ImportSnapshot {
	s := mapper.ImportSnapshot{Link: flatLink, GatewayAlive: true, LocalNamespaces: sets.New("apps")}
	export := mappertest.Labels(map[string]string{crossmapv1.ExportLabel: "true"})
	for i := range n {
		name := fmt.Sprintf("svc-%04d", i)
		s.Services = append(s.Services, mappertest.Service("apps", name, export,
			mappertest.UID(fmt.Sprintf("0b1c2d3e-0000-4000-8000-%012d", i)), mappertest.Port("http", 9898, 9898)))
		opts := []mappertest.SliceOption{mappertest.SlicePort("http", 9898)}
		for j := range benchEndpoints {
			opts = append(opts, mappertest.Endpoint(fmt.Sprintf("10.%d.%d.%d", 1+i/250, i%250, 1+j), true))
		}
		s.Slices = append(s.Slices, mappertest.Slice("apps", name+"-x7k2p", name, discoveryv1.AddressTypeIPv4, opts...))
	}
	return s
}

func BenchmarkImport(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			s := exported(n)
			if _, mirrored, problems := mapper.Import(s); mirrored != n || len(problems) > 0 {
				b.Fatalf("Import mirrored %d of %d Services, problems %v", mirrored, n, problems)
			}
			b.ReportAllocs()
			for b.Loop() {
				mapper.Import(s)
			}
		})
	}
}

// BenchmarkDiffSteadyState is the diff of a reconcile that finds nothing
// to do, the common case: every mirror exists as the API server stores it.
func BenchmarkDiffSteadyState(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			desired, _, _ := mapper.Import(exported(n))
			current := make([]mapper.Object, 0, len(desired))
			for _, d := range desired {
				switch d := d.(type) {
				case *corev1.Service:
					current = append(current, asStored(d, func(s *corev1.Service) {
						s.Spec.ClusterIP = "10.96.0.10"
						s.Spec.ClusterIPs = []string{"10.96.0.10"}
						s.Spec.SessionAffinity = corev1.ServiceAffinityNone
						s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
					}))
				default:
					current = append(current, asStored(d, nil))
				}
			}
			owned := ownedBy(flatLink)
			if p := mapper.Diff(desired, current, owned); !p.Empty() || len(p.Conflicts) > 0 {
				b.Fatalf("steady state plans writes: %v", p)
			}
			b.ReportAllocs()
			for b.Loop() {
				mapper.Diff(desired, current, owned)
			}
		})
	}
}

// BenchmarkRoutes translates 100 Mappings annotated as in the README
// (split to east, weighted failover, a dev route, a TrafficSplit), in a
// cluster that already holds what crossmap wrote for them.
func BenchmarkRoutes(b *testing.B) {
	s, _ := routeCluster(b)
	b.ReportAllocs()
	for b.Loop() {
		mapper.Routes(s)
	}
}

// BenchmarkRoutesHeld is the same cluster with every annotation broken
// (east=50%): each route is held and keeps what crossmap wrote for it,
// with health applied (RouteTranslation.HeldRoute), as a reconcile of the
// route role computes it.
func BenchmarkRoutesHeld(b *testing.B) {
	s, written := routeCluster(b)
	for i, m := range s.Mappings {
		if m.Labels[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy {
			continue
		}
		m = m.DeepCopy()
		m.Annotations[ingress.AnnotationSplit] = "east=50%"
		s.Mappings[i] = m
	}
	if held := mapper.Routes(s); len(held) != len(written) || !held[0].Held {
		b.Fatalf("Routes returned %d routes (want %d), the first held=%v", len(held), len(written), held[0].Held)
	}
	b.ReportAllocs()
	for b.Loop() {
		t := mapper.TranslateRoutes(s)
		for _, r := range t.Routes {
			t.HeldRoute(written[r.Source])
		}
	}
}

// routeCluster is the cluster of BenchmarkRoutes: 100 annotated Mappings
// and their Services, east and dev-alice linked and exporting them, and
// what crossmap wrote for each Mapping (also returned, by source).
func routeCluster(b *testing.B) (mapper.RouteSnapshot, map[mapper.ObjectRef][]mapper.Object) {
	b.Helper()
	const n = 100
	s := mapper.RouteSnapshot{
		DevHeader:           "x-crossmap-cluster",
		TrafficSplitVersion: ingress.TrafficSplitV1alpha2,
		Links: []mapper.LinkHealth{
			{Namespace: "crossmap-system", Name: "east", Cluster: "east", Mode: crossmapv1.ModeGateway, GatewayAlive: true},
			{Namespace: "crossmap-system", Name: "dev-alice", Cluster: "dev-alice", Mode: crossmapv1.ModeGateway, GatewayAlive: true},
		},
	}
	remote := exported(n)
	for _, svc := range remote.Services {
		s.Services = append(s.Services, mappertest.Service("apps", svc.Name, mappertest.Port("http", 9898, 9898)))
		s.Mappings = append(s.Mappings, mappertest.Mapping("apps", svc.Name, "/"+svc.Name+"/", svc.Name+".apps:9898",
			mappertest.Annotations(map[string]string{
				ingress.AnnotationSplit:        "east=50",
				ingress.AnnotationFailover:     "weighted",
				ingress.AnnotationDevRoutes:    "dev-alice",
				ingress.AnnotationTrafficSplit: "true",
			})))
	}
	s.Slices = remote.Slices
	// The mirrors are what the import role renders for each linked cluster.
	for _, cluster := range []string{"east", "dev-alice"} {
		remote.Link = mapper.LinkRef{Namespace: "crossmap-system", Name: cluster, Cluster: cluster, Mode: crossmapv1.ModeGateway, GatewayPort: 4143}
		remote.GatewayAddresses = []netip.Addr{netip.MustParseAddr("172.18.0.3")}
		objs, _, _ := mapper.Import(remote)
		for _, o := range objs {
			switch o := o.(type) {
			case *corev1.Service:
				s.Services = append(s.Services, o)
			case *discoveryv1.EndpointSlice:
				s.Slices = append(s.Slices, o)
			}
		}
	}
	routes := mapper.Routes(s)
	if len(routes) != n {
		b.Fatalf("Routes returned %d routes, want %d", len(routes), n)
	}
	// Steady state: the siblings written before are in the cluster, and in
	// the user's Emissary groups.
	written := map[mapper.ObjectRef][]mapper.Object{}
	for _, r := range routes {
		if len(r.Problems) > 0 {
			b.Fatalf("route %s: %v", r.Source.Name, r.Problems)
		}
		written[r.Source] = r.Objects
		for _, o := range r.Objects {
			if m, ok := o.(*ambv3.Mapping); ok {
				s.Mappings = append(s.Mappings, m)
			}
		}
	}
	return s, written
}
