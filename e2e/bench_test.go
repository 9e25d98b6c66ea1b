package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/testenv"
)

// Benchmarks of the whole system on the two control planes TestMain
// starts: how long a remote change takes to reach its mirror, and how long
// a new Link takes to mirror everything. Run them without the tests:
//
//	go test ./e2e -run '^$' -bench . -benchtime 20x
//
// The Links are in flat mode, where a mirror copies every remote endpoint,
// so that one endpoint's readiness shows in the mirror (in gateway mode a
// mirror is ready while any remote endpoint is).
//
// Each benchmark deletes what it made when it ends, so that the next one
// starts from clean control planes.

// benchEndpoints is how many endpoints each exported Service has.
const benchEndpoints = 10

// benchTimeout bounds every wait: generous for a loaded 2-core machine, and
// far above any figure worth reporting.
const benchTimeout = 2 * time.Minute

// benchHarness is harness for benchmarks, which have no *testing.T to give
// it: the same namespaces and the same two controllers (see newHarnessWith),
// which log nothing, because a benchmark prints everything it logs and the
// logging would be measured too.
type benchHarness struct {
	b      *testing.B
	id     string
	ns     string
	ctrlNS string
	east   client.Client
	west   client.Client
	// westCS watches west, which the controller-runtime client cannot do.
	westCS       kubernetes.Interface
	exportLabels map[string]string
	// services are the exported Services' names, in order; slices their
	// EndpointSlices as last written to east.
	services []string
	slices   map[string]*discoveryv1.EndpointSlice
	// inProcess is false when the benchmark runs west's controller itself
	// (see controllerProcess); teardown then prunes the mirrors directly.
	inProcess bool
}

// newBenchHarness makes the namespaces and starts east's controller
// (export role) and west's (import and route roles) in this process.
func newBenchHarness(b *testing.B) *benchHarness { return newBenchHarnessWith(b, true) }

// newBenchHarnessWith is newBenchHarness; with inProcess false it starts no
// controller at all.
func newBenchHarnessWith(b *testing.B, inProcess bool) *benchHarness {
	b.Helper()
	buf := make([]byte, 3)
	_, _ = rand.Read(buf)
	h := &benchHarness{b: b, id: hex.EncodeToString(buf), slices: map[string]*discoveryv1.EndpointSlice{}, inProcess: inProcess}
	h.ns, h.ctrlNS = "bench-"+h.id, "cm-"+h.id
	h.exportLabels = map[string]string{crossmapv1.ExportLabel: "true", "crossmap.io/test": h.id}
	scheme := controller.NewScheme()
	var err error
	if h.east, err = bed.Plane("east").Client(scheme); err != nil {
		b.Fatal(err)
	}
	if h.west, err = bed.Plane("west").Client(scheme); err != nil {
		b.Fatal(err)
	}
	if h.westCS, err = kubernetes.NewForConfig(bed.Plane("west").Config); err != nil {
		b.Fatal(err)
	}
	for _, c := range []client.Client{h.east, h.west} {
		for _, ns := range []string{h.ns, h.ctrlNS} {
			h.create(c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
		// Mutual TLS is on by default: without the shared trust anchor the
		// Link has no client certificate and its mirrors are not ready.
		h.create(c, testAnchor().secret(h.ctrlNS))
	}
	if !inProcess {
		b.Cleanup(h.teardown)
		return h
	}
	sel := fmt.Sprintf("%s=true,crossmap.io/test=%s", crossmapv1.ExportLabel, h.id)
	h.start(bed.Plane("east"), func(c *controller.Config) {
		c.ClusterName = "east-" + h.id
		c.ExportSelector = sel
		c.Import = false
		c.Routes = false
	})
	h.start(bed.Plane("west"), func(c *controller.Config) {
		c.ClusterName = "west-" + h.id
		c.Export = false
		c.AmbassadorID = []string{h.id}
	})
	// Registered after the controllers' cleanups, so it runs before them:
	// west's controller is still there to prune the mirrors.
	b.Cleanup(h.teardown)
	return h
}

// start runs a crossmap controller against plane until the benchmark ends.
func (h *benchHarness) start(plane *testenv.Plane, mutate func(*controller.Config)) {
	h.b.Helper()
	cfg := controller.DefaultConfig()
	cfg.Namespace = h.ctrlNS
	cfg.StatusAddr = "127.0.0.1:0"
	cfg.RemoteHealthPeriod = 200 * time.Millisecond
	mutate(&cfg)
	ctl, err := controller.New(plane.Config, cfg, controller.Deps{Registry: prometheus.NewRegistry(), Logger: logr.Discard()})
	if err != nil {
		h.b.Fatalf("create %s controller: %v", plane.Name, err)
	}
	ctx, cancel := context.WithCancel(log.IntoContext(context.Background(), logr.Discard()))
	done := make(chan error, 1)
	go func() { done <- ctl.Manager.Start(ctx) }()
	h.b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.b.Errorf("%s controller: %v", plane.Name, err)
		}
	})
}

