package rewatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	toolscache "k8s.io/client-go/tools/cache"
)

// The pace of reopening a watch (and of the list after the server lost its
// history) while the API server does not answer: first retryFirst, doubling
// up to retryMax. client-go's reflector starts at 0.8 s and doubles to 30 s,
// which protects an API server from thousands of node agents; crossmap runs
// one controller and one edge per cluster with a handful of watches each,
// and a failover must not wait for them (issue 13). At retryMax a stopped
// server costs each watch four refused connections a second, and a
// restarted one is watched again within retryMax of answering.
const (
	retryFirst = 50 * time.Millisecond
	retryMax   = 250 * time.Millisecond
	// shortStream is how long a stream must last, or how many events it
	// must carry (one), for its end not to count as a failed attempt: a
	// server that accepts watches and ends them at once (one shutting
	// down) is retried at the pace above, not in a loop.
	shortStream = time.Second
)

// NewInformer has the signature of controller-runtime's
// cache.Options.NewInformer: client-go's shared informer, with its lists
// and watches going through a ListerWatcher.
func NewInformer(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	return toolscache.NewSharedIndexInformer(Wrap(lw, obj), obj, resync, indexers)
}

// ListerWatcher wraps the lists and watches of one informer. Its lists are
// passed through, and it remembers the objects each gave the reflector. Its
// watches resume themselves: when the API server ends a stream, or cannot
// be reached, the watch is reopened from the last resource version seen;
// when the server answers that version is too old (its watch cache starts
// afresh after a restart), it lists again and sends the difference to what
// the reflector was given (added, modified, deleted) followed by a bookmark
// at the list's version, then watches on from there. Errors that a retry
// does not mend (forbidden, not found) end the watch as before, and the
// reflector lists again itself.
type ListerWatcher struct {
	inner toolscache.ListerWatcherWithContext
	// example is an object of the informer's type (with its apiVersion
	// and kind when unstructured), copied for bookmarks.
	example runtime.Object

	mu sync.Mutex
	// known is what the reflector holds, by namespace/name: the last list
	// and the watch events since. pending collects the pages of a list.
	known, pending map[string]runtime.Object
}

// Wrap wraps lw for an informer of example's type.
func Wrap(lw toolscache.ListerWatcher, example runtime.Object) *ListerWatcher {
	return &ListerWatcher{inner: toolscache.ToListerWatcherWithContext(lw), example: example}
}

// List lists; see ListWithContext.
func (l *ListerWatcher) List(opts metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), opts)
}

// ListWithContext lists through the wrapped lister and remembers the items
// as what the reflector holds once the last page is in.
func (l *ListerWatcher) ListWithContext(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	list, err := l.inner.ListWithContext(ctx, opts)
	if err != nil {
		return nil, err
	}
	items, err := keyed(list)
	if err != nil {
		return nil, err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, fmt.Errorf("read list metadata: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if opts.Continue == "" || l.pending == nil {
		l.pending = map[string]runtime.Object{}
	}
	maps.Copy(l.pending, items)
	if lm.GetContinue() == "" {
		l.known, l.pending = l.pending, nil
	}
	return list, nil
}

// Watch watches; see WatchWithContext.
func (l *ListerWatcher) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), opts)
}

// WatchWithContext opens a watch that resumes itself (see ListerWatcher).
// While the server cannot be reached it keeps trying until ctx ends; an
// error a retry does not mend is returned.
func (l *ListerWatcher) WatchWithContext(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	ctx, cancel := context.WithCancel(ctx)
	w := &resuming{l: l, opts: opts, cancel: cancel, result: make(chan watch.Event)}
	first, err := w.open(ctx, opts.ResourceVersion, 0)
	relist := isExpired(err)
	if err != nil && !relist {
		cancel()
		return nil, err
	}
	go w.run(ctx, first, relist)
	return w, nil
}

