#!/usr/bin/env bash
# Installs the system packages the tests need that the npm registry cannot provide: nginx, for
# packages/server/src/deployment.test.ts (gRPC through a reverse proxy). Debian's packages only.
#
# Idempotent and quiet: does nothing when nginx is already there, prints nothing on success, and on
# failure prints apt's output and exits non-zero, so CI stops here instead of skipping tests.
set -euo pipefail

# nginx lives in /usr/sbin, which is not on every user's PATH.
if PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v nginx >/dev/null 2>&1; then
  exit 0
fi

fail() {
  echo "ci-system-deps: $*" >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 ||
  fail "nginx is missing and there is no apt-get to install it; install nginx (Debian: apt-get install nginx)"

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null ||
    fail "nginx is missing and installing it needs root (or password-less sudo)"
  as_root=(sudo -n)
fi

log=$(mktemp)
policy_added=
cleanup() {
  rm -f "$log"
  if [ -n "$policy_added" ]; then "${as_root[@]}" rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

# The package's maintainer script would start an nginx on port 80; the tests start their own.
# policy-rc.d answering 101 ("action forbidden") is Debian's way to say "install, do not start".
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${as_root[@]}" chmod 755 /usr/sbin/policy-rc.d
  policy_added=1
fi

export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" apt-get update -q &&
  "${as_root[@]}" apt-get install -y -q --no-install-recommends nginx; } >"$log" 2>&1; then
  cat "$log" >&2
  fail "installing nginx with apt-get failed (output above)"
fi

PATH="$PATH:/usr/sbin" command -v nginx >/dev/null 2>&1 ||
  fail "apt-get installed nginx but no nginx binary is on PATH or in /usr/sbin"
