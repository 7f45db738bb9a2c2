/*-------------------------------------------------------------------------
 *
 * idalloc.c
 *		Module load, GUCs, hooks, and what happens to shared state at the
 *		end of a transaction that created or dropped allocators.
 *
 * Creates and drops are transactional; shared memory is not.  So a backend
 * remembers, per (sub)transaction, the allocators it created or dropped:
 *	- a create attaches a slot at once (so idalloc.max_allocators is
 *	  checked, and the allocator is usable in its own transaction); if the
 *	  (sub)transaction aborts, the slot is detached;
 *	- a drop detaches the slot when the transaction commits (after the
 *	  commit is visible, so a backend that looks the allocator up again
 *	  finds no row) -- or at once, if the allocator was created in the
 *	  same subtransaction (nobody else can see it, and a rollback would
 *	  take both away), so that a loop of creates and drops in one
 *	  transaction does not fill idalloc.max_allocators;
 *	- DROP EXTENSION detaches every slot of that installation at commit,
 *	  and DROP DATABASE every slot of the database (found through
 *	  object_access_hook); DROP EXTENSION also makes this backend look
 *	  every allocator up again (a new installation in the same transaction
 *	  gets slots of its own), and remembers the positions of the dropped
 *	  installation's allocators for one that is created in the same
 *	  transaction (triggers.c).
 *
 * It also starts the per-backend caches (cache.c), the save/restore of a
 * clean shutdown's state (restart.c) and the utility hook that guards the
 * catalog table (triggers.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/ipc.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

#include "idalloc.h"

PG_MODULE_MAGIC;

int			idalloc_max_allocators = 128;
int			idalloc_max_block = 1073741824;
bool		idalloc_persister = true;
bool		idalloc_wait_for_sync_standby = true;

/* true while the extension itself writes the catalog table */
bool		idalloc_internal_write = false;
int			idalloc_internal_depth = 0;
int			idalloc_debug_tso_clock_offset = 0;
int			idalloc_source_timeout = 5000;

typedef enum PendingKind
{
	PENDING_CREATE,				/* detach at abort */
	PENDING_DROP,				/* detach at commit */
	PENDING_DROP_EXTENSION,		/* detach the installation at commit */
	PENDING_DROP_DATABASE		/* detach the whole database at commit */
} PendingKind;

typedef struct Pending
{
	PendingKind kind;
	Oid			dboid;
	Oid			extoid;
	int64		id;
	SubTransactionId subid;
	struct Pending *next;
} Pending;

static Pending *pending = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static object_access_hook_type prev_object_access_hook = NULL;

void		_PG_init(void);

static void
idalloc_shmem_request_hook(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	idalloc_shmem_request();
	idalloc_cache_shmem_request();
	idalloc_worker_shmem_request();
}

static void
idalloc_shmem_startup_hook(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	idalloc_shmem_init();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	idalloc_cache_shmem_init();
	idalloc_worker_shmem_init();
	LWLockRelease(AddinShmemInitLock);

	/*
	 * In the postmaster (at start-up, and again after each crash-restart,
	 * where the file is already gone): restore the state of the last clean
	 * shutdown, and save it at the next one.
	 */
	if (!IsUnderPostmaster)
	{
		idalloc_restart_load();
		on_shmem_exit(idalloc_restart_save, (Datum) 0);
	}
}

/* Every entry point calls this first. */
void
idalloc_check_loaded(void)
{
	if (unlikely(idalloc_shared == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("idalloc must be loaded via shared_preload_libraries"),
				 errhint("Add idalloc to shared_preload_libraries in postgresql.conf and restart the server.")));
}

static void
remember(PendingKind kind, Oid dboid, Oid extoid, int64 id)
{
	Pending    *p = MemoryContextAlloc(TopMemoryContext, sizeof(Pending));

	p->kind = kind;
	p->dboid = dboid;
	p->extoid = extoid;
	p->id = id;
	p->subid = GetCurrentSubTransactionId();
	p->next = pending;
	pending = p;
}

void
idalloc_remember_create(Oid extoid, int64 id)
{
	remember(PENDING_CREATE, MyDatabaseId, extoid, id);
}

/*
 * A drop of an allocator created in this very subtransaction detaches its
 * slot at once; any other waits for commit.
 */
void
idalloc_remember_drop(Oid extoid, int64 id)
{
	SubTransactionId subid = GetCurrentSubTransactionId();

	for (Pending **link = &pending; *link != NULL; link = &(*link)->next)
	{
		Pending    *p = *link;

		if (p->kind == PENDING_CREATE && p->dboid == MyDatabaseId &&
			p->extoid == extoid && p->id == id && p->subid == subid)
		{
			idalloc_detach(p->dboid, p->extoid, p->id);
			*link = p->next;
			pfree(p);
			return;
		}
	}
	remember(PENDING_DROP, MyDatabaseId, extoid, id);
}

