package controller

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

var drillStart = time.Date(2026, 12, 3, 13, 0, 0, 0, time.UTC)

func drillFor(d time.Duration, stopped bool) *crossmapv1.DrillSpec {
	s := &crossmapv1.DrillSpec{By: "alice", StartedAt: metav1.NewTime(drillStart), Until: metav1.NewTime(drillStart.Add(d))}
	if stopped {
		s.StoppedAt, s.StoppedBy = &metav1.Time{Time: drillStart.Add(time.Minute)}, "bob"
	}
	return s
}

// TestDrillLife: what a drill record means as time passes, to the
// nanosecond at its end, and what the Link, the status API and the
// requeue say of it.
func TestDrillLife(t *testing.T) {
	until := drillStart.Add(10 * time.Minute)
	for _, c := range []struct {
		name    string
		drill   *crossmapv1.DrillSpec
		now     time.Time
		active  bool
		mirrors bool
		cond    string // "Status/Reason", "" for none
		ended   string
		requeue time.Duration
		message string
	}{
		{name: "no drill", now: drillStart},
		// The routes go at once, the mirrors drillMirrorDelay later.
		{name: "just started", drill: drillFor(10*time.Minute, false), now: drillStart, active: true, cond: "True/Active",
			requeue: drillMirrorDelay, message: "cluster east is drained for routing until 2026-12-03T13:10:00Z (started by alice at 2026-12-03T13:00:00Z)"},
		{name: "mirrors drained", drill: drillFor(10*time.Minute, false), now: drillStart.Add(drillMirrorDelay), active: true, mirrors: true, cond: "True/Active",
			requeue: 10*time.Minute - drillMirrorDelay},
		{name: "a nanosecond before its end", drill: drillFor(10*time.Minute, false), now: until.Add(-time.Nanosecond), active: true, mirrors: true, cond: "True/Active", requeue: time.Nanosecond},
		{name: "at its end", drill: drillFor(10*time.Minute, false), now: until, cond: "False/Expired", ended: "expired",
			message: "the drill of cluster east ended at 2026-12-03T13:10:00Z (started by alice at 2026-12-03T13:00:00Z); the cluster takes traffic again"},
		{name: "stopped early", drill: drillFor(10*time.Minute, true), now: drillStart.Add(2 * time.Minute), cond: "False/Stopped", ended: "stopped",
			message: "the drill of cluster east was stopped by bob at 2026-12-03T13:01:00Z, before 2026-12-03T13:10:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := readDrill(c.drill, c.now)
			if f.Active != c.active || f.DrainMirrors != c.mirrors {
				t.Errorf("active %v, mirrors drained %v; want %v, %v", f.Active, f.DrainMirrors, c.active, c.mirrors)
			}
			got := ""
			cond := drillCondition("east", f)
			if cond != nil {
				got = string(cond.Status) + "/" + cond.Reason
				if !strings.Contains(cond.Message, c.message) {
					t.Errorf("message %q, want it to hold %q", cond.Message, c.message)
				}
			}
			if got != c.cond {
				t.Errorf("condition %s, want %s", got, c.cond)
			}
			if r := drillRequeue(f, c.now); r != c.requeue {
				t.Errorf("requeue after %s, want %s", r, c.requeue)
			}
			v := drillView(f)
			if (v == nil) != (c.drill == nil) {
				t.Fatalf("view %+v for drill %+v", v, c.drill)
			}
			if v != nil && (v.Active != c.active || v.Ended != c.ended || v.By != "alice" || !v.Until.Equal(until)) {
				t.Errorf("view %+v, want active %v, ended %q, by alice, until %s", v, c.active, c.ended, until)
			}

			// linkStatus writes the same condition, and removes it when
			// the record is gone.
			prev := []metav1.Condition{{Type: crossmapv1.ConditionDrill, Status: metav1.ConditionTrue, Reason: ReasonDrillActive}}
			lf := facts("connected", "alive", "was all healthy", false, false, nil)
			lf.Cluster, lf.Previous, lf.Drill = "east", prev, f
			st := linkStatus(lf)
			sc := meta.FindStatusCondition(st.Conditions, crossmapv1.ConditionDrill)
			switch {
			case c.cond == "" && sc != nil:
				t.Errorf("linkStatus kept the Drill condition %+v without a record", sc)
			case c.cond != "" && (sc == nil || string(sc.Status)+"/"+sc.Reason != c.cond):
				t.Errorf("linkStatus Drill condition %+v, want %s", sc, c.cond)
			}
			if (st.View.Drill == nil) != (c.drill == nil) {
				t.Errorf("status view drill %+v", st.View.Drill)
			}
			if !st.View.GatewayAlive {
				t.Error("a drill changed the gateway's own verdict in the status view")
			}
		})
	}
}

// TestDrillLinkHealths: the route role sees a Link drained exactly while
// its drill is active, in either mode, and comes back at the first end.
func TestDrillLinkHealths(t *testing.T) {
	link := func(name string, mode crossmapv1.Mode, d *crossmapv1.DrillSpec) crossmapv1.Link {
		return crossmapv1.Link{ObjectMeta: metav1.ObjectMeta{Namespace: "crossmap-system", Name: name},
			Spec: crossmapv1.LinkSpec{ClusterName: name, Mode: mode, Drill: d}}
	}
	links := []crossmapv1.Link{
		link("east", crossmapv1.ModeGateway, drillFor(10*time.Minute, false)),
		link("flat", crossmapv1.ModeFlat, drillFor(5*time.Minute, false)),
		link("stopped", crossmapv1.ModeGateway, drillFor(5*time.Minute, true)),
		link("none", crossmapv1.ModeGateway, nil),
	}
	now := drillStart.Add(2 * time.Minute)
	got := map[string]bool{}
	for _, h := range LinkHealths(links, now, nil, false) {
		got[h.Cluster] = h.Drained
		if !h.GatewayAlive {
			t.Errorf("%s: a drill made the gateway dead; it drains, the gateway stays as probed", h.Cluster)
		}
	}
	want := map[string]bool{"east": true, "flat": true, "stopped": false, "none": false}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s drained %v, want %v", k, got[k], v)
		}
	}
	if d := nextDrillEnd(links, now); d != 3*time.Minute {
		t.Errorf("next drill end in %s, want 3m (flat's)", d)
	}
	if d := nextDrillEnd(links, drillStart.Add(time.Hour)); d != 0 {
		t.Errorf("next drill end after every drill ended: %s, want 0", d)
	}
}
