package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set at link time by the builds that know them
// (make image, the Dockerfile):
//
//	go build -ldflags "-X main.version=v0.1.0 -X main.commit=$(git rev-parse HEAD)"
//
// Left empty, `crossmap version` falls back to what the Go toolchain
// recorded in the binary: the module version and the VCS revision.
var version, commit string

// buildVersion is what `crossmap version` prints.
type buildVersion struct {
	Version, Commit, Go, Platform string
	// Modified is set when the binary was built from a tree with
	// uncommitted changes (known from build info only).
	Modified bool
}

// readVersion combines the link-time values with info (nil when the binary
// has no build info): a link-time value wins, else the main module's
// version (a tag, a pseudo-version, or "(devel)") and its vcs.revision.
func readVersion(info *debug.BuildInfo, ldVersion, ldCommit string) buildVersion {
	v := buildVersion{Version: ldVersion, Commit: ldCommit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info != nil {
		v.Go = info.GoVersion
		if v.Version == "" {
			v.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.modified":
				v.Modified = s.Value == "true" && ldCommit == ""
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

func (v buildVersion) String() string {
	commit := v.Commit
	if v.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("crossmap %s\ncommit:  %s\ngo:      %s %s\n", v.Version, commit, v.Go, v.Platform)
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "Prints crossmap's version, the commit it was built from and the Go version that built it.", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version takes no arguments, got %q", fs.Args())
	}
	info, _ := debug.ReadBuildInfo()
	_, err := fmt.Fprint(stdout, readVersion(info, version, commit))
	return err
}
