package edge

import (
	"cmp"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
)

// This file reads the TLS side of Emissary's objects into the table:
//
//   - termination: what a TLS Host serves (its tlsSecret) and which client
//     certificates it asks for (its tls, or the TLSContext it names), as
//     ir/irhost.py IRHost.setup and ir/irtlscontext.py resolve them and
//     envoy/v3/v3tls.py writes them into Envoy's DownstreamTlsContext;
//   - origination: the TLSContext a Mapping's tls names, its client
//     certificate, trust anchor and SNI, as ir/ircluster.py and
//     envoy/v3/v3cluster.py write them into Envoy's UpstreamTlsContext.
//
// Everything is read from the snapshot's Secrets here, once per build, so
// that the proxy's handshakes only look up values: a changed Secret is a
// new table, and the next handshake uses it.
//
// Where Emissary would carry on without the TLS a user asked for (a
// TLSContext that does not exist makes it originate cleartext; a
// TLSContext without ca_secret makes it originate without verifying the
// upstream), the edge refuses instead: the route answers 503, or the Host
// fails its handshakes, and a Problem says why. A test environment that
// quietly drops mutual TLS would hide exactly the mistakes it is there to
// catch.

// Keys of a Secret holding a certificate: Emissary reads tls.crt and
// tls.key from kubernetes.io/tls and Opaque Secrets
// (fetch/secret.py, SecretProcessor). A ca_secret is read for its tls.crt
// alone (ir/irtlscontext.py, resolve: cacert_chain_file = ss.cert_path).
const (
	secretCertKey = "tls.crt"
	secretKeyKey  = "tls.key"
)

// Uses of a Certificate.
const (
	UseServer = "server" // a TLS Host's serving certificate
	UseClient = "client" // a TLSContext's client certificate, for origination
	UseCA     = "ca"     // a ca_secret: the trust anchor of one side
)

// Certificate is a certificate the table uses, for /status: operators
// watch these expire and rotate.
type Certificate struct {
	Secret      string    `json:"secret"` // namespace/name
	Use         string    `json:"use"`    // UseServer, UseClient or UseCA
	Names       []string  `json:"names,omitempty"`
	NotAfter    time.Time `json:"notAfter"`
	Fingerprint string    `json:"fingerprint"` // SHA-256 of the DER, first 8 bytes in hex
}

// Origin is how a route originates TLS: the TLSContext its Mapping's tls
// names. Unavailable says why the route cannot originate TLS (the
// TLSContext or its Secrets are missing or unusable); the route then
// answers 503 rather than fall back to cleartext or to an unverified
// upstream.
type Origin struct {
	// Context is the TLSContext's namespace/name, or the name the Mapping
	// gave when no single TLSContext has it.
	Context     string
	Unavailable string
	// key changes whenever anything the handshake uses changes: the proxy
	// keeps one transport per key, so that a table rebuilt from unchanged
	// Secrets reuses the connections it has.
	key    string
	config *tls.Config
}

// tlsVersions are the TLSContext versions (ir/irtlscontext.py,
// AllowedTLSVersions).
var tlsVersions = map[string]uint16{
	"v1.0": tls.VersionTLS10,
	"v1.1": tls.VersionTLS11,
	"v1.2": tls.VersionTLS12,
	"v1.3": tls.VersionTLS13,
}

// Envoy's defaults where a TLSContext sets no version: TLS 1.2 at least on
// both sides, at most TLS 1.3 for a listener and TLS 1.2 for an upstream
// (envoy.extensions.transport_sockets.tls.v3.TlsParameters).
const (
	defaultMinVersion         = tls.VersionTLS12
	defaultServerMaxVersion   = tls.VersionTLS13
	defaultUpstreamMaxVersion = tls.VersionTLS12
)

// secretIndex finds the snapshot's Secrets by namespace/name.
type secretIndex map[string]*corev1.Secret

func newSecretIndex(secrets []*corev1.Secret) secretIndex {
	s := secretIndex{}
	for _, sec := range secrets {
		if sec != nil {
			s[objectName(sec.Namespace, sec.Name)] = sec
		}
	}
	return s
}

