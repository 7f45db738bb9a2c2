#!/usr/bin/env bash
# The driver behind "make soak" (run as root): the long forms of
#   t/009_crash_loop.pl  clients allocating while the server is crashed
#                        (immediate stop, kill -9) or stopped, in a loop
#   t/010_fuzz.pl        random calls with hostile arguments from
#                        concurrent sessions
# set up, built and installed as "make test" does (scripts/setup.sh, make,
# make install), run by prove as the "postgres" OS user.  Output goes under
# .run/soak/ (wiped at the start); the last lines are one summary:
#   soak: crash loop: C cycles, N IDs checked, D duplicates
#   soak: fuzz: N calls, D duplicates, SQLSTATEs seen: 22023:12,42704:30,...
#   soak: PASS | FAIL
# and the exit status is 1 unless both files passed.
#
# Bounds (environment), each loop stops at whichever comes first:
#   IDALLOC_CRASH_CYCLES   crash cycles              (default 200)
#   IDALLOC_CRASH_SECONDS  no new cycle after this   (default 900 = 15 min)
#   IDALLOC_CRASH_CLIENTS  clients per cycle         (default 4)
#   IDALLOC_FUZZ_CALLS     fuzz calls, all sessions  (default 100000)
#   IDALLOC_FUZZ_SESSIONS  fuzz sessions             (default 4)
#   IDALLOC_SEED           random seed of both       (default: a new one)
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
BINDIR=/usr/lib/postgresql/15/bin
OUT="$REPO/.run/soak"
MAKE="${MAKE:-make}"

note() { echo "soak.sh: $*"; }
die() {
	note "ERROR: $*" >&2
	echo "soak: FAIL"
	exit 1
}
# as_pg, clean_env
source "$REPO/scripts/lib.sh"

# Stop servers left running under .run/soak by an interrupted earlier run.
stop_leftovers() {
	local pidfile
	[[ -d "$OUT" ]] || return 0
	while IFS= read -r pidfile; do
		note "stopping leftover server in $(dirname "$pidfile")"
		as_pg "$BINDIR/pg_ctl" stop -D "$(dirname "$pidfile")" -m immediate -w -t 30 \
			>/dev/null 2>&1 || true
	done < <(find "$OUT" -name postmaster.pid -type f 2>/dev/null)
}

[[ "$(id -u)" -eq 0 ]] ||
	die "run as root (the soak runs as the postgres user via runuser; packages and the extension are installed)"

bash "$REPO/scripts/setup.sh" || die "scripts/setup.sh failed"
PG_CONFIG="$BINDIR/pg_config"
[[ -x "$PG_CONFIG" ]] || die "$PG_CONFIG not found after setup"
PGXS_TEST="$("$PG_CONFIG" --pkglibdir)/pgxs/src/test"

note "building and installing idalloc"
"$MAKE" --no-print-directory -C "$REPO" PG_CONFIG="$PG_CONFIG" || die "build failed"
"$MAKE" --no-print-directory -C "$REPO" PG_CONFIG="$PG_CONFIG" install || die "make install failed"

stop_leftovers
rm -rf "$OUT"
install -d -o postgres -g postgres -m 0755 "$OUT" || die "cannot create $OUT"

bounds=(
	IDALLOC_CRASH_CYCLES="${IDALLOC_CRASH_CYCLES:-200}"
	IDALLOC_CRASH_SECONDS="${IDALLOC_CRASH_SECONDS:-900}"
	IDALLOC_CRASH_CLIENTS="${IDALLOC_CRASH_CLIENTS:-4}"
	IDALLOC_FUZZ_CALLS="${IDALLOC_FUZZ_CALLS:-100000}"
	IDALLOC_FUZZ_SESSIONS="${IDALLOC_FUZZ_SESSIONS:-4}"
)
[[ -n "${IDALLOC_SEED:-}" ]] && bounds+=(IDALLOC_SEED="$IDALLOC_SEED")
note "${bounds[*]}"

# The environment of scripts/test.sh's TAP run: no inherited libpq settings.
cmd=(prove -v -I "$PGXS_TEST/perl" -I "$REPO/t" t/009_crash_loop.pl t/010_fuzz.pl)
echo "(cd $REPO && ${bounds[*]} TESTDIR=$OUT PATH=$BINDIR:\$PATH PG_REGRESS=$PGXS_TEST/regress/pg_regress ${cmd[*]})"
start=$SECONDS
(cd "$REPO" && as_pg "${clean_env[@]}" "${bounds[@]}" TESTDIR="$OUT" \
	PATH="$BINDIR:$PATH" PG_REGRESS="$PGXS_TEST/regress/pg_regress" "${cmd[@]}") 2>&1 |
	as_pg tee "$OUT/prove.log"
rc=${PIPESTATUS[0]}
stop_leftovers

# "# SUMMARY crash_loop: cycles=.. ids=.. duplicates=.." and
# "# SUMMARY fuzz: calls=.. ... duplicates=.. ... sqlstates=.." (t/009, t/010)
field() { sed -nE "s/^# SUMMARY $1:.* $2=([^ ]*).*/\\1/p" "$OUT/prove.log" | tail -n 1; }
echo
echo "soak: $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s; logs under $OUT"
echo "soak: crash loop: $(field crash_loop cycles) cycles, $(field crash_loop ids) IDs checked," \
	"$(field crash_loop duplicates) duplicates"
echo "soak: fuzz: $(field fuzz calls) calls, $(field fuzz id_rows) ID rows checked," \
	"$(field fuzz duplicates) duplicates, SQLSTATEs seen: $(field fuzz sqlstates)"
if ((rc == 0)) && grep -q '^Result: PASS' "$OUT/prove.log"; then
	echo "soak: PASS"
	exit 0
fi
awk '/^Test Summary Report/ {r = 1} r' "$OUT/prove.log"
echo "soak: FAIL"
exit 1
