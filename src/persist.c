/*-------------------------------------------------------------------------
 *
 * persist.c
 *		The catalog table (idalloc_registry) and the persisted block.
 *
 * One row per allocator.  Rows are inserted (idalloc_create) and deleted
 * (idalloc_drop) transactionally, through SPI.  persisted_end, block and
 * cache are fixed-width columns, changed in two ways:
 *
 *	- in place (systable_inplace_update_begin/finish, a non-transactional,
 *	  WAL-logged overwrite of the tuple) by a caller that persists a block
 *	  itself, idalloc_advance, idalloc_alter and merges of restored or
 *	  replicated rows;
 *	- by the persister, as a transactional UPDATE (heap_update, no trigger
 *	  fires) committed before the block is published, which logical
 *	  decoding carries to subscribers (idalloc_persist_block_tx).
 *
 * An in-place write is lost if an UPDATE that copied the tuple before it
 * commits after it (DESIGN-NOTES, "lost in-place updates").  That cannot
 * happen here: every writer of an allocator's row holds the allocator's
 * advance lock (shmem.c) from its read of the row to its commit or
 * in-place write, except the raise after a rewrite of the table, which
 * holds an AccessExclusiveLock on it (idalloc_persist_after_rewrite).
 * Users cannot UPDATE the table (its guard trigger).  Concurrent in-place
 * writers of one row also serialise on the buffer lock that
 * systable_inplace_update_begin takes, and each computes its write from
 * the tuple it finds under that lock.
 *
 * A block is handed out only after its WAL record is flushed
 * (XLogFlush), and, with idalloc.wait_for_sync_standby, acknowledged by
 * the synchronous standbys (SyncRepWaitForLSN), whatever the session's
 * synchronous_commit says about its own commits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation_d.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type_d.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "replication/syncrep.h"
#include "storage/lock.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#include "idalloc.h"

static void
row_from_tuple(Relation rel, HeapTuple tup, IdallocRow *row)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool		isnull;

	row->id = DatumGetInt64(heap_getattr(tup, Anum_registry_id, desc, &isnull));
	Assert(!isnull);
	row->start = DatumGetInt64(heap_getattr(tup, Anum_registry_start, desc, &isnull));
	Assert(!isnull);
	row->block = DatumGetInt64(heap_getattr(tup, Anum_registry_block, desc, &isnull));
	Assert(!isnull);
	row->persisted_end = DatumGetInt64(heap_getattr(tup, Anum_registry_persisted_end,
													desc, &isnull));
	Assert(!isnull);
	row->cache = DatumGetInt32(heap_getattr(tup, Anum_registry_cache, desc, &isnull));
	Assert(!isnull);
	{
		Datum		kind = heap_getattr(tup, Anum_registry_kind, desc, &isnull);

		row->tso = !isnull && strcmp(TextDatumGetCString(kind), "tso") == 0;
	}
	(void) heap_getattr(tup, Anum_registry_source, desc, &isnull);
	row->sourced = !isnull;
}

/*
 * Look a row up by registry id, as idalloc_row_by_name does; *name gets
 * the allocator's name (palloc'd).
 */
