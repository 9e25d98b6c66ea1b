package ingress

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// The route annotations: how a developer asks for a cross-cluster route on
// an existing Mapping. They are the user-facing interface of crossmap, so
// ParseRouteAnnotations is strict and says exactly what is wrong.
const (
	// AnnotationPrefix starts every crossmap annotation. Any key with this
	// prefix on a Mapping is taken as a route annotation, so that a typo
	// (crossmap.io/splt) is reported instead of silently ignored.
	AnnotationPrefix = "crossmap.io/"

	// AnnotationSplit sends a share of the route's traffic to remote
	// clusters: "east=50" or "east=30,dev=10". Weights are percentages; the
	// Mapping's own (local) backend keeps 100 minus their total.
	AnnotationSplit = "crossmap.io/split"
	// AnnotationFailover makes the split weights follow health: "off" (the
	// default), "weighted", "local-first" or "priority". "true" and "on"
	// mean weighted, "false" means off.
	AnnotationFailover = "crossmap.io/failover"
	// AnnotationPriority lists the tiers of failover "priority", first
	// choice first: "local,east,dev-alice", or with several clusters
	// sharing a tier, "local,east|west,dev". LocalTier is the Mapping's own
	// backend.
	AnnotationPriority = "crossmap.io/priority"
	// AnnotationDevRoutes names developer clusters that get a header route:
	// "dev-alice" or "dev-alice,dev-bob".
	AnnotationDevRoutes = "crossmap.io/dev-routes"
	// AnnotationTrafficSplit turns the SMI TrafficSplit for meshed in-cluster
	// traffic on or off: "true" or "false".
	AnnotationTrafficSplit = "crossmap.io/traffic-split"

	// MaxClusterNameLength is the longest cluster name, as for a Link's
	// clusterName: the name becomes the suffix of mirrored Services
	// (<service>-<cluster>), which must still fit in a 63-character label.
	MaxClusterNameLength = 30

	// knownAnnotations lists the route annotations for error messages, in
	// the order errors are reported.
	knownAnnotations = AnnotationDevRoutes + ", " + AnnotationFailover + ", " +
		AnnotationPriority + ", " + AnnotationSplit + " and " + AnnotationTrafficSplit

	// LocalTier names the Mapping's own backend in AnnotationPriority. It
	// always means this cluster's backend, even if a Link is called so.
	LocalTier = "local"

	// clusterNameRule is appended to every bad cluster name message.
	clusterNameRule = "a cluster name is a Link's clusterName: at most 30 lowercase letters, digits and '-', starting and ending with a letter or digit"
)

// FailoverPolicy is the value of AnnotationFailover.
type FailoverPolicy string

// The failover policies.
const (
	// FailoverOff keeps the written weights whatever the health of the
	// backends.
	FailoverOff FailoverPolicy = "off"
	// FailoverWeighted gives an unhealthy backend weight 0 and shares its
	// weight among the healthy ones.
	FailoverWeighted FailoverPolicy = "weighted"
	// FailoverLocalFirst sends everything to the local backend while it is
	// healthy, and to the remotes only when it is not: the priority tiers
	// local, then every cluster of the split.
	FailoverLocalFirst FailoverPolicy = "local-first"
	// FailoverPriority sends everything to the first tier of
	// AnnotationPriority that has a healthy backend.
	FailoverPriority FailoverPolicy = "priority"
)

// ClusterWeight is one item of AnnotationSplit: the percentage of the
// route's traffic that goes to a remote cluster.
type ClusterWeight struct {
	Cluster string
	Weight  int
}

// RouteAnnotations are a Mapping's route annotations, parsed.
type RouteAnnotations struct {
	Split        []ClusterWeight // in the order written
	Failover     FailoverPolicy  // FailoverOff when unset
	DevRoutes    []string        // in the order written
	TrafficSplit *bool           // nil when unset: the controller's default applies
	// Priority are the tiers of FailoverPriority, first choice first:
	// each the cluster names written in it, LocalTier for the Mapping's
	// own backend. Every cluster of Split is in one tier, and LocalTier
	// in exactly one.
	Priority [][]string
}

// AnnotationError says what is wrong with one route annotation. Its message
// names the annotation, quotes the value and says what is allowed, so the
// developer who wrote it can fix it from an Event or a status line alone.
type AnnotationError struct {
	Annotation string // the annotation key, such as AnnotationSplit
	Value      string // the value as written
	Reason     string // what is wrong, and what is allowed
}

func (e *AnnotationError) Error() string {
	return fmt.Sprintf("annotation %s: %q: %s", e.Annotation, e.Value, e.Reason)
}

