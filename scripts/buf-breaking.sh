#!/usr/bin/env bash
# `buf breaking` against the base of this change: main when on another branch, otherwise the
# previous commit (what main was before it). BUF_BREAKING_AGAINST overrides the git ref.
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
exec pnpm exec buf breaking --against ".git#ref=$(git rev-parse "$base")"
