package mapper

import (
	"slices"
)

// This file holds crossmap's weight policy: how it moves weight between the
// backends of a split as their health changes (Effective). How Emissary
// turns a group's weights into shares of traffic is emissary.Shares.

// The failover policies, as ingress.FailoverPolicy spells them. They are
// repeated here so that mapper does not import ingress.
const (
	failoverOff        = "off"
	failoverWeighted   = "weighted"
	failoverLocalFirst = "local-first"
	failoverPriority   = "priority"
)

// Backend is one remote backend of a split: its configured weight and whether
// it is healthy (gateway alive and ready endpoints).
type Backend struct {
	Configured int
	Healthy    bool
	// Tier is the backend's priority tier (Tiered); lower comes first.
	// Other policies ignore it.
	Tier int
}

// Effective returns the weight each remote should get now, indexed like
// remotes.
//
// budget is the share of traffic crossmap's backends split: 100 minus the
// weights of the other weighted Mappings in the same Emissary group. The local
// backend implicitly gets budget minus the sum returned; its configured weight
// is budget minus the sum of the configured ones.
//
// policy is an ingress.FailoverPolicy:
//
//   - "off": the configured weights.
//   - "weighted", local backend healthy: unhealthy remotes get 0, and budget
//     is split among the healthy backends (the local one and the healthy
//     remotes) in proportion to their configured weights, so the weight the
//     unhealthy remotes had goes to the healthy backends in that proportion
//     and a healthy backend never gets less than it was configured with. When
//     all healthy backends are configured with 0 the local backend takes it
//     all. When everything is healthy this gives the configured weights.
//   - "weighted", local backend unhealthy, a remote healthy: the healthy
//     remotes split all of budget in proportion to their configured weights,
//     or equally when those are all 0; unhealthy remotes get 0.
//   - "local-first": every remote gets 0 while the local backend is healthy;
//     otherwise as "weighted". This is Tiered with the local backend in
//     the first tier and every remote in the second.
//   - Nothing healthy at all, under "weighted" or "local-first": the
//     configured weights. There is nowhere better to send the traffic, and
//     keeping the split means a backend that recovers first gets its share
//     at once.
//
// Integer weights come from the largest remainder method: each backend gets
// the floor of its exact share, and the points left over go one each to the
// backends with the largest remainders. Ties go to the local backend first,
// then to remotes in index order: the local backend serves without a hop
// between clusters. So each weight is its exact share rounded down or up,
// the sum returned never exceeds budget, and it is exactly budget when the
// remotes take everything.
//
// Preconditions: 0 <= budget <= 100, 0 <= Configured <= 100 for each remote,
// and the configured weights add up to at most budget. When one does not
// hold, or policy is none of the three, Effective returns the configured
// weights unchanged: a caller with bad input gets the split it asked for, and
// never a panic. The result never shares memory with remotes.
func Effective(policy string, budget int, localHealthy bool, remotes []Backend) []int {
	configured, sum, valid := checkConfigured(budget, remotes)
	if !valid {
		return configured
	}

	switch policy {
	case failoverWeighted:
	case failoverLocalFirst:
		tiered := make([]Backend, len(remotes))
		for i, r := range remotes {
			tiered[i] = Backend{Configured: r.Configured, Healthy: r.Healthy, Tier: 1}
		}
		return Tiered(budget, 0, localHealthy, tiered)
	default: // failoverOff, or a policy this code does not know
		return configured
	}

	anyRemoteHealthy := slices.ContainsFunc(remotes, func(r Backend) bool { return r.Healthy })
	// Only weighted is left: local-first returned through Tiered above.
	switch {
	case localHealthy:
		// weights[0] is the local backend, so that it wins ties.
		weights := make([]int, len(remotes)+1)
		weights[0] = budget - sum
		for i, r := range remotes {
			if r.Healthy {
				weights[i+1] = r.Configured
			}
		}
		if !slices.ContainsFunc(weights, func(w int) bool { return w > 0 }) {
			return make([]int, len(remotes))
		}
		return largestRemainder(budget, weights)[1:]
	case anyRemoteHealthy:
		weights := make([]int, len(remotes))
		healthySum := 0
		for i, r := range remotes {
			if r.Healthy {
				weights[i] = r.Configured
				healthySum += r.Configured
			}
		}
		if healthySum == 0 {
			for i, r := range remotes {
				if r.Healthy {
					weights[i] = 1
				}
			}
		}
		return largestRemainder(budget, weights)
	default:
		return configured
	}
}

