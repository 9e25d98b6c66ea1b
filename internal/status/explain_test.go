package status_test

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/crossmap/crossmap/internal/explain"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
	mt "github.com/crossmap/crossmap/mapper/mappertest"
)

// TestServerExplain: GET /explain answers from the snapshot the route role
// recorded, with the routes the model holds, and says what is wrong with
// bad input.
func TestServerExplain(t *testing.T) {
	m := status.NewModel()
	srv := httptest.NewServer((&status.Server{Model: m}).Handler())
	t.Cleanup(srv.Close)
	explainURL := func(rawURL string, headers ...string) string {
		q := url.Values{"url": {rawURL}}
		for _, h := range headers {
			q.Add("header", h)
		}
		return srv.URL + "/explain?" + q.Encode()
	}

	code, body := do(t, http.MethodGet, explainURL("http://podinfo.example.com/podinfo/"))
	if e := decode[apiError](t, body); code != http.StatusServiceUnavailable || !strings.Contains(e.Error, "route role has not read") {
		t.Fatalf("before the route role: %d %s; want 503", code, body)
	}

	m.SetRouting(explain.Input{Cluster: "west", Snapshot: mapper.RouteSnapshot{
		Mappings: []*ambv3.Mapping{mt.Mapping("test", "podinfo", "/podinfo/", "podinfo.test:9898",
			mt.Annotations(map[string]string{"crossmap.io/failover": "weighted"}))},
		Services: []*corev1.Service{mt.Service("test", "podinfo", mt.Port("http", 9898, 9898))},
		Slices:   []*discoveryv1.EndpointSlice{mt.Slice("test", "podinfo-1", "podinfo", discoveryv1.AddressTypeIPv4, mt.Endpoint("10.0.0.1", true))},
	}})
	m.SetRoutes([]status.Route{{Namespace: "test", Name: "podinfo", Failover: "weighted"}})

	code, body = do(t, http.MethodGet, explainURL("http://podinfo.example.com/podinfo/api/info"))
	if code != http.StatusOK {
		t.Fatalf("GET /explain: %d %s", code, body)
	}
	e := decode[explain.Explanation](t, body)
	if e.Answer != explain.AnswerRouted || len(e.Groups) != 1 || e.Groups[0].Route != "test/podinfo" || e.Groups[0].Failover != "weighted" ||
		len(e.Groups[0].Backends) != 1 || e.Groups[0].Backends[0].Cluster != "west" || e.Groups[0].Backends[0].Share != 100 {
		t.Errorf("explanation %s", body)
	}

	for _, tc := range []struct {
		url   string
		code  int
		error string
	}{
		{explainURL("http://podinfo.example.com/", "x-crossmap-cluster"), http.StatusBadRequest, `header "x-crossmap-cluster": want "name: value"`},
		{srv.URL + "/explain", http.StatusBadRequest, "no URL"},
		{explainURL("podinfo.example.com/"), http.StatusBadRequest, "the scheme must be http or https"},
	} {
		code, body := do(t, http.MethodGet, tc.url)
		if e := decode[apiError](t, body); code != tc.code || e.Code != tc.code || !strings.Contains(e.Error, tc.error) {
			t.Errorf("GET %s: %d %s; want %d with %q", tc.url, code, body, tc.code, tc.error)
		}
	}
	if code, body := do(t, http.MethodPost, explainURL("http://podinfo.example.com/")); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /explain: %d %s", code, body)
	}

	// The page links to /explain from the route, with a request it takes.
	_, page := fetch(t, http.MethodGet, srv.URL+"/")
	link := regexp.MustCompile(`<a class="explain" href="([^"]+)" data-explain>`).FindSubmatch(page)
	if link == nil {
		t.Fatalf("the page has no explain link for the route:\n%s", page)
	}
	href := html.UnescapeString(string(link[1]))
	if href != "/explain?method=GET&url=http%3A%2F%2Fexample.com%2Fpodinfo%2F" {
		t.Errorf("explain link %q", href)
	}
	code, body = do(t, http.MethodGet, srv.URL+href)
	if e := decode[explain.Explanation](t, body); code != http.StatusOK || e.Answer != explain.AnswerRouted || e.Groups[0].Route != "test/podinfo" {
		t.Errorf("following the page's link: %d %s", code, body)
	}
}
