package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"

	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// benchProfileDir, from $CROSSMAP_BENCH_PROFILE, is where the benchmarks
// write profiles of their timed part only: go test's -cpuprofile and
// -memprofile cover the whole process, whose setup (a thousand Services
// created and mirrored) would drown the part being measured.
//
//	CROSSMAP_BENCH_PROFILE=/tmp/prof go test ./e2e -run '^$' -bench 'Propagation/services=1000' -benchtime 30x
//	go tool pprof -top /tmp/prof/Propagation_services=1000.cpu.pb.gz
//	go tool pprof -sample_index=alloc_space -top -diff_base /tmp/prof/Propagation_services=1000.heap0.pb.gz /tmp/prof/Propagation_services=1000.heap1.pb.gz
var benchProfileDir = os.Getenv("CROSSMAP_BENCH_PROFILE")

// profileTimed starts a CPU profile and takes a first heap profile, if
// profiles were asked for; the function it returns stops the CPU profile
// and takes the second heap profile, so that the difference of the two
// heap profiles is what the timed part allocated. The controllers run in
// this process, so the profiles show them (and the benchmark's own
// clients, which are easy to tell apart by package).
func profileTimed(b *testing.B) (stop func()) {
	if benchProfileDir == "" {
		return func() {}
	}
	if err := os.MkdirAll(benchProfileDir, 0o755); err != nil {
		b.Fatal(err)
	}
	base := filepath.Join(benchProfileDir, strings.TrimPrefix(strings.ReplaceAll(b.Name(), "/", "_"), "Benchmark"))
	writeHeap := func(path string) {
		runtime.GC()
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
	writeHeap(base + ".heap0.pb.gz")
	f, err := os.Create(base + ".cpu.pb.gz")
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		writeHeap(base + ".heap1.pb.gz")
	}
}

// reconcileWork is how often, and for how long in all, the controllers of
// this process reconciled, per controller name (controller-runtime's own
// series, which every manager of the process shares: the benchmarks run
// one Link controller and one route controller, both west's).
func reconcileWork(b *testing.B) map[string][2]float64 {
	b.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string][2]float64{}
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_time_seconds" {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "controller" {
					w := out[l.GetValue()]
					w[0] += float64(m.GetHistogram().GetSampleCount())
					w[1] += m.GetHistogram().GetSampleSum()
					out[l.GetValue()] = w
				}
			}
		}
	}
	return out
}

// reportReconcileWork reports, per operation, the reconciles of the link
// and route controllers since before, and the time they took in all.
func reportReconcileWork(b *testing.B, before map[string][2]float64) {
	after := reconcileWork(b)
	for _, name := range []string{"link", "route"} {
		n := after[name][0] - before[name][0]
		secs := after[name][1] - before[name][1]
		b.ReportMetric(n/float64(b.N), name+"-reconciles/op")
		b.ReportMetric(secs*1000/float64(b.N), name+"-reconcile-ms/op")
	}
}
