package mapper_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/crossmap/crossmap/mapper"
)

// Line numbers in these tests are those of Emissary 3.10.0's
// python/ambassador/ir/irbasemappinggroup.py (normalize_weights_in_mappings).
// Every expected share was checked against Emissary itself: its python
// compiler turned Mappings with these weights, all with the same prefix, into
// Envoy routes, and the shares are what Envoy's first-match over one draw
// r%100 < numerator gives for those routes.

// sharesGroup builds a group's members m0, m1, … from a spec such as "60,n,40":
// a number is a weight, "n" a Mapping without one.
func sharesGroup(spec string) []mapper.GroupMember {
	if spec == "" {
		return nil
	}
	var members []mapper.GroupMember
	for i, f := range strings.Split(spec, ",") {
		m := mapper.GroupMember{Name: "m" + strconv.Itoa(i)}
		if f != "n" {
			w, err := strconv.Atoi(f)
			if err != nil {
				panic(fmt.Sprintf("bad group spec %q: %v", spec, err))
			}
			m.Weight = &w
		}
		members = append(members, m)
	}
	return members
}

// weightlessGroup is a group of n members without weights.
func weightlessGroup(n int) string {
	return strings.TrimSuffix(strings.Repeat("n,", n), ",")
}

func TestShares(t *testing.T) {
	hundredOnes := slices.Repeat([]int{1}, 100)
	for _, tc := range []struct {
		name  string
		group string
		want  []int // nil: an error is wanted
	}{
		// No members: the loop at line 75 does nothing.
		{"empty", "", []int{}},

		// Lines 61-66: a lone Mapping gets 100 before any weight is looked
		// at, so even a weight of 0 or over 100 routes everything.
		{"single weightless", "n", []int{100}},
		{"single weighted", "30", []int{100}},
		{"single weight 0", "0", []int{100}},
		{"single weight over 100", "150", []int{100}},

		// Lines 75-91: weighted members get the running total. Below 100 and
		// with no weightless member the rest matches no route of the group
		// (the comment at lines 109-112): the shares add up to 50.
		{"two weighted below 100", "30,20", []int{30, 20}},
		{"two weighted, exactly 100", "60,40", []int{60, 40}},
		// Line 82 adds 0: numerators 0, 0, nothing matches.
		{"weight 0 everywhere", "0,0", []int{0, 0}},
		// Weight 0 takes nothing; the weightless member takes the rest.
		{"weight 0 and weightless", "0,n", []int{0, 100}},

		// Lines 119-130: one weightless member takes the remainder.
		{"weighted and weightless", "60,n", []int{60, 40}},
		// Lines 91, 94, 138: weightless members are routed after all the
		// weighted ones, whatever the order given. Routes m1 (60), m0 (100).
		{"weightless given first", "n,60", []int{40, 60}},
		// Routes m1 (30), m3 (50), then m0 (50+round(50/2)=75), m2 (100).
		{"interleaved", "n,30,n,20", []int{25, 30, 25, 20}},

		// Line 120, round(100/3) = 33: numerators 33, 66, then line 130
		// forces 100, so the last member absorbs the rounding.
		{"three weightless", "n,n,n", []int{33, 33, 34}},
		{"two weightless", "n,n", []int{50, 50}},
		// round(100/6) = 17: 17, 34, 51, 68, 85, then 100.
		{"six weightless", weightlessGroup(6), []int{17, 17, 17, 17, 17, 15}},
		// Python 3 rounds half to even. Remaining 5 over 2: round(2.5) = 2,
		// numerators 95, 97, 100.
		{"half to even, down", "95,n,n", []int{95, 2, 3}},
		// Remaining 7 over 2: round(3.5) = 4, numerators 93, 97, 100.
		{"half to even, up", "93,n,n", []int{93, 4, 3}},
		// Remaining 3 over 2: round(1.5) = 2, numerators 97, 99, 100.
		{"one and a half", "97,n,n", []int{97, 2, 1}},
		// Remaining 1 over 2: round(0.5) = 0, numerators 99, 99, 100; the
		// middle route is shadowed by the first.
		{"half rounds to 0", "99,n,n", []int{99, 0, 1}},
		// Remaining 3 over 6: round(0.5) = 0, so only the last one (forced
		// to 100 at line 130) gets traffic.
		{"all but last weightless get 0", "97," + weightlessGroup(6), []int{97, 0, 0, 0, 0, 0, 3}},
		// Remaining 15 over 9: round(1.67) = 2, so the running total passes
		// 100 before line 130 sets the last to 100: numerators 85, 87, …,
		// 99, 101, 100. Envoy matches 101 for every draw, but the route at
		// 99 already took all draws below 99, so the eighth weightless
		// member gets 1 and the last, at 100, nothing.
		{"overshoot past 100", "85," + weightlessGroup(9), []int{85, 2, 2, 2, 2, 2, 2, 2, 1, 0}},
		// round(100/101) = 1: numerators 1 … 100, then the last is forced to
		// 100 and gets nothing. (Computed, not compiled: Emissary adds
		// Mappings sorted by name, so m10 comes before m2 there.)
		{"101 weightless", weightlessGroup(101), append(slices.Clone(hundredOnes), 0)},

		// Lines 115-118: a weighted total of exactly 100 leaves 0 for the
		// weightless members; this is Emissary's canary workflow, not an
		// error.
		{"total 100 with weightless", "100,n", []int{100, 0}},
		{"total 100 over two, with weightless", "60,40,n", []int{60, 40, 0}},

		// Line 97: a weighted total over 100 is an error.
		{"total 101", "60,41", nil},
		{"total 101 with weightless", "60,41,n", nil},
		// Line 77: a weight over 100 is an error, wherever it is.
		{"member weight 101", "101,n", nil},
		{"member weight 101 after weightless", "n,101", nil},
		{"member weight 101 between", "20,101,30", nil},

		// Negative weights: Emissary would route "30,-10,n" as 30, 0, 70,
		// but crossmap refuses them (see Shares).
		{"negative weight", "30,-10,n", nil},
		{"single negative weight", "-5", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			members := sharesGroup(tc.group)
			got, err := mapper.Shares(members)
			if tc.want == nil {
				if err == nil || !errors.Is(err, mapper.ErrInvalidGroup) || got != nil {
					t.Fatalf("Shares(%s) = %v, %v; want nil and an error wrapping ErrInvalidGroup", tc.group, got, err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("Shares(%s) = %v, %v; want %v", tc.group, got, err, tc.want)
			}
			checkShares(t, members, got, err)
		})
	}
}

// TestSharesRandom checks the invariants of checkShares on random groups,
// including against Envoy's route matching simulated draw by draw.
func TestSharesRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		members := make([]mapper.GroupMember, rng.IntN(8))
		for i := range members {
			members[i].Name = "m" + strconv.Itoa(i)
			if rng.IntN(3) > 0 {
				w := rng.IntN(110) - 3
				if rng.IntN(2) == 0 {
					// Small weights, so that the totals are often valid.
					w = rng.IntN(40)
				}
				members[i].Weight = &w
			}
		}
		got, err := mapper.Shares(members)
		checkShares(t, members, got, err)
		if t.Failed() {
			return
		}
	}
}

