package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/mapper"
)

// Bounds and default of `crossmap drill --for`.
const (
	MinDrillDuration     = time.Second
	DefaultDrillDuration = 10 * time.Minute
)

// DrillOptions is what `crossmap drill` can be told.
type DrillOptions struct {
	// Lose is the cluster (a Link's clusterName) to drill the loss of.
	Lose string
	// For is how long the drill drains the cluster.
	For time.Duration
	// Apply starts the drill; without it the command only answers the
	// what-if. Force starts it although routes would lose requests.
	Apply, Force bool
	// Stop ends the active drills (of Lose, when set).
	Stop bool
	// By says who drills; empty asks the API server who the kubeconfig's
	// user is.
	By string
	// Namespace is where the Links are (the controller's --namespace).
	Namespace string
	// AmbassadorID and DevHeader are the controller's, so that the
	// what-if routes what the controller routes.
	AmbassadorID []string
	DevHeader    string
	// Output is OutputTable or OutputJSON.
	Output string
}

// DefaultDrillOptions returns the defaults the flags start from.
func DefaultDrillOptions() DrillOptions {
	return DrillOptions{For: DefaultDrillDuration, Namespace: DefaultNamespace, DevHeader: controller.DefaultConfig().DevHeader, Output: OutputTable}
}

// BindFlags registers the flags of `crossmap drill` on fs.
func (o *DrillOptions) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.Lose, "lose", o.Lose, "the cluster (a Link's clusterName) whose loss to answer for, or to drill with --apply")
	fs.DurationVar(&o.For, "for", o.For, "how long an --apply drill drains the cluster, from 1s to 24h; it ends by itself then")
	fs.BoolVar(&o.Apply, "apply", o.Apply, "start the drill: drain the cluster for routing, as if its gateway had died, for --for")
	fs.BoolVar(&o.Force, "force", o.Force, "with --apply: drill even though some routes would be left with no healthy backend or send requests to the lost cluster")
	fs.BoolVar(&o.Stop, "stop", o.Stop, "end the active drill early (of --lose, or every one)")
	fs.StringVar(&o.By, "by", o.By, "who drills, as recorded on the Link (default: your user, as the API server knows it)")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "namespace of the Links: the controller's --namespace")
	fs.Func("ambassador-id", "the controller's --ambassador-id (repeatable; default: default)", func(s string) error {
		o.AmbassadorID = append(o.AmbassadorID, s)
		return nil
	})
	fs.StringVar(&o.DevHeader, "dev-header", o.DevHeader, "the controller's --dev-header")
	fs.StringVar(&o.Output, "o", o.Output, "output format: table, or json")
	fs.StringVar(&o.Output, "output", o.Output, "the same as -o")
}

// Validate reports every invalid setting at once. It talks to no cluster.
func (o *DrillOptions) Validate() error {
	var errs []error
	switch {
	case o.Stop && (o.Apply || o.Force):
		errs = append(errs, errors.New("--stop ends a drill; it takes neither --apply nor --force"))
	case !o.Stop && o.Lose == "":
		errs = append(errs, errors.New("--lose CLUSTER is required: the cluster whose loss to answer for (or --stop to end a drill)"))
	case o.Force && !o.Apply:
		errs = append(errs, errors.New("--force goes with --apply: without --apply nothing is changed anyway"))
	}
	if o.Lose != "" {
		if msgs := validation.IsDNS1123Label(o.Lose); len(msgs) > 0 || len(o.Lose) > maxClusterName {
			errs = append(errs, fmt.Errorf("--lose %q is no cluster name: a Link's clusterName is a lowercase DNS label of at most %d characters", o.Lose, maxClusterName))
		}
	}
	if !o.Stop && (o.For < MinDrillDuration || o.For > crossmapv1.MaxDrillDuration) {
		errs = append(errs, fmt.Errorf("--for %s: a drill lasts from %s to %s", o.For, MinDrillDuration, crossmapv1.MaxDrillDuration))
	}
	if len(o.By) > validation.DNS1123SubdomainMaxLength {
		errs = append(errs, fmt.Errorf("--by: at most %d characters", validation.DNS1123SubdomainMaxLength))
	}
	if msgs := validation.IsDNS1123Label(o.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--namespace %q: %s", o.Namespace, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsHTTPHeaderName(o.DevHeader); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--dev-header %q: %s", o.DevHeader, strings.Join(msgs, "; ")))
	}
	if o.Output != OutputTable && o.Output != OutputJSON {
		errs = append(errs, fmt.Errorf("-o %q: want %s or %s", o.Output, OutputTable, OutputJSON))
	}
	return errors.Join(errs...)
}