bool
idalloc_row_by_id(int64 id, IdallocRow *row, char **name)
{
	IdallocRegistry reg;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	rel = idalloc_registry_open(AccessShareLock, &reg);
	ScanKeyInit(&key, Anum_registry_id, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(id));
	scan = systable_beginscan(rel,
							  idalloc_registry_index(&reg, IDALLOC_REGISTRY_PKEY),
							  true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;

		row_from_tuple(rel, tup, row);
		*name = TextDatumGetCString(heap_getattr(tup, Anum_registry_name,
												 RelationGetDescr(rel), &isnull));
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Look a row up by name, with a fresh snapshot (as catalog lookups do), so
 * that creates and drops committed by others are seen at once, and this
 * transaction's own are seen too.  Fills *reg.
 */
bool
idalloc_row_by_name(const char *name, IdallocRow *row, IdallocRegistry *reg)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	rel = idalloc_registry_open(AccessShareLock, reg);
	ScanKeyEntryInitialize(&key, 0, Anum_registry_name, BTEqualStrategyNumber,
						   InvalidOid, C_COLLATION_OID, F_TEXTEQ,
						   CStringGetTextDatum(name));
	scan = systable_beginscan(rel,
							  idalloc_registry_index(reg, IDALLOC_REGISTRY_NAMEIDX),
							  true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		row_from_tuple(rel, tup, row);
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Run one SPI statement on the registry as the extension's own write: as
 * the extension's owner (so that a role granted EXECUTE on a management
 * function needs no privilege on the table), in a restricted security
 * context, with fully qualified names and operators (no search_path
 * lookups).
 */
static int64
registry_spi(const char *sql_fmt, int nargs, Oid *argtypes, Datum *values,
			 const char *nulls, IdallocRegistry *reg)
{
	char	   *sql;
	int			ret;
	Oid			save_userid;
	int			save_sec_context;
	volatile int64 id = 0;
	bool		save_internal;
	int			save_depth;

	(void) idalloc_registry_find(reg, false);
	sql = psprintf(sql_fmt, quote_identifier(get_namespace_name(reg->nsp)));

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(reg->owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_internal = idalloc_internal_write;
	save_depth = idalloc_internal_depth;
	SPI_connect();
	idalloc_internal_write = true;
	/* only the rows of this statement, not writes of triggers it fires */
	idalloc_internal_depth = idalloc_trigger_depth();
	PG_TRY();
	{
		ret = SPI_execute_with_args(sql, nargs, argtypes, values, nulls,
									false, 0);
		if (ret != SPI_OK_INSERT_RETURNING && ret != SPI_OK_DELETE_RETURNING &&
			ret != SPI_OK_UPDATE_RETURNING)
			elog(ERROR, "SPI_execute_with_args failed: %s",
				 SPI_result_code_string(ret));
		if (SPI_processed > 0)
		{
			bool		isnull;

			id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											 SPI_tuptable->tupdesc, 1, &isnull));
			Assert(!isnull && id > 0);
		}
	}
	PG_FINALLY();
	{
		/* (a trigger of the statement may have called idalloc itself) */
		idalloc_internal_write = save_internal;
		idalloc_internal_depth = save_depth;
	}
	PG_END_TRY();
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return id;
}

/*
 * Insert a row.  Returns its id, or 0 if an allocator of that name exists
 * (committed, or committed by a concurrent creator we waited for).
 */
int64
idalloc_row_insert(const char *name, int64 start, int64 block, int32 cache,
				   const char *kind, const char *source,
				   IdallocRegistry *reg)
{
	Oid			argtypes[6] = {TEXTOID, INT8OID, INT8OID, INT4OID, TEXTOID,
	TEXTOID};
	Datum		values[6];
	char		nulls[7] = "      ";

	values[0] = CStringGetTextDatum(name);
	values[1] = Int64GetDatum(start);
	values[2] = Int64GetDatum(block);
	values[3] = Int32GetDatum(cache);
	values[4] = CStringGetTextDatum(kind);
	values[5] = source != NULL ? CStringGetTextDatum(source) : (Datum) 0;
	if (source == NULL)
		nulls[5] = 'n';
	return registry_spi("INSERT INTO %s." IDALLOC_REGISTRY_TABLE
						" (name, start, block, persisted_end, cache, kind, source)"
						" VALUES ($1, $2, $3, $2, $4, $5, $6)"
						" ON CONFLICT (name) DO NOTHING RETURNING id",
						6, argtypes, values, nulls, reg);
}

/*
 * Set the source column of row `id` (what is shown of its conninfo);
 * transactional.
 */
void
idalloc_row_set_source(int64 id, const char *source, IdallocRegistry *reg)
{
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(source);
	(void) registry_spi("UPDATE %s." IDALLOC_REGISTRY_TABLE
						" SET source = $2 WHERE id OPERATOR(pg_catalog.=) $1"
						" RETURNING id",
						2, argtypes, values, NULL, reg);
}

/* Delete a row by name.  Returns its id, or 0 if there is none. */
int64
idalloc_row_delete(const char *name, IdallocRegistry *reg)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		values[1];

	values[0] = CStringGetTextDatum(name);
	return registry_spi("DELETE FROM %s." IDALLOC_REGISTRY_TABLE
						" WHERE name OPERATOR(pg_catalog.=) $1 RETURNING id",
						1, argtypes, values, NULL, reg);
}

