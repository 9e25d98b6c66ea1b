package mapper_test

import (
	"net/netip"
	"slices"
	"testing"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/utils/ptr"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/mapper"
	"github.com/crossmap/crossmap/mapper/mappertest"
)

// eastLink is the Link the plan tests mirror through.
var eastLink = mapper.LinkRef{
	Namespace: "crossmap-system", Name: "east", Cluster: "east",
	Mode: crossmapv1.ModeGateway, GatewayPort: 4143,
}

// ownedBy is ownership as the controller decides it: the object carries the
// Link's mirror selector.
func ownedBy(link mapper.LinkRef) func(mapper.Object) bool {
	sel := labels.SelectorFromSet(mapper.MirrorSelector(link))
	return func(obj mapper.Object) bool { return sel.Matches(labels.Set(obj.GetLabels())) }
}

// mirror renders, through Import, the gateway-mode mirror of Service ns/name
// from east: the Service <name>-east and its slice <name>-east-gw4. Every
// call returns new objects, so a case can edit them freely.
func mirror(t *testing.T, ns, name string) (*corev1.Service, *discoveryv1.EndpointSlice) {
	t.Helper()
	objs, mirrored, problems := mapper.Import(mapper.ImportSnapshot{
		Link:             eastLink,
		GatewayAddresses: []netip.Addr{netip.MustParseAddr("172.18.0.3")},
		GatewayAlive:     true,
		Services: []*corev1.Service{
			mappertest.Service(ns, name,
				mappertest.Labels(map[string]string{crossmapv1.ExportLabel: "true"}),
				mappertest.Port("http", 9898, 9898), mappertest.Port("metrics", 9797, 9797)),
		},
		Slices: []*discoveryv1.EndpointSlice{
			mappertest.Slice(ns, name+"-x7k2p", name, discoveryv1.AddressTypeIPv4,
				mappertest.Endpoint("10.244.1.5", true), mappertest.SlicePort("http", 9898), mappertest.SlicePort("metrics", 9797)),
		},
		LocalNamespaces: sets.New(ns),
	})
	if mirrored != 1 || len(problems) != 0 || len(objs) != 2 {
		t.Fatalf("Import rendered %d objects, mirrored %d, problems %v; want a Service and a slice", len(objs), mirrored, problems)
	}
	return objs[0].(*corev1.Service), objs[1].(*discoveryv1.EndpointSlice)
}

// gateway renders, through Export, the gateway Mapping of Service
// test/podinfo and the gateway Host.
func gateway(t *testing.T) (*ambv3.Mapping, *ambv3.Host) {
	t.Helper()
	objs, problems := mapper.Export(mapper.ExportSnapshot{
		Cluster: "east", GatewayNamespace: "emissary", GatewayHostName: "crossmap-gateway",
		Services: []*corev1.Service{
			mappertest.Service("test", "podinfo", mappertest.UID("0b1c2d3e-0000-4000-8000-000000000001"), mappertest.Port("http", 9898, 9898)),
		},
	})
	if len(problems) != 0 || len(objs) != 2 {
		t.Fatalf("Export rendered %d objects, problems %v; want a Mapping and a Host", len(objs), problems)
	}
	return objs[0].(*ambv3.Mapping), objs[1].(*ambv3.Host)
}

// edited is a copy of obj changed by f, as another writer would leave it.
func edited[T mapper.Object](obj T, f func(T)) T {
	c := obj.DeepCopyObject().(T)
	f(c)
	return c
}

// foreign is a copy of obj as somebody else would have written it: same key,
// none of crossmap's labels or annotations.
func foreign[T mapper.Object](obj T) T {
	return edited(obj, func(o T) {
		o.SetLabels(map[string]string{"app": "theirs"})
		o.SetAnnotations(nil)
	})
}

func keys(objs []mapper.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, mapper.KeyOf(o).String())
	}
	return out
}

func conflictRefs(ps []mapper.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Reason+" "+p.Object.String())
	}
	return out
}

