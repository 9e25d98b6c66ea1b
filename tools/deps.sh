#!/usr/bin/env bash
# tools/deps.sh makes sure the Debian packages that `make test` or `make demo`
# run are installed, so that the README's two commands are all the set-up a
# fresh Debian machine needs. Everything else (kube-apiserver, etcd, podinfo)
# is built from the Go module proxy by tools/build.sh.
#
# Usage: tools/deps.sh [--check] [test|demo]   (default: test)
#
#   test   unshare (util-linux) and ip (iproute2): the e2e tests run in a
#          network namespace of their own; chromium: the status page is
#          checked in a headless browser; kubectl (kubernetes-client) and curl:
#          the demo's test runs the commands the demo suggests, as a user would.
#   demo   unshare and ip: the demo runs in a network namespace of its own.
#
# A package is missing when none of its commands is on PATH. When something is
# missing, as root with apt-get, it runs apt-get update and apt-get install;
# otherwise it stops at once and prints the exact command to run. --check only
# prints the missing packages, one a line, and exits 1 if there are any.
#
# Only bash builtins and the commands it installs with are used, so that a test
# can run it on a PATH it builds itself (internal/testenv/deps_test.go).
set -euo pipefail

check=false
if [[ ${1-} == --check ]]; then
	check=true
	shift
fi
purpose=${1:-test}

# need PACKAGE COMMAND: PACKAGE is missing unless COMMAND is on PATH.
missing=()
need() {
	command -v "$2" >/dev/null 2>&1 || missing+=("$1")
}
case $purpose in
test)
	need util-linux unshare
	need iproute2 ip
	need chromium chromium
	need kubernetes-client kubectl
	need curl curl
	;;
demo)
	need util-linux unshare
	need iproute2 ip
	;;
*)
	echo "deps.sh: unknown purpose \"$purpose\" (want test or demo)" >&2
	exit 2
	;;
esac

if $check; then
	if ((${#missing[@]})); then
		printf '%s\n' "${missing[@]}"
		exit 1
	fi
	exit 0
fi
((${#missing[@]})) || exit 0

install="apt-get install -y ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
	echo "deps.sh: make $purpose needs the Debian packages ${missing[*]}, and this machine has no apt-get." >&2
	echo "deps.sh: install their equivalents with your package manager, then run make $purpose again." >&2
	exit 1
fi
if [[ $(id -u) != 0 ]]; then
	echo "deps.sh: make $purpose needs the Debian packages ${missing[*]}; install them as root:" >&2
	echo "  sudo apt-get update && sudo $install" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]} (make $purpose needs them)"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
