package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	splitv1alpha2 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
)

func (h *harness) getLink(ctx context.Context) (*crossmapv1.Link, error) {
	var l crossmapv1.Link
	err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: "east"}, &l)
	return &l, err
}

// wantLinkCondition waits until the Link's condition typ is "Status/Reason".
func (h *harness) wantLinkCondition(typ, want string) {
	h.t.Helper()
	h.eventually("Link condition "+typ+" = "+want, func(ctx context.Context) error {
		l, err := h.getLink(ctx)
		if err != nil {
			return err
		}
		if got := condition(l, typ); got != want {
			return fmt.Errorf("%s = %s (conditions %+v)", typ, got, l.Status.Conditions)
		}
		return nil
	})
}

// wantProblem waits until the problem is in all three places people look:
// the status model, a Warning Event on the Link, and (via the Reporter,
// which logs exactly what it records) the log.
func (h *harness) wantProblem(reason, contains string) {
	h.t.Helper()
	h.eventually("problem "+reason+" reported", func(ctx context.Context) error {
		found := false
		for _, p := range h.westCtl.Model.View().Problems {
			if p.Reason == reason && strings.Contains(p.Message, contains) {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("no %s problem mentioning %q in the status model: %+v", reason, contains, h.westCtl.Model.View().Problems)
		}
		for _, e := range h.events(h.west, h.ctrlNS) {
			if e.Reason == reason && e.Type == corev1.EventTypeWarning && e.InvolvedObject.Name == "east" && strings.Contains(e.Message, contains) {
				return nil
			}
		}
		return fmt.Errorf("no Warning Event %s mentioning %q on the Link", reason, contains)
	})
}

// TestRemoteAPIServerRestart: while east's API server is down the mirrors
// stay and the Link says the remote is unreachable; when it is back the
// mirrors resync to what east has now.
func TestRemoteAPIServerRestart(t *testing.T) {
	h := newHarness(t)
	svc := h.exportService("podinfo", []int32{9898}, "10.244.3.1")
	h.link(nil)
	h.wantMirror("mirror created", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")

	east := bed.Plane("east")
	if err := east.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = east.StartAPIServer()
		}
	})
	h.wantLinkCondition(crossmapv1.ConditionRemoteReachable, "False/Unreachable")
	h.wantMirror("mirror kept while east is down", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")

	if err := east.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	h.wantLinkCondition(crossmapv1.ConditionRemoteReachable, "True/Connected")
	update(h, h.east, svc, func(s *corev1.Service) { s.Spec.Ports[0].Port = 8080 })
	h.wantMirror("mirror resynced after the restart", "podinfo", []int32{8080}, gatewayIP+":4143 ready=true")
	h.wantLinkCondition(crossmapv1.ConditionReady, "True/Synced")
}

// TestCredentialsRotation: a new kubeconfig in the Secret is used without a
// restart; a broken one is reported and the mirrors are kept.
func TestCredentialsRotation(t *testing.T) {
	h := newHarness(t)
	h.exportService("podinfo", []int32{9898}, "10.244.4.1")
	h.link(nil)
	h.wantMirror("mirror created", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")

	rotated, err := bed.Plane("east").ReadOnlyKubeconfig(context.Background(), "rotated-"+h.id)
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: "east-credentials"}}
	update(h, h.west, secret, func(s *corev1.Secret) { s.Data["kubeconfig"] = rotated })
	h.exportService("second", []int32{80}, "10.244.4.2")
	h.wantMirror("a Service exported after the rotation is mirrored", "second", []int32{80}, gatewayIP+":4143 ready=true")

	update(h, h.west, secret, func(s *corev1.Secret) { s.Data["kubeconfig"] = []byte("not: [a kubeconfig") })
	h.wantLinkCondition(crossmapv1.ConditionRemoteReachable, "False/InvalidCredentials")
	h.wantProblem("InvalidCredentials", "is not a usable kubeconfig")
	h.wantMirror("mirrors kept with broken credentials", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")

	update(h, h.west, secret, func(s *corev1.Secret) { s.Data["kubeconfig"] = rotated })
	h.wantLinkCondition(crossmapv1.ConditionReady, "True/Synced")
}

