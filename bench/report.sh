#!/usr/bin/env bash
# Print the markdown results table of one "make bench" run.
#
#   bash bench/report.sh [RUN_DIR]       (default: .run/bench)
#
# Reads RUN_DIR/raw.tsv (one "KEY<TAB>VALUE" line per measurement and round,
# written by bench/run.sh) and RUN_DIR/facts.txt.  Every value shown is the
# median over the rounds; every ratio is a ratio of two such medians from
# the same run.  Needs no server: it can be rerun on a saved run directory.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
RUN="${1:-$REPO/.run/bench}"
RAW="$RUN/raw.tsv"
FACTS="$RUN/facts.txt"

die() {
	echo "report.sh: ERROR: $*" >&2
	exit 1
}
[[ -s "$RAW" ]] || die "$RAW missing or empty (run 'make bench')"

# fact NAME: the value of a "NAME=value" line of facts.txt ("?" if missing).
fact() {
	local v=""
	[[ -r "$FACTS" ]] && v="$(sed -n "s/^$1=//p" "$FACTS" | head -n 1)"
	echo "${v:-?}"
}

# med KEY: median of the values recorded under KEY.
med() {
	local m
	m="$(awk -F'\t' -v k="$1" '$1 == k { print $2 }' "$RAW" | sort -g |
		awk '{ a[NR] = $1 }
			END {
				if (NR == 0) exit
				if (NR % 2) print a[(NR + 1) / 2]
				else printf "%.6f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2
			}')"
	[[ -n "$m" ]] || die "no values for $1 in $RAW"
	echo "$m"
}

# calc AWK-EXPRESSION: evaluate with printf-free output (%.10g).
calc() { awk "BEGIN { printf \"%.10g\", $1 }"; }

# fmt FORMAT VALUE
fmt() { awk -v v="$2" -v f="$1" 'BEGIN { printf f, v }'; }

# ratio A B -> A/B (empty if B is 0)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 != 0) printf "%.10g", a / b }'; }

# fmt_ratio R: "0.42×", small ones with two significant digits.
fmt_ratio() {
	[[ -n "$1" ]] || {
		echo "n/a"
		return
	}
	awk -v r="$1" 'BEGIN {
		if (r < 0) r2 = -r; else r2 = r
		if (r2 >= 0.095 || r2 == 0) printf "%.2f×", r
		else printf "%.2g×", r
	}'
}

# verdict VALUE OP LIMIT -> "met" / "NOT met"
verdict() {
	local ok
	[[ -n "$1" ]] || {
		echo "NOT met (no value)"
		return
	}
	ok="$(awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN {
		if (op == "<=") print (v <= l) ? 1 : 0
		else print (v >= l) ? 1 : 0 }')"
	if [[ "$ok" == 1 ]]; then echo "met"; else echo "**NOT met**"; fi
}

# row CELL...: one table row; the "#" and "measurement" cells are left empty
# when they repeat the previous row's.
LAST_GROUP=""
row() {
	local cells=("$@")
	if [[ "$1|$2" == "$LAST_GROUP" ]]; then
		cells[0]=""
		cells[1]=""
	else
		LAST_GROUP="$1|$2"
	fi
	printf '|'
	local c
	for c in "${cells[@]}"; do printf ' %s |' "$c"; done
	printf '\n'
}

declare -A TARGET=()	# P1..P10 -> met / NOT met (all parts)
target() {
	local p="$1" v="$2"
	if [[ "$v" != met ]]; then
		TARGET[$p]="NOT met"
	elif [[ -z "${TARGET[$p]:-}" ]]; then
		TARGET[$p]="met"
	fi
}

# ---------------------------------------------------------------------------

echo "### idalloc benchmark"
echo
echo "Machine: nproc $(fact nproc), $(fact cpu); PostgreSQL $(fact postgresql)." \
	"$(fact rounds) rounds (variants rotated each round); values are medians, ratios are ratios of medians from this run."
echo

row "#" "measurement" "variant" "median" "ratio" "against" "target" "result"
row "---" "---" "---" "---:" "---:" "---" "---" "---"

