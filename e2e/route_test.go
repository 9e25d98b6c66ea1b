package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	splitv1alpha1 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha1"
	splitv1alpha2 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha2"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/netns"
	"github.com/crossmap/crossmap/mapper"
)

// localService creates, in west, the local backend: a Service and a slice
// of ready pods.
func (h *harness) localService(name string, port int32, pods ...string) {
	h.t.Helper()
	h.create(h.west, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []corev1.ServicePort{{
			Name: "http-0", Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP}}},
	})
	h.create(h.west, h.slice(name, []int32{port}, pods, true))
}

// userMapping creates, in west, the user's own edge Mapping.
func (h *harness) userMapping(name, service string, annotations map[string]string, mutate func(*ambv3.Mapping)) *ambv3.Mapping {
	h.t.Helper()
	m := &ambv3.Mapping{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name, Annotations: annotations},
		Spec: ambv3.MappingSpec{
			AmbassadorID: ambv3.AmbassadorID{h.id},
			Hostname:     "*",
			Prefix:       "/" + name + "/",
			Service:      service,
		},
	}
	if mutate != nil {
		mutate(m)
	}
	h.create(h.west, m)
	return m
}

// sibling reads a generated Mapping from west.
func (h *harness) sibling(ctx context.Context, name string) (*ambv3.Mapping, error) {
	var m ambv3.Mapping
	err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name}, &m)
	return &m, err
}

// wantWeight waits until the generated Mapping name has the given weight.
func (h *harness) wantWeight(what, name string, weight int) {
	h.t.Helper()
	h.eventually(what, func(ctx context.Context) error {
		m, err := h.sibling(ctx, name)
		if err != nil {
			return err
		}
		if got := ptr.Deref(m.Spec.Weight, -1); got != weight {
			return fmt.Errorf("%s weight = %d, want %d", name, got, weight)
		}
		return nil
	})
}

func (h *harness) wantGone(what, name string) {
	h.t.Helper()
	h.eventually(what, func(ctx context.Context) error {
		if _, err := h.sibling(ctx, name); !apierrors.IsNotFound(err) {
			return fmt.Errorf("%s still there (err=%v)", name, err)
		}
		return nil
	})
}

// splitSetup is the story's starting point: podinfo in both clusters, east
// linked and exporting it, and the user's Mapping in west.
func splitSetup(t *testing.T, annotations map[string]string, mutate func(*ambv3.Mapping)) (*harness, *ambv3.Mapping) {
	return splitSetupWith(t, nil, annotations, mutate)
}

