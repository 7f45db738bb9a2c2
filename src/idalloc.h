/*-------------------------------------------------------------------------
 *
 * idalloc.h
 *		Declarations shared by the files of the idalloc extension.
 *
 * Who owns what:
 *	idalloc.c	module load, GUCs, hooks, per-transaction bookkeeping of
 *				creates and drops (what happens to shared state at commit
 *				and abort)
 *	shmem.c		the shared-memory slots of live allocators, their locking
 *				protocol, the lock-free fast path and the slow path that
 *				waits for or performs a block advance
 *	persist.c	the catalog table: looking rows up, inserting and deleting
 *				them, the non-transactional WAL-logged, flushed block
 *				advance of a row, the persister's transactional one, and
 *				the repair after a rewrite of the table (pg_repack)
 *	cache.c		the per-backend cached ranges (cache > 1)
 *	restart.c	saving and restoring the exact next IDs across a clean
 *				restart (pg_stat/idalloc.state, with a CRC-32C)
 *	registry.c	finding idalloc's own catalog objects by OID (never by a
 *				name a user could shadow), opening the table safely
 *	triggers.c	the catalog table's triggers and the utility hook: what
 *				may write the table (idalloc itself, its own extension
 *				script, a restore, a logical-replication apply worker)
 *	funcs.c		the SQL-callable functions: argument checks, errors, the
 *				backend-local name -> slot map
 *	worker.c	the persister: a background worker per database that
 *				persists allocators' next blocks ahead of need
 *	tso.c		the layout of `tso` IDs: idalloc_tso_decode, idalloc_tso_from
 *
 *-------------------------------------------------------------------------
 */
#ifndef IDALLOC_H
#define IDALLOC_H

#include "postgres.h"

#include <signal.h>

#include "compat.h"

#include "common/int.h"
#include "port/atomics.h"
#include "storage/lockdefs.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "utils/relcache.h"
#include "utils/timestamp.h"

/* Largest value a persisted end (exclusive) may take. */
#define IDALLOC_MAX_END			PG_INT64_MAX

/* tso IDs: (unix_ms << IDALLOC_TSO_LOGICAL_BITS) + logical (tso.c) */
#define IDALLOC_TSO_LOGICAL_BITS	18
#define IDALLOC_TSO_LOGICAL_MASK	((INT64CONST(1) << IDALLOC_TSO_LOGICAL_BITS) - 1)
/* a tso allocator's default block: 3 seconds of IDs */
#define IDALLOC_TSO_DEFAULT_BLOCK	(INT64CONST(3000) << IDALLOC_TSO_LOGICAL_BITS)

/* Default block (WAL batch) of a counter allocator, as in the seed. */
#define IDALLOC_DEFAULT_BLOCK	INT64CONST(200000)

/* locktag_field4 of the advisory lock tags idalloc uses (not 1 or 2, which
 * pg_advisory_lock uses) */
#define IDALLOC_LOCKTAG_FIELD4	0x1DA1

/* cached allocators one backend can hold at once */
#define IDALLOC_CACHES_PER_BACKEND	8

/* Longest allocator name, in bytes (as for an SQL identifier). */
#define IDALLOC_MAX_NAME_LEN	(NAMEDATALEN - 1)

#define IDALLOC_REGISTRY_TABLE	"idalloc_registry"
#define IDALLOC_REGISTRY_PKEY	"idalloc_registry_pkey"
#define IDALLOC_REGISTRY_NAMEIDX "idalloc_registry_name_key"
#define IDALLOC_REGISTRY_SEQ	"idalloc_registry_id_seq"
#define IDALLOC_CONNINFO_TABLE	"idalloc_source_conninfo"

/* Column numbers of the registry table (see idalloc--1.0.sql). */
#define Anum_registry_id			1
#define Anum_registry_start			2
#define Anum_registry_block			3
#define Anum_registry_persisted_end 4
#define Anum_registry_cache			5
#define Anum_registry_name			6
#define Anum_registry_kind			7
#define Anum_registry_source		8
#define Natts_registry				8

