package ingress

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
)

// annotationErrors returns the *AnnotationErrors joined in err, in order.
// It fails the test if err holds anything else.
func annotationErrors(t *testing.T, err error) []*AnnotationError {
	t.Helper()
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []*AnnotationError
	for _, e := range errs {
		ae, ok := e.(*AnnotationError)
		if !ok {
			t.Fatalf("error %v (%T) is not an *AnnotationError", e, e)
		}
		out = append(out, ae)
	}
	return out
}

func TestAnnotationErrorMessage(t *testing.T) {
	_, err := ParseRouteAnnotations(map[string]string{AnnotationSplit: "east=abc"})
	want := `annotation crossmap.io/split: "east=abc": weight "abc" is not a whole number from 0 to 100`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
	var ae *AnnotationError
	if !errors.As(err, &ae) {
		t.Fatalf("errors.As(%v, *AnnotationError) = false", err)
	}
	if ae.Annotation != AnnotationSplit || ae.Value != "east=abc" {
		t.Errorf("AnnotationError = %+v, want Annotation %s and Value east=abc", ae, AnnotationSplit)
	}
}

func TestAnnotated(t *testing.T) {
	tests := []struct {
		name string
		ann  map[string]string
		want bool
	}{
		{"nil", nil, false},
		{"empty", map[string]string{}, false},
		{"other annotations", map[string]string{"getambassador.io/config": "x", "example.com/crossmap.io": "y"}, false},
		{"crossmap's own spec hash", map[string]string{crossmapv1.AnnotationSpecHash: "0123456789abcdef"}, false},
		{"subdomain of crossmap.io", map[string]string{"route.crossmap.io/split": "east=50"}, false},
		{"split", map[string]string{AnnotationSplit: "east=50"}, true},
		{"failover", map[string]string{AnnotationFailover: "off"}, true},
		{"dev routes", map[string]string{AnnotationDevRoutes: "dev-alice"}, true},
		{"traffic split", map[string]string{AnnotationTrafficSplit: "false"}, true},
		{"empty value still counts", map[string]string{AnnotationSplit: ""}, true},
		{"typo", map[string]string{"crossmap.io/splt": "east=50"}, true},
		{"spec hash and a route annotation", map[string]string{crossmapv1.AnnotationSpecHash: "x", AnnotationSplit: "east=50"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Annotated(tt.ann); got != tt.want {
				t.Errorf("Annotated(%v) = %v, want %v", tt.ann, got, tt.want)
			}
		})
	}
}