// DrillReport is what `crossmap drill` found and did; -o json prints it.
type DrillReport struct {
	// Cluster is the cluster whose loss is answered for.
	Cluster string `json:"cluster,omitempty"`
	// Links are the Links (namespace/name) of that cluster.
	Links []string `json:"links,omitempty"`
	// Routes are every annotated Mapping's weights now and if the
	// cluster were lost.
	Routes []mapper.DrillRoute `json:"routes"`
	// AtRisk are the routes that would be left with no healthy backend,
	// or send requests to a lost backend: --apply refuses without --force.
	AtRisk []string `json:"atRisk"`
	// Started is the drill --apply recorded on the Links.
	Started *crossmapv1.DrillSpec `json:"started,omitempty"`
	// Stopped are the Links whose drill --stop ended.
	Stopped []string `json:"stopped,omitempty"`
}

// ErrDrillRefused is returned when --apply would cost requests and
// --force was not given.
var ErrDrillRefused = errors.New("drill refused")

// RunDrill answers the what-if of o, and with Apply starts the drill, or
// with Stop ends it, against the cluster c reaches. now is the clock.
func RunDrill(ctx context.Context, c client.Client, o DrillOptions, now time.Time, out io.Writer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	var links crossmapv1.LinkList
	if err := c.List(ctx, &links, client.InNamespace(o.Namespace)); err != nil {
		return fmt.Errorf("list links in namespace %s: %w", o.Namespace, err)
	}
	if o.Stop {
		rep, err := stopDrills(ctx, c, o, links.Items, now)
		if err != nil {
			return err
		}
		return writeDrill(out, o, rep, nil)
	}
	rep, err := WhatIfLost(ctx, c, o, links.Items, now)
	if err != nil {
		return err
	}
	if !o.Apply {
		return writeDrill(out, o, rep, nil)
	}
	if len(rep.AtRisk) > 0 && !o.Force {
		refusal := fmt.Errorf("%w: losing cluster %s would leave %d route(s) with no healthy backend or send their requests to it (%s); fix their failover, or run again with --force to drill anyway",
			ErrDrillRefused, o.Lose, len(rep.AtRisk), strings.Join(rep.AtRisk, ", "))
		if err := writeDrill(out, o, rep, nil); err != nil {
			return err
		}
		return refusal
	}
	by := o.By
	if by == "" {
		if by, err = whoAmI(ctx, c); err != nil {
			return err
		}
	}
	start := now.Truncate(time.Second)
	d := &crossmapv1.DrillSpec{By: by, StartedAt: metav1.NewTime(start), Until: metav1.NewTime(start.Add(o.For))}
	var replaced []string
	for _, l := range lostLinks(links.Items, o.Lose) {
		if l.Spec.Drill.ActiveAt(now) {
			replaced = append(replaced, fmt.Sprintf("the drill %s started on Link %s/%s until %s", l.Spec.Drill.By, l.Namespace, l.Name, stampTime(l.Spec.Drill.Until.Time)))
		}
		if err := patchDrill(ctx, c, &l, map[string]any{"by": d.By, "startedAt": d.StartedAt, "until": d.Until, "stoppedAt": nil, "stoppedBy": nil}); err != nil {
			return err
		}
	}
	rep.Started = d
	return writeDrill(out, o, rep, replaced)
}

