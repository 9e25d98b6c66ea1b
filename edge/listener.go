package edge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/crossmap/crossmap/internal/pki"
)

// This file is the proxy's listener: TLS and cleartext on one port, the
// way an Emissary Listener with protocol HTTPS does it (Envoy's
// tls_inspector picks the TLS filter chain by SNI, or the cleartext chain;
// envoy/v3/v3listener.py), and the counts of failed handshakes.

// Sides of a TLS handshake, as the proxy counts failures.
const (
	// SideServer is a client's handshake with this edge (termination).
	SideServer = "server"
	// SideClient is this edge's handshake with an upstream (origination).
	SideClient = "client"
)

// Reasons a server-side handshake fails before any certificate is looked
// at, beside pki's reasons.
const (
	// ReasonUnknownServerName: no TLS Host serves the SNI the client sent.
	ReasonUnknownServerName = "UnknownServerName"
	// ReasonHostTLSUnavailable: the TLS Host for the SNI has no usable
	// certificate or client certificate policy (its Problem says why).
	ReasonHostTLSUnavailable = "HostTLSUnavailable"
	// ReasonNotReady: the proxy has no routing table yet.
	ReasonNotReady = "NotReady"
)

// handshakeTimeout bounds both the wait for a connection's first byte and
// its TLS handshake, as http.Server's ReadHeaderTimeout does for
// cleartext.
const handshakeTimeout = 10 * time.Second

// HandshakeError is a failed TLS handshake.
type HandshakeError struct {
	Side    string // SideServer or SideClient
	Reason  string // pki.Classify's reason, or one of the Reason constants here
	Peer    string // the client's address, or the upstream endpoint
	Context string // SideClient: the TLSContext (namespace/name)
	Err     error
}

func (e HandshakeError) String() string {
	what := "TLS handshake from " + e.Peer
	if e.Side == SideClient {
		what = fmt.Sprintf("TLS handshake with upstream %s (TLSContext %s)", e.Peer, e.Context)
	}
	return fmt.Sprintf("%s failed: %s: %v", what, e.Reason, e.Err)
}

// TLSStatus is the TLS side of the proxy, for /status.
type TLSStatus struct {
	// HandshakeErrors counts failed handshakes by side (SideServer,
	// SideClient), then reason.
	HandshakeErrors map[string]map[string]int64 `json:"handshakeErrors"`
	LastError       string                      `json:"lastError,omitempty"`
	LastErrorAt     time.Time                   `json:"lastErrorAt,omitzero"`
	// Certificates are those the current table serves, presents and
	// trusts.
	Certificates []Certificate `json:"certificates"`
}

type tlsStats struct {
	mu     sync.Mutex
	counts map[string]map[string]int64
	last   HandshakeError
	lastAt time.Time
	logged map[[2]string]string // side, reason -> the message last logged
}

// failed counts a failed handshake, and tells the log about a new kind of
// failure.
func (p *Proxy) failed(e HandshakeError) {
	s := &p.stats
	s.mu.Lock()
	if s.counts == nil {
		s.counts, s.logged = map[string]map[string]int64{}, map[[2]string]string{}
	}
	if s.counts[e.Side] == nil {
		s.counts[e.Side] = map[string]int64{}
	}
	s.counts[e.Side][e.Reason]++
	s.last, s.lastAt = e, time.Now()
	k, msg := [2]string{e.Side, e.Reason}, e.Err.Error()
	tell := s.logged[k] != msg
	s.logged[k] = msg
	s.mu.Unlock()
	if tell && p.onFailed != nil {
		p.onFailed(e)
	}
}

// TLSStatus returns the counts of failed handshakes and the current
// table's certificates.
func (p *Proxy) TLSStatus() TLSStatus {
	s := &p.stats
	s.mu.Lock()
	out := TLSStatus{HandshakeErrors: map[string]map[string]int64{}, Certificates: []Certificate{}}
	for side, byReason := range s.counts {
		out.HandshakeErrors[side] = maps.Clone(byReason)
	}
	if s.last.Err != nil {
		out.LastError, out.LastErrorAt = s.last.String(), s.lastAt
	}
	s.mu.Unlock()
	if st := p.state.Load(); st != nil && len(st.table.certificates) > 0 {
		out.Certificates = st.table.Certificates()
	}
	return out
}