/*
 * One live allocator in shared memory.  The locking protocol is described
 * at the top of shmem.c.  The fields written on every global allocation
 * (next) and read with it (end) have a cache line to themselves; the rest,
 * read on every allocation but written rarely, sit on the next one.  The
 * struct is a whole number of cache lines, so that one allocator's hot line
 * never shares a line with another allocator's fields (the array starts
 * cache-line aligned, as every shared-memory allocation does).
 */
typedef struct IdallocSlot
{
	/* next ID to hand out and end (exclusive) of the flushed block */
	pg_atomic_uint64 next;
	pg_atomic_uint64 end;
	/*
	 * when fewer IDs than this are left before end, the persister is asked
	 * to persist the next block ahead of need (half a step; written with
	 * end)
	 */
	pg_atomic_uint64 low_water;
	char		pad_hot[PG_CACHE_LINE_SIZE - 3 * sizeof(pg_atomic_uint64)];

	union
	{
		struct
		{
			/*
			 * Unique per attachment of an allocator to this slot, 0 while
			 * free.  Backends remember it and compare it before and after
			 * taking IDs.
			 */
			pg_atomic_uint64 generation;
			/* bumped by idalloc_advance: cached ranges taken before are void */
			pg_atomic_uint32 cache_epoch;
			/* the allocator's cache size (IDs per refill); 1 = no cache */
			pg_atomic_uint32 cache_size;

			/*
			 * IDs handed out by backends that have exited or let go of
			 * their cached range (a running backend counts its own in
			 * cache.c, off this line: see idalloc_count)
			 */
			pg_atomic_uint64 allocated;

			/*
			 * identity: set when attached, cleared when detached.  The
			 * extension's OID is part of it: two installations of idalloc
			 * in one database (a DROP EXTENSION and CREATE EXTENSION in
			 * one transaction, as pg_restore --clean --single-transaction
			 * does) restart the registry ids at 1 and must never meet each
			 * other's state.
			 */
			Oid			dboid;
			Oid			extoid;
			int64		id;

			/* calls that had to wait for a block to be persisted */
			pg_atomic_uint64 waits;
			/* 1 while the persister has been asked for the next block */
			pg_atomic_uint32 ahead_pending;

			/* protected by the slot's LWLock */
			uint64		block_advances; /* since the allocator was attached */
			bool		unverified; /* restored from the shutdown state file
									 * and not yet checked against the row */
			/*
			 * The size of the next block (G7): the row's block, doubled
			 * while blocks are used up in under a second (up to
			 * idalloc.max_block), halved back towards it when a block
			 * lasts longer than IDALLOC_STEP_SHRINK_USECS; 0 until the
			 * first advance of a slot restored at start-up.  Written by
			 * the backend that persists a block, under the slot's LWLock.
			 */
			int64		step;
			TimestampTz last_advance;	/* of the last block, 0 if none */

			/*
			 * The highest persisted end written into the allocator's row in
			 * this server's life (or read from it when attached), noted by
			 * the writer before it lets go of its lock on the table: what a
			 * rewrite of the table by another session must not lose (see
			 * idalloc_persist_after_rewrite).
			 */
			pg_atomic_uint64 row_end;

			/*
			 * kind 'tso': every ID is at least the clock's (unix_ms << 18);
			 * set when attached (or verified after a restore).  The
			 * realtime and monotonic clocks at the last publication, to
			 * tell a realtime jump from time passing (tso.c).
			 */
			bool		tso;
			/*
			 * a sourced allocator (source.c): its blocks come from the
			 * authority, are not contiguous, and are taken with the
			 * compare-and-swap of idalloc_take_fast only (never past end)
			 */
			bool		sourced;
			int64		tso_real_ms;
			int64		tso_mono_ms;

			/*
			 * A caller that ran out asks the persister for a block holding
			 * up to `need` (exclusive; 0: none asked; under the slot lock)
			 * and sleeps on `published`, which the persister broadcasts
			 * after each publication, and after each request it failed
			 * (bumping ahead_failures), so that its callers persist the
			 * block themselves.
			 */
			int64		need;
			pg_atomic_uint32 ahead_failures;
			/*
			 * 1 after a block was persisted in place by a caller (not
			 * carried by logical replication): the persister writes the
			 * row transactionally again soon
			 */
			pg_atomic_uint32 carry_pending;
			ConditionVariable published;

			/*
			 * Sourced allocators (under the slot lock): a block fetched
			 * ahead from the authority, [spare_start, spare_end), taken
			 * over by the caller that runs out of the current one (empty:
			 * spare_end == 0); the largest batch a waiting caller needs
			 * (the worker fetches it plus a step); bumped when a fetch
			 * failed (the error is in the slot's IdallocSourceError).
			 */
			int64		spare_start;
			int64		spare_end;
			int64		need_count;
			pg_atomic_uint32 source_failures;
		};
		char		pad_cold[2 * PG_CACHE_LINE_SIZE];
	};
} IdallocSlot;

