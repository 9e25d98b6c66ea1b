package main

import (
	"context"
	"fmt"
	"io"

	"github.com/crossmap/crossmap/internal/cli"
)

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts := cli.DefaultStatusOptions()
	fs := newFlagSet("status", `Shows what a running controller is doing, read from its status API (GET /status):
one row per Link with
  CLUSTER   the remote cluster's name
  ALIVE     yes, or no (api) when its API server is unreachable, no (gateway) when
            its gateway fails the probe
  LATENCY   the last gateway probe's latency, "-" when the Link has no probe
  SERVICES  Services mirrored from it
  ROUTES    annotated Mappings with a backend in it
  PROBLEMS  problems of the Link, or of a route with a backend in it
then the problems, the drills (crossmap drill) and the routes in force, if
any; and, where the cluster uses the Multi-Cluster Services API, each
ServiceExport with its Valid, Ready and Conflict conditions and each
ServiceImport with its type, clusterset IP, ports and the clusters behind it.
-o json prints the whole /status document.
The status API listens on the controller's --status-addr (:8090); from outside
the cluster, forward it first:
  kubectl port-forward -n crossmap-system deploy/crossmap 8090:8090`, stderr)
	opts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("status takes no arguments, got %q", fs.Args())
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	return cli.ShowStatus(ctx, opts, stdout)
}
