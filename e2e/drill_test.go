package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/cli"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// Drills (issue 16): `crossmap drill` on the data path. Real podinfo in
// both clusters, west's edge and east's gateway being the dev edge, real
// control planes, the Link's default probe (the demo's). Move times are
// measured as the compound-fault suite measures them: from the drill's
// --apply to the last request routed to east, and from the drill's end
// (its recorded until) to the first request east answers again.

// drillTarget is issue 16's target for both moves.
const drillTarget = time.Second

// drillOpts are `crossmap drill --lose east` for the story's routes.
func drillOpts(h *harness) cli.DrillOptions {
	o := cli.DefaultDrillOptions()
	o.Lose, o.Namespace, o.AmbassadorID = "east", h.ctrlNS, []string{h.id}
	return o
}

// drill runs `crossmap drill` with o against west and returns its output.
func drill(h *harness, o cli.DrillOptions) (string, error) {
	var out bytes.Buffer
	err := cli.RunDrill(context.Background(), h.west, o, time.Now(), &out)
	return out.String(), err
}

// snapshot returns the requests recorded so far, in order of sending.
func (tr *compoundTraffic) snapshot() []compoundRecord {
	tr.mu.Lock()
	recs := slices.Clone(tr.recs)
	tr.mu.Unlock()
	slices.SortFunc(recs, func(a, b compoundRecord) int { return a.sent.Compare(b.sent) })
	return recs
}

// lastEast is when the last request sent in [from, to) went to east (routed
// by its generated Mapping, or answered by it); from when there was none.
func lastEast(recs []compoundRecord, from, to time.Time) time.Time {
	last := from
	for _, r := range recs {
		if !r.sent.Before(from) && r.sent.Before(to) && (r.mapping == "podinfo-east" || r.answer == "east") {
			last = r.sent
		}
	}
	return last
}

// firstEast is when the first request sent at or after from was answered
// by east; zero when none was.
func firstEast(recs []compoundRecord, from time.Time) time.Time {
	for _, r := range recs {
		if !r.sent.Before(from) && r.answer == "east" {
			return r.sent
		}
	}
	return time.Time{}
}

// failedBetween counts the requests sent in [from, to) that failed.
func failedBetween(recs []compoundRecord, from, to time.Time) int {
	n := 0
	for _, r := range recs {
		if r.err != "" && !r.sent.Before(from) && r.sent.Before(to) {
			n++
		}
	}
	return n
}

