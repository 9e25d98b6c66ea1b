package testenv_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/internal/testenv"
)

// TestBed drives the test bed the way the integration and end-to-end tests
// will: two planes, a v3alpha1 Mapping, Link-style read-only credentials, and
// a remote API server that goes away and comes back. Missing binaries fail
// the test (Start's error says to run `make tools`): a skipped test bed
// would silently skip every integration test.
func TestBed(t *testing.T) {
	ctx := t.Context()

	began := time.Now()
	bed, err := testenv.Start(ctx, []string{"east", "west"}, testenv.Options{})
	if err != nil {
		t.Fatalf("start test bed: %v", err)
	}
	t.Logf("started planes east and west in %s", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := bed.Stop(); err != nil {
			t.Errorf("stop test bed: %v", err)
		}
	})

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, v3alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	east, west := bed.Plane("east"), bed.Plane("west")
	if east == nil || west == nil || bed.Plane("north") != nil {
		t.Fatalf("Plane lookup: east=%v west=%v north=%v", east, west, bed.Plane("north"))
	}
	eastAdmin := newClient(t, east, scheme)
	westAdmin := newClient(t, west, scheme)

	// Emissary's CRD is served as v3alpha1 only, with no conversion webhook.
	var crd apiextensionsv1.CustomResourceDefinition
	if err := eastAdmin.Get(ctx, client.ObjectKey{Name: "mappings.getambassador.io"}, &crd); err != nil {
		t.Fatalf("get Mapping CRD: %v", err)
	}
	if vs := crd.Spec.Versions; len(vs) != 1 || vs[0].Name != "v3alpha1" || !vs[0].Served || !vs[0].Storage {
		t.Errorf("Mapping CRD versions = %+v, want only v3alpha1, served and stored", vs)
	}
	if c := crd.Spec.Conversion; c != nil && c.Strategy != apiextensionsv1.NoneConverter {
		t.Errorf("Mapping CRD conversion strategy = %s, want None", c.Strategy)
	}

	// crossmap's own CRDs come from manifests/crd, which other work fills in:
	// log what was installed rather than pin it here.
	var crds apiextensionsv1.CustomResourceDefinitionList
	if err := westAdmin.List(ctx, &crds); err != nil {
		t.Fatalf("list CRDs in west: %v", err)
	}
	names := make([]string, 0, len(crds.Items))
	for _, c := range crds.Items {
		names = append(names, c.Name)
	}
	t.Logf("CRDs in west: %v", names)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "testenv"}}
	if err := eastAdmin.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	mapping := &v3alpha1.Mapping{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns.Name},
		Spec:       v3alpha1.MappingSpec{Prefix: "/podinfo/", Service: "podinfo.testenv:9898"},
	}
	if err := eastAdmin.Create(ctx, mapping); err != nil {
		t.Fatalf("create Mapping in east: %v", err)
	}
	checkMapping := func(t *testing.T) {
		t.Helper()
		var got v3alpha1.Mapping
		if err := eastAdmin.Get(ctx, client.ObjectKeyFromObject(mapping), &got); err != nil {
			t.Fatalf("get Mapping from east: %v", err)
		}
		if got.Spec.Prefix != mapping.Spec.Prefix || got.Spec.Service != mapping.Spec.Service {
			t.Errorf("Mapping spec = %+v, want prefix %q service %q", got.Spec, mapping.Spec.Prefix, mapping.Spec.Service)
		}
	}
	checkMapping(t)

	// The planes are separate clusters: west serves Mappings but has none.
	var westMappings v3alpha1.MappingList
	if err := westAdmin.List(ctx, &westMappings); err != nil {
		t.Fatalf("list Mappings in west: %v", err)
	}
	if n := len(westMappings.Items); n != 0 {
		t.Errorf("west has %d Mappings, want 0", n)
	}

	kubeconfig, err := east.ReadOnlyKubeconfig(ctx, "west-link")
	if err != nil {
		t.Fatalf("read-only kubeconfig: %v", err)
	}
	readOnly := kubeconfigClient(t, kubeconfig, scheme)
	checkReadOnly := func(t *testing.T) {
		t.Helper()
		if err := readOnly.List(ctx, &corev1.ServiceList{}); err != nil {
			t.Errorf("read-only list Services: %v", err)
		}
		if err := readOnly.List(ctx, &discoveryv1.EndpointSliceList{}); err != nil {
			t.Errorf("read-only list EndpointSlices: %v", err)
		}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "sneaky", Namespace: "default"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 80}}},
		}
		if err := readOnly.Create(ctx, svc); !apierrors.IsForbidden(err) {
			t.Errorf("read-only create Service: got %v, want Forbidden", err)
		}
	}
	checkReadOnly(t)

	// Only the writes of AuditedGroup reach the audit log: not its reads,
	// nor anything the admin does.
	auditedKubeconfig, err := east.Kubeconfig("audited", []string{"system:masters", testenv.AuditedGroup})
	if err != nil {
		t.Fatal(err)
	}
	audited := kubeconfigClient(t, auditedKubeconfig, scheme)
	auditedWrite := func(t *testing.T, name string) {
		t.Helper()
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name}}
		if err := audited.Create(ctx, cm); err != nil {
			t.Fatalf("audited create ConfigMap: %v", err)
		}
		if err := audited.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
			t.Fatalf("audited get ConfigMap: %v", err)
		}
	}
	auditedWrite(t, "audited-1")
	if err := eastAdmin.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "admin", Namespace: ns.Name}}); err != nil {
		t.Fatalf("admin create ConfigMap: %v", err)
	}
	create := "audited create /api/v1/namespaces/testenv/configmaps 201"
	checkAudit(t, east, create)

	// The remote API server goes away...
	began = time.Now()
	if err := east.StopAPIServer(); err != nil {
		t.Fatalf("stop east API server: %v", err)
	}
	t.Logf("stopped east API server in %s", time.Since(began).Round(time.Millisecond))
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = eastAdmin.List(short, &corev1.NamespaceList{})
	cancel()
	if err == nil {
		t.Fatal("east answered with its API server stopped")
	}
	if err := westAdmin.List(ctx, &corev1.NamespaceList{}); err != nil {
		t.Errorf("west failed while east was down: %v", err)
	}

	// ...and comes back with the same address and certificates, so clients
	// and kubeconfigs made before keep working, and etcd kept the data.
	began = time.Now()
	if err := east.StartAPIServer(); err != nil {
		t.Fatalf("restart east API server: %v", err)
	}
	t.Logf("restarted east API server in %s", time.Since(began).Round(time.Millisecond))
	// A client may still hold the dead connection for its first request.
	eventually(t, 30*time.Second, func() error { return eastAdmin.List(ctx, &corev1.NamespaceList{}) })
	eventually(t, 30*time.Second, func() error { return readOnly.List(ctx, &corev1.ServiceList{}) })
	checkMapping(t)
	checkReadOnly(t)
	// The restarted server audits with the same flags, into the same file.
	eventually(t, 30*time.Second, func() error { return audited.List(ctx, &corev1.ConfigMapList{}) })
	auditedWrite(t, "audited-2")
	checkAudit(t, east, create, create)
}

