package demo

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/cli"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/edgeserver"
	"github.com/crossmap/crossmap/internal/netns"
	"github.com/crossmap/crossmap/internal/testenv"
)

// Options configure a demo run.
type Options struct {
	// Once runs the story, checks every step and returns; otherwise the
	// demo keeps running for exploration until ctx ends.
	Once bool
	// Host, when set, is what the host side set up for exploring: once
	// the story has run, the demo serves it (see Host) and prints what to
	// try.
	Host *Host
	// Requests is how many requests each traffic step sends.
	Requests int
	// InsecureCleartext runs every crossmap with --insecure-cleartext:
	// no trust anchor, and cleartext between the clusters.
	InsecureCleartext bool
	// Out receives the story; Log receives the components' logs.
	Out io.Writer
	Log logr.Logger
}

// The story's names and addresses. Every address is created by the demo on
// the loopback device of its own network namespace.
const (
	appNamespace  = "test"
	ctrlNamespace = "crossmap-system"
	service       = "podinfo"
	devCluster    = "dev-alice"
	devHeader     = "x-crossmap-cluster"
)

var (
	podAddr = map[string]netip.Addr{
		"east":     netip.MustParseAddr("10.246.1.1"),
		"west":     netip.MustParseAddr("10.246.2.1"),
		devCluster: netip.MustParseAddr("10.246.3.1"),
	}
	// remoteClusters are linked from west, in the order the story tells.
	remoteClusters = []string{"east", devCluster}
	gatewayAddr    = map[string]netip.Addr{
		"east":     netip.MustParseAddr("10.246.0.20"),
		devCluster: netip.MustParseAddr("10.246.0.30"),
	}
)

// gatewayPort is where the gateways listen, TLS and cleartext alike; the
// Links probe it too, at Emissary's readiness path.
const gatewayPort = crossmapv1.DefaultGatewayPort

// The probe of the Links is the default one: fast enough for the story
// (issue 13), so that what the demo times is what a user gets.
const (
	probePeriod    = crossmapv1.DefaultProbePeriod
	probeThreshold = crossmapv1.DefaultFailureThreshold
)

