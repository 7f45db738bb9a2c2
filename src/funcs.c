/*-------------------------------------------------------------------------
 *
 * funcs.c
 *		SQL-callable functions: argument checks, errors, and the
 *		backend-local map from allocator name to shared slot.
 *
 * The local map is a hash table (its own memory context under
 * TopMemoryContext, "idalloc allocators").  A name is entered only once it
 * resolves to a row, so asking for missing names costs no memory; entries
 * whose allocator is gone are swept once the map has doubled since the
 * last sweep, so its size is bounded by the live allocators.  Each call
 * site keeps its last entry in fn_extra (a NameMemo), valid while the
 * map's version is unchanged (a sweep bumps it), so that a repeated name
 * is not hashed again.  An entry holds a reference to a slot plus the
 * slot's generation; the fast path checks the generation after taking
 * IDs, and a stale entry is resolved again from the catalog table (where a
 * dropped allocator is no longer found: 42704).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "idalloc.h"

typedef struct LocalEntry
{
	char		name[NAMEDATALEN];	/* hash key */
	IdallocRef	ref;			/* ref.slot == NULL: not resolved */
	int			cache_hint;		/* this backend's cache entry, or -1 */
} LocalEntry;

/*
 * Per-call-site memo of the last allocator name, in fn_extra (and one for
 * the allocator "default").  Valid while `version` equals local_version:
 * removing entries from the map bumps it.
 */
typedef struct NameMemo
{
	uint64		version;
	int			len;
	char		name[NAMEDATALEN];
	LocalEntry *entry;
} NameMemo;

static HTAB *local_map = NULL;
static uint64 local_version = 1;
static long local_sweep_at = 256;
static NameMemo default_memo;

PG_FUNCTION_INFO_V1(idalloc_one_default);
PG_FUNCTION_INFO_V1(idalloc_one);
PG_FUNCTION_INFO_V1(idalloc_batch_default);
PG_FUNCTION_INFO_V1(idalloc_batch);
PG_FUNCTION_INFO_V1(idalloc_create);
PG_FUNCTION_INFO_V1(idalloc_drop);
PG_FUNCTION_INFO_V1(idalloc_alter);
PG_FUNCTION_INFO_V1(idalloc_advance);
PG_FUNCTION_INFO_V1(idalloc_sync);
PG_FUNCTION_INFO_V1(idalloc_allocator_state);
PG_FUNCTION_INFO_V1(idalloc_cache_state);
PG_FUNCTION_INFO_V1(idalloc_allocator_steps);

/* ---------- argument checks ---------- */

static void
check_name_len(int len)
{
	if (len < 1 || len > IDALLOC_MAX_NAME_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid allocator name"),
				 errdetail("An allocator name must be 1 to %d bytes long.",
						   IDALLOC_MAX_NAME_LEN)));
}

/* Copy a text argument into buf (NAMEDATALEN bytes) as an allocator name. */
static void
name_from_text(text *t, char *buf)
{
	int			len = VARSIZE_ANY_EXHDR(t);

	check_name_len(len);
	memcpy(buf, VARDATA_ANY(t), len);
	buf[len] = '\0';
}

static void
check_not_null(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be null", argname)));
}

static void
check_positive(int64 value, const char *what)
{
	if (value < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be at least 1, not " INT64_FORMAT, what, value)));
}

/* IDs are persisted on the way out: impossible on a standby or read-only. */
static inline void
check_writable(const char *cmdname)
{
	if (unlikely(RecoveryInProgress()))
		PreventCommandDuringRecovery(cmdname);
	if (unlikely(XactReadOnly))
		PreventCommandIfReadOnly(cmdname);
}

/* ---------- the local name -> slot map ---------- */

pg_noreturn static void report_missing(const char *name);

static void
report_missing(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("allocator \"%s\" does not exist", name)));
}

/*
 * Attach the slot of a row of installation extoid.  `created` says the
 * row was inserted by this transaction: if it rolls back, the slot is let
 * go again.
 */
static bool
attach_row(Oid extoid, const IdallocRow *row, bool created, IdallocRef *ref)
{
	bool		new_slot;

	if (!idalloc_attach(MyDatabaseId, extoid, row, ref, &new_slot))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many idalloc allocators in use"),
				 errdetail("All %d slots of idalloc.max_allocators are taken.",
						   idalloc_max_allocators),
				 errhint("Drop unused allocators or raise idalloc.max_allocators.")));
	if (created)
		idalloc_remember_create(extoid, row->id);
	return new_slot;
}

