#!/usr/bin/env bash
# Set up a development/run environment from nothing: a venv with imprun and the dependencies uv.lock pins,
# and redis-server (via apt when missing). Idempotent and quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1;34m==>\033[0m %s\n' "$*"; }

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "imprun needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

# uv.lock pins every package of the dependency tree (hashes included); pyproject.toml keeps the
# compatible ranges. `uv sync --frozen` installs exactly the lock and fails if it is out of date with
# pyproject.toml. Upgrade with `.venv/bin/uv lock --upgrade` (or `--upgrade-package NAME`), then
# run the tests and commit uv.lock.
uv_version=$(sed -n '/^name = "uv"$/{n;s/^version = "\(.*\)"$/\1/p;q}' uv.lock)
if [ ! -x .venv/bin/uv ] || [ "$(.venv/bin/uv --version | cut -d' ' -f2)" != "$uv_version" ]; then
  if [ ! -x .venv/bin/python ]; then
    say "creating the virtual environment in .venv"
    "$PYTHON" -m venv .venv
  fi
  say "installing uv $uv_version (the version uv.lock pins) into .venv"
  PIP_CONFIG_FILE=/dev/null .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
fi

# Bytecode is compiled at install time: with PYTHONDONTWRITEBYTECODE set (as on many CI machines)
# Python would otherwise compile Ray from source in every process it starts, and `ray start` alone
# takes 12 s instead of 5 on two cores. The "bytecode" word in the stamp re-syncs older venvs.
stamp=.venv/.imprun-installed
want=$( (cat uv.lock pyproject.toml; echo bytecode) | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing imprun and the locked dependencies into .venv (first time: a few minutes)"
  UV_PROJECT_ENVIRONMENT=.venv .venv/bin/uv sync --frozen --extra dev --python .venv/bin/python --compile-bytecode --quiet
  echo "$want" > "$stamp"
fi

if ! command -v redis-server >/dev/null 2>&1; then
  say "installing redis-server with apt"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
  # Debian's package starts a system-wide redis on 6379; imprun runs its own on its own port.
fi

if ! command -v kubectl >/dev/null 2>&1; then
  # The manifest tests render manifests/ with `kubectl kustomize`; Debian ships kubectl as kubernetes-client.
  say "installing kubectl (Debian's kubernetes-client) with apt"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kubernetes-client >/dev/null
fi

bash console/setup.sh  # the web console: Node.js via apt when missing, npm ci, vite build into console/dist

say "ready: $(.venv/bin/python --version), $(redis-server --version | cut -d' ' -f3), imprun $(.venv/bin/python -c 'import imprun; print(imprun.__version__)')"
