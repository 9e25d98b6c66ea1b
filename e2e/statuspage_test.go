package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// measureScript is added to the page by the test alone (the page itself
// carries no script): run by the browser after layout, it writes what the
// test checks into the DOM, which --dump-dom then prints.
const measureScript = `<script>
(function () {
  var de = document.documentElement, vw = de.clientWidth;
  var out = {viewport: vw, scrollWidth: de.scrollWidth, tables: [], wide: []};
  document.querySelectorAll("table").forEach(function (t) {
    var r = t.getBoundingClientRect(), s = t.closest("section");
    out.tables.push({section: s ? s.id : "", right: r.right, sectionRight: s ? s.getBoundingClientRect().right : vw, scrollWidth: t.scrollWidth, clientWidth: t.clientWidth});
  });
  document.querySelectorAll("body *").forEach(function (e) {
    var r = e.getBoundingClientRect();
    if (r.right > vw + 0.5) out.wide.push(e.tagName.toLowerCase() + "." + e.className + " right=" + Math.round(r.right));
  });
  var pre = document.createElement("pre");
  pre.id = "layout-report";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>`

// layoutReport is what measureScript writes.
type layoutReport struct {
	Viewport    float64 `json:"viewport"`
	ScrollWidth float64 `json:"scrollWidth"`
	Tables      []struct {
		Section      string  `json:"section"`
		Right        float64 `json:"right"`
		SectionRight float64 `json:"sectionRight"`
		ScrollWidth  float64 `json:"scrollWidth"`
		ClientWidth  float64 `json:"clientWidth"`
	} `json:"tables"`
	Wide []string `json:"wide"`
}

