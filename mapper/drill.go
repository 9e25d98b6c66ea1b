package mapper

import (
	"slices"
)

// This file answers a drill's what-if (issue 16): what every route's
// weights would be if a cluster were lost now. It changes nothing but the
// lost cluster's health in the snapshot and runs the translation the route
// role runs (Routes, and HeldRoute for held routes), so the answer is the
// weights the route role would write, not a second model of them.

// DrillBackend is one backend of a route in a what-if: its effective
// weight now and if the cluster were lost.
type DrillBackend struct {
	// Cluster is empty for the local backend.
	Cluster string `json:"cluster,omitempty"`
	Service string `json:"service"`
	// Header is set on dev routes, which have no weight.
	Header string `json:"header,omitempty"`
	// Now and IfLost are the effective weights.
	Now    int `json:"now"`
	IfLost int `json:"ifLost"`
	// HealthyNow and HealthyIfLost say whether it could take traffic.
	HealthyNow    bool `json:"healthyNow"`
	HealthyIfLost bool `json:"healthyIfLost"`
	// Reason is why it is unhealthy, or why its weight moved, if lost.
	Reason string `json:"reason,omitempty"`
}

// DrillRoute is one annotated Mapping in a what-if.
type DrillRoute struct {
	// Route is the annotated Mapping, namespace/name.
	Route    string `json:"route"`
	Failover string `json:"failover"`
	Held     bool   `json:"held,omitempty"`
	// Affected is true when the lost cluster is one of its backends.
	Affected bool           `json:"affected"`
	Backends []DrillBackend `json:"backends"`
	// NoHealthyBackend is true when, with the cluster lost, neither the
	// local backend nor any remote of the split could take traffic.
	NoHealthyBackend bool `json:"noHealthyBackend"`
	// Unserved is the weight, in percent of the route's requests, that
	// would still go to backends that cannot take it (failover off, or
	// nothing healthy), beyond what already does now.
	Unserved int `json:"unserved"`
}

// AtRisk reports whether losing the cluster would cost the route
// requests: a drill of it needs --force.
func (r DrillRoute) AtRisk() bool { return r.NoHealthyBackend || r.Unserved > 0 }

// WhatIf returns, for every annotated Mapping the snapshot routes, its
// weights now and if cluster were lost now: every Link of that cluster
// drained, as a drill drains it. Routes come in Routes' order.
func WhatIf(s RouteSnapshot, cluster string) []DrillRoute {
	lost := s
	lost.Links = slices.Clone(s.Links)
	for i := range lost.Links {
		if lost.Links[i].Cluster == cluster {
			lost.Links[i].Drained = true
		}
	}
	now := map[string]routeWeights{}
	for _, w := range routeBackends(s) {
		now[w.key] = w
	}
	after := routeBackends(lost)
	out := make([]DrillRoute, 0, len(after))
	for _, a := range after {
		n := now[a.key]
		dr := DrillRoute{Route: a.key, Failover: a.failover, Held: a.held, Backends: []DrillBackend{}}
		unservedNow, unservedAfter, healthyAfter := 0, 0, false
		for _, b := range a.backends {
			db := DrillBackend{Cluster: b.Cluster, Service: b.Service, Header: b.Header, IfLost: b.Effective,
				HealthyIfLost: b.Healthy, Reason: b.Reason}
			if i := slices.IndexFunc(n.backends, func(o RouteBackend) bool { return o.Cluster == b.Cluster && o.Header == b.Header }); i >= 0 {
				db.Now, db.HealthyNow = n.backends[i].Effective, n.backends[i].Healthy
			}
			dr.Affected = dr.Affected || b.Cluster == cluster
			dr.Backends = append(dr.Backends, db)
			if b.Header != "" {
				continue // a dev route takes no share of the split
			}
			healthyAfter = healthyAfter || b.Healthy
			if !b.Healthy {
				unservedAfter += b.Effective
			}
			if !db.HealthyNow {
				unservedNow += db.Now
			}
		}
		hasSplit := slices.ContainsFunc(a.backends, func(b RouteBackend) bool { return b.Header == "" })
		dr.NoHealthyBackend = hasSplit && !healthyAfter
		dr.Unserved = max(0, unservedAfter-unservedNow)
		if !dr.Affected {
			// Losing another cluster leaves it as it is.
			dr.NoHealthyBackend, dr.Unserved = false, 0
		}
		out = append(out, dr)
	}
	return out
}

type routeWeights struct {
	key      string
	failover string
	held     bool
	backends []RouteBackend
}

// routeBackends is what the route role computes for each route of s: for
// a held route, the weights of its last valid configuration, as the
// route role keeps it (HeldRoute).
func routeBackends(s RouteSnapshot) []routeWeights {
	t := TranslateRoutes(s)
	var out []routeWeights
	for _, r := range t.Routes {
		w := routeWeights{key: r.Source.Namespace + "/" + r.Source.Name, failover: r.Failover, held: r.Held, backends: r.Backends}
		if r.Held {
			_, w.backends, _ = t.HeldRoute(t.ix.generatedBy(r.Source))
		}
		out = append(out, w)
	}
	return out
}
