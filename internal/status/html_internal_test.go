package status

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestShortDuration(t *testing.T) {
	for in, want := range map[string]string{
		"34.113142ms":  "34.1ms",
		"2ms":          "2ms",
		"834.567µs":    "834.6µs",
		"1.234567s":    "1.2s",
		"3m20.6s":      "3m21s",
		"26h3m4.5s":    "26h3m5s",
		"0s":           "0s",
		"not a length": "not a length",
	} {
		if got := shortDuration(in); got != want {
			t.Errorf("shortDuration(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestTLSBadge(t *testing.T) {
	for _, tc := range []struct {
		in                *LinkTLS
		health, wantLabel string
	}{
		{nil, healthNone, "n/a"},
		{&LinkTLS{Mode: "cleartext"}, healthWarn, "cleartext"},
		{&LinkTLS{Mode: "mutual", Verified: true, Reason: "HandshakeSucceeded"}, healthOK, "verified"},
		{&LinkTLS{Mode: "mutual", Reason: "NotProbed"}, healthNone, "not checked"},
		{&LinkTLS{Mode: "mutual", Reason: "IdentityMismatch"}, healthBad, "IdentityMismatch"},
	} {
		if h, l := tlsBadge(tc.in); h != tc.health || l != tc.wantLabel {
			t.Errorf("tlsBadge(%+v) = %q, %q; want %q, %q", tc.in, h, l, tc.health, tc.wantLabel)
		}
	}
}

// TestPageDrill: a Link under an active drill says so beside its gateway,
// with who and until when; an ended drill shows nothing there.
func TestPageDrill(t *testing.T) {
	until := time.Date(2026, 12, 3, 13, 10, 0, 0, time.UTC)
	for _, active := range []bool{true, false} {
		v := View{Links: []Link{{Namespace: "crossmap-system", Name: "east", Cluster: "east", Mode: "gateway", RemoteReachable: true, GatewayAlive: true,
			MirroredServices: []string{}, Drill: &LinkDrill{Active: active, By: "alice", Until: until}}}}
		var buf bytes.Buffer
		if err := pageTmpl.Execute(&buf, newPage(v, until.Add(-time.Minute))); err != nil {
			t.Fatal(err)
		}
		has := strings.Contains(buf.String(), `data-drill="active"`) && strings.Contains(buf.String(), "drained by alice until 2026-12-03 13:10:00 UTC")
		if has != active {
			t.Errorf("active %v: the page shows the drill: %v", active, has)
		}
	}
}
