package mapper_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/crossmap/crossmap/mapper"
)

// Tests of priority failover's weights (issue 16): mapper.Tiered.

// tiered builds remotes from (configured, healthy, tier) triples.
func tiered(specs ...[3]int) []mapper.Backend {
	var out []mapper.Backend
	for _, s := range specs {
		out = append(out, mapper.Backend{Configured: s[0], Healthy: s[1] == 1, Tier: s[2]})
	}
	return out
}

func TestTiered(t *testing.T) {
	const up, down = 1, 0
	for _, tc := range []struct {
		name         string
		budget       int
		localTier    int
		localHealthy bool
		remotes      []mapper.Backend
		want         []int
	}{
		// local,east,dev-alice without a split: one backend per tier.
		{"local first while it is healthy", 100, 0, true, tiered([3]int{0, up, 1}, [3]int{0, up, 2}), []int{0, 0}},
		{"local down: east takes all", 100, 0, false, tiered([3]int{0, up, 1}, [3]int{0, up, 2}), []int{100, 0}},
		{"local and east down: dev-alice takes all", 100, 0, false, tiered([3]int{0, down, 1}, [3]int{0, up, 2}), []int{0, 100}},
		{"east back: it takes all again", 100, 0, false, tiered([3]int{0, up, 1}, [3]int{0, up, 2}), []int{100, 0}},
		{"nothing healthy: the configured weights", 100, 0, false, tiered([3]int{0, down, 1}, [3]int{0, down, 2}), []int{0, 0}},
		// local,east|west,dev with east=30, west=10: the tier of two splits
		// 3:1.
		{"a tier of two splits by the split's weights", 100, 0, false, tiered([3]int{30, up, 1}, [3]int{10, up, 1}, [3]int{0, up, 2}), []int{75, 25, 0}},
		{"one of the tier dies: the other takes the tier's all", 100, 0, false, tiered([3]int{30, down, 1}, [3]int{10, up, 1}, [3]int{0, up, 2}), []int{0, 100, 0}},
		{"a tier of zeros shares equally", 100, 0, false, tiered([3]int{0, up, 1}, [3]int{0, up, 1}, [3]int{0, up, 1}), []int{34, 33, 33}},
		// east,local: a remote ahead of the local backend.
		{"a remote tier ahead of local", 100, 1, true, tiered([3]int{0, up, 0}), []int{100}},
		{"it dies: local takes all", 100, 1, true, tiered([3]int{0, down, 0}), []int{0}},
		// local|east with east=40: local keeps 60 as its tier's share.
		{"local shares its tier", 100, 0, true, tiered([3]int{40, up, 0}, [3]int{0, up, 1}), []int{40, 0}},
		// A budget below 100 (a canary takes 20): the tier splits 80.
		{"a smaller budget", 80, 0, false, tiered([3]int{0, up, 1}), []int{80}},
		// Bad input: the configured weights.
		{"weights above the budget", 50, 0, false, tiered([3]int{60, up, 1}), []int{60}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mapper.Tiered(tc.budget, tc.localTier, tc.localHealthy, tc.remotes)
			if !slices.Equal(got, tc.want) {
				t.Errorf("Tiered(%d, %d, %v, %+v) = %v, want %v", tc.budget, tc.localTier, tc.localHealthy, tc.remotes, got, tc.want)
			}
		})
	}
}

// TestLocalFirstIsTwoTiers: local-first is priority with the local
// backend in the first tier and every remote in the second.
func TestLocalFirstIsTwoTiers(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	for range 5000 {
		budget, rs := randomSplit(rng, 1)
		localHealthy := rng.IntN(2) == 0
		if got, want := mapper.Effective("local-first", budget, localHealthy, rs), mapper.Tiered(budget, 0, localHealthy, rs); !slices.Equal(got, want) {
			t.Fatalf("budget %d, local healthy %v, remotes %+v: local-first %v, tiers local then remotes %v", budget, localHealthy, rs, got, want)
		}
		// And what local-first promises, by another path than Tiered:
		// nothing to the remotes while the local backend is healthy,
		// otherwise what weighted gives without the local backend.
		got := mapper.Effective("local-first", budget, localHealthy, rs)
		want := make([]int, len(rs))
		if !localHealthy {
			want = mapper.Effective("weighted", budget, false, rs)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("budget %d, local healthy %v, remotes %+v: local-first %v, want %v", budget, localHealthy, rs, got, want)
		}
	}
}

func TestTieredProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 2))
	for range 20000 {
		budget, rs := randomSplit(rng, 4)
		localTier, localHealthy := rng.IntN(4), rng.IntN(3) > 0
		got := mapper.Tiered(budget, localTier, localHealthy, rs)
		checkTiered(t, budget, localTier, localHealthy, rs, got)
		if t.Failed() {
			return
		}
	}
}

