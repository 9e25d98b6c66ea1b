package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
)

// mirrorState reads west's mirror of Service name and its EndpointSlices.
func (h *harness) mirrorState(ctx context.Context, name string) (*corev1.Service, []discoveryv1.EndpointSlice, error) {
	var svc corev1.Service
	if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name + "-east"}, &svc); err != nil {
		return nil, nil, err
	}
	var list discoveryv1.EndpointSliceList
	if err := h.west.List(ctx, &list, client.InNamespace(h.ns), client.MatchingLabels{discoveryv1.LabelServiceName: name + "-east"}); err != nil {
		return nil, nil, err
	}
	return &svc, list.Items, nil
}

// endpoints flattens slices into "addr:port ready" strings, sorted.
func endpoints(slices_ []discoveryv1.EndpointSlice) []string {
	var out []string
	for _, es := range slices_ {
		for _, ep := range es.Endpoints {
			for _, a := range ep.Addresses {
				for _, p := range es.Ports {
					out = append(out, fmt.Sprintf("%s:%d ready=%t", a, ptr.Deref(p.Port, 0), ptr.Deref(ep.Conditions.Ready, true)))
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func (h *harness) wantMirror(what, name string, ports []int32, eps ...string) {
	h.t.Helper()
	h.eventually(what, func(ctx context.Context) error {
		svc, es, err := h.mirrorState(ctx, name)
		if err != nil {
			return err
		}
		var got []int32
		for _, p := range svc.Spec.Ports {
			got = append(got, p.Port)
		}
		if !slices.Equal(got, ports) {
			return fmt.Errorf("mirror ports = %v, want %v", got, ports)
		}
		if len(svc.Spec.Selector) != 0 {
			return fmt.Errorf("mirror has a selector %v", svc.Spec.Selector)
		}
		for k, v := range map[string]string{
			crossmapv1.LabelManagedBy: crossmapv1.ManagedBy, crossmapv1.LabelSourceCluster: "east",
			crossmapv1.LabelSourceNamespace: h.ns, crossmapv1.LabelSourceName: name,
			crossmapv1.LabelLink: "east", crossmapv1.LabelLinkNamespace: h.ctrlNS,
		} {
			if svc.Labels[k] != v {
				return fmt.Errorf("mirror label %s = %q, want %q", k, svc.Labels[k], v)
			}
		}
		if _, exported := svc.Labels[crossmapv1.ExportLabel]; exported {
			return fmt.Errorf("mirror carries the export label; it would be re-exported")
		}
		slices.Sort(eps)
		if got := endpoints(es); !slices.Equal(got, eps) {
			return fmt.Errorf("mirror endpoints = %v, want %v", got, eps)
		}
		return nil
	})
}

func (h *harness) wantNoMirror(what, name string) {
	h.t.Helper()
	h.eventually(what, func(ctx context.Context) error {
		if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name + "-east"}, &corev1.Service{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("mirror Service still there (err=%v)", err)
		}
		var list discoveryv1.EndpointSliceList
		if err := h.west.List(ctx, &list, client.InNamespace(h.ns), client.MatchingLabels{discoveryv1.LabelServiceName: name + "-east"}); err != nil {
			return err
		}
		if len(list.Items) > 0 {
			return fmt.Errorf("%d mirror EndpointSlices still there", len(list.Items))
		}
		return nil
	})
}

// update reads obj from c, applies mutate and writes it back.
func update[T client.Object](h *harness, c client.Client, obj T, mutate func(T)) {
	h.t.Helper()
	ctx := context.Background()
	// Read, change, write, and again on a conflict, as kubectl edit would:
	// a Link's status writes change its resourceVersion too.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		mutate(obj)
		return c.Update(ctx, obj)
	})
	if err != nil {
		h.t.Fatalf("update %s: %v", client.ObjectKeyFromObject(obj), err)
	}
}

// TestMirrorGatewayMode follows one exported Service through its life:
// mirrored with the gateway as its endpoint, readiness following the remote
// pods, ports following the remote Service, and gone when it is deleted.
func TestMirrorGatewayMode(t *testing.T) {
	h := newHarness(t)
	svc := h.exportService("podinfo", []int32{9898}, "10.244.1.5", "10.244.1.6")
	h.link(nil)
	h.wantMirror("mirror created", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")

	// Remote pods all go unready: the gateway cannot serve, so the mirror's
	// endpoint is not ready either.
	es := &discoveryv1.EndpointSlice{}
	es.Namespace, es.Name = h.ns, "podinfo-abcde"
	update(h, h.east, es, func(es *discoveryv1.EndpointSlice) {
		for i := range es.Endpoints {
			es.Endpoints[i].Conditions.Ready = ptr.To(false)
		}
	})
	h.wantMirror("mirror not ready", "podinfo", []int32{9898}, gatewayIP+":4143 ready=false")
	update(h, h.east, es, func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].Conditions.Ready = ptr.To(true) })
	h.wantMirror("mirror ready again", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")

	// A new port on the remote Service.
	update(h, h.east, svc, func(s *corev1.Service) {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: "grpc", Port: 9999, Protocol: corev1.ProtocolTCP})
	})
	h.wantMirror("mirror has the new port", "podinfo", []int32{9898, 9999},
		gatewayIP+":4143 ready=true", gatewayIP+":4143 ready=true")

	h.eventually("Link reports one mirrored service and Ready", func(ctx context.Context) error {
		var l crossmapv1.Link
		if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: "east"}, &l); err != nil {
			return err
		}
		if l.Status.MirroredServices != 1 || condition(&l, crossmapv1.ConditionReady) != "True/Synced" ||
			condition(&l, crossmapv1.ConditionRemoteReachable) != "True/Connected" || l.Status.LastSyncTime == nil ||
			l.Status.ObservedGeneration != l.Generation {
			return fmt.Errorf("status = %+v", l.Status)
		}
		return nil
	})

	if err := h.east.Delete(context.Background(), svc); err != nil {
		t.Fatal(err)
	}
	h.wantNoMirror("mirror removed with the remote Service", "podinfo")
}

