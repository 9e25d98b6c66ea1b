package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/edge"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/netns"
	"github.com/crossmap/crossmap/internal/status"
	"github.com/crossmap/crossmap/internal/testenv"
)

// The compound-fault suite (issue 13): each configuration or control-plane
// fault crossed with each health event of east's gateway, on the data path
// (real podinfo, the dev edge as west's edge and as east's gateway, real
// control planes), with the Link's default probe. For every cell it times
// the health event to traffic fully moved, and checks that no request fails
// after that, that /status agrees with the Link and the Mappings, and that
// nothing is lost.

// Addresses of the suite, created inside the e2e network namespace: east's
// gateway (the Links name it, port 4143, where compoundSwitch listens; the
// dev edge that is the gateway listens on 4144) and the podinfo "pods".
var (
	compoundGateway = netip.MustParseAddr("10.246.30.1")
	compoundEastPod = netip.MustParseAddr("10.246.31.1")
	compoundWestPod = netip.MustParseAddr("10.246.32.1")
)

const (
	// compoundTarget is issue 13's target: traffic moves within a second
	// of the health event.
	compoundTarget = time.Second
	// compoundSettle is how long traffic runs after it moved, to see that
	// nothing fails then and (gateway dies) none goes back.
	compoundSettle = 2 * time.Second
	// compoundWindow bounds the traffic after the health event: a cell
	// whose traffic has not moved by then is reported as not moved.
	compoundWindow = 10 * time.Second
	// compoundRate is the pace of each of compoundWorkers request loops.
	compoundRate    = 10 * time.Millisecond
	compoundWorkers = 2
)

// compoundFault is one configuration or control-plane fault: apply puts it
// in place (and returns once it is in effect), restore takes it away.
type compoundFault struct {
	name string
	// leaderElect runs west as two leader-elected replicas.
	leaderElect bool
	apply       func(c *compoundCell)
	restore     func(c *compoundCell)
}

// compoundEvent is a health event of east's gateway.
type compoundEvent struct {
	name string
	// dies: the gateway is alive before and dies; else it is dead (and
	// failed over) before and comes back.
	dies bool
}

// compoundRow is one cell's line in the table.
type compoundRow struct {
	cell     string
	moved    bool
	move     time.Duration
	requests int
	// failed counts failed requests after the health event; late those
	// after traffic moved (the rule: none).
	failed, late int
	// written is when the generated Mapping for east got its new weight
	// (as a poll of the API server every 20ms sees it), so that a slow
	// cell tells the controller's part from the edge's; negative when it
	// did not within the window.
	written time.Duration
}

func TestCompoundFaults(t *testing.T) {
	// podinfo is stateless: one per cluster serves every cell.
	for addr, msg := range map[netip.Addr]string{compoundEastPod: "east", compoundWestPod: "west"} {
		if err := netns.AddAddress(addr); err != nil {
			t.Fatal(err)
		}
		p, err := testenv.StartPodinfo(context.Background(), addr, msg, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Stop)
	}
	if err := netns.AddAddress(compoundGateway); err != nil {
		t.Fatal(err)
	}
	if !netns.Exists(compoundGateway) {
		t.Fatalf("gateway address %s does not exist after adding it", compoundGateway)
	}

	var rows []compoundRow
	for _, f := range compoundFaults() {
		for _, ev := range []compoundEvent{{name: "gateway dies", dies: true}, {name: "gateway comes back"}} {
			name := f.name + " + " + ev.name
			t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
				row := runCompoundCell(t, f, ev)
				row.cell = name
				rows = append(rows, row)
			})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "compound faults, default probe (%s × %d, timeout %s), %s:\n", crossmapv1.DefaultProbePeriod,
		crossmapv1.DefaultFailureThreshold, crossmapv1.DefaultProbeTimeout, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "| %-52s | %-10s | %-15s | %8s | %6s | %10s |\n", "cell", "moved in", "Mapping written", "requests", "failed", "after move")
	for _, r := range rows {
		move := "not moved"
		if r.moved {
			move = r.move.Round(time.Millisecond).String()
		}
		written := "not written"
		if r.written >= 0 {
			written = r.written.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %-52s | %-10s | %-15s | %8d | %6d | %10d |\n", r.cell, move, written, r.requests, r.failed, r.late)
	}
	t.Log("\n" + b.String())
}

