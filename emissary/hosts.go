package emissary

import (
	"cmp"
	"strings"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Host is an Emissary Host as Mapping binding sees it.
type Host struct {
	// Name is namespace/name, or "default-host" for the Host Emissary
	// makes up when there is none.
	Name string
	// Hostname is a DNS glob; "*" when the Host gives none.
	Hostname string
	// Selector is the Host's mappingSelector.matchLabels. HasSelector is
	// false when the Host has no mappingSelector (nor the deprecated
	// selector), which is not the same as one with no labels.
	Selector    map[string]string
	HasSelector bool
	// Insecure is requestPolicy.insecure.action, what a cleartext request
	// gets: Route, Redirect (to https; the default) or Reject. The secure
	// action is always Route.
	Insecure string
}

// Insecure actions of a Host (ir/irhost.py, IRHost.setup; the Host CRD's
// enum).
const (
	InsecureRoute    = "Route"
	InsecureRedirect = "Redirect"
	InsecureReject   = "Reject"
)

// HostOf reads h as IRHost.setup does (ir/irhost.py): hostname defaults to
// "*", and the deprecated selector stands in for a missing mappingSelector.
func HostOf(h *ambv3.Host) Host {
	out := Host{Name: h.Namespace + "/" + h.Name, Hostname: "*", Insecure: InsecureRedirect}
	if h.Spec == nil {
		return out
	}
	out.Hostname = cmp.Or(h.Spec.Hostname, "*")
	if p := h.Spec.RequestPolicy; p != nil && p.Insecure.Action != "" {
		out.Insecure = p.Insecure.Action
	}
	sel := h.Spec.MappingSelector
	if !selectorSet(sel) {
		sel = h.Spec.DeprecatedSelector
	}
	if selectorSet(sel) {
		out.HasSelector = true
		out.Selector = sel.MatchLabels
	}
	return out
}

// DefaultHost is the Host Emissary makes up when the installation has none
// (ir/irhost.py, HostFactory.finalize): hostname "*", no mappingSelector,
// and cleartext routed.
func DefaultHost() Host { return Host{Name: "default-host", Hostname: "*", Insecure: InsecureRoute} }

// selectorSet reports whether Emissary sees a selector at all: Python
// treats an empty dict as false, and an empty matchLabels is dropped from
// the JSON Emissary reads, so {} and {matchLabels: {}} are no selector.
// Emissary ignores matchExpressions, but a selector with only
// matchExpressions is still a (match-everything) selector.
func selectorSet(sel *metav1.LabelSelector) bool {
	return sel != nil && (len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0)
}

// Accepts is Emissary's IRHost.matches_httpgroup (ir/irhost.py) with strict
// label selectors (the 3.x default): the Host takes a group when
//
//   - it has a mappingSelector and the group a hostname: both must match;
//   - only a mappingSelector: the group's labels must meet it;
//   - only the group has a hostname: the globs must overlap;
//   - neither: never. A Mapping without hostname binds only to Hosts that
//     select it by label.
//
// A host_regex hostname counts as matching every Host, and Emissary's own
// probe Mappings go to every Host.
func (h Host) Accepts(g *Group) bool {
	if g.Builtin != "" {
		// "The synthetic Mappings for diagnostics, readiness, and
		// liveness probes always match all Hosts."
		return true
	}
	return h.binds(g.Host, g.HostRegex, g.Labels)
}

// Binds reports whether the Host takes a lone Mapping with labels: the
// binding of a group of one, before its labels merge with others'.
func (h Host) Binds(m *ambv3.Mapping) bool {
	match := MatchOf(&m.Spec)
	return h.binds(match.Host, match.HostRegex, m.Labels)
}

func (h Host) binds(hostname string, hostRegex bool, labels map[string]string) bool {
	hasHostname, hostMatch := false, false
	switch {
	case hostRegex:
		hasHostname, hostMatch = true, true
	case hostname != "":
		hasHostname, hostMatch = true, HostglobMatches(h.Hostname, hostname)
	}
	selMatch := h.HasSelector && SelectorMatches(h.Selector, labels)
	switch {
	case h.HasSelector && hasHostname:
		return hostMatch && selMatch
	case h.HasSelector:
		return selMatch
	case hasHostname:
		return hostMatch
	}
	return false
}

// SelectorMatches is Emissary's selector_matches (ir/irutils.py) with strict
// selectors: every matchLabels entry must be among labels. No matchLabels
// matches everything.
func SelectorMatches(match, labels map[string]string) bool {
	for k, v := range match {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Served reports whether the installation with one of ids (none means
// "default", Emissary's default) sees an object with ambassador_id aid
// (unset means "default"; "_automatic_" is seen by every installation).
func Served(aid ambv3.AmbassadorID, ids []string) bool {
	if len(ids) == 0 {
		ids = []string{"default"}
	}
	for _, id := range ids {
		if aid.Matches(id) {
			return true
		}
	}
	return false
}

// HostglobMatches is Emissary's hostglob_matches (ir/irutils.py): whether
// some hostname could match both DNS globs. A "*" may stand only at the
// start or the end of a glob, and never matches the empty string.
func HostglobMatches(g1, g2 string) bool {
	if g1 == g2 || g1 == "*" || g2 == "*" {
		return true
	}
	if g1 == "" || g2 == "" || g1[0] == '.' || g2[0] == '.' {
		return false
	}
	g1start, g1end := g1[0] == '*', g1[len(g1)-1] == '*'
	g2start, g2end := g2[0] == '*', g2[len(g2)-1] == '*'
	if (g1start && g1end) || (g2start && g2end) {
		return g1 == g2
	}
	if !(g1start || g1end || g2start || g2end) {
		return false
	}
	if (g1start && g2end) || (g2start && g1end) {
		return true
	}
	switch {
	case g1start:
		return hostglobMatchesStart(g1, g2, g2start)
	case g2start:
		return hostglobMatchesStart(g2, g1, g1start)
	case g1end:
		return hostglobMatchesEnd(g1, g2, g2end)
	default: // g2end
		return hostglobMatchesEnd(g2, g1, g1end)
	}
}

// hostglobMatchesStart has g1 starting with "*" (hostglob_matches_start).
// Lengths are in bytes where Python counts code points; hostnames are
// ASCII, and for the rest only the comparison of lengths matters.
func hostglobMatchesStart(g1, g2 string, g2start bool) bool {
	g1match, g2match := g1[1:], g2
	if g2start {
		g2match = g2[1:]
	}
	if len(g1) > len(g2match) {
		if !g2start {
			return false
		}
		g1match, g2match = g2[1:], g1[1:]
	}
	return strings.HasSuffix(g2match, g1match)
}

// hostglobMatchesEnd has g1 ending with "*" (hostglob_matches_end).
func hostglobMatchesEnd(g1, g2 string, g2end bool) bool {
	g1match, g2match := g1[:len(g1)-1], g2
	if g2end {
		g2match = g2[:len(g2)-1]
	}
	if len(g1) > len(g2match) {
		if !g2end {
			return false
		}
		g1match, g2match = g2[:len(g2)-1], g1[:len(g1)-1]
	}
	return strings.HasPrefix(g2match, g1match)
}
