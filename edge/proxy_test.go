package edge

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/crossmap/crossmap/emissary/fixture"
)

// Tests of the Proxy beyond the conformance table.

// get sends GET path to the proxy through a recorder.
func get(p *Proxy, host, path string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "http://"+host+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, r)
	return w
}

func TestProxyWithoutTable(t *testing.T) {
	w := get(NewProxy(), "example.com", "/")
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", w.Code)
	}
}

func TestProxyNoRoute(t *testing.T) {
	p := NewProxy()
	tbl, _ := Build(Input{})
	p.SetTable(tbl)
	w := get(p, "example.com", "/")
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "no route") || w.Header().Get(MappingHeader) != "" {
		t.Errorf("got %d %q %v, want 404 \"no route\" without %s", w.Code, w.Body, w.Header(), MappingHeader)
	}
}

// TestProxyUnreachable: an endpoint that refuses connections gives 503,
// as Envoy's "upstream connect error".
func TestProxyUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr, port := splitAddr(t, l.Addr())
	l.Close()
	tbl, _ := Build(Input{
		Mappings: []*ambv3.Mapping{fixture.Mapping("m", "/", "a")},
		Services: []*corev1.Service{serviceObj("a")},
		Slices:   []*discoveryv1.EndpointSlice{sliceObj("a", "a", port, endpoint{addr: addr})},
	})
	p := NewProxy()
	p.SetTable(tbl)
	w := get(p, "example.com", "/")
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "upstream connect error") || w.Header().Get(MappingHeader) != "test/m" {
		t.Errorf("got %d %q, want 503 upstream connect error from test/m", w.Code, w.Body)
	}
}

// TestProxyForwardedFor: X-Forwarded-For is appended to, as Envoy does
// with use_remote_address.
func TestProxyForwardedFor(t *testing.T) {
	p, _ := singleBackend(t, false)
	w := get(p, "example.com", "/", "X-Forwarded-For", "203.0.113.7")
	var e echo
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("%d %q: %v", w.Code, w.Body, err)
	}
	if got, want := e.Header.Get("X-Forwarded-For"), "203.0.113.7, 192.0.2.1"; got != want {
		t.Errorf("X-Forwarded-For = %q, want %q", got, want)
	}
	if got := e.Header.Get("X-Forwarded-Proto"); got != "http" {
		t.Errorf("X-Forwarded-Proto = %q, want http", got)
	}
}

// TestProxyHTTPS: an https:// service is reached over TLS, without
// verifying the certificate, as Emissary does without a TLSContext.
func TestProxyHTTPS(t *testing.T) {
	p, _ := singleBackend(t, true)
	w := get(p, "example.com", "/x")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"backend":"a"`) {
		t.Errorf("got %d %q, want 200 from a", w.Code, w.Body)
	}
}

// TestProxySetTableConcurrently swaps tables while requests run; run with
// -race.
func TestProxySetTableConcurrently(t *testing.T) {
	p, in := singleBackend(t, false)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 20 {
				if w := get(p, "example.com", "/"); w.Code != http.StatusOK {
					t.Errorf("status %d: %s", w.Code, w.Body)
					return
				}
			}
		})
	}
	for range 20 {
		tbl, _ := Build(in)
		p.SetTable(tbl)
	}
	wg.Wait()
}

// TestProxyDefaultDraw: the default draw source stays in 0..99, so that a
// group's shares hold.
func TestProxyDefaultDraw(t *testing.T) {
	p := NewProxy()
	for range 1000 {
		if d := p.draw(); d < 0 || d > 99 {
			t.Fatalf("draw %d out of 0..99", d)
		}
	}
}

// singleBackend returns a proxy with Mapping test/m for / to backend a, on
// 127.0.0.1, served over TLS when https.
func singleBackend(t *testing.T, https bool) (*Proxy, Input) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: echoHandler("a", 0, false)}}
	if https {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	addr, port := splitAddr(t, l.Addr())
	m := fixture.Mapping("m", "/", "a")
	if https {
		m.Spec.Service = "https://" + m.Spec.Service
	}
	in := Input{
		Mappings: []*ambv3.Mapping{m},
		Services: []*corev1.Service{serviceObj("a")},
		Slices:   []*discoveryv1.EndpointSlice{sliceObj("a", "a", port, endpoint{addr: addr})},
	}
	tbl, problems := Build(in)
	if len(problems) > 0 {
		t.Fatalf("problems: %v", problems)
	}
	p := NewProxy()
	p.SetTable(tbl)
	return p, in
}
