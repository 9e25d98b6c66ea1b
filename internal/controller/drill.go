package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// This file is the controller's side of drills (issue 16): a Link's
// spec.drill drains its cluster for routing until it ends. The record is in
// the API, so what it means at any moment is a pure function of the record
// and the time: a restarted controller or a new leader reads it afresh,
// finds it active or ended, and wakes up at its end (RequeueAfter) without
// remembering anything. The drain goes the way of a dead gateway: the
// route role gives the cluster's backends weight 0 (mapper.LinkHealth.
// Drained), and the import role marks the mirrors' gateway endpoints not
// ready, drillMirrorDelay later.

// Reasons of the Drill condition, and the Events of a drill's life.
const (
	ReasonDrillActive  = "Active"
	ReasonDrillExpired = "Expired"
	ReasonDrillStopped = "Stopped"

	EventDrillStarted = "DrillStarted"
	EventDrillExpired = "DrillExpired"
	EventDrillStopped = "DrillStopped"
)

// drillMirrorDelay is how long after a drill's start its cluster's
// mirrors are drained too. A dead gateway takes both the routes and the
// mirrors' endpoints at once, and the requests an edge sends to the
// cluster between the two writes fail. A drill is a rehearsal and can do
// better: routes first, so that no request goes to an endpoint that is
// not ready, then the mirrors, for in-cluster clients of them. The start
// is recorded to the second, so the mirrors follow 1-2 s after --apply:
// enough for an edge that reconfigures in about a second (Emissary).
// At the end no such care is needed: the route role gives a backend its
// weight back only once its mirror has ready endpoints again.
const drillMirrorDelay = 2 * time.Second

// drillFacts is what a Link's drill record means at one moment.
type drillFacts struct {
	// Spec is the record; nil when the Link has none.
	Spec *crossmapv1.DrillSpec
	// Active is true while it drains the cluster's routes; DrainMirrors
	// while it drains its mirrors too (drillMirrorDelay).
	Active, DrainMirrors bool
	// MirrorsAt is when the mirrors are drained.
	MirrorsAt time.Time
}

// readDrill reads the record d at now, to the nanosecond: the drain ends
// exactly at until, not at the second a truncated clock would give.
func readDrill(d *crossmapv1.DrillSpec, now time.Time) drillFacts {
	f := drillFacts{Spec: d, Active: d.ActiveAt(now)}
	if f.Active {
		f.MirrorsAt = d.StartedAt.Add(drillMirrorDelay)
		f.DrainMirrors = !now.Before(f.MirrorsAt)
	}
	return f
}

// drillCondition is the Link's Drill condition for f: nil when there is no
// record.
func drillCondition(cluster string, f drillFacts) *metav1.Condition {
	d := f.Spec
	if d == nil {
		return nil
	}
	started := fmt.Sprintf("started by %s at %s", d.By, stamp(d.StartedAt.Time))
	switch {
	case f.Active:
		return &metav1.Condition{Type: crossmapv1.ConditionDrill, Status: metav1.ConditionTrue, Reason: ReasonDrillActive,
			Message: fmt.Sprintf("cluster %s is drained for routing until %s (%s)", cluster, stamp(d.Until.Time), started)}
	case d.StoppedAt != nil:
		by := ""
		if d.StoppedBy != "" {
			by = " by " + d.StoppedBy
		}
		return &metav1.Condition{Type: crossmapv1.ConditionDrill, Status: metav1.ConditionFalse, Reason: ReasonDrillStopped,
			Message: fmt.Sprintf("the drill of cluster %s was stopped%s at %s, before %s (%s); the cluster takes traffic again", cluster, by, stamp(d.StoppedAt.Time), stamp(d.Until.Time), started)}
	default:
		return &metav1.Condition{Type: crossmapv1.ConditionDrill, Status: metav1.ConditionFalse, Reason: ReasonDrillExpired,
			Message: fmt.Sprintf("the drill of cluster %s ended at %s (%s); the cluster takes traffic again", cluster, stamp(d.Until.Time), started)}
	}
}

