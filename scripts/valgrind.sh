#!/usr/bin/env bash
# The driver behind "make valgrind" (run as root): the pg_regress suite
# (sql/*.sql) and the isolation suite (specs/*.spec) against a server running
# under Valgrind's memcheck.
#
#   1. scripts/setup.sh, and valgrind from Debian's archive if missing;
#      build and install idalloc
#   2. initdb .run/valgrind/data (as "postgres"); settings: those
#      pg_regress --temp-instance adds, test/idalloc.conf, jit = off,
#      log_statement = all, and a Unix socket in .run/valgrind only
#      (listen_addresses = '', port 55436)
#   3. start the postmaster under
#        valgrind --tool=memcheck --trace-children=yes --track-origins=yes
#                 --leak-check=no --error-markers=... --suppressions=...
#      with one log per process in .run/valgrind/vglog/<pid>.log
#   4. pg_regress and pg_isolation_regress with --use-existing against it
#      (isolation step timeout PGISOLATIONTIMEOUT, default here 1800 s, as
#      everything runs many times slower); then stop the server
#   5. read every Valgrind error report (between the error markers)
#
# Which errors fail the target: a report with a stack frame in idalloc's code
# -- a frame "in .../idalloc.so" or in a source file under this repository's
# src/, in the error's stack or in its origin ("created by ... at") stack.
# Those are printed in full (each distinct report once).  Reports only in
# PostgreSQL (or libc) are counted and listed but do NOT fail the target:
# Debian builds the server without USE_VALGRIND, so memcheck does not see
# PostgreSQL's memory-context bookkeeping, and Debian strips the server, so
# PostgreSQL's own suppressions that name a static function do not match;
# some false positives there are expected -- look at them, but they are not
# idalloc's.  Suppressions: PostgreSQL's own (test/valgrind.supp, vendored)
# and the Debian-build equivalents, with their reasons
# (test/valgrind-debian.supp).  Test failures (diffs, crashes, timeouts) are
# printed and also fail the target.
#
# What memcheck can see without USE_VALGRIND: reads of uninitialized stack
# memory and of palloc'd memory never written since it came from malloc (a
# fresh memory-context block, a large chunk); invalid access outside any
# malloc'd block -- past a large (> 8 kB) palloc chunk, or into one already
# pfree'd; bad system-call arguments.  It cannot see a small overrun or a
# use-after-pfree inside an aset.c block, or a read of a recycled small
# chunk (its old bytes look initialized).
#
# Usage: scripts/valgrind.sh [TEST...]   (TEST: a name from sql/ or specs/,
# default all).  The last line of output is always
#   valgrind: N error(s), N in idalloc, N in PostgreSQL only; tests: N passed, N failed
# and the exit status is 1 on an idalloc error or a failed test, else 0.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BINDIR=/usr/lib/postgresql/15/bin
OUT="$REPO/.run/valgrind"
DATA="$OUT/data"
VGLOG="$OUT/vglog"
PORT=55436
MAKE="${MAKE:-make}"
export PGISOLATIONTIMEOUT="${PGISOLATIONTIMEOUT:-1800}"
STARTUP_TIMEOUT=600		# seconds for the postmaster to accept connections
STOP_TIMEOUT=600		# seconds for a fast shutdown

passed=0
failed=0
vg_total=0
vg_idalloc=0
vg_pg=0
server_pid=""
started_at=$(date +%s)

note() { echo "valgrind.sh: $*"; }

finish() {
	local secs=$(($(date +%s) - started_at))
	echo
	note "took $((secs / 60)) min $((secs % 60)) s"
	echo "valgrind: $vg_total error(s), $vg_idalloc in idalloc, $vg_pg in PostgreSQL only; tests: $passed passed, $failed failed"
	((vg_idalloc == 0 && failed == 0)) && exit 0
	exit 1
}

