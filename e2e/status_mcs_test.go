package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	"github.com/crossmap/crossmap/internal/cli"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/status"
)

// TestStatusMCS: issue 15. With the MCS role on, west's status API, its
// page and `crossmap status` show west's ServiceExport with the KEP's three
// conditions as crossmap wrote them on the object, and the ServiceImport
// with its clusterset IP and both clusters behind it (east through the
// Link, west itself: KEP-1645 "Importing Services", the self-import), each
// with the endpoints of its EndpointSlices.
func TestStatusMCS(t *testing.T) {
	h := newBareHarness(t)
	mcs := func(c *controller.Config) { c.MCS = true }
	h.startControllers(mcs, mcs)
	h.exportService("podinfo", []int32{9898}, "10.244.17.1")
	h.localService("podinfo", 9898, "10.244.18.1", "10.244.18.2")
	h.create(h.east, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "podinfo"}})
	h.create(h.west, &mcsv1beta1.ServiceExport{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "podinfo"}})
	h.link(nil)
	west := "west-" + h.id
	key := h.ns + "/podinfo"
	base := h.statusURL()

	var imp status.Import
	h.eventually("status API shows west's export and the import of east and west", func(ctx context.Context) error {
		var ex status.Export
		if err := statusGetJSON(ctx, base+"/status/exports/"+key, http.StatusOK, &ex); err != nil {
			return err
		}
		var errs []string
		for typ, want := range map[string]string{"Valid": "True/Valid", "Ready": "True/Ready", "Conflict": "False/NoConflicts"} {
			if c, ok := ex.Condition(typ); !ok || c.Status+"/"+c.Reason != want {
				errs = append(errs, fmt.Sprintf("export %s: %s is %+v; want %s", key, typ, c, want))
			}
		}
		imp = status.Import{}
		if err := statusGetJSON(ctx, base+"/status/imports/"+key, http.StatusOK, &imp); err != nil {
			return err
		}
		want := []status.ImportCluster{
			{Cluster: "east", Endpoints: 1, ReadyEndpoints: 1}, // east's gateway
			{Cluster: west, Local: true, Endpoints: 2, ReadyEndpoints: 2},
		}
		slices.SortFunc(imp.Clusters, func(a, b status.ImportCluster) int { return strings.Compare(a.Cluster, b.Cluster) })
		if imp.Type != "ClusterSetIP" || len(imp.IPs) != 1 || !slices.Equal(imp.Clusters, want) {
			errs = append(errs, fmt.Sprintf("import %s = %+v; want ClusterSetIP with one IP and clusters %+v", key, imp, want))
		}
		if c, ok := findImportCondition(imp, "Ready"); !ok || !c.IsTrue() {
			errs = append(errs, fmt.Sprintf("import %s: Ready is %+v; want True", key, c))
		}
		return joinErrs(errs)
	})

	// The status API says what the objects say, once crossmap wrote them
	// (the status API shows what the reconcile computed, before its apply).
	h.eventually("status API's clusterset IP is the ServiceImport's", func(ctx context.Context) error {
		var si mcsv1beta1.ServiceImport
		if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &si); err != nil {
			return err
		}
		if !slices.Equal(si.Spec.IPs, imp.IPs) {
			return fmt.Errorf("status API's clusterset IP %v; the ServiceImport's spec.ips is %v", imp.IPs, si.Spec.IPs)
		}
		return nil
	})
	// The conditions are those crossmap wrote on the ServiceExport, since
	// their transition times (the status API catches up with the write on
	// the reconcile the write triggers).
	h.eventually("status API's export conditions are the ServiceExport's", func(ctx context.Context) error {
		var se mcsv1beta1.ServiceExport
		if err := h.west.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &se); err != nil {
			return err
		}
		var ex status.Export
		if err := statusGetJSON(ctx, base+"/status/exports/"+key, http.StatusOK, &ex); err != nil {
			return err
		}
		var errs []string
		for _, typ := range []string{"Valid", "Ready", "Conflict"} {
			got, _ := ex.Condition(typ)
			want := metaCondition(se.Status.Conditions, typ)
			if want == nil || got.Status != string(want.Status) || got.Reason != want.Reason || got.Message != want.Message ||
				!got.Since.Equal(want.LastTransitionTime.Time) {
				errs = append(errs, fmt.Sprintf("status API's %s condition %+v; the ServiceExport has %+v", typ, got, want))
			}
		}
		return joinErrs(errs)
	})

	resp, body, err := statusCall(t.Context(), http.MethodGet, base+"/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %v %v", resp, err)
	}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if rows := domElements(doc, "data-export", key); len(rows) != 1 || domAttr(rows[0], "data-health") != "ok" {
		t.Errorf("the page has %d rows for export %s (want 1, health ok)", len(rows), key)
	}
	if rows := domElements(doc, "data-import", key); len(rows) != 1 || len(domElements(rows[0], "data-import-cluster", "")) != 2 {
		t.Errorf("the page has %d rows for import %s (want 1, with two clusters)", len(rows), key)
	}

	var out bytes.Buffer
	if err := cli.ShowStatus(t.Context(), cli.StatusOptions{Server: base, Output: cli.OutputTable}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Service exports (1):", key + "  yes    yes    no        -",
		"Service imports (1):", "ClusterSetIP  " + imp.IPs[0] + "  http-0:9898/TCP  east 1/1; " + west + " (local) 2/2",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("crossmap status does not show %q:\n%s", want, out.String())
		}
	}
}

func findImportCondition(i status.Import, typ string) (status.Condition, bool) {
	for _, c := range i.Conditions {
		if c.Type == typ {
			return c, true
		}
	}
	return status.Condition{}, false
}

func metaCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}
