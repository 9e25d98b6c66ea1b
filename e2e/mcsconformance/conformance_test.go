//go:build mcsconformance

package mcsconformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/netns"
	"github.com/crossmap/crossmap/internal/testenv"
)

// clusters are the two planes, in the suite's order: it exports from the
// first and imports in both.
var clusters = []string{"west", "east"}

var bed *testenv.Bed

func TestMain(m *testing.M) {
	// As e2e does: a network namespace of our own, so that the gateway
	// addresses the Links name exist only here and nothing can leave the
	// machine.
	if !netns.Inside() {
		code, err := netns.Reexec()
		if err != nil {
			fmt.Fprintln(os.Stderr, "mcsconformance:", err)
			os.Exit(1)
		}
		os.Exit(code)
	}
	ctrl.SetLogger(logr.Discard())
	controller.UsePlainLists()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	var err error
	bed, err = testenv.Start(ctx, clusters, testenv.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcsconformance: start control planes:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := bed.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "mcsconformance: stop control planes:", err)
	}
	os.Exit(code)
}

// focusFiles are the suite's files whose specs run: its ServiceImport and
// EndpointSlice specs.
var focusFiles = []string{"service_import.go", "endpoint_slice.go"}

// passing are the specs of focusFiles, by their full text, with the
// KEP-1645 section each checks. Every one must pass: a spec of focusFiles
// missing from this list fails the test, so that a newer suite cannot add
// a spec that nobody looked at.
var passing = map[string]string{
	"A ServiceImport should only exist as long as there's at least one exporting cluster":                                                                                          "Importing services",
	"Only labels and annotations specified as exported in the ServiceExport should be propagated to the ServiceImport":                                                             "Labels and annotations",
	"A service exported on two clusters with conflicting annotations and labels should apply the conflict resolution policy and report a Conflict condition on each ServiceExport": "Labels and annotations",
	"Exporting a ClusterIP service should create a ServiceImport of type ClusterSetIP in the service's namespace in each cluster. Unexporting should delete the ServiceImport":     "Importing services",
	"The SessionAffinity for a ClusterSetIP ServiceImport should match the exported service's SessionAffinity":                                                                     "Session affinity",
	"The InternalTrafficPolicy for a ClusterSetIP ServiceImport should match the exported service's InternalTrafficPolicy":                                                         "Internal traffic policy",
	"The TrafficDistribution for a ClusterSetIP ServiceImport should match the exported service's TrafficDistribution":                                                             "Traffic distribution",
	"An IP should be allocated for a ClusterSetIP ServiceImport for each IP family":                                                                                                "ClusterSetIP",
	"The ports for a ClusterSetIP ServiceImport should match those of the exported service":                                                                                        "Service port",
	"A ClusterIP service exported on two clusters should expose the union of the constituent service ports and raise a conflict":                                                   "Service port",
	"A ClusterIP service exported on two clusters with conflicting ports should apply the conflict resolution policy and report a Conflict condition on each ServiceExport":        "Service port",
	"Exporting a headless service should create a ServiceImport of type Headless in the service's namespace in each cluster. Unexporting should delete the ServiceImport":          "Service types",
	"No clusterset IP should be allocated for a Headless ServiceImport":                                                                                                            "ClusterSetIP",
	"Exporting an ExternalName service should set ServiceExport Valid condition to False":                                                                                          "Service types",
	"A service exported on two clusters with conflicting headlessness should apply the conflict resolution policy and report a Conflict condition on the ServiceExport":            "Headlessness",
	"Exporting a service should create an MCS EndpointSlice in the service's namespace in each cluster with the required MCS labels. Unexporting should delete the EndpointSlice.": "Using EndpointSlice objects to track endpoints",
}

// notRun are the suite's other files, and why their specs cannot run on
// control planes without a kubelet and a DNS server. The test fails on a
// file that is in neither list.
var notRun = map[string]string{
	"connectivity.go": "execs into a request pod (kubelet, container runtime) and sends traffic to the clusterset IP " +
		"through the cluster's data plane (kube-proxy or a CNI); these control planes have neither",
	"clusterip_service_dns.go": "queries <svc>.<ns>.svc.clusterset.local from inside a pod: needs a kubelet and a DNS " +
		"server that serves the MCS names (e.g. CoreDNS's multicluster plugin), which crossmap does not ship",
	"headless_service_dns.go": "queries clusterset.local names (A and SRV records, per-pod hostnames of a StatefulSet) " +
		"from inside a pod: needs a kubelet, a StatefulSet controller and an MCS-aware DNS server",
}

