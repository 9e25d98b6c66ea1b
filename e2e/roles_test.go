package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/ingress"
	"github.com/crossmap/crossmap/internal/cli"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/testenv"
)

// plain starts a control plane without Emissary's CRDs (crossmap's own are
// there), as in a cluster whose edge is not Emissary or that is only
// meshed, and stops it at the end of the test.
func plain(t *testing.T) *testenv.Plane {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	b, err := testenv.Start(ctx, []string{"plain"}, testenv.Options{WithoutEmissary: true})
	if err != nil {
		t.Fatalf("start a plane without Emissary's CRDs: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Errorf("stop plane plain: %v", err)
		}
	})
	p := b.Plane("plain")
	// The plane really lacks them, or the tests below prove nothing.
	dc, err := discovery.NewDiscoveryClientForConfig(p.Config)
	if err != nil {
		t.Fatal(err)
	}
	if served, err := controller.ServedVersions(dc, controller.MappingCRD); err != nil || len(served) > 0 {
		t.Fatalf("plane plain serves Mappings %v (err %v); want none", served, err)
	}
	return p
}

// TestWithoutEmissary: on a cluster without Emissary's CRDs, a
// mirroring-only controller (--export=false --routes=false, mutual TLS on)
// starts and mirrors a Service exported by a remote cluster; a controller
// whose route or export role is on refuses to start with one error that
// names each role, the CRDs it misses and the command that installs them;
// and `crossmap check` with the same role flags says the same.
func TestWithoutEmissary(t *testing.T) {
	p := plain(t)

	t.Run("mirroring only", func(t *testing.T) {
		h := newBareHarness(t)
		// West is the plane without Emissary here.
		c, err := p.Client(controller.NewScheme())
		if err != nil {
			t.Fatal(err)
		}
		h.west = c
		for _, ns := range []string{h.ns, h.ctrlNS} {
			h.create(c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
		h.create(c, testAnchor().secret(h.ctrlNS))

		h.exportService("podinfo", []int32{9898}, "10.244.1.5")
		h.link(nil)
		h.run(p, func(c *controller.Config) {
			c.ClusterName = "plain"
			c.Export, c.Routes = false, false
		})
		h.wantMirror("mirror written without Emissary's CRDs", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
		// The trust role issues the client certificate the probe presents,
		// and writes no TLSContext: there is no route to name one.
		h.eventually("client certificate issued", func(ctx context.Context) error {
			return c.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: ingress.ClientCertSecret}, &corev1.Secret{})
		})
	})

	t.Run("route and export roles refuse to start", func(t *testing.T) {
		cfg := controller.DefaultConfig()
		cfg.Namespace = "cm-refused"
		cfg.StatusAddr = "0"
		_, err := controller.New(p.Config, cfg, controller.Deps{})
		var missing *controller.MissingCRDError
		if !errors.As(err, &missing) {
			t.Fatalf("controller.New with every role on = %v; want a *MissingCRDError", err)
		}
		t.Logf("the error:\n%v", err)
		const emissary = "kubectl apply -f https://app.getambassador.io/yaml/emissary/3.10.0/emissary-crds.yaml"
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 2 {
			t.Fatalf("error has %d lines; want one per role that misses a CRD (export, route):\n%v", len(lines), err)
		}
		for i, want := range [][]string{
			{"the export role needs the CRDs mappings.getambassador.io (v3alpha1), hosts.getambassador.io (v3alpha1), which the cluster does not serve: ",
				emissary, "or turn the role off with --export=false"},
			{"the route role needs the CRDs mappings.getambassador.io (v3alpha1), hosts.getambassador.io (v3alpha1), tlscontexts.getambassador.io (v3alpha1), which the cluster does not serve: ",
				emissary, "or turn the role off with --routes=false"},
		} {
			for _, w := range want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error line %d = %q; want it to hold %q", i+1, lines[i], w)
				}
			}
		}
		// The Link CRD is there: the import role is not named, and the
		// optional TrafficSplit CRD does not stop anything.
		if strings.Contains(err.Error(), "import role") || strings.Contains(err.Error(), "trafficsplits") {
			t.Errorf("error names the import role or TrafficSplits: %v", err)
		}

		// Without mutual TLS the route role needs no TLSContexts.
		cfg.InsecureCleartext, cfg.Export = true, false
		_, err = controller.New(p.Config, cfg, controller.Deps{})
		if err == nil || strings.Contains(err.Error(), "tlscontexts") || !strings.Contains(err.Error(), "the route role needs the CRDs mappings.getambassador.io (v3alpha1), hosts.getambassador.io (v3alpha1), which") {
			t.Errorf("route role in cleartext: %v; want the Mapping and Host CRDs only", err)
		}
	})

	t.Run("check per role", func(t *testing.T) {
		kubeconfig := cliAdminKubeconfig(t, p)
		ns := "cli-roles-" + cliID(t)
		c := cliAdminClient(t, p)
		if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
		cliTrustAnchor(t, c, ns, "crossmap-trust-anchor")

		out, err := cliRunCheck(t, kubeconfig, ns, func(o *cli.CheckOptions) { o.Export, o.Routes = false, false })
		if err != nil {
			t.Errorf("check --export=false --routes=false = %v; want every check to pass", err)
		}
		for _, want := range []string{
			"[ok] checking for the roles import\n",
			"[ok] CRD links.crossmap.io is established and serves v1alpha1 (served: v1alpha1; stored as v1alpha1), for the import role\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("check --export=false --routes=false lacks %q", want)
			}
		}
		if strings.Contains(out, "getambassador.io") || strings.Contains(out, "split.smi-spec.io") {
			t.Errorf("check --export=false --routes=false looks at CRDs or RBAC the import role does not use:\n%s", out)
		}

		out, err = cliRunCheck(t, kubeconfig, ns)
		if err == nil {
			t.Errorf("check with every role = nil; want a failure: Emissary's CRDs are missing")
		}
		for _, want := range []string{
			"[FAIL] CRD mappings.getambassador.io is not installed: the export and route roles need it — fix: install the CRDs of Emissary-ingress 3.x: kubectl apply -f https://app.getambassador.io/yaml/emissary/3.10.0/emissary-crds.yaml (and run Emissary's apiext conversion webhook, which they need), or run the controller with --export=false --routes=false\n",
			"[FAIL] CRD hosts.getambassador.io is not installed: the export and route roles need it — fix: ",
			"[FAIL] CRD tlscontexts.getambassador.io is not installed: the route role needs it — fix: install the CRDs of Emissary-ingress 3.x: ",
			"(and run Emissary's apiext conversion webhook, which they need), or run the controller with --routes=false\n",
			"[ok] CRD links.crossmap.io is established and serves v1alpha1 (served: v1alpha1; stored as v1alpha1), for the import and route roles\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("check with every role lacks %q", want)
			}
		}
	})
}
