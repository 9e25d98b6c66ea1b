package testenv_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crossmap/crossmap/internal/testenv"
)

// TestDepsScript runs tools/deps.sh, which `make test` and `make demo` run
// first, with real bash on a PATH the test builds: stand-ins for the commands
// the script looks for, for id (so "root" is the test's choice) and for
// apt-get (which records what it was asked to do instead of installing).
func TestDepsScript(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "tools", "deps.sh")
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("the script needs bash: %v", err)
	}

	type result struct {
		code           int
		stdout, stderr string
		aptCalls       []string // one line per apt-get run: its arguments
	}
	// run runs the script with only the named stand-ins on PATH.
	run := func(t *testing.T, uid string, have []string, args ...string) result {
		t.Helper()
		dir := t.TempDir()
		aptLog := filepath.Join(dir, "apt.log")
		stub := func(name, body string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte("#!"+bash+"\n"+body+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, name := range have {
			switch name {
			case "apt-get":
				stub(name, `echo "$*" >>`+aptLog)
			default:
				stub(name, "exit 0")
			}
		}
		stub("id", `[ "$1" = -u ] && echo `+uid)
		cmd := exec.Command(bash, append([]string{script}, args...)...)
		cmd.Env = []string{"PATH=" + dir}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("run deps.sh: %v", err)
		}
		r := result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
		if log, err := os.ReadFile(aptLog); err == nil {
			r.aptCalls = strings.Split(strings.TrimSpace(string(log)), "\n")
		}
		return r
	}
	all := []string{"unshare", "ip", "chromium", "kubectl", "curl", "apt-get"}

	t.Run("check lists what is missing", func(t *testing.T) {
		r := run(t, "0", []string{"unshare", "kubectl", "apt-get"}, "--check", "test")
		if r.code != 1 || r.stdout != "iproute2\nchromium\ncurl\n" {
			t.Errorf("exit %d, stdout %q; want 1 and iproute2, chromium, curl one a line", r.code, r.stdout)
		}
		if r.aptCalls != nil {
			t.Errorf("--check ran apt-get %q", r.aptCalls)
		}
	})
	t.Run("check: the demo needs less", func(t *testing.T) {
		r := run(t, "0", []string{"unshare", "ip"}, "--check", "demo")
		if r.code != 0 || r.stdout != "" {
			t.Errorf("exit %d, stdout %q; want 0 and nothing", r.code, r.stdout)
		}
		r = run(t, "0", nil, "--check", "demo")
		if r.code != 1 || r.stdout != "util-linux\niproute2\n" {
			t.Errorf("exit %d, stdout %q; want 1 and util-linux, iproute2", r.code, r.stdout)
		}
	})
	t.Run("nothing missing: nothing done", func(t *testing.T) {
		r := run(t, "0", all, "test")
		if r.code != 0 || r.stdout != "" || r.stderr != "" || r.aptCalls != nil {
			t.Errorf("exit %d, stdout %q, stderr %q, apt-get %q; want a silent success", r.code, r.stdout, r.stderr, r.aptCalls)
		}
	})
	t.Run("root installs the missing packages", func(t *testing.T) {
		r := run(t, "0", []string{"unshare", "ip", "kubectl", "apt-get"}, "test")
		want := []string{"update -qq", "install -y -qq chromium curl"}
		if r.code != 0 || strings.Join(r.aptCalls, "|") != strings.Join(want, "|") {
			t.Errorf("exit %d, apt-get %q, stderr %q; want 0 and apt-get %q", r.code, r.aptCalls, r.stderr, want)
		}
	})
	t.Run("not root: stops with the exact command", func(t *testing.T) {
		r := run(t, "1000", []string{"ip", "chromium", "kubectl", "curl", "apt-get"}, "test")
		if r.code != 1 || r.aptCalls != nil {
			t.Errorf("exit %d, apt-get %q; want 1 and no apt-get", r.code, r.aptCalls)
		}
		if want := "sudo apt-get update && sudo apt-get install -y util-linux\n"; !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not give the command %q", r.stderr, want)
		}
	})
	t.Run("no apt-get: says which packages", func(t *testing.T) {
		r := run(t, "0", []string{"unshare", "ip"}, "test")
		if r.code != 1 || !strings.Contains(r.stderr, "chromium kubernetes-client curl, and this machine has no apt-get") {
			t.Errorf("exit %d, stderr %q; want 1 and the packages named", r.code, r.stderr)
		}
	})
	t.Run("unknown purpose", func(t *testing.T) {
		if r := run(t, "0", all, "bench"); r.code != 2 {
			t.Errorf("exit %d, stderr %q; want 2", r.code, r.stderr)
		}
	})
}
