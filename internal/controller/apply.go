package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
)

// Applier is the apply stage: it carries out a mapper.Plan.
type Applier struct {
	Client client.Client
	// DryRun logs what would be written and writes nothing.
	DryRun  bool
	Metrics *Metrics
	// Echoes, if set, learns the version each write left its object at.
	Echoes *Echoes
}

// applyWorkers is how many writes of one plan Apply has in flight at once.
// One at a time, a Link's first thousand mirrors were two thousand round
// trips end to end (issue 6); the API server's priority and fairness, not
// a single file of requests, should pace a burst.
const applyWorkers = 8

// Apply writes the plan: creates and updates through server-side apply under
// the one field manager "crossmap", so that a field crossmap stops setting is
// removed and fields other writers own are kept; deletes with the UID crossmap
// saw as a precondition, so an object replaced in the meantime is never
// removed. It goes on past a failed write and returns all errors, in plan
// order.
//
// Namespaces are written first, then the other creates and updates,
// applyWorkers at a time, then the deletes, applyWorkers at a time: no two
// objects of one plan depend on each other but for the namespace they are
// in.
func (a *Applier) Apply(ctx context.Context, p mapper.Plan) error {
	logger := log.FromContext(ctx)
	type write struct {
		op  string
		obj client.Object
	}
	var namespaces, applies, deletes []write
	for _, group := range []struct {
		op   string
		objs []mapper.Object
	}{{"create", p.Create}, {"update", p.Update}} {
		for _, obj := range group.objs {
			if _, isNS := obj.(*corev1.Namespace); isNS {
				namespaces = append(namespaces, write{group.op, obj})
			} else {
				applies = append(applies, write{group.op, obj})
			}
		}
	}
	for _, obj := range p.Delete {
		deletes = append(deletes, write{"delete", obj})
	}
	do := func(w write) error {
		k := mapper.KeyOf(w.obj)
		a.Metrics.PlanChanges.WithLabelValues(w.op).Inc()
		if a.DryRun {
			if w.op == "delete" {
				logger.Info("Would delete object (dry run)", "object", k.String())
			} else {
				logger.Info("Would apply object (dry run)", "operation", w.op, "object", k.String())
			}
			return nil
		}
		if w.op == "delete" {
			uid := w.obj.GetUID()
			err := a.Client.Delete(ctx, w.obj, client.Preconditions{UID: &uid})
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("delete %s: %w", k, err)
			}
			if err == nil {
				a.Metrics.Writes.WithLabelValues("delete").Inc()
			}
			logger.V(1).Info("Deleted object", "object", k.String())
			return nil
		}
		u, err := applyConfiguration(w.obj)
		if err == nil {
			a.Echoes.Begin(u)
			err = a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
				client.FieldOwner(crossmapv1.ManagedBy), client.ForceOwnership)
			// Without an error, u is now the server's answer: the object
			// as written.
			a.Echoes.End(u, err)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", w.op, k, err)
		}
		a.Metrics.Writes.WithLabelValues(w.op).Inc()
		logger.V(1).Info("Applied object", "operation", w.op, "object", k.String())
		return nil
	}
	var errs []error
	for _, phase := range []struct {
		writes  []write
		workers int
	}{{namespaces, 1}, {applies, applyWorkers}, {deletes, applyWorkers}} {
		errs = append(errs, inParallel(len(phase.writes), phase.workers, func(i int) error { return do(phase.writes[i]) })...)
	}
	return errors.Join(errs...)
}

// inParallel calls f(0) to f(n-1), at most workers at a time, and returns
// their errors in that order.
func inParallel(n, workers int, f func(int) error) []error {
	errs := make([]error, n)
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		for i := range n {
			errs[i] = f(i)
		}
		return errs
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				errs[i] = f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// applyConfiguration turns a rendered object into the body of an apply
// request: only the fields crossmap sets, no status and no server-owned
// metadata.
func applyConfiguration(obj client.Object) (*unstructured.Unstructured, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(raw, &u.Object); err != nil {
		return nil, err
	}
	delete(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	unstructured.RemoveNestedField(u.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(u.Object, "metadata", "uid")
	return u, nil
}

// setKind sets the apiVersion and kind of obj, which the mapper needs to
// key it (the cache hands objects out without them). obj must be the
// caller's own: a copy made by the cache or by listOwned, never the cache's
// object itself. Only its TypeMeta is written.
func setKind(obj client.Object, scheme *runtime.Scheme) error {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return err
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	return nil
}