/*
 * Point *ref at the slot of allocator `name`, whose row (of installation
 * reg) was just read.
 *
 * After a DROP EXTENSION idalloc in this transaction, an allocator of a
 * name the dropped installation had hands out IDs from that
 * installation's slot (attached until commit), and only what it has
 * persisted: then, committed or rolled back, no ID is handed out twice
 * (triggers.c, "the stash").
 *
 * Else the slot is attached, and the row looked up again: a drop that
 * committed (and detached its slots) between the read and the attach must
 * not leave a slot attached for an allocator that no longer exists.
 */
static void
attach_named(const char *name, const IdallocRow *row,
			 const IdallocRegistry *reg, IdallocRef *ref)
{
	Oid			old_extoid;
	int64		old_id;
	IdallocRegistry again_reg;
	IdallocRow	again;
	bool		new_slot;
	volatile bool still_there = false;

	if (idalloc_stash_lookup(name, reg->extoid, &old_extoid, &old_id))
	{
		if (!idalloc_attach_existing(MyDatabaseId, old_extoid, old_id, ref))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("allocator \"%s\" cannot hand out IDs in the transaction that dropped and re-created extension \"idalloc\"",
							name),
					 errdetail("The dropped installation had not loaded it."),
					 errhint("Commit the transaction, then allocate.")));
		return;
	}

	new_slot = attach_row(reg->extoid, row, false, ref);

	/*
	 * The re-check can itself fail (cancel, lock_timeout while another
	 * session holds the table): a slot attached here must not stay behind.
	 */
	PG_TRY();
	{
		still_there = idalloc_registry_find(&again_reg, true) &&
			again_reg.extoid == reg->extoid &&
			idalloc_row_by_name(name, &again, &again_reg) &&
			again.id == row->id;
	}
	PG_CATCH();
	{
		if (new_slot)
			idalloc_detach(MyDatabaseId, reg->extoid, row->id);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (!still_there)
	{
		idalloc_detach(MyDatabaseId, reg->extoid, row->id);
		ref->slot = NULL;
		report_missing(name);
	}
}

/* Point entry at the slot of its allocator: catalog lookup, attach. */
static void
resolve(LocalEntry *entry)
{
	IdallocRow	row;
	IdallocRegistry reg;

	entry->ref.slot = NULL;
	if (!idalloc_row_by_name(entry->name, &row, &reg))
		report_missing(entry->name);
	attach_named(entry->name, &row, &reg, &entry->ref);
}

static void
create_local_map(void)
{
	HASHCTL		ctl;

	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(LocalEntry);
	local_map = hash_create("idalloc allocators", 16, &ctl,
							HASH_ELEM | HASH_STRINGS);
}

/*
 * Keep the map bounded: entries whose allocator is no longer attached
 * (dropped, or let go) are removed once the map has grown past a limit
 * that doubles with what stays.  Entries of live allocators stay: at most
 * idalloc.max_allocators of them.
 */
static void
sweep_local_map(void)
{
	HASH_SEQ_STATUS seq;
	LocalEntry *entry;
	long		left;

	if (hash_get_num_entries(local_map) < local_sweep_at)
		return;
	hash_seq_init(&seq, local_map);
	while ((entry = hash_seq_search(&seq)) != NULL)
	{
		if (entry->ref.slot == NULL ||
			pg_atomic_read_u64(&entry->ref.slot->generation) !=
			entry->ref.generation)
			(void) hash_search(local_map, entry->name, HASH_REMOVE, NULL);
	}
	local_version++;			/* memos may point at removed entries */
	left = hash_get_num_entries(local_map);
	local_sweep_at = Max(256, 2 * left);
}

/*
 * The entry of allocator `name`.  A name is entered only once it resolves
 * (a missing name is 42704 and leaves nothing behind), so the map holds
 * allocators that exist, not every name ever asked for.
 */
