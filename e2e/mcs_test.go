package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/testenv"
	"github.com/crossmap/crossmap/mapper"
)

// End-to-end tests of the Multi-Cluster Services role against the rules of
// KEP-1645 (keps/sig-multicluster/1645-multi-cluster-services-api in
// kubernetes/enhancements); each test names the sections it checks. East
// and west both run crossmap with --mcs, each linked to the other, on the
// two real control planes of the package.

// mcsCluster is one side of an MCS harness.
type mcsCluster struct {
	name  string // its --cluster-name, which the other's Link names too
	c     client.Client
	plane *testenv.Plane
	pods  string // the prefix of its pod addresses
}

// newMCSHarness starts east's and west's crossmap with the export, import
// and MCS roles, and links each to the other in mode.
func newMCSHarness(t *testing.T, mode crossmapv1.Mode) (h *harness, east, west mcsCluster) {
	t.Helper()
	h = newBareHarness(t)
	east = mcsCluster{name: h.eastCluster, c: h.east, plane: bed.Plane("east"), pods: "10.244.7."}
	west = mcsCluster{name: "west-" + h.id, c: h.west, plane: bed.Plane("west"), pods: "10.245.7."}
	// Registered before the controllers start, so that it runs after they
	// stopped: the next test's controllers list every namespace's exports.
	t.Cleanup(func() { h.mcsCleanup() })
	h.logs = &logLines{}
	sel := labels.SelectorFromSet(h.exportLabels).String()
	config := func(cluster string) func(*controller.Config) {
		return func(c *controller.Config) {
			c.ClusterName = cluster
			c.ExportSelector = sel
			c.MCS = true
			c.Routes = false
		}
	}
	e := h.run(east.plane, config(east.name))
	w := h.run(west.plane, config(west.name))
	h.eastCtl, h.eastMetrics = e.ctl, e.reg
	h.westCtl, h.westMetrics = w.ctl, w.reg
	faultCtls.Lock()
	faultCtls.m[h] = &[2]*runningCtl{e, w}
	faultCtls.Unlock()
	t.Cleanup(func() {
		faultCtls.Lock()
		delete(faultCtls.m, h)
		faultCtls.Unlock()
	})
	h.mcsLink(west, east, mode)
	h.mcsLink(east, west, mode)
	return h, east, west
}

// mcsLink creates, in from, a Link to cluster to, with the read-only
// credentials `crossmap link` would mint.
func (h *harness) mcsLink(from, to mcsCluster, mode crossmapv1.Mode) {
	h.t.Helper()
	kubeconfig, err := to.plane.ReadOnlyKubeconfig(context.Background(), "mcs-"+from.name)
	if err != nil {
		h.t.Fatal(err)
	}
	h.create(from.c, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: to.name + "-credentials"},
		Data:       map[string][]byte{"kubeconfig": kubeconfig},
	})
	h.create(from.c, &crossmapv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: to.name},
		Spec: crossmapv1.LinkSpec{
			ClusterName:       to.name,
			CredentialsSecret: crossmapv1.SecretKeyRef{Name: to.name + "-credentials"},
			Mode:              mode,
			// TEST-NET-1 and no probe: nothing is ever sent to it.
			Gateway:        crossmapv1.GatewaySpec{Addresses: []string{gatewayIP}, Port: 4143, Identity: ingress.GatewayIdentity(to.name)},
			ExportSelector: &metav1.LabelSelector{MatchLabels: h.exportLabels},
		},
	})
}

// mcsCleanup deletes the test's ServiceExports and what crossmap wrote for
// them, in both clusters, once the controllers have stopped.
func (h *harness) mcsCleanup() {
	ctx := context.Background()
	for _, c := range []client.Client{h.east, h.west} {
		var exports mcsv1beta1.ServiceExportList
		var imports mcsv1beta1.ServiceImportList
		var svcs corev1.ServiceList
		var eps discoveryv1.EndpointSliceList
		_ = c.List(ctx, &exports, client.InNamespace(h.ns))
		_ = c.List(ctx, &imports, client.InNamespace(h.ns))
		_ = c.List(ctx, &svcs, client.InNamespace(h.ns), client.MatchingLabels(mapper.MCSSelector()))
		_ = c.List(ctx, &eps, client.InNamespace(h.ns), client.MatchingLabels(mapper.MCSSelector()))
		for _, l := range [][]client.Object{pointerObjs(exports.Items), pointerObjs(imports.Items), pointerObjs(svcs.Items), pointerObjs(eps.Items)} {
			for _, o := range l {
				_ = client.IgnoreNotFound(c.Delete(ctx, o))
			}
		}
	}
}

func pointerObjs[T any, PT interface {
	*T
	client.Object
}](items []T) []client.Object {
	out := make([]client.Object, len(items))
	for i := range items {
		out[i] = PT(&items[i])
	}
	return out
}

// mcsService creates in cl a Service with ports (named as given), headless
// or not, and its EndpointSlice with one ready pod per address suffix.
func (h *harness) mcsService(cl mcsCluster, name string, headless bool, ports []corev1.ServicePort, pods ...string) []client.Object {
	h.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name, Labels: map[string]string{"app": name},
			Annotations: map[string]string{"owner": "team-a"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: ports},
	}
	if headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	h.create(cl.c, svc)
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name + "-abcde",
			Labels: map[string]string{discoveryv1.LabelServiceName: name, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, p := range ports {
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.Port), Protocol: ptr.To(p.Protocol)})
	}
	for _, p := range pods {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{cl.pods + p},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	h.create(cl.c, es)
	return []client.Object{svc, es}
}