// TestMCSConformance runs the upstream MCS API conformance suite (pinned:
// SuiteTag) against crossmap on two control planes linked both ways, once
// with the Links in gateway mode and once in flat mode, and holds crossmap
// to every ServiceImport and EndpointSlice spec. KEP-1645 sections are
// named per spec in passing.
func TestMCSConformance(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	out := os.Getenv("MCS_CONFORMANCE_OUT")
	if out == "" {
		out = t.TempDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	suite := suiteBinary(ctx, t)

	for i, name := range clusters {
		plane := bed.Plane(name)
		startCrossmap(ctx, t, plane, out)
		standIn(ctx, t, plane, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 250, byte(i + 1), 0}), 24), out)
	}
	// Link each cluster to the other: the clusterset is west and east.
	for i, name := range clusters {
		other := clusters[1-i]
		gw := netip.AddrFrom4([4]byte{10, 251, 0, byte(2 - i)})
		link(ctx, t, bed.Plane(name), bed.Plane(other), gw)
	}

	kubeconfig := filepath.Join(out, "kubeconfig")
	writeKubeconfig(t, kubeconfig)

	// Both of a Link's modes: a linked cluster's endpoints in the imports
	// are its gateway, or its pods.
	for _, mode := range []crossmapv1.Mode{crossmapv1.ModeGateway, crossmapv1.ModeFlat} {
		t.Run(string(mode), func(t *testing.T) {
			setMode(ctx, t, mode)
			dir := filepath.Join(out, string(mode))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			runSuite(ctx, t, suite, kubeconfig, dir)
		})
	}
}

// runSuite runs the suite, in dir, against the clusters of kubeconfig, and
// judges its report.
func runSuite(ctx context.Context, t *testing.T, suite, kubeconfig, dir string) {
	t.Helper()
	logPath := filepath.Join(dir, "suite.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	args := []string{"-kubeconfig", kubeconfig, "-contexts", strings.Join(clusters, ","),
		"-organization", "crossmap", "-project", "crossmap", "-url", "https://github.com/crossmap/crossmap",
		"-ginkgo.json-report", "report.json", "-ginkgo.no-color", "-ginkgo.v", "-ginkgo.timeout", "10m"}
	for _, f := range focusFiles {
		args = append(args, "-ginkgo.focus-file", f)
	}
	cmd := exec.CommandContext(ctx, suite, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("MCS conformance suite %s ran in %s (exit: %v); its log: %s; its reports: %s/report.{json,html,yaml}",
		SuiteTag, time.Since(start).Round(time.Second), runErr, logPath, dir)

	specs := readReport(t, filepath.Join(dir, "report.json"))
	judge(t, specs)
	if t.Failed() {
		if log, err := os.ReadFile(logPath); err == nil {
			t.Logf("suite log:\n%s", log)
		}
	}
}

// setMode puts every Link of the clusterset in mode.
func setMode(ctx context.Context, t *testing.T, mode crossmapv1.Mode) {
	t.Helper()
	for i, name := range clusters {
		c, err := bed.Plane(name).Client(controller.NewScheme())
		if err != nil {
			t.Fatal(err)
		}
		var l crossmapv1.Link
		key := client.ObjectKey{Namespace: "crossmap-system", Name: clusters[1-i]}
		if err := c.Get(ctx, key, &l); err != nil {
			t.Fatalf("get Link %s in %s: %v", key, name, err)
		}
		if l.Spec.Mode == mode {
			continue
		}
		patch := client.MergeFrom(l.DeepCopy())
		l.Spec.Mode = mode
		if err := c.Patch(ctx, &l, patch); err != nil {
			t.Fatalf("set Link %s in %s to %s mode: %v", key, name, mode, err)
		}
	}
}

// spec is what the test reads of one entry of Ginkgo's JSON report.
type spec struct {
	ContainerHierarchyTexts     []string
	ContainerHierarchyLocations []struct{ FileName string }
	LeafNodeText                string
	LeafNodeType                string
	LeafNodeLocation            struct{ FileName string }
	State                       string
	Failure                     struct {
		Message  string
		Location struct {
			FileName   string
			LineNumber int
		}
	}
}

// file is the suite's file the spec is in: that of its outermost
// container. (Its own location is report.go for most, where the suite's
// SpecifyWithSpecRef helper calls Specify.)
func (s spec) file() string {
	if len(s.ContainerHierarchyLocations) > 0 {
		return filepath.Base(s.ContainerHierarchyLocations[0].FileName)
	}
	return filepath.Base(s.LeafNodeLocation.FileName)
}

func (s spec) text() string {
	return strings.Join(strings.Fields(strings.Join(append(slices.Clone(s.ContainerHierarchyTexts), s.LeafNodeText), " ")), " ")
}

func readReport(t *testing.T, path string) []spec {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the suite's report: %v", err)
	}
	var reports []struct{ SpecReports []spec }
	if err := json.Unmarshal(data, &reports); err != nil {
		t.Fatalf("decode the suite's report %s: %v", path, err)
	}
	var out []spec
	for _, r := range reports {
		out = append(out, r.SpecReports...)
	}
	return out
}

