package e2e

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/mapper"
)

// floorCluster names the pretend remote cluster of the write floor, so that
// its objects (svc-000-floor, ...) sit beside the real mirrors without
// being any Link's.
const floorCluster = "floor"

// writeFloor is what the API server alone needs for the writes of an
// initial convergence, the floor under BenchmarkController's converge-s: a
// bare client in this process writes the objects crossmap would write for
// east's exported Services (rendered by mapper.Import, so the same
// Services and EndpointSlices, under the names of a pretend cluster) with
// crossmap's own Applier, so the same server-side apply requests at the
// same concurrency and the controller's client limits, and nothing else:
// no caches to fill, no remote cluster to list, no reconcile. It then
// deletes them, untimed, and waits until they are gone, so that the
// controller measured after it starts from the same cluster (the API
// server's ClusterIP allocator costs more with every Service there is).
//
// On a small machine the figure is mostly the API server's CPU time per
// write; converge-s over it is what crossmap adds.
func (h *benchHarness) writeFloor() time.Duration {
	h.b.Helper()
	ctx := context.Background()
	var list corev1.ServiceList
	if err := h.east.List(ctx, &list, client.InNamespace(h.ns), client.MatchingLabels(h.exportLabels)); err != nil {
		h.b.Fatal(err)
	}
	var svcs []*corev1.Service
	var slices []*discoveryv1.EndpointSlice
	for i := range list.Items {
		svcs = append(svcs, &list.Items[i])
		slices = append(slices, h.slices[list.Items[i].Name])
	}
	link := mapper.LinkRef{Namespace: h.ctrlNS, Name: "floor", Cluster: floorCluster, Mode: crossmapv1.ModeFlat}
	objs, mirrored, problems := mapper.Import(mapper.ImportSnapshot{
		Link: link, Services: svcs, Slices: slices, GatewayAlive: true, LocalNamespaces: sets.New(h.ns),
	})
	if mirrored != len(h.services) || len(problems) > 0 {
		h.b.Fatalf("floor: %d of %d Services rendered, problems %v", mirrored, len(h.services), problems)
	}

	// The client the controller would have: its default limits on requests
	// (cmd/crossmap's --kube-api-qps and --kube-api-burst).
	cfg := rest.CopyConfig(bed.Plane("west").Config)
	cfg.QPS, cfg.Burst = 300, 600
	c, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		h.b.Fatal(err)
	}
	metrics, err := controller.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		h.b.Fatal(err)
	}
	applier := &controller.Applier{Client: c, Metrics: metrics}
	start := time.Now()
	if err := applier.Apply(ctx, mapper.Plan{Create: objs}); err != nil {
		h.b.Fatalf("floor: %v", err)
	}
	floor := time.Since(start)

	var wg sync.WaitGroup
	work := make(chan client.Object)
	for range 8 {
		wg.Go(func() {
			for o := range work {
				if err := c.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
					h.b.Errorf("floor: delete %s: %v", client.ObjectKeyFromObject(o), err)
				}
			}
		})
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	return floor
}
