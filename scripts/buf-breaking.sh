#!/usr/bin/env bash
# `buf breaking` against the base of this change: main when on another branch, otherwise the
# previous commit (what main was before it). BUF_BREAKING_AGAINST overrides the git ref.
#
# The base is checked out into a temporary worktree, with the npm-installed proto modules of this
# tree (google-proto-files) linked in, since a git ref alone does not hold node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
branch=$(git rev-parse --abbrev-ref HEAD)
if [ -n "${BUF_BREAKING_AGAINST:-}" ]; then
  base=$BUF_BREAKING_AGAINST
elif [ "$branch" != "main" ] && git rev-parse -q --verify main >/dev/null; then
  base=main
else
  base=HEAD~1
fi
if ! git rev-parse -q --verify "$base^{commit}" >/dev/null || ! git cat-file -e "$base:buf.yaml" 2>/dev/null; then
  echo "buf breaking: no base with an API at $base yet; skipped"
  exit 0
fi
echo "buf breaking: against $base ($(git rev-parse --short "$base"))"
worktree=$(mktemp -d)
cleanup() { git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"; }
trap cleanup EXIT
git worktree add -q --detach "$worktree" "$base"
if [ -d gen/node_modules/google-proto-files ]; then
  mkdir -p "$worktree/gen/node_modules"
  ln -s "$(realpath gen/node_modules/google-proto-files)" "$worktree/gen/node_modules/google-proto-files"
fi
pnpm exec buf breaking --against "$worktree"