// WhatIfLost computes, for every route the controller routes, its weights
// now and if cluster o.Lose were lost, from the cluster's Mappings, Hosts,
// Services, EndpointSlices and links, by the route role's own translation
// (mapper.WhatIf over controller.LinkHealths). Drills already running are
// part of "now".
func WhatIfLost(ctx context.Context, c client.Reader, o DrillOptions, links []crossmapv1.Link, now time.Time) (DrillReport, error) {
	rep := DrillReport{Cluster: o.Lose, Routes: []mapper.DrillRoute{}, AtRisk: []string{}}
	for _, l := range lostLinks(links, o.Lose) {
		rep.Links = append(rep.Links, l.Namespace+"/"+l.Name)
	}
	if len(rep.Links) == 0 {
		return rep, fmt.Errorf("no Link in namespace %s has clusterName %q (linked: %s)", o.Namespace, o.Lose, linkedClusters(links))
	}
	objs, err := controller.ListRoutingObjects(ctx, c)
	if err != nil {
		return rep, fmt.Errorf("read what routes (the controller's --routes role needs Emissary's CRDs): %w", err)
	}
	snap := mapper.RouteSnapshot{
		AmbassadorID: o.AmbassadorID,
		DevHeader:    o.DevHeader,
		Mappings:     objs.Mappings, Hosts: objs.Hosts, Services: objs.Services, Slices: objs.Slices,
		// The gateway verdicts as the Links' conditions say them: what a
		// route role in another process reads too.
		Links: controller.LinkHealths(links, now, nil, false),
	}
	rep.Routes = mapper.WhatIf(snap, o.Lose)
	for _, r := range rep.Routes {
		if r.AtRisk() {
			rep.AtRisk = append(rep.AtRisk, r.Route)
		}
	}
	return rep, nil
}

// stopDrills ends the active drills of o.Lose (of every cluster when it
// is empty): StoppedAt and StoppedBy are recorded, and the controller
// restores the cluster.
func stopDrills(ctx context.Context, c client.Client, o DrillOptions, links []crossmapv1.Link, now time.Time) (DrillReport, error) {
	rep := DrillReport{Cluster: o.Lose, Routes: []mapper.DrillRoute{}, AtRisk: []string{}}
	if o.Lose != "" && len(lostLinks(links, o.Lose)) == 0 {
		return rep, fmt.Errorf("no Link in namespace %s has clusterName %q (linked: %s)", o.Namespace, o.Lose, linkedClusters(links))
	}
	by := o.By
	for _, l := range links {
		if o.Lose != "" && l.Spec.ClusterName != o.Lose || !l.Spec.Drill.ActiveAt(now) {
			continue
		}
		if by == "" {
			var err error
			if by, err = whoAmI(ctx, c); err != nil {
				return rep, err
			}
		}
		if err := patchDrill(ctx, c, &l, map[string]any{"stoppedAt": metav1.NewTime(now.Truncate(time.Second)), "stoppedBy": by}); err != nil {
			return rep, err
		}
		rep.Stopped = append(rep.Stopped, l.Namespace+"/"+l.Name)
	}
	return rep, nil
}

// patchDrill merges fields into the Link's spec.drill. A merge patch
// touches nothing else of the Link, whoever manages its other fields.
func patchDrill(ctx context.Context, c client.Client, l *crossmapv1.Link, fields map[string]any) error {
	body, err := json.Marshal(map[string]any{"spec": map[string]any{"drill": fields}})
	if err != nil {
		return fmt.Errorf("encode drill of link %s/%s: %w", l.Namespace, l.Name, err)
	}
	if err := c.Patch(ctx, l, client.RawPatch(types.MergePatchType, body)); err != nil {
		return fmt.Errorf("record drill on link %s/%s: %w", l.Namespace, l.Name, err)
	}
	return nil
}

// whoAmI asks the API server who the client's user is (a
// SelfSubjectReview), so that the record names the user the API server
// authenticated, not a name typed in.
func whoAmI(ctx context.Context, c client.Client) (string, error) {
	r := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, r); err != nil {
		return "", fmt.Errorf("ask the API server who you are (SelfSubjectReview): %w; say who drills with --by", err)
	}
	if r.Status.UserInfo.Username == "" {
		return "", errors.New("the API server did not say who you are; say who drills with --by")
	}
	return r.Status.UserInfo.Username, nil
}