// compoundCell is one cell's world: its own namespaces, controllers, Link,
// Mapping, edges and gateway switch, on the shared planes and podinfo.
type compoundCell struct {
	t    *testing.T
	h    *harness
	gw   *compoundSwitch
	user []client.Object
	// edgeURL is west's edge.
	edgeURL string
	// kubeconfig is the Link Secret's good content.
	kubeconfig []byte
	// standby is west's second replica in the leader-change cell.
	standby *runningCtl
}

func compoundFaults() []compoundFault {
	return []compoundFault{
		{
			name: "invalid annotation",
			apply: func(c *compoundCell) {
				c.setSplit("east=abc")
				c.h.eventually("the route is held", func(context.Context) error {
					if r, ok := c.h.westCtl.Model.Route(c.h.ns + "/podinfo"); !ok || !r.Held {
						return fmt.Errorf("route %+v not held", r)
					}
					return nil
				})
			},
			restore: func(c *compoundCell) { c.setSplit("east=50") },
		},
		{
			name: "Link Secret deleted",
			apply: func(c *compoundCell) {
				if err := c.h.west.Delete(context.Background(), c.secret()); err != nil {
					c.t.Fatal(err)
				}
				c.wantReachable("False/SecretNotFound")
			},
			restore: func(c *compoundCell) {
				s := c.secret()
				s.Data = map[string][]byte{"kubeconfig": c.kubeconfig}
				c.h.create(c.h.west, s)
			},
		},
		{
			name: "Link Secret garbage",
			apply: func(c *compoundCell) {
				c.setKubeconfig([]byte("this is not a kubeconfig"))
				c.wantReachable("False/InvalidCredentials")
			},
			restore: func(c *compoundCell) { c.setKubeconfig(c.kubeconfig) },
		},
		{
			name: "remote API server stopped",
			apply: func(c *compoundCell) {
				east := bed.Plane("east")
				if err := east.StopAPIServer(); err != nil {
					c.t.Fatal(err)
				}
				// Whatever happens to the cell, east's API server is
				// back for the next test.
				c.t.Cleanup(func() {
					if err := east.StartAPIServer(); err != nil {
						c.t.Error(err)
					}
				})
				c.h.eventually("the Link says the remote is unreachable", func(ctx context.Context) error {
					l, err := c.h.getLink(ctx)
					if err != nil {
						return err
					}
					if got := condition(l, crossmapv1.ConditionRemoteReachable); !strings.HasPrefix(got, "False/") {
						return fmt.Errorf("RemoteReachable = %s", got)
					}
					return nil
				})
			},
			restore: func(c *compoundCell) {
				if err := bed.Plane("east").StartAPIServer(); err != nil {
					c.t.Fatal(err)
				}
			},
		},
		{
			name: "local API server restarted",
			apply: func(c *compoundCell) {
				west := bed.Plane("west")
				if err := west.StopAPIServer(); err != nil {
					c.t.Fatal(err)
				}
				c.t.Cleanup(func() {
					if err := west.StartAPIServer(); err != nil {
						c.t.Error(err)
					}
				})
				// The health event comes as soon as the server is back:
				// the controller's and the edge's watches are still
				// finding their way back then.
				if err := west.StartAPIServer(); err != nil {
					c.t.Fatal(err)
				}
			},
			restore: func(*compoundCell) {},
		},
		{
			name: "controller restarted",
			apply: func(c *compoundCell) {
				currentWest(c.h).stop()
				w := c.h.startWest(nil)
				// The health event comes as soon as the new controller's
				// caches are filled: its probers have just started.
				c.h.eventually("the new controller's caches synced", func(ctx context.Context) error {
					if !w.ctl.Manager.GetCache().WaitForCacheSync(ctx) {
						return errors.New("caches not synced")
					}
					return nil
				})
			},
			restore: func(*compoundCell) {},
		},
		{
			name:        "leader change",
			leaderElect: true,
			apply: func(c *compoundCell) {
				leader := currentWest(c.h)
				leader.stop()
				c.h.setWest(c.standby)
				// The health event comes as soon as the standby leads.
				select {
				case <-c.standby.ctl.Manager.Elected():
				case <-time.After(45 * time.Second):
					c.t.Fatal("the standby was not elected within 45s of the leader stopping")
				}
			},
			restore: func(*compoundCell) {},
		},
	}
}