// Run plays the story. It returns an error naming the first step that did
// not behave as expected.
func Run(ctx context.Context, o Options) error {
	if !netns.Inside() {
		return errors.New("the demo must run inside its own network namespace (crossmap demo re-runs itself there)")
	}
	o.Requests = cmp.Or(o.Requests, 200)
	d := &demo{o: o, clients: map[string]client.Client{}, gateways: map[string]func(){}, ctls: map[string]*controller.Controller{}}
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer d.cleanup()

	d.say("Starting three real control planes: west (edge traffic enters here), east, and %s (a developer's cluster)...", devCluster)
	bed, err := testenv.Start(ctx, []string{"west", "east", devCluster}, testenv.Options{})
	if err != nil {
		return fmt.Errorf("start control planes: %w", err)
	}
	d.bed = bed
	d.say("  up in %s", time.Since(start).Round(100*time.Millisecond))
	for _, p := range bed.Planes {
		if d.clients[p.Name], err = p.Client(controller.NewScheme()); err != nil {
			return err
		}
	}
	type step struct {
		title string
		run   func(context.Context) error
	}
	steps := []step{{"Start podinfo \"pods\" in every cluster, on addresses of the demo's own network", d.startPods}}
	if o.InsecureCleartext {
		steps = append(steps,
			step{"INSECURE: cross-cluster mTLS is off (--insecure-cleartext)", d.insecure},
			step{"Start crossmap in every cluster (--insecure-cleartext), the east and dev-alice gateways, and west's edge", d.startCrossmap})
	} else {
		steps = append(steps,
			step{"Cross-cluster mTLS is on: one trust anchor, the same Secret in every cluster (crossmap trust generate)", d.shareTrustAnchor},
			step{"Start crossmap in every cluster, the east and dev-alice gateways, and west's edge", d.startCrossmap},
			step{"Each crossmap issues its cluster's certificates from the trust anchor", d.certificates})
	}
	steps = append(steps,
		step{"Apply manifests/samples: east's to east and dev-alice, west's to west", d.applySamples},
		step{"Wire the samples to this machine: pod endpoints, read-only credentials, gateway addresses, a dev route", d.wire},
		step{fmt.Sprintf("%d requests through west's edge", o.Requests), d.split})
	if o.InsecureCleartext {
		steps = append(steps, step{"INSECURE: a cleartext request to east's gateway, from outside any linked cluster, is answered", d.cleartext})
	} else {
		steps = append(steps, step{"A cleartext request to east's gateway is refused, and so is TLS without a certificate", d.cleartext})
	}
	steps = append(steps,
		step{"east's gateway dies: failover to west", d.failover},
		step{"east's gateway is back: the configured split returns", d.restore},
		step{"A drill: what if east were lost, then losing it for real for 3s (crossmap drill)", d.drill},
		step{"A request with " + devHeader + ": " + devCluster + " lands in the dev cluster", d.devRoute},
		step{"crossmap explain: where west's edge sends a request, and why", d.explain},
		step{"crossmap status", d.status})
	for _, step := range steps {
		d.n++
		d.say("\n[%d] %s", d.n, step.title)
		if err := step.run(ctx); err != nil {
			if ctx.Err() != nil {
				// A signal, not a misbehaving step.
				return fmt.Errorf("interrupted at step %d (%s): %w", d.n, step.title, ctx.Err())
			}
			return fmt.Errorf("step %d (%s): %w", d.n, step.title, err)
		}
	}
	d.say("\nAll steps behaved as expected (%s in all).", time.Since(start).Round(100*time.Millisecond))
	if o.Once {
		return nil
	}
	if o.Host != nil {
		if err := d.openToHost(ctx, *o.Host); err != nil {
			return err
		}
		d.explore(*o.Host)
	} else {
		d.say("\nStill running: west's edge is http://%s, its status API http://%s (inside the demo's network namespace). Press Ctrl-C to stop.", d.edgeAddr, d.statusAddr)
	}
	<-ctx.Done()
	d.say("\nStopping: edges, controllers, podinfo, control planes.")
	return nil
}

type demo struct {
	o       Options
	n       int
	bed     *testenv.Bed
	clients map[string]client.Client
	stops   []func()
	// mu guards gateways, which the control endpoint changes too.
	mu       sync.Mutex
	gateways map[string]func()
	// ctls are the clusters' controllers, by cluster.
	ctls map[string]*controller.Controller
	// anchor is the trust anchor every cluster shares; nil with
	// --insecure-cleartext.
	anchor   *corev1.Secret
	edgeAddr string
	// statusAddr is west's status API.
	statusAddr string
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.o.Out, format+"\n", args...) }

func (d *demo) cleanup() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
	for cluster := range gatewayAddr {
		d.stopGateway(cluster)
	}
	if d.bed != nil {
		if err := d.bed.Stop(); err != nil {
			d.say("stopping control planes: %v", err)
			return
		}
	}
	d.say("Stopped: nothing the demo started is running any more.")
}

// run starts f in the background and remembers how to stop it.
func (d *demo) run(ctx context.Context, name string, f func(context.Context) error) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f(ctx); err != nil {
			d.o.Log.Error(err, "Component stopped", "component", name)
		}
	}()
	stop := func() { cancel(); <-done }
	return stop
}

func (d *demo) startPods(ctx context.Context) error {
	dataDir, err := os.MkdirTemp("", "crossmap-demo-")
	if err != nil {
		return err
	}
	d.stops = append(d.stops, func() { os.RemoveAll(dataDir) })
	for _, cluster := range []string{"west", "east", devCluster} {
		addr := podAddr[cluster]
		if err := netns.AddAddress(addr); err != nil {
			return err
		}
		p, err := testenv.StartPodinfo(ctx, addr, cluster, filepath.Join(dataDir, cluster))
		if err != nil {
			return err
		}
		d.stops = append(d.stops, p.Stop)
		d.say("  %-9s podinfo on %s", cluster, p.Addr)
	}
	return nil
}

