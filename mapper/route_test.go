package mapper_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	splitv1alpha1 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha1"
	splitv1alpha2 "github.com/servicemeshinterface/smi-sdk-go/pkg/apis/split/v1alpha2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/crossmap/crossmap/emissary"
	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
	"github.com/crossmap/crossmap/mapper/mappertest"
)

func TestRouteOwned(t *testing.T) {
	source := mappertest.Mapping("test", "podinfo", "/podinfo/", "podinfo.test:9898")
	sourceBlue := mappertest.Mapping("test", "podinfo", "/podinfo/", "podinfo.test:9898", mappertest.AmbassadorID("blue"))
	routeLabels := mappertest.RouteLabels("test", "podinfo")
	sibling := func(opts ...mappertest.MappingOption) *ambv3.Mapping {
		return mappertest.Mapping("test", "podinfo-east", "/podinfo/", "podinfo-east.test:9898", append([]mappertest.MappingOption{routeLabels}, opts...)...)
	}

	for _, c := range []struct {
		name     string
		obj      mapper.Object
		mappings []*ambv3.Mapping
		id       []string
		want     bool
	}{
		{
			name:     "source present and served",
			obj:      sibling(),
			mappings: []*ambv3.Mapping{source},
			want:     true,
		},
		{
			name:     "source present and served by a non-default id",
			obj:      sibling(mappertest.AmbassadorID("blue")),
			mappings: []*ambv3.Mapping{sourceBlue},
			id:       []string{"blue"},
			want:     true,
		},
		{
			// The source decides, not the object: another crossmap serves
			// the source and owns what was written for it.
			name:     "source present but served by another ambassador_id",
			obj:      sibling(),
			mappings: []*ambv3.Mapping{sourceBlue},
			want:     false,
		},
		{
			name:     "TrafficSplit of a source present and served",
			obj:      mappertest.TrafficSplit("test", "podinfo", "podinfo", routeLabels),
			mappings: []*ambv3.Mapping{source},
			want:     true,
		},
		{
			name:     "TrafficSplit of a source served by another ambassador_id",
			obj:      mappertest.TrafficSplit("test", "podinfo", "podinfo", routeLabels),
			mappings: []*ambv3.Mapping{sourceBlue},
			want:     false,
		},
		{
			name: "source gone, orphan Mapping with our ambassador_id",
			obj:  sibling(),
			want: true,
		},
		{
			name: "source gone, orphan Mapping with our non-default ambassador_id",
			obj:  sibling(mappertest.AmbassadorID("green", "blue")),
			id:   []string{"blue"},
			want: true,
		},
		{
			name: "source gone, orphan Mapping with another ambassador_id",
			obj:  sibling(mappertest.AmbassadorID("blue")),
			want: false,
		},
		{
			// A Mapping of the same name in another namespace is not the
			// source.
			name:     "source gone, a namesake in another namespace",
			obj:      sibling(mappertest.AmbassadorID("blue")),
			mappings: []*ambv3.Mapping{mappertest.Mapping("other", "podinfo", "/podinfo/", "podinfo.other:9898")},
			want:     false,
		},
		{
			// A TrafficSplit has no ambassador_id to tell which crossmap
			// it belongs to; any crossmap may prune an orphan.
			name: "source gone, orphan TrafficSplit",
			obj:  mappertest.TrafficSplit("test", "podinfo", "podinfo", routeLabels),
			want: true,
		},
		{
			name:     "not labelled by crossmap",
			obj:      mappertest.Mapping("test", "podinfo-east", "/podinfo/", "podinfo-east.test:9898"),
			mappings: []*ambv3.Mapping{source},
			want:     false,
		},
		{
			name:     "managed by somebody else",
			obj:      sibling(mappertest.Labels(map[string]string{crossmapv1.LabelManagedBy: "helm"})),
			mappings: []*ambv3.Mapping{source},
			want:     false,
		},
		{
			name:     "crossmap's, but of the gateway role",
			obj:      sibling(mappertest.Labels(map[string]string{crossmapv1.LabelRole: crossmapv1.RoleGateway})),
			mappings: []*ambv3.Mapping{source},
			want:     false,
		},
		{
			name:     "not crossmap-labelled TrafficSplit",
			obj:      mappertest.TrafficSplit("test", "podinfo", "podinfo"),
			mappings: []*ambv3.Mapping{source},
			want:     false,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := mapper.RouteSnapshot{Mappings: c.mappings, AmbassadorID: c.id}
			if got := mapper.RouteOwned(c.obj, s); got != c.want {
				t.Errorf("RouteOwned(%s) = %v, want %v", mapper.KeyOf(c.obj), got, c.want)
			}
		})
	}
}