// runCompoundCell sets the cell up, puts the fault in place, runs traffic
// through the health event, checks and restores.
func runCompoundCell(t *testing.T, f compoundFault, ev compoundEvent) compoundRow {
	c := newCompoundCell(t, f.leaderElect)
	h := c.h
	if !ev.dies {
		c.gw.down()
		h.wantWeight("failed over before the cell", "podinfo-east", 0)
		c.wantAnswers("only west answers before the cell", func(m map[string]int) bool { return m["east"] == 0 && m["west"] > 0 })
	}
	f.apply(c)
	if f.name == "invalid annotation" {
		// The held Mapping is the user's, rewritten by the test.
		c.user = refresh(h, h.west, c.user)
	}

	tr := c.startTraffic()
	// A baseline of traffic before the event.
	tr.wantCount(t, 20)
	written := c.watchWeight(map[bool]int{true: 0, false: 50}[ev.dies])
	var t0 time.Time
	if ev.dies {
		t0 = c.gw.down()
	} else {
		t0 = c.gw.up()
	}
	row, recs := tr.observe(t, t0, h.ns+"/podinfo-east", ev.dies)
	row.written = -1
	if at := written(); !at.IsZero() {
		row.written = at.Sub(t0)
	}
	t.Logf("%s + %s: moved=%v in %s (Mapping written after %s); %d requests after the event, %d failed, %d after the move",
		f.name, ev.name, row.moved, row.move.Round(time.Millisecond), row.written.Round(time.Millisecond), row.requests, row.failed, row.late)
	if !row.moved {
		t.Errorf("traffic did not move within %s of the event (%s)", compoundWindow, firstFailures(recs, t0))
	} else if row.move > compoundTarget {
		t.Errorf("traffic moved %s after the event; target %s", row.move.Round(time.Millisecond), compoundTarget)
	}
	if row.failed > 0 && !ev.dies {
		// Before the move traffic goes to west, which is healthy: these
		// failures are the fault's, not the health event's. Logged, as
		// the rule is about requests after the move.
		t.Logf("%d requests failed before traffic moved back (%s)", row.failed, firstFailures(recs, t0))
	}
	if row.late > 0 {
		t.Errorf("%d requests failed after traffic moved (%s)", row.late, firstFailures(recs, t0.Add(row.move)))
	}
	c.wantStatusAgrees(!ev.dies)

	f.restore(c)
	if f.name == "invalid annotation" {
		c.user = refresh(h, h.west, c.user)
	}
	c.gw.up()
	h.wantLinkCondition(crossmapv1.ConditionRemoteReachable, "True/Connected")
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
	h.wantWeight("the split is back", "podinfo-east", 50)
	h.nothingLost(t, c.user)
	return row
}

