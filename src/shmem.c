/*-------------------------------------------------------------------------
 *
 * shmem.c
 *		Shared-memory state of live allocators and its locking protocol.
 *
 * Shared memory holds idalloc.max_allocators slots.  A slot is "attached"
 * to one allocator, identified by (database OID, extension OID, registry
 * id); the id comes from the installation's sequence and is never reused,
 * so a dropped-and-recreated allocator of the same name, the same name in
 * another database, or a second installation of the extension in the same
 * transaction (whose sequence starts again at 1) never meets the state of
 * another one.  A slot holds:
 *
 *	next		next ID to hand out (pg_atomic_uint64 holding an int64)
 *	end			end (exclusive) of the block that is persisted *and flushed*
 *	generation	unique per attachment, 0 while the slot is free
 *	cache_epoch	bumped by idalloc_advance; per-backend cached ranges taken
 *				under an older epoch are void (cache.c)
 *	cache_size	IDs per refill of a per-backend cache (1: no cache)
 *
 * Invariant: every ID in [next, end) may be handed out; every ID below
 * next has been handed out or thrown away; end never exceeds what the
 * catalog row says and what was flushed to WAL.
 *
 * Locking protocol
 * ----------------
 * idalloc_shared->lock (the "slot-assignment lock"):
 *		EXCLUSIVE to attach or detach a slot (writes dboid, extoid, id,
 *		generation); SHARED to look slots up or list them.
 * slot lock (one LWLock per slot, same tranche "idalloc"):
 *		protects block_advances and unverified; EXCLUSIVE while publishing
 *		a new end, raising next or bumping cache_epoch for an advance,
 *		giving back a cached range, and detaching.
 * allocator advance lock (a heavyweight lock, advisory tag (database, id,
 *		IDALLOC_LOCKTAG_FIELD4), taken and released explicitly): held by the
 *		one backend that persists the allocator's next block (or raises it,
 *		idalloc_raise), from its re-check of the slot to the publication of
 *		the new end; the others sleep on it, interruptibly, and visible to
 *		the deadlock detector (which a condition variable would not be: the
 *		in-place write can itself wait for a transaction that drops the
 *		allocator).
 *		The persister holds it as a session lock, across the commit of its
 *		transactional write, until it has published.
 * condition variable `published` (one per slot): a caller that ran out
 *		while a persister runs records the end it needs (slot->need, under
 *		the slot lock), lets go of the advance lock and sleeps here; the
 *		persister broadcasts after each publication and each failure.  A
 *		caller whose transaction holds a lock on the table that the
 *		persister's UPDATE would wait for never sleeps here (a deadlock no
 *		detector would see): it persists the block itself.
 * backend cache lock (cache.c, one per backend): see there.
 * Nesting: advance lock, then the slot-assignment lock, then a backend
 * cache lock, then a slot lock.
 * No LWLock is held across I/O: the advancer reads the slot under its
 * LWLock, releases it, writes and flushes the row holding only the advance
 * lock, then takes the slot's LWLock again to publish.
 *
 * Atomics: `next` moves forward by one fetch_add on the fast path (by a
 * compare-and-swap that never passes `end` for large requests and near the
 * top of the ID space, idalloc.h); a fetch_add may take `next` past `end`,
 * and its caller then owns a range that it hands out only once a block
 * covering it is published (idalloc_take_reserved).  The slow path raises
 * `next` (CAS max) under the slot lock.
 * `end` is written only under the slot lock, after the WAL flush, and only
 * after `next` was raised, so no reader can pair an old next with a new end.
 * `generation` is written under both locks; a backend that took IDs with
 * CAS re-reads it and discards the IDs if the slot was detached meanwhile.
 * `next` moves backward only when a backend gives back the unused rest of
 * its cached range, under the slot lock, by CAS from exactly the range's
 * end, and only if no advance happened since (cache_epoch unchanged).
 *
 * The LWLocks of slots are initialised once, at shared-memory creation, and
 * never again, so a backend still waiting for a slot that is detached and
 * reused meanwhile only finds a different generation.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

#include "idalloc.h"

/* value of next and end of a free slot: no request fits */
#define FREE_SLOT_VALUE ((uint64) PG_INT64_MIN)

IdallocShared *idalloc_shared = NULL;
IdallocSlot *idalloc_slots = NULL;
IdallocSourceError *idalloc_source_errors = NULL;

/* first slot lock in the tranche; lock 0 is the slot-assignment lock */
static LWLockPadded *idalloc_locks = NULL;

static void publish_step(IdallocSlot *slot, int64 step);

/* The tag of allocator `id`'s advance lock (see the locking protocol). */
static inline void
advance_lock_tag(LOCKTAG *tag, Oid dboid, int64 id)
{
	SET_LOCKTAG_ADVISORY(*tag, dboid, (uint32) (id >> 32), (uint32) id,
						 IDALLOC_LOCKTAG_FIELD4);
}

static inline LWLock *
slot_lock(IdallocSlot *slot)
{
	int			i = slot - idalloc_slots;

	Assert(i >= 0 && i < idalloc_shared->nslots);
	return &idalloc_locks[i + 1].lock;
}

