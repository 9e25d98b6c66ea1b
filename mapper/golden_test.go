package mapper_test

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/yaml"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
)

// Golden tests of the translations. Each case is a pair of files under
// testdata/import or testdata/export: <case>.in.yaml is the snapshot, and
// <case>.out.yaml is what the translation renders from it. After a deliberate
// change to the translation, refresh the outputs with
//
//	go test ./mapper -run Golden -update
//
// and read the diff of every .out.yaml before keeping it.

var update = flag.Bool("update", false, "rewrite golden files")

// importCase is the input of an import golden case: an ImportSnapshot in
// YAML. Addresses are strings and objects are full API objects, as they
// would be read from a cluster.
type importCase struct {
	Link             linkCase                    `json:"link"`
	GatewayAddresses []string                    `json:"gatewayAddresses,omitempty"`
	GatewayAlive     bool                        `json:"gatewayAlive,omitempty"`
	LocalNamespaces  []string                    `json:"localNamespaces,omitempty"`
	Services         []corev1.Service            `json:"services,omitempty"`
	Slices           []discoveryv1.EndpointSlice `json:"slices,omitempty"`
}

// linkCase is mapper.LinkRef with YAML field names.
type linkCase struct {
	Namespace        string          `json:"namespace"`
	Name             string          `json:"name"`
	Cluster          string          `json:"cluster"`
	Mode             crossmapv1.Mode `json:"mode"`
	GatewayPort      int32           `json:"gatewayPort,omitempty"`
	CreateNamespaces bool            `json:"createNamespaces,omitempty"`
}

// exportCase is the input of an export golden case: an ExportSnapshot in
// YAML.
type exportCase struct {
	Cluster          string           `json:"cluster"`
	GatewayNamespace string           `json:"gatewayNamespace"`
	GatewayHostName  string           `json:"gatewayHostName"`
	AmbassadorID     []string         `json:"ambassadorID,omitempty"`
	MutualTLS        bool             `json:"mutualTLS,omitempty"`
	ServedByHeader   string           `json:"servedByHeader,omitempty"`
	Services         []corev1.Service `json:"services,omitempty"`
}

// importResult is the output of an import golden case: the rendered objects
// in the order Import returns them, the mirrored count and the problems.
type importResult struct {
	Objects  []mapper.Object  `json:"objects"`
	Mirrored int              `json:"mirrored"`
	Problems []mapper.Problem `json:"problems"`
}

// exportResult is the output of an export golden case.
type exportResult struct {
	Objects  []mapper.Object  `json:"objects"`
	Problems []mapper.Problem `json:"problems"`
}

func TestImportGolden(t *testing.T) {
	for _, name := range goldenCases(t, "import") {
		t.Run(name, func(t *testing.T) {
			got := marshalYAML(t, runImport(loadImport(t, name)))
			checkGolden(t, filepath.Join("testdata", "import", name+".out.yaml"), got)
		})
	}
}

func TestExportGolden(t *testing.T) {
	for _, name := range goldenCases(t, "export") {
		t.Run(name, func(t *testing.T) {
			got := marshalYAML(t, runExport(loadExport(t, name)))
			checkGolden(t, filepath.Join("testdata", "export", name+".out.yaml"), got)
		})
	}
}

func runImport(s mapper.ImportSnapshot) importResult {
	objs, mirrored, problems := mapper.Import(s)
	// Empty lists rather than nulls, so that "nothing" reads as such.
	return importResult{Objects: nonNil(objs), Mirrored: mirrored, Problems: nonNil(problems)}
}

func runExport(s mapper.ExportSnapshot) exportResult {
	objs, problems := mapper.Export(s)
	return exportResult{Objects: nonNil(objs), Problems: nonNil(problems)}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// goldenCases lists the cases in testdata/<dir>. Every input must have an
// output (unless -update is about to write it) and every output an input, so
// that a renamed or deleted case leaves no stale golden behind.
func goldenCases(t *testing.T, dir string) []string {
	t.Helper()
	ins, err := filepath.Glob(filepath.Join("testdata", dir, "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	outs, err := filepath.Glob(filepath.Join("testdata", dir, "*.out.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) == 0 {
		t.Fatalf("no golden cases in testdata/%s", dir)
	}
	var names []string
	for _, in := range ins {
		names = append(names, strings.TrimSuffix(filepath.Base(in), ".in.yaml"))
	}
	for _, out := range outs {
		name := strings.TrimSuffix(filepath.Base(out), ".out.yaml")
		if !slices.Contains(names, name) {
			t.Errorf("%s has no input %s.in.yaml; delete it or add the input", out, name)
		}
	}
	return names
}

func loadImport(t testing.TB, name string) mapper.ImportSnapshot {
	t.Helper()
	var c importCase
	readYAML(t, filepath.Join("testdata", "import", name+".in.yaml"), &c)
	s := mapper.ImportSnapshot{
		Link: mapper.LinkRef{
			Namespace:        c.Link.Namespace,
			Name:             c.Link.Name,
			Cluster:          c.Link.Cluster,
			Mode:             c.Link.Mode,
			GatewayPort:      c.Link.GatewayPort,
			CreateNamespaces: c.Link.CreateNamespaces,
		},
		GatewayAlive:    c.GatewayAlive,
		LocalNamespaces: sets.New(c.LocalNamespaces...),
	}
	for _, a := range c.GatewayAddresses {
		addr, err := netip.ParseAddr(a)
		if err != nil {
			t.Fatalf("%s: gateway address: %v", name, err)
		}
		s.GatewayAddresses = append(s.GatewayAddresses, addr)
	}
	for i := range c.Services {
		s.Services = append(s.Services, &c.Services[i])
	}
	for i := range c.Slices {
		s.Slices = append(s.Slices, &c.Slices[i])
	}
	return s
}

func loadExport(t testing.TB, name string) mapper.ExportSnapshot {
	t.Helper()
	var c exportCase
	readYAML(t, filepath.Join("testdata", "export", name+".in.yaml"), &c)
	s := mapper.ExportSnapshot{
		Cluster:          c.Cluster,
		GatewayNamespace: c.GatewayNamespace,
		GatewayHostName:  c.GatewayHostName,
		AmbassadorID:     c.AmbassadorID,
		MutualTLS:        c.MutualTLS,
		ServedByHeader:   c.ServedByHeader,
	}
	for i := range c.Services {
		s.Services = append(s.Services, &c.Services[i])
	}
	return s
}

// readYAML decodes path into v strictly: an unknown or duplicated field is a
// typo in the case, not something to ignore.
func readYAML(t testing.TB, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(raw, v); err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
}

func marshalYAML(t testing.TB, v any) []byte {
	t.Helper()
	out, err := yaml.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return out
}

// checkGolden compares got with the golden file at path, or rewrites the file
// under -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what was rendered (-want +got); if the change is intended, rerun with -update:\n%s",
			path, lineDiff(string(want), string(got)))
	}
}

// lineDiff is a minimal line-based diff (longest common subsequence), enough
// to read a golden mismatch without a diff dependency.
func lineDiff(a, b string) string {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&sb, "%4d +%s\n", j+1, y[j])
			j++
		default:
			fmt.Fprintf(&sb, "%4d -%s\n", i+1, x[i])
			i++
		}
	}
	return sb.String()
}