// newCompoundCell builds the cell's world and waits until both clusters
// answer through west's edge.
func newCompoundCell(t *testing.T, leaderElect bool) *compoundCell {
	h := newBareHarness(t)
	c := &compoundCell{t: t, h: h}
	gwID := []string{"gw-" + h.id}
	var westCfg func(*controller.Config)
	if leaderElect {
		westCfg = func(cfg *controller.Config) { cfg.LeaderElect = true }
	}
	east, west := h.startControllers(func(cfg *controller.Config) { cfg.AmbassadorID = gwID }, westCfg)
	// Registered as newFaultHarness does, for nothingLost and the faults
	// that stop and replace west's controller.
	faultCtls.Lock()
	faultCtls.m[h] = &[2]*runningCtl{east, west}
	faultCtls.Unlock()
	t.Cleanup(func() {
		faultCtls.Lock()
		delete(faultCtls.m, h)
		faultCtls.Unlock()
	})

	c.user = append(c.user, h.exported("podinfo", []int32{9898}, compoundEastPod.String())...)
	c.user = append(c.user, h.local("podinfo", 9898, compoundWestPod.String())...)
	h.edge(bed.Plane("east"), "east-gateway", netip.AddrPortFrom(compoundGateway, 4144).String(),
		netip.AddrPortFrom(compoundGateway, 8877).String(), gwID)
	c.gw = newCompoundSwitch(t, netip.AddrPortFrom(compoundGateway, 4143), netip.AddrPortFrom(compoundGateway, 4144))
	c.gw.up()
	h.link(func(l *crossmapv1.Link) {
		l.Spec.Gateway.Addresses = []string{compoundGateway.String()}
		// The default probe, every field of it.
		l.Spec.Probe = &crossmapv1.ProbeSpec{}
	})
	l, err := h.getLink(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wantDefaultProbe(t, l)
	var secret corev1.Secret
	if err := h.west.Get(context.Background(), client.ObjectKey{Namespace: h.ctrlNS, Name: "east-credentials"}, &secret); err != nil {
		t.Fatal(err)
	}
	c.kubeconfig = secret.Data["kubeconfig"]
	h.wantLinkCondition(crossmapv1.ConditionGatewayAlive, "True/ProbeSucceeded")
	if leaderElect {
		c.standby = h.run(bed.Plane("west"), h.westMutate(westCfg))
	}
	c.user = append(c.user, h.userMapping("podinfo", "podinfo."+h.ns+":9898",
		map[string]string{"crossmap.io/split": "east=50", "crossmap.io/failover": "weighted"}, nil))
	h.wantWeight("split configured", "podinfo-east", 50)
	westEdge, _ := h.edge(bed.Plane("west"), "west-edge", "127.0.0.1:0", "127.0.0.1:0", []string{h.id})
	c.edgeURL = "http://" + westEdge.Addr().String() + "/podinfo/"
	c.wantAnswers("both clusters answer through west's edge", func(m map[string]int) bool { return m["east"] > 0 && m["west"] > 0 })
	return c
}

// watchWeight polls west's generated Mapping for east every 20ms from now
// until the end of the test or the first time it has weight; the function
// it returns stops polling and tells when that was (zero if it was not).
func (c *compoundCell) watchWeight(weight int) func() time.Time {
	ctx, cancel := context.WithCancel(context.Background())
	var at time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			m, err := c.h.sibling(ctx, "podinfo-east")
			if err == nil && ptr.Deref(m.Spec.Weight, -1) == weight {
				at = time.Now()
				return true, nil
			}
			return false, nil
		})
	}()
	stop := func() time.Time {
		cancel()
		<-done
		return at
	}
	c.t.Cleanup(func() { stop() })
	return stop
}

func (c *compoundCell) secret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: c.h.ctrlNS, Name: "east-credentials"}}
}

func (c *compoundCell) setKubeconfig(b []byte) {
	update(c.h, c.h.west, c.secret(), func(s *corev1.Secret) { s.Data = map[string][]byte{"kubeconfig": b} })
}

