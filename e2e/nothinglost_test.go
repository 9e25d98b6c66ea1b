package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"github.com/go-logr/logr/testr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/pki"
	"github.com/crossmap/crossmap/internal/testenv"
	"github.com/crossmap/crossmap/mapper"
)

// runningCtl is a crossmap controller that runs until the test ends, or
// until the test stops it (a fault test stopping and replacing one).
type runningCtl struct {
	t      *testing.T
	plane  *testenv.Plane
	mutate func(*controller.Config)
	ctl    *controller.Controller
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// run starts a controller against plane with the harness's base
// configuration (the test's controller namespace, the status API on a free
// loopback port, fast remote health checks); stop (or the end of the test)
// ends it.
func (h *harness) run(plane *testenv.Plane, mutate func(*controller.Config)) *runningCtl {
	h.t.Helper()
	cfg := controller.DefaultConfig()
	cfg.Namespace = h.ctrlNS
	cfg.StatusAddr = "127.0.0.1:0"
	// Fast enough that a stopped API server is noticed within a second,
	// and slow enough that a /readyz slowed down by a loaded machine (its
	// timeout is the period) does not flip RemoteReachable and write the
	// Link's status in a test that counts writes.
	cfg.RemoteHealthPeriod = time.Second
	mutate(&cfg)
	reg := prometheus.NewRegistry()
	logger := testr.NewWithOptions(h.t, testr.Options{Verbosity: 1})
	if h.logs != nil {
		logger = h.logs.tee(logger)
	}
	logger = untilTestEnds(h.t, logger.WithName(plane.Name))
	ctl, err := controller.New(plane.Config, cfg, controller.Deps{Registry: reg, Logger: logger, Resolve: testDNS.resolve})
	if err != nil {
		h.t.Fatalf("create %s controller: %v", plane.Name, err)
	}
	ctx, cancel := context.WithCancel(log.IntoContext(context.Background(), logger))
	r := &runningCtl{t: h.t, plane: plane, mutate: mutate, ctl: ctl, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- ctl.Manager.Start(ctx) }()
	h.t.Cleanup(r.stop)
	return r
}

// stop cancels the controller's context and waits for its manager to
// return. A leader-elected manager reports "leader election lost" when its
// context is cancelled (controller-runtime calls OnStoppedLeading then),
// which is what stopping it means here, not a failure.
func (r *runningCtl) stop() {
	r.once.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil && err.Error() != "leader election lost" {
			r.t.Errorf("%s controller: %v", r.plane.Name, err)
		}
	})
}

func (r *runningCtl) writes() float64 {
	return counter(r.t, r.reg, "crossmap_api_writes_total", nil)
}

func (r *runningCtl) reconciles() float64 {
	return counter(r.t, r.reg, "crossmap_reconciles_total", nil)
}

// faultCtls are the controllers of a harness made by newFaultHarness, so
// that nothingLost can stop them and start fresh ones.
var faultCtls = struct {
	sync.Mutex
	m map[*harness]*[2]*runningCtl // east, west
}{m: map[*harness]*[2]*runningCtl{}}

// newFaultHarness is newHarness with controllers the test can stop and
// replace. With startWest false, west's controller is not started; the
// test calls h.startWest.
func newFaultHarness(t *testing.T, westConfig func(*controller.Config), startWest bool) *harness {
	t.Helper()
	h := newBareHarness(t)
	sel := labels.SelectorFromSet(h.exportLabels).String()
	east := h.run(bed.Plane("east"), func(c *controller.Config) {
		c.ClusterName = h.eastCluster
		c.ExportSelector = sel
		c.Import = false
		c.Routes = false
	})
	h.eastCtl, h.eastMetrics = east.ctl, east.reg
	faultCtls.Lock()
	faultCtls.m[h] = &[2]*runningCtl{east, nil}
	faultCtls.Unlock()
	t.Cleanup(func() {
		faultCtls.Lock()
		delete(faultCtls.m, h)
		faultCtls.Unlock()
	})
	if startWest {
		h.startWest(westConfig)
	}
	return h
}