StaticAssertDecl(sizeof(IdallocSlot) == (size_t) 3 * PG_CACHE_LINE_SIZE,
				 "an IdallocSlot is a whole number of cache lines");

/* a block used up faster than this doubles the step */
#define IDALLOC_STEP_GROW_USECS		USECS_PER_SEC
/* a block that lasted longer than this halves it (towards the block) */
#define IDALLOC_STEP_SHRINK_USECS	(4 * USECS_PER_SEC)

/*
 * Persisted ends written into the rows of allocators that have no slot
 * (idalloc_raise merges a restored or replicated row without taking one),
 * kept for a rewrite of the table by another session to see
 * (idalloc_persist_after_rewrite); the entry raised longest ago is reused
 * when all are taken.  Under the slot-assignment lock.
 */
#define IDALLOC_RAISED_MAX	1024

typedef struct IdallocRaised
{
	Oid			dboid;			/* InvalidOid: free */
	Oid			extoid;
	int64		id;
	int64		end;
	uint64		stamp;			/* when last raised (raised_clock) */
} IdallocRaised;

typedef struct IdallocShared
{
	LWLock	   *lock;			/* slot assignment (attach/detach) */
	pg_atomic_uint64 generation_counter;
	int			nslots;
	uint64		raised_clock;	/* counts raises noted in raised[] */
	IdallocRaised raised[IDALLOC_RAISED_MAX];
} IdallocShared;

/* A backend's reference to an attached slot. */
typedef struct IdallocRef
{
	IdallocSlot *slot;
	uint64		generation;
	Oid			extoid;			/* the slot's identity, as attached */
	int64		id;
} IdallocRef;

/*
 * idalloc's catalog objects in the current database, found through the
 * extension's OID (see registry.c).
 */
typedef struct IdallocRegistry
{
	Oid			extoid;
	Oid			nsp;			/* the extension's schema */
	Oid			owner;			/* the extension's owner */
	Oid			relid;			/* idalloc_registry */
} IdallocRegistry;

/* Registry row, as read from the catalog table. */
typedef struct IdallocRow
{
	int64		id;
	int64		start;
	int64		block;
	int64		persisted_end;
	int32		cache;
	bool		tso;			/* kind 'tso' (else 'counter') */
	bool		sourced;		/* has a source (source.c) */
} IdallocRow;

/* Outcome of a slow-path attempt. */
typedef enum IdallocTake
{
	IDALLOC_TAKEN,				/* IDs were taken */
	IDALLOC_RETRY,				/* state changed; try the fast path again */
	IDALLOC_STALE,				/* the slot no longer holds this allocator */
	IDALLOC_RESERVED			/* the IDs are ours but past the published
								 * end: idalloc_take_reserved */
} IdallocTake;

