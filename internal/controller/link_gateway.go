package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/remote"
	"github.com/crossmap/crossmap/internal/status"
)

// This file is the gateway side of a Link: its addresses (DNS) and its
// prober. The prober's lifecycle depends on the Link's gateway and probe
// fields and on the client TLS material only, never on the remote API's
// credentials, the Link's other fields or how a reconcile ends: a dead
// gateway loses its traffic whatever else is wrong (issue 13).

// gatewayRuntime is the gateway side of one Link.
type gatewayRuntime struct {
	prober   *remote.Prober
	probeKey string
	// addrs is the last successful resolution of the gateway addresses:
	// a failed DNS lookup keeps them rather than cutting traffic.
	addrs []netip.Addr
	// tlsErr and tlsErrAt are the last failed handshake, kept across
	// probers (a renewed certificate starts a new one) for the status API.
	tlsErr   string
	tlsErrAt time.Time
}

func (g *gatewayRuntime) stopProber() {
	if g.prober != nil {
		g.prober.Stop()
		g.prober, g.probeKey = nil, ""
	}
}

// ensureGateway resolves the Link's gateway addresses and keeps its prober
// in line with its spec, and returns what is known of the gateway now.
// resolveErr is a failed lookup (the last good addresses are kept).
func (r *LinkReconciler) ensureGateway(ctx context.Context, link *crossmapv1.Link, e *linkEntry) (facts gatewayFacts, addrs []netip.Addr, resolveErr error) {
	key := client.ObjectKeyFromObject(link).String()
	g := &e.gateway
	if link.Spec.Mode == crossmapv1.ModeFlat {
		// No gateway: nothing to probe, nothing in the way.
		g.stopProber()
		r.Health.Set(key, true)
		return facts, nil, nil
	}
	addrs, resolveErr = r.resolve(ctx, link, g)
	spec := link.Spec.Probe
	cfg := remote.ProbeConfig{Host: linkIdentity(link)}
	var fingerprint string
	if r.Config.MutualTLS() {
		facts.MutualTLS, facts.Identity = true, linkIdentity(link)
		var err error
		cfg.TLS, facts.ClientCertExpiry, fingerprint, err = r.clientTLS(ctx, linkIdentity(link))
		if err != nil {
			g.stopProber()
			facts.ClientCertErr = err
			r.Health.Set(key, false)
			return facts, addrs, resolveErr
		}
	}
	if spec == nil {
		g.stopProber()
		r.Health.Set(key, true)
		return facts, addrs, resolveErr
	}
	cfg.Addresses = addrs
	cfg.Port = cmp.Or(spec.Port, link.Spec.Gateway.Port, crossmapv1.DefaultGatewayPort)
	cfg.Path = cmp.Or(spec.Path, crossmapv1.DefaultProbePath)
	cfg.Period = cmp.Or(spec.Period.Duration, crossmapv1.DefaultProbePeriod)
	cfg.Timeout = cmp.Or(spec.Timeout.Duration, crossmapv1.DefaultProbeTimeout)
	cfg.FailureThreshold = int(cmp.Or(spec.FailureThreshold, crossmapv1.DefaultFailureThreshold))
	probeKey := fmt.Sprint(cfg.Addresses, cfg.Port, cfg.Path, cfg.Period, cfg.Timeout, cfg.FailureThreshold, cfg.Host)
	if cfg.TLS != nil {
		// A renewed client certificate or trust anchor starts a new prober
		// with the new material.
		probeKey += " tls " + cfg.TLS.ServerName + " " + fingerprint
	}
	if g.probeKey != probeKey {
		g.stopProber()
		notify := r.notifier(client.ObjectKeyFromObject(link))
		cfg.Notify = notify
		cfg.OnTLSFailure = func(reason string) { r.Metrics.HandshakeFailures.WithLabelValues(key, reason).Inc() }
		settled := false // Observe runs on the prober's one goroutine
		cfg.Observe = func(res remote.ProbeResult) {
			r.observeProbe(key, res)
			if res.Settled && !settled {
				// Until its first verdict a new prober stands by what the
				// Link said before (a restart), which may be "dead"; the
				// prober tells of changes of Alive only, and alive is
				// where it starts, so the first verdict is told here.
				notify()
			}
			settled = res.Settled
		}
		g.prober = remote.StartProber(context.WithoutCancel(ctx), cfg)
		g.probeKey = probeKey
	}
	res := g.prober.Result()
	facts.Probe = &res
	if cfg.TLS != nil && res.TLS.Err != nil {
		g.tlsErr, g.tlsErrAt = res.TLS.Err.Error(), res.TLS.At
	}
	facts.TLSLastErr, facts.TLSLastErrAt = g.tlsErr, g.tlsErrAt
	return facts, addrs, resolveErr
}

// observeProbe is called after every probe round, on the prober's
// goroutine. It is the one writer of the probe's own facts, so they follow
// every round and not only reconciles (issue 13: the latency stood still
// for ten minutes while probes ran every 100 ms): liveness for the route
// role, liveness, latency and the gateway certificate's expiry in the
// metrics, and liveness and latency in the status API. The
// Link reconcile the prober's Notify asks for writes the rest.
func (r *LinkReconciler) observeProbe(key string, res remote.ProbeResult) {
	if res.Settled {
		// Before its first verdict a new prober's "alive" is a guess:
		// the Link's last verdict stands (see gatewayAlive).
		r.Health.Set(key, res.Alive)
		r.Metrics.GatewayAlive.WithLabelValues(key).Set(boolGauge(res.Alive))
	}
	latency := ""
	if res.Err == nil {
		latency = res.Latency.String()
		r.Metrics.ProbeLatency.WithLabelValues(key).Set(res.Latency.Seconds())
	}
	if !res.TLS.PeerNotAfter.IsZero() {
		r.Metrics.GatewayCertificateExpiry.WithLabelValues(key).Set(float64(res.TLS.PeerNotAfter.Unix()))
	}
	r.Model.UpdateLink(key, func(l *status.Link) {
		l.GatewayProbed, l.ProbeLatency = true, latency
		if res.Settled {
			l.GatewayAlive = res.Alive
		}
	})
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// resolve turns the gateway addresses into IPs, keeping the last good
// answer when a lookup fails.
func (r *LinkReconciler) resolve(ctx context.Context, link *crossmapv1.Link, g *gatewayRuntime) ([]netip.Addr, error) {
	var (
		out  []netip.Addr
		errs []error
	)
	for _, a := range link.Spec.Gateway.Addresses {
		if ip, err := netip.ParseAddr(a); err == nil {
			out = append(out, ip.Unmap())
			continue
		}
		lookup, cancel := context.WithTimeout(ctx, 5*time.Second)
		ips, err := r.Resolve(lookup, a)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve gateway address %q: %w", a, err))
			continue
		}
		for _, ip := range ips {
			out = append(out, ip.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	out = slices.Compact(out)
	if len(errs) > 0 && len(g.addrs) > 0 {
		return g.addrs, fmt.Errorf("%w; keeping the last resolved addresses", errors.Join(errs...))
	}
	g.addrs = out
	return out, errors.Join(errs...)
}

func hasDNSNames(addrs []string) bool {
	return slices.ContainsFunc(addrs, func(a string) bool {
		_, err := netip.ParseAddr(a)
		return err != nil
	})
}