// westMutate is west's configuration in newHarnessWith, adjusted by extra.
func (h *harness) westMutate(extra func(*controller.Config)) func(*controller.Config) {
	return func(c *controller.Config) {
		c.ClusterName = "west-" + h.id
		c.Export = false
		c.AmbassadorID = []string{h.id}
		if extra != nil {
			extra(c)
		}
	}
}

// startWest starts (or replaces the record of) west's controller.
func (h *harness) startWest(extra func(*controller.Config)) *runningCtl {
	h.t.Helper()
	west := h.run(bed.Plane("west"), h.westMutate(extra))
	h.setWest(west)
	return west
}

// setWest makes w the west controller the harness helpers and nothingLost
// look at.
func (h *harness) setWest(w *runningCtl) {
	h.westCtl, h.westMetrics = w.ctl, w.reg
	faultCtls.Lock()
	if p := faultCtls.m[h]; p != nil {
		p[1] = w
	}
	faultCtls.Unlock()
}

// exported creates an exported Service in east like exportService and
// returns it and its EndpointSlice, for nothingLost.
func (h *harness) exported(name string, ports []int32, pods ...string) []client.Object {
	h.t.Helper()
	svc := h.exportService(name, ports, pods...)
	es := &discoveryv1.EndpointSlice{}
	if err := h.east.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name + "-abcde"}, es); err != nil {
		h.t.Fatal(err)
	}
	return []client.Object{svc, es}
}

// local creates the local backend in west like localService and returns
// its objects.
func (h *harness) local(name string, port int32, pods ...string) []client.Object {
	h.t.Helper()
	h.localService(name, port, pods...)
	svc, es := &corev1.Service{}, &discoveryv1.EndpointSlice{}
	ctx := context.Background()
	if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name}, svc); err != nil {
		h.t.Fatal(err)
	}
	if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name + "-abcde"}, es); err != nil {
		h.t.Fatal(err)
	}
	return []client.Object{svc, es}
}

// nothingLost checks the invariants every fault must leave intact, for the
// test's namespaces in both clusters:
//
//	(a) every user object is unchanged: same UID, same resourceVersion as
//	    the caller last saw it (update refreshes the object it is given);
//	(b) crossmap wrote no object it does not own: a "crossmap" entry in
//	    managedFields comes with app.kubernetes.io/managed-by=crossmap;
//	(c) no crossmap object is left without a source;
//	(d) the state equals what a fresh start computes: fresh controllers
//	    (same configuration) write nothing and leave every owned object as
//	    it was.
//
// It needs a harness made by newFaultHarness, whose controllers it replaces
// with the fresh ones.
func (h *harness) nothingLost(t *testing.T, userObjects []client.Object) {
	t.Helper()
	var errs []string
	// The trust anchor Secrets are the operator's: read, never written.
	errs = append(errs, h.userObjectsUnchanged(append(slices.Clone(userObjects), h.anchors...))...)
	errs = append(errs, h.noForeignWrites()...)
	errs = append(errs, h.noOrphans()...)
	if len(errs) > 0 {
		h.dump()
		t.Fatalf("nothing lost: %v", joinErrs(errs))
	}
	h.freshStartAgrees(t)
}

func (h *harness) userObjectsUnchanged(objs []client.Object) []string {
	var errs []string
	ctx := context.Background()
	for _, o := range objs {
		found := false
		for cname, c := range map[string]client.Client{"east": h.east, "west": h.west} {
			cur := o.DeepCopyObject().(client.Object)
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), cur); err != nil {
				if !apierrors.IsNotFound(err) {
					errs = append(errs, fmt.Sprintf("get %T %s in %s: %v", o, client.ObjectKeyFromObject(o), cname, err))
				}
				continue
			}
			if cur.GetUID() != o.GetUID() {
				continue
			}
			found = true
			if cur.GetResourceVersion() != o.GetResourceVersion() {
				var managers []string
				for _, mf := range cur.GetManagedFields() {
					managers = append(managers, mf.Manager+"/"+string(mf.Operation))
				}
				errs = append(errs, fmt.Sprintf("user's %T %s in %s was written: resourceVersion %s -> %s (managers %v)",
					o, client.ObjectKeyFromObject(o), cname, o.GetResourceVersion(), cur.GetResourceVersion(), managers))
			}
		}
		if !found {
			errs = append(errs, fmt.Sprintf("user's %T %s (uid %s) is gone", o, client.ObjectKeyFromObject(o), o.GetUID()))
		}
	}
	return errs
}

