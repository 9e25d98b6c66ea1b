#!/usr/bin/env bash
# tools/emissary-python.sh makes Emissary's own configuration compiler runnable
# for internal/emissarytest: Debian's /usr/bin/python3 with the packages
# Emissary 3.10's python/ambassador imports. Two of its imports (orjson,
# durationpy) are not packaged in Debian; the test puts the stand-ins in
# internal/emissarytest/pystub on the path instead.
#
# Usage: tools/emissary-python.sh [--check]
#
# Installs what is missing when it runs as root on a machine with apt-get;
# otherwise (or with --check) prints the command that installs it and fails.
# Does nothing when everything is there.
set -euo pipefail

PYTHON=/usr/bin/python3

# module:package pairs: what the compiler imports, and the Debian package
# that has it. Keep in sync with internal/emissarytest (pythonModules).
PAIRS=(
	yaml:python3-yaml
	expiringdict:python3-expiringdict
	semantic_version:python3-semantic-version
	jsonpatch:python3-jsonpatch
	jsonpointer:python3-json-pointer
	prometheus_client:python3-prometheus-client
	pythonjsonlogger:python3-pythonjsonlogger
	click:python3-click
	flask:python3-flask
	requests:python3-requests
	typing_extensions:python3-typing-extensions
	pkg_resources:python3-pkg-resources
)

missing=()
if [[ ! -x $PYTHON ]]; then
	missing+=(python3)
fi
for pair in "${PAIRS[@]}"; do
	mod=${pair%%:*} pkg=${pair#*:}
	if [[ ! -x $PYTHON ]] || ! "$PYTHON" -c "import $mod" 2>/dev/null; then
		missing+=("$pkg")
	fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
	exit 0
fi

cmd="apt-get install -y ${missing[*]}"
if [[ ${1:-} == --check || $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
	echo "emissary-python.sh: Emissary's compiler (internal/emissarytest) needs: ${missing[*]}" >&2
	echo "install them with: $cmd" >&2
	exit 1
fi
echo "== installing for Emissary's compiler: ${missing[*]}"
# The package lists may be absent on a fresh machine: update once, only then.
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
