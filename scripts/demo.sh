#!/usr/bin/env bash
# One-command demo: install prerequisites, build and install idalloc, start
# the throwaway demo cluster (scripts/cluster.sh, port 55432) and run
# scripts/demo.sql in it.  Run as root.  Safe to run repeatedly.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BINDIR=/usr/lib/postgresql/15/bin
PORT=55432
SOCKDIR="$REPO/.run/demo"
MAKE="${MAKE:-make}"

if [[ "$(id -u)" -ne 0 ]]; then
	echo "demo.sh: run as root (it installs packages and the extension, and runs the server as postgres)" >&2
	exit 1
fi

bash "$REPO/scripts/setup.sh"

echo "demo.sh: building idalloc"
"$MAKE" --no-print-directory -C "$REPO"
echo "demo.sh: installing idalloc"
"$MAKE" --no-print-directory -C "$REPO" install

bash "$REPO/scripts/cluster.sh" start

psql_demo() {
	runuser -u postgres -- "$BINDIR/psql" -X -v ON_ERROR_STOP=1 \
		-h "$SOCKDIR" -p "$PORT" -U postgres -d postgres "$@"
}

echo "demo.sh: CREATE EXTENSION IF NOT EXISTS idalloc"
psql_demo -q -c 'CREATE EXTENSION IF NOT EXISTS idalloc;'
echo "demo.sh: running scripts/demo.sql"
echo
# Feed the file on stdin: it is read by root, so no permission issue.
psql_demo -e <"$REPO/scripts/demo.sql"

echo
echo "The demo cluster is still running (port $PORT, socket dir $SOCKDIR)."
echo "Connect with (paste as root; trust authentication):"
printf '  %q -h %q -p %s -U postgres postgres\n' "$BINDIR/psql" "$SOCKDIR" "$PORT"
echo "Stop it with:"
echo "  make stop"
