#!/usr/bin/env bash
# Build promtool (Prometheus's rule checker) into the devstack's tool cache, once.
# `make test` runs it first (tests/integration/observability/test_monitoring_files.py needs it);
# the service never does. Prints the binary's path.
# Its module has exclude directives, so `go install module@version` refuses it: build inside
# the downloaded module instead (as the devstack does for MinIO).
set -euo pipefail
VERSION=v0.307.3
CACHE="${MAILBOX_STACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mailbox-service}"
OUT="$CACHE/promtool-$VERSION/promtool"
if [[ -x "$OUT" ]]; then
  echo "$OUT"
  exit 0
fi
GO=$(command -v go || echo /usr/local/go/bin/go)
[[ -x "$GO" ]] || { echo "error: Go not found: install Go >= 1.24" >&2; exit 2; }
export GOPATH="$CACHE/go" GOFLAGS=-mod=mod GOTOOLCHAIN=local
echo "building promtool $VERSION (first time: several minutes, ~1 GB of modules)" >&2
dir=$("$GO" mod download -json "github.com/prometheus/prometheus@$VERSION" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
mkdir -p "$(dirname "$OUT")"
(cd "$dir" && "$GO" build -o "$OUT.tmp" ./cmd/promtool)
mv "$OUT.tmp" "$OUT"
echo "$OUT"
