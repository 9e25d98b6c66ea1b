package remote

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/crossmap/crossmap/internal/testenv"
)

// The ServiceExport side of a Watcher, against real API servers: one that
// serves the MCS CRDs, read with full rights and with credentials made
// before the MCS role (no right on ServiceExports), and one without them.

func startPlane(t *testing.T, name string, opts testenv.Options) *testenv.Plane {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := testenv.Start(ctx, []string{name}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Error(err)
		}
	})
	return b.Plane(name)
}

func exportsScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(s)
	_ = mcsv1beta1.AddToScheme(s)
	return s
}

// seedExports creates, in namespace test: "labelled" (exported by label),
// "exported" (by a ServiceExport, when mcs) and "other" (neither).
func seedExports(t *testing.T, c client.Client, mcs bool) {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "test"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "labelled", Labels: map[string]string{"export": "true"}},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "exported"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "other"},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}}},
	}
	if mcs {
		objs = append(objs, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "exported"}})
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
}

// startWatcher watches the plane with cfg, ServiceExports on.
func startWatcher(t *testing.T, cfg *rest.Config) *Watcher {
	t.Helper()
	w, err := Start(context.Background(), cfg, Options{
		Selector:       labels.SelectorFromSet(labels.Set{"export": "true"}),
		HealthPeriod:   time.Second,
		ServiceExports: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

// waitFor polls cond until it returns nil, for at most 30 s.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	var last error
	if err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		last = cond()
		return last == nil, nil
	}); err != nil {
		t.Fatalf("%s: %v", what, last)
	}
}

func serviceNames(w *Watcher) []string {
	var out []string
	for _, s := range w.Services() {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out
}

func wantServices(w *Watcher, want ...string) func() error {
	return func() error {
		if !w.Synced() {
			return errors.New("not synced")
		}
		if got := serviceNames(w); !slices.Equal(got, want) {
			return fmt.Errorf("Services() = %v, want %v", got, want)
		}
		return nil
	}
}

// TestWatcherServiceExports: with ServiceExports on, a Service is exported
// by the selector or by a ServiceExport of its name, and stops being so
// when the ServiceExport goes; credentials that may not read
// ServiceExports, and a remote that does not serve them, leave the Watcher
// synced and healthy, exporting by labels, with ServiceExportsErr saying
// which.
func TestWatcherServiceExports(t *testing.T) {
	mcs := startPlane(t, "mcs", testenv.Options{})
	admin, err := client.New(mcs.Config, client.Options{Scheme: exportsScheme()})
	if err != nil {
		t.Fatal(err)
	}
	seedExports(t, admin, true)

	w := startWatcher(t, mcs.Config)
	waitFor(t, "both exported", wantServices(w, "exported", "labelled"))
	if err := w.ServiceExportsErr(); err != nil {
		t.Errorf("ServiceExportsErr() = %v, want nil", err)
	}
	if got := w.ServiceExports(); len(got) != 1 || got[0].Name != "exported" {
		t.Errorf("ServiceExports() = %v, want test/exported", got)
	}
	if err := admin.Delete(context.Background(), &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: "exported"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "unexported", wantServices(w, "labelled"))

	t.Run("credentials without ServiceExports", func(t *testing.T) {
		// What a Link made before the MCS role carries: Services and
		// EndpointSlices only.
		ctx := context.Background()
		read := []string{"get", "list", "watch"}
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "old-link"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: read},
			{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: read},
		}}
		binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "old-link"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "old-link"},
			Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: "old-link"}}}
		for _, o := range []client.Object{role, binding} {
			if err := admin.Create(ctx, o); err != nil {
				t.Fatal(err)
			}
		}
		kubeconfig, err := mcs.Kubeconfig("old-link", nil)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
		if err != nil {
			t.Fatal(err)
		}
		w := startWatcher(t, cfg)
		waitFor(t, "exported by labels, exports forbidden", func() error {
			if err := wantServices(w, "labelled")(); err != nil {
				return err
			}
			if err := w.ServiceExportsErr(); err == nil || errors.Is(err, ErrServiceExportsNotServed) {
				return fmt.Errorf("ServiceExportsErr() = %v, want a refusal", err)
			}
			return nil
		})
		if h := w.Health(); !h.Reachable {
			t.Errorf("Health() = %+v: a refusal of ServiceExports made the remote look unreachable", h)
		}
	})

	t.Run("remote without the MCS CRDs", func(t *testing.T) {
		plain := startPlane(t, "plain", testenv.Options{WithoutMCS: true})
		c, err := client.New(plain.Config, client.Options{Scheme: exportsScheme()})
		if err != nil {
			t.Fatal(err)
		}
		seedExports(t, c, false)
		w := startWatcher(t, plain.Config)
		waitFor(t, "exported by labels, no ServiceExports served", func() error {
			if err := wantServices(w, "labelled")(); err != nil {
				return err
			}
			if err := w.ServiceExportsErr(); !errors.Is(err, ErrServiceExportsNotServed) {
				return fmt.Errorf("ServiceExportsErr() = %v, want ErrServiceExportsNotServed", err)
			}
			return nil
		})
		if h := w.Health(); !h.Reachable {
			t.Errorf("Health() = %+v, want reachable", h)
		}
	})
}
