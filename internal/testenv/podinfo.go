package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Podinfo is a running podinfo process: the real backend of the demo and
// the data-path tests, standing in for a pod.
type Podinfo struct {
	// Addr is where it listens.
	Addr   netip.AddrPort
	cancel context.CancelFunc
	done   chan struct{}
}

// StartPodinfo runs bin/podinfo (built by `make tools`) on addr:9898,
// answering with message (podinfo's "message" field), and returns once it
// answers /readyz. addr must exist on this host or namespace: podinfo binds
// it, and nothing else is listened on.
func StartPodinfo(ctx context.Context, addr netip.Addr, message, dataDir string) (*Podinfo, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "bin", "podinfo")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("start podinfo: %s missing (run `make tools`): %w", bin, err)
	}
	pctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(pctx, bin, "--host", addr.String(), "--port", "9898",
		"--ui-message", message, "--data-path", dataDir, "--level", "warn")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("start podinfo: %w", err)
	}
	p := &Podinfo{Addr: netip.AddrPortFrom(addr, 9898), cancel: cancel, done: make(chan struct{})}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); close(p.done) }()
	url := "http://" + p.Addr.String() + "/readyz"
	client := &http.Client{Timeout: time.Second}
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-exited:
			return false, fmt.Errorf("podinfo on %s exited: %v", p.Addr, err)
		default:
		}
		resp, err := client.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("start podinfo on %s: %w", p.Addr, err)
	}
	return p, nil
}

// Stop ends the process and waits for it.
func (p *Podinfo) Stop() {
	p.cancel()
	<-p.done
}
