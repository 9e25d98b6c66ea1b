package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestGrantCommand(t *testing.T) {
	services := Permission{Resource: "services"}
	status := Permission{Group: "crossmap.io", Resource: "links", Subresource: "status", Namespace: "crossmap-system"}
	cases := []struct {
		p     Permission
		verbs []string
		user  string
		want  string
	}{
		{services, []string{"list", "watch"}, "alice",
			"kubectl create clusterrole crossmap-services --verb=list,watch --resource=services && " +
				"kubectl create clusterrolebinding crossmap-services --clusterrole=crossmap-services --user=alice"},
		{status, []string{"patch"}, "system:serviceaccount:crossmap-system:crossmap",
			"kubectl create role crossmap-links-status -n crossmap-system --verb=patch --resource=links.crossmap.io/status && " +
				"kubectl create rolebinding crossmap-links-status -n crossmap-system --role=crossmap-links-status --serviceaccount=crossmap-system:crossmap"},
		{services, []string{"get"}, "", "--user=<controller user>"},
	}
	for _, tc := range cases {
		if got := grantCommand(tc.p, tc.verbs, tc.user); !strings.Contains(got, tc.want) {
			t.Errorf("grantCommand(%s, %v, %q) = %q; want it to hold %q", tc.p, tc.verbs, tc.user, got, tc.want)
		}
	}
}

// TestControllerPermissions: TrafficSplits are required only where their
// CRD is installed, and the namespaced permissions are in the controller's
// namespace.
func TestControllerPermissions(t *testing.T) {
	for _, installed := range []bool{true, false} {
		want := LevelWarn
		if installed {
			want = LevelFail
		}
		for _, p := range ControllerPermissions("cm", installed) {
			switch p.Resource {
			case "trafficsplits":
				if p.Level != want {
					t.Errorf("with the CRD installed=%v, trafficsplits are level %s; want %s", installed, p.Level, want)
				}
			case "links", "secrets", "leases":
				if p.Namespace != "cm" {
					t.Errorf("%s is checked in %q; want the controller's namespace", p, p.Namespace)
				}
			case "hosts":
				// Read everywhere, written in the controller's namespace.
				if (p.Namespace == "") != !slices.Contains(p.Verbs, "create") {
					t.Errorf("%s with verbs %v: want reads in all namespaces, writes in the controller's", p, p.Verbs)
				}
			default:
				if p.Namespace != "" || p.Level != LevelFail {
					t.Errorf("%s is checked in namespace %q at level %s; want all namespaces, FAIL", p, p.Namespace, p.Level)
				}
			}
		}
	}
}

func TestCheckOptionsValidate(t *testing.T) {
	o := DefaultCheckOptions()
	if err := o.Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	o.Namespace = "Crossmap"
	o.AsGroups = []string{"system:masters"}
	err := o.Validate()
	for _, want := range []string{`--namespace "Crossmap"`, "--as-group needs --as"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to hold %q", err, want)
		}
	}
}
