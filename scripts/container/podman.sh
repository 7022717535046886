# shellcheck shell=bash
# Sourced by the scripts in scripts/container: podman as they run it, and how they fail.

container_fail() {
  echo "container: $*" >&2
  exit 1
}

command -v podman >/dev/null 2>&1 ||
  container_fail "podman is not installed (scripts/ci-system-deps.sh installs it from Debian)"

# containers.conf next to this file: runc, cgroups through cgroupfs, no default ulimits (see there).
CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
export CONTAINERS_CONF