/* Outcome of a take from the per-backend cache. */
typedef enum IdallocCacheTake
{
	IDALLOC_CACHE_TAKEN,
	IDALLOC_CACHE_EMPTY,		/* nothing (or nothing valid) cached: refill */
	IDALLOC_CACHE_TOO_SMALL		/* the rest is smaller than the request */
} IdallocCacheTake;

typedef void (*IdallocCacheVisitor) (void *arg, int pid, int64 id,
									 IdallocSlot *slot, int64 next, int64 end,
									 int64 start, bool live);

/* GUCs (idalloc.c) */
extern int	idalloc_max_allocators;
extern int	idalloc_max_block;
extern bool idalloc_persister;
extern bool idalloc_wait_for_sync_standby;
extern int	idalloc_debug_tso_clock_offset;

/* tso.c */
extern int64 idalloc_tso_now(void);
extern int64 idalloc_tso_read_clock(void);
extern void idalloc_tso_forget_clock(void);
extern volatile sig_atomic_t idalloc_tso_clock_fresh;
extern int64 idalloc_tso_clock_floor;

/*
 * The clock floor of tso allocators, (now_ms << 18), as this backend last
 * read it: the clock is read again only once a timer at the next
 * millisecond boundary has fired (tso.c), so the hot path does not pay
 * for a clock_gettime() per ID.
 */
static inline int64
idalloc_tso_floor(void)
{
	if (likely(idalloc_tso_clock_fresh))
		return idalloc_tso_clock_floor;
	return idalloc_tso_read_clock();
}
extern int64 idalloc_tso_monotonic_ms(void);
extern void idalloc_tso_stamp(IdallocSlot *slot);
extern void idalloc_tso_check_jump(IdallocSlot *slot, int64 floor,
								   const char *name);

/* idalloc.c */
extern void idalloc_check_loaded(void);
extern void idalloc_remember_create(Oid extoid, int64 id);
extern void idalloc_remember_drop(Oid extoid, int64 id);
extern bool idalloc_internal_write;
extern int	idalloc_internal_depth;
extern int	idalloc_trigger_depth(void);
extern Oid	idalloc_copy_relid;

/* registry.c */
extern bool idalloc_registry_find(IdallocRegistry *reg, bool missing_ok);
extern Relation idalloc_registry_open(LOCKMODE mode, IdallocRegistry *reg);
extern Oid	idalloc_registry_index(const IdallocRegistry *reg,
								   const char *name);
extern Oid	idalloc_registry_seq(const IdallocRegistry *reg);
extern bool idalloc_is_registry(Oid relid, IdallocRegistry *reg);
extern Oid	idalloc_registry_conninfo(const IdallocRegistry *reg);
extern bool idalloc_is_conninfo(Oid relid, IdallocRegistry *reg);
extern bool idalloc_in_own_script(void);
extern int64 idalloc_registry_fresh_id(Relation rel,
									   const IdallocRegistry *reg,
									   int64 wanted);

/* triggers.c */
extern void idalloc_triggers_init(void);
extern void idalloc_stash_dropped_registry(Oid relid);
extern void idalloc_stash_reset(void);
extern bool idalloc_stash_lookup(const char *name, Oid cur_extoid,
								 Oid *old_extoid, int64 *old_id);
extern bool idalloc_stash_dropped(Oid extoid);
extern void idalloc_stash_subxact(bool commit, SubTransactionId subid,
								  SubTransactionId parent);

/* shmem.c */
extern IdallocShared *idalloc_shared;
extern IdallocSlot *idalloc_slots;

/*
 * The last failure of a sourced allocator's fetch (source.c), for its
 * callers to report: one per slot, after the slots, under the slot lock.
 */
