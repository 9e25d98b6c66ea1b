package emissary_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/crossmap/crossmap/emissary"
)

// Line numbers in these tests are those of Emissary 3.10.0's
// python/ambassador/ir/irbasemappinggroup.py (normalize_weights_in_mappings).
// Every expected share was checked against Emissary itself: its python
// compiler turned Mappings with these weights, all with the same prefix, into
// Envoy routes, and the shares are what Envoy's first-match over one draw
// r%100 < numerator gives for those routes.

// sharesGroup builds a group's members m0, m1, … from a spec such as "60,n,40":
// a number is a weight, "n" a Mapping without one.
func sharesGroup(spec string) []emissary.Weighted {
	if spec == "" {
		return nil
	}
	var members []emissary.Weighted
	for i, f := range strings.Split(spec, ",") {
		m := emissary.Weighted{Name: "m" + strconv.Itoa(i)}
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
			got, err := emissary.Shares(members)
			if tc.want == nil {
				if err == nil || !errors.Is(err, emissary.ErrInvalidGroup) || got != nil {
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
		members := make([]emissary.Weighted, rng.IntN(8))
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
		got, err := emissary.Shares(members)
		checkShares(t, members, got, err)
		if t.Failed() {
			return
		}
	}
}

// checkShares checks what Shares returned for members against its contract
// and against emissaryRoutes plus envoyShares, an independent transcription of
// Emissary and Envoy.
func checkShares(t *testing.T, members []emissary.Weighted, got []int, err error) {
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
		if err == nil || !errors.Is(err, emissary.ErrInvalidGroup) || got != nil {
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
func emissaryRoutes(members []emissary.Weighted) (order, numerators []int, ok bool) {
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

func describeGroup(members []emissary.Weighted) string {
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