# A step that prevents the run: count one failed test and stop.
abort() {
	note "ERROR: $*" >&2
	failed=$((failed + 1))
	stop_server immediate
	finish
}

# as_pg, clean_env, list_tests
source "$REPO/scripts/lib.sh"

# pid of the postmaster of $DATA if it runs (under valgrind its command name
# is memcheck-*, so check the command line instead), else nothing.
running_postmaster() {
	local pid
	[[ -f "$DATA/postmaster.pid" ]] || return 0
	pid="$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 0
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DATA" && echo "$pid"
	return 0
}

# stop_server fast|immediate: stop the server of $DATA (if running) and wait
# for every process of it to exit (their valgrind logs are complete then).
stop_server() {
	local mode="$1" pid
	pid="$(running_postmaster)"
	[[ -n "$pid" ]] || return 0
	note "stopping the server (pid $pid, -m $mode)"
	as_pg "$BINDIR/pg_ctl" stop -D "$DATA" -m "$mode" -w -t "$STOP_TIMEOUT" >/dev/null 2>&1 ||
		note "pg_ctl stop -m $mode failed"
	for _ in $(seq 1 120); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		note "killing postmaster $pid"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	# backends and workers under valgrind can outlive the postmaster briefly
	local left
	for _ in $(seq 1 120); do
		left="$(pgrep -u postgres -f -- "$DATA" || true)"
		[[ -z "$left" ]] && break
		sleep 0.5
	done
	[[ -n "$left" ]] && note "processes still running from $DATA: $(tr '\n' ' ' <<<"$left")"
	server_pid=""
}

on_signal() {
	note "interrupted"
	stop_server immediate
	exit 130
}

parse_regress_log() {
	sed -nE 's/^(test[[:space:]]+|[[:space:]]+)([^[:space:]]+)[[:space:]]+\.\.\.[[:space:]]+(ok|FAILED|failed \(ignored\)).*/\3 \2/p' "$1"
}

# run_regress_suite LABEL RUNNER DBNAME TEST...
run_regress_suite() {
	local label="$1" runner="$2" dbname="$3"
	shift 3
	local tests=("$@") ntests=$# rc n_ok n_fail n_seen
	local outdir="$OUT/$label" log="$OUT/$label/$label.log"

	as_pg mkdir -p "$outdir"
	local cmd=("$runner"
		--use-existing
		"--host=$OUT"
		"--port=$PORT"
		"--inputdir=$REPO"
		"--outputdir=$outdir"
		"--bindir=$BINDIR"
		"--dbname=$dbname"
		--no-locale --encoding=UTF8
		"${tests[@]}")
	echo
	note "=== $label: $ntests test(s) under valgrind ==="
	echo "${cmd[*]}"
	as_pg "${clean_env[@]}" PGISOLATIONTIMEOUT="$PGISOLATIONTIMEOUT" "${cmd[@]}" 2>&1 |
		as_pg tee "$log"
	rc=${PIPESTATUS[0]}

	local results
	results="$(parse_regress_log "$log")"
	n_ok=$(grep -c '^ok ' <<<"$results")
	n_fail=$(grep -c -v '^ok ' <<<"$results")
	[[ -z "$results" ]] && n_fail=0
	n_seen=$((n_ok + n_fail))
	passed=$((passed + n_ok))
	failed=$((failed + n_fail))
	if ((n_seen < ntests)); then
		note "$label: only $n_seen of $ntests test(s) reported a result; counting $((ntests - n_seen)) as failed"
		failed=$((failed + ntests - n_seen))
	elif ((rc != 0 && n_fail == 0)); then
		note "$label: $(basename "$runner") exited with status $rc; counting 1 failure"
		failed=$((failed + 1))
	fi
	if ((rc != 0 || n_fail > 0)) && [[ -s "$outdir/regression.diffs" ]]; then
		echo
		note "--- $label: $outdir/regression.diffs (first 200 lines) ---"
		head -n 200 "$outdir/regression.diffs"
	fi
}

