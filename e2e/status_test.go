package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"golang.org/x/net/html"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// chromium is Debian's chromium package, which the page test drives
// headless. .ci/run installs it.
const chromium = "/usr/bin/chromium"

// statusSetup is a west whose status has something to say about everything:
// east linked with podinfo mirrored, the story's 50/50 split of podinfo, a
// Service of west's own in the way of the mirror of east's other (a
// Conflict), and a second Mapping with a malformed split (an
// InvalidAnnotation, which holds that route). It returns the base URL of
// west's status API once the API shows all of it.
func statusSetup(t *testing.T) (*harness, string) {
	h := newHarness(t)
	h.create(h.west, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "other-east", Labels: map[string]string{"owner": "someone-else"}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 1234, TargetPort: intstr.FromInt32(1234)}}},
	})
	h.exportService("podinfo", []int32{9898}, "10.244.13.1")
	h.exportService("other", []int32{80}, "10.244.13.2")
	h.localService("podinfo", 9898, "10.244.14.1")
	h.link(nil)
	h.wantMirror("podinfo mirrored", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
	h.userMapping("podinfo", "podinfo."+h.ns+":9898", map[string]string{"crossmap.io/split": "east=50"}, nil)
	h.userMapping("broken", "podinfo."+h.ns+":9898", map[string]string{"crossmap.io/split": "east=fifty"}, nil)
	h.wantWeight("split written", "podinfo-east", 50)

	base := h.statusURL()
	h.eventually("status API shows the link, mirror, routes and problems", func(ctx context.Context) error {
		var v status.View
		if err := statusGetJSON(ctx, base+"/status", http.StatusOK, &v); err != nil {
			return err
		}
		var errs []string
		if l, ok := firstWhere(v.Links, func(l status.Link) bool { return l.Key() == h.ctrlNS+"/east" }); !ok || !l.RemoteReachable {
			errs = append(errs, fmt.Sprintf("link east not reachable yet: %+v", v.Links))
		}
		if s, ok := firstWhere(v.Services, func(s status.Service) bool { return s.Key() == h.ns+"/podinfo-east" }); !ok || s.ReadyEndpoints != 1 {
			errs = append(errs, fmt.Sprintf("mirror podinfo-east not ready yet: %+v", v.Services))
		}
		if r, ok := firstWhere(v.Routes, func(r status.Route) bool { return r.Key() == h.ns+"/podinfo" }); !ok || routeWeights(r) != "local=50/50 east=50/50" {
			errs = append(errs, fmt.Sprintf("route podinfo not 50/50 yet: %+v", v.Routes))
		}
		for _, reason := range []string{mapper.ReasonConflict, mapper.ReasonInvalidAnnotation} {
			if _, ok := firstWhere(v.Problems, func(p status.Problem) bool { return p.Reason == reason }); !ok {
				errs = append(errs, fmt.Sprintf("no %s problem yet: %+v", reason, v.Problems))
			}
		}
		return joinErrs(errs)
	})
	return h, base
}

// statusURL waits for west's status API to listen, and returns its base URL.
// The manager's Start listens, so the port is known only once it runs.
func (h *harness) statusURL() string {
	h.t.Helper()
	var base string
	h.eventually("status API listening", func(context.Context) error {
		addr := h.westCtl.Status.ListenAddr()
		if addr == nil {
			return errors.New("west's status API does not listen yet")
		}
		base = "http://" + addr.String()
		return nil
	})
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		h.t.Fatalf("west's status API listens on %s; want 127.0.0.1 (cfg.StatusAddr)", base)
	}
	return base
}

