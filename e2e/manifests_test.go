package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	splitv1alpha2 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha2"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/cli"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/pki"
	"github.com/crossmap/crossmap/internal/testenv"
)

// The tests in this file check the install YAML under manifests/: that every
// kustomization builds and is accepted by a real API server, that the RBAC
// is exactly enough for the controller, and that the samples tell the story
// the README promises.

// manifestsFieldOwner is the field manager of everything these tests apply.
const manifestsFieldOwner = "crossmap-e2e-manifests"

// manifestsDir is the repo's manifests/ directory.
func manifestsDir(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "manifests")
}

// kustomizeBuild runs `kustomize build dir` and returns the objects.
func kustomizeBuild(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := testenv.Kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// kustomizeOverlay writes a kustomization.yaml into a fresh directory and builds it.
// body is a format for the kustomization with one %s: the path of base, a
// directory under manifests/, relative to the overlay (kustomize refuses an
// absolute one).
func kustomizeOverlay(t *testing.T, body, base string) []*unstructured.Unstructured {
	t.Helper()
	dir := t.TempDir()
	rel, err := filepath.Rel(dir, filepath.Join(manifestsDir(t), base))
	if err != nil {
		t.Fatal(err)
	}
	body = fmt.Sprintf(body, filepath.ToSlash(rel))
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return kustomizeBuild(t, dir)
}

// kustomizations lists the directories under manifests/ holding a
// kustomization.yaml, relative to it.
func kustomizations(t *testing.T) []string {
	t.Helper()
	root := manifestsDir(t)
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "kustomization.yaml" {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			dirs = append(dirs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func manifestObjName(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return u.GetKind() + " " + u.GetName()
	}
	return u.GetKind() + " " + u.GetNamespace() + "/" + u.GetName()
}

func manifestFind(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// manifestOfKind returns the one object of kind in objs, decoded into T.
func manifestOfKind[T any](t *testing.T, objs []*unstructured.Unstructured, kind string) *T {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one %s, got %d", kind, len(found))
	}
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(found[0].Object, out); err != nil {
		t.Fatalf("decode %s: %v", manifestObjName(found[0]), err)
	}
	return out
}

// manifestApply server-side applies objs, Namespaces first, and reports every
// failure. opts may add client.DryRunAll.
func manifestApply(ctx context.Context, c client.Client, objs []*unstructured.Unstructured, opts ...client.ApplyOption) error {
	sorted := slices.Clone(objs)
	slices.SortStableFunc(sorted, func(a, b *unstructured.Unstructured) int {
		return manifestRank(a.GetKind() != "Namespace") - manifestRank(b.GetKind() != "Namespace")
	})
	var errs []error
	for _, o := range sorted {
		opts := append([]client.ApplyOption{client.FieldOwner(manifestsFieldOwner), client.ForceOwnership}, opts...)
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), opts...); err != nil {
			errs = append(errs, fmt.Errorf("apply %s: %w", manifestObjName(o), err))
		}
	}
	return errors.Join(errs...)
}

func manifestRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// manifestEnsureNamespace creates namespace name unless it exists.
func manifestEnsureNamespace(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", name, err)
	}
}

// manifestPoll retries f until it returns nil, failing the test with f's last error
// after a deadline generous enough for a loaded 2-core machine.
func manifestPoll(t *testing.T, what string, f func(ctx context.Context) error) {
	t.Helper()
	if err := manifestPollErr(what, f); err != nil {
		t.Fatal(err)
	}
}

func manifestPollErr(what string, f func(ctx context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 45*time.Second, true,
		func(ctx context.Context) (bool, error) {
			last = f(ctx)
			return last == nil, nil
		})
	if err != nil {
		return fmt.Errorf("%s: not true after 45s: %w", what, last)
	}
	return nil
}

func manifestID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// manifestWarnings collects the API server's warnings (deprecated APIs, Pod Security
// violations of workloads in a namespace with a warn level, ...).
type manifestWarnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *manifestWarnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *manifestWarnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// TestManifestsApply builds every kustomization under manifests/ and
// server-side applies every object it makes to the west API server with
// dry-run All, so that schemas (CRDs included), defaulting, validation and
// admission all run. Namespaces are applied for real: a dry-run Namespace
// does not exist for the objects that go into it.
func TestManifestsApply(t *testing.T) {
	ctx := context.Background()
	cfg := rest.CopyConfig(bed.Plane("west").Config)
	warns := &manifestWarnings{}
	cfg.WarningHandler = warns
	west, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}

	dirs := kustomizations(t)
	for _, want := range []string{".", "crd", "rbac", "controller", "samples/east", "samples/west"} {
		if !slices.Contains(dirs, want) {
			t.Errorf("manifests/%s/kustomization.yaml is missing (found %v)", want, dirs)
		}
	}
	for _, dir := range dirs {
		t.Run(strings.ReplaceAll(dir, "/", "_"), func(t *testing.T) {
			objs := kustomizeBuild(t, filepath.Join(manifestsDir(t), dir))
			if len(objs) == 0 {
				t.Fatal("builds no objects")
			}
			for _, o := range objs {
				namespaced, err := west.IsObjectNamespaced(o)
				if err != nil {
					t.Errorf("%s: %v", manifestObjName(o), err)
					continue
				}
				switch {
				case namespaced && o.GetNamespace() == "":
					t.Errorf("%s is namespaced but has no namespace: it would land in the user's current namespace", manifestObjName(o))
				case !namespaced && o.GetNamespace() != "":
					t.Errorf("%s is cluster-scoped but has namespace %q", manifestObjName(o), o.GetNamespace())
				}
			}
			var namespaces []*unstructured.Unstructured
			for _, o := range objs {
				if o.GetKind() == "Namespace" {
					namespaces = append(namespaces, o)
				}
			}
			if err := manifestApply(ctx, west, namespaces); err != nil {
				t.Fatal(err)
			}
			// The samples' Link goes into the install's namespace.
			manifestEnsureNamespace(t, west, "crossmap-system")
			if err := manifestApply(ctx, west, objs, client.DryRunAll); err != nil {
				t.Error(err)
			}
			if w := warns.take(); len(w) > 0 {
				t.Errorf("the API server warned: %q", w)
			}
		})
	}
}

