#!/usr/bin/env bash
# Runs crossmap's benchmarks several times and prints the median of every
# figure, with the machine they ran on, ready to copy into the README.
#
#   tools/bench.sh [BIN]      (BIN defaults to ./bin; `make bench` passes it)
#
# The pure packages run 5 times; the end-to-end benchmarks, which start two
# control planes, 3 times with fixed iteration counts, except the idle one,
# which runs once: it leaves a controller alone for $BENCH_IDLE (default
# 5m, the figure issue 6 asks for; a shorter one is only a smoke run), so
# the whole takes about 20 minutes. Medians, not means: the machines this
# runs on are small and shared, and one disturbed run should not move the
# figure. The raw `go test` output is kept in BIN/bench.txt (for benchstat,
# or a second look).
#
# The controller benchmarks run the crossmap binary, built here from this
# tree, as a process of its own, to measure its memory and CPU alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-./bin}"
mkdir -p "$bin"
bin="$(cd "$bin" && pwd)"
cd "$root"
GO="${GO:-go}"
# The e2e benchmarks run real kube-apiservers and etcds from BIN.
export KUBEBUILDER_ASSETS="${KUBEBUILDER_ASSETS:-$bin}"

raw="$bin/bench.txt"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
: >"$raw"
idle="${BENCH_IDLE:-5m}"
export CROSSMAP_BENCH_IDLE="$idle"
echo "building crossmap ..." >&2
"$GO" build -o "$work/crossmap" ./cmd/crossmap
export CROSSMAP_BIN="$work/crossmap"

# bench DESCRIPTION GO-TEST-ARGS... runs one `go test`, appending its output
# to the raw file; on failure it shows that output and stops.
bench() {
	local what=$1
	shift
	echo "running $what ..." >&2
	if ! "$GO" test -run '^$' "$@" >"$work/out.txt" 2>&1; then
		cat "$work/out.txt" >&2
		echo "bench.sh: $what failed" >&2
		exit 1
	fi
	cat "$work/out.txt" >>"$raw"
}

start=$SECONDS
bench "./mapper ./edge (5 runs)" -bench . -benchmem -count 5 ./mapper ./edge
bench "./e2e BenchmarkPropagation (3 runs of 100 changes)" -bench Propagation -count 3 -benchtime 100x -timeout 30m ./e2e
bench "./e2e BenchmarkInitialConvergence (3 runs of 5 Links)" -bench InitialConvergence -count 3 -benchtime 5x -timeout 30m ./e2e
bench "./e2e BenchmarkController (3 runs: a start, then 100 changes)" -bench 'Controller$' -count 3 -benchtime 100x -timeout 60m ./e2e
bench "./e2e BenchmarkFailover (3 runs of 20 gateway deaths)" -bench Failover -count 3 -benchtime 20x -timeout 30m ./e2e
bench "./e2e BenchmarkControllerIdle (1 run: idle $idle, then a restart)" -bench ControllerIdle -count 1 -benchtime 1x -timeout 60m ./e2e
elapsed=$((SECONDS - start))

