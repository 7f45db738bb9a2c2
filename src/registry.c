/*-------------------------------------------------------------------------
 *
 * registry.c
 *		Finding idalloc's own catalog objects, by OID.
 *
 * Everything starts from the OID of the extension named "idalloc" in this
 * database (pg_extension).  The table is the relation of that name in the
 * extension's schema *and* a member of that extension (pg_depend deptype
 * 'e'); its indexes must belong to that table; its id sequence must be a
 * member too.  Nothing a user can create -- a temporary table of the same
 * name, a table in a schema earlier in search_path, an index or sequence of
 * a look-alike name -- is ever taken for one of them.
 *
 * The table is opened by idalloc_registry_open: look up, lock, and look up
 * again after the lock (which processes invalidations), the way
 * RangeVarGetRelidExtended does, so that a DROP EXTENSION committed while
 * we waited gives a clear error (55000) instead of "could not open
 * relation with OID".
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "idalloc.h"

static void
report_not_installed(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("extension \"idalloc\" is not installed in this database"),
			 errhint("Run CREATE EXTENSION idalloc.")));
}

static void
report_broken(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s of extension \"idalloc\" is missing", what),
			 errhint("Reinstall the extension from a dump.")));
}

/* Schema and owner of extension extoid; false if it is gone. */
static bool
extension_schema_owner(Oid extoid, Oid *nsp, Oid *owner)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(extoid));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_extension ext = (Form_pg_extension) GETSTRUCT(tup);

		*nsp = ext->extnamespace;
		*owner = ext->extowner;
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/* Is relation relid a member of extension extoid? */
static inline bool
is_member(Oid relid, Oid extoid)
{
	return OidIsValid(relid) &&
		getExtensionOfObject(RelationRelationId, relid) == extoid;
}

/*
 * Fill *reg with idalloc's objects in this database.  Returns false if the
 * extension is not installed and missing_ok; errors (55000) otherwise, and
 * also when the extension exists but its table does not.
 */
bool
idalloc_registry_find(IdallocRegistry *reg, bool missing_ok)
{
	Oid			relid;

	memset(reg, 0, sizeof(*reg));
	reg->extoid = get_extension_oid("idalloc", true);
	if (!OidIsValid(reg->extoid) ||
		!extension_schema_owner(reg->extoid, &reg->nsp, &reg->owner))
	{
		reg->extoid = InvalidOid;
		if (missing_ok)
			return false;
		report_not_installed();
	}
	relid = get_relname_relid(IDALLOC_REGISTRY_TABLE, reg->nsp);
	if (!is_member(relid, reg->extoid))
	{
		if (missing_ok)
			return false;
		report_broken("table \"" IDALLOC_REGISTRY_TABLE "\"");
	}
	reg->relid = relid;
	return true;
}

/*
 * Open idalloc's table with `mode`, filling *reg.  The relation is looked
 * up again once locked: if it changed meanwhile (DROP EXTENSION committed,
 * or a new installation), the lock is let go and the lookup repeated.
 */
Relation
idalloc_registry_open(LOCKMODE mode, IdallocRegistry *reg)
{
	for (;;)
	{
		IdallocRegistry again;

		(void) idalloc_registry_find(reg, false);
		LockRelationOid(reg->relid, mode);
		/* LockRelationOid processed the invalidations of what we waited for */
		if (idalloc_registry_find(&again, true) &&
			again.relid == reg->relid && again.extoid == reg->extoid)
			break;
		UnlockRelationOid(reg->relid, mode);
		if (!OidIsValid(again.extoid))
			report_not_installed();
	}
	return table_open(reg->relid, NoLock);
}

/* OID of the index `name` of idalloc's table (55000 if it is missing). */
Oid
idalloc_registry_index(const IdallocRegistry *reg, const char *name)
{
	Oid			indexoid = get_relname_relid(name, reg->nsp);

	if (!OidIsValid(indexoid) ||
		get_rel_relkind(indexoid) != RELKIND_INDEX ||
		IndexGetRelation(indexoid, false) != reg->relid)
		report_broken(psprintf("index \"%s\"", name));
	return indexoid;
}

