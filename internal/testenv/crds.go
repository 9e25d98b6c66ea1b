package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const (
	emissaryModule = "github.com/emissary-ingress/emissary/v3"
	// emissaryCRDFile is the installable CRD manifest shipped in the emissary
	// module. Its sibling pkg/api/getambassador.io/crds.yaml is not
	// installable (its schemas are not structural).
	emissaryCRDFile = "manifests/emissary/emissary-crds.yaml.in"
	// emissaryVersion is the only Emissary API version crossmap reads and
	// writes, so it is the only one the test bed serves.
	emissaryVersion = "v3alpha1"
)

// loadCRDs returns every CRD a plane gets: Emissary's (when emissary is
// set), then those found under crdDirs. A CRD name seen twice is an error rather than a silent overwrite
// (envtest would update the first with the second), because it almost always
// means someone copied Emissary's YAML into manifests/crd.
func loadCRDs(ctx context.Context, root string, emissary bool, crdDirs []string, dirsRequired bool) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	var crds []*apiextensionsv1.CustomResourceDefinition
	if emissary {
		var err error
		if crds, err = emissaryCRDs(ctx, root); err != nil {
			return nil, err
		}
	}
	for _, dir := range crdDirs {
		more, err := dirCRDs(dir, dirsRequired)
		if err != nil {
			return nil, err
		}
		crds = append(crds, more...)
	}
	seen := make(map[string]bool, len(crds))
	for _, crd := range crds {
		if seen[crd.Name] {
			return nil, fmt.Errorf("load CRDs: %s is defined twice", crd.Name)
		}
		seen[crd.Name] = true
	}
	return crds, nil
}

// emissaryCRDs loads Emissary's CRDs from the emissary module and rewrites
// them so a bare kube-apiserver can serve them. As shipped they store v2 and
// convert through Emissary's apiext webhook, which does not run here, so every
// v3alpha1 write would fail; and envtest skips files ending in .in anyway.
// Transforming at load time, instead of keeping a copy in the repo, keeps the
// schemas exactly those of the Emissary version in go.mod.
func emissaryCRDs(ctx context.Context, root string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	dir, err := emissaryModuleDir(ctx, root)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, filepath.FromSlash(emissaryCRDFile))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Emissary CRDs: %w", err)
	}
	all, err := decodeCRDs(data, path)
	if err != nil {
		return nil, err
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, crd := range all {
		if onlyVersion(crd, emissaryVersion) {
			crds = append(crds, crd)
		}
	}
	if len(crds) == 0 {
		return nil, fmt.Errorf("read Emissary CRDs: no %s CRD in %s", emissaryVersion, path)
	}
	return crds, nil
}

// onlyVersion trims crd down to version, served and stored, with no
// conversion (the API server then defaults the strategy to None). It reports
// false when crd has no such version, so the caller drops it.
func onlyVersion(crd *apiextensionsv1.CustomResourceDefinition, version string) bool {
	for _, v := range crd.Spec.Versions {
		if v.Name != version {
			continue
		}
		v.Served = true
		v.Storage = true
		crd.Spec.Versions = []apiextensionsv1.CustomResourceDefinitionVersion{v}
		crd.Spec.Conversion = nil
		return true
	}
	return false
}

// dirCRDs reads every CustomResourceDefinition in the YAML and JSON files
// under dir (recursively, in lexical order), ignoring other kinds such as a
// kustomization.yaml. A missing dir is an error only when required: the
// default manifests/crd may not exist yet.
func dirCRDs(dir string, required bool) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) && !required {
		return nil, nil
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		more, err := decodeCRDs(data, path)
		if err != nil {
			return err
		}
		crds = append(crds, more...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read CRDs under %s: %w", dir, err)
	}
	return crds, nil
}

// decodeCRDs returns the CustomResourceDefinition documents of a multi-document
// YAML (or JSON) stream and skips every other kind. A CRD in anything but
// apiextensions.k8s.io/v1 is an error: current API servers reject v1beta1,
// and saying so here beats a failure deep inside envtest.
func decodeCRDs(data []byte, source string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var crds []*apiextensionsv1.CustomResourceDefinition
	for i := 0; ; i++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return crds, nil
		}
		if err != nil {
			return nil, fmt.Errorf("split %s: %w", source, err)
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			return nil, fmt.Errorf("decode document %d of %s: %w", i, source, err)
		}
		if meta.Kind != "CustomResourceDefinition" {
			continue // also empty documents (comments only)
		}
		if meta.APIVersion != apiextensionsv1.SchemeGroupVersion.String() {
			return nil, fmt.Errorf("document %d of %s: CRD is %s, only %s is installable",
				i, source, meta.APIVersion, apiextensionsv1.SchemeGroupVersion)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.Unmarshal(doc, crd); err != nil {
			return nil, fmt.Errorf("decode CRD in document %d of %s: %w", i, source, err)
		}
		crds = append(crds, crd)
	}
}

// emissaryModuleDir finds the emissary module on disk. `go list -m` in the
// repo is authoritative (it honours replace directives and GOFLAGS); the
// module cache path is the fallback for a demo binary run where the go
// command or the repo is not at hand.
func emissaryModuleDir(ctx context.Context, root string) (string, error) {
	var listErr error
	if root != "" {
		cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", emissaryModule)
		cmd.Dir = root
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		dir := strings.TrimSpace(string(out))
		if err == nil && dir != "" {
			return dir, nil
		}
		listErr = fmt.Errorf("go list -m %s: %w: %s", emissaryModule, err, strings.TrimSpace(stderr.String()))
	}

	version := buildInfoVersion(emissaryModule)
	if version == "" && root != "" {
		version = goModVersion(filepath.Join(root, "go.mod"), emissaryModule)
	}
	if version == "" {
		return "", errors.Join(listErr, fmt.Errorf("find module %s: no version in the build info or go.mod", emissaryModule))
	}
	// The module cache escapes upper-case letters in paths ("!x"); the
	// emissary path has none, so it is used as is.
	dir := filepath.Join(modCache(), filepath.FromSlash(emissaryModule)+"@"+version)
	if _, err := os.Stat(dir); err != nil {
		return "", errors.Join(listErr, fmt.Errorf("find module %s@%s: %w (run `go mod download` in the repo)", emissaryModule, version, err))
	}
	return dir, nil
}

// buildInfoVersion is the version of module linked into this binary, or "".
func buildInfoVersion(module string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, dep := range info.Deps {
		if dep.Path != module {
			continue
		}
		if dep.Replace != nil && dep.Replace.Path == module {
			return dep.Replace.Version
		}
		return dep.Version
	}
	return ""
}

// goModVersion is the version of module required in the go.mod at path, or
// "". A line scan is enough for the two forms go mod writes (a "require"
// line, or a line inside a require block).
func goModVersion(path, module string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == "require" {
			fields = fields[1:]
		}
		// The "v" check skips a replace block's "module => ..." line.
		if len(fields) >= 2 && fields[0] == module && strings.HasPrefix(fields[1], "v") {
			return fields[1]
		}
	}
	return ""
}

// modCache is $GOMODCACHE, defaulting like the go command to the first
// GOPATH entry's pkg/mod.
func modCache() string {
	if dir := os.Getenv("GOMODCACHE"); dir != "" {
		return dir
	}
	gopath := filepath.SplitList(build.Default.GOPATH)
	if len(gopath) == 0 {
		return ""
	}
	return filepath.Join(gopath[0], "pkg", "mod")
}

// moduleName is the module path declared in the go.mod at path, or "".
func moduleName(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(data)) {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`)
		}
	}
	return ""
}