func (d *demo) startCrossmap(ctx context.Context) error {
	for _, plane := range d.bed.Planes {
		cfg := controller.DefaultConfig()
		cfg.ClusterName = plane.Name
		cfg.Namespace = ctrlNamespace
		cfg.RemoteHealthPeriod = time.Second
		cfg.StatusAddr = "127.0.0.1:0"
		cfg.InsecureCleartext = d.o.InsecureCleartext
		ctl, err := controller.New(plane.Config, cfg, controller.Deps{Registry: prometheus.NewRegistry(), Logger: d.o.Log.WithName(plane.Name)})
		if err != nil {
			return fmt.Errorf("create %s controller: %w", plane.Name, err)
		}
		addr, err := ctl.Status.Listen()
		if err != nil {
			return err
		}
		logger := d.o.Log.WithName(plane.Name)
		d.stops = append(d.stops, d.run(log.IntoContext(ctx, logger), "crossmap "+plane.Name, ctl.Manager.Start))
		d.ctls[plane.Name] = ctl
		if plane.Name == "west" {
			d.statusAddr = addr.String()
		}
		d.say("  crossmap %-9s status API http://%s", plane.Name, addr)
	}
	for _, cluster := range remoteClusters {
		if err := d.startGateway(ctx, cluster); err != nil {
			return err
		}
	}
	edge, err := edgeserver.New(d.bed.Plane("west").Config, edgeserver.Config{Listen: "127.0.0.1:0", StatusAddr: "0", Name: "west-edge"}, d.o.Log.WithName("west-edge"))
	if err != nil {
		return err
	}
	d.edgeAddr = edge.Addr().String()
	d.stops = append(d.stops, d.run(ctx, "west edge", edge.Start))
	d.say("  west edge    http://%s (crossmap edge: routes like Emissary)", d.edgeAddr)
	return nil
}

// startGateway runs crossmap's dev edge as cluster's cross-cluster gateway.
func (d *demo) startGateway(ctx context.Context, cluster string) error {
	addr := gatewayAddr[cluster]
	if err := netns.AddAddress(addr); err != nil {
		return err
	}
	// The gateway is the dev edge on the gateway port: it serves the
	// gateway Host crossmap writes, which terminates mutual TLS and
	// rejects cleartext (or, with --insecure-cleartext, routes it).
	gw, err := edgeserver.New(d.bed.Plane(cluster).Config, edgeserver.Config{
		Listen: netip.AddrPortFrom(addr, gatewayPort).String(), StatusAddr: "0", Name: cluster + "-gateway",
	}, d.o.Log.WithName(cluster+"-gateway"))
	if err != nil {
		return err
	}
	stop := d.run(ctx, cluster+" gateway", gw.Start)
	d.mu.Lock()
	d.gateways[cluster] = stop
	d.mu.Unlock()
	if d.o.InsecureCleartext {
		d.say("  %-9s gateway %s (cleartext)", cluster, gw.Addr())
	} else {
		d.say("  %-9s gateway %s (mTLS: only clusters holding a certificate from the trust anchor get through)", cluster, gw.Addr())
	}
	return nil
}

func (d *demo) applySamples(ctx context.Context) error {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	for _, cluster := range []string{"west", "east", devCluster} {
		if err := d.ensureNamespace(ctx, cluster, ctrlNamespace); err != nil {
			return err
		}
		sample := map[bool]string{true: "west", false: "east"}[cluster == "west"]
		objs, err := testenv.Kustomize(filepath.Join(root, "manifests", "samples", sample))
		if err != nil {
			return err
		}
		if err := testenv.Apply(ctx, d.clients[cluster], "crossmap-demo", objs); err != nil {
			return err
		}
		var names []string
		for _, o := range objs {
			names = append(names, o.GetKind()+" "+o.GetName())
		}
		d.say("  %-9s manifests/samples/%s: %s", cluster, sample, strings.Join(names, ", "))
	}
	d.say("  (no kubelet runs here: the podinfo processes above stand in for the Deployments' pods)")
	return nil
}

