package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// The demo tests run `crossmap demo` as a user would: the built binary, in
// the foreground, from a shell's point of view. Every address they send to is
// on the host's loopback, where the demo's host side relays into its own
// network namespace.

const (
	// demoUp bounds the start of three control planes and the story on a
	// busy two-core machine.
	demoUp = 5 * time.Minute
	// demoDown bounds the stop: controllers, edges, podinfo and three
	// control planes.
	demoDown = time.Minute
	// effect bounds the wait for a command's effect to show.
	effect = time.Minute
)

// TestDemoExplore starts the interactive demo, runs every command its closing
// text suggests, checks that each does what the text says, then sends the
// started process SIGTERM and checks that nothing the demo started is left.
func TestDemoExplore(t *testing.T) {
	for _, tool := range []string{"kubectl", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the demo's suggested commands need %s (make test installs it: tools/deps.sh): %v", tool, err)
		}
	}
	d := startDemo(t)
	d.waitFor(t, "Press Ctrl-C (or send SIGTERM)", demoUp)
	ns := d.namespace(t)

	gestures := parseGestures(t, d.output())
	titles := make([]string, 0, len(gestures))
	for _, g := range gestures {
		titles = append(titles, g.title)
	}
	wantTitles := []string{
		"Look around each cluster with kubectl",
		"Change the split: east gets 80%",
		"Take the developer's route away, and add it back",
		"Kill east's gateway, then revive it",
		"Break the annotation and see the problem",
		"Rehearse losing east: a drill",
	}
	if strings.Join(titles, "|") != strings.Join(wantTitles, "|") {
		t.Fatalf("the demo suggests %q, want %q", titles, wantTitles)
	}

	step(t, "look around", func() {
		c := gestures[0].commands
		if out := sh(t, c[0]); !strings.Contains(out, "service/podinfo") || !strings.Contains(out, "endpointslice.discovery.k8s.io/podinfo-pods") {
			t.Errorf("%s printed:\n%s\nwant east's podinfo Service and its EndpointSlice", c[0], out)
		}
		out := sh(t, c[1])
		for _, want := range []string{"service/podinfo-east", "service/podinfo-dev-alice", "mapping.getambassador.io/podinfo-east", "mapping.getambassador.io/podinfo-dev-alice-dev"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s printed:\n%s\nwant %s", c[1], out, want)
			}
		}
	})
	step(t, "change the split", func() {
		c := gestures[1].commands
		sh(t, c[0])
		eventually(t, c[1], func(out string) error { return share(out, "east", 60, 100) })
		eventually(t, c[2], func(out string) error {
			if !regexp.MustCompile(`"service": "test/podinfo-east",\s*"configured": 80,\s*"effective": 80`).MatchString(out) {
				return errors.New("want podinfo-east configured 80, effective 80")
			}
			return nil
		})
	})
	step(t, "dev route", func() {
		c := gestures[2].commands
		sh(t, c[0])
		eventually(t, c[1], func(out string) error {
			if !strings.Contains(out, `"west"`) && !strings.Contains(out, `"east"`) {
				return errors.New("want west or east without the dev route")
			}
			return nil
		})
		sh(t, c[2])
		eventually(t, c[3], func(out string) error {
			if !strings.Contains(out, `"message": "dev-alice"`) {
				return errors.New("want dev-alice")
			}
			return nil
		})
	})
	step(t, "kill and revive a gateway", func() {
		c := gestures[3].commands
		if out := sh(t, c[0]); !strings.Contains(out, "east's gateway killed") {
			t.Errorf("%s printed %q", c[0], out)
		}
		eventually(t, c[1], func(out string) error { return share(out, "west", 100, 100) })
		eventually(t, c[2], func(out string) error {
			if !regexp.MustCompile(`(?m)^east\s+no \(gateway\)`).MatchString(out) {
				return errors.New("want east: ALIVE no (gateway)")
			}
			return nil
		})
		if out := sh(t, c[3]); !strings.Contains(out, "east's gateway revived") {
			t.Errorf("%s printed %q", c[3], out)
		}
		// The split of gesture b), east=80, again.
		eventually(t, c[4], func(out string) error { return share(out, "east", 60, 100) })
	})
	step(t, "break the annotation", func() {
		c := gestures[4].commands
		sh(t, c[0])
		eventually(t, c[1], func(out string) error {
			if !regexp.MustCompile(`(?m)^InvalidAnnotation\s+Mapping test/podinfo\s`).MatchString(out) {
				return errors.New("want the problem InvalidAnnotation on Mapping test/podinfo")
			}
			return nil
		})
		eventually(t, c[2], func(out string) error {
			if !strings.Contains(out, "InvalidAnnotation") || !strings.Contains(out, "Warning") {
				return errors.New("want a Warning Event InvalidAnnotation")
			}
			return nil
		})
		// Held: still east=80, as set in the split gesture.
		if err := share(sh(t, c[3]), "east", 60, 100); err != nil {
			t.Errorf("with a broken annotation: %v", err)
		}
		sh(t, c[4])
		eventually(t, c[1], func(out string) error {
			if strings.Contains(out, "InvalidAnnotation") {
				return errors.New("the problem is still shown")
			}
			return nil
		})
	})

	step(t, "drill", func() {
		c := gestures[5].commands
		if out := sh(t, c[0]); !regexp.MustCompile(`test/podinfo\s+weighted\s+local 50 -> 100, east 50 -> 0, .*fails over`).MatchString(out) {
			t.Errorf("%s printed:\n%s\nwant test/podinfo failing over to local", c[0], out)
		}
		if out := sh(t, c[1]); !strings.Contains(out, "Drill started: cluster east is drained for routing by ") {
			t.Errorf("%s printed:\n%s\nwant the drill started", c[1], out)
		}
		eventually(t, c[2], func(out string) error { return share(out, "west", 100, 100) })
		eventually(t, c[3], func(out string) error {
			if !regexp.MustCompile(`(?m)^east\s+active: drained for routing\s`).MatchString(out) {
				return errors.New("want Drills: east active")
			}
			return nil
		})
		if out := sh(t, c[4]); !strings.Contains(out, "Stopped the drill on crossmap-system/east") {
			t.Errorf("%s printed %q", c[4], out)
		}
		eventually(t, c[5], func(out string) error { return share(out, "east", 30, 70) })
	})

	d.stop(t, syscall.SIGTERM)
	if err := d.wait(t); err != nil {
		t.Errorf("the demo stopped on SIGTERM with %v; want exit 0", err)
	}
	if out := d.output(); !strings.Contains(out, "Stopped: nothing the demo started is running any more.") {
		t.Errorf("the demo did not say it stopped everything:\n%s", tail(out))
	}
	d.checkNothingLeft(t, ns)
}

