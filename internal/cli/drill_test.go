package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/testenv"
	"github.com/crossmap/crossmap/mapper"
)

// TestDrillTableREADME: the what-if table is the one the README shows.
func TestDrillTableREADME(t *testing.T) {
	rep := DrillReport{Cluster: "east", Links: []string{"crossmap-system/east"}, Routes: []mapper.DrillRoute{
		{Route: "test/podinfo", Failover: "weighted", Affected: true, Backends: []mapper.DrillBackend{
			{Service: "test/podinfo", Now: 50, IfLost: 100, HealthyNow: true, HealthyIfLost: true},
			{Cluster: "east", Service: "test/podinfo-east", Now: 50, IfLost: 0, HealthyNow: true},
			{Cluster: "dev-alice", Service: "test/podinfo-dev-alice", Header: "x-crossmap-cluster: dev-alice", HealthyNow: true, HealthyIfLost: true},
		}},
		{Route: "test/api", Failover: "off", Affected: true, Unserved: 50, Backends: []mapper.DrillBackend{
			{Service: "test/api", Now: 50, IfLost: 50, HealthyNow: true, HealthyIfLost: true},
			{Cluster: "east", Service: "test/api-east", Now: 50, IfLost: 50, HealthyNow: true},
		}},
	}, AtRisk: []string{"test/api"}}
	o := DefaultDrillOptions()
	var out bytes.Buffer
	if err := writeDrill(&out, o, rep, nil); err != nil {
		t.Fatal(err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "$ crossmap drill --lose east\n" + out.String(); !strings.Contains(string(readme), want) {
		t.Errorf("the README does not show the what-if as crossmap drill prints it:\n%s", want)
	}
}

// TestDrillOptionsValidate: the bounds of --for and the combinations of
// flags, each with a message naming the flag.
func TestDrillOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		mutate func(*DrillOptions)
		want   string
	}{
		{func(o *DrillOptions) { o.Lose = "east" }, ""},
		{func(o *DrillOptions) { o.Lose, o.Apply, o.For = "east", true, MinDrillDuration }, ""},
		{func(o *DrillOptions) { o.Lose, o.Apply, o.For = "east", true, crossmapv1.MaxDrillDuration }, ""},
		{func(o *DrillOptions) { o.Stop = true }, ""},
		{func(o *DrillOptions) { o.Stop, o.Lose = true, "east" }, ""},
		{func(o *DrillOptions) {}, "--lose CLUSTER is required"},
		{func(o *DrillOptions) { o.Lose, o.For = "east", MinDrillDuration-1 }, "--for 999.999999ms: a drill lasts from 1s to 24h0m0s"},
		{func(o *DrillOptions) { o.Lose, o.For = "east", crossmapv1.MaxDrillDuration+1 }, "a drill lasts from 1s to 24h0m0s"},
		{func(o *DrillOptions) { o.Lose = strings.Repeat("e", 31) }, "is no cluster name"},
		{func(o *DrillOptions) { o.Lose, o.By = "east", strings.Repeat("b", 254) }, "--by: at most 253 characters"},
		{func(o *DrillOptions) { o.Stop, o.Force = true, true }, "--stop ends a drill"},
		{func(o *DrillOptions) { o.Lose, o.DevHeader = "east", "x y" }, `--dev-header "x y"`},
	} {
		o := DefaultDrillOptions()
		c.mutate(&o)
		err := o.Validate()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v; want valid", o, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: %v; want an error holding %q", o, err, c.want)
		}
	}
}
