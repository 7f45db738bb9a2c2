/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The persister: a background worker per database that persists
 *		allocators' next blocks ahead of need (G7).
 *
 * Shape (as Citus's maintenance daemon and TimescaleDB's schedulers): one
 * worker per database in which allocators are in use, started on demand by
 * a backend through RegisterDynamicBackgroundWorker, connected to that
 * database (a worker that writes a table is bound to one database for
 * life), and gone after IDALLOC_PERSISTER_IDLE_MS without work.  A
 * registry in shared memory (one entry per database, under its own LWLock)
 * says which worker serves which database, and where its latch is.
 *
 * Protocol:
 *	- a backend that takes IDs and leaves fewer than the slot's low water
 *	  mark (half a step) before the flushed end sets the slot's
 *	  ahead_pending flag (once per block) and wakes the database's worker,
 *	  starting it if there is none (idalloc_request_ahead);
 *	- the worker, woken, persists the next block of every pending slot of
 *	  its database (shmem.c, idalloc_persist_ahead): a transactional UPDATE
 *	  of the row in a transaction of its own, committed (flushed, and
 *	  acknowledged by the synchronous standbys), then the new end is
 *	  published; it holds the allocator's advance lock as a session lock
 *	  from its re-check to the publication;
 *	- so in steady state callers find the next block already flushed; a
 *	  caller that outruns the worker records what it needs in the slot and
 *	  sleeps on the slot's condition variable (shmem.c, wait_for_persister),
 *	  which the worker broadcasts after each publication and each failure;
 *	  if no worker runs, it starts one and waits for it briefly; if none
 *	  can run, or it failed, the caller persists the block itself, in place,
 *	  as in 1.0, and asks the worker to write the row again (carry_pending)
 *	  so that logical replication sees the block too.
 *
 * Nothing depends on the worker for correctness: it only moves the end
 * earlier.  It is never restarted by the postmaster (BGW_NEVER_RESTART):
 * if it cannot start (max_worker_processes) or dies, callers persist their
 * blocks themselves, and the next request starts a new one (after a back
 * off of IDALLOC_PERSISTER_RETRY_MS when a start failed).
 *
 * A worker connected to a database would make DROP DATABASE, CREATE
 * DATABASE ... TEMPLATE, ALTER DATABASE ... RENAME/SET TABLESPACE fail
 * ("being accessed by other users"): the utility hook stops it first
 * (idalloc_worker_stop), as TimescaleDB does for its schedulers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "idalloc.h"

/* a worker exits after this long without work */
#define IDALLOC_PERSISTER_IDLE_MS	10000
/* after a failed start, no new attempt for this long */
#define IDALLOC_PERSISTER_RETRY_MS	1000
/* a worker that was asked to start but has not registered after this long
 * is taken for lost (its start failed in the postmaster) */
#define IDALLOC_PERSISTER_START_MS	10000

typedef struct PersisterEntry
{
	Oid			dboid;			/* InvalidOid: free */
	int			pid;			/* 0 while starting */
	int			pgprocno;		/* of the worker, to set its latch */
	TimestampTz requested;		/* when a start was asked for */
	TimestampTz failed;			/* when a start last failed, or 0 */
	bool		stopping;		/* a command needs the database free: no
								 * worker may start or register */
} PersisterEntry;

typedef struct PersisterShared
{
	LWLock	   *lock;			/* protects entries */
	int			nentries;
	PersisterEntry entries[FLEXIBLE_ARRAY_MEMBER];
} PersisterShared;

static PersisterShared *persisters = NULL;

static Size
worker_shmem_size(void)
{
	/* one per database with allocators in use: at most one per slot */
	return add_size(offsetof(PersisterShared, entries),
					mul_size(idalloc_max_allocators, sizeof(PersisterEntry)));
}

void
idalloc_worker_shmem_request(void)
{
	RequestAddinShmemSpace(worker_shmem_size());
	RequestNamedLWLockTranche("idalloc_persisters", 1);
}

