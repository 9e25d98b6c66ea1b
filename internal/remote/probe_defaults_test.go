package remote_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/remote"
)

// TestProberDefaultsFindDeadGateway: with the Link's default probe, a
// gateway is found dead about failureThreshold × period after it stops
// answering, whether it refuses connections (its process died) or accepts
// them and never answers (it hangs, or sits behind a network that drops its
// answers): a round that times out does not push the next ones back, since
// the timeout is no longer than the period. The bound checked is twice the
// worst case of the defaults (threshold × period + timeout = 650 ms), so
// that a loaded machine does not fail it; the times are logged.
func TestProberDefaultsFindDeadGateway(t *testing.T) {
	if crossmapv1.DefaultProbeTimeout > crossmapv1.DefaultProbePeriod {
		t.Fatalf("default timeout %s is longer than the default period %s", crossmapv1.DefaultProbeTimeout, crossmapv1.DefaultProbePeriod)
	}
	worst := time.Duration(crossmapv1.DefaultFailureThreshold)*crossmapv1.DefaultProbePeriod + crossmapv1.DefaultProbeTimeout
	for _, tc := range []struct {
		name   string
		listen func(t *testing.T) int32
	}{
		{"refuses connections", func(t *testing.T) int32 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := int32(l.Addr().(*net.TCPAddr).Port)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			return port
		}},
		{"never answers", func(t *testing.T) int32 {
			// The kernel completes the TCP handshake into the backlog;
			// nothing ever reads the request.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Close() })
			return int32(l.Addr().(*net.TCPAddr).Port)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port := tc.listen(t)
			start := time.Now()
			p := remote.StartProber(t.Context(), remote.ProbeConfig{
				Addresses: []netip.Addr{loopback}, Port: port, Path: probePath,
				Period: crossmapv1.DefaultProbePeriod, Timeout: crossmapv1.DefaultProbeTimeout,
				FailureThreshold: crossmapv1.DefaultFailureThreshold,
			})
			t.Cleanup(p.Stop)
			eventually(t, "the gateway is dead", func() bool { r := p.Result(); return r.Probed && !r.Alive })
			took := time.Since(start)
			t.Logf("dead after %s (threshold × period + timeout = %s)", took.Round(time.Millisecond), worst)
			if took > 2*worst {
				t.Errorf("dead after %s; want about %s, at most %s", took.Round(time.Millisecond), worst, 2*worst)
			}
		})
	}
}
