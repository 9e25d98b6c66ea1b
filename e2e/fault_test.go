package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/netns"
)

// splitFixture is TestSplit's starting point on a fault harness: podinfo
// exported from east and local in west, the Link, and the user's Mapping
// split east=50. It returns the user's objects.
func (h *harness) splitFixture() []client.Object {
	h.t.Helper()
	user := h.exported("podinfo", []int32{9898}, "10.244.20.1")
	user = append(user, h.local("podinfo", 9898, "10.244.21.1")...)
	h.link(nil)
	h.wantMirror("mirror", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
	m := h.userMapping("podinfo", "podinfo."+h.ns+":9898", map[string]string{"crossmap.io/split": "east=50"}, nil)
	h.wantWeight("split", "podinfo-east", 50)
	return append(user, m)
}

// mirrorNames lists west's mirror Services of this test, sorted.
func (h *harness) mirrorNames(ctx context.Context) ([]string, error) {
	var list corev1.ServiceList
	if err := h.west.List(ctx, &list, client.InNamespace(h.ns),
		client.MatchingLabels{crossmapv1.LabelManagedBy: crossmapv1.ManagedBy, crossmapv1.LabelRole: crossmapv1.RoleMirror}); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range list.Items {
		out = append(out, s.Name)
	}
	slices.Sort(out)
	return out, nil
}

// TestFaultLocalAPIServerRestart: west's own API server restarts under the
// controller. Afterwards a remote change still propagates, the split is
// intact, and nothing is lost.
func TestFaultLocalAPIServerRestart(t *testing.T) {
	h := newFaultHarness(t, nil, true)
	user := h.splitFixture()

	west := bed.Plane("west")
	if err := west.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			_ = west.StartAPIServer()
		}
	})
	if err := west.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	restarted = true

	user = append(user, h.exported("after", []int32{8080}, "10.244.20.2")...)
	h.wantMirror("a Service exported after the restart is mirrored", "after", []int32{8080}, gatewayIP+":4143 ready=true")
	h.setReady(h.east, "podinfo-abcde", false)
	h.wantMirror("a remote readiness change propagates", "podinfo", []int32{9898}, gatewayIP+":4143 ready=false")
	h.setReady(h.east, "podinfo-abcde", true)
	h.wantMirror("and back", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
	h.wantWeight("split kept", "podinfo-east", 50)
	h.wantLinkCondition(crossmapv1.ConditionReady, "True/Synced")
	// setReady wrote the user's slice: refresh what nothingLost compares.
	user = refresh(h, h.east, user)
	h.nothingLost(t, user)
}

// refresh re-reads those of objs that live in c, so that their
// resourceVersion is the one after the test's own writes.
func refresh(h *harness, c client.Client, objs []client.Object) []client.Object {
	h.t.Helper()
	for _, o := range objs {
		cur := o.DeepCopyObject().(client.Object)
		if err := c.Get(context.Background(), client.ObjectKeyFromObject(o), cur); err == nil && cur.GetUID() == o.GetUID() {
			o.SetResourceVersion(cur.GetResourceVersion())
		}
	}
	return objs
}

