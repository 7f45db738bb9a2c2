#!/usr/bin/env bash
# "make deb": build the Debian package postgresql-15-idalloc into dist/, the
# way Debian builds PostgreSQL extensions (debian/: pg_buildext, dh --with
# pgxs_loop, debian/pgversions), running the regression and isolation
# suites on a throwaway cluster as part of the build (dh_pgxs_test;
# DEB_BUILD_OPTIONS=nocheck skips them).
#
# As root it first installs the build dependencies from Debian's archive
# (apt-get build-dep on debian/control).  The build runs in a copy of the
# working tree under .run/deb/, so the tree itself is left as it is.
# Prints the path of the .deb on its last line.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
OUT="$REPO/.run/deb"
DIST="$REPO/dist"

bash "$REPO/scripts/setup.sh" >/dev/null

if ! command -v dpkg-parsechangelog >/dev/null; then
	if [[ "$(id -u)" -ne 0 ]]; then
		echo "deb.sh: dpkg-dev is missing; run as root to install it" >&2
		exit 1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dpkg-dev >/dev/null
fi
version="$(dpkg-parsechangelog -l "$REPO/debian/changelog" -S Version)"
upstream="${version%-*}"
arch="$(dpkg --print-architecture)"
deb="postgresql-15-idalloc_${version}_${arch}.deb"

# a copy of the working tree (not .git, .run, dist or build products)
rm -rf "$OUT"
src="$OUT/idalloc-$upstream"
mkdir -p "$src" "$DIST"
tar -C "$REPO" --exclude=./.git --exclude=./.run --exclude=./dist \
	--exclude='*.o' --exclude='*.so' --exclude='*.bc' \
	--exclude=./results --exclude=./tmp_check --exclude=./log \
	--exclude='./regression.*' --exclude=node_modules \
	-cf - . | tar -C "$src" -xf -

if [[ "$(id -u)" -eq 0 ]]; then
	echo "deb.sh: installing the build dependencies (apt-get build-dep)"
	if ! DEBIAN_FRONTEND=noninteractive apt-get build-dep -y "$src" >"$OUT/build-dep.log" 2>&1; then
		# the package lists may be stale on a fresh machine: once more after an update
		apt-get update >>"$OUT/build-dep.log" 2>&1
		DEBIAN_FRONTEND=noninteractive apt-get build-dep -y "$src" >>"$OUT/build-dep.log" 2>&1 ||
			{ tail -n 20 "$OUT/build-dep.log" >&2; exit 1; }
	fi
	# dh_pgxs_test's throwaway cluster runs as "postgres": it must reach the copy
	chmod -R a+rX "$OUT"
fi

echo "deb.sh: dpkg-buildpackage -us -uc -b in $src (log: $OUT/build.log)"
if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1; then
	tail -n 60 "$OUT/build.log" >&2
	echo "deb.sh: the package build failed (log: $OUT/build.log)" >&2
	exit 1
fi
[[ -f "$OUT/$deb" ]] || { echo "deb.sh: $deb was not produced" >&2; exit 1; }
cp "$OUT/$deb" "$DIST/"
echo "$DIST/$deb"
