package remote

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// ProbeConfig says how to health-check a remote gateway.
type ProbeConfig struct {
	Addresses        []netip.Addr
	Port             int32
	Path             string
	Period           time.Duration
	Timeout          time.Duration
	FailureThreshold int
	// Notify is called when the gateway turns alive or dead, on the
	// probing goroutine: it must return promptly.
	Notify func()
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
			Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil,
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
		latency, err := p.round(ctx)
		if ctx.Err() != nil {
			return
		}
		p.record(latency, err)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Prober) round(ctx context.Context) (time.Duration, error) {
	var lastErr error
	for _, a := range p.cfg.Addresses {
		url := "http://" + net.JoinHostPort(a.String(), strconv.Itoa(int(p.cfg.Port))) + p.cfg.Path
		start := p.cfg.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		resp, err := p.client.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			return p.cfg.Now().Sub(start), nil
		}
		lastErr = fmt.Errorf("probe %s: HTTP %d", url, resp.StatusCode)
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no gateway address to probe")
	}
	return 0, lastErr
}

func (p *Prober) record(latency time.Duration, err error) {
	p.mu.Lock()
	was := p.result.Alive
	p.result.Probed = true
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
	changed := was != p.result.Alive
	p.mu.Unlock()
	if changed && p.cfg.Notify != nil {
		p.cfg.Notify()
	}
}
