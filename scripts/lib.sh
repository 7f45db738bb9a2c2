# Shared by scripts/test.sh, scripts/valgrind.sh and scripts/soak.sh
# (sourced; expects REPO to be set).

# Run a command as the "postgres" OS user (PostgreSQL refuses root).
as_pg() { runuser -u postgres -- "$@"; }

# Environment of the test runners: no inherited libpq settings.
clean_env=(env -u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE -u PGUSER
	-u PGSERVICE -u PGOPTIONS -u PGPASSWORD -u PGSSLMODE -u TEMP_CONFIG
	-u top_builddir -u PG_TEST_NOCLEAN)

# Sorted (C collation) basenames of DIR/*.EXT, one per line.
list_tests() {
	local dir="$1" ext="$2"
	[[ -d "$REPO/$dir" ]] || return 0
	find "$REPO/$dir" -maxdepth 1 -type f -name "*.$ext" -printf '%f\n' |
		sed "s/\\.$ext\$//" | LC_ALL=C sort
}
