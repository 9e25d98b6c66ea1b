package controller_test

import (
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
)

// defaultConfig is DefaultConfig with no POD_NAMESPACE in the environment.
func defaultConfig(t *testing.T) controller.Config {
	t.Helper()
	t.Setenv("POD_NAMESPACE", "")
	return controller.DefaultConfig()
}

func TestDefaultConfig(t *testing.T) {
	cfg := defaultConfig(t)
	if err := cfg.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v; want nil", err)
	}
	if cfg.Namespace != "crossmap-system" || !cfg.Export || !cfg.Import || !cfg.Routes || cfg.DryRun || cfg.LeaderElect {
		t.Errorf("DefaultConfig() = %+v; want namespace crossmap-system, every role on, no dry run, no leader election", cfg)
	}
	if want := crossmapv1.ExportLabel + "=true"; cfg.ExportSelector != want {
		t.Errorf("DefaultConfig().ExportSelector = %q; want %q", cfg.ExportSelector, want)
	}

	t.Setenv("POD_NAMESPACE", "team-a")
	if ns := controller.DefaultConfig().Namespace; ns != "team-a" {
		t.Errorf("DefaultConfig().Namespace with POD_NAMESPACE=team-a = %q; want team-a", ns)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*controller.Config)
		// want are the texts the error must hold; none means valid.
		want []string
	}{
		{"defaults", func(*controller.Config) {}, nil},
		{"export role only", func(c *controller.Config) { c.Import, c.Routes = false, false }, nil},
		{"route role only", func(c *controller.Config) { c.Export, c.Import = false, false }, nil},
		{"set-based selector", func(c *controller.Config) { c.ExportSelector = "tier in (web, api),!legacy" }, nil},
		{"dotted gateway host", func(c *controller.Config) { c.GatewayHostName = "gateway.crossmap" }, nil},
		{"served-by header off", func(c *controller.Config) { c.ServedByHeader = "" }, nil},
		{"served-by header with a space", func(c *controller.Config) { c.ServedByHeader = "x served by" }, []string{`--served-by-header "x served by"`}},

		{"cluster name with capitals and underscore", func(c *controller.Config) { c.ClusterName = "Bad_Name" }, []string{`--cluster-name "Bad_Name"`}},
		{"empty cluster name", func(c *controller.Config) { c.ClusterName = "" }, []string{`--cluster-name ""`}},
		{"dotted cluster name", func(c *controller.Config) { c.ClusterName = "east.prod" }, []string{`--cluster-name "east.prod"`}},
		{"cluster name too long", func(c *controller.Config) { c.ClusterName = strings.Repeat("a", 64) }, []string{"--cluster-name", "63"}},
		{"namespace with a slash", func(c *controller.Config) { c.Namespace = "crossmap/system" }, []string{`--namespace "crossmap/system"`}},
		{"empty namespace", func(c *controller.Config) { c.Namespace = "" }, []string{`--namespace ""`}},
		{"unparsable selector", func(c *controller.Config) { c.ExportSelector = "a=(b" }, []string{`--export-selector "a=(b"`}},
		{"empty selector", func(c *controller.Config) { c.ExportSelector = "" }, []string{"--export-selector must not be empty"}},
		{"gateway host with capitals", func(c *controller.Config) { c.GatewayHostName = "Gateway" }, []string{`--gateway-host "Gateway"`}},
		{"empty gateway host", func(c *controller.Config) { c.GatewayHostName = "" }, []string{`--gateway-host ""`}},
		{"every role off", func(c *controller.Config) { c.Export, c.Import, c.Routes = false, false, false }, []string{"--export=false", "--import=false", "--routes=false", "leave nothing to do"}},
		{"zero remote health period", func(c *controller.Config) { c.RemoteHealthPeriod = 0 }, []string{"--remote-health-period must be positive, got 0s"}},
		{"negative remote health period", func(c *controller.Config) { c.RemoteHealthPeriod = -time.Second }, []string{"--remote-health-period must be positive, got -1s"}},
		{"zero resolve period", func(c *controller.Config) { c.ResolvePeriod = 0 }, []string{"--resolve-period must be positive, got 0s"}},
		{"negative resolve period", func(c *controller.Config) { c.ResolvePeriod = -time.Minute }, []string{"--resolve-period must be positive, got -1m0s"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig(t)
			tc.change(&cfg)
			err := cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v; want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil; want an error holding %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q; want it to hold %q", err, w)
				}
			}
			if n := len(joined(err)); n != 1 {
				t.Errorf("Validate() reported %d errors (%q); want 1", n, err)
			}
		})
	}
}