// TestBadLink: a Link whose Secret does not exist says so, and nothing else
// breaks: another Service's mirror elsewhere is unaffected.
func TestBadLink(t *testing.T) {
	h := newHarness(t)
	h.exportService("podinfo", []int32{9898}, "10.244.5.1")
	h.create(h.west, &crossmapv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: "east"},
		Spec: crossmapv1.LinkSpec{
			ClusterName:       "east",
			CredentialsSecret: crossmapv1.SecretKeyRef{Name: "missing"},
			Gateway:           crossmapv1.GatewaySpec{Addresses: []string{gatewayIP}},
		},
	})
	h.wantLinkCondition(crossmapv1.ConditionRemoteReachable, "False/SecretNotFound")
	h.wantLinkCondition(crossmapv1.ConditionReady, "False/SecretNotFound")
	h.wantProblem("SecretNotFound", "missing not found")
}

// TestNameConflict: a Service of the user's that has a mirror's name is
// never touched; the conflict is reported and no endpoints are added to it.
func TestNameConflict(t *testing.T) {
	h := newHarness(t)
	foreign := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "podinfo-east", Labels: map[string]string{"owner": "someone-else"}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 1234, TargetPort: intstr.FromInt32(1234)}}},
	}
	h.create(h.west, foreign)
	h.exportService("podinfo", []int32{9898}, "10.244.6.1")
	h.exportService("other", []int32{80}, "10.244.6.2")
	h.link(nil)
	h.wantMirror("the other Service is mirrored", "other", []int32{80}, gatewayIP+":4143 ready=true")
	h.wantProblem(mapper.ReasonConflict, "podinfo-east")
	h.wantLinkCondition(crossmapv1.ConditionReady, "False/Conflict")

	var after corev1.Service
	if err := h.west.Get(context.Background(), client.ObjectKeyFromObject(foreign), &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("the foreign Service was written: resourceVersion %s -> %s", foreign.ResourceVersion, after.ResourceVersion)
	}
	var slices discoveryv1.EndpointSliceList
	if err := h.west.List(context.Background(), &slices, client.InNamespace(h.ns), client.MatchingLabels{discoveryv1.LabelServiceName: "podinfo-east"}); err != nil {
		t.Fatal(err)
	}
	if len(slices.Items) != 0 {
		t.Errorf("crossmap added %d EndpointSlices to the foreign Service", len(slices.Items))
	}
}

