package ingress

import (
	"strconv"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GatewayHostSuffix is the DNS suffix every gateway hostname ends in. The
// gateway Host matches "*"+GatewayHostSuffix.
const GatewayHostSuffix = ".svc.cluster.local"

// GatewayPorts are the ports of a Service that a gateway can carry: the TCP
// ones, since Emissary routes HTTP. Both ends of a route index ports in this
// list, so the exporting and the importing cluster agree on which port
// answers on which hostname.
func GatewayPorts(ports []corev1.ServicePort) []corev1.ServicePort {
	var out []corev1.ServicePort
	for _, p := range ports {
		if p.Protocol == "" || p.Protocol == corev1.ProtocolTCP {
			out = append(out, p)
		}
	}
	return out
}

// GatewayHostname is the Host header a remote cluster sends to reach port
// index i of Service ns/name through this cluster's gateway. The first port
// answers on the Service's plain in-cluster name, which is what a
// single-port Service (the common case) uses; further ports get their name
// (or number) as an extra leading label so that each port has its own route.
func GatewayHostname(namespace, name string, port corev1.ServicePort, i int) string {
	base := name + "." + namespace + GatewayHostSuffix
	if i == 0 {
		return base
	}
	label := port.Name
	if label == "" {
		label = strconv.Itoa(int(port.Port))
	}
	return label + "." + base
}

// GatewayMappingName is the name of the gateway Mapping for port index i of
// Service name, in GatewayPorts order. Port numbers are unique among a
// Service's TCP ports, so the names are too.
func GatewayMappingName(name string, port corev1.ServicePort, i int) string {
	if i == 0 {
		return name + "-gateway"
	}
	return name + "-gateway-" + strconv.Itoa(int(port.Port))
}

// GatewayRoute is one exported Service port, as the gateway serves it.
type GatewayRoute struct {
	Meta         metav1.ObjectMeta
	Hostname     string
	Service      string // Emissary service reference: name.namespace:port
	AmbassadorID []string
	// ServedBy are the response headers to add (ServedBy), or nil.
	ServedBy *map[string]ambv3.AddedHeader
}

// GatewayMapping renders the Mapping that lets the gateway forward requests
// for r.Hostname to the exported Service. It matches every path ("/") and
// keeps it as is, because the calling cluster's route already did any path
// rewriting its user asked for.
func GatewayMapping(r GatewayRoute) *ambv3.Mapping {
	return &ambv3.Mapping{
		TypeMeta:   metav1.TypeMeta{APIVersion: ambv3.GroupVersion.String(), Kind: "Mapping"},
		ObjectMeta: r.Meta,
		Spec: ambv3.MappingSpec{
			AmbassadorID: r.AmbassadorID,
			Hostname:     r.Hostname,
			Prefix:       "/",
			Service:      r.Service,
			// The gateway's Mapping is a group of its own (its hostname is
			// the exported port's), so its response header names this
			// cluster on exactly the answers its backend gives.
			AddResponseHeaders: r.ServedBy,
		},
	}
}

// GatewayHost renders the Host that the gateway Mappings bind to. It matches
// every in-cluster name and, through mappingSelector, only Mappings with the
// given labels, so user Mappings never attach to the gateway and gateway
// Mappings never attach to a user's Host by accident.
//
// ACME is off (a gateway name is not a public name). With mutualTLS the
// Host serves the gateway certificate, requires a client certificate from
// the trust anchor and rejects cleartext; without it (the loudly logged
// opt-out for dev clusters) it routes cleartext.
func GatewayHost(meta metav1.ObjectMeta, selector map[string]string, ambassadorID []string, mutualTLS bool) *ambv3.Host {
	h := &ambv3.Host{
		TypeMeta:   metav1.TypeMeta{APIVersion: ambv3.GroupVersion.String(), Kind: "Host"},
		ObjectMeta: meta,
		Spec: &ambv3.HostSpec{
			AmbassadorID:    ambassadorID,
			Hostname:        "*" + GatewayHostSuffix,
			MappingSelector: &metav1.LabelSelector{MatchLabels: selector},
			AcmeProvider:    &ambv3.ACMEProviderSpec{Authority: "none"},
			RequestPolicy: &ambv3.RequestPolicy{
				Insecure: ambv3.InsecureRequestPolicy{Action: "Route"},
			},
		},
	}
	if mutualTLS {
		gatewayTLS(h.Spec)
	}
	return h
}
