package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	mcsclient "sigs.k8s.io/mcs-api/pkg/client/clientset/versioned"
)

// Health is what a Watcher knows of its remote API server.
type Health struct {
	// Reachable is true after the last health check or list succeeded.
	Reachable bool
	// Err is the last failure, kept until the remote answers again.
	Err error
	// Since is when Reachable last changed.
	Since time.Time
}

// Options tune a Watcher.
type Options struct {
	// Selector picks the exported Services.
	Selector labels.Selector
	// HealthPeriod is how often the remote API server's /readyz is checked
	// (default 5s). Watch errors are noticed at once regardless.
	HealthPeriod time.Duration
	// Notify is called, without blocking, whenever the remote state or its
	// health changes. Calls are coalesced: several changes may give one call.
	Notify func()
	// Now is the clock; tests inject one.
	Now func() time.Time
	// ServiceExports also watches the remote cluster's ServiceExports
	// (Multi-Cluster Services, KEP-1645), and counts a Service that one
	// names as exported, beside those the Selector picks. The remote may
	// not serve them, or the credentials may not read them: that is told
	// by ServiceExportsErr, and the rest works as without.
	ServiceExports bool
}

// Watcher caches one remote cluster's exported Services and EndpointSlices.
type Watcher struct {
	opts     Options
	client   kubernetes.Interface
	services cache.SharedIndexInformer
	slices   cache.SharedIndexInformer
	// mcs is the ServiceExport side, when Options.ServiceExports.
	mcs    *exportWatch
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{}

	mu     sync.Mutex
	health Health
	// pending is when the oldest change not yet taken by TakePending
	// arrived: the start of the propagation lag.
	pending time.Time
}

// Start connects to the remote cluster described by cfg and starts watching.
// It returns at once: use Synced to know when the caches are complete.
func Start(ctx context.Context, cfg *rest.Config, opts Options) (*Watcher, error) {
	if opts.Selector == nil {
		return nil, errors.New("remote watcher needs an export selector")
	}
	if opts.HealthPeriod <= 0 {
		opts.HealthPeriod = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// No client-wide timeout: it would cut every watch short. The health
	// check bounds its own requests.
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build client for remote cluster: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &Watcher{
		opts:   opts,
		client: cs,
		cancel: cancel,
		done:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
		health: Health{Since: opts.Now()},
	}

	svcOpts := []informers.SharedInformerOption{
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = opts.Selector.String() }),
	}
	if opts.ServiceExports {
		// A ServiceExport exports a Service whatever its labels: every
		// Service is cached, and Services picks.
		svcOpts = nil
	}
	svcFactory := informers.NewSharedInformerFactoryWithOptions(cs, 0, svcOpts...)
	// EndpointSlices cannot be filtered by their Service's labels, so all
	// slices that belong to some Service are cached and the mapper picks.
	sliceFactory := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = discoveryv1.LabelServiceName }))
	w.services = svcFactory.Core().V1().Services().Informer()
	w.slices = sliceFactory.Discovery().V1().EndpointSlices().Informer()
	for _, inf := range []cache.SharedIndexInformer{w.services, w.slices} {
		// Nothing reads the remote objects' managed fields, which can be
		// as large as the rest of an EndpointSlice: they are dropped
		// before the objects are cached, to keep a thousand exported
		// Services' worth of them out of memory (issue 6).
		if err := inf.SetTransform(stripManagedFields); err != nil {
			cancel()
			return nil, fmt.Errorf("watch remote cluster: %w", err)
		}
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { w.remoteChanged() },
			UpdateFunc: func(any, any) { w.remoteChanged() },
			DeleteFunc: func(any) { w.remoteChanged() },
		}); err != nil {
			cancel()
			return nil, fmt.Errorf("watch remote cluster: %w", err)
		}
		if err := inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			w.setHealth(false, err)
		}); err != nil {
			cancel()
			return nil, fmt.Errorf("watch remote cluster: %w", err)
		}
	}
	svcFactory.Start(ctx.Done())
	sliceFactory.Start(ctx.Done())
	if opts.ServiceExports {
		mcs, err := mcsclient.NewForConfig(cfg)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("build MCS client for remote cluster: %w", err)
		}
		w.mcs = &exportWatch{}
		go w.watchExports(ctx, mcs)
	}
	go w.forward(ctx)
	go w.checkHealth(ctx)
	return w, nil
}

