/*-------------------------------------------------------------------------
 *
 * triggers.c
 *		Who may write idalloc's catalog table, and how rows that arrive
 *		from elsewhere are merged.
 *
 * The table (idalloc_registry) is written by idalloc's own functions:
 * inserts and deletes through SPI, everything else in place (persist.c).
 * Its triggers, which are ENABLE ALWAYS (they fire under
 * session_replication_role = replica too), let through:
 *
 *	- idalloc's own writes (idalloc_internal_write) and idalloc's own
 *	  extension script (CREATE/ALTER EXTENSION idalloc, checked by the
 *	  extension's OID, not by creating_extension alone);
 *	- COPY FROM into the real table, by OID (idalloc_copy_relid, set by the
 *	  utility hook below): how pg_restore and a plain dump bring rows back;
 *	- a logical-replication apply or table-sync worker (IsLogicalWorker()):
 *	  rows a subscription brings.
 * Anything else is refused (42501), whoever runs it.
 *
 * A row that arrives from a restore or a subscription is merged: if an
 * allocator of that name exists, it takes the row's block and cache and
 * its persisted end is raised to at least the row's (never lowered), and
 * the row itself is skipped; else the row is inserted as a new allocator,
 * under a registry id of this installation (the row's own if it is free; a
 * subscription's ids come from the publisher's sequence, so they always get
 * a fresh one).  An UPDATE a subscription applies is merged the same way;
 * a DELETE it applies is skipped: replication can raise an allocator,
 * never lower or remove it.  A TRUNCATE cannot be skipped by a trigger and
 * would remove every allocator: it is refused (an idalloc publisher never
 * sends one, its own guard refuses it; a publisher of a look-alike table
 * must not publish truncates).  A row of a kind or with a source this
 * version does not build is refused from a restore (0A000) and skipped,
 * with a WARNING, from a subscription.
 *
 * Every trigger first checks that it fires on idalloc's real table
 * (registry.c): attached to a look-alike table (a temporary table or one in
 * another schema, with any columns), it errors out before reading a row.
 * The trigger functions are not executable by PUBLIC, so only a superuser
 * could attach them anywhere in the first place.
 *
 * The conninfo table of sourced allocators (idalloc_source_conninfo, 1.2)
 * has a guard of its own: idalloc's own writes pass, the rows a
 * subscription brings are skipped (another server's conninfo, keyed by
 * another server's registry ids), anything else is refused.
 *
 * The utility hook also refuses (42501), outside idalloc's own script, the
 * commands that would switch the guard off: ALTER TABLE ... ENABLE/DISABLE
 * TRIGGER or RULE, CREATE/DROP TRIGGER and CREATE/DROP RULE on the table.
 * A superuser may add, switch and drop an AFTER trigger of its own (not
 * named as idalloc's; idalloc's own cannot be renamed): pg_repack needs one
 * (see persist.c, "Rewrites by another session").  What such a trigger
 * writes into the table is a direct write, refused: the exemptions for
 * idalloc's own writes, COPY and the apply hold only for the rows of the
 * statement itself, one trigger level down (pg_trigger_depth), not for
 * writes made by the triggers that statement fires.
 *
 * Finally, DROP EXTENSION idalloc followed by CREATE EXTENSION idalloc in
 * one transaction (pg_restore --clean --single-transaction, or pg_dump -c
 * run by psql -1) must not restart the allocators: when the old table is
 * dropped, the persisted end of each of its allocators is remembered for
 * the rest of the transaction (the "stash"), and a row of the same name
 * inserted into the new table in that transaction starts at least there.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_trigger.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "replication/logicalworker.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "idalloc.h"

/* idalloc_registry while a COPY FROM into it runs (a restore), else 0 */
Oid			idalloc_copy_relid = InvalidOid;
static int	idalloc_copy_depth = 0;

static ProcessUtility_hook_type prev_process_utility = NULL;

/* name -> allocator of a dropped installation, for this transaction */
/*
 * Each installation dropped in this transaction that had an allocator of
 * that name: in the order they were dropped (a DROP rolled back to a
 * savepoint leaves its entry, which is ignored while that installation
 * exists).
 */
#define STASH_MAX_DROPS 8