func tcp(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP}
}

// serviceExport exports Service name of cl with a ServiceExport.
func (h *harness) serviceExport(cl mcsCluster, name string, mutate func(*mcsv1beta1.ServiceExport)) *mcsv1beta1.ServiceExport {
	h.t.Helper()
	ex := &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}}
	if mutate != nil {
		mutate(ex)
	}
	h.create(cl.c, ex)
	return ex
}

// exportConditions renders a ServiceExport's conditions as
// "Type=Status/Reason" in type order.
func (h *harness) exportConditions(ctx context.Context, cl mcsCluster, name string) (string, error) {
	var ex mcsv1beta1.ServiceExport
	if err := cl.c.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name}, &ex); err != nil {
		return "", err
	}
	var out []string
	for _, c := range ex.Status.Conditions {
		out = append(out, c.Type+"="+string(c.Status)+"/"+c.Reason)
	}
	sort.Strings(out)
	return strings.Join(out, " "), nil
}

// wantExportConditions waits until cl's ServiceExport name has exactly
// these conditions (Type=Status/Reason, any order).
func (h *harness) wantExportConditions(cl mcsCluster, name string, want ...string) {
	h.t.Helper()
	sort.Strings(want)
	w := strings.Join(want, " ")
	h.eventually(fmt.Sprintf("%s: ServiceExport %s has %s", cl.name, name, w), func(ctx context.Context) error {
		got, err := h.exportConditions(ctx, cl, name)
		if err != nil {
			return err
		}
		if got != w {
			return fmt.Errorf("conditions %s", got)
		}
		return nil
	})
}

// importView is what a test checks of a ServiceImport and what crossmap
// wrote for it.
type importView struct {
	imp     mcsv1beta1.ServiceImport
	derived *corev1.Service
	// slices are the import's EndpointSlices by source cluster.
	slices map[string][]discoveryv1.EndpointSlice
}

func (h *harness) readImport(ctx context.Context, cl mcsCluster, name string) (importView, error) {
	var v importView
	if err := cl.c.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name}, &v.imp); err != nil {
		return v, err
	}
	var svc corev1.Service
	err := cl.c.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: mapper.DerivedServiceName(name)}, &svc)
	switch {
	case err == nil:
		v.derived = &svc
	case !apierrors.IsNotFound(err):
		return v, err
	}
	var eps discoveryv1.EndpointSliceList
	if err := cl.c.List(ctx, &eps, client.InNamespace(h.ns), client.MatchingLabels{mcsv1beta1.LabelServiceName: name}); err != nil {
		return v, err
	}
	v.slices = map[string][]discoveryv1.EndpointSlice{}
	for _, es := range eps.Items {
		src := es.Labels[mcsv1beta1.LabelSourceCluster]
		v.slices[src] = append(v.slices[src], es)
	}
	return v, nil
}

// clusters are the import's status.clusters.
func (v importView) clusters() []string {
	var out []string
	for _, c := range v.imp.Status.Clusters {
		out = append(out, c.Cluster)
	}
	return out
}

func portsString(ps []mcsv1beta1.ServicePort) string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s:%s/%d", p.Name, p.Protocol, p.Port))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// checkImport is the shape every converged ClusterSetIP ServiceImport must
// have (KEP "Importing Services", "ClusterSetIP", "Using EndpointSlice
// objects to track endpoints"): the given type, ports and clusters; the
// clusterset IP the derived Service's ClusterIP, with its family; Ready;
// one or more slices per source cluster and none from any other, each
// labelled with the service name and its source cluster, owned by the
// ServiceImport, managed by crossmap and, for ClusterSetIP, naming the
// derived Service.
func checkImport(v importView, typ mcsv1beta1.ServiceImportType, ports string, clusters, slicesFrom []string) error {
	si := v.imp
	if si.Spec.Type != typ {
		return fmt.Errorf("type %s, want %s", si.Spec.Type, typ)
	}
	if got := portsString(si.Spec.Ports); got != ports {
		return fmt.Errorf("ports %s, want %s", got, ports)
	}
	clusters, slicesFrom = slices.Sorted(slices.Values(clusters)), slices.Sorted(slices.Values(slicesFrom))
	if got := v.clusters(); !slices.Equal(got, clusters) {
		return fmt.Errorf("status.clusters %v, want %v", got, clusters)
	}
	if si.Status.EndpointSliceObjects != mcsv1beta1.EndpointSliceObjectsPresent {
		return fmt.Errorf("status.endpointSliceObjects %q", si.Status.EndpointSliceObjects)
	}
	if c := meta.FindStatusCondition(si.Status.Conditions, string(mcsv1beta1.ServiceImportConditionReady)); c == nil || c.Status != metav1.ConditionTrue {
		return fmt.Errorf("not Ready: %v", si.Status.Conditions)
	}
	switch typ {
	case mcsv1beta1.ClusterSetIP:
		if v.derived == nil {
			return fmt.Errorf("no derived Service %s", mapper.DerivedServiceName(si.Name))
		}
		if len(si.Spec.IPs) == 0 || !slices.Equal(si.Spec.IPs, v.derived.Spec.ClusterIPs) ||
			!slices.Equal(si.Spec.IPFamilies, v.derived.Spec.IPFamilies) {
			return fmt.Errorf("spec.ips %v (families %v), want the derived Service's %v (%v)", si.Spec.IPs, si.Spec.IPFamilies,
				v.derived.Spec.ClusterIPs, v.derived.Spec.IPFamilies)
		}
		if !ownedBy(v.derived, &si) {
			return fmt.Errorf("derived Service owners %v, want the ServiceImport (uid %s)", v.derived.OwnerReferences, si.UID)
		}
	case mcsv1beta1.Headless:
		if len(si.Spec.IPs) != 0 || v.derived != nil {
			return fmt.Errorf("headless, yet spec.ips %v and derived Service %v", si.Spec.IPs, v.derived != nil)
		}
	}
	if got := slices.Sorted(maps.Keys(v.slices)); !slices.Equal(got, slicesFrom) {
		return fmt.Errorf("slices from clusters %v, want %v", got, slicesFrom)
	}
	for src, ss := range v.slices {
		for _, es := range ss {
			l := es.Labels
			switch {
			case l[mcsv1beta1.LabelServiceName] != si.Name || l[mcsv1beta1.LabelSourceCluster] != src:
				return fmt.Errorf("slice %s labels %v", es.Name, l)
			case l[discoveryv1.LabelManagedBy] != "crossmap.io" || l[crossmapv1.LabelManagedBy] != crossmapv1.ManagedBy:
				return fmt.Errorf("slice %s is not marked as crossmap's: %v", es.Name, l)
			case !ownedBy(&es, &si):
				return fmt.Errorf("slice %s owners %v, want the ServiceImport (uid %s)", es.Name, es.OwnerReferences, si.UID)
			case typ == mcsv1beta1.ClusterSetIP && l[discoveryv1.LabelServiceName] != v.derived.Name:
				return fmt.Errorf("slice %s names Service %q, want the derived %s", es.Name, l[discoveryv1.LabelServiceName], v.derived.Name)
			case len(es.Endpoints) == 0:
				return fmt.Errorf("slice %s has no endpoints", es.Name)
			}
		}
	}
	return nil
}

