/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Shared-memory state of live allocators and its locking protocol.
 *
 * Shared memory holds idalloc.max_allocators slots.  A slot is "attached"
 * to one allocator, identified by (database OID, registry id); the id
 * comes from a sequence and is never reused, so a dropped-and-recreated
 * allocator of the same name, or the same name in another database, never
 * meets the state of another one.  A slot holds:
 *
 *	next		next ID to hand out (pg_atomic_uint64 holding an int64)
 *	end			end (exclusive) of the block that is persisted *and flushed*
 *	generation	unique per attachment, 0 while the slot is free
 *
 * Invariant: every ID in [next, end) may be handed out; every ID below
 * next has been handed out or thrown away; end never exceeds what the
 * catalog row says and what was flushed to WAL.
 *
 * Locking protocol
 * ----------------
 * idalloc_shared->lock (the "slot-assignment lock"):
 *		EXCLUSIVE to attach or detach a slot (writes dboid, id, generation);
 *		SHARED to look slots up or list them.
 * slot lock (one LWLock per slot, same tranche "idalloc"):
 *		protects advancing, advancer_pid, block_advances, attached_next;
 *		EXCLUSIVE while publishing a new end and while detaching.
 * Nesting: the slot-assignment lock before a slot lock, never the reverse.
 * No LWLock is held across I/O: a backend that persists a new block sets
 * `advancing` under the slot lock, releases it, writes and flushes the
 * row, then takes the slot lock again to publish.  Others wait on the
 * slot's condition variable (interruptibly) meanwhile.
 *
 * Atomics: `next` moves forward by compare-and-swap on the fast path,
 * never past `end`; the slow path raises it (CAS max) under the slot lock.
 * `end` is written only under the slot lock, after the WAL flush, and only
 * after `next` was raised, so no reader can pair an old next with a new end.
 * `generation` is written under both locks; a backend that took IDs with
 * CAS re-reads it and discards the IDs if the slot was detached meanwhile.
 *
 * Condition variables and LWLocks of slots are initialised once, at
 * shared-memory creation, and never again, so a backend still sleeping on
 * a slot that is detached and reused only sees a spurious wake-up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/wait_event.h"

#include "idalloc.h"

/* value of next and end of a free slot: no request fits */
#define FREE_SLOT_VALUE ((uint64) PG_INT64_MIN)

IdallocShared *idalloc_shared = NULL;

/* first slot lock in the tranche; lock 0 is the slot-assignment lock */
static LWLockPadded *idalloc_locks = NULL;

static inline LWLock *
slot_lock(IdallocSlot *slot)
{
	int			i = slot - idalloc_shared->slots;

	Assert(i >= 0 && i < idalloc_shared->nslots);
	return &idalloc_locks[i + 1].lock;
}

Size
idalloc_shmem_size(void)
{
	return add_size(offsetof(IdallocShared, slots),
					mul_size(idalloc_max_allocators, sizeof(IdallocSlot)));
}

/* Called from shmem_request_hook. */
void
idalloc_shmem_request(void)
{
	RequestAddinShmemSpace(idalloc_shmem_size());
	RequestNamedLWLockTranche("idalloc", idalloc_max_allocators + 1);
}

/*
 * Called from shmem_startup_hook, in the postmaster at start-up and after
 * each crash-restart (fresh memory: nothing of a dead backend survives).
 */