// longView is a status page with the longest values the page must show:
// names at Kubernetes' limits, several gateway DNS names, a gateway identity,
// long errors without spaces to break at, a long reason.
func longView(now time.Time) *status.Model {
	m := status.NewModel()
	ns := "crossmap-system-of-the-platform-team-in-the-eu-central-region"      // 63
	cluster := "eu-central-production-zone-b"                                  // 28, under the 30 allowed
	linkName := "link-to-the-eu-central-production-cluster-zone-b-via-gateway" // 61
	identity := cluster + ".crossmap-gateway.svc.cluster.local"
	m.SetLink(status.Link{
		Namespace: ns, Name: linkName, Cluster: cluster, Mode: "gateway",
		RemoteReachable: false, GatewayAlive: false, GatewayProbed: true, ProbeLatency: "1.234567891s",
		LastError: "Get \"https://api.eu-central-production-zone-b.k8s.internal.example.com:6443/api/v1/services?labelSelector=crossmap.io%2Fexport%3Dtrue&limit=500&resourceVersion=0\": " +
			"dial tcp: lookup api.eu-central-production-zone-b.k8s.internal.example.com on 10.96.0.10:53: read udp 10.244.0.17:41234->10.96.0.10:53: i/o timeout",
		GatewayAddresses: []string{"gw-1.eu-central-production-zone-b.lb.internal.example.com", "gw-2.eu-central-production-zone-b.lb.internal.example.com", "2001:db8:ffff:ffff:ffff:ffff:ffff:fffe"},
		MirroredServices: []string{"payments/checkout-api-" + cluster},
		LastSync:         now.Add(-time.Minute),
		TLS: &status.LinkTLS{Mode: "mutual", Identity: identity, Reason: "IdentityMismatch",
			LastError:         "x509: certificate is valid for other-cluster.crossmap-gateway.svc.cluster.local, not " + identity,
			GatewayCertExpiry: now.Add(20 * time.Hour)},
	})
	m.SetLink(status.Link{Namespace: ns, Name: "east", Cluster: "east", Mode: "flat", RemoteReachable: true, MirroredServices: []string{}})
	svcNS := "payments-and-billing-services-for-the-european-customers-prod" // 61
	mirror := "checkout-api-with-a-name-as-long-as-kubernetes-allows-" + cluster
	m.SetServices(ns+"/"+linkName, []status.Service{{
		Namespace: svcNS, Name: mirror[:63], Link: ns + "/" + linkName, Cluster: cluster,
		Source: svcNS + "/checkout-api-with-a-name-as-long-as-kubernetes-allows", Mode: "gateway",
		Endpoints: 1200, ReadyEndpoints: 1199, Ready: true, Lag: "1.234567891s", LastSync: now,
	}})
	m.SetRoutes([]status.Route{{Namespace: svcNS, Name: "checkout-api-with-a-name-as-long-as-kubernetes-allows", Failover: "local-first",
		Backends: []mapper.RouteBackend{
			{Service: svcNS + "/checkout-api-with-a-name-as-long-as-kubernetes-allows", Configured: 40, Effective: 100, Healthy: true,
				Reason: "takes the share of unhealthy remote backends (gateway of cluster " + cluster + " is dead, and the remote Service has no ready endpoints)"},
			{Cluster: cluster, Service: svcNS + "/" + mirror[:63], Configured: 60, Effective: 0, Reason: "gateway of cluster " + cluster + " is dead"},
			{Cluster: "dev-alice-with-a-long-name-too", Service: svcNS + "/" + mirror[:63], Healthy: true, Header: "x-crossmap-cluster-with-a-long-header-name: dev-alice-with-a-long-name-too"},
		}}})
	m.SetProblems("link/"+ns+"/"+linkName, []mapper.Problem{{Reason: "IdentityMismatch",
		Object:  mapper.ObjectRef{Kind: "Link", Namespace: ns, Name: linkName},
		Message: "gateway gw-1.eu-central-production-zone-b.lb.internal.example.com:4143 presented a certificate for other-cluster.crossmap-gateway.svc.cluster.local; want " + identity + ";" + strings.Repeat("x", 300)}}, now)
	// Issue 15: an export in conflict with a long message and several
	// reasons, and an import with two clusterset IPs, many ports and
	// clusters with names at their limits.
	m.SetExports([]status.Export{{Namespace: svcNS, Name: "checkout-api-with-a-name-as-long-as-kubernetes-allows", Conditions: []status.Condition{
		{Type: "Valid", Status: "True", Reason: "Valid"},
		{Type: "Ready", Status: "True", Reason: "Ready"},
		{Type: "Conflict", Status: "True", Reason: "PortConflict,TypeConflict,SessionAffinityConflict,InternalTrafficPolicyConflict",
			Message: "Conflicting ports, type (headless or not), session affinity, internal traffic policy across the clusters exporting " +
				svcNS + "/checkout-api-with-a-name-as-long-as-kubernetes-allows: the values of the oldest ServiceExport, in cluster " + cluster +
				", are used. 2 of 3 clusters export it otherwise than so merged: dev-alice-with-a-long-name-too, " + cluster + "."},
	}}})
	var ports []status.ImportPort
	for i := range 12 {
		ports = append(ports, status.ImportPort{Name: fmt.Sprintf("port-with-a-long-name-%02d", i), Protocol: "TCP", Port: int32(30000 + i)})
	}
	m.SetImports([]status.Import{{Namespace: svcNS, Name: "checkout-api-with-a-name-as-long-as-kubernetes-allows", Type: "ClusterSetIP",
		IPs: []string{"10.96.123.234", "fd00:1234:5678:9abc:def0:1234:5678:9abc"}, Ports: ports,
		Clusters: []status.ImportCluster{{Cluster: cluster, Endpoints: 1200, ReadyEndpoints: 1199},
			{Cluster: "dev-alice-with-a-long-name-too", Endpoints: 1}, {Cluster: "a-cluster-name-of-thirty-chars", Local: true, Endpoints: 3, ReadyEndpoints: 3}},
		Conditions: []status.Condition{{Type: "Ready", Status: "False", Reason: "IPFamilyNotSupported"}}}})
	m.SetTrust(status.Trust{Mode: "mutual", TrustAnchor: ns + "/crossmap-trust-anchor", TrustAnchorExpiry: now.Add(3650 * 24 * time.Hour),
		Certificates: []status.Certificate{{Secret: "crossmap-gateway-tls", Usage: "server", Identity: "a-cluster-name-of-thirty-chars.crossmap-gateway.svc.cluster.local",
			NotAfter: now.Add(24 * time.Hour), RenewAt: now.Add(16 * time.Hour)}}})
	return m
}

