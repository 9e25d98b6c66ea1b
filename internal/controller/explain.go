package controller

import (
	"context"
	"fmt"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/explain"
	"github.com/crossmap/crossmap/mapper"
)

// recordRouting hands the status model what GET /explain reads: the
// snapshot this reconcile translated, so that an explanation is of the
// same state /status reports, and the gateway identity of every Link
// (read from the cache, as the snapshot's Links are).
func (r *RouteReconciler) recordRouting(ctx context.Context, snap mapper.RouteSnapshot) error {
	var links crossmapv1.LinkList
	if err := r.Client.List(ctx, &links); err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	ids := make(map[string]string, len(links.Items))
	for i := range links.Items {
		l := &links.Items[i]
		ids[l.Namespace+"/"+l.Name] = linkIdentity(l)
	}
	r.Model.SetRouting(explain.Input{Snapshot: snap, Cluster: r.Config.ClusterName, Identities: ids})
	return nil
}
