package emissarytest

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// Python is the interpreter the compiler runs with: Debian's, whose
// packages tools/emissary-python.sh installs. A python3 found on PATH may
// be another installation (pyenv) that has none of them.
const Python = "/usr/bin/python3"

const emissaryModule = "github.com/emissary-ingress/emissary/v3"

// InstallScript installs what the compiler needs, as root (make test runs
// it); errors name it.
const InstallScript = "tools/emissary-python.sh"

// pythonModules are the modules Emissary 3.10's compiler imports that
// Python's standard library lacks, and the Debian package of each. Keep in
// sync with tools/emissary-python.sh.
var pythonModules = [][2]string{
	{"yaml", "python3-yaml"},
	{"expiringdict", "python3-expiringdict"},
	{"semantic_version", "python3-semantic-version"},
	{"jsonpatch", "python3-jsonpatch"},
	{"jsonpointer", "python3-json-pointer"},
	{"prometheus_client", "python3-prometheus-client"},
	{"pythonjsonlogger", "python3-pythonjsonlogger"},
	{"click", "python3-click"},
	{"flask", "python3-flask"},
	{"requests", "python3-requests"},
	{"typing_extensions", "python3-typing-extensions"},
	{"pkg_resources", "python3-pkg-resources"},
}

// The driver and the stand-ins travel inside the test binary, so Compile
// works from any package's tests, whatever the working directory.
//
//go:embed compile.py pystub/*.py
var driverFiles embed.FS

// Result is what Emissary's compiler made of the objects.
type Result struct {
	// Errors are Emissary's errors (ir.aconf.errors), by object.
	Errors []Error `json:"errors"`
	// VirtualHosts are the Envoy virtual hosts of the listener's route
	// configuration, in Emissary's order.
	VirtualHosts []VirtualHost `json:"virtualHosts"`
	// Added are the objects Compile added because the input had none of
	// their kind (a Listener, a catch-all Host), so that a test can give
	// another implementation the same objects.
	Added []client.Object `json:"-"`
}

// Error is one of Emissary's errors.
type Error struct {
	Object  string `json:"object"`
	Message string `json:"message"`
}

func (e Error) String() string { return e.Object + ": " + e.Message }

// VirtualHost is one Envoy virtual host: one Emissary Host's hostname.
type VirtualHost struct {
	Name    string   `json:"name"`
	Domains []string `json:"domains"`
	// Routes are in the order Envoy tries them. Envoy has one route per
	// Mapping; the consecutive routes of one weighted group (same match,
	// cumulative numerators) are one Route here.
	Routes []Route `json:"routes"`
}

// Route is an Emissary group as Envoy routes it: one match, and the
// members that split its requests.
type Route struct {
	// Group is Emissary's id of the group (IRHTTPMappingGroup.group_id).
	Group   string   `json:"group"`
	Match   Match    `json:"match"`
	Members []Member `json:"members"`
}

// Match is an Envoy route match, less the runtime fraction (which is the
// members' shares).
type Match struct {
	// Exactly one of Prefix, Path (prefix_exact) and Regex (prefix_regex)
	// is set.
	Prefix        string       `json:"prefix,omitempty"`
	Path          string       `json:"path,omitempty"`
	Regex         string       `json:"regex,omitempty"`
	CaseSensitive bool         `json:"caseSensitive"`
	Headers       []ValueMatch `json:"headers,omitempty"`
	Query         []ValueMatch `json:"query,omitempty"`
}

// ValueMatch is a header or query parameter matcher.
type ValueMatch struct {
	Name string `json:"name"`
	// Kind is exact, regex, prefix, suffix or present.
	Kind  string `json:"kind"`
	Value string `json:"value,omitempty"`
}

func (v ValueMatch) String() string { return v.Name + " " + v.Kind + " " + v.Value }

