/*-------------------------------------------------------------------------
 *
 * restart.c
 *		Gapless clean restart: the exact next ID of every live allocator is
 *		saved at a clean shutdown and restored at the next start.
 *
 * Without this, a restart resumes each allocator at its persisted end (a
 * gap of up to one block).  The way pg_stat_statements keeps its stats:
 *
 *	- save: an on_shmem_exit callback of the postmaster, which runs after
 *	  every backend has exited and the shutdown checkpoint is written.  It
 *	  writes (database, extension, id, next, end) of each attached slot to
 *	  pg_stat/idalloc.state (temporary file + durable_rename), followed by
 *	  a CRC-32C of everything before it (as pg_control, replication slots
 *	  and two-phase state files have), and only if the exit is clean: exit
 *	  code 0 and pg_control saying "shut down".  A crash, an immediate
 *	  shutdown or a crash-restart writes nothing.
 *	- load: at shared-memory creation in the postmaster, the file is read
 *	  once and deleted, whatever happens next.  A file whose CRC does not
 *	  verify (or of another layout, e.g. written by idalloc 1.0) is
 *	  ignored with a LOG line: allocation then resumes at the persisted
 *	  ends, a gap but never a repeat.  It is also ignored unless
 *	  pg_control says "shut down" and the server does not start in archive
 *	  or standby recovery (recovery.signal, standby.signal, backup_label):
 *	  in those cases the catalog rows may come from another history.
 *	  Restored slots are "unverified" until the first backend that attaches
 *	  them has compared them with the row (shmem.c): the saved end must not
 *	  be beyond the row's persisted end.
 *
 * The saved end was flushed before the shutdown, so a restored slot hands
 * out IDs from the saved next without a new WAL record.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "catalog/pg_control.h"
#include "common/controldata_utils.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "utils/memutils.h"

#include "idalloc.h"

#define STATE_FILE		"pg_stat/idalloc.state"
#define STATE_TMP_FILE	STATE_FILE ".tmp"
#define STATE_MAGIC		0x1DA1A5A7
#define STATE_VERSION	2		/* 1: idalloc 1.0, no extension OID, no CRC */

/*
 * The file: a StateHeader, `count` SavedSlots, then the CRC-32C of all
 * bytes before it.
 */
typedef struct SavedSlot
{
	Oid			dboid;
	Oid			extoid;
	int64		id;
	int64		next;
	int64		end;
} SavedSlot;

typedef struct StateHeader
{
	uint32		magic;
	uint32		version;
	int32		count;
} StateHeader;

/* Did the server shut down cleanly (as pg_control says)? */
static bool
cleanly_shut_down(void)
{
	bool		crc_ok;
	ControlFileData *control = get_controlfile(DataDir, &crc_ok);
	bool		clean = crc_ok && control->state == DB_SHUTDOWNED;

	pfree(control);
	return clean;
}

