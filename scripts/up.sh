#!/usr/bin/env bash
# One command: set everything up, then run the platform on its embedded defaults (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/imprun up "$@"