// stripManagedFields drops obj's managed fields. It runs on objects just
// decoded from the remote API server, before anything else sees them.
func stripManagedFields(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
	}
	return obj, nil
}

// Stop ends every watch of the remote cluster. The caches are dropped.
func (w *Watcher) Stop() {
	w.cancel()
	<-w.done
}

// Synced reports whether every cache has been filled once (the
// ServiceExports', when watched and served). Until then the remote state is
// unknown and nothing may be pruned because of it.
func (w *Watcher) Synced() bool {
	return w.services.HasSynced() && w.slices.HasSynced() && w.mcs.synced()
}

// Services returns the cached exported Services: those the selector picks
// and, with Options.ServiceExports, those a ServiceExport names. They are
// shared with the cache: read them, never change them.
func (w *Watcher) Services() []*corev1.Service {
	all := listOf[*corev1.Service](w.services)
	if w.mcs == nil {
		return all
	}
	named := map[types.NamespacedName]bool{}
	for _, ex := range w.ServiceExports() {
		named[types.NamespacedName{Namespace: ex.Namespace, Name: ex.Name}] = true
	}
	out := all[:0:0]
	for _, svc := range all {
		if w.opts.Selector.Matches(labels.Set(svc.Labels)) || named[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] {
			out = append(out, svc)
		}
	}
	return out
}

// Slices returns the cached EndpointSlices, read-only like Services.
func (w *Watcher) Slices() []*discoveryv1.EndpointSlice {
	return listOf[*discoveryv1.EndpointSlice](w.slices)
}

func listOf[T any](inf cache.SharedIndexInformer) []T {
	items := inf.GetStore().List()
	out := make([]T, 0, len(items))
	for _, it := range items {
		if v, ok := it.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// Health returns the last known health of the remote API server.
func (w *Watcher) Health() Health {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.health
}

func (w *Watcher) setHealth(ok bool, err error) {
	w.mu.Lock()
	changed := w.health.Reachable != ok || (err != nil && (w.health.Err == nil || w.health.Err.Error() != err.Error()))
	if w.health.Reachable != ok {
		w.health.Since = w.opts.Now()
	}
	w.health.Reachable = ok
	if ok {
		w.health.Err = nil
	} else {
		w.health.Err = err
	}
	w.mu.Unlock()
	if changed {
		w.changed()
	}
}

// remoteChanged records a change of a remote object.
func (w *Watcher) remoteChanged() {
	w.mu.Lock()
	if w.pending.IsZero() {
		w.pending = w.opts.Now()
	}
	w.mu.Unlock()
	w.changed()
}

// TakePending returns when the oldest remote change not taken before
// arrived (zero if none), and starts counting afresh. A reconcile takes it
// before reading the caches, so every change it sees is counted once.
func (w *Watcher) TakePending() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.pending
	w.pending = time.Time{}
	return t
}

// changed records that something changed; forward passes it on.
func (w *Watcher) changed() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Watcher) forward(ctx context.Context) {
	defer close(w.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
			if w.opts.Notify != nil {
				w.opts.Notify()
			}
		}
	}
}

// checkHealth asks the remote API server's /readyz every HealthPeriod. Any
// authenticated user may read it, so it needs no extra rights.
func (w *Watcher) checkHealth(ctx context.Context) {
	t := time.NewTicker(w.opts.HealthPeriod)
	defer t.Stop()
	for {
		check, cancel := context.WithTimeout(ctx, w.opts.HealthPeriod)
		err := w.client.Discovery().RESTClient().Get().AbsPath("/readyz").Do(check).Error()
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.setHealth(false, fmt.Errorf("remote API server not ready: %w", err))
		} else {
			w.setHealth(true, nil)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