# 1. per-call cost
M1="per-call cost in one query, 1e6 calls"
seq1="$(med pc.ns.seq1)"
seq1000="$(med pc.ns.seq1000)"
pc_row() {
	local key="$1" label="$2" base="$3" base_label="$4" tgt="${5:-}" op="${6:-}" lim="${7:-}" p="${8:-}"
	local v r res=""
	v="$(med "pc.ns.$key")"
	r="$(ratio "$v" "$base")"
	if [[ -n "$tgt" ]]; then
		res="$(verdict "$r" "$op" "$lim")"
		target "$p" "${res//\*/}"
	fi
	row 1 "$M1" "$label" "$(fmt '%.1f ns/call' "$v")" "$(fmt_ratio "$r")" "$base_label" "$tgt" "$res"
}
pc_row global "\`idalloc_one()\` (default: cache 1)" "$seq1" "nextval CACHE 1" "P1: ≤ 0.5×" "<=" 0.5 P1
pc_row cached "\`idalloc_one('cached')\` (cache 1000)" "$seq1000" "nextval CACHE 1000" "P1: ≤ 1.0×" "<=" 1.0 P1
pc_row named "\`idalloc_one('named')\` (cache 1, by name)" "$seq1" "nextval CACHE 1"
pc_row seq1 "\`nextval('seq_c1')\` CACHE 1" "$seq1" "(baseline)"
pc_row seq1000 "\`nextval('seq_c1000')\` CACHE 1000" "$seq1" "nextval CACHE 1"
pc_row uuid "\`gen_random_uuid()\`" "$seq1" "nextval CACHE 1"
pc_row tso "\`idalloc_one('tso')\` (kind tso, cache 1, by name)" "$seq1" "nextval CACHE 1"

# 2. scaling
M2="scaling: IDs/s, N sessions × \`SELECT count(f) FROM generate_series(1, 10000)\`"
for v in global cached nextval uuid; do
	case "$v" in
	global) label="\`idalloc_one()\`" ;;
	cached) label="\`idalloc_one('cached')\`" ;;
	nextval) label="\`nextval('seq_c1')\`" ;;
	uuid) label="\`gen_random_uuid()\`" ;;
	esac
	# (a run from before uuid was measured has none)
	[[ "$v" == uuid ]] && ! grep -q "^sc\.uuid\." "$RAW" && continue
	one="$(med "sc.$v.1")"
	for c in 1 2 4 8; do
		val="$(med "sc.$v.$c")"
		r="$(ratio "$val" "$one")"
		tgt="" res=""
		if ((c == 2)); then
			case "$v" in
			global) tgt="P2: ≥ 1.0×" res="$(verdict "$r" ">=" 1.0)" ;;
			cached) tgt="P2: ≥ 1.6×" res="$(verdict "$r" ">=" 1.6)" ;;
			nextval) tgt="(issue: ≈ 0.4×)" ;;
			esac
			[[ -n "$res" ]] && target P2 "${res//\*/}"
		fi
		sessions="sessions"
		((c == 1)) && sessions="session"
		row 2 "$M2" "$label, $c $sessions" "$(fmt '%.2f M IDs/s' "$(calc "$val / 1e6")")" \
			"$(fmt_ratio "$r")" "same, 1 session" "$tgt" "$res"
	done
done

# 3. round trip
M3="round trip: pgbench -M prepared, TPS"
for c in 1 8; do
	base="$(med "rt.select1.$c")"
	for v in select1 idalloc nextval; do
		case "$v" in
		select1) label="\`SELECT 1\`" ;;
		idalloc) label="\`SELECT idalloc_one()\`" ;;
		nextval) label="\`SELECT nextval('seq_c1')\`" ;;
		esac
		val="$(med "rt.$v.$c")"
		r="$(ratio "$val" "$base")"
		tgt="" res=""
		if [[ "$v" == idalloc && "$c" == 8 ]]; then
			tgt="P5: ≥ 0.9×"
			res="$(verdict "$r" ">=" 0.9)"
			target P5 "${res//\*/}"
		fi
		clients="clients"
		((c == 1)) && clients="client"
		against="\`SELECT 1\`, $c $clients"
		[[ "$v" == select1 ]] && against="(baseline: the round-trip limit)"
		row 3 "$M3" "$label, $c $clients" \
			"$(fmt '%.0f TPS' "$val") ($(fmt '%.1f' "$(calc "1e6 / $val")") µs)" \
			"$(fmt_ratio "$r")" "$against" "$tgt" "$res"
	done
done

