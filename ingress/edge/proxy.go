package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
)

// MappingHeader is the response header the proxy adds to every response it
// routed, naming the Mapping (namespace/name) that routed it. Behind
// another edge the outermost edge's value comes first.
const MappingHeader = "X-Crossmap-Mapping"

// Proxy serves HTTP with a Table: it routes each request, picks a ready
// endpoint round-robin, and proxies the request there with the Mapping's
// rewrites and timeout. It answers like Envoy when it cannot:
//
//   - 404 "no route" when no route matches;
//   - 503 "no healthy upstream" when the route's backend has no ready
//     endpoint (it does not fall through to another route);
//   - 503 when the upstream cannot be reached or resets before answering;
//   - 504 "upstream request timeout" when the timeout passes first.
//
// Until SetTable is first called it answers 503. Health and readiness
// endpoints are the caller's, on another handler.
type Proxy struct {
	table atomic.Pointer[Table]
	draw  func() int
	next  sync.Map // Target.Backend -> *atomic.Uint64, the round-robin counters
	rp    *httputil.ReverseProxy
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithDraw sets the source of the per-request random value Envoy's
// runtime_fraction uses; it must return 0 to 99 and be safe for
// concurrent use. Tests inject a deterministic one.
func WithDraw(draw func() int) Option { return func(p *Proxy) { p.draw = draw } }

// WithTransport sets the transport to upstreams.
func WithTransport(rt http.RoundTripper) Option {
	return func(p *Proxy) { p.rp.Transport = rt }
}

// NewProxy returns a Proxy without a table.
func NewProxy(opts ...Option) *Proxy {
	p := &Proxy{draw: func() int { return rand.IntN(100) }}
	p.rp = &httputil.ReverseProxy{
		Rewrite:      rewriteRequest,
		ErrorHandler: upstreamError,
		Transport:    defaultTransport(),
		// Without a pool every request allocates a fresh 32 KiB copy
		// buffer: most of the proxy's garbage, measured by
		// BenchmarkProxyOverhead.
		BufferPool: bufferPool{},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// defaultTransport is http.DefaultTransport's settings, without verifying
// upstream certificates: Emissary originates TLS for an https:// service
// without verification unless the Mapping names a TLSContext (tls), which
// the edge reports as unsupported.
func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // as Emissary without a TLSContext
	return t
}

// SetTable makes t the table for the requests that start from now on.
func (p *Proxy) SetTable(t *Table) { p.table.Store(t) }

// proxied is what ServeHTTP hands the ReverseProxy's Rewrite for one
// request.
type proxied struct {
	target   *Target
	endpoint string
}

type proxiedKey struct{}

// ServeHTTP routes and proxies r.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := p.table.Load()
	if t == nil {
		http.Error(w, "the dev edge has no routing table yet", http.StatusServiceUnavailable)
		return
	}
	target, ok := t.Route(r, p.draw())
	if !ok {
		http.Error(w, "no route", http.StatusNotFound)
		return
	}
	w.Header().Set(MappingHeader, target.Mapping)
	if len(target.Endpoints) == 0 {
		http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
		return
	}
	ctx := context.WithValue(r.Context(), proxiedKey{}, &proxied{target: target, endpoint: p.pick(target)})
	if target.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, target.Timeout)
		defer cancel()
	}
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// pick returns the target's next endpoint, round-robin per backend.
func (p *Proxy) pick(t *Target) string {
	if len(t.Endpoints) == 1 {
		return t.Endpoints[0]
	}
	c, _ := p.next.LoadOrStore(t.Backend, new(atomic.Uint64))
	n := c.(*atomic.Uint64).Add(1) - 1
	return t.Endpoints[n%uint64(len(t.Endpoints))]
}

// rewriteRequest points the outgoing request at the endpoint, as Envoy's route
// would: the rewritten path (query kept), Host from host_rewrite or the
// request's, X-Forwarded-For appended to, X-Forwarded-Proto and -Host set,
// x-envoy-original-path when the path was rewritten, then
// add_request_headers.
func rewriteRequest(pr *httputil.ProxyRequest) {
	px := pr.In.Context().Value(proxiedKey{}).(*proxied)
	t := px.target
	pr.Out.URL.Scheme = t.Scheme
	pr.Out.URL.Host = px.endpoint
	if path, err := url.PathUnescape(t.Path); err == nil {
		pr.Out.URL.Path, pr.Out.URL.RawPath = path, t.Path
	} else {
		pr.Out.URL.Path, pr.Out.URL.RawPath = t.Path, ""
	}
	pr.Out.Host = pr.In.Host
	if t.Host != "" {
		pr.Out.Host = t.Host
	}
	// ReverseProxy drops the incoming X-Forwarded-For before Rewrite;
	// Envoy appends to it, so put it back for SetXForwarded to extend.
	if xff, ok := pr.In.Header["X-Forwarded-For"]; ok {
		pr.Out.Header["X-Forwarded-For"] = xff
	}
	pr.SetXForwarded()
	if t.Rewritten {
		pr.Out.Header.Set("X-Envoy-Original-Path", pr.In.URL.RequestURI())
	}
	for _, h := range t.Headers {
		if h.Append {
			pr.Out.Header.Add(h.Name, h.Value)
		} else {
			pr.Out.Header.Set(h.Name, h.Value)
		}
	}
}

// upstreamError answers for a request the upstream did not answer, with
// Envoy's status codes and bodies.
func upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(r.Context().Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		http.Error(w, "upstream request timeout", http.StatusGatewayTimeout)
		return
	}
	http.Error(w, "upstream connect error or disconnect/reset before headers", http.StatusServiceUnavailable)
}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
