package controller

import (
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/explain"
	"github.com/crossmap/crossmap/mapper"
)

// recordRouting hands the status model what GET /explain reads: the
// snapshot this reconcile translated, so that an explanation is of the
// same state /status reports, and the gateway identity of every Link (the
// Links the snapshot was read with).
func (r *RouteReconciler) recordRouting(snap mapper.RouteSnapshot, links []crossmapv1.Link) {
	ids := make(map[string]string, len(links))
	for i := range links {
		l := &links[i]
		ids[l.Namespace+"/"+l.Name] = linkIdentity(l)
	}
	r.Model.SetRouting(explain.Input{Snapshot: snap, Cluster: r.Config.ClusterName, Identities: ids})
}
