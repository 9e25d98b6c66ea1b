package mapper_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
	"github.com/crossmap/crossmap/mapper/mappertest"
)

// versioned gives every remote object of s a UID and a resourceVersion, as
// the objects of a watcher's cache have, unless it has them already.
func versioned(s mapper.ImportSnapshot) mapper.ImportSnapshot {
	n := 0
	stamp := func(o mapper.Object) {
		n++
		if o.GetUID() == "" {
			o.SetUID(types.UID(fmt.Sprintf("uid-%d", n)))
		}
		if o.GetResourceVersion() == "" {
			o.SetResourceVersion(strconv.Itoa(n))
		}
	}
	for _, svc := range s.Services {
		stamp(svc)
	}
	for _, es := range s.Slices {
		stamp(es)
	}
	return s
}

// memoImport runs s through m, formatted like runImport.
func memoImport(m *mapper.ImportMemo, s mapper.ImportSnapshot) importResult {
	objs, mirrored, problems := m.Import(s)
	return importResult{Objects: nonNil(objs), Mirrored: mirrored, Problems: nonNil(problems)}
}

// TestImportMemoGolden: on every golden input, Import through a memo, the
// first time and from memory, in any order of the lists, renders exactly
// what Import renders.
func TestImportMemoGolden(t *testing.T) {
	for _, name := range goldenCases(t, "import") {
		t.Run(name, func(t *testing.T) {
			s := versioned(loadImport(t, name))
			want := marshalYAML(t, runImport(s))
			var m mapper.ImportMemo
			for i, v := range reorderings(len(s.Services), len(s.Slices)) {
				r := s
				r.Services = permute(s.Services, v[0])
				r.Slices = permute(s.Slices, v[1])
				if got := marshalYAML(t, memoImport(&m, r)); !bytes.Equal(got, want) {
					t.Errorf("call %d through the memo rendered differently (-Import +memo):\n%s", i, lineDiff(string(want), string(got)))
				}
			}
		})
	}
}

// memoWorld is a remote cluster the memo test changes step by step, the way
// an API server does: every write gives the object a new resourceVersion.
type memoWorld struct {
	s       mapper.ImportSnapshot
	version int
}

func (w *memoWorld) bump(o mapper.Object) {
	w.version++
	o.SetResourceVersion(strconv.Itoa(w.version))
}

func (w *memoWorld) service(ns, name string) *corev1.Service {
	for _, svc := range w.s.Services {
		if svc.Namespace == ns && svc.Name == name {
			return svc
		}
	}
	panic("no Service " + ns + "/" + name)
}

func (w *memoWorld) slice(ns, name string) *discoveryv1.EndpointSlice {
	for _, es := range w.s.Slices {
		if es.Namespace == ns && es.Name == name {
			return es
		}
	}
	panic("no EndpointSlice " + ns + "/" + name)
}