// listed lists Services, EndpointSlices, Mappings, Hosts, Secrets and
// TLSContexts of the test's namespaces in c.
func (h *harness) listed(c client.Client) ([]client.Object, error) {
	ctx := context.Background()
	var out []client.Object
	for _, ns := range []string{h.ns, h.ctrlNS} {
		var svcs corev1.ServiceList
		var slices_ discoveryv1.EndpointSliceList
		var maps_ ambv3.MappingList
		var hosts ambv3.HostList
		var secrets corev1.SecretList
		var tlsctxs ambv3.TLSContextList
		if err := errors.Join(c.List(ctx, &svcs, client.InNamespace(ns)), c.List(ctx, &slices_, client.InNamespace(ns)),
			c.List(ctx, &maps_, client.InNamespace(ns)), c.List(ctx, &hosts, client.InNamespace(ns)),
			c.List(ctx, &secrets, client.InNamespace(ns)), c.List(ctx, &tlsctxs, client.InNamespace(ns))); err != nil {
			return nil, err
		}
		for i := range hosts.Items {
			out = append(out, &hosts.Items[i])
		}
		for i := range secrets.Items {
			out = append(out, &secrets.Items[i])
		}
		for i := range tlsctxs.Items {
			out = append(out, &tlsctxs.Items[i])
		}
		for i := range svcs.Items {
			out = append(out, &svcs.Items[i])
		}
		for i := range slices_.Items {
			out = append(out, &slices_.Items[i])
		}
		for i := range maps_.Items {
			out = append(out, &maps_.Items[i])
		}
	}
	return out, nil
}

func (h *harness) noForeignWrites() []string {
	var errs []string
	for cname, c := range map[string]client.Client{"east": h.east, "west": h.west} {
		objs, err := h.listed(c)
		if err != nil {
			return []string{err.Error()}
		}
		for _, o := range objs {
			for _, mf := range o.GetManagedFields() {
				if mf.Manager == crossmapv1.ManagedBy && o.GetLabels()[crossmapv1.LabelManagedBy] != crossmapv1.ManagedBy {
					errs = append(errs, fmt.Sprintf("%s: %T %s/%s not owned by crossmap has fields managed by crossmap (%s)",
						cname, o, o.GetNamespace(), o.GetName(), mf.Operation))
				}
			}
		}
	}
	return errs
}