// TestDrillDataPath: the what-if changes nothing and answers what the
// route role then does; a drill moves real traffic off east at once,
// survives a controller restart mid-drill, and gives east its traffic
// back at its end, which the restarted controller keeps; the drill shows
// in /status, the Link's condition, Events and metrics; --stop ends one
// early; and a drill that would cost requests is refused without --force.
func TestDrillDataPath(t *testing.T) {
	s := newStoryWith(t, storyOptions{
		annotations: func(string) map[string]string {
			return map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}
		},
		// The demo's probe: every field the default.
		link: func(l *crossmapv1.Link) { l.Spec.Probe = &crossmapv1.ProbeSpec{} },
	})
	h := s.h
	ctx := context.Background()
	h.wantWeight("split configured", "podinfo-east", 50)
	c := &compoundCell{t: t, h: h, edgeURL: s.edgeURL + "/podinfo/"}
	c.wantAnswers("both clusters answer through west's edge", func(m map[string]int) bool { return m["east"] > 0 && m["west"] > 0 })

	// What if: the answer, and nothing written.
	before, err := h.getLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := drill(h, drillOpts(h))
	if err != nil {
		t.Fatalf("what-if: %v\n%s", err, out)
	}
	t.Logf("crossmap drill --lose east:\n%s", out)
	for _, want := range []string{"If cluster east were lost now (" + h.ctrlNS + "/east)", h.ns + "/podinfo", "local 50 -> 100, east 50 -> 0", "fails over", "No route would lose requests"} {
		if !strings.Contains(out, want) {
			t.Errorf("what-if output lacks %q", want)
		}
	}
	if after, err := h.getLink(ctx); err != nil || after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the what-if wrote the Link (resourceVersion %s -> %s, %v)", before.ResourceVersion, after.ResourceVersion, err)
	}
	unknown := drillOpts(h)
	unknown.Lose = "esat"
	if _, err := drill(h, unknown); err == nil || !strings.Contains(err.Error(), `no Link in namespace `+h.ctrlNS+` has clusterName "esat" (linked: east)`) {
		t.Errorf("drill --lose esat = %v; want the unknown cluster named, with the linked ones", err)
	}

	// The drill, with a controller restart in the middle of it.
	tr := c.startTraffic()
	tr.wantCount(t, 50)
	o := drillOpts(h)
	o.Apply, o.For, o.By = true, 8*time.Second, "e2e-operator"
	applied := time.Now()
	if out, err = drill(h, o); err != nil {
		t.Fatalf("drill --apply: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Drill started: cluster east is drained for routing by e2e-operator") {
		t.Errorf("drill --apply printed %q", out)
	}
	link, err := h.getLink(ctx)
	if err != nil || link.Spec.Drill == nil {
		t.Fatalf("no drill recorded on the Link: %+v, %v", link.Spec.Drill, err)
	}
	until := link.Spec.Drill.Until.Time
	h.wantWeight("the drill drains east", "podinfo-east", 0)
	h.eventually("traffic left east", func(context.Context) error {
		recs := tr.snapshot()
		if last := lastEast(recs, applied, until); time.Since(last) < compoundSettle/2 {
			return fmt.Errorf("east had a request %s ago", time.Since(last).Round(time.Millisecond))
		}
		return nil
	})
	h.eventually("then east's mirror is drained too", func(ctx context.Context) error { return mirrorReady(ctx, h, false) })
	westCtl := s.west
	h.eventually("the drill shows in /status, the Link's condition and the metrics", func(ctx context.Context) error {
		return drillShows(h, westCtl, true, "")
	})

	// Restart west's controller mid-drill: the new one finds the drill in
	// the API and keeps east drained until its end.
	s.west.stop()
	s.west = h.run(bed.Plane("west"), s.west.mutate)
	westCtl = s.west
	h.eventually("the new controller's caches synced", func(ctx context.Context) error {
		if !westCtl.ctl.Manager.GetCache().WaitForCacheSync(ctx) {
			return errors.New("caches not synced")
		}
		return nil
	})
	if time.Until(until) < time.Second {
		t.Fatalf("the controller restart took until %s before the drill's end; the drill is too short for this machine now", time.Until(until))
	}
	h.eventually("the restarted controller shows the drill", func(ctx context.Context) error {
		return drillShows(h, westCtl, true, "")
	})

	// The end: east answers again, with nobody asking.
	h.eventually("east answers after the drill's end", func(context.Context) error {
		if firstEast(tr.snapshot(), until).IsZero() {
			return fmt.Errorf("no answer from east since %s", until.Format("15:04:05"))
		}
		return nil
	})
	recs := tr.finish()
	movedAt := lastEast(recs, applied, until)
	backAt := firstEast(recs, until)
	moved, back := movedAt.Sub(applied), backAt.Sub(until)
	t.Logf("drill: --apply to traffic moved %s; drill's end to traffic back %s; %d requests, %d failed during the drill, %d failed after it (controller restarted mid-drill)",
		moved.Round(time.Millisecond), back.Round(time.Millisecond), len(recs), failedBetween(recs, applied, until), failedBetween(recs, until, recs[len(recs)-1].sent.Add(1)))
	if moved > drillTarget || back > drillTarget {
		t.Errorf("moves took %s and %s; target %s each", moved, back, drillTarget)
	}
	if n := failedBetween(recs, applied, recs[len(recs)-1].sent.Add(1)); n > 0 {
		t.Errorf("%d requests failed from the drill on (first: %s); a drill fails over before the cluster goes", n, firstFailures(recs, applied))
	}
	h.wantWeight("restored", "podinfo-east", 50)
	h.eventually("east's mirror is ready again", func(ctx context.Context) error { return mirrorReady(ctx, h, true) })
	h.eventually("the drill's end shows", func(ctx context.Context) error { return drillShows(h, westCtl, false, "expired") })
	wantDrillEvents(h, map[string]int{controller.EventDrillStarted: 1, controller.EventDrillExpired: 1})

	// --stop ends a drill early; who stops it comes from the API server.
	o.For = time.Hour
	if out, err = drill(h, o); err != nil {
		t.Fatalf("second drill: %v\n%s", err, out)
	}
	h.wantWeight("the second drill drains east", "podinfo-east", 0)
	stop := cli.DefaultDrillOptions()
	stop.Stop, stop.Namespace = true, h.ctrlNS
	if out, err = drill(h, stop); err != nil || !strings.Contains(out, "Stopped the drill on "+h.ctrlNS+"/east") {
		t.Fatalf("drill --stop = %v:\n%s", err, out)
	}
	h.wantWeight("stopped early", "podinfo-east", 50)
	h.eventually("the stop shows", func(ctx context.Context) error { return drillShows(h, westCtl, false, "stopped") })
	if l, err := h.getLink(ctx); err != nil || l.Spec.Drill.StoppedBy == "" {
		t.Errorf("stoppedBy %q (%v); want the user the API server knows", l.Spec.Drill.StoppedBy, err)
	}
	wantDrillEvents(h, map[string]int{controller.EventDrillStarted: 2, controller.EventDrillExpired: 1, controller.EventDrillStopped: 1})
	if out, err = drill(h, stop); err != nil || !strings.Contains(out, "No drill is active") {
		t.Errorf("a second --stop = %v:\n%s", err, out)
	}

	// With failover off, losing east would send its half of the requests
	// nowhere: --apply refuses, and writes nothing, unless --force.
	update(h, h.west, s.userMaps[0].DeepCopyObject().(client.Object), func(m client.Object) {
		a := m.GetAnnotations()
		a["crossmap.io/failover"] = "off"
		m.SetAnnotations(a)
	})
	before, _ = h.getLink(ctx)
	o.For = time.Minute
	out, err = drill(h, o)
	if !errors.Is(err, cli.ErrDrillRefused) || !strings.Contains(err.Error(), h.ns+"/podinfo") || !strings.Contains(out, "AT RISK: 50% of requests still sent to lost backends (failover off)") {
		t.Errorf("drill --apply with failover off = %v:\n%s\nwant it refused, naming the route", err, out)
	}
	if after, err := h.getLink(ctx); err != nil || after.ResourceVersion != before.ResourceVersion {
		t.Errorf("a refused drill wrote the Link (resourceVersion %s -> %s, %v)", before.ResourceVersion, after.ResourceVersion, err)
	}
	s.wantUserMappingsNotCrossmaps()
}