static LocalEntry *
local_entry(const char *name)
{
	LocalEntry *entry;
	IdallocRow	row;
	IdallocRegistry reg;
	IdallocRef	ref;

	if (local_map == NULL)
		create_local_map();
	entry = hash_search(local_map, name, HASH_FIND, NULL);
	if (entry != NULL)
		return entry;

	if (!idalloc_row_by_name(name, &row, &reg))
		report_missing(name);
	attach_named(name, &row, &reg, &ref);
	sweep_local_map();
	entry = hash_search(local_map, name, HASH_ENTER, NULL);
	entry->ref = ref;
	entry->cache_hint = -1;
	return entry;
}

/* Make `name` point at ref (just attached by idalloc_create). */
static void
local_entry_set(const char *name, const IdallocRef *ref)
{
	LocalEntry *entry;
	bool		found;

	if (local_map == NULL)
		create_local_map();
	else
		sweep_local_map();
	entry = hash_search(local_map, name, HASH_ENTER, &found);
	entry->ref = *ref;
	if (!found)
		entry->cache_hint = -1;
}

/* The entry of `name` if this backend has one, else NULL (no lookup). */
static LocalEntry *
local_entry_if_any(const char *name)
{
	if (local_map == NULL)
		return NULL;
	return hash_search(local_map, name, HASH_FIND, NULL);
}

/* The entry of `name`, through a memo (fn_extra, or default_memo). */
static LocalEntry *
memo_entry(NameMemo *memo, const char *name, int len)
{
	if (memo->version != local_version || memo->len != len ||
		memcmp(memo->name, name, len) != 0)
	{
		char		buf[NAMEDATALEN];

		memcpy(buf, name, len);
		buf[len] = '\0';
		memo->entry = local_entry(buf);
		/* local_entry may have swept: take the version after it */
		memo->version = local_version;
		memo->len = len;
		memcpy(memo->name, buf, len + 1);
	}
	return memo->entry;
}

/*
 * The entry of the text argument argno.  With use_memo (not for
 * set-returning functions, whose fn_extra belongs to the SRF machinery),
 * the entry is remembered in fn_extra so that a repeated name is not
 * hashed again.
 */
static LocalEntry *
entry_for_arg(FunctionCallInfo fcinfo, int argno, bool use_memo)
{
	text	   *t = PG_GETARG_TEXT_PP(argno);
	int			len = VARSIZE_ANY_EXHDR(t);
	NameMemo   *memo = (NameMemo *) fcinfo->flinfo->fn_extra;
	char		buf[NAMEDATALEN];

	check_name_len(len);
	if (!use_memo)
	{
		name_from_text(t, buf);
		return local_entry(buf);
	}
	if (memo == NULL)
	{
		memo = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
									  sizeof(NameMemo));
		fcinfo->flinfo->fn_extra = memo;
	}
	return memo_entry(memo, VARDATA_ANY(t), len);
}

static LocalEntry *
entry_for_default(void)
{
	return memo_entry(&default_memo, "default", strlen("default"));
}

/*
 * DROP EXTENSION idalloc in this transaction: every entry points at a slot
 * of the installation being dropped (detached only at commit), so look
 * every allocator up again; a new installation in the same transaction
 * then gets its own slots.
 */
void
idalloc_forget_local_refs(void)
{
	HASH_SEQ_STATUS seq;
	LocalEntry *entry;

	if (local_map == NULL)
		return;
	hash_seq_init(&seq, local_map);
	while ((entry = hash_seq_search(&seq)) != NULL)
		entry->ref.slot = NULL;
}

/* ---------- allocation ---------- */

/*
 * Take `count` contiguous IDs from the global counter; returns the first.
 * `counted`: they go to the caller (not into a cache), count them.
 * Returns false if the slot went stale (entry->ref.slot is then NULL).
 */
/*
 * A tso allocator's next ID is at least the clock's (unix_ms << 18): raise
 * it (never lower it), within the persisted window.  False if the clock is
 * past the window: then the caller persists a block from the clock first.
 */
static bool
tso_raise(IdallocSlot *slot, int64 floor)
{
	uint64		cur = pg_atomic_read_u64(&slot->next);

	while ((int64) cur < floor)
	{
		if (floor > (int64) pg_atomic_read_u64(&slot->end))
			return false;
		if (pg_atomic_compare_exchange_u64(&slot->next, &cur, (uint64) floor))
			break;
	}
	return true;
}