// resuming is one watch handed to the reflector.
type resuming struct {
	l      *ListerWatcher
	opts   metav1.ListOptions
	cancel context.CancelFunc
	result chan watch.Event
}

func (w *resuming) Stop()                          { w.cancel() }
func (w *resuming) ResultChan() <-chan watch.Event { return w.result }

// run forwards the events of cur, and of each stream after it, until the
// reflector stops the watch or an error ends it.
func (w *resuming) run(ctx context.Context, cur watch.Interface, relist bool) {
	defer close(w.result)
	defer w.cancel()
	logger := logr.FromContextOrDiscard(ctx)
	rv := w.opts.ResourceVersion
	failures := 0
	for {
		if relist {
			var ok bool
			if rv, ok = w.relist(ctx, logger); !ok {
				return
			}
			relist = false
		}
		if cur == nil {
			// From here on the watch goes on from a version this
			// watch has seen: a streaming list's initial events (the
			// WatchListClient feature) were sent already.
			w.opts.SendInitialEvents, w.opts.ResourceVersionMatch = nil, ""
			var err error
			cur, err = w.open(ctx, rv, failures)
			switch {
			case isExpired(err):
				relist = true
				continue
			case err != nil:
				if ctx.Err() == nil {
					w.send(ctx, errorEvent(err))
				}
				return
			}
			logger.V(1).Info("Watch reopened", "type", fmt.Sprintf("%T", w.l.example), "resourceVersion", rv)
		}
		started, events := time.Now(), 0
		var ended error
	stream:
		for {
			select {
			case <-ctx.Done():
				cur.Stop()
				return
			case ev, ok := <-cur.ResultChan():
				if !ok {
					break stream
				}
				if ev.Type == watch.Error {
					ended = apierrors.FromObject(ev.Object)
					if !isExpired(ended) && !unavailable(ended) {
						// Not ours to mend: the reflector lists again.
						cur.Stop()
						w.send(ctx, ev)
						return
					}
					break stream
				}
				if !w.send(ctx, ev) {
					cur.Stop()
					return
				}
				w.l.track(ev)
				if m, err := meta.Accessor(ev.Object); err == nil && m.GetResourceVersion() != "" {
					rv = m.GetResourceVersion()
				}
				events++
			}
		}
		cur.Stop()
		cur = nil
		relist = isExpired(ended)
		if events == 0 && time.Since(started) < shortStream {
			failures++
			if !relist && !sleep(ctx, delay(failures-1)) {
				return
			}
		} else {
			failures = 0
		}
	}
}

// open opens a watch from resource version rv, retrying at the pace of
// delay while the server cannot be reached or asks to come back later.
func (w *resuming) open(ctx context.Context, rv string, failures int) (watch.Interface, error) {
	opts := w.opts
	opts.ResourceVersion = rv
	for attempt := failures; ; attempt++ {
		cur, err := w.l.inner.WatchWithContext(ctx, opts)
		if err == nil {
			return cur, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !unavailable(err) {
			return nil, err
		}
		if !sleep(ctx, delay(attempt)) {
			return nil, ctx.Err()
		}
	}
}

// relist lists afresh and sends the reflector the difference to what it
// holds, then a bookmark at the list's resource version, which it returns.
// It returns false when the watch is over (stopped, or an error sent).
func (w *resuming) relist(ctx context.Context, logger logr.Logger) (string, bool) {
	var list runtime.Object
	for attempt := 0; ; attempt++ {
		var err error
		// A plain, consistent list, the selectors added by the wrapped
		// lister: the server has just said it forgot older versions.
		list, err = w.l.inner.ListWithContext(ctx, metav1.ListOptions{})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return "", false
		}
		if !unavailable(err) {
			w.send(ctx, errorEvent(err))
			return "", false
		}
		if !sleep(ctx, delay(attempt)) {
			return "", false
		}
	}
	items, err := keyed(list)
	if err != nil {
		w.send(ctx, errorEvent(err))
		return "", false
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		w.send(ctx, errorEvent(err))
		return "", false
	}
	events := w.l.difference(items)
	for _, ev := range events {
		if !w.send(ctx, ev) {
			return "", false
		}
		w.l.track(ev)
	}
	bookmark := w.l.example.DeepCopyObject()
	if m, err := meta.Accessor(bookmark); err == nil {
		m.SetResourceVersion(lm.GetResourceVersion())
		if !w.send(ctx, watch.Event{Type: watch.Bookmark, Object: bookmark}) {
			return "", false
		}
	}
	logger.V(1).Info("Watch resumed with a new list", "type", fmt.Sprintf("%T", w.l.example),
		"resourceVersion", lm.GetResourceVersion(), "changes", len(events))
	return lm.GetResourceVersion(), true
}

