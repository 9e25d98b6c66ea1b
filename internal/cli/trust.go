package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/crossmap/crossmap/internal/pki"
)

// TrustOptions says what trust anchor `crossmap trust generate` makes.
type TrustOptions struct {
	Name, Namespace string
	CommonName      string
	Validity        time.Duration
}

// DefaultTrustOptions matches the controller's defaults, so that the
// printed Secret is found without flags on either side.
func DefaultTrustOptions() TrustOptions {
	return TrustOptions{
		Name: "crossmap-trust-anchor", Namespace: "crossmap-system",
		CommonName: "crossmap trust anchor",
		// Ten years: the anchor is rotated by hand (README, "Rotating the
		// trust anchor"), unlike the leaves crossmap renews itself.
		Validity: 10 * 365 * 24 * time.Hour,
	}
}

// BindFlags registers the options on fs.
func (o *TrustOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Name, "name", o.Name, "name of the Secret (the controller's --trust-anchor-secret)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace of the Secret (the controller's --namespace)")
	fs.StringVar(&o.CommonName, "common-name", o.CommonName, "subject common name of the CA certificate")
	fs.DurationVar(&o.Validity, "validity", o.Validity, "lifetime of the CA certificate")
}

// Validate reports every invalid option at once.
func (o *TrustOptions) Validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Subdomain(o.Name); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--name %q: %s", o.Name, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--namespace %q: %s", o.Namespace, strings.Join(msgs, "; ")))
	}
	if o.CommonName == "" {
		errs = append(errs, errors.New("--common-name must not be empty"))
	}
	if o.Validity < time.Hour {
		errs = append(errs, fmt.Errorf("--validity must be at least 1h, got %s", o.Validity))
	}
	return errors.Join(errs...)
}

// TrustAnchorSecret makes a new CA and returns it as the Secret the
// controller reads.
func TrustAnchorSecret(o TrustOptions, now time.Time) (*corev1.Secret, error) {
	certPEM, keyPEM, err := pki.NewCA(o.CommonName, o.Validity, now)
	if err != nil {
		return nil, fmt.Errorf("generate CA: %w", err)
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Name, Namespace: o.Namespace},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{pki.CACertKey: certPEM, pki.CAKeyKey: keyPEM},
	}, nil
}

// TrustAnchorYAML is TrustAnchorSecret as a manifest, with a comment saying
// what to do with it.
func TrustAnchorYAML(o TrustOptions, now time.Time) ([]byte, error) {
	s, err := TrustAnchorSecret(o, now)
	if err != nil {
		return nil, err
	}
	out, err := yaml.Marshal(s)
	if err != nil {
		return nil, err
	}
	header := "# crossmap trust anchor: apply the SAME Secret in every cluster that links, then\n" +
		"# keep this file somewhere safe (it holds the CA's private key) or delete it.\n"
	return append([]byte(header), out...), nil
}