func splitSetupWith(t *testing.T, westConfig func(*controller.Config), annotations map[string]string, mutate func(*ambv3.Mapping)) (*harness, *ambv3.Mapping) {
	h := newHarnessWith(t, westConfig)
	h.exportService("podinfo", []int32{9898}, "10.244.9.1")
	h.localService("podinfo", 9898, "10.244.10.1")
	h.link(nil)
	h.wantMirror("mirror", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
	m := h.userMapping("podinfo", "podinfo."+h.ns+":9898", annotations, mutate)
	return h, m
}

// TestSplit: an annotated Mapping gets a sibling per remote cluster that
// copies every match and group setting, carries the weight and the gateway
// host rewrite, and follows the annotation until it is removed or the
// Mapping is deleted. The user's Mapping is never written.
func TestSplit(t *testing.T) {
	h, user := splitSetup(t, map[string]string{"crossmap.io/split": "east=50"}, func(m *ambv3.Mapping) {
		m.Labels = map[string]string{"team": "edge"}
		m.Spec.PrefixRegex = ptr.To(false)
		m.Spec.Headers = map[string]string{"x-env": "prod"}
		m.Spec.RegexHeaders = map[string]string{"user-agent": "^curl"}
		m.Spec.QueryParameters = map[string]string{"debug": "false"}
		m.Spec.Method = "GET"
		m.Spec.Precedence = ptr.To(3)
		m.Spec.Timeout = &ambv3.MillisecondDuration{Duration: 2500 * time.Millisecond}
		m.Spec.ConnectTimeout = &ambv3.MillisecondDuration{Duration: 700 * time.Millisecond}
		m.Spec.CircuitBreakers = []*ambv3.CircuitBreaker{{MaxConnections: ptr.To(64)}}
		m.Spec.LoadBalancer = &ambv3.LoadBalancer{Policy: "round_robin"}
		m.Spec.RetryPolicy = &ambv3.RetryPolicy{RetryOn: "5xx", NumRetries: ptr.To(2)}
		m.Spec.Rewrite = ptr.To("/")
	})
	h.wantWeight("sibling created", "podinfo-east", 50)

	sib, err := h.sibling(context.Background(), "podinfo-east")
	if err != nil {
		t.Fatal(err)
	}
	var fresh ambv3.Mapping
	if err := h.west.Get(context.Background(), client.ObjectKeyFromObject(user), &fresh); err != nil {
		t.Fatal(err)
	}
	want := fresh.Spec.DeepCopy()
	want.Service = "podinfo-east." + h.ns + ":9898"
	want.Weight = ptr.To(50)
	want.HostRewrite = "podinfo." + h.ns + ".svc.cluster.local"
	// Mutual TLS to east's gateway, through the TLSContext crossmap writes.
	want.TLS = ingress.OriginContextName("east")
	if got, want := mustJSON(t, sib.Spec), mustJSON(t, want); got != want {
		t.Errorf("sibling spec differs from the user's beyond service, weight, host_rewrite and tls:\n got %s\nwant %s", got, want)
	}
	if len(sib.OwnerReferences) != 1 || sib.OwnerReferences[0].UID != fresh.UID || sib.OwnerReferences[0].Kind != "Mapping" {
		t.Errorf("sibling owner references = %+v, want the user's Mapping", sib.OwnerReferences)
	}
	for k, v := range map[string]string{"team": "edge", crossmapv1.LabelManagedBy: crossmapv1.ManagedBy, crossmapv1.LabelRole: mapper.RoleRoute,
		crossmapv1.LabelSourceName: "podinfo", crossmapv1.LabelSourceNamespace: h.ns, mapper.LabelTargetCluster: "east"} {
		if sib.Labels[k] != v {
			t.Errorf("sibling label %s = %q, want %q", k, sib.Labels[k], v)
		}
	}
	if len(sib.Annotations[crossmapv1.AnnotationSpecHash]) == 0 || sib.Annotations["crossmap.io/split"] != "" {
		t.Errorf("sibling annotations = %v: want crossmap's hash and not the user's split annotation", sib.Annotations)
	}

	update(h, h.west, user, func(m *ambv3.Mapping) { m.Annotations["crossmap.io/split"] = "east=30" })
	h.wantWeight("changed weight", "podinfo-east", 30)

	update(h, h.west, user, func(m *ambv3.Mapping) { delete(m.Annotations, "crossmap.io/split") })
	h.wantGone("annotation removed", "podinfo-east")

	update(h, h.west, user, func(m *ambv3.Mapping) { m.Annotations = map[string]string{"crossmap.io/split": "east=100"} })
	h.wantWeight("all remote", "podinfo-east", 100)
	if err := h.west.Delete(context.Background(), user); err != nil {
		t.Fatal(err)
	}
	h.wantGone("user's Mapping deleted", "podinfo-east")

	var after ambv3.Mapping
	if err := h.west.Get(context.Background(), client.ObjectKeyFromObject(user), &after); !apierrors.IsNotFound(err) {
		t.Fatalf("user's Mapping still readable after delete: %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestUserMappingNeverWritten: every write crossmap makes leaves the
// user's Mapping at its resourceVersion.
func TestUserMappingNeverWritten(t *testing.T) {
	h, user := splitSetup(t, map[string]string{"crossmap.io/split": "east=50", "crossmap.io/traffic-split": "true"}, nil)
	h.wantWeight("sibling created", "podinfo-east", 50)
	h.eventually("TrafficSplit written", func(ctx context.Context) error {
		var ts splitv1alpha2.TrafficSplit
		if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &ts); err != nil {
			return err
		}
		got := fmt.Sprintf("%s:%v", ts.Spec.Service, ts.Spec.Backends)
		if want := "podinfo:[{podinfo 50} {podinfo-east 50}]"; got != want {
			return fmt.Errorf("TrafficSplit = %s, want %s", got, want)
		}
		return nil
	})
	var after ambv3.Mapping
	if err := h.west.Get(context.Background(), client.ObjectKeyFromObject(user), &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != user.ResourceVersion {
		t.Errorf("the user's Mapping was written: resourceVersion %s -> %s", user.ResourceVersion, after.ResourceVersion)
	}
}

// TestTrafficSplitV1alpha1: by configuration, the TrafficSplit is written
// in v1alpha1, with weights as quantities as in the Linkerd recipe, and the
// real CRD accepts it.
func TestTrafficSplitV1alpha1(t *testing.T) {
	h, _ := splitSetupWith(t, func(c *controller.Config) {
		c.TrafficSplit = true
		c.TrafficSplitVersion = "v1alpha1"
	}, map[string]string{"crossmap.io/split": "east=50"}, nil)
	h.eventually("v1alpha1 TrafficSplit", func(ctx context.Context) error {
		var ts splitv1alpha1.TrafficSplit
		if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &ts); err != nil {
			return err
		}
		var got []string
		for _, b := range ts.Spec.Backends {
			got = append(got, b.Service+"="+b.Weight.String())
		}
		if want := "podinfo=500m podinfo-east=500m"; strings.Join(got, " ") != want {
			return fmt.Errorf("backends %v, want %s", got, want)
		}
		return nil
	})
}

// TestDevRoute: a dev route sends requests carrying the dev header to the
// named linked cluster, apart from the split.
func TestDevRoute(t *testing.T) {
	h, _ := splitSetup(t, map[string]string{"crossmap.io/split": "east=50", "crossmap.io/dev-routes": "east"}, nil)
	h.eventually("dev route", func(ctx context.Context) error {
		m, err := h.sibling(ctx, "podinfo-east-dev")
		if err != nil {
			return err
		}
		if m.Spec.Weight != nil || m.Spec.Headers["x-crossmap-cluster"] != "east" || m.Spec.Service != "podinfo-east."+h.ns+":9898" {
			return fmt.Errorf("dev route spec = weight %v headers %v service %s", m.Spec.Weight, m.Spec.Headers, m.Spec.Service)
		}
		return nil
	})
	h.wantWeight("the split sibling is still there", "podinfo-east", 50)
}

// setReady sets the readiness of every endpoint of a slice.
func (h *harness) setReady(c client.Client, name string, ready bool) {
	h.t.Helper()
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}}
	update(h, c, es, func(es *discoveryv1.EndpointSlice) {
		for i := range es.Endpoints {
			es.Endpoints[i].Conditions.Ready = ptr.To(ready)
		}
	})
}

// gateway serves east's gateway health endpoint on addr:4143, an address
// created inside the test's network namespace, over mutual TLS as east's
// gateway would (h.gatewayTLS). stop makes it go away.
func (h *harness) gateway(addr netip.Addr) (stop func()) {
	h.t.Helper()
	return h.standInGateway(addr, h.gatewayTLS())
}

// standInGateway stands in for east's gateway on addr:4143 with the TLS
// cfg: it answers every request that gets through the handshake 200.
func (h *harness) standInGateway(addr netip.Addr, cfg *tls.Config) (stop func()) {
	h.t.Helper()
	if err := netns.AddAddress(addr); err != nil {
		h.t.Fatal(err)
	}
	if !netns.Exists(addr) {
		h.t.Fatalf("gateway address %s does not exist after adding it", addr)
	}
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 4143).String())
	if err != nil {
		h.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }),
		ErrorLog: discardLog}
	go func() { _ = srv.Serve(tls.NewListener(l, cfg)) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = srv.Close()
		}
	}
	h.t.Cleanup(stop)
	return stop
}

