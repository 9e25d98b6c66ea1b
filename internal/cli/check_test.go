package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
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
		// A permission on one object is granted on that object alone.
		{Permission{Resource: "secrets", Name: "crossmap-client-tls", Namespace: "cm"}, []string{"patch"}, "bob",
			"kubectl create role crossmap-secrets-crossmap-client-tls -n cm --verb=patch --resource=secrets --resource-name=crossmap-client-tls && " +
				"kubectl create rolebinding crossmap-secrets-crossmap-client-tls -n cm --role=crossmap-secrets-crossmap-client-tls --user=bob"},
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
			case "links", "secrets", "leases", "tlscontexts":
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
	o.TrustAnchorSecret = "Trust_Anchor"
	o.AsGroups = []string{"system:masters"}
	o.Export, o.Import, o.Routes = false, false, false
	err := o.Validate()
	for _, want := range []string{`--namespace "Crossmap"`, `--trust-anchor-secret "Trust_Anchor"`, "--as-group needs --as", "leave no role to check"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to hold %q", err, want)
		}
	}
}

// TestControllerPermissionsTrustRole: the trust role may create Secrets in
// the controller's namespace, patch exactly the three it issues (by name),
// and write TLSContexts there.
func TestControllerPermissionsTrustRole(t *testing.T) {
	got := map[string][]string{}
	for _, p := range ControllerPermissions("cm", true) {
		if p.Resource == "secrets" || p.Resource == "tlscontexts" {
			got[p.Resource+"/"+p.Name+" in "+p.Namespace] = p.Verbs
		}
	}
	want := map[string][]string{
		"secrets/ in cm":                     {"list", "watch", "create"},
		"secrets/crossmap-gateway-tls in cm": {"patch"},
		"secrets/crossmap-client-tls in cm":  {"patch"},
		"secrets/crossmap-trust-ca in cm":    {"patch"},
		"tlscontexts/ in cm":                 {"list", "watch", "create", "patch", "delete"},
	}
	if len(got) != len(want) {
		t.Errorf("secrets and tlscontexts permissions = %v; want %v", got, want)
	}
	for k, verbs := range want {
		if !slices.Equal(got[k], verbs) {
			t.Errorf("%s: verbs %v; want %v", k, got[k], verbs)
		}
	}
}

// rbacRule is one verb on one resource (or one named object), as an RBAC
// rule grants it and a Permission asks for it.
type rbacRule struct {
	namespaced            bool
	group, resource, name string
	verb                  string
}

func (r rbacRule) String() string {
	s := r.verb + " " + r.resource
	if r.group != "" {
		s += "." + r.group
	}
	if r.name != "" {
		s += " named " + r.name
	}
	if r.namespaced {
		return s + " (Role)"
	}
	return s + " (ClusterRole)"
}

// manifestRules expands the rules of the Role or ClusterRole in file into
// single verbs.
func manifestRules(t *testing.T, file string, namespaced bool) map[rbacRule]bool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "manifests", "rbac", file))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole // a Role has the same rules field
	if err := yaml.UnmarshalStrict(data, &role); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := map[rbacRule]bool{}
	for _, r := range role.Rules {
		names := r.ResourceNames
		if len(names) == 0 {
			names = []string{""}
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, n := range names {
					for _, v := range r.Verbs {
						out[rbacRule{namespaced, g, res, n, v}] = true
					}
				}
			}
		}
	}
	return out
}

// TestControllerPermissionsMatchManifests: what `crossmap check` asks for
// is exactly what manifests/rbac grants, verb by verb: a rule the check
// does not know of would be granted unchecked, and a permission the
// manifests lack would pass the check and fail in the cluster.
// e2e/manifests_test.go then runs the controller with these rights.
func TestControllerPermissionsMatchManifests(t *testing.T) {
	granted := manifestRules(t, "role.yaml", true)
	for r := range manifestRules(t, "cluster_role.yaml", false) {
		granted[r] = true
	}
	asked := map[rbacRule]bool{}
	for _, p := range ControllerPermissions("crossmap-system", true) {
		res := p.Resource
		if p.Subresource != "" {
			res += "/" + p.Subresource
		}
		for _, v := range p.Verbs {
			asked[rbacRule{p.Namespace != "", p.Group, res, p.Name, v}] = true
		}
	}
	for r := range asked {
		if !granted[r] {
			t.Errorf("crossmap check asks for %s; manifests/rbac does not grant it", r)
		}
	}
	for r := range granted {
		if !asked[r] {
			t.Errorf("manifests/rbac grants %s; crossmap check does not ask for it (ControllerPermissions)", r)
		}
	}
}

