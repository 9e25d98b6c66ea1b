package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRunCheckRejectsBadFlags(t *testing.T) {
	kubeconfig, requests := countingAPIServer(t)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--namespace", "Bad_NS"}, `--namespace "Bad_NS"`},
		{[]string{"--as-group", "system:masters"}, "--as-group needs --as"},
		{[]string{"extra"}, "check takes no arguments"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		args := append([]string{"check", "--kubeconfig", kubeconfig}, tc.args...)
		err := run(t.Context(), args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q) = %v; want an error holding %q", args, err, tc.want)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("bad flags sent %d requests; want none", n)
	}
}

// TestRunCheckUnreachable: an API server that does not answer is one
// failed check, with a fix, and an error.
func TestRunCheckUnreachable(t *testing.T) {
	kubeconfig, requests := countingAPIServer(t)
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"check", "--kubeconfig", kubeconfig}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "1 of 1 checks failed") {
		t.Errorf("check = %v; want 1 of 1 checks failed", err)
	}
	if !strings.HasPrefix(stdout.String(), "[FAIL] API server http://127.0.0.1:") || !strings.Contains(stdout.String(), "— fix: check --kubeconfig") {
		t.Errorf("check printed %q; want one [FAIL] line with a fix", stdout.String())
	}
	if requests.Load() == 0 {
		t.Error("check sent no request")
	}
}
