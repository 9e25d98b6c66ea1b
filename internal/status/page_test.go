package status_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// hostile is a problem whose message and reason try to break out of the
// page's text and attributes.
var hostile = mapper.Problem{
	Reason:  `Bad"><img src=x onerror=alert(1)>`,
	Object:  mapper.ObjectRef{Kind: "Service", Namespace: "test", Name: "evil"},
	Message: `name <script>alert("pwned")</script> & more`,
}

// servePage serves m's page at t0 plus five minutes and returns the page
// parsed, failing the test unless it is a 200 HTML answer.
func servePage(t *testing.T, m *status.Model) (*html.Node, string) {
	t.Helper()
	now := t0.Add(5 * time.Minute)
	srv := httptest.NewServer((&status.Server{Model: m, Now: func() time.Time { return now }}).Handler())
	t.Cleanup(srv.Close)
	resp, body := fetch(t, http.MethodGet, srv.URL+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %d %s; want 200", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET /: Content-Type %q; want text/html; charset=utf-8", ct)
	}
	doc, err := html.Parse(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET /: parse HTML: %v", err)
	}
	return doc, string(body)
}

func TestServerPage(t *testing.T) {
	m := status.NewModel()
	m.SetLink(westLink)
	m.SetLink(eastLink)
	m.SetServices(westLink.Key(), []status.Service{westService, otherService})
	dev := podinfoRoute
	dev.Backends = append(dev.Backends[:2:2], mapper.RouteBackend{Cluster: "west", Service: "test/podinfo-west",
		Healthy: true, Header: "x-crossmap-cluster: west"})
	m.SetRoutes([]status.Route{dev, brokenRoute})
	m.SetProblems("export", []mapper.Problem{conflict, hostile}, t0)
	m.SetProblems("route/test/broken", []mapper.Problem{badSplit}, t1)
	doc, body := servePage(t, m)

	if got := text(byID(t, doc, "generated-at")); got != "2026-03-01 10:05:00 UTC" {
		t.Errorf("generated-at %q; want the injected clock's 2026-03-01 10:05:00 UTC", got)
	}

	// Links: one row each, with the verdict as a class and a label.
	for _, tc := range []struct{ key, health, want string }{
		{"crossmap-system/west", "ok", "healthy"},
		{"crossmap-system/east", "bad", "unreachable"},
	} {
		row := one(t, doc, "data-link", tc.key)
		if got := attr(row, "data-health"); got != tc.health {
			t.Errorf("link %s: data-health %q; want %q", tc.key, got, tc.health)
		}
		if !strings.Contains(text(row), tc.want) {
			t.Errorf("link %s: row %q does not say %q", tc.key, text(row), tc.want)
		}
	}
	west := one(t, doc, "data-link", "crossmap-system/west")
	for _, want := range []string{"gateway", "alive", "2ms", "172.18.0.3"} {
		if !strings.Contains(text(west), want) {
			t.Errorf("link west: row %q does not show %q", text(west), want)
		}
	}
	if got := attr(find(west, "data-mirrored", "")[0], "data-mirrored"); got != "1" {
		t.Errorf("link west: data-mirrored %q; want 1", got)
	}
	if east := one(t, doc, "data-link", "crossmap-system/east"); !strings.Contains(text(east), "dial tcp: connection refused") {
		t.Errorf("link east: row %q does not show its last error", text(east))
	}

	// Routes: a block per Mapping, a row per backend with its weights and a
	// bar as wide as the effective weight, a marker at the configured one.
	route := one(t, doc, "data-route", "test/podinfo")
	if !strings.Contains(text(route), "weighted") || attr(route, "data-held") != "false" {
		t.Errorf("route test/podinfo: %q, data-held %q; want failover weighted, not held", text(route), attr(route, "data-held"))
	}
	for _, tc := range []struct{ backend, configured, effective, healthy, bar, marker, reason string }{
		{"local", "50", "100", "true", "width: 100%", "left: 50%", "failover: unhealthy remotes"},
		{"west", "50", "0", "false", "width: 0%", "left: 50%", "no ready endpoints"},
	} {
		rows := find(route, "data-backend", tc.backend)
		if len(rows) != 1 {
			t.Errorf("route test/podinfo: %d rows for backend %s; want 1", len(rows), tc.backend)
			continue
		}
		row := rows[0]
		if got := attr(row, "data-configured") + "/" + attr(row, "data-effective") + "/" + attr(row, "data-healthy"); got != tc.configured+"/"+tc.effective+"/"+tc.healthy {
			t.Errorf("backend %s: configured/effective/healthy %s; want %s/%s/%s", tc.backend, got, tc.configured, tc.effective, tc.healthy)
		}
		if got := attr(byClass(t, row, "effective"), "style"); got != tc.bar {
			t.Errorf("backend %s: effective bar style %q; want %q", tc.backend, got, tc.bar)
		}
		if got := attr(byClass(t, row, "configured"), "style"); got != tc.marker {
			t.Errorf("backend %s: configured marker style %q; want %q", tc.backend, got, tc.marker)
		}
		if !strings.Contains(text(row), tc.reason) {
			t.Errorf("backend %s: row %q does not give the reason %q", tc.backend, text(row), tc.reason)
		}
	}
	if devRow := find(route, "data-dev-backend", "west"); len(devRow) != 1 || !strings.Contains(text(devRow[0]), "x-crossmap-cluster: west") {
		t.Errorf("route test/podinfo: dev backend rows %d; want one naming its header", len(devRow))
	}
	broken := one(t, doc, "data-route", "test/broken")
	if attr(broken, "data-held") != "true" || !strings.Contains(text(broken), "held") {
		t.Errorf("route test/broken: data-held %q, %q; want it shown held", attr(broken, "data-held"), text(broken))
	}
	if ps := find(broken, "data-reason", mapper.ReasonInvalidAnnotation); len(ps) != 1 || !strings.Contains(text(ps[0]), badSplit.Message) {
		t.Errorf("route test/broken: %d InvalidAnnotation problems; want one with its message", len(ps))
	}

	// Services.
	svc := one(t, doc, "data-service", "test/podinfo-west")
	for _, want := range []string{"test/podinfo", "crossmap-system/west", "1 / 2 ready", "40ms"} {
		if !strings.Contains(text(svc), want) {
			t.Errorf("service test/podinfo-west: row %q does not show %q", text(svc), want)
		}
	}
	if other := one(t, doc, "data-service", "test/other-west"); !strings.Contains(text(other), "no ready endpoints") {
		t.Errorf("service test/other-west: row %q does not say it has no ready endpoints", text(other))
	}

	// Problems: every one, with how long it has been there.
	var reasons []string
	for _, p := range byClassAll(doc, "problem") {
		reasons = append(reasons, attr(p, "data-reason"))
	}
	if want := []string{mapper.ReasonConflict, hostile.Reason, mapper.ReasonInvalidAnnotation}; strings.Join(reasons, "|") != strings.Join(want, "|") {
		t.Errorf("problems %q; want %q", reasons, want)
	}
	c := one(t, doc, "data-reason", mapper.ReasonConflict)
	for _, want := range []string{conflict.Message, "Service test/b", "export", "since 2026-03-01 10:00:00 UTC (5m0s ago)"} {
		if !strings.Contains(text(c), want) {
			t.Errorf("problem Conflict: %q does not show %q", text(c), want)
		}
	}

	// Everything is escaped: the hostile problem is text, in its element
	// and attribute, and made no element of its own.
	h := one(t, doc, "data-reason", hostile.Reason)
	if !strings.Contains(text(h), hostile.Message) {
		t.Errorf("hostile problem: %q does not show its message as text", text(h))
	}
	if strings.Contains(body, "<script>alert") || !strings.Contains(body, "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;") {
		t.Errorf("the page does not escape a problem's message:\n%s", body)
	}
	// No script, image, stylesheet link or anything loaded from elsewhere:
	// the page is whole on its own.
	walk(doc, func(n *html.Node) {
		switch n.Data {
		case "script", "img", "link", "iframe", "object":
			t.Errorf("the page has a <%s> element", n.Data)
		}
		for _, a := range n.Attr {
			if a.Key == "src" || (a.Key == "href" && !strings.HasPrefix(a.Val, "/") && !strings.HasPrefix(a.Val, "#")) || strings.HasPrefix(a.Key, "on") {
				t.Errorf("the page's <%s> has %s=%q", n.Data, a.Key, a.Val)
			}
		}
	})
}

