// Package pki is the trust stage beside the pipeline: the certificates that
// make traffic between linked clusters mutual TLS.
//
// Clusters that link share one trust anchor, a CA whose certificate and key
// the operator keeps in a Secret (NewCA makes one; `crossmap trust generate`
// prints it as a Secret). From it, each cluster's controller issues two
// leaf certificates for itself: the gateway's serving certificate and the
// client certificate its edge presents to remote gateways. Both name the
// cluster's identity, a DNS name, in their subjectAltName.
//
// The package is pure apart from crypto/rand: the clock is passed in, so
// that callers and tests decide what "now" is. Classify turns the errors of
// a failed handshake into the reasons a Link condition reports.
package pki
