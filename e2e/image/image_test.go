package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	ambv3 "github.com/emissary-ingress/emissary/v3/pkg/api/getambassador.io/v3alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/crossmap/crossmap/ingress"
	crossmapv1 "github.com/crossmap/crossmap/internal/api/v1alpha1"
	"github.com/crossmap/crossmap/internal/cli"
	"github.com/crossmap/crossmap/internal/controller"
	"github.com/crossmap/crossmap/internal/testenv"
)

// What the test asks `make image` to record.
const (
	version  = "v0.0.0-imagetest"
	revision = "0123456789abcdef0123456789abcdef01234567"
	created  = "2026-12-01T10:00:00Z"
)

// The OCI image layout and image spec, as far as the test reads them.
type (
	descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
	}
	index struct {
		SchemaVersion int          `json:"schemaVersion"`
		Manifests     []descriptor `json:"manifests"`
	}
	manifest struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        descriptor   `json:"config"`
		Layers        []descriptor `json:"layers"`
	}
	imageConfig struct {
		Architecture string `json:"architecture"`
		OS           string `json:"os"`
		Created      string `json:"created"`
		Config       struct {
			User       string            `json:"User"`
			Entrypoint []string          `json:"Entrypoint"`
			Cmd        []string          `json:"Cmd"`
			Env        []string          `json:"Env"`
			Labels     map[string]string `json:"Labels"`
		} `json:"config"`
		RootFS struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
)

// TestImage builds the image with `make image`, reads the archive as a
// registry client would (index, manifest, config, layers, every digest
// checked), unpacks its file system, and runs the binary found there:
// `crossmap version` says what make recorded, and `crossmap controller`
// against a real control plane exports a Service (gateway Mapping and Host)
// and issues the gateway certificate, then stops cleanly on SIGTERM.
func TestImage(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "crossmap-image.tar")
	// A cold build cache makes the static build (CGO_ENABLED=0, -trimpath:
	// nothing shared with the tests' own builds) take minutes; stop it a
	// minute before the test's deadline so that the failure says why.
	buildCtx := t.Context()
	if deadline, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		buildCtx, cancel = context.WithDeadline(buildCtx, deadline.Add(-time.Minute))
		defer cancel()
	}
	make := exec.CommandContext(buildCtx, "make", "-C", root, "image", "IMAGE_DIR="+dir, "IMAGE_ARCHIVE="+archive,
		"VERSION="+version, "COMMIT="+revision, "CREATED="+created)
	start := time.Now()
	if out, err := make.CombinedOutput(); err != nil {
		if buildCtx.Err() != nil {
			t.Fatalf("make image did not finish within the test's time (%s; a cold build cache? run go test with a longer -timeout): %v\n%s",
				time.Since(start).Round(time.Second), err, out)
		}
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Logf("make image took %s", time.Since(start).Round(time.Second))

	blobs := readArchive(t, archive)
	var idx index
	mustJSON(t, blobs["index.json"], &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests; want 1", len(idx.Manifests))
	}
	if ref := idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; ref != version {
		t.Errorf("ref name = %q; want the version %q, the tag skopeo and podman give it", ref, version)
	}
	var m manifest
	mustJSON(t, blob(t, blobs, idx.Manifests[0]), &m)
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("manifest media type %q, config %q; want OCI's", m.MediaType, m.Config.MediaType)
	}
	var cfg imageConfig
	mustJSON(t, blob(t, blobs, m.Config), &cfg)

	if cfg.OS != "linux" || cfg.Architecture == "" {
		t.Errorf("platform %s/%s; want linux/<arch>", cfg.OS, cfg.Architecture)
	}
	if cfg.Config.User != "65532:65532" {
		t.Errorf("User = %q; want 65532:65532 (numeric, so that runAsNonRoot can check it)", cfg.Config.User)
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/crossmap"}) || !slices.Equal(cfg.Config.Cmd, []string{"controller"}) {
		t.Errorf("Entrypoint %q, Cmd %q; want the binary and controller", cfg.Config.Entrypoint, cfg.Config.Cmd)
	}
	if !slices.ContainsFunc(cfg.Config.Env, func(e string) bool {
		return strings.HasPrefix(e, "PATH=") && slices.Contains(strings.Split(strings.TrimPrefix(e, "PATH="), ":"), "/usr/local/bin")
	}) {
		t.Errorf("Env %q; want a PATH with /usr/local/bin (the manifests run `crossmap`)", cfg.Config.Env)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": revision,
		"org.opencontainers.image.created":  created,
		"org.opencontainers.image.source":   "https://github.com/crossmap/crossmap",
		"org.opencontainers.image.title":    "crossmap",
	} {
		if got := cfg.Config.Labels[k]; got != want {
			t.Errorf("label %s = %q; want %q", k, got, want)
		}
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) || len(m.Layers) == 0 {
		t.Fatalf("%d layers, %d diff IDs; want as many, and at least one", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}

	rootfs := filepath.Join(dir, "rootfs")
	for i, l := range m.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
			t.Errorf("layer %d media type %q; want a gzipped OCI layer", i, l.MediaType)
		}
		unpackLayer(t, blob(t, blobs, l), cfg.RootFS.DiffIDs[i], rootfs)
	}
	checkFiles(t, rootfs)

	bin := filepath.Join(rootfs, "usr/local/bin/crossmap")
	out, err := exec.CommandContext(t.Context(), bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("crossmap version from the image: %v\n%s", err, out)
	}
	for _, want := range []string{"crossmap " + version + "\n", "commit:  " + revision + "\n", "go:      go1."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("crossmap version printed %q; want it to hold %q", out, want)
		}
	}

	runController(t, bin)
}

