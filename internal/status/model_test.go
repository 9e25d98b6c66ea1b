package status_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/mapper"
)

// problem is a Problem about Service ns/name.
func problem(reason, ns, name string) mapper.Problem {
	return mapper.Problem{
		Reason:  reason,
		Object:  mapper.ObjectRef{Kind: "Service", Namespace: ns, Name: name},
		Message: reason + " on " + ns + "/" + name,
	}
}

var (
	noPorts  = problem(mapper.ReasonNoPorts, "test", "a")
	conflict = problem(mapper.ReasonConflict, "test", "b")
	tooLong  = problem(mapper.ReasonNameTooLong, "test", "c")
	// conflictOther differs from conflict in its message only.
	conflictOther = mapper.Problem{Reason: conflict.Reason, Object: conflict.Object, Message: "another message"}

	t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	t1 = t0.Add(time.Minute)
	t2 = t0.Add(2 * time.Minute)
)

// TestModelSetProblems feeds one source's problems to a Model call after
// call, as a reconciler does, and checks what each call reports as added and
// resolved and what the model then holds. Each case is a whole sequence on a
// new Model.
func TestModelSetProblems(t *testing.T) {
	type call struct {
		found        []mapper.Problem
		now          time.Time
		wantAdded    []mapper.Problem
		wantResolved []mapper.Problem
		// wantHeld is the model's problems after the call.
		wantHeld []status.Problem
	}
	held := func(p mapper.Problem, since time.Time) status.Problem {
		return status.Problem{Source: "export", Problem: p, Since: since}
	}
	cases := []struct {
		name  string
		calls []call
	}{{
		name: "first problems are all added",
		calls: []call{{
			found: []mapper.Problem{noPorts, conflict}, now: t0,
			wantAdded: []mapper.Problem{noPorts, conflict},
			wantHeld:  []status.Problem{held(noPorts, t0), held(conflict, t0)},
		}},
	}, {
		name: "the same problem again is not added again and keeps its Since",
		calls: []call{{
			found: []mapper.Problem{noPorts}, now: t0,
			wantAdded: []mapper.Problem{noPorts},
			wantHeld:  []status.Problem{held(noPorts, t0)},
		}, {
			found: []mapper.Problem{noPorts}, now: t1,
			wantHeld: []status.Problem{held(noPorts, t0)},
		}, {
			found: []mapper.Problem{noPorts}, now: t2,
			wantHeld: []status.Problem{held(noPorts, t0)},
		}},
	}, {
		name: "a new problem is added and a gone one resolved in the same call",
		calls: []call{{
			found: []mapper.Problem{noPorts, conflict}, now: t0,
			wantAdded: []mapper.Problem{noPorts, conflict},
			wantHeld:  []status.Problem{held(noPorts, t0), held(conflict, t0)},
		}, {
			found: []mapper.Problem{conflict, tooLong}, now: t1,
			wantAdded:    []mapper.Problem{tooLong},
			wantResolved: []mapper.Problem{noPorts},
			wantHeld:     []status.Problem{held(conflict, t0), held(tooLong, t1)},
		}},
	}, {
		name: "identical problems in one call count once",
		calls: []call{{
			found: []mapper.Problem{conflict, conflict, noPorts, conflict}, now: t0,
			wantAdded: []mapper.Problem{conflict, noPorts},
			wantHeld:  []status.Problem{held(conflict, t0), held(noPorts, t0)},
		}, {
			found: []mapper.Problem{noPorts, noPorts}, now: t1,
			wantResolved: []mapper.Problem{conflict},
			wantHeld:     []status.Problem{held(noPorts, t0)},
		}},
	}, {
		name: "a changed message is a new problem",
		calls: []call{{
			found: []mapper.Problem{conflict}, now: t0,
			wantAdded: []mapper.Problem{conflict},
			wantHeld:  []status.Problem{held(conflict, t0)},
		}, {
			found: []mapper.Problem{conflictOther}, now: t1,
			wantAdded:    []mapper.Problem{conflictOther},
			wantResolved: []mapper.Problem{conflict},
			wantHeld:     []status.Problem{held(conflictOther, t1)},
		}},
	}, {
		name: "resolved problems come sorted by object, reason and message",
		calls: []call{{
			found: []mapper.Problem{tooLong, conflictOther, noPorts, conflict}, now: t0,
			wantAdded: []mapper.Problem{tooLong, conflictOther, noPorts, conflict},
			wantHeld:  []status.Problem{held(tooLong, t0), held(conflictOther, t0), held(noPorts, t0), held(conflict, t0)},
		}, {
			now:          t1,
			wantResolved: []mapper.Problem{noPorts, conflict, conflictOther, tooLong},
			wantHeld:     []status.Problem{},
		}},
	}, {
		name: "a problem that comes back is added again with a new Since",
		calls: []call{{
			found: []mapper.Problem{noPorts}, now: t0,
			wantAdded: []mapper.Problem{noPorts},
			wantHeld:  []status.Problem{held(noPorts, t0)},
		}, {
			now:          t1,
			wantResolved: []mapper.Problem{noPorts},
			wantHeld:     []status.Problem{},
		}, {
			found: []mapper.Problem{noPorts}, now: t2,
			wantAdded: []mapper.Problem{noPorts},
			wantHeld:  []status.Problem{held(noPorts, t2)},
		}},
	}, {
		name: "no problems on a new source changes nothing",
		calls: []call{{
			now:      t0,
			wantHeld: []status.Problem{},
		}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := status.NewModel()
			for i, c := range tc.calls {
				added, resolved := m.SetProblems("export", c.found, c.now)
				if !reflect.DeepEqual(added, c.wantAdded) {
					t.Errorf("call %d: added = %v; want %v", i+1, added, c.wantAdded)
				}
				if !reflect.DeepEqual(resolved, c.wantResolved) {
					t.Errorf("call %d: resolved = %v; want %v", i+1, resolved, c.wantResolved)
				}
				if got := m.View().Problems; !reflect.DeepEqual(got, c.wantHeld) {
					t.Errorf("call %d: View().Problems = %v; want %v", i+1, got, c.wantHeld)
				}
			}
		})
	}
}

