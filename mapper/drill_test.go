package mapper_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"

	"github.com/crossmap/crossmap/mapper"
)

// drillWeights reads a what-if's route as "local 50>100, east 50>0": each
// backend of the split, its weight now and if the cluster were lost.
func drillWeights(r mapper.DrillRoute) string {
	var parts []string
	for _, b := range r.Backends {
		if b.Header != "" {
			continue
		}
		name := b.Cluster
		if name == "" {
			name = "local"
		}
		parts = append(parts, fmt.Sprintf("%s %d>%d", name, b.Now, b.IfLost))
	}
	return strings.Join(parts, ", ")
}

// TestWhatIf: the what-if of losing a cluster, on the golden snapshots.
func TestWhatIf(t *testing.T) {
	for _, c := range []struct {
		name, input, lose string
		// drained are clusters an earlier drill already drains.
		drained []string
		weights string
		atRisk  bool
		noneOK  bool
		lost    int
		// failover replaces the route's failover annotation.
		failover string
		// hold writes the route's objects into the snapshot and then
		// breaks its annotation: the route is held on what was written.
		hold bool
	}{
		{name: "weighted fails over to local", input: "readme-example", lose: "east",
			weights: "local 50>100, east 50>0"},
		{name: "losing a dev cluster moves no weight", input: "readme-example", lose: "dev-alice",
			weights: "local 50>50, east 50>50"},
		{name: "an unrelated cluster leaves the route alone", input: "readme-example", lose: "north",
			weights: "local 50>50, east 50>50"},
		{name: "failover off keeps sending to the lost cluster", input: "readme-example", lose: "east", failover: "off",
			weights: "local 50>50, east 50>50", atRisk: true, lost: 50},
		{name: "a cluster already down without failover loses nothing more", input: "failover-off-remote-unhealthy", lose: "east",
			weights: "local 50>50, east 50>50"},
		{name: "all remote without failover loses everything", input: "all-remote", lose: "east",
			weights: "local 0>0, east 100>100", atRisk: true, lost: 100},
		{name: "flat mode is drained too", input: "split-two-clusters-flat", lose: "dev",
			weights: "local 60>60, east 30>30, dev 10>10", atRisk: true, lost: 10},
		{name: "local down, the other remote takes it all", input: "failover-weighted-local-unhealthy", lose: "east",
			weights: "local 0>0, east 75>0, dev 25>100"},
		{name: "local down and the other remote drilled: nothing healthy", input: "failover-weighted-local-unhealthy", lose: "east",
			drained: []string{"dev"}, weights: "local 0>60, east 100>30, dev 0>10", atRisk: true, noneOK: true, lost: 100},
		{name: "a held route fails over on its kept configuration", input: "readme-example", lose: "east", hold: true,
			weights: "local 50>100, east 50>0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := loadRoutes(t, c.input)
			for i := range s.Links {
				s.Links[i].Drained = slices.Contains(c.drained, s.Links[i].Cluster)
			}
			for _, m := range s.Mappings {
				if c.failover != "" && m.Annotations["crossmap.io/split"] != "" {
					m.Annotations["crossmap.io/failover"] = c.failover
				}
			}
			if c.hold {
				s = held(t, s)
			}
			got := mapper.WhatIf(s, c.lose)
			if len(got) != 1 {
				t.Fatalf("%d routes, want 1: %+v", len(got), got)
			}
			r := got[0]
			if w := drillWeights(r); w != c.weights {
				t.Errorf("weights now>if lost: %s, want %s", w, c.weights)
			}
			if r.AtRisk() != c.atRisk || r.NoHealthyBackend != c.noneOK || r.Unserved != c.lost {
				t.Errorf("at risk %v, no healthy backend %v, unserved %d; want %v, %v, %d", r.AtRisk(), r.NoHealthyBackend, r.Unserved, c.atRisk, c.noneOK, c.lost)
			}
			if want := c.lose == "east" || c.lose == "dev" || c.lose == "dev-alice"; r.Affected != want {
				t.Errorf("affected %v, want %v", r.Affected, want)
			}
		})
	}
}

// held returns s with the objects its route generates written, and the
// route's split then broken, so that the route is held.
func held(t *testing.T, s mapper.RouteSnapshot) mapper.RouteSnapshot {
	t.Helper()
	rts := mapper.Routes(s)
	if len(rts) != 1 || rts[0].Held {
		t.Fatalf("want one route that is not held, got %+v", rts)
	}
	out := s
	out.Mappings = nil
	for _, m := range s.Mappings {
		c := m.DeepCopy()
		if c.Annotations["crossmap.io/split"] != "" {
			c.Annotations["crossmap.io/split"] = "east=fifty"
		}
		out.Mappings = append(out.Mappings, c)
	}
	for _, o := range rts[0].Objects {
		if m, ok := o.(*ambv3.Mapping); ok {
			out.Mappings = append(out.Mappings, m)
		}
	}
	if rts := mapper.Routes(out); len(rts) != 1 || !rts[0].Held {
		t.Fatalf("the broken route is not held: %+v", rts)
	}
	return out
}

// TestWhatIfIsADeadGateway: for every golden snapshot and every
// gateway-mode cluster in it, the what-if's weights are exactly those the
// route translation gives with that cluster's gateway dead, and its
// snapshot is left as it was: a drill fails over as a dead gateway does.
func TestWhatIfIsADeadGateway(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "routes", "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".in.yaml")
		s := loadRoutes(t, name)
		for _, l := range s.Links {
			if l.Mode == "flat" || !l.GatewayAlive {
				continue
			}
			before := fmt.Sprint(s.Links)
			what := mapper.WhatIf(s, l.Cluster)
			if after := fmt.Sprint(s.Links); after != before {
				t.Errorf("%s: WhatIf changed the snapshot's Links: %s -> %s", name, before, after)
			}
			dead := s
			dead.Links = slices.Clone(s.Links)
			for i := range dead.Links {
				if dead.Links[i].Cluster == l.Cluster {
					dead.Links[i].GatewayAlive = false
				}
			}
			want := map[string][]int{}
			for _, r := range mapper.Routes(dead) {
				if r.Held {
					continue // HeldRoute's weights: TestWhatIf
				}
				for _, b := range r.Backends {
					want[r.Source.Namespace+"/"+r.Source.Name] = append(want[r.Source.Namespace+"/"+r.Source.Name], b.Effective)
				}
			}
			for _, r := range what {
				w, ok := want[r.Route]
				if !ok {
					continue
				}
				var got []int
				for _, b := range r.Backends {
					got = append(got, b.IfLost)
				}
				if !slices.Equal(got, w) {
					t.Errorf("%s, lose %s, route %s: weights %v, want %v (gateway dead)", name, l.Cluster, r.Route, got, w)
				}
				checked++
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d routes compared; the golden inputs should give more", checked)
	}
}