// Member is one Envoy route of a group: one Mapping's backend.
type Member struct {
	// Cluster is the Envoy cluster's name; Service is what Emissary made
	// it for ("name.namespace:port" as the Mapping wrote it, less any
	// scheme), and TLSContext the TLSContext it originates TLS with.
	Cluster    string `json:"cluster"`
	Service    string `json:"service"`
	TLSContext string `json:"tlsContext,omitempty"`
	// Numerator is the route's runtime_fraction (cumulative in a group);
	// Share is the percent of the group's requests the route takes.
	Numerator int `json:"numerator"`
	Share     int `json:"share"`
	// HostRewrite is host_rewrite_literal, PrefixRewrite prefix_rewrite.
	HostRewrite   string        `json:"hostRewrite,omitempty"`
	PrefixRewrite string        `json:"prefixRewrite,omitempty"`
	Timeout       string        `json:"timeout,omitempty"`
	AddedHeaders  []AddedHeader `json:"addedHeaders,omitempty"`
	// ResponseHeaders are the route's response_headers_to_add. Emissary
	// gives every route of a weighted group the same ones: the union of
	// its members' add_response_headers.
	ResponseHeaders []AddedHeader `json:"responseHeaders,omitempty"`
	// Redirect is true for a route that redirects instead of proxying
	// (Cluster and Service are empty then).
	Redirect bool `json:"redirect,omitempty"`
}

// AddedHeader is one of a route's request_headers_to_add or
// response_headers_to_add.
type AddedHeader struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Append bool   `json:"append"`
}

// VirtualHost returns the virtual host whose domains include domain, or
// nil.
func (r *Result) VirtualHost(domain string) *VirtualHost {
	for i := range r.VirtualHosts {
		if slices.Contains(r.VirtualHosts[i].Domains, domain) {
			return &r.VirtualHosts[i]
		}
	}
	return nil
}

// Compile runs Emissary's configuration compiler on objs and returns what
// it made of them. objs are typed Kubernetes objects with apiVersion and
// kind set (Mappings, Hosts, Listeners, TLSContexts, Modules, Secrets...).
// Emissary emits routes only through a Listener and a Host: when objs have
// no Listener, Compile adds an HTTP Listener with securityModel SECURE,
// so that every route appears once, as an https request meets it; when they
// have no Host, it adds a catch-all Host (hostname "*"). Result.Added lists
// them.
//
// The error is about running the compiler (a missing package, a crash), not
// about the objects: Emissary's complaints about those are Result.Errors.
func Compile(ctx context.Context, objs ...client.Object) (*Result, error) {
	res, err := CompileAll(ctx, objs)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// CompileAll is Compile for several independent sets of objects, each
// compiled on its own, in one run of the compiler: starting Python and
// importing Emissary costs many times what compiling a few Mappings does.
func CompileAll(ctx context.Context, sets ...[]client.Object) ([]*Result, error) {
	if err := CheckPython(ctx); err != nil {
		return nil, err
	}
	dir, err := emissaryPython(ctx)
	if err != nil {
		return nil, err
	}
	inputs := make([]string, len(sets))
	added := make([][]client.Object, len(sets))
	for i, objs := range sets {
		added[i] = defaults(objs)
		var in strings.Builder
		for _, o := range append(slices.Clone(objs), added[i]...) {
			if o.GetObjectKind().GroupVersionKind().Kind == "" {
				return nil, fmt.Errorf("compile %s/%s: the object has no kind; set its TypeMeta", o.GetNamespace(), o.GetName())
			}
			data, err := yaml.Marshal(o)
			if err != nil {
				return nil, fmt.Errorf("marshal %s/%s: %w", o.GetNamespace(), o.GetName(), err)
			}
			in.WriteString("---\n")
			in.Write(data)
		}
		inputs[i] = in.String()
	}
	stdin, err := json.Marshal(inputs)
	if err != nil {
		return nil, fmt.Errorf("encode the compiler's input: %w", err)
	}

	work, err := os.MkdirTemp("", "emissarytest-")
	if err != nil {
		return nil, fmt.Errorf("create work dir: %w", err)
	}
	defer os.RemoveAll(work)
	if err := writeDriver(work); err != nil {
		return nil, err
	}
	schemas := filepath.Join(work, "schemas")
	if err := os.Mkdir(schemas, 0o755); err != nil {
		return nil, fmt.Errorf("create schema dir: %w", err)
	}

	cmd := exec.CommandContext(ctx, Python, filepath.Join(work, "compile.py"), dir, schemas)
	cmd.Stdin = bytes.NewReader(stdin)
	// The module cache is read-only: no bytecode files. The stand-ins
	// come first on the path.
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1", "PYTHONPATH="+filepath.Join(work, "pystub"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run Emissary's compiler: %w: %s", err, lastLines(stderr.String(), 20))
	}
	var outputs []json.RawMessage
	if err := json.Unmarshal(stdout.Bytes(), &outputs); err != nil {
		return nil, fmt.Errorf("decode the output of Emissary's compiler: %w", err)
	}
	if len(outputs) != len(sets) {
		return nil, fmt.Errorf("decode the output of Emissary's compiler: %d results for %d inputs", len(outputs), len(sets))
	}
	results := make([]*Result, len(sets))
	for i, out := range outputs {
		if results[i], err = parse(out); err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		results[i].Added = added[i]
	}
	return results, nil
}

