package controller

import (
	"context"
	"fmt"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// RoutingObjects are what decides how Emissary routes in one cluster: its
// Mappings, Hosts, Services and EndpointSlices, read from a cache. Both the
// route role and the dev edge build from them.
type RoutingObjects struct {
	Mappings []*ambv3.Mapping
	Hosts    []*ambv3.Host
	Services []*corev1.Service
	Slices   []*discoveryv1.EndpointSlice
}

// ListRoutingObjects lists them from c. The objects belong to the cache:
// read them, never change them. They are not deep-copied
// (client.UnsafeDisableDeepCopy): every change of any EndpointSlice
// rebuilds the routes, and copying every Service and EndpointSlice of the
// cluster each time was most of what a route reconcile cost with a
// thousand mirrors (issue 6). Each item is a shallow copy of the cache's
// object, sharing its maps, slices and pointers; that is valid only
// because both readers, mapper.Routes (whose tests check it leaves its
// snapshot unchanged) and the dev edge's table, only read them.
func ListRoutingObjects(ctx context.Context, c client.Reader) (RoutingObjects, error) {
	var (
		mappings ambv3.MappingList
		hosts    ambv3.HostList
		svcs     corev1.ServiceList
		slices   discoveryv1.EndpointSliceList
		out      RoutingObjects
	)
	for _, l := range []client.ObjectList{&mappings, &hosts, &svcs, &slices} {
		if err := c.List(ctx, l, client.UnsafeDisableDeepCopy); err != nil {
			return out, fmt.Errorf("list routing objects: %w", err)
		}
	}
	out.Mappings = pointers(mappings.Items)
	out.Hosts = pointers(hosts.Items)
	out.Services = pointers(svcs.Items)
	out.Slices = pointers(slices.Items)
	return out, nil
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