func TestModelSourcesAreIndependent(t *testing.T) {
	m := status.NewModel()
	m.SetProblems("link/ns/west", []mapper.Problem{noPorts}, t0)
	m.SetProblems("export", []mapper.Problem{noPorts, conflict}, t1)

	// The same problem under another source is new there, and resolving it
	// in one source leaves the other alone.
	added, resolved := m.SetProblems("link/ns/west", nil, t2)
	if len(added) != 0 || !reflect.DeepEqual(resolved, []mapper.Problem{noPorts}) {
		t.Errorf("SetProblems(link/ns/west, nil) = %v, %v; want nothing added and %v resolved", added, resolved, noPorts)
	}
	want := []status.Problem{
		{Source: "export", Problem: noPorts, Since: t1},
		{Source: "export", Problem: conflict, Since: t1},
	}
	if got := m.View().Problems; !reflect.DeepEqual(got, want) {
		t.Errorf("View().Problems = %v; want %v", got, want)
	}
}

func TestModelView(t *testing.T) {
	m := status.NewModel()
	if v := m.View(); v.Links == nil || v.Problems == nil || len(v.Links)+len(v.Problems) != 0 {
		t.Errorf("View() of an empty model = %#v; want empty, non-nil slices (they encode as [] not null)", v)
	}

	for _, name := range []string{"west", "east", "north"} {
		m.SetLink(status.Link{Namespace: "crossmap-system", Name: name, Cluster: name,
			MirroredServices: []string{"test/podinfo-" + name}, GatewayAddresses: []string{"172.18.0.3"}})
	}
	m.SetLink(status.Link{Namespace: "a-first", Name: "zulu", MirroredServices: []string{}})
	m.SetProblems("link/crossmap-system/west", []mapper.Problem{tooLong}, t0)
	m.SetProblems("export", []mapper.Problem{conflict}, t0)
	m.SetProblems("link/crossmap-system/east", []mapper.Problem{noPorts}, t0)

	v := m.View()
	var keys, sources []string
	for _, l := range v.Links {
		keys = append(keys, l.Key())
	}
	for _, p := range v.Problems {
		sources = append(sources, p.Source)
	}
	if want := []string{"a-first/zulu", "crossmap-system/east", "crossmap-system/north", "crossmap-system/west"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("View() links %v; want them sorted by namespace/name: %v", keys, want)
	}
	if want := []string{"export", "link/crossmap-system/east", "link/crossmap-system/west"}; !reflect.DeepEqual(sources, want) {
		t.Errorf("View() problem sources %v; want them sorted: %v", sources, want)
	}

	// A View is a copy: changing it changes neither the model nor the next
	// View.
	v.Links[1].MirroredServices[0] = "changed"
	v.Links[1].GatewayAddresses[0] = "changed"
	v.Links[1].Cluster = "changed"
	v.Problems[0].Message = "changed"
	again := m.View()
	if l := again.Links[1]; l.MirroredServices[0] != "test/podinfo-east" || l.GatewayAddresses[0] != "172.18.0.3" || l.Cluster != "east" {
		t.Errorf("after editing an earlier View, View().Links[1] = %+v; want it unchanged", l)
	}
	if p := again.Problems[0]; p.Problem != conflict {
		t.Errorf("after editing an earlier View, View().Problems[0] = %+v; want it unchanged", p)
	}

	m.DeleteLink("crossmap-system/north")
	m.SetLink(status.Link{Namespace: "crossmap-system", Name: "east", Cluster: "east-2"})
	keys = nil
	for _, l := range m.View().Links {
		keys = append(keys, l.Key())
	}
	if want := []string{"a-first/zulu", "crossmap-system/east", "crossmap-system/west"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("after DeleteLink, View() links %v; want %v", keys, want)
	}
	if l := m.View().Links[1]; l.Cluster != "east-2" {
		t.Errorf("after SetLink of the same key, View().Links[1].Cluster = %q; want the new east-2", l.Cluster)
	}
}