// wantUserMappingsNotCrossmaps is wantUserObjectsUnchanged for a test
// that changed the user's Mapping itself: crossmap manages no field of it.
func (s *story) wantUserMappingsNotCrossmaps() {
	s.h.t.Helper()
	for _, o := range s.userMaps {
		cur := o.DeepCopyObject().(client.Object)
		if err := s.h.west.Get(context.Background(), client.ObjectKeyFromObject(o), cur); err != nil {
			s.h.t.Fatal(err)
		}
		for _, mf := range cur.GetManagedFields() {
			if mf.Manager == crossmapv1.ManagedBy {
				s.h.t.Errorf("crossmap manages fields of the user's %s: %+v", client.ObjectKeyFromObject(o), mf)
			}
		}
	}
}

// drillShows checks what the controller ctl says of east's drill: active,
// or ended as ended says, in /status (the model), the Link's Drill
// condition and the metrics; and that a drill leaves the gateway's own
// verdict alone.
func drillShows(h *harness, ctl *runningCtl, active bool, ended string) error {
	l, err := h.getLink(context.Background())
	if err != nil {
		return err
	}
	want := "True/" + controller.ReasonDrillActive
	if !active {
		want = "False/" + map[string]string{"expired": controller.ReasonDrillExpired, "stopped": controller.ReasonDrillStopped}[ended]
	}
	if got := condition(l, crossmapv1.ConditionDrill); got != want {
		return fmt.Errorf("Link condition Drill = %s, want %s", got, want)
	}
	if got := condition(l, crossmapv1.ConditionGatewayAlive); got != "True/"+controller.ReasonProbeSucceeded {
		return fmt.Errorf("GatewayAlive = %s during a drill; the gateway answers its probe", got)
	}
	v := ctl.ctl.Model.View()
	i := slices.IndexFunc(v.Links, func(sl status.Link) bool { return sl.Name == "east" && sl.Namespace == h.ctrlNS })
	if i < 0 || v.Links[i].Drill == nil {
		return fmt.Errorf("/status has no drill on Link east: %+v", v.Links)
	}
	d := v.Links[i].Drill
	if d.Active != active || d.Ended != ended || d.By != "e2e-operator" || d.Until.IsZero() {
		return fmt.Errorf("/status drill %+v, want active %v, ended %q, by e2e-operator", d, active, ended)
	}
	if got := counter(h.t, ctl.reg, "crossmap_drill_active", map[string]string{"cluster": "east"}); got != boolGauge(active) {
		return fmt.Errorf("crossmap_drill_active{cluster=east} = %v, want %v", got, boolGauge(active))
	}
	if got := counter(h.t, ctl.reg, "crossmap_drill_until_timestamp_seconds", map[string]string{"cluster": "east"}); got != float64(d.Until.Unix()) {
		return fmt.Errorf("crossmap_drill_until_timestamp_seconds{cluster=east} = %v, want %d", got, d.Until.Unix())
	}
	if active {
		r, ok := ctl.ctl.Model.Route(h.ns + "/podinfo")
		if !ok || !slices.ContainsFunc(r.Backends, func(b mapper.RouteBackend) bool {
			return b.Cluster == "east" && b.Effective == 0 && b.Reason == "cluster east is drained by a drill"
		}) {
			return fmt.Errorf("/status route %+v does not say east is drained by a drill", r.Backends)
		}
	}
	return nil
}

