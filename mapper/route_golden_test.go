package mapper_test

import (
	"path/filepath"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
)

// Golden tests of the route translation, in the style of golden_test.go:
// testdata/routes/<case>.in.yaml is a RouteSnapshot, <case>.out.yaml what
// Routes renders from it. Each input starts with a comment that says what
// is expected and why; read it next to the output after every -update.
//
//	go test ./mapper -run RouteGolden -update

// routeCase is the input of a route golden case: a RouteSnapshot in YAML,
// with full API objects as they would be read from the cluster.
type routeCase struct {
	Mappings            []ambv3.Mapping             `json:"mappings,omitempty"`
	Hosts               []ambv3.Host                `json:"hosts,omitempty"`
	Services            []corev1.Service            `json:"services,omitempty"`
	Slices              []discoveryv1.EndpointSlice `json:"slices,omitempty"`
	Links               []linkHealthCase            `json:"links,omitempty"`
	AmbassadorID        []string                    `json:"ambassadorID,omitempty"`
	DevHeader           string                      `json:"devHeader,omitempty"`
	ServedByHeader      string                      `json:"servedByHeader,omitempty"`
	TrafficSplit        bool                        `json:"trafficSplit,omitempty"`
	TrafficSplitVersion string                      `json:"trafficSplitVersion,omitempty"`
}

// linkHealthCase is mapper.LinkHealth with YAML field names.
type linkHealthCase struct {
	Namespace    string          `json:"namespace"`
	Name         string          `json:"name"`
	Cluster      string          `json:"cluster"`
	Mode         crossmapv1.Mode `json:"mode"`
	GatewayAlive bool            `json:"gatewayAlive"`
	OriginTLS    string          `json:"originTLS,omitempty"`
}

// routeResult is one Route as a golden output shows it.
type routeResult struct {
	Source   mapper.ObjectRef      `json:"source"`
	Held     bool                  `json:"held"`
	Failover string                `json:"failover"`
	Backends []mapper.RouteBackend `json:"backends"`
	// Group is what is in force: the Emissary group of the snapshot.
	Group      *mapper.RouteGroup `json:"group,omitempty"`
	HeldReason string             `json:"heldReason,omitempty"`
	Problems   []mapper.Problem   `json:"problems"`
	Objects    []mapper.Object    `json:"objects"`
}

// routesResult is the output of a route golden case: every Route, in the
// order Routes returns them.
type routesResult struct {
	Routes []routeResult `json:"routes"`
}

func TestRouteGolden(t *testing.T) {
	for _, name := range goldenCases(t, "routes") {
		t.Run(name, func(t *testing.T) {
			got := marshalYAML(t, runRoutes(loadRoutes(t, name)))
			checkGolden(t, filepath.Join("testdata", "routes", name+".out.yaml"), got)
		})
	}
}

func runRoutes(s mapper.RouteSnapshot) routesResult {
	out := routesResult{Routes: []routeResult{}}
	for _, r := range mapper.Routes(s) {
		out.Routes = append(out.Routes, routeResult{
			Source:     r.Source,
			Held:       r.Held,
			Failover:   r.Failover,
			Backends:   nonNil(r.Backends),
			Group:      r.Group,
			HeldReason: r.HeldReason,
			Problems:   nonNil(r.Problems),
			Objects:    nonNil(r.Objects),
		})
	}
	return out
}

func loadRoutes(t testing.TB, name string) mapper.RouteSnapshot {
	t.Helper()
	var c routeCase
	readYAML(t, filepath.Join("testdata", "routes", name+".in.yaml"), &c)
	s := mapper.RouteSnapshot{
		AmbassadorID:        c.AmbassadorID,
		DevHeader:           c.DevHeader,
		ServedByHeader:      c.ServedByHeader,
		TrafficSplit:        c.TrafficSplit,
		TrafficSplitVersion: c.TrafficSplitVersion,
	}
	for i := range c.Mappings {
		s.Mappings = append(s.Mappings, &c.Mappings[i])
	}
	for i := range c.Hosts {
		s.Hosts = append(s.Hosts, &c.Hosts[i])
	}
	for i := range c.Services {
		s.Services = append(s.Services, &c.Services[i])
	}
	for i := range c.Slices {
		s.Slices = append(s.Slices, &c.Slices[i])
	}
	for _, l := range c.Links {
		s.Links = append(s.Links, mapper.LinkHealth{
			Namespace: l.Namespace, Name: l.Name, Cluster: l.Cluster, Mode: l.Mode, GatewayAlive: l.GatewayAlive, OriginTLS: l.OriginTLS,
		})
	}
	return s
}
