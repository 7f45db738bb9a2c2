#!/usr/bin/env bash
# The driver behind "make bench" (run as root).  See bench/README.md.
#
#   1. scripts/setup.sh, build and install idalloc (as scripts/demo.sh does)
#   2. a fresh throwaway cluster in .run/bench (data .run/bench/data, Unix
#      socket in .run/bench, port 55435, shared_preload_libraries = 'idalloc',
#      shared_buffers = 256MB, fsync on), run as the postgres OS user
#   3. the measurements, each repeated BENCH_ROUNDS times with the variants
#      in a rotated order in every round; every per-round value goes to
#      .run/bench/raw.tsv
#   4. stop the cluster, then bench/report.sh prints one markdown table of
#      medians and ratios (also saved in .run/bench/results.md), and
#      bench/plot.sh draws the scaling measurement into bench/scaling.png
#      (gnuplot)
#
# Environment (all optional):
#   BENCH_ROUNDS=5          rounds of every measurement (medians are taken)
#   BENCH_SCALE_SECONDS=3   pgbench -T of each scaling run
#   BENCH_RT_SECONDS=3      pgbench -T of each round-trip run
#   BENCH_BATCH_SECONDS=2   pgbench -T of each idalloc_batch run
#   BENCH_PIN=1             pin 1-client pgbench runs and their backend to one
#                           CPU (0: let the scheduler place them)
#
# Exits non-zero only on errors; a missed target is reported, not failed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BINDIR=/usr/lib/postgresql/15/bin
PORT=55435
RUN="$REPO/.run/bench"
DATA="$RUN/data"
LOG="$RUN/log"
RAW="$RUN/raw.tsv"
DB=bench
MAKE="${MAKE:-make}"

ROUNDS="${BENCH_ROUNDS:-5}"
SCALE_SECONDS="${BENCH_SCALE_SECONDS:-3}"
RT_SECONDS="${BENCH_RT_SECONDS:-3}"
BATCH_SECONDS="${BENCH_BATCH_SECONDS:-2}"
PIN="${BENCH_PIN:-1}"

N=1000000			# IDs per query in the per-call and WAL measurements

note() { echo "bench: $*" >&2; }
die() {
	echo "bench: ERROR: $*" >&2
	exit 1
}

