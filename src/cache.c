/*-------------------------------------------------------------------------
 *
 * cache.c
 *		Per-backend state in shared memory: the caches of allocators with
 *		cache > 1, and each backend's count of the IDs it handed out.
 *
 * Counts: every backend has one IdallocCount per slot (indexed by
 * BackendId, then slot number).  Only the owner writes them, with plain
 * stores to its own memory, so counting an ID touches no line another
 * backend writes; the view sums them (idalloc_counts_sum).  A count is
 * valid while its generation is the slot's.  At exit a backend folds its
 * counts into the slot's `allocated` (as it does with what it handed out
 * from its cached ranges), so the total survives it.
 *
 * Each backend owns IDALLOC_CACHES_PER_BACKEND cache entries in shared
 * memory (indexed by its BackendId), each holding one allocator's cached
 * range [next, end), taken from the global counter `cache` IDs at a time.
 * They live in shared memory so that every backend's cached ranges can be
 * seen (idalloc_caches) and counted, and so that they can be voided:
 *
 *	- idalloc_advance bumps the allocator slot's cache_epoch (after raising
 *	  the global next); an entry taken under an older epoch is never served
 *	  again;
 *	- idalloc_drop detaches the slot (new generation); an entry of an older
 *	  generation is never served again.
 * The owner compares both on every take, so a call that starts after the
 * advance or the drop's commit never hands out a voided ID.
 *
 * Locking: only the owner writes its entries.  `next` and `end` are
 * atomics, written by the owner without a lock on the hot path (a plain
 * store: there is no other writer) and read by anyone.  The identity fields
 * (dboid, id, generation, epoch, start) change only under the backend's
 * LWLock (tranche "idalloc_caches") held exclusive by the owner; readers of
 * the view hold it shared.  The owner reads its own entries without it.
 *
 * A backend holds at most IDALLOC_CACHES_PER_BACKEND cached allocators; a
 * further one takes the least recently used entry (whose rest is given
 * back to the global counter if nobody took IDs since, else lost: a gap).
 * At exit (normal, FATAL, pg_terminate_backend) every entry is released
 * the same way; a crash-restart starts from fresh shared memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "idalloc.h"

typedef struct IdallocCacheEntry
{
	pg_atomic_uint64 next;		/* owner writes, anyone reads */
	pg_atomic_uint64 end;
	/* changed by the owner under its LWLock */
	IdallocRef	ref;			/* allocator slot; ref.slot NULL: unused */
	Oid			dboid;
	uint32		epoch;			/* slot's cache_epoch when the range was taken */
	int64		start;			/* first ID of the range */
	/* owner only */
	uint64		last_use;
} IdallocCacheEntry;

typedef struct IdallocBackendCaches
{
	int			pid;			/* owner, 0 if none */
	IdallocCacheEntry entries[IDALLOC_CACHES_PER_BACKEND];
} IdallocBackendCaches;

static IdallocBackendCaches *all_caches = NULL;
static LWLockPadded *cache_locks = NULL;
static int	n_backend_caches = 0;

/* n_backend_caches x nslots counts; this backend's row, once claimed */
static IdallocCount *all_counts = NULL;
static int	n_count_slots = 0;
IdallocCount *idalloc_my_counts = NULL;

/* this backend's */
static IdallocBackendCaches *my_caches = NULL;
static LWLock *my_lock = NULL;
static uint64 use_clock = 0;

static Size
counts_shmem_size(void)
{
	return mul_size(mul_size(MaxBackends, idalloc_max_allocators),
					sizeof(IdallocCount));
}

Size
idalloc_cache_shmem_size(void)
{
	return mul_size(MaxBackends, sizeof(IdallocBackendCaches));
}

void
idalloc_cache_shmem_request(void)
{
	RequestAddinShmemSpace(idalloc_cache_shmem_size());
	RequestAddinShmemSpace(counts_shmem_size());
	RequestNamedLWLockTranche("idalloc_caches", MaxBackends);
}

/* Called from shmem_startup_hook (caller holds AddinShmemInitLock). */
void
idalloc_cache_shmem_init(void)
{
	bool		found;

	my_caches = NULL;
	my_lock = NULL;
	idalloc_my_counts = NULL;
	all_counts = ShmemInitStruct("idalloc counts", counts_shmem_size(), &found);
	n_count_slots = idalloc_max_allocators;
	if (!found)
	{
		for (Size i = 0; i < (Size) MaxBackends * n_count_slots; i++)
		{
			pg_atomic_init_u64(&all_counts[i].generation, 0);
			pg_atomic_init_u64(&all_counts[i].count, 0);
		}
	}
	all_caches = ShmemInitStruct("idalloc caches", idalloc_cache_shmem_size(),
								 &found);
	cache_locks = GetNamedLWLockTranche("idalloc_caches");
	n_backend_caches = MaxBackends;
	if (!found)
	{
		for (int b = 0; b < MaxBackends; b++)
		{
			all_caches[b].pid = 0;
			for (int i = 0; i < IDALLOC_CACHES_PER_BACKEND; i++)
			{
				IdallocCacheEntry *e = &all_caches[b].entries[i];

				pg_atomic_init_u64(&e->next, 0);
				pg_atomic_init_u64(&e->end, 0);
				e->ref.slot = NULL;
			}
		}
	}
}

