package rewatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

// script is a ListerWatcher that answers from queues the test fills: each
// List and Watch takes the next answer and records the options it got.
type script struct {
	mu      sync.Mutex
	lists   []func() (runtime.Object, error)
	watches []func() (watch.Interface, error)
	listed  []metav1.ListOptions
	watched []metav1.ListOptions
}

func (s *script) ListWithContext(_ context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listed = append(s.listed, opts)
	if len(s.lists) == 0 {
		return nil, fmt.Errorf("unexpected list %d", len(s.listed))
	}
	f := s.lists[0]
	s.lists = s.lists[1:]
	return f()
}

func (s *script) WatchWithContext(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watched = append(s.watched, opts)
	if len(s.watches) == 0 {
		return nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "", errors.New("script ended"))
	}
	f := s.watches[0]
	s.watches = s.watches[1:]
	return f()
}

func (s *script) List(opts metav1.ListOptions) (runtime.Object, error) {
	return s.ListWithContext(context.Background(), opts)
}

func (s *script) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return s.WatchWithContext(context.Background(), opts)
}

func (s *script) watchedVersions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, o := range s.watched {
		out = append(out, o.ResourceVersion)
	}
	return out
}

func cm(name, rv string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}}
}

func cmList(rv string, items ...*corev1.ConfigMap) func() (runtime.Object, error) {
	return func() (runtime.Object, error) {
		l := &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: rv}}
		for _, it := range items {
			l.Items = append(l.Items, *it)
		}
		return l, nil
	}
}

func gives(w watch.Interface) func() (watch.Interface, error) {
	return func() (watch.Interface, error) { return w, nil }
}

func fails(err error) func() (watch.Interface, error) {
	return func() (watch.Interface, error) { return nil, err }
}

var (
	refused  = &url.Error{Op: "Get", URL: "https://127.0.0.1:6443", Err: syscall.ECONNREFUSED}
	starting = apierrors.NewServiceUnavailable("starting")
	gone     = apierrors.NewResourceExpired("too old resource version: 10 (20)")
)

// next reads one event from w, failing the test after a deadline.
func next(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("the watch ended")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return watch.Event{}
}

func describe(ev watch.Event) string {
	if ev.Type == watch.Error {
		return "ERROR " + apierrors.FromObject(ev.Object).Error()
	}
	return fmt.Sprintf("%s %s@%s", ev.Type, nameOf(ev.Object), resourceVersion(ev.Object))
}

func nameOf(obj runtime.Object) string {
	if c, ok := obj.(*corev1.ConfigMap); ok {
		return c.Name
	}
	return fmt.Sprintf("%T", obj)
}