/*
 * Start an in-place update of row `id` of installation extoid: the
 * returned tuple copy is current and the buffer stays exclusively locked
 * until inplace_finish/cancel.  The caller must not throw an error in
 * between without cancelling.  Returns NULL (nothing locked) if the
 * extension is now another installation.
 */
static HeapTuple
inplace_begin(Relation *relp, Oid extoid, int64 id, void **state,
			  bool at_commit)
{
	IdallocRegistry reg;
	Relation	rel;
	ScanKeyData key;
	HeapTuple	tup;

	rel = idalloc_registry_open(RowExclusiveLock, &reg);

	/*
	 * Row `id` of another installation of the extension (dropped and
	 * created again since the caller looked the allocator up) is another
	 * allocator: never write it.
	 */
	if (reg.extoid != extoid)
	{
		table_close(rel, RowExclusiveLock);
		return NULL;
	}

	/*
	 * If this transaction gave the table new storage (ALTER TABLE rewrite,
	 * TRUNCATE) and then rolls back, an in-place write into the new storage
	 * would be lost with it, and IDs handed out from it would repeat.
	 * (Other sessions cannot get here meanwhile: the rewrite holds an
	 * AccessExclusiveLock.)  A table created by this transaction (CREATE
	 * EXTENSION) is fine: a rollback takes the allocators with it.  So is
	 * a write made as the transaction commits (at_commit): the old storage
	 * holds every earlier write, should the commit still fail.
	 */
	if (!at_commit &&
		idalloc_rel_storage_new_in_xact(rel) &&
		rel->rd_createSubid == InvalidSubTransactionId)
	{
		table_close(rel, RowExclusiveLock);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot persist an idalloc block in the transaction that rewrote table \"%s\"",
						IDALLOC_REGISTRY_TABLE),
				 errhint("Allocate after that transaction ends.")));
	}

	ScanKeyInit(&key, Anum_registry_id, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(id));
	systable_inplace_update_begin(rel,
								  idalloc_registry_index(&reg, IDALLOC_REGISTRY_PKEY),
								  true, NULL, 1, &key, &tup, state);
	if (!HeapTupleIsValid(tup))
	{
		table_close(rel, RowExclusiveLock);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("allocator was dropped concurrently")));
	}
	*relp = rel;
	return tup;
}

/* as syncrep.c's SyncStandbysDefined() */
#define SyncStandbysDefined() \
	(SyncRepStandbyNames != NULL && SyncRepStandbyNames[0] != '\0')

/*
 * Is `lsn` as acknowledged as SyncRepWaitForLSN would require for a commit
 * at remote flush?  Mirrors the checks SyncRepWaitForLSN makes before it
 * queues (PostgreSQL 15.20): once the checkpointer has initialised the
 * shared state (SYNC_STANDBY_INIT), only SYNC_STANDBY_DEFINED and the
 * standbys' flush position count; before that (the start-up window), the
 * backend's own synchronous_standby_names decides.  Caller holds
 * SyncRepLock.
 */
static bool
sync_standbys_satisfied(XLogRecPtr lsn)
{
	bits8		status = WalSndCtl->sync_standbys_status;

	if (status & SYNC_STANDBY_INIT)
		return (status & SYNC_STANDBY_DEFINED) == 0 ||
			lsn <= WalSndCtl->lsn[SYNC_REP_WAIT_FLUSH];
	return !SyncStandbysDefined() ||
		lsn <= WalSndCtl->lsn[SYNC_REP_WAIT_FLUSH];
}