typedef struct IdallocSourceError
{
	int			sqlerrcode;		/* 0: none */
	char		message[256];	/* names the allocator and the host only */
	char		detail[512];	/* what failed, in idalloc's words */
	char		remote[512];	/* libpq's or the authority's own words:
								 * for superusers and the server log */
	char		display[128];	/* the authority's host, port, database */
	TimestampTz retry_at;		/* the authority is not asked before */
	/*
	 * end of the highest block received: no block starting below it is
	 * installed.  Durable as the row's persisted_end (idalloc_raise_mark),
	 * read from it when the slot is attached.
	 */
	int64		high;
} IdallocSourceError;

extern IdallocSourceError *idalloc_source_errors;
extern Size idalloc_shmem_size(void);
extern void idalloc_shmem_init(void);
extern void idalloc_shmem_request(void);
extern bool idalloc_attach(Oid dboid, Oid extoid, const IdallocRow *row,
						   IdallocRef *ref, bool *created);
extern bool idalloc_attach_existing(Oid dboid, Oid extoid, int64 id,
									IdallocRef *ref);
extern bool idalloc_slot_attached(Oid dboid, Oid extoid, int64 id);
extern IdallocSlot *idalloc_restore_slot(Oid dboid, Oid extoid, int64 id,
										 int64 next, int64 end);
extern void idalloc_set_sizes(Oid dboid, Oid extoid, int64 id, int64 block,
							  int32 cache);
extern bool idalloc_give_back(const IdallocRef *ref, uint32 epoch,
							  int64 from, int64 to);
extern void idalloc_detach(Oid dboid, Oid extoid, int64 id);
extern void idalloc_detach_all(Oid dboid, Oid extoid);
extern IdallocTake idalloc_take_slow(IdallocRef *ref, const char *name,
									 int64 count, int64 floor, int64 *first);
extern void idalloc_raise(Oid extoid, int64 id, int64 floor);
extern bool idalloc_raise_mark(Oid extoid, int64 id, int64 end,
							   bool persister, int64 *before);
extern void idalloc_hold_advance_lock(int64 id);
extern void idalloc_alter_sizes(Oid extoid, int64 id, int64 block,
								int32 cache);
extern bool idalloc_persist_ahead(Oid dboid, int slotno);
extern void idalloc_persist_ahead_failed(int slotno);
extern void idalloc_note_row_end(Oid dboid, Oid extoid, int64 id, int64 end);
extern int64 idalloc_slot_row_end(Oid dboid, Oid extoid, int64 id);

/*
 * The fast path takes a range with one fetch_add on `next` (the one
 * contended atomic per call) when the request is at most
 * IDALLOC_FAA_MAX_COUNT IDs and the published end is below
 * IDALLOC_FAA_LIMIT: several backends may then each add their count after
 * seeing room, so `next` can pass `end` by at most MaxBackends times
 * IDALLOC_FAA_MAX_COUNT (< 2^34), far from the top of the ID space.  Larger
 * requests, and everything near the top, use a compare-and-swap that never
 * passes `end`.
 */
#define IDALLOC_FAA_MAX_COUNT	((int64) 1 << 16)
#define IDALLOC_FAA_LIMIT		(IDALLOC_MAX_END - ((int64) 1 << 40))

/*
 * Fast path: take `count` IDs from the flushed block of the slot without
 * any lock.  Returns IDALLOC_TAKEN with *first set; IDALLOC_RESERVED with
 * *first set when the range taken passed the published end (it is this
 * caller's, and no one else's, but may be handed out only once a block
 * covering it is published: idalloc_take_reserved, given *epoch);
 * IDALLOC_RETRY when the block cannot serve the request (go to the slow
 * path; nothing taken); IDALLOC_STALE when the slot was detached or reused.
 */
