package ingress

import (
	"maps"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RemoteRoute is how a generated sibling Mapping reaches one remote backend.
type RemoteRoute struct {
	// Meta is the sibling's metadata: name, namespace, labels, owner.
	Meta metav1.ObjectMeta
	// Cluster is the remote cluster's name.
	Cluster string
	// Service is the local mirror of the remote Service.
	Service ServiceRef
	// Weight is the sibling's weight in the user's weighted group; nil for
	// a dev route, which is a group of its own.
	Weight *int
	// HostRewrite is the Host header the remote gateway routes by (gateway
	// mode); empty in flat mode, where the request goes to the pods as is.
	HostRewrite string
	// Headers are exact header matches added to the user's (a dev route's
	// selecting header).
	Headers map[string]string
	// TLS names the TLSContext that originates mutual TLS to the remote
	// gateway (gateway mode with mTLS on); empty for cleartext.
	TLS string
	// ResponseHeaders are added to the user's add_response_headers (a dev
	// route's ServedBy), or nil.
	ResponseHeaders *map[string]ambv3.AddedHeader
}

// ServedBy is the add_response_headers that name the cluster whose backend
// answered: header set to cluster, replacing any value the response
// already has, so that a backend cannot claim another cluster and a
// response that came through the remote gateway carries one name. It is
// nil when header is empty (the served-by header is off).
func ServedBy(header, cluster string) *map[string]ambv3.AddedHeader {
	if header == "" {
		return nil
	}
	replace := false
	return &map[string]ambv3.AddedHeader{header: {Value: cluster, Append: &replace}}
}

// SiblingMapping renders the Mapping that sends part of user's traffic to a
// remote backend. It starts from a deep copy of the user's whole spec, so
// that every match field (prefix, prefix_regex, hostname, headers,
// regex_headers, query_parameters, method, precedence, ambassador_id) and
// every setting Emissary requires to be equal inside a weighted group
// (timeouts, circuit breakers, load balancer, keepalive, retry policy,
// rewrite, labels, bypass_auth, ...) is the same; Emissary silently drops a
// group member that disagrees, and that would lose the traffic meant for it.
// Only what must differ is changed:
//   - service and weight;
//   - in gateway mode, host_rewrite to the remote gateway's hostname (and no
//     auto_host_rewrite, which would override it), and the TLSContext that
//     originates mutual TLS to that gateway (none in cleartext): the user's
//     own context is for the local backend. Each Mapping is its own Envoy
//     cluster, so group members may differ here;
//   - stats_name, which would otherwise merge two clusters' statistics;
//   - add_response_headers gets r.ResponseHeaders on top of the user's.
func SiblingMapping(user *ambv3.Mapping, r RemoteRoute) *ambv3.Mapping {
	spec := *user.Spec.DeepCopy()
	spec.Service = r.Service.String()
	spec.Weight = r.Weight
	if r.HostRewrite != "" {
		spec.HostRewrite = r.HostRewrite
		spec.AutoHostRewrite = nil
		spec.TLS = r.TLS
	}
	if spec.StatsName != "" {
		spec.StatsName += "-" + r.Cluster
	}
	if r.ResponseHeaders != nil {
		h := map[string]ambv3.AddedHeader{}
		if spec.AddResponseHeaders != nil {
			h = maps.Clone(*spec.AddResponseHeaders)
		}
		maps.Copy(h, *r.ResponseHeaders)
		spec.AddResponseHeaders = &h
	}
	if len(r.Headers) > 0 {
		h := maps.Clone(spec.Headers)
		if h == nil {
			h = map[string]string{}
		}
		maps.Copy(h, r.Headers)
		spec.Headers = h
	}
	return &ambv3.Mapping{
		TypeMeta:   metav1.TypeMeta{APIVersion: ambv3.GroupVersion.String(), Kind: "Mapping"},
		ObjectMeta: r.Meta,
		Spec:       spec,
	}
}
