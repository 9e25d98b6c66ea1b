package remote_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/pki"
	"github.com/crossmap/crossmap/internal/remote"
)

// costGatewayEnv, set, makes the test binary the stand-in gateway of
// BenchmarkProbeCost (see TestMain): the gateway runs as a process of its
// own, so that the CPU the benchmark reports for the prober is the
// prober's alone.
const costGatewayEnv = "CROSSMAP_PROBE_COST_GATEWAY"

func TestMain(m *testing.M) {
	if dir := os.Getenv(costGatewayEnv); dir != "" {
		if err := costGateway(dir); err != nil {
			fmt.Fprintln(os.Stderr, "probe cost gateway:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// costGateway serves the probe over mutual TLS on loopback with the
// certificates in dir, as crossmap's gateway Host would: it prints its
// port, then a line per request, and when stdin closes its CPU time
// since it began serving, in microseconds.
func costGateway(dir string) error {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			panic(err)
		}
		return b
	}
	cert, err := tls.X509KeyPair(read("gateway.crt"), read("gateway.key"))
	if err != nil {
		return err
	}
	roots, err := pki.Pool(read("ca.crt"))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	lines := make(chan string, 64)
	go func() {
		for s := range lines {
			fmt.Fprintln(out, s)
			out.Flush()
		}
	}()
	start := cpuTime()
	lines <- strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		lines <- "probe"
	}), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: roots,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	// Until the benchmark closes stdin.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	_ = srv.Close()
	close(lines)
	fmt.Fprintln(os.Stdout, "cpu", (cpuTime() - start).Microseconds())
	return nil
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProbeCost is what one Link's gateway probe costs with the
// default settings (a round every crossmapv1.DefaultProbePeriod, each a
// new connection and a mutual TLS handshake): one op is one probe round,
// and it reports the prober's CPU (this process) and the gateway's (its
// own process) per round and per second of probing.
func BenchmarkProbeCost(b *testing.B) {
	dir := b.TempDir()
	now := time.Now()
	caPEM, caKey, err := pki.NewCA("probe cost", time.Hour, now)
	if err != nil {
		b.Fatal(err)
	}
	ca, err := pki.ParseAuthority(caPEM, caKey)
	if err != nil {
		b.Fatal(err)
	}
	issue := func(id string, usage pki.Usage) (crt, key []byte) {
		crt, key, err := ca.Issue(id, usage, time.Hour, now)
		if err != nil {
			b.Fatal(err)
		}
		return crt, key
	}
	gwCrt, gwKey := issue(gatewayID, pki.Server)
	for name, data := range map[string][]byte{"ca.crt": caPEM, "gateway.crt": gwCrt, "gateway.key": gwKey} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	clCrt, clKey := issue("west.crossmap-gateway.svc.cluster.local", pki.Client)
	client, err := tls.X509KeyPair(clCrt, clKey)
	if err != nil {
		b.Fatal(err)
	}
	roots, _ := pki.Pool(caPEM)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), costGatewayEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		b.Fatalf("the gateway process printed no port: %v", lines.Err())
	}
	port, err := strconv.Atoi(lines.Text())
	if err != nil {
		b.Fatalf("the gateway process printed %q, not a port", lines.Text())
	}

	p := remote.StartProber(b.Context(), remote.ProbeConfig{
		Addresses: []netip.Addr{loopback}, Port: int32(port), Path: crossmapv1.DefaultProbePath,
		Period: crossmapv1.DefaultProbePeriod, Timeout: crossmapv1.DefaultProbeTimeout,
		FailureThreshold: crossmapv1.DefaultFailureThreshold, Host: gatewayID,
		TLS: &tls.Config{Certificates: []tls.Certificate{client}, RootCAs: roots, ServerName: gatewayID, MinVersion: tls.VersionTLS12},
	})
	defer p.Stop()
	round := func() {
		if !lines.Scan() || lines.Text() != "probe" {
			b.Fatalf("gateway process: %q, %v", lines.Text(), lines.Err())
		}
	}
	// The first round, untimed: the connection machinery warms up.
	round()
	began, cpu := time.Now(), cpuTime()
	rounds := 0
	for b.Loop() {
		round()
		rounds++
	}
	proberCPU, elapsed := cpuTime()-cpu, time.Since(began)
	p.Stop()
	if r := p.Result(); !r.Alive || r.Err != nil {
		b.Fatalf("the gateway failed its probe: %+v", r)
	}
	_ = stdin.Close()
	var gatewayCPU time.Duration
	for lines.Scan() {
		if us, ok := strings.CutPrefix(lines.Text(), "cpu "); ok {
			n, _ := strconv.ParseInt(us, 10, 64)
			gatewayCPU = time.Duration(n) * time.Microsecond
		}
	}
	// The gateway's CPU covers its whole life (the warm-up round too);
	// per round it is a slight overestimate.
	b.ReportMetric(float64(rounds)/elapsed.Seconds(), "probes/s")
	b.ReportMetric(float64(proberCPU.Microseconds())/float64(rounds), "prober-cpu-µs/probe")
	b.ReportMetric(proberCPU.Seconds()*1000/elapsed.Seconds(), "prober-cpu-ms/s")
	b.ReportMetric(float64(gatewayCPU.Microseconds())/float64(rounds+1), "gateway-cpu-µs/probe")
}