// readArchive returns every file of the OCI archive by its path.
func readArchive(t *testing.T, archive string) map[string][]byte {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %s: %v", archive, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read %s: %s: %v", archive, h.Name, err)
		}
		files[path.Clean(h.Name)] = data
	}
	if layout := string(files["oci-layout"]); !strings.Contains(layout, `"imageLayoutVersion"`) {
		t.Fatalf("archive has no oci-layout file (got %q): not an OCI image layout", layout)
	}
	return files
}

// blob returns the blob d points at, after checking its size and digest.
func blob(t *testing.T, blobs map[string][]byte, d descriptor) []byte {
	t.Helper()
	algo, hexDigest, _ := strings.Cut(d.Digest, ":")
	data, ok := blobs["blobs/"+algo+"/"+hexDigest]
	if !ok || algo != "sha256" {
		t.Fatalf("blob %s missing from the archive", d.Digest)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hexDigest || int64(len(data)) != d.Size {
		t.Fatalf("blob %s: %d bytes with digest sha256:%x; want %d bytes and the digest", d.Digest, len(data), sum, d.Size)
	}
	return data
}

func mustJSON(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, data)
	}
}

// unpackLayer extracts a gzipped layer into rootfs, checking that its
// uncompressed digest is diffID. Only directories and regular files are
// expected; anything else, or a path leaving rootfs, fails the test.
func unpackLayer(t *testing.T, data []byte, diffID, rootfs string) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("layer %s: %v", diffID, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("layer %s: %v", diffID, err)
	}
	if sum := sha256.Sum256(raw); "sha256:"+hex.EncodeToString(sum[:]) != diffID {
		t.Fatalf("layer's uncompressed digest sha256:%x; want the config's diff ID %s", sum, diffID)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("layer %s: %v", diffID, err)
		}
		name := filepath.Join(rootfs, filepath.FromSlash(path.Clean("/"+h.Name)))
		if !strings.HasPrefix(name, rootfs+string(filepath.Separator)) {
			t.Fatalf("layer entry %q leaves the root", h.Name)
		}
		if h.Uid != 0 && h.Uid != 65532 {
			t.Errorf("layer entry %s owned by %d; want root or the image's user", h.Name, h.Uid)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(name, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			content, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, content, os.FileMode(h.Mode).Perm()); err != nil {
				t.Fatal(err)
			}
		default:
			t.Errorf("layer entry %s has type %q; want only directories and files", h.Name, h.Typeflag)
		}
	}
}