// TestFailover walks the failover transitions: remote endpoints gone, local
// endpoints gone, the remote gateway dead, and recovery from each.
func TestFailover(t *testing.T) {
	h := newHarness(t)
	gw := netip.MustParseAddr("10.246.1.10")
	stop := h.gateway(gw)
	h.exportService("podinfo", []int32{9898}, "10.244.9.1")
	h.localService("podinfo", 9898, "10.244.10.1")
	h.link(func(l *crossmapv1.Link) {
		l.Spec.Gateway.Addresses = []string{gw.String()}
		l.Spec.Probe = &crossmapv1.ProbeSpec{Path: "/ready", Period: metav1.Duration{Duration: 100 * time.Millisecond},
			Timeout: metav1.Duration{Duration: 100 * time.Millisecond}, FailureThreshold: 2}
	})
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
	h.userMapping("podinfo", "podinfo."+h.ns+":9898", map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}, nil)
	h.wantWeight("configured", "podinfo-east", 50)

	h.setReady(h.east, "podinfo-abcde", false)
	h.wantWeight("remote endpoints gone: east gets nothing", "podinfo-east", 0)
	h.setReady(h.east, "podinfo-abcde", true)
	h.wantWeight("remote recovered", "podinfo-east", 50)

	h.setReady(h.west, "podinfo-abcde", false)
	h.wantWeight("local endpoints gone: east takes everything", "podinfo-east", 100)
	h.setReady(h.west, "podinfo-abcde", true)
	h.wantWeight("local recovered", "podinfo-east", 50)

	stop()
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "False/ProbeFailed")
	h.wantWeight("gateway dead: east gets nothing", "podinfo-east", 0)
	h.wantMirror("mirror endpoints not ready while the gateway is dead", "podinfo", []int32{9898}, gw.String()+":4143 ready=false")
	h.gateway(gw)
	h.wantWeight("gateway back", "podinfo-east", 50)

	h.eventually("status API explains the weights", func(ctx context.Context) error {
		r, ok := h.westCtl.Model.Route(h.ns + "/podinfo")
		if !ok || len(r.Backends) != 2 || r.Backends[1].Effective != 50 || r.Backends[0].Effective != 50 || r.Failover != "weighted" {
			return fmt.Errorf("route = %+v", r)
		}
		return nil
	})
}

