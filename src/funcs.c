/*-------------------------------------------------------------------------
 *
 * funcs.c
 *		SQL-callable functions: argument checks, errors, and the
 *		backend-local map from allocator name to shared slot.
 *
 * The local map is a hash table in TopMemoryContext whose entries are never
 * removed (pointers to them stay valid, so each call site can keep one in
 * fn_extra and skip hashing when the same name comes again).  An entry
 * holds a reference to a slot plus the slot's generation; the fast path
 * checks the generation after taking IDs, and a stale entry is resolved
 * again from the catalog table (where a dropped allocator is no longer
 * found: 42704).
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

/* per-call-site memo of the last allocator name, in fn_extra */
typedef struct NameMemo
{
	int			len;
	char		name[NAMEDATALEN];
	LocalEntry *entry;
} NameMemo;

static HTAB *local_map = NULL;
static LocalEntry *default_entry = NULL;

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
PG_FUNCTION_INFO_V1(idalloc_registry_insert);
PG_FUNCTION_INFO_V1(idalloc_registry_guard);

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

static LocalEntry *
local_entry(const char *name)
{
	LocalEntry *entry;
	bool		found;

	if (local_map == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(LocalEntry);
		local_map = hash_create("idalloc allocators", 16, &ctl,
								HASH_ELEM | HASH_STRINGS);
	}
	entry = hash_search(local_map, name, HASH_ENTER, &found);
	if (!found)
	{
		entry->ref.slot = NULL;
		entry->cache_hint = -1;
	}
	return entry;
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

	if (!use_memo)
	{
		name_from_text(t, buf);
		return local_entry(buf);
	}
	if (memo != NULL && memo->len == len &&
		memcmp(memo->name, VARDATA_ANY(t), len) == 0)
		return memo->entry;

	name_from_text(t, buf);
	if (memo == NULL)
	{
		memo = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(NameMemo));
		fcinfo->flinfo->fn_extra = memo;
	}
	memo->entry = local_entry(buf);
	memo->len = len;
	memcpy(memo->name, buf, len);
	return memo->entry;
}

static LocalEntry *
entry_for_default(void)
{
	if (default_entry == NULL)
		default_entry = local_entry("default");
	return default_entry;
}

static void
report_missing(const char *name)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("allocator \"%s\" does not exist", name)));
}

/*
 * Attach the slot of a row.  `created` says the row was inserted by this
 * transaction: if it rolls back, the slot is let go again.
 */
static void
attach_row(const char *name, const IdallocRow *row, bool created,
		   IdallocRef *ref)
{
	if (!idalloc_attach(MyDatabaseId, row->id, row, ref))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("too many idalloc allocators in use"),
				 errdetail("All %d slots of idalloc.max_allocators are taken.",
						   idalloc_max_allocators),
				 errhint("Drop unused allocators or raise idalloc.max_allocators.")));
	if (created)
		idalloc_remember_create(row->id);
}

/* Point entry at the slot of its allocator: catalog lookup, attach. */
static void
resolve(LocalEntry *entry)
{
	IdallocRow	row;

	if (!idalloc_row_by_name(entry->name, &row))
		report_missing(entry->name);
	attach_row(entry->name, &row, false, &entry->ref);
}

/* ---------- allocation ---------- */

/*
 * Take `count` contiguous IDs from the global counter; returns the first.
 * `counted`: they go to the caller (not into a cache), count them.
 * Returns false if the slot went stale (entry->ref.slot is then NULL).
 */
