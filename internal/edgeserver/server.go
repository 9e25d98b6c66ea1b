package edgeserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/crossmap/crossmap/edge"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/rewatch"
)

// Config says what the edge serves and where.
type Config struct {
	// Listen is the proxy's address, e.g. "127.0.0.1:8080".
	Listen string
	// StatusAddr serves /ready and /status (the edge's problems); "0"
	// turns it off.
	StatusAddr string
	// AmbassadorID is the Emissary installation the edge stands in for.
	AmbassadorID []string
	// Name is used in logs ("west-edge", "east-gateway").
	Name string
}

// Server is a running edge.
type Server struct {
	cfg   Config
	mgr   manager.Manager
	proxy *edge.Proxy

	mu       sync.Mutex
	problems []edge.Problem
	ready    bool
	built    time.Time

	proxyListener, statusListener net.Listener
}

// New prepares an edge for the cluster restCfg points at. It binds its
// listeners at once, so the caller learns the addresses before Start.
func New(restCfg *rest.Config, cfg Config, logger logr.Logger) (*Server, error) {
	mgr, err := ctrl.NewManager(rewatch.Config(restCfg), ctrl.Options{
		Scheme: controller.NewScheme(),
		Logger: logger,
		// The edge follows a Mapping written right after its API server
		// restarted within a fraction of a second: see package rewatch.
		Cache:                  cache.Options{NewInformer: rewatch.NewInformer},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptrTrue()},
	})
	if err != nil {
		return nil, fmt.Errorf("create edge manager: %w", err)
	}
	s := &Server{cfg: cfg, mgr: mgr}
	s.proxy = edge.NewProxy(edge.WithHandshakeErrorLog(func(e edge.HandshakeError) {
		// Once per kind of failure, not per connection (see
		// WithHandshakeErrorLog); the counts are on /status.
		logger.Info("TLS handshake failed", "side", e.Side, "reason", e.Reason, "peer", e.Peer, "tlsContext", e.Context, "err", e.Err.Error())
	}))
	if s.proxyListener, err = net.Listen("tcp", cfg.Listen); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if cfg.StatusAddr != "" && cfg.StatusAddr != "0" {
		if s.statusListener, err = net.Listen("tcp", cfg.StatusAddr); err != nil {
			s.proxyListener.Close()
			return nil, fmt.Errorf("listen on %s: %w", cfg.StatusAddr, err)
		}
	}
	key := reconcile.Request{NamespacedName: types.NamespacedName{Name: "table"}}
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{key} })
	err = ctrl.NewControllerManagedBy(mgr).Named("edge-"+cfg.Name).
		Watches(&ambv3.Mapping{}, all).
		Watches(&ambv3.Host{}, all).
		Watches(&corev1.Service{}, all).
		Watches(&discoveryv1.EndpointSlice{}, all).
		// TLS: the TLSContexts Hosts and Mappings name, and the Secrets
		// holding their certificates. A changed Secret is a new table, and
		// the next handshake uses it.
		Watches(&ambv3.TLSContext{}, all).
		Watches(&corev1.Secret{}, all).
		Complete(reconcile.Func(s.rebuild))
	if err != nil {
		return nil, fmt.Errorf("watch for the edge: %w", err)
	}
	return s, nil
}

// Addr is where the proxy listens.
func (s *Server) Addr() net.Addr { return s.proxyListener.Addr() }

// StatusAddr is where /ready and /status are served, or nil.
func (s *Server) StatusAddr() net.Addr {
	if s.statusListener == nil {
		return nil
	}
	return s.statusListener.Addr()
}

// Problems returns what the edge reported as not honoured: Mapping fields,
// Hosts and TLSContexts.
func (s *Server) Problems() []edge.Problem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.problems)
}

