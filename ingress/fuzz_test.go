package ingress

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The seed corpus is in testdata/fuzz/FuzzParseRouteAnnotations and
// testdata/fuzz/FuzzParseService; the f.Add calls below are the plain cases.

// FuzzParseRouteAnnotations parses the four route annotations; present says,
// one bit per annotation in the order of the arguments, which ones are set,
// so that a set but empty value is covered too. The validity checks use
// Kubernetes' own validation, not this package's.
func FuzzParseRouteAnnotations(f *testing.F) {
	f.Add("east=50", "off", "dev-alice", "true", uint8(0b1111))
	f.Add("east=30,dev=10", "weighted", "dev-alice,dev-bob", "false", uint8(0b1111))
	f.Add("east=60,dev=50", "local-first", "", "", uint8(0b0011))
	f.Add("", "on", "", "", uint8(0b0010))
	f.Fuzz(func(t *testing.T, split, failover, devRoutes, trafficSplit string, present uint8) {
		ann := map[string]string{}
		for i, kv := range []struct{ key, value string }{
			{AnnotationSplit, split},
			{AnnotationFailover, failover},
			{AnnotationDevRoutes, devRoutes},
			{AnnotationTrafficSplit, trafficSplit},
		} {
			if present&(1<<i) != 0 {
				ann[kv.key] = kv.value
			}
		}
		ra, err := ParseRouteAnnotations(ann)
		if err != nil {
			var ae *AnnotationError
			if !errors.As(err, &ae) {
				t.Fatalf("error is not an *AnnotationError: %v", err)
			}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				ae := e.(*AnnotationError)
				if v, ok := ann[ae.Annotation]; !ok || v != ae.Value {
					t.Fatalf("error names annotation %s=%q, which is not in %v", ae.Annotation, ae.Value, ann)
				}
			}
			return
		}
		if len(ann) == 0 {
			if ra.Split != nil || ra.DevRoutes != nil || ra.TrafficSplit != nil || ra.Failover != "" {
				t.Fatalf("no annotations parsed to %+v, want the zero value", ra)
			}
			return
		}

		total := 0
		for i, cw := range ra.Split {
			if cw.Weight < 0 || cw.Weight > 100 {
				t.Errorf("cluster %s has weight %d, outside 0..100", cw.Cluster, cw.Weight)
			}
			total += cw.Weight
			checkClusterName(t, cw.Cluster)
			if slices.ContainsFunc(ra.Split[:i], func(o ClusterWeight) bool { return o.Cluster == cw.Cluster }) {
				t.Errorf("cluster %s is in the split twice: %v", cw.Cluster, ra.Split)
			}
		}
		if total > 100 {
			t.Errorf("split %v adds up to %d, above 100", ra.Split, total)
		}
		if _, ok := ann[AnnotationSplit]; ok != (len(ra.Split) > 0) {
			t.Errorf("split annotation present: %v, but parsed split is %v", ok, ra.Split)
		}
		for i, c := range ra.DevRoutes {
			checkClusterName(t, c)
			if slices.Contains(ra.DevRoutes[:i], c) {
				t.Errorf("dev route %s is listed twice: %v", c, ra.DevRoutes)
			}
		}
		if _, ok := ann[AnnotationDevRoutes]; ok != (len(ra.DevRoutes) > 0) {
			t.Errorf("dev-routes annotation present: %v, but parsed dev routes are %v", ok, ra.DevRoutes)
		}
		switch ra.Failover {
		case FailoverOff:
		case FailoverWeighted, FailoverLocalFirst:
			if len(ra.Split) == 0 {
				t.Errorf("failover %s without a split", ra.Failover)
			}
		default:
			t.Errorf("failover is %q", ra.Failover)
		}
		if _, ok := ann[AnnotationTrafficSplit]; ok != (ra.TrafficSplit != nil) {
			t.Errorf("traffic-split annotation present: %v, but parsed value is %v", ok, ra.TrafficSplit)
		}

		// The split, rendered canonically, parses back to itself.
		if len(ra.Split) > 0 {
			items := make([]string, len(ra.Split))
			for i, cw := range ra.Split {
				items[i] = cw.Cluster + "=" + strconv.Itoa(cw.Weight)
			}
			rendered := strings.Join(items, ",")
			again, err := ParseRouteAnnotations(map[string]string{AnnotationSplit: rendered})
			if err != nil {
				t.Fatalf("rendered split %q does not parse: %v", rendered, err)
			}
			if !slices.Equal(again.Split, ra.Split) {
				t.Fatalf("rendered split %q parses to %v, want %v", rendered, again.Split, ra.Split)
			}
		}
	})
}

func checkClusterName(t *testing.T, name string) {
	t.Helper()
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 || len(name) > MaxClusterNameLength {
		t.Errorf("cluster %q is not a valid cluster name: %v", name, errs)
	}
}

// FuzzParseService parses a Mapping's service field. A parse that succeeds
// must give a Service name, namespace and port Kubernetes accepts, and read
// back from its rendering, from any namespace.
func FuzzParseService(f *testing.F) {
	f.Add("podinfo", "test")
	f.Add("https://podinfo.test.svc.cluster.local:8443", "test")
	f.Add("[::1]:80", "test")
	f.Add("podinfo.test:9898/api", "test")
	f.Fuzz(func(t *testing.T, service, ns string) {
		ref, err := ParseService(service, ns)
		if err != nil {
			var se *ServiceError
			if !errors.As(err, &se) || se.Service != service {
				t.Fatalf("error is not a *ServiceError for %q: %v", service, err)
			}
			return
		}
		if errs := validation.IsDNS1035Label(ref.Name); len(errs) > 0 {
			t.Errorf("name %q is not a Service name: %v", ref.Name, errs)
		}
		if errs := validation.IsDNS1123Label(ref.Namespace); len(errs) > 0 {
			t.Errorf("namespace %q is not a namespace: %v", ref.Namespace, errs)
		}
		if ref.Port < 1 || ref.Port > 65535 {
			t.Errorf("port %d is outside 1..65535", ref.Port)
		}
		switch ref.Scheme {
		case "", "http", "https":
		default:
			t.Errorf("scheme is %q", ref.Scheme)
		}
		for _, from := range []string{ns, "elsewhere"} {
			again, err := ParseService(ref.String(), from)
			if err != nil {
				t.Fatalf("ParseService(%q, %q) error: %v", ref.String(), from, err)
			}
			if again != ref {
				t.Fatalf("ParseService(%q, %q) = %+v, want %+v", ref.String(), from, again, ref)
			}
		}
	})
}
