package main

import (
	"context"
	"fmt"
	"io"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/crossmap/crossmap/internal/controller"
)

func runController(ctx context.Context, args []string, _, stderr io.Writer) error {
	cfg := controller.DefaultConfig()
	fs := newFlagSet("controller", `Runs crossmap in the cluster it is pointed at:
  - export role: for each Service matching --export-selector, an Emissary gateway
    Mapping (and one gateway Host) so that other clusters can reach it;
  - import role: for each Link, mirrors of the remote cluster's exported Services
    (<service>-<cluster>) with EndpointSlices pointing at its gateway (or pods);
  - route role: for each Mapping annotated crossmap.io/split or
    crossmap.io/dev-routes, sibling Mappings (one per remote cluster, weights
    following health) and, when asked, an SMI TrafficSplit;
  - trust role: the gateway and client certificates, issued from the trust
    anchor (--trust-anchor-secret), and, with the route role, the TLSContexts
    that originate mTLS.
--export, --import and --routes turn the first three off or on.
Each role watches only what it uses. The export and route roles need
Emissary's CRDs; the import role alone (--export=false --routes=false) needs
only crossmap's Link CRD, for a cluster whose edge is not Emissary. A CRD an
enabled role needs but the cluster does not serve stops the start with the
role, the CRD and the command that installs it.
The status API serves /status, /healthz and /readyz on --status-addr.`, stderr)
	cfg.BindFlags(fs)
	cluster := bindCluster(fs)
	// client-go's own default (5 requests a second, bursts of 10) made a
	// first sync of 1000 mirrored Services (2000 writes) take over three
	// minutes (make bench, BenchmarkController). The API server's priority
	// and fairness is what protects it; this limit only keeps a runaway
	// loop from flooding it.
	qps := fs.Float64("kube-api-qps", 300, "requests a second crossmap may send to its own API server, sustained")
	burst := fs.Int("kube-api-burst", 600, "requests crossmap may send to its own API server in a burst")
	level := &logLevel{level: zapcore.InfoLevel}
	fs.Var(level, "log-level", "log level: debug, info or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("controller takes no arguments, got %q", fs.Args())
	}
	if *qps <= 0 || *burst < 1 {
		return fmt.Errorf("--kube-api-qps must be positive and --kube-api-burst at least 1, got %g and %d", *qps, *burst)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	setupLogging(level.level, stderr)
	restCfg, err := cluster.restConfig()
	if err != nil {
		return err
	}
	restCfg.QPS, restCfg.Burst = float32(*qps), *burst
	c, err := controller.New(restCfg, cfg, controller.Deps{})
	if err != nil {
		return err
	}
	ctrl.Log.Info("Starting crossmap controller", "cluster", cfg.ClusterName, "namespace", cfg.Namespace,
		"export", cfg.Export, "import", cfg.Import, "routes", cfg.Routes, "dryRun", cfg.DryRun)
	return c.Manager.Start(ctx)
}
