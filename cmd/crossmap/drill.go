package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/internal/cli"
	"github.com/crossmap/crossmap/internal/controller"
)

func runDrill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts := cli.DefaultDrillOptions()
	fs := newFlagSet("drill --lose CLUSTER [--apply --for 10m] | --stop", `Rehearses losing a linked cluster.

First, what if: 'crossmap drill --lose east' changes nothing. For every route (an
annotated Mapping) it prints the effective weights now and if cluster east were
lost now, computed by the route role's own code with east's backends dead, and
the routes that would then be left with no healthy backend, or would still send
requests to east (failover off). It reads the cluster --kubeconfig names: its
Links, Mappings, Hosts, Services and EndpointSlices.

Then, for real: with --apply it records a drill on east's Link (spec.drill: who,
from when, until when). The controller drains east for routing exactly as if its
gateway had died (its mirrors' endpoints are not ready, routes fail over) until
--for has passed, and then gives it its traffic back, also across controller
restarts and leader changes. --apply refuses while routes are at risk, unless
--force. 'crossmap drill --stop' (or --stop --lose east) ends a drill early.

The drill shows in /status, 'crossmap status', Events on the Link (DrillStarted,
DrillExpired, DrillStopped), the Link's Drill condition, and the metrics
crossmap_drill_active and crossmap_drill_until_timestamp_seconds.

Examples:
  crossmap drill --lose east
  crossmap drill --lose east --for 10m --apply
  crossmap drill --stop`, stderr)
	opts.BindFlags(fs)
	cluster := bindCluster(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("drill takes no arguments, got %q (the cluster goes in --lose)", fs.Args())
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	cfg, err := cluster.restConfig()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		return fmt.Errorf("create client: %w", err)
	}
	return cli.RunDrill(ctx, c, opts, time.Now(), stdout)
}