// judge holds the report to passing and notRun, and logs the result spec
// by spec, as the README's table reads.
func judge(t *testing.T, specs []spec) {
	t.Helper()
	seen := map[string]bool{}
	var passed, skipped int
	for _, s := range specs {
		switch s.LeafNodeType {
		case "BeforeSuite":
			if s.State != "passed" {
				t.Errorf("the suite's BeforeSuite %s: %s", s.State, s.Failure.Message)
			}
			continue
		case "It":
		default:
			continue
		}
		file, text := s.file(), s.text()
		if slices.Contains(focusFiles, file) {
			section, ok := passing[text]
			if !ok {
				t.Errorf("spec %q (%s) is new to this test: look at it, and add it to passing or explain why it cannot run", text, file)
				continue
			}
			seen[text] = true
			if s.State != "passed" {
				t.Errorf("FAIL [KEP-1645 %s] %s: %s\n%s:%d", section, text, s.State,
					s.Failure.Location.FileName, s.Failure.Location.LineNumber)
				t.Logf("    %s", s.Failure.Message)
				continue
			}
			passed++
			t.Logf("pass [KEP-1645 %s] %s", section, text)
			continue
		}
		reason, ok := notRun[file]
		if !ok {
			t.Errorf("spec %q is in %s, a file this test does not know: run it or say why it cannot run", text, file)
			continue
		}
		if s.State != "skipped" {
			t.Errorf("spec %q of %s was %s; it was to be left out (%s)", text, file, s.State, reason)
			continue
		}
		skipped++
		t.Logf("not run (%s) %s: %s", file, text, reason)
	}
	for text, section := range passing {
		if !seen[text] {
			t.Errorf("spec %q [KEP-1645 %s] is not in the suite's report: did %s rename it?", text, section, SuiteTag)
		}
	}
	t.Logf("MCS conformance %s: %d of %d ServiceImport and EndpointSlice specs passed; %d specs not run (connectivity and DNS, see above)",
		SuiteTag, passed, len(passing), skipped)
}

// suiteBinary builds the suite (or finds it built) and returns its path.
func suiteBinary(ctx context.Context, t *testing.T) string {
	t.Helper()
	bin := os.Getenv("MCS_CONFORMANCE_BIN")
	if bin == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			t.Fatalf("find a cache dir for the MCS conformance suite: %v (set MCS_CONFORMANCE_BIN)", err)
		}
		bin = filepath.Join(cache, "crossmap", "mcs-conformance-"+SuiteCommit[:12]+".test")
	}
	var log bytes.Buffer
	if err := Build(ctx, os.Getenv("MCS_API_SRC"), apiVersion(ctx, t), bin, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Log(strings.TrimSpace(log.String()))
	return bin
}

// apiVersion is the sigs.k8s.io/mcs-api version crossmap builds with, as
// its go.mod says. (A test binary's build info lists no dependencies.)
func apiVersion(ctx context.Context, t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Version}}", APIModule)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("find the version of %s in go.mod: %v", APIModule, err)
	}
	return strings.TrimSpace(string(out))
}