// TestDemoInterrupt sends SIGINT to the started process while the story
// runs, and checks that the demo stops and leaves nothing behind.
func TestDemoInterrupt(t *testing.T) {
	d := startDemo(t)
	// Step 5 applies the samples: control planes, podinfo, controllers,
	// gateways and the edge are all running by then.
	d.waitFor(t, "\n[5] ", demoUp)
	ns := d.namespace(t)
	d.stop(t, syscall.SIGINT)
	if err := d.wait(t); err == nil {
		t.Error("the demo exited 0 after an interrupted story; want a failure")
	}
	if out := d.output(); !strings.Contains(out, "interrupted at step") {
		t.Errorf("the demo did not say it was interrupted:\n%s", tail(out))
	}
	d.checkNothingLeft(t, ns)
}

// step runs one of the suggested gestures. They are steps of one session,
// in the order the demo suggests them (each starts from the state the one
// before left), so the first failure ends the test.
func step(t *testing.T, name string, f func()) {
	t.Helper()
	t.Logf("gesture: %s", name)
	f()
}

// runningDemo is a `crossmap demo` process the test started.
type runningDemo struct {
	cmd     *exec.Cmd
	tmp     string // the demo's TMPDIR: empty again once it has stopped
	ns      string // its network namespace, once known
	addrs   []string
	mu      sync.Mutex
	out     strings.Builder
	exited  chan struct{}
	waitErr error
}