func TestSiblingName(t *testing.T) {
	for _, c := range []struct {
		mapping, cluster string
		dev              bool
		want             string
	}{
		{"podinfo", "east", false, "podinfo-east"},
		{"podinfo", "dev-alice", true, "podinfo-dev-alice-dev"},
		// The split sibling of cluster "east-dev" and the dev route of
		// cluster "east" share a name: Routes reports NameCollision for the
		// later of two routes (testdata/routes/name-collision-two-routes),
		// not yet within one (sibling-name-collision).
		{"podinfo", "east-dev", false, "podinfo-east-dev"},
		{"podinfo", "east", true, "podinfo-east-dev"},
	} {
		if got := mapper.SiblingName(c.mapping, c.cluster, c.dev); got != c.want {
			t.Errorf("SiblingName(%q, %q, %v) = %q, want %q", c.mapping, c.cluster, c.dev, got, c.want)
		}
	}
}

// knownRouteBugs lists golden cases that record a bug the route translation
// still has, and the invariants each one breaks. Such an invariant still
// runs on its case, but its errors are only logged; once it holds, the test
// fails until the entry is deleted, so that the list never outlives a fix.
var knownRouteBugs = map[string]map[string]string{}

// reporter is what an invariant reports to: the test itself, or a recorder
// when the case is known to break the invariant.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// recorder is a reporter that keeps what it is told.
type recorder struct{ errs []string }

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// check runs invariant what on case name. A known bug's errors are logged,
// not reported, and an entry in knownRouteBugs that no longer fails is an
// error.
func check(t *testing.T, name, what string, f func(reporter)) {
	t.Helper()
	why, ok := knownRouteBugs[name][what]
	if !ok {
		f(t)
		return
	}
	var rec recorder
	f(&rec)
	if len(rec.errs) == 0 {
		t.Errorf("invariant %q holds now, but knownRouteBugs says it does not (%s); delete the entry", what, why)
		return
	}
	for _, e := range rec.errs {
		t.Logf("invariant %q fails, a known bug (%s): %s", what, why, e)
	}
}

// Invariants that hold for every route golden input.
func TestRouteInvariants(t *testing.T) {
	names := goldenCases(t, "routes")
	for name := range knownRouteBugs {
		if !slices.Contains(names, name) {
			t.Errorf("knownRouteBugs names %q, which is no golden case", name)
		}
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			s := loadRoutes(t, name)
			routes := mapper.Routes(s)
			want := marshalYAML(t, runRoutes(s))

			// Deterministic: the same snapshot again, and with its lists
			// in other orders, renders the same.
			check(t, name, "deterministic", func(r reporter) {
				a := reorderings(len(s.Mappings), len(s.Services))
				b := reorderings(len(s.Slices), len(s.Hosts))
				l := reorderings(len(s.Links), 0)
				for i := range a {
					o := s
					o.Mappings = permute(s.Mappings, a[i][0])
					o.Services = permute(s.Services, a[i][1])
					o.Slices = permute(s.Slices, b[i][0])
					o.Hosts = permute(s.Hosts, b[i][1])
					o.Links = permute(s.Links, l[i][0])
					if got := marshalYAML(t, runRoutes(o)); !bytes.Equal(got, want) {
						r.Errorf("reordering %d rendered differently (-first +this):\n%s", i, lineDiff(string(want), string(got)))
					}
				}
			})

			var objs []mapper.Object
			for _, rt := range routes {
				objs = append(objs, rt.Objects...)
			}
			check(t, name, "unique-keys", func(r reporter) { checkUniqueKeys(r, objs) })
			// Diff keys everything by KeyOf: the plan invariants assume
			// unique keys, and a duplicate is reported by unique-keys.
			if len(duplicateKeys(objs)) == 0 {
				checkPlanInvariants(t, objs)
			}
			checkStamped(t, objs)
			checkSelected(t, objs, mapper.RouteSelector())
			check(t, name, "valid-metadata", func(r reporter) { checkValidMetadata(r, objs) })
			check(t, name, "traffic-split-services", func(r reporter) { checkTrafficSplitServices(r, s, objs) })
			check(t, name, "routes", func(r reporter) {
				for i := range routes {
					checkRoute(r, s, routes, i)
				}
			})
			check(t, name, "backends", func(r reporter) {
				for _, rt := range routes {
					checkBackends(r, s, rt)
				}
			})
			check(t, name, "held-keys", func(r reporter) { checkHeldKeys(r, s, routes) })
			check(t, name, "one-split-per-group", func(r reporter) { checkOneSplitPerGroup(r, s, routes) })
			check(t, name, "emissary-groups", func(r reporter) { checkEmissaryGroups(r, s, routes) })

			// Pure: the snapshot's objects, the user's Mappings first of
			// all, are cache objects and must come out as they went in.
			check(t, name, "pure", func(r reporter) {
				if pristine := loadRoutes(t, name); !reflect.DeepEqual(s, pristine) {
					for i := range s.Mappings {
						if !reflect.DeepEqual(s.Mappings[i], pristine.Mappings[i]) {
							r.Errorf("Routes changed Mapping %s/%s of its input", s.Mappings[i].Namespace, s.Mappings[i].Name)
						}
					}
					r.Errorf("Routes changed its input snapshot")
				}
			})
		})
	}
}