func (c *compoundCell) setSplit(split string) {
	update(c.h, c.h.west, &ambv3.Mapping{ObjectMeta: metav1.ObjectMeta{Namespace: c.h.ns, Name: "podinfo"}},
		func(m *ambv3.Mapping) { m.Annotations["crossmap.io/split"] = split })
}

func (c *compoundCell) wantReachable(want string) {
	c.h.wantLinkCondition(crossmapv1.ConditionRemoteReachable, want)
}

// wantAnswers waits until 40 requests in a row through west's edge all
// succeed and their answers (by podinfo message) satisfy ok.
func (c *compoundCell) wantAnswers(what string, ok func(map[string]int) bool) {
	c.h.t.Helper()
	cl := &http.Client{Timeout: 2 * time.Second}
	c.h.eventually(what, func(ctx context.Context) error {
		m := map[string]int{}
		for range 40 {
			r := compoundGet(ctx, cl, c.edgeURL)
			if r.err != "" {
				return errors.New(r.err)
			}
			m[r.answer]++
		}
		if !ok(m) {
			return fmt.Errorf("answers %v", m)
		}
		return nil
	})
}

// wantStatusAgrees checks, for up to 5 s (a loaded machine), that west's
// /status says what the Link's conditions and the Mappings in force say,
// and that both say the gateway is alive (or not) as it is.
func (c *compoundCell) wantStatusAgrees(alive bool) {
	c.h.t.Helper()
	h := c.h
	base := h.statusBase(h.westCtl)
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 5*time.Second, true, func(ctx context.Context) (bool, error) {
		err := func() error {
			var errs []string
			l, err := h.getLink(ctx)
			if err != nil {
				return err
			}
			var sl status.Link
			if err := statusGetJSON(ctx, base+"/status/links/"+h.ctrlNS+"/east", http.StatusOK, &sl); err != nil {
				return err
			}
			condAlive := condition(l, crossmapv1.ConditionGatewayAlive)
			if sl.GatewayAlive != strings.HasPrefix(condAlive, "True/") {
				errs = append(errs, fmt.Sprintf("/status gatewayAlive=%v, Link GatewayAlive=%s", sl.GatewayAlive, condAlive))
			}
			if sl.GatewayAlive != alive {
				errs = append(errs, fmt.Sprintf("/status gatewayAlive=%v, the gateway is alive=%v", sl.GatewayAlive, alive))
			}
			condReach := condition(l, crossmapv1.ConditionRemoteReachable)
			if sl.RemoteReachable != strings.HasPrefix(condReach, "True/") {
				errs = append(errs, fmt.Sprintf("/status remoteReachable=%v, Link RemoteReachable=%s", sl.RemoteReachable, condReach))
			}
			if got, want := len(sl.MirroredServices), int(l.Status.MirroredServices); got != want {
				errs = append(errs, fmt.Sprintf("/status mirroredServices %v, Link status.mirroredServices %d", sl.MirroredServices, want))
			}
			var r statusRoute
			if err := statusGetJSON(ctx, base+"/status/routes/"+h.ns+"/podinfo", http.StatusOK, &r); err != nil {
				return err
			}
			m, err := h.sibling(ctx, "podinfo-east")
			if err != nil {
				return err
			}
			inForce := ptr.Deref(m.Spec.Weight, -1)
			for _, b := range r.Backends {
				want := inForce
				if b.Cluster == "" {
					// The user's Mapping is unweighted: it takes the rest.
					want = 100 - inForce
				}
				if b.Effective != want {
					errs = append(errs, fmt.Sprintf("/status backend %s effective %d, Mapping in force says %d", b.Service, b.Effective, want))
				}
			}
			if wantEast := map[bool]int{true: 50, false: 0}[alive]; inForce != wantEast {
				errs = append(errs, fmt.Sprintf("podinfo-east weight %d in force, want %d with the gateway alive=%v", inForce, wantEast, alive))
			}
			return joinErrs(errs)
		}()
		// An error of the deadline cutting the check short says less
		// than the one before it.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		return err == nil, nil
	})
	if err != nil {
		h.dump()
		h.t.Errorf("/status, Link and Mappings disagree after 5s: %v", last)
	}
}

