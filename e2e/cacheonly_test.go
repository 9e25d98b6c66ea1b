package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/crossmap/crossmap/internal/controller"
)

// TestRouteReconcileReadsOnlyCaches: a route reconcile reads what it needs
// from the caches and sends no read to the API server, so that a failover
// never waits on that server.
//
// Before (issue 13): each route reconcile listed crossmap's own
// TrafficSplits from the API server (controller-runtime reads unstructured
// objects past its cache unless told otherwise). Right after a restart of
// the local API server that list sat out the server's Retry-After answers,
// and the new weights of a failover were written 1 s late (up to 8 s for a
// reconcile begun while the server was down).
func TestRouteReconcileReadsOnlyCaches(t *testing.T) {
	h := newBareHarness(t)
	reads := &readCounter{}
	restCfg := rest.CopyConfig(bed.Plane("west").Config)
	restCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return reads.wrap(rt) })

	cfg := controller.DefaultConfig()
	cfg.Namespace = h.ctrlNS
	cfg.ClusterName = "west-" + h.id
	cfg.AmbassadorID = []string{h.id}
	cfg.StatusAddr = "0"
	// The route role alone (with its TrafficSplits), so that every read
	// counted is the route role's.
	cfg.Export, cfg.Import, cfg.InsecureCleartext = false, false, true
	cfg.TrafficSplit = true
	logger := testr.NewWithOptions(t, testr.Options{Verbosity: 1}).WithName("west")
	ctl, err := controller.New(restCfg, cfg, controller.Deps{Registry: prometheus.NewRegistry(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(log.IntoContext(context.Background(), logger))
	done := make(chan error, 1)
	go func() { done <- ctl.Manager.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	reconciles := func() float64 {
		return testutil.ToFloat64(ctl.Metrics.Reconciles.WithLabelValues("route", "success"))
	}

	h.localService("podinfo", 9898, "10.246.40.1")
	h.userMapping("podinfo", "podinfo."+h.ns+":9898", map[string]string{"crossmap.io/split": "east=50"}, nil)
	h.eventually("the first route reconcile", func(context.Context) error {
		if reconciles() == 0 {
			return fmt.Errorf("no route reconcile yet")
		}
		return nil
	})

	// From here on every reconcile starts from filled caches. A Mapping
	// of no route is one more reason to recompute the routes.
	reads.reset()
	before := reconciles()
	h.userMapping("other", "other."+h.ns+":80", nil, nil)
	h.eventually("a route reconcile after the new Mapping", func(context.Context) error {
		if reconciles() <= before {
			return fmt.Errorf("%v route reconciles, as before", reconciles())
		}
		return nil
	})
	if n, paths := reads.get(); n > 0 {
		t.Errorf("the route role read from the API server %d times: %v", n, paths)
	}
}

// readCounter counts the reads (GETs that are not watches) of a client.
type readCounter struct {
	mu    sync.Mutex
	paths []string
}

func (c *readCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.Method == http.MethodGet && req.URL.Query().Get("watch") != "true" {
			c.mu.Lock()
			c.paths = append(c.paths, req.URL.Path)
			c.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

func (c *readCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paths = nil
}

func (c *readCounter) get() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.paths), append([]string(nil), c.paths...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
