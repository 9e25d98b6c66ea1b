package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/crossmap/crossmap/internal/pki"
)

// ProbeConfig says how to health-check a remote gateway.
type ProbeConfig struct {
	Addresses        []netip.Addr
	Port             int32
	Path             string
	Period           time.Duration
	Timeout          time.Duration
	FailureThreshold int
	// Host is the Host header (and, with TLS, the ServerName) of each
	// probe: the gateway's identity. Emissary answers its readiness path
	// through a Host like any route, and the gateway Host matches
	// *.svc.cluster.local, under which the identity lies; an address as
	// Host header would match no Host and get a 404.
	Host string
	// TLS, when set, makes each probe an HTTPS GET with this configuration:
	// the client certificate, the trust anchor and the gateway's identity
	// as ServerName. The probe then checks the same mutual TLS traffic
	// uses. Nil probes in cleartext.
	TLS *tls.Config
	// Notify is called when the gateway turns alive or dead, or the TLS
	// verdict changes, on the probing goroutine: it must return promptly.
	Notify func()
	// OnTLSFailure is called with the reason (pki.Classify) of every
	// round that failed its TLS handshake; optional, for counting.
	OnTLSFailure func(reason string)
	// Observe, when set, is called with the verdict after every round, on
	// the probing goroutine, before Notify: latency and liveness in the
	// status API and the metrics follow each probe, not each reconcile.
	Observe func(ProbeResult)
	// Now is the clock; tests inject one.
	Now func() time.Time
}

// ProbeResult is the prober's current verdict.
type ProbeResult struct {
	// Alive stays true until FailureThreshold rounds in a row have failed,
	// and turns true again on the first round that succeeds.
	Alive bool
	// Latency of the last successful round.
	Latency time.Duration
	// Err of the last failed round, cleared by a success.
	Err error
	// Probed is false until the first round has finished.
	Probed bool
	// Settled is true once a round has succeeded or FailureThreshold
	// rounds in a row have failed: until then a new prober's Alive is its
	// starting guess, not a verdict, and whoever knew better before (a
	// Link that saw its gateway dead before a restart) should keep that.
	Settled bool
	// TLS is the verdict of the last round that got as far as a TLS
	// handshake (probes with ProbeConfig.TLS only).
	TLS TLSResult
}

// TLSResult is what the probe learnt of the gateway's mutual TLS.
type TLSResult struct {
	// Checked is true once a round reached the handshake.
	Checked bool
	// Reason is empty after a good handshake, else why it failed
	// (pki.Classify's reasons).
	Reason string
	// Err is the last handshake failure; kept after a recovery, with At.
	Err error
	At  time.Time
	// PeerNotAfter is when the certificate the gateway presented in the
	// last good handshake expires.
	PeerNotAfter time.Time
}

// Prober probes a gateway every Period. A round succeeds when any gateway
// address answers the HTTP GET with a 2xx status within Timeout: the gateway
// is one logical service, and one live replica carries traffic.
type Prober struct {
	cfg    ProbeConfig
	client *http.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	result   ProbeResult
	failures int
}

// StartProber starts probing in the background.
func StartProber(ctx context.Context, cfg ProbeConfig) *Prober {
	if cfg.FailureThreshold < 1 {
		cfg.FailureThreshold = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Prober{
		cfg: cfg,
		client: &http.Client{
			Timeout: cfg.Timeout,
			// Each probe is a fresh connection, so that a dead gateway is
			// seen as dead and not hidden behind a pooled connection.
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil, TLSClientConfig: cfg.TLS,
				DialContext: (&net.Dialer{Timeout: cfg.Timeout}).DialContext},
		},
		cancel: cancel,
		done:   make(chan struct{}),
		result: ProbeResult{Alive: true},
	}
	go p.run(ctx)
	return p
}

// Config returns the configuration the prober runs with.
func (p *Prober) Config() ProbeConfig { return p.cfg }

// Result returns the current verdict.
func (p *Prober) Result() ProbeResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.result
}

// Stop ends probing.
func (p *Prober) Stop() {
	p.cancel()
	<-p.done
}

func (p *Prober) run(ctx context.Context) {
	defer close(p.done)
	t := time.NewTicker(p.cfg.Period)
	defer t.Stop()
	for {
		latency, peer, err := p.round(ctx)
		if ctx.Err() != nil {
			return
		}
		p.record(latency, peer, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round probes every address until one answers. peer is the certificate
// the gateway presented, when the round was over TLS and got that far.
func (p *Prober) round(ctx context.Context) (latency time.Duration, peer *x509.Certificate, err error) {
	scheme := "http://"
	if p.cfg.TLS != nil {
		scheme = "https://"
	}
	var lastErr error
	for _, a := range p.cfg.Addresses {
		url := scheme + net.JoinHostPort(a.String(), strconv.Itoa(int(p.cfg.Port))) + p.cfg.Path
		start := p.cfg.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, nil, err
		}
		if p.cfg.Host != "" {
			req.Host = p.cfg.Host
		}
		resp, err := p.client.Do(req)
		if err != nil {
			// A TLS failure is worth more than any other: it is the one
			// that says something about the gateway's identity.
			if _, lastTLS := pki.Classify(lastErr); !lastTLS {
				lastErr = err
			}
			continue
		}
		resp.Body.Close()
		if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
			peer = resp.TLS.PeerCertificates[0]
		}
		if resp.StatusCode/100 == 2 {
			return p.cfg.Now().Sub(start), peer, nil
		}
		lastErr = fmt.Errorf("probe %s: HTTP %d", url, resp.StatusCode)
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no gateway address to probe")
	}
	return 0, peer, lastErr
}

func (p *Prober) record(latency time.Duration, peer *x509.Certificate, err error) {
	p.mu.Lock()
	was, wasTLS := p.result.Alive, p.result.TLS
	p.result.Probed = true
	reason, tlsFailed := pki.Classify(err)
	switch {
	case p.cfg.TLS == nil:
	case tlsFailed:
		p.result.TLS.Checked = true
		p.result.TLS.Reason, p.result.TLS.Err, p.result.TLS.At = reason, err, p.cfg.Now()
	case peer != nil:
		// The handshake succeeded, whatever the HTTP answer was.
		p.result.TLS.Checked = true
		p.result.TLS.Reason = ""
		p.result.TLS.PeerNotAfter = peer.NotAfter
	}
	if err == nil || p.failures+1 >= p.cfg.FailureThreshold {
		p.result.Settled = true
	}
	if err == nil {
		p.failures = 0
		p.result.Alive = true
		p.result.Latency = latency
		p.result.Err = nil
	} else {
		p.failures++
		p.result.Err = err
		if p.failures >= p.cfg.FailureThreshold {
			p.result.Alive = false
		}
	}
	changed := was != p.result.Alive || wasTLS.Checked != p.result.TLS.Checked || wasTLS.Reason != p.result.TLS.Reason
	res := p.result
	p.mu.Unlock()
	if tlsFailed && p.cfg.TLS != nil && p.cfg.OnTLSFailure != nil {
		p.cfg.OnTLSFailure(reason)
	}
	if p.cfg.Observe != nil {
		p.cfg.Observe(res)
	}
	if changed && p.cfg.Notify != nil {
		p.cfg.Notify()
	}
}