// TestFaultControllerKilledMidApply: west's controller is killed while it
// writes the mirrors of 30 Services exported at once; a new controller
// converges to exactly one mirror per Service.
func TestFaultControllerKilledMidApply(t *testing.T) {
	const n = 30
	h := newFaultHarness(t, nil, true)
	first := h.westCtl
	firstRun := currentWest(h)
	h.link(nil)
	var user []client.Object
	var want []string
	for i := range n {
		name := fmt.Sprintf("svc-%02d", i)
		user = append(user, h.exported(name, []int32{80}, fmt.Sprintf("10.244.22.%d", i+1))...)
		want = append(want, name+"-east")
	}
	slices.Sort(want)

	// Kill as soon as the first mirror exists: poll with a tight loop.
	ctx := context.Background()
	for {
		names, err := h.mirrorNames(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) > 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			t.Fatal(err)
		}
	}
	firstRun.stop()
	atKill, _ := h.mirrorNames(ctx)
	t.Logf("killed the first controller with %d of %d mirrors written (%v writes)", len(atKill), n, firstRun.writes())
	if first == nil {
		t.Fatal("no first controller")
	}

	h.startWest(nil)
	for _, name := range want {
		h.wantMirror("mirror after the restart", name[:len(name)-len("-east")], []int32{80}, gatewayIP+":4143 ready=true")
	}
	h.eventually("exactly one mirror per Service", func(ctx context.Context) error {
		names, err := h.mirrorNames(ctx)
		if err != nil {
			return err
		}
		if !slices.Equal(names, want) {
			return fmt.Errorf("mirrors %v, want %v", names, want)
		}
		var es discoveryv1.EndpointSliceList
		if err := h.west.List(ctx, &es, client.InNamespace(h.ns), client.MatchingLabels{crossmapv1.LabelRole: crossmapv1.RoleMirror}); err != nil {
			return err
		}
		per := map[string]int{}
		for _, s := range es.Items {
			per[s.Labels[discoveryv1.LabelServiceName]]++
		}
		for _, name := range want {
			if per[name] != 1 {
				return fmt.Errorf("mirror %s has %d EndpointSlices, want 1", name, per[name])
			}
		}
		if len(per) != n {
			return fmt.Errorf("mirror EndpointSlices for %d Services, want %d", len(per), n)
		}
		return nil
	})
	h.wantLinkCondition(crossmapv1.ConditionReady, "True/Synced")
	h.nothingLost(t, user)
}

// currentWest is the west controller newFaultHarness or startWest started.
func currentWest(h *harness) *runningCtl {
	faultCtls.Lock()
	defer faultCtls.Unlock()
	return faultCtls.m[h][1]
}