for v in ROUNDS SCALE_SECONDS RT_SECONDS BATCH_SECONDS; do
	[[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive integer (got '${!v}')"
done
[[ "$PIN" == 0 || "$PIN" == 1 ]] || die "BENCH_PIN must be 0 or 1 (got '$PIN')"

if [[ "$(id -u)" -ne 0 ]]; then
	die "run as root (it installs packages and the extension, and runs the server as postgres)"
fi

started_at=$SECONDS

as_pg() { runuser -u postgres -- "$@"; }

# No inherited libpq settings may redirect psql or pgbench.
clean_env=(env -u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE -u PGUSER
	-u PGSERVICE -u PGOPTIONS -u PGPASSWORD -u PGSSLMODE -u PGAPPNAME)

psql_bench() {
	as_pg "${clean_env[@]}" "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$RUN" -p "$PORT" -U postgres -d "$DB" "$@"
}

# ---------------------------------------------------------------------------
# build and install

bash "$REPO/scripts/setup.sh" >&2
# gnuplot draws bench/scaling.png (bench/plot.sh)
if ! command -v gnuplot >/dev/null 2>&1; then
	note "installing gnuplot-nox (for bench/scaling.png)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gnuplot-nox >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gnuplot-nox >&2; } ||
		die "cannot install gnuplot-nox"
fi
note "building idalloc"
"$MAKE" --no-print-directory -C "$REPO" >&2
note "installing idalloc"
"$MAKE" --no-print-directory -C "$REPO" install >&2

for prog in initdb pg_ctl psql pgbench; do
	[[ -x "$BINDIR/$prog" ]] || die "$BINDIR/$prog not found"
done
if [[ "$PIN" == 1 ]] && ! command -v taskset >/dev/null; then
	note "taskset not found: not pinning the 1-client runs"
	PIN=0
fi

# ---------------------------------------------------------------------------
# the throwaway cluster

server_running() {
	[[ -f "$DATA/PG_VERSION" ]] && as_pg "$BINDIR/pg_ctl" status -D "$DATA" >/dev/null 2>&1
}

stop_server() {
	local mode="$1"
	if server_running; then
		as_pg "$BINDIR/pg_ctl" stop -D "$DATA" -m "$mode" -w -t 60 >/dev/null
	fi
}

cluster_started=0
src_started=0
on_exit() {
	local rc=$?
	if ((src_started)); then
		as_pg "$BINDIR/pg_ctl" stop -D "$RUN/src/data" -m fast -w -t 60 >/dev/null 2>&1 ||
			as_pg "$BINDIR/pg_ctl" stop -D "$RUN/src/data" -m immediate -w -t 60 >/dev/null 2>&1 || true
	fi
	if ((cluster_started)); then
		if ((rc != 0)); then
			note "failed (status $rc); last lines of $LOG:"
			tail -n 20 "$LOG" >&2 2>/dev/null || true
		fi
		stop_server fast || stop_server immediate || true
	fi
	exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

sock="$RUN/.s.PGSQL.$PORT"
((${#sock} <= 100)) || die "socket path too long (${#sock} bytes): $sock -- move the repository to a shorter path"

# An interrupted earlier run may have left its server up.
if server_running; then
	note "stopping the server left running in $DATA"
	stop_server immediate
fi
rm -rf "$RUN"
install -d -o postgres -g postgres -m 0755 "$RUN"

note "initdb $DATA"
if ! as_pg "$BINDIR/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C --no-sync \
	>"$RUN/initdb.log" 2>&1; then
	cat "$RUN/initdb.log" >&2
	die "initdb failed"
fi

sockdir="${RUN//\'/\'\'}"
as_pg tee -a "$DATA/postgresql.conf" >/dev/null <<CONF

# ---- written by bench/run.sh ----
port = $PORT
listen_addresses = ''
unix_socket_directories = '$sockdir'
shared_preload_libraries = 'idalloc'
shared_buffers = 256MB
max_connections = 40
# durability as in production: WAL flushes are part of what is measured
fsync = on
synchronous_commit = on
full_page_writes = on
wal_sync_method = fdatasync
# no checkpoint, autovacuum or JIT compilation in the middle of a timed run
checkpoint_timeout = 1h
max_wal_size = 8GB
autovacuum = off
jit = off
CONF

# The pgbench scripts, readable by postgres whatever the clone's permissions.
install -d -o postgres -g postgres -m 0755 "$RUN/pgbench"
install -o postgres -g postgres -m 0644 "$REPO"/bench/pgbench/*.sql "$RUN/pgbench/"

note "starting the cluster (port $PORT, socket dir $RUN)"
cluster_started=1
as_pg "$BINDIR/pg_ctl" start -D "$DATA" -l "$LOG" -w -t 60 >/dev/null ||
	die "pg_ctl start failed"
PM_PID="$(head -n 1 "$DATA/postmaster.pid")"

as_pg "${clean_env[@]}" "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$PORT" -U postgres \
	-d postgres -c "CREATE DATABASE $DB" >&2
psql_bench <"$REPO/bench/setup.sql" >/dev/null

# ---------------------------------------------------------------------------
# helpers

: >"$RAW"
record() { printf '%s\t%s\n' "$1" "$2" >>"$RAW"; }

# rotate ROUND ITEM...: the items, starting at index ROUND mod count.
rotate() {
	local r="$1"
	shift
	local items=("$@") n=$# i
	for ((i = 0; i < n; i++)); do
		printf '%s\n' "${items[$(((r + i) % n))]}"
	done
}

# One CPU for the 1-client runs: a client and its backend that wake each
# other on two vCPUs of a VM pay a cross-CPU wake-up each way (tens of µs
# here, and bimodal), which swamps what is measured.  New backends inherit
# the postmaster's affinity.
PIN_CPU=$(($(nproc) - 1))
PM_AFFINITY=""
pin_server() {
	[[ "$PIN" == 1 ]] || return 0
	PM_AFFINITY="$(taskset -pc "$PM_PID" | sed 's/.*: *//')"
	taskset -pc "$PIN_CPU" "$PM_PID" >/dev/null
}
unpin_server() {
	[[ "$PIN" == 1 && -n "$PM_AFFINITY" ]] || return 0
	taskset -pc "$PM_AFFINITY" "$PM_PID" >/dev/null
	PM_AFFINITY=""
}

# pgbench_tps SCRIPT CLIENTS SECONDS [pin]: prints the TPS (excluding
# connection time) of a -M prepared run of bench/pgbench/SCRIPT.sql.
pgbench_tps() {
	local script="$1" clients="$2" seconds="$3" pin="${4:-}" threads out tps
	threads=$((clients < $(nproc) ? clients : $(nproc)))
	local cmd=("$BINDIR/pgbench" -n -M prepared -c "$clients" -j "$threads" -T "$seconds"
		-h "$RUN" -p "$PORT" -U postgres -f "$RUN/pgbench/$script.sql" "$DB")
	if [[ "$pin" == pin && "$PIN" == 1 ]]; then
		cmd=(taskset -c "$PIN_CPU" "${cmd[@]}")
	fi
	if ! out="$(as_pg "${clean_env[@]}" "${cmd[@]}" 2>&1)"; then
		echo "$out" >&2
		die "pgbench $script -c $clients failed"
	fi
	tps="$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | head -n 1)"
	if [[ -z "$tps" ]] || ! grep -q '^number of failed transactions: 0 ' <<<"$out"; then
		echo "$out" >&2
		die "pgbench $script -c $clients: no TPS or failed transactions"
	fi
	echo "$tps"
}

# pgbench_tps_p99 SCRIPT CLIENTS SECONDS: prints "TPS P99_US" of a -M
# prepared run, the 99th percentile of the latencies pgbench logged (one
# transaction in 5 sampled, --log).
pgbench_tps_p99() {
	local script="$1" clients="$2" seconds="$3" threads out tps p99
	local logdir="$RUN/pglog"
	threads=$((clients < $(nproc) ? clients : $(nproc)))
	as_pg rm -rf "$logdir"
	as_pg mkdir -p "$logdir"
	if ! out="$(cd "$logdir" && as_pg "${clean_env[@]}" "$BINDIR/pgbench" -n -M prepared \
		-c "$clients" -j "$threads" -T "$seconds" --log --sampling-rate=0.2 \
		--log-prefix="$logdir/tx" -h "$RUN" -p "$PORT" -U postgres \
		-f "$RUN/pgbench/$script.sql" "$DB" 2>&1)"; then
		echo "$out" >&2
		die "pgbench $script -c $clients failed"
	fi
	tps="$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out" | head -n 1)"
	[[ -n "$tps" ]] || die "pgbench $script: no TPS"
	# columns: client_id transaction_no latency_us script_no epoch epoch_us
	p99="$(cat "$logdir"/tx.* | awk '{ print $3 }' | sort -n |
		awk '{ a[NR] = $1 } END { if (NR) print a[int(NR * 0.99 + 0.999)] }')"
	[[ -n "$p99" ]] || die "pgbench $script: no latencies logged"
	echo "$tps $p99"
}

# timed_psql: run SQL from stdin in one session; lines "@@ KEY" (from \echo)
# label the next "Time: X ms" of \timing.  Prints "KEY<TAB>ms" lines.
timed_psql() {
	local out
	out="$(psql_bench)" || die "psql failed"
	awk '/^@@ / { key = $2; next }
		/^Time: / { if (key != "") print key "\t" $2; key = ""; next }' <<<"$out"
}

CKPT_SQL="SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
checkpoints_before="$(psql_bench -c "$CKPT_SQL")"
EXPLICIT_CHECKPOINTS=2	# around the INSERT section

# ---------------------------------------------------------------------------
# 1. per-call cost in one query

declare -A PC_SQL=(
	[floor]="count(1)"
	[global]="count(idalloc_one())"
	[named]="count(idalloc_one('named'))"
	[cached]="count(idalloc_one('cached'))"
	[seq1]="count(nextval('seq_c1'))"
	[seq1000]="count(nextval('seq_c1000'))"
	[uuid]="count(gen_random_uuid())"
	[tso]="count(idalloc_one('tso'))"
)
PC_ORDER=(floor global named cached seq1 seq1000 uuid tso)

note "1/9 per-call cost: SELECT count(f) FROM generate_series(1, $N), $ROUNDS rounds"
for ((r = 0; r < ROUNDS; r++)); do
	mapfile -t order < <(rotate "$r" "${PC_ORDER[@]}")
	{
		# warm-up: caches, the first refill, the sequences' relcache entries
		for v in "${PC_ORDER[@]}"; do
			echo "SELECT ${PC_SQL[$v]} FROM generate_series(1, 1000);"
		done
		printf '%s\n' '\timing on'
		for v in "${order[@]}"; do
			printf '\\echo @@ %s\n' "$v"
			echo "SELECT ${PC_SQL[$v]} FROM generate_series(1, $N);"
		done
	} | timed_psql >"$RUN/round.tsv"
	declare -A ms=()
	while IFS=$'\t' read -r k v; do ms[$k]="$v"; done <"$RUN/round.tsv"
	for v in "${PC_ORDER[@]}"; do
		[[ -n "${ms[$v]:-}" ]] || die "per-call: no timing for $v"
		record "pc.ms.$v" "${ms[$v]}"
		[[ "$v" == floor ]] && continue
		record "pc.ns.$v" "$(awk -v t="${ms[$v]}" -v f="${ms[floor]}" -v n="$N" \
			'BEGIN { printf "%.3f", (t - f) * 1e6 / n }')"
	done
	unset ms
done

# ---------------------------------------------------------------------------
# 2. scaling

SC_VARIANTS=(global cached nextval uuid)
SC_CLIENTS=(1 2 4 8)
note "2/9 scaling: 10000 IDs per query, ${SC_CLIENTS[*]} clients, ${SCALE_SECONDS} s each, $ROUNDS rounds"
for ((r = 0; r < ROUNDS; r++)); do
	mapfile -t order < <(rotate "$r" "${SC_VARIANTS[@]}")
	clients=("${SC_CLIENTS[@]}")
	((r % 2)) && clients=(8 4 2 1)
	for v in "${order[@]}"; do
		for c in "${clients[@]}"; do
			tps="$(pgbench_tps "scale_$v" "$c" "$SCALE_SECONDS")"
			record "sc.$v.$c" "$(awk -v t="$tps" 'BEGIN { printf "%.0f", t * 10000 }')"
		done
	done
done

# ---------------------------------------------------------------------------
# 3. round trip

RT_VARIANTS=(select1 idalloc nextval)
note "3/9 round trip: pgbench -M prepared, 1 and 8 clients, ${RT_SECONDS} s each, $ROUNDS rounds"
for ((r = 0; r < ROUNDS; r++)); do
	mapfile -t order < <(rotate "$r" "${RT_VARIANTS[@]}")
	pin_server
	for v in "${order[@]}"; do
		record "rt.$v.1" "$(pgbench_tps "rt_$v" 1 "$RT_SECONDS" pin)"
	done
	unpin_server
	for v in "${order[@]}"; do
		record "rt.$v.8" "$(pgbench_tps "rt_$v" 8 "$RT_SECONDS")"
	done
done

# ---------------------------------------------------------------------------
# 4. INSERT of 1e6 rows

INS_VARIANTS=(idalloc bigserial identity)
note "4/9 INSERT of $N rows, $ROUNDS rounds"
psql_bench -c 'CHECKPOINT' >/dev/null
for ((r = 0; r < ROUNDS; r++)); do
	mapfile -t order < <(rotate "$r" "${INS_VARIANTS[@]}")
	{
		printf '%s\n' '\timing on'
		for v in "${order[@]}"; do
			printf '%s\n' '\timing off'
			echo "TRUNCATE ins_$v;"
			printf '%s\n' '\timing on'
			printf '\\echo @@ %s\n' "$v"
			echo "INSERT INTO ins_$v (v) SELECT g FROM generate_series(1, $N) g;"
		done
		printf '%s\n' '\timing off'
		for v in "${order[@]}"; do
			echo "TRUNCATE ins_$v;"
		done
	} | timed_psql >"$RUN/round.tsv"
	for v in "${INS_VARIANTS[@]}"; do
		t="$(awk -v k="$v" -F'\t' '$1 == k { print $2 }' "$RUN/round.tsv")"
		[[ -n "$t" ]] || die "insert: no timing for $v"
		record "ins.$v" "$t"
	done
done
psql_bench -c 'CHECKPOINT' >/dev/null

# ---------------------------------------------------------------------------
# 5. WAL bytes and flushes per 1e6 IDs

WAL_VARIANTS=(global cached seq1 seq1000 tso)
note "5/9 WAL per $N IDs, $ROUNDS rounds"
# Warm-up: the pages these statements change (the allocator rows, the
# sequences) were last changed before the CHECKPOINT above; their first
# change after it would carry a full-page image, which is not per-ID cost.
{
	for v in "${WAL_VARIANTS[@]}"; do
		echo "SELECT ${PC_SQL[$v]} FROM generate_series(1, $N);"
	done
} | psql_bench >/dev/null
for ((r = 0; r < ROUNDS; r++)); do
	mapfile -t order < <(rotate "$r" "${WAL_VARIANTS[@]}")
	out="$(
		for v in "${order[@]}"; do
			cat <<SQL
SELECT pg_current_wal_lsn() AS l0, wal_write AS w0, wal_sync AS s0 FROM pg_stat_wal \\gset
SELECT ${PC_SQL[$v]} FROM generate_series(1, $N);
SELECT pg_stat_force_next_flush();
SELECT pg_sleep(0.3);
SELECT 'wal', '$v', pg_wal_lsn_diff(pg_current_wal_lsn(), :'l0'), wal_write - :w0, wal_sync - :s0
  FROM pg_stat_wal;
SQL
		done | psql_bench -F $'\t'
	)" || die "WAL measurement failed"
	while IFS=$'\t' read -r tag v bytes writes syncs; do
		[[ "$tag" == wal ]] || continue
		record "wal.bytes.$v" "$bytes"
		record "wal.write.$v" "$writes"
		record "wal.sync.$v" "$syncs"
	done <<<"$out"
done

# ---------------------------------------------------------------------------
# 6. idalloc_batch of 1e6 IDs

BATCH_VARIANTS=(default bigblock tso)
note "6/9 idalloc_batch($N) round trip, 1 client, ${BATCH_SECONDS} s each, $ROUNDS rounds"
pin_server
for ((r = 0; r < ROUNDS; r++)); do
	mapfile -t order < <(rotate "$r" "${BATCH_VARIANTS[@]}")
	for v in "${order[@]}"; do
		tps="$(pgbench_tps "batch_$v" 1 "$BATCH_SECONDS" pin)"
		record "batch.$v" "$(awk -v t="$tps" 'BEGIN { printf "%.2f", 1e6 / t }')"
	done
done
unpin_server

# ---------------------------------------------------------------------------
# 7. issue 8: the persister and the hot path

note "7/9 issue 8: 8 clients of idalloc_batch(100000) against SELECT 1 (TPS, p99), two sessions on one cache-1 counter, $ROUNDS rounds"
P7_VARIANTS=(batch select1)
for ((r = 0; r < ROUNDS; r++)); do
	mapfile -t order < <(rotate "$r" "${P7_VARIANTS[@]}")
	for v in "${order[@]}"; do
		read -r tps p99 <<<"$(pgbench_tps_p99 "p99_$v" 8 "$RT_SECONDS")"
		record "p7.tps.$v" "$tps"
		record "p7.p99.$v" "$p99"
	done
	for c in $( ((r % 2)) && echo 2 1 || echo 1 2); do
		tps="$(pgbench_tps two_sessions "$c" "$SCALE_SECONDS")"
		record "p9.ids.$c" "$(awk -v t="$tps" 'BEGIN { printf "%.0f", t * 2000000 }')"
	done
done

# ---------------------------------------------------------------------------
# 8. issue 9: tso against the counter of the same shape

# The difference to resolve (a few ns per call) is small against the noise
# of row 1's floor (its generate_series in FROM fills a tuplestore that
# spills to a temporary file, 120-170 ns a row here), so this row drives
# the calls with generate_series in the target list (ProjectSet, no
# tuplestore: about 40 ns a row): SELECT count(f) FROM (SELECT
# generate_series(1, N) AS x) s, with count(x) as the floor.  Three times
# the rounds, only these three queries, all in one session after a
# full-size warm-up of each, and the ratio taken within each round (the
# VM's speed drifts between rounds; a ratio within one round does not see
# that).
declare -A T9_SQL=(
	[floor]="count(x)"
	[named]="count(idalloc_one('named'))"
	[tso]="count(idalloc_one('tso'))"
)
T9_ROUNDS=$((3 * ROUNDS))
T9_ORDER=(floor named tso)
note "8/9 issue 9: tso against the counter, SELECT count(f) FROM (SELECT generate_series(1, $N) AS x) s, $T9_ROUNDS rounds in one session"
{
	for v in "${T9_ORDER[@]}"; do
		echo "SELECT ${T9_SQL[$v]} FROM (SELECT generate_series(1, $N) AS x) s;"
	done
	printf '%s\n' '\timing on'
	for ((r = 0; r < T9_ROUNDS; r++)); do
		mapfile -t order < <(rotate "$r" "${T9_ORDER[@]}")
		for v in "${order[@]}"; do
			printf '\\echo @@ %s.%s\n' "$r" "$v"
			echo "SELECT ${T9_SQL[$v]} FROM (SELECT generate_series(1, $N) AS x) s;"
		done
	done
} | timed_psql >"$RUN/round.tsv"
declare -A ms=()
while IFS=$'\t' read -r k v; do ms[$k]="$v"; done <"$RUN/round.tsv"
for ((r = 0; r < T9_ROUNDS; r++)); do
	for v in "${T9_ORDER[@]}"; do
		[[ -n "${ms[$r.$v]:-}" ]] || die "issue 9: no timing for $v in round $r"
	done
	for v in named tso; do
		record "t9.ns.$v" "$(awk -v t="${ms[$r.$v]}" -v f="${ms[$r.floor]}" -v n="$N" \
			'BEGIN { printf "%.3f", (t - f) * 1e6 / n }')"
	done
	record "t9.ratio" "$(awk -v t="${ms[$r.tso]}" -v c="${ms[$r.named]}" -v f="${ms[$r.floor]}" \
		'BEGIN { if (c > f) printf "%.4f", (t - f) / (c - f); else print "inf" }')"
	for v in "${T9_ORDER[@]}"; do
		record "t9.ms.$v" "${ms[$r.$v]}"
	done
done
unset ms

# ---------------------------------------------------------------------------
# 9. issue 10: a sourced server against its authority

# A second throwaway cluster (.run/bench/src, port PORT + 1, same settings)
# whose allocator 'srcbench' takes its blocks from the bench cluster's
# allocator of that name over a Unix socket.  Each round, in one session on
# each server: the floor, then 1e6 idalloc_one('srcbench') in one query;
# on the sourced server also the number of blocks it fetched for it
# (block_advances before and after: one round trip each).
SRC_PORT=$((PORT + 1))
SRC_DATA="$RUN/src/data"
install -d -o postgres -g postgres -m 0755 "$RUN/src"
note "9/9 issue 10: 1e6 IDs in one query on a sourced server (port $SRC_PORT) against its authority, $ROUNDS rounds"
as_pg "$BINDIR/initdb" -D "$SRC_DATA" -U postgres -A trust -E UTF8 --locale=C --no-sync \
	>"$RUN/src/initdb.log" 2>&1 || die "initdb of the sourced server failed"
as_pg tee -a "$SRC_DATA/postgresql.conf" >/dev/null <<CONF

# ---- written by bench/run.sh ----
port = $SRC_PORT
listen_addresses = ''
unix_socket_directories = '$sockdir'
shared_preload_libraries = 'idalloc'
shared_buffers = 256MB
fsync = on
synchronous_commit = on
checkpoint_timeout = 1h
max_wal_size = 8GB
autovacuum = off
jit = off
CONF
src_started=1
as_pg "$BINDIR/pg_ctl" start -D "$SRC_DATA" -l "$RUN/src/log" -w -t 60 >/dev/null ||
	die "pg_ctl start of the sourced server failed"
psql_src() {
	as_pg "${clean_env[@]}" "$BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
		-h "$RUN" -p "$SRC_PORT" -U postgres -d postgres "$@"
}
psql_src -c "CREATE EXTENSION idalloc" >/dev/null
psql_src -c "SELECT idalloc_create('srcbench', source => 'host=$RUN port=$PORT dbname=$DB user=postgres')" >/dev/null
SRC_Q="SELECT count(idalloc_one('srcbench')) FROM generate_series(1, $N);"
SRC_F="SELECT count(1) FROM generate_series(1, $N);"
ADV="SELECT 'adv', block_advances FROM idalloc_allocators WHERE name = 'srcbench';"
for ((r = 0; r < ROUNDS; r++)); do
	for side in $( ((r % 2)) && echo sourced authority || echo authority sourced); do
		script="$(printf '%s\n' "SELECT count(idalloc_one('srcbench')) FROM generate_series(1, 1000);" \
			'\timing on' '\echo @@ floor' "$SRC_F" '\timing off' "$ADV" '\timing on' \
			'\echo @@ query' "$SRC_Q" '\timing off' "$ADV")"
		if [[ "$side" == sourced ]]; then
			out="$(psql_src -F $'\t' <<<"$script")" || die "psql on the sourced server failed"
		else
			out="$(psql_bench -F $'\t' <<<"$script")" || die "psql on the authority failed"
		fi
		f="$(awk '/^@@ floor/ { k = 1; next } k && /^Time: / { print $2; exit }' <<<"$out")"
		q="$(awk '/^@@ query/ { k = 1; next } k && /^Time: / { print $2; exit }' <<<"$out")"
		[[ -n "$f" && -n "$q" ]] || die "issue 10: no timing ($side)"
		record "src.ms.$side" "$q"
		record "src.ns.$side" "$(awk -v t="$q" -v f="$f" -v n="$N" 'BEGIN { printf "%.3f", (t - f) * 1e6 / n }')"
		if [[ "$side" == sourced ]]; then
			read -r a0 a1 <<<"$(awk -F'\t' '$1 == "adv" { printf "%s ", $2 }' <<<"$out")"
			record "src.trips" "$((a1 - a0))"
		fi
	done
done
as_pg "$BINDIR/pg_ctl" stop -D "$SRC_DATA" -m fast -w -t 60 >/dev/null
src_started=0

# ---------------------------------------------------------------------------
# facts, stop, report

checkpoints="$(($(psql_bench -c "$CKPT_SQL") - checkpoints_before - EXPLICIT_CHECKPOINTS))"
pg_version="$(psql_bench -c 'SHOW server_version')"
cpu_model="$(sed -nE 's/^model name[[:space:]]*: *//p' /proc/cpuinfo | head -n 1)"
{
	echo "rounds=$ROUNDS"
	echo "scale_seconds=$SCALE_SECONDS"
	echo "rt_seconds=$RT_SECONDS"
	echo "batch_seconds=$BATCH_SECONDS"
	echo "t9_rounds=$T9_ROUNDS"
	echo "pin=$PIN"
	echo "nproc=$(nproc)"
	echo "cpu=${cpu_model:-unknown}"
	echo "postgresql=$pg_version"
	echo "commit=$(git -c safe.directory='*' -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	echo "checkpoints_during_run=$checkpoints"
} >"$RUN/facts.txt"

note "stopping the cluster"
stop_server fast
cluster_started=0

# (after the server stopped, so that nothing else runs meanwhile)
# what the machine allows: two threads doing fetch_add on one cache line
# (with some private work between, as a SQL call has) against one thread
if cc -O2 -pthread -o "$RUN/atomics" "$REPO/bench/atomics.c" 2>"$RUN/atomics.log"; then
	"$RUN/atomics" 2 >"$RUN/atomics.txt"
	awk '$1 == "work=50" {
		for (i = 1; i <= NF; i++) if ($i ~ /^\(.*x\)$/) { gsub(/[()x]/, "", $i); r[++n] = $i }
		print "atom.shared\t" r[1]; print "atom.private\t" r[2] }' "$RUN/atomics.txt" >>"$RAW"
else
	note "could not build bench/atomics.c: $(cat "$RUN/atomics.log")"
fi


bash "$REPO/bench/report.sh" "$RUN" | tee "$RUN/results.md"
bash "$REPO/bench/plot.sh" "$RUN" "$REPO/bench/scaling.png" >&2 ||
	note "bench/plot.sh failed: no bench/scaling.png"
note "done in $((SECONDS - started_at)) s; raw per-round values: $RAW"