// duplicateKeys are the keys at which objs holds more than one object.
func duplicateKeys(objs []mapper.Object) []mapper.Key {
	seen := map[mapper.Key]int{}
	var dups []mapper.Key
	for _, o := range objs {
		k := mapper.KeyOf(o)
		if seen[k]++; seen[k] == 2 {
			dups = append(dups, k)
		}
	}
	return dups
}

// checkUniqueKeys checks that no two rendered objects, of one route or of
// two, share a key: the controller would write one and then the other.
func checkUniqueKeys(t reporter, objs []mapper.Object) {
	t.Helper()
	for _, k := range duplicateKeys(objs) {
		t.Errorf("%s is rendered more than once", k)
	}
}

// checkRoute checks one Route: held routes render nothing and report no
// backend; a route that is not held has only the problems that do not hold
// one; what is rendered belongs to the source, sits in the right namespace
// with the right owner, routes to a Service of the snapshot, and is what the
// controller will see as its own (RouteOwned).
func checkRoute(t reporter, s mapper.RouteSnapshot, routes []mapper.Route, i int) {
	t.Helper()
	rt := routes[i]
	src := rt.Source
	for _, p := range rt.Problems {
		if p.Object != src {
			t.Errorf("%s: problem %q is about %s", src, p.Reason, p.Object)
		}
	}
	user := findMapping(s, src.Namespace, src.Name)
	if user == nil {
		t.Errorf("%s: no such Mapping in the snapshot", src)
		return
	}
	if rt.Held {
		if len(rt.Objects) > 0 || len(rt.Backends) > 0 || len(rt.Problems) == 0 {
			t.Errorf("%s: held with %d objects, %d backends and %d problems, want no object, no backend and a problem", src, len(rt.Objects), len(rt.Backends), len(rt.Problems))
		}
		for _, p := range rt.Problems {
			if p.Reason == mapper.ReasonAmbiguousGroup {
				t.Errorf("%s: held with %s; a Mapping that loses its group to another is not held, so that what it rendered before is pruned", src, p.Error())
			}
		}
		return
	}
	for _, p := range rt.Problems {
		switch p.Reason {
		case mapper.ReasonInvalidWeights:
			// The split, scaled into a group that other Mappings
			// overflow, is written; every other InvalidWeights holds.
			if len(rt.Objects) == 0 {
				t.Errorf("%s: not held with %s, but renders nothing", src, p.Error())
			}
		case mapper.ReasonAmbiguousGroup:
			// Not held, so that what it rendered before, which would take
			// the first annotated Mapping's remainder, is pruned.
			if len(rt.Objects) > 0 || len(rt.Backends) > 0 {
				t.Errorf("%s: %s, but renders %d objects and %d backends, want none", src, p.Error(), len(rt.Objects), len(rt.Backends))
			}
			if !earlierSourceInGroup(s, user) {
				t.Errorf("%s: %s, but no annotated Mapping before it is in its Emissary group", src, p.Error())
			}
		case mapper.ReasonSharedGroup:
			// Others' Mappings take a share of the group: the routes are
			// written, and the group in force names them.
			if rt.Group == nil || !slices.ContainsFunc(rt.Group.Members, func(m mapper.GroupMember) bool { return m.Owner == mapper.OwnerOther && m.Share > 0 }) {
				t.Errorf("%s: %s, but its group in force has no other Mapping with a share", src, p.Error())
			}
		case mapper.ReasonUnsupportedMapping:
			// Only a second TrafficSplit of one Service: the routes are
			// written, the TrafficSplit is not.
			if !secondTrafficSplit(user, routes, i) {
				t.Errorf("%s: not held, but has problem %s, and no route before it has the TrafficSplit of its Service", src, p.Error())
			}
		default:
			t.Errorf("%s: not held, but has problem %s", src, p.Error())
		}
	}

	ref, err := ingress.ParseService(user.Spec.Service, user.Namespace)
	if err != nil && len(rt.Objects) > 0 {
		t.Errorf("%s: renders %d objects for service %q: %v", src, len(rt.Objects), user.Spec.Service, err)
		return
	}
	for _, o := range rt.Objects {
		k := mapper.KeyOf(o)
		l := o.GetLabels()
		if l[crossmapv1.LabelSourceNamespace] != src.Namespace || l[crossmapv1.LabelSourceName] != src.Name {
			t.Errorf("%s: source labels %q/%q, want those of %s", k, l[crossmapv1.LabelSourceNamespace], l[crossmapv1.LabelSourceName], src)
		}
		// A TrafficSplit lives with the Service it splits (SMI names its
		// backends as Services of its own namespace); the rest with the
		// user's Mapping.
		wantNS := src.Namespace
		if isTrafficSplit(o) {
			wantNS = ref.Namespace
		}
		if o.GetNamespace() != wantNS {
			t.Errorf("%s: in namespace %q, want %q", k, o.GetNamespace(), wantNS)
		}
		// An owner reference names an object of the dependent's own
		// namespace: across namespaces, the garbage collector would find
		// no owner and delete the object. There the labels alone tie it to
		// its source.
		refs := o.GetOwnerReferences()
		switch {
		case o.GetNamespace() != src.Namespace:
			if len(refs) != 0 {
				t.Errorf("%s: owner references %+v, but the Mapping %s is in another namespace", k, refs, src)
			}
		case len(refs) != 1 || refs[0].Kind != "Mapping" || refs[0].APIVersion != ambv3.GroupVersion.String() || refs[0].Name != src.Name || refs[0].UID != user.UID:
			t.Errorf("%s: owner references %+v, want the Mapping %s (uid %q)", k, refs, src, user.UID)
		}
		if !mapper.RouteOwned(o, s) {
			t.Errorf("%s: RouteOwned is false for what Routes renders, so Diff would report it as a conflict", k)
		}
		m, ok := o.(*ambv3.Mapping)
		if !ok {
			continue
		}
		// The user's labels come along, so that the sibling binds where
		// the user's Mapping does; crossmap's win on shared keys.
		for lk, lv := range user.Labels {
			if got, ok := l[lk]; !ok || got != lv && !strings.HasPrefix(lk, "crossmap.io/") && lk != crossmapv1.LabelManagedBy {
				t.Errorf("%s: label %s = %q, want the user's %q", k, lk, got, lv)
			}
		}
		if l[mapper.LabelTargetCluster] == "" {
			t.Errorf("%s: no %s label", k, mapper.LabelTargetCluster)
		}
		mref, err := ingress.ParseService(m.Spec.Service, m.Namespace)
		if err != nil {
			t.Errorf("%s: service %q: %v", k, m.Spec.Service, err)
			continue
		}
		svc := findService(s, mref.Namespace, mref.Name)
		if svc == nil || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Port == mref.Port }) {
			t.Errorf("%s: service %q is no Service of the snapshot with port %d", k, m.Spec.Service, mref.Port)
		}
	}
}