/*
 * Wait until the synchronous standbys have flushed `lsn`, whatever this
 * session's synchronous_commit says (it governs commits, not blocks).
 * SyncRepWaitForLSN decides whether to wait (it knows the start-up window);
 * afterwards the same conditions are checked again, because a cancelled
 * wait only warns in SyncRepWaitForLSN: here it is an error, so that no ID
 * of an unacknowledged block is handed out.
 */
static void
wait_for_sync_standbys(XLogRecPtr lsn)
{
	int			nestlevel;
	bool		acked;

	if (!idalloc_wait_for_sync_standby || max_wal_senders == 0)
		return;

	nestlevel = NewGUCNestLevel();
	if (synchronous_commit < SYNCHRONOUS_COMMIT_REMOTE_FLUSH)
		(void) set_config_option("synchronous_commit", "on", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
								 false);
	/*
	 * SyncRepWaitForLSN wants interrupts held, as a commit has them (it
	 * asserts so); it looks at a cancel or a termination itself, and stops
	 * waiting with a WARNING, which the check below turns into an error.
	 */
	HOLD_INTERRUPTS();
	SyncRepWaitForLSN(lsn, false);
	RESUME_INTERRUPTS();
	AtEOXact_GUC(true, nestlevel);

	LWLockAcquire(SyncRepLock, LW_SHARED);
	acked = sync_standbys_satisfied(lsn);
	LWLockRelease(SyncRepLock);
	if (!acked)
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("canceled waiting for the synchronous standbys to acknowledge an idalloc block"),
				 errdetail("No ID of the block was handed out.")));
}

/*
 * Offset within the tuple's data of fixed-width attribute attnum, or -1 if
 * the tuple is not laid out as idalloc's table was created (a column
 * before it null or of variable width).  The columns that are written in
 * place (block, persisted_end, cache) come after id and start, all NOT
 * NULL and fixed-width, so their offsets do not depend on the row.
 */
static int
fixed_offset(TupleDesc desc, HeapTuple tup, int attnum)
{
	int			off = 0;

	if (attnum > HeapTupleHeaderGetNatts(tup->t_data))
		return -1;
	for (int i = 0; i < attnum; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attlen <= 0 || att->attisdropped ||
			(HeapTupleHasNulls(tup) && att_isnull(i, tup->t_data->t_bits)))
			return -1;
		off = att_align_nominal(off, att->attalign);
		if (i < attnum - 1)
			off += att->attlen;
	}
	return off;
}

/*
 * Overwrite the given fixed-width columns in a copy of the tuple, at their
 * offsets (so the length stays the same whatever columns were added to the
 * table since the row was written), finish the in-place update, flush its
 * WAL record and wait for the synchronous standbys.
 */
/*
 * Overwrite fixed-width attribute attnum of tuple tup (a copy) with val, at
 * its offset.  False if the tuple is not laid out as idalloc wrote it.
 */
static bool
write_fixed(TupleDesc desc, HeapTuple tup, int attnum, Datum val)
{
	Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
	char	   *data = (char *) tup->t_data + tup->t_data->t_hoff;
	int			off = fixed_offset(desc, tup, attnum);

	if (off < 0 || (att->attlen != sizeof(int64) && att->attlen != sizeof(int32)))
		return false;
	if (att->attlen == sizeof(int64))
		*(int64 *) (data + off) = DatumGetInt64(val);
	else
		*(int32 *) (data + off) = DatumGetInt32(val);
	return true;
}

static void
report_altered(TupleDesc desc, int attnum)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("table \"%s\" of extension \"idalloc\" was altered",
					IDALLOC_REGISTRY_TABLE),
			 errdetail("Column \"%s\" is not where idalloc writes it.",
					   NameStr(TupleDescAttr(desc, attnum - 1)->attname))));
}