func TestTrustAnchorVerdict(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	anchor := func(validity time.Duration) *corev1.Secret {
		t.Helper()
		o := DefaultTrustOptions()
		o.Validity = validity
		s, err := TrustAnchorSecret(o, now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := anchor(365 * 24 * time.Hour)
	otherKey := anchor(time.Hour)
	mismatched := good.DeepCopy()
	mismatched.Data["ca.key"] = otherKey.Data["ca.key"]
	noKey := good.DeepCopy()
	delete(noKey.Data, "ca.key")
	cases := []struct {
		name           string
		secret         *corev1.Secret
		ns, anchorName string
		at             time.Time
		level          Level
		want           []string
	}{
		{"good", good, "crossmap-system", "crossmap-trust-anchor", now, LevelOK,
			[]string{`trust anchor Secret crossmap-system/crossmap-trust-anchor holds CA "crossmap trust anchor", valid until 2027-11-25T12:00:00Z (365 days)`}},
		{"missing", nil, "crossmap-system", "crossmap-trust-anchor", now, LevelFail,
			[]string{"does not exist", "crossmap trust generate --namespace crossmap-system | kubectl apply -f -", "every linked cluster", "--insecure-cleartext"}},
		{"missing, other name and namespace", nil, "cm", "anchor", now, LevelFail,
			[]string{"trust anchor Secret cm/anchor does not exist", "'crossmap trust generate --namespace cm --name anchor | kubectl apply -f -'"}},
		{"key of another CA", mismatched, "cm", "crossmap-trust-anchor", now, LevelFail,
			[]string{"is not a usable CA (keys ca.crt and ca.key): CA key does not match the CA certificate", "crossmap trust generate --namespace cm |"}},
		{"no key", noKey, "cm", "crossmap-trust-anchor", now, LevelFail, []string{"is not a usable CA", "CA key"}},
		{"expires soon", good, "cm", "crossmap-trust-anchor", now.Add(350 * 24 * time.Hour), LevelWarn,
			[]string{"expires on 2027-11-25T12:00:00Z, in 15 days", "rotate it before then"}},
		{"expired", good, "cm", "crossmap-trust-anchor", now.Add(366 * 24 * time.Hour), LevelFail,
			[]string{"expired on 2027-11-25T12:00:00Z", "make a new trust anchor"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := trustAnchorVerdict(tc.secret, tc.ns, tc.anchorName, tc.at)
			if v.level != tc.level {
				t.Errorf("level = %s (%s); want %s", v.level, v.msg, tc.level)
			}
			for _, want := range tc.want {
				if !strings.Contains(v.msg+" — fix: "+v.fix, want) {
					t.Errorf("verdict %q — fix: %q; want it to hold %q", v.msg, v.fix, want)
				}
			}
			if v.level != LevelOK && v.fix == "" {
				t.Errorf("a %s verdict without a fix: %q", v.level, v.msg)
			}
		})
	}
}

// TestForRoles: the RBAC checks of a mirroring-only controller leave out the
// Emissary and SMI resources no role of it uses, and keep the rest; those
// of the MCS role are checked only with --mcs.
func TestForRoles(t *testing.T) {
	all := ControllerPermissions("cm", true)
	o := DefaultCheckOptions()
	o.MCS = true
	if got := forRoles(all, o.roles()); len(got) != len(all) {
		t.Errorf("every role: %d permissions checked; want all %d", len(got), len(all))
	}
	o.MCS = false
	for _, p := range forRoles(all, o.roles()) {
		if p.Group == "multicluster.x-k8s.io" {
			t.Errorf("without --mcs: %s/%s is still checked", p.Group, p.Resource)
		}
	}
	o.Export, o.Routes = false, false
	var groups []string
	for _, p := range forRoles(all, o.roles()) {
		groups = append(groups, p.Group+"/"+p.Resource)
	}
	for _, gone := range []string{"getambassador.io/mappings", "getambassador.io/hosts", "getambassador.io/tlscontexts", "split.smi-spec.io/trafficsplits"} {
		if slices.Contains(groups, gone) {
			t.Errorf("mirroring only: %s is still checked", gone)
		}
	}
	for _, kept := range []string{"/services", "discovery.k8s.io/endpointslices", "crossmap.io/links", "/secrets", "coordination.k8s.io/leases"} {
		if !slices.Contains(groups, kept) {
			t.Errorf("mirroring only: %s is not checked", kept)
		}
	}
}