func (h *harness) noOrphans() []string {
	var errs []string
	ctx := context.Background()
	owned := client.MatchingLabels{crossmapv1.LabelManagedBy: crossmapv1.ManagedBy}
	exportSel := labels.SelectorFromSet(h.exportLabels)

	// Mirrors: the Link exists, and the source Service exists in east and
	// is exported by the Link's selector.
	var mirrors corev1.ServiceList
	if err := h.west.List(ctx, &mirrors, client.InNamespace(h.ns), owned, client.MatchingLabels{crossmapv1.LabelRole: crossmapv1.RoleMirror}); err != nil {
		return []string{err.Error()}
	}
	mirrorNames := map[string]bool{}
	for _, m := range mirrors.Items {
		mirrorNames[m.Name] = true
		l := m.Labels
		var link crossmapv1.Link
		if err := h.west.Get(ctx, client.ObjectKey{Namespace: l[crossmapv1.LabelLinkNamespace], Name: l[crossmapv1.LabelLink]}, &link); err != nil {
			errs = append(errs, fmt.Sprintf("mirror %s: Link %s/%s: %v", m.Name, l[crossmapv1.LabelLinkNamespace], l[crossmapv1.LabelLink], err))
			continue
		}
		sel := labels.Everything()
		if link.Spec.ExportSelector != nil {
			s, err := metav1.LabelSelectorAsSelector(link.Spec.ExportSelector)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			sel = s
		}
		var src corev1.Service
		if err := h.east.Get(ctx, client.ObjectKey{Namespace: l[crossmapv1.LabelSourceNamespace], Name: l[crossmapv1.LabelSourceName]}, &src); err != nil {
			errs = append(errs, fmt.Sprintf("mirror %s: source Service: %v", m.Name, err))
			continue
		}
		if !sel.Matches(labels.Set(src.Labels)) || !exportSel.Matches(labels.Set(src.Labels)) {
			errs = append(errs, fmt.Sprintf("mirror %s: source Service %s is not exported (labels %v)", m.Name, src.Name, src.Labels))
		}
	}
	var mirrorSlices discoveryv1.EndpointSliceList
	if err := h.west.List(ctx, &mirrorSlices, client.InNamespace(h.ns), owned); err != nil {
		return []string{err.Error()}
	}
	for _, es := range mirrorSlices.Items {
		if svc := es.Labels[discoveryv1.LabelServiceName]; !mirrorNames[svc] {
			errs = append(errs, fmt.Sprintf("mirror EndpointSlice %s: its Service %q is not a mirror", es.Name, svc))
		}
	}

	// Routes: the source Mapping exists and is annotated.
	var routes ambv3.MappingList
	if err := h.west.List(ctx, &routes, client.InNamespace(h.ns), owned, client.MatchingLabels{crossmapv1.LabelRole: mapper.RoleRoute}); err != nil {
		return []string{err.Error()}
	}
	for _, r := range routes.Items {
		var src ambv3.Mapping
		if err := h.west.Get(ctx, client.ObjectKey{Namespace: r.Labels[crossmapv1.LabelSourceNamespace], Name: r.Labels[crossmapv1.LabelSourceName]}, &src); err != nil {
			errs = append(errs, fmt.Sprintf("route Mapping %s: source Mapping: %v", r.Name, err))
			continue
		}
		if !ingress.Annotated(src.Annotations) {
			errs = append(errs, fmt.Sprintf("route Mapping %s: source Mapping %s is not annotated", r.Name, src.Name))
		}
	}

	// Gateway Mappings: the Service exists in east and is exported.
	var gws ambv3.MappingList
	if err := h.east.List(ctx, &gws, client.InNamespace(h.ns), client.MatchingLabels(mapper.GatewaySelector())); err != nil {
		return []string{err.Error()}
	}
	for _, g := range gws.Items {
		var src corev1.Service
		if err := h.east.Get(ctx, client.ObjectKey{Namespace: g.Labels[crossmapv1.LabelSourceNamespace], Name: g.Labels[crossmapv1.LabelSourceName]}, &src); err != nil {
			errs = append(errs, fmt.Sprintf("gateway Mapping %s: source Service: %v", g.Name, err))
			continue
		}
		if !exportSel.Matches(labels.Set(src.Labels)) {
			errs = append(errs, fmt.Sprintf("gateway Mapping %s: Service %s is not exported (labels %v)", g.Name, src.Name, src.Labels))
		}
	}
	return append(errs, h.noTrustOrphans()...)
}

