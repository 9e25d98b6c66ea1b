package controller

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/remote"
	"github.com/crossmap/crossmap/mapper"
)

// The inputs of linkStatus, one value per state the issue lists.
var (
	remoteStates = map[string]remoteFacts{
		"connected":      {Synced: true, Reachable: true},
		"secret missing": {SetupReason: ReasonSecretNotFound, SetupErr: errors.New("credentials Secret crossmap-system/east-credentials not found")},
		"secret garbage": {SetupReason: ReasonInvalidCredentials, SetupErr: errors.New("credentials Secret crossmap-system/east-credentials key \"kubeconfig\" is not a usable kubeconfig")},
		"forbidden":      {Err: apierrors.NewForbidden(schema.GroupResource{Resource: "services"}, "", errors.New("no"))},
		"api down":       {Synced: true, Err: errors.New("dial tcp 10.246.0.1:6443: connect: connection refused")},
		"connecting":     {},
	}
	probeErr    = errors.New("probe https://10.246.1.10:4143/ready: connection refused")
	probeStates = map[string]gatewayFacts{
		"no probe":       {},
		"probe pending":  {Probe: &remote.ProbeResult{Alive: true}},
		"first miss":     {Probe: &remote.ProbeResult{Alive: true, Probed: true, Err: probeErr}},
		"alive":          {Probe: &remote.ProbeResult{Alive: true, Probed: true, Settled: true, Latency: 3 * time.Millisecond}},
		"alive, 1 miss":  {Probe: &remote.ProbeResult{Alive: true, Probed: true, Settled: true, Latency: 3 * time.Millisecond, Err: probeErr}},
		"dead":           {Probe: &remote.ProbeResult{Probed: true, Settled: true, Err: probeErr}},
		"dead, bad cert": {Probe: &remote.ProbeResult{Probed: true, Settled: true, Err: errors.New("x509: unknown authority"), TLS: remote.TLSResult{Checked: true, Reason: "UnknownCA", Err: errors.New("x509: unknown authority")}}},
	}
	previousStates = map[string][]metav1.Condition{
		"new Link":         nil,
		"was alive":        {{Type: crossmapv1.ConditionGatewayAlive, Status: metav1.ConditionTrue, Reason: ReasonProbeSucceeded}},
		"was dead":         {{Type: crossmapv1.ConditionGatewayAlive, Status: metav1.ConditionFalse, Reason: ReasonProbeFailed}},
		"was all healthy":  {{Type: crossmapv1.ConditionRemoteReachable, Status: metav1.ConditionTrue, Reason: ReasonConnected}, {Type: crossmapv1.ConditionGatewayAlive, Status: metav1.ConditionTrue, Reason: ReasonProbeSucceeded}, {Type: crossmapv1.ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonSynced}},
		"was unreachable ": {{Type: crossmapv1.ConditionRemoteReachable, Status: metav1.ConditionFalse, Reason: ReasonUnreachable}},
	}
	importProblem = mapper.Problem{Reason: mapper.ReasonMissingNamespace, Message: `namespace "shop" does not exist here`}
)

func facts(remoteState, probe, previous string, mutual, clientCert bool, problems []mapper.Problem) linkFacts {
	g := probeStates[probe]
	if g.Probe != nil {
		p := *g.Probe
		g.Probe = &p
	}
	if mutual {
		g.MutualTLS, g.Identity = true, "east.crossmap-gateway.svc.cluster.local"
		if !clientCert {
			g.ClientCertErr = errors.New("client certificate Secret crossmap-system/crossmap-client not issued yet")
		}
		if g.Probe != nil && g.Probe.Probed && g.Probe.TLS.Reason == "" && g.Probe.Alive {
			g.Probe.TLS = remote.TLSResult{Checked: true, PeerNotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
		}
	}
	f := linkFacts{Namespace: "crossmap-system", Name: "east", Cluster: "east", Mode: crossmapv1.ModeGateway, Generation: 1,
		Now: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), Previous: previousStates[previous],
		Remote: remoteStates[remoteState], Gateway: g, Mirrored: 1}
	f.Problems = append(remoteProblems(f), problems...)
	return f
}

func cond(conds []metav1.Condition, typ string) string {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return "absent"
	}
	return string(c.Status) + "/" + c.Reason
}

