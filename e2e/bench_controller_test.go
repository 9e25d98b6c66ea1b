package e2e

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// benchServices is how many exported Services the controller benchmarks
// mirror: the scale issue 6 sets its targets at.
const benchServices = 1000

// benchIdle is how long BenchmarkControllerIdle leaves the controller
// alone: $CROSSMAP_BENCH_IDLE, default five minutes, the window issue 6
// asks about. A shorter one is a smoke run, not the figure.
func benchIdle(b *testing.B) time.Duration {
	b.Helper()
	v := os.Getenv("CROSSMAP_BENCH_IDLE")
	if v == "" {
		return 5 * time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("CROSSMAP_BENCH_IDLE=%q: want a positive duration such as 5m", v)
	}
	return d
}

// controllerBench is west's controller run on its own (controllerProcess)
// for n exported Services of benchEndpoints endpoints each, in flat mode as
// in BenchmarkPropagation, from its start to a settled state.
type controllerBench struct {
	h     *benchHarness
	audit *auditCounter // the controller's writes, from west's audit log
	proc  *controllerProcess
	// converged is the time from starting the process to every mirror
	// written; cpu the CPU time the process had used by then; writes its
	// API writes until it settled.
	converged time.Duration
	cpu       time.Duration
	writes    int
	// floor is what the API server alone took for the same writes, just
	// before (writeFloor); zero unless asked for.
	floor time.Duration
}

// quiet is how long without a write counts as settled. The Link's status
// is written at most every 30s (lastSyncResolution), and only when a
// mirror changed.
const quiet = 3 * time.Second

// startControllerBench starts the controller on n exported Services and
// waits until it has settled; with floor, it first measures writeFloor.
func startControllerBench(b *testing.B, n int, floor bool) *controllerBench {
	b.Helper()
	h := newBenchHarnessWith(b, false)
	h.exportServices(n)
	h.credentials()
	h.create(h.west, h.newLink())
	c := &controllerBench{h: h, audit: startAuditCounter(b, bed.Plane("west"), "crossmap-bench-"+h.id)}
	if floor {
		c.floor = h.writeFloor()
	}

	start := time.Now()
	c.proc = h.startControllerProcess(c.audit.kubeconfig)
	// Generous: this is the figure, and an API client throttled to a few
	// requests a second takes minutes to write 2000 mirrors.
	h.waitMirrorsWithin(n, 15*time.Minute)
	c.converged = time.Since(start)
	c.cpu = c.proc.cpu()
	h.waitSynced(c.proc, n)
	c.audit.waitQuiet(b, quiet)
	c.writes, _ = c.audit.count()
	return c
}

