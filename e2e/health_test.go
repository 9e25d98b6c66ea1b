package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// Issue 13: failover never waits on anything else. Each test here failed
// on the main of 2026-12-03 (8ba1953).

// fastProbe probes the stand-in gateway at gw every 100 ms; two failed
// rounds make it dead.
func fastProbe(gw netip.Addr) func(*crossmapv1.Link) {
	return func(l *crossmapv1.Link) {
		l.Spec.Gateway.Addresses = []string{gw.String()}
		l.Spec.Probe = &crossmapv1.ProbeSpec{Path: "/ready", Period: metav1.Duration{Duration: 100 * time.Millisecond},
			Timeout: metav1.Duration{Duration: 100 * time.Millisecond}, FailureThreshold: 2}
	}
}

// linkView is the Link in west's status model.
func (h *harness) linkView() (status.Link, bool) {
	for _, l := range h.westCtl.Model.View().Links {
		if l.Namespace == h.ctrlNS && l.Name == "east" {
			return l, true
		}
	}
	return status.Link{}, false
}

// wantStatusAgrees waits until the status API's view of the Link says
// what its conditions say, and still lists the mirror.
func (h *harness) wantStatusAgrees(what string, alive bool, mirror string) {
	h.t.Helper()
	// Not fatal: the test goes on to the traffic, which matters more.
	h.eventuallyOr(what+": /status agrees with the Link's conditions", func(ctx context.Context) error {
		l, err := h.getLink(ctx)
		if err != nil {
			return err
		}
		v, ok := h.linkView()
		if !ok {
			return fmt.Errorf("no Link in the status model")
		}
		cond := condition(l, crossmapv1.ConditionGatewayAlive)
		if v.GatewayAlive != alive || strings.HasPrefix(cond, "False/") == alive {
			return fmt.Errorf("gatewayAlive %v and GatewayAlive %s, want both %v", v.GatewayAlive, cond, alive)
		}
		if reachable := condition(l, crossmapv1.ConditionRemoteReachable) == "True/Connected"; v.RemoteReachable != reachable {
			return fmt.Errorf("remoteReachable %v, RemoteReachable %s", v.RemoteReachable, condition(l, crossmapv1.ConditionRemoteReachable))
		}
		if !slices.Contains(v.MirroredServices, h.ns+"/"+mirror) || int(l.Status.MirroredServices) != len(v.MirroredServices) {
			return fmt.Errorf("mirroredServices %v, status.mirroredServices %d, want %s among them", v.MirroredServices, l.Status.MirroredServices, mirror)
		}
		return nil
	})
}

