package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/edgeserver"
	"github.com/crossmap/crossmap/internal/netns"
	"github.com/crossmap/crossmap/internal/testenv"
)

// podinfo runs the real podinfo binary on addr:9898, an address created
// inside the test's network namespace, answering with message.
func (h *harness) podinfo(addr netip.Addr, message string) (stop func()) {
	h.t.Helper()
	if err := netns.AddAddress(addr); err != nil {
		h.t.Fatal(err)
	}
	p, err := testenv.StartPodinfo(context.Background(), addr, message, h.t.TempDir())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(p.Stop)
	return p.Stop
}

// edge runs crossmap's dev edge against plane, the proxy on listen.
func (h *harness) edge(plane *testenv.Plane, name, listen, statusAddr string, ambassadorID []string) (*edgeserver.Server, func()) {
	h.t.Helper()
	srv, err := edgeserver.New(plane.Config, edgeserver.Config{Listen: listen, StatusAddr: statusAddr, AmbassadorID: ambassadorID, Name: name},
		testr.NewWithOptions(h.t, testr.Options{Verbosity: 0}).WithName(name))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("edge %s: %v", name, err)
			}
		}
	}
	h.t.Cleanup(stop)
	return srv, stop
}

// get sends one GET and decodes a podinfo answer into v (when not nil).
func get(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	return do(req, v)
}

func do(req *http.Request, v any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", req.URL, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	if v != nil {
		return json.Unmarshal(body, v)
	}
	return nil
}

// story is the data path of DESIGN.md: podinfo in east and west, east's
// gateway (crossmap's dev edge on east) and west's edge, an annotated
// Mapping splitting west's edge traffic. Traffic between the clusters is
// mutual TLS, as crossmap sets it up by default: west's edge originates it
// with west's client certificate, east's gateway terminates it with east's
// gateway certificate and requires a client certificate from the shared
// trust anchor.
type story struct {
	h *harness
	// cluster is the Link's clusterName: mirrors and siblings are
	// <name>-<cluster>.
	cluster  string
	edgeURL  string
	stopGW   func()
	gwAddr   netip.Addr
	gwID     []string
	userMaps []client.Object
	// east and west are the controllers, for tests that stop or replace
	// one.
	east, west *runningCtl
	westEdge   *edgeserver.Server
}

// storyOptions adjust a story.
type storyOptions struct {
	// annotations of the user's Mapping, given the Link's clusterName.
	annotations func(cluster string) map[string]string
	// defaultIdentity names the Link after east's --cluster-name and
	// leaves spec.gateway.identity unset, so that the identity checked is
	// the default one crossmap issues to east's gateway. Otherwise the
	// Link's clusterName is "east" and the identity is named.
	defaultIdentity bool
	east, west      func(*controller.Config)
	link            func(*crossmapv1.Link)
	// logs, when set, keeps what the controllers log.
	logs *logLines
}

func newStory(t *testing.T, annotations map[string]string) *story {
	return newStoryWith(t, storyOptions{annotations: func(string) map[string]string { return annotations }})
}

func newStoryWith(t *testing.T, o storyOptions) *story {
	h := newBareHarness(t)
	s := &story{h: h, cluster: "east", gwAddr: netip.MustParseAddr("10.246.0.20"),
		// East's own Emissary ID, shared by its crossmap and its gateway
		// edge: every test's east crossmap writes a gateway Host for
		// *.svc.cluster.local, and Envoy (so the dev edge) serves one TLS
		// certificate per server name, so a gateway must see its own
		// test's Host only.
		gwID: []string{"gw-" + h.id}}
	if o.defaultIdentity {
		s.cluster = h.eastCluster
	}
	h.logs = o.logs
	s.east, s.west = h.startControllers(func(c *controller.Config) {
		c.AmbassadorID = s.gwID
		if o.east != nil {
			o.east(c)
		}
	}, o.west)
	if err := netns.AddAddress(s.gwAddr); err != nil {
		t.Fatal(err)
	}
	h.podinfo(netip.MustParseAddr("10.246.1.1"), "east")
	h.podinfo(netip.MustParseAddr("10.246.2.1"), "west")
	h.exportService("podinfo", []int32{9898}, "10.246.1.1")
	h.localService("podinfo", 9898, "10.246.2.1")
	// An unexported Service in east, reachable in east but not through the
	// gateway: cluster isolation.
	h.create(h.east, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "private"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http-0", Port: 9898}}},
	})
	h.create(h.east, h.slice("private", []int32{9898}, []string{"10.246.1.1"}, true))

	s.startGateway()
	h.link(func(l *crossmapv1.Link) {
		l.Spec.Gateway.Addresses = []string{s.gwAddr.String()}
		if o.defaultIdentity {
			l.Spec.ClusterName, l.Spec.Gateway.Identity = s.cluster, ""
		}
		// The default probe: Emissary's check_ready on the gateway port,
		// through the gateway's mutual TLS like the traffic.
		l.Spec.Probe = &crossmapv1.ProbeSpec{Period: metav1.Duration{Duration: 100 * time.Millisecond},
			Timeout: metav1.Duration{Duration: 500 * time.Millisecond}, FailureThreshold: 2}
		if o.link != nil {
			o.link(l)
		}
	})
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
	var annotations map[string]string
	if o.annotations != nil {
		annotations = o.annotations(s.cluster)
	}
	m := h.userMapping("podinfo", "podinfo."+h.ns+":9898", annotations, nil)
	s.userMaps = append(s.userMaps, m)
	s.westEdge, _ = h.edge(bed.Plane("west"), "west-edge", "127.0.0.1:0", "127.0.0.1:0", []string{h.id})
	s.edgeURL = "http://" + s.westEdge.Addr().String()
	return s
}