func TestServerEmptyPage(t *testing.T) {
	doc, _ := servePage(t, status.NewModel())
	for id, want := range map[string]string{
		"no-links":    "No links yet",
		"no-routes":   "No routes yet",
		"no-services": "No mirrored services yet",
		"no-problems": "No problems",
	} {
		if got := text(byID(t, doc, id)); !strings.Contains(got, want) {
			t.Errorf("empty page: #%s says %q; want %q", id, got, want)
		}
	}
	for _, key := range []string{"data-link", "data-route", "data-service", "data-reason"} {
		if n := find(doc, key, ""); len(n) != 0 {
			t.Errorf("empty page: %d elements with %s; want none", len(n), key)
		}
	}
}

// walk calls f on n and every node under it, in document order.
func walk(n *html.Node, f func(*html.Node)) {
	f(n)
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// find returns the elements under n with attribute key, set to val unless
// val is empty.
func find(n *html.Node, key, val string) []*html.Node {
	var out []*html.Node
	walk(n, func(c *html.Node) {
		if c.Type == html.ElementNode && hasAttr(c, key) && (val == "" || attr(c, key) == val) {
			out = append(out, c)
		}
	})
	return out
}

// one is the only element under n whose key is val.
func one(t *testing.T, n *html.Node, key, val string) *html.Node {
	t.Helper()
	found := find(n, key, val)
	if len(found) != 1 {
		t.Fatalf("%d elements with %s=%q; want 1", len(found), key, val)
	}
	return found[0]
}

func byID(t *testing.T, n *html.Node, id string) *html.Node { t.Helper(); return one(t, n, "id", id) }

func byClassAll(n *html.Node, class string) []*html.Node {
	var out []*html.Node
	walk(n, func(c *html.Node) {
		if c.Type == html.ElementNode && strings.Contains(" "+attr(c, "class")+" ", " "+class+" ") {
			out = append(out, c)
		}
	})
	return out
}

func byClass(t *testing.T, n *html.Node, class string) *html.Node {
	t.Helper()
	found := byClassAll(n, class)
	if len(found) != 1 {
		t.Fatalf("%d elements of class %s under <%s>; want 1", len(found), class, n.Data)
	}
	return found[0]
}

// text is the text under n with its whitespace runs made single spaces.
func text(n *html.Node) string {
	var b strings.Builder
	walk(n, func(c *html.Node) {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
			b.WriteString(" ")
		}
	})
	return strings.Join(strings.Fields(b.String()), " ")
}