typedef struct StashDrop
{
	Oid			extoid;			/* the dropped installation */
	int64		id;				/* the allocator's registry id there */
	int64		end;			/* its persisted end */
	SubTransactionId subid;		/* of the DROP (forgotten if it aborts) */
} StashDrop;

typedef struct StashEntry
{
	char		name[NAMEDATALEN];
	int			ndrops;
	StashDrop	drops[STASH_MAX_DROPS];
} StashEntry;

static HTAB *stash = NULL;

static int64 tuple_int8(HeapTuple tup, TupleDesc desc, int attnum,
						int64 if_null);

PG_FUNCTION_INFO_V1(idalloc_registry_insert);
PG_FUNCTION_INFO_V1(idalloc_registry_guard);
PG_FUNCTION_INFO_V1(idalloc_source_conninfo_guard);

/* ---------- the stash of a dropped installation ---------- */

/* Record that installation extoid had allocator id (persisted to end). */
static void
stash_add(StashEntry *e, Oid extoid, int64 id, int64 end)
{
	for (int i = 0; i < e->ndrops; i++)
	{
		if (e->drops[i].extoid == extoid)
		{
			/* dropped again in a subtransaction: keep the outermost */
			e->drops[i].id = id;
			e->drops[i].end = Max(e->drops[i].end, end);
			return;
		}
	}
	if (e->ndrops == STASH_MAX_DROPS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many installations of extension \"idalloc\" dropped in one transaction"),
				 errdetail("At most %d are supported.", STASH_MAX_DROPS)));
	e->drops[e->ndrops].extoid = extoid;
	e->drops[e->ndrops].id = id;
	e->drops[e->ndrops].end = end;
	e->drops[e->ndrops].subid = GetCurrentSubTransactionId();
	e->ndrops++;
}

/*
 * Relation relid is being dropped (object_access_hook, before the drop):
 * if it is idalloc's table, remember the persisted end of each of its
 * allocators.  The caller's DROP holds an AccessExclusiveLock on it, so no
 * block advance is in progress or can start.
 */
