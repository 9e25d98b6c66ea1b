package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
)

// Reasons a handshake fails, as a Link condition and the status API report
// them.
const (
	// ReasonUnknownCA: the peer's certificate is not signed by the trust
	// anchor.
	ReasonUnknownCA = "UnknownCA"
	// ReasonCertificateExpired: the peer's certificate has expired (or is
	// not valid yet).
	ReasonCertificateExpired = "CertificateExpired"
	// ReasonIdentityMismatch: the gateway's certificate does not name the
	// identity the Link expects.
	ReasonIdentityMismatch = "IdentityMismatch"
	// ReasonCertificateRejected: the gateway refused our client
	// certificate; the alert it sent says why, in the message.
	ReasonCertificateRejected = "CertificateRejected"
	// ReasonHandshakeFailed: any other TLS failure, plaintext on the other
	// end included.
	ReasonHandshakeFailed = "HandshakeFailed"
)

// Classify tells whether err is a TLS handshake failure and, if so, which
// one. Errors of the network itself (refused, timed out) are not: they say
// the gateway is down, not that it cannot be trusted.
func Classify(err error) (reason string, ok bool) {
	if err == nil {
		return "", false
	}
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		op       *net.OpError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown):
		return ReasonUnknownCA, true
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ReasonCertificateExpired, true
	case errors.As(err, &invalid):
		return ReasonHandshakeFailed, true
	case errors.As(err, &hostname):
		return ReasonIdentityMismatch, true
	case errors.As(err, &op) && op.Op == "remote error":
		// The peer sent an alert: during our handshake, that is the gateway
		// refusing the certificate we presented.
		msg := op.Err.Error()
		if strings.Contains(msg, "certificate") || strings.Contains(msg, "unknown ca") || strings.Contains(msg, "unknown certificate authority") {
			return ReasonCertificateRejected, true
		}
		return ReasonHandshakeFailed, true
	case errors.As(err, &record):
		// The other end does not speak TLS.
		return ReasonHandshakeFailed, true
	case strings.Contains(err.Error(), "tls: "):
		return ReasonHandshakeFailed, true
	}
	return "", false
}
