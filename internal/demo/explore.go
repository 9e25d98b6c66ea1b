package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/crossmap/crossmap/internal/netns"
)

// Host is what the process the user started, outside the demo's network
// namespace, has set up for exploring: host loopback addresses that it
// relays to Unix sockets in Dir, which the demo serves from inside. The
// namespace's loopback is its own, so this is the only way in from the host
// (see netns.Expose).
type Host struct {
	// Dir holds the sockets: edge.sock, status.sock, control.sock and
	// api-<cluster>.sock.
	Dir string `json:"dir"`
	// Edge, Status and Control are the host addresses of west's edge,
	// west's status API and the demo's control endpoint.
	Edge    string `json:"edge"`
	Status  string `json:"status"`
	Control string `json:"control"`
	// APIs are the host addresses of the clusters' API servers, by cluster.
	APIs map[string]string `json:"apis"`
	// Kubeconfig is where the demo writes one kubeconfig with a context per
	// cluster, whose servers are APIs.
	Kubeconfig string `json:"kubeconfig"`
	// Crossmap is the crossmap binary the suggested commands run.
	Crossmap string `json:"crossmap"`
}

// Socket is the path of the socket called name in h.Dir.
func (h Host) Socket(name string) string { return filepath.Join(h.Dir, name+".sock") }

// APISocket is the socket of cluster's API server.
func (h Host) APISocket(cluster string) string { return h.Socket("api-" + cluster) }

// Clusters are the demo's clusters, in the order the story introduces them.
var Clusters = []string{"west", "east", devCluster}

// openToHost serves everything Host promises: the edge, the status API,
// each API server, the control endpoint, and the kubeconfig.
func (d *demo) openToHost(ctx context.Context, h Host) error {
	bridges := map[string]string{h.Socket("edge"): d.edgeAddr, h.Socket("status"): d.statusAddr}
	for _, p := range d.bed.Planes {
		u, err := url.Parse(p.Config.Host)
		if err != nil {
			return fmt.Errorf("parse API server address of %s: %w", p.Name, err)
		}
		bridges[h.APISocket(p.Name)] = u.Host
	}
	for socket, target := range bridges {
		if err := netns.Bridge(ctx, socket, target); err != nil {
			return fmt.Errorf("bridge %s to %s: %w", socket, target, err)
		}
	}
	l, err := net.Listen("unix", h.Socket("control"))
	if err != nil {
		return fmt.Errorf("listen for the demo's control endpoint: %w", err)
	}
	srv := &http.Server{Handler: d.control(ctx)}
	go func() { _ = srv.Serve(l) }()
	go func() { <-ctx.Done(); srv.Close() }()
	return d.writeKubeconfig(h)
}

// writeKubeconfig writes one kubeconfig with a context per cluster, named
// after it, for an admin (system:masters) user of each. The API servers
// serve a certificate for 127.0.0.1, the address they listen on inside the
// namespace; the host address is on 127.0.0.1 too (another port), so the
// certificate verifies from the host.
func (d *demo) writeKubeconfig(h Host) error {
	merged := clientcmdapi.NewConfig()
	for _, p := range d.bed.Planes {
		addr, ok := h.APIs[p.Name]
		if !ok {
			return fmt.Errorf("write kubeconfig: no host address for %s's API server", p.Name)
		}
		raw, err := p.Kubeconfig("demo-admin", []string{"system:masters"})
		if err != nil {
			return err
		}
		kc, err := clientcmd.Load(raw)
		if err != nil {
			return fmt.Errorf("write kubeconfig: read %s's: %w", p.Name, err)
		}
		for name, c := range kc.Clusters {
			c.Server = "https://" + addr
			merged.Clusters[name] = c
		}
		for name, a := range kc.AuthInfos {
			merged.AuthInfos[name] = a
		}
		for name, c := range kc.Contexts {
			merged.Contexts[name] = c
		}
	}
	merged.CurrentContext = "west"
	if err := clientcmd.WriteToFile(*merged, h.Kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", h.Kubeconfig, err)
	}
	return nil
}

