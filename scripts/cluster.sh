#!/usr/bin/env bash
# The throwaway idalloc demo cluster.
#
#   scripts/cluster.sh start    initdb if needed, then start (or restart, so a
#                               freshly installed idalloc.so is picked up)
#   scripts/cluster.sh stop     fast shutdown; quiet no-op if not running
#   scripts/cluster.sh status   show whether it is running
#
# Data dir   .run/demo/data
# Socket dir .run/demo   (absolute path; Unix socket only, listen_addresses = '')
# Port       55432       (fixed)
# Log        .run/demo/log
#
# Runs every server program as the "postgres" OS user (PostgreSQL refuses to
# run as root); call it as root (or as postgres).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BINDIR=/usr/lib/postgresql/15/bin
PORT=55432
DEMO_DIR="$REPO/.run/demo"
DATA="$DEMO_DIR/data"
LOG="$DEMO_DIR/log"

die() { echo "cluster.sh: $*" >&2; exit 1; }

as_pg() {
	if [[ "$(id -un)" == postgres ]]; then
		"$@"
	elif [[ "$(id -u)" -eq 0 ]]; then
		runuser -u postgres -- "$@"
	else
		die "run as root (or as the postgres user)"
	fi
}

is_running() {
	[[ -f "$DATA/PG_VERSION" && -x "$BINDIR/pg_ctl" ]] || return 1
	as_pg "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

write_conf() {
	local sockdir="${DEMO_DIR//\'/\'\'}"	# SQL-style quote doubling
	# Regenerated on every start; included from postgresql.conf.
	as_pg tee "$DATA/idalloc_demo.conf" >/dev/null <<CONF
# Written by scripts/cluster.sh -- regenerated on every start.
port = $PORT
listen_addresses = ''
unix_socket_directories = '$sockdir'
shared_preload_libraries = 'idalloc'
CONF
	if ! grep -q "^include 'idalloc_demo.conf'" "$DATA/postgresql.conf"; then
		printf "\ninclude 'idalloc_demo.conf'\n" | as_pg tee -a "$DATA/postgresql.conf" >/dev/null
	fi
}

start() {
	[[ -x "$BINDIR/initdb" ]] || die "PostgreSQL 15 is not installed: run scripts/setup.sh as root"
	# Unix socket paths are limited to 107 bytes.
	local sock="$DEMO_DIR/.s.PGSQL.$PORT"
	((${#sock} <= 100)) || die "socket path too long (${#sock} bytes): $sock -- move the repository to a shorter path"

	if [[ ! -d "$REPO/.run" ]]; then
		[[ "$(id -u)" -eq 0 ]] || die "$REPO/.run missing: run scripts/setup.sh as root"
		install -d -o postgres -g postgres -m 0755 "$REPO/.run"
	fi
	as_pg mkdir -p "$DEMO_DIR"

	if [[ ! -f "$DATA/PG_VERSION" ]]; then
		echo "cluster.sh: initdb $DATA"
		as_pg rm -rf "$DATA"
		if ! as_pg "$BINDIR/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C --no-sync 2>&1 |
			as_pg tee "$DEMO_DIR/initdb.log" >/dev/null; then
			cat "$DEMO_DIR/initdb.log" >&2
			die "initdb failed (log: $DEMO_DIR/initdb.log)"
		fi
	fi
	write_conf

	local action=(start)
	if is_running; then
		action=(restart -m fast)
		echo "cluster.sh: already running; restarting (picks up a rebuilt idalloc.so)"
	fi
	if ! as_pg "$BINDIR/pg_ctl" "${action[@]}" -w -t 60 -D "$DATA" -l "$LOG" >/dev/null; then
		echo "cluster.sh: pg_ctl ${action[0]} failed; last lines of $LOG:" >&2
		tail -n 30 "$LOG" >&2 || true
		exit 1
	fi
	echo "cluster.sh: demo cluster running: port $PORT, socket dir $DEMO_DIR, data $DATA, log $LOG"
}

stop() {
	if is_running; then
		as_pg "$BINDIR/pg_ctl" stop -w -m fast -D "$DATA" >/dev/null
		echo "cluster.sh: demo cluster stopped"
	fi
}

status() {
	if is_running; then
		echo "cluster.sh: running (port $PORT, socket dir $DEMO_DIR, data $DATA)"
	else
		echo "cluster.sh: not running"
		return 3
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 start|stop|status" >&2
	exit 2
	;;
esac