// mirrorReady checks that every endpoint of east's podinfo mirror in west
// is ready, or that none is.
func mirrorReady(ctx context.Context, h *harness, ready bool) error {
	var slices discoveryv1.EndpointSliceList
	if err := h.west.List(ctx, &slices, client.InNamespace(h.ns), client.MatchingLabels{discoveryv1.LabelServiceName: "podinfo-east"}); err != nil {
		return err
	}
	n := 0
	for _, es := range slices.Items {
		for _, ep := range es.Endpoints {
			n++
			if ptr.Deref(ep.Conditions.Ready, true) != ready {
				return fmt.Errorf("mirror endpoint %v ready=%v, want %v", ep.Addresses, !ready, ready)
			}
		}
	}
	if n == 0 {
		return errors.New("the mirror has no endpoints")
	}
	return nil
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// wantDrillEvents waits until the Link has exactly the given number of
// Events of each drill reason, and checks it has no more.
func wantDrillEvents(h *harness, want map[string]int) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("drill Events %v on the Link", want), func(ctx context.Context) error {
		got := map[string]int{}
		for _, e := range h.events(h.west, h.ctrlNS) {
			if e.InvolvedObject.Kind == "Link" && e.InvolvedObject.Name == "east" && strings.HasPrefix(e.Reason, "Drill") {
				got[e.Reason] += max(1, int(e.Count))
				if e.Type != corev1.EventTypeNormal {
					return fmt.Errorf("Event %s is %s", e.Reason, e.Type)
				}
			}
		}
		for k, n := range want {
			if got[k] != n {
				return fmt.Errorf("Events %v, want %v", got, want)
			}
		}
		return nil
	})
}

