package demo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/internal/testenv"
)

// Options configure a demo run.
type Options struct {
	// Once runs the story, checks every step and returns; otherwise the
	// demo keeps running for exploration until ctx ends.
	Once bool
	// StatusAddr is where west's status API listens.
	StatusAddr string
	// Out receives the story; Log receives the controllers' logs.
	Out io.Writer
	Log logr.Logger
}

// The names the story uses, as in the Linkerd/Ambassador recipe.
const (
	appNamespace  = "test"
	ctrlNamespace = "crossmap-system"
	service       = "podinfo"
	// gatewayIP stands for east's gateway address. It is in TEST-NET-1
	// (RFC 5737) and the demo's Link has no probe, so nothing is ever sent
	// to it: this part of the story is about the control plane.
	gatewayIP = "192.0.2.10"
)

// Run plays the story. It returns an error naming the first step that did
// not behave as expected.
func Run(ctx context.Context, o Options) error {
	d := &demo{o: o}
	start := time.Now()
	d.say("Starting two real control planes, east and west (kube-apiserver + etcd, Emissary CRDs)...")
	bed, err := testenv.Start(ctx, []string{"east", "west"}, testenv.Options{})
	if err != nil {
		return fmt.Errorf("start control planes: %w", err)
	}
	defer func() {
		if err := bed.Stop(); err != nil {
			d.say("stopping control planes: %v", err)
		}
	}()
	d.say("  control planes up in %s", time.Since(start).Round(100*time.Millisecond))
	scheme := controller.NewScheme()
	if d.east, err = bed.Plane("east").Client(scheme); err != nil {
		return err
	}
	if d.west, err = bed.Plane("west").Client(scheme); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, step := range []struct {
		title string
		run   func(context.Context) error
	}{
		{"Start crossmap in both clusters", func(ctx context.Context) error { return d.startControllers(ctx, bed) }},
		{"east: export podinfo (kubectl label svc podinfo -n test crossmap.io/export=true)", d.export},
		{"west: link east with read-only credentials (a Link plus its Secret)", func(ctx context.Context) error { return d.link(ctx, bed) }},
		{"west: podinfo-east mirrors east's podinfo, pointing at east's gateway", d.mirrored},
		{"east: podinfo's pods go unready; the mirror's endpoint follows", d.unready},
		{"east: a port is added to podinfo; the mirror follows", d.addPort},
		{"crossmap status", d.status},
	} {
		d.n++
		d.say("\n[%d] %s", d.n, step.title)
		if err := step.run(ctx); err != nil {
			return fmt.Errorf("step %d (%s): %w", d.n, step.title, err)
		}
	}
	d.say("\nAll steps behaved as expected (%s in all).", time.Since(start).Round(100*time.Millisecond))
	if o.Once {
		return nil
	}
	d.say("\nStill running for you to explore:\n  status API: http://%s/status\n  west kubeconfig host: %s\nPress Ctrl-C to stop and clean up.", d.statusAddr, bed.Plane("west").Config.Host)
	<-ctx.Done()
	d.say("\nStopping: controllers, then control planes.")
	return nil
}

type demo struct {
	o          Options
	n          int
	east, west client.Client
	westCtl    *controller.Controller
	statusAddr string
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.o.Out, format+"\n", args...) }

func (d *demo) startControllers(ctx context.Context, bed *testenv.Bed) error {
	for _, c := range []client.Client{d.east, d.west} {
		for _, ns := range []string{appNamespace, ctrlNamespace} {
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				return err
			}
		}
	}
	for _, plane := range bed.Planes {
		cfg := controller.DefaultConfig()
		cfg.ClusterName = plane.Name
		cfg.Namespace = ctrlNamespace
		cfg.RemoteHealthPeriod = time.Second
		cfg.StatusAddr = "127.0.0.1:0"
		if plane.Name == "west" {
			cfg.StatusAddr = cmp.Or(d.o.StatusAddr, "127.0.0.1:0")
		}
		ctl, err := controller.New(plane.Config, cfg, controller.Deps{Registry: prometheus.NewRegistry(), Logger: d.o.Log.WithName(plane.Name)})
		if err != nil {
			return fmt.Errorf("create %s controller: %w", plane.Name, err)
		}
		addr, err := ctl.Status.Listen()
		if err != nil {
			return fmt.Errorf("listen for %s status API: %w", plane.Name, err)
		}
		if plane.Name == "west" {
			d.westCtl, d.statusAddr = ctl, addr.String()
		}
		logger := d.o.Log.WithName(plane.Name)
		go func() {
			if err := ctl.Manager.Start(log.IntoContext(ctx, logger)); err != nil {
				logger.Error(err, "Controller stopped")
			}
		}()
		d.say("  crossmap %-4s running (status API http://%s)", plane.Name, addr)
	}
	return nil
}

func (d *demo) export(ctx context.Context) error {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNamespace, Name: service,
			Labels: map[string]string{crossmapv1.ExportLabel: "true"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": service},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9898, TargetPort: intstr.FromInt32(9898)}},
		},
	}
	if err := d.east.Create(ctx, svc); err != nil {
		return err
	}
	// No kube-controller-manager runs here, so the demo writes the
	// EndpointSlice that Kubernetes would write for podinfo's two pods.
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: appNamespace, Name: service + "-7xk2p", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](9898)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"10.244.1.6"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
		},
	}
	if err := d.east.Create(ctx, es); err != nil {
		return err
	}
	return d.wait(ctx, "east's gateway Mapping", func(ctx context.Context) error {
		var m ambv3.Mapping
		if err := d.east.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: service + "-gateway"}, &m); err != nil {
			return err
		}
		d.say("  east wrote Mapping %s/%s: hostname %s -> service %s", m.Namespace, m.Name, m.Spec.Hostname, m.Spec.Service)
		return nil
	})
}