// startGateway starts east's gateway, crossmap's dev edge on east, on
// gwAddr:4143 (its status on gwAddr:8877).
func (s *story) startGateway() {
	_, s.stopGW = s.h.edge(bed.Plane("east"), "east-gateway", netip.AddrPortFrom(s.gwAddr, 4143).String(), netip.AddrPortFrom(s.gwAddr, 8877).String(), s.gwID)
}

// sibling is the name of the generated Mapping to the story's cluster.
func (s *story) sibling() string { return "podinfo-" + s.cluster }

// hit sends n requests through west's edge and counts answers by podinfo
// message; failed requests are counted under "error".
func (s *story) hit(n int, header map[string]string) map[string]int {
	counts := map[string]int{}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second}).DialContext, DisableKeepAlives: true}}
	for range n {
		req, _ := http.NewRequest(http.MethodGet, s.edgeURL+"/podinfo/", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			counts["error"]++
			continue
		}
		var body struct {
			Message string `json:"message"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
			counts["error"]++
		} else {
			counts[body.Message]++
		}
		resp.Body.Close()
	}
	return counts
}

// TestDataPathSplitFailoverRestore: real requests through west's edge
// split 50/50 between west's and east's podinfo; when east's gateway dies,
// once failover has happened no request reaches east and none fails; when
// it is back, the split is restored.
func TestDataPathSplitFailoverRestore(t *testing.T) {
	s := newStory(t, map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"})
	h := s.h
	h.wantWeight("split configured", "podinfo-east", 50)
	h.eventually("both clusters answer through the edge", func(context.Context) error {
		c := s.hit(40, nil)
		if c["east"] == 0 || c["west"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})

	// 50/50 within statistical bounds: 400 requests, σ = 10, allow ±5σ.
	c := s.hit(400, nil)
	t.Logf("split over 400 requests: %v", c)
	if c["error"] > 0 || c["east"] < 150 || c["east"] > 250 || c["east"]+c["west"] != 400 {
		t.Fatalf("split %v is not 50/50 within bounds", c)
	}

	s.stopGW()
	h.wantWeight("failover: east gets nothing", "podinfo-east", 0)
	h.eventually("edge stopped sending to east", func(context.Context) error {
		if c := s.hit(20, nil); c["east"] > 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})
	c = s.hit(200, nil)
	if c["west"] != 200 {
		t.Fatalf("after failover: %v, want every request answered by west", c)
	}

	s.startGateway()
	h.wantWeight("restored", "podinfo-east", 50)
	h.eventually("east answers again", func(context.Context) error {
		if c := s.hit(40, nil); c["east"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	})
	s.wantUserObjectsUnchanged()
}

// TestDataPathDevRoute: a request with the dev header lands in the named
// cluster; the others follow the split.
func TestDataPathDevRoute(t *testing.T) {
	s := newStory(t, map[string]string{"crossmap.io/split": "east=0", "crossmap.io/dev-routes": "east"})
	h := s.h
	h.eventually("dev route", func(context.Context) error {
		if c := s.hit(20, map[string]string{"x-crossmap-cluster": "east"}); c["east"] != 20 {
			return fmt.Errorf("with the header: %v", c)
		}
		return nil
	})
	if c := s.hit(50, nil); c["west"] != 50 {
		t.Fatalf("without the header (east=0): %v, want all west", c)
	}
	s.wantUserObjectsUnchanged()
}

// TestDataPathClusterIsolation: east's gateway serves only exported
// Services; an unexported one is not reachable through it, even with west's
// client certificate.
func TestDataPathClusterIsolation(t *testing.T) {
	s := newStory(t, map[string]string{"crossmap.io/split": "east=50"})
	h := s.h
	gw := netip.AddrPortFrom(s.gwAddr, 4143)
	var cfg *tls.Config
	h.eventually("exported Service reachable through the gateway", func(ctx context.Context) error {
		var err error
		if cfg, err = h.westClientTLS(ctx); err != nil {
			return err
		}
		if code, msg, err := h.gatewayGet(ctx, gw, cfg, "podinfo"); err != nil || code != http.StatusOK || msg != "east" {
			return fmt.Errorf("HTTP %d, message %q, err %v", code, msg, err)
		}
		return nil
	})
	code, msg, err := h.gatewayGet(t.Context(), gw, cfg, "private")
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusNotFound {
		t.Fatalf("unexported Service through the gateway: HTTP %d (message %q), want 404", code, msg)
	}
}

// wantUserObjectsUnchanged checks the user's Mappings are as they created them.
func (s *story) wantUserObjectsUnchanged() {
	s.h.t.Helper()
	for _, o := range s.userMaps {
		cur := o.DeepCopyObject().(client.Object)
		if err := s.h.west.Get(context.Background(), client.ObjectKeyFromObject(o), cur); err != nil {
			s.h.t.Fatal(err)
		}
		if cur.GetResourceVersion() != o.GetResourceVersion() {
			s.h.t.Errorf("user object %s was written (resourceVersion %s -> %s)", client.ObjectKeyFromObject(o), o.GetResourceVersion(), cur.GetResourceVersion())
		}
	}
}