# 4. INSERT
M4="\`INSERT INTO t(v) SELECT g FROM generate_series(1, 1e6) g\`"
base="$(med ins.bigserial)"
for v in idalloc bigserial identity; do
	case "$v" in
	idalloc) label="\`id bigint DEFAULT idalloc_one()\`" ;;
	bigserial) label="\`id bigserial\`" ;;
	identity) label="\`id bigint GENERATED ALWAYS AS IDENTITY\`" ;;
	esac
	val="$(med "ins.$v")"
	r="$(ratio "$val" "$base")"
	tgt="" res="" against="bigserial"
	if [[ "$v" == idalloc ]]; then
		tgt="P6: ≤ 1.0×"
		res="$(verdict "$r" "<=" 1.0)"
		target P6 "${res//\*/}"
	fi
	[[ "$v" == bigserial ]] && against="(baseline)"
	row 4 "$M4" "$label" "$(fmt '%.0f ms' "$val")" "$(fmt_ratio "$r")" "$against" "$tgt" "$res"
done

# 5. WAL
M5b="WAL bytes per 1e6 IDs (\`pg_current_wal_lsn()\` diff)"
M5f="WAL flushes per 1e6 IDs (\`pg_stat_wal\` wal_sync diff; wal_write in brackets)"
base_b="$(med wal.bytes.seq1)"
base_f="$(med wal.sync.seq1)"
wal_label() {
	case "$1" in
	global) echo "\`idalloc_one()\` (block 200000)" ;;
	cached) echo "\`idalloc_one('cached')\`" ;;
	seq1) echo "\`nextval('seq_c1')\` CACHE 1" ;;
	seq1000) echo "\`nextval('seq_c1000')\` CACHE 1000" ;;
	esac
}
for v in global cached seq1 seq1000; do
	val="$(med "wal.bytes.$v")"
	r="$(ratio "$val" "$base_b")"
	tgt="" res="" against="nextval CACHE 1"
	if [[ "$v" == global ]]; then
		tgt="P4: ≤ 0.01×"
		res="$(verdict "$r" "<=" 0.01)"
		target P4 "${res//\*/}"
	fi
	[[ "$v" == seq1 ]] && against="(baseline)"
	row 5 "$M5b" "$(wal_label "$v")" "$(fmt '%.0f B' "$val")" "$(fmt_ratio "$r")" "$against" "$tgt" "$res"
done
for v in global cached seq1 seq1000; do
	val="$(med "wal.sync.$v")"
	w="$(med "wal.write.$v")"
	r="$(ratio "$val" "$base_f")"
	against="nextval CACHE 1"
	[[ "$v" == seq1 ]] && against="(baseline)"
	row 5 "$M5f" "$(wal_label "$v")" "$(fmt '%g' "$val") ($(fmt '%g' "$w"))" "$(fmt_ratio "$r")" "$against" "" ""
done

# 6. batch
M6="one round trip of 1e6 IDs (pgbench -M prepared, 1 client)"
base="$(calc "$(med pc.ms.seq1) * 1000")"
for v in default bigblock; do
	case "$v" in
	default) label="\`SELECT * FROM idalloc_batch(1000000)\` (block 200000; the step grows, the persister flushes ahead)" ;;
	bigblock) label="\`SELECT * FROM idalloc_batch('bigblock', 1000000)\` (block 1e9)" ;;
	esac
	val="$(med "batch.$v")"
	r="$(ratio "$val" "$base")"
	tgt="" res=""
	if [[ "$v" == default ]]; then
		tgt="P3: ≤ 200 µs"
		res="$(verdict "$val" "<=" 200)"
		target P3 "${res//\*/}"
	fi
	row 6 "$M6" "$label" "$(fmt '%.1f µs' "$val")" "$(fmt_ratio "$r")" "1e6 nextval in one query" "$tgt" "$res"
done
row 6 "$M6" "\`SELECT count(nextval('seq_c1')) FROM generate_series(1, 1e6)\` (psql \\timing)" \
	"$(fmt '%.0f µs' "$base")" "1.00×" "(baseline)" "" ""

