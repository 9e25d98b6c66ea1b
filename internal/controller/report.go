package controller

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// Reporter tells people about Problems, in the three places they look: the
// status API (through the model), an Event on the object, and the log. Each
// problem is reported when it appears and when it goes away, not on every
// reconcile, so that a steady state is quiet.
type Reporter struct {
	Model *status.Model
	// Recorder writes core/v1 Events. The events.k8s.io recorder folds
	// every Event with the same reason on an object into one series that
	// keeps the first note, which would hide a second, different problem
	// behind the first one's message.
	Recorder record.EventRecorder
	Metrics  *Metrics
	Now      func() time.Time
}

// Report records the problems source currently has. regarding picks the
// object each problem's Event is recorded on.
func (r *Reporter) Report(ctx context.Context, source string, problems []mapper.Problem, regarding func(mapper.Problem) client.Object) {
	logger := log.FromContext(ctx)
	added, resolved := r.Model.SetProblems(source, problems, r.Now())
	if len(added) > 0 || len(resolved) > 0 {
		r.Metrics.Problems.Reset()
		for _, p := range r.Model.View().Problems {
			r.Metrics.Problems.WithLabelValues(p.Reason).Inc()
		}
	}
	for _, p := range added {
		logger.Error(p, "Found a problem; the object is skipped until it is fixed", "reason", p.Reason, "object", p.Object.String())
		if obj := regarding(p); obj != nil {
			r.Recorder.Event(obj, corev1.EventTypeWarning, p.Reason, p.Message)
		}
	}
	for _, p := range resolved {
		logger.Info("Problem resolved", "reason", p.Reason, "object", p.Object.String())
		if obj := regarding(p); obj != nil {
			r.Recorder.Event(obj, corev1.EventTypeNormal, "Resolved", "resolved: "+p.Message)
		}
	}
}
