#!/usr/bin/env bash
# The browser the console's end-to-end tests drive (Playwright with executable_path): Debian's
# chromium, installed with apt when /usr/bin/chromium is missing. Playwright's own browser download
# is not used.
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  printf '\033[1;34m==>\033[0m %s\n' "installing chromium with apt (for the console's browser tests)"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