// TestFaultCredentialsRevoked: the Link's Secret is rotated to a user east
// knows but grants nothing. The Link says the remote cannot be read, the
// mirrors are kept, and restoring read access resyncs.
func TestFaultCredentialsRevoked(t *testing.T) {
	h := newFaultHarness(t, nil, true)
	user := h.splitFixture()
	var secret corev1.Secret
	if err := h.west.Get(context.Background(), client.ObjectKey{Namespace: h.ctrlNS, Name: "east-credentials"}, &secret); err != nil {
		t.Fatal(err)
	}
	good := secret.Data["kubeconfig"]
	revoked, err := bed.Plane("east").Kubeconfig("revoked-"+h.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	update(h, h.west, &secret, func(s *corev1.Secret) { s.Data["kubeconfig"] = revoked })
	h.eventually("Link says the remote cannot be read", func(ctx context.Context) error {
		l, err := h.getLink(ctx)
		if err != nil {
			return err
		}
		if got := condition(l, crossmapv1.ConditionRemoteReachable); got == "True/Connected" || got == "absent" {
			return fmt.Errorf("RemoteReachable = %s", got)
		}
		if got := condition(l, crossmapv1.ConditionReady); got == "True/Synced" || got == "absent" {
			return fmt.Errorf("Ready = %s", got)
		}
		return nil
	})
	// Refused credentials are told apart from a remote that does not
	// answer, and reported in the status API too.
	h.wantLinkCondition(crossmapv1.ConditionRemoteReachable, "False/Forbidden")
	h.wantProblem("Forbidden", "forbidden")
	reachable := "False/Forbidden"
	h.eventually("a Warning Event on the Link says so", func(context.Context) error {
		for _, e := range h.events(h.west, h.ctrlNS) {
			if e.Type == corev1.EventTypeWarning && e.InvolvedObject.Name == "east" &&
				"False/"+e.Reason == reachable {
				return nil
			}
		}
		return fmt.Errorf("no Warning Event %s on the Link", reachable)
	})
	// A change east makes now cannot be seen; the mirrors stay as they were.
	h.setReady(h.east, "podinfo-abcde", false)
	h.wantMirror("mirror kept", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
	h.wantWeight("split kept", "podinfo-east", 50)

	update(h, h.west, &secret, func(s *corev1.Secret) { s.Data["kubeconfig"] = good })
	h.wantLinkCondition(crossmapv1.ConditionReady, "True/Synced")
	h.wantMirror("resynced to what east has now", "podinfo", []int32{9898}, gatewayIP+":4143 ready=false")
	user = refresh(h, h.east, user)
	h.nothingLost(t, user)
}

// TestFaultLeaderFailover: two west controllers elect a leader; only the
// leader writes. When it dies the other takes over and a new remote change
// propagates.
//
// controller.Config exposes LeaderElect only: lease duration, renew
// deadline and ReleaseOnCancel keep controller-runtime's defaults (15s,
// 10s, false), so the standby takes over once the dead leader's lease has
// expired, about 15-17s after the kill.
func TestFaultLeaderFailover(t *testing.T) {
	h := newFaultHarness(t, nil, false)
	leaderElect := func(c *controller.Config) { c.LeaderElect = true }
	h.exported("podinfo", []int32{9898}, "10.244.23.1")
	h.link(nil)
	a := h.startWest(leaderElect)
	h.wantMirror("the first controller leads and mirrors", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
	if a.writes() == 0 {
		t.Fatal("the leader wrote nothing")
	}
	b := h.run(bed.Plane("west"), h.westMutate(leaderElect))
	h.exported("second", []int32{80}, "10.244.23.2")
	h.wantMirror("a change while both run", "second", []int32{80}, gatewayIP+":4143 ready=true")
	// The standby is up (its caches start before the election) and
	// contending, yet writes nothing.
	h.eventually("the standby's caches synced", func(ctx context.Context) error {
		if !b.ctl.Manager.GetCache().WaitForCacheSync(ctx) {
			return fmt.Errorf("caches not synced")
		}
		return nil
	})
	h.exported("second-b", []int32{82}, "10.244.23.4")
	h.wantMirror("the leader alone mirrors a change", "second-b", []int32{82}, gatewayIP+":4143 ready=true")
	if w := b.writes(); w != 0 {
		t.Fatalf("the standby wrote %v times while the leader ran (%s)", w, writesByOp(t, b.reg))
	}
	if r := b.reconciles(); r != 0 {
		t.Fatalf("the standby reconciled %v times while the leader ran", r)
	}

	leaderWrites := a.writes()
	a.stop()
	killed := time.Now()
	h.setWest(b)
	h.exported("third", []int32{81}, "10.244.23.3")
	h.wantMirror("a change after the leader died propagates", "third", []int32{81}, gatewayIP+":4143 ready=true")
	t.Logf("the standby took over and mirrored a new Service %s after the leader was killed", time.Since(killed).Round(100*time.Millisecond))
	if w := a.writes(); w != leaderWrites {
		t.Errorf("the old leader wrote %v times after it was stopped", w-leaderWrites)
	}
	if b.writes() == 0 {
		t.Errorf("the new leader wrote nothing")
	}
	h.wantMirror("earlier mirrors kept", "second", []int32{80}, gatewayIP+":4143 ready=true")
	h.wantMirror("earlier mirrors kept", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
}

// TestFaultGatewayFlapping: a gateway that fails every other probe never
// fails failureThreshold (3) in a row, so it is never declared dead and the
// sibling Mapping's weight does not move with every flip.
func TestFaultGatewayFlapping(t *testing.T) {
	h := newFaultHarness(t, nil, true)
	gw := netip.MustParseAddr("10.246.7.10")
	var probes atomic.Int64
	h.flappingGateway(gw, func() int {
		// Odd probes fail: the longest run of failures is one.
		if probes.Add(1)%2 == 1 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	user := h.exported("podinfo", []int32{9898}, "10.244.24.1")
	user = append(user, h.local("podinfo", 9898, "10.244.25.1")...)
	h.link(func(l *crossmapv1.Link) {
		l.Spec.Gateway.Addresses = []string{gw.String()}
		l.Spec.Probe = &crossmapv1.ProbeSpec{Path: "/ready", Period: metav1.Duration{Duration: 50 * time.Millisecond},
			Timeout: metav1.Duration{Duration: 200 * time.Millisecond}, FailureThreshold: 3}
	})
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
	user = append(user, h.userMapping("podinfo", "podinfo."+h.ns+":9898",
		map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}, nil))
	h.wantWeight("configured", "podinfo-east", 50)

	route := map[string]string{"route": h.ns + "/podinfo"}
	changesBefore := counter(t, h.westMetrics, "crossmap_route_weight_changes_total", route)
	start := probes.Load()
	// Watch for ~2s of flapping (40 probes at 50ms): the gateway stays
	// alive and the weight stays 50 at every look.
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if a := counter(t, h.westMetrics, "crossmap_gateway_alive", nil); a != 1 {
			return false, fmt.Errorf("gateway declared dead (crossmap_gateway_alive = %v) after %d probes", a, probes.Load()-start)
		}
		m, err := h.sibling(ctx, "podinfo-east")
		if err != nil {
			return false, err
		}
		if w := ptr.Deref(m.Spec.Weight, -1); w != 50 {
			return false, fmt.Errorf("sibling weight %d after %d probes, want 50", w, probes.Load()-start)
		}
		return probes.Load()-start >= 40, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	flips := probes.Load() - start
	changes := counter(t, h.westMetrics, "crossmap_route_weight_changes_total", route) - changesBefore
	t.Logf("%d health flips, %v weight changes", flips, changes)
	if changes > 2 {
		t.Errorf("%v weight changes for %d health flips; want at most 2", changes, flips)
	}
	l, err := h.getLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := condition(l, crossmapv1.ConditionGatewayAlive); got != "True/ProbeSucceeded" {
		t.Errorf("GatewayAlive = %s after flapping", got)
	}
	h.nothingLost(t, user)
}

// flappingGateway serves the gateway health endpoint on addr:4143, over
// mutual TLS (h.gatewayTLS), with the status code status returns for each
// request.
func (h *harness) flappingGateway(addr netip.Addr, status func() int) {
	h.t.Helper()
	if err := netns.AddAddress(addr); err != nil {
		h.t.Fatal(err)
	}
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 4143).String())
	if err != nil {
		h.t.Fatal(err)
	}
	l = tls.NewListener(l, h.gatewayTLS())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status()) })}
	go func() { _ = srv.Serve(l) }()
	h.t.Cleanup(func() { _ = srv.Close() })
}

