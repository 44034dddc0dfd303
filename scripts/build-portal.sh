#!/usr/bin/env bash
# Build the reference portal's browser assets: install the pinned Socket.IO browser client from
# the npm registry (portal/package-lock.json, `npm ci`) and copy its bundle into the git-ignored
# static folder the service serves at /portal/static/vendor/.
#
# Idempotent and quick when nothing changed: a stamp holds the lockfile's hash, so `make run` and
# `make test` can call it every time. FORCE=1 rebuilds anyway.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="$root/portal"
vendor="$root/src/mailbox_service/portal/static/vendor"
bundle="$vendor/socket.io.min.js"
stamp="$vendor/.lock-sha256"

if ! command -v npm >/dev/null 2>&1; then
  echo "build-portal: npm is not installed (Debian: apt-get install -y npm)" >&2
  exit 1
fi

lock_hash="$(sha256sum "$assets/package-lock.json" | cut -d' ' -f1)"
if [[ "${FORCE:-0}" != 1 && -s "$bundle" && -f "$stamp" && "$(cat "$stamp")" == "$lock_hash" ]]; then
  echo "build-portal: $bundle is up to date"
  exit 0
fi

# --ignore-scripts: the client needs no install scripts, so none of its dependencies may run any.
(cd "$assets" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

mkdir -p "$vendor"
cp "$assets/node_modules/socket.io-client/dist/socket.io.min.js" "$bundle.tmp"
mv "$bundle.tmp" "$bundle"
cp "$assets/node_modules/socket.io-client/LICENSE" "$vendor/socket.io-client.LICENSE"
echo "$lock_hash" > "$stamp"
version="$(node -p "require('$assets/node_modules/socket.io-client/package.json').version")"
echo "build-portal: socket.io-client $version → $bundle"
