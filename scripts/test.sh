#!/usr/bin/env bash
# The driver behind "make test" (run as root), for each PostgreSQL major of
# the matrix (15, 17, 18; "make test PG=18" runs one):
#
#   1. scripts/setup.sh (install what is missing); scripts/pg.sh gives the
#      major's bin directory (17 and 18 are built from ../shared/postgres
#      the first time, into /opt/idalloc-pg); build idalloc for it (make
#      clean first: the objects are per major) and install it there
#   2. pg_regress            sql/*.sql     temp instance on port 55433
#   3. pg_isolation_regress  specs/*.spec  temp instance on port 55434
#   4. prove -v              t/*.pl        (PostgreSQL::Test::Cluster nodes)
#   and once, with 15 (Debian 12's, which the package is for):
#   5. prove -v, as root     t/package/*.pl  (the Debian package: make deb,
#                            apt-get install, a cluster using it, removal)
#
# Every suite but the package one runs as the "postgres" OS user; all output
# goes under .run/test/MAJOR/ (.run/test is wiped at the start; leftover
# servers there are stopped first).  A test that needs what one major lacks
# (pg_repack exists for 15 only) skips itself with its reason, which is
# counted as skipped, never as passed.
# Counting: each pg_regress test and each isolation spec counts 1; each TAP
# assertion ("ok N" / "not ok N") counts 1, "ok N # skip" counts as skipped;
# a TAP file that dies or has a bad plan counts one extra failure; a suite
# that cannot run at all counts one failure.  Suites without test files are
# skipped with a note.  The last line of output is always
#   N passed, N failed[, N skipped]
# after one line per major, "PostgreSQL N: N passed, N failed[, N skipped]",
# and the exit status is 1 on any failure, else 0.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BINDIR=
TOP="$REPO/.run/test"
OUT="$TOP"
REGRESS_PORT=55433
ISOLATION_PORT=55434
MAKE="${MAKE:-make}"

passed=0
failed=0
skipped=0
suites_run=0

note() { echo "test.sh: $*"; }

counts_line() {
	local line="$1 passed, $2 failed"
	(($3 > 0)) && line+=", $3 skipped"
	echo "$line"
}

majors_done=()
skip_notes=()
finish() {
	echo
	local m
	for m in "${skip_notes[@]}"; do
		echo "skipped: $m"
	done
	for m in "${majors_done[@]}"; do
		echo "$m"
	done
	counts_line "$passed" "$failed" "$skipped"
	((failed == 0)) && exit 0
	exit 1
}

# A step that prevents testing at all: count one failure and stop.
abort() {
	note "ERROR: $*" >&2
	failed=$((failed + 1))
	finish
}

# as_pg, clean_env, list_tests
source "$REPO/scripts/lib.sh"

# Stop any server left running from a data directory under .run/test
# (an interrupted earlier run), then kill what survives.
stop_leftovers() {
	[[ -d "$OUT" ]] || return 0
	local pidfile datadir pid
	while IFS= read -r pidfile; do
		datadir="$(dirname "$pidfile")"
		pid="$(head -n 1 "$pidfile" 2>/dev/null || true)"
		[[ "$pid" =~ ^[0-9]+$ ]] || continue
		kill -0 "$pid" 2>/dev/null || continue
		note "stopping leftover server (pid $pid, data $datadir)"
		as_pg "${BINDIR:-/usr/lib/postgresql/15/bin}/pg_ctl" stop -D "$datadir" -m immediate -w -t 30 >/dev/null 2>&1 || true
		# pg_ctl returns once the pid file is gone; give the process a moment.
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$pid" 2>/dev/null &&
			[[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres* ]]; then
			note "killing leftover postmaster $pid"
			kill -KILL "$pid" 2>/dev/null || true
			sleep 1
		fi
	done < <(find "$OUT" -name postmaster.pid -type f 2>/dev/null)
}

# Parse pg_regress / pg_isolation_regress output into "STATUS NAME" lines.
# 15's format: "test NAME   ... ok   12 ms", "     NAME   ... FAILED   3 ms"
# in parallel groups, "failed (ignored)"; 16 and later print TAP: "ok 1
# - NAME   12 ms", "not ok 2 + NAME ..." (+ in parallel groups).
parse_regress_log() {
	sed -nE -e 's/^(test[[:space:]]+|[[:space:]]+)([^[:space:]]+)[[:space:]]+\.\.\.[[:space:]]+(ok|FAILED|failed \(ignored\)).*/\3 \2/p' \
		-e 's/^ok[[:space:]]+[0-9]+[[:space:]]+[-+][[:space:]]+([^[:space:]]+).*/ok \1/p' \
		-e 's/^not ok[[:space:]]+[0-9]+[[:space:]]+[-+][[:space:]]+([^[:space:]]+).*/FAILED \1/p' "$1"
}

