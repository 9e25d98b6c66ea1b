package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/crossmap/crossmap/internal/cli"
)

func runTrust(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(stdout, trustUsage)
			return nil
		}
		fmt.Fprintln(stderr, trustUsage)
		return fmt.Errorf("trust: want the subcommand generate")
	}
	opts := cli.DefaultTrustOptions()
	fs := newFlagSet("trust generate", `Prints a new trust anchor, a CA certificate and its key, as a Secret manifest.
Linked clusters must share one trust anchor: apply the same output in every
cluster, in the controller's namespace:

  crossmap trust generate > trust-anchor.yaml
  kubectl --context west apply -f trust-anchor.yaml
  kubectl --context east apply -f trust-anchor.yaml

crossmap then issues each cluster's gateway and client certificates from it
and renews them itself. The file holds the CA's private key: keep it safe.`, stderr)
	opts.BindFlags(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("trust generate takes no arguments, got %q", fs.Args())
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	out, err := cli.TrustAnchorYAML(opts, time.Now())
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

const trustUsage = `Usage: crossmap trust generate [flags]

Makes the trust anchor that linked clusters share for cross-cluster mTLS.
Run 'crossmap trust generate --help' for its flags.`