// control is the demo's control endpoint: a gateway is a goroutine of the
// demo, so only the demo can kill and revive it.
func (d *demo) control(ctx context.Context) http.Handler {
	mux := http.NewServeMux()
	gateway := func(w http.ResponseWriter, r *http.Request) (string, bool) {
		cluster := r.PathValue("cluster")
		if _, ok := gatewayAddr[cluster]; !ok {
			http.Error(w, fmt.Sprintf("no gateway %q: the gateways are %s", cluster, strings.Join(remoteClusters, ", ")), http.StatusNotFound)
			return "", false
		}
		return cluster, true
	}
	mux.HandleFunc("POST /gateways/{cluster}/kill", func(w http.ResponseWriter, r *http.Request) {
		cluster, ok := gateway(w, r)
		if !ok {
			return
		}
		if !d.stopGateway(cluster) {
			fmt.Fprintf(w, "%s's gateway is already dead\n", cluster)
			return
		}
		d.say("  (control) %s's gateway killed", cluster)
		fmt.Fprintf(w, "%s's gateway killed: west's crossmap takes it for dead after %d failed probes (%s apart) and sends its share elsewhere\n",
			cluster, probeThreshold, probePeriod)
	})
	mux.HandleFunc("POST /gateways/{cluster}/revive", func(w http.ResponseWriter, r *http.Request) {
		cluster, ok := gateway(w, r)
		if !ok {
			return
		}
		d.mu.Lock()
		_, running := d.gateways[cluster]
		d.mu.Unlock()
		if running {
			fmt.Fprintf(w, "%s's gateway is already alive\n", cluster)
			return
		}
		if err := d.startGateway(ctx, cluster); err != nil {
			http.Error(w, fmt.Sprintf("revive %s's gateway: %v", cluster, err), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s's gateway revived: the first probe it passes gives it its share back\n", cluster)
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "POST /gateways/{east,dev-alice}/kill   stop that cluster's gateway")
		fmt.Fprintln(w, "POST /gateways/{east,dev-alice}/revive start it again")
	})
	return mux
}

// Gesture is one thing to try while the demo runs: commands to paste on the
// host, and what they show.
type Gesture struct {
	Title    string
	Commands []Command
}

// Command is one shell command and what it shows.
type Command struct {
	Line string
	Says string
}

// Gestures are the things to try the closing text suggests, with h's
// addresses. The demo's test runs exactly these commands.
func Gestures(h Host) []Gesture {
	kubectl := "kubectl --kubeconfig " + h.Kubeconfig
	west := kubectl + " --context west -n " + appNamespace
	annotate := west + " annotate mapping " + service + " --overwrite "
	requests := fmt.Sprintf(`for i in $(seq 100); do curl -s http://%s/podinfo/ | grep -o '"message": "[^"]*"'; done | sort | uniq -c`, h.Edge)
	status := h.Crossmap + " status --server http://" + h.Status
	weights := status + ` -o json | grep -B1 -A1 '"configured"'`
	drill := h.Crossmap + " drill --kubeconfig " + h.Kubeconfig + " --context west"
	devRequest := fmt.Sprintf(`curl -s -H '%s: %s' http://%s/podinfo/ | grep -o '"message": "[^"]*"'`, devHeader, devCluster, h.Edge)
	return []Gesture{
		{"Look around each cluster with kubectl", []Command{
			{kubectl + " --context east get svc,endpointslices -n " + appNamespace, "east's podinfo, exported (crossmap.io/export=true)"},
			{west + " get svc,mappings", "west's mirrors podinfo-east and podinfo-dev-alice, and the Mappings crossmap wrote next to yours"},
		}},
		{"Change the split: east gets 80%", []Command{
			{annotate + "crossmap.io/split=east=80", "crossmap rewrites podinfo-east's weight within moments"},
			{requests, "about 80 answers from east, 20 from west"},
			{weights, "podinfo-east: configured 80, effective 80"},
		}},
		{"Take the developer's route away, and add it back", []Command{
			{west + " annotate mapping " + service + " crossmap.io/dev-routes-", "no dev route now"},
			{devRequest, "west or east: the header no longer picks a cluster"},
			{annotate + "crossmap.io/dev-routes=" + devCluster, "the dev route is back"},
			{devRequest, devCluster + ": requests with the header go to the developer's cluster"},
		}},
		{"Kill east's gateway, then revive it", []Command{
			{"curl -s -X POST http://" + h.Control + "/gateways/east/kill", "east's gateway stops"},
			{requests, "every answer from west: failover"},
			{status, "east: ALIVE no (gateway)"},
			{"curl -s -X POST http://" + h.Control + "/gateways/east/revive", "east's gateway is back"},
			{requests, "east has its share again"},
		}},
		{"Break the annotation and see the problem", []Command{
			{annotate + "crossmap.io/split=east=150", "a weight over 100"},
			{status, "Problems: InvalidAnnotation on Mapping test/podinfo"},
			{west + " get events --field-selector reason=InvalidAnnotation", "the Warning Event on the Mapping"},
			{requests, "the split as before: a bad annotation never costs traffic (the route is held)"},
			{annotate + "crossmap.io/split=east=50", "fixed: the problem goes away"},
		}},
		{"Rehearse losing east: a drill", []Command{
			{drill + " --lose east", "what if east were lost now: test/podinfo local 50 -> 100, east 50 -> 0, fails over; nothing changes"},
			{drill + " --lose east --for 2m --apply", "the drill starts: east is drained for routing for two minutes"},
			{requests, "every answer from west while the drill is on"},
			{status, "Drills: east active: drained for routing, by you, until when"},
			{drill + " --stop", "ended early (or wait two minutes): east has its share again"},
			{requests, "east has its share again"},
		}},
	}
}

// explore prints where everything is and the gestures to try.
func (d *demo) explore(h Host) {
	d.say("\nStill running for you to explore, from this host:")
	d.say("  west's edge         curl http://%s/podinfo/", h.Edge)
	d.say("  west's status page  http://%s/   (or: %s status --server http://%s)", h.Status, h.Crossmap, h.Status)
	d.say("  kubectl             export KUBECONFIG=%s   (contexts: %s)", h.Kubeconfig, strings.Join(Clusters, ", "))
	d.say("\nThings to try (paste the lines after $):")
	for i, g := range Gestures(h) {
		d.say("\n%c) %s", 'a'+i, g.Title)
		for _, c := range g.Commands {
			d.say("  $ %s\n      # %s", c.Line, c.Says)
		}
	}
	d.say("\nPress Ctrl-C (or send SIGTERM) to stop and remove everything.")
}

// stopGateway stops cluster's gateway; false if it was not running.
func (d *demo) stopGateway(cluster string) bool {
	d.mu.Lock()
	stop, ok := d.gateways[cluster]
	delete(d.gateways, cluster)
	d.mu.Unlock()
	if ok {
		stop()
	}
	return ok
}