func TestConfigValidateReportsEverything(t *testing.T) {
	cfg := defaultConfig(t)
	cfg.ClusterName = "Bad_Name"
	cfg.Namespace = ""
	cfg.ExportSelector = ""
	cfg.GatewayHostName = "-"
	cfg.Export, cfg.Import, cfg.Routes = false, false, false
	cfg.RemoteHealthPeriod = 0
	cfg.ResolvePeriod = -1

	err := cfg.Validate()
	want := []string{"--cluster-name", "--namespace", "--export-selector", "--gateway-host", "--export=false", "--remote-health-period", "--resolve-period"}
	errs := joined(err)
	if len(errs) != len(want) {
		t.Fatalf("Validate() reported %d errors; want %d, one per bad setting: %v", len(errs), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(errs[i].Error(), w) {
			t.Errorf("error %d = %q; want it about %s", i, errs[i], w)
		}
	}
}

// joined is the list of errors err joins, or err alone.
func joined(err error) []error {
	var j interface{ Unwrap() []error }
	if errors.As(err, &j) {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func TestConfigBindFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want func(*controller.Config)
	}{{
		name: "no flags keeps the defaults",
		want: func(*controller.Config) {},
	}, {
		name: "every flag",
		args: []string{
			"--cluster-name", "east", "--namespace", "team-a", "--export-selector", "tier=web",
			"--gateway-host", "edge", "--ambassador-id", "blue", "--ambassador-id", "green",
			"--export=false", "--import", "--routes=false", "--remote-health-period", "2s", "--resolve-period", "1m",
			"--status-addr", "127.0.0.1:9000", "--leader-elect", "--dry-run", "--pprof-addr", "127.0.0.1:6060",
		},
		want: func(c *controller.Config) {
			c.ClusterName, c.Namespace, c.ExportSelector, c.GatewayHostName = "east", "team-a", "tier=web", "edge"
			c.AmbassadorID = []string{"blue", "green"}
			c.Export, c.Import, c.Routes = false, true, false
			c.RemoteHealthPeriod, c.ResolvePeriod = 2*time.Second, time.Minute
			c.StatusAddr, c.LeaderElect, c.DryRun = "127.0.0.1:9000", true, true
			c.PprofAddr = "127.0.0.1:6060"
		},
	}, {
		name: "one ambassador id",
		args: []string{"-ambassador-id=default"},
		want: func(c *controller.Config) { c.AmbassadorID = []string{"default"} },
	}, {
		name: "status API off",
		args: []string{"--status-addr=0", "--import=false"},
		want: func(c *controller.Config) { c.StatusAddr, c.Import = "0", false },
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := defaultConfig(t)
			fs := flag.NewFlagSet("controller", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			got.BindFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatalf("Parse(%q) = %v", tc.args, err)
			}
			want := defaultConfig(t)
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after Parse(%q):\n got %+v\nwant %+v", tc.args, got, want)
			}
		})
	}
}

func TestConfigBindFlagsRejectsBadValues(t *testing.T) {
	for _, args := range [][]string{
		{"--remote-health-period", "often"},
		{"--dry-run=maybe"},
		{"--no-such-flag"},
	} {
		cfg := defaultConfig(t)
		fs := flag.NewFlagSet("controller", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.BindFlags(fs)
		if err := fs.Parse(args); err == nil {
			t.Errorf("Parse(%q) = nil; want an error", args)
		}
	}
}