func ownedBy(o client.Object, si *mcsv1beta1.ServiceImport) bool {
	return slices.ContainsFunc(o.GetOwnerReferences(), func(r metav1.OwnerReference) bool {
		return r.Kind == mcsv1beta1.ServiceImportKindName && r.Name == si.Name && r.UID == si.UID
	})
}

// wantImport waits until cl's ServiceImport name passes checkImport, with
// slices from every one of clusters, and returns it.
func (h *harness) wantImport(cl mcsCluster, name string, typ mcsv1beta1.ServiceImportType, ports string, clusters ...string) importView {
	h.t.Helper()
	return h.wantImportSlices(cl, name, typ, ports, clusters, clusters)
}

// wantImportSlices is wantImport with slices from slicesFrom only: an
// exporting cluster whose every port lost a conflict has none.
func (h *harness) wantImportSlices(cl mcsCluster, name string, typ mcsv1beta1.ServiceImportType, ports string, clusters, slicesFrom []string) importView {
	h.t.Helper()
	var v importView
	h.eventually(fmt.Sprintf("%s: ServiceImport %s is %s %s from %v (slices from %v)", cl.name, name, typ, ports, clusters, slicesFrom), func(ctx context.Context) error {
		var err error
		if v, err = h.readImport(ctx, cl, name); err != nil {
			return err
		}
		return checkImport(v, typ, ports, clusters, slicesFrom)
	})
	return v
}

// wantNoImport waits until cl has no ServiceImport name, nor anything
// crossmap wrote for it.
func (h *harness) wantNoImport(cl mcsCluster, name string) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("%s: no ServiceImport %s", cl.name, name), func(ctx context.Context) error {
		v, err := h.readImport(ctx, cl, name)
		if err == nil {
			return fmt.Errorf("ServiceImport %s still exists (clusters %v)", name, v.clusters())
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		if v.derived != nil || len(v.slices) > 0 {
			return fmt.Errorf("derived Service %v, slices from %v", v.derived != nil, slices.Collect(maps.Keys(v.slices)))
		}
		return nil
	})
}

