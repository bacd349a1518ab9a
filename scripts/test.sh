#!/usr/bin/env bash
# One command: set everything up, then run the quality gates and the whole test suite.
# `--fast` runs only the tests that need neither the embedded services nor Ray (under two minutes).
# Extra arguments go to pytest (e.g. `scripts/test.sh -k auth`, `scripts/test.sh --fast -x`).
set -uo pipefail
cd "$(dirname "$0")/.."

fast=()
if [ "${1:-}" = "--fast" ]; then
  shift
  fast=(-m "not services and not ray")
fi

bash scripts/setup.sh || exit 1
if [ ${#fast[@]} -eq 0 ]; then
  bash console/setup-browser.sh || exit 1  # chromium for the console's browser tests
fi

step() { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
failed=()

step "ruff (lint + format check)"
.venv/bin/ruff check . && .venv/bin/ruff format --check . || failed+=(ruff)

step "mypy (strict on platform/, ray_apps/, runtime_actors/)"
.venv/bin/mypy || failed+=(mypy)

step "import-linter (layer contracts)"
.venv/bin/lint-imports || failed+=(import-linter)

step "console (vitest)"
(cd console && npm test --silent -- --reporter=dot) || failed+=(vitest)

step "pytest"
.venv/bin/pytest --durations=30 "${fast[@]}" "$@"  # the slowest 30 close the report
rc=$?
if [ $rc -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
fi
[ $rc -ne 0 ] && failed+=(pytest)

if [ ${#failed[@]} -gt 0 ]; then
  printf '\n\033[1;31mFAILED: %s\033[0m\n' "${failed[*]}"
  exit 1
fi
printf '\n\033[1;32mall checks passed\033[0m\n'