// drillView is the drill in the status API.
func drillView(f drillFacts) *status.LinkDrill {
	d := f.Spec
	if d == nil {
		return nil
	}
	v := &status.LinkDrill{Active: f.Active, By: d.By, StartedAt: d.StartedAt.Time, Until: d.Until.Time, StoppedBy: d.StoppedBy}
	if d.StoppedAt != nil {
		v.StoppedAt = d.StoppedAt.Time
	}
	switch {
	case f.Active:
	case d.StoppedAt != nil:
		v.Ended = "stopped"
	default:
		v.Ended = "expired"
	}
	return v
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// drillRequeue is how long until the drill of f ends, or drains the
// mirrors, when it is active: a reconcile is due then. Zero otherwise.
func drillRequeue(f drillFacts, now time.Time) time.Duration {
	if !f.Active {
		return 0
	}
	next := f.Spec.Until.Sub(now)
	if !f.DrainMirrors {
		next = earlier(next, f.MirrorsAt.Sub(now))
	}
	return next
}

// earlier is the sooner of two requeue delays, zero meaning none.
func earlier(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0 || a < b:
		return a
	}
	return b
}

// recordDrill tells of a drill that started, expired or was stopped: an
// Event on the Link and a log line, when the Link's Drill condition
// changed from before. The condition is written before this is called, so
// each change is told once, also across restarts and leader changes: the
// controller that finds an expired drill still marked active ends it and
// says so.
func (r *LinkReconciler) recordDrill(ctx context.Context, link *crossmapv1.Link, before []metav1.Condition) {
	c := meta.FindStatusCondition(link.Status.Conditions, crossmapv1.ConditionDrill)
	if c == nil {
		return
	}
	old := meta.FindStatusCondition(before, crossmapv1.ConditionDrill)
	if old != nil && old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
		return
	}
	reason, msg := EventDrillStarted, "Drill started"
	switch {
	case c.Status == metav1.ConditionTrue:
	case old == nil || old.Status != metav1.ConditionTrue:
		// An ended drill this controller never saw active (it ended while
		// no crossmap ran, or it is an old record): nothing moved.
		return
	case c.Reason == ReasonDrillStopped:
		reason, msg = EventDrillStopped, "Drill stopped"
	default:
		reason, msg = EventDrillExpired, "Drill expired"
	}
	log.FromContext(ctx).Info(msg, "link", link.Namespace+"/"+link.Name, "cluster", link.Spec.ClusterName, "message", c.Message)
	r.Reporter.Recorder.Event(link, corev1.EventTypeNormal, reason, c.Message)
}

// setDrillMetrics sets the drill series of the Link's cluster.
func (r *LinkReconciler) setDrillMetrics(cluster string, f drillFacts) {
	if f.Spec == nil {
		r.Metrics.DrillActive.DeleteLabelValues(cluster)
		r.Metrics.DrillUntil.DeleteLabelValues(cluster)
		return
	}
	r.Metrics.DrillActive.WithLabelValues(cluster).Set(boolGauge(f.Active))
	r.Metrics.DrillUntil.WithLabelValues(cluster).Set(float64(f.Spec.Until.Unix()))
}

// LinkHealths is what the route translation knows of links at now: each
// one's gateway verdict (from health, the import role of this process,
// when it has one; else the Link's GatewayAlive condition) and whether a
// drill drains it. originTLS names each cluster's TLSContext, for mutual
// TLS. The route role and `crossmap drill`'s what-if both build on it, so
// the what-if is computed exactly as the routes are.
func LinkHealths(links []crossmapv1.Link, now time.Time, health *GatewayHealth, originTLS bool) []mapper.LinkHealth {
	out := make([]mapper.LinkHealth, 0, len(links))
	for i := range links {
		l := &links[i]
		h := mapper.LinkHealth{
			Namespace: l.Namespace, Name: l.Name, Cluster: l.Spec.ClusterName,
			Mode:         linkRef(l).Mode,
			GatewayAlive: !meta.IsStatusConditionFalse(l.Status.Conditions, crossmapv1.ConditionGatewayAlive),
			Drained:      l.Spec.Drill.ActiveAt(now),
		}
		if alive, known := health.Alive(l.Namespace + "/" + l.Name); known {
			h.GatewayAlive = alive
		}
		if originTLS {
			h.OriginTLS = ingress.OriginContextName(l.Spec.ClusterName)
		}
		out = append(out, h)
	}
	return out
}

// nextDrillEnd is how long until the first active drill among links ends,
// or zero when none is active.
func nextDrillEnd(links []crossmapv1.Link, now time.Time) time.Duration {
	var next time.Duration
	for i := range links {
		if d := links[i].Spec.Drill; d.ActiveAt(now) {
			next = earlier(next, d.Until.Sub(now))
		}
	}
	return next
}
