#!/usr/bin/env bash
# tools/build.sh builds the real binaries the test bed runs (kube-apiserver,
# etcd, podinfo) into a bin dir, from the Go module proxy only: this machine has
# no Docker and setup-envtest cannot download (see /work/shared/TESTBED.md).
#
# Usage: tools/build.sh [BIN]   (default ./bin; `make tools` passes $(BIN))
#
# Each tool is rebuilt only when its binary is missing or BIN/<name>.version
# differs from the wanted version, because a kube-apiserver build takes minutes.
# The wanted versions come from the wrapper modules' go.mod files (so bumping a
# go.mod is all it takes), except podinfo, which has no wrapper module.
set -euo pipefail

# podinfo's only version the proxy serves (tagged v6 versions are not served).
PODINFO_VERSION=v1.8.1-0.20250910200901-e86405a8674e

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BIN=${1:-./bin}
mkdir -p "$BIN"
BIN=$(cd "$BIN" && pwd) # absolute: builds run from the wrapper module dirs

# The wrapper modules stand alone; a go.work somewhere above must not pull them
# into the main module's build list.
export GOWORK=off

# modversion GOMOD MODULE prints MODULE's required version in GOMOD. go.mod is
# parsed with `go mod edit -json` rather than grep so both the one-line and the
# block form of require work; sed picks the Version that follows the Path.
modversion() {
	local gomod=$1 mod=$2 v
	v=$(go mod edit -json "$gomod" |
		sed -n "/\"Path\": \"${mod//\//\\/}\"/{n;s/.*\"Version\": \"\([^\"]*\)\".*/\1/p;}" |
		head -n1)
	if [[ -z $v ]]; then
		echo "build.sh: $mod not required in $gomod" >&2
		return 1
	fi
	printf '%s\n' "$v"
}

# uptodate NAME VERSION succeeds when BIN/NAME exists and was stamped VERSION.
uptodate() {
	[[ -x $BIN/$1 && -f $BIN/$1.version && "$(<"$BIN/$1.version")" == "$2" ]]
}

# waitbuild NAME waits for a `go build -o BIN/NAME` that is already running (a
# second `make tools`, or a build started by hand) instead of racing it for the
# same output file. It succeeds when it waited for one.
waitbuild() {
	local pattern="go build .*-o ${BIN}/$1( |\$)" waited=false
	while pgrep -f -- "$pattern" >/dev/null; do
		if ! $waited; then
			echo "$1: waiting for the running build"
			waited=true
		fi
		sleep 2
	done
	$waited
}

# buildwrapper NAME MODULE builds the wrapper module tools/NAME, whose version
# is that of MODULE in its go.mod.
buildwrapper() {
	local name=$1 mod=$2 want
	want=$(modversion "$TOOLS_DIR/$name/go.mod" "$mod")
	if uptodate "$name" "$want"; then
		echo "$name $want: up to date"
		return
	fi
	# A build already running is of the same wrapper module, hence the wanted
	# version: once it has finished, the binary only needs its stamp.
	if waitbuild "$name" && [[ -x $BIN/$name ]]; then
		printf '%s\n' "$want" >"$BIN/$name.version"
		echo "$name $want: built (by the build that was running)"
		return
	fi
	(cd "$TOOLS_DIR/$name" && go build -o "$BIN/$name" .)
	printf '%s\n' "$want" >"$BIN/$name.version"
	echo "$name $want: built"
}

buildwrapper etcd go.etcd.io/etcd/server/v3
buildwrapper kube-apiserver k8s.io/kubernetes

if uptodate podinfo "$PODINFO_VERSION"; then
	echo "podinfo $PODINFO_VERSION: up to date"
else
	GOBIN=$BIN go install "github.com/stefanprodan/podinfo/cmd/podinfo@$PODINFO_VERSION"
	printf '%s\n' "$PODINFO_VERSION" >"$BIN/podinfo.version"
	echo "podinfo $PODINFO_VERSION: built"
fi
