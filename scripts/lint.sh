#!/usr/bin/env bash
# The driver behind "make lint": static analysis of idalloc's C code.
#
#   1. scripts/setup.sh (PostgreSQL server headers, gcc), then, as root,
#      cppcheck and clang-tidy from Debian's archive if missing
#   2. cppcheck   src/*.c  --enable=warning,portability,performance
#                          --library=posix,gnu + test/cppcheck-postgres.cfg
#   3. clang-tidy src/*.c  checks and their exceptions: .clang-tidy
#
# Both tools run twice: as "make" builds the code, and with
# -DUSE_ASSERT_CHECKING as "make ASSERTS=1" does (the Assert()s become code
# the analyzers can follow, and bugprone-assert-side-effect can see them).
# Both see the PostgreSQL server headers (pg_config --includedir-server) and
# src/ exactly as the compiler does.  Findings inside PostgreSQL's own
# headers are not reported (they are not ours to fix); everything else is.
#
# A finding that is wrong for a reason the configuration cannot express is
# silenced on its line, with the reason:
#     /* cppcheck-suppress <id> ; reason */     (line before)
#     ... /* NOLINT(<check>): reason */          (same line)
#
# Output: each tool's findings, then "lint: N finding(s) ..."; the exit
# status is 1 if there is any finding (or a tool fails), else 0.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
# Debian package -> the command it provides
declare -A LINT_PACKAGES=([cppcheck]=cppcheck [clang-tidy]=clang-tidy)

note() { echo "lint.sh: $*"; }
die() { note "ERROR: $*" >&2; exit 1; }

is_installed() {
	local status
	status="$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)"
	[[ "$status" == "install ok installed" ]]
}

# ---------------------------------------------------------------------------
# 1. tools

if [[ "$(id -u)" -eq 0 ]]; then
	bash "$REPO/scripts/setup.sh" || die "scripts/setup.sh failed"
fi
[[ -x "$PG_CONFIG" ]] || die "$PG_CONFIG not found: run scripts/setup.sh as root (or 'make lint' as root)"

missing=()
for pkg in "${!LINT_PACKAGES[@]}"; do
	if ! is_installed "$pkg" || ! command -v "${LINT_PACKAGES[$pkg]}" >/dev/null; then
		missing+=("$pkg")
	fi
