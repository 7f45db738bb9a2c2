/*-------------------------------------------------------------------------
 *
 * tso.c
 *		The hybrid timestamp layout of `tso` IDs (SPEC, "Kinds"), and the SQL
 *		functions that take one apart and build the smallest one of a
 *		moment.
 *
 * A `tso` ID is (unix_ms << IDALLOC_TSO_LOGICAL_BITS) + logical: the
 * physical part is milliseconds since 1970-01-01 00:00:00 UTC, the logical
 * part counts IDs within that millisecond (and carries into the physical
 * bits when a millisecond hands out more than 2^18).  The SQL functions
 * are pure arithmetic on that layout: IMMUTABLE and PARALLEL SAFE.
 *
 * A tso allocator is a counter whose next ID is raised to the clock's
 * (unix_ms << 18) before IDs are taken (funcs.c, take_global), and whose
 * persisted window is placed ahead of the clock (persist.c): each ID is
 * max(previous + 1, now_ms << 18).  A clock that goes backward never moves
 * IDs backward (next only rises); one that jumps forward is followed,
 * with a WARNING when the jump is told from time passing by comparing the
 * realtime clock with the monotonic one since the last publication.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "idalloc.h"

/* microseconds from 1970-01-01 to 2000-01-01 (PostgreSQL's epoch) */
#define UNIX_TO_PG_EPOCH_USECS \
	((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY)

PG_FUNCTION_INFO_V1(idalloc_tso_decode);
PG_FUNCTION_INFO_V1(idalloc_tso_from);

/*
 * idalloc_tso_decode(id bigint) RETURNS TABLE(physical timestamptz,
 * logical integer): one row.  22023 for a negative id.
 */
Datum
idalloc_tso_decode(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;

	if (SRF_IS_FIRSTCALL())
	{
		int64		id = PG_GETARG_INT64(0);
		TupleDesc	tupdesc;
		MemoryContext oldcxt;
		Datum		values[2];
		bool		nulls[2] = {false, false};
		int64		ms;

		idalloc_check_loaded();
		if (id < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("a tso ID is not negative: " INT64_FORMAT, id)));
		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		tupdesc = BlessTupleDesc(tupdesc);

		/* < 2^45 ms (year 3084): far inside timestamptz's range */
		ms = id >> IDALLOC_TSO_LOGICAL_BITS;
		values[0] = TimestampTzGetDatum((TimestampTz) (ms * 1000 -
													   UNIX_TO_PG_EPOCH_USECS));
		values[1] = Int32GetDatum((int32) (id & IDALLOC_TSO_LOGICAL_MASK));
		funcctx->user_fctx = heap_form_tuple(tupdesc, values, nulls);
		MemoryContextSwitchTo(oldcxt);
	}
	funcctx = SRF_PERCALL_SETUP();
	if (funcctx->call_cntr == 0)
		SRF_RETURN_NEXT(funcctx,
						HeapTupleGetDatum((HeapTuple) funcctx->user_fctx));
	SRF_RETURN_DONE(funcctx);
}

/*
 * idalloc_tso_from(ts timestamptz) RETURNS bigint: the smallest tso ID at
 * or after ts truncated to the millisecond (logical part 0).  A moment
 * before 1970 (or -infinity) gives 0, the smallest ID; a moment whose
 * milliseconds do not fit in the physical bits (after 3084, or infinity)
 * is 22008.
 */
Datum
idalloc_tso_from(PG_FUNCTION_ARGS)
{
	TimestampTz ts = PG_GETARG_TIMESTAMPTZ(0);
	int64		us;
	int64		ms;

	idalloc_check_loaded();
	if (TIMESTAMP_IS_NOBEGIN(ts))
		PG_RETURN_INT64(0);
	if (TIMESTAMP_IS_NOEND(ts) ||
		pg_add_s64_overflow(ts, UNIX_TO_PG_EPOCH_USECS, &us))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range for a tso ID")));
	if (us < 0)
		PG_RETURN_INT64(0);
	ms = us / 1000;				/* truncated to the millisecond */
	if (ms > (PG_INT64_MAX >> IDALLOC_TSO_LOGICAL_BITS))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range for a tso ID"),
				 errdetail("The last millisecond a tso ID can hold is " INT64_FORMAT " ms after 1970-01-01.",
						   PG_INT64_MAX >> IDALLOC_TSO_LOGICAL_BITS)));
	PG_RETURN_INT64(ms << IDALLOC_TSO_LOGICAL_BITS);
}

/* (unix_ms + debug offset) << 18, clamped to >= 0 */
static inline int64
tso_floor_of(int64 unix_ms)
{
	int64		ms = unix_ms + idalloc_debug_tso_clock_offset;

	if (ms < 0)
		return 0;
	return ms << IDALLOC_TSO_LOGICAL_BITS;
}