// TestDrillRecordValidation: the API server itself refuses a drill record
// that could not end, or would last too long, with a message that says so.
func TestDrillRecordValidation(t *testing.T) {
	h := newBareHarness(t)
	h.create(h.west, &crossmapv1.Link{ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: "east"},
		Spec: crossmapv1.LinkSpec{ClusterName: "east", CredentialsSecret: crossmapv1.SecretKeyRef{Name: "east-credentials"},
			Gateway: crossmapv1.GatewaySpec{Addresses: []string{gatewayIP}}}})
	start := "2026-12-03T13:00:00Z"
	for _, c := range []struct {
		drill string
		want  string
	}{
		{`{"by":"alice","startedAt":"` + start + `","until":"2026-12-03T12:59:59Z"}`, "until must be after startedAt"},
		{`{"by":"alice","startedAt":"` + start + `","until":"2026-12-04T13:00:01Z"}`, "a drill lasts at most 24h"},
		{`{"by":"alice","startedAt":"` + start + `","until":"2026-12-03T13:10:00Z","stoppedAt":"2026-12-03T12:00:00Z"}`, "stoppedAt must not be before startedAt"},
		{`{"startedAt":"` + start + `","until":"2026-12-03T13:10:00Z"}`, "spec.drill.by: Required value"},
		{`{"by":"alice","startedAt":"` + start + `","until":"2026-12-03T13:10:00Z"}`, ""},
	} {
		l := &crossmapv1.Link{ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: "east"}}
		err := h.west.Patch(context.Background(), l, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"drill":`+c.drill+`}}`)))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("drill %s refused: %v", c.drill, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("drill %s: %v; want it refused with %q", c.drill, err, c.want)
		}
	}
}

// TestDrillAsOperator: an operator bound to nothing but the ClusterRole
// manifests/rbac/drill_cluster_role.yaml can answer the what-if, start a
// drill and stop it, and the record names them as the API server knows
// them, not as they typed it.
func TestDrillAsOperator(t *testing.T) {
	h := newBareHarness(t)
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join(manifestsDir(t), "rbac", "drill_cluster_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(raw, role); err != nil {
		t.Fatal(err)
	}
	role.Name += "-" + h.id
	user := "drill-operator-" + h.id
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}}}
	for _, o := range []client.Object{role, binding} {
		h.create(h.west, o)
		t.Cleanup(func() { _ = h.west.Delete(ctx, o) })
	}
	h.create(h.west, &crossmapv1.Link{ObjectMeta: metav1.ObjectMeta{Namespace: h.ctrlNS, Name: "east"},
		Spec: crossmapv1.LinkSpec{ClusterName: "east", CredentialsSecret: crossmapv1.SecretKeyRef{Name: "east-credentials"},
			Gateway: crossmapv1.GatewaySpec{Addresses: []string{gatewayIP}}}})

	cfg := rest.CopyConfig(bed.Plane("west").Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	op, err := client.New(cfg, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	run := func(o cli.DrillOptions) (string, error) {
		var out bytes.Buffer
		err := cli.RunDrill(ctx, op, o, time.Now(), &out)
		return out.String(), err
	}
	o := drillOpts(h)
	// The authorizer picks a new binding up a moment after it is written.
	h.eventually("the what-if, as the operator", func(context.Context) error {
		_, err := run(o)
		return err
	})
	o.Apply, o.For = true, time.Minute
	if out, err := run(o); err != nil {
		t.Fatalf("drill --apply as the operator: %v\n%s", err, out)
	}
	stop := o
	stop.Apply, stop.Stop = false, true
	if out, err := run(stop); err != nil {
		t.Fatalf("drill --stop as the operator: %v\n%s", err, out)
	}
	l, err := h.getLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := l.Spec.Drill; d == nil || d.By != user || d.StoppedBy != user || d.StoppedAt == nil {
		t.Errorf("drill record %+v; want started and stopped by %s", d, user)
	}
}

// TestDrillLeaderChange: west runs two leader-elected replicas; the
// leader that started the drill stops in the middle of it, and the standby
// that takes over ends the drill on time and says so once.
func TestDrillLeaderChange(t *testing.T) {
	s := newStoryWith(t, storyOptions{
		annotations: func(string) map[string]string {
			return map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}
		},
		west: func(c *controller.Config) { c.LeaderElect = true },
		link: func(l *crossmapv1.Link) { l.Spec.Probe = &crossmapv1.ProbeSpec{} },
	})
	h := s.h
	h.wantWeight("split configured", "podinfo-east", 50)
	standby := h.run(bed.Plane("west"), s.west.mutate)

	o := drillOpts(h)
	o.Apply, o.For, o.By = true, 8*time.Second, "e2e-operator"
	if out, err := drill(h, o); err != nil {
		t.Fatalf("drill --apply: %v\n%s", err, out)
	}
	h.wantWeight("the drill drains east", "podinfo-east", 0)
	l, err := h.getLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	until := l.Spec.Drill.Until.Time

	s.west.stop()
	select {
	case <-standby.ctl.Manager.Elected():
	case <-time.After(45 * time.Second):
		t.Fatal("the standby was not elected within 45s of the leader stopping")
	}
	if time.Until(until) < 0 {
		t.Fatalf("the standby led only %s after the drill's end; the drill is too short for this machine now", -time.Until(until))
	}
	h.wantWeight("the standby gives east its weight back at the drill's end", "podinfo-east", 50)
	back := time.Since(until)
	t.Logf("leader change mid-drill: east's generated Mapping had its weight back at most %s after the drill's end", back.Round(time.Millisecond))
	if back < 0 {
		t.Errorf("east got its weight back %s before the drill's end", -back)
	}
	h.eventually("the standby shows the drill's end", func(ctx context.Context) error { return drillShows(h, standby, false, "expired") })
	wantDrillEvents(h, map[string]int{controller.EventDrillStarted: 1, controller.EventDrillExpired: 1})
}
