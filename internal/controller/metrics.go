package controller

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Metrics are crossmap's own Prometheus series, all prefixed crossmap_.
// controller-runtime already exports reconcile counts and latencies per
// controller; these add what only crossmap knows.
type Metrics struct {
	// Reconciles counts finished reconciles by role and result.
	Reconciles *prometheus.CounterVec
	// Writes counts API writes by operation (create, update, delete,
	// status). A steady state adds nothing here.
	Writes *prometheus.CounterVec
	// PlanChanges counts planned changes by operation, including those a
	// dry run did not write.
	PlanChanges *prometheus.CounterVec
	// MirroredServices is the number of Services mirrored per Link.
	MirroredServices *prometheus.GaugeVec
	// Problems is the number of current problems by reason.
	Problems *prometheus.GaugeVec
	// RouteWeightChanges counts changes of a backend's effective weight.
	RouteWeightChanges *prometheus.CounterVec
	// Failovers counts a remote backend's effective weight leaving its
	// configured value (failover, or failback of local-first).
	Failovers *prometheus.CounterVec
	// GatewayAlive is 1 while a Link's gateway passes its probe.
	GatewayAlive *prometheus.GaugeVec
	// ProbeLatency is the latency of a Link's last successful probe.
	ProbeLatency *prometheus.GaugeVec
	// PropagationLag is the time from a remote change reaching crossmap to
	// the mirrors being written.
	PropagationLag *prometheus.HistogramVec
	// CertificateExpiry is when each certificate crossmap issued expires.
	CertificateExpiry *prometheus.GaugeVec
	// GatewayCertificateExpiry is when the certificate each Link's gateway
	// presented to the last probe expires.
	GatewayCertificateExpiry *prometheus.GaugeVec
	// HandshakeFailures counts failed mutual TLS handshakes of gateway
	// probes, by Link and reason.
	HandshakeFailures *prometheus.CounterVec
	// DrillActive is 1 while a drill drains a cluster, 0 once it has
	// ended; DrillUntil is when it ends (or ended).
	DrillActive *prometheus.GaugeVec
	DrillUntil  *prometheus.GaugeVec
}

// NewMetrics creates the series and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		Reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crossmap_reconciles_total", Help: "Finished reconciles by role and result.",
		}, []string{"role", "result"}),
		Writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crossmap_api_writes_total", Help: "Writes crossmap made to its own cluster's API server, by operation.",
		}, []string{"operation"}),
		PlanChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crossmap_plan_changes_total", Help: "Changes planned by the diff stage, by operation.",
		}, []string{"operation"}),
		MirroredServices: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crossmap_mirrored_services", Help: "Services mirrored from the remote cluster of each Link.",
		}, []string{"link"}),
		Problems: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crossmap_problems", Help: "Current problems by reason.",
		}, []string{"reason"}),
	}
	m.RouteWeightChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crossmap_route_weight_changes_total", Help: "Changes of a route backend's effective weight, by route and cluster.",
	}, []string{"route", "cluster"})
	m.Failovers = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crossmap_failovers_total", Help: "Times a remote backend's effective weight left its configured weight, by route and cluster.",
	}, []string{"route", "cluster"})
	m.GatewayAlive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "crossmap_gateway_alive", Help: "1 while the Link's remote gateway passes its probe (or has none), else 0.",
	}, []string{"link"})
	m.ProbeLatency = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "crossmap_probe_latency_seconds", Help: "Latency of the last successful gateway probe of each Link.",
	}, []string{"link"})
	m.PropagationLag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "crossmap_propagation_lag_seconds", Help: "Time from a remote change reaching crossmap to the local mirrors being written.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"link"})
	m.CertificateExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "crossmap_certificate_expiry_timestamp_seconds", Help: "When each certificate crossmap issued in this cluster expires (Unix time), by Secret.",
	}, []string{"secret"})
	m.GatewayCertificateExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "crossmap_gateway_certificate_expiry_timestamp_seconds", Help: "When the certificate each Link's gateway last presented expires (Unix time).",
	}, []string{"link"})
	m.HandshakeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crossmap_tls_handshake_failures_total", Help: "Failed mutual TLS handshakes with each Link's gateway, by reason (UnknownCA, CertificateExpired, IdentityMismatch, CertificateRejected, HandshakeFailed).",
	}, []string{"link", "reason"})
	m.DrillActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "crossmap_drill_active", Help: "1 while a drill drains the cluster for routing, 0 after it ended; absent without a drill record.",
	}, []string{"cluster"})
	m.DrillUntil = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "crossmap_drill_until_timestamp_seconds", Help: "When the cluster's drill ends by itself (Unix time).",
	}, []string{"cluster"})
	for _, c := range []prometheus.Collector{m.Reconciles, m.Writes, m.PlanChanges, m.MirroredServices, m.Problems, m.RouteWeightChanges, m.Failovers, m.GatewayAlive, m.ProbeLatency, m.PropagationLag,
		m.CertificateExpiry, m.GatewayCertificateExpiry, m.HandshakeFailures, m.DrillActive, m.DrillUntil} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// counted wraps a reconciler so that every finished reconcile is counted.
func counted(role string, m *Metrics, r reconcile.Reconciler) reconcile.Reconciler {
	return reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
		res, err := r.Reconcile(ctx, req)
		result := "success"
		if err != nil {
			result = "error"
		}
		m.Reconciles.WithLabelValues(role, result).Inc()
		return res, err
	})
}
