package controller

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// Config is everything the controller can be told. BindFlags fills it from
// the command line and Validate checks it, kept apart so that tests build a
// Config directly.
type Config struct {
	// ClusterName is this cluster's own name, recorded on gateway objects.
	ClusterName string
	// Namespace holds the Links, their credential Secrets and the gateway
	// Host.
	Namespace string
	// ExportSelector selects this cluster's exported Services.
	ExportSelector string
	// GatewayHostName names the gateway Host.
	GatewayHostName string
	// AmbassadorID is set on every Emissary object crossmap writes.
	AmbassadorID []string
	// Export, Import and Routes turn the three roles on.
	Export, Import, Routes bool
	// MCS turns the Multi-Cluster Services role on: a ServiceExport
	// exports its Service too (gateway routes, mirrors in linked
	// clusters), and the clusterset's exports become ServiceImports here.
	MCS bool
	// DevHeader is the request header whose value selects a dev route.
	DevHeader string
	// ServedByHeader is the response header crossmap's Mappings add,
	// naming the cluster whose backend answered; empty turns it off.
	ServedByHeader string
	// TrafficSplit writes an SMI TrafficSplit for every annotated Mapping
	// that does not say otherwise.
	TrafficSplit bool
	// TrafficSplitVersion is v1alpha2 (integer weights) or v1alpha1
	// (quantities).
	TrafficSplitVersion string
	// RemoteHealthPeriod is how often each remote API server is checked.
	RemoteHealthPeriod time.Duration
	// ResolvePeriod is how often gateway DNS names are resolved again.
	ResolvePeriod time.Duration
	// StatusAddr is where the status API listens ("0" turns it off).
	StatusAddr string
	// PprofAddr is where Go's profiler (/debug/pprof/) listens; empty or
	// "0" turns it off, the default.
	PprofAddr string
	// LeaderElect makes only one replica write.
	LeaderElect bool
	// DryRun computes and logs plans without writing anything.
	DryRun bool
	// TrustAnchorSecret names the Secret in Namespace holding the trust
	// anchor (ca.crt, ca.key) that every linked cluster shares.
	TrustAnchorSecret string
	// CertValidity is how long an issued certificate is valid; it is
	// renewed after two thirds of that.
	CertValidity time.Duration
	// InsecureCleartext turns cross-cluster mTLS off: the gateway accepts
	// cleartext from anyone and the edge sends cleartext. Dev clusters only.
	InsecureCleartext bool
}

// MutualTLS says whether traffic between clusters is mutual TLS.
func (c *Config) MutualTLS() bool { return !c.InsecureCleartext }

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "crossmap-system"
	}
	return Config{
		ClusterName:         "local",
		Namespace:           ns,
		ExportSelector:      crossmapv1.ExportLabel + "=true",
		GatewayHostName:     "crossmap-gateway",
		Export:              true,
		Import:              true,
		Routes:              true,
		DevHeader:           "x-crossmap-cluster",
		ServedByHeader:      "x-crossmap-cluster",
		TrafficSplitVersion: ingress.TrafficSplitV1alpha2,
		RemoteHealthPeriod:  5 * time.Second,
		ResolvePeriod:       30 * time.Second,
		StatusAddr:          ":8090",
		TrustAnchorSecret:   "crossmap-trust-anchor",
		CertValidity:        24 * time.Hour,
	}
}