static void
inplace_finish_durably(Relation rel, HeapTuple oldtup, void *state,
					   int natts, const int *attnums, const Datum *newvals,
					   Oid extoid, int64 id)
{
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	newtup = heap_copytuple(oldtup);
	XLogRecPtr	lsn;

	for (int i = 0; i < natts; i++)
	{
		if (!write_fixed(desc, newtup, attnums[i], newvals[i]))
		{
			systable_inplace_update_cancel(state);
			table_close(rel, RowExclusiveLock);
			report_altered(desc, attnums[i]);
		}
	}
	Assert(newtup->t_len == oldtup->t_len);

	systable_inplace_update_finish(state, newtup);
	lsn = XactLastRecEnd;
	XLogFlush(lsn);
	wait_for_sync_standbys(lsn);

	/* a rewrite of the table by another session must not lose it */
	for (int i = 0; i < natts; i++)
		if (attnums[i] == Anum_registry_persisted_end)
			idalloc_note_row_end(MyDatabaseId, extoid, id,
								 DatumGetInt64(newvals[i]));

	heap_freetuple(newtup);
	heap_freetuple(oldtup);

	/*
	 * The write is not transactional, so nothing needs the lock until the
	 * end of the transaction; let it go, so that a PREPAREd transaction
	 * that allocated does not hold up DDL on the table.  (A lock this
	 * transaction took before, e.g. by inserting a row, stays.)
	 */
	table_close(rel, RowExclusiveLock);
}

static void
report_reinstalled(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("extension \"idalloc\" was dropped and created again concurrently"),
			 errhint("Retry the command.")));
}

static inline int64
max64(int64 a, int64 b)
{
	return a > b ? a : b;
}

/*
 * Persist a new block of allocator `id`, given the slot's next and end
 * as the caller saw them (caller holds the allocator's advance lock, so no
 * other backend of this cluster persists for it meanwhile).
 *
 * count > 0: the block must hold [next, next + count) where next is the
 * slot's next, raised to the row's persisted end if the slot's end is
 * behind the row (a slot attached from a stale read).  The new end is
 * *step_io past the persisted end (bounded by the row's block and
 * idalloc.max_block; the step used is returned in *step_io); a count above
 * the step advances by the count plus a step, once.  count == 0: every
 * later ID must be >= floor.
 *
 * Returns true with the new end in *new_end_p; *next_floor is what the
 * slot's next must be raised to before the new end is published.  Raises
 * 2200H (nothing written) when the IDs would pass 9223372036854775807;
 * `name` is for that message.  Returns false (nothing written) if the
 * extension is no longer installation extoid: the caller's slot is stale.
 */