static bool
take_global(LocalEntry *entry, int64 count, bool counted, int64 *first)
{
	for (;;)
	{
		switch (idalloc_take_fast(&entry->ref, count, first))
		{
			case IDALLOC_TAKEN:
				if (counted)
					pg_atomic_fetch_add_u64(&entry->ref.slot->allocated,
											(uint64) count);
				return true;
			case IDALLOC_STALE:
				entry->ref.slot = NULL;
				return false;
			case IDALLOC_RETRY:
				break;
		}
		if (idalloc_take_slow(&entry->ref, count, PG_INT64_MIN, first) ==
			IDALLOC_STALE)
		{
			entry->ref.slot = NULL;
			return false;
		}
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Refill this backend's cache of the allocator with `cache` IDs from the
 * global counter.  Only called when the cache holds nothing that can be
 * served, so no remainder is thrown away.
 */
static bool
refill_cache(LocalEntry *entry, uint32 cache)
{
	/* read the epoch before taking: an advance in between voids the range */
	uint32		epoch = pg_atomic_read_u32(&entry->ref.slot->cache_epoch);
	int64		first;

	if (!take_global(entry, cache, false, &first))
		return false;
	entry->cache_hint = idalloc_cache_install(&entry->ref, entry->cache_hint,
											  epoch, first, first + cache);
	return true;
}

/*
 * Take `count` contiguous IDs; returns the first.  An allocator with
 * cache > 1 serves from this backend's cached range; a request the range
 * cannot serve (a batch larger than its rest) comes straight from the
 * global counter and leaves the cache alone.
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
			resolve(entry);
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
						(void) refill_cache(entry, cache);
						continue;
					}
					break;
				case IDALLOC_CACHE_TOO_SMALL:
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
	entry = entry_for_arg(fcinfo, 0, true);
	check_writable("idalloc_one()");
	PG_RETURN_INT64(allocate(entry, 1));
}

/* One row (start_id, end_id) of a batch, as a set-returning function. */
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

		check_positive(count, "count");
		check_writable("idalloc_batch()");
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
	return batch_result(fcinfo, entry_for_default(), PG_GETARG_INT64(0));
}

Datum
idalloc_batch(PG_FUNCTION_ARGS)
{
	idalloc_check_loaded();
	if (!SRF_IS_FIRSTCALL())
		return batch_result(fcinfo, NULL, 0);
	return batch_result(fcinfo, entry_for_arg(fcinfo, 0, false),
						PG_GETARG_INT64(1));
}

/* ---------- management ---------- */

Datum
idalloc_create(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	int64		start;
	int64		block;
	int32		cache;
	char	   *kind;
	int64		id;
	IdallocRow	row;
	LocalEntry *entry;

	idalloc_check_loaded();
	check_not_null(fcinfo, 0, "allocator");
	check_not_null(fcinfo, 1, "start");
	check_not_null(fcinfo, 3, "cache");
	check_not_null(fcinfo, 4, "kind");
	name_from_text(PG_GETARG_TEXT_PP(0), name);
	start = PG_GETARG_INT64(1);
	block = PG_ARGISNULL(2) ? IDALLOC_DEFAULT_BLOCK : PG_GETARG_INT64(2);
	cache = PG_GETARG_INT32(3);
	kind = text_to_cstring(PG_GETARG_TEXT_PP(4));
	check_positive(block, "block");
	check_positive(cache, "cache");
	if (strcmp(kind, "tso") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("allocator kind \"tso\" is not supported yet")));
	if (strcmp(kind, "counter") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown allocator kind \"%s\"", kind),
				 errhint("The supported kind is \"counter\".")));
	if (!PG_ARGISNULL(5))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("allocator sources are not supported yet")));
	check_writable("idalloc_create()");

	id = idalloc_row_insert(name, start, block, cache, kind);
	if (id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("allocator \"%s\" already exists", name)));

	/* take a slot now: the limit is checked at create, as promised */
	row.id = id;
	row.start = start;
	row.block = block;
	row.persisted_end = start;
	row.cache = cache;
	entry = local_entry(name);
	attach_row(name, &row, true, &entry->ref);
	PG_RETURN_VOID();
}

Datum
idalloc_drop(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	int64		id;

	idalloc_check_loaded();
	check_not_null(fcinfo, 0, "allocator");
	name_from_text(PG_GETARG_TEXT_PP(0), name);
	check_writable("idalloc_drop()");

	id = idalloc_row_delete(name);
	if (id == 0)
		report_missing(name);
	idalloc_remember_drop(id);
	/* this backend looks it up again (and no longer finds it) */
	local_entry(name)->ref.slot = NULL;
	PG_RETURN_VOID();
}

Datum
idalloc_alter(PG_FUNCTION_ARGS)
{
	char		name[NAMEDATALEN];
	int64		block = -1;
	int32		cache = -1;
	IdallocRow	row;

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
	check_writable("idalloc_alter()");
	if (!idalloc_row_by_name(name, &row))
		report_missing(name);
	idalloc_persist_sizes(row.id, block, cache);
	if (cache > 0)
		idalloc_set_cache_size(MyDatabaseId, row.id, cache);
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
		if (idalloc_take_slow(&entry->ref, 0, floor, &next) == IDALLOC_TAKEN)
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
	PG_RETURN_INT64(advance_to(local_entry(name), PG_GETARG_INT64(1)));
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

/* per-allocator sums over the cache entries, for idalloc_allocator_state */
typedef struct CacheSums
{
	IdallocSlot *slot;
	int64		handed;			/* IDs handed out from cached ranges */
	int64		live_ranges;	/* ranges that can still be served */
} CacheSums;

static void
sum_cache_entry(void *arg, int pid, int64 id, IdallocSlot *slot, int64 next,
				int64 end, int64 start, bool live)
{
	CacheSums  *sums = (CacheSums *) arg;

	if (slot != sums->slot)
		return;
	sums->handed += next - start;
	if (live)
		sums->live_ranges++;
}

/* Live state of this database's attached slots, for idalloc_allocators. */
Datum
idalloc_allocator_state(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	idalloc_check_loaded();
	InitMaterializedSRF(fcinfo, 0);

	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	for (int i = 0; i < idalloc_shared->nslots; i++)
	{
		IdallocSlot *slot = &idalloc_slots[i];
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		CacheSums	sums = {slot, 0, 0};

		if (pg_atomic_read_u64(&slot->generation) == 0 ||
			slot->dboid != MyDatabaseId)
			continue;
		idalloc_cache_foreach(MyDatabaseId, sum_cache_entry, &sums);
		values[0] = Int64GetDatum(slot->id);
		values[1] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->next));
		values[2] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->end));
		values[3] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->allocated) +
								  sums.handed);
		values[4] = Int64GetDatum((int64) slot->block_advances);
		values[5] = Int64GetDatum(sums.live_ranges);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(idalloc_shared->lock);
	return (Datum) 0;
}