// read returns the tls.crt of Secret namespace/name, and its tls.key when
// withKey.
func (s secretIndex) read(namespace, name string, withKey bool) (crt, key []byte, err error) {
	sec, ok := s[objectName(namespace, name)]
	if !ok {
		return nil, nil, fmt.Errorf("Secret %s/%s does not exist", namespace, name)
	}
	if t := cmp.Or(sec.Type, corev1.SecretTypeOpaque); t != corev1.SecretTypeTLS && t != corev1.SecretTypeOpaque {
		return nil, nil, fmt.Errorf("Secret %s/%s has type %s; Emissary reads certificates from kubernetes.io/tls and Opaque Secrets only", namespace, name, t)
	}
	if crt = sec.Data[secretCertKey]; len(crt) == 0 {
		return nil, nil, fmt.Errorf("Secret %s/%s has no %s", namespace, name, secretCertKey)
	}
	if withKey {
		if key = sec.Data[secretKeyKey]; len(key) == 0 {
			return nil, nil, fmt.Errorf("Secret %s/%s has no %s", namespace, name, secretKeyKey)
		}
	}
	return crt, key, nil
}

// keyPair reads a certificate and its key.
func (s secretIndex) keyPair(namespace, name, use string) (tls.Certificate, Certificate, error) {
	crt, key, err := s.read(namespace, name, true)
	if err != nil {
		return tls.Certificate{}, Certificate{}, err
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		return tls.Certificate{}, Certificate{}, fmt.Errorf("Secret %s/%s: %w", namespace, name, err)
	}
	// X509KeyPair keeps the parsed leaf (Go 1.23 and later).
	return pair, describe(objectName(namespace, name), use, pair.Leaf), nil
}

// pool reads a ca_secret's certificates.
func (s secretIndex) pool(namespace, name string) (*x509.CertPool, []byte, Certificate, error) {
	crt, _, err := s.read(namespace, name, false)
	if err != nil {
		return nil, nil, Certificate{}, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(crt) {
		return nil, nil, Certificate{}, fmt.Errorf("Secret %s/%s: %s holds no PEM certificate", namespace, name, secretCertKey)
	}
	return pool, crt, describe(objectName(namespace, name), UseCA, firstCertificate(crt)), nil
}

// firstCertificate parses the first certificate of a PEM bundle, for
// /status; nil if there is none.
func firstCertificate(bundle []byte) *x509.Certificate {
	for rest := bundle; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil
		}
		if block.Type == "CERTIFICATE" {
			if c, err := x509.ParseCertificate(block.Bytes); err == nil {
				return c
			}
		}
	}
}

func describe(secret, use string, cert *x509.Certificate) Certificate {
	c := Certificate{Secret: secret, Use: use}
	if cert == nil {
		return c
	}
	c.Names = slices.Clone(cert.DNSNames)
	if len(c.Names) == 0 && cert.Subject.CommonName != "" {
		c.Names = []string{cert.Subject.CommonName}
	}
	c.NotAfter = cert.NotAfter
	sum := sha256.Sum256(cert.Raw)
	c.Fingerprint = hex.EncodeToString(sum[:8])
	return c
}

// tlsSettings are the fields of a TLSContext (or of a Host's tls, which
// Emissary turns into a TLSContext of the Host's namespace) that decide a
// handshake, plus those the edge does not implement.
type tlsSettings struct {
	source       string // "TLSContext ns/name" or "Host ns/name", for messages
	namespace    string // where its Secrets are, unless a name says name.namespace
	namespacing  bool   // secret_namespacing: "name.namespace" names another namespace
	secret       string
	caSecret     string
	certRequired bool
	sni          string
	minVersion   string
	maxVersion   string
	hosts        []string
	// refused are set fields the edge cannot honour without weakening
	// the handshake (a CRL it would not check, certificates in files it
	// cannot read): the TLS is unavailable. ignored are set fields that do
	// not weaken it (ALPN, cipher suites): reported, then left out.
	refused, ignored []string
}