// Tiered returns the weight each remote should get now under priority
// failover, indexed like remotes: all of budget goes to the first tier
// (lowest Tier; the local backend's is localTier) that has a healthy
// backend, and nothing to the others. Inside that tier the healthy
// backends split budget in proportion to their configured weights (the
// local backend's is budget minus the remotes' configured sum), or
// equally when those are all 0; its unhealthy backends get 0. So the next
// tier takes over only when a tier has no healthy backend at all, and
// gives it back as soon as one returns.
//
// Nothing healthy at all: the configured weights, as under Effective's
// other policies. The integer weights, ties (the local backend first,
// then remotes in index order), the preconditions and what bad input
// gets are Effective's.
func Tiered(budget, localTier int, localHealthy bool, remotes []Backend) []int {
	configured, sum, valid := checkConfigured(budget, remotes)
	if !valid {
		return configured
	}
	// The first tier with a healthy backend.
	first, found := 0, false
	if localHealthy {
		first, found = localTier, true
	}
	for _, r := range remotes {
		if r.Healthy && (!found || r.Tier < first) {
			first, found = r.Tier, true
		}
	}
	if !found {
		return configured
	}
	// weights[0] is the local backend, so that it wins ties.
	weights := make([]int, len(remotes)+1)
	if localHealthy && localTier == first {
		weights[0] = budget - sum
	}
	for i, r := range remotes {
		if r.Healthy && r.Tier == first {
			weights[i+1] = r.Configured
		}
	}
	if !slices.ContainsFunc(weights, func(w int) bool { return w > 0 }) {
		// All configured with 0: the tier's healthy backends share equally.
		if localHealthy && localTier == first {
			weights[0] = 1
		}
		for i, r := range remotes {
			if r.Healthy && r.Tier == first {
				weights[i+1] = 1
			}
		}
	}
	return largestRemainder(budget, weights)[1:]
}

// largestRemainder splits total in proportion to weights, which are
// non-negative and not all 0: each gets total*w/Σw rounded down, and the
// points left over go to the largest remainders, ties to the lower index.
// The results add up to total, and a weight of 0 gets 0. The arithmetic is
// exact: remainders are compared as integers over the common denominator Σw.
func largestRemainder(total int, weights []int) []int {
	sum := 0
	for _, w := range weights {
		sum += w
	}
	out := make([]int, len(weights))
	rem := make([]int, len(weights))
	left := total
	for i, w := range weights {
		out[i] = total * w / sum
		rem[i] = total * w % sum
		left -= out[i]
	}
	order := make([]int, len(weights))
	for i := range order {
		order[i] = i
	}
	// Stable, so equal remainders keep index order.
	slices.SortStableFunc(order, func(a, b int) int { return rem[b] - rem[a] })
	// left < len(weights), and the first left of order all have a remainder
	// above 0: the remainders add up to left*sum and each is below sum.
	for _, i := range order[:left] {
		out[i]++
	}
	return out
}

// checkConfigured copies the remotes' configured weights and says whether
// Effective's and Tiered's preconditions hold: a budget and weights in
// [0, 100], and weights that fit the budget; sum is their total.
func checkConfigured(budget int, remotes []Backend) (configured []int, sum int, valid bool) {
	configured = make([]int, len(remotes))
	valid = budget >= 0 && budget <= 100
	for i, r := range remotes {
		configured[i] = r.Configured
		sum += r.Configured
		valid = valid && r.Configured >= 0 && r.Configured <= 100
	}
	return configured, sum, valid && sum <= budget
}
