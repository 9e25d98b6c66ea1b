package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/testenv"
)

// The resource benchmarks measure west's controller on its own: the
// crossmap binary, run as `crossmap controller` in a process of its own,
// so that its memory and CPU time are its own and not those of the
// benchmark, the other controllers or the client libraries of this test
// process. It talks to west's API server directly, as a user of its own
// whose writes the server records in its audit log; an auditCounter counts
// them there, whatever the controller's own metrics say. Counting costs the
// measured machine next to nothing, unlike the counting proxy it replaces.

// crossmapBin is the crossmap binary the resource benchmarks run:
// $CROSSMAP_BIN (tools/bench.sh builds it), or one built from this tree
// once per test process, so that a stale bin/crossmap is never measured.
var crossmapBin = struct {
	once sync.Once
	path string
	err  error
}{}

func crossmapBinary(b *testing.B) string {
	b.Helper()
	crossmapBin.once.Do(func() {
		if p := os.Getenv("CROSSMAP_BIN"); p != "" {
			crossmapBin.path = p
			return
		}
		root, err := testenv.RepoRoot()
		if err != nil {
			crossmapBin.err = err
			return
		}
		dir, err := os.MkdirTemp("", "crossmap-bench-")
		if err != nil {
			crossmapBin.err = err
			return
		}
		crossmapBin.path = filepath.Join(dir, "crossmap")
		cmd := exec.Command("go", "build", "-o", crossmapBin.path, "./cmd/crossmap")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			crossmapBin.err = fmt.Errorf("build crossmap: %v\n%s", err, out)
		}
	})
	if crossmapBin.err != nil {
		b.Fatal(crossmapBin.err)
	}
	return crossmapBin.path
}

// auditCounter counts the API writes of one user, the controller's, in an
// API server's audit log (testenv.Plane.AuditLogPath). The server logs every
// write of a user in testenv.AuditedGroup, one line per request, and nothing
// else; the counter reads the lines the log gained since its last look
// whenever it is asked, so it takes no CPU while the controller works. (A
// counting proxy in this process took about 3 s of the 2-core machine's CPU
// during the 1000-Service convergence, and so slowed what it measured.)
//
// Every write counts, failed ones too (a conflict or a 403 is a request the
// controller made all the same, and the proxy counted those as well); the
// response code is kept in the log that since returns.
type auditCounter struct {
	b          *testing.B
	user       string
	kubeconfig string // the user's: straight to the API server
	f          *os.File
	// needle is the user field of the user's events: lines without it
	// are skipped undecoded.
	needle  []byte
	partial []byte // the log's last line, while still incomplete

	writes    int
	lastWrite time.Time // stageTimestamp of the latest write
	log       []string
}