func (h *benchHarness) create(c client.Client, obj client.Object) {
	h.b.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		h.b.Fatalf("create %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}

// exportServices creates, in east, n exported Services with one port and
// an EndpointSlice of benchEndpoints ready pods each.
func (h *benchHarness) exportServices(n int) {
	h.b.Helper()
	for i := range n {
		name := fmt.Sprintf("svc-%03d", i)
		h.create(h.east, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name, Labels: h.exportLabels},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{
				Name: "http-0", Port: 9898, TargetPort: intstr.FromInt32(9898), Protocol: corev1.ProtocolTCP,
			}}},
		})
		es := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name + "-abcde",
				Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http-0"), Port: ptr.To[int32](9898), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for j := range benchEndpoints {
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{fmt.Sprintf("10.%d.%d.%d", 100+i/250, i%250, 1+j)},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			})
		}
		h.create(h.east, es)
		h.services = append(h.services, name)
		h.slices[name] = es
	}
}

// credentials creates, in west, the Secret the Link to east reads.
func (h *benchHarness) credentials() {
	h.b.Helper()
	kubeconfig, err := bed.Plane("east").ReadOnlyKubeconfig(context.Background(), "link-"+h.id)
	if err != nil {
		h.b.Fatal(err)
	}
	h.create(h.west, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: "east-credentials"},
		Data:       map[string][]byte{"kubeconfig": kubeconfig},
	})
}

// newLink is the flat-mode Link to east, not yet created.
func (h *benchHarness) newLink() *crossmapv1.Link {
	return &crossmapv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: "east"},
		Spec: crossmapv1.LinkSpec{
			ClusterName:       "east",
			Mode:              crossmapv1.ModeFlat,
			CredentialsSecret: crossmapv1.SecretKeyRef{Name: "east-credentials"},
			ExportSelector:    &metav1.LabelSelector{MatchLabels: h.exportLabels},
		},
	}
}

// mirrorSelector selects, in west, what the Link to east owns.
func (h *benchHarness) mirrorSelector() string {
	return labels.SelectorFromSet(map[string]string{crossmapv1.LabelLink: "east", crossmapv1.LabelLinkNamespace: h.ctrlNS}).String()
}

// waitMirrors waits, by watching west, until the Link to east owns exactly
// n mirror Services and n mirror EndpointSlices (one per remote slice).
func (h *benchHarness) waitMirrors(n int) { h.waitMirrorsWithin(n, benchTimeout) }

// waitMirrorsWithin is waitMirrors, waiting up to timeout.
func (h *benchHarness) waitMirrorsWithin(n int, timeout time.Duration) {
	h.b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sel := h.mirrorSelector()
	serviceLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return h.westCS.CoreV1().Services(h.ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return h.westCS.CoreV1().Services(h.ns).Watch(ctx, o)
		},
	}
	sliceLW := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return h.westCS.DiscoveryV1().EndpointSlices(h.ns).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return h.westCS.DiscoveryV1().EndpointSlices(h.ns).Watch(ctx, o)
		},
	}
	if err := untilCount(ctx, serviceLW, &corev1.Service{}, n); err != nil {
		h.dump()
		h.b.Fatalf("wait for %d mirror Services: %v", n, err)
	}
	if err := untilCount(ctx, sliceLW, &discoveryv1.EndpointSlice{}, n); err != nil {
		h.dump()
		h.b.Fatalf("wait for %d mirror EndpointSlices: %v", n, err)
	}
}

// untilCount lists and watches lw until it holds exactly n objects.
func untilCount(ctx context.Context, lw cache.ListerWatcher, obj runtime.Object, n int) error {
	names := sets.New[string]()
	_, err := watchtools.UntilWithSync(ctx, lw, obj,
		func(store cache.Store) (bool, error) { return len(store.ListKeys()) == n, nil },
		func(ev watch.Event) (bool, error) {
			o, err := meta.Accessor(ev.Object)
			if err != nil {
				return false, err
			}
			if ev.Type == watch.Deleted {
				names.Delete(o.GetName())
			} else {
				names.Insert(o.GetName())
			}
			return names.Len() == n, nil
		})
	return err
}

