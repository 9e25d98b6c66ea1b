package ingress

import (
	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Names of the TLS objects crossmap keeps in its own namespace when
// cross-cluster mTLS is on. They are fixed, like the gateway port, so that
// the objects of two clusters agree without configuration.
const (
	// TrustCASecret holds the trust anchor's certificate alone (tls.crt,
	// Emissary's convention for ca_secret): the CA's key stays in the
	// trust anchor Secret, which Emissary never reads.
	TrustCASecret = "crossmap-trust-ca"
	// GatewayCertSecret is the gateway's serving certificate.
	GatewayCertSecret = "crossmap-gateway-tls"
	// ClientCertSecret is the client certificate the edge presents to
	// remote gateways.
	ClientCertSecret = "crossmap-client-tls"
	// MinTLSVersion is the oldest TLS version either end accepts.
	MinTLSVersion = "v1.2"
)

// GatewayIdentity is the name a cluster's gateway certificate carries and
// that other clusters check. It lies under the gateway Host's hostname
// (*.svc.cluster.local) because the identity is also the SNI the calling
// edge sends, and Emissary picks a TLS Host by SNI: an identity outside the
// Host's hostname would find no certificate to answer with.
func GatewayIdentity(cluster string) string {
	return cluster + ".crossmap-gateway" + GatewayHostSuffix
}

// OriginContextName names the TLSContext that generated Mappings to cluster
// originate TLS with.
func OriginContextName(cluster string) string { return "crossmap-origin-" + cluster }

// OriginTLSContext renders the TLSContext an edge uses toward a remote
// gateway: it presents this cluster's client certificate, trusts only the
// trust anchor, and sends identity as SNI. On the dev edge the SNI is also
// the name the gateway's certificate must carry; Emissary 3.10 has no field
// to ask Envoy for that check, so crossmap's probe makes it (see README,
// "Cross-cluster mTLS").
func OriginTLSContext(meta metav1.ObjectMeta, identity string, ambassadorID []string) *ambv3.TLSContext {
	return &ambv3.TLSContext{
		TypeMeta:   metav1.TypeMeta{APIVersion: ambv3.GroupVersion.String(), Kind: "TLSContext"},
		ObjectMeta: meta,
		Spec: ambv3.TLSContextSpec{
			AmbassadorID:  ambassadorID,
			Secret:        ClientCertSecret,
			CASecret:      TrustCASecret,
			SNI:           identity,
			MinTLSVersion: MinTLSVersion,
		},
	}
}

// gatewayTLS is the gateway Host's TLS: serve the gateway certificate and
// require a client certificate signed by the trust anchor.
func gatewayTLS(spec *ambv3.HostSpec) {
	spec.TLSSecret = &corev1.SecretReference{Name: GatewayCertSecret}
	required := true
	spec.TLS = &ambv3.TLSConfig{CASecret: TrustCASecret, CertRequired: &required, MinTLSVersion: MinTLSVersion}
	// Cleartext never reaches a gateway route: only linked clusters, which
	// hold a certificate, get through.
	spec.RequestPolicy.Insecure.Action = "Reject"
}