func isTrafficSplit(o mapper.Object) bool {
	return o.GetObjectKind().GroupVersionKind().Kind == "TrafficSplit"
}

func findMapping(s mapper.RouteSnapshot, ns, name string) *ambv3.Mapping {
	for _, m := range s.Mappings {
		if m.Namespace == ns && m.Name == name {
			return m
		}
	}
	return nil
}

// isSource reports whether m is an annotated Mapping that crossmap routes.
func isSource(s mapper.RouteSnapshot, m *ambv3.Mapping) bool {
	return m.Labels[crossmapv1.LabelManagedBy] != crossmapv1.ManagedBy && ingress.Annotated(m.Annotations) && served(m.Spec.AmbassadorID, s.AmbassadorID)
}

func compareMappings(a, b *ambv3.Mapping) int {
	return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
}

// earlierSourceInGroup reports whether an annotated Mapping that sorts
// before user (by namespace/name) is in user's Emissary group.
func earlierSourceInGroup(s mapper.RouteSnapshot, user *ambv3.Mapping) bool {
	hosts := servedHosts(s)
	id := emissaryGroupID(user, hosts)
	return slices.ContainsFunc(s.Mappings, func(m *ambv3.Mapping) bool {
		return isSource(s, m) && compareMappings(m, user) < 0 && emissaryGroupID(m, hosts) == id
	})
}

