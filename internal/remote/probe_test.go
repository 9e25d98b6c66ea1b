package remote_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/crossmap/crossmap/internal/remote"
)

// loopback is the only address these tests send traffic to.
var loopback = netip.MustParseAddr("127.0.0.1")

// probePath is the path the tests configure; the stub gateway checks it.
const probePath = "/ready"

// stubGateway is a gateway health endpoint on 127.0.0.1 whose answer a test
// flips at any time.
type stubGateway struct {
	port int32
	// status is the HTTP status the next probe gets.
	status atomic.Int32
	// hits counts probe requests, each one a round of the prober.
	hits atomic.Int64
	// wrongPath counts requests for any other path than probePath.
	wrongPath atomic.Int64
	// arrived and release, when set, hold each request until the test
	// releases it, so that the test steps the prober round by round.
	arrived chan struct{}
	release chan struct{}
}

// newStubGateway starts a gateway that answers status. When gated, every
// request waits for the test: see stubGateway.arrived.
func newStubGateway(t *testing.T, status int, gated bool) *stubGateway {
	t.Helper()
	g := &stubGateway{}
	g.status.Store(int32(status))
	if gated {
		g.arrived = make(chan struct{})
		g.release = make(chan struct{})
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != probePath {
			g.wrongPath.Add(1)
		}
		if g.arrived != nil {
			select {
			case g.arrived <- struct{}{}:
			case <-r.Context().Done():
				return
			}
			select {
			case <-g.release:
			case <-r.Context().Done():
				return
			}
		}
		g.hits.Add(1)
		w.WriteHeader(int(g.status.Load()))
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	g.port = int32(l.Addr().(*net.TCPAddr).Port)
	return g
}

// nextRequest waits for the gated gateway's next request. Its arrival also
// proves that the prober recorded every earlier round: a round's result is
// recorded before the prober waits for its next tick.
func (g *stubGateway) nextRequest(t *testing.T) {
	t.Helper()
	select {
	case <-g.arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the prober sent no request within 10s")
	}
}

// stepClock is an injected clock that moves on by step at every reading, so
// that a round's latency is known exactly.
type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func newStepClock(step time.Duration) *stepClock {
	return &stepClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), step: step}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}

// startProber starts a prober of the 127.0.0.1 gateway on port, probing
// every 20ms, with a Notify that counts calls; it stops with the test.
func startProber(t *testing.T, port int32, threshold int) (*remote.Prober, *atomic.Int64) {
	t.Helper()
	var notified atomic.Int64
	p := remote.StartProber(t.Context(), remote.ProbeConfig{
		Addresses:        []netip.Addr{loopback},
		Port:             port,
		Path:             probePath,
		Period:           20 * time.Millisecond,
		Timeout:          5 * time.Second,
		FailureThreshold: threshold,
		Notify:           func() { notified.Add(1) },
		Now:              newStepClock(time.Millisecond).Now,
	})
	t.Cleanup(p.Stop)
	return p, &notified
}

// eventually polls cond every 5ms for up to 10s and fails the test with what
// it was waiting for.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

func TestProberAliveGateway(t *testing.T) {
	g := newStubGateway(t, http.StatusNoContent, false)
	p, notified := startProber(t, g.port, 3)

	eventually(t, "the prober has probed three rounds", func() bool { return p.Result().Probed && g.hits.Load() >= 3 })

	res := p.Result()
	if !res.Alive || res.Err != nil || !res.Settled {
		t.Errorf("Result() = %+v; want alive and settled with no error", res)
	}
	// The injected clock moves 1ms per reading: one reading before the
	// request and one after.
	if res.Latency != time.Millisecond {
		t.Errorf("Result().Latency = %s; want 1ms, the time between the two clock readings of a round", res.Latency)
	}
	if n := g.wrongPath.Load(); n != 0 {
		t.Errorf("%d probes asked for another path than %s", n, probePath)
	}
	if n := notified.Load(); n != 0 {
		t.Errorf("Notify called %d times for a gateway that was alive all along; want 0", n)
	}
}

func TestProberDeadOnlyAfterFailureThreshold(t *testing.T) {
	g := newStubGateway(t, http.StatusInternalServerError, true)
	p, notified := startProber(t, g.port, 3)

	if res := p.Result(); res.Probed || !res.Alive {
		t.Fatalf("Result() before the first round = %+v; want alive and not probed", res)
	}
	g.nextRequest(t) // round 1 is in flight
	for round := 1; round <= 2; round++ {
		g.release <- struct{}{}
		g.nextRequest(t) // round+1 is in flight, so round is recorded
		res := p.Result()
		if !res.Probed || !res.Alive {
			t.Fatalf("after %d failed round(s) of 3: Result() = %+v; want probed and still alive", round, res)
		}
		// Issue 13: "alive" after fewer failures than the threshold is the
		// starting guess, not a verdict.
		if res.Settled {
			t.Fatalf("after %d failed round(s) of 3: Result() = %+v; want not settled", round, res)
		}
		if res.Err == nil || !strings.Contains(res.Err.Error(), "HTTP 500") {
			t.Fatalf("after %d failed round(s): Result().Err = %v; want it to name HTTP 500", round, res.Err)
		}
		if n := notified.Load(); n != 0 {
			t.Fatalf("after %d failed round(s) of 3: Notify called %d times; want 0", round, n)
		}
	}
	g.release <- struct{}{} // round 3 fails too
	g.nextRequest(t)        // round 4 is in flight, so round 3 is recorded

	res := p.Result()
	if res.Alive || !res.Settled {
		t.Errorf("after 3 failed rounds of 3: Result() = %+v; want dead, settled", res)
	}
	if res.Err == nil || !strings.Contains(res.Err.Error(), "HTTP 500") {
		t.Errorf("Result().Err = %v; want it to name HTTP 500", res.Err)
	}
	if n := notified.Load(); n != 1 {
		t.Errorf("Notify called %d times; want once, for alive → dead", n)
	}
}

func TestProberClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	port := int32(l.Addr().(*net.TCPAddr).Port)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	p, notified := startProber(t, port, 1)

	// Notify runs after the verdict is recorded.
	eventually(t, "Notify is called", func() bool { return notified.Load() > 0 })

	res := p.Result()
	if !res.Probed || res.Alive {
		t.Errorf("Result() = %+v; want probed and dead", res)
	}
	if !errors.Is(res.Err, syscall.ECONNREFUSED) {
		t.Errorf("Result().Err = %v; want connection refused", res.Err)
	}
	if res.Latency != 0 {
		t.Errorf("Result().Latency = %s; want 0: no round ever succeeded", res.Latency)
	}
	if n := notified.Load(); n != 1 {
		t.Errorf("Notify called %d times; want once, for alive → dead", n)
	}
}

func TestProberRecoversAfterOneSuccess(t *testing.T) {
	g := newStubGateway(t, http.StatusServiceUnavailable, false)
	p, notified := startProber(t, g.port, 2)

	// Notify runs after the verdict is recorded.
	eventually(t, "Notify is called", func() bool { return notified.Load() > 0 })
	if res := p.Result(); res.Alive {
		t.Fatalf("Result() = %+v after Notify; want dead", res)
	}
	// More failed rounds do not notify again.
	dead := g.hits.Load()
	eventually(t, "three more rounds failed", func() bool { return g.hits.Load() >= dead+3 })
	if res, n := p.Result(), notified.Load(); res.Alive || n != 1 {
		t.Fatalf("after more failed rounds: Result() = %+v, Notify called %d times; want still dead and 1 call", res, n)
	}

	g.status.Store(http.StatusOK)
	eventually(t, "Notify is called again", func() bool { return notified.Load() > 1 })
	res := p.Result()
	if !res.Alive || res.Err != nil || res.Latency != time.Millisecond {
		t.Errorf("after one success: Result() = %+v; want alive, no error and a latency of 1ms", res)
	}
	if n := notified.Load(); n != 2 {
		t.Fatalf("Notify called %d times after recovery; want 2 (alive → dead → alive)", n)
	}
	// More successful rounds do not notify again.
	alive := g.hits.Load()
	eventually(t, "three more rounds succeeded", func() bool { return g.hits.Load() >= alive+3 })
	if n := notified.Load(); n != 2 {
		t.Errorf("Notify called %d times after more successful rounds; want still 2", n)
	}
}

func TestProberNoAddresses(t *testing.T) {
	var notified atomic.Int64
	p := remote.StartProber(t.Context(), remote.ProbeConfig{
		Port: 4143, Period: 20 * time.Millisecond, Timeout: time.Second,
		Notify: func() { notified.Add(1) },
	})
	t.Cleanup(p.Stop)

	eventually(t, "Notify is called", func() bool { return notified.Load() > 0 })
	res := p.Result()
	if res.Alive || !res.Probed || res.Err == nil || !strings.Contains(res.Err.Error(), "no gateway address") {
		t.Errorf("Result() = %+v; want dead and probed, with an error saying there is no address", res)
	}
	// A FailureThreshold below 1 counts as 1.
	if got := p.Config().FailureThreshold; got != 1 {
		t.Errorf("Config().FailureThreshold = %d; want 1 for an unset threshold", got)
	}
	if n := notified.Load(); n != 1 {
		t.Errorf("Notify called %d times; want once", n)
	}
}

func TestProberStop(t *testing.T) {
	t.Run("between rounds", func(t *testing.T) {
		g := newStubGateway(t, http.StatusOK, false)
		p, _ := startProber(t, g.port, 1)
		eventually(t, "the prober has probed", func() bool { return p.Result().Probed })

		stopWithin(t, p)
		// A second Stop, as the test cleanup does, returns too.
		stopWithin(t, p)
		if res := p.Result(); !res.Probed || !res.Alive {
			t.Errorf("Result() after Stop = %+v; want the last verdict, alive", res)
		}
	})

	t.Run("during a round", func(t *testing.T) {
		g := newStubGateway(t, http.StatusOK, true)
		p, notified := startProber(t, g.port, 1)
		g.nextRequest(t) // the first round hangs until released, which never happens

		stopWithin(t, p)
		// The aborted round is not recorded as a failure.
		if res := p.Result(); res.Probed || !res.Alive || res.Err != nil {
			t.Errorf("Result() after Stop during the first round = %+v; want alive, not probed, no error", res)
		}
		if n := notified.Load(); n != 0 {
			t.Errorf("Notify called %d times; want 0", n)
		}
	})

	t.Run("parent context cancelled", func(t *testing.T) {
		g := newStubGateway(t, http.StatusOK, false)
		ctx, cancel := context.WithCancel(t.Context())
		p := remote.StartProber(ctx, remote.ProbeConfig{
			Addresses: []netip.Addr{loopback}, Port: g.port, Path: probePath,
			Period: 20 * time.Millisecond, Timeout: 5 * time.Second,
		})
		eventually(t, "the prober has probed", func() bool { return p.Result().Probed })
		cancel()
		stopWithin(t, p)
	})
}

// stopWithin fails the test if p.Stop does not return within 10s.
func stopWithin(t *testing.T, p *remote.Prober) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		p.Stop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return within 10s")
	}
}
