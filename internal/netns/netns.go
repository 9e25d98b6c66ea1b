package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// envInside marks a process that runs inside the namespace Reexec made.
const envInside = "CROSSMAP_NETNS"

// Inside reports whether this process runs in a namespace made by Reexec.
func Inside() bool { return os.Getenv(envInside) == "1" }

// setup brings up loopback and gives the namespace a default route through
// it: kube-apiserver picks its advertise address from the default route and
// will not start without one. Nothing leaves the namespace: it has no other
// device.
const setup = `set -e
ip link set lo up
ip addr add 10.246.0.1/32 dev lo
ip route add default dev lo src 10.246.0.1
exec "$@"`

// Reexec runs the current program again, with the same arguments and
// environment, inside a new network namespace, and returns its exit code.
// Call it early in main or TestMain when Inside is false. It needs unshare
// (util-linux) and ip (iproute2), and either root or unprivileged user
// namespaces; the error says which is missing.
func Reexec() (int, error) { return ReexecContext(context.Background()) }

// ReexecContext is Reexec, and when ctx ends before the re-run program does,
// it sends that program SIGTERM and still waits for it to exit. A signal
// sent to this process alone (kill, timeout, a supervisor) would otherwise
// stop nothing: the program inside the namespace, and everything it
// started, would run on without it.
func ReexecContext(ctx context.Context) (int, error) {
	for _, tool := range []string{"unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			return 0, fmt.Errorf("run in a network namespace: %s not found (Debian: apt-get install util-linux iproute2): %w", tool, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("run in a network namespace: find own executable: %w", err)
	}
	args := []string{"--net"}
	if os.Geteuid() != 0 {
		// As an ordinary user, a user namespace makes us root inside it.
		args = append(args, "--map-root-user")
	}
	// unshare and sh exec what follows (no --fork, exec "$@"), so the
	// process started here becomes the program itself, and a signal sent to
	// it reaches the program.
	args = append(args, "--", "/bin/sh", "-c", setup, "sh", self)
	args = append(args, os.Args[1:]...)
	cmd := exec.Command("unshare", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envInside+"=1")
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("run in a network namespace: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			// SIGTERM, not SIGKILL: the program must stop what it started.
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-exited:
		}
	}()
	err = cmd.Wait()
	close(exited)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("run in a network namespace (needs root or unprivileged user namespaces): %w", err)
	}
	return 0, nil
}

// AddAddress puts addr on the namespace's loopback device so that servers
// can listen on it. It refuses to run outside a namespace made by Reexec:
// on the host it would change the machine's network.
func AddAddress(addr netip.Addr) error {
	if !Inside() {
		return fmt.Errorf("add address %s: not inside crossmap's network namespace", addr)
	}
	if Exists(addr) {
		return nil
	}
	bits := 32
	if addr.Is6() {
		bits = 128
	}
	out, err := exec.Command("ip", "addr", "add", fmt.Sprintf("%s/%d", addr, bits), "dev", "lo").CombinedOutput()
	if err != nil {
		return fmt.Errorf("add address %s: %v: %s", addr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Exists reports whether addr is an address of this host (or namespace).
// Callers check it before sending to an address they did not just bind.
func Exists(addr netip.Addr) bool {
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range ifaddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr() == addr {
			return true
		}
	}
	return false
}
