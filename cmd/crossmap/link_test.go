package main

import (
	"bytes"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
)

// TestRunLinkRejectsBadFlags: bad settings fail before crossmap talks to
// either cluster.
func TestRunLinkRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"no name", []string{"--gateway-address", "192.0.2.10"}, []string{"NAME is required"}},
		{"bad name", []string{"East_1", "--gateway-address", "192.0.2.10"}, []string{`cluster NAME "East_1"`}},
		{"long name", []string{strings.Repeat("e", 31), "--gateway-address", "192.0.2.10"}, []string{"no more than 30 characters"}},
		{"two names", []string{"east", "west", "--gateway-address", "192.0.2.10"}, []string{"one cluster NAME"}},
		{"no gateway", []string{"east"}, []string{"--gateway-address is required"}},
		{"several", []string{"east", "--mode", "mesh", "--gateway-port", "0", "--token-duration", "1m"},
			[]string{`--mode "mesh"`, "--gateway-port 0", "--token-duration 1m0s"}},
		{"unknown flag", []string{"east", "--no-such-flag"}, []string{"no-such-flag"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kubeconfig, requests := countingAPIServer(t)
			args := append([]string{"link", "--kubeconfig", kubeconfig, "--apply"}, tc.args...)
			err := run(t.Context(), args, io.Discard, io.Discard)
			if err == nil {
				t.Fatalf("run(%q) = nil; want an error", args)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("run(%q) = %q; want it to hold %q", args, err, want)
				}
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("run(%q) sent %d requests; want none before the flags are valid", args, n)
			}
		})
	}
}

// TestRunLinkSameCluster: --apply into the cluster the remote kubeconfig
// names is refused before any request.
func TestRunLinkSameCluster(t *testing.T) {
	kubeconfig, requests := countingAPIServer(t)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"link", "east", "--kubeconfig", kubeconfig, "--gateway-address", "192.0.2.10", "--apply"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "is the remote cluster of --kubeconfig") {
		t.Errorf("link into the remote cluster itself = %v; want it refused", err)
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("sent %d requests; want none", n)
	}
}

// TestRunLinkReachesRemote is the control of the tests above: with valid
// flags, link does talk to the remote API server, and reports its refusal.
func TestRunLinkReachesRemote(t *testing.T) {
	kubeconfig, requests := countingAPIServer(t)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"link", "east", "--kubeconfig", kubeconfig, "--gateway-address", "192.0.2.10"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "namespace crossmap-system in the remote cluster") {
		t.Errorf("link against a refusing API server = %v; want an error about the remote namespace", err)
	}
	if requests.Load() == 0 {
		t.Error("link sent no request to the remote API server")
	}
	if stdout.Len() != 0 {
		t.Errorf("link printed %q on stdout after failing; want no manifests", stdout.String())
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a := fs.String("a", "", "")
	b := fs.Bool("b", false, "")
	args, err := parseInterspersed(fs, []string{"one", "-a", "x", "two", "-b", "three"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(args, []string{"one", "two", "three"}) || *a != "x" || !*b {
		t.Errorf("parseInterspersed = %q, a=%q b=%v; want [one two three], x, true", args, *a, *b)
	}
}
