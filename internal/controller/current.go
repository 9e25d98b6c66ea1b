package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/mapper"
)

// currentObjects reads from the cache what Diff needs: every object of the
// given list kinds that carries the owner labels, plus whatever stands at a
// desired object's key (which may be somebody else's object, a conflict).
func currentObjects(ctx context.Context, c client.Client, desired []client.Object, owner map[string]string, lists ...client.ObjectList) ([]client.Object, error) {
	scheme := c.Scheme()
	seen := map[mapper.Key]bool{}
	var out []client.Object
	add := func(obj client.Object) error {
		o, err := withKind(obj, scheme)
		if err != nil {
			return err
		}
		k := mapper.KeyOf(o)
		if !seen[k] {
			seen[k] = true
			out = append(out, o)
		}
		return nil
	}
	for _, list := range lists {
		if err := c.List(ctx, list, client.MatchingLabels(owner)); err != nil {
			return nil, fmt.Errorf("list owned objects: %w", err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			if err := add(it.(client.Object)); err != nil {
				return nil, err
			}
		}
	}
	for _, d := range desired {
		k := mapper.KeyOf(d)
		if seen[k] {
			continue
		}
		gvk := d.GetObjectKind().GroupVersionKind()
		obj, err := newObject(c, gvk)
		if err != nil {
			return nil, err
		}
		err = c.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, obj)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", k, err)
		}
		if err := add(obj); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func newObject(c client.Client, gvk schema.GroupVersionKind) (client.Object, error) {
	o, err := c.Scheme().New(gvk)
	if err != nil {
		return nil, fmt.Errorf("new %s: %w", gvk, err)
	}
	obj, ok := o.(client.Object)
	if !ok {
		return nil, fmt.Errorf("%s is not an object", gvk)
	}
	return obj, nil
}
