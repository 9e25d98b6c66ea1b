package controller_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/mapper"
	"github.com/crossmap/crossmap/mapper/mappertest"
)

// errInjected is the write error the interceptor returns.
var errInjected = errors.New("injected write failure")

// mirrorService is a stamped Service test/name, as the mapper renders one.
func mirrorService(name string) *corev1.Service {
	return mapper.Stamp(mappertest.Service("test", name, mappertest.Port("http", 9898, 9898)))
}

// mirrorSlice is a stamped EndpointSlice of Service test/svc.
func mirrorSlice(name, svc string) *discoveryv1.EndpointSlice {
	return mapper.Stamp(mappertest.Slice("test", name, svc, discoveryv1.AddressTypeIPv4,
		mappertest.Endpoint("172.18.0.3", true), mappertest.SlicePort("http", 4143)))
}

// writeRecorder is a fake client's interceptor: it counts every write and
// fails those to the objects named in fail.
type writeRecorder struct {
	fail map[string]bool // namespace/name

	mu     sync.Mutex
	writes []string // "op namespace/name"
}

func (r *writeRecorder) record(op string, obj any) error {
	o, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	key := o.GetNamespace() + "/" + o.GetName()
	r.mu.Lock()
	r.writes = append(r.writes, op+" "+key)
	r.mu.Unlock()
	if r.fail[key] {
		return errInjected
	}
	return nil
}

func (r *writeRecorder) Writes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func (r *writeRecorder) funcs() interceptor.Funcs {
	return interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if err := r.record("create", obj); err != nil {
				return err
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if err := r.record("update", obj); err != nil {
				return err
			}
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if err := r.record("patch", obj); err != nil {
				return err
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			if err := r.record("apply", obj); err != nil {
				return err
			}
			return c.Apply(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			if err := r.record("delete", obj); err != nil {
				return err
			}
			return c.Delete(ctx, obj, opts...)
		},
		DeleteAllOf: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteAllOfOption) error {
			if err := r.record("deleteAllOf", obj); err != nil {
				return err
			}
			return c.DeleteAllOf(ctx, obj, opts...)
		},
	}
}

// newApplier returns an Applier on a fake client holding objs, the recorder
// of its writes and its metrics.
func newApplier(t *testing.T, dryRun bool, fail []string, objs ...client.Object) (*controller.Applier, *writeRecorder, client.Client) {
	t.Helper()
	rec := &writeRecorder{fail: map[string]bool{}}
	for _, k := range fail {
		rec.fail[k] = true
	}
	c := fake.NewClientBuilder().
		WithScheme(controller.NewScheme()).
		WithObjects(objs...).
		WithInterceptorFuncs(rec.funcs()).
		Build()
	metrics, err := controller.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	return &controller.Applier{Client: c, DryRun: dryRun, Metrics: metrics}, rec, c
}

func testContext(t *testing.T) context.Context {
	return logr.NewContext(t.Context(), testr.New(t))
}

// exists reports whether the fake client holds an object of obj's kind and
// key.
func exists(t *testing.T, c client.Client, obj client.Object) bool {
	t.Helper()
	fresh := obj.DeepCopyObject().(client.Object)
	err := c.Get(t.Context(), client.ObjectKeyFromObject(obj), fresh)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("get %s: %v", mapper.KeyOf(obj), err)
	}
	return err == nil
}

// counts reads a CounterVec by operation.
func counts(v *prometheus.CounterVec) map[string]float64 {
	got := map[string]float64{}
	for _, op := range []string{"create", "update", "delete"} {
		if n := testutil.ToFloat64(v.WithLabelValues(op)); n != 0 {
			got[op] = n
		}
	}
	return got
}

func TestApplierDryRunWritesNothing(t *testing.T) {
	stale := mirrorService("stale")
	changed := mirrorService("changed")
	a, rec, c := newApplier(t, true, nil, stale, changed)

	plan := mapper.Plan{
		Create: []mapper.Object{mirrorService("new"), mirrorSlice("new-gw4", "new")},
		Update: []mapper.Object{changed},
		Delete: []mapper.Object{stale},
	}
	if err := a.Apply(testContext(t), plan); err != nil {
		t.Fatalf("Apply in dry run = %v; want nil", err)
	}

	if w := rec.Writes(); len(w) != 0 {
		t.Errorf("Apply in dry run wrote %q; want no write", w)
	}
	if !exists(t, c, stale) || exists(t, c, plan.Create[0]) || exists(t, c, plan.Create[1]) {
		t.Error("Apply in dry run changed the cluster's objects")
	}
	if got, want := counts(a.Metrics.PlanChanges), map[string]float64{"create": 2, "update": 1, "delete": 1}; !maps.Equal(got, want) {
		t.Errorf("plan changes counted %v; want %v", got, want)
	}
	if got := counts(a.Metrics.Writes); len(got) != 0 {
		t.Errorf("writes counted %v; want none", got)
	}
}

