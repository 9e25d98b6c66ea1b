package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
}

// Apply writes the plan: creates and updates through server-side apply under
// the one field manager "crossmap", so that a field crossmap stops setting is
// removed and fields other writers own are kept; deletes with the UID crossmap
// saw as a precondition, so an object replaced in the meantime is never
// removed. It goes on past a failed write and returns all errors.
func (a *Applier) Apply(ctx context.Context, p mapper.Plan) error {
	logger := log.FromContext(ctx)
	var errs []error
	for _, group := range []struct {
		op   string
		objs []client.Object
	}{{"create", p.Create}, {"update", p.Update}} {
		for _, obj := range group.objs {
			k := mapper.KeyOf(obj)
			a.Metrics.PlanChanges.WithLabelValues(group.op).Inc()
			if a.DryRun {
				logger.Info("Would apply object (dry run)", "operation", group.op, "object", k.String())
				continue
			}
			u, err := applyConfiguration(obj)
			if err == nil {
				err = a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u),
					client.FieldOwner(crossmapv1.ManagedBy), client.ForceOwnership)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s %s: %w", group.op, k, err))
				continue
			}
			a.Metrics.Writes.WithLabelValues(group.op).Inc()
			logger.V(1).Info("Applied object", "operation", group.op, "object", k.String())
		}
	}
	for _, obj := range p.Delete {
		k := mapper.KeyOf(obj)
		a.Metrics.PlanChanges.WithLabelValues("delete").Inc()
		if a.DryRun {
			logger.Info("Would delete object (dry run)", "object", k.String())
			continue
		}
		uid := obj.GetUID()
		err := a.Client.Delete(ctx, obj, client.Preconditions{UID: &uid})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s: %w", k, err))
			continue
		}
		if err == nil {
			a.Metrics.Writes.WithLabelValues("delete").Inc()
		}
		logger.V(1).Info("Deleted object", "object", k.String())
	}
	return errors.Join(errs...)
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