// startCrossmap runs crossmap's controller, every role and the MCS role
// (--mcs), against plane,
// until the test ends.
func startCrossmap(ctx context.Context, t *testing.T, plane *testenv.Plane, out string) {
	t.Helper()
	logger := fileLogger(t, filepath.Join(out, "crossmap-"+plane.Name+".log")).WithName(plane.Name)
	c, err := plane.Client(controller.NewScheme())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "crossmap-system"}}); err != nil {
		t.Fatalf("create namespace crossmap-system in %s: %v", plane.Name, err)
	}
	cfg := controller.DefaultConfig()
	cfg.ClusterName = plane.Name
	cfg.Namespace = "crossmap-system"
	cfg.StatusAddr = "127.0.0.1:0"
	cfg.RemoteHealthPeriod = time.Second
	cfg.MCS = true
	// The suite looks at API objects, not at traffic: the gateways of
	// these Links are never reached, so no certificates are needed.
	cfg.InsecureCleartext = true
	ctl, err := controller.New(plane.Config, cfg, controller.Deps{Registry: prometheus.NewRegistry(), Logger: logger})
	if err != nil {
		t.Fatalf("create %s controller: %v", plane.Name, err)
	}
	runCtx, cancel := context.WithCancel(log.IntoContext(ctx, logger))
	done := make(chan error, 1)
	go func() { done <- ctl.Manager.Start(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && err.Error() != "leader election lost" {
			t.Errorf("%s controller: %v", plane.Name, err)
		}
	})
}

// fileLogger logs to path, which the test names when it fails: the
// controllers' logs would drown the suite's verdicts.
func fileLogger(t *testing.T, path string) logr.Logger {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		_ = f.Close()
		if t.Failed() {
			t.Logf("crossmap's log: %s", path)
		}
	})
	return funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(f, time.Now().UTC().Format(time.RFC3339Nano), prefix, args)
	}, funcr.Options{Verbosity: 1})
}

// standIn runs a StandIn for plane until the test ends.
func standIn(ctx context.Context, t *testing.T, plane *testenv.Plane, pods netip.Prefix, out string) {
	t.Helper()
	// Emptying a namespace lists every resource, deprecated ones too: their
	// warnings say nothing about crossmap.
	cfg := rest.CopyConfig(plane.Config)
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := &StandIn{Cluster: plane.Name, Client: cs, Dynamic: dyn, Discovery: disc, NamespacePrefix: "mcs-conformance-",
		Pods: pods, Log: fileLogger(t, filepath.Join(out, "standin-"+plane.Name+".log"))}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("stand-in for %s: %v", plane.Name, err)
		}
	})
}

// link creates, in from, a Link to to with read-only credentials, in
// gateway mode with the gateway at gw (an address of this network
// namespace) and no probe, so that nothing is ever sent to it.
func link(ctx context.Context, t *testing.T, from, to *testenv.Plane, gw netip.Addr) {
	t.Helper()
	if err := netns.AddAddress(gw); err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := to.ReadOnlyKubeconfig(ctx, "link-from-"+from.Name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := from.Client(controller.NewScheme())
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range []client.Object{
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: "crossmap-system", Name: to.Name + "-credentials"},
			Data:       map[string][]byte{"kubeconfig": kubeconfig},
		},
		&crossmapv1.Link{
			ObjectMeta: metav1.ObjectMeta{Namespace: "crossmap-system", Name: to.Name},
			Spec: crossmapv1.LinkSpec{
				ClusterName:       to.Name,
				CredentialsSecret: crossmapv1.SecretKeyRef{Name: to.Name + "-credentials"},
				Gateway: crossmapv1.GatewaySpec{Addresses: []string{gw.String()}, Port: 4143,
					Identity: ingress.GatewayIdentity(to.Name)},
			},
		},
	} {
		if err := c.Create(ctx, obj); err != nil {
			t.Fatalf("create %T %s in %s: %v", obj, client.ObjectKeyFromObject(obj), from.Name, err)
		}
	}
}

// writeKubeconfig writes one kubeconfig with an admin context per cluster,
// named after it, for the suite's --contexts.
func writeKubeconfig(t *testing.T, path string) {
	t.Helper()
	merged := clientcmdapi.NewConfig()
	for _, name := range clusters {
		data, err := bed.Plane(name).Kubeconfig("mcs-conformance", []string{"system:masters"})
		if err != nil {
			t.Fatal(err)
		}
		kc, err := clientcmd.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range kc.Clusters {
			merged.Clusters[k] = v
		}
		for k, v := range kc.AuthInfos {
			merged.AuthInfos[k] = v
		}
		for k, v := range kc.Contexts {
			merged.Contexts[k] = v
		}
	}
	merged.CurrentContext = clusters[0]
	if err := clientcmd.WriteToFile(*merged, path); err != nil {
		t.Fatal(err)
	}
}