void
idalloc_stash_dropped_registry(Oid relid)
{
	char	   *relname = get_rel_name(relid);
	IdallocRegistry reg;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	HASHCTL		ctl;

	if (relname == NULL || strcmp(relname, IDALLOC_REGISTRY_TABLE) != 0 ||
		!idalloc_is_registry(relid, &reg))
		return;

	if (stash == NULL)
	{
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(StashEntry);
		ctl.hcxt = TopTransactionContext;
		stash = hash_create("idalloc dropped allocators", 16, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}

	rel = table_open(relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		name_null;
		bool		end_null;
		Datum		name = heap_getattr(tup, Anum_registry_name, desc, &name_null);
		Datum		end = heap_getattr(tup, Anum_registry_persisted_end, desc,
									   &end_null);
		char	   *cname;
		StashEntry *e;
		bool		found;

		if (name_null || end_null)
			continue;
		cname = TextDatumGetCString(name);
		if (strlen(cname) >= NAMEDATALEN)
			continue;
		e = hash_search(stash, cname, HASH_ENTER, &found);
		if (!found)
			e->ndrops = 0;
		stash_add(e, reg.extoid, tuple_int8(tup, desc, Anum_registry_id, 0),
				  DatumGetInt64(end));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* End of transaction: the stash (in TopTransactionContext) is gone. */
void
idalloc_stash_reset(void)
{
	stash = NULL;
}

/*
 * Did an installation dropped in this transaction (other than cur_extoid)
 * have an allocator `name`?  Its slot, if attached, stays attached until
 * commit: a new installation's allocator of that name hands out IDs from
 * it (funcs.c), so that whether the transaction commits or rolls back, no
 * ID is handed out twice.
 */
bool
idalloc_stash_lookup(const char *name, Oid cur_extoid, Oid *old_extoid,
					 int64 *old_id)
{
	StashEntry *e;

	if (stash == NULL || strlen(name) >= NAMEDATALEN)
		return false;
	e = hash_search(stash, name, HASH_FIND, NULL);
	if (e == NULL)
		return false;

	/*
	 * The first installation dropped (and still gone: a DROP rolled back to
	 * a savepoint brought its installation back) holds the live state; an
	 * installation created and dropped after it in this transaction handed
	 * out IDs of that name from it.
	 */
	for (int i = 0; i < e->ndrops; i++)
	{
		StashDrop  *d = &e->drops[i];

		if (d->extoid == cur_extoid || get_extension_name(d->extoid) != NULL)
			continue;
		*old_extoid = d->extoid;
		*old_id = d->id;
		return true;
	}
	return false;
}

/* Was installation extoid dropped in this transaction (and still is)? */
bool
idalloc_stash_dropped(Oid extoid)
{
	HASH_SEQ_STATUS seq;
	StashEntry *e;
	bool		dropped = false;

	if (stash == NULL)
		return false;
	hash_seq_init(&seq, stash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		for (int i = 0; i < e->ndrops && !dropped; i++)
			dropped = e->drops[i].extoid == extoid;
		if (dropped)
		{
			hash_seq_term(&seq);
			break;
		}
	}
	return dropped && get_extension_name(extoid) == NULL;
}

/*
 * Subtransaction end: the drops of an aborted subtransaction did not
 * happen (their installation is back, or was never there: forget them);
 * those of a committed one belong to its parent.
 */
void
idalloc_stash_subxact(bool commit, SubTransactionId subid,
					  SubTransactionId parent)
{
	HASH_SEQ_STATUS seq;
	StashEntry *e;

	if (stash == NULL)
		return;
	hash_seq_init(&seq, stash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		int			kept = 0;

		for (int i = 0; i < e->ndrops; i++)
		{
			if (e->drops[i].subid == subid)
			{
				if (!commit)
					continue;
				e->drops[i].subid = parent;
			}
			e->drops[kept++] = e->drops[i];
		}
		e->ndrops = kept;
	}
}

/* The remembered persisted end of `name`, or PG_INT64_MIN. */
static int64
stash_floor(const char *name)
{
	StashEntry *e;
	int64		floor = PG_INT64_MIN;

	if (stash == NULL || strlen(name) >= NAMEDATALEN)
		return PG_INT64_MIN;
	e = hash_search(stash, name, HASH_FIND, NULL);
	for (int i = 0; e != NULL && i < e->ndrops; i++)
		floor = Max(floor, e->drops[i].end);
	return floor;
}

/* ---------- the triggers ---------- */

/* What a BEFORE trigger returns to let the write it fired for go ahead. */
static Datum
let_through(TriggerData *trigdata)
{
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		return PointerGetDatum(trigdata->tg_newtuple);
	return PointerGetDatum(trigdata->tg_trigtuple);
}

static TriggerData *
trigger_data(FunctionCallInfo fcinfo, const char *fname)
{
	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" was not called by trigger manager",
						fname)));
	return (TriggerData *) fcinfo->context;
}

static void
report_protocol(const char *fname, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
			 errmsg("function \"%s\" must be fired %s", fname, what)));
}

/* The trigger fires on idalloc's real table, or errors out. */
static void
check_real_table(TriggerData *trigdata, const char *fname,
				 IdallocRegistry *reg)
{
	Relation	rel = trigdata->tg_relation;

	if (!idalloc_is_registry(RelationGetRelid(rel), reg))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired on table \"%s\" of extension \"idalloc\"",
						fname, IDALLOC_REGISTRY_TABLE),
				 RelationUsesLocalBuffers(rel) ?
				 errdetail("It was fired on temporary table \"%s\".",
						   RelationGetRelationName(rel)) :
				 errdetail("It was fired on table \"%s.%s\".",
						   get_namespace_name(RelationGetNamespace(rel)),
						   RelationGetRelationName(rel))));
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

/* The trigger nesting depth (pg_trigger_depth()). */
int
idalloc_trigger_depth(void)
{
	return DatumGetInt32(DirectFunctionCall1(pg_trigger_depth, (Datum) 0));
}

/*
 * Writes by idalloc itself (the rows of its own SPI statement: not writes
 * made by triggers that statement fires, which run one level deeper) or
 * by its own extension script.
 */
static inline bool
own_write(void)
{
	return (idalloc_internal_write &&
			idalloc_trigger_depth() == idalloc_internal_depth + 1) ||
		idalloc_in_own_script();
}

