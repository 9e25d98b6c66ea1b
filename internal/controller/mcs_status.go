package controller

import (
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// publish hands what the MCS role computed to the status API: this
// cluster's ServiceExports with their conditions, and the ServiceImports
// with the endpoints of their slices per source cluster. The status model
// has one writer per fact, and this is the writer of these.
//
// res's conditions are those in force (see inForce in Reconcile), with the
// transition times the status writes give them, so that the status API
// says since when a conflict stands from the reconcile that found it.
func (r *MCSReconciler) publish(res mapper.MCSResult) {
	if r.Reporter == nil || r.Reporter.Model == nil {
		return
	}
	r.Reporter.Model.SetExports(status.ExportsFrom(res.Exports))
	r.Reporter.Model.SetImports(status.ImportsFrom(res.Imports, res.Objects, r.Config.ClusterName))
}