Size
idalloc_shmem_size(void)
{
	return add_size(add_size(CACHELINEALIGN(sizeof(IdallocShared)),
							 mul_size(idalloc_max_allocators, sizeof(IdallocSlot))),
					mul_size(idalloc_max_allocators, sizeof(IdallocSourceError)));
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
	idalloc_slots = NULL;
	idalloc_locks = NULL;

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	idalloc_shared = ShmemInitStruct("idalloc", idalloc_shmem_size(), &found);
	idalloc_locks = GetNamedLWLockTranche("idalloc");
	idalloc_slots = (IdallocSlot *)
		((char *) idalloc_shared + CACHELINEALIGN(sizeof(IdallocShared)));
	/* shared memory allocations are cache-line aligned: so are the slots */
	Assert((uintptr_t) idalloc_slots % PG_CACHE_LINE_SIZE == 0);
	idalloc_source_errors = (IdallocSourceError *)
		(idalloc_slots + idalloc_max_allocators);
	if (!found)
	{
		memset(idalloc_source_errors, 0,
			   idalloc_max_allocators * sizeof(IdallocSourceError));
		idalloc_shared->lock = &idalloc_locks[0].lock;
		pg_atomic_init_u64(&idalloc_shared->generation_counter, 0);
		idalloc_shared->nslots = idalloc_max_allocators;
		idalloc_shared->raised_clock = 0;
		memset(idalloc_shared->raised, 0, sizeof(idalloc_shared->raised));
		for (int i = 0; i < idalloc_max_allocators; i++)
		{
			IdallocSlot *slot = &idalloc_slots[i];

			pg_atomic_init_u64(&slot->next, FREE_SLOT_VALUE);
			pg_atomic_init_u64(&slot->end, FREE_SLOT_VALUE);
			pg_atomic_init_u64(&slot->allocated, 0);
			pg_atomic_init_u64(&slot->waits, 0);
			pg_atomic_init_u64(&slot->low_water, 0);
			pg_atomic_init_u32(&slot->ahead_pending, 0);
			pg_atomic_init_u64(&slot->row_end, 0);
			pg_atomic_init_u32(&slot->ahead_failures, 0);
			pg_atomic_init_u32(&slot->carry_pending, 0);
			slot->need = 0;
			slot->sourced = false;
			slot->spare_start = 0;
			slot->spare_end = 0;
			slot->need_count = 0;
			pg_atomic_init_u32(&slot->source_failures, 0);
			ConditionVariableInit(&slot->published);
			slot->step = 0;
			slot->last_advance = 0;
			pg_atomic_init_u64(&slot->generation, 0);
			pg_atomic_init_u32(&slot->cache_epoch, 0);
			pg_atomic_init_u32(&slot->cache_size, 1);
			slot->dboid = InvalidOid;
			slot->extoid = InvalidOid;
			slot->id = 0;
			slot->block_advances = 0;
			slot->unverified = false;
		}
	}
	LWLockRelease(AddinShmemInitLock);
}

static inline bool
slot_is(IdallocSlot *slot, Oid dboid, Oid extoid, int64 id)
{
	return pg_atomic_read_u64(&slot->generation) != 0 &&
		slot->dboid == dboid && slot->extoid == extoid && slot->id == id;
}

static void
fill_ref(IdallocSlot *slot, IdallocRef *ref)
{
	ref->slot = slot;
	ref->generation = pg_atomic_read_u64(&slot->generation);
	ref->extoid = slot->extoid;
	ref->id = slot->id;
	Assert(ref->generation != 0);
}

/*
 * The slot attached to (dboid, extoid, id), or NULL; *free_slot (if not
 * NULL) gets the first free slot.  Caller holds the slot-assignment lock.
 */
static IdallocSlot *
find_slot(Oid dboid, Oid extoid, int64 id, IdallocSlot **free_slot)
{
	for (int i = 0; i < idalloc_shared->nslots; i++)
	{
		IdallocSlot *slot = &idalloc_slots[i];

		if (slot_is(slot, dboid, extoid, id))
			return slot;
		if (free_slot != NULL && *free_slot == NULL &&
			pg_atomic_read_u64(&slot->generation) == 0)
			*free_slot = slot;
	}
	return NULL;
}

/* Fill a free slot.  Caller holds the slot-assignment lock exclusive (or
 * is the postmaster at start-up, alone). */
static void
fill_slot(IdallocSlot *slot, Oid dboid, Oid extoid, int64 id, int64 next,
		  int64 end, int32 cache, int64 block, bool unverified)
{
	slot->dboid = dboid;
	slot->extoid = extoid;
	slot->id = id;
	slot->step = block;
	slot->last_advance = 0;
	pg_atomic_write_u64(&slot->waits, 0);
	pg_atomic_write_u64(&slot->low_water, (uint64) Max(block / 2, 0));
	pg_atomic_write_u32(&slot->ahead_pending, 0);
	slot->block_advances = 0;
	slot->unverified = unverified;
	pg_atomic_write_u64(&slot->next, (uint64) next);
	pg_atomic_write_u64(&slot->end, (uint64) end);
	pg_atomic_write_u64(&slot->allocated, 0);
	pg_atomic_write_u64(&slot->row_end, (uint64) end);
	pg_atomic_write_u32(&slot->carry_pending, 0);
	slot->need = 0;
	slot->tso = false;			/* the caller sets it from the row */
	slot->sourced = false;		/* likewise */
	slot->spare_start = 0;
	slot->spare_end = 0;
	slot->need_count = 0;
	slot->tso_real_ms = 0;
	slot->tso_mono_ms = 0;
	pg_atomic_write_u32(&slot->cache_epoch, 0);
	pg_atomic_write_u32(&slot->cache_size, (uint32) Max(cache, 1));
	pg_write_barrier();
	pg_atomic_write_u64(&slot->generation,
						pg_atomic_add_fetch_u64(&idalloc_shared->generation_counter, 1));
}

/*
 * A slot restored from the shutdown state file holds the exact next ID of a
 * clean shutdown.  Trust it only where the row agrees: its end must not be
 * beyond the row's persisted end (else next and end restart at the larger
 * of the row's end and the saved next, so that nothing repeats).  Returns
 * where it restarts in that case, else -1 (the caller logs it, after
 * letting go of the locks).  Caller holds the slot-assignment lock
 * exclusive.
 */
static int64
verify_restored_slot(IdallocSlot *slot, const IdallocRow *row)
{
	LWLock	   *lock = slot_lock(slot);
	int64		restart = -1;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (row->sourced)
	{
		/* (never saved; a file of an older build): hold nothing */
		pg_atomic_write_u64(&slot->next, 0);
		pg_atomic_write_u64(&slot->end, 0);
		memset(&idalloc_source_errors[slot - idalloc_slots], 0,
			   sizeof(IdallocSourceError));
		/* no block below the mark (idalloc_raise_mark) */
		idalloc_source_errors[slot - idalloc_slots].high = row->persisted_end;
	}
	else if ((int64) pg_atomic_read_u64(&slot->end) > row->persisted_end)
	{
		restart = Max(row->persisted_end,
					  (int64) pg_atomic_read_u64(&slot->next));
		pg_atomic_write_u64(&slot->next, (uint64) restart);
		pg_atomic_write_u64(&slot->end, (uint64) restart);
	}
	pg_atomic_write_u32(&slot->cache_size, (uint32) Max(row->cache, 1));
	slot->tso = row->tso;
	slot->sourced = row->sourced;
	slot->unverified = false;
	LWLockRelease(lock);
	return restart;
}

