package mapper_test

import (
	"strconv"
	"testing"

	"github.com/crossmap/crossmap/mapper"
)

// The seed corpora are in testdata/fuzz/FuzzShares and
// testdata/fuzz/FuzzEffective. Run a fuzzer with, for example,
//
//	go test ./mapper -run '^$' -fuzz FuzzShares -fuzztime 30s

// FuzzShares decodes one member per byte: below 128 a weight of b-10 (so
// -10..117, around the edges at 0 and 100), from 128 on a member without a
// weight.
func FuzzShares(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		members := make([]mapper.GroupMember, len(data))
		for i, b := range data {
			members[i].Name = "m" + strconv.Itoa(i)
			if b < 128 {
				w := int(b) - 10
				members[i].Weight = &w
			}
		}
		got, err := mapper.Shares(members)
		checkShares(t, members, got, err)
	})
}

// FuzzEffective decodes policy as one of five strings (the three policies, ""
// and an unknown one), budget as -5..105, and one remote per byte of data:
// the low bit says healthy, the rest is a configured weight of -2..103. Out of
// range values test that broken preconditions give the configured weights.
func FuzzEffective(f *testing.F) {
	policies := []string{"off", "weighted", "local-first", "", "on"}
	f.Fuzz(func(t *testing.T, policy, budget uint8, localHealthy bool, data []byte) {
		rs := make([]mapper.Backend, len(data))
		for i, b := range data {
			rs[i] = mapper.Backend{Configured: int(b>>1)%106 - 2, Healthy: b&1 == 1}
		}
		p := policies[int(policy)%len(policies)]
		bud := int(budget)%111 - 5
		got := mapper.Effective(p, bud, localHealthy, rs)
		checkEffective(t, p, bud, localHealthy, rs, got)
	})
}