// BindFlags registers the controller's flags on fs, with c's values as
// defaults.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.ClusterName, "cluster-name", c.ClusterName, "this cluster's name, recorded on the gateway objects it writes")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "namespace of the Links, their credential Secrets and the gateway Host ($POD_NAMESPACE when set)")
	fs.StringVar(&c.ExportSelector, "export-selector", c.ExportSelector, "label selector of the Services this cluster exports to others")
	fs.StringVar(&c.GatewayHostName, "gateway-host", c.GatewayHostName, "name of the Emissary Host the gateway Mappings bind to")
	fs.Func("ambassador-id", "ambassador_id to set on written Emissary objects (repeatable)", func(s string) error {
		c.AmbassadorID = append(c.AmbassadorID, s)
		return nil
	})
	fs.BoolVar(&c.Export, "export", c.Export, "run the export role: gateway Mappings and Host for exported Services")
	fs.BoolVar(&c.Import, "import", c.Import, "run the import role: mirror the exported Services of linked clusters")
	fs.BoolVar(&c.Routes, "routes", c.Routes, "run the route role: sibling Mappings for Mappings annotated crossmap.io/split or crossmap.io/dev-routes")
	fs.BoolVar(&c.MCS, "mcs", c.MCS, "run the Multi-Cluster Services role (KEP-1645): ServiceExports export their Services too, and every linked cluster's exports become ServiceImports here; needs the MCS CRDs (manifests/mcs)")
	fs.StringVar(&c.DevHeader, "dev-header", c.DevHeader, "request header whose value (a linked cluster's name) selects a dev route")
	fs.StringVar(&c.ServedByHeader, "served-by-header", c.ServedByHeader, "response header naming the cluster whose backend answered, added by the gateway Mappings and dev routes crossmap writes; empty turns it off")
	fs.BoolVar(&c.TrafficSplit, "traffic-split", c.TrafficSplit, "also write an SMI TrafficSplit for annotated Mappings (crossmap.io/traffic-split overrides it per Mapping)")
	fs.StringVar(&c.TrafficSplitVersion, "traffic-split-version", c.TrafficSplitVersion, "TrafficSplit API version to write: v1alpha2 (integer weights) or v1alpha1 (quantities)")
	fs.DurationVar(&c.RemoteHealthPeriod, "remote-health-period", c.RemoteHealthPeriod, "how often each remote API server's /readyz is checked")
	fs.DurationVar(&c.ResolvePeriod, "resolve-period", c.ResolvePeriod, "how often gateway DNS names are resolved again")
	fs.StringVar(&c.StatusAddr, "status-addr", c.StatusAddr, "address of the status API (/status, /healthz, /readyz); \"0\" turns it off")
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "address to serve Go's profiler on (/debug/pprof/), for diagnosing CPU and memory; off by default, keep it on loopback")
	fs.BoolVar(&c.LeaderElect, "leader-elect", c.LeaderElect, "elect a leader so that only one replica writes")
	fs.BoolVar(&c.DryRun, "dry-run", c.DryRun, "compute and log every plan, but write nothing")
	fs.StringVar(&c.TrustAnchorSecret, "trust-anchor-secret", c.TrustAnchorSecret, "Secret (in --namespace) holding the trust anchor shared by linked clusters, keys ca.crt and ca.key; make one with 'crossmap trust generate' and apply it in every linked cluster")
	fs.DurationVar(&c.CertValidity, "cert-validity", c.CertValidity, "lifetime of the gateway and client certificates crossmap issues; each is renewed after two thirds of it")
	fs.BoolVar(&c.InsecureCleartext, "insecure-cleartext", c.InsecureCleartext, "turn cross-cluster mTLS off: the gateway routes cleartext from anyone who can reach it, and routes to other clusters are cleartext. For dev clusters only; logged as a warning")
}

// Validate reports every invalid setting at once.
func (c *Config) Validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(c.ClusterName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--cluster-name %q: %s", c.ClusterName, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1123Label(c.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--namespace %q: %s", c.Namespace, strings.Join(msgs, "; ")))
	}
	if sel, err := labels.Parse(c.ExportSelector); err != nil {
		errs = append(errs, fmt.Errorf("--export-selector %q: %w", c.ExportSelector, err))
	} else if sel.Empty() {
		errs = append(errs, fmt.Errorf("--export-selector must not be empty: it would export every Service"))
	}
	if msgs := validation.IsDNS1123Subdomain(c.GatewayHostName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--gateway-host %q: %s", c.GatewayHostName, strings.Join(msgs, "; ")))
	}
	if !c.Export && !c.Import && !c.Routes && !c.MCS {
		errs = append(errs, errors.New("--export=false, --import=false and --routes=false leave nothing to do"))
	}
	if msgs := validation.IsHTTPHeaderName(c.DevHeader); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--dev-header %q: %s", c.DevHeader, strings.Join(msgs, "; ")))
	}
	if c.ServedByHeader != "" {
		if msgs := validation.IsHTTPHeaderName(c.ServedByHeader); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--served-by-header %q: %s", c.ServedByHeader, strings.Join(msgs, "; ")))
		}
	}
	if c.TrafficSplitVersion != ingress.TrafficSplitV1alpha2 && c.TrafficSplitVersion != ingress.TrafficSplitV1alpha1 {
		errs = append(errs, fmt.Errorf("--traffic-split-version %q: want %s or %s", c.TrafficSplitVersion, ingress.TrafficSplitV1alpha2, ingress.TrafficSplitV1alpha1))
	}
	if c.RemoteHealthPeriod <= 0 {
		errs = append(errs, fmt.Errorf("--remote-health-period must be positive, got %s", c.RemoteHealthPeriod))
	}
	if msgs := validation.IsDNS1123Subdomain(c.TrustAnchorSecret); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--trust-anchor-secret %q: %s", c.TrustAnchorSecret, strings.Join(msgs, "; ")))
	}
	if c.CertValidity < 30*time.Second {
		errs = append(errs, fmt.Errorf("--cert-validity must be at least 30s, got %s", c.CertValidity))
	}
	if c.ResolvePeriod <= 0 {
		errs = append(errs, fmt.Errorf("--resolve-period must be positive, got %s", c.ResolvePeriod))
	}
	return errors.Join(errs...)
}