static int64
tuple_int8(HeapTuple tup, TupleDesc desc, int attnum, int64 if_null)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, desc, &isnull);

	return isnull ? if_null : DatumGetInt64(d);
}

static int32
tuple_int4(HeapTuple tup, TupleDesc desc, int attnum, int32 if_null)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, desc, &isnull);

	return isnull ? if_null : DatumGetInt32(d);
}

/* The row's name, or NULL if it is null or too long to be one. */
static char *
tuple_name(HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, Anum_registry_name, desc, &isnull);
	char	   *name;

	if (isnull)
		return NULL;
	name = TextDatumGetCString(d);
	return strlen(name) >= 1 && strlen(name) < NAMEDATALEN ? name : NULL;
}

/*
 * Merge a row from a restore or a subscription into the existing allocator
 * of its name: take the row's block and cache (where they differ and are
 * valid), then raise the persisted end to at least the row's, written into
 * the allocator's own row and flushed (idalloc_raise).
 */
static void
merge_row(const IdallocRegistry *reg, const IdallocRow *existing,
		  HeapTuple tup, TupleDesc desc, bool from_subscription)
{
	int64		block = tuple_int8(tup, desc, Anum_registry_block, -1);
	int32		cache = tuple_int4(tup, desc, Anum_registry_cache, -1);
	int64		end = tuple_int8(tup, desc, Anum_registry_persisted_end,
								 PG_INT64_MIN);

	if (block == existing->block || block < 1)
		block = -1;
	if (cache == existing->cache || cache < 1)
		cache = -1;
	idalloc_alter_sizes(reg->extoid, existing->id, block, cache);
	/*
	 * A sourced allocator's IDs are the authority's: a restored row raises
	 * its mark (no block below what it received is installed); another
	 * server's row, which is of another server's blocks, does not.
	 */
	if (end > existing->persisted_end && !existing->sourced)
		idalloc_raise(reg->extoid, existing->id, end);
	else if (end > existing->persisted_end && !from_subscription)
		(void) idalloc_raise_mark(reg->extoid, existing->id, end, false, NULL);
}

/*
 * A new row from a restore or a subscription must be of what this version
 * builds: kind 'counter' or 'tso'; from a restore, a 'counter' may have a
 * source (what may be shown of it is kept, see shown_source); from a
 * subscription, none may: a sourced allocator belongs to the server that
 * created it.  Else 0A000 from a restore, skipped with a WARNING from a
 * subscription.
 */
static bool
supported_row(HeapTuple tup, TupleDesc desc, const char *name,
			  bool from_subscription)
{
	bool		kind_null;
	bool		source_null;
	Datum		kind = heap_getattr(tup, Anum_registry_kind, desc, &kind_null);

	Datum		source = heap_getattr(tup, Anum_registry_source, desc, &source_null);

	/*
	 * A restored row may have a source: what the dump carries of it (host,
	 * port, database name; never the conninfo, which is not dumped).  A
	 * subscription's may not: the allocator is the publisher's business.
	 */
	if (!source_null && !from_subscription)
	{
		(void) idalloc_source_display(TextDatumGetCString(source), name);
		if (!kind_null && strcmp(TextDatumGetCString(kind), "counter") == 0)
			return true;
	}
	else if ((kind_null || strcmp(TextDatumGetCString(kind), "counter") == 0 ||
			  strcmp(TextDatumGetCString(kind), "tso") == 0) &&
			 source_null)
		return true;
	else if (!source_null)
	{
		/* (from a subscription: the allocator stays the publisher's) */
		ereport(WARNING,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("allocator \"%s\" of the publisher has a source and is not created here",
						name),
				 errdetail("A sourced allocator belongs to the server that created it; the row was not applied."),
				 errhint("Create it on this server with idalloc_create(..., source => ...) if this server needs it.")));
		return false;
	}
	ereport(from_subscription ? WARNING : ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("allocator \"%s\" is of a kind that this version of idalloc does not support",
					name),
			 from_subscription ?
			 errdetail("The row was not applied.") : 0));
	return false;
}

/*
 * A restored row's source keeps only what may be shown of a conninfo (the
 * authority's host, port and database name): a dump made by an older
 * build, or edited, must not put a password where PUBLIC can read it.
 */