// compoundSwitch is the on/off switch of east's gateway: a TCP relay on the
// address the Link names to the dev edge that is the gateway. down closes
// its listener and every connection, as a killed gateway process would
// (connections reset, new ones refused); up listens again. The gateway
// itself keeps running, so that it can come back at once even while east's
// API server, from which it reads its routes, is down.
type compoundSwitch struct {
	t      *testing.T
	addr   netip.AddrPort
	target netip.AddrPort

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]bool
}

func newCompoundSwitch(t *testing.T, addr, target netip.AddrPort) *compoundSwitch {
	s := &compoundSwitch{t: t, addr: addr, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { s.down() })
	return s
}

// up starts listening (a no-op when up) and returns when it did.
func (s *compoundSwitch) up() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l == nil {
		l, err := net.Listen("tcp", s.addr.String())
		if err != nil {
			s.t.Fatalf("gateway switch: %v", err)
		}
		s.l = l
		go s.serve(l)
	}
	return time.Now()
}

// down closes the listener and every relayed connection, and returns when
// it did.
func (s *compoundSwitch) down() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.l != nil {
		_ = s.l.Close()
		s.l = nil
	}
	for c := range s.conns {
		_ = c.Close()
	}
	clear(s.conns)
	return time.Now()
}

func (s *compoundSwitch) serve(l net.Listener) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", s.target.String(), time.Second)
		if err != nil {
			_ = in.Close()
			continue
		}
		s.mu.Lock()
		if s.l != l {
			// Switched off between Accept and here.
			s.mu.Unlock()
			_ = in.Close()
			_ = out.Close()
			return
		}
		s.conns[in], s.conns[out] = true, true
		s.mu.Unlock()
		relay := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
			_ = src.Close()
			s.mu.Lock()
			delete(s.conns, dst)
			delete(s.conns, src)
			s.mu.Unlock()
		}
		go relay(out, in)
		go relay(in, out)
	}
}

// compoundRecord is one request through west's edge.
type compoundRecord struct {
	sent, done time.Time
	// mapping is the Mapping that routed it (the edge's MappingHeader).
	mapping string
	// answer is the podinfo message; err is set when it failed.
	answer, err string
}

func compoundGet(ctx context.Context, cl *http.Client, url string) compoundRecord {
	r := compoundRecord{sent: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		r.err = err.Error()
		r.done = time.Now()
		return r
	}
	resp, err := cl.Do(req)
	if err != nil {
		r.err = err.Error()
		r.done = time.Now()
		return r
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r.mapping = resp.Header.Get(edge.MappingHeader)
	var p struct {
		Message string `json:"message"`
	}
	if resp.StatusCode != http.StatusOK {
		r.err = fmt.Sprintf("HTTP %d via %s: %s", resp.StatusCode, r.mapping, strings.TrimSpace(string(body)))
	} else if err := json.Unmarshal(body, &p); err != nil {
		r.err = "decode: " + err.Error()
	} else {
		r.answer = p.Message
	}
	r.done = time.Now()
	return r
}

// compoundTraffic is a steady, bounded stream of requests through west's
// edge: compoundWorkers loops, each sending one request every compoundRate
// at most.
type compoundTraffic struct {
	stop context.CancelFunc
	wg   sync.WaitGroup
	mu   sync.Mutex
	recs []compoundRecord
}

func (c *compoundCell) startTraffic() *compoundTraffic {
	return startTraffic(c.t, c.edgeURL)
}

// startTraffic starts a compoundTraffic to url, stopped at the end of t.
func startTraffic(t *testing.T, url string) *compoundTraffic {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &compoundTraffic{stop: cancel}
	cl := &http.Client{Timeout: 2 * time.Second}
	for range compoundWorkers {
		tr.wg.Go(func() {
			tick := time.NewTicker(compoundRate)
			defer tick.Stop()
			for {
				r := compoundGet(ctx, cl, url)
				if ctx.Err() != nil {
					return
				}
				tr.mu.Lock()
				tr.recs = append(tr.recs, r)
				tr.mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		})
	}
	t.Cleanup(func() { tr.finish() })
	return tr
}

// wantCount waits until n requests have been recorded.
func (tr *compoundTraffic) wantCount(t *testing.T, n int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.recs) >= n, nil
	})
	if err != nil {
		t.Fatalf("traffic: fewer than %d requests in 30s", n)
	}
}

