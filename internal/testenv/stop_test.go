package testenv_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/crossmap/crossmap/internal/testenv"
)

// TestStopWithOpenWatch: a client still watching when the planes stop (a
// controller a failed test left running, a `kubectl get -w` through the
// demo's kubeconfig) must not hold the API server up.
//
// Before: Stop failed with "stop plane east: timeout waiting for process
// kube-apiserver to stop". On SIGTERM kube-apiserver shuts its HTTP server
// down gracefully and waits, up to its request timeout (60 s), for every
// connection to go idle, and an open watch never does; envtest killed it
// after the stop timeout and reported the timeout. After: the API server
// ends its watches as it shuts down, and stops in moments.
func TestStopWithOpenWatch(t *testing.T) {
	ctx := t.Context()
	bed, err := testenv.Start(ctx, []string{"watched"}, testenv.Options{})
	if err != nil {
		t.Fatalf("start test bed: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = bed.Stop()
		}
	})
	cs, err := kubernetes.NewForConfig(bed.Planes[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cs.CoreV1().ConfigMaps(metav1.NamespaceDefault).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("watch ConfigMaps: %v", err)
	}
	defer w.Stop()

	began := time.Now()
	err = bed.Stop()
	stopped = true
	took := time.Since(began)
	if err != nil {
		t.Fatalf("stop test bed with a watch open (after %s): %v", took.Round(time.Millisecond), err)
	}
	t.Logf("stopped with a watch open in %s", took.Round(time.Millisecond))
	// The server, not the client, ended the watch.
	select {
	case _, open := <-w.ResultChan():
		if open {
			// An event delivered before the end; the channel must close next.
			if _, open = <-w.ResultChan(); open {
				t.Error("the watch still delivers events after the API server stopped")
			}
		}
	case <-time.After(10 * time.Second):
		t.Error("the watch is still open 10s after the API server stopped")
	}
}
