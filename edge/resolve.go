package edge

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/crossmap/crossmap/ingress"
)

// backend is where a route sends requests: a Service port and its ready
// endpoints.
type backend struct {
	key       string   // "namespace/name:port", for round robin
	scheme    string   // "http" or "https"
	endpoints []string // host:port, sorted; empty: answer 503
}

// services indexes the Services and EndpointSlices of a snapshot.
type services struct {
	byName map[string]*corev1.Service              // namespace/name
	slices map[string][]*discoveryv1.EndpointSlice // namespace/service-name
}

func newServices(svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) services {
	s := services{byName: map[string]*corev1.Service{}, slices: map[string][]*discoveryv1.EndpointSlice{}}
	for _, svc := range svcs {
		if svc != nil {
			s.byName[objectName(svc.Namespace, svc.Name)] = svc
		}
	}
	for _, es := range eps {
		if es == nil {
			continue
		}
		if name := es.Labels[discoveryv1.LabelServiceName]; name != "" {
			k := objectName(es.Namespace, name)
			s.slices[k] = append(s.slices[k], es)
		}
	}
	return s
}

// resolve finds the backend of a Mapping's service field: the Service, its
// port with the field's number, the EndpointSlices labelled with the
// Service's name, and in them the ready endpoints (ready unset counts as
// ready, as in Kubernetes) with the slice port named like the Service
// port. Emissary's default resolver sends the request to the Service's
// cluster IP, so that kube-proxy picks a ready endpoint; the edge picks
// one itself.
//
// It returns a problem when the field does not lead to a Service port;
// the route then has no endpoints and answers 503, as Envoy does when the
// upstream cannot be reached, rather than falling through to another route.
// Addresses are not checked: the table is pure, and tests point slices at
// loopback addresses the API server would refuse.
func (s services) resolve(service, mappingNamespace string) (backend, string) {
	b := backend{scheme: "http"}
	ref, err := ingress.ParseService(service, mappingNamespace)
	if err != nil {
		if errors.Is(err, ingress.ErrNotKubernetesService) {
			return b, fmt.Sprintf("not supported by the dev edge: %v; Emissary would send the requests there, the dev edge routes only to Services and answers 503", err)
		}
		return b, fmt.Sprintf("%v; the dev edge answers 503", err)
	}
	b.scheme = cmp.Or(ref.Scheme, "http")
	b.key = ref.String()
	svc, ok := s.byName[objectName(ref.Namespace, ref.Name)]
	if !ok {
		return b, fmt.Sprintf("Service %s/%s does not exist; the dev edge answers 503", ref.Namespace, ref.Name)
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return b, fmt.Sprintf("not supported by the dev edge: Service %s/%s is an ExternalName Service for %s; Emissary would send the requests there, the dev edge answers 503", ref.Namespace, ref.Name, svc.Spec.ExternalName)
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == ref.Port })
	if i < 0 {
		return b, fmt.Sprintf("Service %s/%s has no port %d; the dev edge answers 503", ref.Namespace, ref.Name, ref.Port)
	}
	portName := svc.Spec.Ports[i].Name

	seen := map[string]bool{}
	for _, es := range s.slices[objectName(ref.Namespace, ref.Name)] {
		var port *int32
		for _, p := range es.Ports {
			if p.Port != nil && ptrString(p.Name) == portName {
				port = p.Port
				break
			}
		}
		if port == nil {
			continue
		}
		for _, ep := range es.Endpoints {
			if len(ep.Addresses) == 0 || (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) {
				continue
			}
			// The addresses of one endpoint are fungible; Kubernetes
			// says consumers may use the first.
			addr := net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(*port)))
			if !seen[addr] {
				seen[addr] = true
				b.endpoints = append(b.endpoints, addr)
			}
		}
	}
	slices.Sort(b.endpoints)
	return b, ""
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
