package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadVersion(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/crossmap/crossmap", Version: "v0.0.0-20261203101500-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef"}, {Key: "vcs.modified", Value: "true"}}}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	cases := []struct {
		name                string
		info                *debug.BuildInfo
		ldVersion, ldCommit string
		want                buildVersion
	}{
		{"link-time values win", stamped, "v0.1.0", "fedcba9876543210",
			buildVersion{Version: "v0.1.0", Commit: "fedcba9876543210", Go: "go1.26.8", Platform: platform}},
		{"build info alone", stamped, "", "",
			buildVersion{Version: "v0.0.0-20261203101500-0123456789ab+dirty", Commit: "0123456789abcdef", Modified: true, Go: "go1.26.8", Platform: platform}},
		{"a clean tree", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.2.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}}, "", "",
			buildVersion{Version: "v0.2.0", Commit: "abc", Go: "go1.26.8", Platform: platform}},
		{"nothing known", nil, "", "",
			buildVersion{Version: "(devel)", Commit: "unknown", Go: runtime.Version(), Platform: platform}},
	}
	for _, tc := range cases {
		if got := readVersion(tc.info, tc.ldVersion, tc.ldCommit); got != tc.want {
			t.Errorf("%s: readVersion = %+v; want %+v", tc.name, got, tc.want)
		}
	}
}

func TestRunVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"version"}, &stdout, &stderr); err != nil {
		t.Fatalf("crossmap version = %v", err)
	}
	out := stdout.String()
	for _, want := range []string{"crossmap ", "\ncommit:  ", "\ngo:      " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("crossmap version printed %q; want it to hold %q", out, want)
		}
	}
	if err := run(t.Context(), []string{"version", "extra"}, &stdout, &stderr); err == nil {
		t.Errorf("crossmap version extra = nil; want an error")
	}
}