// TestMissingNamespace: a Service whose namespace does not exist here is
// skipped and reported, until the Link allows creating namespaces.
func TestMissingNamespace(t *testing.T) {
	h := newHarness(t)
	ns := "only-east-" + h.id
	h.create(h.east, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	h.ns = ns // exportService and wantMirror work in h.ns, which west lacks
	h.exportService("podinfo", []int32{9898}, "10.244.7.1")
	link := h.link(nil)
	h.wantProblem(mapper.ReasonMissingNamespace, ns)
	h.wantLinkCondition(crossmapv1.ConditionReady, "False/MissingNamespace")
	if err := h.west.Get(context.Background(), client.ObjectKey{Name: ns}, &corev1.Namespace{}); !apierrors.IsNotFound(err) {
		t.Fatalf("namespace %s exists in west before createNamespaces was set (err=%v)", ns, err)
	}

	update(h, h.west, link, func(l *crossmapv1.Link) { l.Spec.CreateNamespaces = true })
	h.wantMirror("mirrored into the created namespace", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
	h.wantLinkCondition(crossmapv1.ConditionReady, "True/Synced")
}

// TestSteadyStateMakesNoWrites: once converged, reconciles of both roles
// write nothing: no object, no status.
func TestSteadyStateMakesNoWrites(t *testing.T) {
	h := newHarness(t)
	svc := h.exportService("podinfo", []int32{9898, 9999}, "10.244.8.1")
	h.exportService("second", []int32{80}, "10.244.8.2")
	link := h.link(nil)
	h.localService("podinfo", 9898, "10.244.8.3")
	user := h.userMapping("podinfo", "podinfo."+h.ns+":9898", map[string]string{"crossmap.io/split": "east=50", "crossmap.io/traffic-split": "true"}, nil)
	h.wantMirror("converged", "podinfo", []int32{9898, 9999}, gatewayIP+":4143 ready=true", gatewayIP+":4143 ready=true")
	h.wantLinkCondition(crossmapv1.ConditionReady, "True/Synced")
	h.wantWeight("route converged", "podinfo-east", 50)

	// Let the controllers settle: writes and versions stop changing.
	var before map[string]string
	var westWrites, eastWrites float64
	h.eventually("writes settled", func(ctx context.Context) error {
		w, e := counter(t, h.westMetrics, "crossmap_api_writes_total", nil), counter(t, h.eastMetrics, "crossmap_api_writes_total", nil)
		v := h.ownedVersions()
		if w != westWrites || e != eastWrites || fmt.Sprint(v) != fmt.Sprint(before) {
			westWrites, eastWrites, before = w, e, v
			return fmt.Errorf("still writing")
		}
		return nil
	})
	owned := before

	// Wake every role up with changes that do not change their output.
	westReconciles := counter(t, h.westMetrics, "crossmap_reconciles_total", map[string]string{"role": "link"})
	routeReconciles := counter(t, h.westMetrics, "crossmap_reconciles_total", map[string]string{"role": "route"})
	eastReconciles := counter(t, h.eastMetrics, "crossmap_reconciles_total", map[string]string{"role": "export"})
	update(h, h.west, link, func(l *crossmapv1.Link) { l.Annotations = map[string]string{"touched": "1"} })
	update(h, h.east, svc, func(s *corev1.Service) { s.Annotations = map[string]string{"touched": "1"} })
	update(h, h.west, user, func(m *ambv3.Mapping) { m.Annotations["example.com/touched"] = "1" })
	h.eventually("every role reconciled again", func(context.Context) error {
		if counter(t, h.westMetrics, "crossmap_reconciles_total", map[string]string{"role": "link"}) <= westReconciles {
			return fmt.Errorf("no new link reconcile")
		}
		if counter(t, h.westMetrics, "crossmap_reconciles_total", map[string]string{"role": "route"}) <= routeReconciles {
			return fmt.Errorf("no new route reconcile")
		}
		if counter(t, h.eastMetrics, "crossmap_reconciles_total", map[string]string{"role": "export"}) <= eastReconciles {
			return fmt.Errorf("no new export reconcile")
		}
		return nil
	})
	if w := counter(t, h.westMetrics, "crossmap_api_writes_total", nil); w != westWrites {
		t.Errorf("west wrote %v times in a steady state", w-westWrites)
	}
	if e := counter(t, h.eastMetrics, "crossmap_api_writes_total", nil); e != eastWrites {
		t.Errorf("east wrote %v times in a steady state", e-eastWrites)
	}
	if after := h.ownedVersions(); fmt.Sprint(after) != fmt.Sprint(owned) {
		t.Errorf("owned objects changed in a steady state:\nbefore %v\nafter  %v", owned, after)
	}
}

// ownedVersions maps every object crossmap owns in this test's namespaces
// to its resourceVersion. (Link status writes are counted by
// crossmap_api_writes_total{operation="status"}.)
func (h *harness) ownedVersions() map[string]string {
	h.t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	sel := client.MatchingLabels{crossmapv1.LabelManagedBy: crossmapv1.ManagedBy}
	for cname, c := range map[string]client.Client{"east": h.east, "west": h.west} {
		for _, ns := range []string{h.ns, h.ctrlNS} {
			var svcs corev1.ServiceList
			var slices discoveryv1.EndpointSliceList
			if err := c.List(ctx, &svcs, client.InNamespace(ns), sel); err != nil {
				h.t.Fatal(err)
			}
			if err := c.List(ctx, &slices, client.InNamespace(ns), sel); err != nil {
				h.t.Fatal(err)
			}
			for _, o := range svcs.Items {
				out[cname+"/Service/"+o.Namespace+"/"+o.Name] = o.ResourceVersion
			}
			for _, o := range slices.Items {
				out[cname+"/EndpointSlice/"+o.Namespace+"/"+o.Name] = o.ResourceVersion
			}
		}
	}
	var mappings, routes ambv3.MappingList
	var hosts ambv3.HostList
	var splits splitv1alpha2.TrafficSplitList
	if err := h.east.List(ctx, &mappings, sel); err != nil {
		h.t.Fatal(err)
	}
	if err := h.west.List(ctx, &routes, client.InNamespace(h.ns), sel); err != nil {
		h.t.Fatal(err)
	}
	if err := h.west.List(ctx, &splits, client.InNamespace(h.ns), sel); err != nil {
		h.t.Fatal(err)
	}
	for _, o := range routes.Items {
		out["west/Mapping/"+o.Namespace+"/"+o.Name] = o.ResourceVersion
	}
	for _, o := range splits.Items {
		out["west/TrafficSplit/"+o.Namespace+"/"+o.Name] = o.ResourceVersion
	}
	if err := h.east.List(ctx, &hosts, client.InNamespace(h.ctrlNS), sel); err != nil {
		h.t.Fatal(err)
	}
	for _, o := range mappings.Items {
		if o.Namespace == h.ns {
			out["east/Mapping/"+o.Namespace+"/"+o.Name] = o.ResourceVersion
		}
	}
	for _, o := range hosts.Items {
		out["east/Host/"+o.Namespace+"/"+o.Name] = o.ResourceVersion
	}
	// The trust role's certificates and TLSContexts: a steady state
	// reissues nothing.
	trust := client.MatchingLabels(mapper.TrustSelector())
	for cname, c := range map[string]client.Client{"east": h.east, "west": h.west} {
		var secrets corev1.SecretList
		var tlsctxs ambv3.TLSContextList
		if err := c.List(ctx, &secrets, client.InNamespace(h.ctrlNS), trust); err != nil {
			h.t.Fatal(err)
		}
		if err := c.List(ctx, &tlsctxs, client.InNamespace(h.ctrlNS), trust); err != nil {
			h.t.Fatal(err)
		}
		for _, o := range secrets.Items {
			out[cname+"/Secret/"+o.Namespace+"/"+o.Name] = o.ResourceVersion
		}
		for _, o := range tlsctxs.Items {
			out[cname+"/TLSContext/"+o.Namespace+"/"+o.Name] = o.ResourceVersion
		}
	}
	if len(out) < 6 {
		h.t.Fatalf("only %d owned objects found (%v); the test would check too little", len(out), out)
	}
	return out
}

// TestOneRemoteChangeOneWrite: a single remote change costs exactly one
// API write in the local cluster: the mirror EndpointSlice, and no Link
// status write besides.
func TestOneRemoteChangeOneWrite(t *testing.T) {
	h := newHarness(t)
	h.exportService("podinfo", []int32{9898}, "10.244.12.1", "10.244.12.2")
	h.link(func(l *crossmapv1.Link) { l.Spec.Mode = crossmapv1.ModeFlat; l.Spec.Gateway = crossmapv1.GatewaySpec{} })
	h.wantMirror("mirrored", "podinfo", []int32{9898}, "10.244.12.1:9898 ready=true", "10.244.12.2:9898 ready=true")
	h.wantLinkCondition(crossmapv1.ConditionReady, "True/Synced")

	var writes float64
	settled := func(what string) {
		since := time.Now()
		h.eventually(what, func(context.Context) error {
			w := counter(t, h.westMetrics, "crossmap_api_writes_total", nil)
			if w != writes {
				writes, since = w, time.Now()
				return fmt.Errorf("still writing")
			}
			// Quiet for a while, not just between two looks: the write a
			// test has just seen in the API is counted a moment after.
			if quiet := time.Since(since); quiet < 500*time.Millisecond {
				return fmt.Errorf("no write for %s only", quiet)
			}
			return nil
		})
	}
	settled("settled")
	before := writes
	linkReconciles := func() float64 {
		return counter(t, h.westMetrics, "crossmap_reconciles_total", map[string]string{"role": "link"})
	}
	reconcilesBefore := linkReconciles()
	routeReconciles := func() float64 {
		return counter(t, h.westMetrics, "crossmap_reconciles_total", map[string]string{"role": "route"})
	}
	routesBefore := routeReconciles()
	es := &discoveryv1.EndpointSlice{}
	es.Namespace, es.Name = h.ns, "podinfo-abcde"
	update(h, h.east, es, func(es *discoveryv1.EndpointSlice) { es.Endpoints[1].Conditions.Ready = ptr.To(false) })
	h.wantMirror("the change is mirrored", "podinfo", []int32{9898}, "10.244.12.1:9898 ready=true", "10.244.12.2:9898 ready=false")
	settled("settled again")
	if got := writes - before; got != 1 {
		t.Errorf("one remote change cost %v API writes (%s), want 1", got, writesByOp(t, h.westMetrics))
	}
	// And one Link reconcile: the watch event of the mirror write is
	// crossmap's own echo, not a reason to reconcile again (Echoes).
	if got := linkReconciles() - reconcilesBefore; got != 1 {
		t.Errorf("one remote change cost %v Link reconciles, want 1", got)
	}
	// And no route reconcile: no annotated Mapping routes to podinfo.
	if got := routeReconciles() - routesBefore; got != 0 {
		t.Errorf("a remote change no route depends on cost %v route reconciles, want 0", got)
	}
}