// send hands ev to the reflector, or returns false when the watch was
// stopped first.
func (w *resuming) send(ctx context.Context, ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// difference is what turns what the reflector holds into items: an Added
// event for each new object, Modified for each at another resource
// version, Deleted (with its last state) for each that is gone.
func (l *ListerWatcher) difference(items map[string]runtime.Object) []watch.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []watch.Event
	for k, obj := range items {
		old, ok := l.known[k]
		switch {
		case !ok:
			out = append(out, watch.Event{Type: watch.Added, Object: obj})
		case resourceVersion(old) != resourceVersion(obj):
			out = append(out, watch.Event{Type: watch.Modified, Object: obj})
		}
	}
	for k, old := range l.known {
		if _, ok := items[k]; !ok {
			out = append(out, watch.Event{Type: watch.Deleted, Object: old})
		}
	}
	return out
}

// track records an event the reflector was handed.
func (l *ListerWatcher) track(ev watch.Event) {
	if ev.Type != watch.Added && ev.Type != watch.Modified && ev.Type != watch.Deleted {
		return
	}
	k, err := toolscache.MetaNamespaceKeyFunc(ev.Object)
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.known == nil {
		l.known = map[string]runtime.Object{}
	}
	if ev.Type == watch.Deleted {
		delete(l.known, k)
	} else {
		l.known[k] = ev.Object
	}
}

// keyed returns the items of list by namespace/name, each its own object
// (not a pointer into the list's backing array).
func keyed(list runtime.Object) (map[string]runtime.Object, error) {
	items := map[string]runtime.Object{}
	err := meta.EachListItemWithAlloc(list, func(o runtime.Object) error {
		k, err := toolscache.MetaNamespaceKeyFunc(o)
		if err != nil {
			return err
		}
		items[k] = o
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read list items: %w", err)
	}
	return items, nil
}

func resourceVersion(obj runtime.Object) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
}

// isExpired reports whether the server no longer has the resource version
// asked for (410 Gone, "too old resource version").
func isExpired(err error) bool {
	return err != nil && (apierrors.IsResourceExpired(err) || apierrors.IsGone(err))
}

// unavailable reports whether err says the API server cannot be reached or
// cannot serve yet, which a retry mends: a refused or broken connection,
// a timeout, 429 and the 5xx answers of a server starting or stopping.
func unavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		switch status.Status().Code {
		case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
	}
	var netErr net.Error
	return errors.As(err, &netErr) || utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) ||
		utilnet.IsProbableEOF(err) || errors.Is(err, io.ErrUnexpectedEOF)
}

// errorEvent is how a watch tells the reflector it ended with err.
func errorEvent(err error) watch.Event {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		return watch.Event{Type: watch.Error, Object: &s}
	}
	return watch.Event{Type: watch.Error, Object: &apierrors.NewInternalError(err).ErrStatus}
}

func delay(attempt int) time.Duration {
	d := retryFirst
	for range attempt {
		if d *= 2; d >= retryMax {
			return retryMax
		}
	}
	return d
}

// sleep waits d, or returns false when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
