package controller

import (
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// Echoes remembers the resourceVersion each of crossmap's own writes left
// an object at, so that the watch event of that write, its echo, can be
// told from a change someone else made.
//
// Why: the Link role watches the mirrors it writes, to put right a mirror
// someone edits or deletes. Every mirror write then came back as a second
// Link reconcile that found nothing to do, and at 1000 Services a reconcile
// costs tens of milliseconds: a remote change arriving meanwhile waited for
// it (issue 6: two Link reconciles per remote change, and the p99 of the
// propagation lag). An event at the version crossmap wrote carries nothing
// crossmap does not already know; any other version (someone's edit after
// crossmap's write) is still seen.
//
// The echo may arrive before the answer to the write that caused it, so
// events of an object crossmap is writing are held until the answer says
// which version the write made: the echo is then dropped, and anything
// else is handed to Missed. Only the kinds a watch filters (Filter) are
// tracked, and of those one entry per object crossmap wrote last and has
// not yet seen come back, so no more than the objects crossmap owns.
type Echoes struct {
	// Missed gets an event held while crossmap wrote its object, when the
	// write did not make it (someone wrote after crossmap, or the write
	// failed); the watch would have passed it on.
	Missed func(client.Object)

	mu       sync.Mutex
	kinds    map[schema.GroupKind]bool // the kinds Filter was asked for
	written  map[echoKey]string
	inFlight map[echoKey]*flight
}

type echoKey struct {
	gk              schema.GroupKind
	namespace, name string
}

// flight is a write of one object under way: how many, and the last event
// of the object seen meanwhile.
type flight struct {
	writes int
	held   client.Object
}

func keyOf(gk schema.GroupKind, obj client.Object) echoKey {
	return echoKey{gk: gk, namespace: obj.GetNamespace(), name: obj.GetName()}
}

// Begin notes a write of obj (with its apiVersion and kind set, as the
// Applier's objects have) about to be sent. Every Begin needs its End. A
// nil Echoes does nothing.
func (e *Echoes) Begin(obj client.Object) {
	if e == nil {
		return
	}
	gk := obj.GetObjectKind().GroupVersionKind().GroupKind()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.kinds[gk] {
		return
	}
	k := keyOf(gk, obj)
	if e.inFlight == nil {
		e.inFlight = map[echoKey]*flight{}
	}
	f := e.inFlight[k]
	if f == nil {
		f = &flight{}
		e.inFlight[k] = f
	}
	f.writes++
}

// End notes the outcome of the write Begin announced: its error, and
// otherwise obj as the server answered it, whose resourceVersion is the
// one the write made.
func (e *Echoes) End(obj client.Object, err error) {
	if e == nil {
		return
	}
	gk := obj.GetObjectKind().GroupVersionKind().GroupKind()
	rv := ""
	if err == nil {
		rv = obj.GetResourceVersion()
	}
	e.mu.Lock()
	if !e.kinds[gk] {
		e.mu.Unlock()
		return
	}
	k := keyOf(gk, obj)
	if e.written == nil {
		e.written = map[echoKey]string{}
	}
	if rv != "" {
		e.written[k] = rv
	}
	var missed client.Object
	if f := e.inFlight[k]; f != nil {
		f.writes--
		if f.writes <= 0 {
			delete(e.inFlight, k)
			switch {
			case f.held == nil:
			case rv != "" && f.held.GetResourceVersion() == rv:
				// The echo came first; it is taken.
				delete(e.written, k)
			case rv != "" && olderThan(f.held.GetResourceVersion(), rv):
				// A change someone made before crossmap's write, which the
				// write has already answered.
			default:
				// Someone's change after crossmap's, or a failed write:
				// the watch would have passed it on. The echo, if any,
				// came before it and is gone.
				delete(e.written, k)
				missed = f.held
			}
		}
	}
	e.mu.Unlock()
	if missed != nil && e.Missed != nil {
		e.Missed(missed)
	}
}

// olderThan compares resourceVersions as numbers, which the API server's
// are in practice; anything else counts as not older, so the event is
// handed on rather than lost.
func olderThan(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA == nil && errB == nil && x < y
}

// take reports whether the watch should drop obj's event: the echo of
// crossmap's last write of it (forgotten then: one write, one echo), or an
// event held while a write of it is under way.
func (e *Echoes) take(gk schema.GroupKind, obj client.Object) bool {
	if e == nil {
		return false
	}
	k := keyOf(gk, obj)
	e.mu.Lock()
	defer e.mu.Unlock()
	if f, ok := e.inFlight[k]; ok {
		f.held = obj
		return true
	}
	if rv, ok := e.written[k]; ok && rv == obj.GetResourceVersion() {
		delete(e.written, k)
		return true
	}
	return false
}

func (e *Echoes) forget(gk schema.GroupKind, obj client.Object) {
	if e == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.written, keyOf(gk, obj))
}

// Filter is a predicate for a watch of objects of kind gk (the cache hands
// objects out without their kind, so the watch says which it is): it drops
// the echoes of crossmap's own writes and lets every other event through,
// some of them late, through Missed. Deletes always pass, and the deleted
// object's entry goes with it.
func (e *Echoes) Filter(gk schema.GroupKind) predicate.Predicate {
	if e != nil {
		e.mu.Lock()
		if e.kinds == nil {
			e.kinds = map[schema.GroupKind]bool{}
		}
		e.kinds[gk] = true
		e.mu.Unlock()
	}
	return predicate.Funcs{
		CreateFunc: func(ev event.CreateEvent) bool { return !e.take(gk, ev.Object) },
		UpdateFunc: func(ev event.UpdateEvent) bool { return !e.take(gk, ev.ObjectNew) },
		DeleteFunc: func(ev event.DeleteEvent) bool {
			e.forget(gk, ev.Object)
			return true
		},
	}
}