# 7. issue 8
M7="issue 8: 8 clients, pgbench -M prepared (p99 of the logged latencies, 1 in 5 sampled)"
tb="$(med p7.tps.batch)"
ts="$(med p7.tps.select1)"
pb="$(med p7.p99.batch)"
ps="$(med p7.p99.select1)"
r="$(ratio "$tb" "$ts")"
res="$(verdict "$r" ">=" 0.5)"
target P7 "${res//\*/}"
row 7 "$M7" "\`SELECT * FROM idalloc_batch(100000)\` (default allocator), TPS" "$(fmt '%.0f TPS' "$tb")" "$(fmt_ratio "$r")" "\`SELECT 1\`, 8 clients" "P7: ≥ 0.5×" "$res"
r="$(ratio "$pb" "$ps")"
res="$(verdict "$r" "<=" 2.0)"
target P7 "${res//\*/}"
row 7 "$M7" "same, p99 latency" "$(fmt '%.0f µs' "$pb")" "$(fmt_ratio "$r")" "\`SELECT 1\` p99, 8 clients" "P7: ≤ 2×" "$res"
row 7 "$M7" "\`SELECT 1\`" "$(fmt '%.0f TPS' "$ts"), p99 $(fmt '%.0f µs' "$ps")" "1.00×" "(baseline)" "" ""

M8="issue 8: one session, \`idalloc_batch(1000000)\` in a loop (pgbench, 1 client)"
rt="$(calc "1e6 / $(med rt.select1.1)")"
val="$(med batch.default)"
r="$(ratio "$val" "$rt")"
res="$(verdict "$r" "<=" 1.5)"
target P8 "${res//\*/}"
row 8 "$M8" "\`SELECT * FROM idalloc_batch(1000000)\` (default allocator)" "$(fmt '%.1f µs' "$val")" "$(fmt_ratio "$r")" "\`SELECT 1\` round trip, 1 client ($(fmt '%.1f µs' "$rt"))" "P8: ≤ 1.5×" "$res"

M9="issue 8: two sessions on one cache-1 counter (block 1e9), \`SELECT count(idalloc_one('twosess')) FROM generate_series(1, 2e6)\`"
one="$(med p9.ids.1)"
two="$(med p9.ids.2)"
r="$(ratio "$two" "$one")"
res="$(verdict "$r" ">=" 1.5)"
target P9 "${res//\*/}"
row 9 "$M9" "1 session" "$(fmt '%.2f M IDs/s' "$(calc "$one / 1e6")")" "1.00×" "(baseline)" "" ""
row 9 "$M9" "2 sessions, aggregate" "$(fmt '%.2f M IDs/s' "$(calc "$two / 1e6")")" "$(fmt_ratio "$r")" "1 session" "P9: ≥ 1.5×" "$res"
if grep -q '^atom\.shared' "$RAW"; then
	row 9 "$M9" "machine: 2 threads \`fetch_add\` on one cache line (bench/atomics.c, 50 LCG steps between)" "" "$(fmt_ratio "$(med atom.shared)")" "1 thread" "" ""
	row 9 "$M9" "machine: 2 threads, each on its own line" "" "$(fmt_ratio "$(med atom.private)")" "1 thread" "" ""
fi

# 10. issue 9: tso
M10="issue 9: kind \`tso\` (cache 1), 1e6 IDs in one query"
named="$(med t9.ns.named)"
tso="$(med t9.ns.tso)"
uuid="$(med pc.ns.uuid)"
r="$(med t9.ratio)"
res="$(verdict "$r" "<=" 1.2)"
target P10 "${res//\*/}"
row 10 "$M10" "\`SELECT count(idalloc_one('tso')) FROM (SELECT generate_series(1, 1e6) AS x) s\` ($(fact t9_rounds) rounds of floor \`count(x)\`, counter, tso, in one session)" "$(fmt '%.1f ns/call' "$tso")" "$(fmt_ratio "$r")" "\`idalloc_one('named')\` (counter, cache 1, by name: $(fmt '%.1f' "$named") ns/call); median of the per-round ratios" "P10: ≤ 1.2×" "$res"
# cross-check: from the fastest run of each query (noise only adds time)
mn() { awk -F'\t' -v k="$1" '$1 == k { if (m == "" || $2 + 0 < m + 0) m = $2 } END { print m }' "$RAW"; }
fmin="$(mn t9.ms.floor)"
rmin="$(awk -v t="$(mn t9.ms.tso)" -v c="$(mn t9.ms.named)" -v f="$fmin" 'BEGIN { if (c > f) printf "%.4f", (t - f) / (c - f) }')"
row 10 "$M10" "same, from the fastest of the rounds of each query" "$(fmt '%.1f ns/call' "$(calc "($(mn t9.ms.tso) - $fmin) * 1e6 / 1e6")")" "$(fmt_ratio "$rmin")" "same counter ($(fmt '%.1f' "$(calc "($(mn t9.ms.named) - $fmin)")") ns/call)" "(cross-check)" ""
row 10 "$M10" "\`idalloc_one('tso')\` in row 1" "$(fmt '%.1f ns/call' "$(med pc.ns.tso)")" "$(fmt_ratio "$(ratio "$(med pc.ns.tso)" "$uuid")")" "\`gen_random_uuid()\` in row 1 ($(fmt '%.1f' "$uuid") ns/call)" "" ""
bt="$(med batch.tso)"
row 10 "$M10" "\`SELECT * FROM idalloc_batch('tso', 1000000)\` (pgbench, 1 client)" "$(fmt '%.1f µs' "$bt")" "$(fmt_ratio "$(ratio "$bt" "$(med batch.default)")")" "\`idalloc_batch(1000000)\` (counter)" "" ""
row 10 "$M10" "WAL of \`SELECT count(idalloc_one('tso')) FROM generate_series(1, 1e6)\` (window 3 s)" "$(fmt '%.0f B' "$(med wal.bytes.tso)"), $(fmt '%g' "$(med wal.sync.tso)") flushes" "" "" "" ""

