package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// This file writes what linkStatus decided: the Link's status, and an
// Event and a log line for every condition that changed.

// writeStatus writes the Link's status only when it changed, so that a
// steady state makes no writes at all.
func (r *LinkReconciler) writeStatus(ctx context.Context, link *crossmapv1.Link) error {
	var cur crossmapv1.Link
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(link), &cur); err != nil {
		return client.IgnoreNotFound(err)
	}
	link.Status.ObservedGeneration = link.Generation
	if equality.Semantic.DeepEqual(cur.Status, link.Status) || r.Applier.DryRun {
		return nil
	}
	before := cur.Status.DeepCopy()
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Status = link.Status
	r.Metrics.Writes.WithLabelValues("status").Inc()
	if err := r.Client.Status().Patch(ctx, &cur, patch); err != nil {
		return fmt.Errorf("update link status: %w", err)
	}
	r.recordTransitions(ctx, &cur, before.Conditions)
	r.recordDrill(ctx, &cur, before.Conditions)
	return nil
}

// recordTransitions records an Event and a log line for every condition
// whose status changed, so that "the gateway died at 10:42" can be read
// from kubectl describe long after the condition has recovered.
func (r *LinkReconciler) recordTransitions(ctx context.Context, link *crossmapv1.Link, before []metav1.Condition) {
	for _, c := range link.Status.Conditions {
		if c.Type == crossmapv1.ConditionDrill {
			continue // recordDrill tells of drills
		}
		old := meta.FindStatusCondition(before, c.Type)
		// A new reason for the same failure (UnknownCA, then
		// CertificateExpired) is news too.
		if old != nil && old.Status == c.Status && (c.Status == metav1.ConditionTrue || old.Reason == c.Reason) {
			continue
		}
		typ := corev1.EventTypeNormal
		if c.Status != metav1.ConditionTrue {
			typ = corev1.EventTypeWarning
		}
		if old == nil && c.Status != metav1.ConditionFalse {
			// A Link that starts healthy, or not checked yet (no probe,
			// still connecting), is not news.
			continue
		}
		log.FromContext(ctx).Info("Link condition changed", "condition", c.Type, "status", c.Status, "reason", c.Reason, "message", c.Message)
		r.Reporter.Recorder.Eventf(link, typ, c.Reason, "%s is %s: %s", c.Type, c.Status, c.Message)
	}
}