/* on_shmem_exit callback of the postmaster */
void
idalloc_restart_save(int code, Datum arg)
{
	FILE	   *file;
	StateHeader header = {STATE_MAGIC, STATE_VERSION, 0};
	bool		ok = true;
	pg_crc32c	crc;

	if (code != 0 || idalloc_shared == NULL || !cleanly_shut_down())
		return;

	for (int i = 0; i < idalloc_shared->nslots; i++)
		if (pg_atomic_read_u64(&idalloc_slots[i].generation) != 0)
			header.count++;

	file = AllocateFile(STATE_TMP_FILE, PG_BINARY_W);
	if (file == NULL)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", STATE_TMP_FILE)));
		return;
	}
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &header, sizeof(header));
	ok = fwrite(&header, sizeof(header), 1, file) == 1;
	for (int i = 0; ok && i < idalloc_shared->nslots; i++)
	{
		IdallocSlot *slot = &idalloc_slots[i];
		SavedSlot	saved;

		if (pg_atomic_read_u64(&slot->generation) == 0)
			continue;
		memset(&saved, 0, sizeof(saved));	/* no uninitialised padding */
		saved.dboid = slot->dboid;
		saved.extoid = slot->extoid;
		saved.id = slot->id;
		saved.next = (int64) pg_atomic_read_u64(&slot->next);
		saved.end = (int64) pg_atomic_read_u64(&slot->end);
		/*
		 * next past end: ranges reserved on the fast path by backends that
		 * never saw them covered (idalloc.h), so never handed out
		 */
		saved.next = Min(saved.next, saved.end);
		COMP_CRC32C(crc, &saved, sizeof(saved));
		ok = fwrite(&saved, sizeof(saved), 1, file) == 1;
	}
	FIN_CRC32C(crc);
	if (ok)
		ok = fwrite(&crc, sizeof(crc), 1, file) == 1;
	if (FreeFile(file) != 0)
		ok = false;
	if (!ok)
	{
		ereport(LOG,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", STATE_TMP_FILE)));
		unlink(STATE_TMP_FILE);
		return;
	}
	(void) durable_rename(STATE_TMP_FILE, STATE_FILE, LOG);
}

/*
 * Read the saved slots; returns the number read, -1 if the file is bad:
 * short, of another layout, with bytes after the CRC, or failing its
 * CRC-32C.
 */
static int
read_state(FILE *file, SavedSlot **slots)
{
	StateHeader header;
	pg_crc32c	crc;
	pg_crc32c	stored;
	char		extra;

	if (fread(&header, sizeof(header), 1, file) != 1 ||
		header.magic != STATE_MAGIC || header.version != STATE_VERSION ||
		header.count < 0 || header.count > MaxAllocSize / (int) sizeof(SavedSlot))
		return -1;
	*slots = palloc(sizeof(SavedSlot) * Max(header.count, 1));
	if ((header.count > 0 &&
		 fread(*slots, sizeof(SavedSlot), header.count, file) != (size_t) header.count) ||
		fread(&stored, sizeof(stored), 1, file) != 1 ||
		fread(&extra, 1, 1, file) != 0)
		return -1;
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &header, sizeof(header));
	COMP_CRC32C(crc, *slots, sizeof(SavedSlot) * header.count);
	FIN_CRC32C(crc);
	if (!EQ_CRC32C(crc, stored))
		return -1;
	return header.count;
}

/* At shared-memory creation, in the postmaster. */
void
idalloc_restart_load(void)
{
	FILE	   *file;
	SavedSlot  *slots = NULL;
	int			count;
	int			restored = 0;

	Assert(!IsUnderPostmaster);
	file = AllocateFile(STATE_FILE, PG_BINARY_R);
	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", STATE_FILE)));
		return;
	}
	count = read_state(file, &slots);
	FreeFile(file);
	/* used once, whatever happens (durably: it must not come back) */
	(void) durable_unlink(STATE_FILE, LOG);

	if (count < 0)
	{
		ereport(LOG,
				(errmsg("ignoring idalloc state file \"%s\": it is corrupt, or not of this version",
						STATE_FILE),
				 errdetail("Allocators resume at their persisted ends.")));
		return;
	}
	if (!cleanly_shut_down() ||
		access("standby.signal", F_OK) == 0 ||
		access("recovery.signal", F_OK) == 0 ||
		access("backup_label", F_OK) == 0)
	{
		ereport(LOG,
				(errmsg("ignoring idalloc state file: the server was not shut down cleanly or starts in recovery")));
		return;
	}
	/* with a lowered idalloc.max_allocators, the rest resume at their
	 * persisted end */
	for (int i = 0; i < count; i++)
		if (idalloc_restore_slot(slots[i].dboid, slots[i].extoid, slots[i].id,
								 slots[i].next, slots[i].end) != NULL)
			restored++;
	ereport(LOG,
			(errmsg("idalloc: resumed %d allocators where the clean shutdown left them",
					restored)));
	pfree(slots);
}
