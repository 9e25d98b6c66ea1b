package mapper_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/crossmap/crossmap/emissary"
	"github.com/crossmap/crossmap/mapper"
)

// weight each, with "x" for an unhealthy one.
func effectiveRemotes(spec string) []mapper.Backend {
	if spec == "" {
		return nil
	}
	var bs []mapper.Backend
	for _, f := range strings.Split(spec, ",") {
		dead := strings.HasSuffix(f, "x")
		w, err := strconv.Atoi(strings.TrimSuffix(f, "x"))
		if err != nil {
			panic(fmt.Sprintf("bad remotes spec %q: %v", spec, err))
		}
		bs = append(bs, mapper.Backend{Configured: w, Healthy: !dead})
	}
	return bs
}

func TestEffective(t *testing.T) {
	const (
		off        = "off"
		weighted   = "weighted"
		localFirst = "local-first"
	)
	for _, tc := range []struct {
		name         string
		policy       string
		budget       int
		localHealthy bool
		remotes      string // see effectiveRemotes
		want         []int
	}{
		// The running example: split "east=30,dev=10", so local has 60.

		{"off ignores health", off, 100, false, "30x,10x", []int{30, 10}},
		{"off, all healthy", off, 100, true, "30,10", []int{30, 10}},
		{"weighted, all healthy", weighted, 100, true, "30,10", []int{30, 10}},

		// (a) east dies: local 60 and dev 10 split 100 as 60:10.
		// local 100·60/70 = 85.71 → 85, dev 100·10/70 = 14.29 → 14; the
		// point left over goes to the larger remainder, local: 86 and 14.
		{"weighted, east dies", weighted, 100, true, "30x,10", []int{0, 14}},
		// (a) dev dies: local 100·60/90 = 66.67, east 100·30/90 = 33.33;
		// floors 66 + 33 = 99, the point goes to local: 67 and 33.
		{"weighted, dev dies", weighted, 100, true, "30,10x", []int{33, 0}},
		// (a) both die: local alone, 100.
		{"weighted, both remotes die", weighted, 100, true, "30x,10x", []int{0, 0}},
		// (b) local dies: east and dev split 100 as 30:10, 75 and 25.
		{"weighted, local dies", weighted, 100, false, "30,10", []int{75, 25}},
		// (b) local and east die: dev takes all 100.
		{"weighted, local and east die", weighted, 100, false, "30x,10", []int{0, 100}},
		// (c) nothing healthy: keep the split.
		{"weighted, everything dies", weighted, 100, false, "30x,10x", []int{30, 10}},

		{"local-first, local healthy", localFirst, 100, true, "30,10", []int{0, 0}},
		{"local-first, local healthy, remotes dead", localFirst, 100, true, "30x,10x", []int{0, 0}},
		{"local-first, local dies", localFirst, 100, false, "30,10", []int{75, 25}},
		{"local-first, local and dev die", localFirst, 100, false, "30,10x", []int{100, 0}},
		{"local-first, everything dies", localFirst, 100, false, "30x,10x", []int{30, 10}},

		// Another weighted Mapping in the group has 20, so budget is 80 and
		// local has 80-40 = 40. (a) east dies: local and dev split 80 as
		// 40:10, 64 and 16.
		{"budget 80, east dies", weighted, 80, true, "30x,10", []int{0, 16}},
		// (b) local dies: east and dev split 80 as 30:10, 60 and 20.
		{"budget 80, local dies", weighted, 80, false, "30,10", []int{60, 20}},

		// (a) The healthy backends are all at 0 (local has 50-50 = 0, dev
		// 0): the local backend takes the 50 east had.
		{"healthy backends all at 0, local takes all", weighted, 50, true, "50x,0", []int{0, 0}},
		// (a) Local at 0 stays at 0: dev takes what east had.
		{"local at 0", weighted, 100, true, "50x,50", []int{0, 100}},
		// (a) A healthy remote at 0 stays at 0.
		{"healthy remote at 0 stays at 0", weighted, 100, true, "0,30x", []int{0, 0}},
		// (b) Healthy remotes all at 0: equal shares, 100/3 = 33.33 each;
		// the point left over goes to the lowest index.
		{"local dies, healthy remotes at 0 share equally", weighted, 100, false, "0,0,0,40x", []int{34, 33, 33, 0}},
		// (b) A healthy remote at 0 next to one with weight gets nothing.
		{"local dies, remote at 0 next to weighted", weighted, 100, false, "0,10", []int{0, 100}},

		// Ties: local 25, a 25, b 25, c 25 dies. 100·25/75 = 33.33 each;
		// floors add up to 99 and the tied point goes to the local backend:
		// local 34, a 33, b 33.
		{"tie goes to local", weighted, 100, true, "25,25,25x", []int{33, 33, 0}},
		// (b) Three equal healthy remotes: 34, 33, 33, lower index first.
		{"tie among remotes goes to lower index", weighted, 100, false, "10,10,10", []int{34, 33, 33}},

		{"no remotes", weighted, 100, false, "", []int{}},
		{"budget 0", weighted, 0, false, "0,0", []int{0, 0}},

		// Preconditions broken or unknown policy: the configured weights.
		{"budget over 100", weighted, 101, true, "30x,10", []int{30, 10}},
		{"negative budget", weighted, -1, true, "0x", []int{0}},
		{"configured over budget", weighted, 30, true, "30x,10", []int{30, 10}},
		{"negative configured", weighted, 100, true, "-10x,10", []int{-10, 10}},
		{"configured over 100", weighted, 100, false, "101,0", []int{101, 0}},
		{"empty policy", "", 100, true, "30x,10", []int{30, 10}},
		{"unknown policy", "on", 100, true, "30x,10", []int{30, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := effectiveRemotes(tc.remotes)
			got := mapper.Effective(tc.policy, tc.budget, tc.localHealthy, rs)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Effective(%q, %d, local healthy %t, %s) = %v, want %v",
					tc.policy, tc.budget, tc.localHealthy, tc.remotes, got, tc.want)
			}
			checkEffective(t, tc.policy, tc.budget, tc.localHealthy, rs, got)
		})
	}
}

