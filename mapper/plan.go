package mapper

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// Key identifies an object across kinds.
type Key struct {
	Group, Kind, Namespace, Name string
}

func (k Key) String() string {
	gk := schema.GroupKind{Group: k.Group, Kind: k.Kind}.String()
	if k.Namespace == "" {
		return gk + " " + k.Name
	}
	return gk + " " + k.Namespace + "/" + k.Name
}

// KeyOf is obj's Key. obj must carry its apiVersion and kind: rendered
// objects always do, and the controller sets them on what it reads.
func KeyOf(obj Object) Key {
	if tm, ok := obj.GetObjectKind().(*metav1.TypeMeta); ok {
		// Typed objects: the group is read off the apiVersion directly,
		// which is much cheaper than parsing it (Diff keys every object).
		return Key{Group: groupOf(tm.APIVersion), Kind: tm.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	return Key{Group: gvk.Group, Kind: gvk.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// groupOf is the group of apiVersion as schema.ParseGroupVersion reads it:
// none for "v1", and none for a malformed apiVersion with several slashes.
func groupOf(apiVersion string) string {
	group, version, ok := strings.Cut(apiVersion, "/")
	if !ok || strings.Contains(version, "/") {
		return ""
	}
	return group
}

// Plan is what it takes to turn the current state into the desired one.
//
// Diff decides it by this table, per object key:
//
//	desired  exists  owned by this scope  →  action
//	yes      no      -                    →  Create
//	yes      yes     yes                  →  Update, only if it differs (see Differs)
//	yes      yes     no                   →  Conflict: reported, never touched
//	no       yes     yes                  →  Delete
//	no       yes     no                   →  nothing: not ours
//
// An EndpointSlice whose Service is in conflict is dropped too, and one
// crossmap wrote before is deleted, so that crossmap never feeds endpoints to
// somebody else's Service.
type Plan struct {
	Create    []Object
	Update    []Object
	Delete    []Object
	Conflicts []Problem
}

// Empty reports whether the plan writes nothing. Conflicts are not writes.
func (p Plan) Empty() bool {
	return len(p.Create) == 0 && len(p.Update) == 0 && len(p.Delete) == 0
}

func (p Plan) String() string {
	return fmt.Sprintf("create=%d update=%d delete=%d conflicts=%d", len(p.Create), len(p.Update), len(p.Delete), len(p.Conflicts))
}

// Diff plans the writes that turn current into desired. current holds every
// object of the scope's kinds that is owned by the scope, plus any object
// that stands at a desired key; owned tells which of them the scope owns.
func Diff(desired, current []Object, owned func(Object) bool) Plan {
	return DiffWith(desired, current, owned, Differs)
}

// DiffWith is Diff with the comparison of an owned object against its
// desired state supplied by the caller, who may remember answers (see
// DiffMemo): it must answer exactly as Differs does.
func DiffWith(desired, current []Object, owned func(Object) bool, differs func(desired, current Object) bool) Plan {
	// Every key is computed and hashed once, and current objects are
	// marked wanted by index rather than in a second map: with thousands
	// of mirrors, hashing keys was most of the cost of a steady-state
	// diff (issue 6).
	var p Plan
	have := make(map[Key]int, len(current))
	currentKeys := make([]Key, len(current))
	duplicates := false
	for i, obj := range current {
		k := KeyOf(obj)
		currentKeys[i] = k
		if _, ok := have[k]; ok {
			duplicates = true
		}
		have[k] = i
	}
	// at[i] is the index in current of what stands at desired[i]'s key,
	// or -1; wanted[j] says whether current[j]'s key is desired.
	at := make([]int, len(desired))
	wanted := make([]bool, len(current))
	var conflicted map[Key]bool
	for i, d := range desired {
		k := KeyOf(d)
		j, ok := have[k]
		if !ok {
			at[i] = -1
			continue
		}
		at[i] = j
		wanted[j] = true
		if !owned(current[j]) {
			if conflicted == nil {
				conflicted = map[Key]bool{}
			}
			conflicted[k] = true
			p.Conflicts = append(p.Conflicts, Problem{
				Reason: ReasonConflict,
				Object: ObjectRef{Kind: k.Kind, Namespace: k.Namespace, Name: k.Name},
				Message: fmt.Sprintf("%s already exists and is not managed by crossmap (no %s=%s label for this source); it is left alone and not mirrored",
					k, crossmapv1.LabelManagedBy, crossmapv1.ManagedBy),
			})
		}
	}
	for i, d := range desired {
		j := at[i]
		if conflicted != nil {
			if j >= 0 && conflicted[currentKeys[j]] {
				continue
			}
			if serviceConflicted(d, conflicted) {
				// Not wanted after all: a slice crossmap wrote earlier for this
				// Service must go, or it would feed somebody else's Service.
				if j >= 0 {
					wanted[j] = false
				}
				continue
			}
		}
		switch {
		case j < 0:
			p.Create = append(p.Create, d)
		case differs(d, current[j]):
			p.Update = append(p.Update, d)
		}
	}
	for i, c := range current {
		j := i
		if duplicates {
			j = have[currentKeys[i]]
		}
		if !wanted[j] && owned(c) {
			p.Delete = append(p.Delete, c)
		}
	}
	slices.SortFunc(p.Delete, compareObjects)
	return p
}

func serviceConflicted(obj Object, conflicted map[Key]bool) bool {
	if _, ok := obj.(*discoveryv1.EndpointSlice); !ok {
		return false
	}
	svc := obj.GetLabels()[discoveryv1.LabelServiceName]
	return conflicted[Key{Group: corev1.GroupName, Kind: "Service", Namespace: obj.GetNamespace(), Name: svc}]
}

// Stamp records in obj the hash of what was rendered, and returns obj.
func Stamp[T Object](obj T) T {
	ann := maps.Clone(obj.GetAnnotations())
	delete(ann, crossmapv1.AnnotationSpecHash)
	obj.SetAnnotations(ann)
	raw, err := json.Marshal(obj)
	if err != nil {
		// Every object rendered here is a plain API type; failing to encode
		// one is a programming error, not an input error.
		panic(fmt.Sprintf("encode %T: %v", obj, err))
	}
	sum := sha256.Sum256(raw)
	if ann == nil {
		ann = map[string]string{}
	}
	ann[crossmapv1.AnnotationSpecHash] = hex.EncodeToString(sum[:])[:16]
	obj.SetAnnotations(ann)
	return obj
}

// Differs reports whether current needs a write to become desired.
//
// The spec hash catches fields crossmap stopped setting (which a field check
// cannot see), and the field check catches anyone who edited a field
// crossmap owns. Fields only the API server or other writers set (defaults,
// cluster IPs, status, other labels) are ignored: desired must be a subset of
// current, not equal to it.
func Differs(desired, current Object) bool {
	if desired.GetAnnotations()[crossmapv1.AnnotationSpecHash] != current.GetAnnotations()[crossmapv1.AnnotationSpecHash] {
		return true
	}
	d, c := comparable(desired), comparable(current)
	return !subset(d, c)
}

// comparable is obj as JSON values, reduced to what crossmap writes: the
// labels, annotations and owner references of its metadata, and its body
// without status.
func comparable(obj Object) map[string]any {
	raw, err := json.Marshal(obj)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", obj, err))
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(fmt.Sprintf("decode %T: %v", obj, err))
	}
	meta, _ := m["metadata"].(map[string]any)
	kept := map[string]any{}
	for _, f := range []string{"labels", "annotations", "ownerReferences"} {
		if v, ok := meta[f]; ok {
			kept[f] = v
		}
	}
	m["metadata"] = kept
	delete(m, "status")
	delete(m, "apiVersion")
	delete(m, "kind")
	return m
}

// subset reports whether every value in want is present, equal, in have.
// Lists must have the same length and match element by element, because a
// missing list element (an endpoint, a port) is a real difference. An empty
// list or map matches an absent one: the API server drops empty lists
// (an EndpointSlice with no endpoints comes back with endpoints: null).
func subset(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		if len(w) == 0 && isEmpty(have) {
			return true
		}
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if !subset(wv, h[k]) {
				return false
			}
		}
		return true
	case []any:
		if len(w) == 0 && isEmpty(have) {
			return true
		}
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], h[i]) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, have)
	}
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// DiffMemo remembers Differs' answers. Differs is a pure function of the
// desired object, whose spec hash names it, and the current one, whose
// resourceVersion names it: while both stay the same, so does the answer,
// and a steady state skips the field-by-field comparison (the costly part
// of a reconcile with many mirrors). A caller keeps one per reconciler; it
// is not safe for concurrent use.
type DiffMemo struct {
	answers map[Key]memoEntry
}

type memoEntry struct {
	hash, version string
	differs       bool
}

// Differs answers as the package-level Differs does.
func (m *DiffMemo) Differs(desired, current Object) bool {
	k := KeyOf(desired)
	hash := desired.GetAnnotations()[crossmapv1.AnnotationSpecHash]
	version := current.GetResourceVersion()
	if e, ok := m.answers[k]; ok && version != "" && e.hash == hash && e.version == version {
		return e.differs
	}
	d := Differs(desired, current)
	if m.answers == nil {
		m.answers = map[Key]memoEntry{}
	}
	m.answers[k] = memoEntry{hash: hash, version: version, differs: d}
	return d
}

// Object is what mapper renders, diffs and reads back: a Kubernetes API
// object. It has the method set of controller-runtime's client.Object, so
// any such object is one, but mapper names it itself: the pure core does
// not import client libraries (purity_test.go).
type Object interface {
	metav1.Object
	runtime.Object
}
