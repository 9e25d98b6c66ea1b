package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/pki"
)

// gatewayIP is east's gateway address as the Links in these tests name it.
// It is in TEST-NET-1 (RFC 5737), which is never routed; nothing is ever
// sent to it, because these Links have no probe.
const gatewayIP = "192.0.2.10"

// testDNS stands in for the resolver of gateway DNS names: tests name
// gateways like gw.<id>.test and say what they resolve to.
var testDNS = &fakeDNS{names: map[string][]netip.Addr{}}

type fakeDNS struct {
	mu    sync.Mutex
	names map[string][]netip.Addr
}

func (d *fakeDNS) set(name string, addrs ...netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.names[name] = addrs
}

func (d *fakeDNS) unset(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.names, name)
}

func (d *fakeDNS) resolve(_ context.Context, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	addrs, ok := d.names[host]
	if !ok {
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
	return addrs, nil
}

// harness is one test's slice of the two clusters.
type harness struct {
	t *testing.T
	// id makes this test's names unique.
	id string
	// ns is the application namespace, in both clusters.
	ns string
	// ctrlNS holds west's Links and Secrets and east's gateway Host.
	ctrlNS     string
	east, west client.Client
	// exportLabels mark the Services this test exports from east.
	exportLabels map[string]string
	// eastCluster is east's --cluster-name, and so the name in the
	// certificate east's crossmap issues to its gateway.
	eastCluster string
	// anchors are the trust anchor Secrets, east's and west's: user
	// objects crossmap must only read.
	anchors []client.Object
	// logs, when set, keeps every line the controllers h.run starts log.
	logs        *logLines
	westCtl     *controller.Controller
	westMetrics *prometheus.Registry
	eastCtl     *controller.Controller
	eastMetrics *prometheus.Registry
}

// newHarness makes the namespaces and starts east's controller (export role)
// and west's controller (import and route roles).
func newHarness(t *testing.T) *harness { return newHarnessWith(t, nil) }

// newHarnessWith is newHarness with west's configuration adjusted by
// westConfig.
func newHarnessWith(t *testing.T, westConfig func(*controller.Config)) *harness {
	t.Helper()
	return newHarnessConfigs(t, nil, westConfig)
}

// newHarnessConfigs is newHarness with east's configuration adjusted by
// eastConfig and west's by westConfig.
func newHarnessConfigs(t *testing.T, eastConfig, westConfig func(*controller.Config)) *harness {
	t.Helper()
	h := newBareHarness(t)
	h.startControllers(eastConfig, westConfig)
	return h
}

// startControllers starts east's controller (export role) and west's
// (import and route roles), with their configurations adjusted by
// eastConfig and westConfig (either may be nil), and returns them so that
// a test can stop one.
func (h *harness) startControllers(eastConfig, westConfig func(*controller.Config)) (east, west *runningCtl) {
	h.t.Helper()
	sel := fmt.Sprintf("%s=true,crossmap.io/test=%s", crossmapv1.ExportLabel, h.id)
	east = h.run(bed.Plane("east"), func(c *controller.Config) {
		c.ClusterName = h.eastCluster
		c.ExportSelector = sel
		c.Import = false
		c.Routes = false
		if eastConfig != nil {
			eastConfig(c)
		}
	})
	h.eastCtl, h.eastMetrics = east.ctl, east.reg
	west = h.run(bed.Plane("west"), func(c *controller.Config) {
		c.ClusterName = "west-" + h.id
		c.Export = false
		// The test's own Emissary ID: the route role only looks at this
		// test's Mappings, not at those earlier tests left behind.
		c.AmbassadorID = []string{h.id}
		if westConfig != nil {
			westConfig(c)
		}
	})
	h.westCtl, h.westMetrics = west.ctl, west.reg
	return east, west
}

// newBareHarness makes the test's namespaces and clients, and the trust
// anchor Secret in the controller namespace of both clusters (mTLS is on
// by default), and starts no controller.
func newBareHarness(t *testing.T) *harness {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	h := &harness{t: t, id: hex.EncodeToString(b)}
	h.ns = "app-" + h.id
	h.ctrlNS = "cm-" + h.id
	h.exportLabels = map[string]string{crossmapv1.ExportLabel: "true", "crossmap.io/test": h.id}
	h.eastCluster = "east-" + h.id
	scheme := controller.NewScheme()
	var err error
	if h.east, err = bed.Plane("east").Client(scheme); err != nil {
		t.Fatal(err)
	}
	if h.west, err = bed.Plane("west").Client(scheme); err != nil {
		t.Fatal(err)
	}
	for _, c := range []client.Client{h.east, h.west} {
		for _, ns := range []string{h.ns, h.ctrlNS} {
			h.create(c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
		a := testAnchor().secret(h.ctrlNS)
		h.create(c, a)
		h.anchors = append(h.anchors, a)
	}
	return h
}

func (h *harness) create(c client.Client, obj client.Object) {
	h.t.Helper()
	if err := c.Create(context.Background(), obj); err != nil {
		h.t.Fatalf("create %T %s: %v", obj, client.ObjectKeyFromObject(obj), err)
	}
}

// link creates, in west, a Link to east with read-only credentials.
func (h *harness) link(mutate func(*crossmapv1.Link)) *crossmapv1.Link {
	h.t.Helper()
	kubeconfig, err := bed.Plane("east").ReadOnlyKubeconfig(context.Background(), "link-"+h.id)
	if err != nil {
		h.t.Fatal(err)
	}
	h.create(h.west, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: "east-credentials"},
		Data:       map[string][]byte{"kubeconfig": kubeconfig},
	})
	l := &crossmapv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: "east"},
		Spec: crossmapv1.LinkSpec{
			ClusterName:       "east",
			CredentialsSecret: crossmapv1.SecretKeyRef{Name: "east-credentials"},
			// The Link's clusterName (east) is not east's --cluster-name
			// (east-<id>, unique per test), so the identity east's gateway
			// certificate carries is named.
			Gateway:        crossmapv1.GatewaySpec{Addresses: []string{gatewayIP}, Port: 4143, Identity: ingress.GatewayIdentity(h.eastCluster)},
			ExportSelector: &metav1.LabelSelector{MatchLabels: h.exportLabels},
		},
	}
	if mutate != nil {
		mutate(l)
	}
	h.create(h.west, l)
	return l
}