func startDemo(t *testing.T) *runningDemo {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "crossmap")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build crossmap: %v\n%s", err, out)
	}
	d := &runningDemo{tmp: t.TempDir(), exited: make(chan struct{})}
	logFile := filepath.Join(t.TempDir(), "demo.log")
	d.cmd = exec.Command(bin, "demo", "--requests", "40", "--log-file", logFile,
		"--edge-addr", "127.0.0.1:0", "--status-addr", "127.0.0.1:0", "--control-addr", "127.0.0.1:0")
	d.cmd.Env = append(os.Environ(), "TMPDIR="+d.tmp)
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = d.cmd.Stdout
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start crossmap demo: %v", err)
	}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			d.mu.Lock()
			d.out.WriteString(s.Text() + "\n")
			d.mu.Unlock()
		}
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			// A failed test: stop the demo all the same.
			_ = d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.exited:
			case <-time.After(demoDown):
				// The demo did not stop: end what it started, by pid,
				// so that a failed test leaves no control plane behind.
				_ = d.cmd.Process.Kill()
				if d.ns != "" {
					for _, p := range inNamespace(d.ns) {
						pid, _ := strconv.Atoi(strings.Fields(p)[0])
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
		}
		if t.Failed() {
			t.Logf("the demo printed:\n%s", d.output())
			if log, err := os.ReadFile(logFile); err == nil {
				t.Logf("its log (end):\n%s", tail(string(log)))
			}
		}
	})
	return d
}

func (d *runningDemo) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// waitFor waits until the demo has printed s.
func (d *runningDemo) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		select {
		case <-d.exited:
			return false, fmt.Errorf("the demo exited (%v)", d.waitErr)
		default:
		}
		return strings.Contains(d.output(), s), nil
	})
	if err != nil {
		t.Fatalf("waiting for the demo to print %q: %v", s, err)
	}
}

// namespace returns the demo's network namespace and the processes in it.
// The started process stays on the host; the one it re-runs is its child.
func (d *runningDemo) namespace(t *testing.T) string {
	t.Helper()
	child := 0
	for _, pid := range pids() {
		if ppid(pid) == d.cmd.Process.Pid {
			child = pid
		}
	}
	if child == 0 {
		t.Fatal("the demo's re-run inside its namespace is not a child of the started process")
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", child))
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if ns == host {
		t.Fatalf("the demo's re-run is in the host's network namespace %s", ns)
	}
	d.ns = ns
	// Three kube-apiservers, three etcds and the demo itself, at least: so
	// that "none left" below is not checked against an empty namespace.
	if in := inNamespace(ns); len(in) < 7 {
		t.Fatalf("namespace %s holds processes %v; want the demo and its control planes", ns, in)
	}
	// The host side's addresses, to check that they are closed later: those
	// the started process prints before the story, those of the closing
	// text, and the API servers' in the kubeconfig. (The story itself
	// prints addresses inside the namespace, which are not the host's.)
	out := d.output()
	hostText := out
	if i := strings.Index(out, "\n[1] "); i >= 0 {
		hostText = out[:i]
	}
	if i := strings.Index(out, "Still running for you to explore"); i >= 0 {
		hostText += out[i:]
		if m := regexp.MustCompile(`export KUBECONFIG=(\S+)`).FindStringSubmatch(out[i:]); m != nil {
			kc, err := os.ReadFile(m[1])
			if err != nil {
				t.Fatalf("read the kubeconfig the demo printed: %v", err)
			}
			hostText += string(kc)
		}
	}
	d.addrs = regexp.MustCompile(`127\.0\.0\.1:\d+`).FindAllString(hostText, -1)
	if len(d.addrs) == 0 {
		t.Fatal("the demo printed no host address")
	}
	return ns
}

func (d *runningDemo) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %s to the demo: %v", sig, err)
	}
}

