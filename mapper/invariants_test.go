package mapper_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"regexp"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
)

// Invariants that hold for every golden input, whatever the case is about.
// They run on the golden inputs so that a new case is covered by them too.

// shuffles is how many shuffled orders of a snapshot's lists each case is
// translated in, besides the reversed order.
const shuffles = 5

func TestImportInvariants(t *testing.T) {
	for _, name := range goldenCases(t, "import") {
		t.Run(name, func(t *testing.T) {
			s := loadImport(t, name)
			first := runImport(s)
			want := marshalYAML(t, first)

			// (a) Deterministic: the same snapshot again, and the same
			// snapshot with its lists in other orders, render the same.
			for i, v := range reorderings(len(s.Services), len(s.Slices)) {
				r := s
				r.Services = permute(s.Services, v[0])
				r.Slices = permute(s.Slices, v[1])
				r.GatewayAddresses = permute(s.GatewayAddresses, reversed(len(s.GatewayAddresses)))
				if got := marshalYAML(t, runImport(r)); !bytes.Equal(got, want) {
					t.Errorf("reordering %d rendered differently (-first +this):\n%s", i, lineDiff(string(want), string(got)))
				}
			}

			// Pure: the snapshot's objects are cache objects and must come
			// out as they went in.
			if pristine := loadImport(t, name); !reflect.DeepEqual(s, pristine) {
				t.Errorf("Import changed its input snapshot")
			}

			objs := first.Objects
			checkPlanInvariants(t, objs)
			checkStamped(t, objs)
			// (e) Every mirror object is selected by its Link's selector,
			// which is what the controller lists and prunes by.
			checkSelected(t, objs, mapper.MirrorSelector(s.Link))

			// The rendered objects hang together: one Service per mirrored
			// remote Service, every slice names a rendered Service, and
			// every namespace exists or is rendered.
			namespaces := s.LocalNamespaces.Clone()
			services := map[string]bool{}
			for _, o := range objs {
				switch o := o.(type) {
				case *corev1.Namespace:
					namespaces.Insert(o.Name)
				case *corev1.Service:
					services[o.Namespace+"/"+o.Name] = true
				}
			}
			if len(services) != first.Mirrored {
				t.Errorf("rendered %d Services, but mirrored = %d", len(services), first.Mirrored)
			}
			for _, o := range objs {
				if o.GetNamespace() != "" && !namespaces.Has(o.GetNamespace()) {
					t.Errorf("%s is in a namespace that neither exists nor is rendered", mapper.KeyOf(o))
				}
				if es, ok := o.(*discoveryv1.EndpointSlice); ok && !services[es.Namespace+"/"+es.Labels[discoveryv1.LabelServiceName]] {
					t.Errorf("%s belongs to Service %q, which is not rendered", mapper.KeyOf(o), es.Labels[discoveryv1.LabelServiceName])
				}
			}
		})
	}
}

func TestExportInvariants(t *testing.T) {
	for _, name := range goldenCases(t, "export") {
		t.Run(name, func(t *testing.T) {
			s := loadExport(t, name)
			first := runExport(s)
			want := marshalYAML(t, first)

			// (a) Deterministic, in any order of the Services.
			for i, v := range reorderings(len(s.Services), 0) {
				r := s
				r.Services = permute(s.Services, v[0])
				if got := marshalYAML(t, runExport(r)); !bytes.Equal(got, want) {
					t.Errorf("reordering %d rendered differently (-first +this):\n%s", i, lineDiff(string(want), string(got)))
				}
			}
			if pristine := loadExport(t, name); !reflect.DeepEqual(s, pristine) {
				t.Errorf("Export changed its input snapshot")
			}

			objs := first.Objects
			checkPlanInvariants(t, objs)
			checkStamped(t, objs)
			// The gateway Host binds exactly what GatewaySelector selects,
			// so every gateway object must carry it.
			checkSelected(t, objs, mapper.GatewaySelector())
		})
	}
}

