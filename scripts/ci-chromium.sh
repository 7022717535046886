#!/usr/bin/env bash
# Installs Debian's Chromium for packages/console/src/console.test.ts, which drives it with
# playwright-core (executablePath /usr/bin/chromium; playwright downloads no browser). Debian's
# packages only, with a font so that the console's screenshots have readable text.
#
# Idempotent and quiet: does nothing when /usr/bin/chromium is already there, prints nothing on
# success, and on failure prints apt's output and exits non-zero, so CI stops here instead of
# skipping the browser tests.
set -euo pipefail

chromium=/usr/bin/chromium
if [ -x "$chromium" ]; then
  exit 0
fi

fail() {
  echo "ci-chromium: $*" >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 ||
  fail "chromium is missing and there is no apt-get to install it; install Debian's chromium (apt-get install chromium)"

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null ||
    fail "chromium is missing and installing it needs root (or password-less sudo)"
  as_root=(sudo -n)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" apt-get update -q &&
  "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core; } >"$log" 2>&1; then
  cat "$log" >&2
  fail "installing chromium with apt-get failed (output above)"
fi

[ -x "$chromium" ] || fail "apt-get installed chromium but there is no $chromium"