# 11. issue 10: sourced server
if grep -q '^src\.ms\.sourced' "$RAW"; then
	M11="issue 10: 1e6 IDs in one query, \`SELECT count(idalloc_one('srcbench')) FROM generate_series(1, 1e6)\`"
	sq="$(med src.ms.sourced)"
	aq="$(med src.ms.authority)"
	r="$(ratio "$sq" "$aq")"
	res="$(verdict "$r" "<=" 1.5)"
	target P11 "${res//\*/}"
	row 11 "$M11" "on a sourced server (its blocks from the authority over a Unix socket)" "$(fmt '%.1f ms' "$sq") ($(fmt '%.1f' "$(med src.ns.sourced)") ns/call over the floor)" "$(fmt_ratio "$r")" "the same on the authority ($(fmt '%.1f' "$aq") ms, $(fmt '%.1f' "$(med src.ns.authority)") ns/call)" "P11: ≤ 1.5×" "$res"
	row 11 "$M11" "round trips to the authority for those 1e6 IDs (blocks fetched)" "$(fmt '%g' "$(med src.trips)")" "" "" "" ""
fi

# ---------------------------------------------------------------------------

echo
summary=""
for p in P1 P2 P3 P4 P5 P6 P7 P8 P9 P10 P11; do
	summary+="$p ${TARGET[$p]:-not measured}; "
done
echo "Targets (P1–P6 issue 4, P7–P9 issue 8, P10 issue 9, P11 issue 10): ${summary%; }."
echo
floor="$(med pc.ms.floor)"
pin="$(fact pin)"
echo "Notes:"
echo "- Per-call cost = (time of \`SELECT count(f) FROM generate_series(1, 1e6)\` − time of the floor \`SELECT count(1) FROM generate_series(1, 1e6)\`, $(fmt '%.1f' "$floor") ms, in the same session and round) / 1e6, timed by psql \`\\timing\`."
echo "- Scaling: pgbench -M prepared -T $(fact scale_seconds) -c N -j min(N, nproc); IDs/s = TPS × 10000. Round trip: -T $(fact rt_seconds); batch: -T $(fact batch_seconds), µs = 1e6 / TPS."
if [[ "$pin" == 1 ]]; then
	echo "- 1-client round-trip and batch runs: pgbench and its backend pinned to one CPU (BENCH_PIN=1), so no cross-CPU wake-up is measured; the 8-client and scaling runs are not pinned."
else
	echo "- No CPU pinning (BENCH_PIN=0): the 1-client round-trip and batch rows include cross-CPU wake-ups and vary from round to round."
fi
echo "- WAL: bytes = \`pg_current_wal_lsn()\` difference around one autocommit statement (its commit record included). Flushes = difference of \`pg_stat_wal.wal_sync\` (fsyncs of WAL by any process: the backend and the WAL writer; wal_write = writes of WAL buffers). idalloc flushes once per block (200000 IDs at first, more as the step grows), in the persister ahead of need (or in the caller that ran out), before any ID of the block is returned; a sequence's WAL is flushed by the commit of the transaction (if it has an xid) or later by the WAL writer, never before nextval returns."
echo "- INSERT tables have no index; bigserial and identity use CACHE 1; TRUNCATE before every INSERT (untimed); time includes the commit."
echo "- Checkpoints during the run besides the two explicit ones around the INSERT rows: $(fact checkpoints_during_run) (checkpoint_timeout = 1h, max_wal_size = 8GB; autovacuum and JIT off)."