// observe watches the traffic from the health event at t0 until it has
// moved and compoundSettle more has passed, or compoundWindow has, then
// stops it and measures it.
func (tr *compoundTraffic) observe(t *testing.T, t0 time.Time, sibling string, dies bool) (compoundRow, []compoundRecord) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, compoundWindow+30*time.Second, true, func(context.Context) (bool, error) {
		tr.mu.Lock()
		recs := slices.Clone(tr.recs)
		tr.mu.Unlock()
		var end time.Time
		for _, r := range recs {
			if r.sent.After(end) {
				end = r.sent
			}
		}
		if end.Sub(t0) >= compoundWindow {
			return true, nil
		}
		row := measureCompound(recs, t0, end, sibling, dies)
		return row.moved && end.Sub(t0.Add(row.move)) >= compoundSettle, nil
	})
	if err != nil {
		t.Fatalf("traffic: no request sent in %s after the event", compoundWindow+30*time.Second)
	}
	recs := tr.finish()
	end := t0.Add(compoundWindow)
	if last := recs[len(recs)-1].sent; last.Before(end) {
		end = last.Add(time.Nanosecond)
	}
	return measureCompound(recs, t0, end, sibling, dies), recs
}

// finish stops the traffic and returns the records, in order of sending.
func (tr *compoundTraffic) finish() []compoundRecord {
	tr.stop()
	tr.wg.Wait()
	return tr.snapshot()
}

// measureCompound reads a cell's traffic, the requests sent from the
// health event at t0 until before end:
//
//   - gateway dies: traffic has moved after the last request routed to
//     east (by east's generated Mapping, sibling, or answered by east);
//     it counts as moved if that was at least compoundSettle before end,
//     so that that much traffic shows none went there after;
//   - gateway comes back: traffic has moved at the first request east
//     answered.
//
// late counts the requests that failed after traffic moved.
func measureCompound(recs []compoundRecord, t0, end time.Time, sibling string, dies bool) compoundRow {
	var row compoundRow
	var after []compoundRecord
	for _, r := range recs {
		if !r.sent.Before(t0) && r.sent.Before(end) {
			after = append(after, r)
		}
	}
	row.requests = len(after)
	var movedAt time.Time
	if dies {
		movedAt = t0
		for _, r := range after {
			if r.mapping == sibling || r.answer == "east" {
				movedAt = r.sent
			}
		}
		row.moved = end.Sub(movedAt) >= compoundSettle
	} else {
		for _, r := range after {
			if r.answer == "east" {
				movedAt, row.moved = r.sent, true
				break
			}
		}
	}
	if row.moved {
		row.move = movedAt.Sub(t0)
	}
	for _, r := range after {
		if r.err == "" {
			continue
		}
		row.failed++
		if row.moved && r.sent.After(movedAt) {
			row.late++
		}
	}
	return row
}

// firstFailures describes up to three failed requests sent after from.
func firstFailures(recs []compoundRecord, from time.Time) string {
	var out []string
	for _, r := range recs {
		if r.err != "" && !r.sent.Before(from) && len(out) < 3 {
			out = append(out, r.sent.Format("15:04:05.000")+" "+r.err)
		}
	}
	if len(out) == 0 {
		return "no failed request"
	}
	return strings.Join(out, "; ")
}