// TestFaultChurn: 1000 remote EndpointSlice updates in a burst across 20
// Services converge to exactly the final state.
func TestFaultChurn(t *testing.T) {
	const services, updates = 20, 50
	h := newFaultHarness(t, nil, true)
	var user []client.Object
	for i := range services {
		user = append(user, h.exported(fmt.Sprintf("churn-%02d", i), []int32{80}, fmt.Sprintf("10.244.26.%d", i+1))...)
	}
	h.link(func(l *crossmapv1.Link) { l.Spec.Mode = crossmapv1.ModeFlat; l.Spec.Gateway = crossmapv1.GatewaySpec{} })
	for i := range services {
		h.wantMirror("flat mirror", fmt.Sprintf("churn-%02d", i), []int32{80}, fmt.Sprintf("10.244.26.%d:80 ready=true", i+1))
	}

	// Each Service's slice is rewritten 50 times by its own goroutine:
	// addresses move and readiness flips on every write.
	final := make([][]string, services)
	var wg sync.WaitGroup
	errs := make([]error, services)
	for i := range services {
		es := user[2*i+1].(*discoveryv1.EndpointSlice)
		wg.Go(func() {
			errs[i] = func() error {
				for u := range updates {
					es.Endpoints = nil
					var want []string
					for k := range 1 + u%3 {
						addr, ready := fmt.Sprintf("10.245.%d.%d", i, (u+k)%250+1), (u+k)%2 == 0
						es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr},
							Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready)}})
						want = append(want, fmt.Sprintf("%s:80 ready=%t", addr, ready))
					}
					if err := h.east.Update(context.Background(), es); err != nil {
						return fmt.Errorf("update %s: %w", es.Name, err)
					}
					final[i] = want
				}
				return nil
			}()
		})
	}
	began := time.Now()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d EndpointSlice updates written in %s", services*updates, time.Since(began).Round(time.Millisecond))
	for i := range services {
		h.wantMirror("converged to the last update", fmt.Sprintf("churn-%02d", i), []int32{80}, final[i]...)
	}
	t.Logf("converged %s after the burst began", time.Since(began).Round(time.Millisecond))
	h.eventually("one mirror per Service", func(ctx context.Context) error {
		names, err := h.mirrorNames(ctx)
		if err != nil {
			return err
		}
		if len(names) != services {
			return fmt.Errorf("%d mirrors, want %d", len(names), services)
		}
		return nil
	})
	h.nothingLost(t, user)
}

