package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/crossmap/crossmap/internal/cli"
)

func runLink(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts := cli.DefaultLinkOptions()
	fs := newFlagSet("link NAME --kubeconfig FILE", `Links the remote cluster NAME to this one, so that this cluster's crossmap mirrors
the Services NAME exports. NAME is the remote cluster's name: the Link's name and
spec.clusterName, a DNS label of at most 30 characters (mirrors are <service>-NAME).

With --kubeconfig, an admin kubeconfig of the REMOTE cluster, it creates or updates
there: the namespace --remote-namespace, the ServiceAccount --service-account, the
ClusterRole crossmap-remote-reader (get, list and watch on services and
discovery.k8s.io endpointslices, nothing else) and a ClusterRoleBinding of it to
the ServiceAccount. It then requests a token for the ServiceAccount (TokenRequest
API, valid for --token-duration) and builds a kubeconfig with it and the server
and CA of --kubeconfig's cluster.

It prints the local Secret NAME-kubeconfig (key kubeconfig) and the Link as YAML
for 'kubectl apply -f -', or, with --apply, creates or updates them in the local
cluster (--local-kubeconfig, default $KUBECONFIG then ~/.kube/config). Running it
again is safe: it renews the token and keeps the Link's other settings.

Example:
  crossmap link east --kubeconfig east-admin.yaml --gateway-address 192.0.2.10 --apply`, stderr)
	opts.BindFlags(fs)
	names, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch len(names) {
	case 0:
	case 1:
		opts.Name = names[0]
	default:
		return fmt.Errorf("link takes one cluster NAME, got %q", names)
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	return cli.LinkCluster(ctx, opts, stdout, stderr)
}

// parseInterspersed parses flags that come before, after or between the
// arguments, as in 'crossmap link east --kubeconfig east.yaml', and returns
// the arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