// TestRelistInPlace: when the server has forgotten the version the watch
// asks for (a restarted API server), the watch lists again and sends the
// difference to what the reflector holds, then a bookmark at the list's
// version, then the events of a new watch from there; the reflector never
// sees the watch end.
func TestRelistInPlace(t *testing.T) {
	first, second := watch.NewFake(), watch.NewFake()
	s := &script{
		lists: []func() (runtime.Object, error){
			cmList("10", cm("a", "1"), cm("b", "2"), cm("c", "3")),
			cmList("20", cm("a", "1"), cm("b", "15"), cm("d", "16")),
		},
		watches: []func() (watch.Interface, error){gives(first), gives(second)},
	}
	lw := Wrap(s, &corev1.ConfigMap{})
	if _, err := lw.List(metav1.ListOptions{ResourceVersion: "0"}); err != nil {
		t.Fatal(err)
	}
	w, err := lw.WatchWithContext(t.Context(), metav1.ListOptions{ResourceVersion: "10"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	go first.Add(cm("e", "12"))
	if got := describe(next(t, w)); got != "ADDED e@12" {
		t.Fatalf("first event %s; want ADDED e@12", got)
	}
	go first.Error(&gone.ErrStatus)
	var got []string
	for range 4 {
		got = append(got, describe(next(t, w)))
	}
	slices.Sort(got)
	// b changed, c and e are gone, d is new; a is as it was.
	if want := []string{"ADDED d@16", "DELETED c@3", "DELETED e@12", "MODIFIED b@15"}; !slices.Equal(got, want) {
		t.Errorf("events after the relist %v; want %v", got, want)
	}
	// Of the informer's type: the reflector drops events of another.
	if ev := next(t, w); describe(ev) != "BOOKMARK @20" || fmt.Sprintf("%T", ev.Object) != "*v1.ConfigMap" {
		t.Errorf("after the difference %s (%T); want a ConfigMap bookmark at 20", describe(ev), ev.Object)
	}
	go second.Modify(cm("a", "21"))
	if got := describe(next(t, w)); got != "MODIFIED a@21" {
		t.Errorf("from the new watch %s; want MODIFIED a@21", got)
	}
	if got, want := s.watchedVersions(), []string{"10", "20"}; !slices.Equal(got, want) {
		t.Errorf("watched from versions %v; want %v", got, want)
	}
	if s.listed[1].ResourceVersion != "" {
		t.Errorf("relisted at version %q; want a consistent list", s.listed[1].ResourceVersion)
	}
}

// TestReopenWhileUnavailable: a watch that cannot be opened because the
// server is down or starting is opened again at the wrapper's pace, within
// the one Watch call; one that ends is reopened from the last version it
// carried.
func TestReopenWhileUnavailable(t *testing.T) {
	first, second := watch.NewFake(), watch.NewFake()
	s := &script{watches: []func() (watch.Interface, error){
		fails(refused), fails(refused), fails(starting), gives(first),
		fails(refused), gives(second),
	}}
	lw := Wrap(s, &corev1.ConfigMap{})
	began := time.Now()
	streaming := true
	w, err := lw.WatchWithContext(t.Context(), metav1.ListOptions{ResourceVersion: "7",
		SendInitialEvents: &streaming, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if err != nil {
		t.Fatalf("watch: %v", err)
	}
	defer w.Stop()
	// Three retries: 50 + 100 + 200 ms.
	if took := time.Since(began); took < 350*time.Millisecond {
		t.Errorf("three retries took %s; want the pace of 50, 100 and 200 ms", took)
	}
	go func() {
		first.Add(cm("x", "8"))
		// The server goes away: its stream ends.
		first.Stop()
	}()
	if got := describe(next(t, w)); got != "ADDED x@8" {
		t.Fatalf("first event %s", got)
	}
	go second.Add(cm("y", "9"))
	if got := describe(next(t, w)); got != "ADDED y@9" {
		t.Fatalf("after the reopen %s", got)
	}
	if got, want := s.watchedVersions(), []string{"7", "7", "7", "7", "8", "8"}; !slices.Equal(got, want) {
		t.Errorf("watched from versions %v; want %v", got, want)
	}
	// A streaming list's initial events came with the first stream; the
	// reopened one carries on from version 8 only.
	s.mu.Lock()
	defer s.mu.Unlock()
	if first, last := s.watched[0], s.watched[len(s.watched)-1]; first.SendInitialEvents == nil || last.SendInitialEvents != nil || last.ResourceVersionMatch != "" {
		t.Errorf("initial events asked for %v then %v (match %q); want only on the first stream", first.SendInitialEvents, last.SendInitialEvents, last.ResourceVersionMatch)
	}
}

// TestErrorsNotMended: an error a retry does not mend reaches the
// reflector as before: returned when the watch opens, sent as an error
// event (and the watch ended) afterwards.
func TestErrorsNotMended(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "", errors.New("no"))
	s := &script{watches: []func() (watch.Interface, error){fails(forbidden)}}
	if _, err := Wrap(s, &corev1.ConfigMap{}).WatchWithContext(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("opening: %v; want the Forbidden error", err)
	}

	first := watch.NewFake()
	s = &script{watches: []func() (watch.Interface, error){gives(first)}}
	w, err := Wrap(s, &corev1.ConfigMap{}).WatchWithContext(t.Context(), metav1.ListOptions{ResourceVersion: "3"})
	if err != nil {
		t.Fatal(err)
	}
	go first.Error(&forbidden.ErrStatus)
	if got := describe(next(t, w)); !strings.HasPrefix(got, "ERROR ") || !strings.Contains(got, "forbidden") {
		t.Errorf("event %s; want the Forbidden error", got)
	}
	select {
	case _, ok := <-w.ResultChan():
		if ok {
			t.Error("an event after the error; want the watch ended")
		}
	case <-time.After(5 * time.Second):
		t.Error("the watch did not end after the error")
	}
}

// TestStopEndsWatch: Stop ends the watch while it waits for the server.
func TestStopEndsWatch(t *testing.T) {
	first := watch.NewFake()
	s := &script{watches: []func() (watch.Interface, error){gives(first)}}
	for range 1000 {
		s.watches = append(s.watches, fails(refused))
	}
	w, err := Wrap(s, &corev1.ConfigMap{}).WatchWithContext(t.Context(), metav1.ListOptions{ResourceVersion: "3"})
	if err != nil {
		t.Fatal(err)
	}
	first.Stop()
	w.Stop()
	select {
	case _, ok := <-w.ResultChan():
		if ok {
			t.Error("an event after Stop")
		}
	case <-time.After(5 * time.Second):
		t.Error("the watch did not end within 5s of Stop")
	}
}

// TestListPages: the pages of a list make up what the reflector holds.
func TestListPages(t *testing.T) {
	page := func(cont string, items ...*corev1.ConfigMap) func() (runtime.Object, error) {
		return func() (runtime.Object, error) {
			l := &corev1.ConfigMapList{ListMeta: metav1.ListMeta{ResourceVersion: "5", Continue: cont}}
			for _, it := range items {
				l.Items = append(l.Items, *it)
			}
			return l, nil
		}
	}
	s := &script{lists: []func() (runtime.Object, error){page("more", cm("a", "1")), page("", cm("b", "2"))}}
	lw := Wrap(s, &corev1.ConfigMap{})
	if _, err := lw.List(metav1.ListOptions{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := lw.List(metav1.ListOptions{Limit: 1, Continue: "more"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range lw.difference(map[string]runtime.Object{}) {
		got = append(got, describe(ev))
	}
	slices.Sort(got)
	if want := []string{"DELETED a@1", "DELETED b@2"}; !slices.Equal(got, want) {
		t.Errorf("against an empty list %v; want both pages deleted", got)
	}
}

func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{starting, true},
		{apierrors.NewTooManyRequests("later", 1), true},
		{apierrors.NewInternalError(errors.New("etcd leader changed")), true},
		{apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, "", errors.New("no")), false},
		{apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, ""), false},
		{gone, false},
		{context.Canceled, false},
		{errors.New("decode: no kind"), false},
	} {
		if got := unavailable(tc.err); got != tc.want {
			t.Errorf("unavailable(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}

// TestWatchRetryAfter: the transport drops Retry-After from the answers
// to watches only.
func TestWatchRetryAfter(t *testing.T) {
	rt := watchRetryAfter{next: roundTripFunc(func(*http.Request) (*http.Response, error) {
		h := http.Header{}
		h.Set("Retry-After", "5")
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: h}, nil
	})}
	for _, tc := range []struct {
		url  string
		want string
	}{
		{"https://api/apis/getambassador.io/v3alpha1/mappings?watch=true&resourceVersion=3", ""},
		{"https://api/apis/getambassador.io/v3alpha1/mappings?resourceVersion=3", "5"},
		{"https://api/api/v1/namespaces/ns/configmaps/x", "5"},
	} {
		req, err := http.NewRequest(http.MethodGet, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Header.Get("Retry-After"); got != tc.want {
			t.Errorf("%s: Retry-After %q; want %q", tc.url, got, tc.want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

var _ toolscache.ListerWatcherWithContext = &ListerWatcher{}