static bool
take_global(LocalEntry *entry, int64 count, bool counted, int64 *first)
{
	for (;;)
	{
		uint32		epoch = 0;
		IdallocTake r;

		if (unlikely(entry->ref.slot->tso))
		{
			int64		floor = idalloc_tso_floor();

			if (!tso_raise(entry->ref.slot, floor))
			{
				int64		dummy;

				/* the clock passed the window: idle, or a jump forward */
				idalloc_tso_check_jump(entry->ref.slot, floor, entry->name);
				if (idalloc_take_slow(&entry->ref, entry->name, 0, floor,
									  &dummy) == IDALLOC_STALE)
				{
					entry->ref.slot = NULL;
					return false;
				}
				continue;
			}
		}
		r = idalloc_take_fast(&entry->ref, count, first, &epoch);

		/* a range past the published end: wait until a block covers it */
		if (unlikely(r == IDALLOC_RESERVED))
			r = idalloc_take_reserved(&entry->ref, entry->name, *first,
									  count, epoch);
		switch (r)
		{
			case IDALLOC_TAKEN:
				if (counted)
					idalloc_count(&entry->ref, count);
				idalloc_check_ahead(entry->ref.slot, *first + count);
				return true;
			case IDALLOC_STALE:
				entry->ref.slot = NULL;
				return false;
			case IDALLOC_RETRY:
			case IDALLOC_RESERVED:
				break;
		}
		if ((entry->ref.slot->sourced ?
			 idalloc_source_take_slow(&entry->ref, entry->name, count) :
			 idalloc_take_slow(&entry->ref, entry->name, count, PG_INT64_MIN,
							   first)) == IDALLOC_STALE)
		{
			entry->ref.slot = NULL;
			return false;
		}
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Refill this backend's cache of the allocator with `cache` IDs from the
 * global counter (at least `count`, the request; fewer than `cache` near
 * the end of the ID space, so that the last IDs can be handed out too).
 * Only called when the cache holds nothing that can be served, so no
 * remainder is thrown away.
 */
static bool
refill_cache(LocalEntry *entry, uint32 cache, int64 count)
{
	/* read the epoch before taking: an advance in between voids the range */
	uint32		epoch = pg_atomic_read_u32(&entry->ref.slot->cache_epoch);
	int64		next = (int64) pg_atomic_read_u64(&entry->ref.slot->next);
	int64		want = cache;
	int64		first;

	Assert(count >= 1 && count <= cache);
	if (next >= 0 && PG_INT64_MAX - next < want)
		want = Max(PG_INT64_MAX - next, count);
	if (!take_global(entry, want, false, &first))
		return false;
	entry->cache_hint = idalloc_cache_install(&entry->ref, entry->cache_hint,
											  epoch, first, first + want);
	return true;
}

/*
 * Take `count` contiguous IDs; returns the first.  An allocator with
 * cache > 1 serves from this backend's cached range.  A request the range
 * cannot serve (a batch larger than its rest) comes from the global
 * counter, after the rest of the range is let go (given back to the global
 * counter if nobody took IDs since, which the batch then starts with; else
 * a gap): the next refill comes from above the batch, so that everything
 * one session receives strictly increases (G2).
 */
static int64
allocate(LocalEntry *entry, int64 count)
{
	int64		first;

	Assert(count >= 1);
	for (;;)
	{
		uint32		cache;

		if (unlikely(entry->ref.slot == NULL))
		{
			resolve(entry);
			if (entry->ref.slot == NULL)	/* resolve errors out instead */
				elog(ERROR, "idalloc: allocator \"%s\" resolved to no slot",
					 entry->name);
		}
		cache = pg_atomic_read_u32(&entry->ref.slot->cache_size);
		if (unlikely(cache <= 1 && entry->cache_hint >= 0))
		{
			/* altered to cache = 1: never serve the old range again */
			idalloc_cache_release(&entry->ref);
			entry->cache_hint = -1;
		}
		if (cache > 1)
		{
			switch (idalloc_cache_take(&entry->ref, entry->cache_hint, count,
									   &first))
			{
				case IDALLOC_CACHE_TAKEN:
					/* a detached slot voids the cache: checked inside */
					return first;
				case IDALLOC_CACHE_EMPTY:
					if (count <= cache)
					{
						(void) refill_cache(entry, cache, count);
						continue;
					}
					break;
				case IDALLOC_CACHE_TOO_SMALL:
					idalloc_cache_release(&entry->ref);
					entry->cache_hint = -1;
					break;
			}
		}
		if (take_global(entry, count, true, &first))
			return first;
	}
}

Datum
idalloc_one_default(PG_FUNCTION_ARGS)
{
	idalloc_check_loaded();
	check_writable("idalloc_one()");
	PG_RETURN_INT64(allocate(entry_for_default(), 1));
}

Datum
idalloc_one(PG_FUNCTION_ARGS)
{
	LocalEntry *entry;

	idalloc_check_loaded();
	check_writable("idalloc_one()");
	entry = entry_for_arg(fcinfo, 0, true);
	PG_RETURN_INT64(allocate(entry, 1));
}

/* Checks of a batch call, before its allocator is looked up. */
static void
check_batch(int64 count)
{
	check_positive(count, "count");
	check_writable("idalloc_batch()");
}

/*
 * One row (start_id, end_id) of a batch, as a set-returning function.
 * The caller ran check_batch.
 */
static Datum
batch_result(FunctionCallInfo fcinfo, LocalEntry *entry, int64 count)
{
	FuncCallContext *funcctx;

	if (SRF_IS_FIRSTCALL())
	{
		TupleDesc	tupdesc;
		MemoryContext oldcxt;
		Datum		values[2];
		bool		nulls[2] = {false, false};
		int64		first;

		funcctx = SRF_FIRSTCALL_INIT();
		oldcxt = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "return type must be a row type");
		tupdesc = BlessTupleDesc(tupdesc);
		first = allocate(entry, count);
		values[0] = Int64GetDatum(first);
		values[1] = Int64GetDatum(first + count);
		funcctx->user_fctx = heap_form_tuple(tupdesc, values, nulls);
		MemoryContextSwitchTo(oldcxt);
	}
	funcctx = SRF_PERCALL_SETUP();
	if (funcctx->call_cntr == 0)
		SRF_RETURN_NEXT(funcctx,
						HeapTupleGetDatum((HeapTuple) funcctx->user_fctx));
	SRF_RETURN_DONE(funcctx);
}

Datum
idalloc_batch_default(PG_FUNCTION_ARGS)
{
	idalloc_check_loaded();
	if (!SRF_IS_FIRSTCALL())
		return batch_result(fcinfo, NULL, 0);
	check_batch(PG_GETARG_INT64(0));
	return batch_result(fcinfo, entry_for_default(), PG_GETARG_INT64(0));
}

Datum
idalloc_batch(PG_FUNCTION_ARGS)
{
	idalloc_check_loaded();
	if (!SRF_IS_FIRSTCALL())
		return batch_result(fcinfo, NULL, 0);
	check_batch(PG_GETARG_INT64(1));
	return batch_result(fcinfo, entry_for_arg(fcinfo, 0, false),
						PG_GETARG_INT64(1));
}

/* ---------- management ---------- */

/*
 * Setting a source is for superusers only: the conninfo makes this server
 * connect wherever it says, as the server's OS user, with its files.
 */
static void
check_source_allowed(const char *name)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to set the source of allocator \"%s\"",
						name),
				 errdetail("Only superusers may set an allocator's source."),
				 errhidestmt(true)));
}

