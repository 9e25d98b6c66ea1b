package controller_test

import (
	"slices"
	"testing"

	"github.com/crossmap/crossmap/internal/controller"
)

// TestNeeds: each role asks for the CRDs it uses and no more; a
// mirroring-only controller needs crossmap's Link CRD alone.
func TestNeeds(t *testing.T) {
	cases := []struct {
		name   string
		change func(*controller.Config)
		want   map[string][]string
	}{
		{"every role", func(*controller.Config) {}, map[string][]string{
			controller.RoleExport: {"mappings.getambassador.io", "hosts.getambassador.io"},
			controller.RoleImport: {"links.crossmap.io"},
			controller.RoleRoute:  {"mappings.getambassador.io", "hosts.getambassador.io", "links.crossmap.io", "tlscontexts.getambassador.io", "trafficsplits.split.smi-spec.io"},
		}},
		{"mirroring only", func(c *controller.Config) { c.Export, c.Routes = false, false }, map[string][]string{
			controller.RoleImport: {"links.crossmap.io"},
		}},
		{"routes in cleartext need no TLSContexts", func(c *controller.Config) { c.Export, c.Import, c.InsecureCleartext = false, false, true }, map[string][]string{
			controller.RoleRoute: {"mappings.getambassador.io", "hosts.getambassador.io", "links.crossmap.io", "trafficsplits.split.smi-spec.io"},
		}},
		{"export only", func(c *controller.Config) { c.Import, c.Routes = false, false }, map[string][]string{
			controller.RoleExport: {"mappings.getambassador.io", "hosts.getambassador.io"},
		}},
		{"MCS beside mirroring", func(c *controller.Config) { c.Export, c.Routes, c.MCS = false, false, true }, map[string][]string{
			controller.RoleImport: {"links.crossmap.io"},
			controller.RoleMCS:    {"serviceexports.multicluster.x-k8s.io", "serviceimports.multicluster.x-k8s.io"},
		}},
		{"MCS alone (self-imports only)", func(c *controller.Config) { c.Export, c.Import, c.Routes, c.MCS = false, false, false, true }, map[string][]string{
			controller.RoleMCS: {"serviceexports.multicluster.x-k8s.io", "serviceimports.multicluster.x-k8s.io"},
		}},
	}
	for _, tc := range cases {
		cfg := controller.DefaultConfig()
		tc.change(&cfg)
		got := map[string][]string{}
		for _, n := range cfg.Needs() {
			for _, c := range n.CRDs {
				got[n.Role] = append(got[n.Role], c.Name)
				if c.Install == "" {
					t.Errorf("%s: CRD %s has no install command", tc.name, c.Name)
				}
				// Only TrafficSplits are optional: every other CRD is
				// read or written by the role's reconcile.
				if c.Optional != (c.Name == controller.SplitCRD.Name) {
					t.Errorf("%s: CRD %s optional = %t", tc.name, c.Name, c.Optional)
				}
			}
			if n.Off == "" {
				t.Errorf("%s: role %s has no flag to turn it off", tc.name, n.Role)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: roles %v; want %v", tc.name, got, tc.want)
		}
		for role, want := range tc.want {
			if !slices.Equal(got[role], want) {
				t.Errorf("%s: the %s role needs %v; want %v", tc.name, role, got[role], want)
			}
		}
	}
}
