package main

import (
	"context"
	"fmt"
	"io"

	"github.com/crossmap/crossmap/internal/cli"
)

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts := cli.DefaultCheckOptions()
	fs := newFlagSet("check", `Checks that a cluster is ready for the crossmap controller, one line per check:
"[ok] ...", "[warn] ... — fix: ..." or "[FAIL] ... — fix: ...":
  - the API server answers, and who the checks run as;
  - the CRDs the controller's roles need (--export, --import, --routes and
    --insecure-cleartext as you run the controller) are installed and
    established: the export role needs Emissary's mappings and
    hosts.getambassador.io serving v3alpha1; the import role
    links.crossmap.io; the route role all three, and with mTLS
    tlscontexts.getambassador.io (trafficsplits.split.smi-spec.io only warns:
    it is needed for SMI TrafficSplits alone);
  - RBAC: every verb the controller uses on every resource (and on the three
    certificate Secrets it issues, by name), asked with SelfSubjectAccessReviews.
    Run it as the controller (its kubeconfig, or
    --as system:serviceaccount:<namespace>:<account>) for these to mean something;
  - the trust anchor for cross-cluster mTLS: Secret --trust-anchor-secret in
    --namespace holds a usable CA (ca.crt, ca.key), with its expiry. Missing,
    it fails: make one with 'crossmap trust generate' and apply the same Secret
    in every linked cluster;
  - each Link in --namespace: its Secret's kubeconfig reaches the remote API
    server (/readyz) and may list Services and EndpointSlices there. This is
    checked from where you run it, which may differ from the controller's pods.
Exits non-zero when a check failed; warnings alone do not fail.`, stderr)
	opts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("check takes no arguments, got %q", fs.Args())
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	return cli.RunCheck(ctx, opts, stdout)
}