// Listener returns a listener that accepts l's connections and hands them
// on as TLS (a *tls.Conn, already through its handshake, so that
// http.Server sets Request.TLS) or as cleartext, by their first byte: 0x16
// starts a TLS handshake record. The handshake uses the TLS Host the
// current table has for the client's SNI, read at that moment, so that a
// new table's certificates take effect with the next handshake. A failed
// handshake closes the connection and is counted; it never reaches the
// server. Closing the listener closes l.
func (p *Proxy) Listener(l net.Listener) net.Listener {
	sl := &sniffListener{
		Listener: l,
		p:        p,
		config:   &tls.Config{GetConfigForClient: p.configForClient},
		conns:    make(chan net.Conn),
		errs:     make(chan error),
		done:     make(chan struct{}),
	}
	go sl.accept()
	return sl
}

// hostTLSError is a handshake the table refuses before any certificate is
// exchanged.
type hostTLSError struct {
	reason, msg string
}

func (e *hostTLSError) Error() string { return e.msg }

// configForClient picks the TLS configuration for a ClientHello: that of
// the TLS chain its SNI selects in the current table.
func (p *Proxy) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	st := p.state.Load()
	if st == nil {
		return nil, &hostTLSError{ReasonNotReady, "the dev edge has no routing table yet"}
	}
	ch := st.table.chains.find(hello.ServerName)
	switch {
	case ch == nil:
		return nil, &hostTLSError{ReasonUnknownServerName, fmt.Sprintf("no TLS Host serves server name %q", hello.ServerName)}
	case ch.term.config == nil:
		return nil, &hostTLSError{ReasonHostTLSUnavailable, fmt.Sprintf("the TLS Host %s for server name %q is unavailable: %s", ch.hosts[0].name, hello.ServerName, ch.term.err)}
	}
	return ch.term.config, nil
}

type sniffListener struct {
	net.Listener
	p      *Proxy
	config *tls.Config
	conns  chan net.Conn
	errs   chan error
	done   chan struct{}
	once   sync.Once
}

func (l *sniffListener) accept() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go l.sniff(c)
	}
}

// sniff reads c's first byte, completes the TLS handshake if it starts
// one, and hands the connection to Accept.
func (l *sniffListener) sniff(c net.Conn) {
	deadline := time.Now().Add(handshakeTimeout)
	_ = c.SetReadDeadline(deadline)
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		// Gone (or silent) before saying anything: nothing to serve.
		c.Close()
		return
	}
	var out net.Conn = &peekedConn{Conn: c, peeked: first}
	if first[0] == 0x16 {
		tc := tls.Server(out, l.config)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			if reason, ok := serverReason(err); ok {
				l.p.failed(HandshakeError{Side: SideServer, Reason: reason, Peer: c.RemoteAddr().String(), Err: err})
			}
			tc.Close()
			return
		}
		out = tc
	}
	_ = c.SetReadDeadline(time.Time{})
	select {
	case l.conns <- out:
	case <-l.done:
		out.Close()
	}
}

// serverReason classifies a failed server-side handshake: pki.Classify's
// reason for the client's certificate, or why the table refused it. A
// client that goes away or falls silent mid-handshake is no TLS failure
// (pki.Classify says the same of network errors): an HTTP client abandons
// the dials it started for a request that found a connection meanwhile.
func serverReason(err error) (string, bool) {
	var refused *hostTLSError
	if errors.As(err, &refused) {
		return refused.reason, true
	}
	return pki.Classify(err)
}

func (l *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *sniffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// peekedConn gives back the bytes sniff read before the rest.
type peekedConn struct {
	net.Conn
	peeked []byte
}

func (c *peekedConn) Read(b []byte) (int, error) {
	if len(c.peeked) > 0 {
		n := copy(b, c.peeked)
		c.peeked = c.peeked[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