# One line per figure of every run: package, benchmark, unit, value, and
# the run's number for that benchmark (to pair direct and via-edge runs).
awk '
	/^pkg: / { pkg = $2; sub(/^github\.com\/crossmap\/crossmap\//, "", pkg) }
	/^Benchmark/ && / ns\/op/ {
		name = $1
		sub(/^Benchmark/, "", name)
		sub(/-[0-9]+$/, "", name)
		run = ++runs[pkg SUBSEP name]
		for (i = 3; i + 1 <= NF; i += 2) print pkg, name, $(i + 1), $i, run
	}
' "$raw" >"$work/figures.txt"

# Medians: sort each figure's values, then take the middle one (or the mean
# of the middle two).
median() {
	sort -k1,1 -k2,2 -k3,3 -k4,4g | awk '
		function flush() {
			if (n == 0) return
			m = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			print key, m, n
			n = 0
		}
		{ k = $1 " " $2 " " $3; if (k != key) { flush(); key = k } v[++n] = $4 }
		END { flush() }
	'
}
median <"$work/figures.txt" >"$work/medians.txt"

# The proxy ratio, paired by run: direct and via-edge run next to each
# other, so the ratio of one run is less disturbed than a ratio of medians.
awk '
	$1 == "edge" && $2 ~ /^ProxyOverhead\// {
		split($2, p, "/")
		val[p[2], $3, $5] = $4
		if (!($3 in seen)) { seen[$3] = 1; units[++nu] = $3 }
		if ($5 > runs) runs = $5
	}
	END {
		for (u = 1; u <= nu; u++)
			for (r = 1; r <= runs; r++)
				if (val["direct", units[u], r] > 0 && val["via-edge", units[u], r] != "")
					print "ratio", "proxy", units[u], val["via-edge", units[u], r] / val["direct", units[u], r]
	}
' "$work/figures.txt" | median >"$work/ratios.txt"

cpu="$(awk -F': *' '$1 ~ /^model name/ { print $2; exit }' /proc/cpuinfo)"
echo
echo "crossmap benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), ${elapsed}s"
echo "machine: $(nproc) cores (nproc), ${cpu:-unknown CPU}, $("$GO" version | sed 's/^go version //')"
echo "runs:    ./mapper and ./edge 5 x 1s; ./e2e 3 x (100 changes, 5 Links for InitialConvergence, 20 deaths for Failover), ControllerIdle 1 x $idle"
echo "figures: medians over the runs; p50/p99 are per request, change or gateway death within a run"
echo
awk '
	function num(v) { return v >= 100 ? sprintf("%.0f", v) : v >= 10 ? sprintf("%.1f", v) : sprintf("%.2f", v) }
	function dur(ns) {
		if (ns >= 1e9) return num(ns / 1e9) " s"
		if (ns >= 1e6) return num(ns / 1e6) " ms"
		if (ns >= 1e3) return num(ns / 1e3) " us"
		return num(ns) " ns"
	}
	function size(b) {
		if (b >= 1e6) return num(b / 1e6) " MB"
		if (b >= 1e3) return num(b / 1e3) " kB"
		return num(b) " B"
	}
	# pct prints the p50 or p99 figure of a benchmark, whatever its unit.
	function pct(k, p,    u) {
		for (u in units) if (index(u, p "-") == 1 && ((k, u) in med)) return num(med[k, u]) " " substr(u, length(p) + 2)
		return "-"
	}
	# The figures give the order the benchmarks ran in, the medians the
	# values, the ratios the proxy line.
	FILENAME ~ /figures/ {
		k = $1 " " $2
		if (!(k in pkgOf)) { order[++n] = k; pkgOf[k] = $1; nameOf[k] = $2 }
		next
	}
	FILENAME ~ /medians/ { k = $1 " " $2; med[k, $3] = $4; runs[k] = $5; units[$3] = 1; next }
	{ ratio[$3] = $4 }
	END {
		fmt = "%-42s %4s %10s %10s %10s %10s %10s\n"
		printf fmt, "benchmark", "runs", "time/op", "p50", "p99", "B/op", "allocs/op"
		for (i = 1; i <= n; i++) {
			k = order[i]
			if (pkgOf[k] != last) { print pkgOf[k]; last = pkgOf[k] }
			printf fmt, "  " nameOf[k], runs[k], dur(med[k, "ns/op"]), pct(k, "p50"), pct(k, "p99"),
				((k, "B/op") in med) ? size(med[k, "B/op"]) : "-",
				((k, "allocs/op") in med) ? sprintf("%.0f", med[k, "allocs/op"]) : "-"
		}
		if ("ns/op" in ratio)
			printf "\nproxy overhead, via-edge / direct (median of the paired runs): time/op %.2fx, p50 %.2fx, p99 %.2fx\n",
				ratio["ns/op"], ratio["p50-us"], ratio["p99-us"]
		# Every other figure a benchmark reports (b.ReportMetric), one a
		# line, with its unit as the benchmark names it.
		header = 0
		for (i = 1; i <= n; i++) {
			k = order[i]
			for (u in units) {
				if (!((k, u) in med) || u == "ns/op" || u == "B/op" || u == "allocs/op" || u ~ /^p(50|99)-/) continue
				line[k, u] = sprintf("  %-40s %4s %12s  %s", nameOf[k], runs[k], num(med[k, u]), u)
				keys[k] = keys[k] SUBSEP u
			}
			if (!(k in keys)) continue
			if (!header) { printf "\nother figures (medians)\n%-42s %4s %12s  %s\n", "benchmark", "runs", "value", "unit"; header = 1 }
			m = split(substr(keys[k], 2), us, SUBSEP)
			for (j = 2; j <= m; j++) # insertion sort: POSIX awk has no asort
				for (l = j; l > 1 && us[l - 1] > us[l]; l--) { t = us[l]; us[l] = us[l - 1]; us[l - 1] = t }
			for (j = 1; j <= m; j++) print line[k, us[j]]
		}
	}
' "$work/figures.txt" "$work/medians.txt" "$work/ratios.txt"
echo
echo "raw go test output: $raw"
