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

// listOwned lists, from the cache, the objects of each list's kind that
// carry the owner labels, with their kinds set for the mapper.
func listOwned(ctx context.Context, c client.Client, owner map[string]string, lists ...client.ObjectList) ([]client.Object, error) {
	var out []client.Object
	for _, list := range lists {
		if err := c.List(ctx, list, client.MatchingLabels(owner)); err != nil {
			return nil, fmt.Errorf("list owned objects: %w", err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			o, err := withKind(it.(client.Object), c.Scheme())
			if err != nil {
				return nil, err
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// currentObjects is what Diff compares desired against: the owned objects,
// plus whatever stands, in the cache, at a desired object's key (which may
// be somebody else's object: a conflict).
func currentObjects(ctx context.Context, c client.Client, desired, owned []client.Object) ([]client.Object, error) {
	seen := make(map[mapper.Key]bool, len(owned))
	out := append([]client.Object(nil), owned...)
	for _, o := range owned {
		seen[mapper.KeyOf(o)] = true
	}
	for _, d := range desired {
		k := mapper.KeyOf(d)
		if seen[k] {
			continue
		}
		seen[k] = true
		obj, err := newObject(c, d.GetObjectKind().GroupVersionKind())
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
		o, err := withKind(obj, c.Scheme())
		if err != nil {
			return nil, err
		}
		out = append(out, o)
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
