package v1alpha1

import (
	"time"

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
	// ConditionDrill is true while a drill (spec.drill) drains the remote
	// cluster for routing; false, with reason Expired or Stopped, once it
	// has ended. Absent when the Link has no drill.
	ConditionDrill = "Drill"
)

// Defaults applied by the API server (through the CRD schema) and again by
// the controller, so that a Link read from an older object behaves the same.
const (
	DefaultCredentialsKey = "kubeconfig"
	DefaultGatewayPort    = 4143
	// DefaultProbePath is the readiness path Emissary answers on every
	// listener (its built-in diagnostics Mapping), so the probe passes
	// through the gateway's mutual TLS like traffic does.
	DefaultProbePath = "/ambassador/v0/check_ready"
	// DefaultProbePeriod, DefaultProbeTimeout and DefaultFailureThreshold
	// move traffic off a dead gateway within a second and keep it on one
	// that drops a probe in five (issue 13); ProbeSpec says why.
	DefaultProbePeriod      = 50 * time.Millisecond
	DefaultProbeTimeout     = 50 * time.Millisecond
	DefaultFailureThreshold = 12
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
	//
	// Its defaults (every 50ms, a 50ms timeout, dead after 12 failures in a
	// row; issue 13) are chosen so that traffic leaves a dead gateway within a second, and a
	// gateway that loses some probes keeps its traffic:
	//
	//   - Detection. A gateway whose process died refuses the connection at
	//     once, so its 12 failed rounds take about 12 periods. One that is
	//     blackholed (a lost node, a cut network) costs the timeout per round,
	//     and a round that times out is followed by the next at once, so the
	//     timeout must not exceed the period. Worst case, from the last good
	//     round: failureThreshold × period + timeout = 650ms, which leaves a
	//     third of a second for crossmap and the edge to move the traffic.
	//   - Hysteresis. A probe lost at random (rate p) marks the gateway dead
	//     only when 12 are lost in a row: (1 − p) × p^12 per round. At
	//     p = 20% and 20 rounds a second that is 2.4e-4 an hour, one false
	//     failover in some 175 days of such a gateway; at threshold 3 (an
	//     earlier default) it was 460 an hour.
	//   - Cost. 20 probes a second per gateway address, each a new TCP
	//     connection and a mutual TLS handshake (see the README's
	//     Performance section for the CPU this takes).
	//
	// A gateway more than about 15ms of round trip away needs a longer
	// timeout (a probe is three round trips: TCP, TLS 1.3, HTTP); raise the
	// period with it, and choose between a slower failover (the same
	// failureThreshold) and less hysteresis (a lower one).
	// +optional
	Probe *ProbeSpec `json:"probe,omitempty"`

	// CreateNamespaces lets crossmap create a local namespace that a
	// mirrored Service needs. When false, such a Service is skipped and
	// reported.
	// +optional
	CreateNamespaces bool `json:"createNamespaces,omitempty"`

	// Drill, while active, drains the remote cluster for routing as if its
	// gateway had died: its mirrors' endpoints are not ready and routes
	// fail over away from it, until Until. `crossmap drill --apply` writes
	// it and `crossmap drill --stop` ends it early. It is kept after it
	// ends, as the record of the last drill.
	// +optional
	Drill *DrillSpec `json:"drill,omitempty"`
}

// MaxDrillDuration bounds a drill, so that a forgotten one cannot drain a
// cluster for good.
const MaxDrillDuration = 24 * time.Hour

// DrillSpec is a rehearsal of losing the Link's cluster, recorded in the
// API rather than in a controller's memory, so that its end comes on time
// across controller restarts and leader changes.
// +kubebuilder:validation:XValidation:rule="timestamp(self.until) > timestamp(self.startedAt)",message="until must be after startedAt"
// +kubebuilder:validation:XValidation:rule="timestamp(self.until) - timestamp(self.startedAt) <= duration('24h')",message="a drill lasts at most 24h"
// +kubebuilder:validation:XValidation:rule="!has(self.stoppedAt) || timestamp(self.stoppedAt) >= timestamp(self.startedAt)",message="stoppedAt must not be before startedAt"
type DrillSpec struct {
	// By is who started the drill: the user the API server knew the
	// starter as, or what `crossmap drill --by` said.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	By string `json:"by"`
	// StartedAt is when the drill started.
	// +kubebuilder:validation:Format=date-time
	StartedAt metav1.Time `json:"startedAt"`
	// Until is when the drill ends by itself and the cluster takes traffic
	// again.
	// +kubebuilder:validation:Format=date-time
	Until metav1.Time `json:"until"`
	// StoppedAt is set when the drill was ended before Until.
	// +kubebuilder:validation:Format=date-time
	// +optional
	StoppedAt *metav1.Time `json:"stoppedAt,omitempty"`
	// StoppedBy is who ended the drill before Until.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	StoppedBy string `json:"stoppedBy,omitempty"`
}

// ActiveAt reports whether the drill drains its cluster at now: it has
// not been stopped and has not reached Until. A nil drill is not active.
func (d *DrillSpec) ActiveAt(now time.Time) bool {
	return d != nil && d.StoppedAt == nil && now.Before(d.Until.Time)
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

// ProbeSpec is an HTTP health check of the remote gateway; LinkSpec.Probe
// says why its defaults are what they are.
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
	// Period between probes, e.g. "1s" or "200ms". The default, 50ms,
	// with failureThreshold 12 finds a dead gateway within 600ms (see
	// ProbeSpec).
	// +kubebuilder:default="50ms"
	// +optional
	Period metav1.Duration `json:"period,omitempty"`
	// Timeout of one probe. At most the period, so that a gateway that
	// does not answer at all is found dead as fast as one that refuses
	// connections. The default, 50ms, is ample for a gateway in the same
	// region.
	// +kubebuilder:default="50ms"
	// +optional
	Timeout metav1.Duration `json:"timeout,omitempty"`
	// FailureThreshold is how many failed probes in a row mark the gateway
	// dead: the hysteresis against lost probes. The default, 12, makes a
	// gateway that drops one probe in five at random look dead once in
	// about 175 days of probing (see probe).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=12
	// +optional
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
}

// LinkStatus is what crossmap observed of the remote cluster.
type LinkStatus struct {
	// ObservedGeneration is the generation of the spec last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready, RemoteReachable, GatewayAlive, MutualTLS and,
	// when the Link has a drill, Drill.
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
