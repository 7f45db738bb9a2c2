/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Differences between the PostgreSQL majors idalloc is built for
 *		(15, 17 and 18), in one place, as pg_wait_sampling and pg_hint_plan
 *		keep theirs: every guard on PG_VERSION_NUM is here, and the logic
 *		files use the helpers below instead of growing #if blocks.
 *
 * What changed upstream, by major:
 *	16	relfilenode became relfilelocator (rd_firstRelfilelocatorSubid);
 *		pg_database_ownercheck became object_ownercheck
 *	17	backend ids became proc numbers (storage/procnumber.h, MyProcNumber;
 *		PGPROC lost pgprocno: GetNumberFromPGProc); LockHeldByMe gained
 *		an "orstronger" flag; CreateWaitEventSet takes a ResourceOwner;
 *		custom wait events (WaitEventExtensionNew), which idalloc uses so
 *		that its waits have names of their own in pg_stat_activity
 *	18	pg_attribute_noreturn() after a declaration became pg_noreturn
 *		before it
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDALLOC_COMPAT_H
#define IDALLOC_COMPAT_H

#include "postgres.h"

#include "storage/lock.h"
#include "storage/proc.h"
#include "utils/rel.h"

#if PG_VERSION_NUM >= 170000
#include "storage/procnumber.h"
#else
#include "storage/backendid.h"
#endif

#include "catalog/pg_database.h"
#include "utils/acl.h"

#if PG_VERSION_NUM < 150000 || (PG_VERSION_NUM >= 160000 && PG_VERSION_NUM < 170000) || PG_VERSION_NUM >= 190000
#error "idalloc is built and tested for PostgreSQL 15, 17 and 18"
#endif

/* 18's spelling of a function that does not return, before it */
#ifndef pg_noreturn
#define pg_noreturn _Noreturn
#endif

/*
 * This process's number among the backends, from 1: 15's MyBackendId (0
 * for a process without one, as the postmaster), 17's MyProcNumber + 1
 * (0 without one; an auxiliary process's is above MaxBackends).  Callers
 * check it against what they sized for MaxBackends.
 */
static inline int
idalloc_my_backend_number(void)
{
#if PG_VERSION_NUM >= 170000
	return MyProcNumber == INVALID_PROC_NUMBER ? 0 : MyProcNumber + 1;
#else
	return MyBackendId == InvalidBackendId ? 0 : MyBackendId;
#endif
}

/* The index of proc in ProcGlobal->allProcs (to set its latch). */
static inline int
idalloc_proc_number(PGPROC *proc)
{
#if PG_VERSION_NUM >= 170000
	return GetNumberFromPGProc(proc);
#else
	return proc->pgprocno;
#endif
}

/* Did this (sub)transaction give rel new storage (a rewrite, TRUNCATE)? */
static inline bool
idalloc_rel_storage_new_in_xact(Relation rel)
{
#if PG_VERSION_NUM >= 160000
	return rel->rd_firstRelfilelocatorSubid != InvalidSubTransactionId;
#else
	return rel->rd_firstRelfilenodeSubid != InvalidSubTransactionId;
#endif
}

/* Does this backend hold the lock `tag` in exactly `mode`? */
static inline bool
idalloc_lock_held_by_me(const LOCKTAG *tag, LOCKMODE mode)
{
#if PG_VERSION_NUM >= 170000
	return LockHeldByMe(tag, mode, false);
#else
	return LockHeldByMe(tag, mode);
#endif
}

/* Does role own database dboid? */
static inline bool
idalloc_database_owner(Oid dboid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(DatabaseRelationId, dboid, roleid);
#else
	return pg_database_ownercheck(dboid, roleid);
#endif
}

/* A WaitEventSet freed by its creator (no resource owner on 17+). */
#if PG_VERSION_NUM >= 170000
#define idalloc_create_wait_event_set(nevents) \
	CreateWaitEventSet(NULL, (nevents))
#else
#define idalloc_create_wait_event_set(nevents) \
	CreateWaitEventSet(CurrentMemoryContext, (nevents))
#endif

/*
 * idalloc's waits, named in pg_stat_activity's wait_event on 17+ (custom
 * wait events of type Extension); on 15 they are all "Extension".
 */
typedef enum IdallocWait
{
	IDALLOC_WAIT_BLOCK,			/* a caller waits for a block */
	IDALLOC_WAIT_PERSISTER,		/* the persister's main loop */
	IDALLOC_WAIT_SOURCE,		/* a fetch from (or call to) an authority */
	IDALLOC_WAIT_WORKER,		/* waiting for a persister to start or stop */
	IDALLOC_WAIT_COUNT
} IdallocWait;

extern uint32 idalloc_wait_event(IdallocWait which);

#endif							/* IDALLOC_COMPAT_H */
