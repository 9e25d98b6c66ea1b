package netns

import (
	"net/netip"
	"os"
	"testing"
)

// TestAddAddressRefusesOutside: on the host, AddAddress must never touch the
// machine's network.
func TestAddAddressRefusesOutside(t *testing.T) {
	t.Setenv(envInside, "")
	if err := AddAddress(netip.MustParseAddr("10.246.99.1")); err == nil {
		t.Fatal("AddAddress outside the namespace succeeded; it must refuse")
	}
}

// TestExists: loopback exists everywhere; a documentation address never
// does.
func TestExists(t *testing.T) {
	if !Exists(netip.MustParseAddr("127.0.0.1")) {
		t.Error("127.0.0.1 does not exist")
	}
	if Exists(netip.MustParseAddr("192.0.2.250")) {
		t.Error("192.0.2.250 (TEST-NET-1) exists; the tests rely on it not existing")
	}
}

// TestInside follows the marker the re-run sets.
func TestInside(t *testing.T) {
	t.Setenv(envInside, "1")
	if !Inside() {
		t.Error("Inside() = false with the marker set")
	}
	os.Unsetenv(envInside)
	if Inside() {
		t.Error("Inside() = true without the marker")
	}
}