static HeapTuple
shown_source(HeapTuple tup, TupleDesc desc, const char *name)
{
	bool		isnull;
	Datum		source = heap_getattr(tup, Anum_registry_source, desc, &isnull);
	char	   *given;
	char	   *shown;

	if (isnull)
		return tup;
	given = TextDatumGetCString(source);
	shown = idalloc_source_display(given, name);
	if (strcmp(given, shown) != 0)
	{
		Datum	   *values = palloc0(desc->natts * sizeof(Datum));
		bool	   *nulls = palloc0(desc->natts * sizeof(bool));
		bool	   *replace = palloc0(desc->natts * sizeof(bool));

		values[Anum_registry_source - 1] = CStringGetTextDatum(shown);
		replace[Anum_registry_source - 1] = true;
		tup = heap_modify_tuple(tup, desc, values, nulls, replace);
	}
	return tup;
}

/*
 * BEFORE INSERT row trigger on the catalog table (see the file header).
 * A new row gets a registry id of this installation and, after a DROP
 * EXTENSION in this transaction, at least the dropped allocator's
 * persisted end.  A new row not written by idalloc_create (which does it
 * itself) is remembered, so that its slot is let go if the transaction
 * rolls back.
 */
Datum
idalloc_registry_insert(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = trigger_data(fcinfo, "idalloc_registry_insert");
	Relation	rel;
	TupleDesc	desc;
	HeapTuple	tup;
	IdallocRegistry reg;
	bool		from_copy;
	bool		from_subscription;
	char	   *name;
	int64		id;
	int64		end;
	int64		floor;
	IdallocRow	existing;

	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		report_protocol("idalloc_registry_insert",
						"BEFORE INSERT FOR EACH ROW");
	idalloc_check_loaded();
	check_real_table(trigdata, "idalloc_registry_insert", &reg);

	rel = trigdata->tg_relation;
	desc = RelationGetDescr(rel);
	tup = trigdata->tg_trigtuple;
	/* the rows of the COPY or of the apply, not writes of their triggers */
	from_copy = OidIsValid(idalloc_copy_relid) &&
		idalloc_copy_relid == RelationGetRelid(rel) &&
		idalloc_trigger_depth() == idalloc_copy_depth + 1;
	from_subscription = IsLogicalWorker() && idalloc_trigger_depth() == 1;
	if (!own_write() && !from_copy && !from_subscription)
		refuse_direct_write(rel);

	/* a row without a name: let the NOT NULL constraint say so */
	name = tuple_name(tup, desc);
	if (name == NULL)
		return PointerGetDatum(tup);

	if ((from_copy || from_subscription) && !idalloc_internal_write)
	{
		if (idalloc_row_by_name(name, &existing, &reg))
		{
			merge_row(&reg, &existing, tup, desc, from_subscription);
			return PointerGetDatum(NULL);
		}
		if (!supported_row(tup, desc, name, from_subscription))
			return PointerGetDatum(NULL);
		tup = shown_source(tup, desc, name);
	}

	/* a new row: an id of ours, and not below a dropped installation */
	id = tuple_int8(tup, desc, Anum_registry_id, 0);
	end = tuple_int8(tup, desc, Anum_registry_persisted_end, PG_INT64_MIN);
	floor = stash_floor(name);
	{
		int64		new_id = idalloc_registry_fresh_id(rel, &reg,
													   from_subscription ? 0 : id);
		int64		new_end = Max(end, floor);

		if (new_id != id || new_end != end)
		{
			Datum	   *values = palloc0(desc->natts * sizeof(Datum));
			bool	   *nulls = palloc0(desc->natts * sizeof(bool));
			bool	   *replace = palloc0(desc->natts * sizeof(bool));

			values[Anum_registry_id - 1] = Int64GetDatum(new_id);
			replace[Anum_registry_id - 1] = true;
			if (new_end != end && end != PG_INT64_MIN)
			{
				values[Anum_registry_persisted_end - 1] = Int64GetDatum(new_end);
				replace[Anum_registry_persisted_end - 1] = true;
			}
			tup = heap_modify_tuple(tup, desc, values, nulls, replace);
			id = new_id;
		}
	}
	if (!idalloc_internal_write)
		idalloc_remember_create(reg.extoid, id);
	return PointerGetDatum(tup);
}