// rebuild reads everything from the cache and swaps in a new table.
func (s *Server) rebuild(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	c := s.mgr.GetClient()
	objs, err := controller.ListRoutingObjects(ctx, c)
	if err != nil {
		return reconcile.Result{}, err
	}
	var (
		ctxs    ambv3.TLSContextList
		secrets corev1.SecretList
	)
	for _, l := range []client.ObjectList{&ctxs, &secrets} {
		if err := c.List(ctx, l); err != nil {
			return reconcile.Result{}, fmt.Errorf("list TLS objects: %w", err)
		}
	}
	in := edge.Input{
		AmbassadorID: s.cfg.AmbassadorID,
		Mappings:     objs.Mappings, Hosts: objs.Hosts, Services: objs.Services, Slices: objs.Slices,
		TLSContexts: pointers(ctxs.Items), Secrets: pointers(secrets.Items),
	}
	table, problems := edge.Build(in)
	s.proxy.SetTable(table)
	s.mu.Lock()
	old := s.problems
	s.problems, s.ready, s.built = problems, true, time.Now()
	s.mu.Unlock()
	if !slices.Equal(old, problems) {
		logger := log.FromContext(ctx)
		for _, p := range problems {
			switch {
			case p.Host != "":
				logger.Info("Host not honoured by the dev edge", "host", p.Host, "field", p.Field, "message", p.Message)
			case p.TLSContext != "":
				logger.Info("TLSContext field not honoured by the dev edge", "tlsContext", p.TLSContext, "field", p.Field, "message", p.Message)
			default:
				logger.Info("Mapping field not honoured by the dev edge", "mapping", p.Mapping, "field", p.Field, "message", p.Message)
			}
		}
	}
	return reconcile.Result{}, nil
}

// pointers points at the items of a list, which belong to the cache: read
// them, never change them.
func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	proxySrv := &http.Server{Handler: s.proxy, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 3)
	// One listener for TLS and cleartext, as an Emissary Listener with
	// protocol HTTPS: the TLS Hosts of the current table terminate TLS.
	go func() { errs <- serve(proxySrv, s.proxy.Listener(s.proxyListener)) }()
	var statusSrv *http.Server
	if s.statusListener != nil {
		statusSrv = &http.Server{Handler: s.statusHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { errs <- serve(statusSrv, s.statusListener) }()
	}
	go func() { errs <- s.mgr.Start(ctx) }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = proxySrv.Shutdown(shutdown)
	if statusSrv != nil {
		_ = statusSrv.Shutdown(shutdown)
	}
	return err
}

func serve(srv *http.Server, l net.Listener) error {
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// statusHandler serves /ready (200 once the first table is built),
// /status: the problems, the TLS side (failed handshakes by side and
// reason, the certificates in use) and the answers served by each
// cluster's backends, as JSON; and /metrics, the served answers as
// crossmap_edge_served_total{cluster}.
func (s *Server) statusHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		ready := s.ready
		s.mu.Unlock()
		if !ready {
			http.Error(w, "routing table not built yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		body := map[string]any{"name": s.cfg.Name, "ready": s.ready, "built": s.built, "problems": s.problems}
		s.mu.Unlock()
		body["tls"] = s.proxy.TLSStatus()
		body["served"] = s.proxy.Served()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(servedCollector{s.proxy})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// servedDesc describes the edge's count of answers by cluster.
var servedDesc = prometheus.NewDesc("crossmap_edge_served_total",
	"Upstream answers the dev edge proxied, by the cluster whose backend gave them (local: this cluster's own).",
	[]string{"cluster"}, nil)

// servedCollector reads the proxy's counters when scraped, so that a
// request costs one atomic add and no metric lookup.
type servedCollector struct{ proxy *edge.Proxy }

func (c servedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- servedDesc }

func (c servedCollector) Collect(ch chan<- prometheus.Metric) {
	for cluster, n := range c.proxy.Served() {
		ch <- prometheus.MustNewConstMetric(servedDesc, prometheus.CounterValue, float64(n), cluster)
	}
}

func ptrTrue() *bool { b := true; return &b }