// TestMCSExportBothWays is the first "done when": podinfo exported
// by ServiceExport in east and in west, the clusters linked both ways,
// gives a ServiceImport in both clusters with the right ports, clusterset
// IP, clusters and slices, and both exports are Valid, Ready and
// NoConflicts. Then, following KEP "Importing Services": each exporting
// cluster imports its own export too (self-import), unexporting one cluster
// takes only its endpoints away, and unexporting the last removes the
// ServiceImport everywhere. The `<svc>-<cluster>` mirrors stay as they are
// beside the imports.
func TestMCSExportBothWays(t *testing.T) {
	h, east, west := newMCSHarness(t, crossmapv1.ModeGateway)
	ports := []corev1.ServicePort{tcp("http", 9898)}
	user := slices.Concat(h.mcsService(east, "podinfo", false, ports, "5"), h.mcsService(west, "podinfo", false, ports, "6"))
	exEast := h.serviceExport(east, "podinfo", nil)
	exWest := h.serviceExport(west, "podinfo", nil)

	// KEP "Exporting Services" (the conditions) and "Constraints and
	// Conflict Resolution" (no conflict between identical exports).
	for _, cl := range []mcsCluster{east, west} {
		h.wantExportConditions(cl, "podinfo", "Valid=True/Valid", "Ready=True/Ready", "Conflict=False/NoConflicts")
	}
	for _, cl := range []mcsCluster{east, west} {
		v := h.wantImport(cl, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", east.name, west.name)
		// KEP "Tracking Endpoints": the local cluster's endpoints are its
		// own pods; the other's are its gateway (gateway mode, as for
		// mirrors), on the gateway's port.
		other := west
		if cl.name == west.name {
			other = east
		}
		own := v.slices[cl.name][0]
		if got := own.Endpoints[0].Addresses[0]; !strings.HasPrefix(got, cl.pods) || *own.Ports[0].Port != 9898 {
			t.Errorf("%s: its own slice %s points at %s:%d, want its pod on 9898", cl.name, own.Name, got, *own.Ports[0].Port)
		}
		far := v.slices[other.name][0]
		if got := far.Endpoints[0].Addresses[0]; got != gatewayIP || *far.Ports[0].Port != 4143 || !ptr.Deref(far.Endpoints[0].Conditions.Ready, false) {
			t.Errorf("%s: %s's slice %s points at %s:%d (ready %v), want the gateway %s:4143, ready", cl.name, other.name, far.Name,
				got, *far.Ports[0].Port, ptr.Deref(far.Endpoints[0].Conditions.Ready, false), gatewayIP)
		}
		// A ServiceExport exports to the gateway too: the cluster's own
		// gateway Mapping for podinfo.
		var gws ambv3.MappingList
		if err := cl.c.List(context.Background(), &gws, client.InNamespace(h.ns), client.MatchingLabels(mapper.GatewaySelector()),
			client.MatchingLabels{crossmapv1.LabelSourceName: "podinfo"}); err != nil || len(gws.Items) != 1 {
			t.Errorf("%s: gateway Mappings of podinfo: %d (%v), want 1", cl.name, len(gws.Items), err)
		}
		// The mirrors stay: a ServiceExport exports to mirrors too.
		var mirror corev1.Service
		if err := cl.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: mapper.MirrorName("podinfo", other.name)}, &mirror); err != nil {
			t.Errorf("%s: mirror of %s's podinfo: %v", cl.name, other.name, err)
		}
	}
	h.mcsNothingLost(t, user, []*mcsv1beta1.ServiceExport{exEast, exWest})

	// Unexport east: only east's endpoints go; west keeps importing its own
	// export (the KEP's self-import) in both clusters.
	if err := h.east.Delete(context.Background(), exEast); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []mcsCluster{east, west} {
		h.wantImport(cl, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", west.name)
	}
	// Unexport the last: the ServiceImport goes from every cluster.
	if err := h.west.Delete(context.Background(), exWest); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []mcsCluster{east, west} {
		h.wantNoImport(cl, "podinfo")
	}
}

// mcsNothingLost is nothingLost for an MCS harness: the user's objects
// unchanged (of a ServiceExport, all but the status crossmap sets), no
// foreign writes, no MCS object without a source, and fresh controllers
// that find nothing to write, ServiceImports and their status included.
func (h *harness) mcsNothingLost(t *testing.T, user []client.Object, exports []*mcsv1beta1.ServiceExport) {
	t.Helper()
	errs := h.userObjectsUnchanged(append(slices.Clone(user), h.anchors...))
	errs = append(errs, h.noForeignWrites()...)
	for _, ex := range exports {
		for _, c := range []client.Client{h.east, h.west} {
			var cur mcsv1beta1.ServiceExport
			if err := c.Get(context.Background(), client.ObjectKeyFromObject(ex), &cur); err != nil || cur.UID != ex.UID {
				continue
			}
			if cur.Generation != ex.Generation || !maps.Equal(cur.Labels, ex.Labels) || !maps.Equal(cur.Annotations, ex.Annotations) {
				errs = append(errs, fmt.Sprintf("user's ServiceExport %s was changed beyond its status", ex.Name))
			}
		}
	}
	errs = append(errs, h.mcsNoOrphans()...)
	if len(errs) > 0 {
		h.dump()
		t.Fatalf("nothing lost: %v", joinErrs(errs))
	}
	before := h.mcsState()
	h.freshStartAgrees(t)
	if after := h.mcsState(); after != before {
		t.Fatalf("nothing lost: ServiceImports or ServiceExport conditions differ after a fresh start:\n before %s\n after  %s", before, after)
	}
}