// mirrorSlices maps each exported Service to the name of its mirror
// EndpointSlice in west.
func (h *benchHarness) mirrorSlices() map[string]string {
	h.b.Helper()
	list, err := h.westCS.DiscoveryV1().EndpointSlices(h.ns).List(context.Background(), metav1.ListOptions{LabelSelector: h.mirrorSelector()})
	if err != nil {
		h.b.Fatal(err)
	}
	out := map[string]string{}
	for _, es := range list.Items {
		out[es.Labels[crossmapv1.LabelSourceName]] = es.Name
	}
	if len(out) != len(h.services) {
		h.b.Fatalf("%d mirror EndpointSlices for %d Services", len(out), len(h.services))
	}
	return out
}

// watchMirror watches west's EndpointSlice name from its current version
// on, so that the wait that follows misses no change.
//
// The watch starts at the version of a list, not of the object: an object
// last written minutes ago (a slow start) has a version the API server's
// watch cache may no longer reach back to ("too old resource version").
func (h *benchHarness) watchMirror(name string) watch.Interface {
	h.b.Helper()
	ctx := context.Background()
	byName := fields.OneTermEqualSelector("metadata.name", name).String()
	list, err := h.westCS.DiscoveryV1().EndpointSlices(h.ns).List(ctx, metav1.ListOptions{FieldSelector: byName})
	if err != nil {
		h.b.Fatal(err)
	}
	if len(list.Items) != 1 {
		h.b.Fatalf("mirror EndpointSlice %s: %d found", name, len(list.Items))
	}
	w, err := h.westCS.DiscoveryV1().EndpointSlices(h.ns).Watch(ctx, metav1.ListOptions{
		FieldSelector:   byName,
		ResourceVersion: list.ResourceVersion,
	})
	if err != nil {
		h.b.Fatal(err)
	}
	return w
}

// setReady writes, in east, endpoint i of Service svc's slice as ready or
// not.
func (h *benchHarness) setReady(svc string, i int, ready bool) {
	h.b.Helper()
	es := h.slices[svc].DeepCopy()
	es.Endpoints[i].Conditions.Ready = ptr.To(ready)
	if err := h.east.Update(context.Background(), es); err != nil {
		h.b.Fatalf("update EndpointSlice %s: %v", client.ObjectKeyFromObject(es), err)
	}
	h.slices[svc] = es
}

// waitEndpoint waits on w, a watch of one mirror EndpointSlice, until its
// endpoint at addr is ready or not as wanted.
func (h *benchHarness) waitEndpoint(w watch.Interface, addr string, ready bool) {
	h.b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	_, err := watchtools.UntilWithoutRetry(ctx, w, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Error:
			return false, apierrors.FromObject(ev.Object)
		case watch.Deleted:
			return false, fmt.Errorf("mirror EndpointSlice deleted")
		}
		es, ok := ev.Object.(*discoveryv1.EndpointSlice)
		if !ok {
			return false, fmt.Errorf("watch sent a %T", ev.Object)
		}
		i := slices.IndexFunc(es.Endpoints, func(ep discoveryv1.Endpoint) bool { return slices.Contains(ep.Addresses, addr) })
		return i >= 0 && ptr.Deref(es.Endpoints[i].Conditions.Ready, true) == ready, nil
	})
	if err != nil {
		h.dump()
		h.b.Fatalf("wait for mirror endpoint %s ready=%t: %v", addr, ready, err)
	}
}

// deleteLink deletes the Link to east, if there is one, and waits until
// west's controller has pruned its mirrors.
func (h *benchHarness) deleteLink() {
	h.b.Helper()
	err := h.west.Delete(context.Background(), h.newLink())
	if err != nil && !apierrors.IsNotFound(err) {
		h.b.Fatalf("delete Link: %v", err)
	}
	h.waitMirrors(0)
}

// teardown deletes what the benchmark made, mirrors first: every mirror
// holds one of west's few cluster IPs. The namespaces stay, as in the
// tests: envtest runs no namespace controller to empty them.
func (h *benchHarness) teardown() {
	ctx := context.Background()
	if h.inProcess {
		h.deleteLink()
	} else {
		h.pruneMirrors()
	}
	for _, name := range h.services {
		for _, obj := range []client.Object{
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}},
			h.slices[name],
		} {
			if err := h.east.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				h.b.Errorf("delete %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
			}
		}
	}
}