func lostLinks(links []crossmapv1.Link, cluster string) []crossmapv1.Link {
	var out []crossmapv1.Link
	for _, l := range links {
		if l.Spec.ClusterName == cluster {
			out = append(out, l)
		}
	}
	return out
}

func linkedClusters(links []crossmapv1.Link) string {
	var names []string
	for _, l := range links {
		names = append(names, l.Spec.ClusterName)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func stampTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// writeDrill writes the report in o's format. replaced are the drills
// an --apply replaced.
func writeDrill(out io.Writer, o DrillOptions, rep DrillReport, replaced []string) error {
	if o.Output == OutputJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if o.Stop {
		if len(rep.Stopped) == 0 {
			fmt.Fprintln(tw, "No drill is active; nothing to stop.")
		} else {
			fmt.Fprintf(tw, "Stopped the drill on %s: the controller gives the cluster its traffic back now.\n", strings.Join(rep.Stopped, ", "))
		}
		return tw.Flush()
	}
	fmt.Fprintf(tw, "If cluster %s were lost now (%s):\n", rep.Cluster, strings.Join(rep.Links, ", "))
	if len(rep.Routes) == 0 {
		fmt.Fprintln(tw, "No annotated Mapping routes anywhere; nothing would move.")
	} else {
		fmt.Fprintln(tw, "ROUTE\tFAILOVER\tWEIGHTS NOW -> IF LOST\tVERDICT")
		for _, r := range rep.Routes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", oneLine(r.Route), oneLine(r.Failover), oneLine(drillWeights(r)), oneLine(drillVerdict(r, rep.Cluster)))
		}
	}
	switch {
	case rep.Started != nil:
		fmt.Fprintf(tw, "\nDrill started: cluster %s is drained for routing by %s from %s until %s (%s). End it early with 'crossmap drill --stop --lose %s'.\n",
			rep.Cluster, rep.Started.By, stampTime(rep.Started.StartedAt.Time), stampTime(rep.Started.Until.Time), o.For, rep.Cluster)
		for _, r := range replaced {
			fmt.Fprintf(tw, "It replaces %s.\n", r)
		}
	case len(rep.AtRisk) > 0:
		fmt.Fprintf(tw, "\n%d route(s) at risk: --apply refuses to drill without --force.\n", len(rep.AtRisk))
	default:
		fmt.Fprintf(tw, "\nNo route would lose requests. Rehearse it with --apply --for %s.\n", o.For)
	}
	return tw.Flush()
}

// drillWeights reads like "local 50 -> 100, east 50 -> 0, dev-alice
// (x-crossmap-cluster) ready -> lost".
func drillWeights(r mapper.DrillRoute) string {
	var parts []string
	for _, b := range r.Backends {
		name := cmp.Or(b.Cluster, "local")
		if b.Header != "" {
			state := func(ok bool) string {
				if ok {
					return "up"
				}
				return "down"
			}
			parts = append(parts, fmt.Sprintf("%s dev route %s -> %s", name, state(b.HealthyNow), state(b.HealthyIfLost)))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %d -> %d", name, b.Now, b.IfLost))
	}
	return strings.Join(parts, ", ")
}

func drillVerdict(r mapper.DrillRoute, cluster string) string {
	switch {
	case !r.Affected:
		return "not affected"
	case r.NoHealthyBackend:
		return "AT RISK: no healthy backend left"
	case r.Unserved > 0:
		why := ""
		if r.Failover == "off" {
			why = " (failover off)"
		}
		return fmt.Sprintf("AT RISK: %d%% of requests still sent to lost backends%s", r.Unserved, why)
	}
	if slices.ContainsFunc(r.Backends, func(b mapper.DrillBackend) bool { return b.Cluster == cluster && b.Header == "" }) {
		return "fails over"
	}
	return "ok (only its dev route goes)"
}