// Annotated reports whether ann has any crossmap.io/ route annotation: one
// of the four known ones, or any other key with AnnotationPrefix, which
// ParseRouteAnnotations then reports as unknown.
//
// crossmap's own bookkeeping annotations (crossmapv1.AnnotationSpecHash,
// which every object crossmap writes carries, and AnnotationFailoverPolicy
// on its routes) are not route annotations.
func Annotated(ann map[string]string) bool {
	for k := range ann {
		if isRouteKey(k) {
			return true
		}
	}
	return false
}

// ParseRouteAnnotations parses and strictly validates the route annotations
// in ann, a Mapping's annotations. Keys without AnnotationPrefix are
// ignored; a map with no route annotation gives the zero value and nil.
//
// Every problem is reported, not just the first: the error joins (with
// errors.Join) one *AnnotationError per problem, ordered by annotation key
// and then by position in the value. Use errors.As to get at them. On error
// the returned RouteAnnotations is the zero value: a route is translated
// from all of its annotations or not at all.
//
// Surrounding spaces are ignored in every value, and around each item,
// cluster name and weight of a list. Values are otherwise case-sensitive.
func ParseRouteAnnotations(ann map[string]string) (RouteAnnotations, error) {
	if !Annotated(ann) {
		return RouteAnnotations{}, nil
	}
	var (
		ra   = RouteAnnotations{Failover: FailoverOff}
		errs []*AnnotationError
	)
	fail := func(key string, reasons ...string) {
		for _, r := range reasons {
			errs = append(errs, &AnnotationError{Annotation: key, Value: ann[key], Reason: r})
		}
	}

	// In the order of their keys, which is the order errors are reported in.
	if v, ok := ann[AnnotationDevRoutes]; ok {
		var probs []string
		ra.DevRoutes, probs = parseDevRoutes(v)
		fail(AnnotationDevRoutes, probs...)
	}
	_, hasSplit := ann[AnnotationSplit]
	if v, ok := ann[AnnotationFailover]; ok {
		p, prob := parseFailover(v)
		if prob != "" {
			fail(AnnotationFailover, prob)
		}
		ra.Failover = p
		// Without a split there are no remote clusters to fail over to. A
		// split that is present but wrong is reported on its own; saying
		// more here would only be noise.
		// Priority names its clusters itself.
		_, hasPriority := ann[AnnotationPriority]
		switch {
		case prob == "" && ra.Failover == FailoverPriority && !hasPriority:
			fail(AnnotationFailover, "failover priority needs "+AnnotationPriority+" to list the tiers, first choice first, like local,east")
		case prob == "" && ra.Failover != FailoverOff && ra.Failover != FailoverPriority && !hasSplit:
			fail(AnnotationFailover, "failover needs "+AnnotationSplit+" to name the remote clusters")
		}
	}
	if v, ok := ann[AnnotationPriority]; ok {
		var probs []string
		ra.Priority, probs = parsePriority(v)
		if ra.Failover != FailoverPriority {
			probs = append(probs, fmt.Sprintf("tiers apply only with %s: priority (it is %s)", AnnotationFailover, cmp.Or(strings.TrimSpace(ann[AnnotationFailover]), "unset")))
		}
		fail(AnnotationPriority, probs...)
	}
	if hasSplit {
		var probs []string
		ra.Split, probs = parseSplit(ann[AnnotationSplit])
		fail(AnnotationSplit, probs...)
		if len(probs) == 0 && ra.Failover == FailoverPriority && len(ra.Priority) > 0 {
			fail(AnnotationPriority, splitOutsideTiers(ra.Split, ra.Priority)...)
		}
	}
	if v, ok := ann[AnnotationTrafficSplit]; ok {
		switch strings.TrimSpace(v) {
		case "true":
			ra.TrafficSplit = new(true)
		case "false":
			ra.TrafficSplit = new(false)
		default:
			fail(AnnotationTrafficSplit, "must be true or false")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ann)) {
		if isRouteKey(k) && !isKnown(k) {
			fail(k, unknownReason(k))
		}
	}

	if len(errs) > 0 {
		// Stable, so that problems of one annotation stay in value order.
		slices.SortStableFunc(errs, func(a, b *AnnotationError) int {
			return cmp.Compare(a.Annotation, b.Annotation)
		})
		joined := make([]error, len(errs))
		for i, e := range errs {
			joined[i] = e
		}
		return RouteAnnotations{}, errors.Join(joined...)
	}
	return ra, nil
}

// isRouteKey reports whether annotation key k is for ParseRouteAnnotations.
func isRouteKey(k string) bool {
	return strings.HasPrefix(k, AnnotationPrefix) && k != crossmapv1.AnnotationSpecHash && k != crossmapv1.AnnotationFailoverPolicy
}

