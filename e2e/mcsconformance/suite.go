package mcsconformance

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The upstream suite crossmap is judged by: the release tag of the
// conformance module in kubernetes-sigs/mcs-api and the commit it names.
// Build checks out the commit, not the tag, so that a moved tag cannot
// change what is run.
const (
	SuiteTag    = "conformance/v0.5.0"
	SuiteCommit = "50b1e4caa0948f63f83875810cafd0c7673b68b4"
)

// APIModule is the module of the MCS types, which the suite and crossmap
// share.
const APIModule = "sigs.k8s.io/mcs-api"

// Build compiles the suite at SuiteCommit, from the git repository src (a
// clone of kubernetes-sigs/mcs-api, bare or not), into the test binary out,
// built against APIModule at apiVersion. It leaves out alone when a stamp
// next to it says it was built from the same commit and version. Progress
// and the go tool's output go to log.
func Build(ctx context.Context, src, apiVersion, out string, log io.Writer) error {
	stamp := out + ".stamp"
	want := SuiteCommit + " " + APIModule + "@" + apiVersion + "\n"
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		if _, err := os.Stat(out); err == nil {
			fmt.Fprintf(log, "MCS conformance suite %s (%s) already built: %s\n", SuiteTag, SuiteCommit[:12], out)
			return nil
		}
	}
	if src == "" {
		return errors.New("build MCS conformance suite: no source: set MCS_API_SRC to a clone of " +
			"https://github.com/kubernetes-sigs/mcs-api that has tag " + SuiteTag + " (commit " + SuiteCommit + ")")
	}
	if err := run(ctx, "", log, "git", "-C", src, "cat-file", "-e", SuiteCommit+"^{commit}"); err != nil {
		return fmt.Errorf("build MCS conformance suite: %s has no commit %s (tag %s): fetch it first: %w", src, SuiteCommit, SuiteTag, err)
	}
	work, err := os.MkdirTemp("", "crossmap-mcs-conformance-")
	if err != nil {
		return fmt.Errorf("build MCS conformance suite: %w", err)
	}
	defer os.RemoveAll(work)
	if err := extract(ctx, src, work); err != nil {
		return fmt.Errorf("build MCS conformance suite: %w", err)
	}
	dir := filepath.Join(work, "conformance")
	// The suite's go.mod replaces the API module with the folder above it;
	// build it against the released module crossmap uses instead, so that
	// both speak the same types and only the conformance folder is read
	// from the clone.
	steps := [][]string{
		{"go", "mod", "edit", "-dropreplace=" + APIModule, "-require=" + APIModule + "@" + apiVersion},
		{"go", "mod", "tidy"},
		{"go", "test", "-c", "-o", out, "."},
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("build MCS conformance suite: %w", err)
	}
	for _, step := range steps {
		if err := run(ctx, dir, log, step[0], step[1:]...); err != nil {
			return fmt.Errorf("build MCS conformance suite: %s: %w", strings.Join(step, " "), err)
		}
	}
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		return fmt.Errorf("build MCS conformance suite: %w", err)
	}
	fmt.Fprintf(log, "built MCS conformance suite %s (%s) against %s@%s: %s\n", SuiteTag, SuiteCommit[:12], APIModule, apiVersion, out)
	return nil
}

// extract writes the conformance folder of SuiteCommit under dir.
func extract(ctx context.Context, src, dir string) error {
	var archive, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", "-C", src, "archive", "--format=tar", SuiteCommit, "conformance")
	cmd.Stdout, cmd.Stderr = &archive, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("git archive %s conformance: %w: %s", SuiteCommit, err, strings.TrimSpace(stderr.String()))
	}
	tr := tar.NewReader(&archive)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read archive of %s: %w", SuiteCommit, err)
		}
		if h.Typeflag != tar.TypeDir && h.Typeflag != tar.TypeReg {
			continue // git's pax header, and nothing else the suite needs
		}
		name := filepath.Clean(h.Name)
		if !strings.HasPrefix(name, "conformance") || strings.Contains(name, "..") {
			return fmt.Errorf("read archive of %s: unexpected path %q", SuiteCommit, h.Name)
		}
		path := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(path, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				return fmt.Errorf("read %s from the archive: %w", h.Name, err)
			}
			if err := os.WriteFile(path, data, 0o644); err != nil {
				return err
			}
		}
	}
}

// run runs name in dir, its output to log, with the module settings a
// build outside crossmap's module needs.
func run(ctx context.Context, dir string, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	return cmd.Run()
}
