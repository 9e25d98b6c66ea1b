package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/go-logr/logr"
	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/crossmap/crossmap/internal/controller"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"controller", "run the controller against a cluster", runController},
		{"edge", "run the dev edge: a Mapping-compatible HTTP edge (and gateway) for dev clusters", runEdge},
		{"demo", "run the local multi-cluster demo on real control planes, with real requests", runDemo},
		{"status", "show a running controller's Links, routes and problems", runStatus},
		{"explain", "explain where Emissary sends a request, and why, from a running controller", runExplain},
		{"link", "link a remote cluster: read-only credentials there, a Link here", runLink},
		{"check", "check that a cluster is ready for the controller", runCheck},
		{"drill", "rehearse losing a cluster: what if, then drain it for a bounded time", runDrill},
		{"trust", "generate the trust anchor (CA) linked clusters share for mTLS", runTrust},
		{"version", "print the version, commit and Go version", runVersion},
	}
}

func main() {
	// Before any client exists; see UsePlainLists for why.
	controller.UsePlainLists()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crossmap:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "crossmap mirrors Services between Kubernetes clusters and routes Emissary edge traffic across them.")
	fmt.Fprintln(w, "\nUsage:\n  crossmap <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'crossmap <command> --help' for a command's flags.")
}

// newFlagSet returns a flag set whose --help prints the command's summary
// and flags.
func newFlagSet(name, summary string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("crossmap "+name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: crossmap %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// logLevel is the --log-level flag.
type logLevel struct{ level zapcore.Level }

func (l *logLevel) String() string { return strings.ToLower(l.level.String()) }
func (l *logLevel) Set(s string) error {
	switch s {
	case "debug", "info", "error":
		return l.level.Set(s)
	}
	return fmt.Errorf("log level must be debug, info or error, not %q", s)
}

// setupLogging installs the process-wide logger that controller-runtime and
// crossmap's reconcilers take from their contexts.
func setupLogging(level zapcore.Level, w io.Writer) { ctrl.SetLogger(newLogger(level, w)) }

// newLogger is crossmap's logger: JSON lines, with timestamps that carry
// milliseconds (controller-runtime's default is whole seconds). A remote
// change reaches its mirror in tens of milliseconds, and lines a second
// apart would not tell what came first.
func newLogger(level zapcore.Level, w io.Writer) logr.Logger {
	return zap.New(zap.Level(level), zap.WriteTo(w), func(o *zap.Options) {
		o.TimeEncoder = zapcore.ISO8601TimeEncoder
	})
}

// clusterFlags are the --kubeconfig and --context flags of the commands
// that talk to one cluster.
type clusterFlags struct{ kubeconfig, context *string }

func bindCluster(fs *flag.FlagSet) clusterFlags {
	return clusterFlags{
		kubeconfig: fs.String("kubeconfig", "", "kubeconfig file; default: in-cluster config, then $KUBECONFIG, then ~/.kube/config"),
		context:    fs.String("context", "", "kubeconfig context to use"),
	}
}

// restConfig loads the cluster's config: the named kubeconfig, else the
// usual loading rules, else the in-cluster config.
func (c clusterFlags) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *c.kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: *c.context}).ClientConfig()
	if err != nil && *c.kubeconfig == "" {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	return cfg, nil
}
