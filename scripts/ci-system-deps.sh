#!/usr/bin/env bash
# Installs the system packages some tests need that the npm registry cannot provide, from Debian's
# packages only:
#   nginx                          packages/server/src/*nginx* tests (gRPC through a reverse proxy)
#   chromium, fonts-dejavu-core    packages/console/src/console.test.ts (the console and CORS in a
#                                  real browser, driven by playwright-core; no browser download)
#   prometheus (for promtool)      packages/server/src/dashboards.test.ts (the alert rules and every
#                                  dashboard expression checked by promtool)
#   podman, runc, debootstrap      packages/server/src/container.test.ts (deploy/Dockerfile built
#                                  and run for real; debootstrap makes the base image when the
#                                  official one cannot be pulled, see scripts/container/)
#   python3-grpcio, python3-protobuf, packages/server/src/grpcio.test.ts (every RPC of both services
#   protobuf-compiler              from grpc's C-core, an independent client: protoc writes the
#                                  Python message classes at test time)
#
# Idempotent and quiet: installs only what is missing, prints nothing on success, and on failure
# prints apt's output and exits non-zero, so CI stops here instead of skipping tests.
set -euo pipefail

# nginx and debootstrap live in /usr/sbin, which is not on every user's PATH.
export PATH="$PATH:/usr/sbin:/usr/local/sbin"
missing=()
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-dejavu-core)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
# The system python3, which is the one that sees Debian's python3-* packages.
/usr/bin/python3 -c 'import grpc, google.protobuf' >/dev/null 2>&1 ||
  missing+=(python3-grpcio python3-protobuf)
[ ${#missing[@]} -eq 0 ] && exit 0

fail() {
  echo "ci-system-deps: $*" >&2
  exit 1
}

command -v apt-get >/dev/null 2>&1 ||
  fail "missing ${missing[*]} and there is no apt-get to install them; install them with your package manager"

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null ||
    fail "missing ${missing[*]}; installing them needs root (or password-less sudo)"
  as_root=(sudo -n)
fi

log=$(mktemp)
policy_added=
cleanup() {
  rm -f "$log"
  if [ -n "$policy_added" ]; then "${as_root[@]}" rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

# nginx's and prometheus's maintainer scripts would start servers (ports 80, 9090); the tests
# start their own nginx and need only promtool.
# policy-rc.d answering 101 ("action forbidden") is Debian's way to say "install, do not start".
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${as_root[@]}" chmod 755 /usr/sbin/policy-rc.d
  policy_added=1
fi

export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" apt-get update -q &&
  "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  fail "installing ${missing[*]} with apt-get failed (output above)"
fi

command -v nginx >/dev/null 2>&1 || fail "apt-get ran but no nginx binary is on PATH or in /usr/sbin"
[ -x /usr/bin/chromium ] || fail "apt-get ran but /usr/bin/chromium is missing"
command -v promtool >/dev/null 2>&1 || fail "apt-get ran but no promtool binary is on PATH"
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || fail "apt-get ran but there is no $tool on PATH or in /usr/sbin"
done
command -v protoc >/dev/null 2>&1 || fail "apt-get ran but no protoc binary is on PATH"
/usr/bin/python3 -c 'import grpc, google.protobuf' >/dev/null 2>&1 ||
  fail "apt-get ran but /usr/bin/python3 cannot import grpc and google.protobuf"