// mcsNoOrphans: every ServiceImport and every MCS slice in either cluster
// has a ServiceExport behind it (in the slice's source cluster), and every
// MCS object is owned by the ServiceImport that exists.
func (h *harness) mcsNoOrphans() []string {
	ctx := context.Background()
	var errs []string
	exported := map[string]bool{} // cluster/name
	clusters := map[client.Client]string{h.east: h.eastCluster, h.west: "west-" + h.id}
	for c, name := range clusters {
		var exports mcsv1beta1.ServiceExportList
		if err := c.List(ctx, &exports, client.InNamespace(h.ns)); err != nil {
			return []string{err.Error()}
		}
		for _, ex := range exports.Items {
			exported[name+"/"+ex.Name] = true
		}
	}
	for c, cname := range clusters {
		var imports mcsv1beta1.ServiceImportList
		var svcs corev1.ServiceList
		var eps discoveryv1.EndpointSliceList
		sel := client.MatchingLabels(mapper.MCSSelector())
		if err := errors.Join(c.List(ctx, &imports, client.InNamespace(h.ns)), c.List(ctx, &svcs, client.InNamespace(h.ns), sel),
			c.List(ctx, &eps, client.InNamespace(h.ns), sel)); err != nil {
			return []string{err.Error()}
		}
		uids := map[string]string{}
		for _, si := range imports.Items {
			uids[string(si.UID)] = si.Name
			if !exported[h.eastCluster+"/"+si.Name] && !exported["west-"+h.id+"/"+si.Name] {
				errs = append(errs, fmt.Sprintf("%s: ServiceImport %s, but no cluster exports it", cname, si.Name))
			}
		}
		for _, o := range append(pointerObjs(svcs.Items), pointerObjs(eps.Items)...) {
			refs := o.GetOwnerReferences()
			if len(refs) != 1 || uids[string(refs[0].UID)] == "" {
				errs = append(errs, fmt.Sprintf("%s: %T %s is not owned by an existing ServiceImport (%v)", cname, o, o.GetName(), refs))
			}
			if es, ok := o.(*discoveryv1.EndpointSlice); ok {
				if src := es.Labels[mcsv1beta1.LabelSourceCluster]; !exported[src+"/"+es.Labels[mcsv1beta1.LabelServiceName]] {
					errs = append(errs, fmt.Sprintf("%s: slice %s from %s, which does not export it", cname, es.Name, src))
				}
			}
		}
	}
	return errs
}

// mcsState renders the ServiceImports (spec and status, without times)
// and the ServiceExports' conditions of both clusters.
func (h *harness) mcsState() string {
	ctx := context.Background()
	var out []string
	for cname, c := range map[string]client.Client{"east": h.east, "west": h.west} {
		var imports mcsv1beta1.ServiceImportList
		var exports mcsv1beta1.ServiceExportList
		_ = c.List(ctx, &imports, client.InNamespace(h.ns))
		_ = c.List(ctx, &exports, client.InNamespace(h.ns))
		for _, si := range imports.Items {
			st := si.Status.DeepCopy()
			for i := range st.Conditions {
				st.Conditions[i].LastTransitionTime = metav1.Time{}
			}
			spec, _ := json.Marshal(si.Spec)
			status, _ := json.Marshal(st)
			out = append(out, fmt.Sprintf("%s/import/%s uid=%s rv=%s spec=%s status=%s", cname, si.Name, si.UID, si.ResourceVersion, spec, status))
		}
		for _, ex := range exports.Items {
			conds, _ := json.Marshal(ex.Status.Conditions)
			out = append(out, fmt.Sprintf("%s/export/%s rv=%s conditions=%s", cname, ex.Name, ex.ResourceVersion, conds))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestMCSPortConflict is the issue's second "done when", with KEP "Service
// Port" and "Constraints and Conflict Resolution": west exports first
// (older), east later (newer) with another number for the same port name.
// West is the older although its name sorts last, so that the test tells
// the KEP's rule from crossmap's tie-break by cluster name. Both exports
// get Conflict=True with reason PortConflict, and the oldest export's
// ports win in both clusters; the newer's endpoints do not get the port it
// serves on another number. When the newer fixes its Service the conflict
// clears on both without disturbing traffic: the clusterset IP and the
// derived Service stay, and the older's slices are not rewritten.
func TestMCSPortConflict(t *testing.T) {
	h, newer, older := newMCSHarness(t, crossmapv1.ModeFlat)
	h.mcsService(older, "podinfo", false, []corev1.ServicePort{tcp("http", 9898)}, "5")
	h.serviceExport(older, "podinfo", nil)
	h.wantImport(newer, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", older.name)
	// creationTimestamp has a resolution of a second: wait one out, so
	// that the older export is older by the KEP's rule, not by the
	// cluster-name tie-break.
	waitNextSecond(t, h, older, "podinfo")
	h.mcsService(newer, "podinfo", false, []corev1.ServicePort{tcp("http", 9899)}, "6")
	h.serviceExport(newer, "podinfo", nil)

	for _, cl := range []mcsCluster{older, newer} {
		h.wantExportConditions(cl, "podinfo", "Valid=True/Valid", "Ready=True/Ready", "Conflict=True/PortConflict")
	}
	var before map[string]importView
	before = map[string]importView{}
	for _, cl := range []mcsCluster{older, newer} {
		// The newer still exports (status.clusters has it), but it serves http
		// on 9899, not the winning 9898: it has no slice of the import, so
		// no traffic to 9898 reaches it.
		before[cl.name] = h.wantImportSlices(cl, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898",
			[]string{older.name, newer.name}, []string{older.name})
	}
	// The message says who won and who differs, on the ServiceExport.
	var ex mcsv1beta1.ServiceExport
	if err := newer.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &ex); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(ex.Status.Conditions, "Conflict"); c == nil || !strings.Contains(c.Message, "in cluster "+older.name) {
		t.Errorf("west's Conflict condition does not name the winner %s: %+v", older.name, c)
	}

	// West fixes its port: the conflict clears on both exports.
	var svc corev1.Service
	if err := newer.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.Ports[0].Port, svc.Spec.Ports[0].TargetPort.IntVal = 9898, 9898
	if err := newer.c.Update(context.Background(), &svc); err != nil {
		t.Fatal(err)
	}
	var es discoveryv1.EndpointSlice
	if err := newer.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-abcde"}, &es); err != nil {
		t.Fatal(err)
	}
	es.Ports[0].Port = ptr.To(int32(9898))
	if err := newer.c.Update(context.Background(), &es); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []mcsCluster{older, newer} {
		h.wantExportConditions(cl, "podinfo", "Valid=True/Valid", "Ready=True/Ready", "Conflict=False/NoConflicts")
		after := h.wantImport(cl, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", older.name, newer.name)
		b := before[cl.name]
		// KEP "Constraints and Conflict Resolution": when a conflict
		// clears, traffic is not disturbed.
		if after.imp.UID != b.imp.UID || !slices.Equal(after.imp.Spec.IPs, b.imp.Spec.IPs) {
			t.Errorf("%s: the ServiceImport was replaced or its clusterset IP changed: %v -> %v", cl.name, b.imp.Spec.IPs, after.imp.Spec.IPs)
		}
		if after.derived.UID != b.derived.UID || after.derived.ResourceVersion != b.derived.ResourceVersion {
			t.Errorf("%s: the derived Service was replaced or rewritten", cl.name)
		}
		// Flat mode: the newer cluster's endpoints are its pods.
		if got := after.slices[newer.name][0].Endpoints[0].Addresses[0]; !strings.HasPrefix(got, newer.pods) {
			t.Errorf("%s: %s's slice points at %s, want its pod (flat mode)", cl.name, newer.name, got)
		}
		for i, es := range after.slices[older.name] {
			if old := b.slices[older.name][i]; es.UID != old.UID || es.ResourceVersion != old.ResourceVersion {
				t.Errorf("%s: older's slice %s was rewritten when newer's conflict cleared", cl.name, es.Name)
			}
		}
	}
}

// waitNextSecond waits until the API server's clock, as creationTimestamps
// show it, has passed the second in which cl's ServiceExport name was
// created: a probe object created then is seen with a later timestamp.
func waitNextSecond(t *testing.T, h *harness, cl mcsCluster, name string) {
	t.Helper()
	var ex mcsv1beta1.ServiceExport
	if err := cl.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &ex); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: fmt.Sprintf("clock-%d", i)}}
		if err := cl.c.Create(context.Background(), probe); err != nil {
			t.Fatal(err)
		}
		if probe.CreationTimestamp.After(ex.CreationTimestamp.Time) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the API server's clock did not move on in 10 s")
		}
		// The next second starts within a second: ask again when it may
		// have (a deadline bounds it above).
		<-time.After(time.Until(probe.CreationTimestamp.Add(time.Second)) + 10*time.Millisecond)
	}
}