func TestParseRouteAnnotations(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name string
		ann  map[string]string
		want RouteAnnotations
	}{
		{name: "nil", ann: nil},
		{name: "no crossmap annotation", ann: map[string]string{"getambassador.io/config": "x"}},
		{
			// crossmap's own Mappings carry the spec hash; it is not a typo.
			name: "spec hash only",
			ann:  map[string]string{crossmapv1.AnnotationSpecHash: "0123456789abcdef"},
		},
		{
			name: "split",
			ann:  map[string]string{AnnotationSplit: "east=50"},
			want: RouteAnnotations{Split: []ClusterWeight{{"east", 50}}, Failover: FailoverOff},
		},
		{
			name: "priority: three tiers, no split",
			ann:  map[string]string{AnnotationFailover: "priority", AnnotationPriority: "local,east,dev-alice"},
			want: RouteAnnotations{Failover: FailoverPriority, Priority: [][]string{{"local"}, {"east"}, {"dev-alice"}}},
		},
		{
			name: "priority: a tier of two clusters weighted by the split, spaces tolerated",
			ann:  map[string]string{AnnotationFailover: "priority", AnnotationPriority: " east | west , local ", AnnotationSplit: "east=30,west=10"},
			want: RouteAnnotations{Failover: FailoverPriority, Priority: [][]string{{"east", "west"}, {"local"}}, Split: []ClusterWeight{{"east", 30}, {"west", 10}}},
		},
		{
			name: "split keeps the order written",
			ann:  map[string]string{AnnotationSplit: "west=30,east=10,a=0"},
			want: RouteAnnotations{Split: []ClusterWeight{{"west", 30}, {"east", 10}, {"a", 0}}, Failover: FailoverOff},
		},
		{
			name: "split tolerates spaces",
			ann:  map[string]string{AnnotationSplit: "  east = 30 ,\tdev=10 "},
			want: RouteAnnotations{Split: []ClusterWeight{{"east", 30}, {"dev", 10}}, Failover: FailoverOff},
		},
		{
			name: "split total of exactly 100",
			ann:  map[string]string{AnnotationSplit: "east=100,west=0"},
			want: RouteAnnotations{Split: []ClusterWeight{{"east", 100}, {"west", 0}}, Failover: FailoverOff},
		},
		{
			name: "split weight with leading zeros",
			ann:  map[string]string{AnnotationSplit: "east=05,west=000"},
			want: RouteAnnotations{Split: []ClusterWeight{{"east", 5}, {"west", 0}}, Failover: FailoverOff},
		},
		{
			name: "cluster names may start with a digit and be 30 characters",
			ann:  map[string]string{AnnotationSplit: "1east=1," + strings.Repeat("a", 30) + "=2"},
			want: RouteAnnotations{Split: []ClusterWeight{{"1east", 1}, {strings.Repeat("a", 30), 2}}, Failover: FailoverOff},
		},
		{
			name: "failover off without split",
			ann:  map[string]string{AnnotationFailover: "off"},
			want: RouteAnnotations{Failover: FailoverOff},
		},
		{
			name: "failover false means off",
			ann:  map[string]string{AnnotationFailover: "false"},
			want: RouteAnnotations{Failover: FailoverOff},
		},
		{
			name: "failover weighted",
			ann:  map[string]string{AnnotationFailover: "weighted", AnnotationSplit: "east=50"},
			want: RouteAnnotations{Split: []ClusterWeight{{"east", 50}}, Failover: FailoverWeighted},
		},
		{
			name: "failover true means weighted",
			ann:  map[string]string{AnnotationFailover: "true", AnnotationSplit: "east=50"},
			want: RouteAnnotations{Split: []ClusterWeight{{"east", 50}}, Failover: FailoverWeighted},
		},
		{
			name: "failover on means weighted",
			ann:  map[string]string{AnnotationFailover: " on ", AnnotationSplit: "east=50"},
			want: RouteAnnotations{Split: []ClusterWeight{{"east", 50}}, Failover: FailoverWeighted},
		},
		{
			name: "failover local-first with a zero weight",
			ann:  map[string]string{AnnotationFailover: "local-first", AnnotationSplit: "east=0"},
			want: RouteAnnotations{Split: []ClusterWeight{{"east", 0}}, Failover: FailoverLocalFirst},
		},
		{
			name: "dev routes",
			ann:  map[string]string{AnnotationDevRoutes: " dev-alice , dev-bob"},
			want: RouteAnnotations{DevRoutes: []string{"dev-alice", "dev-bob"}, Failover: FailoverOff},
		},
		{
			name: "dev route also in the split",
			ann:  map[string]string{AnnotationDevRoutes: "east", AnnotationSplit: "east=10"},
			want: RouteAnnotations{Split: []ClusterWeight{{"east", 10}}, DevRoutes: []string{"east"}, Failover: FailoverOff},
		},
		{
			name: "traffic split true",
			ann:  map[string]string{AnnotationTrafficSplit: "true"},
			want: RouteAnnotations{Failover: FailoverOff, TrafficSplit: &yes},
		},
		{
			name: "traffic split false",
			ann:  map[string]string{AnnotationTrafficSplit: " false"},
			want: RouteAnnotations{Failover: FailoverOff, TrafficSplit: &no},
		},
		{
			name: "all four, with unrelated annotations",
			ann: map[string]string{
				AnnotationSplit:                 "east=30,dev=10",
				AnnotationFailover:              "weighted",
				AnnotationDevRoutes:             "dev-alice",
				AnnotationTrafficSplit:          "false",
				crossmapv1.AnnotationSpecHash:   "0123456789abcdef",
				"getambassador.io/config":       "x",
				"kubectl.kubernetes.io/restart": "now",
			},
			want: RouteAnnotations{
				Split:        []ClusterWeight{{"east", 30}, {"dev", 10}},
				Failover:     FailoverWeighted,
				DevRoutes:    []string{"dev-alice"},
				TrafficSplit: &no,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRouteAnnotations(tt.ann)
			if err != nil {
				t.Fatalf("ParseRouteAnnotations(%v) error: %v", tt.ann, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseRouteAnnotations(%v) = %+v, want %+v", tt.ann, got, tt.want)
			}
		})
	}
}