// TestManifestsInstall checks what the install promises: the controller's
// command line is one crossmap accepts, the Deployment runs as documented,
// and an overlay sets the image, the cluster name and the namespace.
func TestManifestsInstall(t *testing.T) {
	dir := manifestsDir(t)
	objs := kustomizeBuild(t, dir)

	dep := manifestOfKind[appsv1.Deployment](t, objs, "Deployment")
	cfg := manifestControllerConfig(t, objs, dep)
	if cfg.Namespace != "crossmap-system" || cfg.ClusterName != "local" || !cfg.LeaderElect {
		t.Errorf("controller config: namespace %q, cluster %q, leader-elect %t; want crossmap-system, local, true",
			cfg.Namespace, cfg.ClusterName, cfg.LeaderElect)
	}
	if ptr.Deref(dep.Spec.Replicas, 1) != 2 {
		t.Errorf("replicas = %d, want 2", ptr.Deref(dep.Spec.Replicas, 1))
	}
	pod := dep.Spec.Template.Spec
	if pod.ServiceAccountName != "crossmap" {
		t.Errorf("serviceAccountName = %q, want crossmap", pod.ServiceAccountName)
	}
	if manifestFind(objs, "ServiceAccount", "crossmap") == nil {
		t.Error("no ServiceAccount crossmap")
	}
	psc := ptr.Deref(pod.SecurityContext, corev1.PodSecurityContext{})
	if !ptr.Deref(psc.RunAsNonRoot, false) || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v, want runAsNonRoot and seccomp RuntimeDefault", psc)
	}
	ctr := pod.Containers[0]
	if ctr.Image != "crossmap:latest" {
		t.Errorf("image = %q, want the placeholder crossmap:latest", ctr.Image)
	}
	sc := ptr.Deref(ctr.SecurityContext, corev1.SecurityContext{})
	if !ptr.Deref(sc.ReadOnlyRootFilesystem, false) || ptr.Deref(sc.AllowPrivilegeEscalation, true) ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("container securityContext = %+v, want a read-only root, no privilege escalation, all capabilities dropped", sc)
	}
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{{"liveness", ctr.LivenessProbe, "/healthz"}, {"readiness", ctr.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || manifestContainerPort(ctr, p.probe.HTTPGet.Port) != 8090 {
			t.Errorf("%s probe = %+v, want GET %s on the status port 8090", p.what, p.probe, p.path)
		}
	}
	if !strings.HasSuffix(cfg.StatusAddr, ":8090") {
		t.Errorf("--status-addr = %q, want port 8090", cfg.StatusAddr)
	}
	for name, want := range map[string]string{"requests.cpu": "50m", "requests.memory": "64Mi", "limits.memory": "256Mi"} {
		list := ctr.Resources.Requests
		if strings.HasPrefix(name, "limits.") {
			list = ctr.Resources.Limits
		}
		got, ok := list[corev1.ResourceName(name[strings.Index(name, ".")+1:])]
		if !ok || got.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("resources %s = %v, want %s", name, got.String(), want)
		}
	}
	if _, ok := ctr.Resources.Limits[corev1.ResourceCPU]; ok {
		t.Error("a CPU limit throttles the controller; only memory is limited")
	}

	svc := manifestOfKind[corev1.Service](t, objs, "Service")
	if svc.Name != "crossmap-status" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8090 ||
		manifestContainerPort(ctr, svc.Spec.Ports[0].TargetPort) != 8090 || !manifestSelects(svc.Spec.Selector, dep.Spec.Template.Labels) {
		t.Errorf("status Service = %s %+v, want crossmap-status port 8090 to the pods' status port", svc.Name, svc.Spec)
	}
	pdb := manifestOfKind[policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget")
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.Selector == nil ||
		!manifestSelects(pdb.Spec.Selector.MatchLabels, dep.Spec.Template.Labels) {
		t.Errorf("PodDisruptionBudget spec = %+v, want minAvailable 1 of the controller's pods", pdb.Spec)
	}

	// What the README and kustomization.yaml tell users to write.
	custom := kustomizeOverlay(t, `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: crossmap-west
resources:
- %s
images:
- name: crossmap
  newName: registry.example.com/crossmap
  newTag: v0.1.0
configMapGenerator:
- name: crossmap-config
  behavior: merge
  literals:
  - cluster-name=west
`, ".")
	dep = manifestOfKind[appsv1.Deployment](t, custom, "Deployment")
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != "registry.example.com/crossmap:v0.1.0" {
		t.Errorf("overlay image = %q, want registry.example.com/crossmap:v0.1.0", img)
	}
	cfg = manifestControllerConfig(t, custom, dep)
	if cfg.Namespace != "crossmap-west" || cfg.ClusterName != "west" {
		t.Errorf("overlay: namespace %q, cluster %q; want crossmap-west, west", cfg.Namespace, cfg.ClusterName)
	}
	if manifestFind(custom, "Namespace", "crossmap-west") == nil {
		t.Error("overlay: no Namespace crossmap-west")
	}
	for _, o := range custom {
		if o.GetNamespace() != "" && o.GetNamespace() != "crossmap-west" {
			t.Errorf("overlay: %s is not in crossmap-west", manifestObjName(o))
		}
		if o.GetKind() == "RoleBinding" || o.GetKind() == "ClusterRoleBinding" {
			var b rbacv1.ClusterRoleBinding // same subjects field as a RoleBinding
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b); err != nil {
				t.Fatal(err)
			}
			want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "crossmap", Namespace: "crossmap-west"}}
			if !slices.Equal(b.Subjects, want) {
				t.Errorf("overlay: %s subjects = %+v, want %+v", manifestObjName(o), b.Subjects, want)
			}
		}
	}
}