// wire does what a real cluster and its operators would: it writes the
// EndpointSlices of podinfo's pods (no kube-controller-manager runs here),
// links west to east and dev-alice with read-only credentials
// (`crossmap link` in real life), points the Links at the gateways of this
// network with a fast probe, and adds the developer's dev route.
func (d *demo) wire(ctx context.Context) error {
	for _, cluster := range []string{"west", "east", devCluster} {
		addr := podAddr[cluster]
		if err := d.clients[cluster].Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: appNamespace, Name: service + "-pods", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](9898)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		}); err != nil {
			return err
		}
	}
	west := d.clients["west"]
	for _, cluster := range remoteClusters {
		kubeconfig, err := d.bed.Plane(cluster).ReadOnlyKubeconfig(ctx, "crossmap-west")
		if err != nil {
			return err
		}
		if err := west.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNamespace, Name: cluster + "-kubeconfig"},
			Data:       map[string][]byte{crossmapv1.DefaultCredentialsKey: kubeconfig},
		}); err != nil {
			return err
		}
		link := &crossmapv1.Link{ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNamespace, Name: cluster}}
		if err := west.Get(ctx, client.ObjectKeyFromObject(link), link); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		link.Spec.ClusterName = cluster
		link.Spec.CredentialsSecret = crossmapv1.SecretKeyRef{Name: cluster + "-kubeconfig"}
		link.Spec.Gateway = crossmapv1.GatewaySpec{Addresses: []string{gatewayAddr[cluster].String()}, Port: gatewayPort}
		// Every field of the probe is the default: Emissary's readiness
		// path on the gateway port, through the gateway's mTLS like
		// traffic, at the default period, timeout and threshold. The
		// identity the gateway must present is the default too,
		// <cluster>.crossmap-gateway.svc.cluster.local.
		link.Spec.Probe = &crossmapv1.ProbeSpec{}
		if link.ResourceVersion == "" {
			err = west.Create(ctx, link)
		} else {
			err = west.Update(ctx, link)
		}
		if err != nil {
			return err
		}
		scheme := "https"
		if d.o.InsecureCleartext {
			scheme = "http"
		}
		d.say("  west: Link %s -> gateway %s:%d, probe %s://%s:%d%s every %s", cluster, gatewayAddr[cluster], gatewayPort,
			scheme, gatewayAddr[cluster], gatewayPort, crossmapv1.DefaultProbePath, probePeriod)
	}
	var m ambv3.Mapping
	if err := west.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: service}, &m); err != nil {
		return err
	}
	m.Annotations["crossmap.io/dev-routes"] = devCluster
	if err := west.Update(ctx, &m); err != nil {
		return err
	}
	d.say("  west: Mapping test/podinfo annotated crossmap.io/split=%s, failover=%s, dev-routes=%s",
		m.Annotations["crossmap.io/split"], m.Annotations["crossmap.io/failover"], devCluster)
	if err := d.wait(ctx, "mirrors in west", func(ctx context.Context) error {
		for _, cluster := range remoteClusters {
			var es discoveryv1.EndpointSliceList
			if err := west.List(ctx, &es, client.InNamespace(appNamespace), client.MatchingLabels{discoveryv1.LabelServiceName: service + "-" + cluster}); err != nil {
				return err
			}
			if len(es.Items) == 0 || len(es.Items[0].Endpoints) == 0 || !ptr.Deref(es.Items[0].Endpoints[0].Conditions.Ready, false) {
				return fmt.Errorf("mirror %s-%s not ready yet", service, cluster)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for _, cluster := range remoteClusters {
		d.say("  crossmap wrote Service test/%s-%s -> %s's gateway (ready)", service, cluster, cluster)
	}
	if !d.o.InsecureCleartext {
		if err := d.mutualTLS(ctx); err != nil {
			return err
		}
	}
	return d.wait(ctx, "generated Mappings", func(ctx context.Context) error {
		var sib, dev ambv3.Mapping
		if err := west.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: service + "-east"}, &sib); err != nil {
			return err
		}
		if err := west.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: service + "-" + devCluster + "-dev"}, &dev); err != nil {
			return err
		}
		if ptr.Deref(sib.Spec.Weight, -1) != 50 {
			return fmt.Errorf("weight %v", sib.Spec.Weight)
		}
		if d.o.InsecureCleartext != (sib.Spec.TLS == "") {
			return fmt.Errorf("Mapping %s has tls %q", sib.Name, sib.Spec.TLS)
		}
		d.say("  crossmap wrote Mapping test/%s: service %s, weight %d, host_rewrite %s", sib.Name, sib.Spec.Service, *sib.Spec.Weight, sib.Spec.HostRewrite)
		if sib.Spec.TLS != "" {
			d.say("    with tls %s: west's edge presents west's client certificate to east's gateway and accepts only %s", sib.Spec.TLS, ingress.GatewayIdentity("east"))
		}
		d.say("  crossmap wrote Mapping test/%s: %s: %s -> %s", dev.Name, devHeader, devCluster, dev.Spec.Service)
		return nil
	})
}