// noTrustOrphans is noOrphans for the trust role: each certificate Secret
// is the issuing cluster's own (source-cluster is its --cluster-name), and
// each origination TLSContext serves a gateway-mode Link to its cluster.
func (h *harness) noTrustOrphans() []string {
	var errs []string
	ctx := context.Background()
	trust := client.MatchingLabels(mapper.TrustSelector())
	clusters := [2]string{h.eastCluster, "west-" + h.id}
	faultCtls.Lock()
	if p := faultCtls.m[h]; p != nil {
		for i, r := range p {
			if r != nil {
				cfg := controller.DefaultConfig()
				r.mutate(&cfg)
				clusters[i] = cfg.ClusterName
			}
		}
	}
	faultCtls.Unlock()
	for _, side := range []struct {
		name, cluster string
		c             client.Client
	}{{"east", clusters[0], h.east}, {"west", clusters[1], h.west}} {
		var secrets corev1.SecretList
		if err := side.c.List(ctx, &secrets, client.InNamespace(h.ctrlNS), trust); err != nil {
			return []string{err.Error()}
		}
		for _, s := range secrets.Items {
			if got := s.Labels[crossmapv1.LabelSourceCluster]; got != side.cluster {
				errs = append(errs, fmt.Sprintf("%s: trust Secret %s has source-cluster %q, want %q", side.name, s.Name, got, side.cluster))
			}
		}
	}
	var ctxs ambv3.TLSContextList
	if err := h.west.List(ctx, &ctxs, client.InNamespace(h.ctrlNS), trust); err != nil {
		return []string{err.Error()}
	}
	var links crossmapv1.LinkList
	if err := h.west.List(ctx, &links, client.InNamespace(h.ctrlNS)); err != nil {
		return []string{err.Error()}
	}
	for _, c := range ctxs.Items {
		cluster := c.Labels[crossmapv1.LabelSourceCluster]
		if !slices.ContainsFunc(links.Items, func(l crossmapv1.Link) bool {
			return l.Spec.ClusterName == cluster && l.Spec.Mode != crossmapv1.ModeFlat
		}) {
			errs = append(errs, fmt.Sprintf("west: TLSContext %s: no gateway-mode Link to cluster %q", c.Name, cluster))
		}
	}
	var eastCtxs ambv3.TLSContextList
	if err := h.east.List(ctx, &eastCtxs, client.InNamespace(h.ctrlNS), trust); err != nil {
		return []string{err.Error()}
	}
	for _, c := range eastCtxs.Items {
		errs = append(errs, fmt.Sprintf("east: TLSContext %s, but east has no Link", c.Name))
	}
	return errs
}

// ownedState renders every object crossmap owns in the test's namespaces
// as "cluster/kind/ns/name" -> labels, annotations (spec hash included),
// owners and spec, without the metadata the API server maintains.
func (h *harness) ownedState() map[string]string {
	h.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	add := func(key string, o client.Object, spec any) {
		b, err := json.Marshal(map[string]any{
			"labels": o.GetLabels(), "annotations": o.GetAnnotations(), "owners": o.GetOwnerReferences(), "spec": spec,
		})
		if err != nil {
			h.t.Fatal(err)
		}
		out[key+"/"+o.GetNamespace()+"/"+o.GetName()] = string(b)
	}
	sel := client.MatchingLabels{crossmapv1.LabelManagedBy: crossmapv1.ManagedBy}
	for cname, c := range map[string]client.Client{"east": h.east, "west": h.west} {
		for _, ns := range []string{h.ns, h.ctrlNS} {
			var svcs corev1.ServiceList
			var slices_ discoveryv1.EndpointSliceList
			var maps_ ambv3.MappingList
			var hosts ambv3.HostList
			if err := errors.Join(c.List(ctx, &svcs, client.InNamespace(ns), sel), c.List(ctx, &slices_, client.InNamespace(ns), sel),
				c.List(ctx, &maps_, client.InNamespace(ns), sel), c.List(ctx, &hosts, client.InNamespace(ns), sel)); err != nil {
				h.t.Fatal(err)
			}
			for _, o := range svcs.Items {
				add(cname+"/Service", &o, o.Spec)
			}
			for _, o := range slices_.Items {
				add(cname+"/EndpointSlice", &o, map[string]any{"addressType": o.AddressType, "endpoints": o.Endpoints, "ports": o.Ports})
			}
			for _, o := range maps_.Items {
				add(cname+"/Mapping", &o, o.Spec)
			}
			for _, o := range hosts.Items {
				add(cname+"/Host", &o, o.Spec)
			}
			// The trust role's objects: a restart keeps the certificates
			// it issued (same fingerprints) and the TLSContexts.
			var secrets corev1.SecretList
			var tlsctxs ambv3.TLSContextList
			if err := errors.Join(c.List(ctx, &secrets, client.InNamespace(ns), sel), c.List(ctx, &tlsctxs, client.InNamespace(ns), sel)); err != nil {
				h.t.Fatal(err)
			}
			for _, o := range secrets.Items {
				add(cname+"/Secret", &o, map[string]any{"type": o.Type, "certificate": describeCert(o.Data[pki.CertKey]), "data": secretDigest(o.Data)})
			}
			for _, o := range tlsctxs.Items {
				add(cname+"/TLSContext", &o, o.Spec)
			}
		}
	}
	return out
}