// TestGatewayHealthWithoutCredentials: with the Link's Secret deleted or
// garbage, a dead gateway still loses its traffic and gets it back; the
// status API agrees with the Link's conditions and keeps the mirrors; and
// the problems found while the remote could be read are not called
// resolved. Before: Reconcile returned when the credentials failed, before
// the probe was looked at, so east kept weight 50 and requests failed;
// /status said gatewayAlive false, no mirrors, while the condition said
// True; and MissingNamespace was logged as resolved.
func TestGatewayHealthWithoutCredentials(t *testing.T) {
	for i, fault := range []struct {
		name, reason string
		apply        func(h *harness, s *corev1.Secret)
	}{
		{"Secret deleted", controller.ReasonSecretNotFound, func(h *harness, s *corev1.Secret) {
			if err := h.west.Delete(context.Background(), s); err != nil {
				h.t.Fatal(err)
			}
		}},
		{"Secret garbage", controller.ReasonInvalidCredentials, func(h *harness, s *corev1.Secret) {
			update(h, h.west, s, func(s *corev1.Secret) { s.Data["kubeconfig"] = []byte("{not a kubeconfig") })
		}},
	} {
		t.Run(fault.name, func(t *testing.T) {
			h := newBareHarness(t)
			h.logs = &logLines{}
			h.startControllers(nil, nil)
			gw := netip.AddrFrom4([4]byte{10, 246, 31, byte(10 + i)})
			stop := h.gateway(gw)
			h.exportService("podinfo", []int32{9898}, "10.244.131.1")
			h.localService("podinfo", 9898, "10.244.131.2")
			// A Service in a namespace west lacks: a problem the remote
			// showed, that no fault here fixes.
			only := "only-east-" + h.id
			h.create(h.east, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: only}})
			h.create(h.east, &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Namespace: only, Name: "stranded", Labels: h.exportLabels},
				Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80)}}},
			})
			h.link(fastProbe(gw))
			h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
			h.wantProblem(mapper.ReasonMissingNamespace, only)
			h.userMapping("podinfo", "podinfo."+h.ns+":9898", map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}, nil)
			h.wantWeight("configured", "podinfo-east", 50)

			var secret corev1.Secret
			if err := h.west.Get(context.Background(), client.ObjectKey{Namespace: h.ctrlNS, Name: "east-credentials"}, &secret); err != nil {
				t.Fatal(err)
			}
			fault.apply(h, &secret)
			h.wantLinkCondition(crossmapv1.ConditionRemoteReachable, "False/"+fault.reason)
			h.wantProblem(fault.reason, "east-credentials")
			h.wantStatusAgrees("credentials broken, gateway alive", true, "podinfo-east")

			stop()
			h.wantWeight("gateway dead: east gets nothing", "podinfo-east", 0)
			h.wantMirror("mirror kept, endpoints not ready", "podinfo", []int32{9898}, gw.String()+":4143 ready=false")
			h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "False/ProbeFailed")
			h.wantStatusAgrees("credentials broken, gateway dead", false, "podinfo-east")

			h.gateway(gw)
			h.wantWeight("gateway back: east ramps back", "podinfo-east", 50)
			h.wantMirror("mirror ready again", "podinfo", []int32{9898}, gw.String()+":4143 ready=true")
			h.wantStatusAgrees("credentials broken, gateway back", true, "podinfo-east")

			// MissingNamespace was never fixed: still reported, never
			// called resolved.
			found := false
			for _, p := range h.westCtl.Model.View().Problems {
				found = found || p.Reason == mapper.ReasonMissingNamespace && strings.Contains(p.Message, only)
			}
			if !found {
				t.Errorf("the MissingNamespace problem of %s is no longer reported: %+v", only, h.westCtl.Model.View().Problems)
			}
			if line, ok := h.logs.find("Problem resolved", mapper.ReasonMissingNamespace); ok {
				t.Errorf("logged as resolved though nothing fixed it: %s", line)
			}
			for _, e := range h.events(h.west, h.ctrlNS) {
				if e.Reason == "Resolved" && strings.Contains(e.Message, only) {
					t.Errorf("Event says resolved though nothing fixed it: %s", e.Message)
				}
			}
		})
	}
}

// TestHeldRouteFailsOver: a route held by bad input keeps its last valid
// weights and still fails over and ramps back on them; the Failover Event
// gives the reason the status API gives. Before: the held route's objects
// were kept as they were, so the dead cluster kept its share.
func TestHeldRouteFailsOver(t *testing.T) {
	h := newHarness(t)
	gw := netip.MustParseAddr("10.246.31.20")
	stop := h.gateway(gw)
	h.exportService("podinfo", []int32{9898}, "10.244.131.3")
	h.localService("podinfo", 9898, "10.244.131.4")
	h.link(fastProbe(gw))
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
	user := h.userMapping("podinfo", "podinfo."+h.ns+":9898", map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}, nil)
	h.wantWeight("configured", "podinfo-east", 50)

	// "50%" is not a weight: the route is held.
	update(h, h.west, user, func(m *ambv3.Mapping) { m.Annotations["crossmap.io/split"] = "east=50%" })
	h.eventually("route held", func(context.Context) error {
		if r, ok := h.westCtl.Model.Route(h.ns + "/podinfo"); !ok || !r.Held {
			return fmt.Errorf("route %+v not held", r)
		}
		return nil
	})

	stop()
	h.wantWeight("held route, gateway dead: east gets nothing", "podinfo-east", 0)
	const dead = "gateway of cluster east is dead"
	h.eventually("the Failover Event and /status give one reason", func(context.Context) error {
		r, _ := h.westCtl.Model.Route(h.ns + "/podinfo")
		if len(r.Backends) != 2 || r.Backends[1].Reason != dead || r.Backends[1].Effective != 0 || r.Failover != "weighted" {
			return fmt.Errorf("status route %+v", r)
		}
		for _, e := range h.events(h.west, h.ns) {
			if e.Reason == "Failover" && e.InvolvedObject.Name == "podinfo" && strings.Contains(e.Message, "east 0 ("+dead+")") {
				return nil
			}
		}
		return fmt.Errorf("no Failover Event saying %q", dead)
	})
	for _, e := range h.events(h.west, h.ns) {
		if e.Reason == "Failover" && strings.Contains(e.Message, "no ready endpoints") {
			t.Errorf("Failover Event with another reason than /status: %s", e.Message)
		}
	}

	h.gateway(gw)
	h.wantWeight("held route, gateway back: east ramps back", "podinfo-east", 50)
	if r, _ := h.westCtl.Model.Route(h.ns + "/podinfo"); !r.Held {
		t.Errorf("the route is no longer held: %+v", r)
	}
}

