package controller

import (
	"strings"
	"sync"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/crossmap/crossmap/ingress"
)

// routeDeps is what the route role's Service and EndpointSlice watches let
// through: the Services annotated Mappings route to, and their mirrors
// (named <service>-<cluster>). Nothing else in those kinds changes a route.
//
// Why: every Service and EndpointSlice event in the cluster used to
// recompute every route, so each remote change (a mirror write) and each of
// the 2000 writes of a first sync of 1000 Services cost a route reconcile,
// tens of milliseconds at that scale, for routes that named none of them.
//
// It is updated from the Mappings before each reconcile reads the Services
// and EndpointSlices (RouteReconciler.snapshot). An event it dropped
// because its Service was not yet named came after the cache held that
// change (an informer stores an object before its handlers run), so the
// reconcile that names the Service reads it.
type routeDeps struct {
	mu sync.RWMutex
	// known is false until the first update: everything passes then.
	known bool
	// names are, by namespace, the Services annotated Mappings name.
	names map[string][]string
}

// update records the Services that the annotated Mappings among mappings
// route to. A Mapping whose service field does not parse names nothing:
// its route is held with a problem, whatever its Service does.
func (d *routeDeps) update(mappings []ambv3.Mapping) {
	names := map[string][]string{}
	for i := range mappings {
		m := &mappings[i]
		if !ingress.Annotated(m.Annotations) {
			continue
		}
		ref, err := ingress.ParseService(m.Spec.Service, m.Namespace)
		if err != nil {
			continue
		}
		names[ref.Namespace] = append(names[ref.Namespace], ref.Name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.known, d.names = true, names
}

// matters reports whether a change to Service service in namespace can
// change a route: it is one the annotated Mappings name, or a mirror of
// one. Mirrors are recognised by name, not by their labels, so that an
// object holding a mirror's name that is not crossmap's (a conflict the
// routes report) passes too.
func (d *routeDeps) matters(namespace, service string) bool {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if !d.known {
		return true
	}
	for _, n := range d.names[namespace] {
		if service == n || strings.HasPrefix(service, n+"-") {
			return true
		}
	}
	return false
}

// services passes the events of Services that matter to routes.
func (d *routeDeps) services() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool { return d.matters(o.GetNamespace(), o.GetName()) })
}

// slices passes the events of EndpointSlices of Services that matter to
// routes; a slice that names no Service passes, to be safe.
func (d *routeDeps) slices() predicate.Predicate {
	return predicate.NewPredicateFuncs(func(o client.Object) bool {
		svc, ok := o.GetLabels()[discoveryv1.LabelServiceName]
		if !ok {
			return true
		}
		return d.matters(o.GetNamespace(), svc)
	})
}