bool
idalloc_persist_block(Oid extoid, int64 id, const char *name, int64 cur_next,
					  int64 cur_end, int64 count, int64 floor, int64 *step_io,
					  int64 *new_end_p, int64 *next_floor)
{
	int64		step;
	Relation	rel;
	void	   *state;
	HeapTuple	oldtup;
	IdallocRow	row;
	int64		lo;
	int64		eff_next;
	int64		base;
	int64		need;
	int64		new_end;
	int			attnum = Anum_registry_persisted_end;
	Datum		newval;

	oldtup = inplace_begin(&rel, extoid, id, &state, false);
	if (oldtup == NULL)
		return false;
	row_from_tuple(rel, oldtup, &row);
	Assert(row.block > 0);

	/*
	 * The row's persisted end is normally the slot's end.  If it is beyond,
	 * the slot was attached from a stale read of the row (or another
	 * attachment advanced meanwhile): IDs below the row's persisted end may
	 * have been handed out, so next jumps there.
	 */
	lo = row.persisted_end > cur_end ? max64(row.persisted_end, floor) : floor;
	eff_next = max64(cur_next, lo);
	/* next can be past end: ranges reserved on the fast path (idalloc.h) */
	base = max64(max64(max64(row.persisted_end, cur_end), floor), eff_next);
	/* a tso window runs ahead of the clock (tso.c) */
	if (row.tso)
		base = max64(base, idalloc_tso_now());

	if (pg_add_s64_overflow(eff_next, count, &need))
	{
		systable_inplace_update_cancel(state);
		table_close(rel, RowExclusiveLock);
		ereport(ERROR,
				(errcode(ERRCODE_SEQUENCE_GENERATOR_LIMIT_EXCEEDED),
				 errmsg("allocator \"%s\" reached its maximum value", name),
				 errdetail("The next ID is " INT64_FORMAT "; a range of "
						   INT64_FORMAT " would end past " INT64_FORMAT ".",
						   eff_next, count, IDALLOC_MAX_END)));
	}

	/*
	 * The step: what the caller asks for (grown or shrunk, G7), never below
	 * the row's block nor above idalloc.max_block, unless that is below the
	 * block, which then stays fixed.
	 */
	if (idalloc_max_block <= row.block)
		step = row.block;
	else
		step = Min(Max(*step_io, row.block), (int64) idalloc_max_block);
	*step_io = step;

	/* a batch larger than the step persists itself plus a step, once */
	if (count > step)
	{
		if (pg_add_s64_overflow(need, step, &new_end))
			new_end = IDALLOC_MAX_END;
	}
	else if (pg_add_s64_overflow(base, step, &new_end))
		new_end = IDALLOC_MAX_END;
	Assert(new_end >= need && new_end >= lo);

	newval = Int64GetDatum(new_end);
	inplace_finish_durably(rel, oldtup, state, 1, &attnum, &newval, extoid, id);

	*next_floor = lo;
	*new_end_p = new_end;
	return true;
}

/*
 * CatalogTupleUpdate maintains plain indexes only (no expressions, no
 * predicate: it has no executor state to evaluate them).  idalloc's table
 * has just its own; an index someone added (CREATE INDEX on the table is
 * refused since 1.1, triggers.c, but one may predate that) makes the
 * persister fail its writes, and callers persist blocks in place.
 */
static void
check_plain_indexes(Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
		bool		plain = RelationGetIndexExpressions(index) == NIL &&
			RelationGetIndexPredicate(index) == NIL;

		index_close(index, AccessShareLock);
		if (!plain)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table \"%s\" of extension \"idalloc\" has an index with expressions or a predicate",
							IDALLOC_REGISTRY_TABLE),
					 errdetail("The persister cannot update its rows; callers persist blocks themselves."),
					 errhint("Drop that index.")));
	}
	list_free(indexes);
}

/*
 * The persister's block advance: as idalloc_persist_block with count 0 and
 * no floor, but written as a transactional UPDATE of the row (heap_update,
 * no trigger fires) instead of in place.  Logical decoding carries it, in
 * commit order, to a subscriber of the table, whose apply raises its own
 * allocator (triggers.c): so once a subscriber has applied any transaction
 * that committed after an ID was handed out from this block, it continues
 * above that ID (G1 across logical replication).  The caller commits
 * (which flushes the commit record and waits for the synchronous
 * standbys), checks idalloc_lsn_acked, and only then publishes the new
 * end.  The lock on the table is kept until that commit.
 *
 * No in-place write of the row can be lost to this UPDATE: the caller
 * holds the allocator's advance lock, which every in-place writer of the
 * row holds too, except the one that raises the rows of a rewritten table,
 * and that one holds an AccessExclusiveLock, which this RowExclusiveLock
 * excludes until the commit.
 *
 * Returns false (nothing written) if the extension is no longer
 * installation extoid.
 */