// manifestControllerConfig parses the Deployment's command line the way crossmap
// does, with $(VAR) expanded as the kubelet would: POD_NAMESPACE from the
// downward API, other variables from their values or ConfigMaps in objs.
func manifestControllerConfig(t *testing.T, objs []*unstructured.Unstructured, dep *appsv1.Deployment) controller.Config {
	t.Helper()
	ctr := dep.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			env[e.Name] = dep.Namespace
		case e.ValueFrom.ConfigMapKeyRef != nil:
			cm := manifestFind(objs, "ConfigMap", e.ValueFrom.ConfigMapKeyRef.Name)
			if cm == nil {
				t.Fatalf("env %s: no ConfigMap %s", e.Name, e.ValueFrom.ConfigMapKeyRef.Name)
			}
			v, ok, _ := unstructured.NestedString(cm.Object, "data", e.ValueFrom.ConfigMapKeyRef.Key)
			if !ok {
				t.Fatalf("env %s: ConfigMap %s has no key %s", e.Name, cm.GetName(), e.ValueFrom.ConfigMapKeyRef.Key)
			}
			env[e.Name] = v
		default:
			t.Fatalf("env %s: unexpected source %+v", e.Name, e.ValueFrom)
		}
	}
	if env["POD_NAMESPACE"] != dep.Namespace {
		t.Errorf("POD_NAMESPACE = %q, want the pod's namespace from the downward API", env["POD_NAMESPACE"])
	}
	if !slices.Equal(ctr.Command, []string{"crossmap"}) || len(ctr.Args) == 0 || ctr.Args[0] != "controller" {
		t.Fatalf("command %q args %q, want crossmap controller ...", ctr.Command, ctr.Args)
	}
	ref := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	var args []string
	for _, a := range ctr.Args[1:] {
		args = append(args, ref.ReplaceAllStringFunc(a, func(m string) string {
			name := ref.FindStringSubmatch(m)[1]
			v, ok := env[name]
			if !ok {
				t.Errorf("arg %q refers to $(%s), which the container does not define", a, name)
			}
			return v
		}))
	}
	cfg := controller.DefaultConfig()
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	cfg.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("crossmap controller %q: %v", args, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("crossmap controller %q: %v", args, err)
	}
	return cfg
}

func manifestContainerPort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func manifestSelects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// manifestForbidden records every request the API server refused with 403.
type manifestForbidden struct {
	mu   sync.Mutex
	reqs []string
}

func (f *manifestForbidden) wrap(rt http.RoundTripper) http.RoundTripper {
	return manifestRoundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusForbidden {
			f.mu.Lock()
			f.reqs = append(f.reqs, req.Method+" "+req.URL.RequestURI())
			f.mu.Unlock()
		}
		return resp, err
	})
}

func (f *manifestForbidden) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

type manifestRoundTripper func(*http.Request) (*http.Response, error)

func (f manifestRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// manifestLogRecorder is a logr sink that passes everything on and keeps the lines
// that mention "forbidden".
type manifestLogRecorder struct {
	logr.LogSink
	mu    *sync.Mutex
	lines *[]string
}

func newManifestLogRecorder(l logr.Logger) (logr.Logger, func() []string) {
	r := manifestLogRecorder{LogSink: l.GetSink(), mu: &sync.Mutex{}, lines: &[]string{}}
	return logr.New(r), func() []string {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.Clone(*r.lines)
	}
}

func (r manifestLogRecorder) keep(msg string, err error, kv []any) {
	line := fmt.Sprint(msg, " ", err, " ", kv)
	if strings.Contains(strings.ToLower(line), "forbidden") {
		r.mu.Lock()
		*r.lines = append(*r.lines, line)
		r.mu.Unlock()
	}
}

func (r manifestLogRecorder) Info(level int, msg string, kv ...any) {
	r.keep(msg, nil, kv)
	r.LogSink.Info(level, msg, kv...)
}

func (r manifestLogRecorder) Error(err error, msg string, kv ...any) {
	r.keep(msg, err, kv)
	r.LogSink.Error(err, msg, kv...)
}

func (r manifestLogRecorder) WithValues(kv ...any) logr.LogSink {
	return manifestLogRecorder{LogSink: r.LogSink.WithValues(kv...), mu: r.mu, lines: r.lines}
}

func (r manifestLogRecorder) WithName(name string) logr.LogSink {
	return manifestLogRecorder{LogSink: r.LogSink.WithName(name), mu: r.mu, lines: r.lines}
}

// manifestRunController runs crossmap against restCfg until the test ends.
func manifestRunController(t *testing.T, name string, restCfg *rest.Config, cfg controller.Config, logger logr.Logger) *controller.Controller {
	t.Helper()
	ctl, err := controller.New(restCfg, cfg, controller.Deps{Registry: prometheus.NewRegistry(), Logger: logger})
	if err != nil {
		t.Fatalf("create %s controller: %v", name, err)
	}
	ctx, cancel := context.WithCancel(log.IntoContext(context.Background(), logger))
	done := make(chan error, 1)
	go func() { done <- ctl.Manager.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s controller: %v", name, err)
		}
	})
	return ctl
}

func manifestTestConfig(namespace string) controller.Config {
	cfg := controller.DefaultConfig()
	cfg.Namespace = namespace
	cfg.StatusAddr = "127.0.0.1:0"
	cfg.RemoteHealthPeriod = 200 * time.Millisecond
	return cfg
}

// manifestAccess is one request the SubjectAccessReviews below ask about;
// name, when set, is the one object it is about.
type manifestAccess struct {
	verb, group, resource, namespace string
	name                             string
}

func (a manifestAccess) String() string {
	if a.name != "" {
		return fmt.Sprintf("%s %s.%s %s in %q", a.verb, a.resource, a.group, a.name, a.namespace)
	}
	return fmt.Sprintf("%s %s.%s in %q", a.verb, a.resource, a.group, a.namespace)
}

func manifestAllowed(ctx context.Context, c client.Client, user string, groups []string, a manifestAccess) (bool, error) {
	res, sub, _ := strings.Cut(a.resource, "/")
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user, Groups: groups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: a.namespace, Verb: a.verb, Group: a.group, Resource: res, Subresource: sub, Name: a.name,
		},
	}}
	if err := c.Create(ctx, review); err != nil {
		return false, err
	}
	return review.Status.Allowed, nil
}