// TestProbeLatencyFollowsProbes: the probe latency in the status API and
// in crossmap_probe_latency_seconds changes with every probe round, not
// only when the Link is reconciled. Before: both stood still for minutes
// while probes ran every 100 ms.
func TestProbeLatencyFollowsProbes(t *testing.T) {
	h := newHarness(t)
	gw := netip.MustParseAddr("10.246.31.30")
	h.gateway(gw)
	h.exportService("podinfo", []int32{9898}, "10.244.131.5")
	h.link(fastProbe(gw))
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
	h.wantMirror("mirrored", "podinfo", []int32{9898}, gw.String()+":4143 ready=true")

	key := h.ctrlNS + "/east"
	linkReconciles := func() float64 {
		return counter(t, h.westMetrics, "crossmap_reconciles_total", map[string]string{"role": "link"})
	}
	before := linkReconciles()
	seenStatus, seenMetric := map[string]bool{}, map[float64]bool{}
	h.eventually("latency changes with the probes", func(context.Context) error {
		if v, ok := h.linkView(); ok && v.ProbeLatency != "" {
			seenStatus[v.ProbeLatency] = true
		}
		if m := counter(t, h.westMetrics, "crossmap_probe_latency_seconds", map[string]string{"link": key}); m > 0 {
			seenMetric[m] = true
		}
		if len(seenStatus) < 5 || len(seenMetric) < 5 {
			return fmt.Errorf("%d latencies in /status, %d in the metric so far", len(seenStatus), len(seenMetric))
		}
		return nil
	})
	reconciles := linkReconciles() - before
	t.Logf("%d latencies in /status, %d in the metric, over %v Link reconciles", len(seenStatus), len(seenMetric), reconciles)
	if float64(len(seenStatus)) <= reconciles+1 || float64(len(seenMetric)) <= reconciles+1 {
		t.Errorf("%d and %d latencies over %v Link reconciles: they follow reconciles, not probes", len(seenStatus), len(seenMetric), reconciles)
	}
}