static void
report_exists_skipping(const char *name)
{
	ereport(NOTICE,
			(errcode(ERRCODE_DUPLICATE_OBJECT),
			 errmsg("allocator \"%s\" already exists, skipping", name)));
}

Datum
idalloc_create(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	int64		start;
	int64		block;
	int32		cache;
	char	   *kind;
	char	   *conninfo = NULL;
	char	   *display = NULL;
	int64		id;
	IdallocRow	row;
	IdallocRegistry reg;
	IdallocRef	ref;
	bool		if_not_exists = false;

	idalloc_check_loaded();
	check_not_null(fcinfo, 0, "allocator");
	check_not_null(fcinfo, 1, "start");
	check_not_null(fcinfo, 3, "cache");
	check_not_null(fcinfo, 4, "kind");
	/* if_not_exists came with 1.1 (1.0's function has six arguments) */
	if (PG_NARGS() > 6)
	{
		check_not_null(fcinfo, 6, "if_not_exists");
		if_not_exists = PG_GETARG_BOOL(6);
	}
	name_from_text(PG_GETARG_TEXT_PP(0), name);
	start = PG_GETARG_INT64(1);
	cache = PG_GETARG_INT32(3);
	kind = text_to_cstring(PG_GETARG_TEXT_PP(4));
	if (strcmp(kind, "counter") != 0 && strcmp(kind, "tso") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown allocator kind \"%s\"", kind),
				 errhint("The kinds are \"counter\" and \"tso\".")));
	/* a tso allocator's block is time: 3 seconds of IDs by default */
	block = !PG_ARGISNULL(2) ? PG_GETARG_INT64(2) :
		strcmp(kind, "tso") == 0 ? IDALLOC_TSO_DEFAULT_BLOCK : IDALLOC_DEFAULT_BLOCK;
	check_positive(block, "block");
	check_positive(cache, "cache");
	if (!PG_ARGISNULL(5))
	{
		IdallocRegistry inst;

		conninfo = text_to_cstring(PG_GETARG_TEXT_PP(5));
		check_source_allowed(name);
		if (strcmp(kind, "tso") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("an allocator of kind \"tso\" cannot have a source"),
					 errdetail("In idalloc 1.1 a source is for \"counter\" allocators."),
					 errhidestmt(true)));
		display = idalloc_source_display(conninfo, name);
		(void) idalloc_registry_find(&inst, false);
		idalloc_source_check_installed(&inst);
	}
	check_writable("idalloc_create()");

	/*
	 * As CREATE SEQUENCE IF NOT EXISTS: an allocator of that name is left
	 * as it is, whatever its settings, with a NOTICE (the arguments were
	 * checked all the same).  Looked for before connecting to a source, so
	 * that a migration run again does not need the authority.
	 */
	if (if_not_exists && idalloc_row_by_name(name, &row, &reg))
	{
		report_exists_skipping(name);
		PG_RETURN_VOID();
	}
	if (conninfo != NULL)
		idalloc_source_verify(conninfo, name, display);

	id = idalloc_row_insert(name, start, block, cache, kind, display, &reg);
	if (id == 0 && if_not_exists)
	{
		/* created by a transaction that committed while we waited */
		report_exists_skipping(name);
		PG_RETURN_VOID();
	}
	if (id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("allocator \"%s\" already exists", name)));
	if (conninfo != NULL)
		idalloc_source_set_conninfo(&reg, id, conninfo);

	/*
	 * Take a slot now: the limit is checked at create, as promised.  The
	 * row is read back: the insert trigger may have given it another id or
	 * a higher persisted end (a DROP EXTENSION earlier in this
	 * transaction).
	 */
	if (!idalloc_row_by_name(name, &row, &reg) || row.id != id)
		elog(ERROR, "idalloc: row of allocator \"%s\" vanished after insert",
			 name);
	attach_row(reg.extoid, &row, true, &ref);

	/*
	 * After a DROP EXTENSION in this transaction, an allocator of a name
	 * the dropped installation had hands out IDs from that one's slot
	 * until commit (see attach_named): look it up again at first use.
	 */
	{
		Oid			old_extoid;
		int64		old_id;

		if (idalloc_stash_lookup(name, reg.extoid, &old_extoid, &old_id))
			ref.slot = NULL;
	}
	local_entry_set(name, &ref);
	PG_RETURN_VOID();
}