// TestLinkStatus: the cases of issue 13, each with the conditions and the
// status view linkStatus gives.
func TestLinkStatus(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		f                        linkFacts
		remote, gateway, ready   string
		mtls                     string
		viewAlive, viewReachable bool
		lastError                string
	}{
		{
			// Issue 13: with the Secret gone, /status said gatewayAlive
			// false while the condition said True; both say alive now.
			name: "secret missing, gateway alive", f: facts("secret missing", "alive", "was all healthy", false, true, nil),
			remote: "False/SecretNotFound", gateway: "True/ProbeSucceeded", ready: "False/SecretNotFound",
			viewAlive: true, lastError: "not found",
		},
		{
			name: "secret missing, gateway dies", f: facts("secret missing", "dead", "was all healthy", false, true, nil),
			remote: "False/SecretNotFound", gateway: "False/ProbeFailed", ready: "False/SecretNotFound",
			lastError: "connection refused",
		},
		{
			name: "secret garbage, gateway dead", f: facts("secret garbage", "dead", "was dead", false, true, nil),
			remote: "False/InvalidCredentials", gateway: "False/ProbeFailed", ready: "False/InvalidCredentials",
			lastError: "connection refused",
		},
		{
			name: "secret garbage, gateway back", f: facts("secret garbage", "alive", "was dead", false, true, nil),
			remote: "False/InvalidCredentials", gateway: "True/ProbeSucceeded", ready: "False/InvalidCredentials",
			viewAlive: true, lastError: "usable kubeconfig",
		},
		{
			name: "refused credentials, gateway dead", f: facts("forbidden", "dead", "was all healthy", false, true, nil),
			remote: "False/Forbidden", gateway: "False/ProbeFailed", ready: "False/Connecting", lastError: "connection refused",
		},
		{
			name: "remote API down after sync, gateway alive", f: facts("api down", "alive", "was all healthy", false, true, nil),
			remote: "False/Unreachable", gateway: "True/ProbeSucceeded", ready: "False/Unreachable", viewAlive: true,
			lastError: "6443",
		},
		{
			name: "connecting, probe pending, new Link", f: facts("connecting", "probe pending", "new Link", false, true, nil),
			remote: "Unknown/Connecting", gateway: "Unknown/NotProbed", ready: "False/Connecting", viewAlive: true,
		},
		{
			// A restarted controller keeps the dead verdict until its
			// first probe has one of its own.
			name: "restart, probe pending, was dead", f: facts("connected", "probe pending", "was dead", false, true, nil),
			remote: "True/Connected", gateway: "False/ProbeFailed", ready: "True/Synced", viewReachable: true,
		},
		{
			// A restarted controller's first round failed, one of the
			// threshold: no verdict yet, the dead one stands (it used to
			// read as alive, and send traffic to the dead cluster).
			name: "restart, first round failed, was dead", f: facts("connected", "first miss", "was dead", false, true, nil),
			remote: "True/Connected", gateway: "False/ProbeFailed", ready: "True/Synced", viewReachable: true,
			lastError: "connection refused",
		},
		{
			name: "all healthy", f: facts("connected", "alive", "was all healthy", false, true, nil),
			remote: "True/Connected", gateway: "True/ProbeSucceeded", ready: "True/Synced", viewAlive: true, viewReachable: true,
		},
		{
			name: "alive with a missed probe", f: facts("connected", "alive, 1 miss", "was all healthy", false, true, nil),
			remote: "True/Connected", gateway: "True/ProbeSucceeded", ready: "True/Synced", viewAlive: true, viewReachable: true,
			lastError: "connection refused",
		},
		{
			name: "healthy with an import problem", f: facts("connected", "alive", "was all healthy", false, true, []mapper.Problem{importProblem}),
			remote: "True/Connected", gateway: "True/ProbeSucceeded", ready: "False/MissingNamespace", viewAlive: true, viewReachable: true,
		},
		{
			name: "no probe", f: facts("connected", "no probe", "new Link", false, true, nil),
			remote: "True/Connected", gateway: "True/NotProbed", ready: "True/Synced", viewAlive: true, viewReachable: true,
		},
		{
			name: "mutual TLS, handshake good", f: facts("connected", "alive", "was all healthy", true, true, nil),
			remote: "True/Connected", gateway: "True/ProbeSucceeded", ready: "True/Synced", mtls: "True/HandshakeSucceeded",
			viewAlive: true, viewReachable: true,
		},
		{
			name: "mutual TLS, gateway's certificate unknown, secret missing", f: facts("secret missing", "dead, bad cert", "was all healthy", true, true, nil),
			remote: "False/SecretNotFound", gateway: "False/UnknownCA", ready: "False/SecretNotFound", mtls: "False/UnknownCA",
			lastError: "handshake with the gateway failed (UnknownCA)",
		},
		{
			name: "mutual TLS, no client certificate", f: facts("connected", "alive", "was all healthy", true, false, nil),
			remote: "True/Connected", gateway: "False/NoClientCertificate", ready: "True/Synced", mtls: "False/NoClientCertificate",
			viewReachable: true, lastError: "not issued yet",
		},
		{
			name: "mutual TLS, no probe", f: facts("connected", "no probe", "new Link", true, true, nil),
			remote: "True/Connected", gateway: "True/NotProbed", ready: "True/Synced", mtls: "Unknown/NotProbed",
			viewAlive: true, viewReachable: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := linkStatus(tc.f)
			if tc.mtls == "" {
				tc.mtls = "absent"
			}
			for _, c := range []struct{ typ, want string }{
				{crossmapv1.ConditionRemoteReachable, tc.remote},
				{crossmapv1.ConditionGatewayAlive, tc.gateway},
				{crossmapv1.ConditionReady, tc.ready},
				{crossmapv1.ConditionMutualTLS, tc.mtls},
			} {
				if got := cond(v.Conditions, c.typ); got != c.want {
					t.Errorf("%s = %s, want %s", c.typ, got, c.want)
				}
			}
			if v.View.GatewayAlive != tc.viewAlive || v.View.RemoteReachable != tc.viewReachable {
				t.Errorf("view gatewayAlive=%v remoteReachable=%v, want %v %v", v.View.GatewayAlive, v.View.RemoteReachable, tc.viewAlive, tc.viewReachable)
			}
			if !strings.Contains(v.View.LastError, tc.lastError) || (tc.lastError == "") != (v.View.LastError == "") {
				t.Errorf("view lastError %q, want one with %q", v.View.LastError, tc.lastError)
			}
		})
	}
}

