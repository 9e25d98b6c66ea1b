package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crossmap/crossmap/ingress"
	"github.com/crossmap/crossmap/internal/cli"
	"github.com/crossmap/crossmap/internal/explain"
)

// explainShares asks west's status API to explain a request to west's edge
// and sums the explained shares by podinfo message ("west" for this
// cluster's backends, the cluster's name otherwise).
func (s *story) explainShares(ctx context.Context, base string, headers ...string) (*explain.Explanation, map[string]int, error) {
	e, _, err := cli.FetchExplain(ctx, &http.Client{Timeout: 5 * time.Second}, base,
		explain.Request{Method: http.MethodGet, URL: s.edgeURL + "/podinfo/", Headers: headers})
	if err != nil {
		return nil, nil, err
	}
	shares := map[string]int{}
	for _, g := range e.Groups {
		for _, b := range g.Backends {
			if b.Share == 0 {
				continue
			}
			who := b.Cluster
			if who == "west-"+s.h.id {
				who = "west"
			}
			shares[who] += b.Share
		}
	}
	return e, shares, nil
}

// withinBounds checks counts of n requests against the explained shares
// (percent): each cluster's count within 5 standard deviations of its
// binomial expectation, nothing else answering, nothing failing.
func withinBounds(counts map[string]int, n int, shares map[string]int) error {
	for who, c := range counts {
		if _, ok := shares[who]; !ok {
			return fmt.Errorf("%d requests answered by %q, which explain gives no share", c, who)
		}
	}
	for who, pct := range shares {
		p := float64(pct) / 100
		mean, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
		if got := float64(counts[who]); math.Abs(got-mean) > 5*sd+0.5 {
			return fmt.Errorf("%s answered %d of %d requests; explain says %d%% (%.0f ± %.0f)", who, counts[who], n, pct, mean, 5*sd)
		}
	}
	return nil
}

// TestExplainDataPath: explain's answer is where requests through west's
// dev edge actually go. With a 30% split to east, 400 requests split as
// explained; with the dev header, the dev route east answers all of them,
// as explained; with east's gateway dead, explain gives east nothing and
// says why, and no request reaches east.
func TestExplainDataPath(t *testing.T) {
	s := newStory(t, map[string]string{"crossmap.io/split": "east=30", "crossmap.io/failover": "weighted", "crossmap.io/dev-routes": "east"})
	h := s.h
	base := h.statusURL()
	h.wantWeight("split configured", "podinfo-east", 30)

	var e *explain.Explanation
	h.eventually("explain gives the split in force", func(ctx context.Context) error {
		var shares map[string]int
		var err error
		if e, shares, err = s.explainShares(ctx, base); err != nil {
			return err
		}
		if shares["west"] != 70 || shares["east"] != 30 || e.Answer != explain.AnswerRouted {
			return fmt.Errorf("explained %v (%s)", shares, e.Summary)
		}
		return nil
	})
	var table bytes.Buffer
	if err := cli.WriteExplainTable(&table, e); err != nil {
		t.Fatal(err)
	}
	t.Logf("crossmap explain GET %s/podinfo/:\n%s", s.edgeURL, table.String())
	g := e.Groups[0]
	if g.Route != h.ns+"/podinfo" || g.Failover != "weighted" || len(g.DevRoutes) != 1 || g.DevRoutes[0].Header != "x-crossmap-cluster: east" {
		t.Errorf("group %+v: want the route %s/podinfo, weighted, with the dev route x-crossmap-cluster: east", g, h.ns)
	}
	for _, b := range g.Backends {
		if b.Cluster == "east" && (b.TLS == nil || b.TLS.Identity != ingress.GatewayIdentity(h.eastCluster) || b.Healthy == nil || !*b.Healthy) {
			t.Errorf("east's backend %+v (TLS %+v): want healthy, with the Link's identity %s", b, b.TLS, ingress.GatewayIdentity(h.eastCluster))
		}
	}

	h.eventually("both clusters answer through the edge", func(context.Context) error {
		if c := s.hit(40, nil); c["east"] == 0 || c["west"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})
	const n = 400
	c := s.hit(n, nil)
	t.Logf("%d requests through the edge: %v", n, c)
	if err := withinBounds(c, n, map[string]int{"west": 70, "east": 30}); err != nil {
		t.Error(err)
	}

	_, devShares, err := s.explainShares(t.Context(), base, "x-crossmap-cluster: east")
	if err != nil {
		t.Fatal(err)
	}
	if devShares["east"] != 100 {
		t.Errorf("with the dev header explain says %v, want east 100", devShares)
	}
	if c := s.hit(50, map[string]string{"x-crossmap-cluster": "east"}); c["east"] != 50 {
		t.Errorf("with the dev header the edge sends %v, want all 50 to east as explained", c)
	}

	// Bad input: the live API says what is wrong.
	_, _, err = cli.FetchExplain(t.Context(), http.DefaultClient, base,
		explain.Request{Method: http.MethodGet, URL: s.edgeURL + "/podinfo/", Headers: []string{"x-crossmap-cluster"}})
	if err == nil || !strings.Contains(err.Error(), `header "x-crossmap-cluster": want "name: value"`) {
		t.Errorf("a header without a value: %v", err)
	}

	s.stopGW()
	h.eventually("explain gives east nothing once its gateway is dead", func(ctx context.Context) error {
		e, shares, err := s.explainShares(ctx, base)
		if err != nil {
			return err
		}
		if shares["west"] != 100 {
			return fmt.Errorf("explained %v", shares)
		}
		for _, b := range e.Groups[0].Backends {
			if b.Cluster == "east" && (b.Healthy == nil || *b.Healthy || b.Reason != "gateway of cluster east is dead") {
				return fmt.Errorf("east's backend %+v: want unhealthy, its gateway dead", b)
			}
		}
		return nil
	})
	h.eventually("the edge follows", func(context.Context) error {
		if c := s.hit(20, nil); c["east"] > 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})
	if c := s.hit(100, nil); c["west"] != 100 {
		t.Errorf("after failover the edge sends %v, want all to west as explained", c)
	}
	s.wantUserObjectsUnchanged()
}