func TestDiff(t *testing.T) {
	const (
		svcKey   = "Service test/podinfo-east"
		sliceKey = "EndpointSlice.discovery.k8s.io test/podinfo-east-gw4"
	)
	type want struct {
		create, update, delete, conflicts []string
	}
	for _, tc := range []struct {
		name    string
		objects func(t *testing.T) (desired, current []mapper.Object)
		owned   func(mapper.Object) bool // nil: owned by eastLink
		want    want
	}{{
		// Row 1: desired, does not exist → Create.
		name: "desired and missing is created",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			svc, es := mirror(t, "test", "podinfo")
			return []mapper.Object{svc, es}, nil
		},
		want: want{create: []string{svcKey, sliceKey}},
	}, {
		// Row 2: desired, exists, owned, the same → nothing.
		name: "desired, existing, owned and equal is left alone",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			svc, es := mirror(t, "test", "podinfo")
			return []mapper.Object{svc, es}, []mapper.Object{svc.DeepCopy(), es.DeepCopy()}
		},
	}, {
		// Row 2: desired, exists, owned, differs → Update.
		name: "desired, existing, owned and different is updated",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			svc, es := mirror(t, "test", "podinfo")
			stale := edited(es, func(es *discoveryv1.EndpointSlice) {
				es.Endpoints[0].Conditions.Ready = ptr.To(false)
			})
			return []mapper.Object{svc, es}, []mapper.Object{svc.DeepCopy(), stale}
		},
		want: want{update: []string{sliceKey}},
	}, {
		// Row 3: desired, exists, not owned → Conflict, never touched.
		name: "desired and existing but not ours is a conflict",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			_, es := mirror(t, "test", "podinfo")
			theirs := foreign(es)
			return []mapper.Object{es}, []mapper.Object{theirs}
		},
		want: want{conflicts: []string{"Conflict " + "EndpointSlice test/podinfo-east-gw4"}},
	}, {
		// Row 3 again: ownership is per scope, so another Link's mirror at
		// the same key is not ours either.
		name: "desired and owned by another Link is a conflict",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			svc, _ := mirror(t, "test", "podinfo")
			other := edited(svc, func(s *corev1.Service) { s.Labels[crossmapv1.LabelLink] = "east-2" })
			return []mapper.Object{svc}, []mapper.Object{other}
		},
		want: want{conflicts: []string{"Conflict Service test/podinfo-east"}},
	}, {
		// Row 4: not desired, exists, owned → Delete, sorted by
		// namespace and name whatever the order of current.
		name: "owned and no longer desired is deleted in name order",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			svc, es := mirror(t, "test", "podinfo")
			cart, cartSlice := mirror(t, "shop", "cart")
			return nil, []mapper.Object{es, cartSlice, svc, cart}
		},
		want: want{delete: []string{
			"Service shop/cart-east",
			"EndpointSlice.discovery.k8s.io shop/cart-east-gw4",
			svcKey,
			sliceKey,
		}},
	}, {
		// Row 5: not desired, exists, not owned → nothing.
		name: "not desired and not ours is left alone",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			svc, es := mirror(t, "test", "podinfo")
			return nil, []mapper.Object{foreign(svc), foreign(es)}
		},
	}, {
		// The EndpointSlice rule: crossmap never adds endpoints to
		// somebody else's Service, so the slice of a conflicted Service is
		// not created...
		name: "slice of a conflicted Service is not created",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			svc, es := mirror(t, "test", "podinfo")
			return []mapper.Object{svc, es}, []mapper.Object{foreign(svc)}
		},
		want: want{conflicts: []string{"Conflict Service test/podinfo-east"}},
	}, {
		// ... and a slice crossmap wrote before for it is deleted.
		// Regression: the slice used to be neither updated nor deleted, and
		// kept feeding endpoints to the Service somebody else took over.
		name: "owned slice of a conflicted Service is deleted",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			svc, es := mirror(t, "test", "podinfo")
			stale := edited(es, func(es *discoveryv1.EndpointSlice) {
				es.Endpoints[0].Addresses = []string{"172.18.0.99"}
			})
			return []mapper.Object{svc, es}, []mapper.Object{foreign(svc), stale}
		},
		want: want{
			delete:    []string{"EndpointSlice.discovery.k8s.io test/podinfo-east-gw4"},
			conflicts: []string{"Conflict Service test/podinfo-east"},
		},
	}, {
		// ... while the other Services of the same scope go ahead.
		name: "conflict on one Service leaves the others alone",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			svc, es := mirror(t, "test", "podinfo")
			cart, cartSlice := mirror(t, "test", "cart")
			return []mapper.Object{cart, cartSlice, svc, es}, []mapper.Object{foreign(svc)}
		},
		want: want{
			create:    []string{"Service test/cart-east", "EndpointSlice.discovery.k8s.io test/cart-east-gw4"},
			conflicts: []string{"Conflict Service test/podinfo-east"},
		},
	}, {
		// A conflicted slice does not take its Service down with it.
		name: "conflict on a slice leaves its Service alone",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			svc, es := mirror(t, "test", "podinfo")
			return []mapper.Object{svc, es}, []mapper.Object{foreign(es)}
		},
		want: want{
			create:    []string{svcKey},
			conflicts: []string{"Conflict EndpointSlice test/podinfo-east-gw4"},
		},
	}, {
		// Every row at once, for the gateway role's kinds.
		name: "gateway objects, every row at once",
		objects: func(t *testing.T) (desired, current []mapper.Object) {
			m, host := gateway(t)
			staleHost := edited(host, func(h *ambv3.Host) { h.Spec.Hostname = "*" })
			gone := edited(m, func(m *ambv3.Mapping) { m.Name = "retired-gateway" })
			theirs := foreign(edited(m, func(m *ambv3.Mapping) { m.Name = "user-mapping" }))
			return []mapper.Object{m, host}, []mapper.Object{staleHost, gone, theirs}
		},
		owned: func(obj mapper.Object) bool {
			return labels.SelectorFromSet(mapper.GatewaySelector()).Matches(labels.Set(obj.GetLabels()))
		},
		want: want{
			create: []string{"Mapping.getambassador.io test/podinfo-gateway"},
			update: []string{"Host.getambassador.io emissary/crossmap-gateway"},
			delete: []string{"Mapping.getambassador.io test/retired-gateway"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			desired, current := tc.objects(t)
			owned := tc.owned
			if owned == nil {
				owned = ownedBy(eastLink)
			}
			p := mapper.Diff(desired, current, owned)
			check := func(what string, got, want []string) {
				t.Helper()
				if !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", what, got, want)
				}
			}
			check("Create", keys(p.Create), tc.want.create)
			check("Update", keys(p.Update), tc.want.update)
			check("Delete", keys(p.Delete), tc.want.delete)
			check("Conflicts", conflictRefs(p.Conflicts), tc.want.conflicts)
			wantEmpty := len(tc.want.create)+len(tc.want.update)+len(tc.want.delete) == 0
			if p.Empty() != wantEmpty {
				t.Errorf("Empty() = %v, want %v (plan %v)", p.Empty(), wantEmpty, p)
			}
		})
	}
}