bool
idalloc_persist_block_tx(Oid extoid, int64 id, int64 cur_next, int64 cur_end,
						 int64 *step_io, int64 *new_end_p, int64 *next_floor)
{
	IdallocRegistry reg;
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	HeapTuple	newtup;
	IdallocRow	row;
	int64		step;
	int64		lo;
	int64		base;
	int64		new_end;

	rel = idalloc_registry_open(RowExclusiveLock, &reg);
	if (reg.extoid != extoid)
	{
		table_close(rel, RowExclusiveLock);
		return false;
	}
	check_plain_indexes(rel);
	ScanKeyInit(&key, Anum_registry_id, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(id));
	scan = systable_beginscan(rel,
							  idalloc_registry_index(&reg, IDALLOC_REGISTRY_PKEY),
							  true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("allocator was dropped concurrently")));
	newtup = heap_copytuple(tup);
	systable_endscan(scan);
	row_from_tuple(rel, newtup, &row);
	Assert(row.block > 0);

	/* as idalloc_persist_block, count 0 */
	lo = row.persisted_end > cur_end ? row.persisted_end : PG_INT64_MIN;
	base = max64(max64(row.persisted_end, cur_end), cur_next);
	/* a tso window runs ahead of the clock (tso.c) */
	if (row.tso)
		base = max64(base, idalloc_tso_now());
	if (idalloc_max_block <= row.block)
		step = row.block;
	else
		step = Min(Max(*step_io, row.block), (int64) idalloc_max_block);
	*step_io = step;
	if (pg_add_s64_overflow(base, step, &new_end))
		new_end = IDALLOC_MAX_END;

	if (!write_fixed(RelationGetDescr(rel), newtup,
					 Anum_registry_persisted_end, Int64GetDatum(new_end)))
		report_altered(RelationGetDescr(rel), Anum_registry_persisted_end);
	/* fails if the row was deleted or updated meanwhile (a drop) */
	CatalogTupleUpdate(rel, &newtup->t_self, newtup);
	idalloc_note_row_end(MyDatabaseId, extoid, id, new_end);
	heap_freetuple(newtup);
	table_close(rel, NoLock);

	*next_floor = lo;
	*new_end_p = new_end;
	return true;
}

/*
 * Has `lsn` been acknowledged as a block must be before its IDs are handed
 * out (idalloc.wait_for_sync_standby)?  For the persister, after its
 * commit waited (or was cancelled waiting) for the synchronous standbys.
 */
bool
idalloc_lsn_acked(XLogRecPtr lsn)
{
	bool		acked;

	if (!idalloc_wait_for_sync_standby || max_wal_senders == 0)
		return true;
	LWLockAcquire(SyncRepLock, LW_SHARED);
	acked = sync_standbys_satisfied(lsn);
	LWLockRelease(SyncRepLock);
	return acked;
}

/*
 * Overwrite block and/or cache of row `id` in place (a negative value keeps
 * the current one).  Not transactional, like the block advance.
 */
void
idalloc_persist_sizes(Oid extoid, int64 id, int64 block, int32 cache)
{
	Relation	rel;
	void	   *state;
	HeapTuple	oldtup;
	int			attnums[2];
	Datum		newvals[2];
	int			n = 0;

	if (block > 0)
	{
		attnums[n] = Anum_registry_block;
		newvals[n++] = Int64GetDatum(block);
	}
	if (cache > 0)
	{
		attnums[n] = Anum_registry_cache;
		newvals[n++] = Int32GetDatum(cache);
	}
	if (n == 0)
		return;
	oldtup = inplace_begin(&rel, extoid, id, &state, false);
	if (oldtup == NULL)
		report_reinstalled();
	inplace_finish_durably(rel, oldtup, state, n, attnums, newvals, extoid, id);
}

/*
 * Make the persisted end of row `id` at least `floor` (in place, flushed,
 * acknowledged as a block advance is).  Returns the row's persisted end;
 * *before (if not NULL) is what it was before.  Used to merge a restored or
 * replicated row into an existing allocator, and for a sourced
 * allocator's mark.
 */