// TestStatusAPI asks every endpoint of a running west about real objects,
// over HTTP, as an operator's tools would.
func TestStatusAPI(t *testing.T) {
	h, base := statusSetup(t)
	ctx := t.Context()
	eastKey := h.ctrlNS + "/east"

	var links []status.Link
	mustStatusJSON(t, base+"/status/links", &links)
	if len(links) != 1 || links[0].Key() != eastKey {
		t.Fatalf("GET /status/links = %+v; want the one Link %s", links, eastKey)
	}
	for _, path := range []string{"/status/links/" + eastKey, "/status/links/east"} {
		var l status.Link
		mustStatusJSON(t, base+path, &l)
		if l.Key() != eastKey || l.Cluster != "east" || l.Mode != "gateway" || !l.RemoteReachable || !l.GatewayAlive ||
			!slices.Contains(l.MirroredServices, h.ns+"/podinfo-east") || !slices.Contains(l.GatewayAddresses, gatewayIP) {
			t.Errorf("GET %s = %+v; want east, reachable, gateway %s alive, mirroring %s/podinfo-east", path, l, gatewayIP, h.ns)
		}
	}

	var svcs []status.Service
	mustStatusJSON(t, base+"/status/services", &svcs)
	if _, ok := firstWhere(svcs, func(s status.Service) bool { return s.Key() == h.ns+"/podinfo-east" }); !ok {
		t.Errorf("GET /status/services = %+v; want %s/podinfo-east in it", svcs, h.ns)
	}
	if _, ok := firstWhere(svcs, func(s status.Service) bool { return s.Name == "other-east" }); ok {
		t.Errorf("GET /status/services = %+v; the conflicting other-east is not crossmap's mirror", svcs)
	}
	var svc status.Service
	mustStatusJSON(t, base+"/status/services/"+h.ns+"/podinfo-east", &svc)
	want := status.Service{Namespace: h.ns, Name: "podinfo-east", Link: eastKey, Cluster: "east", Source: h.ns + "/podinfo",
		Mode: "gateway", Endpoints: 1, ReadyEndpoints: 1, Ready: true}
	// Lag and LastSync depend on timing; the unit tests check their shape.
	svc.Lag, svc.LastSync = "", time.Time{}
	if svc != want {
		t.Errorf("GET /status/services/%s/podinfo-east = %+v; want %+v", h.ns, svc, want)
	}

	var routes []statusRoute
	mustStatusJSON(t, base+"/status/routes", &routes)
	var keys []string
	for _, r := range routes {
		keys = append(keys, r.Key())
	}
	if want := []string{h.ns + "/broken", h.ns + "/podinfo"}; !slices.Equal(keys, want) {
		t.Errorf("GET /status/routes lists %v; want %v", keys, want)
	}
	var podinfo statusRoute
	mustStatusJSON(t, base+"/status/routes/"+h.ns+"/podinfo", &podinfo)
	if got := routeWeights(podinfo.Route); got != "local=50/50 east=50/50" || podinfo.Held || len(podinfo.Problems) != 0 {
		t.Errorf("GET /status/routes/%s/podinfo = %+v; want local and east configured and effective 50, not held, no problems", h.ns, podinfo)
	}
	for _, b := range podinfo.Backends {
		if !b.Healthy || b.Reason != "" {
			t.Errorf("GET /status/routes/%s/podinfo: backend %+v; want healthy with no reason", h.ns, b)
		}
	}
	var broken statusRoute
	mustStatusJSON(t, base+"/status/routes/"+h.ns+"/broken", &broken)
	if !broken.Held || broken.Backends == nil || len(broken.Problems) != 1 || broken.Problems[0].Reason != mapper.ReasonInvalidAnnotation ||
		!strings.Contains(broken.Problems[0].Message, `"east=fifty"`) {
		t.Errorf("GET /status/routes/%s/broken = %+v; want it held, backends [], and its InvalidAnnotation problem", h.ns, broken)
	}

	var v status.View
	mustStatusJSON(t, base+"/status", &v)
	conflict, ok := firstWhere(v.Problems, func(p status.Problem) bool { return p.Reason == mapper.ReasonConflict })
	if !ok || conflict.Object.Name != "other-east" || conflict.Source != "link/"+eastKey || conflict.Since.IsZero() {
		t.Errorf("GET /status problems = %+v; want a Conflict about other-east found by link/%s", v.Problems, eastKey)
	}

	// Errors: JSON that says what was not found or not allowed.
	for _, tc := range []struct {
		method, path string
		code         int
		error        string
	}{
		{http.MethodGet, "/status/links/nope", http.StatusNotFound, "no Link named nope"},
		{http.MethodGet, "/status/links/" + h.ctrlNS + "/nope", http.StatusNotFound, "no Link " + h.ctrlNS + "/nope"},
		{http.MethodGet, "/status/routes/" + h.ns + "/nope", http.StatusNotFound, "no annotated Mapping " + h.ns + "/nope"},
		{http.MethodGet, "/status/services/" + h.ns + "/other-east", http.StatusNotFound, "no mirrored Service " + h.ns + "/other-east"},
		{http.MethodGet, "/status/nope", http.StatusNotFound, "no such path: /status/nope"},
		{http.MethodPost, "/status", http.StatusMethodNotAllowed, "POST is not allowed on /status"},
		{http.MethodDelete, "/status/links/east", http.StatusMethodNotAllowed, "DELETE is not allowed on /status/links/east"},
	} {
		resp, body, err := statusCall(ctx, tc.method, base+tc.path)
		if err != nil {
			t.Errorf("%s %s: %v", tc.method, tc.path, err)
			continue
		}
		var e struct {
			Error string `json:"error"`
			Code  int    `json:"code"`
		}
		if jerr := json.Unmarshal(body, &e); jerr != nil || resp.StatusCode != tc.code || e.Code != tc.code || e.Error != tc.error ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s %s; want %d JSON {error: %q}", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.code, tc.error)
		}
		if allow := resp.Header.Get("Allow"); tc.code == http.StatusMethodNotAllowed && allow != "GET, HEAD" {
			t.Errorf("%s %s: Allow %q; want GET, HEAD", tc.method, tc.path, allow)
		}
	}

	resp, body, err := statusCall(ctx, http.MethodGet, base+"/metrics")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %v %v %s", err, resp, body)
	}
	for _, want := range []string{"crossmap_api_writes_total{", "crossmap_mirrored_services{"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("GET /metrics has no %s series:\n%s", strings.TrimSuffix(want, "{"), body)
		}
	}

	var health map[string]string
	mustStatusJSON(t, base+"/healthz", &health)
	if health["status"] != "ok" {
		t.Errorf("GET /healthz = %v; want status ok", health)
	}
}

