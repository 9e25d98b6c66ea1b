package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/netns"
)

// flapProbes is how many probes TestFlapDefaultProbe watches: 20 seconds
// at the default period. With failureThreshold 3 (the default before issue
// 13) a run of three lost probes in 400 comes in about nine runs of ten.
const flapProbes = 400

// flapSeed seeds the stand-in gateway's losses, so that a failure can be
// replayed; its first flapProbes draws hold a run of at least three
// losses (the test checks), which the old default would have failed over
// on.
const flapSeed = 13

// flapGateway stands in for east's gateway over mutual TLS and loses one
// probe in five at random (seeded), in turn in three ways: a 503, a
// connection closed without an answer, and no answer until the prober
// gives up (its timeout).
type flapGateway struct {
	mu     sync.Mutex
	rnd    *rand.Rand
	n      int
	lost   map[string]int
	run    int
	maxRun int
}

func (g *flapGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.n++
	lose := g.rnd.IntN(5) == 0
	how := ""
	if lose {
		how = [...]string{"503", "closed", "no answer"}[g.lostTotal()%3]
		g.lost[how]++
		g.run++
		g.maxRun = max(g.maxRun, g.run)
	} else {
		g.run = 0
	}
	g.mu.Unlock()
	switch how {
	case "":
		w.WriteHeader(http.StatusOK)
	case "503":
		w.WriteHeader(http.StatusServiceUnavailable)
	case "closed":
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			_ = conn.Close()
		}
	case "no answer":
		// Until the prober's timeout ends the request.
		<-r.Context().Done()
	}
}

func (g *flapGateway) lostTotal() int {
	return g.lost["503"] + g.lost["closed"] + g.lost["no answer"]
}

// counts returns the probes seen, those lost by way, and the longest run
// of losses in a row.
func (g *flapGateway) counts() (n int, lost map[string]int, maxRun int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n, map[string]int{"503": g.lost["503"], "closed": g.lost["closed"], "no answer": g.lost["no answer"]}, g.maxRun
}

