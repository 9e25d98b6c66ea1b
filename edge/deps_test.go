package edge

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEdgeReadsEmissaryNotMapper: the dev edge is a data plane; Emissary's
// rules come to it from package emissary, the same ones the route role and
// the status API use, never from the route role's own package (issue 12).
func TestEdgeReadsEmissaryNotMapper(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/crossmap/crossmap/edge").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	has := func(p string) bool {
		for _, d := range deps {
			if d == p {
				return true
			}
		}
		return false
	}
	if has("github.com/crossmap/crossmap/mapper") {
		t.Error("edge depends on mapper; it must read Emissary's rules from package emissary")
	}
	if !has("github.com/crossmap/crossmap/emissary") {
		t.Error("edge does not depend on package emissary")
	}
}