func TestApplierDeleteNotFound(t *testing.T) {
	// gone is in the plan but was deleted by somebody else in the meantime.
	gone := mirrorService("gone")
	goneSlice := mirrorSlice("gone-gw4", "gone")
	a, rec, _ := newApplier(t, false, nil)

	if err := a.Apply(testContext(t), mapper.Plan{Delete: []mapper.Object{gone, goneSlice}}); err != nil {
		t.Fatalf("Apply of deletes of missing objects = %v; want nil: they are already gone", err)
	}
	if got, want := rec.Writes(), []string{"delete test/gone", "delete test/gone-gw4"}; !slices.Equal(got, want) {
		t.Errorf("writes %q; want %q", got, want)
	}
	if got, want := counts(a.Metrics.PlanChanges), map[string]float64{"delete": 2}; !maps.Equal(got, want) {
		t.Errorf("plan changes counted %v; want %v", got, want)
	}
}

func TestApplierGoesOnPastFailedWrites(t *testing.T) {
	doomed := mirrorService("d")
	gone := mirrorService("e")
	a, rec, c := newApplier(t, false, []string{"test/b", "test/d"}, doomed, gone)

	plan := mapper.Plan{
		Create: []mapper.Object{mirrorService("a"), mirrorService("b"), mirrorService("c")},
		Update: []mapper.Object{mirrorSlice("c-gw4", "c")},
		Delete: []mapper.Object{doomed, gone},
	}
	err := a.Apply(testContext(t), plan)
	if err == nil {
		t.Fatal("Apply = nil; want the errors of the two failed writes")
	}
	if !errors.Is(err, errInjected) {
		t.Errorf("Apply = %v; want it to wrap the write error", err)
	}
	for _, want := range []string{"create Service test/b: " + errInjected.Error(), "delete Service test/d: " + errInjected.Error()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Apply = %q; want it to hold %q", err, want)
		}
	}
	for _, ok := range []string{"test/a", "test/c", "test/e"} {
		if strings.Contains(err.Error(), ok) {
			t.Errorf("Apply = %q; want no word of %s, whose write succeeded", err, ok)
		}
	}

	// The errors come in plan order, whatever order the writes ran in.
	if b, d := strings.Index(err.Error(), "test/b"), strings.Index(err.Error(), "test/d"); b > d {
		t.Errorf("Apply = %q; want the errors in plan order", err)
	}

	// Every write was tried, once; the creates and updates, which run
	// several at a time, all before the deletes.
	got := rec.Writes()
	if len(got) != 6 {
		t.Fatalf("writes %q; want 6", got)
	}
	applies, deletes := slices.Sorted(slices.Values(got[:4])), slices.Sorted(slices.Values(got[4:]))
	if want := []string{"apply test/a", "apply test/b", "apply test/c", "apply test/c-gw4"}; !slices.Equal(applies, want) {
		t.Errorf("first writes %q; want %q, in any order", applies, want)
	}
	if want := []string{"delete test/d", "delete test/e"}; !slices.Equal(deletes, want) {
		t.Errorf("last writes %q; want %q, in any order", deletes, want)
	}
	for _, obj := range []client.Object{plan.Create[0], plan.Create[2], plan.Update[0], doomed} {
		if !exists(t, c, obj) {
			t.Errorf("%s does not exist after Apply; want it there", mapper.KeyOf(obj))
		}
	}
	for _, obj := range []client.Object{plan.Create[1], gone} {
		if exists(t, c, obj) {
			t.Errorf("%s exists after Apply; want it absent", mapper.KeyOf(obj))
		}
	}
	if got, want := counts(a.Metrics.PlanChanges), map[string]float64{"create": 3, "update": 1, "delete": 2}; !maps.Equal(got, want) {
		t.Errorf("plan changes counted %v; want %v", got, want)
	}
	if got := testutil.ToFloat64(a.Metrics.Writes.WithLabelValues("create")); got != 2 {
		t.Errorf("create writes counted %v; want 2, the successful ones", got)
	}
}

// TestApplierWritesNamespacesFirst: the objects of a plan are written
// several at a time, but a Namespace the plan creates exists before any
// object in it is written.
func TestApplierWritesNamespacesFirst(t *testing.T) {
	a, rec, _ := newApplier(t, false, nil)
	ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "test"}}
	var objs []mapper.Object
	for i := range 20 {
		objs = append(objs, mirrorService(fmt.Sprintf("svc-%02d", i)))
	}
	objs = append(objs, ns)
	if err := a.Apply(testContext(t), mapper.Plan{Create: objs}); err != nil {
		t.Fatal(err)
	}
	got := rec.Writes()
	if len(got) != len(objs) || got[0] != "apply /test" {
		t.Errorf("writes %q; want the Namespace first, then the %d Services", got, len(objs)-1)
	}
}