/*
 * BEFORE UPDATE OR DELETE row trigger and BEFORE TRUNCATE statement
 * trigger on the catalog table: only idalloc itself changes rows.  A
 * transactional UPDATE in particular could overwrite an in-place advance
 * with an older persisted end, and IDs would repeat.  What a subscription
 * applies is merged (UPDATE) or skipped (DELETE); see the file header.
 */
Datum
idalloc_registry_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = trigger_data(fcinfo, "idalloc_registry_guard");
	IdallocRegistry reg;
	Relation	rel;

	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) ||
		(TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event) ?
		 TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) :
		 !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event)))
		report_protocol("idalloc_registry_guard",
						"BEFORE UPDATE OR DELETE FOR EACH ROW, or BEFORE TRUNCATE FOR EACH STATEMENT");
	idalloc_check_loaded();
	check_real_table(trigdata, "idalloc_registry_guard", &reg);
	rel = trigdata->tg_relation;

	if (own_write())
		return let_through(trigdata);
	if (IsLogicalWorker() && idalloc_trigger_depth() == 1 &&
		!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
	{
		if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		{
			TupleDesc	desc = RelationGetDescr(rel);
			char	   *name = tuple_name(trigdata->tg_newtuple, desc);
			IdallocRow	existing;

			if (name != NULL && idalloc_row_by_name(name, &existing, &reg))
				merge_row(&reg, &existing, trigdata->tg_newtuple, desc, true);
		}
		return PointerGetDatum(NULL);	/* skip the row */
	}
	refuse_direct_write(rel);
	return PointerGetDatum(NULL);	/* not reached */
}

/*
 * BEFORE INSERT OR UPDATE OR DELETE row trigger and BEFORE TRUNCATE
 * statement trigger on the conninfo table (idalloc_source_conninfo, 1.2):
 * a conninfo is written by idalloc_create and idalloc_alter of this server
 * only, and never leaves it.
 *
 * Its key, the registry id, means nothing on another server, and its
 * value is another server's password: a row that a logical-replication
 * subscription brings (a publication FOR ALL TABLES carries the table,
 * which cannot be kept out of one) is skipped, whether the apply worker
 * inserts, updates or deletes it or the table-sync worker copies it, so
 * that the subscriber's own sourced allocators keep their authorities
 * and nothing of the publisher's conninfo is stored.  Every other write
 * is refused (42501), as on the registry.
 */
Datum
idalloc_source_conninfo_guard(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = trigger_data(fcinfo, "idalloc_source_conninfo_guard");
	IdallocRegistry reg;
	Relation	rel = trigdata->tg_relation;

	if (!TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		(TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event) ?
		 TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) :
		 !TRIGGER_FIRED_FOR_ROW(trigdata->tg_event)))
		report_protocol("idalloc_source_conninfo_guard",
						"BEFORE INSERT OR UPDATE OR DELETE FOR EACH ROW, or BEFORE TRUNCATE FOR EACH STATEMENT");
	idalloc_check_loaded();
	if (!idalloc_is_conninfo(RelationGetRelid(rel), &reg))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("function \"%s\" must be fired on table \"%s\" of extension \"idalloc\"",
						"idalloc_source_conninfo_guard", IDALLOC_CONNINFO_TABLE)));

	if (own_write())
		return let_through(trigdata);
	if (IsLogicalWorker() && idalloc_trigger_depth() == 1 &&
		!TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		return PointerGetDatum(NULL);	/* another server's: skipped */
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("table \"%s\" can only be changed through idalloc's functions",
					RelationGetRelationName(rel)),
			 errhint("Use idalloc_create() or idalloc_alter() with source => ....")));
	return PointerGetDatum(NULL);	/* not reached */
}

/* ---------- the utility hook ---------- */

/* the table names_registry found last (for refuse_guard_change) */
static const char *guarded_table = IDALLOC_REGISTRY_TABLE;

