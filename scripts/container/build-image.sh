#!/usr/bin/env bash
# Builds deploy/Dockerfile with podman, as a user builds it, from the repository root (the build
# context is the checkout; /.dockerignore keeps it to sources, manifests and the lockfile).
#
# Usage: scripts/container/build-image.sh [TAG]   (TAG defaults to keel-server:dev)
#
#   - The base image comes from base-image.sh: the official node image when present, otherwise a
#     stand-in made from this machine's Debian mirror and the pinned Node.js.
#   - --format docker: the OCI image format has no HEALTHCHECK, and podman would drop it.
#   - The npm registry is this machine's (`npm config get registry`), handed in as the build
#     arguments COREPACK_NPM_REGISTRY and npm_config_registry; --network host lets the build
#     reach it through the host's network setup.
#   - Layers are cached in podman's storage: a change of sources alone rebuilds from `COPY . .` on.
#     The build stage is tagged too (TAG-build), so that pruning the layers of earlier builds
#     afterwards keeps this build's; without it every change of sources would leave ~0.5 GB behind.
# Prints the image's ID on standard output, "built TAG in N s" on standard error, and the build's
# output only when it fails.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=scripts/container/podman.sh
source "$here/podman.sh"
tag=${1:-keel-server:dev}

"$here/base-image.sh" >/dev/null

registry=$(npm config get registry 2>/dev/null || true)
args=()
if [ -n "$registry" ]; then
  # corepack appends "/<package>" itself: no trailing slash.
  args+=(--build-arg "COREPACK_NPM_REGISTRY=${registry%/}" --build-arg "npm_config_registry=$registry")
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build() {
  podman build --format docker --network host --layers "${args[@]}" -f "$root/deploy/Dockerfile" \
    "$@" "$root" >"$work/log" 2>&1 || {
    cat "$work/log" >&2
    container_fail "building deploy/Dockerfile failed (output above)"
  }
}
start=$SECONDS
build -t "$tag" --iidfile "$work/id"
echo "container: built $tag in $((SECONDS - start)) s" >&2
# Every step cached: only tags the build stage's last layer.
build --target build -t "$tag-build"
podman image prune --force >/dev/null
cat "$work/id"
echo