// TestDiffCreatesDesiredObjects checks that Diff hands back the rendered
// objects themselves, so the apply stage writes exactly what was rendered,
// spec hash included.
func TestDiffCreatesDesiredObjects(t *testing.T) {
	svc, es := mirror(t, "test", "podinfo")
	p := mapper.Diff([]mapper.Object{svc, es}, nil, ownedBy(eastLink))
	if len(p.Create) != 2 || p.Create[0] != mapper.Object(svc) || p.Create[1] != mapper.Object(es) {
		t.Fatalf("Create = %v, want the two rendered objects", keys(p.Create))
	}
}

func TestPlanEmpty(t *testing.T) {
	svc, _ := mirror(t, "test", "podinfo")
	conflict := mapper.Problem{Reason: mapper.ReasonConflict, Object: mapper.ObjectRef{Kind: "Service", Namespace: "test", Name: "podinfo-east"}}
	for _, tc := range []struct {
		name string
		plan mapper.Plan
		want bool
	}{
		{"zero plan", mapper.Plan{}, true},
		{"conflicts are not writes", mapper.Plan{Conflicts: []mapper.Problem{conflict}}, true},
		{"create", mapper.Plan{Create: []mapper.Object{svc}}, false},
		{"update", mapper.Plan{Update: []mapper.Object{svc}}, false},
		{"delete", mapper.Plan{Delete: []mapper.Object{svc}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.plan.Empty(); got != tc.want {
				t.Errorf("Empty() = %v, want %v", got, tc.want)
			}
		})
	}
}