func TestParseRouteAnnotationsErrors(t *testing.T) {
	type problem struct {
		annotation string
		contains   []string // facts the message must state
	}
	tests := []struct {
		name string
		ann  map[string]string
		want []problem // in the order reported
	}{
		// split
		{"split empty", map[string]string{AnnotationSplit: ""},
			[]problem{{AnnotationSplit, []string{`""`, "empty", "cluster=weight"}}}},
		{"split blank", map[string]string{AnnotationSplit: "  "},
			[]problem{{AnnotationSplit, []string{"empty"}}}},
		{"split trailing comma", map[string]string{AnnotationSplit: "east=50,"},
			[]problem{{AnnotationSplit, []string{`"east=50,"`, "item 2 is empty", "stray comma"}}}},
		{"split leading comma", map[string]string{AnnotationSplit: ",east=50"},
			[]problem{{AnnotationSplit, []string{"item 1 is empty"}}}},
		{"split double comma", map[string]string{AnnotationSplit: "east=50,,dev=10"},
			[]problem{{AnnotationSplit, []string{"item 2 is empty"}}}},
		{"split missing =", map[string]string{AnnotationSplit: "east"},
			[]problem{{AnnotationSplit, []string{`item "east" has no "="`, "east=50"}}}},
		{"split missing = with a colon", map[string]string{AnnotationSplit: "east:50"},
			[]problem{{AnnotationSplit, []string{`item "east:50" has no "="`, "like east=50"}}}},
		{"split missing cluster", map[string]string{AnnotationSplit: "=50"},
			[]problem{{AnnotationSplit, []string{`item "=50" names no cluster`}}}},
		{"split missing weight", map[string]string{AnnotationSplit: "east="},
			[]problem{{AnnotationSplit, []string{`item "east=" has no weight`}}}},
		{"split weight not a number", map[string]string{AnnotationSplit: "east=abc"},
			[]problem{{AnnotationSplit, []string{`weight "abc" is not a whole number from 0 to 100`}}}},
		{"split weight with plus sign", map[string]string{AnnotationSplit: "east=+5"},
			[]problem{{AnnotationSplit, []string{`weight "+5"`, "0 to 100"}}}},
		{"split weight negative", map[string]string{AnnotationSplit: "east=-5"},
			[]problem{{AnnotationSplit, []string{`weight "-5"`, "0 to 100"}}}},
		{"split weight decimal", map[string]string{AnnotationSplit: "east=5.0"},
			[]problem{{AnnotationSplit, []string{`weight "5.0"`, "whole number"}}}},
		{"split weight exponent", map[string]string{AnnotationSplit: "east=1e2"},
			[]problem{{AnnotationSplit, []string{`weight "1e2"`}}}},
		{"split weight hex", map[string]string{AnnotationSplit: "east=0x10"},
			[]problem{{AnnotationSplit, []string{`weight "0x10"`}}}},
		{"split weight percent sign", map[string]string{AnnotationSplit: "east=50%"},
			[]problem{{AnnotationSplit, []string{`weight "50%"`}}}},
		{"split weight with inner space", map[string]string{AnnotationSplit: "east=5 0"},
			[]problem{{AnnotationSplit, []string{`weight "5 0"`}}}},
		{"split weight above 100", map[string]string{AnnotationSplit: "east=101"},
			[]problem{{AnnotationSplit, []string{`weight "101"`, "0 to 100"}}}},
		{"split weight overflowing int", map[string]string{AnnotationSplit: "east=99999999999999999999999"},
			[]problem{{AnnotationSplit, []string{`weight "99999999999999999999999"`}}}},
		{"split weight in non-ASCII digits", map[string]string{AnnotationSplit: "east=５"},
			[]problem{{AnnotationSplit, []string{`weight "５"`}}}},
		{"split cluster uppercase", map[string]string{AnnotationSplit: "East=50"},
			[]problem{{AnnotationSplit, []string{`cluster "East" is not a valid cluster name`, "uppercase", "clusterName"}}}},
		{"split cluster underscore", map[string]string{AnnotationSplit: "us_east=50"},
			[]problem{{AnnotationSplit, []string{`cluster "us_east"`, `'_'`, "lowercase letters, digits and '-'"}}}},
		{"split cluster leading dash", map[string]string{AnnotationSplit: "-east=50"},
			[]problem{{AnnotationSplit, []string{`cluster "-east"`, "starts with '-'"}}}},
		{"split cluster trailing dash", map[string]string{AnnotationSplit: "east-=50"},
			[]problem{{AnnotationSplit, []string{`cluster "east-"`, "ends with '-'"}}}},
		{"split cluster too long", map[string]string{AnnotationSplit: strings.Repeat("a", 31) + "=50"},
			[]problem{{AnnotationSplit, []string{"31 characters", "limit is 30"}}}},
		{"split cluster with inner space", map[string]string{AnnotationSplit: "us east=50"},
			[]problem{{AnnotationSplit, []string{`cluster "us east"`, `' '`}}}},
		{"split cluster and weight both bad", map[string]string{AnnotationSplit: "East=abc"},
			[]problem{
				{AnnotationSplit, []string{`cluster "East"`}},
				{AnnotationSplit, []string{`weight "abc"`}},
			}},
		{"split duplicate cluster", map[string]string{AnnotationSplit: "east=10,dev=5, east=20"},
			[]problem{{AnnotationSplit, []string{`cluster "east" is listed more than once`}}}},
		{"split total above 100", map[string]string{AnnotationSplit: "east=60,dev=50"},
			[]problem{{AnnotationSplit, []string{"add up to 110", "above 100", "local backend keeps 100 minus the total"}}}},
		{"split every bad item reported", map[string]string{AnnotationSplit: "East=1,,west=abc,dev"},
			[]problem{
				{AnnotationSplit, []string{`cluster "East"`}},
				{AnnotationSplit, []string{"item 2 is empty"}},
				{AnnotationSplit, []string{`weight "abc"`}},
				{AnnotationSplit, []string{`item "dev" has no "="`}},
			}},

		// failover
		{"failover unknown", map[string]string{AnnotationFailover: "yes", AnnotationSplit: "east=50"},
			[]problem{{AnnotationFailover, []string{`"yes"`, "not a failover policy", "off, weighted, local-first or priority"}}}},
		{"failover is case-sensitive", map[string]string{AnnotationFailover: "Weighted", AnnotationSplit: "east=50"},
			[]problem{{AnnotationFailover, []string{`"Weighted"`, "lowercase"}}}},
		{"failover empty", map[string]string{AnnotationFailover: ""},
			[]problem{{AnnotationFailover, []string{"empty", "off, weighted, local-first or priority"}}}},
		{"failover weighted without split", map[string]string{AnnotationFailover: "weighted"},
			[]problem{{AnnotationFailover, []string{"failover needs crossmap.io/split to name the remote clusters"}}}},
		{"failover on without split", map[string]string{AnnotationFailover: "on"},
			[]problem{{AnnotationFailover, []string{"needs crossmap.io/split"}}}},
		{"failover local-first without split", map[string]string{AnnotationFailover: "local-first", AnnotationTrafficSplit: "true"},
			[]problem{{AnnotationFailover, []string{"needs crossmap.io/split"}}}},
		{
			// The split's own error says it all; "needs a split" would be
			// wrong, since there is one.
			"failover with a bad split reports only the split",
			map[string]string{AnnotationFailover: "weighted", AnnotationSplit: "east=abc"},
			[]problem{{AnnotationSplit, []string{`weight "abc"`}}},
		},
		{"failover with an empty split", map[string]string{AnnotationFailover: "weighted", AnnotationSplit: ""},
			[]problem{{AnnotationSplit, []string{"empty"}}}},

		// priority
		{"priority without the tiers", map[string]string{AnnotationFailover: "priority"},
			[]problem{{AnnotationFailover, []string{"failover priority needs crossmap.io/priority", "local,east"}}}},
		{"tiers without failover priority", map[string]string{AnnotationPriority: "local,east", AnnotationSplit: "east=10"},
			[]problem{{AnnotationPriority, []string{"only with crossmap.io/failover: priority (it is unset)"}}}},
		{"tiers with failover weighted", map[string]string{AnnotationPriority: "local,east", AnnotationFailover: "weighted", AnnotationSplit: "east=10"},
			[]problem{{AnnotationPriority, []string{"(it is weighted)"}}}},
		{"priority duplicate cluster", map[string]string{AnnotationFailover: "priority", AnnotationPriority: "local,east,west|east"},
			[]problem{{AnnotationPriority, []string{`cluster "east" is listed more than once`}}}},
		{"priority without local", map[string]string{AnnotationFailover: "priority", AnnotationPriority: "east,west"},
			[]problem{{AnnotationPriority, []string{"do not list local"}}}},
		{"priority empty tier and stray bar", map[string]string{AnnotationFailover: "priority", AnnotationPriority: "local,,east|"},
			[]problem{{AnnotationPriority, []string{"tier 2 is empty"}}, {AnnotationPriority, []string{`tier 3 ("east|") has an empty name`}}}},
		{"priority empty", map[string]string{AnnotationFailover: "priority", AnnotationPriority: " "},
			[]problem{{AnnotationPriority, []string{"the value is empty"}}}},
		{"priority bad name", map[string]string{AnnotationFailover: "priority", AnnotationPriority: "local,East"},
			[]problem{{AnnotationPriority, []string{`cluster "East" is not a valid cluster name`, "uppercase"}}}},
		{"split cluster in no tier", map[string]string{AnnotationFailover: "priority", AnnotationPriority: "local,east", AnnotationSplit: "east=10,west=5"},
			[]problem{{AnnotationPriority, []string{`cluster "west" has a weight in crossmap.io/split but is in no tier`}}}},
		{"split names local", map[string]string{AnnotationFailover: "priority", AnnotationPriority: "local,east", AnnotationSplit: "east=10,local=5"},
			[]problem{{AnnotationPriority, []string{`in the tiers "local" is the Mapping's own backend`}}}},

		// dev routes
		{"dev routes empty", map[string]string{AnnotationDevRoutes: ""},
			[]problem{{AnnotationDevRoutes, []string{"empty", "dev-alice,dev-bob"}}}},
		{"dev routes trailing comma", map[string]string{AnnotationDevRoutes: "dev-alice,"},
			[]problem{{AnnotationDevRoutes, []string{"item 2 is empty"}}}},
		{"dev routes duplicate", map[string]string{AnnotationDevRoutes: "dev-alice, dev-alice"},
			[]problem{{AnnotationDevRoutes, []string{`cluster "dev-alice" is listed more than once`}}}},
		{"dev routes bad name", map[string]string{AnnotationDevRoutes: "dev.alice"},
			[]problem{{AnnotationDevRoutes, []string{`cluster "dev.alice" is not a valid cluster name`, `'.'`}}}},
		{"dev routes with weights", map[string]string{AnnotationDevRoutes: "dev-alice=10"},
			[]problem{{AnnotationDevRoutes, []string{`cluster "dev-alice=10"`, `'='`}}}},

		// traffic split
		{"traffic split not a boolean", map[string]string{AnnotationTrafficSplit: "yes"},
			[]problem{{AnnotationTrafficSplit, []string{`"yes"`, "must be true or false"}}}},
		{"traffic split is case-sensitive", map[string]string{AnnotationTrafficSplit: "True"},
			[]problem{{AnnotationTrafficSplit, []string{`"True"`, "true or false"}}}},
		{"traffic split empty", map[string]string{AnnotationTrafficSplit: ""},
			[]problem{{AnnotationTrafficSplit, []string{`""`, "true or false"}}}},

		// unknown keys
		{"typo of split", map[string]string{"crossmap.io/splt": "east=50"},
			[]problem{{"crossmap.io/splt", []string{"unknown", "did you mean crossmap.io/split?", "crossmap.io/dev-routes, crossmap.io/failover, crossmap.io/priority, crossmap.io/split and crossmap.io/traffic-split"}}}},
		{"typo of failover", map[string]string{"crossmap.io/failvoer": "weighted", AnnotationSplit: "east=50"},
			[]problem{{"crossmap.io/failvoer", []string{"did you mean crossmap.io/failover?"}}}},
		{"unknown with no near match", map[string]string{"crossmap.io/mirror": "true"},
			[]problem{{"crossmap.io/mirror", []string{"unknown crossmap.io annotation; the known ones are"}}}},

		// several at once
		{
			"every problem, ordered by annotation key",
			map[string]string{
				AnnotationTrafficSplit: "yes",
				"crossmap.io/splt":     "east=50",
				AnnotationSplit:        "east=abc,east",
				AnnotationDevRoutes:    "",
				AnnotationFailover:     "weighted",
				"crossmap.io/aaa":      "x",
			},
			[]problem{
				{"crossmap.io/aaa", []string{"unknown"}},
				{AnnotationDevRoutes, []string{"empty"}},
				{AnnotationSplit, []string{`weight "abc"`}},
				{AnnotationSplit, []string{`item "east" has no "="`}},
				{"crossmap.io/splt", []string{"did you mean"}},
				{AnnotationTrafficSplit, []string{"true or false"}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRouteAnnotations(tt.ann)
			if err == nil {
				t.Fatalf("ParseRouteAnnotations(%v) = %+v, want an error", tt.ann, got)
			}
			if !reflect.DeepEqual(got, RouteAnnotations{}) {
				t.Errorf("ParseRouteAnnotations(%v) = %+v with an error, want the zero value", tt.ann, got)
			}
			var first *AnnotationError
			if !errors.As(err, &first) {
				t.Fatalf("errors.As(%v, *AnnotationError) = false", err)
			}
			errs := annotationErrors(t, err)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				e := errs[i]
				if e.Annotation != w.annotation {
					t.Errorf("problem %d is about %s, want %s: %v", i, e.Annotation, w.annotation, e)
				}
				if e.Value != tt.ann[w.annotation] {
					t.Errorf("problem %d has value %q, want %q", i, e.Value, tt.ann[w.annotation])
				}
				msg := e.Error()
				if !strings.HasPrefix(msg, "annotation "+w.annotation+": ") {
					t.Errorf("problem %d does not start by naming the annotation: %s", i, msg)
				}
				for _, c := range w.contains {
					if !strings.Contains(msg, c) {
						t.Errorf("problem %d does not say %q: %s", i, c, msg)
					}
				}
			}
			// Map order must not leak into the message.
			for range 5 {
				if _, again := ParseRouteAnnotations(tt.ann); again.Error() != err.Error() {
					t.Fatalf("second parse gave a different error:\n%v\nthen:\n%v", err, again)
				}
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"split", "", 5},
		{"split", "split", 0},
		{"splt", "split", 1},
		{"failvoer", "failover", 2},
		{"kitten", "sitting", 3},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