/*
 * Act on the pending entries of subtransaction `subid` (or all, if
 * InvalidSubTransactionId) at commit or abort, and forget them.
 */
static void
settle_pending(bool commit, SubTransactionId subid)
{
	Pending   **link = &pending;

	while (*link != NULL)
	{
		Pending    *p = *link;

		if (subid != InvalidSubTransactionId && p->subid != subid)
		{
			link = &p->next;
			continue;
		}
		/* undo a create at abort, carry out a drop at commit */
		if ((!commit && p->kind == PENDING_CREATE) ||
			(commit && p->kind == PENDING_DROP))
			idalloc_detach(p->dboid, p->extoid, p->id);
		else if (commit && (p->kind == PENDING_DROP_EXTENSION ||
							p->kind == PENDING_DROP_DATABASE))
			idalloc_detach_all(p->dboid, p->extoid);
		*link = p->next;
		pfree(p);
	}
}

/*
 * A drop that now belongs to the same subtransaction as the create of the
 * allocator (a subtransaction that dropped it committed into the one that
 * created it): nobody else can see the allocator, and a rollback would
 * take both away, so its slot goes at once.
 */
static void
settle_create_and_drop(SubTransactionId subid)
{
	Pending   **link = &pending;

	while (*link != NULL)
	{
		Pending    *d = *link;
		Pending   **clink;
		bool		settled = false;

		if (d->kind != PENDING_DROP || d->subid != subid)
		{
			link = &d->next;
			continue;
		}
		for (clink = &pending; *clink != NULL; clink = &(*clink)->next)
		{
			Pending    *c = *clink;

			if (c->kind == PENDING_CREATE && c->subid == subid &&
				c->dboid == d->dboid && c->extoid == d->extoid &&
				c->id == d->id)
			{
				idalloc_detach(c->dboid, c->extoid, c->id);
				*clink = c->next;
				pfree(c);
				settled = true;
				break;
			}
		}
		if (settled)
		{
			/* the create may have preceded d in the list: start over */
			for (link = &pending; *link != NULL && *link != d; link = &(*link)->next)
				;
			Assert(*link == d);
			*link = d->next;
			pfree(d);
			link = &pending;
		}
		else
			link = &d->next;
	}
}

/*
 * Relations whose relcache entries this backend invalidated (or saw
 * invalidated) since its transaction began: at commit, any of them that is
 * idalloc's table, locked AccessExclusive by this transaction, is checked
 * for a rewrite that lost in-place advances (persist.c,
 * idalloc_persist_after_rewrite).  More than INVAL_MAX, or "all": every
 * relation this transaction holds that lock on could be it.
 */
#define INVAL_MAX	32
static Oid	inval_relids[INVAL_MAX];
static int	n_inval_relids = 0;
static bool inval_overflow = false;

static void
idalloc_relcache_callback(Datum arg, Oid relid)
{
	if (inval_overflow)
		return;
	if (!OidIsValid(relid) || n_inval_relids == INVAL_MAX)
	{
		inval_overflow = true;
		return;
	}
	for (int i = 0; i < n_inval_relids; i++)
		if (inval_relids[i] == relid)
			return;
	inval_relids[n_inval_relids++] = relid;
}

/* At commit or PREPARE: see idalloc_persist_after_rewrite. */
static void
check_rewrites(void)
{
	if ((n_inval_relids == 0 && !inval_overflow) || idalloc_shared == NULL ||
		!TransactionIdIsValid(GetTopTransactionIdIfAny()))
		return;
	if (inval_overflow)
	{
		IdallocRegistry reg;

		/* the table of this database's installation, if any */
		if (idalloc_registry_find(&reg, true))
			idalloc_persist_after_rewrite(reg.relid);
	}
	else
		for (int i = 0; i < n_inval_relids; i++)
			idalloc_persist_after_rewrite(inval_relids[i]);
}

static void
idalloc_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
		check_rewrites();
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_PREPARE)
	{
		idalloc_stash_reset();
		idalloc_tso_forget_clock();
		n_inval_relids = 0;
		inval_overflow = false;
	}
	if (pending == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			settle_pending(true, InvalidSubTransactionId);
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			settle_pending(false, InvalidSubTransactionId);
			break;
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot PREPARE a transaction that has created or dropped idalloc allocators")));
			break;
		default:
			break;
	}
}