# run_regress_suite LABEL RUNNER PORT DBNAME OUTDIR TEST...
run_regress_suite() {
	local label="$1" runner="$2" port="$3" dbname="$4" outdir="$5"
	shift 5
	local tests=("$@") ntests=$# rc n_ok n_fail n_seen
	local log="$outdir/$label.log"

	suites_run=$((suites_run + 1))
	as_pg mkdir -p "$outdir"
	local cmd=("$runner"
		"--temp-instance=$outdir/tmp_check"
		"--temp-config=$REPO/test/idalloc.conf"
		"--inputdir=$REPO"
		"--outputdir=$outdir"
		"--bindir=$BINDIR"
		"--port=$port"
		"--dbname=$dbname"
		--no-locale --encoding=UTF8
		"${tests[@]}")
	echo
	note "=== $label: $ntests test(s) ==="
	echo "${cmd[*]}"
	as_pg "${clean_env[@]}" "${cmd[@]}" 2>&1 | as_pg tee "$log"
	rc=${PIPESTATUS[0]}

	local results
	results="$(parse_regress_log "$log")"
	n_ok=$(grep -c '^ok ' <<<"$results")
	n_fail=$(grep -c -v '^ok ' <<<"$results")
	[[ -z "$results" ]] && n_fail=0
	n_seen=$((n_ok + n_fail))
	passed=$((passed + n_ok))
	failed=$((failed + n_fail))

	local suite_broken=0
	if ((n_seen < ntests)); then
		note "$label: only $n_seen of $ntests test(s) reported a result; counting $((ntests - n_seen)) as failed"
		failed=$((failed + ntests - n_seen))
		suite_broken=1
	fi
	if ((rc != 0 && n_fail == 0 && n_seen >= ntests)); then
		note "$label: $(basename "$runner") exited with status $rc; counting 1 failure"
		failed=$((failed + 1))
		suite_broken=1
	fi

	if ((n_fail > 0 || suite_broken || rc != 0)); then
		if [[ -s "$outdir/regression.diffs" ]]; then
			echo
			note "--- $label: $outdir/regression.diffs (first 200 lines) ---"
			head -n 200 "$outdir/regression.diffs"
		fi
		if ((suite_broken)); then
			local f
			for f in "$outdir"/log/initdb.log "$outdir"/log/postmaster.log; do
				[[ -s "$f" ]] || continue
				[[ "$f" == */initdb.log ]] && ! grep -q 'initdb failed' "$log" && continue
				echo
				note "--- $label: tail of $f ---"
				tail -n 40 "$f"
			done
		fi
	fi
}