func isKnown(k string) bool {
	switch k {
	case AnnotationSplit, AnnotationFailover, AnnotationDevRoutes, AnnotationTrafficSplit, AnnotationPriority:
		return true
	}
	return false
}

// unknownReason explains an unknown crossmap.io/ key, suggesting the known
// key it is closest to when it looks like a typo of it.
func unknownReason(k string) string {
	reason := "unknown crossmap.io annotation"
	best, bestDist := "", 3 // suggest only within two edits
	for _, known := range []string{AnnotationDevRoutes, AnnotationFailover, AnnotationPriority, AnnotationSplit, AnnotationTrafficSplit} {
		if d := editDistance(k, known); d < bestDist {
			best, bestDist = known, d
		}
	}
	if best != "" {
		reason += " (did you mean " + best + "?)"
	}
	return reason + "; the known ones are " + knownAnnotations
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// parseSplit parses "cluster=weight,...". It returns the problems found, one
// per bad item, plus one for a total above 100.
func parseSplit(v string) ([]ClusterWeight, []string) {
	if strings.TrimSpace(v) == "" {
		return nil, []string{"the value is empty; write cluster=weight items separated by commas, like east=30,dev=10"}
	}
	var (
		out   []ClusterWeight
		probs []string
		total int
	)
	for i, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			probs = append(probs, fmt.Sprintf("item %d is empty (a stray comma?); write cluster=weight items separated by commas, like east=30,dev=10", i+1))
			continue
		}
		name, weight, ok := strings.Cut(item, "=")
		if !ok {
			example := "east"
			if labelProblem(item, MaxClusterNameLength, false) == "" {
				example = item
			}
			probs = append(probs, fmt.Sprintf("item %q has no \"=\"; write cluster=weight, like %s=50", item, example))
			continue
		}
		name, weight = strings.TrimSpace(name), strings.TrimSpace(weight)
		bad := false
		if name == "" {
			probs = append(probs, fmt.Sprintf("item %q names no cluster; write cluster=weight, like east=50", item))
			bad = true
		} else if why := labelProblem(name, MaxClusterNameLength, false); why != "" {
			probs = append(probs, fmt.Sprintf("cluster %q is not a valid cluster name: %s; %s", name, why, clusterNameRule))
			bad = true
		}
		w, ok := parseWeight(weight)
		switch {
		case weight == "":
			probs = append(probs, fmt.Sprintf("item %q has no weight; write cluster=weight, like east=50", item))
			bad = true
		case !ok:
			probs = append(probs, fmt.Sprintf("weight %q is not a whole number from 0 to 100", weight))
			bad = true
		}
		if bad {
			continue
		}
		if slices.ContainsFunc(out, func(cw ClusterWeight) bool { return cw.Cluster == name }) {
			probs = append(probs, fmt.Sprintf("cluster %q is listed more than once; give each cluster one weight", name))
			continue
		}
		out = append(out, ClusterWeight{Cluster: name, Weight: w})
		total += w
	}
	if total > 100 {
		probs = append(probs, fmt.Sprintf("the weights add up to %d, above 100; the local backend keeps 100 minus the total, so the total must be at most 100", total))
	}
	return out, probs
}

// parseWeight parses a weight: base-10 digits only (no sign, no decimal
// point, no exponent), 0 to 100. Leading zeros are accepted ("05" is 5):
// the value is unambiguous, and rejecting it would help no one.
func parseWeight(s string) (int, bool) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, false
	}
	w, err := strconv.Atoi(s)
	if err != nil || w > 100 { // err: too many digits for an int
		return 0, false
	}
	return w, true
}

// parseDevRoutes parses "cluster,...".
func parseDevRoutes(v string) ([]string, []string) {
	if strings.TrimSpace(v) == "" {
		return nil, []string{"the value is empty; write cluster names separated by commas, like dev-alice,dev-bob"}
	}
	var out, probs []string
	for i, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		why := labelProblem(name, MaxClusterNameLength, false)
		switch {
		case name == "":
			probs = append(probs, fmt.Sprintf("item %d is empty (a stray comma?); write cluster names separated by commas, like dev-alice,dev-bob", i+1))
		case why != "":
			probs = append(probs, fmt.Sprintf("cluster %q is not a valid cluster name: %s; %s", name, why, clusterNameRule))
		case slices.Contains(out, name):
			probs = append(probs, fmt.Sprintf("cluster %q is listed more than once", name))
		default:
			out = append(out, name)
		}
	}
	return out, probs
}