/*
 * Find or attach the slot of allocator (dboid, extoid, row->id) whose row
 * is `row` (read with a fresh snapshot).  A new attachment starts with next = end =
 * the row's persisted end: nothing can be handed out before the first
 * block advance, which reads the row again under the in-place update lock
 * (so a stale persisted_end here can never cause a repeat).
 *
 * Returns false when every slot is taken (idalloc.max_allocators).
 */
bool
idalloc_attach(Oid dboid, Oid extoid, const IdallocRow *row, IdallocRef *ref,
			   bool *created)
{
	IdallocSlot *slot;
	IdallocSlot *free_slot = NULL;
	int64		id = row->id;
	int64		restart = -1;

	Assert(OidIsValid(extoid));
	*created = false;

	/* common case: already attached (and verified) by someone */
	if (idalloc_attach_existing(dboid, extoid, id, ref))
		return true;

	LWLockAcquire(idalloc_shared->lock, LW_EXCLUSIVE);
	slot = find_slot(dboid, extoid, id, &free_slot);
	if (slot == NULL && free_slot != NULL)
	{
		slot = free_slot;
		LWLockAcquire(slot_lock(slot), LW_EXCLUSIVE);
		/* a sourced allocator holds nothing until its first fetch */
		fill_slot(slot, dboid, extoid, id,
				  row->sourced ? 0 : row->persisted_end,
				  row->sourced ? 0 : row->persisted_end,
				  row->cache, row->block, false);
		slot->tso = row->tso;
		slot->sourced = row->sourced;
		if (row->sourced)
		{
			memset(&idalloc_source_errors[slot - idalloc_slots], 0,
				   sizeof(IdallocSourceError));
			/* no block below the mark (idalloc_raise_mark) */
			idalloc_source_errors[slot - idalloc_slots].high =
				row->persisted_end;
		}
		LWLockRelease(slot_lock(slot));
		*created = true;
	}
	else if (slot != NULL && slot->unverified)
		restart = verify_restored_slot(slot, row);
	if (slot != NULL)
		fill_ref(slot, ref);
	LWLockRelease(idalloc_shared->lock);

	if (restart >= 0)
		ereport(LOG,
				(errmsg("idalloc: saved state of allocator " INT64_FORMAT
						" is ahead of its row; resuming at " INT64_FORMAT,
						id, restart)));
	return slot != NULL;
}

/*
 * The slot of allocator (dboid, extoid, id) if it is attached (and
 * verified), without attaching one: false if there is none.
 */
bool
idalloc_attach_existing(Oid dboid, Oid extoid, int64 id, IdallocRef *ref)
{
	IdallocSlot *slot;

	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	slot = find_slot(dboid, extoid, id, NULL);
	if (slot != NULL && !slot->unverified)
		fill_ref(slot, ref);
	else
		slot = NULL;
	LWLockRelease(idalloc_shared->lock);
	return slot != NULL;
}

/* Is allocator (dboid, extoid, id) attached to a slot? */
bool
idalloc_slot_attached(Oid dboid, Oid extoid, int64 id)
{
	bool		attached;

	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	attached = find_slot(dboid, extoid, id, NULL) != NULL;
	LWLockRelease(idalloc_shared->lock);
	return attached;
}

/*
 * At start-up, in the postmaster (no backend exists yet, so no locks):
 * attach a slot with the state saved at the last clean shutdown.  Returns
 * NULL if no slot is free.
 */
IdallocSlot *
idalloc_restore_slot(Oid dboid, Oid extoid, int64 id, int64 next, int64 end)
{
	IdallocSlot *free_slot = NULL;

	Assert(!IsUnderPostmaster);
	if (find_slot(dboid, extoid, id, &free_slot) != NULL ||
		free_slot == NULL || next > end || !OidIsValid(extoid))
		return NULL;
	/* step 0: the row's block, at the first advance */
	fill_slot(free_slot, dboid, extoid, id, next, end, 1, 0, true);
	return free_slot;
}

/*
 * idalloc_alter changed the sizes (a value < 1 keeps it): later refills
 * use the new cache size, and the step starts again from the new block.
 */
void
idalloc_set_sizes(Oid dboid, Oid extoid, int64 id, int64 block, int32 cache)
{
	IdallocSlot *slot;

	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	slot = find_slot(dboid, extoid, id, NULL);
	if (slot != NULL)
	{
		if (cache > 0)
			pg_atomic_write_u32(&slot->cache_size, (uint32) cache);
		if (block > 0)
		{
			LWLockAcquire(slot_lock(slot), LW_EXCLUSIVE);
			publish_step(slot, block);
			slot->last_advance = 0;
			LWLockRelease(slot_lock(slot));
		}
	}
	LWLockRelease(idalloc_shared->lock);
}

/*
 * A backend lets go of the unused rest [from, to) of a cached range: if
 * nobody took IDs from the global counter since the range was taken (next
 * is still `to`) and no advance voided the range (epoch unchanged), the
 * rest goes back to the global counter, so no gap is left.  Under the slot
 * lock, so that an advance (which raises next and bumps the epoch under
 * the same lock) cannot interleave.
 */
bool
idalloc_give_back(const IdallocRef *ref, uint32 epoch, int64 from, int64 to)
{
	IdallocSlot *slot = ref->slot;
	LWLock	   *lock = slot_lock(slot);
	uint64		expected = (uint64) to;
	bool		done = false;

	Assert(from <= to);
	if (from == to)
		return true;
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u64(&slot->generation) == ref->generation &&
		pg_atomic_read_u32(&slot->cache_epoch) == epoch)
		done = pg_atomic_compare_exchange_u64(&slot->next, &expected,
											  (uint64) from);
	LWLockRelease(lock);
	return done;
}