// secondTrafficSplit reports whether routes[i] renders no TrafficSplit and
// an earlier route renders the one of the Service user routes to.
func secondTrafficSplit(user *ambv3.Mapping, routes []mapper.Route, i int) bool {
	ref, err := ingress.ParseService(user.Spec.Service, user.Namespace)
	if err != nil || slices.ContainsFunc(routes[i].Objects, isTrafficSplit) {
		return false
	}
	for _, rt := range routes[:i] {
		for _, o := range rt.Objects {
			if isTrafficSplit(o) && o.GetNamespace() == ref.Namespace && o.GetName() == ref.Name {
				return true
			}
		}
	}
	return false
}

// checkBackends checks what a route reports of its backends: the local one
// first; configured weights that add up to 100 (the split, and the local
// remainder); a reason exactly when the effective weight differs from the
// configured one; and for a dev route, no weight, a reason exactly when it
// is unhealthy, and the health of the split backend of the same cluster.
func checkBackends(t reporter, s mapper.RouteSnapshot, rt mapper.Route) {
	t.Helper()
	src := rt.Source
	if len(rt.Backends) == 0 {
		if len(rt.Objects) > 0 {
			t.Errorf("%s: renders %d objects, but reports no backend", src, len(rt.Objects))
		}
		return
	}
	user := findMapping(s, src.Namespace, src.Name)
	if user == nil {
		return // checkRoute says so
	}
	if ref, err := ingress.ParseService(user.Spec.Service, user.Namespace); err != nil {
		t.Errorf("%s: reports backends for service %q: %v", src, user.Spec.Service, err)
	} else if local := rt.Backends[0]; local.Cluster != "" || local.Header != "" || local.Service != ref.Namespace+"/"+ref.Name {
		t.Errorf("%s: first backend %+v, want the local Service %s/%s", src, local, ref.Namespace, ref.Name)
	}
	configured, effective := 0, 0
	health := map[string]bool{}
	for _, b := range rt.Backends {
		if b.Header != "" {
			continue
		}
		configured += b.Configured
		effective += b.Effective
		if (b.Reason == "") != (b.Effective == b.Configured) {
			t.Errorf("%s: backend %s: configured %d, effective %d, reason %q; want a reason exactly when the two differ", src, b.Service, b.Configured, b.Effective, b.Reason)
		}
		if b.Cluster != "" {
			health[b.Cluster] = b.Healthy
		}
	}
	if configured != 100 {
		t.Errorf("%s: configured weights add up to %d, want 100 (the split and the local remainder)", src, configured)
	}
	if effective > 100 {
		t.Errorf("%s: effective weights add up to %d, more than 100", src, effective)
	}
	// A split scaled into what other Mappings leave of its group keeps the
	// proportions of every backend, the local one included, as far as
	// rounding allows, unless failover moves weight.
	scaled := slices.ContainsFunc(rt.Problems, func(p mapper.Problem) bool { return p.Reason == mapper.ReasonInvalidWeights })
	allHealthy := !slices.ContainsFunc(rt.Backends, func(b mapper.RouteBackend) bool { return b.Header == "" && !b.Healthy })
	if scaled && (rt.Failover == "off" || allHealthy) {
		for _, b := range rt.Backends {
			if d := b.Effective*100 - b.Configured*effective; b.Header == "" && (d <= -100 || d >= 100) {
				t.Errorf("%s: backend %s: effective %d of the %d left, but configured %d of 100: scaling lost its proportion", src, b.Service, b.Effective, effective, b.Configured)
			}
		}
	}
	for _, b := range rt.Backends[1:] {
		if b.Header == "" {
			continue
		}
		if b.Configured != 0 || b.Effective != 0 {
			t.Errorf("%s: dev route backend %s has weights %d/%d; a dev route has none", src, b.Cluster, b.Configured, b.Effective)
		}
		if (b.Reason == "") != b.Healthy {
			t.Errorf("%s: dev route backend %s: healthy %v, reason %q; want a reason exactly when it is unhealthy", src, b.Cluster, b.Healthy, b.Reason)
		}
		if h, ok := health[b.Cluster]; ok && h != b.Healthy {
			t.Errorf("%s: dev route backend %s: healthy %v, but the split backend of that cluster: %v", src, b.Cluster, b.Healthy, h)
		}
	}
}

