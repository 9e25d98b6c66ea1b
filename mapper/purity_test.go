package mapper_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The pure core translates values into values; it must not be able to
// reach an API server. So mapper and emissary (and what they import of
// crossmap: ingress, the API types) import neither client-go nor
// controller-runtime (issue 12). A depguard rule would say so only where
// the linter runs; this test says so in every `go test`.

// purityAllowed is the one controller-runtime package the closure may
// hold: Emissary's generated API types (getambassador.io/v3alpha1) build
// their scheme with it. It holds no client, and no crossmap package may
// import it itself.
const purityAllowed = "sigs.k8s.io/controller-runtime/pkg/scheme"

func TestPurity(t *testing.T) {
	for _, pkg := range []string{"github.com/crossmap/crossmap/mapper", "github.com/crossmap/crossmap/emissary"} {
		if bad := impurities(t, pkg); len(bad) > 0 {
			t.Errorf("%s reaches client libraries:\n  %s", pkg, strings.Join(bad, "\n  "))
		}
	}
}

// TestPurityCatchesAClient checks that impurities finds a client where
// there is one, so that TestPurity cannot pass by checking nothing.
func TestPurityCatchesAClient(t *testing.T) {
	if bad := impurities(t, "github.com/crossmap/crossmap/internal/controller"); len(bad) == 0 {
		t.Error("impurities finds nothing in internal/controller, which imports controller-runtime")
	}
}

// impurities lists, for pkg and every package it depends on, the imports
// of client-go or controller-runtime that the rule above forbids, as
// "importer imports imported".
func impurities(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", pkg).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	var bad []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		importer := fields[0]
		if isClient(importer) {
			continue // reported at its importer
		}
		ours := strings.HasPrefix(importer, "github.com/crossmap/crossmap/")
		for _, imp := range fields[1:] {
			if isClient(imp) && (ours || imp != purityAllowed) {
				bad = append(bad, importer+" imports "+imp)
			}
		}
	}
	return bad
}

func isClient(path string) bool {
	return strings.HasPrefix(path, "k8s.io/client-go/") || strings.HasPrefix(path, "sigs.k8s.io/controller-runtime")
}