// checkShares checks what Shares returned for members against its contract
// and against emissaryRoutes plus envoyShares, an independent transcription of
// Emissary and Envoy.
func checkShares(t *testing.T, members []mapper.GroupMember, got []int, err error) {
	t.Helper()
	desc := describeGroup(members)

	negative, over, total, weightless := false, false, 0, 0
	for _, m := range members {
		switch {
		case m.Weight == nil:
			weightless++
		case *m.Weight < 0:
			negative = true
		case *m.Weight > 100:
			over = true
		}
		if m.Weight != nil {
			total += *m.Weight
		}
	}
	wantErr := negative || len(members) > 1 && (over || total > 100)
	if wantErr {
		if err == nil || !errors.Is(err, mapper.ErrInvalidGroup) || got != nil {
			t.Errorf("Shares(%s) = %v, %v; want nil and an error wrapping ErrInvalidGroup", desc, got, err)
		}
		return
	}
	if err != nil {
		t.Errorf("Shares(%s) failed: %v", desc, err)
		return
	}
	if len(got) != len(members) {
		t.Errorf("Shares(%s) = %v: %d shares for %d members", desc, got, len(got), len(members))
		return
	}

	sum := 0
	for _, s := range got {
		if s < 0 || s > 100 {
			t.Errorf("Shares(%s) = %v: share %d out of 0..100", desc, got, s)
		}
		sum += s
	}
	// The shares add up to 100 when something is at 100, and to the
	// weighted total otherwise; the rest falls through the group.
	wantSum := total
	if len(members) == 1 || weightless > 0 {
		wantSum = 100
	}
	if len(members) == 0 {
		wantSum = 0
	}
	if sum != wantSum {
		t.Errorf("Shares(%s) = %v adds up to %d, want %d", desc, got, sum, wantSum)
	}
	// In a valid group of two or more, a weighted member's share is its
	// weight: weighted routes come first and their running total stays
	// within 100.
	if len(members) > 1 {
		for i, m := range members {
			if m.Weight != nil && got[i] != *m.Weight {
				t.Errorf("Shares(%s) = %v: %s has weight %d but share %d", desc, got, m.Name, *m.Weight, got[i])
			}
		}
	}

	order, numerators, ok := emissaryRoutes(members)
	if !ok {
		t.Errorf("Shares(%s) = %v, but the Emissary transcription rejects the group", desc, got)
		return
	}
	if want := envoyShares(len(members), order, numerators); !slices.Equal(got, want) {
		t.Errorf("Shares(%s) = %v; Envoy would route %v (routes %v, numerators %v)", desc, got, want, order, numerators)
	}
}

