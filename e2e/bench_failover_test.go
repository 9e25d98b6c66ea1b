package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/netns"
	"github.com/crossmap/crossmap/internal/pki"
)

// benchGatewayAddr is east's gateway in BenchmarkFailover: an address the
// benchmark creates inside the e2e network namespace, which no test uses.
var benchGatewayAddr = netip.MustParseAddr("10.246.200.1")

// benchProbe is the Link's gateway probe in BenchmarkFailover, the demo's:
// every 100 ms, dead after two failed rounds in a row.
var benchProbe = crossmapv1.ProbeSpec{Path: "/ready",
	Period:  metav1.Duration{Duration: 100 * time.Millisecond},
	Timeout: metav1.Duration{Duration: 100 * time.Millisecond}, FailureThreshold: 2}

// benchGateway serves east's gateway health endpoint on addr:4143 until
// stopped; start serves it again. It speaks mutual TLS as east's gateway
// does: a certificate for east's gateway identity from the shared trust
// anchor, and a client certificate from it required, so that west's probe
// (over mutual TLS, as by default) finds it alive.
type benchGateway struct {
	b    *testing.B
	addr netip.AddrPort
	tls  *tls.Config
	srv  *http.Server
}

func newBenchGateway(b *testing.B, addr netip.Addr) *benchGateway {
	b.Helper()
	if err := netns.AddAddress(addr); err != nil {
		b.Fatal(err)
	}
	if !netns.Exists(addr) {
		b.Fatalf("gateway address %s does not exist after adding it", addr)
	}
	a := testAnchor()
	g := &benchGateway{b: b, addr: netip.AddrPortFrom(addr, 4143),
		tls: standInTLS(a.issue(b, ingress.GatewayIdentity("east"), pki.Server, time.Hour, time.Now()), a)}
	b.Cleanup(g.stop)
	g.start()
	return g
}

func (g *benchGateway) start() {
	g.b.Helper()
	l, err := net.Listen("tcp", g.addr.String())
	if err != nil {
		g.b.Fatal(err)
	}
	l = tls.NewListener(l, g.tls)
	g.srv = &http.Server{ReadHeaderTimeout: time.Second, ErrorLog: discardLog,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })}
	go func(srv *http.Server) { _ = srv.Serve(l) }(g.srv)
}

// stop kills the gateway: its listener and connections close at once, so
// the next probe is refused.
func (g *benchGateway) stop() {
	if g.srv != nil {
		_ = g.srv.Close()
		g.srv = nil
	}
}

// BenchmarkFailover is the control plane's failover: east's gateway dies,
// and the time is until west's generated Mapping for east has weight 0, as
// a watcher of west sees it. The Link probes the gateway every 100 ms and
// declares it dead after 2 failures, so about 200 ms of each figure is the
// probe's hysteresis, by design; the rest is crossmap (the Link's status,
// the route reconcile, the Mapping written). Each iteration brings the
// gateway back and waits, untimed, for the configured weight.
func BenchmarkFailover(b *testing.B) {
	h := newBenchHarness(b)
	gw := newBenchGateway(b, benchGatewayAddr)
	h.exportServices(1)
	svc := h.services[0]
	// The local backend, healthy, in west.
	h.create(h.west, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: svc},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": svc}, Ports: []corev1.ServicePort{{
			Name: "http-0", Port: 9898, TargetPort: intstr.FromInt32(9898), Protocol: corev1.ProtocolTCP}}},
	})
	h.create(h.west, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: h.ns, Name: svc + "-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http-0"), Port: ptr.To[int32](9898), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.200.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	})
	h.credentials()
	link := h.newLink()
	link.Spec.Mode = crossmapv1.ModeGateway
	link.Spec.Gateway = crossmapv1.GatewaySpec{Addresses: []string{benchGatewayAddr.String()}, Port: 4143}
	link.Spec.Probe = benchProbe.DeepCopy()
	h.create(h.west, link)
	h.create(h.west, &ambv3.Mapping{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: svc, Annotations: map[string]string{
			"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}},
		Spec: ambv3.MappingSpec{AmbassadorID: ambv3.AmbassadorID{h.id}, Hostname: "*", Prefix: "/" + svc + "/",
			Service: svc + "." + h.ns + ":9898"},
	})
	b.Cleanup(func() {
		_ = h.west.Delete(context.Background(), &ambv3.Mapping{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: svc}})
	})
	wc, err := client.NewWithWatch(bed.Plane("west").Config, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		b.Fatal(err)
	}
	sibling := svc + "-east"
	weightIs := func(want int) func(*ambv3.Mapping) bool {
		return func(m *ambv3.Mapping) bool { return ptr.Deref(m.Spec.Weight, -1) == want }
	}
	h.waitMapping(wc, sibling, nil, weightIs(50))

	var lat []time.Duration
	for b.Loop() {
		b.StopTimer()
		w := h.watchMapping(wc, sibling)
		b.StartTimer()

		start := time.Now()
		gw.stop()
		h.waitMapping(wc, sibling, w, weightIs(0))
		lat = append(lat, time.Since(start))

		b.StopTimer()
		w.Stop()
		gw.start()
		h.waitMapping(wc, sibling, nil, weightIs(50))
		b.StartTimer()
	}
	reportLatency(b, lat)
}

// watchMapping watches west's Mapping name from now on (from a list's
// version, as watchMirror does).
func (h *benchHarness) watchMapping(wc client.WithWatch, name string) watch.Interface {
	h.b.Helper()
	ctx := context.Background()
	byName := fields.OneTermEqualSelector("metadata.name", name)
	var list ambv3.MappingList
	if err := wc.List(ctx, &list, &client.ListOptions{Namespace: h.ns, FieldSelector: byName}); err != nil {
		h.b.Fatal(err)
	}
	if len(list.Items) != 1 {
		h.b.Fatalf("Mapping %s: %d found", name, len(list.Items))
	}
	w, err := wc.Watch(ctx, &ambv3.MappingList{}, &client.ListOptions{
		Namespace:     h.ns,
		FieldSelector: byName,
		Raw:           &metav1.ListOptions{ResourceVersion: list.ResourceVersion},
	})
	if err != nil {
		h.b.Fatal(err)
	}
	return w
}

// waitMapping waits until west's Mapping name satisfies ok: on w, a watch
// from a version that did not, when given; else by reading it every 20 ms
// (untimed waits).
func (h *benchHarness) waitMapping(wc client.WithWatch, name string, w watch.Interface, ok func(*ambv3.Mapping) bool) {
	h.b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	if w == nil {
		var last error
		err := wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			var m ambv3.Mapping
			last = wc.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name}, &m)
			return last == nil && ok(&m), nil
		})
		if err != nil {
			h.dump()
			h.b.Fatalf("wait for Mapping %s: %v (%v)", name, err, last)
		}
		return
	}
	_, err := watchtools.UntilWithoutRetry(ctx, w, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Error:
			return false, apierrors.FromObject(ev.Object)
		case watch.Deleted:
			return false, fmt.Errorf("Mapping %s deleted", name)
		}
		m, isMapping := ev.Object.(*ambv3.Mapping)
		if !isMapping {
			return false, fmt.Errorf("watch sent a %T", ev.Object)
		}
		return ok(m), nil
	})
	if err != nil {
		h.dump()
		h.b.Fatalf("wait for Mapping %s: %v", name, err)
	}
}