/*
 * Free a slot.  Caller holds the slot-assignment lock exclusive.  Backends
 * still holding a reference see the generation change and look the
 * allocator up again; a backend in the middle of an advance finishes its
 * write (harmless: it computed it from the row it found) and does not
 * publish.
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
	slot->extoid = InvalidOid;
	slot->id = 0;
	LWLockRelease(lock);
}

/* Detach allocator (dboid, extoid, id) if attached. */
void
idalloc_detach(Oid dboid, Oid extoid, int64 id)
{
	IdallocSlot *slot;

	LWLockAcquire(idalloc_shared->lock, LW_EXCLUSIVE);
	slot = find_slot(dboid, extoid, id, NULL);
	if (slot != NULL)
		detach_slot(slot);
	LWLockRelease(idalloc_shared->lock);
}

/*
 * Detach every allocator of installation extoid in database dboid (DROP
 * EXTENSION), or of every installation there if extoid is InvalidOid (DROP
 * DATABASE).
 */
void
idalloc_detach_all(Oid dboid, Oid extoid)
{
	LWLockAcquire(idalloc_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < idalloc_shared->nslots; i++)
	{
		IdallocSlot *slot = &idalloc_slots[i];

		if (pg_atomic_read_u64(&slot->generation) != 0 &&
			slot->dboid == dboid &&
			(!OidIsValid(extoid) || slot->extoid == extoid))
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

/*
 * Look at the slot under its lock: can the request be served without a
 * new block?  Returns IDALLOC_STALE, IDALLOC_RETRY (count > 0 fits: go
 * back to the fast path), IDALLOC_TAKEN (count == 0 and floor within the
 * flushed block: next raised, *first set), or -1 when a block must be
 * persisted; then *cur_next and *cur_end hold what was seen.
 */
static int
check_slot(IdallocRef *ref, int64 count, int64 floor, int64 *first,
		   int64 *cur_next, int64 *cur_end)
{
	IdallocSlot *slot = ref->slot;
	LWLock	   *lock = slot_lock(slot);
	int64		want;
	int			result = -1;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	*cur_next = (int64) pg_atomic_read_u64(&slot->next);
	*cur_end = (int64) pg_atomic_read_u64(&slot->end);
	if (pg_atomic_read_u64(&slot->generation) != ref->generation)
		result = IDALLOC_STALE;
	else if (count > 0)
	{
		/* (next may be past end: ranges reserved by idalloc_take_fast) */
		if (!pg_add_s64_overflow(*cur_next, count, &want) && want <= *cur_end)
			result = IDALLOC_RETRY;
	}
	else if (floor <= *cur_end)
	{
		raise_next(slot, floor);
		/* cached ranges taken before may hold IDs below floor */
		pg_atomic_fetch_add_u32(&slot->cache_epoch, 1);
		*first = (int64) pg_atomic_read_u64(&slot->next);
		result = IDALLOC_TAKEN;
	}
	LWLockRelease(lock);
	return result;
}

/*
 * After a new end was published: the step it was persisted with, and the
 * low water mark at which the persister is asked for the next block (half
 * a step before the end).  A pending request is satisfied.  Caller holds
 * the slot lock exclusive.
 */
static void
publish_step(IdallocSlot *slot, int64 step)
{
	Assert(LWLockHeldByMeInMode(slot_lock(slot), LW_EXCLUSIVE));
	slot->step = step;
	pg_atomic_write_u64(&slot->low_water, (uint64) Max(step / 2, 0));
	pg_atomic_write_u32(&slot->ahead_pending, 0);
}

/*
 * The step for the next block (G7): doubled if the last block was used up
 * in under IDALLOC_STEP_GROW_USECS, halved once for every
 * IDALLOC_STEP_SHRINK_USECS it lasted (persist.c bounds it by the row's
 * block and idalloc.max_block).
 */
static int64
adapt_step(int64 step, TimestampTz last_advance, TimestampTz now)
{
	int64		elapsed = now - last_advance;

	if (last_advance == 0 || step <= 0)
		return step;
	if (elapsed < IDALLOC_STEP_GROW_USECS)
		return step > PG_INT64_MAX / 2 ? step : step * 2;
	if (elapsed > IDALLOC_STEP_SHRINK_USECS)
	{
		/* halved once per IDALLOC_STEP_SHRINK_USECS the block lasted */
		int64		halvings = elapsed / IDALLOC_STEP_SHRINK_USECS;

		return halvings >= 62 ? 1 : Max(step >> halvings, 1);
	}
	return step;
}

/* For source.c: the slot lock, and the helpers above. */
LWLock *
idalloc_slot_lock(IdallocSlot *slot)
{
	return slot_lock(slot);
}

void
idalloc_raise_next(IdallocSlot *slot, int64 floor)
{
	raise_next(slot, floor);
}

void
idalloc_publish_step(IdallocSlot *slot, int64 step)
{
	publish_step(slot, step);
}

int64
idalloc_adapt_step(int64 step, TimestampTz last_advance, TimestampTz now)
{
	return adapt_step(step, last_advance, now);
}

/*
 * May a caller that ran out wait for the persister instead of persisting
 * the block itself?  Only if a persister runs for the database, and only
 * if this transaction holds no lock on idalloc's table: one the
 * persister's UPDATE would wait for (it created, dropped or locked it), or
 * any other, which an AccessExclusiveLock request queued behind it
 * (VACUUM FULL, pg_repack) would make the persister wait for -- that wait
 * on a condition variable would be a deadlock no detector sees.  (A wait
 * that lasts deadlock_timeout moves to the advance lock anyway.)
 */
static bool
may_wait_for_persister(const IdallocRef *ref)
{
	IdallocRegistry reg;
	LOCKTAG		tag;

	if (!idalloc_persister || !idalloc_registry_find(&reg, true) ||
		reg.extoid != ref->extoid)
		return false;
	SET_LOCKTAG_RELATION(tag, MyDatabaseId, reg.relid);
	for (LOCKMODE mode = AccessShareLock; mode <= AccessExclusiveLock; mode++)
		if (idalloc_lock_held_by_me(&tag, mode))
			return false;
	/* none runs (idle since a while): start one, and give it a second */
	return idalloc_worker_await(MyDatabaseId, 1000);
}

/*
 * Called holding the allocator's advance lock (released here): ask the
 * persister for a block holding the next `count` IDs, and sleep on the
 * slot's condition variable until the slot can serve them (interruptibly:
 * a cancel or statement_timeout ends the wait with its usual error, and
 * nothing was taken).  Returns IDALLOC_RETRY or IDALLOC_STALE, or -1 if
 * the persister failed the request, went away, or did not serve it within
 * deadlock_timeout (then the caller waits on the advance lock, and
 * persists the block itself if it still needs one when it gets it).
 */
/*
 * A waiter leaves without being served (cancelled, or it persists the
 * block itself): a need it asked for must not make the persister persist
 * far ahead for nobody (a batch of 4e18 would spend the ID space).  Caller
 * holds no LWLock.
 */
static void
forget_need(IdallocRef *ref, int64 asked)
{
	IdallocSlot *slot = ref->slot;

	if (asked <= 0 || LWLockHeldByMe(slot_lock(slot)))
		return;
	LWLockAcquire(slot_lock(slot), LW_EXCLUSIVE);
	if (pg_atomic_read_u64(&slot->generation) == ref->generation &&
		slot->need == asked)
		slot->need = 0;
	LWLockRelease(slot_lock(slot));
}

static int
wait_for_persister(IdallocRef *ref, int64 count, LOCKTAG *tag)
{
	IdallocSlot *slot = ref->slot;
	uint32		failures = pg_atomic_read_u32(&slot->ahead_failures);
	TimestampTz start = GetCurrentTimestamp();
	int64		first;
	int64		cur_next;
	int64		cur_end;
	volatile int64 asked = 0;
	volatile int result = -1;

	cur_next = (int64) pg_atomic_read_u64(&slot->next);
	LockRelease(tag, ExclusiveLock, false);

	ConditionVariablePrepareToSleep(&slot->published);
	PG_TRY();
	{
	for (;;)
	{
		int64		need;

		/*
		 * What is needed: room for count at the current next (others may
		 * have taken IDs since the last publication).  Asked again on
		 * every pass: the persister forgets a need once it published.
		 */
		if (pg_add_s64_overflow(cur_next, count, &need))
		{
			/* past 2^63: the caller's own advance reports it */
			result = -1;
			break;
		}
		LWLockAcquire(slot_lock(slot), LW_EXCLUSIVE);
		if (pg_atomic_read_u64(&slot->generation) == ref->generation &&
			slot->need < need)
			slot->need = need;
		asked = need;
		LWLockRelease(slot_lock(slot));
		if (pg_atomic_read_u32(&slot->ahead_pending) == 0)
		{
			pg_atomic_write_u32(&slot->ahead_pending, 1);
			idalloc_worker_wake(MyDatabaseId);
		}

		if (ConditionVariableTimedSleep(&slot->published, 100,
										idalloc_wait_event(IDALLOC_WAIT_BLOCK)))
			idalloc_worker_wake(MyDatabaseId);	/* no news: knock again */

		result = check_slot(ref, count, PG_INT64_MIN, &first, &cur_next,
							&cur_end);
		if (result >= 0)
			break;
		if (pg_atomic_read_u32(&slot->ahead_failures) != failures ||
			!idalloc_worker_alive(MyDatabaseId))
		{
			result = -1;
			break;
		}

		/*
		 * Not served within deadlock_timeout: wait on the advance lock
		 * instead, which the persister holds while it works.  A lock wait
		 * is seen by the deadlock detector; this condition variable is
		 * not, and the persister may be waiting for a lock this
		 * transaction holds (a row it locked, or a lock queued behind one
		 * of its own).
		 */
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(),
									   DeadlockTimeout))
		{
			result = -1;
			break;
		}
	}
	}
	PG_CATCH();
	{
		/* cancelled: what was asked for this call is not needed */
		forget_need(ref, asked);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ConditionVariableCancelSleep();
	if (result < 0)
		forget_need(ref, asked);
	return result;
}

/*
 * Slow path.  With count > 0: the flushed block cannot serve `count` IDs;
 * wait for another backend's advance, or persist a new block (large enough
 * for `count`) ourselves, then return IDALLOC_RETRY so that the caller takes
 * its IDs on the fast path.  With count == 0: make every later ID of the
 * allocator >= floor (persisting a block from floor if needed), and return
 * IDALLOC_TAKEN with *first set to the allocator's next ID.
 *
 * One backend at a time persists a block of an allocator: it holds a
 * transaction-level heavyweight lock on the allocator (an advisory lock tag
 * of our own) from the re-check to the publication, and the others queue on
 * that lock.  A heavyweight lock, not a condition variable, so that waits
 * are interruptible *and* visible to the deadlock detector: the in-place
 * write may itself wait for a transaction that is dropping the allocator.
 * The lock is released right after publication, or by the abort of an
 * error.  No LWLock is held during the write.
 *
 * Returns IDALLOC_STALE if the slot no longer holds the allocator.
 * Errors (dropped allocator, range exhausted) leave the slot as it was.
 */
IdallocTake
idalloc_take_slow(IdallocRef *ref, const char *name, int64 count,
				  int64 floor, int64 *first)
{
	IdallocSlot *slot = ref->slot;
	LWLock	   *lock = slot_lock(slot);
	LOCKTAG		tag;
	int64		cur_next;
	int64		cur_end;
	int64		new_end;
	int64		next_floor;
	int64		step;
	TimestampTz now = 0;
	int			result;

	Assert(count >= 0);
	result = check_slot(ref, count, floor, first, &cur_next, &cur_end);
	if (result >= 0)
		return (IdallocTake) result;
	/* this call waits for a block (persisted by another backend, or itself) */
	if (count > 0)
		pg_atomic_fetch_add_u64(&slot->waits, 1);

	advance_lock_tag(&tag, MyDatabaseId, ref->id);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	/* whoever held the lock before us may have done the work */
	result = check_slot(ref, count, floor, first, &cur_next, &cur_end);
	if (result >= 0)
	{
		LockRelease(&tag, ExclusiveLock, false);
		return (IdallocTake) result;
	}

	/*
	 * A slot of an installation dropped in this very transaction (still
	 * attached until commit) can hand out what it holds, but no new block:
	 * its table is gone.  See triggers.c, "the stash".
	 */
	if (idalloc_stash_dropped(ref->extoid))
	{
		LockRelease(&tag, ExclusiveLock, false);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("allocator \"%s\" cannot persist a block in the transaction that dropped and re-created extension \"idalloc\"",
						name),
				 errdetail("It hands out what the dropped installation had persisted; that is used up."),
				 errhint("Commit the transaction, then allocate.")));
	}

	/*
	 * Ask the persister for the block and wait for it (its write is the
	 * one logical replication carries, see persist.c); persist it here only
	 * if it cannot (not running, or it failed the request).
	 */
	if (count > 0 && may_wait_for_persister(ref))
	{
		result = wait_for_persister(ref, count, &tag);
		if (result >= 0)
			return (IdallocTake) result;
		(void) LockAcquire(&tag, ExclusiveLock, false, false);
		result = check_slot(ref, count, floor, first, &cur_next, &cur_end);
		if (result >= 0)
		{
			LockRelease(&tag, ExclusiveLock, false);
			return (IdallocTake) result;
		}
	}

	/* the step of this block (G7): how fast was the last one used up? */
	LWLockAcquire(lock, LW_SHARED);
	step = slot->step;
	if (count > 0)
	{
		now = GetCurrentTimestamp();
		step = adapt_step(step, slot->last_advance, now);
	}
	LWLockRelease(lock);

	if (!idalloc_persist_block(ref->extoid, ref->id, name, cur_next,
							   cur_end, count, floor, &step, &new_end,
							   &next_floor))
	{
		/* the extension was dropped and created again: look it up again */
		LockRelease(&tag, ExclusiveLock, false);
		return IDALLOC_STALE;
	}
	Assert(new_end >= next_floor);

	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u64(&slot->generation) == ref->generation)
	{
		/* next first, then end: see the protocol above */
		raise_next(slot, next_floor);
		pg_memory_barrier();
		pg_atomic_write_u64(&slot->end, (uint64) new_end);
		if (count == 0)
			pg_atomic_fetch_add_u32(&slot->cache_epoch, 1);
		else
			slot->last_advance = now;
		if (slot->tso)
			idalloc_tso_stamp(slot);
		publish_step(slot, step);
		slot->block_advances++;
		*first = (int64) pg_atomic_read_u64(&slot->next);
		result = count == 0 ? IDALLOC_TAKEN : IDALLOC_RETRY;
	}
	else
		result = IDALLOC_STALE;
	LWLockRelease(lock);
	LockRelease(&tag, ExclusiveLock, false);

	/*
	 * An in-place write is not carried by logical replication: have the
	 * persister write the row transactionally again (as soon as it can).
	 */
	ConditionVariableBroadcast(&slot->published);
	if (result != IDALLOC_STALE && idalloc_persister)
	{
		pg_atomic_write_u32(&slot->carry_pending, 1);
		pg_atomic_write_u32(&slot->ahead_pending, 1);
		idalloc_worker_wake(MyDatabaseId);
	}
	return (IdallocTake) result;
}

