package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/crossmap/crossmap/edge"
	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/netns"
	"github.com/crossmap/crossmap/internal/status"
)

// End-to-end tests of issue 16's served-by header and priority failover,
// on the data path: real podinfo, east's gateway and west's edge (both
// crossmap's dev edge), real control planes.

// servedAnswer is one request through west's edge: the podinfo that
// answered and the served-by header of the response.
type servedAnswer struct {
	message  string
	servedBy []string
}

// servedGet sends GET /podinfo/ through west's edge, with the dev header
// set to dev when not empty.
func (s *story) servedGet(ctx context.Context, dev string) (servedAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.edgeURL+"/podinfo/", nil)
	if err != nil {
		return servedAnswer{}, err
	}
	if dev != "" {
		req.Header.Set("x-crossmap-cluster", dev)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return servedAnswer{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var p struct {
		Message string `json:"message"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &p) != nil {
		return servedAnswer{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return servedAnswer{message: p.Message, servedBy: resp.Header.Values("X-Crossmap-Cluster")}, nil
}

// TestDataPathServedBy: with the default --served-by-header, an answer
// from east (through the split or the dev route) names east in
// x-crossmap-cluster, once; an answer from the local podinfo has no such
// header (the user's Mapping is never modified, and crossmap's weighted
// sibling adds none, since Emissary would add it to the whole group).
// West's edge counts the answers by cluster on /status and /metrics.
func TestDataPathServedBy(t *testing.T) {
	s := newStoryWith(t, storyOptions{defaultIdentity: true, annotations: func(cluster string) map[string]string {
		return map[string]string{"crossmap.io/split": cluster + "=50", "crossmap.io/dev-routes": cluster}
	}})
	h := s.h
	h.wantWeight("split configured", s.sibling(), 50)
	h.eventually("both clusters answer, east with its name", func(ctx context.Context) error {
		seen := map[string]int{}
		for range 40 {
			a, err := s.servedGet(ctx, "")
			if err != nil {
				return err
			}
			seen[a.message]++
			want := []string(nil)
			if a.message == "east" {
				want = []string{s.cluster}
			}
			if !slices.Equal(a.servedBy, want) {
				return fmt.Errorf("answer from %s with x-crossmap-cluster %q, want %q", a.message, a.servedBy, want)
			}
		}
		if seen["east"] == 0 || seen["west"] == 0 {
			return fmt.Errorf("answers %v, want both clusters", seen)
		}
		return nil
	})
	// The dev route: its own Mapping names its cluster, replacing what
	// east's gateway said (the same name here), so the header is there once.
	a, err := s.servedGet(t.Context(), s.cluster)
	if err != nil {
		t.Fatal(err)
	}
	if a.message != "east" || !slices.Equal(a.servedBy, []string{s.cluster}) {
		t.Errorf("dev route: answer from %s with x-crossmap-cluster %q, want east with [%s]", a.message, a.servedBy, s.cluster)
	}

	// West's edge counted both clusters' answers.
	var st struct {
		Served map[string]uint64 `json:"served"`
	}
	if err := get(t.Context(), "http://"+s.westEdge.StatusAddr().String()+"/status", &st); err != nil {
		t.Fatal(err)
	}
	if st.Served[edge.LocalCluster] == 0 || st.Served[s.cluster] == 0 {
		t.Errorf("west edge /status served = %v, want answers of %s and %s", st.Served, edge.LocalCluster, s.cluster)
	}
	resp, err := http.Get("http://" + s.westEdge.StatusAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`crossmap_edge_served_total{cluster=%q}`, s.cluster); !strings.Contains(string(metrics), want) {
		t.Errorf("west edge /metrics has no %s:\n%s", want, metrics)
	}
	s.wantUserObjectsUnchanged()
}

// TestDataPathPriorityTiers: failover priority with the tiers local, east,
// north walks down and back up on real traffic. North is a second Link to
// east's cluster through a second gateway, so that each tier has its own
// health; the edge's X-Crossmap-Mapping header says which tier's route
// answered. Each move is timed from the health event to the first answer
// of the new tier, and to the last request routed to the old one.
func TestDataPathPriorityTiers(t *testing.T) {
	s := newStoryWith(t, storyOptions{
		annotations: func(cluster string) map[string]string {
			return map[string]string{"crossmap.io/failover": "priority", "crossmap.io/priority": "local," + cluster + ",north"}
		},
		// The demo's probe: every field the default.
		link: func(l *crossmapv1.Link) { l.Spec.Probe = &crossmapv1.ProbeSpec{} },
	})
	h := s.h
	// North: east's cluster again, through a second gateway.
	northAddr := netip.MustParseAddr("10.246.0.21")
	if err := netns.AddAddress(northAddr); err != nil {
		t.Fatal(err)
	}
	if !netns.Exists(northAddr) {
		t.Fatalf("address %s does not exist after adding it", northAddr)
	}
	h.edge(bed.Plane("east"), "north-gateway", netip.AddrPortFrom(northAddr, 4143).String(), netip.AddrPortFrom(northAddr, 8877).String(), s.gwID)
	h.create(h.west, &crossmapv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: "north"},
		Spec: crossmapv1.LinkSpec{
			ClusterName:       "north",
			CredentialsSecret: crossmapv1.SecretKeyRef{Name: "east-credentials"},
			Gateway:           crossmapv1.GatewaySpec{Addresses: []string{northAddr.String()}, Port: 4143, Identity: ingress.GatewayIdentity(h.eastCluster)},
			ExportSelector:    &metav1.LabelSelector{MatchLabels: h.exportLabels},
			Probe:             &crossmapv1.ProbeSpec{},
		},
	})

	local, east, north := h.ns+"/podinfo", h.ns+"/"+s.sibling(), h.ns+"/podinfo-north"
	h.wantWeight("the route to north, waiting", "podinfo-north", 0)
	h.wantWeight("the route to east, waiting", s.sibling(), 0)
	wantTier := func(what, mapping string) {
		t.Helper()
		h.eventually(what, func(ctx context.Context) error {
			cl := &http.Client{Timeout: 2 * time.Second}
			for range 20 {
				r := compoundGet(ctx, cl, s.edgeURL+"/podinfo/")
				if r.err != "" || r.mapping != mapping {
					return fmt.Errorf("answer via %s (%s), want every answer via %s", r.mapping, r.err, mapping)
				}
			}
			return nil
		})
	}
	wantTier("tier 1: local takes everything", local)

	tr := startTraffic(t, s.edgeURL+"/podinfo/")
	var moves []string
	move := func(what, from, to string, event func()) {
		t.Helper()
		t0 := time.Now()
		event()
		first, last := tr.moved(t, t0, from, to)
		moves = append(moves, fmt.Sprintf("%s: first answer of the new tier %s, last request to the old %s", what, first.Round(time.Millisecond), last.Round(time.Millisecond)))
		t.Logf("%s", moves[len(moves)-1])
	}
	move("local down -> east", local, east, func() { h.setReady(h.west, "podinfo-abcde", false) })
	move("east's gateway dies -> north", east, north, s.stopGW)
	move("east's gateway back -> east", north, east, s.startGateway)
	move("local back -> local", east, local, func() { h.setReady(h.west, "podinfo-abcde", true) })
	tr.finish()
	t.Logf("priority failover move times (health event -> traffic moved):\n  %s", strings.Join(moves, "\n  "))

	// The status API agrees: priority in force, local healthy again.
	h.eventually("status shows the priority route", func(ctx context.Context) error {
		var v status.View
		if err := statusGetJSON(ctx, h.statusURL()+"/status", http.StatusOK, &v); err != nil {
			return err
		}
		r, ok := firstWhere(v.Routes, func(r status.Route) bool { return r.Key() == h.ns+"/podinfo" })
		if !ok || r.Failover != "priority" || routeWeights(r) != "local=100/100 east=0/0 north=0/0" {
			return fmt.Errorf("route podinfo: %+v, want failover priority, local 100", r)
		}
		return nil
	})
	// Each move told people: a Failover Event on the Mapping naming the
	// tier in force, and the failover counter.
	h.eventually("a Failover Event names north's tier", func(context.Context) error {
		for _, e := range h.events(h.west, h.ns) {
			if e.Reason == "Failover" && e.InvolvedObject.Name == "podinfo" && strings.Contains(e.Message, "priority: tier 3 (north)") {
				return nil
			}
		}
		return fmt.Errorf("no Failover Event on podinfo naming tier 3 (north)")
	})
	s.wantUserObjectsUnchanged()
}

// moved waits, after the health event at t0, until the traffic has an
// answer from the new tier (routed by Mapping to) and then a second of
// requests none of which was routed by from, and returns the time from
// t0 to that first answer and to the last request routed by from.
func (tr *compoundTraffic) moved(t *testing.T, t0 time.Time, from, to string) (first, last time.Duration) {
	t.Helper()
	const settle = time.Second
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		recs := tr.snapshot()
		var firstAt, lastAt, end time.Time
		lastAt = t0
		for _, r := range recs {
			if r.sent.Before(t0) {
				continue
			}
			end = r.sent
			if r.mapping == to && r.err == "" && firstAt.IsZero() {
				firstAt = r.sent
			}
			if r.mapping == from {
				lastAt = r.sent
			}
		}
		if firstAt.IsZero() || end.Sub(lastAt) < settle || end.Sub(firstAt) < settle {
			return false, nil
		}
		first, last = firstAt.Sub(t0), lastAt.Sub(t0)
		return true, nil
	})
	if err != nil {
		tr.mu.Lock()
		n := len(tr.recs)
		tr.mu.Unlock()
		t.Fatalf("traffic did not move from %s to %s within 30s of the event (%d requests recorded)", from, to, n)
	}
	return first, last
}
