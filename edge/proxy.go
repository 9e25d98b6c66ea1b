package edge

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crossmap/crossmap/internal/pki"
)

// MappingHeader is the response header the proxy adds to every response it
// routed, naming the Mapping (namespace/name) that routed it. Behind
// another edge the outermost edge's value comes first.
const MappingHeader = "X-Crossmap-Mapping"

// Proxy serves HTTP with a Table: it routes each request, picks a ready
// endpoint round-robin, and proxies the request there with the Mapping's
// rewrites, timeout and TLS origination. It answers like Envoy when it
// cannot:
//
//   - 404 "no route" when no route matches, which includes a cleartext
//     request to a Host whose insecure action is Reject;
//   - 301 to https for a cleartext request to a Host whose insecure
//     action is Redirect;
//   - 503 "no healthy upstream" when the route's backend has no ready
//     endpoint (it does not fall through to another route);
//   - 503 when the upstream cannot be reached, fails the TLS handshake,
//     or resets before answering, and when the route's TLSContext is
//     unusable;
//   - 504 "upstream request timeout" when the timeout passes first.
//
// Emissary's own probe paths (BuiltinReady, BuiltinAlive) are answered
// by the proxy itself once it has a table. Until SetTable is first called
// it answers 503 to everything.
//
// Listener makes a listener that serves TLS and cleartext on one port, as
// an Emissary Listener does, terminating TLS with the current table's TLS
// Hosts.
type Proxy struct {
	state atomic.Pointer[served]
	draw  func() int
	next  sync.Map // Target.Backend -> *atomic.Uint64, the round-robin counters
	// served counts upstream answers by the cluster that answered
	// (Target.Cluster): Target.Cluster -> *atomic.Uint64. It outlives
	// tables, as the counts of a metric must.
	served sync.Map
	rp     *httputil.ReverseProxy
	base   http.RoundTripper // routes that do not originate TLS

	mu         sync.Mutex                 // serializes SetTable
	transports map[string]*http.Transport // of the current table, by Origin.key

	stats    tlsStats
	onFailed func(HandshakeError)
}

// served is a table with the transports its origins use, swapped in
// together so that a request sees one or the other.
type served struct {
	table      *Table
	transports map[string]*http.Transport
}

// Option configures a Proxy.
type Option func(*Proxy)

// WithDraw sets the source of the per-request random value Envoy's
// runtime_fraction uses; it must return 0 to 99 and be safe for
// concurrent use. Tests inject a deterministic one.
func WithDraw(draw func() int) Option { return func(p *Proxy) { p.draw = draw } }

// WithTransport sets the transport to upstreams of routes that do not
// originate TLS with a TLSContext; those get a transport per TLSContext.
func WithTransport(rt http.RoundTripper) Option {
	return func(p *Proxy) { p.base = rt }
}

// WithHandshakeErrorLog sets a function told of failed TLS handshakes, on
// both sides, beside counting them. It is called once for each new kind
// of failure (side, reason and message), not for its repeats, so that a
// broken peer does not flood the log.
func WithHandshakeErrorLog(f func(HandshakeError)) Option {
	return func(p *Proxy) { p.onFailed = f }
}

// NewProxy returns a Proxy without a table.
func NewProxy(opts ...Option) *Proxy {
	p := &Proxy{draw: func() int { return rand.IntN(100) }, base: defaultTransport()}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        rewriteRequest,
		ModifyResponse: p.answered,
		ErrorHandler:   p.upstreamError,
		Transport:      roundTripper(p.roundTrip),
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
// without verification unless the Mapping names a TLSContext (tls), whose
// routes get an originTransport instead.
func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // as Emissary without a TLSContext
	return t
}

// originTransport originates TLS with an Origin's configuration. It speaks
// HTTP/1.1, as Envoy does to an upstream unless the Mapping asks for gRPC,
// and keeps as many idle connections to a gateway as traffic needed, as
// Envoy's pool does, rather than http.Transport's two: every connection
// given up is a TLS handshake to make again.
func originTransport(cfg *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = cfg.Clone()
	t.MaxIdleConnsPerHost = t.MaxIdleConns
	t.ForceAttemptHTTP2 = false
	var protos http.Protocols
	protos.SetHTTP1(true)
	t.Protocols = &protos
	return t
}

// retiredSweep is how long after a swap the transports of origins the new
// table no longer has close their idle connections a second time: the
// connections that still carried a request at the swap are idle by then,
// unless the request runs longer. Those close at the transport's
// IdleConnTimeout at the latest.
const retiredSweep = 10 * time.Second

