package controller

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/crossmap/crossmap/internal/pki"
)

// TestKeepOrIssue checks the trust role's one decision: keep the
// certificate in a Secret, or issue a new one, and why.
func TestKeepOrIssue(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	newCA := func() *pki.Authority {
		certPEM, keyPEM, err := pki.NewCA("anchor", 365*24*time.Hour, now.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		ca, err := pki.ParseAuthority(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return ca
	}
	ca, other := newCA(), newCA()
	roots, _ := pki.Pool(ca.CertPEM)
	const id = "west.crossmap-gateway.svc.cluster.local"
	r := &TrustReconciler{Config: Config{CertValidity: 24 * time.Hour}}
	secretOf := func(issuer *pki.Authority, identity string, usage pki.Usage, validity time.Duration, at time.Time) *corev1.Secret {
		certPEM, keyPEM, err := issuer.Issue(identity, usage, validity, at)
		if err != nil {
			t.Fatal(err)
		}
		return &corev1.Secret{Data: map[string][]byte{pki.CertKey: certPEM, pki.KeyKey: keyPEM, pki.CACertKey: issuer.CertPEM}}
	}
	for _, tc := range []struct {
		name    string
		current *corev1.Secret
		want    string // a prefix of why; "" keeps the current certificate
	}{
		{name: "missing", current: nil, want: "missing"},
		{name: "fresh", current: secretOf(ca, id, pki.Client, 24*time.Hour, now.Add(-time.Hour)), want: ""},
		{name: "two thirds gone", current: secretOf(ca, id, pki.Client, 24*time.Hour, now.Add(-17*time.Hour)), want: "renewal due"},
		{name: "expired", current: secretOf(ca, id, pki.Client, time.Hour, now.Add(-2*time.Hour)), want: "current certificate unusable: x509: certificate has expired or is not yet valid: current time 2026-11-25T12:00:00Z is after 2026-11-25T11:00:00Z"},
		{name: "other identity", current: secretOf(ca, "east.crossmap-gateway.svc.cluster.local", pki.Client, 24*time.Hour, now), want: "current certificate unusable: x509: certificate is valid for east.crossmap-gateway.svc.cluster.local, not west.crossmap-gateway.svc.cluster.local"},
		{name: "server usage", current: secretOf(ca, id, pki.Server, 24*time.Hour, now), want: "current certificate unusable: x509: certificate specifies an incompatible key usage"},
		{name: "validity shortened", current: secretOf(ca, id, pki.Client, 72*time.Hour, now), want: "validity shortened"},
		{name: "another CA", current: secretOf(other, id, pki.Client, 24*time.Hour, now), want: "current certificate unusable: x509: certificate signed by unknown authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, keyPEM, cert, why := r.keepOrIssue(tc.current, ca, roots, id, pki.Client, now)
			if (tc.want == "") != (why == "") || !strings.HasPrefix(why, tc.want) {
				t.Errorf("why = %q; want it to start with %q", why, tc.want)
			}
			if tc.want == "" && string(certPEM) != string(tc.current.Data[pki.CertKey]) {
				t.Errorf("a good certificate was replaced")
			}
			// Whatever was decided, the result is a usable pair for id.
			if _, err := pki.VerifyLeaf(certPEM, keyPEM, roots, id, pki.Client, now); err != nil {
				t.Errorf("the certificate handed on does not verify: %v", err)
			}
			if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("certificate not signed by the anchor: %v", err)
			}
		})
	}

	// The second step of a trust anchor rotation: both CAs trusted, the new
	// one signing. A certificate of the old CA is replaced.
	bundle := append(append([]byte{}, other.CertPEM...), ca.CertPEM...)
	both, _ := pki.Pool(bundle)
	_, _, cert, why := r.keepOrIssue(secretOf(ca, id, pki.Client, 24*time.Hour, now), other, both, id, pki.Client, now)
	if why != "signed by another CA than the trust anchor's first" || cert.CheckSignatureFrom(other.Cert) != nil {
		t.Errorf("rotation: why = %q; want the certificate moved to the new CA", why)
	}
}
