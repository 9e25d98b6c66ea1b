package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/crossmap/crossmap/internal/demo"
	"github.com/crossmap/crossmap/internal/netns"
)

// envHost passes what the host side set up for exploring (a demo.Host, as
// JSON) to the demo re-run inside its network namespace.
const envHost = "CROSSMAP_DEMO_HOST"

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
Afterwards it keeps running so you can explore: west's edge and status page, and
the three API servers through one kubeconfig it writes and prints, are reachable
from this host's loopback, and it suggests what to try. Ctrl-C, or SIGTERM to
this process, stops and removes everything.`, stderr)
	once := fs.Bool("once", false, "run the story, check every step, and exit: 0 only if every step behaved as expected")
	edgeAddr := fs.String("edge-addr", "127.0.0.1:8080", "host loopback address where west's edge is exposed while exploring")
	statusAddr := fs.String("status-addr", "127.0.0.1:8090", "host loopback address where west's status API is exposed while exploring")
	controlAddr := fs.String("control-addr", "127.0.0.1:8091", "host loopback address of the demo's control endpoint (kill and revive a gateway) while exploring")
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
		return reexecDemo(ctx, *once, hostAddrs{edge: *edgeAddr, status: *statusAddr, control: *controlAddr}, stdout)
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
	var host *demo.Host
	if v := os.Getenv(envHost); v != "" {
		host = new(demo.Host)
		if err := json.Unmarshal([]byte(v), host); err != nil {
			return fmt.Errorf("read %s: %w", envHost, err)
		}
	}
	return demo.Run(ctx, demo.Options{Once: *once, Host: host, Requests: *requests,
		InsecureCleartext: *insecure, Out: stdout, Log: ctrl.Log})
}

// hostAddrs are the host loopback addresses the flags ask for.
type hostAddrs struct{ edge, status, control string }

// reexecDemo runs the demo again inside its own network namespace. While
// exploring, west's edge, its status API, the demo's control endpoint and the
// three API servers are exposed on the host's loopback through Unix sockets,
// since the namespace's loopback is its own. A signal that ends ctx is passed
// on to the demo, which stops everything it started before this returns.
func reexecDemo(ctx context.Context, once bool, addrs hostAddrs, stdout io.Writer) error {
	if !once {
		dir, err := os.MkdirTemp("", "crossmap-demo-host-")
		if err != nil {
			return fmt.Errorf("create the demo's socket dir: %w", err)
		}
		defer os.RemoveAll(dir)
		// The relays end with this function, not with ctx: the demo is
		// still stopping when a signal ends ctx.
		relayCtx, stopRelays := context.WithCancel(context.WithoutCancel(ctx))
		defer stopRelays()
		host, err := exposeHost(relayCtx, dir, addrs)
		if err != nil {
			return err
		}
		env, err := json.Marshal(host)
		if err != nil {
			return fmt.Errorf("pass the host's addresses to the demo: %w", err)
		}
		os.Setenv(envHost, string(env))
		fmt.Fprintf(stdout, "Once the story has run, explore from this host: west's edge http://%s, its status page http://%s,\nand kubectl with %s (contexts %s).\n\n",
			host.Edge, host.Status, host.Kubeconfig, strings.Join(demo.Clusters, ", "))
	}
	code, err := netns.ReexecContext(ctx)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if code != 0 {
		return errors.New("demo failed (see above)")
	}
	return nil
}

// exposeHost listens on the host's loopback for everything a user explores
// and relays each to a socket in dir that the demo serves from inside.
func exposeHost(ctx context.Context, dir string, addrs hostAddrs) (*demo.Host, error) {
	h := &demo.Host{Dir: dir, Kubeconfig: filepath.Join(dir, "kubeconfig"), APIs: map[string]string{}}
	if self, err := os.Executable(); err == nil {
		h.Crossmap = self
	} else {
		h.Crossmap = "crossmap"
	}
	expose := func(what, addr, flag, socket string) (string, error) {
		a, err := netns.Expose(ctx, addr, socket)
		if err != nil {
			if flag != "" {
				return "", fmt.Errorf("expose %s on %s: %w (choose another with %s)", what, addr, err, flag)
			}
			return "", fmt.Errorf("expose %s on %s: %w", what, addr, err)
		}
		return a.String(), nil
	}
	var err error
	if h.Edge, err = expose("west's edge", addrs.edge, "--edge-addr", h.Socket("edge")); err != nil {
		return nil, err
	}
	if h.Status, err = expose("the status API", addrs.status, "--status-addr", h.Socket("status")); err != nil {
		return nil, err
	}
	if h.Control, err = expose("the demo's control endpoint", addrs.control, "--control-addr", h.Socket("control")); err != nil {
		return nil, err
	}
	// Any free port: the kubeconfig carries it.
	for _, cluster := range demo.Clusters {
		if h.APIs[cluster], err = expose(cluster+"'s API server", "127.0.0.1:0", "", h.APISocket(cluster)); err != nil {
			return nil, err
		}
	}
	return h, nil
}