// TestStatusReadyz: once west's caches have synced, /readyz says ready,
// every time it is asked: a kubelet probing it must not see it flap.
func TestStatusReadyz(t *testing.T) {
	h := newHarness(t)
	h.exportService("podinfo", []int32{9898}, "10.244.15.1")
	h.link(nil)
	// A mirror written from the caches means they have synced.
	h.wantMirror("podinfo mirrored", "podinfo", []int32{9898}, gatewayIP+":4143 ready=true")
	base := h.statusURL()
	var answers []string
	for range 10 {
		resp, body, err := statusCall(t.Context(), http.MethodGet, base+"/readyz")
		if err != nil {
			t.Fatalf("GET /readyz: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			answers = append(answers, fmt.Sprintf("%d %s", resp.StatusCode, bytes.Join(bytes.Fields(body), []byte(" "))))
		}
	}
	// A known cause: a Ready check that asks WaitForCacheSync with an
	// already-cancelled context. controller-runtime's per-object caches
	// each select between "started" and "done", both ready, and Go picks
	// at random, so with several caches the answer is mostly "not synced".
	if len(answers) > 0 {
		t.Errorf("GET /readyz, 10 times after the caches synced: %d answers not 200, e.g. %s; want 200 every time "+
			"(does the controller's Ready check call WaitForCacheSync with a done context?)", len(answers), answers[0])
	}
}

// TestStatusPage opens the status page in a real headless browser and reads
// what it shows: the DOM after the browser parsed it, and a screenshot.
func TestStatusPage(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the status page test needs a browser: install Debian's chromium "+
			"(apt-get install chromium), which .ci/run does: %v", err)
	}
	h, base := statusSetup(t)

	dom := runChromium(t, "--dump-dom", base+"/")
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("parse the DOM chromium dumped: %v", err)
	}
	eastKey := h.ctrlNS + "/east"
	link := domElements(doc, "data-link", eastKey)
	if len(link) != 1 || domAttr(link[0], "data-health") != "ok" || !strings.Contains(domText(link[0]), "healthy") ||
		len(domElements(link[0], "data-reachable", "true")) != 1 {
		t.Errorf("the page's Links: %d rows for %s (%q); want one, healthy and reachable", len(link), eastKey, domTexts(link))
	}
	route := domElements(doc, "data-route", h.ns+"/podinfo")
	if len(route) != 1 {
		t.Fatalf("the page has %d blocks for route %s/podinfo; want 1:\n%s", len(route), h.ns, dom)
	}
	var got []string
	for _, b := range domElements(route[0], "data-backend", "") {
		got = append(got, fmt.Sprintf("%s=%s/%s", domAttr(b, "data-backend"), domAttr(b, "data-configured"), domAttr(b, "data-effective")))
	}
	if want := "local=50/50 east=50/50"; strings.Join(got, " ") != want {
		t.Errorf("the page's route %s/podinfo backends %v; want %s", h.ns, got, want)
	}
	if broken := domElements(doc, "data-route", h.ns+"/broken"); len(broken) != 1 || domAttr(broken[0], "data-held") != "true" {
		t.Errorf("the page has %d blocks for route %s/broken; want one, held", len(broken), h.ns)
	}
	if svc := domElements(doc, "data-service", h.ns+"/podinfo-east"); len(svc) != 1 || !strings.Contains(domText(svc[0]), "1 / 1 ready") {
		t.Errorf("the page's Services: %q; want %s/podinfo-east with 1 / 1 ready endpoints", domTexts(svc), h.ns)
	}
	for _, reason := range []string{mapper.ReasonConflict, mapper.ReasonInvalidAnnotation} {
		var found bool
		for _, p := range domElements(doc, "data-reason", reason) {
			found = found || strings.Contains(" "+domAttr(p, "class")+" ", " problem ")
		}
		if !found {
			t.Errorf("the page's Problems list has no %s problem", reason)
		}
	}
	if t.Failed() {
		t.Logf("the DOM chromium dumped:\n%s", dom)
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	runChromium(t, "--screenshot="+shot, "--window-size=1200,1600", base+"/")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil || cfg.Width != 1200 || cfg.Height != 1600 {
		t.Errorf("screenshot %s: %+v %v; want a 1200x1600 PNG", shot, cfg, err)
	}
}

