package emissary_test

import (
	"strconv"
	"testing"

	"github.com/crossmap/crossmap/emissary"
)

// The seed corpus is in testdata/fuzz/FuzzShares. Run the fuzzer with
//
//	go test ./emissary -run '^$' -fuzz FuzzShares -fuzztime 30s

// FuzzShares decodes one member per byte: below 128 a weight of b-10 (so
// -10..117, around the edges at 0 and 100), from 128 on a member without a
// weight.
func FuzzShares(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		members := make([]emissary.Weighted, len(data))
		for i, b := range data {
			members[i].Name = "m" + strconv.Itoa(i)
			if b < 128 {
				w := int(b) - 10
				members[i].Weight = &w
			}
		}
		got, err := emissary.Shares(members)
		checkShares(t, members, got, err)
	})
}