func contextSettings(c *ambv3.TLSContext) tlsSettings {
	sp := &c.Spec
	s := tlsSettings{
		source:       "TLSContext " + objectName(c.Namespace, c.Name),
		namespace:    c.Namespace,
		namespacing:  sp.SecretNamespacing == nil || *sp.SecretNamespacing,
		secret:       sp.Secret,
		caSecret:     sp.CASecret,
		certRequired: sp.CertRequired != nil && *sp.CertRequired,
		sni:          sp.SNI,
		minVersion:   sp.MinTLSVersion,
		maxVersion:   sp.MaxTLSVersion,
		hosts:        sp.Hosts,
	}
	s.refused, s.ignored = unsupportedTLS(sp.CertChainFile, sp.PrivateKeyFile, sp.CACertChainFile, sp.CRLSecret,
		sp.ALPNProtocols, len(sp.CipherSuites) > 0, len(sp.ECDHCurves) > 0, sp.RedirectCleartextFrom != nil)
	return s
}

// hostSettings reads a Host's tls: ir/irhost.py makes it a TLSContext
// named <host>-context in the Host's namespace, with the Host's tlsSecret.
func hostSettings(h *ambv3.Host, t *ambv3.TLSConfig) tlsSettings {
	s := tlsSettings{
		source:       "Host " + objectName(h.Namespace, h.Name),
		namespace:    h.Namespace,
		namespacing:  true,
		caSecret:     t.CASecret,
		certRequired: t.CertRequired != nil && *t.CertRequired,
		sni:          t.SNI,
		minVersion:   t.MinTLSVersion,
		maxVersion:   t.MaxTLSVersion,
	}
	s.refused, s.ignored = unsupportedTLS(t.CertChainFile, t.PrivateKeyFile, t.CAcertChainFile, t.CRLSecret,
		t.AlpnProtocols, len(t.CipherSuites) > 0, len(t.ECDHCurves) > 0, t.RedirectCleartextFrom != nil)
	return s
}

func unsupportedTLS(certFile, keyFile, caFile, crl, alpn string, ciphers, curves, redirect bool) (refused, ignored []string) {
	for _, f := range []struct {
		name string
		set  bool
	}{{"cert_chain_file", certFile != ""}, {"private_key_file", keyFile != ""}, {"cacert_chain_file", caFile != ""}, {"crl_secret", crl != ""}} {
		if f.set {
			refused = append(refused, f.name)
		}
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"alpn_protocols", alpn != ""}, {"cipher_suites", ciphers}, {"ecdh_curves", curves}, {"redirect_cleartext_from", redirect}} {
		if f.set {
			ignored = append(ignored, f.name)
		}
	}
	return refused, ignored
}

// secretRef is where a secret name of these settings points:
// ir/irtlscontext.py resolve_secret reads "name.namespace" as a Secret of
// another namespace unless secret_namespacing is false.
func (s tlsSettings) secretRef(name string) (namespace, secret string) {
	if i := strings.LastIndexByte(name, '.'); s.namespacing && i >= 0 {
		return name[i+1:], name[:i]
	}
	return s.namespace, name
}

// versions returns the settings' TLS versions, or Envoy's defaults.
func (s tlsSettings) versions(defaultMax uint16) (lo, hi uint16, err error) {
	lo, hi = defaultMinVersion, defaultMax
	if s.minVersion != "" {
		v, ok := tlsVersions[s.minVersion]
		if !ok {
			return 0, 0, fmt.Errorf("min_tls_version %q is not one of v1.0, v1.1, v1.2, v1.3", s.minVersion)
		}
		lo = v
	}
	if s.maxVersion != "" {
		v, ok := tlsVersions[s.maxVersion]
		if !ok {
			return 0, 0, fmt.Errorf("max_tls_version %q is not one of v1.0, v1.1, v1.2, v1.3", s.maxVersion)
		}
		hi = v
	}
	if s.minVersion != "" && hi < lo {
		// An explicit minimum above the default maximum raises the
		// maximum: the user asked for that version, not for no TLS.
		if s.maxVersion != "" {
			return 0, 0, fmt.Errorf("min_tls_version %s is above max_tls_version %s", s.minVersion, s.maxVersion)
		}
		hi = lo
	}
	return lo, hi, nil
}