// secretDigest is a short digest of each key of a Secret's data, so that
// a state can be compared without logging keys.
func secretDigest(data map[string][]byte) map[string]string {
	out := map[string]string{}
	for k, v := range data {
		sum := sha256.Sum256(v)
		out[k] = hex.EncodeToString(sum[:6])
	}
	return out
}

// freshStartAgrees is nothingLost's (d).
func (h *harness) freshStartAgrees(t *testing.T) {
	t.Helper()
	faultCtls.Lock()
	p := faultCtls.m[h]
	faultCtls.Unlock()
	if p == nil || p[0] == nil || p[1] == nil {
		t.Fatal("nothingLost needs a harness from newFaultHarness with both controllers started")
	}
	old := *p
	for _, c := range old {
		c.stop()
	}
	before := h.ownedState()
	linksBefore := h.linkConditions()
	if len(before) == 0 {
		t.Fatal("nothingLost: crossmap owns no object; the fresh start would check nothing")
	}
	fresh := [2]*runningCtl{h.run(old[0].plane, old[0].mutate), h.run(old[1].plane, old[1].mutate)}
	h.eastCtl, h.eastMetrics = fresh[0].ctl, fresh[0].reg
	h.setWest(fresh[1])
	faultCtls.Lock()
	p[0] = fresh[0]
	faultCtls.Unlock()

	// Idle: both have reconciled, and for a second nothing was written
	// and no owned object changed.
	var stableSince time.Time
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 45*time.Second, true, func(context.Context) (bool, error) {
		now := fmt.Sprint(fresh[0].writes(), fresh[1].writes(), h.ownedState())
		if fresh[0].reconciles() == 0 || fresh[1].reconciles() == 0 || now != last {
			last, stableSince = now, time.Now()
			return false, nil
		}
		return time.Since(stableSince) >= time.Second, nil
	})
	if err != nil {
		h.dump()
		t.Fatalf("nothingLost: fresh controllers did not settle: east reconciles %v writes %v, west reconciles %v writes %v",
			fresh[0].reconciles(), fresh[0].writes(), fresh[1].reconciles(), fresh[1].writes())
	}
	var errs []string
	for i, name := range []string{"east", "west"} {
		// Nothing at all, Link status included: a restart that finds the
		// world as it left it has nothing to say.
		if w := fresh[i].writes(); w != 0 {
			errs = append(errs, fmt.Sprintf("a fresh %s controller wrote %v times (%s)", name, w, writesByOp(t, fresh[i].reg)))
		}
	}
	if got := h.linkConditions(); got != linksBefore {
		errs = append(errs, fmt.Sprintf("Link conditions after a fresh start:\n before %s\n after  %s", linksBefore, got))
	}
	after := h.ownedState()
	keys := slices.Sorted(maps.Keys(before))
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if before[k] != after[k] {
			errs = append(errs, fmt.Sprintf("%s differs after a fresh start:\n before %s\n after  %s", k, before[k], after[k]))
		}
	}
	if len(errs) > 0 {
		h.dump()
		t.Fatalf("nothing lost: %v", joinErrs(errs))
	}
}

func writesByOp(t *testing.T, reg *prometheus.Registry) string {
	var out []string
	for _, op := range []string{"create", "update", "delete", "status"} {
		if v := counter(t, reg, "crossmap_api_writes_total", map[string]string{"operation": op}); v != 0 {
			out = append(out, fmt.Sprintf("%s=%v", op, v))
		}
	}
	return fmt.Sprint(out)
}

// linkConditions renders the type, status and reason of every condition of
// the test's Links (not the transition times).
func (h *harness) linkConditions() string {
	h.t.Helper()
	var links crossmapv1.LinkList
	if err := h.west.List(context.Background(), &links, client.InNamespace(h.ctrlNS)); err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, l := range links.Items {
		for _, c := range l.Status.Conditions {
			out = append(out, l.Name+":"+c.Type+"="+string(c.Status)+"/"+c.Reason)
		}
		out = append(out, fmt.Sprintf("%s:mirrored=%d", l.Name, l.Status.MirroredServices))
	}
	sort.Strings(out)
	return fmt.Sprint(out)
}