// wait waits for the started process to exit and returns how it did.
func (d *runningDemo) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-d.exited:
		return d.waitErr
	case <-time.After(demoDown):
		t.Fatalf("the demo is still running %s after the signal", demoDown)
		return nil
	}
}

// checkNothingLeft checks that no process runs in the demo's namespace any
// more (control planes, podinfo, the demo itself: the namespace is gone with
// them), that its temporary dirs are removed and its host ports closed.
func (d *runningDemo) checkNothingLeft(t *testing.T, ns string) {
	t.Helper()
	if in := inNamespace(ns); len(in) > 0 {
		t.Errorf("processes still running in the demo's namespace %s: %v", ns, in)
	}
	entries, err := os.ReadDir(d.tmp)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in the demo's TMPDIR: %s", e.Name())
	}
	for _, addr := range d.addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the demo stopped", addr)
		}
	}
}

// gesture is one "Things to try" item as the demo printed it.
type gesture struct {
	title    string
	commands []string
}

// parseGestures reads the closing text: "a) Title" lines, each followed by
// "  $ command" lines.
func parseGestures(t *testing.T, out string) []gesture {
	t.Helper()
	i := strings.Index(out, "Things to try")
	if i < 0 {
		t.Fatalf("the demo suggested nothing to try:\n%s", out)
	}
	var gs []gesture
	title := regexp.MustCompile(`^[a-z]\) (.+)$`)
	for line := range strings.SplitSeq(out[i:], "\n") {
		if m := title.FindStringSubmatch(line); m != nil {
			gs = append(gs, gesture{title: m[1]})
		} else if cmd, ok := strings.CutPrefix(line, "  $ "); ok && len(gs) > 0 {
			gs[len(gs)-1].commands = append(gs[len(gs)-1].commands, cmd)
		}
	}
	return gs
}

// sh runs a suggested command as a user's shell would and returns its
// output; it must succeed.
func sh(t *testing.T, command string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "sh", "-c", command).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	return string(out)
}

// eventually runs command until check accepts its output: a change takes
// the controller and the edge a moment.
func eventually(t *testing.T, command string, check func(string) error) {
	t.Helper()
	var out string
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, effect, true, func(ctx context.Context) (bool, error) {
		b, err := exec.CommandContext(ctx, "sh", "-c", command).CombinedOutput()
		out = string(b)
		if err != nil {
			last = err
			return false, nil
		}
		last = check(out)
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last output:\n%s)", command, errors.Join(last, err), out)
	}
}

// share checks the output of the suggested 100-request loop (uniq -c lines
// such as `     80 "message": "east"`): cluster answered between lo and hi
// of them, and nothing failed.
func share(out, cluster string, lo, hi int) error {
	counts := map[string]int{}
	total := 0
	for _, m := range regexp.MustCompile(`(?m)^\s*(\d+) "message": "([^"]*)"$`).FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		counts[m[2]] += n
		total += n
	}
	if total != 100 {
		return fmt.Errorf("%d of 100 requests answered by podinfo (%v)", total, counts)
	}
	if n := counts[cluster]; n < lo || n > hi {
		return fmt.Errorf("%s answered %d of 100 (%v), want %d to %d", cluster, n, counts, lo, hi)
	}
	return nil
}

func pids() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces, so start after ")".
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(fields) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(fields[1])
	return p
}

// inNamespace lists the processes (pid and command) in network namespace ns.
func inNamespace(ns string) []string {
	var in []string
	for _, pid := range pids() {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err == nil && l == ns {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			in = append(in, fmt.Sprintf("%d %s", pid, strings.TrimSpace(string(comm))))
		}
	}
	return in
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}
