package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/crossmap/crossmap/internal/pki"
)

// trustGenerate runs `crossmap trust generate args...` and decodes what it
// printed as the Secret it must be.
func trustGenerate(t *testing.T, args ...string) (*corev1.Secret, *pki.Authority, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), append([]string{"trust", "generate"}, args...), &stdout, &stderr); err != nil {
		t.Fatalf("trust generate %q = %v\nstderr: %s", args, err, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("trust generate %q printed %q on stderr; want nothing", args, stderr.String())
	}
	var s corev1.Secret
	if err := yaml.UnmarshalStrict(stdout.Bytes(), &s); err != nil {
		t.Fatalf("trust generate %q printed something that is not a Secret: %v\n%s", args, err, stdout.String())
	}
	ca, err := pki.ParseAuthority(s.Data[pki.CACertKey], s.Data[pki.CAKeyKey])
	if err != nil {
		t.Fatalf("trust generate %q: the Secret is not a trust anchor the controller accepts: %v", args, err)
	}
	return &s, ca, stdout.String()
}

// TestRunTrustGenerate: the output is a Secret manifest, found by the
// controller's defaults, holding a CA that pki.ParseAuthority (what the
// trust role reads it with) accepts and that can issue.
func TestRunTrustGenerate(t *testing.T) {
	start := time.Now()
	s, ca, out := trustGenerate(t)
	if s.APIVersion != "v1" || s.Kind != "Secret" || s.Namespace != "crossmap-system" || s.Name != "crossmap-trust-anchor" || s.Type != corev1.SecretTypeOpaque {
		t.Errorf("Secret = %s %s %s/%s type %s; want v1 Secret crossmap-system/crossmap-trust-anchor, Opaque",
			s.APIVersion, s.Kind, s.Namespace, s.Name, s.Type)
	}
	if len(s.Data) != 2 {
		t.Errorf("Secret keys = %v; want ca.crt and ca.key only", sortedKeys(s.Data))
	}
	if !strings.HasPrefix(out, "# crossmap trust anchor: apply the SAME Secret in every cluster that links") {
		t.Errorf("output starts %q; want the comment that says what to do with it", strings.SplitN(out, "\n", 2)[0])
	}
	if ca.Cert.Subject.CommonName != "crossmap trust anchor" || !ca.Cert.IsCA {
		t.Errorf("CA subject %q, IsCA %t; want crossmap trust anchor, a CA", ca.Cert.Subject.CommonName, ca.Cert.IsCA)
	}
	if life := ca.Cert.NotAfter.Sub(start); life < 9*365*24*time.Hour || life > 10*365*24*time.Hour+time.Hour {
		t.Errorf("CA valid for %s; want ten years", life)
	}
	// It issues certificates that chain to it.
	certPEM, keyPEM, err := ca.Issue("east.crossmap-gateway.svc.cluster.local", pki.Server, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	roots, err := pki.Pool(s.Data[pki.CACertKey])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.VerifyLeaf(certPEM, keyPEM, roots, "east.crossmap-gateway.svc.cluster.local", pki.Server, time.Now()); err != nil {
		t.Errorf("a certificate the CA issued does not verify against it: %v", err)
	}

	// Every run is a new CA: the operator generates once and applies that
	// one output everywhere.
	_, again, _ := trustGenerate(t)
	if pki.Fingerprint(again.Cert) == pki.Fingerprint(ca.Cert) {
		t.Error("two runs printed the same CA")
	}
}

func TestRunTrustGenerateFlags(t *testing.T) {
	start := time.Now()
	s, ca, _ := trustGenerate(t, "--name", "shared-anchor", "--namespace", "crossmap-west", "--common-name", "acme mesh", "--validity", "48h")
	if s.Namespace != "crossmap-west" || s.Name != "shared-anchor" {
		t.Errorf("Secret %s/%s; want crossmap-west/shared-anchor", s.Namespace, s.Name)
	}
	if ca.Cert.Subject.CommonName != "acme mesh" {
		t.Errorf("CA common name %q; want acme mesh", ca.Cert.Subject.CommonName)
	}
	if life := ca.Cert.NotAfter.Sub(start); life < 47*time.Hour || life > 49*time.Hour {
		t.Errorf("CA valid for %s; want 48h", life)
	}
}

// TestRunTrustRejectsBadFlags: bad input says what is wrong, all of it at
// once, and prints no key.
func TestRunTrustRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"no subcommand", []string{"trust"}, []string{"want the subcommand generate"}},
		{"unknown subcommand", []string{"trust", "rotate"}, []string{"want the subcommand generate"}},
		{"arguments", []string{"trust", "generate", "east"}, []string{"trust generate takes no arguments"}},
		{"unknown flag", []string{"trust", "generate", "--days", "3"}, []string{"days"}},
		{"bad name", []string{"trust", "generate", "--name", "Trust_Anchor"}, []string{`--name "Trust_Anchor"`}},
		{"everything bad", []string{"trust", "generate", "--namespace", "Crossmap", "--common-name", "", "--validity", "10m"},
			[]string{`--namespace "Crossmap"`, "--common-name must not be empty", "--validity must be at least 1h, got 10m0s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tc.args, &stdout, &stderr)
			if err == nil {
				t.Fatalf("run(%q) = nil; want an error", tc.args)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("run(%q) = %q; want it to hold %q", tc.args, err, want)
				}
			}
			if strings.Contains(stdout.String(), "PRIVATE KEY") || strings.Contains(stdout.String(), "ca.key") {
				t.Errorf("run(%q) printed a key despite the error:\n%s", tc.args, stdout.String())
			}
		})
	}
}

func TestRunTrustHelp(t *testing.T) {
	// `crossmap trust --help` names the subcommand.
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"trust", "--help"}, &stdout, &stderr); err != nil {
		t.Errorf("trust --help = %v; want nil", err)
	}
	if !strings.Contains(stdout.String(), "Usage: crossmap trust generate") {
		t.Errorf("trust --help printed %q; want the usage", stdout.String())
	}

	// `crossmap trust generate --help` explains what to do with the
	// output, and every flag.
	stdout.Reset()
	err := run(t.Context(), []string{"trust", "generate", "--help"}, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("trust generate --help = %v; want flag.ErrHelp", err)
	}
	if stdout.Len() != 0 {
		t.Errorf("trust generate --help printed %q on stdout; want nothing there, where a manifest is expected", stdout.String())
	}
	for _, want := range []string{
		"Usage: crossmap trust generate", "apply the same output in every", "controller's namespace",
		"kubectl --context east apply -f trust-anchor.yaml", "renews them itself", "private key",
		"-name", "--trust-anchor-secret", "-namespace", "-common-name", "-validity", `(default 87600h0m0s)`,
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("trust generate --help printed:\n%s\nwant it to hold %q", stderr.String(), want)
		}
	}
}

func sortedKeys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
