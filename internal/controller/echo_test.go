package controller

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// echoFixture is one mirror Service as the Applier writes it and as a
// watch of Services sees it.
type echoFixture struct {
	t        *testing.T
	e        *Echoes
	services predicate.Predicate // the watch of Services, filtered
	missed   []string
}

func newEchoFixture(t *testing.T) *echoFixture {
	f := &echoFixture{t: t, e: &Echoes{}}
	f.services = f.e.Filter(corev1.SchemeGroupVersion.WithKind("Service").GroupKind())
	f.e.Missed = func(obj client.Object) { f.missed = append(f.missed, obj.GetName()+"@"+obj.GetResourceVersion()) }
	return f
}

// applied is the Applier's object: it has a kind; the answer adds a
// version.
func applied(name, rv string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("Service")
	u.SetNamespace("app")
	u.SetName(name)
	u.SetResourceVersion(rv)
	return u
}

// seen is what the cache hands a watch: typed, without a kind.
func seen(name, rv string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, ResourceVersion: rv}}
}

// passes reports whether a watch of Services would pass obj's update on.
func (f *echoFixture) passes(obj client.Object) bool {
	return f.services.Update(event.UpdateEvent{ObjectOld: obj, ObjectNew: obj})
}

// write is one write of name that the server answers at rv ("" for a
// failed write), with during called while it is under way.
func (f *echoFixture) write(name, rv string, during func()) {
	f.e.Begin(applied(name, ""))
	if during != nil {
		during()
	}
	if rv == "" {
		f.e.End(applied(name, ""), errors.New("the server refused the write"))
		return
	}
	f.e.End(applied(name, rv), nil)
}

func TestEchoesAnswerFirst(t *testing.T) {
	f := newEchoFixture(t)
	f.write("podinfo-east", "10", nil)
	if !f.passes(seen("podinfo-east", "9")) {
		t.Error("an event from before crossmap's write was dropped")
	}
	if f.passes(seen("podinfo-east", "10")) {
		t.Error("the echo of crossmap's write was let through")
	}
	if !f.passes(seen("podinfo-east", "10")) {
		t.Error("a second event at that version (a resync) was dropped: one write has one echo")
	}
	f.write("podinfo-east", "12", nil)
	if !f.passes(seen("podinfo-east", "13")) {
		t.Error("someone's edit after crossmap's write was dropped")
	}
	if !f.passes(seen("other-east", "12")) {
		t.Error("another object at the version crossmap wrote was dropped")
	}
	slices := f.e.Filter(discoveryv1.SchemeGroupVersion.WithKind("EndpointSlice").GroupKind())
	if !slices.Update(event.UpdateEvent{ObjectOld: seen("podinfo-east", "12"), ObjectNew: seen("podinfo-east", "12")}) {
		t.Error("an object of another kind, same name and version, was dropped")
	}
	if len(f.missed) > 0 {
		t.Errorf("missed %v; want nothing held back", f.missed)
	}
}

func TestEchoesEchoFirst(t *testing.T) {
	cases := []struct {
		name       string
		rv         string // the write's answer, "" if it failed
		held       []string
		wantMissed []string
	}{
		{"the echo, before the answer: dropped", "20", []string{"20"}, nil},
		{"someone's earlier change, then the echo: both answered by the write", "20", []string{"19", "20"}, nil},
		{"someone's change after crossmap's: handed on", "20", []string{"20", "21"}, []string{"podinfo-east@21"}},
		{"an earlier change, and the write failed: handed on", "", []string{"19"}, []string{"podinfo-east@19"}},
		{"nothing seen meanwhile", "20", nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newEchoFixture(t)
			f.write("podinfo-east", tc.rv, func() {
				for _, rv := range tc.held {
					if f.passes(seen("podinfo-east", rv)) {
						t.Errorf("the event at %s, during the write, was passed on; want it held", rv)
					}
				}
			})
			if len(f.missed) != len(tc.wantMissed) || (len(f.missed) > 0 && f.missed[0] != tc.wantMissed[0]) {
				t.Errorf("missed %v; want %v", f.missed, tc.wantMissed)
			}
			if tc.rv != "" && len(tc.held) > 0 && !f.passes(seen("podinfo-east", tc.rv)) {
				t.Errorf("a later event at %s was dropped: the echo was already taken", tc.rv)
			}
		})
	}
}

func TestEchoesDeleteAndNil(t *testing.T) {
	f := newEchoFixture(t)
	f.write("gone-east", "20", nil)
	if !f.services.Delete(event.DeleteEvent{Object: seen("gone-east", "21")}) {
		t.Error("a delete was dropped")
	}
	if !f.passes(seen("gone-east", "20")) {
		t.Error("a deleted object's entry outlived it")
	}

	var none *Echoes
	none.Begin(applied("podinfo-east", ""))
	none.End(applied("podinfo-east", "30"), nil)
	if !none.Filter(corev1.SchemeGroupVersion.WithKind("Service").GroupKind()).Update(event.UpdateEvent{ObjectOld: seen("podinfo-east", "30"), ObjectNew: seen("podinfo-east", "30")}) {
		t.Error("a nil Echoes dropped an event")
	}
}

// TestEchoesOnlyFilteredKinds: the writes of kinds no watch filters (the
// Applier writes Mappings, Secrets and more) are not tracked at all.
func TestEchoesOnlyFilteredKinds(t *testing.T) {
	f := newEchoFixture(t)
	mapping := &unstructured.Unstructured{}
	mapping.SetAPIVersion("getambassador.io/v3alpha1")
	mapping.SetKind("Mapping")
	mapping.SetNamespace("app")
	mapping.SetName("podinfo-east")
	f.e.Begin(mapping)
	mapping.SetResourceVersion("40")
	f.e.End(mapping, nil)
	f.write("podinfo-east", "41", nil)
	if len(f.e.written) != 1 || len(f.e.inFlight) != 0 {
		t.Errorf("tracked %v (in flight %v); want only the Service's write", f.e.written, f.e.inFlight)
	}
}
