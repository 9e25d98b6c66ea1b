package emissary

import (
	"errors"
	"fmt"
	"math"
)

// This file holds how Emissary turns the weights of a group of Mappings
// into shares of traffic. crossmap's own policy of moving weight between
// backends as their health changes is mapper's (mapper.Effective).

// ErrInvalidGroup is wrapped by the errors of Shares: the group's weights are
// ones that crossmap refuses to reason about, because Emissary rejects them
// or because they would break Envoy's configuration.
var ErrInvalidGroup = errors.New("invalid weights in Emissary group")

// Weighted is one Mapping in an Emissary weighted group, in the order
// Emissary adds it. Weight is nil when the Mapping has no weight field.
// Members are the group's ordinary Mappings: Emissary keeps shadow and
// host_redirect Mappings out of the weighting.
type Weighted struct {
	Name   string
	Weight *int
}

// Shares returns each member's share of requests in percent, as Emissary 3.10
// routes them, indexed like members. It returns an error (and no shares) when
// Emissary would reject the group.
//
// Emissary (python/ambassador/ir/irbasemappinggroup.py,
// normalize_weights_in_mappings, lines 58-141) gives every member a
// cumulative weight and emits one Envoy route per member, in this order:
//
//   - A group of one member gets 100, whatever its weight, even 0 or more
//     than 100 (lines 59-66).
//   - Weighted members come first, in the order given, each with the running
//     total of the weights so far (lines 75-91). A weight of 0 adds nothing,
//     so that member gets no traffic. A weight over 100 is an error (line 77).
//   - A weighted total over 100 is an error (line 97).
//   - Weightless members come after all the weighted ones, whatever order
//     they were given in (lines 94 and 138): each adds
//     round(remaining/n) with Python 3's round-half-to-even (line 120), and
//     the last one is set to 100 (line 129). That rounding can push the
//     total past 100 before the last one is reset to 100, e.g. 85 then nine
//     weightless members: 87, 89, …, 99, 101, 100.
//
// Each route carries its cumulative weight c as a runtime_fraction of c/100
// (python/ambassador/envoy/v3/v3route.py:302-304). Envoy draws one random
// value r per request, shared by all routes, and route i matches when
// r%100 < c_i (ProtobufPercentHelper::evaluateFractionalPercent); the first
// matching route wins. So route i gets the draws r with
// max(c_j, j < i) <= r < c_i, and r < 100 always:
//
//	share_i = max(0, min(c_i, 100) - max(0, c_j for j < i))
//
// With weights of 0 or more, min(c, 100) never decreases along the routes, so
// this is min(c_i, 100) - min(c_{i-1}, 100): a route whose numerator is not
// above the one before it (a weight of 0, a weightless member's round() of 0,
// or anything after the total overshot 100) gets 0.
//
// The shares add up to 100 when the group has one member, a weightless
// member (the last one is at 100) or weights that add up to exactly 100.
// Otherwise they add up to the weighted total: the rest of the requests match
// no route of the group and fall through to the next matching route, or get
// a 404 (lines 109-112).
//
// Errors, all wrapping ErrInvalidGroup:
//   - a weight over 100, or a weighted total over 100, in a group of two or
//     more: Emissary posts an error on the group. Note that Emissary 3.10
//     does not then drop the group's routes: finalize gives up
//     (irhttpmappinggroup.py:464-466) but V3Route.generate
//     (v3route.py:637-670) still emits one route per member, with the
//     cumulative weights it had reached (members past the point of failure
//     keep the initial 0 of irbasemapping.py:147). Traffic then is neither
//     what was configured nor nothing, so Shares reports the error instead of
//     modelling it.
//   - a negative weight, in any group. Emissary does not check for negative
//     weights (the Mapping CRD has no minimum), but a negative running total
//     reaches Envoy as a negative uint32 numerator, which ambex cannot decode
//     (pkg/ambex/main.go Decode, protojson): it skips the whole Envoy
//     configuration file, not just this group. A negative weight has no
//     meaning as a share, and crossmap never writes one, so it is reported
//     rather than modelled, even where Emissary would survive it.
func Shares(members []Weighted) ([]int, error) {
	for _, m := range members {
		if m.Weight != nil && *m.Weight < 0 {
			return nil, fmt.Errorf("%w: Mapping %s has negative weight %d", ErrInvalidGroup, m.Name, *m.Weight)
		}
	}
	if len(members) == 1 {
		return []int{100}, nil
	}

	// routes lists the members' indexes in the order Emissary emits their
	// routes; cum holds each member's cumulative weight, by member index.
	routes := make([]int, 0, len(members))
	cum := make([]int, len(members))
	var weightless []int
	total := 0
	for i, m := range members {
		if m.Weight == nil {
			weightless = append(weightless, i)
			continue
		}
		if *m.Weight > 100 {
			return nil, fmt.Errorf("%w: Mapping %s has weight %d, more than 100", ErrInvalidGroup, m.Name, *m.Weight)
		}
		total += *m.Weight
		cum[i] = total
		routes = append(routes, i)
	}
	if total > 100 {
		return nil, fmt.Errorf("%w: the weights add up to %d, more than 100", ErrInvalidGroup, total)
	}
	if n := len(weightless); n > 0 {
		// Python's round(remaining / n): a float division, then round half
		// to even. Both sides divide IEEE doubles, so the quotient, and a
		// tie such as 5/2 = 2.5, are the same here.
		each := int(math.RoundToEven(float64(100-total) / float64(n)))
		for k, i := range weightless {
			if k == n-1 {
				total = 100
			} else {
				total += each
			}
			cum[i] = total
			routes = append(routes, i)
		}
	}

	shares := make([]int, len(members))
	matched := 0 // the draws taken by earlier routes: [0, matched)
	for _, i := range routes {
		c := min(cum[i], 100)
		if c > matched {
			shares[i] = c - matched
			matched = c
		}
	}
	return shares, nil
}
