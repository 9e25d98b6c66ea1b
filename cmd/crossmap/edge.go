package main

import (
	"context"
	"fmt"
	"io"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/crossmap/crossmap/internal/edgeserver"
)

func runEdge(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("edge", `Runs the dev edge: a small Mapping-compatible edge for dev clusters, tests and
the demo. It watches the cluster's Mappings, Hosts, TLSContexts, Secrets,
Services and EndpointSlices and routes requests the way Emissary would
(hostname, prefix, prefix_regex, headers, query parameters, method,
precedence, weighted groups, rewrite, host_rewrite, timeouts, round robin over
ready endpoints). --listen takes TLS and cleartext on one port: a Host with a
tlsSecret terminates TLS (and requires client certificates when its tls says
so), a Mapping's tls originates TLS through its TLSContext, checking the
upstream certificate against the TLSContext's sni. It also serves as a
cluster's cross-cluster gateway, through the gateway Mapping and Host crossmap
writes, mutual TLS included. Fields it does not honour are logged and listed
at /status on --status-addr. Production clusters use Emissary itself.`, stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address the edge proxies on, TLS and cleartext alike")
	statusAddr := fs.String("status-addr", "127.0.0.1:8877", "address of /ready and /status (the fields not honoured); \"0\" turns it off")
	name := fs.String("name", "edge", "name used in logs")
	var ids []string
	fs.Func("ambassador-id", "the Emissary installation the edge stands in for (repeatable; default \"default\")", func(s string) error {
		ids = append(ids, s)
		return nil
	})
	cluster := bindCluster(fs)
	level := &logLevel{level: zapcore.InfoLevel}
	fs.Var(level, "log-level", "log level: debug, info or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("edge takes no arguments, got %q", fs.Args())
	}
	setupLogging(level.level, stderr)
	restCfg, err := cluster.restConfig()
	if err != nil {
		return err
	}
	srv, err := edgeserver.New(restCfg, edgeserver.Config{Listen: *listen, StatusAddr: *statusAddr, AmbassadorID: ids, Name: *name}, ctrl.Log.WithName(*name))
	if err != nil {
		return err
	}
	ctrl.Log.Info("Starting the dev edge", "listen", srv.Addr().String(), "status", fmt.Sprint(srv.StatusAddr()))
	return srv.Start(ctx)
}