// TestLinkStatusAgrees: over every combination of remote API health, probe
// result, mutual TLS and problems, the status view says what the
// conditions say, and the gateway verdict mirrors and routes follow is the
// one both show.
func TestLinkStatusAgrees(t *testing.T) {
	n := 0
	for rs := range remoteStates {
		for ps := range probeStates {
			for prev := range previousStates {
				for _, mutual := range []bool{false, true} {
					for _, clientCert := range []bool{false, true} {
						for _, problems := range [][]mapper.Problem{nil, {importProblem}} {
							f := facts(rs, ps, prev, mutual, clientCert, problems)
							name := fmt.Sprintf("%s/%s/%s/mtls=%v/cert=%v/problems=%d", rs, ps, prev, mutual, clientCert, len(problems))
							checkAgrees(t, name, f, linkStatus(f))
							n++
						}
					}
				}
			}
		}
	}
	t.Logf("%d combinations", n)
}

func checkAgrees(t *testing.T, name string, f linkFacts, v linkVerdict) {
	t.Helper()
	alive := gatewayAlive(f)
	if v.View.GatewayAlive != alive {
		t.Errorf("%s: view gatewayAlive %v, verdict %v", name, v.View.GatewayAlive, alive)
	}
	if got := meta.IsStatusConditionFalse(v.Conditions, crossmapv1.ConditionGatewayAlive); got == alive {
		t.Errorf("%s: GatewayAlive %s, view gatewayAlive %v", name, cond(v.Conditions, crossmapv1.ConditionGatewayAlive), alive)
	}
	if got := meta.IsStatusConditionTrue(v.Conditions, crossmapv1.ConditionRemoteReachable); got != v.View.RemoteReachable {
		t.Errorf("%s: RemoteReachable %s, view remoteReachable %v", name, cond(v.Conditions, crossmapv1.ConditionRemoteReachable), v.View.RemoteReachable)
	}
	ready := meta.IsStatusConditionTrue(v.Conditions, crossmapv1.ConditionReady)
	if want := f.Remote.readable() && v.View.RemoteReachable && len(f.Problems) == 0; ready != want {
		t.Errorf("%s: Ready %s, want true exactly when the remote is read and nothing is wrong", name, cond(v.Conditions, crossmapv1.ConditionReady))
	}
	if hasTLS := meta.FindStatusCondition(v.Conditions, crossmapv1.ConditionMutualTLS) != nil; hasTLS != f.Gateway.MutualTLS {
		t.Errorf("%s: MutualTLS condition present=%v with mutual TLS %v", name, hasTLS, f.Gateway.MutualTLS)
	}
	if f.Gateway.MutualTLS && v.View.TLS.Verified != meta.IsStatusConditionTrue(v.Conditions, crossmapv1.ConditionMutualTLS) {
		t.Errorf("%s: view tls.verified %v, MutualTLS %s", name, v.View.TLS.Verified, cond(v.Conditions, crossmapv1.ConditionMutualTLS))
	}
	if p := f.Gateway.Probe; p != nil && p.Probed && p.Err == nil && v.View.ProbeLatency != p.Latency.String() && f.Gateway.ClientCertErr == nil {
		t.Errorf("%s: view probeLatency %q, probe %s", name, v.View.ProbeLatency, p.Latency)
	}
	for _, c := range v.Conditions {
		if c.Reason == "" {
			t.Errorf("%s: condition %+v", name, c)
		}
	}
}
