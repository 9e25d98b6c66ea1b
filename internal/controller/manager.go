package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	splitv1alpha1 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha1"
	splitv1alpha2 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/rewatch"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// NewScheme returns a scheme with every type crossmap reads or writes.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(crossmapv1.AddToScheme(s))
	utilruntime.Must(ambv3.AddToScheme(s))
	utilruntime.Must(splitv1alpha1.AddToScheme(s))
	utilruntime.Must(splitv1alpha2.AddToScheme(s))
	utilruntime.Must(mcsv1beta1.AddToScheme(s))
	return s
}

// Controller is a configured crossmap: its manager, with the enabled roles
// and the status API added.
type Controller struct {
	Manager ctrl.Manager
	Model   *status.Model
	Status  *status.Server
	Links   *LinkReconciler
	// MCS is the Multi-Cluster Services role, when on (Status is what it
	// last computed).
	MCS     *MCSReconciler
	Metrics *Metrics
}

// Deps are the controller's injectable dependencies. The zero value gives
// the production ones.
type Deps struct {
	// Registry receives the crossmap_ metrics; default controller-runtime's.
	Registry prometheus.Registerer
	// Resolve looks up gateway DNS names; default the system resolver.
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
	// Logger is the manager's logger; default controller-runtime's global
	// one (ctrl.SetLogger).
	Logger logr.Logger
}