void
idalloc_shmem_init(void)
{
	bool		found;

	idalloc_shared = NULL;
	idalloc_locks = NULL;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	idalloc_shared = ShmemInitStruct("idalloc", idalloc_shmem_size(), &found);
	idalloc_locks = GetNamedLWLockTranche("idalloc");
	if (!found)
	{
		idalloc_shared->lock = &idalloc_locks[0].lock;
		pg_atomic_init_u64(&idalloc_shared->generation_counter, 0);
		idalloc_shared->nslots = idalloc_max_allocators;
		for (int i = 0; i < idalloc_max_allocators; i++)
		{
			IdallocSlot *slot = &idalloc_shared->slots[i];

			pg_atomic_init_u64(&slot->next, FREE_SLOT_VALUE);
			pg_atomic_init_u64(&slot->end, FREE_SLOT_VALUE);
			pg_atomic_init_u64(&slot->generation, 0);
			slot->dboid = InvalidOid;
			slot->id = 0;
			slot->advancing = false;
			slot->advancer_pid = 0;
			slot->block_advances = 0;
			slot->attached_next = 0;
			ConditionVariableInit(&slot->advance_cv);
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

static inline bool
slot_is(IdallocSlot *slot, Oid dboid, int64 id)
{
	return pg_atomic_read_u64(&slot->generation) != 0 &&
		slot->dboid == dboid && slot->id == id;
}

static void
fill_ref(IdallocSlot *slot, IdallocRef *ref)
{
	ref->slot = slot;
	ref->generation = pg_atomic_read_u64(&slot->generation);
	ref->id = slot->id;
	Assert(ref->generation != 0);
}

/*
 * Find or attach the slot of allocator (dboid, id).  A new attachment
 * starts with next = end = persisted_end: nothing can be handed out before
 * the first block advance, which reads the row again under the in-place
 * update lock (so a stale persisted_end here can never cause a repeat).
 *
 * Returns false when every slot is taken (idalloc.max_allocators).
 */
bool
idalloc_attach(Oid dboid, int64 id, int64 persisted_end, IdallocRef *ref)
{
	IdallocSlot *free_slot = NULL;
	LWLock	   *lock;

	/* common case: already attached by someone */
	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	for (int i = 0; i < idalloc_shared->nslots; i++)
	{
		IdallocSlot *slot = &idalloc_shared->slots[i];

		if (slot_is(slot, dboid, id))
		{
			fill_ref(slot, ref);
			LWLockRelease(idalloc_shared->lock);
			return true;
		}
	}
	LWLockRelease(idalloc_shared->lock);

	LWLockAcquire(idalloc_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < idalloc_shared->nslots; i++)
	{
		IdallocSlot *slot = &idalloc_shared->slots[i];

		if (slot_is(slot, dboid, id))
		{
			fill_ref(slot, ref);
			LWLockRelease(idalloc_shared->lock);
			return true;
		}
		if (free_slot == NULL && pg_atomic_read_u64(&slot->generation) == 0)
			free_slot = slot;
	}
	if (free_slot == NULL)
	{
		LWLockRelease(idalloc_shared->lock);
		return false;
	}

	lock = slot_lock(free_slot);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	free_slot->dboid = dboid;
	free_slot->id = id;
	free_slot->advancing = false;
	free_slot->advancer_pid = 0;
	free_slot->block_advances = 0;
	free_slot->attached_next = persisted_end;
	pg_atomic_write_u64(&free_slot->next, (uint64) persisted_end);
	pg_atomic_write_u64(&free_slot->end, (uint64) persisted_end);
	pg_write_barrier();
	pg_atomic_write_u64(&free_slot->generation,
						pg_atomic_add_fetch_u64(&idalloc_shared->generation_counter, 1));
	fill_ref(free_slot, ref);
	LWLockRelease(lock);
	LWLockRelease(idalloc_shared->lock);
	return true;
}

/*
 * Free a slot.  Caller holds the slot-assignment lock exclusive.  Backends
 * still holding a reference see the generation change and look the
 * allocator up again; a backend in the middle of an advance finishes its
 * write (harmless) and does not publish.
 */
static void
detach_slot(IdallocSlot *slot)
{
	LWLock	   *lock = slot_lock(slot);

	Assert(LWLockHeldByMeInMode(idalloc_shared->lock, LW_EXCLUSIVE));
	LWLockAcquire(lock, LW_EXCLUSIVE);
	pg_atomic_write_u64(&slot->generation, 0);
	pg_write_barrier();
	pg_atomic_write_u64(&slot->end, FREE_SLOT_VALUE);
	pg_atomic_write_u64(&slot->next, FREE_SLOT_VALUE);
	slot->dboid = InvalidOid;
	slot->id = 0;
	slot->advancing = false;
	slot->advancer_pid = 0;
	LWLockRelease(lock);
	ConditionVariableBroadcast(&slot->advance_cv);
}

/* Detach allocator (dboid, id) if attached. */
void
idalloc_detach(Oid dboid, int64 id)
{
	LWLockAcquire(idalloc_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < idalloc_shared->nslots; i++)
	{
		IdallocSlot *slot = &idalloc_shared->slots[i];

		if (slot_is(slot, dboid, id))
			detach_slot(slot);
	}
	LWLockRelease(idalloc_shared->lock);
}

/* Detach every allocator of a database (DROP EXTENSION, DROP DATABASE). */
void
idalloc_detach_database(Oid dboid)
{
	LWLockAcquire(idalloc_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < idalloc_shared->nslots; i++)
	{
		IdallocSlot *slot = &idalloc_shared->slots[i];

		if (pg_atomic_read_u64(&slot->generation) != 0 && slot->dboid == dboid)
			detach_slot(slot);
	}
	LWLockRelease(idalloc_shared->lock);
}

/* Raise slot->next to at least `floor`.  Caller holds the slot lock. */
static void
raise_next(IdallocSlot *slot, int64 floor)
{
	uint64		cur = pg_atomic_read_u64(&slot->next);

	Assert(LWLockHeldByMeInMode(slot_lock(slot), LW_EXCLUSIVE));
	while ((int64) cur < floor)
	{
		if (pg_atomic_compare_exchange_u64(&slot->next, &cur, (uint64) floor))
			break;
	}
}

/* The advance of the slot referenced here is in progress in this backend. */
static IdallocRef advancing_ref;

/*
 * Error cleanup of an advance (ERROR or FATAL while persisting): let the
 * waiters go; one of them will try again.
 */
static void
advance_cleanup(int code, Datum arg)
{
	IdallocSlot *slot = advancing_ref.slot;
	LWLock	   *lock = slot_lock(slot);

	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u64(&slot->generation) == advancing_ref.generation &&
		slot->advancing && slot->advancer_pid == MyProcPid)
	{
		slot->advancing = false;
		slot->advancer_pid = 0;
	}
	LWLockRelease(lock);
	ConditionVariableBroadcast(&slot->advance_cv);
}

/*
 * Slow path.  With count > 0: the flushed block cannot serve `count` IDs;
 * wait for another backend's advance, or persist a new block (large enough
 * for `count`) ourselves, then return IDALLOC_RETRY so that the caller takes
 * its IDs on the fast path.  With count == 0: make every later ID of the
 * allocator >= floor (persisting a block from floor if needed), and return
 * IDALLOC_TAKEN with *first set to the allocator's next ID.
 *
 * Returns IDALLOC_STALE if the slot no longer holds the allocator.
 * Errors (dropped allocator, range exhausted, read-only) leave the slot
 * as it was.
 */
IdallocTake
idalloc_take_slow(IdallocRef *ref, int64 count, int64 floor, int64 *first)
{
	IdallocSlot *slot = ref->slot;
	LWLock	   *lock = slot_lock(slot);
	int64		cur_next;
	int64		cur_end;
	int64		new_end;
	int64		next_floor;
	bool		stale;

	Assert(count >= 0);
	for (;;)
	{
		int64		want;

		CHECK_FOR_INTERRUPTS();
		LWLockAcquire(lock, LW_EXCLUSIVE);
		if (pg_atomic_read_u64(&slot->generation) != ref->generation)
		{
			LWLockRelease(lock);
			ConditionVariableCancelSleep();
			return IDALLOC_STALE;
		}
		cur_next = (int64) pg_atomic_read_u64(&slot->next);
		cur_end = (int64) pg_atomic_read_u64(&slot->end);
		Assert(cur_next <= cur_end || slot->advancing);

		if (count > 0 && floor <= cur_next &&
			!pg_add_s64_overflow(cur_next, count, &want) && want <= cur_end)
		{
			/* someone else advanced meanwhile */
			LWLockRelease(lock);
			ConditionVariableCancelSleep();
			return IDALLOC_RETRY;
		}
		if (count == 0 && floor <= cur_end && !slot->advancing)
		{
			/* advance within the flushed block: no I/O needed */
			raise_next(slot, floor);
			*first = (int64) pg_atomic_read_u64(&slot->next);
			LWLockRelease(lock);
			ConditionVariableCancelSleep();
			return IDALLOC_TAKEN;
		}
		if (!slot->advancing)
			break;
		LWLockRelease(lock);
		ConditionVariableSleep(&slot->advance_cv, PG_WAIT_EXTENSION);
	}
	ConditionVariableCancelSleep();
	slot->advancing = true;
	slot->advancer_pid = MyProcPid;
	LWLockRelease(lock);

	advancing_ref = *ref;
	PG_ENSURE_ERROR_CLEANUP(advance_cleanup, (Datum) 0);
	{
		new_end = idalloc_persist_block(ref->id, cur_next, cur_end, count,
										floor, &next_floor);
	}
	PG_END_ENSURE_ERROR_CLEANUP(advance_cleanup, (Datum) 0);

	LWLockAcquire(lock, LW_EXCLUSIVE);
	stale = pg_atomic_read_u64(&slot->generation) != ref->generation;
	if (!stale)
	{
		Assert(slot->advancing && slot->advancer_pid == MyProcPid);
		Assert(new_end >= next_floor);
		/* next first, then end: see the protocol above */
		raise_next(slot, next_floor);
		pg_memory_barrier();
		pg_atomic_write_u64(&slot->end, (uint64) new_end);
		slot->advancing = false;
		slot->advancer_pid = 0;
		slot->block_advances++;
		*first = (int64) pg_atomic_read_u64(&slot->next);
	}
	LWLockRelease(lock);
	ConditionVariableBroadcast(&slot->advance_cv);

	if (stale)
		return IDALLOC_STALE;
	return count == 0 ? IDALLOC_TAKEN : IDALLOC_RETRY;
}