// TestServerPageGroupInForce: issue 12. The page shows each route's
// Emissary group as it stands, every member with its share, next to what
// crossmap configured; a held route shows the routes still in force and
// why it is held.
func TestServerPageGroupInForce(t *testing.T) {
	fifty := 50
	m := status.NewModel()
	m.SetRoutes([]status.Route{{
		Namespace: "test", Name: "shared", Failover: "off",
		Backends: []mapper.RouteBackend{{Service: "test/shared", Configured: 50, Effective: 50, Healthy: true}},
		Group: &mapper.RouteGroup{Members: []mapper.GroupMember{
			{Mapping: "test/shared-east", Owner: mapper.OwnerCrossmap, Cluster: "east", Service: "shared-east.test:9898", Weight: &fifty, Share: 50, Configured: &fifty},
			{Mapping: "test/shared", Owner: mapper.OwnerUser, Service: "shared.test:9898", Share: 25, Configured: &fifty, Reason: "other Mappings in the Emissary group take 25%: test/shared-v2 (no weight) 25%"},
			{Mapping: "test/shared-v2", Owner: mapper.OwnerOther, Service: "shared-v2.test:9898", Share: 25},
		}},
	}, {
		Namespace: "test", Name: "held", Failover: "weighted", Held: true, HeldReason: "InvalidAnnotation: bad split",
		Group: &mapper.RouteGroup{Members: []mapper.GroupMember{
			{Mapping: "test/held-east", Owner: mapper.OwnerCrossmap, Cluster: "east", Service: "held-east.test:9898", Weight: &fifty, Share: 50},
			{Mapping: "test/held", Owner: mapper.OwnerUser, Service: "held.test:9898", Share: 50},
		}},
	}})
	doc, _ := servePage(t, m)

	shared := one(t, doc, "data-route", "test/shared")
	for _, tc := range []struct{ mapping, owner, share, want string }{
		{"test/shared-east", "crossmap", "50", "east"},
		{"test/shared", "user", "25", "test/shared-v2 (no weight) 25%"},
		{"test/shared-v2", "other", "25", "other"},
	} {
		rows := find(shared, "data-member", tc.mapping)
		if len(rows) != 1 {
			t.Fatalf("route test/shared: %d rows for member %s; want 1", len(rows), tc.mapping)
		}
		if got := attr(rows[0], "data-owner"); got != tc.owner {
			t.Errorf("member %s: data-owner %q; want %q", tc.mapping, got, tc.owner)
		}
		if got := attr(rows[0], "data-share"); got != tc.share {
			t.Errorf("member %s: data-share %q; want %q", tc.mapping, got, tc.share)
		}
		if !strings.Contains(text(rows[0]), tc.want) {
			t.Errorf("member %s: row %q does not show %q", tc.mapping, text(rows[0]), tc.want)
		}
	}

	held := one(t, doc, "data-route", "test/held")
	if !strings.Contains(text(held), "InvalidAnnotation: bad split") || !strings.Contains(text(held), "weighted") {
		t.Errorf("route test/held: %q; want the reason it is held and failover weighted", text(held))
	}
	if rows := find(held, "data-member", "test/held-east"); len(rows) != 1 || attr(rows[0], "data-share") != "50" {
		t.Errorf("route test/held: the route in force test/held-east at 50 is not shown")
	}
}
