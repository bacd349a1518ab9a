#!/usr/bin/env bash
# Build the web console into console/dist (served by the control plane at /). Installs Debian's
# nodejs and npm with apt when `node` is missing, then `npm ci` and `npm run build`. Idempotent and
# quick when nothing changed: a stamp records the hash of package-lock.json and the sources.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  say "installing Node.js and npm (Debian's nodejs, npm) with apt"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi

sources_hash() {
  { cat package.json package-lock.json index.html vite.config.ts tsconfig.json
    find src -type f | LC_ALL=C sort | xargs cat; } | sha256sum | cut -d' ' -f1
}

stamp=.setup-stamp
want=$(sources_hash)
lock_hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -d node_modules ] || [ ! -f node_modules/.lock-hash ] || [ "$(cat node_modules/.lock-hash)" != "$lock_hash" ]; then
  say "installing the console's npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_hash" > node_modules/.lock-hash
fi
if [ ! -f dist/index.html ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "building the web console (npm run build)"
  npm run build --silent >/dev/null
  echo "$want" > "$stamp"
fi
say "web console built: console/dist ($(du -sh dist | cut -f1))"