// reorderings returns index permutations for two lists of lengths n and m:
// the identity (a second run of the same input), both reversed, then seeded
// shuffles.
func reorderings(n, m int) [][2][]int {
	out := [][2][]int{
		{identity(n), identity(m)},
		{reversed(n), reversed(m)},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range shuffles {
		a, b := identity(n), identity(m)
		rng.Shuffle(n, func(i, j int) { a[i], a[j] = a[j], a[i] })
		rng.Shuffle(m, func(i, j int) { b[i], b[j] = b[j], b[i] })
		out = append(out, [2][]int{a, b})
	}
	return out
}

func identity(n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	return p
}

func reversed(n int) []int {
	p := identity(n)
	slices.Reverse(p)
	return p
}

func permute[T any](s []T, perm []int) []T {
	if s == nil {
		return nil
	}
	out := make([]T, len(s))
	for i, j := range perm {
		out[i] = s[j]
	}
	return out
}

// checkPlanInvariants checks how Diff treats a rendered set of objects.
func checkPlanInvariants(t *testing.T, desired []mapper.Object) {
	t.Helper()
	all := func(mapper.Object) bool { return true }

	// Keys are unique: two objects at one key would be two writes to one
	// object, and Diff keys everything by it.
	seen := map[mapper.Key]bool{}
	for _, o := range desired {
		k := mapper.KeyOf(o)
		if seen[k] {
			t.Errorf("%s is rendered twice", k)
		}
		seen[k] = true
	}

	// (b) A state diffed against itself plans no write, both as rendered
	// and as the API server hands it back.
	for _, c := range []struct {
		what    string
		current func(mapper.Object) mapper.Object
	}{
		{"itself", func(o mapper.Object) mapper.Object { return o.DeepCopyObject().(mapper.Object) }},
		{"itself read back from the API server", func(o mapper.Object) mapper.Object { return readBack(t, o) }},
	} {
		var current []mapper.Object
		for _, o := range desired {
			current = append(current, c.current(o))
		}
		if p := mapper.Diff(desired, current, all); !p.Empty() || len(p.Conflicts) != 0 {
			t.Errorf("Diff against %s = %v (update %q), want an empty plan", c.what, p, keys(p.Update))
		}
	}

	// (c) Against nothing, Diff creates exactly the desired objects, in
	// their order.
	p := mapper.Diff(desired, nil, all)
	if !slices.Equal(p.Create, desired) || len(p.Update)+len(p.Delete)+len(p.Conflicts) != 0 {
		t.Errorf("Diff against nothing = %v (create %q), want create %q", p, keys(p.Create), keys(desired))
	}
	if p.Empty() != (len(desired) == 0) {
		t.Errorf("Diff against nothing: Empty() = %v with %d desired objects", p.Empty(), len(desired))
	}

	// And with every object gone from the desired state, every owned one
	// is deleted.
	var current []mapper.Object
	for _, o := range desired {
		current = append(current, o.DeepCopyObject().(mapper.Object))
	}
	if p := mapper.Diff(nil, current, all); len(p.Delete) != len(desired) || len(p.Create)+len(p.Update) != 0 {
		t.Errorf("Diff of nothing against the rendered state = %v, want %d deletes", p, len(desired))
	}
}

var specHash = regexp.MustCompile(`^[0-9a-f]{16}$`)

// checkStamped checks (d): every object says crossmap manages it and carries
// the hash of what was rendered, and that hash is a function of the object.
func checkStamped(t *testing.T, objs []mapper.Object) {
	t.Helper()
	for _, o := range objs {
		k := mapper.KeyOf(o)
		if got := o.GetLabels()[crossmapv1.LabelManagedBy]; got != crossmapv1.ManagedBy {
			t.Errorf("%s: label %s = %q, want %q", k, crossmapv1.LabelManagedBy, got, crossmapv1.ManagedBy)
		}
		hash := o.GetAnnotations()[crossmapv1.AnnotationSpecHash]
		if !specHash.MatchString(hash) {
			t.Errorf("%s: annotation %s = %q, want 16 hex digits", k, crossmapv1.AnnotationSpecHash, hash)
			continue
		}
		again := mapper.Stamp(o.DeepCopyObject().(mapper.Object))
		if got := again.GetAnnotations()[crossmapv1.AnnotationSpecHash]; got != hash {
			t.Errorf("%s: stamping the rendered object again gives hash %s, want %s", k, got, hash)
		}
	}
}

// checkSelected checks that every object carries the labels of selector.
func checkSelected(t *testing.T, objs []mapper.Object, selector map[string]string) {
	t.Helper()
	for _, o := range objs {
		for k, v := range selector {
			if got, ok := o.GetLabels()[k]; !ok || got != v {
				t.Errorf("%s: label %s = %q, want %q", mapper.KeyOf(o), k, got, v)
			}
		}
	}
}

// readBack is obj after a trip through the API server: built-in types are
// stored as protobuf (which is where empty and unset lists become one),
// custom resources as JSON. Only the encoding is simulated, not defaulting.
func readBack(t *testing.T, obj mapper.Object) mapper.Object {
	t.Helper()
	fresh := reflect.New(reflect.TypeOf(obj).Elem()).Interface().(mapper.Object)
	type proto interface {
		Marshal() ([]byte, error)
		Unmarshal([]byte) error
	}
	if p, ok := obj.(proto); ok {
		raw, err := p.Marshal()
		if err != nil {
			t.Fatalf("encode %s: %v", mapper.KeyOf(obj), err)
		}
		if err := fresh.(proto).Unmarshal(raw); err != nil {
			t.Fatalf("decode %s: %v", mapper.KeyOf(obj), err)
		}
		fresh.GetObjectKind().SetGroupVersionKind(obj.GetObjectKind().GroupVersionKind())
		return fresh
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("encode %s: %v", mapper.KeyOf(obj), err)
	}
	if err := json.Unmarshal(raw, fresh); err != nil {
		t.Fatalf("decode %s: %v", mapper.KeyOf(obj), err)
	}
	return fresh
}