// TestMirrorFlatMode: in flat mode the mirror's endpoints are the remote
// pods themselves, readiness included.
func TestMirrorFlatMode(t *testing.T) {
	h := newHarness(t)
	h.exportService("podinfo", []int32{9898}, "10.244.1.5", "10.244.1.6")
	h.link(func(l *crossmapv1.Link) { l.Spec.Mode = crossmapv1.ModeFlat; l.Spec.Gateway = crossmapv1.GatewaySpec{} })
	h.wantMirror("flat mirror", "podinfo", []int32{9898}, "10.244.1.5:9898 ready=true", "10.244.1.6:9898 ready=true")

	es := &discoveryv1.EndpointSlice{}
	es.Namespace, es.Name = h.ns, "podinfo-abcde"
	update(h, h.east, es, func(es *discoveryv1.EndpointSlice) {
		es.Endpoints[1].Conditions.Ready = ptr.To(false)
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.1.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	})
	h.wantMirror("flat mirror follows the remote slice", "podinfo", []int32{9898},
		"10.244.1.5:9898 ready=true", "10.244.1.6:9898 ready=false", "10.244.1.7:9898 ready=true")
}

// TestMirrorPutRight: a mirror someone else edits or deletes in west is
// put back as crossmap renders it. crossmap drops the watch events of its
// own mirror writes (controller.Echoes); this checks that it still sees
// everyone else's.
func TestMirrorPutRight(t *testing.T) {
	h := newHarness(t)
	h.exportService("podinfo", []int32{9898}, "10.244.3.5", "10.244.3.6")
	h.link(func(l *crossmapv1.Link) { l.Spec.Mode = crossmapv1.ModeFlat; l.Spec.Gateway = crossmapv1.GatewaySpec{} })
	want := []string{"10.244.3.5:9898 ready=true", "10.244.3.6:9898 ready=true"}
	h.wantMirror("mirrored", "podinfo", []int32{9898}, want...)
	mirrorSlice := func(ctx context.Context) (*discoveryv1.EndpointSlice, error) {
		_, slices, err := h.mirrorState(ctx, "podinfo")
		if err != nil {
			return nil, err
		}
		if len(slices) != 1 {
			return nil, fmt.Errorf("%d mirror EndpointSlices, want 1", len(slices))
		}
		return &slices[0], nil
	}

	es, err := mirrorSlice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	update(h, h.west, es, func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].Conditions.Ready = ptr.To(false) })
	h.wantMirror("an endpoint someone marked not ready is ready again", "podinfo", []int32{9898}, want...)

	svc := &corev1.Service{}
	svc.Namespace, svc.Name = h.ns, "podinfo-east"
	update(h, h.west, svc, func(s *corev1.Service) { s.Labels[crossmapv1.LabelSourceName] = "someone-else" })
	h.wantMirror("a label someone changed is crossmap's again", "podinfo", []int32{9898}, want...)

	es, err = mirrorSlice(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.west.Delete(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	h.wantMirror("a deleted EndpointSlice is written again", "podinfo", []int32{9898}, want...)

	if err := h.west.Delete(t.Context(), svc); err != nil {
		t.Fatal(err)
	}
	h.wantMirror("a deleted Service is written again", "podinfo", []int32{9898}, want...)
}

// TestUnexportAndLinkDeletion: unexporting removes one mirror, deleting the
// Link removes the rest.
func TestUnexportAndLinkDeletion(t *testing.T) {
	h := newHarness(t)
	a := h.exportService("alpha", []int32{80}, "10.244.2.1")
	h.exportService("beta", []int32{80}, "10.244.2.2")
	link := h.link(nil)
	h.wantMirror("alpha mirrored", "alpha", []int32{80}, gatewayIP+":4143 ready=true")
	h.wantMirror("beta mirrored", "beta", []int32{80}, gatewayIP+":4143 ready=true")

	update(h, h.east, a, func(s *corev1.Service) { delete(s.Labels, crossmapv1.ExportLabel) })
	h.wantNoMirror("alpha unexported", "alpha")
	h.wantMirror("beta still mirrored", "beta", []int32{80}, gatewayIP+":4143 ready=true")

	if err := h.west.Delete(context.Background(), link); err != nil {
		t.Fatal(err)
	}
	h.wantNoMirror("beta removed with the Link", "beta")
}

// TestGatewayDNSName: a gateway named by DNS is resolved into the mirror's
// endpoints and re-resolved: a changed answer moves the endpoints, and a
// failed lookup keeps the last good addresses and says so.
func TestGatewayDNSName(t *testing.T) {
	h := newHarnessWith(t, func(c *controller.Config) { c.ResolvePeriod = 200 * time.Millisecond })
	name := "gw." + h.id + ".test"
	testDNS.set(name, netip.MustParseAddr("192.0.2.21"), netip.MustParseAddr("192.0.2.22"))
	h.exportService("podinfo", []int32{9898}, "10.244.11.1")
	h.link(func(l *crossmapv1.Link) { l.Spec.Gateway.Addresses = []string{name} })
	h.wantMirror("resolved", "podinfo", []int32{9898}, "192.0.2.21:4143 ready=true", "192.0.2.22:4143 ready=true")

	testDNS.set(name, netip.MustParseAddr("192.0.2.23"))
	h.wantMirror("re-resolved", "podinfo", []int32{9898}, "192.0.2.23:4143 ready=true")

	testDNS.unset(name)
	h.wantProblem("ResolveFailed", name)
	h.wantMirror("last good addresses kept", "podinfo", []int32{9898}, "192.0.2.23:4143 ready=true")
}