// checkHeldKeys checks that nothing rendered lands on an object a held route
// keeps. The controller keeps a held route's objects (the snapshot has its
// Mappings, labelled with their source), so both would be desired at one
// key and written in turn.
func checkHeldKeys(t reporter, s mapper.RouteSnapshot, routes []mapper.Route) {
	t.Helper()
	held := map[string]bool{}
	for _, rt := range routes {
		if rt.Held {
			held[rt.Source.Namespace+"/"+rt.Source.Name] = true
		}
	}
	kept := map[mapper.Key]string{}
	for _, m := range s.Mappings {
		l := m.Labels
		src := l[crossmapv1.LabelSourceNamespace] + "/" + l[crossmapv1.LabelSourceName]
		if l[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy && l[crossmapv1.LabelRole] == mapper.RoleRoute && held[src] {
			kept[mapper.KeyOf(m)] = src
		}
	}
	for _, rt := range routes {
		for _, o := range rt.Objects {
			if src, ok := kept[mapper.KeyOf(o)]; ok {
				t.Errorf("%s renders %s, which the held route of Mapping %s keeps", rt.Source, mapper.KeyOf(o), src)
			}
		}
	}
}

// checkOneSplitPerGroup checks that crossmap splits an Emissary group once:
// no two routes that write weighted siblings have their user Mappings in one
// group, where both would share one remainder.
func checkOneSplitPerGroup(t reporter, s mapper.RouteSnapshot, routes []mapper.Route) {
	t.Helper()
	hosts := servedHosts(s)
	groups := map[string]mapper.ObjectRef{}
	for _, rt := range routes {
		if rt.Held || !slices.ContainsFunc(rt.Objects, func(o mapper.Object) bool {
			m, ok := o.(*ambv3.Mapping)
			return ok && m.Spec.Weight != nil
		}) {
			continue
		}
		user := findMapping(s, rt.Source.Namespace, rt.Source.Name)
		if user == nil {
			continue
		}
		id := emissaryGroupID(user, hosts)
		if first, ok := groups[id]; ok {
			t.Errorf("%s and %s are in one Emissary group, and both write weighted siblings", first, rt.Source)
			continue
		}
		groups[id] = rt.Source
	}
}

func findService(s mapper.RouteSnapshot, ns, name string) *corev1.Service {
	for _, svc := range s.Services {
		if svc.Namespace == ns && svc.Name == name {
			return svc
		}
	}
	return nil
}

// checkValidMetadata checks that the API server would accept the names and
// labels of what is rendered.
func checkValidMetadata(t reporter, objs []mapper.Object) {
	t.Helper()
	for _, o := range objs {
		k := mapper.KeyOf(o)
		for _, msg := range validation.IsDNS1123Subdomain(o.GetName()) {
			t.Errorf("%s: name: %s", k, msg)
		}
		for lk, lv := range o.GetLabels() {
			for _, msg := range append(validation.IsQualifiedName(lk), validation.IsValidLabelValue(lv)...) {
				t.Errorf("%s: label %s=%q: %s", k, lk, lv, msg)
			}
		}
	}
}

// checkTrafficSplitServices checks that every rendered TrafficSplit names
// Services of its own namespace, which is where SMI looks for them.
func checkTrafficSplitServices(t reporter, s mapper.RouteSnapshot, objs []mapper.Object) {
	t.Helper()
	for _, o := range objs {
		var names []string
		switch ts := o.(type) {
		case *splitv1alpha2.TrafficSplit:
			names = append(names, ts.Spec.Service)
			for _, b := range ts.Spec.Backends {
				names = append(names, b.Service)
			}
		case *splitv1alpha1.TrafficSplit:
			names = append(names, ts.Spec.Service)
			for _, b := range ts.Spec.Backends {
				names = append(names, b.Service)
			}
		default:
			continue
		}
		for _, n := range names {
			if findService(s, o.GetNamespace(), n) == nil {
				t.Errorf("%s: names Service %s, which is not in namespace %s", mapper.KeyOf(o), n, o.GetNamespace())
			}
		}
	}
}

// servedHosts are the Hosts the Emissary installation crossmap routes for
// reads, by namespace/name.
func servedHosts(s mapper.RouteSnapshot) []*ambv3.Host {
	var hosts []*ambv3.Host
	for _, h := range s.Hosts {
		if h.Spec != nil && served(h.Spec.AmbassadorID, s.AmbassadorID) {
			hosts = append(hosts, h)
		}
	}
	slices.SortFunc(hosts, func(a, b *ambv3.Host) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return hosts
}

// checkEmissaryGroups checks the weights crossmap writes the way Emissary
// 3.10 reads them: after the routes are applied, every weighted sibling is
// in its user Mapping's Emissary group, agrees with it on every key
// Emissary requires to be equal in a group, the group's weights are valid,
// and each backend gets, as its share of the group, the effective weight the
// route reports. A dev route is a group of its own.
func checkEmissaryGroups(t reporter, s mapper.RouteSnapshot, routes []mapper.Route) {
	t.Helper()
	world := appliedMappings(s, routes)
	hosts := servedHosts(s)
	group := func(m *ambv3.Mapping) []*ambv3.Mapping {
		id := emissaryGroupID(m, hosts)
		var out []*ambv3.Mapping
		for _, o := range world {
			if served(o.Spec.AmbassadorID, s.AmbassadorID) && !ptr.Deref(o.Spec.Shadow, false) && !ptr.Deref(o.Spec.HostRedirect, false) &&
				emissaryGroupID(o, hosts) == id {
				out = append(out, o)
			}
		}
		return out
	}

	for _, r := range routes {
		if r.Held || len(r.Objects) == 0 {
			continue
		}
		user := findMapping(s, r.Source.Namespace, r.Source.Name)
		if user == nil {
			continue // checkRoute says so
		}
		userID := emissaryGroupID(user, hosts)
		members := group(user)
		gm := make([]emissary.Weighted, len(members))
		weightless := 0
		for i, m := range members {
			gm[i] = emissary.Weighted{Name: m.Namespace + "/" + m.Name, Weight: m.Spec.Weight}
			if m.Spec.Weight == nil {
				weightless++
			}
		}
		shares, err := emissary.Shares(gm)
		if err != nil {
			t.Errorf("%s: Emissary rejects the group the route writes to: %v", r.Source, err)
			continue
		}
		share := func(m *ambv3.Mapping) int {
			for i, o := range members {
				if o == m {
					return shares[i]
				}
			}
			return -1
		}
		// With other weightless members the user's Mapping shares the
		// remainder with them, and the local backend's weight is not its
		// share alone.
		if weightless == 1 {
			if got, want := share(user), r.Backends[0].Effective; got != want {
				t.Errorf("%s: Emissary gives the user's Mapping %d%%, but the local backend's effective weight is %d", r.Source, got, want)
			}
		}
		for _, o := range r.Objects {
			m, ok := o.(*ambv3.Mapping)
			if !ok {
				continue
			}
			cluster := m.Labels[mapper.LabelTargetCluster]
			if m.Spec.Weight == nil {
				// A dev route: its header makes a group of its own, where it
				// gets all that group's requests.
				if g := group(m); len(g) != 1 {
					t.Errorf("%s: dev route %s shares its Emissary group with %d other Mappings", r.Source, m.Name, len(g)-1)
				}
				continue
			}
			if id := emissaryGroupID(m, hosts); id != userID {
				t.Errorf("%s: sibling %s is in Emissary group %q, not the user's %q", r.Source, m.Name, id, userID)
				continue
			}
			checkCoreKeys(t, user, m)
			for _, b := range r.Backends[1:] {
				if b.Cluster == cluster && b.Header == "" && share(m) != b.Effective {
					t.Errorf("%s: Emissary gives sibling %s %d%%, but backend %s has effective weight %d", r.Source, m.Name, share(m), cluster, b.Effective)
				}
			}
		}
	}
}

// appliedMappings is every Mapping once the routes are applied: the
// snapshot's, with the route Mappings of routes that are not held replaced
// by what they render now.
func appliedMappings(s mapper.RouteSnapshot, routes []mapper.Route) []*ambv3.Mapping {
	rewritten := map[string]bool{}
	for _, r := range routes {
		if !r.Held {
			rewritten[r.Source.Namespace+"/"+r.Source.Name] = true
		}
	}
	var out []*ambv3.Mapping
	for _, m := range s.Mappings {
		l := m.Labels
		if l[crossmapv1.LabelManagedBy] == crossmapv1.ManagedBy && l[crossmapv1.LabelRole] == mapper.RoleRoute &&
			rewritten[l[crossmapv1.LabelSourceNamespace]+"/"+l[crossmapv1.LabelSourceName]] {
			continue
		}
		out = append(out, m)
	}
	for _, r := range routes {
		if r.Held {
			continue
		}
		for _, o := range r.Objects {
			if m, ok := o.(*ambv3.Mapping); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

// served reports whether a resource with ambassador_id id is read by an
// Emissary installation with one of the ids ours (unset is "default").
func served(id ambv3.AmbassadorID, ours []string) bool {
	if len(ours) == 0 {
		ours = []string{"default"}
	}
	return slices.ContainsFunc(ours, id.Matches)
}

// emissaryGroupID is the group id Emissary 3.10 gives an HTTP Mapping
// (python/ambassador/ir/irhttpmapping.py, _group_id, and how __init__ builds
// the headers it reads), written from the Python rather than from mapper's
// groupKey so that each checks the other: "HTTP-", the method (GET when
// unset), the prefix, then each header match name and value (exact, then
// regex, then :authority from host or hostname, then :method), each query
// parameter, the matchLabels of every Host whose mappingSelector matches
// when the Mapping has no (non-regex) host, and the precedence unless 0.
// Emissary hashes that string; comparing it as is is the same.
func emissaryGroupID(m *ambv3.Mapping, hosts []*ambv3.Host) string {
	sp := m.Spec
	var b strings.Builder
	b.WriteString("HTTP-" + cmp.Or(sp.Method, "GET") + sp.Prefix)
	host, hostRegex := "", false
	for _, k := range slices.Sorted(maps.Keys(sp.Headers)) {
		v := sp.Headers[k]
		if strings.EqualFold(k, ":authority") {
			if !strings.Contains(v, "*") {
				host = v
			}
			continue
		}
		b.WriteString(k + v)
	}
	for _, k := range slices.Sorted(maps.Keys(sp.RegexHeaders)) {
		b.WriteString(k + sp.RegexHeaders[k])
	}
	if sp.DeprecatedHost != "" {
		host, hostRegex = sp.DeprecatedHost, ptr.Deref(sp.DeprecatedHostRegex, false)
	}
	if sp.Hostname != "" {
		host, hostRegex = sp.Hostname, false
	}
	if host != "" {
		b.WriteString(":authority" + host)
	}
	if sp.Method != "" {
		b.WriteString(":method" + sp.Method)
	}
	for _, k := range slices.Sorted(maps.Keys(sp.QueryParameters)) {
		b.WriteString(k + sp.QueryParameters[k])
	}
	for _, k := range slices.Sorted(maps.Keys(sp.RegexQueryParameters)) {
		b.WriteString(k + sp.RegexQueryParameters[k])
	}
	if (host == "" || hostRegex) && m.Labels != nil {
		for _, h := range hosts {
			sel := h.Spec.MappingSelector
			if sel == nil || len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0 {
				continue
			}
			// irutils.py selector_matches: only matchLabels count, and
			// every one of them must match.
			matches := true
			for k, v := range sel.MatchLabels {
				if got, ok := m.Labels[k]; !ok || got != v {
					matches = false
				}
			}
			if matches {
				for _, k := range slices.Sorted(maps.Keys(sel.MatchLabels)) {
					b.WriteString(k + sel.MatchLabels[k])
				}
			}
		}
	}
	if p := ptr.Deref(sp.Precedence, 0); p != 0 {
		b.WriteString(strconv.Itoa(p))
	}
	// The ambassador_id is not part of it: an installation sees only the
	// Mappings it serves (the callers filter with served), and groups
	// those whatever else their ambassador_id lists (issue 12).
	return b.String()
}

// coreMappingKeys are the keys every Mapping of an Emissary group must agree
// on, or Emissary refuses the newcomer ("cannot accept new mapping ... with
// mismatched ...": irhttpmappinggroup.py, CoreMappingKeys and add_mapping).
var coreMappingKeys = []string{
	"bypass_auth", "bypass_error_response_overrides", "circuit_breakers", "cluster_timeout_ms",
	"connect_timeout_ms", "cluster_idle_timeout_ms", "cluster_max_connection_lifetime_ms",
	"headers", "keepalive", "labels", "load_balancer", "method", "prefix", "prefix_regex", "prefix_exact",
}

func checkCoreKeys(t reporter, user, sibling *ambv3.Mapping) {
	t.Helper()
	u, g := specFields(t, user), specFields(t, sibling)
	for _, k := range coreMappingKeys {
		if !reflect.DeepEqual(u[k], g[k]) {
			t.Errorf("%s/%s: %s = %v, but the user's Mapping has %v, and Emissary refuses a group member that differs", sibling.Namespace, sibling.Name, k, g[k], u[k])
		}
	}
}

func specFields(t reporter, m *ambv3.Mapping) map[string]any {
	t.Helper()
	var out map[string]any
	raw, err := json.Marshal(m.Spec)
	if err == nil {
		err = json.Unmarshal(raw, &out)
	}
	if err != nil {
		t.Errorf("%s/%s: spec: %v", m.Namespace, m.Name, err)
	}
	return out
}