// New builds a Controller for the cluster that restCfg points at.
func New(restCfg *rest.Config, cfg Config, deps Deps) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Each role watches only what it uses (Config.Needs), and a CRD one of
	// them needs but the cluster lacks stops the start here, with the role,
	// the CRD and the fix, rather than somewhere inside the manager.
	if err := CheckCRDs(restCfg, cfg); err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(rewatch.Config(restCfg), ctrl.Options{
		Scheme: NewScheme(),
		Logger: deps.Logger,
		// The caches follow a restart of the API server within a fraction
		// of a second: see package rewatch.
		Cache: cache.Options{ByObject: cacheByObject(cfg), NewInformer: rewatch.NewInformer},
		// Unstructured reads come from the cache too. The only one is the
		// route role's list of its own TrafficSplits (RouteReconciler.
		// splitList), which controller-runtime would otherwise send to the
		// API server on every route reconcile: a failover then waited on
		// the local API server, and right after that server restarted the
		// list sat out its "Retry-After" answers (1 s, and up to 8 s in a
		// reconcile begun while it was down) before the new weights were
		// written (issue 13).
		Client: client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		// The status API serves /metrics itself (issue #4); the manager's own
		// metrics listener stays off so there is one port to expose.
		Metrics:                 metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:  "0",
		PprofBindAddress:        cfg.PprofAddr,
		LeaderElection:          cfg.LeaderElect,
		LeaderElectionID:        "crossmap-" + cfg.ClusterName,
		LeaderElectionNamespace: cfg.Namespace,
		// A replica that stops cleanly (a rollout, a drained node) hands the
		// lease over at once instead of making the next leader wait it out.
		LeaderElectionReleaseOnCancel: true,
		GracefulShutdownTimeout:       ptrDuration(10 * time.Second),
		// The demo and the end-to-end tests run one crossmap per cluster in a
		// single process, so controller names repeat across managers. crossmap
		// exports its own per-manager metrics (Deps.Registry), so the shared
		// controller-runtime series this check protects are not relied on.
		Controller: ctrlconfig.Controller{SkipNameValidation: ptrBool(true)},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if deps.Registry == nil {
		deps.Registry = ctrlmetrics.Registry
	}
	metrics, err := NewMetrics(deps.Registry)
	if err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	c := &Controller{Manager: mgr, Model: status.NewModel(), Metrics: metrics}
	echoes := &Echoes{}
	applier := &Applier{Client: mgr.GetClient(), DryRun: cfg.DryRun, Metrics: metrics, Echoes: echoes}
	reporter := &Reporter{Model: c.Model, Metrics: metrics, Now: time.Now,
		Recorder: mgr.GetEventRecorderFor("crossmap"), //nolint:staticcheck // core/v1 Events on purpose: see Reporter.Recorder
	}
	if cfg.Export {
		if err := (&ExportReconciler{Client: mgr.GetClient(), Applier: applier, Reporter: reporter, Metrics: metrics, Config: cfg}).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("set up export role: %w", err)
		}
	}
	if cfg.MutualTLS() {
		if err := (&TrustReconciler{Client: mgr.GetClient(), Applier: applier, Reporter: reporter, Model: c.Model,
			Metrics: metrics, Config: cfg}).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("set up trust role: %w", err)
		}
	} else {
		// The opt-out is loud on purpose: logged at error level on every
		// start, and shown by the status API as mode "cleartext".
		mgr.GetLogger().Error(errors.New("cross-cluster mTLS is off (--insecure-cleartext)"),
			"INSECURE: this cluster's gateway routes cleartext from anyone who can reach it, and its routes to other clusters send cleartext; use this on dev clusters only")
		c.Model.SetTrust(status.Trust{Mode: "cleartext", Certificates: []status.Certificate{}})
	}
	// The import role's gateway verdicts reach the route role of this
	// process directly: see GatewayHealth.
	var health *GatewayHealth
	if cfg.Import {
		health = &GatewayHealth{}
		c.Links = &LinkReconciler{Client: mgr.GetClient(), Applier: applier, Reporter: reporter, Model: c.Model,
			Metrics: metrics, Config: cfg, Resolve: deps.Resolve, Echoes: echoes, Health: health}
		if err := c.Links.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("set up import role: %w", err)
		}
	}
	if cfg.MCS {
		c.MCS = &MCSReconciler{Client: mgr.GetClient(), Applier: applier, Reporter: reporter, Metrics: metrics,
			Config: cfg, Links: c.Links}
		if err := c.MCS.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("set up MCS role: %w", err)
		}
	}
	if cfg.Routes {
		if err := (&RouteReconciler{Client: mgr.GetClient(), Applier: applier, Reporter: reporter, Model: c.Model,
			Metrics: metrics, Config: cfg, Health: health}).SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("set up route role: %w", err)
		}
	}
	if cfg.StatusAddr != "0" {
		gatherer, _ := deps.Registry.(prometheus.Gatherer)
		c.Status = &status.Server{Addr: cfg.StatusAddr, Model: c.Model, Gatherer: gatherer, Ready: func() error {
			// A short live wait, not an already-cancelled context: the
			// cache is split per kind, and each part would pick at random
			// between "synced" and "context done".
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if !mgr.GetCache().WaitForCacheSync(ctx) {
				return fmt.Errorf("caches not synced yet")
			}
			return nil
		}}
		if err := mgr.Add(c.Status); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// cacheByObject narrows the caches of the kinds that need it. A kind is
// listed only when an enabled role uses it: the cache asks the API server
// about every kind listed here when the manager is made, and a
// mirroring-only cluster has no Emissary CRDs to ask about.
func cacheByObject(cfg Config) map[client.Object]cache.ByObject {
	in := func(ns string) cache.ByObject { return cache.ByObject{Namespaces: map[string]cache.Config{ns: {}}} }
	// Links and their Secrets live in one namespace: caching only that
	// namespace's Secrets keeps every other Secret out of memory and out of
	// crossmap's RBAC.
	by := map[client.Object]cache.ByObject{&corev1.Secret{}: in(cfg.Namespace)}
	if cfg.uses(LinkCRD) {
		by[&crossmapv1.Link{}] = in(cfg.Namespace)
	}
	if cfg.uses(TLSContextCRD) {
		// crossmap's TLSContexts live beside the client certificate.
		by[&ambv3.TLSContext{}] = in(cfg.Namespace)
	}
	if cfg.Routes {
		// Only crossmap's own TrafficSplits: see RouteReconciler.splitList.
		by[trafficSplitObject(cfg.TrafficSplitVersion)] = cache.ByObject{Label: labels.SelectorFromSet(mapper.RouteSelector())}
	}
	return by
}

func trafficSplitObject(version string) client.Object {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(trafficSplitGVK(version))
	return u
}

func ptrDuration(d time.Duration) *time.Duration { return &d }
func ptrBool(b bool) *bool                       { return &b }