Datum
idalloc_drop(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	int64		id;
	IdallocRegistry reg;
	LocalEntry *entry;

	idalloc_check_loaded();
	check_not_null(fcinfo, 0, "allocator");
	name_from_text(PG_GETARG_TEXT_PP(0), name);
	check_writable("idalloc_drop()");

	id = idalloc_row_delete(name, &reg);
	if (id == 0)
		report_missing(name);
	idalloc_source_forget(&reg, id);
	idalloc_remember_drop(reg.extoid, id);
	/* this backend looks it up again (and no longer finds it) */
	if ((entry = local_entry_if_any(name)) != NULL)
		entry->ref.slot = NULL;
	PG_RETURN_VOID();
}

Datum
idalloc_alter(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	int64		block = -1;
	int32		cache = -1;
	char	   *conninfo = NULL;
	char	   *display = NULL;
	IdallocRow	row;
	IdallocRegistry reg;

	idalloc_check_loaded();
	check_not_null(fcinfo, 0, "allocator");
	name_from_text(PG_GETARG_TEXT_PP(0), name);
	if (!PG_ARGISNULL(1))
	{
		block = PG_GETARG_INT64(1);
		check_positive(block, "block");
	}
	if (!PG_ARGISNULL(2))
	{
		cache = PG_GETARG_INT32(2);
		check_positive(cache, "cache");
	}
	/* (the 1.0 signature has no source) */
	if (PG_NARGS() > 3 && !PG_ARGISNULL(3))
	{
		conninfo = text_to_cstring(PG_GETARG_TEXT_PP(3));
		check_source_allowed(name);
		display = idalloc_source_display(conninfo, name);
	}
	check_writable("idalloc_alter()");
	if (!idalloc_row_by_name(name, &row, &reg))
		report_missing(name);
	if (conninfo != NULL)
	{
		if (row.sourced && strspn(conninfo, " \t\n\r\f\v") == strlen(conninfo))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("allocator \"%s\" has a source: a sourced allocator cannot become local",
							name),
					 errhint("Create a new allocator without a source instead."),
					 errhidestmt(true)));
		if (!row.sourced)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("allocator \"%s\" has no source: a local allocator cannot become sourced",
							name),
					 errhint("Create a new allocator with a source instead."),
					 errhidestmt(true)));
		idalloc_source_verify(conninfo, name, display);
		/*
		 * The UPDATE below copies the row's persisted end (the mark,
		 * idalloc_raise_mark); a mark written in place after that copy
		 * would be lost when it commits.
		 */
		idalloc_hold_advance_lock(row.id);
		idalloc_row_set_source(row.id, display, &reg);
		idalloc_source_set_conninfo(&reg, row.id, conninfo);
	}
	idalloc_alter_sizes(reg.extoid, row.id, block, cache);
	PG_RETURN_VOID();
}