static inline IdallocTake
idalloc_take_fast(const IdallocRef *ref, int64 count, int64 *first,
				  uint32 *epoch)
{
	IdallocSlot *slot = ref->slot;
	uint64		cur;
	int64		end;

	/* a slot reused by another allocator must not lose IDs to us */
	if (pg_atomic_read_u64(&slot->generation) != ref->generation)
		return IDALLOC_STALE;

	cur = pg_atomic_read_u64(&slot->next);
	end = (int64) pg_atomic_read_u64(&slot->end);
	if (likely(count <= IDALLOC_FAA_MAX_COUNT && end <= IDALLOC_FAA_LIMIT &&
			   !slot->sourced))
	{
		int64		start;

		/* no overflow: next < end + 2^34 here */
		if ((int64) cur + count > end)
			return IDALLOC_RETRY;
		*epoch = pg_atomic_read_u32(&slot->cache_epoch);
		/* full barrier: the reads below cannot move before it */
		start = (int64) pg_atomic_fetch_add_u64(&slot->next, (uint64) count);
		/* detached (maybe reused) meanwhile: a gap, never a repeat */
		if (pg_atomic_read_u64(&slot->generation) != ref->generation)
			return IDALLOC_STALE;
		*first = start;
		if (start + count <= (int64) pg_atomic_read_u64(&slot->end))
			return IDALLOC_TAKEN;
		return IDALLOC_RESERVED;
	}

	for (;;)
	{
		int64		want;

		if (pg_add_s64_overflow((int64) cur, count, &want) || want > end)
			return IDALLOC_RETRY;
		/* full barrier: the generation read below cannot move before it */
		if (pg_atomic_compare_exchange_u64(&slot->next, &cur, (uint64) want))
			break;
		end = (int64) pg_atomic_read_u64(&slot->end);
	}

	/*
	 * If the slot was detached (and maybe reused) between the first check
	 * and the CAS, the IDs may belong to another allocator: throw them away
	 * (a gap in that allocator, never a repeat).
	 */
	if (pg_atomic_read_u64(&slot->generation) != ref->generation)
		return IDALLOC_STALE;

	*first = (int64) cur;
	return IDALLOC_TAKEN;
}

extern IdallocTake idalloc_take_reserved(IdallocRef *ref, const char *name,
										 int64 first, int64 count,
										 uint32 epoch);

/* shmem.c, for source.c */
extern LWLock *idalloc_slot_lock(IdallocSlot *slot);
extern void idalloc_raise_next(IdallocSlot *slot, int64 floor);
extern void idalloc_publish_step(IdallocSlot *slot, int64 step);
extern int64 idalloc_adapt_step(int64 step, TimestampTz last_advance,
								TimestampTz now);

/* source.c */
extern int	idalloc_source_timeout;
extern char *idalloc_source_display(const char *conninfo,
									const char *allocator);
extern void idalloc_source_check_installed(const IdallocRegistry *reg);
extern void idalloc_source_set_conninfo(const IdallocRegistry *reg, int64 id,
										const char *conninfo);
extern void idalloc_source_forget(const IdallocRegistry *reg, int64 id);
extern void idalloc_source_verify(const char *conninfo, const char *name,
								  const char *display);
extern bool idalloc_source_fetch_start(Oid dboid, int slotno);
extern bool idalloc_source_fetching(void);
extern void idalloc_source_wait(Oid dboid, long timeout_ms);
extern IdallocTake idalloc_source_take_slow(IdallocRef *ref, const char *name,
											int64 count);
extern int64 idalloc_source_advance(const IdallocRegistry *reg, int64 id,
									const char *name, int64 target);
extern void idalloc_source_drop_held(IdallocRef *ref);
extern void idalloc_source_init(void);

/* worker.c */
extern void idalloc_worker_shmem_request(void);
extern void idalloc_worker_shmem_init(void);
extern void idalloc_worker_wake(Oid dboid);
extern void idalloc_worker_stop(Oid dboid);
extern void idalloc_worker_stop_done(Oid dboid);
extern bool idalloc_worker_alive(Oid dboid);
extern bool idalloc_worker_await(Oid dboid, int timeout_ms);
extern PGDLLEXPORT void idalloc_persister_main(Datum arg);

/*
 * After taking IDs up to `taken_end`: if the flushed window has fallen
 * below the slot's low water mark, ask the persister (once per block) to
 * persist the next one ahead of need.
 */