// exportService creates, in east, an exported Service with the given ports
// and an EndpointSlice with the given pod addresses (all ready).
func (h *harness) exportService(name string, ports []int32, pods ...string) *corev1.Service {
	h.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name, Labels: h.exportLabels},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": name}},
	}
	for i, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{
			Name: fmt.Sprintf("http-%d", i), Port: p, TargetPort: intstr.FromInt32(p), Protocol: corev1.ProtocolTCP,
		})
	}
	h.create(h.east, svc)
	h.create(h.east, h.slice(name, ports, pods, true))
	return svc
}

// slice is an EndpointSlice of Service name, as Kubernetes' own controller
// would write it for pods at addrs.
func (h *harness) slice(name string, ports []int32, addrs []string, ready bool) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name + "-abcde",
			Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for i, p := range ports {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{
			Name: ptr.To(fmt.Sprintf("http-%d", i)), Port: ptr.To(p), Protocol: ptr.To(corev1.ProtocolTCP)})
	}
	for _, a := range addrs {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}})
	}
	return es
}

// eventually retries f until it returns nil, failing the test with f's last
// error after a deadline generous enough for a loaded 2-core machine.
func (h *harness) eventually(what string, f func(ctx context.Context) error) {
	h.t.Helper()
	if !h.eventuallyOr(what, f) {
		h.t.FailNow()
	}
}

// eventuallyOr is eventually that, on a timeout, fails the test but lets it
// go on to check more, and returns false.
func (h *harness) eventuallyOr(what string, f func(ctx context.Context) error) bool {
	h.t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 45*time.Second, true,
		func(ctx context.Context) (bool, error) {
			err := f(ctx)
			// An error of the deadline cutting f short says less than
			// the one before it.
			if last == nil || ctx.Err() == nil {
				last = err
			}
			return err == nil, nil
		})
	if err != nil {
		h.dump()
		h.t.Errorf("%s: not true after 45s: %v", what, last)
		return false
	}
	return true
}

// dump logs both clusters' objects in the test's namespaces, for failures.
func (h *harness) dump() {
	ctx := context.Background()
	for name, c := range map[string]client.Client{"east": h.east, "west": h.west} {
		var svcs corev1.ServiceList
		_ = c.List(ctx, &svcs, client.InNamespace(h.ns))
		for _, s := range svcs.Items {
			h.t.Logf("%s: Service %s labels=%v ports=%v", name, s.Name, s.Labels, s.Spec.Ports)
		}
		var slices discoveryv1.EndpointSliceList
		_ = c.List(ctx, &slices, client.InNamespace(h.ns))
		for _, s := range slices.Items {
			h.t.Logf("%s: EndpointSlice %s endpoints=%v ports=%v", name, s.Name, s.Endpoints, s.Ports)
		}
	}
	var links crossmapv1.LinkList
	_ = h.west.List(ctx, &links, client.InNamespace(h.ctrlNS))
	for _, l := range links.Items {
		h.t.Logf("west: Link %s status=%+v", l.Name, l.Status)
	}
	for _, e := range h.events(h.west, h.ctrlNS) {
		h.t.Logf("west: Event %s %s on %s: %s", e.Type, e.Reason, e.InvolvedObject.Name, e.Message)
	}
	h.dumpTrust()
}

