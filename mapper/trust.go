package mapper

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// RoleTrust labels the objects of the trust role: the issued certificate
// Secrets, the trust anchor's public copy and the origination TLSContexts.
const RoleTrust = "trust"

// TrustSelector selects every object the trust role owns.
func TrustSelector() map[string]string {
	return map[string]string{
		crossmapv1.LabelManagedBy: crossmapv1.ManagedBy,
		crossmapv1.LabelRole:      RoleTrust,
	}
}

// OriginLink is what an origination TLSContext needs of a Link.
type OriginLink struct {
	Cluster string
	// Identity is the name the cluster's gateway certificate must carry.
	Identity string
}

// OriginContexts renders one TLSContext per remote cluster reached through
// a gateway, in namespace (where the client certificate Secret lives, since
// Emissary reads a TLSContext's secrets from its own namespace). Links are
// taken in order and a cluster's first Link wins: the route role reports
// two Links to one cluster as a problem of its own.
func OriginContexts(namespace string, ambassadorID []string, links []OriginLink) []Object {
	var out []Object
	seen := map[string]bool{}
	for _, l := range links {
		if seen[l.Cluster] {
			continue
		}
		seen[l.Cluster] = true
		labels := TrustSelector()
		labels[crossmapv1.LabelSourceCluster] = l.Cluster
		out = append(out, Stamp(ingress.OriginTLSContext(metav1.ObjectMeta{
			Name: ingress.OriginContextName(l.Cluster), Namespace: namespace, Labels: labels,
		}, l.Identity, slices.Clone(ambassadorID))))
	}
	return out
}