// randomSplit is a budget and remotes whose configured weights fit in it,
// each in one of tiers tiers (from 1; the local backend's tier is the
// caller's).
func randomSplit(rng *rand.Rand, tiers int) (int, []mapper.Backend) {
	budget := rng.IntN(101)
	rs := make([]mapper.Backend, rng.IntN(6))
	left := budget
	for i := range rs {
		w := 0
		if left > 0 && rng.IntN(3) > 0 {
			w = rng.IntN(left + 1)
		}
		left -= w
		rs[i] = mapper.Backend{Configured: w, Healthy: rng.IntN(3) > 0, Tier: 1 + rng.IntN(tiers)}
	}
	return budget, rs
}

// checkTiered checks Tiered's promises for valid input: the first tier
// with a healthy backend takes the whole budget, shared by its healthy
// members in proportion to their weights (each within one point of its
// exact share); every other backend gets 0; with nothing healthy, the
// configured weights.
func checkTiered(t *testing.T, budget, localTier int, localHealthy bool, rs []mapper.Backend, got []int) {
	t.Helper()
	if len(got) != len(rs) {
		t.Fatalf("got %d weights for %d remotes", len(got), len(rs))
	}
	first := -1
	if localHealthy {
		first = localTier
	}
	sum := 0
	for _, r := range rs {
		sum += r.Configured
		if r.Healthy && (first < 0 || r.Tier < first) {
			first = r.Tier
		}
	}
	if first < 0 {
		for i, r := range rs {
			if got[i] != r.Configured {
				t.Errorf("nothing healthy: got %v, want the configured weights of %+v", got, rs)
			}
		}
		return
	}
	localIn := localHealthy && localTier == first
	weights, total := []int{}, 0
	if localIn {
		weights = append(weights, budget-sum)
		total += budget - sum
	}
	for _, r := range rs {
		if r.Healthy && r.Tier == first {
			weights = append(weights, r.Configured)
			total += r.Configured
		}
	}
	given := 0
	j := 0
	if localIn {
		j = 1
	}
	for i, r := range rs {
		given += got[i]
		if !r.Healthy || r.Tier != first {
			if got[i] != 0 {
				t.Errorf("budget %d, local tier %d healthy %v, remotes %+v: remote %d is not in the first healthy tier %d but gets %d", budget, localTier, localHealthy, rs, i, first, got[i])
			}
			continue
		}
		w := weights[j]
		j++
		// Its exact share, of all-equal shares when the tier's weights
		// are all 0.
		num, den := budget*w, total
		if total == 0 {
			num, den = budget, len(weights)
		}
		if lo := num / den; got[i] < lo || got[i] > lo+1 {
			t.Errorf("budget %d, remotes %+v: remote %d gets %d, its exact share is %d/%d", budget, rs, i, got[i], num, den)
		}
	}
	if !localIn && given != budget {
		t.Errorf("budget %d, local tier %d healthy %v, remotes %+v: the remotes get %d (%v), want all of the budget", budget, localTier, localHealthy, rs, given, got)
	}
	if given > budget {
		t.Errorf("the remotes get %d, above the budget %d", given, budget)
	}
}

// FuzzTiered: budget -5..105, local tier 0..3, and one remote per byte
// pair (weight -2..103 with the health bit, tier 0..3). Out-of-range input
// must give the configured weights, valid input checkTiered's promises.
func FuzzTiered(f *testing.F) {
	f.Add(uint8(105), uint8(0), false, []byte{0, 1, 61, 2})
	f.Add(uint8(85), uint8(1), true, []byte{81, 0, 21, 0})
	f.Fuzz(func(t *testing.T, budget, localTier uint8, localHealthy bool, data []byte) {
		rs := make([]mapper.Backend, len(data)/2)
		sum, valid := 0, true
		for i := range rs {
			b := data[2*i]
			rs[i] = mapper.Backend{Configured: int(b>>1)%106 - 2, Healthy: b&1 == 1, Tier: int(data[2*i+1]) % 4}
			sum += rs[i].Configured
			valid = valid && rs[i].Configured >= 0 && rs[i].Configured <= 100
		}
		bud := int(budget)%111 - 5
		got := mapper.Tiered(bud, int(localTier)%4, localHealthy, rs)
		if !valid || bud < 0 || bud > 100 || sum > bud {
			for i, r := range rs {
				if got[i] != r.Configured {
					t.Fatalf("bad input %d %+v: got %v, want the configured weights", bud, rs, got)
				}
			}
			return
		}
		checkTiered(t, bud, int(localTier)%4, localHealthy, rs, got)
	})
}