extern void idalloc_request_ahead(IdallocSlot *slot);

static inline void
idalloc_check_ahead(IdallocSlot *slot, int64 taken_end)
{
	int64		end = (int64) pg_atomic_read_u64(&slot->end);

	if (unlikely(end - taken_end < (int64) pg_atomic_read_u64(&slot->low_water)) &&
		end < IDALLOC_MAX_END && (idalloc_persister || slot->sourced))
		idalloc_request_ahead(slot);
}

/* funcs.c */
extern void idalloc_forget_local_refs(void);

/*
 * Per-backend count of the IDs this backend handed out from the global
 * counter, one per slot (cache.c): counted on the hot path without
 * touching any shared line but the backend's own.  Valid while
 * `generation` is the slot's.
 */
typedef struct IdallocCount
{
	pg_atomic_uint64 generation;
	pg_atomic_uint64 count;
} IdallocCount;

extern IdallocCount *idalloc_my_counts;
extern void idalloc_counts_claim(void);

/* Count n IDs of ref's slot as handed out by this backend. */
static inline void
idalloc_count(const IdallocRef *ref, int64 n)
{
	IdallocCount *c;

	if (unlikely(idalloc_my_counts == NULL))
		idalloc_counts_claim();
	c = &idalloc_my_counts[ref->slot - idalloc_slots];
	/* only this backend writes its counts: plain read-modify-write */
	if (unlikely(pg_atomic_read_u64(&c->generation) != ref->generation))
	{
		pg_atomic_write_u64(&c->count, 0);
		pg_atomic_write_u64(&c->generation, ref->generation);
	}
	pg_atomic_write_u64(&c->count, pg_atomic_read_u64(&c->count) + (uint64) n);
}

/* cache.c */
extern Size idalloc_cache_shmem_size(void);
extern void idalloc_cache_shmem_request(void);
extern void idalloc_cache_shmem_init(void);
extern IdallocCacheTake idalloc_cache_take(const IdallocRef *ref, int hint,
										   int64 count, int64 *first);
extern int	idalloc_cache_install(const IdallocRef *ref, int hint,
								  uint32 epoch, int64 start, int64 end);
extern void idalloc_cache_release(const IdallocRef *ref);
extern void idalloc_cache_foreach(Oid dboid, IdallocCacheVisitor fn,
								  void *arg);
extern uint64 idalloc_counts_sum(int slotno, uint64 generation);

/* restart.c */
extern void idalloc_restart_load(void);
extern void idalloc_restart_save(int code, Datum arg);

/* persist.c */
extern bool idalloc_row_by_id(int64 id, IdallocRow *row, char **name);
extern bool idalloc_row_by_name(const char *name, IdallocRow *row,
								IdallocRegistry *reg);
extern int64 idalloc_row_insert(const char *name, int64 start, int64 block,
								int32 cache, const char *kind,
								const char *source, IdallocRegistry *reg);
extern void idalloc_row_set_source(int64 id, const char *source,
								   IdallocRegistry *reg);
extern int64 idalloc_row_delete(const char *name, IdallocRegistry *reg);
extern bool idalloc_persist_block(Oid extoid, int64 id, const char *name,
								  int64 cur_next, int64 cur_end,
								  int64 count, int64 floor, int64 *step,
								  int64 *new_end, int64 *next_floor);
extern bool idalloc_persist_block_tx(Oid extoid, int64 id, int64 cur_next,
									 int64 cur_end, int64 *step,
									 int64 *new_end, int64 *next_floor);
extern bool idalloc_lsn_acked(XLogRecPtr lsn);
extern void idalloc_persist_sizes(Oid extoid, int64 id, int64 block,
								  int32 cache);
extern int64 idalloc_persist_raise(Oid extoid, int64 id, int64 floor,
								   int64 *before);
extern void idalloc_persist_after_rewrite(Oid relid);

#endif							/* IDALLOC_H */