static void
idalloc_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		settle_pending(false, mySubid);
		idalloc_stash_subxact(false, mySubid, parentSubid);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		idalloc_stash_subxact(true, mySubid, parentSubid);
		for (Pending *p = pending; p != NULL; p = p->next)
			if (p->subid == mySubid)
				p->subid = parentSubid;
		settle_create_and_drop(parentSubid);
	}
}

/*
 * DROP EXTENSION idalloc and DROP DATABASE leave no slots behind.  The
 * catalog table of an installation being dropped is read first (its rows
 * are still there when its own drop hook runs).
 */
static void
idalloc_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					  int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (access != OAT_DROP || idalloc_shared == NULL || subId != 0)
		return;
	if (classId == DatabaseRelationId)
		remember(PENDING_DROP_DATABASE, objectId, InvalidOid, 0);
	else if (classId == RelationRelationId)
		idalloc_stash_dropped_registry(objectId);
	else if (classId == ExtensionRelationId &&
			 objectId == get_extension_oid("idalloc", true))
	{
		remember(PENDING_DROP_EXTENSION, MyDatabaseId, objectId, 0);
		idalloc_forget_local_refs();
	}
}

/* a new clock offset applies from the next tso ID on */
static void
assign_debug_tso_clock_offset(int newval, void *extra)
{
	idalloc_tso_forget_clock();
}

/*
 * The wait_event_info of one of idalloc's waits: on 17 and later a custom
 * wait event of its own name (registered on first use in each process, as
 * WaitEventExtensionNew allows), shown in pg_stat_activity.wait_event; on
 * 15, PostgreSQL's generic "Extension".
 */
uint32
idalloc_wait_event(IdallocWait which)
{
#if PG_VERSION_NUM >= 170000
	static uint32 events[IDALLOC_WAIT_COUNT];
	static const char *const names[IDALLOC_WAIT_COUNT] = {
		[IDALLOC_WAIT_BLOCK] = "IdallocBlock",
		[IDALLOC_WAIT_PERSISTER] = "IdallocPersister",
		[IDALLOC_WAIT_SOURCE] = "IdallocSourceFetch",
		[IDALLOC_WAIT_WORKER] = "IdallocPersisterStart",
	};

	Assert(which >= 0 && which < IDALLOC_WAIT_COUNT);
	if (events[which] == 0)
		events[which] = WaitEventExtensionNew(names[which]);
	return events[which];
#else
	(void) which;
	return PG_WAIT_EXTENSION;
#endif
}

void
_PG_init(void)
{
	/*
	 * Without shared_preload_libraries there is no shared memory: install
	 * nothing, and let every SQL function fail with 55000.
	 */
	if (!process_shared_preload_libraries_in_progress)
		return;

	DefineCustomIntVariable("idalloc.max_allocators",
							"Maximum number of allocators live in shared memory, over all databases.",
							NULL,
							&idalloc_max_allocators,
							128,
							1,
							INT_MAX / 2,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("idalloc.max_block",
							"The largest step an allocator's persisted window may grow to under load.",
							"At or below an allocator's block, its step stays fixed.",
							&idalloc_max_block,
							1073741824,
							1,
							INT_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("idalloc.persister",
							 "Persists allocators' next blocks ahead of need in a background worker per database.",
							 "Off: callers persist blocks themselves when they run out, as in 1.0.",
							 &idalloc_persister,
							 true,
							 PGC_SIGHUP,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("idalloc.debug_tso_clock_offset",
							"Milliseconds added to the clock that tso allocators read (a testing aid).",
							"Simulates a clock that jumps backward or forward.",
							&idalloc_debug_tso_clock_offset,
							0, -INT_MAX, INT_MAX,
							PGC_SUSET,
							GUC_UNIT_MS,
							NULL, assign_debug_tso_clock_offset, NULL);

	DefineCustomIntVariable("idalloc.source_timeout",
							"How long a sourced allocator waits for its authority before it fails.",
							"Also bounds each connection attempt and query to the authority.",
							&idalloc_source_timeout,
							5000, 1, INT_MAX,
							PGC_USERSET,
							GUC_UNIT_MS,
							NULL, NULL, NULL);

	DefineCustomBoolVariable("idalloc.wait_for_sync_standby",
							 "Makes a block advance wait for the synchronous standbys, as a commit would.",
							 NULL,
							 &idalloc_wait_for_sync_standby,
							 true,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("idalloc");

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = idalloc_shmem_request_hook;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = idalloc_shmem_startup_hook;
	prev_object_access_hook = object_access_hook;
	object_access_hook = idalloc_object_access;
	idalloc_source_init();
	idalloc_triggers_init();

	RegisterXactCallback(idalloc_xact_callback, NULL);
	CacheRegisterRelcacheCallback(idalloc_relcache_callback, (Datum) 0);
	RegisterSubXactCallback(idalloc_subxact_callback, NULL);
}