static void
put_cache_entry(void *arg, int pid, int64 id, IdallocSlot *slot, int64 next,
				int64 end, int64 start, bool live)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) arg;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (!live)
		return;
	values[0] = Int32GetDatum(pid);
	values[1] = Int64GetDatum(id);
	values[2] = Int64GetDatum(next);
	values[3] = Int64GetDatum(end);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* Every backend's cached range in this database, for idalloc_caches. */
Datum
idalloc_cache_state(PG_FUNCTION_ARGS)
{
	idalloc_check_loaded();
	InitMaterializedSRF(fcinfo, 0);
	idalloc_cache_foreach(MyDatabaseId, put_cache_entry, fcinfo->resultinfo);
	return (Datum) 0;
}

/* ---------- the catalog table's triggers ---------- */

static int64
tuple_int8(HeapTuple tup, TupleDesc desc, int attnum, int64 if_null)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, desc, &isnull);

	return isnull ? if_null : DatumGetInt64(d);
}

static void
refuse_direct_write(Relation rel)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("table \"%s\" can only be changed through idalloc's functions",
					RelationGetRelationName(rel)),
			 errhint("Use idalloc_create(), idalloc_drop(), idalloc_alter() or idalloc_advance().")));
}

/*
 * Merge a restored row into the existing allocator of the same name: take
 * the dumped block and cache, then advance past the dumped persisted end
 * (in that order, so that the advance uses the dumped block).
 */
static void
merge_restored_row(const char *name, const IdallocRow *existing,
				   HeapTuple tup, TupleDesc desc, int64 dumped_end)
{
	bool		isnull;
	Datum		cache = heap_getattr(tup, Anum_registry_cache, desc, &isnull);

	check_writable("idalloc restore");
	idalloc_persist_sizes(existing->id,
						  tuple_int8(tup, desc, Anum_registry_block, -1),
						  isnull ? -1 : DatumGetInt32(cache));
	if (!isnull)
		idalloc_set_cache_size(MyDatabaseId, existing->id, DatumGetInt32(cache));
	(void) advance_to(local_entry(name), dumped_end);
}

/*
 * BEFORE INSERT row trigger on the catalog table.  Rows inserted by the
 * extension itself (idalloc_create, the install script) pass.  So do rows
 * of a COPY FROM into the table: the data section of a pg_dump being
 * restored (pg_restore, or psql running a plain dump).  Any other INSERT is
 * refused (42501).  Of a restore, a row whose name already exists (the
 * `default` that CREATE EXTENSION made) is merged into it instead: the
 * allocator takes the dumped block and cache and is advanced past the
 * dumped persisted end, and the row is skipped.  A row of a new name is
 * inserted as dumped.
 *
 * A row inserted in a transaction that rolls back must not leave its slot
 * attached, so its id is remembered (see idalloc.c).
 */
Datum
idalloc_registry_insert(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		name_datum;
	IdallocRow	existing;

	if (!CALLED_AS_TRIGGER(fcinfo) ||
		!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		elog(ERROR, "idalloc_registry_insert: not called as a BEFORE INSERT row trigger");
	idalloc_check_loaded();

	tup = trigdata->tg_trigtuple;
	desc = RelationGetDescr(trigdata->tg_relation);
	if (idalloc_internal_write)
		return PointerGetDatum(tup);	/* idalloc_create remembers it */
	if (!creating_extension && !idalloc_copy_in)
		refuse_direct_write(trigdata->tg_relation);

	if (!creating_extension)
	{
		bool		end_isnull;
		Datum		end_datum;

		name_datum = heap_getattr(tup, Anum_registry_name, desc, &isnull);
		end_datum = heap_getattr(tup, Anum_registry_persisted_end, desc,
								 &end_isnull);
		if (!isnull && !end_isnull &&
			idalloc_row_by_name(TextDatumGetCString(name_datum), &existing))
		{
			merge_restored_row(TextDatumGetCString(name_datum), &existing,
							   tup, desc, DatumGetInt64(end_datum));
			return PointerGetDatum(NULL);
		}
	}

	/* a new row; NOT NULL and CHECK constraints judge the rest */
	idalloc_remember_create(tuple_int8(tup, desc, Anum_registry_id, 0));
	return PointerGetDatum(tup);
}

/*
 * BEFORE UPDATE OR DELETE row trigger and BEFORE TRUNCATE statement
 * trigger on the catalog table: only the extension's own functions change
 * it.  A transactional UPDATE in particular could overwrite an in-place
 * advance with an older persisted end, and IDs would repeat.
 */
Datum
idalloc_registry_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event))
		elog(ERROR, "idalloc_registry_guard: not called as a BEFORE trigger");
	if (!idalloc_internal_write && !creating_extension)
		refuse_direct_write(trigdata->tg_relation);
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(trigdata->tg_trigtuple);
}