// runChromium runs headless chromium on args (one URL on 127.0.0.1, the
// only place it is ever pointed at) and returns what it printed.
func runChromium(t *testing.T, args ...string) string {
	t.Helper()
	for _, a := range args {
		if strings.HasPrefix(a, "http") && !strings.HasPrefix(a, "http://127.0.0.1:") {
			t.Fatalf("runChromium: %s is not on 127.0.0.1", a)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromium, append(flags, args...)...)
	// chromium's helpers may hold its output open after it exits.
	cmd.WaitDelay = 10 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", chromium, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// statusRoute is what /status/routes serves for a route.
type statusRoute struct {
	status.Route
	Problems []status.Problem `json:"problems"`
}

// weights renders a route's backends as "cluster=configured/effective",
// local first.
func routeWeights(r status.Route) string {
	var out []string
	for _, b := range r.Backends {
		name := b.Cluster
		if name == "" {
			name = "local"
		}
		out = append(out, fmt.Sprintf("%s=%d/%d", name, b.Configured, b.Effective))
	}
	return strings.Join(out, " ")
}

func firstWhere[T any](list []T, match func(T) bool) (T, bool) {
	i := slices.IndexFunc(list, match)
	if i < 0 {
		var zero T
		return zero, false
	}
	return list[i], true
}

// call does one request to west's status API.
func statusCall(ctx context.Context, method, url string) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// getJSON GETs url and decodes its JSON answer into v, unless the answer
// has another code.
func statusGetJSON(ctx context.Context, url string, code int, v any) error {
	resp, body, err := statusCall(ctx, http.MethodGet, url)
	if err != nil {
		return err
	}
	if resp.StatusCode != code || resp.Header.Get("Content-Type") != "application/json" {
		return fmt.Errorf("GET %s: %d %s %s; want %d JSON", url, resp.StatusCode, resp.Header.Get("Content-Type"), body, code)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("GET %s: decode %T: %w\n%s", url, v, err, body)
	}
	return nil
}

func mustStatusJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := statusGetJSON(t.Context(), url, http.StatusOK, v); err != nil {
		t.Fatal(err)
	}
}

// elements returns the elements under n with attribute key, set to val
// unless val is empty, in document order.
func domElements(n *html.Node, key, val string) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			for _, a := range n.Attr {
				if a.Key == key && (val == "" || a.Val == val) {
					out = append(out, n)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func domAttr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf is the text under n with its whitespace runs made single spaces.
func domText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data + " ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func domTexts(ns []*html.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, domText(n))
	}
	return out
}

// TestPprofAddr checks that --pprof-addr serves Go's profiler on a running
// controller, as an operator diagnosing its CPU or memory would reach it.
func TestPprofAddr(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	newHarnessWith(t, func(c *controller.Config) { c.PprofAddr = addr })

	var body []byte
	err = wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("no profiler on --pprof-addr %s: %v", addr, err)
	}
	// cmdline is the serving process's command line: this test binary,
	// which tells that west's controller, in this process, answered.
	if !bytes.Contains(body, []byte(filepath.Base(os.Args[0]))) {
		t.Errorf("/debug/pprof/cmdline = %q; want this process's command line", body)
	}
}

// groupShares renders a route's group in force as "mapping=share(owner)",
// in route order, with the test's namespace left out.
func groupShares(ns string, r status.Route) string {
	if r.Group == nil {
		return "<no group>"
	}
	var out []string
	for _, m := range r.Group.Members {
		out = append(out, fmt.Sprintf("%s=%d(%s)", strings.TrimPrefix(m.Mapping, ns+"/"), m.Share, m.Owner))
	}
	return strings.Join(out, " ")
}