// TestBadInputKeepsLastGoodRoute: every kind of bad input is reported on
// the Mapping, in the log and in the status model, and the routes generated
// before stay exactly as they were.
func TestBadInputKeepsLastGoodRoute(t *testing.T) {
	h, user := splitSetup(t, map[string]string{"crossmap.io/split": "east=50"}, nil)
	h.localService("local-only", 80, "10.244.10.2")
	h.wantWeight("good route", "podinfo-east", 50)
	good, err := h.sibling(context.Background(), "podinfo-east")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, reason, contains string
		mutate                 func(*ambv3.Mapping)
	}{
		{"malformed weight", mapper.ReasonInvalidAnnotation, `"abc"`, func(m *ambv3.Mapping) { m.Annotations["crossmap.io/split"] = "east=abc" }},
		{"unknown cluster", mapper.ReasonUnknownCluster, `"nowhere"`, func(m *ambv3.Mapping) { m.Annotations["crossmap.io/split"] = "nowhere=10" }},
		{"duplicated cluster", mapper.ReasonInvalidAnnotation, "east", func(m *ambv3.Mapping) { m.Annotations["crossmap.io/split"] = "east=20,east=10" }},
		{"weight out of range", mapper.ReasonInvalidAnnotation, "101", func(m *ambv3.Mapping) { m.Annotations["crossmap.io/split"] = "east=101" }},
		{"weights above 100", mapper.ReasonInvalidAnnotation, "110", func(m *ambv3.Mapping) { m.Annotations["crossmap.io/split"] = "east=60,dev=50" }},
		{"annotation typo", mapper.ReasonInvalidAnnotation, "crossmap.io/splt", func(m *ambv3.Mapping) { m.Annotations["crossmap.io/splt"] = "east=10" }},
		{"unparsable service", mapper.ReasonInvalidService, "podinfo:notaport", func(m *ambv3.Mapping) { m.Spec.Service = "podinfo:notaport" }},
		{"not a Kubernetes Service", mapper.ReasonNotKubernetesService, "192.0.2.7", func(m *ambv3.Mapping) { m.Spec.Service = "192.0.2.7:80" }},
		{"port mismatch", mapper.ReasonPortMismatch, "1234", func(m *ambv3.Mapping) { m.Spec.Service = "podinfo." + h.ns + ":1234" }},
		{"service not exported", mapper.ReasonNotExported, "local-only", func(m *ambv3.Mapping) { m.Spec.Service = "local-only." + h.ns + ":80" }},
	} {
		// Each case starts from the good Mapping.
		update(h, h.west, user, func(m *ambv3.Mapping) {
			m.Annotations = map[string]string{"crossmap.io/split": "east=50"}
			m.Spec.Service = "podinfo." + h.ns + ":9898"
		})
		h.eventually(tc.name+": good again", func(ctx context.Context) error {
			for _, p := range h.westCtl.Model.View().Problems {
				if p.Object.Name == "podinfo" {
					return fmt.Errorf("problem still reported: %s", p.Message)
				}
			}
			return nil
		})
		update(h, h.west, user, tc.mutate)
		h.eventually(tc.name+": reported", func(ctx context.Context) error {
			found := ""
			for _, p := range h.westCtl.Model.View().Problems {
				if p.Reason == tc.reason && p.Object.Kind == "Mapping" && p.Object.Name == "podinfo" && strings.Contains(p.Message, tc.contains) {
					found = p.Message
				}
			}
			if found == "" {
				return fmt.Errorf("no %s problem mentioning %s in %+v", tc.reason, tc.contains, h.westCtl.Model.View().Problems)
			}
			for _, e := range h.events(h.west, h.ns) {
				if e.Reason == tc.reason && e.Type == corev1.EventTypeWarning && e.InvolvedObject.Kind == "Mapping" && e.InvolvedObject.Name == "podinfo" && strings.Contains(e.Message, tc.contains) {
					return nil
				}
			}
			return fmt.Errorf("no Warning Event %s on the Mapping", tc.reason)
		})
		now, err := h.sibling(context.Background(), "podinfo-east")
		if err != nil {
			t.Fatalf("%s: the last good route is gone: %v", tc.name, err)
		}
		if now.ResourceVersion != good.ResourceVersion {
			t.Errorf("%s: the last good route was rewritten (resourceVersion %s -> %s)", tc.name, good.ResourceVersion, now.ResourceVersion)
		}
		if r, _ := h.westCtl.Model.Route(h.ns + "/podinfo"); !r.Held {
			t.Errorf("%s: status does not say the route is held", tc.name)
		}
	}
}

// TestGroupWeightsAbove100: another Mapping joins the group with a weight
// that, with the split, passes 100, which makes Emissary drop the whole
// group. crossmap reports it and scales the split into what is left, so the
// group stays valid.
func TestGroupWeightsAbove100(t *testing.T) {
	h, _ := splitSetup(t, map[string]string{"crossmap.io/split": "east=50"}, nil)
	h.wantWeight("good route", "podinfo-east", 50)
	h.userMapping("podinfo-canary", "podinfo."+h.ns+":9898", nil, func(m *ambv3.Mapping) {
		m.Spec.Prefix = "/podinfo/"
		m.Spec.Weight = ptr.To(60)
	})
	h.eventually("group overflow reported", func(ctx context.Context) error {
		for _, p := range h.westCtl.Model.View().Problems {
			if p.Reason == mapper.ReasonInvalidWeights && strings.Contains(p.Message, "podinfo-canary") {
				return nil
			}
		}
		return fmt.Errorf("no InvalidWeights problem: %+v", h.westCtl.Model.View().Problems)
	})
	// 60% is taken; the 50/50 split is scaled into the 40% left: 20/20.
	h.wantWeight("split scaled into the 40% left", "podinfo-east", 20)
}