/*
 * A range [first, first + count) taken by idalloc_take_fast past the
 * published end is this caller's alone (fetch_add), but may be handed out
 * only once a block covering it is flushed and published.  Get that block
 * the way the slow path gets one (from the persister, or persisted here):
 * asking for room for one more ID at `next`, which is past the range.
 * Returns IDALLOC_TAKEN once the range is covered, IDALLOC_STALE if the
 * slot no longer holds the allocator, IDALLOC_RETRY if idalloc_advance (or
 * a merge) moved the allocator meanwhile (cache_epoch is no longer
 * `epoch`): the range then stays a gap, so that no ID below the advance is
 * handed out after it, and the caller takes a new one.
 */
IdallocTake
idalloc_take_reserved(IdallocRef *ref, const char *name, int64 first,
					  int64 count, uint32 epoch)
{
	IdallocSlot *slot = ref->slot;
	int64		want = first + count;
	volatile int result = IDALLOC_RETRY;

	Assert(count > 0 && want > first);
	PG_TRY();
	{
		for (;;)
		{
			int64		dummy;

			if (pg_atomic_read_u64(&slot->generation) != ref->generation)
			{
				result = IDALLOC_STALE;
				break;
			}
			if (pg_atomic_read_u32(&slot->cache_epoch) != epoch)
			{
				result = IDALLOC_RETRY;
				break;
			}
			if ((int64) pg_atomic_read_u64(&slot->end) >= want)
			{
				/* the end was published after next was raised: re-check */
				pg_read_barrier();
				if (pg_atomic_read_u64(&slot->generation) != ref->generation)
					result = IDALLOC_STALE;
				else if (pg_atomic_read_u32(&slot->cache_epoch) != epoch)
					result = IDALLOC_RETRY;
				else
					result = IDALLOC_TAKEN;
				break;
			}
			if (idalloc_take_slow(ref, name, 1, PG_INT64_MIN, &dummy) ==
				IDALLOC_STALE)
			{
				result = IDALLOC_STALE;
				break;
			}
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		/*
		 * Cancelled, timed out, or an error persisting the block: give the
		 * range back if nobody took IDs after it (else it is a gap).
		 */
		if (!LWLockHeldByMe(slot_lock(slot)))
			(void) idalloc_give_back(ref, epoch, first, want);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return (IdallocTake) result;
}

/*
 * Merge a restored or replicated row into allocator (MyDatabaseId, extoid,
 * id): its persisted end becomes at least `floor` (written into the row,
 * flushed), and, if the allocator is live in shared memory, every later ID
 * is >= floor (as idalloc_advance, but without taking a slot for an
 * allocator nobody uses).  Holds the allocator's advance lock, so no block
 * advance interleaves.
 */
void
idalloc_raise(Oid extoid, int64 id, int64 floor)
{
	LOCKTAG		tag;
	IdallocSlot *slot;

	advance_lock_tag(&tag, MyDatabaseId, id);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);

	floor = idalloc_persist_raise(extoid, id, floor, NULL);

	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	slot = find_slot(MyDatabaseId, extoid, id, NULL);
	if (slot != NULL)
	{
		LWLock	   *lock = slot_lock(slot);

		LWLockAcquire(lock, LW_EXCLUSIVE);
		/* next first, then end: see the protocol above */
		raise_next(slot, floor);
		pg_memory_barrier();
		if ((int64) pg_atomic_read_u64(&slot->end) < floor)
			pg_atomic_write_u64(&slot->end, (uint64) floor);
		pg_atomic_fetch_add_u32(&slot->cache_epoch, 1);
		LWLockRelease(lock);
		ConditionVariableBroadcast(&slot->published);
	}
	LWLockRelease(idalloc_shared->lock);
	LockRelease(&tag, ExclusiveLock, false);
}

/*
 * A sourced allocator (source.c) received a block ending at `end`, or a
 * restored row of it says it had: its mark, the row's persisted end,
 * becomes at least `end` (in place, flushed, acknowledged as a block
 * advance is), and so does the slot's high-water mark, below which no
 * block is installed.  Holds the allocator's advance lock while it
 * writes, as idalloc_raise does: idalloc_alter's transactional UPDATE of
 * the row (source => ...) holds it until its commit, so that UPDATE can
 * never carry an older persisted end over this write.
 *
 * Raised from a restore, the allocator's live state lets go of what it
 * holds below the mark (its blocks and the backends' cached ranges), which
 * the restored allocator may have handed out.
 *
 * The persister (`persister`) does not wait for that lock, which an
 * idalloc_alter holds for the rest of its transaction: it returns false
 * (nothing written) if the lock is taken.  It raises the slot's high
 * itself, as it installs the block, to at least the row's mark before
 * this write (*before): the row, not the slot, is where a mark raised by
 * a restore that ran while the slot was being attached is.
 */
bool
idalloc_raise_mark(Oid extoid, int64 id, int64 end, bool persister,
				   int64 *before)
{
	LOCKTAG		tag;
	IdallocSlot *slot;

	advance_lock_tag(&tag, MyDatabaseId, id);
	if (LockAcquire(&tag, ExclusiveLock, false, persister) ==
		LOCKACQUIRE_NOT_AVAIL)
		return false;

	end = idalloc_persist_raise(extoid, id, end, before);

	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	slot = persister ? NULL : find_slot(MyDatabaseId, extoid, id, NULL);
	if (slot != NULL && slot->sourced)
	{
		IdallocSourceError *e = &idalloc_source_errors[slot - idalloc_slots];

		LWLockAcquire(slot_lock(slot), LW_EXCLUSIVE);
		e->high = Max(e->high, end);
		/* nothing below the mark is handed out: next first, see above */
		raise_next(slot, end);
		if (slot->spare_end <= end)
			slot->spare_start = slot->spare_end = 0;
		else
			slot->spare_start = Max(slot->spare_start, end);
		/* cached ranges, and a fetch under way, are void */
		pg_atomic_fetch_add_u32(&slot->cache_epoch, 1);
		LWLockRelease(slot_lock(slot));
		ConditionVariableBroadcast(&slot->published);
	}
	LWLockRelease(idalloc_shared->lock);
	LockRelease(&tag, ExclusiveLock, false);
	return true;
}

/*
 * Take allocator `id`'s advance lock until the end of the transaction:
 * for a transactional UPDATE of its row, which no in-place write may
 * overtake (persist.c, "lost in-place updates").
 */
void
idalloc_hold_advance_lock(int64 id)
{
	LOCKTAG		tag;

	advance_lock_tag(&tag, MyDatabaseId, id);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * idalloc_alter, or a restored/replicated row merged: write the new block
 * and/or cache size (< 1 keeps one) into the row, then into the slot (the
 * step starts again from the new block).  Holds the allocator's advance
 * lock, so that a block advance in flight cannot publish the step it read
 * before.
 */
void
idalloc_alter_sizes(Oid extoid, int64 id, int64 block, int32 cache)
{
	LOCKTAG		tag;

	if (block < 1 && cache < 1)
		return;
	advance_lock_tag(&tag, MyDatabaseId, id);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	idalloc_persist_sizes(extoid, id, block, cache);
	idalloc_set_sizes(MyDatabaseId, extoid, id, block, cache);
	LockRelease(&tag, ExclusiveLock, false);
}

/* the persister's carry of the write under way (restored if it fails) */
static bool carry_in_flight = false;

/*
 * The persister (worker.c): persist the next block of slot `slotno` of
 * database dboid ahead of need, if it still needs it (fewer than a low
 * water mark of IDs left, or a caller asked for more): extend the window
 * by a step (past what the caller asked for) and publish the new end.
 * Callers keep taking IDs below the old end meanwhile.
 *
 * The block is written by a transactional UPDATE of the row in a
 * transaction of its own (persist.c, idalloc_persist_block_tx), committed
 * -- flushed, and acknowledged by the synchronous standbys -- before the
 * new end is published.  The allocator's advance lock is held as a session
 * lock from the re-check to the publication, across that commit, so that a
 * backend that runs out meanwhile waits for this block instead of writing
 * its own.  Called outside a transaction; on an error the caller aborts
 * the transaction and lets go of its session locks.  Returns true if a
 * block was published.
 */
bool
idalloc_persist_ahead(Oid dboid, int slotno)
{
	IdallocSlot *slot = &idalloc_slots[slotno];
	LWLock	   *lock = slot_lock(slot);
	IdallocRef	ref;
	LOCKTAG		tag;
	int64		cur_next;
	int64		cur_end;
	int64		need;
	int64		new_end;
	int64		next_floor;
	int64		step;
	TimestampTz now;
	bool		carry;
	bool		written;
	bool		done = false;

	Assert(!IsTransactionState());
	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	/*
	 * The caller looked at the slot without a lock: it may have been
	 * attached to a sourced allocator since (whose blocks only the
	 * authority hands out, source.c).  sourced is written with the
	 * generation, under this lock, which the re-check below compares.
	 */
	if (pg_atomic_read_u64(&slot->generation) == 0 || slot->dboid != dboid ||
		slot->unverified || slot->sourced)
	{
		LWLockRelease(idalloc_shared->lock);
		return false;
	}
	fill_ref(slot, &ref);
	LWLockRelease(idalloc_shared->lock);

	StartTransactionCommand();
	advance_lock_tag(&tag, dboid, ref.id);
	(void) LockAcquire(&tag, ExclusiveLock, true, false);

	/* still needed?  (a backend may have persisted a block meanwhile) */
	LWLockAcquire(lock, LW_SHARED);
	cur_next = (int64) pg_atomic_read_u64(&slot->next);
	cur_end = (int64) pg_atomic_read_u64(&slot->end);
	need = slot->need;
	step = slot->step;
	now = GetCurrentTimestamp();
	step = adapt_step(step, slot->last_advance, now);
	/* every in-place write so far is below what this write covers */
	carry = pg_atomic_exchange_u32(&slot->carry_pending, 0) != 0;
	carry_in_flight = carry;
	if (pg_atomic_read_u64(&slot->generation) != ref.generation ||
		(cur_end - cur_next >= (int64) pg_atomic_read_u64(&slot->low_water) &&
		 need <= cur_end && !carry) ||
		cur_end >= IDALLOC_MAX_END)
	{
		LWLockRelease(lock);
		pg_atomic_write_u32(&slot->ahead_pending, 0);
		LockRelease(&tag, ExclusiveLock, true);
		CommitTransactionCommand();
		ConditionVariableBroadcast(&slot->published);
		return false;
	}
	LWLockRelease(lock);

	/* the commit waits for the synchronous standbys only if idalloc does */
	SetConfigOption("synchronous_commit",
					idalloc_wait_for_sync_standby ? "on" : "local",
					PGC_SUSET, PGC_S_OVERRIDE);
	/* (heap_update may read TOAST: it wants an active snapshot) */
	PushActiveSnapshot(GetTransactionSnapshot());
	written = idalloc_persist_block_tx(ref.extoid, ref.id,
									   Max(cur_next, need), cur_end, &step,
									   &new_end, &next_floor);
	PopActiveSnapshot();
	CommitTransactionCommand();

	carry_in_flight = carry;
	if (written && idalloc_lsn_acked(XactLastCommitEnd))
	{
		carry_in_flight = false;
		LWLockAcquire(lock, LW_EXCLUSIVE);
		if (pg_atomic_read_u64(&slot->generation) == ref.generation)
		{
			/* next first, then end: see the protocol above */
			raise_next(slot, next_floor);
			pg_memory_barrier();
			if ((int64) pg_atomic_read_u64(&slot->end) < new_end)
				pg_atomic_write_u64(&slot->end, (uint64) new_end);
			slot->last_advance = now;
			if (slot->tso)
				idalloc_tso_stamp(slot);
			publish_step(slot, step);
			slot->block_advances++;
			/*
			 * Needs are forgotten once served or not: a waiter that still
			 * needs more asks again (it re-checks on every broadcast).
			 */
			if (slot->need > new_end)
				pg_atomic_write_u32(&slot->ahead_pending, 1);
			slot->need = 0;
			done = true;
		}
		LWLockRelease(lock);
	}
	else
		idalloc_persist_ahead_failed(slotno);
	LockRelease(&tag, ExclusiveLock, true);
	ConditionVariableBroadcast(&slot->published);
	return done;
}

/*
 * The persister could not serve slot `slotno`: its callers persist blocks
 * themselves (those waiting are woken).
 */
void
idalloc_persist_ahead_failed(int slotno)
{
	IdallocSlot *slot = &idalloc_slots[slotno];

	/* a carry that was not written is still owed (tried again later) */
	if (carry_in_flight)
		pg_atomic_write_u32(&slot->carry_pending, 1);
	carry_in_flight = false;
	pg_atomic_write_u32(&slot->ahead_pending, 0);
	pg_atomic_fetch_add_u32(&slot->ahead_failures, 1);
	ConditionVariableBroadcast(&slot->published);
}

/*
 * A persisted end was written into the row of allocator (dboid, extoid,
 * id): note it in the slot, if the allocator is attached.  Called by the
 * writer while it still holds its lock on the table, so that a session
 * that rewrites the table (and holds an AccessExclusiveLock) sees every
 * write that went into the old storage.
 */
void
idalloc_note_row_end(Oid dboid, Oid extoid, int64 id, int64 end)
{
	IdallocSlot *slot;

	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	slot = find_slot(dboid, extoid, id, NULL);
	if (slot != NULL)
	{
		uint64		cur = pg_atomic_read_u64(&slot->row_end);

		while ((int64) cur < end &&
			   !pg_atomic_compare_exchange_u64(&slot->row_end, &cur, (uint64) end))
			;
		LWLockRelease(idalloc_shared->lock);
		return;
	}
	LWLockRelease(idalloc_shared->lock);

	/* no slot: the table of raised ends */
	LWLockAcquire(idalloc_shared->lock, LW_EXCLUSIVE);
	{
		IdallocRaised *r = NULL;
		IdallocRaised *oldest = &idalloc_shared->raised[0];

		for (int i = 0; i < IDALLOC_RAISED_MAX && r == NULL; i++)
		{
			IdallocRaised *e = &idalloc_shared->raised[i];

			if (e->dboid == dboid && e->extoid == extoid && e->id == id)
				r = e;
			else if (e->stamp < oldest->stamp)
				oldest = e;
		}
		if (r == NULL)
		{
			/* a free entry has stamp 0: it goes first */
			r = oldest;
			r->dboid = dboid;
			r->extoid = extoid;
			r->id = id;
			r->end = end;
		}
		else if (r->end < end)
			r->end = end;
		r->stamp = ++idalloc_shared->raised_clock;
	}
	LWLockRelease(idalloc_shared->lock);
}

/*
 * What the row of allocator (dboid, extoid, id) must hold at least: the
 * highest persisted end written into it or published in this server's
 * life (its slot, and the table of raised ends); -1 if there is none
 * (nothing was written into the row since start-up, or so long ago that
 * the entry was reused: the row is all there is).
 */
int64
idalloc_slot_row_end(Oid dboid, Oid extoid, int64 id)
{
	IdallocSlot *slot;
	int64		end = -1;

	LWLockAcquire(idalloc_shared->lock, LW_SHARED);
	slot = find_slot(dboid, extoid, id, NULL);
	if (slot != NULL)
		end = Max((int64) pg_atomic_read_u64(&slot->row_end),
				  (int64) pg_atomic_read_u64(&slot->end));
	for (int i = 0; i < IDALLOC_RAISED_MAX; i++)
	{
		IdallocRaised *e = &idalloc_shared->raised[i];

		if (e->dboid == dboid && e->extoid == extoid && e->id == id)
			end = Max(end, e->end);
	}
	LWLockRelease(idalloc_shared->lock);
	return end;
}