// TestMCSPortUnion checks KEP "Service Port": exports with different port
// sets merge into the union (by name, then by protocol and port), a port by
// another protocol on the same number being another port, and PortConflict
// is raised since the sets differ. Each cluster's slice carries only the
// ports its own Service exposes.
func TestMCSPortUnion(t *testing.T) {
	h, east, west := newMCSHarness(t, crossmapv1.ModeFlat)
	h.mcsService(east, "hello", false, []corev1.ServicePort{tcp("tcp", 42), {Name: "udp", Port: 42, Protocol: corev1.ProtocolUDP}}, "5")
	h.serviceExport(east, "hello", nil)
	h.wantImport(west, "hello", mcsv1beta1.ClusterSetIP, "tcp:TCP/42,udp:UDP/42", east.name)
	h.mcsService(west, "hello", false, []corev1.ServicePort{tcp("tcp", 42), {Name: "stcp", Port: 142, Protocol: corev1.ProtocolSCTP}}, "6")
	h.serviceExport(west, "hello", nil)
	for _, cl := range []mcsCluster{east, west} {
		h.wantExportConditions(cl, "hello", "Valid=True/Valid", "Ready=True/Ready", "Conflict=True/PortConflict")
		v := h.wantImport(cl, "hello", mcsv1beta1.ClusterSetIP, "stcp:SCTP/142,tcp:TCP/42,udp:UDP/42", east.name, west.name)
		for src, want := range map[string]string{east.name: "tcp,udp", west.name: "stcp,tcp"} {
			var names []string
			for _, p := range v.slices[src][0].Ports {
				names = append(names, *p.Name)
			}
			sort.Strings(names)
			if got := strings.Join(names, ","); got != want {
				t.Errorf("%s: %s's slice has ports %s, want %s (its own)", cl.name, src, got, want)
			}
		}
		if got := portsString(toMCSPorts(v.derived.Spec.Ports)); got != "stcp:SCTP/142,tcp:TCP/42,udp:UDP/42" {
			t.Errorf("%s: the derived Service has ports %s, want the union", cl.name, got)
		}
	}
}

func toMCSPorts(ps []corev1.ServicePort) []mcsv1beta1.ServicePort {
	var out []mcsv1beta1.ServicePort
	for _, p := range ps {
		out = append(out, mcsv1beta1.ServicePort{Name: p.Name, Protocol: p.Protocol, Port: p.Port})
	}
	return out
}

