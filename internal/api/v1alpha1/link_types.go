package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Mode says how a mirrored Service reaches the remote cluster.
// +kubebuilder:validation:Enum=gateway;flat
type Mode string

const (
	// ModeGateway points mirrors at the remote cluster's gateway, which
	// forwards by the Host header to the exported Service.
	ModeGateway Mode = "gateway"
	// ModeFlat points mirrors straight at the remote pods' addresses, for
	// networks where pods in both clusters can reach each other.
	ModeFlat Mode = "flat"
)

// Condition types reported on a Link.
const (
	// ConditionReady is true when the Link's mirrors are in sync with the
	// remote cluster.
	ConditionReady = "Ready"
	// ConditionRemoteReachable is true while the remote API server answers.
	ConditionRemoteReachable = "RemoteReachable"
	// ConditionGatewayAlive is true while the remote gateway passes its probe.
	ConditionGatewayAlive = "GatewayAlive"
	// ConditionMutualTLS is true while the probe's mutual TLS handshake
	// with the remote gateway succeeds: the gateway's certificate chains to
	// the trust anchor, is valid and names the Link's identity, and the
	// gateway accepts this cluster's client certificate.
	ConditionMutualTLS = "MutualTLS"
)

// Defaults applied by the API server (through the CRD schema) and again by
// the controller, so that a Link read from an older object behaves the same.
const (
	DefaultCredentialsKey = "kubeconfig"
	DefaultGatewayPort    = 4143
	// DefaultProbePath is the readiness path Emissary answers on every
	// listener (its built-in diagnostics Mapping), so the probe passes
	// through the gateway's mutual TLS like traffic does.
	DefaultProbePath        = "/ambassador/v0/check_ready"
	DefaultFailureThreshold = 3
	// ExportLabel is the label that, set to "true", exports a Service
	// when no other selector is configured.
	ExportLabel = "crossmap.io/export"
)

// LinkSpec says which remote cluster to mirror and how to reach it.
type LinkSpec struct {
	// ClusterName is the remote cluster's name. It becomes the suffix of
	// every mirrored Service (<service>-<clusterName>), so it must be a short
	// DNS label.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=30
	ClusterName string `json:"clusterName"`

	// CredentialsSecret names a Secret in the Link's namespace that holds a
	// kubeconfig for the remote cluster. The kubeconfig only needs to get,
	// list and watch Services and EndpointSlices there.
	CredentialsSecret SecretKeyRef `json:"credentialsSecret"`

	// Gateway is how this cluster reaches the remote cluster's gateway.
	// Required in gateway mode.
	// +optional
	Gateway GatewaySpec `json:"gateway,omitempty"`

	// Mode is gateway (the default) or flat.
	// +kubebuilder:default=gateway
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// ExportSelector picks the remote Services to mirror. When unset, the
	// remote Services labelled crossmap.io/export=true are mirrored.
	// +optional
	ExportSelector *metav1.LabelSelector `json:"exportSelector,omitempty"`

	// Probe is the health check of the remote gateway. When unset, the
	// gateway is not probed and is taken to be alive.
	// +optional
	Probe *ProbeSpec `json:"probe,omitempty"`

	// CreateNamespaces lets crossmap create a local namespace that a
	// mirrored Service needs. When false, such a Service is skipped and
	// reported.
	// +optional
	CreateNamespaces bool `json:"createNamespaces,omitempty"`
}

// SecretKeyRef names one key of a Secret in the Link's namespace.
type SecretKeyRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key within the Secret that holds the kubeconfig.
	// +kubebuilder:default=kubeconfig
	// +optional
	Key string `json:"key,omitempty"`
}

// GatewaySpec is where the remote cluster's gateway listens.
type GatewaySpec struct {
	// Addresses are IP addresses or DNS names of the gateway. DNS names are
	// resolved, and re-resolved periodically, into the mirrored
	// EndpointSlices.
	// +optional
	Addresses []string `json:"addresses,omitempty"`
	// Port is the gateway's port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:default=4143
	// +optional
	Port int32 `json:"port,omitempty"`
	// Identity is the name (a DNS subjectAltName) the gateway's certificate
	// must carry; it is also the SNI sent to the gateway. Defaults to
	// <clusterName>.crossmap-gateway.svc.cluster.local, the identity the
	// remote cluster's crossmap issues to its gateway.
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Identity string `json:"identity,omitempty"`
}

// ProbeSpec is an HTTP health check of the remote gateway.
type ProbeSpec struct {
	// Path of the HTTP GET. With mutual TLS on, the GET goes through the
	// gateway's TLS with this cluster's client certificate.
	// +kubebuilder:default=/ambassador/v0/check_ready
	// +optional
	Path string `json:"path,omitempty"`
	// Port to probe; defaults to the gateway port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// Period between probes, e.g. "1s" or "200ms".
	// +kubebuilder:default="3s"
	// +optional
	Period metav1.Duration `json:"period,omitempty"`
	// Timeout of one probe.
	// +kubebuilder:default="1s"
	// +optional
	Timeout metav1.Duration `json:"timeout,omitempty"`
	// FailureThreshold is how many failed probes in a row mark the gateway
	// dead.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=3
	// +optional
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
}

// LinkStatus is what crossmap observed of the remote cluster.
type LinkStatus struct {
	// ObservedGeneration is the generation of the spec last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, RemoteReachable, GatewayAlive and MutualTLS.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// MirroredServices counts the Services mirrored from the remote cluster.
	// +optional
	MirroredServices int32 `json:"mirroredServices"`
	// LastSyncTime is when the mirrors last changed to match the remote, to
	// within 30 seconds (the status API has the exact time).
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`
}

// Link connects this cluster to one remote cluster: crossmap mirrors the
// remote cluster's exported Services into this one.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=crossmap
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.clusterName`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.mode`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Services",type=integer,JSONPath=`.status.mirroredServices`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Link struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   LinkSpec   `json:"spec,omitempty"`
	Status LinkStatus `json:"status,omitempty"`
}

// LinkList is a list of Links.
//
// +kubebuilder:object:root=true
type LinkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Link `json:"items"`
}
