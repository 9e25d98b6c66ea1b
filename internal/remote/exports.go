package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
	mcsinformers "sigs.k8s.io/mcs-api/pkg/client/informers/externalversions"
)

// exportWatch is the ServiceExport side of a Watcher. The remote cluster
// may not serve ServiceExports (no MCS CRDs there), or the Link's
// credentials may predate the right to read them: either is found by one
// list before any informer starts, because an informer on a resource it
// cannot list retries for ever and would make the whole remote look
// unreachable.
type exportWatch struct {
	mu sync.Mutex
	// decided is set once the first list answered: informer started, or
	// err says why there is none.
	decided  bool
	err      error
	informer cache.SharedIndexInformer
}

// ErrServiceExportsNotServed is ServiceExportsErr for a remote cluster
// without the MCS CRDs: it exports with labels only, which is no fault.
var ErrServiceExportsNotServed = errors.New("the remote cluster does not serve ServiceExports (multicluster.x-k8s.io/v1beta1)")

// notServedRecheck is how often a remote without ServiceExports is asked
// again, so that CRDs installed later are picked up without a restart.
const notServedRecheck = 30 * time.Second

// synced reports whether the ServiceExports are known: listed once, or
// known to be unavailable. A nil exportWatch (not asked for) is synced.
func (e *exportWatch) synced() bool {
	if e == nil {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.decided && (e.informer == nil || e.informer.HasSynced())
}

// watchExports decides whether the remote's ServiceExports can be read,
// and starts their informer once they can.
func (w *Watcher) watchExports(ctx context.Context, cs mcsclient.Interface) {
	backoff := 100 * time.Millisecond
	for {
		list, cancel := context.WithTimeout(ctx, w.opts.HealthPeriod)
		_, err := cs.MulticlusterV1beta1().ServiceExports(metav1.NamespaceAll).List(list, metav1.ListOptions{Limit: 1})
		cancel()
		if ctx.Err() != nil {
			return
		}
		wait := backoff
		switch {
		case err == nil:
			if err := w.startExports(ctx, cs); err != nil {
				w.setExportsErr(err)
			}
			return
		case apierrors.IsNotFound(err):
			w.setExportsErr(ErrServiceExportsNotServed)
			wait = notServedRecheck
		case apierrors.IsForbidden(err):
			w.setExportsErr(fmt.Errorf("the Link's credentials may not list ServiceExports in the remote cluster (run crossmap link again to grant it): %w", err))
			wait = notServedRecheck
		default:
			// The remote is not answering: the other informers say so;
			// ask again soon.
			backoff = min(2*backoff, 5*time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// setExportsErr records why the ServiceExports cannot be read, and wakes
// the Link when that is news.
func (w *Watcher) setExportsErr(err error) {
	e := w.mcs
	e.mu.Lock()
	changed := !e.decided || e.err == nil || e.err.Error() != err.Error()
	if e.informer != nil {
		// Readable once: the informer carries on by itself.
		e.mu.Unlock()
		return
	}
	e.decided, e.err = true, err
	e.mu.Unlock()
	if changed {
		w.changed()
	}
}

func (w *Watcher) startExports(ctx context.Context, cs mcsclient.Interface) error {
	factory := mcsinformers.NewSharedInformerFactory(cs, 0)
	inf := factory.Multicluster().V1beta1().ServiceExports().Informer()
	if err := inf.SetTransform(stripManagedFields); err != nil {
		return fmt.Errorf("watch remote ServiceExports: %w", err)
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.remoteChanged() },
		UpdateFunc: func(any, any) { w.remoteChanged() },
		DeleteFunc: func(any) { w.remoteChanged() },
	}); err != nil {
		return fmt.Errorf("watch remote ServiceExports: %w", err)
	}
	if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
		w.setHealth(false, err)
	}); err != nil {
		return fmt.Errorf("watch remote ServiceExports: %w", err)
	}
	w.mcs.mu.Lock()
	w.mcs.decided, w.mcs.err, w.mcs.informer = true, nil, inf
	w.mcs.mu.Unlock()
	factory.Start(ctx.Done())
	w.changed()
	return nil
}

// ServiceExports returns the remote cluster's cached ServiceExports (none
// when they are not watched or cannot be read), shared with the cache:
// read them, never change them.
func (w *Watcher) ServiceExports() []*mcsv1beta1.ServiceExport {
	if w.mcs == nil {
		return nil
	}
	w.mcs.mu.Lock()
	inf := w.mcs.informer
	w.mcs.mu.Unlock()
	if inf == nil {
		return nil
	}
	return listOf[*mcsv1beta1.ServiceExport](inf)
}

// ServiceExportsErr says why the remote's ServiceExports cannot be read
// (not served there, or not allowed), or nil.
func (w *Watcher) ServiceExportsErr() error {
	if w.mcs == nil {
		return nil
	}
	w.mcs.mu.Lock()
	defer w.mcs.mu.Unlock()
	return w.mcs.err
}
