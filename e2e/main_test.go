package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/netns"
	"github.com/crossmap/crossmap/internal/testenv"
)

// bed is shared by every test in the package: starting two planes takes
// seconds, and per-test namespaces and labels keep the tests apart.
var bed *testenv.Bed

func TestMain(m *testing.M) {
	// Run inside a network namespace of our own, so that the gateways and
	// pods the tests start listen on addresses that exist only there, and
	// no test can send a packet off this machine.
	if !netns.Inside() {
		code, err := netns.Reexec()
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			os.Exit(1)
		}
		os.Exit(code)
	}
	// Each controller logs through its test's logger (Deps.Logger); the
	// process-wide one only catches stragglers, which are not wanted.
	ctrl.SetLogger(logr.Discard())
	// As cmd/crossmap does: the controllers run here must sync as the
	// binary's do.
	controller.UsePlainLists()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	var err error
	bed, err = testenv.Start(ctx, []string{"east", "west"}, testenv.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start control planes:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := bed.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stop control planes:", err)
	}
	os.Exit(code)
}