// TestMCSHeadless checks KEP "Service Types" and "ClusterSetIP": a headless
// Service imports as type Headless, with no clusterset IP and no derived
// Service, in both clusters; and KEP "Headlessness": a non-headless export
// that comes later conflicts (TypeConflict) and the oldest, headless, wins.
// The older export is west's, whose name sorts last: the age decides, not
// the tie-break by cluster name.
func TestMCSHeadless(t *testing.T) {
	h, newer, older := newMCSHarness(t, crossmapv1.ModeFlat)
	h.mcsService(older, "db", true, []corev1.ServicePort{tcp("sql", 5432)}, "5")
	h.serviceExport(older, "db", nil)
	for _, cl := range []mcsCluster{older, newer} {
		h.wantImport(cl, "db", mcsv1beta1.Headless, "sql:TCP/5432", older.name)
	}
	waitNextSecond(t, h, older, "db")
	h.mcsService(newer, "db", false, []corev1.ServicePort{tcp("sql", 5432)}, "6")
	h.serviceExport(newer, "db", nil)
	for _, cl := range []mcsCluster{older, newer} {
		h.wantExportConditions(cl, "db", "Valid=True/Valid", "Ready=True/Ready", "Conflict=True/TypeConflict")
		h.wantImport(cl, "db", mcsv1beta1.Headless, "sql:TCP/5432", older.name, newer.name)
	}
}

// TestMCSLinkGoesAway: when west's Link to east is deleted, west no longer
// sees east's exports: east leaves status.clusters of west's ServiceImport
// and its slices go, while west's own export stays imported (KEP "Tracking
// Endpoints": every slice maps to one source cluster, so one cluster's part
// goes alone). East, still linked to west, keeps both. Nothing is lost, and
// fresh controllers agree.
func TestMCSLinkGoesAway(t *testing.T) {
	h, east, west := newMCSHarness(t, crossmapv1.ModeGateway)
	ports := []corev1.ServicePort{tcp("http", 9898)}
	user := slices.Concat(h.mcsService(east, "podinfo", false, ports, "5"), h.mcsService(west, "podinfo", false, ports, "6"))
	exports := []*mcsv1beta1.ServiceExport{h.serviceExport(east, "podinfo", nil), h.serviceExport(west, "podinfo", nil)}
	h.wantImport(west, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", east.name, west.name)
	if err := h.west.Delete(context.Background(), &crossmapv1.Link{ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: east.name}}); err != nil {
		t.Fatal(err)
	}
	h.wantImport(west, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", west.name)
	h.wantImport(east, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", east.name, west.name)
	h.mcsNothingLost(t, user, exports)
}

// TestMCSInvalidExport: KEP "Service Types": a ServiceExport of an
// ExternalName Service is Valid=False with reason InvalidServiceType, and
// one naming no Service is Valid=False with NoService; neither is
// imported. Bad input is told in three places: the condition (and the
// status API's problems), a Warning Event on the ServiceExport, and the
// log.
func TestMCSInvalidExport(t *testing.T) {
	h, east, west := newMCSHarness(t, crossmapv1.ModeGateway)
	h.create(h.east, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "ext"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}})
	h.serviceExport(east, "ext", nil)
	h.serviceExport(east, "ghost", nil)
	h.wantExportConditions(east, "ext", "Valid=False/InvalidServiceType", "Ready=False/Failed")
	h.wantExportConditions(east, "ghost", "Valid=False/NoService", "Ready=False/Pending")
	h.eventually("east: Warning Events on both ServiceExports", func(ctx context.Context) error {
		var found []string
		for _, e := range h.events(h.east, h.ns) {
			if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Kind == "ServiceExport" {
				found = append(found, e.InvolvedObject.Name+"/"+e.Reason)
			}
		}
		sort.Strings(found)
		if !slices.Contains(found, "ext/InvalidServiceType") || !slices.Contains(found, "ghost/NoService") {
			return fmt.Errorf("events %v", found)
		}
		return nil
	})
	h.eventually("east: the problems in the status model", func(context.Context) error {
		var got []string
		for _, p := range h.eastCtl.Model.View().Problems {
			if p.Object.Kind == "ServiceExport" && p.Object.Namespace == h.ns {
				got = append(got, p.Object.Name+"/"+p.Reason)
			}
		}
		sort.Strings(got)
		if want := []string{"ext/InvalidServiceType", "ghost/NoService"}; !slices.Equal(got, want) {
			return fmt.Errorf("problems %v, want %v", got, want)
		}
		return nil
	})
	for _, reason := range []string{"InvalidServiceType", "NoService"} {
		if _, ok := h.logs.find("Found a problem", reason, "ServiceExport "+h.ns+"/"); !ok {
			t.Errorf("no log line tells of the %s problem", reason)
		}
	}
	for _, cl := range []mcsCluster{east, west} {
		for _, name := range []string{"ext", "ghost"} {
			var si mcsv1beta1.ServiceImport
			if err := cl.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &si); !apierrors.IsNotFound(err) {
				t.Errorf("%s: ServiceImport %s: %v, want none", cl.name, name, err)
			}
		}
	}
	// The Service appears: the export becomes valid and is imported.
	h.mcsService(east, "ghost", false, []corev1.ServicePort{tcp("http", 80)}, "7")
	h.wantExportConditions(east, "ghost", "Valid=True/Valid", "Ready=True/Ready", "Conflict=False/NoConflicts")
	h.wantImport(west, "ghost", mcsv1beta1.ClusterSetIP, "http:TCP/80", east.name)
}

