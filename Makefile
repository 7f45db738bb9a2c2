# idalloc -- PostgreSQL 15 extension (PGXS build)
#
#   make / make install      build and install the extension (needs the
#                            PostgreSQL 15 server dev files: run
#                            scripts/setup.sh first on a fresh machine)
#   make demo                set everything up, build, install, start the
#                            throwaway demo cluster (port 55432, socket dir
#                            .run/demo) and run scripts/demo.sql
#   make stop                stop the demo cluster
#   make test                set up, build, install and run every suite
#                            (pg_regress, isolation, TAP) on each major of
#                            the matrix (15, 17, 18; 17 and 18 are built from
#                            ../shared/postgres the first time, see
#                            scripts/pg.sh); make test PG=18 runs one major;
#                            see scripts/test.sh
#   make bench               set up, build, install, run the benchmark on a
#                            throwaway cluster (port 55435, .run/bench) and
#                            print one markdown table; see bench/README.md
#   make soak                set up, build, install, run the long forms of the
#                            crash loop (t/009) and the SQL fuzzer (t/010) and
#                            print one summary; see scripts/soak.sh
#   make deb                 build the Debian package postgresql-15-idalloc
#                            (pg_buildext, debian/) into dist/, installing
#                            its build dependencies; see scripts/deb.sh
#   make dist                the PGXN release zip of HEAD (META.json) into
#                            dist/; see scripts/dist.sh
#   make lint                cppcheck and clang-tidy on src/*.c (installs them
#                            from Debian's archive if missing); non-zero exit
#                            on any finding; see scripts/lint.sh, .clang-tidy
#   make valgrind            set up, build, install, run the pg_regress and
#                            isolation suites against a server under valgrind
#                            memcheck (.run/valgrind); fails on a report in
#                            idalloc's code; see scripts/valgrind.sh
#
# demo/test/stop/bench do not need PGXS: they work on a machine where nothing is
# installed yet (scripts/setup.sh installs what is missing, as root).

EXTENSION = idalloc
MODULE_big = idalloc
OBJS = src/idalloc.o src/shmem.o src/cache.o src/restart.o src/persist.o \
       src/registry.o src/triggers.o src/funcs.o src/worker.o \
       src/tso.o src/source.o
DATA = idalloc--1.0.sql idalloc--1.1.sql idalloc--1.2.sql \
       idalloc--1.0--1.1.sql idalloc--1.1--1.2.sql
PG_CPPFLAGS = -I$(srcdir)/src -I$(libpq_srcdir)
# sourced allocators talk to their authority with libpq (as dblink does)
SHLIB_LINK_INTERNAL = $(libpq)
# make ASSERTS=1: compile idalloc's own Assert()s in, even against a
# server built without --enable-cassert (Debian's)
ifdef ASSERTS
PG_CPPFLAGS += -DUSE_ASSERT_CHECKING
endif
PG_CFLAGS = -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --temp-config=$(srcdir)/test/idalloc.conf
ISOLATION = $(patsubst specs/%.spec,%,$(sort $(wildcard specs/*.spec)))
ISOLATION_OPTS = --temp-config=$(srcdir)/test/idalloc.conf
TAP_TESTS = 1

# Prefer the PostgreSQL 15 pg_config (Debian layout); fall back to PATH.
PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

ifneq ($(PGXS),)
ifneq ($(wildcard $(PGXS)),)
HAVE_PGXS = 1
endif
endif

ifdef HAVE_PGXS
include $(PGXS)
else
# No usable PGXS yet (fresh machine): only the script-driven targets work.
.PHONY: all install clean
all install:
	@echo "PostgreSQL 15 server development files not found (PG_CONFIG=$(PG_CONFIG))." >&2
	@echo "Run 'scripts/setup.sh' as root first, or use 'make demo' / 'make test'," >&2
	@echo "which install what is missing and then build." >&2
	@exit 1
clean:
	rm -f $(OBJS) $(MODULE_big).so $(OBJS:.o=.bc)
	rm -rf results/ regression.diffs regression.out tmp_check/ output_iso/ tmp_check_iso/ log/
endif

$(OBJS): src/idalloc.h src/compat.h

.PHONY: demo stop test bench deb dist

# The scripts run scripts/setup.sh and then "$$MAKE" / "$$MAKE install"
# themselves (a fresh make process, which can include PGXS once installed).
# MAKE is exported rather than written into the recipes so that "make -n demo"
# only prints the command instead of running the script.
demo test bench deb: export MAKE := $(MAKE)
# make test PG=18: one major of the matrix (scripts/test.sh)
test bench: export PG := $(PG)

demo:
	@bash scripts/demo.sh

stop:
	@bash scripts/cluster.sh stop

test:
	@bash scripts/test.sh

bench:
	@bash bench/run.sh

deb:
	@bash scripts/deb.sh

dist:
	@bash scripts/dist.sh

.PHONY: lint valgrind
lint valgrind: export MAKE := $(MAKE)

lint:
	@bash scripts/lint.sh

valgrind:
	@bash scripts/valgrind.sh

# The long forms of t/009 and t/010, bounded by IDALLOC_CRASH_CYCLES,
# IDALLOC_CRASH_SECONDS and IDALLOC_FUZZ_CALLS (see scripts/soak.sh).
.PHONY: soak
soak: export MAKE := $(MAKE)
soak:
	@bash scripts/soak.sh