// CheckPython returns an error naming the packages to install when
// /usr/bin/python3 cannot import what Emissary's compiler needs.
func CheckPython(ctx context.Context) error {
	if _, err := os.Stat(Python); err != nil {
		return fmt.Errorf("find %s: %w; Emissary's compiler runs with Debian's python3: apt-get install -y python3 %s (%s does it)", Python, err, strings.Join(packages(nil), " "), InstallScript)
	}
	// One interpreter start checks every module.
	var script strings.Builder
	script.WriteString("import importlib.util\n")
	for _, m := range pythonModules {
		fmt.Fprintf(&script, "if importlib.util.find_spec(%q) is None: print(%q)\n", m[0], m[0])
	}
	out, err := exec.CommandContext(ctx, Python, "-c", script.String()).Output()
	if err != nil {
		return fmt.Errorf("check the python3 modules of Emissary's compiler: %w", err)
	}
	missing := strings.Fields(string(out))
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("run Emissary's compiler: %s has no %s; install with: apt-get install -y %s (%s does it)",
		Python, strings.Join(missing, ", "), strings.Join(packages(missing), " "), InstallScript)
}

// packages are the Debian packages of modules, or of all when modules is
// nil.
func packages(modules []string) []string {
	var out []string
	for _, m := range pythonModules {
		if modules == nil || slices.Contains(modules, m[0]) {
			out = append(out, m[1])
		}
	}
	return out
}

var (
	moduleDirOnce sync.Once
	moduleDir     string
	moduleDirErr  error
)

// emissaryPython is python/ in the emissary module go.mod requires.
func emissaryPython(ctx context.Context) (string, error) {
	moduleDirOnce.Do(func() {
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", emissaryModule)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			moduleDirErr = fmt.Errorf("find module %s: go list -m: %w: %s (run `go mod download` in the repo)", emissaryModule, err, strings.TrimSpace(stderr.String()))
			return
		}
		moduleDir = filepath.Join(strings.TrimSpace(string(out)), "python")
		if _, err := os.Stat(filepath.Join(moduleDir, "ambassador", "compile.py")); err != nil {
			moduleDirErr = fmt.Errorf("find Emissary's compiler: %w (run `go mod download %s`)", err, emissaryModule)
		}
	})
	return moduleDir, moduleDirErr
}

// writeDriver writes compile.py and pystub/ into work.
func writeDriver(work string) error {
	return fs.WalkDir(driverFiles, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		dst := filepath.Join(work, filepath.FromSlash(path))
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		data, err := driverFiles.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read embedded %s: %w", path, err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return fmt.Errorf("write driver file: %w", err)
		}
		return nil
	})
}

// defaults are the Listener and Host Emissary needs to emit routes, for
// those objs lack.
func defaults(objs []client.Object) []client.Object {
	has := func(kind string) bool {
		return slices.ContainsFunc(objs, func(o client.Object) bool { return o.GetObjectKind().GroupVersionKind().Kind == kind })
	}
	var out []client.Object
	if !has("Listener") {
		out = append(out, &ambv3.Listener{
			TypeMeta:   metav1.TypeMeta{APIVersion: ambv3.GroupVersion.String(), Kind: "Listener"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "emissarytest-http"},
			Spec: &ambv3.ListenerSpec{
				Port: 8080, Protocol: "HTTP", SecurityModel: "SECURE",
				HostBinding: ambv3.HostBindingType{Namespace: ambv3.NamespaceBindingType{From: "ALL"}},
			},
		})
	}
	if !has("Host") {
		out = append(out, &ambv3.Host{
			TypeMeta:   metav1.TypeMeta{APIVersion: ambv3.GroupVersion.String(), Kind: "Host"},
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "emissarytest-any"},
			Spec:       &ambv3.HostSpec{Hostname: "*"},
		})
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