// BenchmarkController measures west's controller on its own process, at
// 1000 exported Services × 10 endpoints:
//
//   - converge-s: from starting `crossmap controller` (the Link, its
//     Secret and the remote Services exist, no mirror does) until all
//     1000 mirror Services and EndpointSlices are in west;
//     converge-cpu-s the CPU time (user+system) the process used by then,
//     converge-writes its API writes until it settled (2000 creates and
//     the Link's status);
//   - floor-s: the same 2000 writes by a bare client with crossmap's
//     Applier, in the same run just before the controller starts
//     (writeFloor), so what the API server alone needs for them on this
//     machine; converge/floor is the ratio, the part of converge-s that
//     is crossmap's own (1 would be none) and a figure the noise of a
//     shared machine moves less than either time;
//   - rss-MB and peak-rss-MB: its resident set size after the changes
//     below, and the most it ever had (VmRSS, VmHWM);
//   - the timed loop (time/op, p50, p99) is one remote change each, as in
//     BenchmarkPropagation but with the controller in its own process,
//     talking to west's API server directly; cpu-ms/op is the
//     controller's CPU time per change, writes/op its API writes per
//     change, counted in west's audit log, which costs the machine next
//     to nothing where a counting proxy took seconds of its CPU (the
//     Link's status adds one write per 30 s of changes at most);
//   - one-change-writes: the writes of one more change, alone, counted
//     until the controller settled: the target is exactly 1.
func BenchmarkController(b *testing.B) {
	b.Run(fmt.Sprintf("services=%d", benchServices), func(b *testing.B) {
		c := startControllerBench(b, benchServices, true)
		h := c.h
		mirrors := h.mirrorSlices()

		cpu0 := c.proc.cpu()
		w0, _ := c.audit.count()
		lat := h.propagate(b, mirrors)
		cpu1 := c.proc.cpu()
		c.audit.waitQuiet(b, quiet)
		w1, mark := c.audit.count()

		h.change(b.N, mirrors)
		c.audit.waitQuiet(b, quiet)
		w2, _ := c.audit.count()
		if w2-w1 != 1 {
			b.Logf("one remote change cost %d writes: %v", w2-w1, c.audit.since(mark))
		}
		rss, peak := c.proc.memory()

		reportLatency(b, lat)
		b.ReportMetric(c.converged.Seconds(), "converge-s")
		b.ReportMetric(c.floor.Seconds(), "floor-s")
		b.ReportMetric(c.converged.Seconds()/c.floor.Seconds(), "converge/floor")
		b.ReportMetric(c.cpu.Seconds(), "converge-cpu-s")
		b.ReportMetric(float64(c.writes), "converge-writes")
		b.ReportMetric(rss/1e6, "rss-MB")
		b.ReportMetric(peak/1e6, "peak-rss-MB")
		b.ReportMetric(float64((cpu1-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
		b.ReportMetric(float64(w1-w0)/float64(b.N), "writes/op")
		b.ReportMetric(float64(w2-w1), "one-change-writes")
	})
}

// BenchmarkControllerIdle leaves west's controller, converged on 1000
// exported Services, alone for $CROSSMAP_BENCH_IDLE (default 5m), then
// restarts it: a resync of everything, from fresh caches.
//
//   - idle-s: the idle window; idle-writes: the API writes the controller
//     made in it, counted in west's audit log (the target is 0);
//     idle-cpu-ms/s: its CPU time per second of the window;
//   - restart-writes: the writes of a new controller process, from its
//     start until it has reconciled the Link with the remote cluster
//     listed and settled (the target is 0).
func BenchmarkControllerIdle(b *testing.B) {
	idle := benchIdle(b)
	b.Run(fmt.Sprintf("services=%d", benchServices), func(b *testing.B) {
		c := startControllerBench(b, benchServices, false)
		var idleWrites, restartWrites int
		var idleCPU time.Duration
		for b.Loop() {
			w0, mark := c.audit.count()
			cpu0 := c.proc.cpu()
			select {
			case <-time.After(idle):
			case err := <-c.proc.done:
				c.proc.done <- err
				c.proc.checkRunning()
			}
			idleCPU += c.proc.cpu() - cpu0
			w1, mark1 := c.audit.count()
			idleWrites += w1 - w0
			if w1 > w0 {
				b.Logf("writes while idle: %v", c.audit.since(mark))
			}

			c.proc.stop()
			c.proc = c.h.startControllerProcess(c.audit.kubeconfig)
			c.h.waitSynced(c.proc, benchServices)
			c.audit.waitQuiet(b, quiet)
			w2, _ := c.audit.count()
			restartWrites += w2 - w1
			if w2 > w1 {
				b.Logf("writes after a restart: %v", c.audit.since(mark1))
			}
		}
		b.ReportMetric(idle.Seconds(), "idle-s")
		b.ReportMetric(float64(idleWrites)/float64(b.N), "idle-writes")
		b.ReportMetric(float64(idleCPU.Milliseconds())/idle.Seconds()/float64(b.N), "idle-cpu-ms/s")
		b.ReportMetric(float64(restartWrites)/float64(b.N), "restart-writes")
	})
}
