package mapper

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// ExportSnapshot is what the export role sees of its own cluster.
type ExportSnapshot struct {
	// Cluster is this cluster's name, recorded on what it writes.
	Cluster string
	// GatewayNamespace and GatewayHostName place the one gateway Host.
	GatewayNamespace string
	GatewayHostName  string
	// AmbassadorID is copied to every gateway object, for clusters that run
	// several Emissary installations.
	AmbassadorID []string
	// MutualTLS makes the gateway Host terminate mutual TLS and reject
	// cleartext.
	MutualTLS bool
	// ServedByHeader is the response header the gateway Mappings add,
	// naming Cluster (ingress.ServedBy); empty for none. A cluster left
	// with the default name "local" (ingress.LocalTier) adds none: its
	// answers would say "local" in another cluster, where no header is
	// what means local.
	ServedByHeader string
	// Services are the Services that match the export selector. Mirrors are
	// dropped here even if they match: re-exporting a mirror would route a
	// cluster's traffic back through itself.
	Services []*corev1.Service
}

// Export translates exported Services into gateway Mappings (one per port)
// and, when anything is exported, the gateway Host.
func Export(s ExportSnapshot) ([]Object, []Problem) {
	var (
		out      []Object
		problems []Problem
	)
	svcs := slices.Clone(s.Services)
	slices.SortFunc(svcs, compareObjects)
	var servedBy *map[string]ambv3.AddedHeader
	if s.Cluster != ingress.LocalTier {
		servedBy = ingress.ServedBy(s.ServedByHeader, s.Cluster)
	}
	for _, svc := range svcs {
		if svc.Labels[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy {
			continue
		}
		ref := ObjectRef{Kind: "Service", Namespace: svc.Namespace, Name: svc.Name}
		ports := ingress.GatewayPorts(svc.Spec.Ports)
		if len(ports) == 0 {
			problems = append(problems, Problem{Reason: ReasonNoPorts, Object: ref,
				Message: fmt.Sprintf("exported Service %s/%s has no TCP port for the gateway to route to", svc.Namespace, svc.Name)})
			continue
		}
		for i, port := range ports {
			name := ingress.GatewayMappingName(svc.Name, port, i)
			if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
				problems = append(problems, Problem{Reason: ReasonNameTooLong, Object: ref,
					Message: fmt.Sprintf("gateway Mapping name %q is not valid: %s", name, errs[0])})
				continue
			}
			m := ingress.GatewayMapping(ingress.GatewayRoute{
				Meta: metav1.ObjectMeta{
					Name:      name,
					Namespace: svc.Namespace,
					Labels:    gatewayLabels(s.Cluster, svc.Namespace, svc.Name),
					// The Service owns its gateway routes, so deleting the
					// Service lets the API server's GC remove them even while
					// crossmap is down.
					OwnerReferences: []metav1.OwnerReference{{
						APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
					}},
				},
				Hostname:     ingress.GatewayHostname(svc.Namespace, svc.Name, port, i),
				Service:      svc.Name + "." + svc.Namespace + ":" + strconv.Itoa(int(port.Port)),
				AmbassadorID: slices.Clone(s.AmbassadorID),
				ServedBy:     servedBy,
			})
			out = append(out, Stamp(m))
		}
	}
	if len(out) > 0 {
		host := ingress.GatewayHost(metav1.ObjectMeta{
			Name:      s.GatewayHostName,
			Namespace: s.GatewayNamespace,
			Labels:    gatewayLabels(s.Cluster, "", ""),
		}, GatewaySelector(), slices.Clone(s.AmbassadorID), s.MutualTLS)
		out = append(out, Stamp(host))
	}
	return out, problems
}

// GatewaySelector selects the gateway role's objects: the gateway Host binds
// the Mappings it selects, and the controller lists what it owns with it.
func GatewaySelector() map[string]string {
	return map[string]string{
		crossmapv1.LabelManagedBy: crossmapv1.ManagedBy,
		crossmapv1.LabelRole:      crossmapv1.RoleGateway,
	}
}

func gatewayLabels(cluster, namespace, name string) map[string]string {
	l := GatewaySelector()
	setIf(l, crossmapv1.LabelSourceCluster, cluster)
	setIf(l, crossmapv1.LabelSourceNamespace, namespace)
	setIf(l, crossmapv1.LabelSourceName, name)
	return l
}

func setIf(m map[string]string, k, v string) {
	if v != "" {
		m[k] = v
	}
}

func compareObjects[T Object](a, b T) int {
	return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
}