/* Called from shmem_startup_hook (caller holds AddinShmemInitLock). */
void
idalloc_worker_shmem_init(void)
{
	bool		found;

	persisters = ShmemInitStruct("idalloc persisters", worker_shmem_size(),
								 &found);
	if (!found)
	{
		persisters->lock = &(GetNamedLWLockTranche("idalloc_persisters"))->lock;
		persisters->nentries = idalloc_max_allocators;
		for (int i = 0; i < persisters->nentries; i++)
			memset(&persisters->entries[i], 0, sizeof(PersisterEntry));
	}
}

/* The entry of database dboid, or NULL.  Caller holds persisters->lock. */
static PersisterEntry *
find_entry(Oid dboid, PersisterEntry **free_entry)
{
	for (int i = 0; i < persisters->nentries; i++)
	{
		PersisterEntry *e = &persisters->entries[i];

		if (e->dboid == dboid)
			return e;
		if (free_entry != NULL && *free_entry == NULL && e->dboid == InvalidOid)
			*free_entry = e;
	}
	return NULL;
}

/* Ask the postmaster for a worker for dboid.  Returns false if it cannot. */
static bool
start_worker(Oid dboid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS |
		BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "idalloc", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "idalloc_persister_main", BGW_MAXLEN);
	snprintf(worker.bgw_name, BGW_MAXLEN, "idalloc persister for database %u",
			 dboid);
	strlcpy(worker.bgw_type, "idalloc persister", BGW_MAXLEN);
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = 0;
	return RegisterDynamicBackgroundWorker(&worker, &handle);
}

/*
 * Wake the persister of database dboid, starting one if there is none (and
 * no start is under way or failed just now).
 */
void
idalloc_worker_wake(Oid dboid)
{
	PersisterEntry *e;
	PersisterEntry *free_entry = NULL;
	int			pgprocno = -1;
	TimestampTz now;

	if (persisters == NULL)
		return;
	LWLockAcquire(persisters->lock, LW_SHARED);
	e = find_entry(dboid, NULL);
	if (e != NULL && e->pid != 0)
		pgprocno = e->pgprocno;
	LWLockRelease(persisters->lock);
	if (pgprocno >= 0)
	{
		SetLatch(&ProcGlobal->allProcs[pgprocno].procLatch);
		return;
	}

	now = GetCurrentTimestamp();
	LWLockAcquire(persisters->lock, LW_EXCLUSIVE);
	e = find_entry(dboid, &free_entry);
	if (e != NULL && e->pid != 0 && !e->stopping)
		pgprocno = e->pgprocno;
	else if (e != NULL &&
			 (e->stopping ||	/* DROP DATABASE or the like under way */
			  (e->failed != 0 &&
			   !TimestampDifferenceExceeds(e->failed, now, IDALLOC_PERSISTER_RETRY_MS)) ||
			  (e->failed == 0 &&
			   !TimestampDifferenceExceeds(e->requested, now, IDALLOC_PERSISTER_START_MS))))
		;						/* starting, or failed just now */
	else if (e != NULL || free_entry != NULL)
	{
		if (e == NULL)
			e = free_entry;
		e->dboid = dboid;
		e->pid = 0;
		e->pgprocno = -1;
		e->stopping = false;
		e->requested = now;
		e->failed = start_worker(dboid) ? 0 : now;
	}
	LWLockRelease(persisters->lock);
	if (pgprocno >= 0)
		SetLatch(&ProcGlobal->allProcs[pgprocno].procLatch);
}

/* Does a persister serve database dboid now? */
bool
idalloc_worker_alive(Oid dboid)
{
	PersisterEntry *e;
	bool		alive;

	if (persisters == NULL)
		return false;
	LWLockAcquire(persisters->lock, LW_SHARED);
	e = find_entry(dboid, NULL);
	alive = e != NULL && e->pid != 0 && !e->stopping;
	LWLockRelease(persisters->lock);
	return alive;
}

/*
 * Make sure a persister serves database dboid: start one if none runs, and
 * wait (interruptibly) until it is ready, at most timeout_ms after its
 * start was asked for.  False if none
 * could start (max_worker_processes, or a start failed just now).
 */
