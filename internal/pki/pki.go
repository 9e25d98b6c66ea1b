package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Keys of the Secrets that hold certificates. The trust anchor Secret holds
// CACertKey and CAKeyKey; an issued Secret is a kubernetes.io/tls Secret that
// also carries the CA certificate, so that one Secret is all a listener
// needs.
const (
	CACertKey = "ca.crt"
	CAKeyKey  = "ca.key"
	CertKey   = "tls.crt"
	KeyKey    = "tls.key"
)

// maxBackdate is how far before "now" a certificate's validity starts, so
// that a peer whose clock runs a little behind accepts it at once; a tenth
// of the validity when that is shorter, so that RenewAt of a short-lived
// certificate stays after its issue.
const maxBackdate = 5 * time.Minute

func backdate(validity time.Duration) time.Duration { return min(maxBackdate, validity/10) }

// Usage says what a leaf certificate is for.
type Usage int

const (
	// Server certificates are served by a gateway.
	Server Usage = iota
	// Client certificates are presented by an edge to a remote gateway.
	Client
)

func (u Usage) String() string {
	if u == Client {
		return "client"
	}
	return "server"
}

// Authority is a trust anchor that can issue certificates.
type Authority struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// NewCA makes a self-signed CA certificate and its key, both PEM encoded.
func NewCA(commonName string, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"crossmap"}},
		NotBefore:             now.Add(-backdate(validity)),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	return sign(tmpl, tmpl, key, key)
}

// ParseAuthority reads a trust anchor from its PEM certificate and key, and
// checks that they belong together and that the certificate is a CA.
func ParseAuthority(certPEM, keyPEM []byte) (*Authority, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("CA certificate: not a CA (basicConstraints CA is false)")
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("CA key does not match the CA certificate")
	}
	return &Authority{Cert: cert, CertPEM: certPEM, key: key}, nil
}

// Issue signs a new leaf certificate for identity, a DNS name, valid from
// now for validity (but never beyond the CA's own expiry).
func (a *Authority) Issue(identity string, usage Usage, validity time.Duration, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(a.Cert.NotAfter) {
		notAfter = a.Cert.NotAfter
	}
	eku := x509.ExtKeyUsageServerAuth
	if usage == Client {
		eku = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: identity, Organization: []string{"crossmap"}},
		DNSNames:    []string{identity},
		NotBefore:   now.Add(-backdate(validity)),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{eku},
	}
	return sign(tmpl, a.Cert, key, a.key)
}

func sign(tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, signer crypto.Signer) (certPEM, keyPEM []byte, err error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// ParseCertificate returns the first certificate in a PEM bundle.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM CERTIFICATE block")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

// Pool returns a pool holding every certificate in caPEM.
func Pool(caPEM []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no usable PEM CERTIFICATE block")
	}
	return pool, nil
}

func parseKey(keyPEM []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// RenewAt is when a certificate should be replaced: once two thirds of its
// lifetime have passed, which leaves a third of it (8 hours of a day) for
// a renewal that fails to be retried. Issue's backdating is at most a tenth
// of the validity, so this is always after the certificate was issued.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life * 2 / 3)
}

// Fingerprint is the SHA-256 of a certificate's DER, in hex: short enough
// for a log line, unique enough to tell two certificates apart.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:8])
}

// VerifyLeaf checks that certPEM/keyPEM form a pair, that the certificate
// chains to roots for usage and names identity, and that it is valid at
// now. It is how a controller decides whether an issued Secret can stay.
func VerifyLeaf(certPEM, keyPEM []byte, roots *x509.CertPool, identity string, usage Usage, now time.Time) (*x509.Certificate, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("key does not match the certificate")
	}
	eku := x509.ExtKeyUsageServerAuth
	if usage == Client {
		eku = x509.ExtKeyUsageClientAuth
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: identity, Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
		return nil, err
	}
	return cert, nil
}