// TestRestartKeepsDeadGateway: a west controller restarted while east's
// gateway is dead keeps it dead until its own probe has a verdict of its
// own (a success, or failureThreshold failures): east gets no traffic
// meanwhile, and its share back once the gateway returns. Before: the new
// prober's starting guess ("alive", also after fewer failures than the
// threshold) made the mirrors ready and gave east its share back for a
// few rounds after every restart.
func TestRestartKeepsDeadGateway(t *testing.T) {
	h := newBareHarness(t)
	_, west := h.startControllers(nil, nil)
	gw := netip.MustParseAddr("10.246.31.40")
	stop := h.gateway(gw)
	h.exportService("podinfo", []int32{9898}, "10.244.131.6")
	h.localService("podinfo", 9898, "10.244.131.7")
	h.link(func(l *crossmapv1.Link) {
		l.Spec.Gateway.Addresses = []string{gw.String()}
		// Three rounds of 200 ms before a new prober has a verdict of its
		// own: a window wide enough to see.
		l.Spec.Probe = &crossmapv1.ProbeSpec{Path: "/ready", Period: metav1.Duration{Duration: 200 * time.Millisecond},
			Timeout: metav1.Duration{Duration: 100 * time.Millisecond}, FailureThreshold: 3}
	})
	h.userMapping("podinfo", "podinfo."+h.ns+":9898", map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}, nil)
	h.wantWeight("configured", "podinfo-east", 50)
	stop()
	h.wantWeight("gateway dead", "podinfo-east", 0)
	h.wantMirror("mirror not ready", "podinfo", []int32{9898}, gw.String()+":4143 ready=false")
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "False/ProbeFailed")

	west.stop()
	next := h.run(bed.Plane("west"), h.westMutate(nil))
	h.setWest(next)
	// Through the new controller's first seconds, the dead verdict holds
	// everywhere.
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 3*time.Second, true, func(ctx context.Context) (bool, error) {
		m, err := h.sibling(ctx, "podinfo-east")
		if err != nil {
			return false, nil
		}
		if w := ptr.Deref(m.Spec.Weight, -1); w != 0 {
			return false, fmt.Errorf("east's weight is %d after the restart, with its gateway dead", w)
		}
		_, es, err := h.mirrorState(ctx, "podinfo")
		if err == nil {
			if eps := endpoints(es); !slices.Contains(eps, gw.String()+":4143 ready=false") {
				return false, fmt.Errorf("mirror endpoints %v after the restart, with the gateway dead", eps)
			}
		}
		if l, err := h.getLink(ctx); err == nil && condition(l, crossmapv1.ConditionGatewayAlive) != "False/ProbeFailed" {
			return false, fmt.Errorf("GatewayAlive %s after the restart", condition(l, crossmapv1.ConditionGatewayAlive))
		}
		return false, nil
	})
	if !wait.Interrupted(err) {
		t.Fatal(err)
	}
	if next.reconciles() == 0 {
		t.Fatal("the restarted controller reconciled nothing in 3s; the window proves nothing")
	}
	h.gateway(gw)
	h.wantWeight("gateway back", "podinfo-east", 50)
	h.wantMirror("mirror ready", "podinfo", []int32{9898}, gw.String()+":4143 ready=true")
}

// TestDataPathFailoverDespiteFaults: real requests through west's edge.
// With the Link's Secret deleted, or with the route held by a bad
// annotation, east's gateway dies: once traffic has moved no request goes
// to east and none fails; when it is back east answers again. Before: east
// kept its weight and 8 of 20 (Secret) or 16 of 40 (held) requests failed.
func TestDataPathFailoverDespiteFaults(t *testing.T) {
	for _, fault := range []struct {
		name  string
		apply func(s *story)
	}{
		{"Secret deleted", func(s *story) {
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: s.h.ctrlNS, Name: "east-credentials"}}
			if err := s.h.west.Delete(context.Background(), secret); err != nil {
				s.h.t.Fatal(err)
			}
			s.h.wantLinkCondition(crossmapv1.ConditionRemoteReachable, "False/"+controller.ReasonSecretNotFound)
		}},
		{"route held", func(s *story) {
			update(s.h, s.h.west, s.userMaps[0].(*ambv3.Mapping), func(m *ambv3.Mapping) { m.Annotations["crossmap.io/split"] = "east=50%" })
			s.h.eventually("route held", func(context.Context) error {
				if r, ok := s.h.westCtl.Model.Route(s.h.ns + "/podinfo"); !ok || !r.Held {
					return fmt.Errorf("route %+v not held", r)
				}
				return nil
			})
		}},
	} {
		t.Run(fault.name, func(t *testing.T) {
			s := newStory(t, map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"})
			h := s.h
			h.wantWeight("split configured", "podinfo-east", 50)
			h.eventually("both clusters answer through the edge", func(context.Context) error {
				if c := s.hit(40, nil); c["east"] == 0 || c["west"] == 0 || c["error"] > 0 {
					return fmt.Errorf("answers %v", c)
				}
				return nil
			})
			fault.apply(s)

			s.stopGW()
			h.eventually("edge stopped sending to east", func(context.Context) error {
				if c := s.hit(20, nil); c["west"] != 20 {
					return fmt.Errorf("answers %v", c)
				}
				return nil
			})
			if c := s.hit(200, nil); c["west"] != 200 {
				t.Fatalf("after failover: %v, want every request answered by west", c)
			}

			s.startGateway()
			h.eventually("east answers again", func(context.Context) error {
				if c := s.hit(40, nil); c["east"] == 0 || c["error"] > 0 {
					return fmt.Errorf("answers %v", c)
				}
				return nil
			})
			if c := s.hit(200, nil); c["error"] > 0 || c["east"] == 0 || c["west"] == 0 {
				t.Fatalf("after ramp-back: %v, want both clusters and no error", c)
			}
		})
	}
}