/* Is the RangeVar idalloc's table, or its conninfo table? */
static bool
names_registry(RangeVar *rv)
{
	IdallocRegistry reg;
	Oid			relid;

	if (rv == NULL)
		return false;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (idalloc_is_registry(relid, &reg))
		guarded_table = IDALLOC_REGISTRY_TABLE;
	else if (idalloc_is_conninfo(relid, &reg))
		guarded_table = IDALLOC_CONNINFO_TABLE;
	else
		return false;
	return true;
}

/* idalloc's own triggers on its tables (idalloc--1.2.sql) */
static bool
is_own_trigger(const char *name)
{
	return name != NULL &&
		(strcmp(name, "idalloc_registry_insert") == 0 ||
		 strcmp(name, "idalloc_registry_guard") == 0 ||
		 strcmp(name, "idalloc_registry_guard_truncate") == 0 ||
		 strcmp(name, "idalloc_source_conninfo_guard") == 0 ||
		 strcmp(name, "idalloc_source_conninfo_guard_truncate") == 0);
}

/*
 * Does the ALTER TABLE switch idalloc's guard (its triggers, or rules) on
 * or off?  A superuser may enable or disable a trigger of its own by name
 * (pg_repack makes its trigger ENABLE ALWAYS).
 */
static bool
switches_guard(AlterTableStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		switch (cmd->subtype)
		{
			case AT_EnableTrig:
			case AT_EnableAlwaysTrig:
			case AT_EnableReplicaTrig:
			case AT_DisableTrig:
				if (is_own_trigger(cmd->name) || !superuser())
					return true;
				break;
			case AT_EnableTrigAll:
			case AT_DisableTrigAll:
			case AT_EnableTrigUser:
			case AT_DisableTrigUser:
			case AT_EnableRule:
			case AT_EnableAlwaysRule:
			case AT_EnableReplicaRule:
			case AT_DisableRule:
				return true;
			default:
				break;
		}
	}
	return false;
}

/*
 * May this CREATE TRIGGER on idalloc's table go ahead?  Only a superuser's
 * plain AFTER trigger that is not named as one of idalloc's own (it sees
 * rows, and cannot change or suppress them): pg_repack's, say.
 */
static bool
trigger_allowed(CreateTrigStmt *stmt)
{
	return superuser() && !stmt->isconstraint &&
		(stmt->timing & (TRIGGER_TYPE_BEFORE | TRIGGER_TYPE_INSTEAD)) == 0 &&
		!is_own_trigger(stmt->trigname);
}

/*
 * DROP TRIGGER / DROP RULE ... ON idalloc's table, other than a superuser
 * dropping a trigger of its own?  (The triggers are not members of the
 * extension themselves, only dependents of its table.)
 */
static bool
drops_guard(DropStmt *stmt)
{
	ListCell   *lc;

	if (stmt->removeType != OBJECT_TRIGGER && stmt->removeType != OBJECT_RULE)
		return false;
	foreach(lc, stmt->objects)
	{
		List	   *names = (List *) lfirst(lc);

		/* (schema.)table.trigger */
		if (list_length(names) < 2)
			continue;
		if (stmt->removeType == OBJECT_TRIGGER && superuser() &&
			!is_own_trigger(strVal(llast(names))))
			continue;
		if (names_registry(makeRangeVarFromNameList(list_truncate(list_copy(names),
																  list_length(names) - 1))))
			return true;
	}
	return false;
}

/*
 * Stop the persister of database dbname, if the user owns it (the command
 * checks its own privileges later; nobody else may make the workers of
 * someone else's database stop).  Returns the database stopped, or
 * InvalidOid.
 */
static Oid
stop_persister_of(const char *dbname)
{
	Oid			dboid;

	if (dbname == NULL)
		return InvalidOid;
	dboid = get_database_oid(dbname, true);
	if (!OidIsValid(dboid) || dboid == MyDatabaseId ||
		!idalloc_database_owner(dboid, GetUserId()))
		return InvalidOid;
	idalloc_worker_stop(dboid);
	return dboid;
}

/* ALTER DATABASE ... SET TABLESPACE? */
static bool
sets_tablespace(AlterDatabaseStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, "tablespace") == 0)
			return true;
	}
	return false;
}

/* The template database of a CREATE DATABASE (template1 if not given). */
static const char *
template_of(CreatedbStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->options)
	{
		DefElem    *opt = lfirst_node(DefElem, lc);

		if (strcmp(opt->defname, "template") == 0 && opt->arg != NULL)
			return defGetString(opt);
	}
	return "template1";
}

