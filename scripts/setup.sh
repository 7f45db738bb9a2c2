#!/usr/bin/env bash
# Install (as root) whatever the idalloc build, demo and test scripts need,
# make the repository reachable by the "postgres" OS user and create the
# git-ignored .run/ directory owned by postgres.
#
# Idempotent: installs only missing packages, touches only ancestors that
# "postgres" cannot traverse.  Safe to run repeatedly.
#
# Installing postgresql-15 creates (and may start) Debian's "main" cluster on
# port 5432; it is left alone -- our clusters use ports 55432-55434.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"

# Everything scripts/*.sh and the Makefile use that is not Essential.
PACKAGES=(
	postgresql-15              # server, initdb, pg_ctl
	postgresql-client-15       # psql, pg_config, pg_regress, pg_isolation_regress, TAP perl libs
	postgresql-server-dev-15   # PGXS, server headers (pulls clang-14/llvm-14-dev for .bc files)
	libipc-run-perl            # PostgreSQL::Test::* (TAP)
	postgresql-15-repack       # pg_repack, for t/018_repack.pl (G1 across rewrites)
	perl                       # prove
	make
	gcc
	libc6-dev                  # only "Recommended" by gcc
	# clients, pooler, monitoring and packaging (issue 11's tests)
	python3                    # /usr/bin/python3, Debian's (the tests use it, not a PATH one)
	python3-sqlalchemy         # t/023_sqlalchemy.pl
	python3-psycopg2           #   (its driver)
	pgbouncer                  # t/025_pgbouncer.pl
	prometheus-postgres-exporter  # t/026_exporter.pl
	pgxnclient                 # t/022_pgxn.pl
	git                        # make dist (git archive)
)
# Node.js for t/024_node_pg.pl: the machine's own if it has one, else Debian's
command -v node >/dev/null 2>&1 || PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

is_installed() {
	local status
	status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
	[[ "$status" == "install ok installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
	is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]})); then
	if [[ "$(id -u)" -ne 0 ]]; then
		echo "setup.sh: missing packages: ${missing[*]}" >&2
		echo "setup.sh: run this script as root to install them" >&2
		exit 1
	fi
	echo "setup.sh: installing: ${missing[*]}"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
	echo "setup.sh: all required packages are installed"
fi

if [[ "$(id -u)" -ne 0 ]]; then
	# Nothing else can be done without root (runuser, chmod, chown).
	if [[ "$(id -un)" != postgres ]]; then
		echo "setup.sh: not root: skipping directory permission checks and .run/ setup" >&2
	fi
	exit 0
fi

if ! id postgres >/dev/null 2>&1; then
	echo "setup.sh: OS user 'postgres' does not exist (is postgresql-15 installed?)" >&2
	exit 1
fi

# The postgres user must be able to traverse every ancestor of the repository
# (a CI clone may live under a mode-700 mktemp -d directory) and the repo.
dir="$REPO"
ancestors=()
while :; do
	ancestors=("$dir" "${ancestors[@]}")
	[[ "$dir" == / ]] && break
	dir="$(dirname "$dir")"
done
for dir in "${ancestors[@]}"; do
	if ! runuser -u postgres -- test -x "$dir"; then
		chmod o+x "$dir"
		echo "setup.sh: chmod o+x $dir (so the postgres user can reach the repository)"
	fi
done

# Test inputs are read by pg_regress / isolationtester / prove running as
# postgres: make sure they are readable (a clone made with a strict umask
# would not be).
if ! runuser -u postgres -- test -r "$REPO" -a -x "$REPO"; then
	chmod o+rx "$REPO"
	echo "setup.sh: chmod o+rx $REPO"
fi
for sub in sql expected specs t test scripts clients monitoring debian; do
	path="$REPO/$sub"
	[[ -d "$path" ]] || continue
	if [[ -n "$(find "$path" \( -type f ! -perm -o=r \) -o \( -type d ! -perm -o=rx \) -print -quit)" ]]; then
		chmod -R o+rX "$path"
		echo "setup.sh: chmod -R o+rX $path (so the postgres user can read the test files)"
	fi
done

# Git-ignored working area for clusters and test output, owned by postgres.
install -d -o postgres -g postgres -m 0755 "$REPO/.run"
chown postgres:postgres "$REPO/.run"
echo "setup.sh: ready (.run/ owned by postgres)"