// TestStatusPageFits: in a 1280-pixel-wide window the status page has no
// horizontal scrolling and every table ends inside the window, with the
// longest names, addresses and errors it may have to show.
func TestStatusPageFits(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the status page test needs a browser: install Debian's chromium (apt-get install chromium): %v", err)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	page := (&status.Server{Model: longView(now), Now: func() time.Time { return now }}).Handler()
	// The page as the status API serves it, with the measuring script added
	// before </body>.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		page.ServeHTTP(rec, r)
		body := rec.Body.String()
		if rec.Code != http.StatusOK || !strings.Contains(body, "</body>") {
			http.Error(w, fmt.Sprintf("status page: %d %s", rec.Code, body), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, strings.Replace(body, "</body>", measureScript+"</body>", 1))
	}))
	t.Cleanup(srv.Close)

	dom := runChromium(t, "--window-size=1280,900", "--dump-dom", srv.URL+"/")
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("parse the DOM chromium dumped: %v", err)
	}
	reports := domElements(doc, "id", "layout-report")
	if len(reports) != 1 {
		t.Fatalf("the page has %d layout reports; want 1 (did the measuring script run?):\n%s", len(reports), dom)
	}
	var rep layoutReport
	if err := json.NewDecoder(bytes.NewReader([]byte(domText(reports[0])))).Decode(&rep); err != nil {
		t.Fatalf("decode the layout report %q: %v", domText(reports[0]), err)
	}
	t.Logf("layout at 1280 px: %+v", rep)
	// The viewport is the window less a vertical scrollbar, if any.
	if rep.Viewport < 1200 || rep.Viewport > 1280 {
		t.Fatalf("viewport %v px wide; want the 1280-pixel window's", rep.Viewport)
	}
	if rep.ScrollWidth > rep.Viewport {
		t.Errorf("the page is %v px wide in a %v px viewport: it scrolls horizontally", rep.ScrollWidth, rep.Viewport)
	}
	if want := []string{"links", "routes", "services", "exports", "imports", "trust"}; len(rep.Tables) < len(want) {
		t.Errorf("%d tables measured; want one in each of %v at least", len(rep.Tables), want)
	}
	for _, tb := range rep.Tables {
		if tb.Right > rep.Viewport {
			t.Errorf("a table of section %q ends at %v px, past the %v px viewport", tb.Section, tb.Right, rep.Viewport)
		}
		if tb.Right > tb.SectionRight+0.5 {
			t.Errorf("a table of section %q ends at %v px, past its section's %v px", tb.Section, tb.Right, tb.SectionRight)
		}
		if tb.ScrollWidth > tb.ClientWidth {
			t.Errorf("a table of section %q holds %v px of content in %v px", tb.Section, tb.ScrollWidth, tb.ClientWidth)
		}
	}
	if len(rep.Wide) > 0 {
		t.Errorf("elements reach past the viewport: %q", rep.Wide)
	}
	// The long values are on the page, not cut away.
	for _, want := range []string{"link-to-the-eu-central-production-cluster-zone-b-via-gateway", "i/o timeout", "gw-2.eu-central-production-zone-b.lb.internal.example.com",
		"PortConflict,TypeConflict", "fd00:1234:5678:9abc:def0:1234:5678:9abc", "port-with-a-long-name-11"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
}
