package controller

import (
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/remote"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// Condition reasons on a Link.
const (
	ReasonSecretNotFound     = "SecretNotFound"
	ReasonInvalidCredentials = "InvalidCredentials"
	ReasonConnecting         = "Connecting"
	ReasonUnreachable        = "Unreachable"
	ReasonConnected          = "Connected"
	ReasonProbeSucceeded     = "ProbeSucceeded"
	ReasonProbeFailed        = "ProbeFailed"
	ReasonNotProbed          = "NotProbed"
	ReasonSynced             = "Synced"
	ReasonInvalidSelector    = "InvalidSelector"
	ReasonResolveFailed      = "ResolveFailed"
	// ReasonServiceExportsUnreadable: the remote serves ServiceExports but
	// the Link's credentials may not read them (made before the MCS role).
	ReasonServiceExportsUnreadable = "ServiceExportsUnreadable"
	ReasonForbidden                = "Forbidden"
	ReasonUnauthorized             = "Unauthorized"
	ReasonApplyFailed              = "ApplyFailed"
	// ReasonNoClientCertificate: mutual TLS is on but the trust role has
	// not issued this cluster's client certificate (no trust anchor).
	ReasonNoClientCertificate = "NoClientCertificate"
	// ReasonHandshakeSucceeded: the probe's mutual TLS handshake worked.
	// Failures carry pki's reasons (UnknownCA, CertificateExpired,
	// IdentityMismatch, CertificateRejected, HandshakeFailed).
	ReasonHandshakeSucceeded = "HandshakeSucceeded"
)

// linkFacts is everything a Link's conditions and its status view are
// made of: the health of the remote API, the gateway probe's verdict, the
// mutual TLS verdict and the problems found. linkStatus turns them into
// both at once, so the two can never disagree (issue 13: with the Secret
// gone, /status said the gateway was dead while the condition said alive).
type linkFacts struct {
	Namespace, Name, Cluster string
	Mode                     crossmapv1.Mode
	Generation               int64
	// Now stamps the conditions that change.
	Now time.Time
	// Previous are the Link's conditions before this reconcile.
	Previous []metav1.Condition
	Remote   remoteFacts
	Gateway  gatewayFacts
	// Problems are all the Link's problems, those of the remote API first.
	Problems []mapper.Problem
	// Mirrored is how many Services are mirrored.
	Mirrored int
	// ApplyErr is the failure of the mirror plan's write.
	ApplyErr error
	// Drill is the Link's drill record, read at the exact time.
	Drill drillFacts
}

// remoteFacts is the health of the remote cluster's API.
type remoteFacts struct {
	// SetupReason and SetupErr say why the remote cannot be watched at
	// all: the credentials Secret is missing or unusable, or the export
	// selector is invalid.
	SetupReason string
	SetupErr    error
	// Synced is true once the watcher has listed the remote.
	Synced bool
	// Reachable and Err are the watcher's health checks.
	Reachable bool
	Err       error
}

// readable reports whether the remote's exported Services can be read.
func (r remoteFacts) readable() bool { return r.SetupErr == nil && r.Synced }

// gatewayFacts is what is known of the Link's gateway.
type gatewayFacts struct {
	// MutualTLS is true when the probe speaks mutual TLS (gateway mode,
	// cross-cluster mTLS on); Identity is the name the gateway must carry.
	MutualTLS bool
	Identity  string
	// ClientCertErr says why this cluster has no client certificate;
	// ClientCertExpiry is when the one it has expires.
	ClientCertErr    error
	ClientCertExpiry time.Time
	// Probe is the prober's verdict; nil when the Link has no probe.
	Probe *remote.ProbeResult
	// TLSLastErr and TLSLastErrAt are the last failed handshake, kept
	// across probers.
	TLSLastErr   string
	TLSLastErrAt time.Time
}

// remoteReason tells credentials that the remote cluster refuses from a
// remote cluster that does not answer.
func remoteReason(err error) string {
	switch {
	case apierrors.IsForbidden(err):
		return ReasonForbidden
	case apierrors.IsUnauthorized(err):
		return ReasonUnauthorized
	}
	return ReasonUnreachable
}

// gatewayAlive is the verdict on the gateway that mirrors and routes
// follow. A new prober (a restart, a changed probe) has no verdict until
// a round succeeds or failureThreshold rounds fail: what the Link said
// before stands until then, so a restart never sends traffic to a gateway
// the Link last saw dead.
func gatewayAlive(f linkFacts) bool {
	g := f.Gateway
	switch {
	case f.Mode == crossmapv1.ModeFlat:
		return true
	case g.MutualTLS && g.ClientCertErr != nil:
		// Without a client certificate no request can reach the gateway:
		// it is as good as dead to this cluster.
		return false
	case g.Probe == nil:
		return true
	case !g.Probe.Settled:
		return !meta.IsStatusConditionFalse(f.Previous, crossmapv1.ConditionGatewayAlive)
	}
	return g.Probe.Alive
}

// remoteProblems are the problems of the remote API, for the status API.
func remoteProblems(f linkFacts) []mapper.Problem {
	link := mapper.ObjectRef{Kind: "Link", Namespace: f.Namespace, Name: f.Name}
	r := f.Remote
	switch {
	case r.SetupErr != nil:
		return []mapper.Problem{{Reason: r.SetupReason, Object: link,
			Message: fmt.Sprintf("%v; existing mirrors are kept, and still follow the gateway's health", r.SetupErr)}}
	case !r.Synced && r.Err != nil:
		return []mapper.Problem{{Reason: remoteReason(r.Err), Object: link,
			Message: fmt.Sprintf("cluster %s: %v; existing mirrors are kept", f.Cluster, r.Err)}}
	case r.Synced && !r.Reachable && r.Err != nil:
		return []mapper.Problem{{Reason: remoteReason(r.Err), Object: link,
			Message: fmt.Sprintf("cluster %s: %v; mirrors are kept as last seen", f.Cluster, r.Err)}}
	}
	return nil
}

// linkVerdict is what linkStatus makes of the facts.
type linkVerdict struct {
	// Conditions are the Link's new conditions.
	Conditions []metav1.Condition
	// View is the Link in the status API, apart from what only the
	// caller knows (mirrored Services, addresses, last sync).
	View status.Link
}

// linkStatus is the one writer of a Link's conditions and of its view in
// the status API. It is a pure function of the facts.
func linkStatus(f linkFacts) linkVerdict {
	conds := make([]metav1.Condition, 0, 4)
	for _, c := range f.Previous {
		conds = append(conds, *c.DeepCopy())
	}
	set := func(typ string, st metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&conds, metav1.Condition{Type: typ, Status: st, Reason: reason, Message: msg,
			ObservedGeneration: f.Generation, LastTransitionTime: metav1.NewTime(f.Now)})
	}
	// keep leaves a condition as it was, or sets it when it has none.
	keep := func(typ string, st metav1.ConditionStatus, reason, msg string) {
		if meta.FindStatusCondition(f.Previous, typ) == nil {
			set(typ, st, reason, msg)
		}
	}
	alive := gatewayAlive(f)
	v := status.Link{Namespace: f.Namespace, Name: f.Name, Cluster: f.Cluster, Mode: string(f.Mode), GatewayAlive: alive}
	r, g := f.Remote, f.Gateway
	// lastError: later facts win: remote, then gateway, then TLS, then the
	// write.
	lastError := func(msg string) { v.LastError = msg }

	// The remote API.
	switch {
	case r.SetupErr != nil:
		set(crossmapv1.ConditionRemoteReachable, metav1.ConditionFalse, r.SetupReason, r.SetupErr.Error())
		lastError(r.SetupErr.Error())
	case !r.Synced && r.Err != nil:
		set(crossmapv1.ConditionRemoteReachable, metav1.ConditionFalse, remoteReason(r.Err), r.Err.Error())
	case !r.Synced:
		set(crossmapv1.ConditionRemoteReachable, metav1.ConditionUnknown, ReasonConnecting, "waiting for the first list of the remote cluster")
	case !r.Reachable && r.Err != nil:
		set(crossmapv1.ConditionRemoteReachable, metav1.ConditionFalse, remoteReason(r.Err), r.Err.Error()+"; mirrors are kept as last seen")
	default:
		set(crossmapv1.ConditionRemoteReachable, metav1.ConditionTrue, ReasonConnected, "remote API server answers")
	}
	if r.Err != nil {
		lastError(r.Err.Error())
	}
	v.RemoteReachable = r.readable() && (r.Reachable || r.Err == nil)

	// The gateway, and the mutual TLS its probe checks.
	gatewayMode := f.Mode != crossmapv1.ModeFlat
	var tlsView *status.LinkTLS
	if gatewayMode {
		tlsView = &status.LinkTLS{Mode: "cleartext"}
		v.TLS = tlsView
	}
	if g.MutualTLS {
		tlsView.Mode, tlsView.Identity, tlsView.ClientCertExpiry = "mutual", g.Identity, g.ClientCertExpiry
	} else {
		meta.RemoveStatusCondition(&conds, crossmapv1.ConditionMutualTLS)
	}
	switch {
	case g.MutualTLS && g.ClientCertErr != nil:
		msg := g.ClientCertErr.Error()
		set(crossmapv1.ConditionMutualTLS, metav1.ConditionFalse, ReasonNoClientCertificate, msg)
		set(crossmapv1.ConditionGatewayAlive, metav1.ConditionFalse, ReasonNoClientCertificate, msg)
		tlsView.Reason, tlsView.LastError = ReasonNoClientCertificate, msg
		lastError(msg)
	case g.Probe == nil || !gatewayMode:
		set(crossmapv1.ConditionGatewayAlive, metav1.ConditionTrue, ReasonNotProbed, "no probe configured; the gateway is taken to be alive")
		if g.MutualTLS {
			set(crossmapv1.ConditionMutualTLS, metav1.ConditionUnknown, ReasonNotProbed, "the gateway's certificate is checked by the probe; set spec.probe to have it checked")
			tlsView.Reason = ReasonNotProbed
		}
	default:
		res := g.Probe
		v.GatewayProbed = res.Probed
		if res.Probed && res.Err == nil {
			v.ProbeLatency = res.Latency.String()
		}
		switch {
		case !res.Settled:
			keep(crossmapv1.ConditionGatewayAlive, metav1.ConditionUnknown, ReasonNotProbed, "first probe pending")
		case !res.Alive:
			reason := ReasonProbeFailed
			if res.TLS.Reason != "" {
				reason = res.TLS.Reason
			}
			set(crossmapv1.ConditionGatewayAlive, metav1.ConditionFalse, reason, res.Err.Error())
		default:
			// Also while probes fail fewer times in a row than the
			// threshold: the condition says what counts (alive), and a
			// message that followed each round would be a status write per
			// round. The status API has the last error.
			set(crossmapv1.ConditionGatewayAlive, metav1.ConditionTrue, ReasonProbeSucceeded, "gateway answers its probe")
		}
		if res.Err != nil {
			lastError(res.Err.Error())
		}
		if g.MutualTLS {
			tlsView.LastError, tlsView.LastErrorAt = g.TLSLastErr, g.TLSLastErrAt
			tlsView.GatewayCertExpiry = res.TLS.PeerNotAfter
			switch {
			case !res.TLS.Checked:
				// No handshake yet (a new prober, or a gateway that does
				// not answer at all): what the Link said before stands.
				keep(crossmapv1.ConditionMutualTLS, metav1.ConditionUnknown, ReasonNotProbed, "no handshake with the gateway yet")
				tlsView.Reason = ReasonNotProbed
			case res.TLS.Reason != "":
				msg := fmt.Sprintf("handshake with the gateway failed (%s): %v", res.TLS.Reason, res.TLS.Err)
				set(crossmapv1.ConditionMutualTLS, metav1.ConditionFalse, res.TLS.Reason, msg)
				tlsView.Reason = res.TLS.Reason
				lastError(msg)
			default:
				tlsView.Verified, tlsView.Reason = true, ReasonHandshakeSucceeded
				set(crossmapv1.ConditionMutualTLS, metav1.ConditionTrue, ReasonHandshakeSucceeded,
					fmt.Sprintf("the gateway presents %s, valid until %s, and accepts this cluster's certificate", g.Identity, res.TLS.PeerNotAfter.UTC().Format(time.RFC3339)))
			}
		}
	}

	// A drill, active or ended.
	if c := drillCondition(f.Cluster, f.Drill); c != nil {
		set(c.Type, c.Status, c.Reason, c.Message)
	} else {
		meta.RemoveStatusCondition(&conds, crossmapv1.ConditionDrill)
	}
	v.Drill = drillView(f.Drill)

	// Ready sums it up.
	switch {
	case f.ApplyErr != nil:
		set(crossmapv1.ConditionReady, metav1.ConditionFalse, ReasonApplyFailed, f.ApplyErr.Error())
		lastError(f.ApplyErr.Error())
	case r.SetupErr != nil:
		set(crossmapv1.ConditionReady, metav1.ConditionFalse, r.SetupReason, "remote cluster cannot be watched: "+r.SetupErr.Error())
	case !r.Synced:
		set(crossmapv1.ConditionReady, metav1.ConditionFalse, ReasonConnecting, "waiting for the remote cluster; existing mirrors are kept")
	case len(f.Problems) > 0:
		set(crossmapv1.ConditionReady, metav1.ConditionFalse, f.Problems[0].Reason, fmt.Sprintf("%d problem(s); first: %s", len(f.Problems), f.Problems[0].Message))
	case !v.RemoteReachable:
		set(crossmapv1.ConditionReady, metav1.ConditionFalse, ReasonUnreachable, "remote cluster unreachable; mirrors are kept as last seen")
	default:
		set(crossmapv1.ConditionReady, metav1.ConditionTrue, ReasonSynced, fmt.Sprintf("%d service(s) mirrored", f.Mirrored))
	}
	return linkVerdict{Conditions: conds, View: v}
}