func (d *demo) link(ctx context.Context, bed *testenv.Bed) error {
	kubeconfig, err := bed.Plane("east").ReadOnlyKubeconfig(ctx, "crossmap-west")
	if err != nil {
		return err
	}
	if err := d.west.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNamespace, Name: "east-kubeconfig"},
		Data:       map[string][]byte{crossmapv1.DefaultCredentialsKey: kubeconfig},
	}); err != nil {
		return err
	}
	return d.west.Create(ctx, &crossmapv1.Link{
		ObjectMeta: metav1.ObjectMeta{Namespace: ctrlNamespace, Name: "east"},
		Spec: crossmapv1.LinkSpec{
			ClusterName:       "east",
			CredentialsSecret: crossmapv1.SecretKeyRef{Name: "east-kubeconfig"},
			Gateway:           crossmapv1.GatewaySpec{Addresses: []string{gatewayIP}, Port: crossmapv1.DefaultGatewayPort},
		},
	})
}

// mirror describes west's podinfo-east in one line per object.
func (d *demo) mirror(ctx context.Context) (string, error) {
	var svc corev1.Service
	if err := d.west.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: service + "-east"}, &svc); err != nil {
		return "", err
	}
	var ports []string
	for _, p := range svc.Spec.Ports {
		ports = append(ports, fmt.Sprintf("%s:%d", p.Name, p.Port))
	}
	var list discoveryv1.EndpointSliceList
	if err := d.west.List(ctx, &list, client.InNamespace(appNamespace), client.MatchingLabels{discoveryv1.LabelServiceName: svc.Name}); err != nil {
		return "", err
	}
	var eps []string
	for _, es := range list.Items {
		for _, ep := range es.Endpoints {
			eps = append(eps, fmt.Sprintf("%s:%d ready=%t", ep.Addresses[0], ptr.Deref(es.Ports[0].Port, 0), ptr.Deref(ep.Conditions.Ready, true)))
		}
	}
	return fmt.Sprintf("Service %s ports=[%s] selector=%v; endpoints=[%s]", svc.Name, strings.Join(ports, " "), svc.Spec.Selector, strings.Join(eps, " ")), nil
}

func (d *demo) waitMirror(ctx context.Context, want ...string) error {
	return d.wait(ctx, "mirror "+strings.Join(want, ", "), func(ctx context.Context) error {
		got, err := d.mirror(ctx)
		if err != nil {
			return err
		}
		for _, w := range want {
			if !strings.Contains(got, w) {
				return fmt.Errorf("mirror is %s", got)
			}
		}
		d.say("  west: %s", got)
		return nil
	})
}

func (d *demo) mirrored(ctx context.Context) error {
	return d.waitMirror(ctx, "ports=[http:9898]", fmt.Sprintf("endpoints=[%s:%d ready=true]", gatewayIP, crossmapv1.DefaultGatewayPort))
}

func (d *demo) setReady(ctx context.Context, ready bool) error {
	var es discoveryv1.EndpointSlice
	if err := d.east.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: service + "-7xk2p"}, &es); err != nil {
		return err
	}
	for i := range es.Endpoints {
		es.Endpoints[i].Conditions.Ready = ptr.To(ready)
	}
	return d.east.Update(ctx, &es)
}

func (d *demo) unready(ctx context.Context) error {
	if err := d.setReady(ctx, false); err != nil {
		return err
	}
	if err := d.waitMirror(ctx, "ready=false"); err != nil {
		return err
	}
	d.say("  east: podinfo's pods are ready again")
	if err := d.setReady(ctx, true); err != nil {
		return err
	}
	return d.waitMirror(ctx, "ready=true")
}

func (d *demo) addPort(ctx context.Context) error {
	var svc corev1.Service
	if err := d.east.Get(ctx, client.ObjectKey{Namespace: appNamespace, Name: service}, &svc); err != nil {
		return err
	}
	svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "grpc", Port: 9999, TargetPort: intstr.FromInt32(9999)})
	if err := d.east.Update(ctx, &svc); err != nil {
		return err
	}
	return d.waitMirror(ctx, "ports=[http:9898 grpc:9999]")
}

func (d *demo) status(ctx context.Context) error {
	return d.wait(ctx, "status API", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.statusAddr+"/status", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var v status.View
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
			return err
		}
		if len(v.Links) != 1 || !slices.Contains(v.Links[0].MirroredServices, appNamespace+"/"+service+"-east") {
			return fmt.Errorf("status shows %+v", v.Links)
		}
		tw := tabwriter.NewWriter(d.o.Out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  LINK\tCLUSTER\tREACHABLE\tGATEWAY\tSERVICES\tPROBLEMS")
		for _, l := range v.Links {
			fmt.Fprintf(tw, "  %s\t%s\t%t\t%s\t%d\t%d\n", l.Key(), l.Cluster, l.RemoteReachable, strings.Join(l.GatewayAddresses, ","), len(l.MirroredServices), len(v.Problems))
		}
		return tw.Flush()
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