// TestEffectiveProperties checks the invariants of checkEffective on random
// valid inputs.
func TestEffectiveProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	policies := []string{"off", "weighted", "local-first"}
	for range 20000 {
		budget := rng.IntN(101)
		rs := make([]mapper.Backend, rng.IntN(6))
		left := budget
		for i := range rs {
			w := 0
			if left > 0 && rng.IntN(5) > 0 {
				w = rng.IntN(left + 1)
			}
			left -= w
			rs[i] = mapper.Backend{Configured: w, Healthy: rng.IntN(3) > 0}
		}
		policy := policies[rng.IntN(len(policies))]
		localHealthy := rng.IntN(3) > 0
		got := mapper.Effective(policy, budget, localHealthy, rs)
		checkEffective(t, policy, budget, localHealthy, rs, got)
		if t.Failed() {
			return
		}
	}
}

// TestEffectiveThroughEmissary checks that Effective's weights reach the
// backends unchanged once Emissary has routed them: crossmap writes the
// remotes' Mappings with the effective weights, the user's own Mapping (the
// local backend) has no weight, and the group's other weighted Mappings take
// 100-budget.
func TestEffectiveThroughEmissary(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		others := make([]int, rng.IntN(3))
		budget := 100
		for i := range others {
			others[i] = rng.IntN(budget/2 + 1)
			budget -= others[i]
		}
		rs := make([]mapper.Backend, 1+rng.IntN(4))
		left := budget
		for i := range rs {
			w := rng.IntN(left + 1)
			left -= w
			rs[i] = mapper.Backend{Configured: w, Healthy: rng.IntN(2) == 0}
		}
		policy := []string{"off", "weighted", "local-first"}[rng.IntN(3)]
		eff := mapper.Effective(policy, budget, rng.IntN(2) == 0, rs)

		var members []emissary.Weighted
		for i, w := range others {
			members = append(members, emissary.Weighted{Name: "other" + strconv.Itoa(i), Weight: &w})
		}
		members = append(members, emissary.Weighted{Name: "local"})
		for i, w := range eff {
			members = append(members, emissary.Weighted{Name: "remote" + strconv.Itoa(i), Weight: &w})
		}
		shares, err := emissary.Shares(members)
		if err != nil {
			t.Fatalf("Shares(%s) failed: %v", fmt.Sprint(members), err)
		}
		sum := 0
		for _, w := range eff {
			sum += w
		}
		local := shares[len(others)]
		if local != budget-sum || !slices.Equal(shares[len(others)+1:], eff) {
			t.Fatalf("Shares(%s) = %v; want local %d and remotes %v", fmt.Sprint(members), shares, budget-sum, eff)
		}
	}
}

