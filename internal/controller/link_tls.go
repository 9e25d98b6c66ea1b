package controller

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crossmap/crossmap/ingress"
	"github.com/crossmap/crossmap/internal/pki"
)

// This file is the client side of cross-cluster mutual TLS: the
// certificate and trust anchor every Link's probe presents and trusts.

// clientTLS is the TLS configuration toward a gateway named identity: this
// cluster's client certificate and the trust anchor, read from the Secrets
// the trust role writes. fingerprint changes with the Secret's material.
func (r *LinkReconciler) clientTLS(ctx context.Context, identity string) (cfg *tls.Config, notAfter time.Time, fingerprint string, err error) {
	var sec corev1.Secret
	key := types.NamespacedName{Namespace: r.Config.Namespace, Name: ingress.ClientCertSecret}
	if err := r.Client.Get(ctx, key, &sec); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, time.Time{}, "", fmt.Errorf("client certificate Secret %s not issued yet; is the trust anchor Secret %s/%s present? (see the status API's problems)", key, r.Config.Namespace, r.Config.TrustAnchorSecret)
		}
		return nil, time.Time{}, "", err
	}
	// Every reconcile of every Link asks, and the Secret changes once a
	// renewal: parse it once per version.
	r.mu.Lock()
	m := r.clientMaterial
	r.mu.Unlock()
	if m.version != sec.ResourceVersion || m.version == "" {
		pair, err := tls.X509KeyPair(sec.Data[pki.CertKey], sec.Data[pki.KeyKey])
		if err != nil {
			return nil, time.Time{}, "", fmt.Errorf("client certificate Secret %s: %w", key, err)
		}
		roots, err := pki.Pool(sec.Data[pki.CACertKey])
		if err != nil {
			return nil, time.Time{}, "", fmt.Errorf("client certificate Secret %s key %s: %w", key, pki.CACertKey, err)
		}
		sum := sha256.Sum256(slices.Concat(sec.Data[pki.CertKey], sec.Data[pki.CACertKey]))
		// X509KeyPair fills in the parsed leaf.
		m = clientMaterial{version: sec.ResourceVersion, pair: pair, roots: roots,
			notAfter: pair.Leaf.NotAfter, fingerprint: hex.EncodeToString(sum[:8])}
		r.mu.Lock()
		r.clientMaterial = m
		r.mu.Unlock()
	}
	return &tls.Config{
		Certificates: []tls.Certificate{m.pair},
		RootCAs:      m.roots,
		ServerName:   identity,
		MinVersion:   tls.VersionTLS12,
	}, m.notAfter, m.fingerprint, nil
}

// clientMaterial is the parsed client certificate Secret at one version.
type clientMaterial struct {
	version     string
	pair        tls.Certificate
	roots       *x509.CertPool
	notAfter    time.Time
	fingerprint string
}