/* OID of idalloc's id sequence (55000 if it is missing). */
Oid
idalloc_registry_seq(const IdallocRegistry *reg)
{
	Oid			seqoid = get_relname_relid(IDALLOC_REGISTRY_SEQ, reg->nsp);

	if (!is_member(seqoid, reg->extoid) ||
		get_rel_relkind(seqoid) != RELKIND_SEQUENCE)
		report_broken("sequence \"" IDALLOC_REGISTRY_SEQ "\"");
	return seqoid;
}

/*
 * OID of idalloc's conninfo table (idalloc_source_conninfo, 1.1), or
 * InvalidOid if this installation has none (1.0, not updated yet).
 */
Oid
idalloc_registry_conninfo(const IdallocRegistry *reg)
{
	Oid			relid = get_relname_relid(IDALLOC_CONNINFO_TABLE, reg->nsp);

	return is_member(relid, reg->extoid) &&
		get_rel_relkind(relid) == RELKIND_RELATION ? relid : InvalidOid;
}

/* Is relid idalloc's conninfo table in this database?  Fills *reg if so. */
bool
idalloc_is_conninfo(Oid relid, IdallocRegistry *reg)
{
	return OidIsValid(relid) && idalloc_registry_find(reg, true) &&
		idalloc_registry_conninfo(reg) == relid;
}

/* Is relid idalloc's table in this database?  Fills *reg if so. */
bool
idalloc_is_registry(Oid relid, IdallocRegistry *reg)
{
	return OidIsValid(relid) && idalloc_registry_find(reg, true) &&
		reg->relid == relid;
}

/*
 * Is the running command idalloc's own extension script (CREATE EXTENSION
 * idalloc or ALTER EXTENSION idalloc UPDATE)?  Another extension's script
 * gets no exemption.  So is pg_upgrade's restore of the schema (the server
 * runs in binary-upgrade mode, which only pg_upgrade starts): it creates
 * idalloc's objects one by one, the table's triggers and their ENABLE
 * ALWAYS among them, and writes no row (the table's files are carried
 * over as they are).
 */
bool
idalloc_in_own_script(void)
{
	if (IsBinaryUpgrade)
		return true;
	return creating_extension && OidIsValid(CurrentExtensionObject) &&
		CurrentExtensionObject == get_extension_oid("idalloc", true);
}

/* Does a row with registry id `id` exist (committed, ours, or in progress)? */
static bool
id_taken(Relation rel, const IdallocRegistry *reg, int64 id)
{
	SnapshotData dirty;
	ScanKeyData key;
	SysScanDesc scan;
	bool		taken;

	/* a slot still attached (a row deleted by this transaction) counts */
	if (idalloc_slot_attached(MyDatabaseId, reg->extoid, id))
		return true;
	InitDirtySnapshot(dirty);
	ScanKeyInit(&key, Anum_registry_id, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum(id));
	scan = systable_beginscan(rel,
							  idalloc_registry_index(reg, IDALLOC_REGISTRY_PKEY),
							  true, &dirty, 1, &key);
	taken = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	return taken;
}

/*
 * A registry id for a row about to be inserted into rel: `wanted` if it is
 * positive and free, else the next free value of idalloc's sequence.  Rows
 * that arrive from a dump or a publisher bring ids of another history; ids
 * are only identities, so a taken one is simply replaced.
 */
int64
idalloc_registry_fresh_id(Relation rel, const IdallocRegistry *reg,
						  int64 wanted)
{
	Oid			seqoid;
	int64		id = wanted;

	if (id > 0 && !id_taken(rel, reg, id))
		return id;
	seqoid = idalloc_registry_seq(reg);
	do
	{
		id = nextval_internal(seqoid, false);
	} while (id_taken(rel, reg, id));
	return id;
}