/* The clock of tso allocators: (unix_ms + debug offset) << 18, >= 0. */
int64
idalloc_tso_now(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_REALTIME, &ts);
	return tso_floor_of((int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/*
 * Reading the clock less.
 *
 * A tso ID is max(previous + 1, now_ms << 18): the clock only matters when
 * its millisecond changes.  clock_gettime(CLOCK_REALTIME) costs about as
 * much as the whole counter path (20-30 ns on the 2-vCPU VMs we measure on,
 * where even rdtsc costs 17 ns), so a backend that calls many times per
 * millisecond (TSO_HOT_CALLS calls within one, as a query over many rows
 * does) keeps the floor it read until shortly before the next millisecond
 * boundary, when a timeout of PostgreSQL's own SIGALRM multiplexer
 * (utils/timeout.h) marks it stale.  Within the last TSO_CLOCK_MARGIN_US
 * of a millisecond every call reads the clock, so that a timer signal
 * that arrives some microseconds late (we measured 4 us typical, 50 us at
 * the 99.9th percentile and 160 us at most on this VM) still leaves the
 * floor exact across the boundary.  A signal later than the margin (the
 * timer's CPU held up by the hypervisor while the backend runs on another)
 * leaves the floor one millisecond behind for that long: the IDs are then
 * of the millisecond before, still increasing.  A backend in such a loop
 * reads the clock on about one call in ten and takes one signal per
 * millisecond.  Calls less frequent than that (one ID per transaction)
 * read the clock every time and arm no timer, so they cause no signal and
 * no syscall.
 *
 * The floor is marked stale also at the end of every transaction
 * (PostgresMain's error recovery disables all timeouts, ours included) and
 * when idalloc.debug_tso_clock_offset changes.  A realtime clock stepped
 * backward after a read leaves the (higher) old floor in place until it
 * goes stale, which is what max() gives anyway.  One stepped forward is
 * seen when the timer fires, at most a millisecond later (setitimer counts
 * elapsed time, not wall-clock time).  Whatever the floor, the counter
 * never goes backward: it only rises.
 *
 * Only regular backends use the timer: other processes (background
 * workers of other extensions calling idalloc through SPI, single-user
 * mode) may not run timeout.c's SIGALRM handler, and read the clock on
 * every call.  The timeout is registered at a backend's first hot loop and
 * takes one of the ten USER_TIMEOUT slots (RegisterTimeout is FATAL when
 * other extensions have taken all ten).
 */
#define TSO_CLOCK_MARGIN_US		100
#define TSO_HOT_CALLS			16

volatile sig_atomic_t idalloc_tso_clock_fresh = false;
int64		idalloc_tso_clock_floor = 0;

static TimeoutId tso_timeout = MAX_TIMEOUTS;	/* not registered yet */
static int64 tso_last_ms = -1;	/* the millisecond of the last reading */
static int	tso_calls_in_ms = 0;	/* readings within it */

/* timeout handler (in the SIGALRM handler): the millisecond is ending */
static void
tso_clock_tick(void)
{
	idalloc_tso_clock_fresh = false;
}

/* Read the clock on the next call (transaction end, GUC change). */
void
idalloc_tso_forget_clock(void)
{
	idalloc_tso_clock_fresh = false;
}

/* The slow side of idalloc_tso_floor(): read the clock, maybe arm the timer. */
int64
idalloc_tso_read_clock(void)
{
	struct timespec ts;
	int64		unix_ms;
	int64		floor;
	TimestampTz stale_at;

	(void) clock_gettime(CLOCK_REALTIME, &ts);
	unix_ms = (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	floor = tso_floor_of(unix_ms);
#ifndef WIN32
	if (!IsUnderPostmaster || MyBackendType != B_BACKEND)
		return floor;
	/* not called often enough for a timer to pay */
	if (unix_ms != tso_last_ms)
	{
		tso_last_ms = unix_ms;
		tso_calls_in_ms = 0;
	}
	if (++tso_calls_in_ms < TSO_HOT_CALLS)
		return floor;
	/* within the margin before the boundary: read again on the next call */
	if (ts.tv_nsec % 1000000 >= (long) (1000 - TSO_CLOCK_MARGIN_US) * 1000)
		return floor;

	if (tso_timeout == MAX_TIMEOUTS)
		tso_timeout = RegisterTimeout(USER_TIMEOUT, tso_clock_tick);

	/*
	 * Fresh before arming: a timer that fires from here on marks it stale
	 * again, so it cannot stay fresh into the margin.
	 */
	idalloc_tso_clock_floor = floor;
	idalloc_tso_clock_fresh = true;
	stale_at = (TimestampTz) ((unix_ms + 1) * 1000 - TSO_CLOCK_MARGIN_US -
							  UNIX_TO_PG_EPOCH_USECS);
	if (!get_timeout_active(tso_timeout) ||
		get_timeout_finish_time(tso_timeout) != stale_at)
		enable_timeout_at(tso_timeout, stale_at);
#endif
	return floor;
}

int64
idalloc_tso_monotonic_ms(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* At a publication of a tso slot's end: remember both clocks.  Caller
 * holds the slot lock. */
void
idalloc_tso_stamp(IdallocSlot *slot)
{
	slot->tso_real_ms = idalloc_tso_now() >> IDALLOC_TSO_LOGICAL_BITS;
	slot->tso_mono_ms = idalloc_tso_monotonic_ms();
}

/*
 * The clock floor passed the persisted end of a tso slot: time passed (an
 * idle allocator), or the realtime clock jumped forward.  The latter, told
 * by the realtime clock having moved more than a second further than the
 * monotonic one since the last publication, gets a WARNING.
 */
void
idalloc_tso_check_jump(IdallocSlot *slot, int64 floor, const char *name)
{
	int64		real_ms = floor >> IDALLOC_TSO_LOGICAL_BITS;
	int64		mono_ms = idalloc_tso_monotonic_ms();
	int64		jump;

	if (slot->tso_mono_ms == 0)
		return;					/* nothing published in this server's life */
	jump = (real_ms - slot->tso_real_ms) - (mono_ms - slot->tso_mono_ms);
	if (jump > 1000)
		ereport(WARNING,
				(errmsg("clock jumped forward by about " INT64_FORMAT " ms; tso allocator \"%s\" follows it",
						jump, name),
				 errdetail("Its IDs continue from the new time.")));
}