func TestEffectiveDoesNotAlias(t *testing.T) {
	rs := effectiveRemotes("30,10")
	got := mapper.Effective("off", 100, true, rs)
	got[0] = 99
	if rs[0].Configured != 30 {
		t.Fatalf("changing Effective's result changed its input: %+v", rs)
	}
}

// checkEffective checks what Effective returned against its contract. It
// calls Effective again to check that it is deterministic and leaves its
// input alone.
func checkEffective(t *testing.T, policy string, budget int, localHealthy bool, rs []mapper.Backend, got []int) {
	t.Helper()
	desc := fmt.Sprintf("Effective(%q, %d, local healthy %t, %+v)", policy, budget, localHealthy, rs)

	before := slices.Clone(rs)
	if again := mapper.Effective(policy, budget, localHealthy, rs); !slices.Equal(again, got) {
		t.Errorf("%s is not deterministic: %v, then %v", desc, got, again)
	}
	if !slices.Equal(rs, before) {
		t.Errorf("%s changed its input", desc)
	}
	if len(got) != len(rs) {
		t.Errorf("%s = %v: %d weights for %d remotes", desc, got, len(got), len(rs))
		return
	}

	configured := make([]int, len(rs))
	sumConfigured, valid, anyRemoteHealthy, allRemotesHealthy := 0, budget >= 0 && budget <= 100, false, true
	for i, r := range rs {
		configured[i] = r.Configured
		sumConfigured += r.Configured
		valid = valid && r.Configured >= 0 && r.Configured <= 100
		anyRemoteHealthy = anyRemoteHealthy || r.Healthy
		allRemotesHealthy = allRemotesHealthy && r.Healthy
	}
	valid = valid && sumConfigured <= budget
	known := policy == "weighted" || policy == "local-first"
	if !valid || !known || !localHealthy && !anyRemoteHealthy {
		if !slices.Equal(got, configured) {
			t.Errorf("%s = %v, want the configured %v", desc, got, configured)
		}
		return
	}

	sum := 0
	for i, w := range got {
		if w < 0 || w > budget {
			t.Errorf("%s = %v: weight %d out of 0..budget", desc, got, w)
		}
		if !rs[i].Healthy && w != 0 {
			t.Errorf("%s = %v: unhealthy remote %d gets %d", desc, got, i, w)
		}
		sum += w
	}
	if sum > budget {
		t.Errorf("%s = %v adds up to %d, over budget", desc, got, sum)
	}
	if !localHealthy && sum != budget {
		t.Errorf("%s = %v adds up to %d; with the local backend down the remotes take all %d", desc, got, sum, budget)
	}
	if localHealthy && policy == "local-first" && sum != 0 {
		t.Errorf("%s = %v; local-first with the local backend healthy sends remotes nothing", desc, got)
	}
	if localHealthy && policy == "weighted" {
		if allRemotesHealthy && !slices.Equal(got, configured) {
			t.Errorf("%s = %v; with everything healthy want the configured %v", desc, got, configured)
		}
		for i, r := range rs {
			if r.Healthy && got[i] < r.Configured {
				t.Errorf("%s = %v: healthy remote %d lost weight", desc, got, i)
			}
		}
		if budget-sum < budget-sumConfigured {
			t.Errorf("%s = %v: the healthy local backend lost weight", desc, got)
		}
	}

	// Largest remainder: each weight is its exact share rounded down or up.
	num, den := exactShares(policy, budget, localHealthy, rs)
	for i, w := range got {
		if d := w*den - num[i]; d <= -den || d >= den {
			t.Errorf("%s = %v: remote %d gets %d, exact share %d/%d", desc, got, i, w, num[i], den)
		}
	}
}

// exactShares returns the remotes' exact effective weights as num[i]/den, for
// valid input where something is healthy.
func exactShares(policy string, budget int, localHealthy bool, rs []mapper.Backend) (num []int, den int) {
	num = make([]int, len(rs))
	if localHealthy && policy == "local-first" {
		return num, 1
	}
	weights := make([]int, len(rs))
	den = 0
	for i, r := range rs {
		if r.Healthy {
			weights[i] = r.Configured
			den += r.Configured
		}
	}
	if localHealthy {
		sumConfigured := 0
		for _, r := range rs {
			sumConfigured += r.Configured
		}
		den += budget - sumConfigured
	} else if den == 0 {
		for i, r := range rs {
			if r.Healthy {
				weights[i] = 1
				den++
			}
		}
	}
	if den == 0 { // local healthy, every healthy backend at 0: local takes all
		return num, 1
	}
	for i, w := range weights {
		num[i] = budget * w
	}
	return num, den
}