// contextIndex finds TLSContexts by name, as Emissary does: by name alone,
// whatever the namespace (ir/ir.py get_tls_context).
type contextIndex map[string][]*ambv3.TLSContext

func newContextIndex(ctxs []*ambv3.TLSContext, ours func(ambv3.AmbassadorID) bool) contextIndex {
	idx := contextIndex{}
	for _, c := range ctxs {
		if c != nil && ours(c.Spec.AmbassadorID) {
			idx[c.Name] = append(idx[c.Name], c)
		}
	}
	for _, cs := range idx {
		slices.SortFunc(cs, func(a, b *ambv3.TLSContext) int { return cmp.Compare(a.Namespace, b.Namespace) })
	}
	return idx
}

// errContextMissing is a TLSContext name no TLSContext has.
var errContextMissing = errors.New("no TLSContext has this name")

// find returns the one TLSContext called name. Emissary stores resources of
// a kind by name alone: when two namespaces hold a TLSContext of the same
// name, the one it loads first keeps the name and the others are renamed
// name.namespace (config/config.py, safe_store), in an order the API does
// not fix. Such a name, or a name.namespace that could be one of the
// renamed, is ambiguous: the edge uses neither.
func (idx contextIndex) find(name string) (*ambv3.TLSContext, error) {
	cs := idx[name]
	switch {
	case len(cs) == 1:
		return cs[0], nil
	case len(cs) > 1:
		return nil, fmt.Errorf("TLSContext %s is defined in namespaces %s; Emissary keeps the one it loads first and renames the others <name>.<namespace> (config/config.py, safe_store), in an order the API does not fix", name, namespaces(cs))
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		base, ns := name[:i], name[i+1:]
		if cs := idx[base]; len(cs) > 1 && slices.ContainsFunc(cs, func(c *ambv3.TLSContext) bool { return c.Namespace == ns }) {
			return nil, fmt.Errorf("TLSContext %s names %s/%s only if Emissary loads another TLSContext %s first (config/config.py, safe_store), in an order the API does not fix", name, ns, base, base)
		}
	}
	return nil, errContextMissing
}

func namespaces(cs []*ambv3.TLSContext) string {
	var ns []string
	for _, c := range cs {
		ns = append(ns, c.Namespace)
	}
	return strings.Join(ns, ", ")
}

// termination is a TLS Host's TLS: the configuration its handshakes use,
// or why it has none (config nil). A Host whose TLS cannot be set up keeps
// its place among the TLS Hosts, so that a client that asks for it by SNI
// fails its handshake instead of reaching another Host, or cleartext.
type termination struct {
	config *tls.Config
	err    string
	// context is the TLSContext the Host names (spec.tlsContext), "" for
	// its own tls: Hosts of one server name share a TLS chain only when
	// they name the same TLSContext (envoy/v3/v3listener.py,
	// V3Chain.add_httphost).
	context string
	certs   []Certificate
}

