#!/usr/bin/env bash
# Regenerates crossmap's deepcopy code and CRDs with controller-gen.
#
#   tools/generate.sh [BIN]      (BIN defaults to ./bin; `make generate` passes it)
#
# controller-gen is built from the Go module proxy through the wrapper module
# in tools/controller-gen, and only rebuilt when it is missing from BIN or the
# version recorded beside it differs from the one pinned in that go.mod.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-./bin}"
mkdir -p "$bin"
bin="$(cd "$bin" && pwd)"

cg="$bin/controller-gen"
stamp="$bin/controller-gen.version"
want="$(awk '$1 == "sigs.k8s.io/controller-tools" { print $2 } $1 == "require" && $2 == "sigs.k8s.io/controller-tools" { print $3 }' \
	"$root/tools/controller-gen/go.mod")"
if [[ -z "$want" ]]; then
	echo "generate.sh: no sigs.k8s.io/controller-tools version in tools/controller-gen/go.mod" >&2
	exit 1
fi

have=""
[[ -f "$stamp" ]] && have="$(<"$stamp")"
if [[ ! -x "$cg" || "$have" != "$want" ]]; then
	echo "building controller-gen $want into $bin"
	(cd "$root/tools/controller-gen" &&
		GOWORK=off go build -o "$cg" sigs.k8s.io/controller-tools/cmd/controller-gen)
	echo "$want" >"$stamp"
fi

cd "$root"
"$cg" object paths=./internal/api/...
"$cg" crd paths=./internal/api/... output:crd:artifacts:config=manifests/crd
