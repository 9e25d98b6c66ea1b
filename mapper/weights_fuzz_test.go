package mapper_test

import (
	"testing"

	"github.com/crossmap/crossmap/mapper"
)

// The seed corpus is in testdata/fuzz/FuzzEffective. Run the fuzzer with
//
//	go test ./mapper -run '^$' -fuzz FuzzEffective -fuzztime 30s

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
