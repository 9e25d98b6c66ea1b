package main

import (
	"context"
	"io"

	"github.com/crossmap/crossmap/internal/cli"
)

func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts := cli.DefaultExplainOptions()
	fs := newFlagSet("explain", `Explains what Emissary does with one request, read from a running controller's
status API (GET /explain): crossmap explain [flags] [METHOD] URL, e.g.
  crossmap explain GET http://podinfo.example.com/api/info -H 'x-crossmap-cluster: dev-alice'
The URL's hostname is the request's Host header. It shows the Host that serves
the request, the Mapping group Emissary picks and why (its place in Emissary's
route order), each backend's share of such requests, health, TLS identity and
cluster, the route's dev routes with the header value that selects each, and
every other Mapping with the reason it does not match. -o json prints the
/explain document. The status API listens on the controller's --status-addr
(:8090); from outside the cluster, forward it first:
  kubectl port-forward -n crossmap-system deploy/crossmap 8090:8090`, stderr)
	opts.BindFlags(fs)
	if err := opts.ParseExplainArgs(fs, args); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	return cli.Explain(ctx, opts, stdout)
}