// emissaryRoutes transcribes normalize_weights_in_mappings statement by
// statement, with integer arithmetic where Shares uses floats, and returns the
// members' indexes in route order with their runtime_fraction numerators. ok
// is false where the python returns False.
func emissaryRoutes(members []mapper.GroupMember) (order, numerators []int, ok bool) {
	if len(members) == 1 {
		return []int{0}, []int{100}, true
	}
	var weightless []int
	current := 0
	for i, m := range members {
		if m.Weight != nil {
			if *m.Weight > 100 {
				return nil, nil, false
			}
			current += *m.Weight
			order = append(order, i)
			numerators = append(numerators, current)
		} else {
			weightless = append(weightless, i)
		}
	}
	if current > 100 {
		return nil, nil, false
	}
	if n := len(weightless); n > 0 {
		remaining := 100 - current
		// round(remaining / n), half to even, in integers.
		per, rest := remaining/n, remaining%n
		if 2*rest > n || 2*rest == n && per%2 == 1 {
			per++
		}
		for k, i := range weightless {
			if k == n-1 {
				current = 100
			} else {
				current += per
			}
			order = append(order, i)
			numerators = append(numerators, current)
		}
	}
	return order, numerators, true
}

// envoyShares counts, for each of the 100 values of one random draw, the
// first route whose runtime_fraction matches it (draw < numerator), as
// Envoy's route table does.
func envoyShares(n int, order, numerators []int) []int {
	shares := make([]int, n)
	for draw := range 100 {
		for k, i := range order {
			if draw < numerators[k] {
				shares[i]++
				break
			}
		}
	}
	return shares
}

func describeGroup(members []mapper.GroupMember) string {
	parts := make([]string, len(members))
	for i, m := range members {
		parts[i] = "n"
		if m.Weight != nil {
			parts[i] = strconv.Itoa(*m.Weight)
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// effectiveRemotes builds remote backends from a spec such as "30,10x": a configured
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

		var members []mapper.GroupMember
		for i, w := range others {
			members = append(members, mapper.GroupMember{Name: "other" + strconv.Itoa(i), Weight: &w})
		}
		members = append(members, mapper.GroupMember{Name: "local"})
		for i, w := range eff {
			members = append(members, mapper.GroupMember{Name: "remote" + strconv.Itoa(i), Weight: &w})
		}
		shares, err := mapper.Shares(members)
		if err != nil {
			t.Fatalf("Shares(%s) failed: %v", describeGroup(members), err)
		}
		sum := 0
		for _, w := range eff {
			sum += w
		}
		local := shares[len(others)]
		if local != budget-sum || !slices.Equal(shares[len(others)+1:], eff) {
			t.Fatalf("Shares(%s) = %v; want local %d and remotes %v", describeGroup(members), shares, budget-sum, eff)
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