/* Make every later ID >= floor; returns the allocator's next ID. */
static int64
advance_to(LocalEntry *entry, int64 floor)
{
	int64		next;

	for (;;)
	{
		if (entry->ref.slot == NULL)
			resolve(entry);
		if (idalloc_take_slow(&entry->ref, entry->name, 0, floor, &next) ==
			IDALLOC_TAKEN)
			return next;
		entry->ref.slot = NULL;
		CHECK_FOR_INTERRUPTS();
	}
}

Datum
idalloc_advance(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];

	idalloc_check_loaded();
	check_not_null(fcinfo, 0, "allocator");
	check_not_null(fcinfo, 1, "next_id");
	name_from_text(PG_GETARG_TEXT_PP(0), name);
	check_writable("idalloc_advance()");
	{
		LocalEntry *entry = local_entry(name);

		if (entry->ref.slot == NULL)
			resolve(entry);
		if (entry->ref.slot->sourced)
		{
			IdallocRegistry reg;
			int64		next;

			/* forwarded to the authority; then nothing held here is used */
			(void) idalloc_registry_find(&reg, false);
			next = idalloc_source_advance(&reg, entry->ref.id, name,
										  PG_GETARG_INT64(1));
			idalloc_source_drop_held(&entry->ref);
			PG_RETURN_INT64(next);
		}
		PG_RETURN_INT64(advance_to(entry, PG_GETARG_INT64(1)));
	}
}

/* Drop this session's cached range, so the next ID comes from the global counter. */
Datum
idalloc_sync(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	LocalEntry *entry;

	idalloc_check_loaded();
	check_not_null(fcinfo, 0, "allocator");
	name_from_text(PG_GETARG_TEXT_PP(0), name);
	entry = local_entry(name);
	/* look it up afresh: it must exist (42704) */
	entry->ref.slot = NULL;
	resolve(entry);
	idalloc_cache_release(&entry->ref);
	entry->cache_hint = -1;
	PG_RETURN_VOID();
}

/* ---------- observability ---------- */

/* one attached slot of this installation, as idalloc_allocator_state sees it */
typedef struct SlotView
{
	bool		used;
	uint64		generation;
	int64		id;
	int64		next;
	int64		end;
	int64		allocated;		/* global path + cached ranges' handed-out IDs */
	int64		block_advances;
	int64		live_ranges;	/* cached ranges that can still be served */
} SlotView;

static void
sum_cache_entry(void *arg, int pid, int64 id, IdallocSlot *slot, int64 next,
				int64 end, int64 start, bool live)
{
	SlotView   *views = (SlotView *) arg;
	SlotView   *v = &views[slot - idalloc_slots];

	if (!v->used || v->id != id)
		return;
	v->allocated += next - start;
	if (live)
		v->live_ranges++;
}

