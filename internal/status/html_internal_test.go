package status

import "testing"

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