// parsePriority parses "tier,tier,...", each tier "cluster|cluster...".
// It returns the problems found: empty tiers or names, invalid cluster
// names, a cluster in two places, and LocalTier missing.
func parsePriority(v string) ([][]string, []string) {
	const example = "write tiers separated by commas, first choice first, and clusters sharing a tier separated by |, like local,east|west,dev-alice"
	if strings.TrimSpace(v) == "" {
		return nil, []string{"the value is empty; " + example}
	}
	var (
		out   [][]string
		probs []string
		seen  = map[string]bool{}
	)
	for i, item := range strings.Split(v, ",") {
		if strings.TrimSpace(item) == "" {
			probs = append(probs, fmt.Sprintf("tier %d is empty (a stray comma?); %s", i+1, example))
			continue
		}
		var tier []string
		for _, name := range strings.Split(item, "|") {
			name = strings.TrimSpace(name)
			why := labelProblem(name, MaxClusterNameLength, false)
			switch {
			case name == "":
				probs = append(probs, fmt.Sprintf("tier %d (%q) has an empty name (a stray |?); %s", i+1, strings.TrimSpace(item), example))
			case why != "":
				probs = append(probs, fmt.Sprintf("cluster %q is not a valid cluster name: %s; %s", name, why, clusterNameRule))
			case seen[name]:
				probs = append(probs, fmt.Sprintf("cluster %q is listed more than once; put each cluster in one tier", name))
			default:
				seen[name] = true
				tier = append(tier, name)
			}
		}
		if len(tier) > 0 {
			out = append(out, tier)
		}
	}
	if len(probs) == 0 && !seen[LocalTier] {
		probs = append(probs, "the tiers do not list local, the Mapping's own backend; put it in the tier where it belongs, like local,east or east,local")
	}
	return out, probs
}

// splitOutsideTiers reports the clusters of a split that no tier lists,
// and a split that names LocalTier, which in the tiers is the Mapping's own
// backend.
func splitOutsideTiers(split []ClusterWeight, tiers [][]string) []string {
	var probs []string
	for _, cw := range split {
		switch {
		case cw.Cluster == LocalTier:
			probs = append(probs, fmt.Sprintf("%s gives cluster %q a weight, but in the tiers %q is the Mapping's own backend; rename the cluster's Link", AnnotationSplit, LocalTier, LocalTier))
		case !slices.ContainsFunc(tiers, func(t []string) bool { return slices.Contains(t, cw.Cluster) }):
			probs = append(probs, fmt.Sprintf("cluster %q has a weight in %s but is in no tier; add it to the tier where it belongs", cw.Cluster, AnnotationSplit))
		}
	}
	return probs
}

// parseFailover parses the failover policy. It returns a problem, or "".
func parseFailover(v string) (FailoverPolicy, string) {
	s := strings.TrimSpace(v)
	if p, ok := failoverPolicy(s); ok {
		return p, ""
	}
	const allowed = "use off, weighted, local-first or priority (true and on also mean weighted, false means off)"
	if s == "" {
		return "", "the value is empty; " + allowed
	}
	if _, ok := failoverPolicy(strings.ToLower(s)); ok {
		return "", "not a failover policy; " + allowed + "; values are lowercase"
	}
	return "", "not a failover policy; " + allowed
}

// failoverPolicy maps the values AnnotationFailover accepts to policies.
func failoverPolicy(s string) (FailoverPolicy, bool) {
	switch s {
	case "off", "false":
		return FailoverOff, true
	case "weighted", "true", "on":
		return FailoverWeighted, true
	case "local-first":
		return FailoverLocalFirst, true
	case "priority":
		return FailoverPriority, true
	}
	return "", false
}

// labelProblem says what keeps s from being a DNS label of at most max
// characters (RFC 1123, or RFC 1035 when letterFirst: then it must also
// start with a letter), or "" when it is one. Kubernetes names Services
// with RFC 1035 labels, and namespaces and clusters with RFC 1123 ones.
func labelProblem(s string, max int, letterFirst bool) string {
	if s == "" {
		return "it is empty"
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
		case r >= 'A' && r <= 'Z':
			return "it has uppercase letters (names are lowercase)"
		default:
			return fmt.Sprintf("it has %q, and only lowercase letters, digits and '-' are allowed", r)
		}
	}
	if len(s) > max {
		return fmt.Sprintf("it is %d characters long, and the limit is %d", len(s), max)
	}
	if letterFirst && !(s[0] >= 'a' && s[0] <= 'z') {
		return fmt.Sprintf("it starts with %q, and must start with a letter", s[0])
	}
	if s[0] == '-' {
		return "it starts with '-', and must start with a letter or digit"
	}
	if s[len(s)-1] == '-' {
		return "it ends with '-', and must end with a letter or digit"
	}
	return ""
}