// auditEvent is what the counter needs of an audit.k8s.io/v1 Event.
type auditEvent struct {
	User struct {
		Username string `json:"username"`
	} `json:"user"`
	Verb           string    `json:"verb"`
	RequestURI     string    `json:"requestURI"`
	StageTimestamp time.Time `json:"stageTimestamp"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// startAuditCounter makes user an admin of plane whose writes are audited,
// writes a kubeconfig for it, and counts its writes from now on.
func startAuditCounter(b *testing.B, plane *testenv.Plane, user string) *auditCounter {
	b.Helper()
	kc, err := plane.Kubeconfig(user, []string{"system:masters", testenv.AuditedGroup})
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), plane.Name+".kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(plane.AuditLogPath())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = f.Close() })
	// The log so far holds other users' writes only: start at its end. A
	// line being written there leaves a fragment as the first "line" read,
	// which the needle skips (the user has made no request yet).
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		b.Fatal(err)
	}
	return &auditCounter{b: b, user: user, kubeconfig: path, f: f,
		needle: []byte(`"user":{"username":` + strconv.Quote(user))}
}

// read takes in the lines the log gained since the last read.
func (c *auditCounter) read() {
	c.b.Helper()
	data, err := io.ReadAll(c.f)
	if err != nil {
		c.b.Fatalf("read audit log: %v", err)
	}
	data = append(c.partial, data...)
	end := bytes.LastIndexByte(data, '\n') + 1
	c.partial = append([]byte(nil), data[end:]...)
	for line := range bytes.Lines(data[:end]) {
		if !bytes.Contains(line, c.needle) {
			continue
		}
		var ev auditEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			c.b.Fatalf("audit log: %v: %s", err, line)
		}
		if ev.User.Username != c.user {
			continue
		}
		c.writes++
		if ev.StageTimestamp.After(c.lastWrite) {
			c.lastWrite = ev.StageTimestamp
		}
		if len(c.log) < 10000 {
			c.log = append(c.log, fmt.Sprintf("%s %s %d", ev.Verb, ev.RequestURI, ev.ResponseStatus.Code))
		}
	}
}

// count returns the writes so far, and how many of the write log's
// entries there are (to print the writes after a mark).
func (c *auditCounter) count() (int, int) {
	c.read()
	return c.writes, len(c.log)
}

// since returns the logged writes after mark, each as "verb URI code".
func (c *auditCounter) since(mark int) []string {
	c.read()
	if mark > len(c.log) {
		return nil
	}
	return append([]string(nil), c.log[mark:]...)
}

// waitQuiet waits until the user has made no write for quiet.
//
// The time of a write is its event's stageTimestamp, when the server
// completed it, not the time the counter first read it: the counter reads
// only when asked (nothing reads the log during an idle window, say), so
// the first sight of a backlog says nothing about when it was written.
// Nor is it requestReceivedTimestamp: an event is logged only once its
// request completes, so a slow write would already look old on arrival.
// The server runs on this machine and stamps with the same wall clock.
func (c *auditCounter) waitQuiet(b *testing.B, quiet time.Duration) {
	b.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, benchTimeout, false, func(context.Context) (bool, error) {
		c.read()
		return time.Since(c.lastWrite) >= quiet, nil
	})
	if err != nil {
		b.Fatalf("controller still writing after %s", benchTimeout)
	}
}

// controllerProcess is `crossmap controller` running in a process of its
// own.
type controllerProcess struct {
	b          *testing.B
	cmd        *exec.Cmd
	logPath    string
	statusAddr string
	done       chan error
	once       sync.Once
}

// startControllerProcess runs west's controller for h (import and route
// roles, as in the in-process benchmarks) with kubeconfig.
func (h *benchHarness) startControllerProcess(kubeconfig string) *controllerProcess {
	h.b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.b.Fatal(err)
	}
	statusAddr := l.Addr().String()
	_ = l.Close()
	p := &controllerProcess{b: h.b, statusAddr: statusAddr, done: make(chan error, 1),
		logPath: filepath.Join(h.b.TempDir(), "controller.log")}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		h.b.Fatal(err)
	}
	p.cmd = exec.Command(crossmapBinary(h.b), "controller",
		"--kubeconfig", kubeconfig,
		"--cluster-name", "west-"+h.id,
		"--namespace", h.ctrlNS,
		"--export=false",
		"--ambassador-id", h.id,
		"--status-addr", statusAddr,
	)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		_ = logFile.Close()
		h.b.Fatal(err)
	}
	go func() {
		p.done <- p.cmd.Wait()
		_ = logFile.Close()
	}()
	h.b.Cleanup(func() {
		p.stop()
		if h.b.Failed() {
			p.dumpLog()
		}
	})
	return p
}

// stop ends the controller as Kubernetes would: SIGTERM, then SIGKILL.
func (p *controllerProcess) stop() {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// exited fails the benchmark, with the controller's log, if it has exited.
func (p *controllerProcess) checkRunning() {
	p.b.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		p.dumpLog()
		p.b.Fatalf("controller exited: %v", err)
	default:
	}
}

func (p *controllerProcess) dumpLog() {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		p.b.Logf("controller log: %v", err)
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	p.b.Logf("controller log (last %d lines):\n%s", len(lines), strings.Join(lines, "\n"))
}

// memory returns the process's resident set size and its peak, in bytes,
// from /proc/<pid>/status.
func (p *controllerProcess) memory() (rss, peak float64) {
	p.b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		p.b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || fields[2] != "kB" {
			continue
		}
		kb, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			peak = kb * 1024
		}
	}
	return rss, peak
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// cpu returns the CPU time the process has used, user and system, from
// /proc/<pid>/stat.
func (p *controllerProcess) cpu() time.Duration {
	p.b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		p.b.Fatal(err)
	}
	// The command name may hold spaces; the fields after it do not.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	// fields[0] is field 3 (state); utime and stime are fields 14 and 15.
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		p.b.Fatalf("parse /proc/%d/stat: %q", p.cmd.Process.Pid, s)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// metric reads the sum of a crossmap_ series from the controller's
// /metrics, over the series whose labels contain every one of want (as
// `name="value"`).
func (p *controllerProcess) metric(name string, want ...string) (float64, error) {
	resp, err := http.Get("http://" + p.statusAddr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, sc.Err()
}

// waitSynced waits until the controller has mirrored all n Services of
// the Link (its mirrored_services gauge, set by a full reconcile after the
// remote cluster was listed).
func (h *benchHarness) waitSynced(p *controllerProcess, n int) {
	h.b.Helper()
	link := fmt.Sprintf(`link="%s/east"`, h.ctrlNS)
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, benchTimeout, true, func(context.Context) (bool, error) {
		p.checkRunning()
		v, err := p.metric("crossmap_mirrored_services", link)
		last = err
		return err == nil && v == float64(n), nil
	})
	if err != nil {
		p.dumpLog()
		h.b.Fatalf("controller did not report %d mirrored Services: %v (%v)", n, err, last)
	}
}

// pruneMirrors deletes the Link and, directly, every mirror it owned: the
// resource benchmarks stop their controller before the harness tears
// down.
func (h *benchHarness) pruneMirrors() {
	h.b.Helper()
	ctx := context.Background()
	if err := h.west.Delete(ctx, h.newLink()); err != nil && !apierrors.IsNotFound(err) {
		h.b.Errorf("delete Link: %v", err)
	}
	sel := client.MatchingLabels{crossmapv1.LabelLink: "east", crossmapv1.LabelLinkNamespace: h.ctrlNS}
	var svcs corev1.ServiceList
	var slices discoveryv1.EndpointSliceList
	if err := h.west.List(ctx, &svcs, client.InNamespace(h.ns), sel); err != nil {
		h.b.Errorf("list mirrors: %v", err)
		return
	}
	if err := h.west.DeleteAllOf(ctx, &discoveryv1.EndpointSlice{}, client.InNamespace(h.ns), sel); err != nil {
		h.b.Errorf("delete mirror EndpointSlices: %v", err)
	}
	work := make(chan client.Object)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for o := range work {
				if err := h.west.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
					h.b.Errorf("delete %s: %v", client.ObjectKeyFromObject(o), err)
				}
			}
		})
	}
	for i := range svcs.Items {
		work <- &svcs.Items[i]
	}
	close(work)
	wg.Wait()
	if err := h.west.List(ctx, &slices, client.InNamespace(h.ns), sel); err == nil && len(slices.Items) > 0 {
		h.b.Errorf("%d mirror EndpointSlices left after pruning", len(slices.Items))
	}
}