static inline bool
entry_is_current(const IdallocCacheEntry *e)
{
	IdallocSlot *slot = e->ref.slot;

	return slot != NULL &&
		pg_atomic_read_u64(&slot->generation) == e->ref.generation &&
		pg_atomic_read_u32(&slot->cache_epoch) == e->epoch;
}

/*
 * Let go of an entry's range: IDs handed out from it are added to the
 * allocator's count, the rest goes back to the global counter if it can.
 * Caller is the owner and holds its LWLock exclusive.
 */
static void
release_entry(IdallocCacheEntry *e)
{
	IdallocSlot *slot = e->ref.slot;
	int64		next = (int64) pg_atomic_read_u64(&e->next);
	int64		end = (int64) pg_atomic_read_u64(&e->end);

	Assert(LWLockHeldByMeInMode(my_lock, LW_EXCLUSIVE));
	if (slot == NULL)
		return;
	if (pg_atomic_read_u64(&slot->generation) == e->ref.generation)
	{
		pg_atomic_fetch_add_u64(&slot->allocated, (uint64) (next - e->start));
		(void) idalloc_give_back(&e->ref, e->epoch, next, end);
	}
	e->ref.slot = NULL;
	e->dboid = InvalidOid;
	pg_atomic_write_u64(&e->next, 0);
	pg_atomic_write_u64(&e->end, 0);
}

static void
release_all(int code, Datum arg)
{
	if (my_caches == NULL)
		return;
	LWLockAcquire(my_lock, LW_EXCLUSIVE);
	for (int i = 0; i < IDALLOC_CACHES_PER_BACKEND; i++)
		release_entry(&my_caches->entries[i]);
	my_caches->pid = 0;
	LWLockRelease(my_lock);
	my_caches = NULL;
}

/*
 * At exit: fold this backend's counts into the slots they belong to (if
 * the slot still holds that allocator), and clear them for the next owner
 * of this BackendId.
 */
static void
fold_counts(int code, Datum arg)
{
	if (idalloc_my_counts == NULL)
		return;
	for (int i = 0; i < n_count_slots; i++)
	{
		IdallocCount *c = &idalloc_my_counts[i];
		uint64		gen = pg_atomic_read_u64(&c->generation);
		uint64		n = pg_atomic_read_u64(&c->count);

		if (gen == 0)
			continue;
		pg_atomic_write_u64(&c->generation, 0);
		pg_atomic_write_u64(&c->count, 0);
		if (n > 0 && pg_atomic_read_u64(&idalloc_slots[i].generation) == gen)
			pg_atomic_fetch_add_u64(&idalloc_slots[i].allocated, n);
	}
	idalloc_my_counts = NULL;
}

/* Claim this backend's counts (first ID it hands out). */
void
idalloc_counts_claim(void)
{
	if (idalloc_my_counts != NULL)
		return;
	if (idalloc_my_backend_number() == 0 ||
		idalloc_my_backend_number() > n_backend_caches)
		elog(ERROR, "idalloc: this process has no backend id to count in");
	idalloc_my_counts = &all_counts[(Size) (idalloc_my_backend_number() - 1) * n_count_slots];
	/* a previous owner of this BackendId cleared them at exit */
	on_shmem_exit(fold_counts, (Datum) 0);
}

/*
 * IDs of slot `slotno` (while it holds generation `generation`) that
 * running backends handed out from the global counter.  No lock: each
 * count is read once (a monitoring figure).
 */
uint64
idalloc_counts_sum(int slotno, uint64 generation)
{
	uint64		sum = 0;

	Assert(slotno >= 0 && slotno < n_count_slots);
	for (int b = 0; b < n_backend_caches; b++)
	{
		IdallocCount *c = &all_counts[(Size) b * n_count_slots + slotno];

		if (pg_atomic_read_u64(&c->generation) == generation)
			sum += pg_atomic_read_u64(&c->count);
	}
	return sum;
}

/* Claim this backend's entries (first use of a cache). */
static void
claim_my_caches(void)
{
	if (my_caches != NULL)
		return;
	if (idalloc_my_backend_number() == 0 ||
		idalloc_my_backend_number() > n_backend_caches)
		elog(ERROR, "idalloc: this process has no backend id for a cache");
	my_caches = &all_caches[idalloc_my_backend_number() - 1];
	my_lock = &cache_locks[idalloc_my_backend_number() - 1].lock;

	/* a previous owner of this BackendId released everything at exit */
	LWLockAcquire(my_lock, LW_EXCLUSIVE);
	for (int i = 0; i < IDALLOC_CACHES_PER_BACKEND; i++)
		Assert(my_caches->entries[i].ref.slot == NULL);
	my_caches->pid = MyProcPid;
	LWLockRelease(my_lock);
	/* on_shmem_exit: runs after transaction abort released our LWLocks */
	on_shmem_exit(release_all, (Datum) 0);
}