# ---------------------------------------------------------------------------
# Reading the valgrind logs.
#
# Every report is the text between the error markers; it is idalloc's if a
# frame is in idalloc.so or in a source file under $REPO/src/ (the logs
# show full source paths: --fullpath-after=).  Writes, under $OUT:
#   reports.idalloc, reports.pg: the reports, each headed "### <log file>",
#   separated by blank lines; and sets vg_total, vg_idalloc, vg_pg.
analyze_logs() {
	local logs
	shopt -s nullglob
	logs=("$VGLOG"/*.log)
	shopt -u nullglob
	VG_SO="(in $1/idalloc.so)" VG_SRC="($REPO/src/" \
		awk -v out_ours="$OUT/reports.idalloc" -v out_pg="$OUT/reports.pg" '
		BEGIN { so = ENVIRON["VG_SO"]; src = ENVIRON["VG_SRC"] }
		FNR == 1 { inrep = 0 }
		/VALGRINDERROR-BEGIN/ { inrep = 1; text = ""; ours = 0; next }
		/VALGRINDERROR-END/ {
			if (!inrep) next
			inrep = 0
			if (ours) { n_ours++; print "### " FILENAME "\n" text > out_ours }
			else { n_pg++; print "### " FILENAME "\n" text > out_pg }
			next
		}
		inrep {
			line = $0; sub(/^==[0-9]+== ?/, "", line)
			text = text line "\n"
			if (index($0, so) || index($0, src)) ours = 1
		}
		END { printf "%d %d\n", n_ours, n_pg }' /dev/null "${logs[@]}" >"$OUT/counts"
	read -r vg_idalloc vg_pg <"$OUT/counts"
	vg_total=$((vg_idalloc + vg_pg))
}

# Each distinct report of FILE once, with the logs (processes) it came from.
print_distinct_reports() {
	awk 'BEGIN { RS = "### " }
		NR > 1 {
			nl = index($0, "\n"); file = substr($0, 1, nl - 1); text = substr($0, nl + 1)
			sub(/\n+$/, "", text); sub(/.*\//, "", file)
			if (!(text in seen)) { order[++n] = text; seen[text] = 0 }
			seen[text]++; files[text] = files[text] " " file
		}
		END {
			for (i = 1; i <= n; i++) {
				t = order[i]
				printf "--- distinct report %d of %d, in %d process(es):%s ---\n%s\n\n", i, n, seen[t], files[t], t
			}
		}' "$1"
}

# One line per distinct PostgreSQL-only report: count, kind, top frames.
summarize_pg_reports() {
	awk '
		/^### / { flush(); file = $2; kind = ""; frames = ""; nf = 0; next }
		kind == "" && NF { kind = $0; next }
		/^ *(at|by) 0x/ && nf < 5 {
			f = $0; sub(/^ *(at|by) 0x[0-9A-Fa-f]+: /, "", f)
			frames = frames (nf ? " < " : "") f; nf++
		}
		/^ *(Uninitialised value was created|Address 0x)/ { nf = 99 }
		function flush() { if (kind != "") { key = kind " @ " frames; cnt[key]++ } kind = "" }
		END { flush(); for (k in cnt) printf "%5d x %s\n", cnt[k], k }' "$OUT/reports.pg" |
		sort -rn
}

# ---------------------------------------------------------------------------

if [[ "$(id -u)" -ne 0 ]]; then
	abort "run as root (the server runs as the postgres user via runuser; packages and the extension are installed)"
fi
trap on_signal INT TERM

bash "$REPO/scripts/setup.sh" || abort "scripts/setup.sh failed"
if ! dpkg-query -W -f='${Status}' valgrind 2>/dev/null | grep -q '^install ok installed$'; then
	note "installing valgrind"
	apt-get update || abort "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends valgrind ||
		abort "apt-get install valgrind failed"
fi

PG_CONFIG="$BINDIR/pg_config"
[[ -x "$PG_CONFIG" ]] || abort "$PG_CONFIG not found after setup"
PKGLIBDIR="$("$PG_CONFIG" --pkglibdir)"
PGXS_TEST="$PKGLIBDIR/pgxs/src/test"
PG_REGRESS="$PGXS_TEST/regress/pg_regress"
PG_ISOLATION_REGRESS="$PGXS_TEST/isolation/pg_isolation_regress"

echo
note "building idalloc"
"$MAKE" --no-print-directory -C "$REPO" PG_CONFIG="$PG_CONFIG" || abort "build failed"
note "installing idalloc"
"$MAKE" --no-print-directory -C "$REPO" PG_CONFIG="$PG_CONFIG" install || abort "make install failed"

# Which tests: all, or those named on the command line.
mapfile -t regress_tests < <(list_tests sql sql)
mapfile -t isolation_tests < <(list_tests specs spec)
if (($#)); then
	want=" $* "
	sel_r=() sel_i=()
	for t in "${regress_tests[@]}"; do [[ "$want" == *" $t "* ]] && sel_r+=("$t"); done
	for t in "${isolation_tests[@]}"; do [[ "$want" == *" $t "* ]] && sel_i+=("$t"); done
	((${#sel_r[@]} + ${#sel_i[@]} == $#)) ||
		abort "unknown test name among: $* (known: ${regress_tests[*]} ${isolation_tests[*]})"
	regress_tests=("${sel_r[@]}")
	isolation_tests=("${sel_i[@]}")
fi
((${#regress_tests[@]} + ${#isolation_tests[@]})) || abort "no tests in sql/ or specs/"

# A fresh cluster.
stop_server immediate
rm -rf "$OUT"
install -d -o postgres -g postgres -m 0755 "$OUT" "$VGLOG" || abort "cannot create $OUT"
echo
note "initdb $DATA"
as_pg "$BINDIR/initdb" -D "$DATA" --no-locale -E UTF8 -A trust --no-sync >"$OUT/initdb.log" 2>&1 ||
	{ cat "$OUT/initdb.log"; abort "initdb failed"; }
{
	echo
	echo "# ---- added by scripts/valgrind.sh ----"
	echo "port = $PORT"
	echo "listen_addresses = ''"
	echo "unix_socket_directories = '${OUT//\'/\'\'}'"
	echo "# as pg_regress --temp-instance (what 'make test' runs with)"
	echo "log_autovacuum_min_duration = 0"
	echo "log_checkpoints = on"
	echo "log_line_prefix = '%m %b[%p] %q%a '"
	echo "log_lock_waits = on"
	echo "log_temp_files = 128kB"
	echo "max_prepared_transactions = 2"
	echo "# which statement a process ran when valgrind reported (pid in the prefix)"
	echo "log_statement = all"
	echo "# No LLVM JIT: under memcheck, compiling is very slow, loading llvmjit.so"
	echo "# trips a known false positive in glibc's ld.so (strncmp in is_dst), and"
	echo "# functions inlined from idalloc's installed bitcode would run as JIT code"
	echo "# without idalloc.so frames in their stacks."
	echo "jit = off"
	echo "# sql/tso_kind.sql: memcheck delivers the clock timer's signal late (each"
	echo "# call runs many times slower), so an ID may trail its moment by more than"
	echo "# the 2 ms a plain server is allowed; the check stays whole otherwise"
	echo "regress.tso_clock_slack_ms = 1000"
	echo "# test/idalloc.conf"
	cat "$REPO/test/idalloc.conf"
} | as_pg tee -a "$DATA/postgresql.conf" >/dev/null

VALGRIND_CMD=(valgrind --quiet --tool=memcheck
	--trace-children=yes --track-origins=yes --read-var-info=no
	--leak-check=no --num-callers=40 --fullpath-after=
	--error-markers=VALGRINDERROR-BEGIN,VALGRINDERROR-END
	"--suppressions=$REPO/test/valgrind.supp"
	"--suppressions=$REPO/test/valgrind-debian.supp"
	"--log-file=$VGLOG/%p.log")

echo
note "starting the server under valgrind (log $OUT/postmaster.log)"
echo "${VALGRIND_CMD[*]} $BINDIR/postgres -D $DATA"
as_pg "${clean_env[@]}" "${VALGRIND_CMD[@]}" "$BINDIR/postgres" -D "$DATA" \
	>"$OUT/postmaster.log" 2>&1 </dev/null &
launcher=$!
for ((i = 0; i < STARTUP_TIMEOUT; i++)); do
	if "$BINDIR/pg_isready" -q -h "$OUT" -p "$PORT" -U postgres -d postgres; then
		server_pid="$(running_postmaster)"
		break
	fi
	kill -0 "$launcher" 2>/dev/null || break
	sleep 1
done
if [[ -z "$server_pid" ]]; then
	tail -n 40 "$OUT/postmaster.log"
	abort "the server did not start within $STARTUP_TIMEOUT s"
fi
note "server up after ${i} s (postmaster pid $server_pid)"

# pg_regress --use-existing does not create its database: do what it does
# for a temp instance (pg_regress.c, create_database()).
create_test_database() {
	local db="$1"
	as_pg "${clean_env[@]}" "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$OUT" -p "$PORT" \
		-U postgres -d postgres >/dev/null <<SQL || abort "cannot create database $db"
CREATE DATABASE "$db" TEMPLATE=template0 ENCODING='UTF8' LC_COLLATE='C' LC_CTYPE='C';
ALTER DATABASE "$db" SET lc_messages TO 'C';
ALTER DATABASE "$db" SET lc_monetary TO 'C';
ALTER DATABASE "$db" SET lc_numeric TO 'C';
ALTER DATABASE "$db" SET lc_time TO 'C';
ALTER DATABASE "$db" SET bytea_output TO 'hex';
ALTER DATABASE "$db" SET timezone_abbreviations TO 'Default';
SQL
}

if ((${#regress_tests[@]})); then
	[[ -x "$PG_REGRESS" ]] || abort "$PG_REGRESS not found"
	create_test_database contrib_regression
	run_regress_suite regress "$PG_REGRESS" contrib_regression "${regress_tests[@]}"
fi
if ((${#isolation_tests[@]})); then
	[[ -x "$PG_ISOLATION_REGRESS" ]] || abort "$PG_ISOLATION_REGRESS not found"
	create_test_database isolation_regression
	run_regress_suite isolation "$PG_ISOLATION_REGRESS" isolation_regression "${isolation_tests[@]}"
fi

echo
stop_server fast
wait "$launcher" 2>/dev/null

# Server crashes show in the server log, not as valgrind reports.
if grep -E 'terminated by signal|was terminated by exception|server process .* exited with exit code [^0]' \
	"$OUT/postmaster.log" >"$OUT/crashes"; then
	note "--- server processes that crashed (see $OUT/postmaster.log) ---"
	cat "$OUT/crashes"
	grep -l 'Process terminating' "$VGLOG"/*.log 2>/dev/null |
		sed 's/^/valgrind log of a process that died: /'
fi

analyze_logs "$PKGLIBDIR"
echo
if ((vg_idalloc > 0)); then
	note "=== $vg_idalloc valgrind report(s) with a frame in idalloc's code ==="
	print_distinct_reports "$OUT/reports.idalloc"
fi
if ((vg_pg > 0)); then
	note "=== $vg_pg valgrind report(s) in PostgreSQL only (not failing; full text in $OUT/reports.pg) ==="
	summarize_pg_reports
fi
((vg_total == 0)) && note "no valgrind error reports"
note "valgrind logs: $VGLOG/<pid>.log; server log: $OUT/postmaster.log"

finish