// checkAudit waits until the plane's audit log holds exactly want, each
// event as "user verb requestURI code". The server writes an event as its
// request completes, which may be a moment after the client has the answer.
func checkAudit(t *testing.T, p *testenv.Plane, want ...string) {
	t.Helper()
	eventually(t, 10*time.Second, func() error {
		data, err := os.ReadFile(p.AuditLogPath())
		if err != nil {
			return err
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			if line == "" {
				continue
			}
			var ev struct {
				User           struct{ Username string }
				Verb           string
				RequestURI     string
				ResponseStatus struct{ Code int }
			}
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				return fmt.Errorf("audit log line %q: %w", line, err)
			}
			got = append(got, fmt.Sprintf("%s %s %s %d", ev.User.Username, ev.Verb, ev.RequestURI, ev.ResponseStatus.Code))
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("audit log = %q, want %q", got, want)
		}
		return nil
	})
}

func newClient(t *testing.T, p *testenv.Plane, scheme *runtime.Scheme) client.Client {
	t.Helper()
	c, err := p.Client(scheme)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func kubeconfigClient(t *testing.T, kubeconfig []byte, scheme *runtime.Scheme) client.Client {
	t.Helper()
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		t.Fatalf("parse kubeconfig: %v", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatalf("client from kubeconfig: %v", err)
	}
	return c
}

// eventually polls f until it succeeds or timeout passes, then fails with
// f's last error.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after %s: %v", timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(fmt.Errorf("gave up waiting: %w", t.Context().Err()))
		case <-tick.C:
		}
	}
}
