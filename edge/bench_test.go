package edge

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/crossmap/crossmap/emissary/fixture"
)

// Benchmarks of the dev edge: the table lookup alone, and the latency the
// proxy adds to a request. `make bench` runs them with the others and
// prints their medians.
//
//	go test ./edge -run '^$' -bench . -benchmem

// benchApps is how many applications the routing table holds; each has the
// four Mappings crossmap leaves for a split with a dev route, so the table
// has 100 Mappings.
const benchApps = 25

// benchTable is the table of benchApps applications: app-N routes /app-N/
// to Service app-N, with siblings that take 30% to app-N-east and 20% to
// app-N-west, and a dev route to app-N-dev for requests with the header
// x-crossmap-cluster: dev.
func benchTable(b *testing.B) *Table {
	b.Helper()
	var in Input
	for i := range benchApps {
		app := fmt.Sprintf("app-%d", i)
		prefix := "/" + app + "/"
		in.Mappings = append(in.Mappings,
			fixture.Mapping(app, prefix, app),
			fixture.Mapping(app+"-east", prefix, app+"-east", fixture.Weight(30)),
			fixture.Mapping(app+"-west", prefix, app+"-west", fixture.Weight(20)),
			fixture.Mapping(app+"-dev", prefix, app+"-dev", fixture.Headers("x-crossmap-cluster", "dev")),
		)
		for j, svc := range []string{app, app + "-east", app + "-west", app + "-dev"} {
			in.Services = append(in.Services, serviceObj(svc))
			in.Slices = append(in.Slices, sliceObj(svc+"-abcde", svc, fixture.Port,
				endpoint{addr: fmt.Sprintf("10.244.%d.%d", i, 4*j+1)}, endpoint{addr: fmt.Sprintf("10.244.%d.%d", i, 4*j+2)}))
		}
	}
	tbl, problems := Build(in)
	if len(problems) > 0 {
		b.Fatalf("problems: %v", problems)
	}
	return tbl
}

// BenchmarkRoute is one table lookup, for requests spread over every
// application and draw, half of them with the dev header.
func BenchmarkRoute(b *testing.B) {
	tbl := benchTable(b)
	reqs := make([]*http.Request, 0, 2*benchApps)
	for i := range benchApps {
		for _, dev := range []bool{false, true} {
			r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("http://example.com/app-%d/items/42?page=2", i), nil)
			r.Header.Set("User-Agent", "bench")
			r.Header.Set("Accept", "application/json")
			if dev {
				r.Header.Set("X-Crossmap-Cluster", "dev")
			}
			reqs = append(reqs, r)
		}
	}
	for i, r := range reqs {
		target, ok := tbl.Route(r, i%100)
		dev := r.Header.Get("X-Crossmap-Cluster") == "dev"
		if !ok || dev != (target.Mapping == fmt.Sprintf("test/app-%d-dev", i/2)) {
			b.Fatalf("%s (dev header %t) routed by %v, ok %t", r.URL, dev, target, ok)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tbl.Route(reqs[i%len(reqs)], i%100)
		i++
	}
}

// BenchmarkProxyOverhead sends requests one at a time to a backend on
// 127.0.0.1, straight (direct) and through a Proxy (via-edge), in one run so
// that their ratio is the edge's overhead on this machine at this moment.
// Besides ns/op it reports the median and 99th percentile latency.
func BenchmarkProxyOverhead(b *testing.B) {
	backend := benchServer(b, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	}))
	addr := backend.Listener.Addr().(*net.TCPAddr)
	tbl, problems := Build(Input{
		Mappings: []*ambv3.Mapping{fixture.Mapping("podinfo", "/podinfo/", "podinfo")},
		Services: []*corev1.Service{serviceObj("podinfo")},
		Slices: []*discoveryv1.EndpointSlice{
			sliceObj("podinfo-abcde", "podinfo", int32(addr.Port), endpoint{addr: addr.IP.String()}),
		},
	})
	if len(problems) > 0 {
		b.Fatalf("problems: %v", problems)
	}
	proxy := NewProxy()
	proxy.SetTable(tbl)
	front := benchServer(b, proxy)

	for _, c := range []struct{ name, url string }{
		{"direct", backend.URL + "/podinfo/"},
		{"via-edge", front.URL + "/podinfo/"},
	} {
		b.Run(c.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			b.Cleanup(client.CloseIdleConnections)
			// The first request opens the connection every other one reuses.
			benchGet(b, client, c.url)
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				benchGet(b, client, c.url)
				lat = append(lat, time.Since(start))
			}
			reportLatency(b, lat, time.Microsecond, "us")
		})
	}
}

// benchServer serves h on 127.0.0.1 until the benchmark ends.
func benchServer(b *testing.B, h http.Handler) *httptest.Server {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("listen: %v", err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	srv.Start()
	b.Cleanup(srv.Close)
	return srv
}

// benchGet sends GET url and reads the whole answer, which must be a 200.
func benchGet(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatalf("GET %s: %v", url, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		b.Fatalf("GET %s: status %d, read error %v", url, resp.StatusCode, err)
	}
}

// reportLatency reports the median and 99th percentile of lat, in unit
// (named name), as p50-<name> and p99-<name>.
func reportLatency(b *testing.B, lat []time.Duration, unit time.Duration, name string) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	// Nearest rank: the smallest value with at least p% of the samples at
	// or below it.
	rank := func(p int) time.Duration { return lat[(p*len(lat)+99)/100-1] }
	b.ReportMetric(float64(rank(50))/float64(unit), "p50-"+name)
	b.ReportMetric(float64(rank(99))/float64(unit), "p99-"+name)
}