// TestStatusGroupInForce is issue 12 on real control planes, read over
// HTTP: /status says what Emissary does with the Mappings that exist.
//
// Before: a second, unannotated Mapping in the group (podinfo-v2, no
// weight) took half of the local remainder while /status/routes said local
// 50 and reported nothing; and a route held by a bad annotation showed
// backends [] with failover "" and the split still in force nowhere.
// After: the whole group with each member's share, a SharedGroup problem
// (status, Warning Event, log) naming podinfo-v2 with its 25%, and for the
// held route the routes in force, why it is held and the policy in force.
func TestStatusGroupInForce(t *testing.T) {
	h, user := splitSetup(t, map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}, nil)
	h.wantWeight("split written", "podinfo-east", 50)
	base := h.statusURL()
	route := func(ctx context.Context) (statusRoute, error) {
		var r statusRoute
		err := statusGetJSON(ctx, base+"/status/routes/"+h.ns+"/podinfo", http.StatusOK, &r)
		return r, err
	}

	// Somebody's podinfo-v2: same prefix and hostname, no weight.
	h.userMapping("podinfo-v2", "podinfo-v2."+h.ns+":9898", nil, func(m *ambv3.Mapping) { m.Spec.Prefix = "/podinfo/" })
	// In Emissary's order: name.namespace, so podinfo-v2.test before podinfo.test.
	want := "podinfo-east=50(crossmap) podinfo-v2=25(other) podinfo=25(user)"
	h.eventually("group in force with podinfo-v2 and a SharedGroup problem", func(ctx context.Context) error {
		r, err := route(ctx)
		if err != nil {
			return err
		}
		if got := groupShares(h.ns, r.Route); got != want {
			return fmt.Errorf("group %s, want %s", got, want)
		}
		p, ok := firstWhere(r.Problems, func(p status.Problem) bool { return p.Reason == mapper.ReasonSharedGroup })
		if !ok || !strings.Contains(p.Message, h.ns+"/podinfo-v2 (no weight) 25%") || !strings.Contains(p.Message, "gets 25% where crossmap configured 50%") {
			return fmt.Errorf("problems %+v, want SharedGroup naming %s/podinfo-v2 with 25%%", r.Problems, h.ns)
		}
		if r.Held || r.Failover != "weighted" {
			return fmt.Errorf("held %v, failover %q; want not held, weighted", r.Held, r.Failover)
		}
		for _, e := range h.events(h.west, h.ns) {
			if e.Reason == mapper.ReasonSharedGroup && e.Type == corev1.EventTypeWarning && e.InvolvedObject.Name == "podinfo" && strings.Contains(e.Message, "podinfo-v2") {
				return nil
			}
		}
		return errors.New("no Warning Event SharedGroup on the Mapping")
	})

	// A bad annotation holds the route: the routes in force stay and show.
	update(h, h.west, user, func(m *ambv3.Mapping) {
		m.Annotations = map[string]string{"crossmap.io/split": "east=fifty", "crossmap.io/failover": "weighted"}
	})
	h.eventually("held route shows what is in force", func(ctx context.Context) error {
		r, err := route(ctx)
		if err != nil {
			return err
		}
		if !r.Held || !strings.HasPrefix(r.HeldReason, mapper.ReasonInvalidAnnotation+": ") || !strings.Contains(r.HeldReason, `"east=fifty"`) {
			return fmt.Errorf("held %v, heldReason %q; want held for the InvalidAnnotation", r.Held, r.HeldReason)
		}
		if got := groupShares(h.ns, r.Route); got != want {
			return fmt.Errorf("group %s, want the routes in force %s", got, want)
		}
		if r.Failover != "weighted" {
			return fmt.Errorf("failover %q, want weighted, the policy the kept route was written with", r.Failover)
		}
		return nil
	})
	// The same held route with failover in the annotation broken too: the
	// policy in force is still the kept route's.
	update(h, h.west, user, func(m *ambv3.Mapping) {
		m.Annotations = map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "sometimes"}
	})
	h.eventually("held for the failover annotation, policy in force unchanged", func(ctx context.Context) error {
		r, err := route(ctx)
		if err != nil {
			return err
		}
		if !r.Held || !strings.Contains(r.HeldReason, `"sometimes"`) || r.Failover != "weighted" {
			return fmt.Errorf("held %v, heldReason %q, failover %q; want held for \"sometimes\", failover weighted", r.Held, r.HeldReason, r.Failover)
		}
		return nil
	})
}