bool
idalloc_worker_await(Oid dboid, int timeout_ms)
{
	for (;;)
	{
		PersisterEntry *e;
		bool		hopeless;

		if (idalloc_worker_alive(dboid))
			return true;
		idalloc_worker_wake(dboid);

		/*
		 * Not if none could start, nor once the start under way was asked
		 * for more than timeout_ms ago (whoever asked): a start that was
		 * lost in the postmaster holds up no caller for long.
		 */
		LWLockAcquire(persisters->lock, LW_SHARED);
		e = find_entry(dboid, NULL);
		hopeless = e == NULL || e->stopping || e->failed != 0 ||
			TimestampDifferenceExceeds(e->requested, GetCurrentTimestamp(),
									   timeout_ms);
		LWLockRelease(persisters->lock);
		if (hopeless)
			return idalloc_worker_alive(dboid);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 5L, idalloc_wait_event(IDALLOC_WAIT_WORKER));
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Called by a backend whose allocation left the window low (idalloc.h). */
void
idalloc_request_ahead(IdallocSlot *slot)
{
	if (pg_atomic_read_u32(&slot->ahead_pending) != 0 ||
		pg_atomic_exchange_u32(&slot->ahead_pending, 1) != 0)
		return;
	idalloc_worker_wake(MyDatabaseId);
}

/*
 * Stop the persister of database dboid, if one runs, and wait (up to 10 s)
 * until it is gone: the commands that need a database without connections
 * (DROP DATABASE, CREATE DATABASE ... TEMPLATE, ALTER DATABASE ... RENAME or
 * SET TABLESPACE) call this first, and idalloc_worker_stop_done when they
 * end.  In between the entry is "stopping": no worker starts or registers
 * for the database (a worker that was starting exits at once), so that the
 * database's own backends cannot start a new one meanwhile.
 */
void
idalloc_worker_stop(Oid dboid)
{
	PersisterEntry *e;
	PersisterEntry *free_entry = NULL;

	LWLockAcquire(persisters->lock, LW_EXCLUSIVE);
	e = find_entry(dboid, &free_entry);
	if (e == NULL && free_entry != NULL)
	{
		e = free_entry;
		memset(e, 0, sizeof(*e));
		e->dboid = dboid;
		e->pgprocno = -1;
	}
	if (e != NULL)
		e->stopping = true;
	LWLockRelease(persisters->lock);

	for (int i = 0; e != NULL && i < 1000; i++)
	{
		int			pid;

		LWLockAcquire(persisters->lock, LW_SHARED);
		pid = e->dboid == dboid ? e->pid : 0;
		LWLockRelease(persisters->lock);
		if (pid == 0)
			return;
		(void) kill(pid, SIGTERM);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10L, idalloc_wait_event(IDALLOC_WAIT_WORKER));
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* The command that called idalloc_worker_stop has ended: free the entry. */
void
idalloc_worker_stop_done(Oid dboid)
{
	PersisterEntry *e;

	LWLockAcquire(persisters->lock, LW_EXCLUSIVE);
	e = find_entry(dboid, NULL);
	if (e != NULL && e->pid == 0)
		memset(e, 0, sizeof(*e));	/* dboid = InvalidOid: free */
	else if (e != NULL)
		e->stopping = false;
	LWLockRelease(persisters->lock);
}

/* ---------- the worker ---------- */

static Oid	my_dboid = InvalidOid;

/* at exit: let go of the database's entry */
static void
persister_unregister(int code, Datum arg)
{
	PersisterEntry *e;

	LWLockAcquire(persisters->lock, LW_EXCLUSIVE);
	e = find_entry(my_dboid, NULL);
	if (e != NULL && e->pid == MyProcPid)
	{
		if (e->stopping)
		{
			/* keep the mark until the command that stops us ends */
			e->pid = 0;
			e->pgprocno = -1;
		}
		else
			e->dboid = InvalidOid;
	}
	LWLockRelease(persisters->lock);

	/*
	 * Requests made since the last scan would otherwise wait for callers
	 * to persist the blocks themselves: clear them, so that the next call
	 * asks again (and starts a new worker).
	 */
	for (int i = 0; i < idalloc_shared->nslots; i++)
		if (idalloc_slots[i].dboid == my_dboid)
		{
			pg_atomic_write_u32(&idalloc_slots[i].ahead_pending, 0);
			/* callers waiting for us persist their blocks themselves */
			ConditionVariableBroadcast(&idalloc_slots[i].published);
		}
}

/* Take the database's entry.  False if another worker serves it. */
static bool
persister_register(Oid dboid)
{
	PersisterEntry *e;
	PersisterEntry *free_entry = NULL;
	bool		ok = false;

	LWLockAcquire(persisters->lock, LW_EXCLUSIVE);
	e = find_entry(dboid, &free_entry);
	if (e == NULL)
		e = free_entry;
	if (e != NULL && !e->stopping &&
		(e->dboid != dboid || e->pid == 0 || e->pid == MyProcPid))
	{
		e->dboid = dboid;
		e->pid = MyProcPid;
		e->pgprocno = idalloc_proc_number(MyProc);
		e->failed = 0;
		ok = true;
	}
	LWLockRelease(persisters->lock);
	return ok;
}

/*
 * Persist the next block of slot i (idalloc_persist_ahead runs its own
 * transaction); an error is reported and the slot left to its callers
 * (they persist blocks themselves).
 */
static void
persist_one(int i)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	PG_TRY();
	{
		(void) idalloc_persist_ahead(my_dboid, i);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		/* the allocator's advance lock, held as a session lock */
		LockReleaseSession(USER_LOCKMETHOD);
		idalloc_persist_ahead_failed(i);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
}

/* Persist the next block of every pending slot of this database. */
static bool
persist_pending(void)
{
	bool		worked = false;

	/* local blocks first (a flush), then fetches (network round trips) */
	for (int pass = 0; pass < 2; pass++)
	for (int i = 0; i < idalloc_shared->nslots; i++)
	{
		IdallocSlot *slot = &idalloc_slots[i];

		if (slot->dboid != my_dboid || slot->sourced != (pass == 1) ||
			(pg_atomic_read_u32(&slot->ahead_pending) == 0 &&
			 pg_atomic_read_u32(&slot->carry_pending) == 0))
			continue;
		if (slot->sourced)
		{
			/* start fetching a block from the authority (source.c) */
			if (idalloc_source_fetch_start(my_dboid, i))
				worked = true;
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		worked = true;
		persist_one(i);
		CHECK_FOR_INTERRUPTS();
	}
	return worked;
}

void
idalloc_persister_main(Datum arg)
{
	TimestampTz idle_since;

	my_dboid = DatumGetObjectId(arg);
	pqsignal(SIGTERM, die);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(my_dboid, InvalidOid, 0);
	pgstat_report_appname("idalloc persister");

	/*
	 * One allocator's write must not hold up the others' for long (an
	 * uncommitted idalloc_drop holding its row, a queued AccessExclusiveLock
	 * on the table): give up on it after a second, its callers persist
	 * that block themselves.
	 */
	SetConfigOption("lock_timeout", "1000", PGC_SUSET, PGC_S_OVERRIDE);

	if (idalloc_shared == NULL || !persister_register(my_dboid))
		proc_exit(0);
	on_shmem_exit(persister_unregister, (Datum) 0);

	idle_since = GetCurrentTimestamp();
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		/* (persisting always; a fetch under way is work too) */
		if (persist_pending() || idalloc_source_fetching())
			idle_since = GetCurrentTimestamp();
		else if (TimestampDifferenceExceeds(idle_since, GetCurrentTimestamp(),
											IDALLOC_PERSISTER_IDLE_MS))
			break;
		/* the latch, and the sockets of the fetches under way */
		idalloc_source_wait(my_dboid, 1000L);
	}
	proc_exit(0);
}