static void
refuse_guard_change(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot %s on table \"%s\" of extension \"idalloc\"",
					what, guarded_table),
			 errdetail("Its triggers keep allocators from being changed behind idalloc's back.")));
}

/*
 * Refuse what would switch the table's guard off; mark COPY FROM into the
 * table (by OID) for the insert trigger.
 */
static void
idalloc_process_utility(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;
	Oid			save = idalloc_copy_relid;
	int			save_depth = idalloc_copy_depth;
	Oid			copy_relid = InvalidOid;
	volatile Oid stopped_db = InvalidOid;

	if (idalloc_shared != NULL && IsTransactionState())
	{
		switch (nodeTag(stmt))
		{
			case T_CopyStmt:
				{
					CopyStmt   *copy = (CopyStmt *) stmt;
					IdallocRegistry reg;
					Oid			relid;

					if (!copy->is_from || copy->relation == NULL)
						break;
					relid = RangeVarGetRelid(copy->relation, NoLock, true);
					if (idalloc_is_registry(relid, &reg))
						copy_relid = relid;
					break;
				}
			case T_AlterTableStmt:
				if (switches_guard((AlterTableStmt *) stmt) &&
					names_registry(((AlterTableStmt *) stmt)->relation) &&
					!idalloc_in_own_script())
					refuse_guard_change("enable or disable triggers or rules");
				break;
			case T_CreateTrigStmt:
				if (names_registry(((CreateTrigStmt *) stmt)->relation) &&
					!trigger_allowed((CreateTrigStmt *) stmt) &&
					!idalloc_in_own_script())
					refuse_guard_change("create a trigger");
				break;
			case T_RuleStmt:
				if (names_registry(((RuleStmt *) stmt)->relation) &&
					!idalloc_in_own_script())
					refuse_guard_change("create a rule");
				break;
			case T_IndexStmt:
				/* the persister's UPDATE maintains plain indexes only */
				if (names_registry(((IndexStmt *) stmt)->relation) &&
					!idalloc_in_own_script())
					refuse_guard_change("create an index");
				break;
			case T_DropStmt:
				if (drops_guard((DropStmt *) stmt) &&
					!idalloc_in_own_script())
					refuse_guard_change("drop a trigger or rule");
				break;

				/*
				 * Commands that need a database nobody is connected to:
				 * the database's persister (worker.c) goes first.
				 */
			case T_DropdbStmt:
				stopped_db = stop_persister_of(((DropdbStmt *) stmt)->dbname);
				break;
			case T_CreatedbStmt:
				stopped_db = stop_persister_of(template_of((CreatedbStmt *) stmt));
				break;
			case T_AlterDatabaseStmt:
				/* only SET TABLESPACE needs the database free */
				if (sets_tablespace((AlterDatabaseStmt *) stmt))
					stopped_db = stop_persister_of(((AlterDatabaseStmt *) stmt)->dbname);
				break;
			case T_RenameStmt:
				if (((RenameStmt *) stmt)->renameType == OBJECT_DATABASE)
					stopped_db = stop_persister_of(((RenameStmt *) stmt)->subname);
				/* idalloc's triggers are known by their names */
				else if ((((RenameStmt *) stmt)->renameType == OBJECT_TRIGGER ||
						  ((RenameStmt *) stmt)->renameType == OBJECT_RULE) &&
						 names_registry(((RenameStmt *) stmt)->relation) &&
						 !idalloc_in_own_script())
					refuse_guard_change("rename a trigger or rule");
				break;
			default:
				break;
		}
	}

	if (OidIsValid(copy_relid))
	{
		idalloc_copy_relid = copy_relid;
		idalloc_copy_depth = idalloc_trigger_depth();
	}
	PG_TRY();
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context,
								 params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree,
									context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		idalloc_copy_relid = save;
		idalloc_copy_depth = save_depth;
		if (OidIsValid(stopped_db))
			idalloc_worker_stop_done(stopped_db);
	}
	PG_END_TRY();
}

/* From _PG_init. */
void
idalloc_triggers_init(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = idalloc_process_utility;
}