done
if ((${#missing[@]})); then
	[[ "$(id -u)" -eq 0 ]] || die "missing packages: ${missing[*]} (run as root to install them)"
	note "installing: ${missing[*]}"
	apt-get update || die "apt-get update failed"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
		die "apt-get install ${missing[*]} failed"
fi

PG_INCLUDEDIR="$("$PG_CONFIG" --includedir-server)" || die "pg_config --includedir-server failed"
[[ -f "$PG_INCLUDEDIR/postgres.h" ]] || die "no postgres.h in $PG_INCLUDEDIR (postgresql-server-dev-15 missing?)"
# libpq's client header (src/source.c), as the Makefile's $(libpq_srcdir)
PQ_INCLUDEDIR="$("$PG_CONFIG" --includedir)" || die "pg_config --includedir failed"

cd "$REPO" || die "cannot cd to $REPO"
mapfile -t SOURCES < <(find src -maxdepth 1 -type f -name '*.c' | LC_ALL=C sort)
((${#SOURCES[@]})) || die "no src/*.c files"

# The two builds the Makefile can produce (see ASSERTS there).
CONFIGS=("" "-DUSE_ASSERT_CHECKING")
config_name() { [[ -n "$1" ]] && echo "ASSERTS=1" || echo "default"; }

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

# ---------------------------------------------------------------------------
# 2. cppcheck
#
# cppcheck defines no compiler macros; PostgreSQL's headers pick attributes
# (pg_attribute_noreturn, pg_unreachable) and the atomics implementation by
# them, so pass the ones gcc (the compiler PGXS uses) defines.  With -D,
# cppcheck checks just that configuration instead of guessing at #ifdefs.
compiler_defines=()
while read -r _ name value; do
	compiler_defines+=("-D$name=$value")
done < <(gcc -dM -E - </dev/null |
	grep -E '^#define (__GNUC__|__GNUC_MINOR__|__linux__|__LP64__|__x86_64__|__i386__|__aarch64__|__arm__|__powerpc64__|__s390x__|__riscv) ')

cppcheck_findings=0
for cfg in "${CONFIGS[@]}"; do
	echo
	note "=== cppcheck ($(config_name "$cfg")) ==="
	# --suppress='*:<server includedir>/*': findings located in PostgreSQL's
	# own headers (inline functions, macros) are PostgreSQL's to fix.
	cmd=(cppcheck --quiet
		--enable=warning,portability,performance
		--std=c11 --platform=unix64
		--library=posix --library=gnu
		"--library=$REPO/test/cppcheck-postgres.cfg"
		"${compiler_defines[@]}" -D_GNU_SOURCE ${cfg:+"$cfg"}
		-I src -I "$PG_INCLUDEDIR" -I "$PQ_INCLUDEDIR"
		"--suppress=*:$PG_INCLUDEDIR/*" "--suppress=*:$PQ_INCLUDEDIR/*"
		--inline-suppr
		--error-exitcode=2
		"--template={file}:{line}:{column}: {severity}: {message} [{id}]\\n{code}"
		"${SOURCES[@]}")
	printf '%q ' "${cmd[@]}"; echo
	"${cmd[@]}" >"$OUT/cppcheck.log" 2>&1
	rc=$?
	cat "$OUT/cppcheck.log"
	n=$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: [a-z]+: ' "$OUT/cppcheck.log")
	grep -E '^[^ ]+:[0-9]+:[0-9]+: [a-z]+: ' "$OUT/cppcheck.log" >>"$OUT/all_cppcheck"
	if ((rc != 0 && n == 0)); then
		note "cppcheck exited with status $rc without a finding: counting 1"
		echo "cppcheck ($(config_name "$cfg")): exit status $rc" >>"$OUT/all_cppcheck"
	fi
	((rc == 0 && n == 0)) && note "cppcheck ($(config_name "$cfg")): no findings"
done
[[ -f "$OUT/all_cppcheck" ]] && cppcheck_findings=$(sort -u "$OUT/all_cppcheck" | wc -l)

# ---------------------------------------------------------------------------
# 3. clang-tidy (checks, exceptions and analyzer options: .clang-tidy)

tidy_findings=0
for cfg in "${CONFIGS[@]}"; do
	echo
	note "=== clang-tidy ($(config_name "$cfg")) ==="
	cmd=(clang-tidy --quiet "--config-file=$REPO/.clang-tidy" "${SOURCES[@]}"
		-- -D_GNU_SOURCE ${cfg:+"$cfg"} -I src -I "$PG_INCLUDEDIR" -I "$PQ_INCLUDEDIR")
	printf '%q ' "${cmd[@]}"; echo
	"${cmd[@]}" >"$OUT/tidy.log" 2>&1
	rc=$?
	# drop clang-tidy's chatter ("N warnings generated.", "Suppressed N ...")
	grep -vE '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter=|^Found compiler errors?' \
		"$OUT/tidy.log"
	n=$(grep -cE '^[^ ]+:[0-9]+:[0-9]+: (warning|error): ' "$OUT/tidy.log")
	grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error): ' "$OUT/tidy.log" |
		sed -E 's/,-warnings-as-errors\]$/]/' >>"$OUT/all_tidy"
	if ((rc != 0 && n == 0)); then
		note "clang-tidy exited with status $rc without a finding: counting 1"
		echo "clang-tidy ($(config_name "$cfg")): exit status $rc" >>"$OUT/all_tidy"
	fi
	((rc == 0 && n == 0)) && note "clang-tidy ($(config_name "$cfg")): no findings"
done
[[ -f "$OUT/all_tidy" ]] && tidy_findings=$(sort -u "$OUT/all_tidy" | wc -l)

# ---------------------------------------------------------------------------

total=$((cppcheck_findings + tidy_findings))
echo
if ((total > 0)); then
	note "findings (each once, over both builds):"
	[[ -f "$OUT/all_cppcheck" ]] && sort -u "$OUT/all_cppcheck" | sed 's/^/  cppcheck:   /'
	[[ -f "$OUT/all_tidy" ]] && sort -u "$OUT/all_tidy" | sed 's/^/  clang-tidy: /'
fi
echo "lint: $total finding(s) (cppcheck: $cppcheck_findings, clang-tidy: $tidy_findings)"
((total == 0))