// dump logs the Link's status, for failures.
func (h *benchHarness) dump() {
	var l crossmapv1.Link
	if err := h.west.Get(context.Background(), client.ObjectKey{Namespace: h.ctrlNS, Name: "east"}, &l); err != nil {
		h.b.Logf("west: Link east: %v", err)
		return
	}
	h.b.Logf("west: Link east status=%+v", l.Status)
}

// reportLatency reports the median and 99th percentile of lat in
// milliseconds, as p50-ms and p99-ms.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	// Nearest rank: the smallest value with at least p% of the samples at
	// or below it.
	rank := func(p int) time.Duration { return lat[(p*len(lat)+99)/100-1] }
	b.ReportMetric(float64(rank(50))/float64(time.Millisecond), "p50-ms")
	b.ReportMetric(float64(rank(99))/float64(time.Millisecond), "p99-ms")
}

// flip is the i-th remote change of a benchmark: one endpoint of one
// exported Service changes readiness, so that the changes spread over all
// Services and endpoints.
type flip struct {
	svc   string
	ep    int
	addr  string
	ready bool
}

func (h *benchHarness) flip(i int) flip {
	n := len(h.services)
	svc, ep := h.services[i%n], (i/n)%benchEndpoints
	return flip{svc: svc, ep: ep, addr: h.slices[svc].Endpoints[ep].Addresses[0],
		ready: !ptr.Deref(h.slices[svc].Endpoints[ep].Conditions.Ready, true)}
}

// propagate runs b's loop of remote changes (see flip) and returns how long
// each took from its write to east until west's mirror EndpointSlice
// showed it, as a watcher of west sees it; the watch is set up untimed.
// mirrors maps each Service to its mirror EndpointSlice (mirrorSlices).
func (h *benchHarness) propagate(b *testing.B, mirrors map[string]string) []time.Duration {
	var (
		lat []time.Duration
		w   watch.Interface
	)
	i := 0
	for b.Loop() {
		b.StopTimer()
		if w != nil {
			w.Stop()
		}
		f := h.flip(i)
		w = h.watchMirror(mirrors[f.svc])
		b.StartTimer()

		start := time.Now()
		h.setReady(f.svc, f.ep, f.ready)
		h.waitEndpoint(w, f.addr, f.ready)
		lat = append(lat, time.Since(start))
		i++
	}
	if w != nil {
		w.Stop()
	}
	return lat
}

// change makes the i-th remote change and waits until the mirror shows it,
// outside any benchmark loop.
func (h *benchHarness) change(i int, mirrors map[string]string) {
	f := h.flip(i)
	w := h.watchMirror(mirrors[f.svc])
	defer w.Stop()
	h.setReady(f.svc, f.ep, f.ready)
	h.waitEndpoint(w, f.addr, f.ready)
}

// BenchmarkPropagation is the lag of a remote change: one endpoint of one
// exported Service changes readiness in east, and the time is until west's
// mirror EndpointSlice shows it, as a watcher of west sees it. Each
// iteration changes the next Service, so the changes spread over all of
// them.
func BenchmarkPropagation(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			h := newBenchHarness(b)
			h.exportServices(n)
			h.credentials()
			h.create(h.west, h.newLink())
			h.waitMirrors(n)
			mirrors := h.mirrorSlices()

			work := reconcileWork(b)
			stopProfile := profileTimed(b)
			lat := h.propagate(b, mirrors)
			stopProfile()
			reportReconcileWork(b, work)
			reportLatency(b, lat)
		})
	}
}

// BenchmarkInitialConvergence is the time from creating a Link to every
// exported Service mirrored (its Service and EndpointSlice in west). Each
// iteration deletes the Link and waits for the mirrors to go, untimed.
func BenchmarkInitialConvergence(b *testing.B) {
	const n = 100
	b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
		h := newBenchHarness(b)
		h.exportServices(n)
		h.credentials()
		var lat []time.Duration
		for b.Loop() {
			link := h.newLink()
			start := time.Now()
			h.create(h.west, link)
			h.waitMirrors(n)
			lat = append(lat, time.Since(start))

			b.StopTimer()
			h.deleteLink()
			b.StartTimer()
		}
		reportLatency(b, lat)
	})
}