// dumpTrust logs the mutual TLS side of both clusters: the certificate
// Secrets and TLSContexts in the controller namespace, east's gateway
// Host, and what each controller's status model says of trust and links.
func (h *harness) dumpTrust() {
	ctx := context.Background()
	for _, side := range []struct {
		name string
		c    client.Client
		ctl  *controller.Controller
	}{{"east", h.east, h.eastCtl}, {"west", h.west, h.westCtl}} {
		var secrets corev1.SecretList
		_ = side.c.List(ctx, &secrets, client.InNamespace(h.ctrlNS))
		for _, s := range secrets.Items {
			if _, ok := s.Data[pki.CertKey]; !ok {
				if _, ok := s.Data[pki.CACertKey]; !ok {
					continue
				}
			}
			h.t.Logf("%s: Secret %s labels=%v resourceVersion=%s %s", side.name, s.Name, s.Labels, s.ResourceVersion, describeCert(s.Data[pki.CertKey]))
		}
		var ctxs ambv3.TLSContextList
		_ = side.c.List(ctx, &ctxs, client.InNamespace(h.ctrlNS))
		for _, c := range ctxs.Items {
			h.t.Logf("%s: TLSContext %s spec=%+v", side.name, c.Name, c.Spec)
		}
		var hosts ambv3.HostList
		_ = side.c.List(ctx, &hosts, client.InNamespace(h.ctrlNS))
		for _, o := range hosts.Items {
			if o.Spec != nil {
				h.t.Logf("%s: Host %s tlsSecret=%v tls=%+v requestPolicy=%+v", side.name, o.Name, o.Spec.TLSSecret, o.Spec.TLS, o.Spec.RequestPolicy)
			}
		}
		if side.ctl != nil {
			v := side.ctl.Model.View()
			h.t.Logf("%s: status trust %+v", side.name, v.Trust)
			for _, l := range v.Links {
				if l.TLS != nil {
					h.t.Logf("%s: status link %s alive=%v tls=%+v lastError=%q", side.name, l.Name, l.GatewayAlive, *l.TLS, l.LastError)
				}
			}
			for _, p := range v.Problems {
				h.t.Logf("%s: problem %s %s: %s", side.name, p.Reason, p.Object.Name, p.Message)
			}
		}
	}
}

func (h *harness) events(c client.Client, ns string) []corev1.Event {
	var evs corev1.EventList
	_ = c.List(context.Background(), &evs, client.InNamespace(ns))
	return evs.Items
}

// counter reads a crossmap_ counter, summed over the series whose labels
// include want.
func counter(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			if labelsMatch(m, want) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.Label {
		if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
			n++
		}
	}
	return n == len(want)
}

// condition returns the Link's condition of type typ, as "Status/Reason".
func condition(l *crossmapv1.Link, typ string) string {
	for _, c := range l.Status.Conditions {
		if c.Type == typ {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return "absent"
}

func joinErrs(errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(errs, "; "))
}

// logLines keeps every line the controllers of a harness log (h.logs), so
// that a test can check a problem reaches the log.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) tee(base logr.Logger) logr.Logger {
	return logr.New(teeSink{LogSink: base.GetSink(), l: l})
}

// find returns the first line that contains every part.
func (l *logLines) find(parts ...string) (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if all(parts, func(p string) bool { return strings.Contains(line, p) }) {
			return line, true
		}
	}
	return "", false
}

type teeSink struct {
	logr.LogSink
	l      *logLines
	prefix string
}

func (s teeSink) keep(kind, msg string, err error, kv []any) {
	line := fmt.Sprintf("%s %s%s %v", kind, s.prefix, msg, kv)
	if err != nil {
		line += " error=" + err.Error()
	}
	s.l.mu.Lock()
	s.l.lines = append(s.l.lines, line)
	s.l.mu.Unlock()
}

func (s teeSink) Info(level int, msg string, kv ...any) {
	s.GetCallStackHelper()()
	s.keep("INFO", msg, nil, kv)
	s.LogSink.Info(level, msg, kv...)
}

func (s teeSink) Error(err error, msg string, kv ...any) {
	s.GetCallStackHelper()()
	s.keep("ERROR", msg, err, kv)
	s.LogSink.Error(err, msg, kv...)
}

// GetCallStackHelper passes testr's t.Helper on, so that a log line names
// the code that logged it, not this sink.
func (s teeSink) GetCallStackHelper() func() {
	if h, ok := s.LogSink.(logr.CallStackHelperLogSink); ok {
		return h.GetCallStackHelper()
	}
	return func() {}
}

func (s teeSink) WithValues(kv ...any) logr.LogSink {
	return teeSink{LogSink: s.LogSink.WithValues(kv...), l: s.l, prefix: s.prefix + fmt.Sprintf("%v ", kv)}
}

func (s teeSink) WithName(name string) logr.LogSink {
	return teeSink{LogSink: s.LogSink.WithName(name), l: s.l, prefix: s.prefix + name + ": "}
}

// all tells whether f holds for every x in xs.
func all[T any](xs []T, f func(T) bool) bool {
	for _, x := range xs {
		if !f(x) {
			return false
		}
	}
	return true
}