static inline IdallocCacheEntry *
my_entry(const IdallocRef *ref, int hint)
{
	IdallocCacheEntry *e;

	if (my_caches == NULL)
		return NULL;
	if (hint >= 0)
	{
		e = &my_caches->entries[hint];
		if (e->ref.slot == ref->slot && e->ref.generation == ref->generation)
			return e;
	}
	/* the hint may be stale (e.g. after a rolled-back drop + create): search */
	for (int i = 0; i < IDALLOC_CACHES_PER_BACKEND; i++)
	{
		e = &my_caches->entries[i];
		if (e->ref.slot == ref->slot && e->ref.generation == ref->generation)
			return e;
	}
	return NULL;
}

/*
 * Take `count` IDs from this backend's cached range of the allocator.
 * *hint is the entry index remembered by the caller.
 */
IdallocCacheTake
idalloc_cache_take(const IdallocRef *ref, int hint, int64 count, int64 *first)
{
	IdallocCacheEntry *e = my_entry(ref, hint);
	int64		next;
	int64		end;

	if (e == NULL || !entry_is_current(e))
		return IDALLOC_CACHE_EMPTY;
	next = (int64) pg_atomic_read_u64(&e->next);
	end = (int64) pg_atomic_read_u64(&e->end);
	if (next == end)
		return IDALLOC_CACHE_EMPTY;
	if (end - next < count)
		return IDALLOC_CACHE_TOO_SMALL;
	pg_atomic_write_u64(&e->next, (uint64) (next + count));
	e->last_use = ++use_clock;
	*first = next;
	return IDALLOC_CACHE_TAKEN;
}

/*
 * Install the range [start, end), taken from the global counter under
 * cache epoch `epoch`, as this backend's cache of the allocator; returns the
 * entry index to remember.  The previous range of the allocator (empty or
 * void), or the least recently used entry, makes room.
 */
int
idalloc_cache_install(const IdallocRef *ref, int hint, uint32 epoch,
					  int64 start, int64 end)
{
	IdallocCacheEntry *e;
	int			victim = -1;

	claim_my_caches();
	if ((e = my_entry(ref, hint)) != NULL)
		victim = e - my_caches->entries;
	else
	{
		for (int i = 0; i < IDALLOC_CACHES_PER_BACKEND; i++)
		{
			IdallocCacheEntry *c = &my_caches->entries[i];

			if (c->ref.slot == NULL || !entry_is_current(c))
			{
				victim = i;
				break;
			}
			if (victim < 0 || c->last_use < my_caches->entries[victim].last_use)
				victim = i;
		}
	}
	e = &my_caches->entries[victim];

	LWLockAcquire(my_lock, LW_EXCLUSIVE);
	release_entry(e);
	e->ref = *ref;
	e->dboid = MyDatabaseId;
	e->epoch = epoch;
	e->start = start;
	pg_atomic_write_u64(&e->end, (uint64) end);
	pg_atomic_write_u64(&e->next, (uint64) start);
	e->last_use = ++use_clock;
	LWLockRelease(my_lock);
	return victim;
}

/* idalloc_sync: drop this backend's cached range of the allocator. */
void
idalloc_cache_release(const IdallocRef *ref)
{
	if (my_caches == NULL)
		return;
	LWLockAcquire(my_lock, LW_EXCLUSIVE);
	for (int i = 0; i < IDALLOC_CACHES_PER_BACKEND; i++)
	{
		IdallocCacheEntry *e = &my_caches->entries[i];

		if (e->ref.slot == ref->slot && e->ref.generation == ref->generation)
			release_entry(e);
	}
	LWLockRelease(my_lock);
}

/*
 * Visit every cache entry of database dboid whose allocator slot is still
 * the one it was taken from: fn(pid, id, slot, next, end, start, live),
 * where live means the range can still be served (not voided, not empty).
 * Takes each backend's LWLock shared in turn.
 */
void
idalloc_cache_foreach(Oid dboid, IdallocCacheVisitor fn, void *arg)
{
	for (int b = 0; b < n_backend_caches; b++)
	{
		IdallocBackendCaches *bc = &all_caches[b];
		LWLock	   *lock = &cache_locks[b].lock;

		LWLockAcquire(lock, LW_SHARED);
		for (int i = 0; i < IDALLOC_CACHES_PER_BACKEND && bc->pid != 0; i++)
		{
			IdallocCacheEntry *e = &bc->entries[i];
			int64		next = (int64) pg_atomic_read_u64(&e->next);
			int64		end = (int64) pg_atomic_read_u64(&e->end);

			if (e->ref.slot == NULL || e->dboid != dboid ||
				pg_atomic_read_u64(&e->ref.slot->generation) != e->ref.generation)
				continue;
			fn(arg, bc->pid, e->ref.id, e->ref.slot, next, end, e->start,
			   next < end && entry_is_current(e));
		}
		LWLockRelease(lock);
	}
}