// hostTLS reads a Host's TLS, as ir/irhost.py IRHost.setup does: a Host
// terminates TLS only with a tlsSecret; its client certificate policy is
// its tls, or the TLSContext its tlsContext names, or, when it gives
// neither, a TLSContext called <host>-context if one exists. It returns
// nil for a cleartext-only Host.
func (b *builder) hostTLS(h *ambv3.Host, ctxs contextIndex, secrets secretIndex) *termination {
	name := objectName(h.Namespace, h.Name)
	sp := h.Spec
	problem := func(field, format string, args ...any) {
		b.problems = append(b.problems, Problem{Host: name, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if sp == nil || sp.TLSSecret == nil || sp.TLSSecret.Name == "" {
		if sp != nil && (sp.TLS != nil || sp.TLSContext != nil) {
			problem("tlsSecret", "the Host has tls or tlsContext but no tlsSecret; Emissary terminates TLS only for a Host with a tlsSecret (ir/irhost.py, IRHost.setup), so this Host serves cleartext only, as its requestPolicy says")
		}
		return nil
	}
	term := &termination{}
	fail := func(field, format string, args ...any) *termination {
		term.config, term.err = nil, fmt.Sprintf(format, args...)
		problem(field, "%s; the dev edge fails every TLS handshake for this Host (Emissary would not serve the Host at all: ir/irhost.py, IRHost.setup)", term.err)
		return term
	}

	secretNS := cmp.Or(sp.TLSSecret.Namespace, h.Namespace)
	cert, info, err := secrets.keyPair(secretNS, sp.TLSSecret.Name, UseServer)
	if err != nil {
		return fail("tlsSecret", "%v", err)
	}
	term.certs = append(term.certs, info)

	var set tlsSettings
	switch {
	case sp.TLS != nil && sp.TLSContext != nil && sp.TLSContext.Name != "":
		return fail("tlsContext", "both tls and tlsContext are set")
	case sp.TLS != nil:
		set = hostSettings(h, sp.TLS)
	default:
		ctxName, field := h.Name+"-context", "tlsContext"
		if sp.TLSContext != nil && sp.TLSContext.Name != "" {
			ctxName = sp.TLSContext.Name
		}
		c, err := ctxs.find(ctxName)
		switch {
		case errors.Is(err, errContextMissing) && (sp.TLSContext == nil || sp.TLSContext.Name == ""):
			// No implicit TLSContext: serve the certificate, ask for none.
			set = tlsSettings{source: "Host " + name, namespace: h.Namespace, namespacing: true}
		case errors.Is(err, errContextMissing):
			return fail(field, "TLSContext %s does not exist", ctxName)
		case err != nil:
			return fail(field, "%v", err)
		default:
			set = contextSettings(c)
			term.context = objectName(c.Namespace, c.Name)
			// save_context: the TLSContext's secret, read in the Host's
			// namespace, must be the Host's tlsSecret.
			if c.Spec.Secret != "" && (c.Spec.Secret != sp.TLSSecret.Name || secretNS != h.Namespace) {
				return fail(field, "TLSContext %s has secret %s, not the Host's tlsSecret %s/%s (ir/irhost.py, save_context)", term.context, c.Spec.Secret, secretNS, sp.TLSSecret.Name)
			}
			if len(c.Spec.Hosts) > 0 && !slices.Contains(c.Spec.Hosts, cmp.Or(sp.Hostname, "*")) && !slices.Contains(c.Spec.Hosts, h.Name) {
				problem(field, "TLSContext %s lists hosts %v, not this Host's hostname; Emissary reports the mismatch and uses the TLSContext anyway, so does the dev edge", term.context, c.Spec.Hosts)
			}
		}
	}
	for _, f := range set.ignored {
		problem("tls", "%s sets %s: not supported by the dev edge, which leaves it out", set.source, f)
	}
	if len(set.refused) > 0 {
		return fail("tls", "%s sets %s, which the dev edge does not implement", set.source, strings.Join(set.refused, ", "))
	}
	lo, hi, err := set.versions(defaultServerMaxVersion)
	if err != nil {
		return fail("tls", "%s: %v", set.source, err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   lo,
		MaxVersion:   hi,
		// No ALPN: Emissary offers none unless alpn_protocols says so,
		// and clients then speak HTTP/1.1.
		//
		// No session tickets: a resumed session would skip the client
		// certificate check against the table's current ca_secret.
		SessionTicketsDisabled: true,
	}
	switch {
	case set.caSecret != "":
		ns, secret := set.secretRef(set.caSecret)
		pool, _, info, err := secrets.pool(ns, secret)
		if err != nil {
			return fail("tls", "ca_secret of %s: %v", set.source, err)
		}
		term.certs = append(term.certs, info)
		cfg.ClientCAs = pool
		// Envoy asks for a client certificate whenever it has a
		// trusted_ca, and refuses the connection without one only with
		// require_client_certificate (envoy/v3/v3tls.py).
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		if set.certRequired {
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
	case set.certRequired:
		return fail("tls", "%s sets cert_required without ca_secret: there is nothing to verify client certificates against", set.source)
	}
	term.config = cfg
	return term
}

// origin reads the TLSContext a Mapping's tls names, for origination, as
// ir/ircluster.py and envoy/v3/v3cluster.py use it: the client certificate
// from secret, the upstream's trust anchor from ca_secret, the SNI from
// sni. Origins are built once per name and shared by the Mappings that
// name them; problems is what the Mapping reports.
func (b *builder) origin(name string, ctxs contextIndex, secrets secretIndex) (o *Origin, problems []string) {
	if got, ok := b.origins[name]; ok {
		return got.origin, got.problems
	}
	o = &Origin{Context: name}
	defer func() { b.origins[name] = originResult{o, problems} }()
	unavailable := func(format string, args ...any) (*Origin, []string) {
		o.Unavailable = fmt.Sprintf(format, args...)
		return o, append(problems, o.Unavailable+"; the dev edge answers 503 rather than originate cleartext or skip verifying the upstream")
	}
	c, err := ctxs.find(name)
	switch {
	case errors.Is(err, errContextMissing):
		return unavailable("TLSContext %s does not exist (Emissary would report it and originate cleartext: ir/ircluster.py)", name)
	case err != nil:
		return unavailable("%v", err)
	}
	o.Context = objectName(c.Namespace, c.Name)
	set := contextSettings(c)
	for _, f := range set.ignored {
		b.problems = append(b.problems, Problem{TLSContext: o.Context, Field: f, Message: "not supported by the dev edge, which leaves it out"})
	}
	if len(set.refused) > 0 {
		return unavailable("TLSContext %s sets %s, which the dev edge does not implement", o.Context, strings.Join(set.refused, ", "))
	}
	// Emissary refuses ca_secret without secret ("cannot validate ...
	// without TLS termination", ir/irtlscontext.py), and without ca_secret
	// Envoy does not verify the upstream at all.
	if set.caSecret == "" {
		return unavailable("TLSContext %s has no ca_secret, so Emissary would not verify the upstream's certificate", o.Context)
	}
	if set.secret == "" {
		return unavailable("TLSContext %s has ca_secret but no secret, which Emissary refuses (ir/irtlscontext.py, resolve)", o.Context)
	}
	lo, hi, err := set.versions(defaultUpstreamMaxVersion)
	if err != nil {
		return unavailable("TLSContext %s: %v", o.Context, err)
	}
	ns, secret := set.secretRef(set.secret)
	cert, info, err := secrets.keyPair(ns, secret, UseClient)
	if err != nil {
		return unavailable("secret of TLSContext %s: %v", o.Context, err)
	}
	ns, secret = set.secretRef(set.caSecret)
	roots, caPEM, caInfo, err := secrets.pool(ns, secret)
	if err != nil {
		return unavailable("ca_secret of TLSContext %s: %v", o.Context, err)
	}
	b.certificates = append(b.certificates, info, caInfo)

	cfg := &tls.Config{
		// Always present the certificate, as Envoy does: Go would send
		// none when the server's list of acceptable CAs does not name its
		// issuer, and the gateway would then report a missing certificate
		// rather than the unknown CA it is.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		RootCAs:              roots,
		ServerName:           set.sni,
		MinVersion:           lo,
		MaxVersion:           hi,
	}
	if set.sni == "" {
		// Envoy sends no SNI then and checks the chain alone; Go would
		// check the endpoint's address against the certificate instead.
		cfg.InsecureSkipVerify = true //nolint:gosec // VerifyConnection verifies the chain
		cfg.VerifyConnection = verifyChain(roots)
	}
	o.config = cfg
	h := sha256.New()
	for _, part := range [][]byte{[]byte(o.Context), cert.Certificate[0], caPEM, []byte(set.sni), {byte(lo >> 8), byte(lo), byte(hi >> 8), byte(hi)}} {
		h.Write(part)
		h.Write([]byte{0})
	}
	o.key = hex.EncodeToString(h.Sum(nil)[:16])
	return o, problems
}

type originResult struct {
	origin   *Origin
	problems []string
}

// verifyChain verifies the peer's chain against roots, without a name: what
// Envoy's UpstreamTlsContext does with a trusted_ca and no SNI.
func verifyChain(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: the upstream sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
}