// TestImportMemoFollowsChanges walks a Link through the changes a remote
// cluster and the local one go through, and checks after each that Import
// through one memo renders what Import renders afresh, and that a Service
// nothing changed for is not rendered again.
func TestImportMemoFollowsChanges(t *testing.T) {
	export := mappertest.Labels(map[string]string{crossmapv1.ExportLabel: "true"})
	w := &memoWorld{s: mapper.ImportSnapshot{
		Link:             eastLink,
		GatewayAddresses: []netip.Addr{netip.MustParseAddr("172.18.0.3")},
		GatewayAlive:     true,
		LocalNamespaces:  sets.New("apps", "web"),
	}}
	addService := func(ns, name string, eps ...string) {
		svc := mappertest.Service(ns, name, export, mappertest.UID("svc-"+ns+"-"+name), mappertest.Port("http", 9898, 9898))
		w.bump(svc)
		opts := []mappertest.SliceOption{mappertest.SlicePort("http", 9898), mappertest.UID("es-" + ns + "-" + name)}
		for _, a := range eps {
			opts = append(opts, mappertest.Endpoint(a, true))
		}
		es := mappertest.Slice(ns, name+"-x7k2p", name, discoveryv1.AddressTypeIPv4, opts...)
		w.bump(es)
		w.s.Services = append(w.s.Services, svc)
		w.s.Slices = append(w.s.Slices, es)
	}
	addService("apps", "podinfo", "10.244.1.5", "10.244.1.6")
	addService("apps", "api", "10.244.1.7")
	addService("web", "frontend", "10.244.2.5")
	addService("other", "elsewhere", "10.244.3.5")

	steps := []struct {
		what string
		// change changes the world; it returns the Services (namespace/name)
		// whose rendering it may change, "*" for all.
		change func() []string
	}{
		{"first call", func() []string { return []string{"*"} }},
		{"nothing changed", func() []string { return nil }},
		{"an endpoint becomes not ready", func() []string {
			es := w.slice("apps", "podinfo-x7k2p").DeepCopy()
			es.Endpoints[1].Conditions.Ready = ptr.To(false)
			w.bump(es)
			w.s.Slices[0] = es
			return []string{"apps/podinfo"}
		}},
		{"the remote cache hands out the same objects anew", func() []string {
			for i, svc := range w.s.Services {
				w.s.Services[i] = svc.DeepCopy()
			}
			for i, es := range w.s.Slices {
				w.s.Slices[i] = es.DeepCopy()
			}
			return nil
		}},
		{"all endpoints of a Service become not ready", func() []string {
			es := w.slice("apps", "api-x7k2p").DeepCopy()
			es.Endpoints[0].Conditions.Ready = ptr.To(false)
			w.bump(es)
			w.s.Slices[1] = es
			return []string{"apps/api"}
		}},
		{"a Service gets a second slice", func() []string {
			es := mappertest.Slice("apps", "podinfo-b8m3q", "podinfo", discoveryv1.AddressTypeIPv6,
				mappertest.SlicePort("http", 9898), mappertest.Endpoint("fd00::5", true), mappertest.UID("es-second"))
			w.bump(es)
			w.s.Slices = append(w.s.Slices, es)
			return []string{"apps/podinfo"}
		}},
		{"a Service's port changes", func() []string {
			svc := w.service("web", "frontend").DeepCopy()
			svc.Spec.Ports[0].Port = 8080
			w.bump(svc)
			w.s.Services[2] = svc
			return []string{"web/frontend"}
		}},
		{"a Service is deleted", func() []string {
			w.s.Services = append(w.s.Services[:1:1], w.s.Services[2:]...)
			return nil
		}},
		{"it comes back with the same version from another cluster", func() []string {
			svc := mappertest.Service("apps", "api", export, mappertest.UID("another-cluster"),
				mappertest.Port("grpc", 9090, 9090))
			svc.SetResourceVersion(w.service("apps", "podinfo").ResourceVersion)
			w.s.Services = append(w.s.Services, svc)
			return []string{"apps/api"}
		}},
		{"a Service loses its last port", func() []string {
			svc := w.service("apps", "api").DeepCopy()
			svc.Spec.Ports = nil
			w.bump(svc)
			for i := range w.s.Services {
				if w.s.Services[i].Name == "api" {
					w.s.Services[i] = svc
				}
			}
			return nil
		}},
		{"the gateway dies", func() []string {
			w.s.GatewayAlive = false
			return []string{"*"}
		}},
		{"the gateway comes back", func() []string {
			w.s.GatewayAlive = true
			return []string{"*"}
		}},
		{"the gateway moves", func() []string {
			w.s.GatewayAddresses = []netip.Addr{netip.MustParseAddr("172.18.0.4"), netip.MustParseAddr("fd00::4")}
			return []string{"*"}
		}},
		{"a namespace goes away here", func() []string {
			w.s.LocalNamespaces = sets.New("apps")
			return nil
		}},
		{"the Link may create namespaces", func() []string {
			w.s.Link.CreateNamespaces = true
			return []string{"*"}
		}},
		{"flat mode", func() []string {
			w.s.Link.Mode = crossmapv1.ModeFlat
			return []string{"*"}
		}},
		{"a fixture without versions changes", func() []string {
			es := w.slice("apps", "podinfo-x7k2p").DeepCopy()
			es.Endpoints[0].Conditions.Ready = ptr.To(false)
			es.SetResourceVersion("")
			w.s.Slices[0] = es
			return []string{"apps/podinfo"}
		}},
		{"and changes again", func() []string {
			es := w.slice("apps", "podinfo-x7k2p").DeepCopy()
			es.Endpoints[0].Conditions.Ready = ptr.To(true)
			w.s.Slices[0] = es
			return []string{"apps/podinfo"}
		}},
	}

	var m mapper.ImportMemo
	var prev map[mapper.Key]mapper.Object
	for _, step := range steps {
		changed := sets.New(step.change()...)
		want := marshalYAML(t, runImport(w.s))
		objs, mirrored, problems := m.Import(w.s)
		got := marshalYAML(t, importResult{Objects: nonNil(objs), Mirrored: mirrored, Problems: nonNil(problems)})
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: through the memo (-Import +memo):\n%s", step.what, lineDiff(string(want), string(got)))
		}
		// An unchanged Service is not rendered again: its objects are the
		// very ones the previous call returned.
		next := map[mapper.Key]mapper.Object{}
		for _, o := range objs {
			k := mapper.KeyOf(o)
			next[k] = o
			if _, isNS := o.(*corev1.Namespace); isNS {
				continue
			}
			l := o.GetLabels()
			src := l[crossmapv1.LabelSourceNamespace] + "/" + l[crossmapv1.LabelSourceName]
			if p, ok := prev[k]; ok && !changed.Has("*") && !changed.Has(src) && p != o {
				t.Errorf("%s: %s rendered again though Service %s did not change", step.what, k, src)
			}
		}
		prev = next
	}
}

// BenchmarkImportMemo is Import of a thousand-Service Link through a memo
// after one EndpointSlice changed: what a reconcile does per remote change.
func BenchmarkImportMemo(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			s := versioned(exported(n))
			var m mapper.ImportMemo
			m.Import(s)
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				j := i % n
				es := s.Slices[j].DeepCopy()
				es.Endpoints[0].Conditions.Ready = ptr.To(!ptr.Deref(es.Endpoints[0].Conditions.Ready, true))
				es.SetResourceVersion(strconv.Itoa(n + i + 1))
				s.Slices[j] = es
				if _, mirrored, _ := m.Import(s); mirrored != n {
					b.Fatalf("mirrored %d of %d", mirrored, n)
				}
				i++
			}
		})
	}
}