// longestLossRun is the longest run of losses in the first n draws of a
// flapGateway seeded with seed.
func longestLossRun(seed uint64, n int) int {
	rnd := rand.New(rand.NewPCG(seed, seed))
	run, longest := 0, 0
	for range n {
		if rnd.IntN(5) == 0 {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// TestFlapDefaultProbe: with the Link's default probe (issue 13: 50ms,
// 50ms timeout, 12 failures in a row), a gateway that loses one probe in
// five at random never loses its traffic: over flapProbes probes the
// gateway stays alive at every look, the generated Mapping keeps its
// weight, and no weight change, failover or Failover Event is recorded.
func TestFlapDefaultProbe(t *testing.T) {
	if run := longestLossRun(flapSeed, flapProbes); run < 3 {
		t.Fatalf("seed %d loses at most %d probes in a row in %d: the test would not catch the old threshold of 3", flapSeed, run, flapProbes)
	}
	h := newFaultHarness(t, nil, true)
	gwAddr := netip.MustParseAddr("10.246.33.1")
	if err := netns.AddAddress(gwAddr); err != nil {
		t.Fatal(err)
	}
	if !netns.Exists(gwAddr) {
		t.Fatalf("gateway address %s does not exist after adding it", gwAddr)
	}
	gw := &flapGateway{rnd: rand.New(rand.NewPCG(flapSeed, flapSeed)), lost: map[string]int{}}
	l, err := net.Listen("tcp", netip.AddrPortFrom(gwAddr, 4143).String())
	if err != nil {
		t.Fatal(err)
	}
	// The probe is the only client of this gateway: no traffic is routed
	// here (the mirror's endpoint is the gateway, but no request is sent
	// through west's edge in this test).
	srv := &http.Server{Handler: gw, ErrorLog: discardLog}
	go func() { _ = srv.Serve(tls.NewListener(l, h.gatewayTLS())) }()
	t.Cleanup(func() { _ = srv.Close() })

	user := h.exported("podinfo", []int32{9898}, "10.244.28.1")
	user = append(user, h.local("podinfo", 9898, "10.244.29.1")...)
	h.link(func(l *crossmapv1.Link) {
		l.Spec.Gateway.Addresses = []string{gwAddr.String()}
		l.Spec.Probe = &crossmapv1.ProbeSpec{}
	})
	link, err := h.getLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantDefaultProbe(t, link)
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
	user = append(user, h.userMapping("podinfo", "podinfo."+h.ns+":9898",
		map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}, nil))
	h.wantWeight("configured", "podinfo-east", 50)

	aliveSince := gatewayAliveSince(t, h)
	route := map[string]string{"route": h.ns + "/podinfo"}
	changesBefore := counter(t, h.westMetrics, "crossmap_route_weight_changes_total", route)
	failoversBefore := counter(t, h.westMetrics, "crossmap_failovers_total", route)
	start, _, _ := gw.counts()
	began := time.Now()
	looks := 0
	err = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		n, _, _ := gw.counts()
		if a := counter(t, h.westMetrics, "crossmap_gateway_alive", nil); a != 1 {
			return false, fmt.Errorf("gateway declared dead (crossmap_gateway_alive = %v) after %d probes", a, n-start)
		}
		m, err := h.sibling(ctx, "podinfo-east")
		if err != nil {
			return false, err
		}
		if w := ptr.Deref(m.Spec.Weight, -1); w != 50 {
			return false, fmt.Errorf("sibling weight %d after %d probes, want 50", w, n-start)
		}
		looks++
		return n-start >= flapProbes, nil
	})
	if err != nil {
		h.dump()
		t.Fatal(err)
	}
	n, lost, maxRun := gw.counts()
	n -= start
	elapsed := time.Since(began)
	t.Logf("flap: %d probes in %s (%.1f/s), lost %d (%v), longest run of losses %d; %d looks at the gateway's health and weight",
		n, elapsed.Round(100*time.Millisecond), float64(n)/elapsed.Seconds(), lost["503"]+lost["closed"]+lost["no answer"], lost, maxRun, looks)
	if c := counter(t, h.westMetrics, "crossmap_route_weight_changes_total", route) - changesBefore; c != 0 {
		t.Errorf("%v route weight changes while the gateway flapped; want none", c)
	}
	if c := counter(t, h.westMetrics, "crossmap_failovers_total", route) - failoversBefore; c != 0 {
		t.Errorf("%v failovers while the gateway flapped; want none", c)
	}
	for _, e := range h.events(h.west, h.ns) {
		if e.InvolvedObject.Name == "podinfo" && (e.Reason == "Failover" || e.Reason == "WeightsRestored") {
			t.Errorf("Event %s on the Mapping: %s", e.Reason, e.Message)
		}
	}
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
	if after := gatewayAliveSince(t, h); !after.Equal(aliveSince) {
		t.Errorf("GatewayAlive changed while the gateway flapped (last transition %s, was %s)", after, aliveSince)
	}
	h.wantMirror("mirror endpoints stayed ready", "podinfo", []int32{9898}, gwAddr.String()+":4143 ready=true")
	h.nothingLost(t, user)
}

// gatewayAliveSince is the last transition time of the Link's GatewayAlive
// condition.
func gatewayAliveSince(t *testing.T, h *harness) time.Time {
	t.Helper()
	l, err := h.getLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := meta.FindStatusCondition(l.Status.Conditions, crossmapv1.ConditionGatewayAlive)
	if c == nil {
		t.Fatal("the Link has no GatewayAlive condition")
	}
	return c.LastTransitionTime.Time
}

// wantDefaultProbe fails the test unless the Link probes with the default
// settings: each of period, timeout and failureThreshold is either the
// default, as the API server fills it in from the CRD, or unset, as a Go
// client sends it (metav1.Duration's zero is "0s", which the schema's
// default does not replace) and the controller then fills it in.
func wantDefaultProbe(t *testing.T, l *crossmapv1.Link) {
	t.Helper()
	p := l.Spec.Probe
	if p == nil {
		t.Fatal("the Link has no probe")
	}
	if d := p.Period.Duration; d != 0 && d != crossmapv1.DefaultProbePeriod {
		t.Fatalf("probe period %s, not the default", d)
	}
	if d := p.Timeout.Duration; d != 0 && d != crossmapv1.DefaultProbeTimeout {
		t.Fatalf("probe timeout %s, not the default", d)
	}
	if n := p.FailureThreshold; n != 0 && n != crossmapv1.DefaultFailureThreshold {
		t.Fatalf("probe failureThreshold %d, not the default", n)
	}
}