// asStored is obj as the API server hands it back: defaulted and with the
// metadata every stored object has. Other writers' labels and annotations
// are added too: crossmap does not own them.
func asStored[T mapper.Object](obj T, defaults func(T)) T {
	return edited(obj, func(o T) {
		o.SetUID(types.UID("6c1f3a52-0000-4000-8000-0000000000aa"))
		o.SetResourceVersion("48213")
		o.SetGeneration(3)
		o.SetCreationTimestamp(metav1.Unix(1700000000, 0))
		o.SetManagedFields([]metav1.ManagedFieldsEntry{{
			Manager: crossmapv1.ManagedBy, Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1",
		}})
		l := o.GetLabels()
		l["team"] = "payments"
		o.SetLabels(l)
		a := o.GetAnnotations()
		a["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
		a["example.com/audited"] = "true"
		o.SetAnnotations(a)
		if defaults != nil {
			defaults(o)
		}
	})
}

// emptied is a copy of es with no endpoints, as rendered for an empty
// remote slice.
func emptied(es *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	c := es.DeepCopy()
	c.Endpoints = []discoveryv1.Endpoint{}
	return c
}

func TestDiffers(t *testing.T) {
	svc, es := mirror(t, "test", "podinfo")
	m, host := gateway(t)
	objs, _, _ := mapper.Import(mapper.ImportSnapshot{
		Link: mapper.LinkRef{Namespace: "crossmap-system", Name: "east", Cluster: "east", Mode: crossmapv1.ModeFlat, CreateNamespaces: true},
		Services: []*corev1.Service{
			mappertest.Service("shop", "cart", mappertest.Port("http", 80, 8080)),
		},
	})
	ns, ok := objs[0].(*corev1.Namespace)
	if !ok {
		t.Fatalf("Import rendered %T first, want the Namespace", objs[0])
	}
	serviceDefaults := func(s *corev1.Service) {
		s.Spec.ClusterIP = "10.96.44.2"
		s.Spec.ClusterIPs = []string{"10.96.44.2"}
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
		s.Spec.SessionAffinity = corev1.ServiceAffinityNone
		s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
		for i := range s.Spec.Ports {
			s.Spec.Ports[i].Protocol = corev1.ProtocolTCP
		}
	}

	for _, tc := range []struct {
		name             string
		desired, current mapper.Object
		want             bool
	}{
		// Unchanged: whatever the API server or other writers add is not
		// crossmap's, so it is no reason to write.
		{"Service unchanged", svc, svc.DeepCopy(), false},
		{"Service after defaulting and others' labels", svc, asStored(svc, serviceDefaults), false},
		{"Service read back from storage", svc, readBack(t, asStored(svc, serviceDefaults)), false},
		{"EndpointSlice after defaulting and others' labels", es, asStored(es, nil), false},
		{"EndpointSlice read back from storage", es, readBack(t, asStored(es, nil)), false},
		{"Namespace after defaulting", ns, asStored(ns, func(n *corev1.Namespace) {
			n.Labels[corev1.LabelMetadataName] = n.Name
			n.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
			n.Status.Phase = corev1.NamespaceActive
		}), false},
		{"Mapping with status and others' annotations", m, asStored(m, func(m *ambv3.Mapping) {
			m.Status = &ambv3.MappingStatus{State: "Running"}
		}), false},
		{"Host with status", host, asStored(host, func(h *ambv3.Host) {
			h.Status.State = ambv3.HostState_Ready
			h.Status.TLSCertificateSource = ambv3.HostTLSCertificateSource_None
		}), false},
		// Regression: a mirror of an empty remote slice renders
		// endpoints: [], which the API server stores and returns as null;
		// Differs used to see that as a change and rewrite it forever.
		{"empty EndpointSlice read back as null", mapper.Stamp(emptied(es)), readBack(t, asStored(mapper.Stamp(emptied(es)), nil)), false},
		{"empty list against a missing one", mapper.Stamp(emptied(es)), asStored(mapper.Stamp(emptied(es)), func(es *discoveryv1.EndpointSlice) {
			es.Endpoints = nil
		}), false},
		// A field crossmap never sets is another writer's, by Differs'
		// contract, even on a mirror: a selector added by hand is not
		// crossmap's to remove.
		{"Service selector added by someone else", svc, edited(svc, func(s *corev1.Service) {
			s.Spec.Selector = map[string]string{"app": "podinfo"}
		}), false},

		// The spec hash: a different one means crossmap rendered something
		// else last time, whatever the fields say.
		{"hash changed", svc, edited(svc, func(s *corev1.Service) {
			s.Annotations[crossmapv1.AnnotationSpecHash] = "0123456789abcdef"
		}), true},
		{"hash removed", es, edited(es, func(es *discoveryv1.EndpointSlice) {
			delete(es.Annotations, crossmapv1.AnnotationSpecHash)
		}), true},

		// Fields crossmap owns, edited by someone else: the hash still
		// matches, the fields do not.
		{"endpoint address changed", es, asStored(es, func(es *discoveryv1.EndpointSlice) {
			es.Endpoints[0].Addresses = []string{"172.18.0.99"}
		}), true},
		{"endpoint readiness changed", es, edited(es, func(es *discoveryv1.EndpointSlice) {
			es.Endpoints[0].Conditions.Ready = ptr.To(false)
		}), true},
		{"endpoint added", es, edited(es, func(es *discoveryv1.EndpointSlice) {
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"172.18.0.4"}})
		}), true},
		{"slice port removed", es, edited(es, func(es *discoveryv1.EndpointSlice) {
			es.Ports = es.Ports[:1]
		}), true},
		{"Service port removed", svc, asStored(svc, func(s *corev1.Service) {
			serviceDefaults(s)
			s.Spec.Ports = s.Spec.Ports[:1]
		}), true},
		{"Service port number changed", svc, edited(svc, func(s *corev1.Service) {
			s.Spec.Ports[1].Port = 9999
		}), true},
		{"Service type changed", svc, edited(svc, func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
		}), true},
		{"label value changed", svc, asStored(svc, func(s *corev1.Service) {
			serviceDefaults(s)
			s.Labels[crossmapv1.LabelSourceName] = "cart"
		}), true},
		{"label removed", es, edited(es, func(es *discoveryv1.EndpointSlice) {
			delete(es.Labels, discoveryv1.LabelManagedBy)
		}), true},
		{"Mapping service changed", m, edited(m, func(m *ambv3.Mapping) {
			m.Spec.Service = "evil.test:80"
		}), true},
		{"Mapping owner reference removed", m, edited(m, func(m *ambv3.Mapping) {
			m.OwnerReferences = nil
		}), true},
		{"Host mapping selector changed", host, edited(host, func(h *ambv3.Host) {
			h.Spec.MappingSelector.MatchLabels = map[string]string{"app": "anything"}
		}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mapper.Differs(tc.desired, tc.current); got != tc.want {
				t.Errorf("Differs() = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestDiffMemo: the memo answers exactly as Differs, and asks again when
// either side changes.
func TestDiffMemo(t *testing.T) {
	_, es := mirror(t, "test", "podinfo")
	var memo mapper.DiffMemo
	stored := asStored(es, nil)
	stored.SetResourceVersion("10")
	if memo.Differs(es, stored) {
		t.Fatal("an unchanged object differs")
	}
	// Someone edits a field crossmap owns: a new resourceVersion, and the
	// memo must not answer from the old one.
	drifted := edited(stored, func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].Addresses = []string{"172.18.0.99"} })
	drifted.SetResourceVersion("11")
	if !memo.Differs(es, drifted) {
		t.Fatal("an edited object does not differ")
	}
	// crossmap renders something else: a new hash, same current object.
	changed := edited(es, func(es *discoveryv1.EndpointSlice) {})
	changed.Annotations[crossmapv1.AnnotationSpecHash] = "0123456789abcdef"
	if !memo.Differs(changed, stored) {
		t.Fatal("a changed desired object does not differ")
	}
	if memo.Differs(es, stored) {
		t.Fatal("the memo lost the first answer")
	}
}
