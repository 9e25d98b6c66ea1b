package main

import (
	"bytes"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// TestRunNewCommandsHelp: each command's --help explains it and lists its
// flags, on stderr, and ends in flag.ErrHelp (exit 0).
func TestRunNewCommandsHelp(t *testing.T) {
	cases := []struct {
		command string
		want    []string
	}{
		{"status", []string{"Usage: crossmap status", "CLUSTER", "ALIVE", "-server", "-o", "http://127.0.0.1:8090", "port-forward"}},
		{"link", []string{"Usage: crossmap link NAME --kubeconfig FILE", "TokenRequest", "crossmap-remote-reader", "-kubeconfig", "-context",
			"-namespace", "-gateway-address", "-gateway-port", "-mode", "-apply", "-local-kubeconfig", "-service-account",
			"-remote-namespace", "-token-duration", "8760h"}},
		{"check", []string{"Usage: crossmap check", "[ok]", "[FAIL]", "SelfSubjectAccessReviews", "v3alpha1", "-kubeconfig", "-context", "-namespace", "-as"}},
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
			if stdout.Len() != 0 {
				t.Errorf("run(%s --help) printed %q on stdout; want nothing", tc.command, stdout.String())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"status", "link", "check"} {
		if !strings.Contains(stdout.String(), "\n  "+want+" ") {
			t.Errorf("usage %q does not list %s", stdout.String(), want)
		}
	}
}

// countingStatusAPI serves the status API's own handlers over a model with
// one Link, and counts requests.
func countingStatusAPI(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	m := status.NewModel()
	m.SetLink(status.Link{Namespace: "crossmap-system", Name: "east", Cluster: "east", RemoteReachable: true, GatewayAlive: true,
		MirroredServices: []string{"test/podinfo-east"}})
	m.SetRoutes([]status.Route{{Namespace: "test", Name: "podinfo", Backends: []mapper.RouteBackend{{Cluster: "east"}}}})
	requests := &atomic.Int64{}
	h := (&status.Server{Model: m}).Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, requests
}

func TestRunStatus(t *testing.T) {
	srv, _ := countingStatusAPI(t)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"status", "--server", srv.URL}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	want := "CLUSTER  ALIVE  LATENCY  SERVICES  ROUTES  PROBLEMS\neast     yes    -        1         1       0\n"
	if stdout.String() != want {
		t.Errorf("status printed:\n%s\nwant:\n%s", stdout.String(), want)
	}
	stdout.Reset()
	if err := run(t.Context(), []string{"status", "--server", srv.URL, "-o", "json"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), `"cluster": "east"`) {
		t.Errorf("status -o json printed %q; want the indented /status document", stdout.String())
	}
}

// TestRunStatusRejectsBadFlags: bad flags fail before any request.
func TestRunStatusRejectsBadFlags(t *testing.T) {
	srv, requests := countingStatusAPI(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"-o", "yaml"}, `-o "yaml": want table or json`},
		{[]string{"--output=wide"}, `-o "wide"`},
		{[]string{"--server", "ftp://x"}, "scheme must be http or https"},
		{[]string{"east"}, "status takes no arguments"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		args := append([]string{"status", "--server", srv.URL}, tc.args...)
		err := run(t.Context(), args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v; want an error holding %q", args, err, tc.want)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("bad flags sent %d requests to the status API; want none", n)
	}
}
