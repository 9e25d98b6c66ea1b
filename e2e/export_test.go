package e2e

import (
	"context"
	"fmt"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// TestExport: exporting a Service in east gives it a gateway Mapping per
// port, bound to one gateway Host; unexporting removes them.
func TestExport(t *testing.T) {
	h := newHarness(t)
	svc := h.exportService("podinfo", []int32{9898, 9999}, "10.244.1.5")

	h.eventually("gateway Mappings and Host exist", func(ctx context.Context) error {
		var m ambv3.Mapping
		if err := h.east.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "podinfo-gateway"}, &m); err != nil {
			return err
		}
		want := fmt.Sprintf("podinfo.%s.svc.cluster.local", h.ns)
		if m.Spec.Hostname != want || m.Spec.Service != "podinfo."+h.ns+":9898" || m.Spec.Prefix != "/" {
			return fmt.Errorf("first port Mapping spec = %+v, want hostname %s to podinfo.%s:9898", m.Spec, want, h.ns)
		}
		if len(m.OwnerReferences) != 1 || m.OwnerReferences[0].UID != svc.UID {
			return fmt.Errorf("Mapping owner references = %+v, want the Service", m.OwnerReferences)
		}
		var m2 ambv3.Mapping
		if err := h.east.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "podinfo-gateway-9999"}, &m2); err != nil {
			return err
		}
		if want := "http-1.podinfo." + h.ns + ".svc.cluster.local"; m2.Spec.Hostname != want {
			return fmt.Errorf("second port hostname = %q, want %q", m2.Spec.Hostname, want)
		}
		var host ambv3.Host
		if err := h.east.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: "crossmap-gateway"}, &host); err != nil {
			return err
		}
		if host.Spec.Hostname != "*.svc.cluster.local" || host.Spec.MappingSelector.MatchLabels[crossmapv1.LabelRole] != crossmapv1.RoleGateway {
			return fmt.Errorf("Host spec = %+v", host.Spec)
		}
		for k, v := range host.Spec.MappingSelector.MatchLabels {
			if m.Labels[k] != v {
				return fmt.Errorf("Mapping labels %v do not match the Host's mappingSelector %v", m.Labels, host.Spec.MappingSelector.MatchLabels)
			}
		}
		return nil
	})

	// Unexport: take the label off.
	var cur corev1.Service
	if err := h.east.Get(context.Background(), client.ObjectKeyFromObject(svc), &cur); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(cur.DeepCopy())
	delete(cur.Labels, crossmapv1.ExportLabel)
	if err := h.east.Patch(context.Background(), &cur, patch); err != nil {
		t.Fatal(err)
	}
	h.eventually("gateway objects removed", func(ctx context.Context) error {
		for _, key := range []client.ObjectKey{{Namespace: h.ns, Name: "podinfo-gateway"}, {Namespace: h.ns, Name: "podinfo-gateway-9999"}} {
			if err := h.east.Get(ctx, key, &ambv3.Mapping{}); !apierrors.IsNotFound(err) {
				return fmt.Errorf("Mapping %s still there (err=%v)", key, err)
			}
		}
		if err := h.east.Get(ctx, client.ObjectKey{Namespace: h.ctrlNS, Name: "crossmap-gateway"}, &ambv3.Host{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("Host still there (err=%v)", err)
		}
		return nil
	})
	// The user's Service itself is untouched by all this.
	var after corev1.Service
	if err := h.east.Get(context.Background(), client.ObjectKeyFromObject(svc), &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != cur.ResourceVersion {
		t.Errorf("the exported Service was written by crossmap: resourceVersion %s -> %s", cur.ResourceVersion, after.ResourceVersion)
	}
}
