package controller

import (
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// publish hands what the MCS role computed to the status API: this
// cluster's ServiceExports with their conditions, and the ServiceImports
// with the endpoints of their slices per source cluster. The status model
// has one writer per fact, and this is the writer of these.
//
// The translation leaves transition times out; a condition whose status
// the export already has keeps the time it has there, as the status write
// keeps it, so that the status API says since when a conflict stands.
func (r *MCSReconciler) publish(res mapper.MCSResult, current []mcsv1beta1.ServiceExport) {
	if r.Reporter == nil || r.Reporter.Model == nil {
		return
	}
	have := map[[2]string][]metav1.Condition{}
	for _, ex := range current {
		have[[2]string{ex.Namespace, ex.Name}] = ex.Status.Conditions
	}
	exports := make([]mapper.ExportStatus, 0, len(res.Exports))
	for _, e := range res.Exports {
		conds := make([]metav1.Condition, 0, len(e.Conditions))
		for _, c := range e.Conditions {
			if old := meta.FindStatusCondition(have[[2]string{e.Namespace, e.Name}], c.Type); old != nil && old.Status == c.Status {
				c.LastTransitionTime = old.LastTransitionTime
			}
			conds = append(conds, c)
		}
		e.Conditions = conds
		exports = append(exports, e)
	}
	r.Reporter.Model.SetExports(status.ExportsFrom(exports))
	r.Reporter.Model.SetImports(status.ImportsFrom(res.Imports, res.Objects, r.Config.ClusterName))
}
