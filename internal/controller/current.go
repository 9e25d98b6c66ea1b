package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/mapper"
)

// listOwned lists, from the cache, the objects of each list's kind that
// carry the owner labels, with their kinds set for the mapper.
//
// Typed lists are read without deep copies (client.UnsafeDisableDeepCopy):
// copying every owned object out of the cache on every reconcile was the
// largest cost of a reconcile with a thousand mirrors (issue 6). What comes
// back is a shallow copy of each cache object, made when the list is
// filled: its TypeMeta is ours to set, but its maps, slices and pointers
// (labels, annotations, ports, endpoints...) are the cache's. That is
// valid only because nothing downstream changes an owned object: Diff and
// DiffMemo read them, Apply deletes them by UID (and never writes them
// back), the status reads them. Whoever changes one must DeepCopy it
// first. Unstructured objects are one map shared all the way down, so
// their lists are deep copied as before.
func listOwned(ctx context.Context, c client.Client, owner map[string]string, lists ...client.ObjectList) ([]mapper.Object, error) {
	var out []mapper.Object
	for _, list := range lists {
		opts := []client.ListOption{client.MatchingLabels(owner)}
		if _, isUnstructured := list.(*unstructured.UnstructuredList); !isUnstructured {
			opts = append(opts, client.UnsafeDisableDeepCopy)
		}
		if err := c.List(ctx, list, opts...); err != nil {
			return nil, fmt.Errorf("list owned objects: %w", err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			o := it.(client.Object)
			if err := setKind(o, c.Scheme()); err != nil {
				return nil, err
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// currentObjects is what Diff compares desired against: the owned objects,
// plus whatever stands, in the cache, at a desired object's key (which may
// be somebody else's object: a conflict). The owned objects come first, as
// given, so that out[len(owned):] are the others.
func currentObjects(ctx context.Context, c client.Client, desired, owned []mapper.Object) ([]mapper.Object, error) {
	seen := make(map[mapper.Key]bool, len(owned))
	out := append([]mapper.Object(nil), owned...)
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
		// A Get deep-copies: obj is ours.
		if err := setKind(obj, c.Scheme()); err != nil {
			return nil, err
		}
		out = append(out, obj)
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

// hasLabels reports whether obj carries every label in want, with the same
// value: labels.SelectorFromSet(want).Matches, without building a selector
// and its requirements, for checks run on every owned object.
func hasLabels(obj client.Object, want map[string]string) bool {
	have := obj.GetLabels()
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}
