package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// Module is the module path RepoRoot looks for.
const Module = "github.com/crossmap/crossmap"

// Options configures Start. The zero value is what tests and the demo want
// when run from inside the repo after `make tools`.
type Options struct {
	// AssetsDir holds the kube-apiserver and etcd binaries. Empty means
	// $KUBEBUILDER_ASSETS, else <repo>/bin, where `make tools` puts them.
	AssetsDir string
	// CRDDirs are searched recursively for CRD YAML to install next to
	// Emissary's CRDs. nil means <repo>/manifests/crd if it exists; a
	// non-nil empty slice installs Emissary's CRDs only. Dirs given
	// explicitly must exist.
	CRDDirs []string
	// WithoutEmissary leaves Emissary's CRDs out: the planes serve only the
	// CRDs of CRDDirs, as a cluster whose edge is not Emissary does.
	WithoutEmissary bool
	// WithoutMCS leaves the Multi-Cluster Services CRDs (ServiceExport,
	// ServiceImport, from sigs.k8s.io/mcs-api) out, as on a cluster that
	// has not installed them.
	WithoutMCS bool
	// Out, when set, receives every plane's kube-apiserver output, each line
	// prefixed with "[<plane>] " so that interleaved planes stay readable.
	Out io.Writer
}

// resolve fills in the defaults and checks that the binaries are there, so
// that a missing `make tools` fails with a message that says so instead of
// envtest's retries against /usr/local/kubebuilder/bin.
func (o Options) resolve() (opts Options, crdDirsRequired bool, root string, err error) {
	root, rootErr := RepoRoot()
	if o.AssetsDir == "" {
		o.AssetsDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if o.AssetsDir == "" {
		if rootErr != nil {
			return o, false, "", fmt.Errorf("find test binaries: KUBEBUILDER_ASSETS is unset and %w", rootErr)
		}
		o.AssetsDir = filepath.Join(root, "bin")
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		path := filepath.Join(o.AssetsDir, name)
		if info, err := os.Stat(path); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
			return o, false, "", fmt.Errorf("find test binaries: no executable %s (run `make tools`, or set KUBEBUILDER_ASSETS to a dir holding kube-apiserver and etcd)", path)
		}
	}

	crdDirsRequired = o.CRDDirs != nil
	if o.CRDDirs == nil && rootErr == nil {
		o.CRDDirs = []string{filepath.Join(root, "manifests", "crd")}
	}
	return o, crdDirsRequired, root, nil
}

// Bed is a set of running control planes, one per cluster name.
type Bed struct {
	// Planes are in the order of the names given to Start.
	Planes []*Plane
}

// Start starts one control plane per name, in parallel, each with Emissary's
// (unless opts.WithoutEmissary), the Multi-Cluster Services API's (unless
// opts.WithoutMCS) and crossmap's CRDs installed and
// established. ctx bounds the loading of
// the CRDs and the wait for the planes; envtest's own start timeout bounds
// each process. On error every plane already started is stopped again.
func Start(ctx context.Context, names []string, opts Options) (*Bed, error) {
	if len(names) == 0 {
		return nil, errors.New("start test bed: no plane names")
	}
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if name == "" || seen[name] {
			return nil, fmt.Errorf("start test bed: plane name %q is empty or repeated", name)
		}
		seen[name] = true
	}

	opts, dirsRequired, root, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	crds, err := loadCRDs(ctx, root, !opts.WithoutEmissary, opts.CRDDirs, dirsRequired)
	if err != nil {
		return nil, err
	}
	if !opts.WithoutMCS {
		mcs, err := MCSCRDs()
		if err != nil {
			return nil, err
		}
		crds = append(crds, mcs...)
	}

	var outMu sync.Mutex // one writer, many planes: lines must not interleave
	bed := &Bed{Planes: make([]*Plane, len(names))}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		var out io.Writer
		if opts.Out != nil {
			out = &prefixWriter{mu: &outMu, w: opts.Out, prefix: "[" + name + "] "}
		}
		wg.Go(func() {
			bed.Planes[i], errs[i] = startPlane(name, opts.AssetsDir, copyCRDs(crds), out)
		})
	}
	wg.Wait()
	err = errors.Join(errs...)
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, errors.Join(err, bed.Stop())
	}
	return bed, nil
}

// copyCRDs deep-copies crds for one plane: envtest writes the created
// object's resourceVersion back into each CRD, which would make the next
// plane's create fail.
func copyCRDs(crds []*apiextensionsv1.CustomResourceDefinition) []*apiextensionsv1.CustomResourceDefinition {
	out := make([]*apiextensionsv1.CustomResourceDefinition, len(crds))
	for i, crd := range crds {
		out[i] = crd.DeepCopy()
	}
	return out
}

// Plane returns the plane called name, or nil if there is none.
func (b *Bed) Plane(name string) *Plane {
	for _, p := range b.Planes {
		if p != nil && p.Name == name {
			return p
		}
	}
	return nil
}

// Stop stops every plane, in parallel, and returns all their errors.
func (b *Bed) Stop() error {
	errs := make([]error, len(b.Planes))
	var wg sync.WaitGroup
	for i, p := range b.Planes {
		if p == nil {
			continue // never started (Start failed for it)
		}
		wg.Go(func() { errs[i] = p.stop() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RepoRoot returns the directory holding crossmap's go.mod, walking up from
// the working directory (tests run in their package's directory). Nested
// modules such as tools/etcd are passed over because their module differs.
func RepoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find repo root: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if moduleName(filepath.Join(dir, "go.mod")) == Module {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("find repo root: no go.mod of %s above %s", Module, wd)
		}
	}
}

// prefixWriter writes whole lines to w, each prefixed, holding mu so that
// several processes sharing w do not interleave within a line. A trailing
// partial line waits for the rest of it.
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := p.buf[:i+1]
		if _, err := io.WriteString(p.w, p.prefix); err != nil {
			return len(b), err
		}
		if _, err := p.w.Write(line); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}
