package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/crossmap/crossmap/internal/demo"
	"github.com/crossmap/crossmap/internal/netns"
)

// envSocketDir passes the host-side socket directory to the demo re-run
// inside its network namespace.
const envSocketDir = "CROSSMAP_DEMO_SOCKETS"

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", `Runs the local multi-cluster demo, the whole story with real requests:
three real control planes (west, east, dev-alice: kube-apiserver and etcd from bin/,
built by 'make tools'), a real podinfo in each, crossmap in each, east's and
dev-alice's gateways and west's edge (crossmap edge). Traffic between the clusters
is mTLS: the demo applies one trust anchor (as 'crossmap trust generate' makes it)
to every cluster, each crossmap issues its cluster's certificates from it, and a
cleartext request to east's gateway is shown refused. It splits west's edge traffic
50/50 with east, kills east's gateway and times the failover, brings it back,
sends a dev-header request to dev-alice, and prints crossmap status.
Everything runs in a network namespace the demo creates (as root, or with
unprivileged user namespaces); no packet leaves the machine.
Afterwards it keeps running so you can explore; Ctrl-C stops and cleans up.`, stderr)
	once := fs.Bool("once", false, "run the story, check every step, and exit: 0 only if every step behaved as expected")
	edgeAddr := fs.String("edge-addr", "127.0.0.1:8080", "host loopback address where west's edge is exposed while exploring")
	statusAddr := fs.String("status-addr", "127.0.0.1:8090", "host loopback address where west's status API is exposed while exploring")
	requests := fs.Int("requests", 200, "requests per traffic step")
	insecure := fs.Bool("insecure-cleartext", false, "run every crossmap with --insecure-cleartext: no mTLS between the clusters, and gateways that answer anyone (the opt-out for dev clusters, shown loudly)")
	logFile := fs.String("log-file", "", "write the components' logs to this file (default: discard)")
	level := &logLevel{level: zapcore.InfoLevel}
	fs.Var(level, "log-level", "log level of the components' logs: debug, info or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("demo takes no arguments, got %q", fs.Args())
	}
	if *requests < 20 {
		return fmt.Errorf("--requests must be at least 20, got %d", *requests)
	}
	if !netns.Inside() {
		return reexecDemo(ctx, *once, *edgeAddr, *statusAddr, stdout)
	}
	logOut := io.Discard
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		defer f.Close()
		logOut = f
	}
	setupLogging(level.level, logOut)
	return demo.Run(ctx, demo.Options{Once: *once, SocketDir: os.Getenv(envSocketDir), Requests: *requests,
		InsecureCleartext: *insecure, Out: stdout, Log: ctrl.Log})
}

// reexecDemo runs the demo again inside its own network namespace. While
// exploring, west's edge and status API are exposed on the host's loopback
// through Unix sockets, since the namespace's loopback is its own.
func reexecDemo(ctx context.Context, once bool, edgeAddr, statusAddr string, stdout io.Writer) error {
	if !once {
		dir, err := os.MkdirTemp("", "crossmap-demo-sockets-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		edge, err := netns.Expose(ctx, edgeAddr, filepath.Join(dir, "edge.sock"))
		if err != nil {
			return fmt.Errorf("expose west's edge on %s: %w (choose another with --edge-addr)", edgeAddr, err)
		}
		status, err := netns.Expose(ctx, statusAddr, filepath.Join(dir, "status.sock"))
		if err != nil {
			return fmt.Errorf("expose the status API on %s: %w (choose another with --status-addr)", statusAddr, err)
		}
		fmt.Fprintf(stdout, "Once the story has run, explore from this host:\n  curl http://%s/podinfo/\n  curl -H 'x-crossmap-cluster: dev-alice' http://%s/podinfo/\n  open http://%s/ (status page)    crossmap status --server http://%s\n\n", edge, edge, status, status)
		os.Setenv(envSocketDir, dir)
	}
	code, err := netns.Reexec()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if code != 0 {
		return errors.New("demo failed (see above)")
	}
	return nil
}
