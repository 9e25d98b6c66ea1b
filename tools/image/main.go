// Command image builds crossmap's container image as an OCI image archive
// (an OCI image layout in a tar file, what `skopeo copy oci-archive:` and
// `podman load` read), with no container daemon and no base image to pull:
// it writes the image's two layers itself.
//
//   - a base layer: /etc/passwd and /etc/group with the user nonroot
//     (65532), its home, /tmp, /etc/nsswitch.conf, and the build machine's
//     CA certificates at /etc/ssl/certs/ca-certificates.crt, where Go's
//     crypto/x509 looks first;
//   - the static crossmap binary at /usr/local/bin/crossmap, the entrypoint.
//
// The config runs as 65532:65532 and carries the OCI labels (version,
// revision, source, created...). File times are the --created time, so the
// same inputs give the same image.
//
// Usage (make image runs it):
//
//	go run . --binary BIN --out ARCHIVE --version V --revision SHA --created RFC3339
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user, as distroless names it: a numeric UID so that
// Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
const (
	uid      = 65532
	userName = "nonroot"
	binPath  = "usr/local/bin/crossmap"
)

type options struct {
	binary, out, caFile                      string
	version, revision, source, created, arch string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "the static crossmap binary (CGO_ENABLED=0) for linux/--arch")
	flag.StringVar(&o.out, "out", "", "the OCI image archive to write (a tar of an OCI image layout)")
	flag.StringVar(&o.caFile, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle to put in the image (Debian's ca-certificates)")
	flag.StringVar(&o.version, "version", "", "the version: label org.opencontainers.image.version and the layout's ref name (the tag)")
	flag.StringVar(&o.revision, "revision", "", "the source revision (commit): label org.opencontainers.image.revision")
	flag.StringVar(&o.source, "source", "https://github.com/crossmap/crossmap", "label org.opencontainers.image.source")
	flag.StringVar(&o.created, "created", "", "creation time, RFC 3339 (default: now); the commit's time makes the image reproducible")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "the binary's architecture (GOARCH)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.binary == "" || o.out == "" || o.version == "" {
		return errors.New("--binary, --out and --version are required")
	}
	created := time.Now().UTC().Truncate(time.Second)
	if o.created != "" {
		t, err := time.Parse(time.RFC3339, o.created)
		if err != nil {
			return fmt.Errorf("parse --created: %w", err)
		}
		created = t.UTC()
	}
	if err := checkStatic(o.binary); err != nil {
		return err
	}
	bin, err := os.ReadFile(o.binary)
	if err != nil {
		return fmt.Errorf("read binary: %w", err)
	}
	ca, err := os.ReadFile(o.caFile)
	if err != nil {
		return fmt.Errorf("read CA certificates (apt-get install ca-certificates): %w", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return fmt.Errorf("read CA certificates: %s holds no PEM certificate", o.caFile)
	}

	base, err := layer(created, baseFiles(ca))
	if err != nil {
		return fmt.Errorf("build base layer: %w", err)
	}
	app, err := layer(created, []file{
		dir("usr/", 0, 0o755), dir("usr/local/", 0, 0o755), dir("usr/local/bin/", 0, 0o755),
		{name: binPath, mode: 0o755, data: bin},
	})
	if err != nil {
		return fmt.Errorf("build binary layer: %w", err)
	}

	img, err := image(o, created, base, app)
	if err != nil {
		return err
	}
	return writeArchive(img, o.out, o.version)
}

// checkStatic refuses a binary that needs a dynamic loader: the image has
// no libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("read binary %s: %w (want a linux ELF binary)", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("binary %s is dynamically linked: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}

// file is one tar entry of a layer.
type file struct {
	name     string
	uid, gid int
	mode     int64
	dir      bool
	data     []byte
}

func dir(name string, owner int, mode int64) file {
	return file{name: name, uid: owner, gid: owner, mode: mode, dir: true}
}

func baseFiles(ca []byte) []file {
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:/home/%s:/sbin/nologin\n", userName, uid, uid, userName, userName)
	group := fmt.Sprintf("root:x:0:\n%s:x:%d:\n", userName, uid)
	return []file{
		dir("etc/", 0, 0o755),
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(group)},
		// Without it Go's resolver would ask DNS before /etc/hosts.
		{name: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		dir("etc/ssl/", 0, 0o755), dir("etc/ssl/certs/", 0, 0o755),
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		dir("home/", 0, 0o755), dir("home/"+userName+"/", uid, 0o700),
		dir("root/", 0, 0o700),
		dir("tmp/", 0, 0o1777),
	}
}

// layer writes files into a gzipped OCI layer, every entry dated created.
func layer(created time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, ModTime: created, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// image is the OCI image: config first, then the layers, whose diff IDs
// and history Append adds to it.
func image(o options, created time.Time, base, app v1.Layer) (v1.Image, error) {
	labels := map[string]string{
		"org.opencontainers.image.title":       "crossmap",
		"org.opencontainers.image.description": "Multi-cluster edge routing for Kubernetes with Emissary-ingress",
		"org.opencontainers.image.version":     o.version,
		"org.opencontainers.image.source":      o.source,
		"org.opencontainers.image.url":         o.source,
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
	}
	if o.revision != "" {
		labels["org.opencontainers.image.revision"] = o.revision
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: o.arch,
		OS:           "linux",
		Created:      v1.Time{Time: created},
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", uid, uid),
			Entrypoint: []string{"/" + binPath},
			Cmd:        []string{"controller"},
			// The manifests' `command: [crossmap]` is looked up on PATH.
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/home/" + userName,
			Labels:     labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, fmt.Errorf("set image config: %w", err)
	}
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "tools/image: user nonroot, CA certificates"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "tools/image: /" + binPath + " " + o.version}},
	)
	if err != nil {
		return nil, fmt.Errorf("add layers: %w", err)
	}
	return img, nil
}

// writeArchive writes img as an OCI image layout, its ref name the tag, and
// tars that layout into out.
func writeArchive(img v1.Image, out, tag string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".image-layout-")
	if err != nil {
		return fmt.Errorf("create layout dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fmt.Errorf("write OCI layout: %w", err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		return fmt.Errorf("write image to OCI layout: %w", err)
	}
	return tarDir(tmp, out)
}

// tarDir writes the files under root into the tar file out, in a fixed
// order, as an OCI archive holds its layout.
func tarDir(root, out string) error {
	var paths []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != root {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read OCI layout: %w", err)
	}
	slices.Sort(paths)
	f, err := os.Create(out + ".part")
	if err != nil {
		return fmt.Errorf("create archive: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, path := range paths {
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(strings.TrimPrefix(path, root+string(filepath.Separator)))
		h := &tar.Header{Name: name, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if info.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, name+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Typeflag, h.Size = tar.TypeReg, info.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		data, err := os.Open(path)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, data)
		data.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return os.Rename(f.Name(), out)
}