// hit sends n requests through west's edge and counts the answers by the
// cluster podinfo says it runs in.
func (d *demo) hit(n int, header map[string]string) map[string]int {
	counts := map[string]int{}
	c := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DialContext: (&net.Dialer{Timeout: time.Second}).DialContext}}
	for range n {
		counts[d.ask(c, header)]++
	}
	return counts
}

func (d *demo) ask(c *http.Client, header map[string]string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.edgeAddr+"/podinfo/", nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "error"
	}
	defer resp.Body.Close()
	var body struct {
		Message string `json:"message"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return "error"
	}
	return body.Message
}

func (d *demo) report(counts map[string]int) {
	var parts []string
	for _, k := range []string{"west", "east", devCluster, "error"} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	d.say("  answered by: %s", strings.Join(parts, ", "))
}

func (d *demo) split(ctx context.Context) error {
	// The edge picks up the generated Mappings within moments.
	if err := d.wait(ctx, "both clusters answering", func(context.Context) error {
		if c := d.hit(40, nil); c["east"] == 0 || c["west"] == 0 || c["error"] > 0 {
			return fmt.Errorf("answers %v", c)
		}
		return nil
	}); err != nil {
		return err
	}
	n := d.o.Requests
	c := d.hit(n, nil)
	d.report(c)
	// 50/50 within five standard deviations.
	sigma := 0.5 * math.Sqrt(float64(n))
	if c["error"] > 0 || math.Abs(float64(c["east"])-float64(n)/2) > 5*sigma {
		return fmt.Errorf("split %v is not 50/50", c)
	}
	return nil
}

func (d *demo) failover(ctx context.Context) error {
	killed := time.Now()
	d.stopGateway("east")
	d.say("  east's gateway stopped at %s; probing every %s, dead after %d failures", killed.Format("15:04:05.000"), probePeriod, probeThreshold)
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var doneAt time.Time
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		// Failover is done when 20 requests in a row stay in west.
		first := time.Now()
		for range 20 {
			if d.ask(c, nil) != "west" {
				return false, nil
			}
		}
		doneAt = first
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("no failover within 30s: %w", err)
	}
	d.say("  failover took %s: from the gateway dying to the first of 20 requests in a row answered by west", doneAt.Sub(killed).Round(time.Millisecond))
	counts := d.hit(d.o.Requests, nil)
	d.report(counts)
	if counts["west"] != d.o.Requests {
		return fmt.Errorf("after failover %v, want every request answered by west", counts)
	}
	return nil
}

func (d *demo) restore(ctx context.Context) error {
	if err := d.startGateway(ctx, "east"); err != nil {
		return err
	}
	return d.split(ctx)
}

// drill answers the what-if of losing east, then drills it for a few
// seconds: traffic leaves east without a failed request and comes back by
// itself at the drill's end.
func (d *demo) drill(ctx context.Context) error {
	o := cli.DefaultDrillOptions()
	o.Lose, o.Namespace = "east", ctrlNamespace
	d.say("  $ crossmap drill --lose east")
	if err := d.runDrill(ctx, o, time.Now()); err != nil {
		return err
	}
	o.Apply, o.For, o.By = true, 3*time.Second, "demo"
	d.say("  $ crossmap drill --lose east --for %s --apply --by demo", o.For)
	applied := time.Now()
	if err := d.runDrill(ctx, o, applied); err != nil {
		return err
	}
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var movedAt time.Time
	if err := d.wait(ctx, "traffic to leave east", func(context.Context) error {
		// Moved when 20 requests in a row stay in west.
		first := time.Now()
		for range 20 {
			if a := d.ask(c, nil); a != "west" {
				return fmt.Errorf("answered by %s", a)
			}
		}
		movedAt = first
		return nil
	}); err != nil {
		return err
	}
	var link crossmapv1.Link
	if err := d.clients["west"].Get(ctx, client.ObjectKey{Namespace: ctrlNamespace, Name: "east"}, &link); err != nil {
		return fmt.Errorf("read the drill: %w", err)
	}
	if link.Spec.Drill == nil {
		return errors.New("no drill recorded on Link east")
	}
	until := link.Spec.Drill.Until.Time
	var backAt time.Time
	if err := d.wait(ctx, "east to answer after the drill", func(context.Context) error {
		if time.Now().Before(until) {
			return errors.New("the drill is on")
		}
		at := time.Now()
		if a := d.ask(c, nil); a != "east" {
			return fmt.Errorf("answered by %s", a)
		}
		backAt = at
		return nil
	}); err != nil {
		return err
	}
	d.say("  traffic left east %s after --apply; the drill ended at %s by itself and east answered again %s later",
		movedAt.Sub(applied).Round(time.Millisecond), until.Format("15:04:05"), backAt.Sub(until).Round(time.Millisecond))
	return nil
}

// runDrill runs crossmap drill against west, its output indented as the
// story's.
func (d *demo) runDrill(ctx context.Context, o cli.DrillOptions, now time.Time) error {
	var out bytes.Buffer
	err := cli.RunDrill(ctx, d.clients["west"], o, now, &out)
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		if line == "" {
			d.say("")
			continue
		}
		d.say("    %s", line)
	}
	return err
}

func (d *demo) devRoute(ctx context.Context) error {
	h := map[string]string{devHeader: devCluster}
	return d.wait(ctx, "dev route", func(context.Context) error {
		c := d.hit(10, h)
		if c[devCluster] != 10 {
			return fmt.Errorf("answers %v", c)
		}
		d.report(c)
		return nil
	})
}

func (d *demo) status(ctx context.Context) error {
	return d.wait(ctx, "status API", func(ctx context.Context) error {
		v, _, err := cli.FetchStatus(ctx, http.DefaultClient, "http://"+d.statusAddr)
		if err != nil {
			return err
		}
		if len(v.Links) != 2 || len(v.Routes) != 1 {
			return fmt.Errorf("status shows %d links and %d routes", len(v.Links), len(v.Routes))
		}
		want := "mutual"
		if d.o.InsecureCleartext {
			want = "cleartext"
		}
		if v.Trust.Mode != want {
			return fmt.Errorf("status shows trust mode %q, want %q", v.Trust.Mode, want)
		}
		for _, l := range v.Links {
			if l.TLS == nil || l.TLS.Mode != want || (want == "mutual" && !l.TLS.Verified) {
				return fmt.Errorf("status shows Link %s TLS %+v, want %s", l.Name, l.TLS, want)
			}
		}
		if err := cli.WriteStatusTable(d.o.Out, v); err != nil {
			return err
		}
		d.say("")
		if want == "cleartext" {
			d.say("trust: cleartext (--insecure-cleartext): no certificates, no identity checks")
			return nil
		}
		d.say("trust: mutual TLS from %s (valid until %s)", v.Trust.TrustAnchor, v.Trust.TrustAnchorExpiry.UTC().Format(timeFormat))
		for _, l := range v.Links {
			d.say("  link %-9s gateway presents %s, valid until %s; verified (%s)",
				l.Cluster, l.TLS.Identity, l.TLS.GatewayCertExpiry.UTC().Format(timeFormat), l.TLS.Reason)
		}
		return nil
	})
}

// wait polls f until it succeeds, or gives up after a minute.
func (d *demo) wait(ctx context.Context, what string, f func(context.Context) error) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		last = f(ctx)
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", what, errors.Join(last, err))
	}
	return nil
}