// TestMCSExportedLabels checks KEP "Labels and Annotations": only the
// ServiceExport's spec.exportedLabels and spec.exportedAnnotations reach
// the ServiceImport, never the Service's or the ServiceExport's metadata;
// when the exports disagree the oldest (west's, whose name sorts last) wins
// and both get LabelsConflict and AnnotationsConflict.
func TestMCSExportedLabels(t *testing.T) {
	h, newer, older := newMCSHarness(t, crossmapv1.ModeFlat)
	ports := []corev1.ServicePort{tcp("http", 9898)}
	h.mcsService(older, "podinfo", false, ports, "5")
	h.serviceExport(older, "podinfo", func(ex *mcsv1beta1.ServiceExport) {
		ex.Labels = map[string]string{"on-the-export": "x"}
		ex.Spec.ExportedLabels = map[string]string{"tier": "frontend"}
		ex.Spec.ExportedAnnotations = map[string]string{"note": "older"}
	})
	h.wantImport(newer, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", older.name)
	waitNextSecond(t, h, older, "podinfo")
	h.mcsService(newer, "podinfo", false, ports, "6")
	h.serviceExport(newer, "podinfo", func(ex *mcsv1beta1.ServiceExport) {
		ex.Spec.ExportedLabels = map[string]string{"tier": "web"}
		ex.Spec.ExportedAnnotations = map[string]string{"note": "newer"}
	})
	for _, cl := range []mcsCluster{older, newer} {
		h.wantExportConditions(cl, "podinfo", "Valid=True/Valid", "Ready=True/Ready", "Conflict=True/LabelsConflict,AnnotationsConflict")
		v := h.wantImport(cl, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", older.name, newer.name)
		l, a := v.imp.Labels, v.imp.Annotations
		if l["tier"] != "frontend" || a["note"] != "older" {
			t.Errorf("%s: ServiceImport labels %v annotations %v, want the oldest export's tier=frontend, note=older", cl.name, l, a)
		}
		if _, ok := l["app"]; ok || l["on-the-export"] != "" || a["owner"] != "" {
			t.Errorf("%s: ServiceImport carries metadata of the Service or the ServiceExport: labels %v annotations %v", cl.name, l, a)
		}
	}
}

// mcsLinkCondition waits until cl's Link to cluster to has condition typ as
// "Status/Reason".
func (h *harness) mcsLinkCondition(cl mcsCluster, to, typ, want string) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("%s: Link %s has %s=%s", cl.name, to, typ, want), func(ctx context.Context) error {
		var l crossmapv1.Link
		if err := cl.c.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: to}, &l); err != nil {
			return err
		}
		if got := condition(&l, typ); got != want {
			return fmt.Errorf("%s is %s", typ, got)
		}
		return nil
	})
}

// TestMCSRemoteDown: while east's API server is down, west keeps east's
// part of the ServiceImport as it was last read (the same rule as for
// mirrors: a remote that cannot be read is not a remote that exports
// nothing); when east is back, a change there reaches the import again.
func TestMCSRemoteDown(t *testing.T) {
	h, east, west := newMCSHarness(t, crossmapv1.ModeGateway)
	ports := []corev1.ServicePort{tcp("http", 9898)}
	h.mcsService(east, "podinfo", false, ports, "5")
	westSvc := h.mcsService(west, "podinfo", false, ports, "6")[0].(*corev1.Service)
	h.serviceExport(east, "podinfo", nil)
	h.serviceExport(west, "podinfo", nil)
	before := h.wantImport(west, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", east.name, west.name)

	plane := bed.Plane("east")
	if err := plane.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = plane.StartAPIServer()
		}
	})
	h.mcsLinkCondition(west, east.name, crossmapv1.ConditionRemoteReachable, "False/Unreachable")
	// A reconcile of west's MCS role that certainly ran with east down:
	// one a change in west asks for after the Link said so.
	mcsReconciles := func() float64 {
		return counter(t, h.westMetrics, "crossmap_reconciles_total", map[string]string{"role": "mcs"})
	}
	n := mcsReconciles()
	update(h, h.west, westSvc, func(s *corev1.Service) { s.Annotations["touched"] = "while east is down" })
	h.eventually("west's MCS role reconciled with east down", func(context.Context) error {
		if mcsReconciles() <= n {
			return errors.New("no reconcile yet")
		}
		return nil
	})
	v := h.wantImport(west, "podinfo", mcsv1beta1.ClusterSetIP, "http:TCP/9898", east.name, west.name)
	for i, es := range v.slices[east.name] {
		if old := before.slices[east.name][i]; es.UID != old.UID || es.ResourceVersion != old.ResourceVersion {
			t.Errorf("east's slice %s was rewritten while east was down", es.Name)
		}
	}

	if err := plane.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	h.mcsLinkCondition(west, east.name, crossmapv1.ConditionRemoteReachable, "True/Connected")
	var svc corev1.Service
	if err := h.east.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &svc); err != nil {
		t.Fatal(err)
	}
	update(h, h.east, &svc, func(s *corev1.Service) { s.Spec.Ports = append(s.Spec.Ports, tcp("grpc", 9999)) })
	// East now exposes grpc too: the union, and a PortConflict, reach
	// west (KEP "Service Port").
	h.wantImport(west, "podinfo", mcsv1beta1.ClusterSetIP, "grpc:TCP/9999,http:TCP/9898", east.name, west.name)
	h.wantExportConditions(west, "podinfo", "Valid=True/Valid", "Ready=True/Ready", "Conflict=True/PortConflict")
}
