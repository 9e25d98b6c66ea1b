package mapper_test

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	mcsv1beta1 "sigs.k8s.io/mcs-api/pkg/apis/v1beta1"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
)

// Golden tests of the Multi-Cluster Services translation (mapper.MCS):
// testdata/mcs/<case>.in.yaml is a clusterset's exports as one cluster sees
// them, <case>.out.yaml what it renders. Each input's comment names the
// KEP-1645 section the case checks. Refresh with -update, as the others.

// mcsCase is the input of an MCS golden case: an MCSSnapshot in YAML.
type mcsCase struct {
	LocalNamespaces []string                   `json:"localNamespaces,omitempty"`
	Clusters        []clusterCase              `json:"clusters"`
	Imports         []mcsv1beta1.ServiceImport `json:"imports,omitempty"`
	Derived         []corev1.Service           `json:"derived,omitempty"`
}

// clusterCase is mapper.ClusterExports with YAML field names.
type clusterCase struct {
	Cluster          string                      `json:"cluster"`
	Local            bool                        `json:"local,omitempty"`
	Mode             crossmapv1.Mode             `json:"mode,omitempty"`
	GatewayAddresses []string                    `json:"gatewayAddresses,omitempty"`
	GatewayPort      int32                       `json:"gatewayPort,omitempty"`
	GatewayAlive     bool                        `json:"gatewayAlive,omitempty"`
	Exports          []mcsv1beta1.ServiceExport  `json:"exports,omitempty"`
	Services         []corev1.Service            `json:"services,omitempty"`
	Slices           []discoveryv1.EndpointSlice `json:"slices,omitempty"`
}

// mcsResult is the output of an MCS golden case, with empty lists rather
// than nulls.
type mcsResult struct {
	Objects  []mapper.Object       `json:"objects"`
	Imports  []mapper.ImportStatus `json:"imports"`
	Exports  []mapper.ExportStatus `json:"exports"`
	Problems []mapper.Problem      `json:"problems"`
}

func TestMCSGolden(t *testing.T) {
	for _, name := range goldenCases(t, "mcs") {
		t.Run(name, func(t *testing.T) {
			got := marshalYAML(t, runMCS(loadMCS(t, name)))
			checkGolden(t, filepath.Join("testdata", "mcs", name+".out.yaml"), got)
		})
	}
}

func runMCS(s mapper.MCSSnapshot) mcsResult {
	r := mapper.MCS(s)
	return mcsResult{Objects: nonNil(r.Objects), Imports: nonNil(r.Imports), Exports: nonNil(r.Exports), Problems: nonNil(r.Problems)}
}

func loadMCS(t testing.TB, name string) mapper.MCSSnapshot {
	t.Helper()
	var c mcsCase
	readYAML(t, filepath.Join("testdata", "mcs", name+".in.yaml"), &c)
	s := mapper.MCSSnapshot{LocalNamespaces: sets.New(c.LocalNamespaces...)}
	for _, cc := range c.Clusters {
		ce := mapper.ClusterExports{Cluster: cc.Cluster, Local: cc.Local, Mode: cc.Mode, GatewayPort: cc.GatewayPort, GatewayAlive: cc.GatewayAlive}
		for _, a := range cc.GatewayAddresses {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				t.Fatalf("%s: gateway address: %v", name, err)
			}
			ce.GatewayAddresses = append(ce.GatewayAddresses, addr)
		}
		for i := range cc.Exports {
			ce.Exports = append(ce.Exports, &cc.Exports[i])
		}
		for i := range cc.Services {
			ce.Services = append(ce.Services, &cc.Services[i])
		}
		for i := range cc.Slices {
			ce.Slices = append(ce.Slices, &cc.Slices[i])
		}
		s.Clusters = append(s.Clusters, ce)
	}
	for i := range c.Imports {
		s.Imports = append(s.Imports, &c.Imports[i])
	}
	for i := range c.Derived {
		s.Derived = append(s.Derived, &c.Derived[i])
	}
	return s
}

// TestMCSInvariants: the MCS translation is deterministic in any order of
// the clusters and of each cluster's exports (every cluster of the
// clusterset must compute the same merge), leaves its input alone, and
// renders a state that Diff finds in step with itself.
func TestMCSInvariants(t *testing.T) {
	for _, name := range goldenCases(t, "mcs") {
		t.Run(name, func(t *testing.T) {
			s := loadMCS(t, name)
			first := runMCS(s)
			want := marshalYAML(t, first)
			for i, v := range reorderings(len(s.Clusters), 0) {
				r := s
				r.Clusters = permute(s.Clusters, v[0])
				for j := range r.Clusters {
					r.Clusters[j].Exports = permute(r.Clusters[j].Exports, reversed(len(r.Clusters[j].Exports)))
					r.Clusters[j].Slices = permute(r.Clusters[j].Slices, reversed(len(r.Clusters[j].Slices)))
				}
				if got := marshalYAML(t, runMCS(r)); !bytes.Equal(got, want) {
					t.Errorf("reordering %d rendered differently (-first +this):\n%s", i, lineDiff(string(want), string(got)))
				}
			}
			if pristine := loadMCS(t, name); !reflect.DeepEqual(s, pristine) {
				t.Errorf("MCS changed its input snapshot")
			}
			checkPlanInvariants(t, first.Objects)
			checkStamped(t, first.Objects)
			checkSelected(t, first.Objects, mapper.MCSSelector())
		})
	}
}