/*
 * Live state of this installation's attached slots, for
 * idalloc_allocators.  The slots are copied under the slot-assignment lock
 * (held shared, briefly: no other lock nests inside), then every backend's
 * caches are summed in one pass, without it.
 */
Datum
idalloc_allocator_state(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			extoid;
	SlotView   *views;
	int			nslots;

	idalloc_check_loaded();
	InitMaterializedSRF(fcinfo, 0);
	extoid = get_extension_oid("idalloc", true);
	nslots = idalloc_shared->nslots;
	views = palloc0(sizeof(SlotView) * nslots);

	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	for (int i = 0; i < nslots; i++)
	{
		IdallocSlot *slot = &idalloc_slots[i];
		SlotView   *v = &views[i];

		if (pg_atomic_read_u64(&slot->generation) == 0 ||
			slot->dboid != MyDatabaseId || slot->extoid != extoid)
			continue;
		v->used = true;
		v->generation = pg_atomic_read_u64(&slot->generation);
		v->id = slot->id;
		v->next = (int64) pg_atomic_read_u64(&slot->next);
		v->end = (int64) pg_atomic_read_u64(&slot->end);
		v->allocated = (int64) pg_atomic_read_u64(&slot->allocated);
		v->block_advances = (int64) slot->block_advances;
	}
	LWLockRelease(idalloc_shared->lock);

	idalloc_cache_foreach(MyDatabaseId, sum_cache_entry, views);

	for (int i = 0; i < nslots; i++)
	{
		SlotView   *v = &views[i];
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};

		if (!v->used)
			continue;
		v->allocated += (int64) idalloc_counts_sum(i, v->generation);
		values[0] = Int64GetDatum(v->id);
		values[1] = Int64GetDatum(v->next);
		values[2] = Int64GetDatum(v->end);
		values[3] = Int64GetDatum(v->allocated);
		values[4] = Int64GetDatum(v->block_advances);
		values[5] = Int64GetDatum(v->live_ranges);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(views);
	return (Datum) 0;
}

/*
 * The step and waits of this installation's attached slots (1.1), for
 * idalloc_allocators.  A function of its own, so that the 1.0 view could
 * be replaced by one with columns added at its end (CREATE OR REPLACE
 * VIEW) rather than dropped.
 */
Datum
idalloc_allocator_steps(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			extoid;

	idalloc_check_loaded();
	InitMaterializedSRF(fcinfo, 0);
	extoid = get_extension_oid("idalloc", true);

	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	for (int i = 0; i < idalloc_shared->nslots; i++)
	{
		IdallocSlot *slot = &idalloc_slots[i];
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		if (pg_atomic_read_u64(&slot->generation) == 0 ||
			slot->dboid != MyDatabaseId || slot->extoid != extoid)
			continue;
		values[0] = Int64GetDatum(slot->id);
		/* (read without the slot lock: a monitoring figure) */
		values[1] = Int64GetDatum(slot->step);
		nulls[1] = slot->step <= 0;
		values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->waits));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(idalloc_shared->lock);
	return (Datum) 0;
}

typedef struct CacheRows
{
	ReturnSetInfo *rsinfo;
	Oid			extoid;
} CacheRows;

static void
put_cache_entry(void *arg, int pid, int64 id, IdallocSlot *slot, int64 next,
				int64 end, int64 start, bool live)
{
	CacheRows  *rows = (CacheRows *) arg;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	/* (slot->extoid is read without its lock: a view may be a bit stale) */
	if (!live || slot->extoid != rows->extoid)
		return;
	values[0] = Int32GetDatum(pid);
	values[1] = Int64GetDatum(id);
	values[2] = Int64GetDatum(next);
	values[3] = Int64GetDatum(end);
	tuplestore_putvalues(rows->rsinfo->setResult, rows->rsinfo->setDesc,
						 values, nulls);
}

/* Every backend's cached range in this installation, for idalloc_caches. */
Datum
idalloc_cache_state(PG_FUNCTION_ARGS)
{
	CacheRows	rows;

	idalloc_check_loaded();
	InitMaterializedSRF(fcinfo, 0);
	rows.rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	rows.extoid = get_extension_oid("idalloc", true);
	idalloc_cache_foreach(MyDatabaseId, put_cache_entry, &rows);
	return (Datum) 0;
}
