package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/util/wait"
)

func TestRunUsage(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), args, &stdout, &stderr); err != nil {
			t.Errorf("run(%q) = %v; want nil", args, err)
		}
		for _, want := range []string{"Usage:", "crossmap <command>", "controller", "demo", "trust "} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("run(%q) printed %q; want it to hold %q", args, stdout.String(), want)
			}
		}
		if stderr.Len() != 0 {
			t.Errorf("run(%q) printed %q on stderr; want nothing", args, stderr.String())
		}
	}
}

func TestRunNoCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), nil, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no command") {
		t.Errorf("run() = %v; want an error saying no command was given", err)
	}
	if !strings.Contains(stdout.String(), "controller") {
		t.Errorf("run() printed %q; want the usage", stdout.String())
	}
}

func TestRunUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"mirror", "--help"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), `"mirror"`) {
		t.Errorf("run(mirror) = %v; want an error naming the command", err)
	}
	if !strings.Contains(stderr.String(), "controller") {
		t.Errorf("run(mirror) printed %q on stderr; want the usage", stderr.String())
	}
}

func TestRunCommandHelp(t *testing.T) {
	cases := []struct {
		command string
		want    []string
	}{
		{"controller", []string{"Usage: crossmap controller", "-dry-run", "-export-selector", "-cluster-name", "-ambassador-id", "-kubeconfig", "-log-level",
			"-trust-anchor-secret", `(default "crossmap-trust-anchor")`, "crossmap trust generate", "-cert-validity", "(default 24h0m0s)", "-insecure-cleartext", "dev clusters only",
			"export role", "import role", "route role", "trust role"}},
		{"demo", []string{"Usage: crossmap demo", "-once", "-status-addr", "-insecure-cleartext", "mTLS"}},
		{"check", []string{"Usage: crossmap check", "-trust-anchor-secret", "crossmap trust generate"}},
	}
	for _, tc := range cases {
		t.Run(tc.command, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), []string{tc.command, "--help"}, &stdout, &stderr)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("run(%s --help) = %v; want flag.ErrHelp", tc.command, err)
			}
			for _, want := range tc.want {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("run(%s --help) printed %q; want it to hold %q", tc.command, stderr.String(), want)
				}
			}
		})
	}
}

// countingAPIServer starts a loopback API server that refuses every request
// and counts them, and returns a kubeconfig file that points at it. KUBECONFIG
// points at it too, so that no other cluster can be reached by mistake.
func countingAPIServer(t *testing.T) (kubeconfig string, requests *atomic.Int64) {
	t.Helper()
	requests = &atomic.Int64{}
	apiserver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		http.Error(w, "this test's API server takes no requests", http.StatusServiceUnavailable)
	}))
	t.Cleanup(apiserver.Close)
	kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: counting
  cluster:
    server: `+apiserver.URL+`
contexts:
- name: counting
  context: {cluster: counting, user: nobody}
current-context: counting
users:
- name: nobody
  user: {token: none}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	return kubeconfig, requests
}

// TestRunControllerRejectsBadFlags checks that bad settings fail before
// crossmap talks to any cluster.
func TestRunControllerRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"bad cluster name", []string{"--cluster-name", "Bad_Name"}, []string{`--cluster-name "Bad_Name"`}},
		{"several bad settings", []string{"--cluster-name", "Bad_Name", "--resolve-period=0", "--export-selector="},
			[]string{`--cluster-name "Bad_Name"`, "--resolve-period must be positive", "--export-selector must not be empty"}},
		{"unknown log level", []string{"--log-level", "trace"}, []string{"debug, info or error"}},
		{"unknown flag", []string{"--no-such-flag"}, []string{"no-such-flag"}},
		{"arguments", []string{"east"}, []string{"controller takes no arguments"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kubeconfig, requests := countingAPIServer(t)
			var stdout, stderr bytes.Buffer
			args := append([]string{"controller", "--kubeconfig", kubeconfig, "--status-addr", "127.0.0.1:0"}, tc.args...)
			err := run(t.Context(), args, &stdout, &stderr)
			if err == nil {
				t.Fatalf("run(%q) = nil; want an error", args)
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("run(%q) = %q; want it to hold %q", args, err, want)
				}
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("run(%q) sent %d requests to the API server; want none before the flags are valid", args, n)
			}
		})
	}
}

// TestRunControllerReachesAPIServer is the control of
// TestRunControllerRejectsBadFlags: with valid flags, the controller does
// talk to the API server its kubeconfig names, so that test's count of zero
// means something.
func TestRunControllerReachesAPIServer(t *testing.T) {
	kubeconfig, requests := countingAPIServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout, stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"controller", "--kubeconfig", kubeconfig, "--status-addr", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, 30*time.Second, true,
		func(context.Context) (bool, error) { return requests.Load() > 0, nil })
	if err != nil {
		t.Errorf("the controller sent no request to the kubeconfig's API server: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		t.Logf("run returned %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the controller did not stop within 30s of its context ending")
	}
}

// TestLogTimestampsHaveMilliseconds checks the log's timestamps: a remote
// change reaches its mirror in tens of milliseconds, so whole seconds would
// not order the lines of one.
func TestLogTimestampsHaveMilliseconds(t *testing.T) {
	var buf bytes.Buffer
	newLogger(zapcore.InfoLevel, &buf).Info("a line")
	var line struct {
		TS string `json:"ts"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line %q: %v", buf.String(), err)
	}
	ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", line.TS)
	if err != nil {
		t.Fatalf("ts %q: want a time with milliseconds: %v", line.TS, err)
	}
	if d := time.Since(ts); d < 0 || d > time.Minute {
		t.Errorf("ts %q is %s from now; want the time of the call", line.TS, d)
	}
}
