package v1alpha1

// Labels and annotations that crossmap puts on everything it writes. They are
// part of the API: ownership is decided by them alone (crossmap never edits
// or deletes an object it does not own; README, "Ownership and safety"), and
// operators select on them with kubectl.
const (
	// LabelManagedBy marks every object crossmap writes; its value is ManagedBy.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is the value of LabelManagedBy, and the field manager used for
	// server-side apply.
	ManagedBy = "crossmap"

	// LabelRole says which part of crossmap wrote the object: RoleGateway for
	// the export role's gateway Mappings and Host, RoleMirror for the import
	// role's mirrored Services and EndpointSlices, and the route role's
	// "route" (mapper.RoleRoute: sibling Mappings, TrafficSplits) and the
	// trust role's "trust" (mapper.RoleTrust: certificates, TLSContexts),
	// which mapper names because it renders those.
	LabelRole   = "crossmap.io/role"
	RoleGateway = "gateway"
	RoleMirror  = "mirror"

	// LabelSourceCluster, LabelSourceNamespace and LabelSourceName name the
	// object a mirror or gateway route was made from.
	LabelSourceCluster   = "crossmap.io/source-cluster"
	LabelSourceNamespace = "crossmap.io/source-namespace"
	LabelSourceName      = "crossmap.io/source-name"

	// LabelLink and LabelLinkNamespace name the Link a mirror belongs to;
	// deleting the Link prunes everything that carries them.
	LabelLink          = "crossmap.io/link"
	LabelLinkNamespace = "crossmap.io/link-namespace"

	// AnnotationSpecHash holds a hash of what crossmap last rendered for the
	// object. A changed hash means a field was added or removed; together
	// with a field-by-field check it decides whether a write is needed.
	AnnotationSpecHash = "crossmap.io/spec-hash"

	// AnnotationFailoverPolicy records, on each route the route role
	// writes, the failover policy its weights were computed with, so that
	// the status of a held route can say which policy is in force.
	AnnotationFailoverPolicy = "crossmap.io/failover-policy"
	// AnnotationRemoteReady, on a gateway-mode mirror EndpointSlice, says
	// whether the remote Service had a ready endpoint when it was last
	// seen ("true" or "false"). The endpoints' ready condition adds the
	// gateway's health to it; keeping the remote's part apart lets
	// crossmap apply gateway health while the remote cannot be read
	// (broken credentials, a restart), from what it wrote itself.
	AnnotationRemoteReady = "crossmap.io/remote-ready"
	// AnnotationRouteConfig, on every object the route role generates,
	// holds the route's last valid configuration (weights, failover
	// policy, local Service) as JSON, so that a route held by bad input
	// still fails over and ramps back on it, across restarts.
	AnnotationRouteConfig = "crossmap.io/route-config"
)
