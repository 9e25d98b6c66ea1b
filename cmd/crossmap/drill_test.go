package main

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestRunDrillRejectsBadFlags: every bad setting fails with a message
// naming the flag, before crossmap sends the cluster a single request.
func TestRunDrillRejectsBadFlags(t *testing.T) {
	kubeconfig, requests := countingAPIServer(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "--lose CLUSTER is required"},
		{[]string{"--apply"}, "--lose CLUSTER is required"},
		{[]string{"--lose", "East"}, `--lose "East" is no cluster name`},
		{[]string{"--lose", "east", "--for", "0s"}, "--for 0s: a drill lasts from 1s to 24h0m0s"},
		{[]string{"--lose", "east", "--for", "500ms", "--apply"}, "--for 500ms: a drill lasts from 1s"},
		{[]string{"--lose", "east", "--for", "25h", "--apply"}, "--for 25h0m0s: a drill lasts from 1s to 24h0m0s"},
		{[]string{"--lose", "east", "--force"}, "--force goes with --apply"},
		{[]string{"--stop", "--apply"}, "--stop ends a drill; it takes neither --apply nor --force"},
		{[]string{"--lose", "east", "-o", "yaml"}, `-o "yaml": want table or json`},
		{[]string{"--lose", "east", "--namespace", "Crossmap"}, `--namespace "Crossmap"`},
		{[]string{"east"}, "drill takes no arguments"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), append([]string{"drill", "--kubeconfig", kubeconfig}, c.args...), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("drill %q = %v; want an error holding %q", c.args, err, c.want)
		}
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("bad flags sent %d requests to the API server; want none", n)
	}
}

func TestRunDrillHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"drill", "--help"}, &stdout, &stderr)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("drill --help = %v; want flag.ErrHelp", err)
	}
	for _, want := range []string{"Usage: crossmap drill", "-lose", "-for", "(default 10m0s)", "-apply", "-force", "-stop", "-by", "-kubeconfig",
		"crossmap drill --lose east --for 10m --apply", "DrillExpired", "crossmap_drill_active"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("drill --help printed %q; want it to hold %q", stderr.String(), want)
		}
	}
}