static int64
persist_raise(Oid extoid, int64 id, int64 floor, bool at_commit,
			  int64 *before)
{
	Relation	rel;
	void	   *state;
	HeapTuple	oldtup;
	IdallocRow	row;
	int			attnum = Anum_registry_persisted_end;
	Datum		newval;

	oldtup = inplace_begin(&rel, extoid, id, &state, at_commit);
	if (oldtup == NULL)
		report_reinstalled();
	row_from_tuple(rel, oldtup, &row);
	if (before != NULL)
		*before = row.persisted_end;
	if (row.persisted_end >= floor)
	{
		XLogRecPtr	lsn;

		systable_inplace_update_cancel(state);
		heap_freetuple(oldtup);
		table_close(rel, RowExclusiveLock);

		/*
		 * The caller publishes the row's end: it may come from a
		 * persister's commit whose wait for the synchronous standbys was
		 * cancelled (then it was never published).  Make sure it is
		 * flushed and acknowledged as a block must be.
		 */
		lsn = GetXLogInsertRecPtr();
		XLogFlush(lsn);
		wait_for_sync_standbys(lsn);
		return row.persisted_end;
	}
	newval = Int64GetDatum(floor);
	inplace_finish_durably(rel, oldtup, state, 1, &attnum, &newval, extoid, id);
	return floor;
}

int64
idalloc_persist_raise(Oid extoid, int64 id, int64 floor, int64 *before)
{
	return persist_raise(extoid, id, floor, false, before);
}

/*
 * Rewrites by another session (G1).  A session that gives idalloc's table
 * new storage while allocators run must not lose the in-place advances
 * made meanwhile.  PostgreSQL's own rewrites (VACUUM FULL, CLUSTER, ALTER
 * TABLE) copy the rows under an AccessExclusiveLock, which every in-place
 * writer's RowExclusiveLock conflicts with, so they copy the current
 * values.  pg_repack does not: it copies the rows under an older snapshot,
 * replays the changes its trigger logged (an in-place write fires no
 * trigger), and then, under an AccessExclusiveLock, swaps the files.  The
 * swapped-in rows can be behind what was handed out.
 *
 * So, as a transaction that holds an AccessExclusiveLock on idalloc's
 * table and invalidated it (changed its storage) commits, this raises
 * every row of the new storage to what this server has written or
 * published for the allocator (the slot's row_end and end, idalloc.h):
 * in place, flushed, before the commit record, so that the swap is never
 * durable without it.  Allocators without a slot had no block persisted
 * since start-up: the copy has their row as it is.  Relations other than
 * idalloc's table, and transactions without that lock, return at once.
 */
void
idalloc_persist_after_rewrite(Oid relid)
{
	IdallocRegistry reg;
	LOCKTAG		tag;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	int			n = 0;
	int			max = 16;
	int64	   *ids;
	int64	   *ends;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	if (!idalloc_lock_held_by_me(&tag, AccessExclusiveLock) ||
		!idalloc_is_registry(relid, &reg))
		return;

	ids = palloc(max * sizeof(int64));
	ends = palloc(max * sizeof(int64));
	rel = table_open(relid, NoLock);	/* locked: see above */
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		IdallocRow	row;
		int64		end;

		row_from_tuple(rel, tup, &row);
		end = idalloc_slot_row_end(MyDatabaseId, reg.extoid, row.id);
		if (end <= row.persisted_end)
			continue;
		if (n == max)
		{
			max *= 2;
			ids = repalloc(ids, max * sizeof(int64));
			ends = repalloc(ends, max * sizeof(int64));
		}
		ids[n] = row.id;
		ends[n++] = end;
	}
	systable_endscan(scan);
	table_close(rel, NoLock);

	for (int i = 0; i < n; i++)
	{
		(void) persist_raise(reg.extoid, ids[i], ends[i], true, NULL);
		ereport(LOG,
				(errmsg("idalloc: table \"%s\" was rewritten behind in-place block advances; raised allocator " INT64_FORMAT " to " INT64_FORMAT,
						IDALLOC_REGISTRY_TABLE, ids[i], ends[i])));
	}
	pfree(ids);
	pfree(ends);
}
