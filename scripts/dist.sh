#!/usr/bin/env bash
# "make dist": the PGXN release archive idalloc-<version>.zip (git archive
# of HEAD, one top-level directory idalloc-<version>/ holding META.json and
# the Makefile), written to dist/ or to the directory given as $1.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
out="${1:-$REPO/dist}"
version="$(sed -nE 's/^[[:space:]]*"version":[[:space:]]*"([^"]+)".*/\1/p' "$REPO/META.json" | head -n 1)"
[[ -n "$version" ]] || { echo "dist.sh: no version in META.json" >&2; exit 1; }
mkdir -p "$out"
# (safe.directory: the test suite runs this as another user than the owner)
git -c safe.directory='*' -C "$REPO" archive --format=zip \
	--prefix="idalloc-$version/" -o "$out/idalloc-$version.zip" HEAD
echo "$out/idalloc-$version.zip"
