package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	mcscrd "sigs.k8s.io/mcs-api/config/crd"
)

// TestMCSComponentMatchesModule: the install's optional component
// (manifests/mcs) ships the Multi-Cluster Services CRDs byte for byte as
// the sigs.k8s.io/mcs-api module in go.mod embeds them, so that bumping the
// module without copying them again fails here rather than in a cluster.
func TestMCSComponentMatchesModule(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string][]byte{
		"multicluster.x-k8s.io_serviceexports.yaml": mcscrd.ServiceExportCRD,
		"multicluster.x-k8s.io_serviceimports.yaml": mcscrd.ServiceImportCRD,
	} {
		path := filepath.Join(root, "manifests", "mcs", file)
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the mcs-api module's; copy it again from $(go list -m -f '{{.Dir}}' sigs.k8s.io/mcs-api)/config/crd", path)
		}
	}
	objs, err := Kustomize(filepath.Join(root, "manifests", "mcs"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, o := range objs {
		names[o.GetKind()+" "+o.GetName()] = true
	}
	for _, want := range []string{
		"CustomResourceDefinition serviceexports.multicluster.x-k8s.io",
		"CustomResourceDefinition serviceimports.multicluster.x-k8s.io",
	} {
		if !names[want] || len(objs) != 2 {
			t.Errorf("manifests/mcs builds %v, want exactly the two MCS CRDs", names)
		}
	}
}

// TestMCSCRDs: the test bed's MCS CRDs serve v1alpha1 and v1beta1 and
// store v1beta1, as the KEP's API does.
func TestMCSCRDs(t *testing.T) {
	crds, err := MCSCRDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(crds) != 2 {
		t.Fatalf("got %d CRDs, want 2", len(crds))
	}
	for _, crd := range crds {
		var served, stored []string
		for _, v := range crd.Spec.Versions {
			if v.Served {
				served = append(served, v.Name)
			}
			if v.Storage {
				stored = append(stored, v.Name)
			}
		}
		if len(served) != 2 || len(stored) != 1 || stored[0] != "v1beta1" {
			t.Errorf("%s: served %v, stored %v; want v1alpha1 and v1beta1 served, v1beta1 stored", crd.Name, served, stored)
		}
	}
}

// TestMCSComponentOverlay builds the overlay the README shows for a
// cluster without the MCS CRDs: the base, the component and --mcs on the
// Deployment.
func TestMCSComponentOverlay(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(root, "manifests"))
	if err != nil {
		t.Fatal(err)
	}
	overlay := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- " + base + "\n" +
		"components:\n- " + base + "/mcs\n" +
		"patches:\n- target: {kind: Deployment, name: crossmap}\n  patch: |-\n" +
		"    - {op: add, path: /spec/template/spec/containers/0/args/-, value: --mcs}\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(overlay), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := Kustomize(dir)
	if err != nil {
		t.Fatal(err)
	}
	var crds, mcsArg int
	for _, o := range objs {
		switch o.GetKind() {
		case "CustomResourceDefinition":
			if strings.HasSuffix(o.GetName(), ".multicluster.x-k8s.io") {
				crds++
			}
		case "Deployment":
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range containers {
				args, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
				for _, a := range args {
					if a == "--mcs" {
						mcsArg++
					}
				}
			}
		}
	}
	if crds != 2 || mcsArg != 1 {
		t.Errorf("the overlay builds %d MCS CRDs and %d --mcs arguments; want 2 and 1", crds, mcsArg)
	}
}