// TestManifestsRBAC runs the controller, every role on, as the ServiceAccount
// of manifests/rbac (installed into a namespace of its own) and walks it
// through everything it writes: mirrors and their namespace, gateway Mapping
// and Host, route Mapping and TrafficSplit, Link status, Events, the leader
// Lease, the trust role's certificates (issued, then re-issued from a new
// trust anchor) and TLSContext, and the deletes. No request may be refused,
// `crossmap check` as the ServiceAccount passes, and the rights must be no
// wider than that.
func TestManifestsRBAC(t *testing.T) {
	ctx := context.Background()
	id := manifestID()
	ns := "crossmap-system-" + id
	appNS := "app-" + id
	newNS := "new-" + id // exists in east only: the Link creates it in west
	scheme := controller.NewScheme()
	east, err := bed.Plane("east").Client(scheme)
	if err != nil {
		t.Fatal(err)
	}
	west, err := bed.Plane("west").Client(scheme)
	if err != nil {
		t.Fatal(err)
	}

	// manifests/rbac in namespace ns; the cluster-scoped objects get a
	// suffix so that they are this test's own.
	objs := kustomizeOverlay(t, fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
resources:
- %%s
`, ns), "rbac")
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole":
			o.SetName(o.GetName() + "-" + id)
		case "ClusterRoleBinding":
			o.SetName(o.GetName() + "-" + id)
			if err := unstructured.SetNestedField(o.Object, "crossmap-"+id, "roleRef", "name"); err != nil {
				t.Fatal(err)
			}
		}
		if o.GetKind() == "ClusterRoleBinding" || o.GetKind() == "RoleBinding" {
			subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
			if fmt.Sprint(subjects) != fmt.Sprint([]any{map[string]any{"kind": "ServiceAccount", "name": "crossmap", "namespace": ns}}) {
				t.Errorf("%s subjects = %v, want the ServiceAccount crossmap in %s", manifestObjName(o), subjects, ns)
			}
		}
	}
	t.Cleanup(func() {
		for _, o := range objs {
			if o.GetNamespace() == "" {
				_ = west.Delete(ctx, o)
			}
		}
	})
	manifestEnsureNamespace(t, west, ns)
	if err := manifestApply(ctx, west, objs); err != nil {
		t.Fatal(err)
	}

	user := "system:serviceaccount:" + ns + ":crossmap"
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
	// The authorizer picks new bindings up a moment after they are written.
	manifestPoll(t, "RBAC in effect", func(ctx context.Context) error {
		for _, a := range []manifestAccess{
			{"watch", "discovery.k8s.io", "endpointslices", "", ""},
			{"watch", "", "secrets", ns, ""},
		} {
			if ok, err := manifestAllowed(ctx, west, user, groups, a); err != nil || !ok {
				return fmt.Errorf("%s: allowed=%t err=%v", a, ok, err)
			}
		}
		return nil
	})
	// Least privilege: what crossmap never does is not granted.
	for _, a := range []manifestAccess{
		{"list", "", "secrets", "", ""},
		{"list", "", "secrets", "default", ""},
		{"get", "", "secrets", ns, ""},
		{"create", "", "secrets", "default", ""},
		// The trust role patches its three certificate Secrets and no
		// other: never the trust anchor, never a Link's credentials.
		{"patch", "", "secrets", ns, ""},
		{"patch", "", "secrets", ns, "crossmap-trust-anchor"},
		{"patch", "", "secrets", ns, "east-kubeconfig"},
		{"update", "", "secrets", ns, "crossmap-gateway-tls"},
		{"delete", "", "secrets", ns, "crossmap-gateway-tls"},
		{"create", "getambassador.io", "tlscontexts", appNS, ""},
		{"list", "getambassador.io", "tlscontexts", "", ""},
		{"update", "", "services", appNS, ""},
		{"delete", "", "namespaces", "", ""},
		{"create", "crossmap.io", "links", ns, ""},
		{"update", "crossmap.io", "links", ns, ""},
		{"delete", "crossmap.io", "links", ns, ""},
		{"update", "crossmap.io", "links/status", ns, ""},
		{"list", "crossmap.io", "links", "", ""},
		{"create", "getambassador.io", "hosts", appNS, ""},
		{"create", "coordination.k8s.io", "leases", "default", ""},
		{"get", "", "pods", appNS, ""},
		{"create", "", "configmaps", ns, ""},
		{"create", "events.k8s.io", "events", ns, ""},
		{"impersonate", "", "serviceaccounts", "", ""},
	} {
		if ok, err := manifestAllowed(ctx, west, user, groups, a); err != nil || ok {
			t.Errorf("the ServiceAccount may %s (err=%v): more than crossmap needs", a, err)
		}
	}

	// The story's objects. East exports podinfo (in a namespace that both
	// clusters have) and other (in one that only east has).
	exportLabels := map[string]string{crossmapv1.ExportLabel: "true", "crossmap.io/test": id}
	manifestEnsureNamespace(t, east, appNS)
	manifestEnsureNamespace(t, east, newNS)
	manifestEnsureNamespace(t, west, appNS)
	for _, s := range []struct{ ns, name, ip string }{{appNS, "podinfo", "10.244.1.5"}, {newNS, "other", "10.244.1.6"}} {
		manifestCreate(t, east, manifestService(s.ns, s.name, exportLabels))
		manifestCreate(t, east, manifestReadySlice(s.ns, s.name, s.ip))
	}
	// West has its own podinfo, the user's Mapping splitting it with east
	// (and a TrafficSplit), a Mapping with a bad annotation (a Warning
	// Event), and exports api (a gateway Mapping and Host).
	manifestCreate(t, west, manifestService(appNS, "podinfo", nil))
	manifestCreate(t, west, manifestReadySlice(appNS, "podinfo", "10.244.2.5"))
	manifestCreate(t, west, manifestService(appNS, "api", exportLabels))
	user1 := &ambv3.Mapping{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "podinfo", Annotations: map[string]string{
			"crossmap.io/split": "east=50", "crossmap.io/traffic-split": "true"}},
		Spec: ambv3.MappingSpec{AmbassadorID: ambv3.AmbassadorID{id}, Hostname: "*", Prefix: "/podinfo/", Service: "podinfo." + appNS + ":9898"},
	}
	manifestCreate(t, west, user1)
	manifestCreate(t, west, &ambv3.Mapping{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "bad", Annotations: map[string]string{"crossmap.io/split": "east=lots"}},
		Spec:       ambv3.MappingSpec{AmbassadorID: ambv3.AmbassadorID{id}, Hostname: "*", Prefix: "/bad/", Service: "podinfo." + appNS + ":9898"},
	})
	kubeconfig, err := bed.Plane("east").ReadOnlyKubeconfig(ctx, "rbac-"+id)
	if err != nil {
		t.Fatal(err)
	}
	manifestCreate(t, west, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "east-kubeconfig"},
		Data:       map[string][]byte{"kubeconfig": kubeconfig},
	})
	manifestCreate(t, west, &crossmapv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "east"},
		Spec: crossmapv1.LinkSpec{
			ClusterName:       "east",
			CredentialsSecret: crossmapv1.SecretKeyRef{Name: "east-kubeconfig"},
			Gateway:           crossmapv1.GatewaySpec{Addresses: []string{gatewayIP}, Port: 4143},
			ExportSelector:    &metav1.LabelSelector{MatchLabels: exportLabels},
			CreateNamespaces:  true,
		},
	})

	// The trust anchor, as `crossmap trust generate` makes it: with it the
	// trust role issues this cluster's certificates.
	anchorOpts := cli.DefaultTrustOptions()
	anchorOpts.Namespace = ns
	anchor, err := cli.TrustAnchorSecret(anchorOpts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	manifestCreate(t, west, anchor)

	// `crossmap check` as the ServiceAccount: every RBAC check passes, and
	// it reads the trust anchor and the Link's Secret with the rights the
	// controller has.
	restCfg := rest.CopyConfig(bed.Plane("west").Config)
	restCfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	checkOpts := cli.DefaultCheckOptions()
	checkOpts.Namespace = ns
	var checkOut strings.Builder
	if err := cli.Check(ctx, restCfg, checkOpts, &checkOut); err != nil {
		t.Errorf("crossmap check as %s = %v; want every check to pass:\n%s", user, err, checkOut.String())
	}
	for _, want := range []string{
		"[ok] RBAC: may patch secrets crossmap-trust-ca in namespace " + ns,
		"[ok] RBAC: may list, watch, create, patch, delete tlscontexts (getambassador.io) in namespace " + ns,
		"[ok] trust anchor Secret " + ns + "/crossmap-trust-anchor holds CA",
		"[ok] Link east (cluster east): remote API server",
	} {
		if !strings.Contains(checkOut.String(), want) {
			t.Errorf("crossmap check as %s printed:\n%s\nwant a line holding %q", user, checkOut.String(), want)
		}
	}

	// crossmap, as its ServiceAccount.
	refused := &manifestForbidden{}
	restCfg.Wrap(refused.wrap)
	logger, forbiddenLogs := newManifestLogRecorder(testr.NewWithOptions(t, testr.Options{Verbosity: 1}).WithName("west"))
	cfg := manifestTestConfig(ns)
	cfg.ClusterName = "west-" + id
	cfg.ExportSelector = crossmapv1.ExportLabel + "=true,crossmap.io/test=" + id
	cfg.AmbassadorID = []string{id}
	cfg.LeaderElect = true
	manifestRunController(t, "west", restCfg, cfg, logger)
	// Checked however the test ends, so that a refused request is named
	// rather than guessed from a missing object.
	defer func() {
		if r := refused.list(); len(r) > 0 {
			t.Errorf("the API server refused %d request(s) of crossmap's ServiceAccount: %q", len(r), r)
		}
		if l := forbiddenLogs(); len(l) > 0 {
			t.Errorf("crossmap logged %d forbidden error(s): %q", len(l), l)
		}
	}()

	manifestPoll(t, "mirrors, routes, gateway objects, Link status, Events and Lease written", func(ctx context.Context) error {
		var errs []string
		for _, m := range []client.ObjectKey{{Namespace: appNS, Name: "podinfo-east"}, {Namespace: newNS, Name: "other-east"}} {
			var slices_ discoveryv1.EndpointSliceList
			if err := west.List(ctx, &slices_, client.InNamespace(m.Namespace), client.MatchingLabels{discoveryv1.LabelServiceName: m.Name}); err != nil {
				return err
			}
			if err := west.Get(ctx, m, &corev1.Service{}); err != nil {
				errs = append(errs, fmt.Sprintf("mirror %s: %v", m, err))
			} else if got := endpoints(slices_.Items); !slices.Equal(got, []string{gatewayIP + ":4143 ready=true"}) {
				errs = append(errs, fmt.Sprintf("mirror %s endpoints = %v", m, got))
			}
		}
		var link crossmapv1.Link
		if err := west.Get(ctx, client.ObjectKey{Namespace: ns, Name: "east"}, &link); err != nil {
			return err
		}
		if c := condition(&link, crossmapv1.ConditionReady); c != "True/Synced" || link.Status.MirroredServices != 2 {
			errs = append(errs, fmt.Sprintf("Link Ready = %s, mirroredServices = %d; want True/Synced, 2", c, link.Status.MirroredServices))
		}
		var sib ambv3.Mapping
		if err := west.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "podinfo-east"}, &sib); err != nil {
			errs = append(errs, fmt.Sprintf("sibling Mapping: %v", err))
		} else if w := ptr.Deref(sib.Spec.Weight, -1); w != 50 {
			errs = append(errs, fmt.Sprintf("sibling Mapping weight = %d, want 50", w))
		}
		if err := west.Get(ctx, client.ObjectKey{Namespace: appNS, Name: "podinfo"}, &splitv1alpha2.TrafficSplit{}); err != nil {
			errs = append(errs, fmt.Sprintf("TrafficSplit: %v", err))
		}
		if n, err := manifestCountOwned(ctx, west, &ambv3.MappingList{}, appNS, crossmapv1.RoleGateway); err != nil || n != 1 {
			errs = append(errs, fmt.Sprintf("gateway Mappings for api: %d (err=%v), want 1", n, err))
		}
		if err := west.Get(ctx, client.ObjectKey{Namespace: ns, Name: cfg.GatewayHostName}, &ambv3.Host{}); err != nil {
			errs = append(errs, fmt.Sprintf("gateway Host: %v", err))
		}
		var lease coordinationv1.Lease
		if err := west.Get(ctx, client.ObjectKey{Namespace: ns, Name: "crossmap-" + cfg.ClusterName}, &lease); err != nil || ptr.Deref(lease.Spec.HolderIdentity, "") == "" {
			errs = append(errs, fmt.Sprintf("leader Lease: held by %q (err=%v)", ptr.Deref(lease.Spec.HolderIdentity, ""), err))
		}
		var evs corev1.EventList
		if err := west.List(ctx, &evs, client.InNamespace(appNS)); err != nil {
			return err
		}
		if !slices.ContainsFunc(evs.Items, func(e corev1.Event) bool {
			return e.Reason == "InvalidAnnotation" && e.InvolvedObject.Name == "bad" && e.Type == corev1.EventTypeWarning
		}) {
			errs = append(errs, "no InvalidAnnotation Event on Mapping bad")
		}
		if sib.Spec.TLS != "crossmap-origin-east" {
			errs = append(errs, fmt.Sprintf("sibling Mapping tls = %q, want crossmap-origin-east", sib.Spec.TLS))
		}
		if err := west.Get(ctx, client.ObjectKey{Namespace: ns, Name: "crossmap-origin-east"}, &ambv3.TLSContext{}); err != nil {
			errs = append(errs, fmt.Sprintf("TLSContext crossmap-origin-east: %v", err))
		}
		if _, err := manifestIssuers(ctx, west, ns); err != nil {
			errs = append(errs, err.Error())
		}
		return joinErrs(errs)
	})

	// A new trust anchor (the second step of a rotation: a new CA first,
	// the old one after it): the trust role re-issues both certificates
	// and publishes the new bundle, which is a patch of each by name.
	before, err := manifestIssuers(ctx, west, ns)
	if err != nil {
		t.Fatal(err)
	}
	next, err := cli.TrustAnchorSecret(anchorOpts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	oldCA := anchor.Data["ca.crt"]
	manifestPatch(t, west, anchor, func(s *corev1.Secret) {
		s.Data["ca.crt"] = slices.Concat(next.Data["ca.crt"], oldCA)
		s.Data["ca.key"] = next.Data["ca.key"]
	})
	manifestPoll(t, "certificates re-issued from the new trust anchor", func(ctx context.Context) error {
		after, err := manifestIssuers(ctx, west, ns)
		if err != nil {
			return err
		}
		for secret, fp := range after {
			if fp == before[secret] {
				return fmt.Errorf("Secret %s still holds certificate %s", secret, fp)
			}
		}
		return nil
	})

	// The deletes: the user drops the annotations, east stops exporting
	// podinfo, west stops exporting api.
	manifestPatch(t, west, user1, func(m *ambv3.Mapping) { m.Annotations = nil })
	manifestDelete(t, east, manifestService(appNS, "podinfo", nil))
	unlabelled := manifestService(appNS, "api", nil)
	manifestPatch(t, west, unlabelled, func(s *corev1.Service) { s.Labels = nil })
	manifestPoll(t, "generated objects pruned", func(ctx context.Context) error {
		var errs []string
		for _, o := range []client.Object{
			&ambv3.Mapping{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "podinfo-east"}},
			&splitv1alpha2.TrafficSplit{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "podinfo"}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "podinfo-east"}},
			&ambv3.Host{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cfg.GatewayHostName}},
		} {
			if err := west.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Sprintf("%T %s still there (err=%v)", o, client.ObjectKeyFromObject(o), err))
			}
		}
		if n, err := manifestCountOwned(ctx, west, &ambv3.MappingList{}, appNS, crossmapv1.RoleGateway); err != nil || n != 0 {
			errs = append(errs, fmt.Sprintf("gateway Mappings: %d (err=%v), want 0", n, err))
		}
		var slices_ discoveryv1.EndpointSliceList
		if err := west.List(ctx, &slices_, client.InNamespace(appNS), client.MatchingLabels{discoveryv1.LabelServiceName: "podinfo-east"}); err != nil || len(slices_.Items) > 0 {
			errs = append(errs, fmt.Sprintf("mirror EndpointSlices: %d (err=%v), want 0", len(slices_.Items), err))
		}
		return joinErrs(errs)
	})
	// The Link goes: its TLSContext is pruned.
	manifestDelete(t, west, &crossmapv1.Link{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "east"}})
	manifestPoll(t, "TLSContext crossmap-origin-east pruned", func(ctx context.Context) error {
		if err := west.Get(ctx, client.ObjectKey{Namespace: ns, Name: "crossmap-origin-east"}, &ambv3.TLSContext{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("TLSContext crossmap-origin-east still there (err=%v)", err)
		}
		return nil
	})
}

// manifestIssuers returns, for each certificate Secret the trust role
// issues in ns, which certificate it holds (its fingerprint), once all
// three Secrets are there and each leaf is signed by the first CA of the
// published trust bundle.
func manifestIssuers(ctx context.Context, c client.Client, ns string) (map[string]string, error) {
	var ca corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "crossmap-trust-ca"}, &ca); err != nil {
		return nil, fmt.Errorf("trust CA Secret: %w", err)
	}
	root, err := pki.ParseCertificate(ca.Data["tls.crt"])
	if err != nil {
		return nil, fmt.Errorf("trust CA Secret: %w", err)
	}
	out := map[string]string{}
	for _, name := range []string{"crossmap-gateway-tls", "crossmap-client-tls"} {
		var s corev1.Secret
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			return nil, fmt.Errorf("certificate Secret %s: %w", name, err)
		}
		leaf, err := pki.ParseCertificate(s.Data["tls.crt"])
		if err != nil {
			return nil, fmt.Errorf("certificate Secret %s: %w", name, err)
		}
		if err := leaf.CheckSignatureFrom(root); err != nil {
			return nil, fmt.Errorf("certificate Secret %s is not signed by the trust bundle's first CA %q: %w", name, root.Subject.CommonName, err)
		}
		out[name] = pki.Fingerprint(leaf)
	}
	return out, nil
}

func manifestService(ns, name string, labels map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{
			Name: "http", Port: 9898, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}},
	}
}

// manifestReadySlice is the EndpointSlice Kubernetes' own controller (absent here)
// would write for Service name with one ready pod at ip.
func manifestReadySlice(ns, name, ip string) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		TypeMeta: metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-x7k2p",
			Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](9898), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	}
}

func manifestCreate(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}

func manifestDelete(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Delete(context.Background(), obj); err != nil {
		t.Fatalf("delete %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}

// manifestPatch reads obj, changes it with mutate and merge-patches it back.
func manifestPatch[T client.Object](t *testing.T, c client.Client, obj T, mutate func(T)) {
	t.Helper()
	ctx := context.Background()
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	before := obj.DeepCopyObject().(T)
	mutate(obj)
	if err := c.Patch(ctx, obj, client.MergeFrom(before)); err != nil {
		t.Fatalf("patch %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}

// manifestCountOwned counts the objects of list's kind in ns that crossmap wrote in
// role.
func manifestCountOwned(ctx context.Context, c client.Client, list client.ObjectList, ns, role string) (int, error) {
	err := c.List(ctx, list, client.InNamespace(ns), client.MatchingLabels{
		crossmapv1.LabelManagedBy: crossmapv1.ManagedBy, crossmapv1.LabelRole: role})
	if err != nil {
		return 0, err
	}
	return meta.LenList(list), nil
}

// TestManifestsSamples applies samples/east to east and samples/west to west
// and runs crossmap in both, as the samples' README tells users to: east
// exports podinfo, west mirrors it as podinfo-east behind east's gateway and
// splits the edge Mapping 50/50. The samples' names are fixed (namespaces
// test and crossmap-system), so everything is applied server-side (a rerun
// in the same process finds its own objects) and removed again at the end.
func TestManifestsSamples(t *testing.T) {
	ctx := context.Background()
	scheme := controller.NewScheme()
	east, err := bed.Plane("east").Client(scheme)
	if err != nil {
		t.Fatal(err)
	}
	west, err := bed.Plane("west").Client(scheme)
	if err != nil {
		t.Fatal(err)
	}
	const ctrlNS = "crossmap-system" // where the install puts crossmap
	eastObjs := kustomizeBuild(t, filepath.Join(manifestsDir(t), "samples", "east"))
	westObjs := kustomizeBuild(t, filepath.Join(manifestsDir(t), "samples", "west"))
	link := manifestFind(westObjs, "Link", "east")
	if link == nil || link.GetNamespace() != ctrlNS {
		t.Fatalf("samples/west: want Link east in %s", ctrlNS)
	}
	secretName, _, _ := unstructured.NestedString(link.Object, "spec", "credentialsSecret", "name")
	kubeconfig, err := bed.Plane("east").ReadOnlyKubeconfig(ctx, "samples-link")
	if err != nil {
		t.Fatal(err)
	}
	// The trust anchor both clusters share, as the samples' README says to
	// make it: `crossmap trust generate`, applied in each cluster.
	anchor, err := cli.TrustAnchorSecret(cli.DefaultTrustOptions(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if anchor.Namespace != ctrlNS {
		t.Fatalf("crossmap trust generate puts the Secret in %s; want the install's namespace %s", anchor.Namespace, ctrlNS)
	}
	// What the kubelets and kube-controller-manager would add: podinfo's
	// ready pods.
	eastExtra := []client.Object{manifestReadySlice("test", "podinfo", "10.244.1.20"), anchor}
	westExtra := []client.Object{
		manifestReadySlice("test", "podinfo", "10.244.2.20"),
		anchor,
		// What `crossmap link` (or kubectl create secret) would write.
		&corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNS, Name: secretName},
			Data:       map[string][]byte{"kubeconfig": kubeconfig},
		},
	}

	// Cleanups run last first: the samples are removed while the
	// controllers still run, so that they prune what they wrote; then the
	// controllers stop; then what they wrote for other tests' leftovers
	// (east exports every Service labelled crossmap.io/export=true) goes.
	t.Cleanup(func() {
		_ = east.DeleteAllOf(ctx, &ambv3.Host{}, client.InNamespace(ctrlNS), client.MatchingLabels{
			crossmapv1.LabelManagedBy: crossmapv1.ManagedBy, crossmapv1.LabelSourceCluster: "east"})
		// crossmap never deletes the certificates it issued: the next run
		// issues them anew from its own trust anchor.
		for _, c := range []client.Client{east, west} {
			_ = c.DeleteAllOf(ctx, &corev1.Secret{}, client.InNamespace(ctrlNS), client.MatchingLabels{
				crossmapv1.LabelManagedBy: crossmapv1.ManagedBy, crossmapv1.LabelRole: "trust"})
		}
		var ms ambv3.MappingList
		_ = east.List(ctx, &ms, client.MatchingLabels{crossmapv1.LabelManagedBy: crossmapv1.ManagedBy, crossmapv1.LabelSourceCluster: "east"})
		for i := range ms.Items {
			_ = east.Delete(ctx, &ms.Items[i])
		}
	})
	manifestEnsureNamespace(t, east, ctrlNS)
	manifestEnsureNamespace(t, west, ctrlNS)
	applied := map[client.Client][]*unstructured.Unstructured{}
	for _, p := range []struct {
		c     client.Client
		objs  []*unstructured.Unstructured
		extra []client.Object
	}{{east, eastObjs, eastExtra}, {west, westObjs, westExtra}} {
		objs := slices.Clone(p.objs)
		for _, e := range p.extra {
			u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(e)
			if err != nil {
				t.Fatal(err)
			}
			objs = append(objs, &unstructured.Unstructured{Object: u})
		}
		if err := manifestApply(ctx, p.c, objs); err != nil {
			t.Fatal(err)
		}
		applied[p.c] = objs
	}

	logger := testr.NewWithOptions(t, testr.Options{Verbosity: 1})
	eastCfg := manifestTestConfig(ctrlNS)
	eastCfg.ClusterName = "east"
	eastCfg.Import, eastCfg.Routes = false, false
	manifestRunController(t, "east", bed.Plane("east").Config, eastCfg, logger.WithName("east"))
	westCfg := manifestTestConfig(ctrlNS)
	westCfg.ClusterName = "west"
	westCfg.Export = false
	manifestRunController(t, "west", bed.Plane("west").Config, westCfg, logger.WithName("west"))
	t.Cleanup(func() {
		if t.Failed() {
			manifestDumpSamples(t, east, west)
		}
		for c, objs := range applied {
			for _, o := range objs {
				if o.GetKind() == "Namespace" {
					continue // other samples' runs may use it; a namespace never goes away here anyway
				}
				if err := c.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
					t.Errorf("delete %s: %v", manifestObjName(o), err)
				}
			}
		}
		err := manifestPollErr("samples' generated objects pruned", func(ctx context.Context) error {
			var errs []string
			var mirrors corev1.ServiceList
			if err := west.List(ctx, &mirrors, client.MatchingLabels{crossmapv1.LabelLink: "east", crossmapv1.LabelLinkNamespace: ctrlNS}); err != nil {
				return err
			}
			if len(mirrors.Items) > 0 {
				errs = append(errs, fmt.Sprintf("%d mirror Services of the sample Link left", len(mirrors.Items)))
			}
			if err := west.Get(ctx, client.ObjectKey{Namespace: "test", Name: "podinfo-east"}, &ambv3.Mapping{}); !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Sprintf("Mapping test/podinfo-east still there (err=%v)", err))
			}
			if n, err := manifestCountOwned(ctx, east, &ambv3.MappingList{}, "test", crossmapv1.RoleGateway); err != nil || n != 0 {
				errs = append(errs, fmt.Sprintf("%d gateway Mappings left in east's test (err=%v)", n, err))
			}
			return joinErrs(errs)
		})
		if err != nil {
			t.Error(err)
		}
	})

	manifestPoll(t, "east's gateway Mapping for podinfo", func(ctx context.Context) error {
		var ms ambv3.MappingList
		if err := east.List(ctx, &ms, client.InNamespace("test"), client.MatchingLabels{
			crossmapv1.LabelRole: crossmapv1.RoleGateway, crossmapv1.LabelSourceName: "podinfo"}); err != nil {
			return err
		}
		if len(ms.Items) != 1 || ms.Items[0].Spec.Service != "podinfo.test:9898" {
			return fmt.Errorf("gateway Mappings = %d, want one to podinfo.test:9898", len(ms.Items))
		}
		return east.Get(ctx, client.ObjectKey{Namespace: ctrlNS, Name: eastCfg.GatewayHostName}, &ambv3.Host{})
	})
	manifestPoll(t, "west's mirror test/podinfo-east behind east's gateway", func(ctx context.Context) error {
		var svc corev1.Service
		if err := west.Get(ctx, client.ObjectKey{Namespace: "test", Name: "podinfo-east"}, &svc); err != nil {
			return err
		}
		if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 9898 || len(svc.Spec.Selector) != 0 {
			return fmt.Errorf("mirror spec = %+v, want port 9898 and no selector", svc.Spec)
		}
		var es discoveryv1.EndpointSliceList
		if err := west.List(ctx, &es, client.InNamespace("test"), client.MatchingLabels{discoveryv1.LabelServiceName: "podinfo-east"}); err != nil {
			return err
		}
		if got := endpoints(es.Items); !slices.Equal(got, []string{"192.0.2.10:4143 ready=true"}) {
			return fmt.Errorf("mirror endpoints = %v, want the sample Link's gateway 192.0.2.10:4143", got)
		}
		return nil
	})
	manifestPoll(t, "west's Mapping test/podinfo-east with weight 50, over mutual TLS", func(ctx context.Context) error {
		var m ambv3.Mapping
		if err := west.Get(ctx, client.ObjectKey{Namespace: "test", Name: "podinfo-east"}, &m); err != nil {
			return err
		}
		if w := ptr.Deref(m.Spec.Weight, -1); w != 50 || m.Spec.Service != "podinfo-east.test:9898" || m.Spec.Prefix != "/podinfo/" || m.Spec.TLS != "crossmap-origin-east" {
			return fmt.Errorf("Mapping podinfo-east: weight %d, service %q, prefix %q, tls %q; want 50, podinfo-east.test:9898, /podinfo/, crossmap-origin-east",
				w, m.Spec.Service, m.Spec.Prefix, m.Spec.TLS)
		}
		return nil
	})
	// Both clusters issued their certificates from the shared anchor:
	// east its gateway's, named as west's Link expects by default, west
	// the client certificate its edge presents to east.
	manifestPoll(t, "certificates issued from the shared trust anchor", func(ctx context.Context) error {
		var errs []string
		for _, want := range []struct {
			c        client.Client
			cluster  string
			secret   string
			identity string
		}{
			{east, "east", "crossmap-gateway-tls", "east.crossmap-gateway.svc.cluster.local"},
			{west, "west", "crossmap-client-tls", "west.crossmap-gateway.svc.cluster.local"},
		} {
			var s corev1.Secret
			if err := want.c.Get(ctx, client.ObjectKey{Namespace: ctrlNS, Name: want.secret}, &s); err != nil {
				errs = append(errs, fmt.Sprintf("%s: %v", want.cluster, err))
				continue
			}
			roots, err := pki.Pool(anchor.Data["ca.crt"])
			if err != nil {
				return err
			}
			usage := pki.Server
			if want.secret == "crossmap-client-tls" {
				usage = pki.Client
			}
			if _, err := pki.VerifyLeaf(s.Data["tls.crt"], s.Data["tls.key"], roots, want.identity, usage, time.Now()); err != nil {
				errs = append(errs, fmt.Sprintf("%s: Secret %s: %v", want.cluster, want.secret, err))
			}
		}
		if err := west.Get(ctx, client.ObjectKey{Namespace: ctrlNS, Name: "crossmap-origin-east"}, &ambv3.TLSContext{}); err != nil {
			errs = append(errs, fmt.Sprintf("west: TLSContext crossmap-origin-east: %v", err))
		}
		return joinErrs(errs)
	})
}

// manifestDumpSamples logs the samples' namespace in both clusters, for failures.
func manifestDumpSamples(t *testing.T, east, west client.Client) {
	ctx := context.Background()
	for name, c := range map[string]client.Client{"east": east, "west": west} {
		var svcs corev1.ServiceList
		_ = c.List(ctx, &svcs, client.InNamespace("test"))
		for _, s := range svcs.Items {
			t.Logf("%s: Service %s labels=%v", name, s.Name, s.Labels)
		}
		var ms ambv3.MappingList
		_ = c.List(ctx, &ms, client.InNamespace("test"))
		for _, m := range ms.Items {
			t.Logf("%s: Mapping %s service=%s weight=%v", name, m.Name, m.Spec.Service, ptr.Deref(m.Spec.Weight, -1))
		}
	}
	var links crossmapv1.LinkList
	_ = west.List(ctx, &links, client.InNamespace("crossmap-system"))
	for _, l := range links.Items {
		t.Logf("west: Link %s status=%+v", l.Name, l.Status)
	}
}