# run_tap_suite LABEL USER FILE...: "prove -v" as USER (postgres, or root
# for the suites that install packages); counts the TAP output in prove.log.
run_tap_suite() {
	local label="$1" user="$2"
	shift 2
	local tapdir="$OUT/$label" rc
	local files=("$@")
	local runas=(as_pg)
	[[ "$user" == root ]] && runas=()
	suites_run=$((suites_run + 1))
	"${runas[@]}" mkdir -p "$tapdir"
	local cmd=(prove -v -I "$PGXS_TEST/perl" -I "$REPO/t" "${files[@]}")
	echo
	note "=== $label: ${#files[@]} file(s), as $user ==="
	# (15's PostgreSQL::Test::Utils reads TESTDIR; 16 and later read
	# TESTDATADIR and TESTLOGDIR, as their PGXS sets them)
	echo "(cd $REPO && TESTDIR=$tapdir TESTDATADIR=$tapdir/tmp_check TESTLOGDIR=$tapdir/tmp_check/log PATH=$BINDIR:\$PATH PG_REGRESS=$PG_REGRESS ${cmd[*]})"
	(cd "$REPO" && "${runas[@]}" "${clean_env[@]}" TESTDIR="$tapdir" \
		TESTDATADIR="$tapdir/tmp_check" TESTLOGDIR="$tapdir/tmp_check/log" PATH="$BINDIR:$PATH" \
		PG_REGRESS="$PG_REGRESS" MAKE="$MAKE" "${cmd[@]}") 2>&1 | "${runas[@]}" tee "$tapdir/prove.log"
	rc=${PIPESTATUS[0]}

	# Assertions: "ok N", "not ok N" (also indented subtest lines);
	# "ok N # skip" is skipped, "not ok N # TODO" is an expected failure
	# (counted as skipped), a whole-file "1..0 # SKIP" counts 1 skipped.
	local counts t_ok t_fail t_skip
	counts="$(awk '
		/^[ \t]*(not )?ok [0-9]+/ {
			lc = tolower($0)
			if (lc ~ /^[ \t]*ok [0-9]+[^#]*#[ \t]*skip/) s++
			else if (lc ~ /^[ \t]*not ok [0-9]+[^#]*#[ \t]*todo/) s++
			else if (lc ~ /^[ \t]*ok /) p++
			else f++
			next
		}
		/^[ \t]*1\.\.0[ \t]*#[ \t]*[Ss][Kk][Ii][Pp]/ { s++ }
		/^t\/[^ ]+\.pl \.+ skipped: / { s++ }
		END { printf "%d %d %d\n", p, f, s }' "$tapdir/prove.log")"
	read -r t_ok t_fail t_skip <<<"$counts"

	# Files that died / had a bad plan: listed in prove's "Test Summary
	# Report" with a parse error, or with a non-zero wait status although
	# no assertion failed.
	local broken_files
	broken_files="$(awk '
		/^Test Summary Report/ { in_rep = 1; next }
		!in_rep { next }
		/^Files=/ { flush(); in_rep = 0; next }
		/\(Wstat: / {
			flush()
			name = $1; w = $0; sub(/.*Wstat: /, "", w); wstat = w + 0
			fl = $0; sub(/.*Failed: /, "", fl); nfail = fl + 0
			perr = 0; next
		}
		/^[ \t]+Parse errors:/ { perr = 1 }
		function flush() {
			if (name != "" && (perr || (wstat != 0 && nfail == 0))) print name
			name = ""
		}
		END { flush() }' "$tapdir/prove.log")"
	local extra=0
	[[ -n "$broken_files" ]] && extra=$(wc -l <<<"$broken_files")
	if ((extra > 0)); then
		note "$label: file(s) that died or had a bad plan (1 extra failure each): $(tr '\n' ' ' <<<"$broken_files")"
	fi
	if ((rc != 0 && t_fail == 0 && extra == 0)); then
		note "$label: prove exited with status $rc; counting 1 failure"
		extra=$((extra + 1))
	fi
	passed=$((passed + t_ok))
	failed=$((failed + t_fail + extra))
	skipped=$((skipped + t_skip))
	# each skipped file, with its reason (prove -v: "t/x.pl .. skipped: why")
	local line
	while IFS= read -r line; do
		skip_notes+=("PostgreSQL ${current_major:-?}: ${line%% *}: ${line#* skipped: }")
	done < <(grep -E '^t/[^ ]+\.pl \.+ skipped: ' "$tapdir/prove.log")

	if ((t_fail + extra > 0)); then
		# Which files failed: those in prove's summary report, else all.
		local failed_files base f log shown=0
		failed_files="$(awk '/^Test Summary Report/ {r = 1; next} r && /\(Wstat: / {print $1}' "$tapdir/prove.log")"
		[[ -n "$failed_files" ]] || failed_files="$(printf '%s\n' "${files[@]}")"
		while IFS= read -r f; do
			base="$(basename "$f" .pl)"
			for log in "$tapdir"/tmp_check/log/regress_log_"$base" "$tapdir"/tmp_check/log/"$base"_*.log; do
				[[ -s "$log" ]] || continue
				echo
				note "--- $label: tail of $log ---"
				tail -n 60 "$log"
				shown=1
			done
		done <<<"$failed_files"
		if ((!shown)); then
			note "$label: no server/test logs for the failed file(s) under $tapdir/tmp_check/log"
		fi
	fi
}

# ---------------------------------------------------------------------------

# regress_if_any LABEL RUNNER PORT DBNAME TEST...: run_regress_suite into
# $OUT/LABEL if there are tests; a missing runner is one failure.
regress_if_any() {
	local label="$1" runner="$2" port="$3" dbname="$4"
	shift 4
	(($#)) || return 0
	if [[ -x "$runner" ]]; then
		run_regress_suite "$label" "$runner" "$port" "$dbname" "$OUT/$label" "$@"
	else
		note "ERROR: $runner not found"
		failed=$((failed + 1))
	fi
}

# run_major MAJOR: build and install idalloc for it, run its suites (and,
# with 15, the package suite), and note its line.
run_major() {
	local major="$1"
	current_major="$major"
	local p0=$passed f0=$failed s0=$skipped

	echo
	note "=================== PostgreSQL $major ==================="
	BINDIR="$(bash "$REPO/scripts/pg.sh" bindir "$major")" ||
		{ note "ERROR: PostgreSQL $major is not available"; failed=$((failed + 1)); majors_done+=("PostgreSQL $major: not available"); return; }
	PG_CONFIG="$BINDIR/pg_config"
	PGXS_TEST="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test"
	PG_REGRESS="$PGXS_TEST/regress/pg_regress"
	PG_ISOLATION_REGRESS="$PGXS_TEST/isolation/pg_isolation_regress"
	OUT="$TOP/$major"
	note "$("$PG_CONFIG" --version) ($BINDIR)"

	# t/031_pg_upgrade.pl upgrades a 15 cluster to this major: idalloc
	# must be installed for 15 too (it is, once 15's suites ran)
	if [[ "$major" != 15 && " ${majors_done[*]} " != *"PostgreSQL 15:"* ]]; then
		note "building and installing idalloc for PostgreSQL 15 too (t/031_pg_upgrade.pl upgrades from it)"
		local bin15
		bin15="$(bash "$REPO/scripts/pg.sh" bindir 15)" &&
			"$MAKE" --no-print-directory -C "$REPO" PG_CONFIG="$bin15/pg_config" clean >/dev/null &&
			"$MAKE" --no-print-directory -C "$REPO" PG_CONFIG="$bin15/pg_config" >/dev/null &&
			"$MAKE" --no-print-directory -C "$REPO" PG_CONFIG="$bin15/pg_config" install >/dev/null ||
			{
				note "ERROR: idalloc could not be built and installed for PostgreSQL 15 (t/031 needs it)"
				failed=$((failed + 1))
			}
	fi

	note "building idalloc"
	"$MAKE" --no-print-directory -C "$REPO" PG_CONFIG="$PG_CONFIG" clean >/dev/null
	if ! "$MAKE" --no-print-directory -C "$REPO" PG_CONFIG="$PG_CONFIG"; then
		note "ERROR: the build for PostgreSQL $major failed"
		failed=$((failed + 1))
		majors_done+=("PostgreSQL $major: $(counts_line $((passed - p0)) $((failed - f0)) $((skipped - s0))) (the build failed)")
		return
	fi
	note "installing idalloc"
	if ! "$MAKE" --no-print-directory -C "$REPO" PG_CONFIG="$PG_CONFIG" install; then
		note "ERROR: make install for PostgreSQL $major failed"
		failed=$((failed + 1))
		majors_done+=("PostgreSQL $major: $(counts_line $((passed - p0)) $((failed - f0)) $((skipped - s0))) (make install failed)")
		return
	fi
	install -d -o postgres -g postgres -m 0755 "$OUT"

	regress_if_any regress "$PG_REGRESS" "$REGRESS_PORT" contrib_regression "${regress_tests[@]}"
	regress_if_any isolation "$PG_ISOLATION_REGRESS" "$ISOLATION_PORT" isolation_regression \
		"${isolation_tests[@]}"
	if ((${#tap_files[@]})); then
		run_tap_suite tap postgres "${tap_files[@]}"
	fi

	# As root, with Debian 12's 15 only: the Debian package is built,
	# installed, used and removed again (the working tree's build is
	# installed back).
	if [[ "$major" == 15 ]] && ((${#package_files[@]})); then
		run_tap_suite package root "${package_files[@]}"
	fi
	stop_leftovers
	majors_done+=("PostgreSQL $major: $(counts_line $((passed - p0)) $((failed - f0)) $((skipped - s0)))")
}

if [[ "$(id -u)" -ne 0 ]]; then
	abort "run as root (tests run as the postgres user via runuser; packages and the extension are installed)"
fi

bash "$REPO/scripts/setup.sh" || abort "scripts/setup.sh failed"

read -r -a all_majors <<<"$(bash "$REPO/scripts/pg.sh" majors)"
majors=("${all_majors[@]}")
if [[ -n "${PG:-}" ]]; then
	[[ " ${all_majors[*]} " == *" $PG "* ]] ||
		abort "PG=$PG: the majors of the matrix are ${all_majors[*]}"
	majors=("$PG")
fi

OUT="$TOP"
stop_leftovers
rm -rf "$TOP"
install -d -o postgres -g postgres -m 0755 "$TOP" || abort "cannot create $TOP"

mapfile -t regress_tests < <(list_tests sql sql)
mapfile -t isolation_tests < <(list_tests specs spec)
mapfile -t tap_files < <(list_tests t pl | sed 's|^|t/|; s|$|.pl|')
mapfile -t package_files < <(list_tests t/package pl | sed 's|^|t/package/|; s|$|.pl|')
((${#regress_tests[@]})) || note "regress: no sql/*.sql files -- suite skipped (not counted)"
((${#isolation_tests[@]})) || note "isolation: no specs/*.spec files -- suite skipped (not counted)"
((${#tap_files[@]})) || note "tap: no t/*.pl files -- suite skipped (not counted)"

for major in "${majors[@]}"; do
	run_major "$major"
done

# the objects of another major than 15 (the default of "make") are not left
if [[ "${majors[-1]}" != 15 ]]; then
	"$MAKE" --no-print-directory -C "$REPO" clean >/dev/null 2>&1 || true
fi

# Nothing may be left running (pg_regress and PostgreSQL::Test::Cluster stop
# their servers themselves; this catches crashes of the drivers).
OUT="$TOP"
stop_leftovers

if ((suites_run == 0)); then
	note "no test files found in sql/, specs/ or t/; counting 1 failure"
	failed=$((failed + 1))
fi

finish