// SetTable makes t the table for the requests and TLS handshakes that
// start from now on. Requests and connections already under way keep the
// table and certificates they started with.
//
// Each distinct TLS origination (a TLSContext with the certificates it
// read) has one transport, kept across tables as long as nothing it uses
// changes, so that a rebuild for an unrelated change keeps the upstream
// connections. A transport the new table no longer uses (a rotated
// certificate, a removed TLSContext) closes its idle connections after the
// swap; the requests on its busy connections finish.
func (p *Proxy) SetTable(t *Table) {
	if t == nil {
		p.state.Store(nil)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	next := make(map[string]*http.Transport, len(t.origins))
	for _, o := range t.origins {
		if tr, ok := p.transports[o.key]; ok {
			next[o.key] = tr
		} else {
			next[o.key] = originTransport(o.config)
		}
	}
	var retired []*http.Transport
	for k, tr := range p.transports {
		if _, ok := next[k]; !ok {
			retired = append(retired, tr)
		}
	}
	p.transports = next
	p.state.Store(&served{table: t, transports: next})
	for _, tr := range retired {
		tr.CloseIdleConnections()
		time.AfterFunc(retiredSweep, tr.CloseIdleConnections)
	}
}

// proxied is what ServeHTTP hands the ReverseProxy's Rewrite and
// transport for one request.
type proxied struct {
	target    *Target
	endpoint  string
	transport *http.Transport // nil: the base transport
}

type proxiedKey struct{}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (p *Proxy) roundTrip(r *http.Request) (*http.Response, error) {
	if px, ok := r.Context().Value(proxiedKey{}).(*proxied); ok && px.transport != nil {
		return px.transport.RoundTrip(r)
	}
	return p.base.RoundTrip(r)
}

// ServeHTTP routes and proxies r.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := p.state.Load()
	if s == nil {
		http.Error(w, "the dev edge has no routing table yet", http.StatusServiceUnavailable)
		return
	}
	target, ok := s.table.Route(r, p.draw())
	if !ok {
		http.Error(w, "no route", http.StatusNotFound)
		return
	}
	if target.Redirect {
		if target.Mapping != "" {
			w.Header().Set(MappingHeader, target.Mapping)
		}
		redirectHTTPS(w, r)
		return
	}
	if target.Builtin != "" {
		serveBuiltin(w, r, target.Builtin)
		return
	}
	w.Header().Set(MappingHeader, target.Mapping)
	px := &proxied{target: target}
	if o := target.Origin; o != nil {
		if px.transport = s.transports[o.key]; o.Unavailable != "" || px.transport == nil {
			addResponseHeaders(w.Header(), target.ResponseHeaders)
			http.Error(w, "upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: "+cmp.Or(o.Unavailable, "no transport"), http.StatusServiceUnavailable)
			return
		}
	}
	if len(target.Endpoints) == 0 {
		addResponseHeaders(w.Header(), target.ResponseHeaders)
		http.Error(w, "no healthy upstream", http.StatusServiceUnavailable)
		return
	}
	px.endpoint = p.pick(target)
	ctx := context.WithValue(r.Context(), proxiedKey{}, px)
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

// answered completes an upstream's response as Envoy's route does: the
// route's response_headers_to_add (the group's add_response_headers),
// appended or set as each says. It counts the answer for the cluster
// whose backend gave it.
func (p *Proxy) answered(resp *http.Response) error {
	px, ok := resp.Request.Context().Value(proxiedKey{}).(*proxied)
	if !ok {
		return nil
	}
	addResponseHeaders(resp.Header, px.target.ResponseHeaders)
	c, ok := p.served.Load(px.target.Cluster)
	if !ok {
		c, _ = p.served.LoadOrStore(px.target.Cluster, new(atomic.Uint64))
	}
	c.(*atomic.Uint64).Add(1)
	return nil
}

// addResponseHeaders adds a route's response headers to h. Envoy adds
// them to the answers it makes itself for the route too (no healthy
// upstream, a reset, a timeout), so the error paths call it as well.
func addResponseHeaders(h http.Header, added []AddedHeader) {
	for _, a := range added {
		if a.Append {
			h.Add(a.Name, a.Value)
		} else {
			h.Set(a.Name, a.Value)
		}
	}
}

// LocalCluster is how Served names this cluster's own backends: the
// answers of routes without a target cluster.
const LocalCluster = "local"

// Served returns how many upstream answers each cluster's backends gave
// through this proxy since it started, by cluster name (LocalCluster for
// this cluster's own).
func (p *Proxy) Served() map[string]uint64 {
	out := map[string]uint64{}
	p.served.Range(func(k, v any) bool {
		out[cmp.Or(k.(string), LocalCluster)] += v.(*atomic.Uint64).Load()
		return true
	})
	return out
}

// upstreamError answers for a request the upstream did not answer, with
// Envoy's status codes and bodies. A failed TLS handshake with the
// upstream is a 503 like any other connection failure, and is counted by
// its reason.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	if px, ok := r.Context().Value(proxiedKey{}).(*proxied); ok {
		addResponseHeaders(w.Header(), px.target.ResponseHeaders)
	}
	if errors.Is(r.Context().Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		http.Error(w, "upstream request timeout", http.StatusGatewayTimeout)
		return
	}
	msg := "upstream connect error or disconnect/reset before headers"
	if px, ok := r.Context().Value(proxiedKey{}).(*proxied); ok && px.target.Origin != nil {
		if reason, ok := pki.Classify(err); ok {
			p.failed(HandshakeError{Side: SideClient, Reason: reason, Peer: px.endpoint, Context: px.target.Origin.Context, Err: err})
			msg += ". reset reason: connection failure, transport failure reason: TLS error: " + reason
		}
	}
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// redirectHTTPS answers as Envoy's https_redirect: 301 to the same URL
// with scheme https, without the port when it is 80, the default of the
// scheme being left.
func redirectHTTPS(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, port, err := net.SplitHostPort(host); err == nil && port == "80" {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
	w.WriteHeader(http.StatusMovedPermanently)
}

// serveBuiltin answers one of Emissary's probe paths as diagd does
// (python/ambassador_diag/diagd.py, check_ready and check_alive): GET
// only, the exact path only. The proxy has a table, which is what ready
// means for the dev edge.
func serveBuiltin(w http.ResponseWriter, r *http.Request, path string) {
	switch {
	case r.URL.Path != path:
		http.Error(w, "not found", http.StatusNotFound)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case path == BuiltinReady:
		fmt.Fprintln(w, "ambassador readiness check OK (crossmap dev edge)")
	default:
		fmt.Fprintln(w, "ambassador liveness check OK (crossmap dev edge)")
	}
}

// bufferPool lends ReverseProxy its copy buffers.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32*1024); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }
