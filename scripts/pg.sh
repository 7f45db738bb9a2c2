#!/usr/bin/env bash
# The PostgreSQL majors idalloc is built and tested on (run as root).
#
#   scripts/pg.sh bindir MAJOR    print the bin directory of MAJOR, building
#                                 it first if it is missing (17, 18), or
#                                 installing Debian's packages (15)
#   scripts/pg.sh majors          print the majors of the matrix: 15 17 18
#
# 15 is Debian 12's (scripts/setup.sh installs postgresql-15 and its dev
# files).  17 and 18 are built from the upstream tarballs in
# $IDALLOC_PG_SOURCES (default: ../shared/postgres beside the repository)
# into $IDALLOC_PG_PREFIX/MAJOR (default /opt/idalloc-pg/MAJOR), outside the
# clone, so that a build is kept between runs on the same machine; a prefix
# whose pg_config reports another version than the tarball's is rebuilt.
# The build (about 5 minutes each with make -j2 on 2 cores) configures with
# --enable-tap-tests and without ICU, and installs the server, the client
# programs, PGXS, pg_regress, pg_isolation_regress and the TAP modules.
# Its log is $IDALLOC_PG_PREFIX/MAJOR.build.log.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
SOURCES="${IDALLOC_PG_SOURCES:-$REPO/../shared/postgres}"
PREFIX_ROOT="${IDALLOC_PG_PREFIX:-/opt/idalloc-pg}"
MAJORS=(15 17 18)

# Debian packages the source build needs (bison and flex: 18's tarball has
# no generated parser files)
BUILD_PACKAGES=(bison flex zlib1g-dev libreadline-dev libipc-run-perl perl make gcc libc6-dev)

note() { echo "pg.sh: $*" >&2; }
die() {
	note "ERROR: $*"
	exit 1
}

tarball_of() {
	local major="$1" f
	f="$(find "$SOURCES" -maxdepth 1 -name "postgresql-${major}_*.orig.tar.bz2" 2>/dev/null | sort -V | tail -n 1 || true)"
	[[ -n "$f" ]] || die "no postgresql-${major}_*.orig.tar.bz2 in $SOURCES (set IDALLOC_PG_SOURCES)"
	echo "$f"
}

# 17.11 from postgresql-17_17.11.orig.tar.bz2
version_of_tarball() {
	local base
	base="$(basename "$1")"
	base="${base#postgresql-*_}"
	echo "${base%.orig.tar.bz2}"
}

install_build_packages() {
	local missing=() p
	for p in "${BUILD_PACKAGES[@]}"; do
		[[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" == "install ok installed" ]] ||
			missing+=("$p")
	done
	((${#missing[@]})) || return 0
	[[ "$(id -u)" -eq 0 ]] || die "missing packages: ${missing[*]} (run as root)"
	note "installing: ${missing[*]}"
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
}

build_major() {
	local major="$1" tarball="$2" version="$3"
	local prefix="$PREFIX_ROOT/$major" log="$PREFIX_ROOT/$major.build.log"
	local src
	install_build_packages
	mkdir -p "$PREFIX_ROOT"
	src="$(mktemp -d "${TMPDIR:-/var/tmp}/idalloc-pg$major.XXXXXX")"
	note "building PostgreSQL $version from $tarball into $prefix (log: $log)"
	local t0=$SECONDS
	# (each step only if the one before succeeded: "set -e" does not apply
	# on the left of "||"; the old prefix goes only once the build is done)
	{
		tar -xjf "$tarball" -C "$src" --strip-components=1 &&
			cd "$src" &&
			./configure --prefix="$prefix" --enable-tap-tests --without-icu \
				--with-zlib --with-readline CFLAGS='-O2 -g' &&
			make -j2 -s &&
			make -C src/test/isolation -s &&
			rm -rf "$prefix" &&
			make -s install &&
			make -C src/test/isolation -s install &&
			make -C src/test/perl -s install
	} >"$log" 2>&1 || {
		tail -n 40 "$log" >&2
		rm -rf "$src"
		die "the build of PostgreSQL $version failed"
	}
	rm -rf "$src"
	note "built PostgreSQL $version in $((SECONDS - t0)) s"
}

bindir_of() {
	local major="$1"
	case "$major" in
	15)
		# Debian's packages (scripts/setup.sh installs them)
		[[ -x /usr/lib/postgresql/15/bin/pg_config ]] || bash "$REPO/scripts/setup.sh" >&2
		echo /usr/lib/postgresql/15/bin
		;;
	17 | 18)
		local tarball version prefix have pgxs complete=1
		prefix="$PREFIX_ROOT/$major"
		have="$("$prefix/bin/pg_config" --version 2>/dev/null || true)"
		pgxs="$("$prefix/bin/pg_config" --pkglibdir 2>/dev/null || true)/pgxs/src/test"
		[[ -x "$pgxs/isolation/pg_isolation_regress" && -f "$pgxs/perl/PostgreSQL/Test/Cluster.pm" ]] ||
			complete=0
		if ! tarball="$(tarball_of "$major" 2>/dev/null)"; then
			# no sources here: a complete build already in the prefix serves
			((complete)) || tarball_of "$major" >/dev/null
			note "no PostgreSQL $major tarball in $SOURCES; using the build in $prefix ($have)"
		else
			version="$(version_of_tarball "$tarball")"
			if [[ "$have" != "PostgreSQL $version" ]] || ((!complete)); then
				build_major "$major" "$tarball" "$version"
			fi
		fi
		# the clusters run as postgres
		chmod -R a+rX "$prefix"
		echo "$prefix/bin"
		;;
	*)
		die "PostgreSQL $major is not one of the majors idalloc is tested on (${MAJORS[*]})"
		;;
	esac
}

case "${1:-}" in
bindir)
	[[ $# -eq 2 ]] || die "usage: scripts/pg.sh bindir MAJOR"
	bindir_of "$2"
	;;
majors)
	echo "${MAJORS[*]}"
	;;
*)
	die "usage: scripts/pg.sh bindir MAJOR | majors"
	;;
esac