// TestFaultManyLinks: ten Links to east at once, each under its own
// cluster name, all mirror every exported Service and report Ready.
func TestFaultManyLinks(t *testing.T) {
	const links = 10
	h := newFaultHarness(t, nil, true)
	var user []client.Object
	for _, name := range []string{"alpha", "beta", "gamma"} {
		user = append(user, h.exported(name, []int32{80}, "10.244.27.1")...)
	}
	first := h.link(nil) // the Secret, and Link "east"
	for i := 1; i < links; i++ {
		l := first.DeepCopy()
		l.ObjectMeta = metav1.ObjectMeta{Namespace: h.ctrlNS, Name: fmt.Sprintf("east%d", i)}
		l.Spec.ClusterName = fmt.Sprintf("east%d", i)
		h.create(h.west, l)
	}
	clusters := []string{"east"}
	for i := 1; i < links; i++ {
		clusters = append(clusters, fmt.Sprintf("east%d", i))
	}
	var want []string
	for _, c := range clusters {
		for _, name := range []string{"alpha", "beta", "gamma"} {
			want = append(want, name+"-"+c)
		}
	}
	slices.Sort(want)
	h.eventually("every Link mirrors every Service", func(ctx context.Context) error {
		names, err := h.mirrorNames(ctx)
		if err != nil {
			return err
		}
		if !slices.Equal(names, want) {
			return fmt.Errorf("mirrors %v, want %v", names, want)
		}
		for _, n := range want {
			svc, es := &corev1.Service{}, &discoveryv1.EndpointSliceList{}
			if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: n}, svc); err != nil {
				return err
			}
			if err := h.west.List(ctx, es, client.InNamespace(h.ns), client.MatchingLabels{discoveryv1.LabelServiceName: n}); err != nil {
				return err
			}
			if got := endpoints(es.Items); !slices.Equal(got, []string{gatewayIP + ":4143 ready=true"}) {
				return fmt.Errorf("mirror %s endpoints %v", n, got)
			}
		}
		return nil
	})
	h.eventually("every Link Ready", func(ctx context.Context) error {
		var list crossmapv1.LinkList
		if err := h.west.List(ctx, &list, client.InNamespace(h.ctrlNS)); err != nil {
			return err
		}
		if len(list.Items) != links {
			return fmt.Errorf("%d Links", len(list.Items))
		}
		for _, l := range list.Items {
			if condition(&l, crossmapv1.ConditionReady) != "True/Synced" || l.Status.MirroredServices != 3 {
				return fmt.Errorf("Link %s: Ready=%s mirrored=%d", l.Name, condition(&l, crossmapv1.ConditionReady), l.Status.MirroredServices)
			}
		}
		return nil
	})
	h.nothingLost(t, user)
}