// checkFiles checks what the image's file system must hold besides the
// binary: the user the config names, and CA certificates Go finds.
func checkFiles(t *testing.T, rootfs string) {
	t.Helper()
	passwd, err := os.ReadFile(filepath.Join(rootfs, "etc/passwd"))
	if err != nil {
		t.Fatalf("image has no /etc/passwd: %v", err)
	}
	if !slices.ContainsFunc(strings.Split(string(passwd), "\n"), func(l string) bool {
		f := strings.Split(l, ":")
		return len(f) == 7 && f[2] == "65532" && f[3] == "65532"
	}) {
		t.Errorf("/etc/passwd has no user 65532:\n%s", passwd)
	}
	bundle, err := os.ReadFile(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt"))
	if err != nil {
		t.Fatalf("image has no CA certificates: %v", err)
	}
	n := 0
	for rest := bundle; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			t.Errorf("CA bundle holds an unparsable certificate: %v", err)
		}
		n++
	}
	if n == 0 {
		t.Error("CA bundle holds no certificate")
	}
	info, err := os.Stat(filepath.Join(rootfs, "usr/local/bin/crossmap"))
	if err != nil || info.Mode().Perm()&0o111 == 0 {
		t.Fatalf("binary: %v, mode %v; want an executable", err, info)
	}
}

// runController runs the image's binary as the export role against a real
// control plane, as the Deployment would (with its kubeconfig instead of
// the in-cluster config), and checks that it does its work.
func runController(t *testing.T, bin string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	bed, err := testenv.Start(ctx, []string{"image"}, testenv.Options{})
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := bed.Stop(); err != nil {
			t.Errorf("stop control plane: %v", err)
		}
	})
	plane := bed.Plane("image")
	c, err := plane.Client(controller.NewScheme())
	if err != nil {
		t.Fatal(err)
	}
	const ns, ctrlNS = "app", "crossmap-system"
	for _, n := range []string{ns, ctrlNS} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
	anchor, err := cli.TrustAnchorSecret(cli.TrustOptions{Name: "crossmap-trust-anchor", Namespace: ctrlNS,
		CommonName: "image test anchor", Validity: 24 * time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo", Labels: map[string]string{crossmapv1.ExportLabel: "true"}},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 9898}}},
	}
	for _, o := range []client.Object{anchor, svc} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	kubeconfig, err := plane.Kubeconfig("crossmap", []string{"system:masters"})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}

	var logs bytes.Buffer
	cmd := exec.Command(bin, "controller", "--kubeconfig", kubeconfigPath, "--cluster-name", "image",
		"--namespace", ctrlNS, "--import=false", "--routes=false", "--status-addr", "0")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("controller log:\n%s", logs.String())
		}
	}()

	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-exited:
			stopped = true
			return false, fmt.Errorf("controller exited early: %v", err)
		default:
		}
		var m ambv3.Mapping
		if last = c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo-gateway"}, &m); last != nil {
			return false, nil
		}
		if m.Labels[crossmapv1.LabelManagedBy] != crossmapv1.ManagedBy || m.Spec.Service != "podinfo."+ns+":9898" {
			last = fmt.Errorf("gateway Mapping labels %v, service %q", m.Labels, m.Spec.Service)
			return false, nil
		}
		if last = c.Get(ctx, client.ObjectKey{Namespace: ctrlNS, Name: "crossmap-gateway"}, &ambv3.Host{}); last != nil {
			return false, nil
		}
		var cert corev1.Secret
		if last = c.Get(ctx, client.ObjectKey{Namespace: ctrlNS, Name: ingress.GatewayCertSecret}, &cert); last != nil {
			return false, nil
		}
		if len(cert.Data[corev1.TLSCertKey]) == 0 {
			last = fmt.Errorf("gateway certificate Secret has no %s", corev1.TLSCertKey)
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the image's controller did not export the Service and issue its gateway certificate: %v (last: %v)", err, last)
	}

	// As the kubelet stops a container: SIGTERM, then a grace period.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("controller exited with %v on SIGTERM; want a clean exit", err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("controller still running 30s after SIGTERM")
	}
}
