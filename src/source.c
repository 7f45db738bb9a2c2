/*-------------------------------------------------------------------------
 *
 * source.c
 *		Allocators with a source (SPEC "Sources"): one ID space across
 *		servers, with PostgreSQL as both the authority and the transport.
 *
 * An allocator created with source => 'conninfo' keeps no counter of its
 * own: its blocks are ranges [start_id, end_id) that the allocator of the
 * same name on the authority hands out through its own idalloc_batch, over
 * libpq.  The authority flushed each range (and, where configured, had it
 * acknowledged by its synchronous standbys) before returning it, so a crash
 * of either side never repeats an ID: after a crash or restart this server
 * simply fetches a new block (the rest of the old one is a gap).
 *
 * Where things live:
 *	- the conninfo, password included, in the table idalloc_source_conninfo
 *	  (no privilege for PUBLIC, not dumped); the registry row's source
 *	  column (readable by PUBLIC, dumped, shown by the view) holds only the
 *	  authority's host, port and database name (idalloc_source_display);
 *	- in shared memory, the slot's current block [next, end) and one spare
 *	  block fetched ahead [spare_start, spare_end), both under the slot
 *	  lock; blocks are not contiguous (other servers take blocks in
 *	  between), so IDs are taken from them with the compare-and-swap of
 *	  idalloc_take_fast, which never passes end (idalloc.h);
 *	- the last fetch error in idalloc_source_errors[slot], for the callers,
 *	  with the slot's high-water mark (below);
 *	- the mark: the end of the highest block this server received, written
 *	  into the row's persisted_end (in place, flushed) before the block is
 *	  installed, and read into the slot's high when it is attached.  No
 *	  block that starts below it is installed: an authority that went
 *	  backward (an old backup, a lagging standby promoted, another authority
 *	  set by idalloc_alter) cannot make this server hand out an ID twice,
 *	  whatever this server went through (restart, crash, dump and restore).
 *
 * The conninfo never leaves this server: it is not dumped, and the rows of
 * idalloc_source_conninfo that a logical-replication subscription brings
 * are skipped by the table's guard (triggers.c).  What the authority
 * answers is checked whole (batch_answer) before anything is changed, and
 * a failing authority is asked again with a backoff (back_off).  Errors
 * tell every caller in idalloc's own words what failed; what libpq or the
 * authority said goes to superusers and the server log only
 * (errdetail_failure).
 *
 * Who does the network I/O: the persister (worker.c), which fetches the
 * spare when a caller leaves less than half a step in the current block,
 * and a block of a waiting caller's batch plus a step when the batch is
 * larger than what is held.  It reads the conninfo in a short transaction
 * of its own, then connects and queries with non-blocking libpq, waiting
 * on the sockets of all its fetches and its latch at once (as postgres_fdw
 * waits for its asynchronous queries), holding no lock; only
 * the installation of a complete, checked result takes the slot lock.  A
 * caller that runs out takes the spare over under the slot lock, or sleeps
 * on the slot's condition variable (cancel and statement_timeout work)
 * until a block arrives, the persister reports a failure (the caller raises
 * it), or idalloc.source_timeout passes (08006).  idalloc_advance is
 * forwarded to the authority by the backend itself, with the same
 * interruptible libpq calls.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "idalloc.h"

#define CONNINFO_TABLE	IDALLOC_CONNINFO_TABLE

static bool redact_secrets(char *s);

/* ---------- the conninfo ---------- */

/* append " key=value" to buf, quoting the value as libpq reads it */
static void
append_kv(StringInfo buf, const char *key, const char *value)
{
	if (buf->len > 0)
		appendStringInfoChar(buf, ' ');
	appendStringInfo(buf, "%s=", key);
	if (value[0] != '\0' && strpbrk(value, " \t\n\r\\'") == NULL)
	{
		appendStringInfoString(buf, value);
		return;
	}
	appendStringInfoChar(buf, '\'');
	for (const char *p = value; *p; p++)
	{
		if (*p == '\\' || *p == '\'')
			appendStringInfoChar(buf, '\\');
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

/*
 * libpq's message about a conninfo it cannot parse, with every quoted
 * token that is not a keyword of the conninfo (followed there by "=")
 * replaced by "...": the message may quote a piece of a value, such as a
 * password ("missing "=" after "cret"").
 */
static char *
mask_values(const char *msg, const char *conninfo)
{
	StringInfoData buf;
	const char *p = msg;

	initStringInfo(&buf);
	while (*p)
	{
		const char *close;

		if (*p != '"' || (close = strchr(p + 1, '"')) == NULL)
		{
			appendStringInfoChar(&buf, *p++);
			continue;
		}
		{
			size_t		len = close - (p + 1);
			char	   *token = pnstrdup(p + 1, len);
			bool		keyword = len == 1 && p[1] == '=';

			for (const char *q = conninfo; !keyword && len > 0 && (q = strstr(q, token)) != NULL; q++)
			{
				const char *after = q + len;

				while (*after == ' ' || *after == '\t')
					after++;
				keyword = *after == '=' &&
					(q == conninfo || isspace((unsigned char) q[-1]));
			}
			if (keyword)
				appendBinaryStringInfo(&buf, p, len + 2);
			else
				appendStringInfoString(&buf, "\"...\"");
			pfree(token);
		}
		p = close + 1;
	}
	return buf.data;
}

/*
 * What may be shown of a conninfo: the authority's host (or hostaddr),
 * port and database name, as a conninfo string ("host=a port=5432
 * dbname=b"); never a password, user or key.  A conninfo libpq cannot
 * parse is 22023 with libpq's message (its quotes of anything but a
 * keyword masked: they may be a piece of a password), and the statement is
 * kept out of the server log.
 */
char *
idalloc_source_display(const char *conninfo, const char *allocator)
{
	PQconninfoOption *opts;
	char	   *err = NULL;
	StringInfoData buf;
	const char *host = NULL;
	const char *hostaddr = NULL;
	const char *port = NULL;
	const char *dbname = NULL;

	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		char	   *msg = err != NULL ? mask_values(err, conninfo) :
			pstrdup("out of memory");

		if (err != NULL)
			PQfreemem(err);
		/* libpq's messages end with a newline */
		if (msg[0] != '\0' && msg[strlen(msg) - 1] == '\n')
			msg[strlen(msg) - 1] = '\0';
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid source for allocator \"%s\": %s",
						allocator, msg),
				 errhidestmt(true)));
	}
	for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
		else if (strcmp(o->keyword, "port") == 0)
			port = o->val;
		else if (strcmp(o->keyword, "dbname") == 0)
			dbname = o->val;
	}
	initStringInfo(&buf);
	if (host != NULL)
		append_kv(&buf, "host", host);
	if (hostaddr != NULL)
		append_kv(&buf, "hostaddr", hostaddr);
	if (port != NULL)
		append_kv(&buf, "port", port);
	if (dbname != NULL)
		append_kv(&buf, "dbname", dbname);
	PQconninfoFree(opts);
	return buf.data;
}

/* Can this installation hold sources?  0A000 if not (1.0, not updated). */
void
idalloc_source_check_installed(const IdallocRegistry *reg)
{
	if (!OidIsValid(idalloc_registry_conninfo(reg)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("allocator sources need version 1.1 of extension \"idalloc\""),
				 errhint("Run ALTER EXTENSION idalloc UPDATE.")));
}

/*
 * Run one statement on the conninfo table as the extension's owner, in a
 * restricted security context, with a fully qualified name.  Returns the
 * text of the first column of the first row, or NULL.
 */
static char *
conninfo_spi(const IdallocRegistry *reg, const char *sql_fmt, int nargs,
			 Oid *argtypes, Datum *values, bool read_only)
{
	char	   *sql;
	int			ret;
	Oid			save_userid;
	int			save_sec_context;
	char	   *volatile result = NULL;
	bool		save_internal = idalloc_internal_write;
	int			save_depth = idalloc_internal_depth;

	sql = psprintf(sql_fmt, quote_identifier(get_namespace_name(reg->nsp)));
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(reg->owner, save_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	SPI_connect();
	/* the table's guard lets the rows of this statement through */
	if (!read_only)
	{
		idalloc_internal_write = true;
		idalloc_internal_depth = idalloc_trigger_depth();
	}
	PG_TRY();
	{
		ret = SPI_execute_with_args(sql, nargs, argtypes, values, NULL,
									read_only, 0);
		if (ret < 0)
			elog(ERROR, "SPI_execute_with_args failed: %s",
				 SPI_result_code_string(ret));
		if (SPI_tuptable != NULL && SPI_processed > 0)
		{
			char	   *v = SPI_getvalue(SPI_tuptable->vals[0],
										 SPI_tuptable->tupdesc, 1);

			if (v != NULL)
				result = MemoryContextStrdup(TopTransactionContext, v);
		}
	}
	PG_FINALLY();
	{
		idalloc_internal_write = save_internal;
		idalloc_internal_depth = save_depth;
	}
	PG_END_TRY();
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec_context);
	return result;
}

/* Set (insert or replace) the conninfo of allocator `id`; transactional. */
void
idalloc_source_set_conninfo(const IdallocRegistry *reg, int64 id,
							const char *conninfo)
{
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		values[2];

	idalloc_source_check_installed(reg);
	values[0] = Int64GetDatum(id);
	values[1] = CStringGetTextDatum(conninfo);
	(void) conninfo_spi(reg,
						"INSERT INTO %s." CONNINFO_TABLE " (id, conninfo)"
						" VALUES ($1, $2) ON CONFLICT (id) DO UPDATE"
						" SET conninfo = EXCLUDED.conninfo",
						2, argtypes, values, false);
}

/* Forget the conninfo of allocator `id` (its drop); transactional. */
void
idalloc_source_forget(const IdallocRegistry *reg, int64 id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];

	if (!OidIsValid(idalloc_registry_conninfo(reg)))
		return;
	values[0] = Int64GetDatum(id);
	(void) conninfo_spi(reg,
						"DELETE FROM %s." CONNINFO_TABLE
						" WHERE id OPERATOR(pg_catalog.=) $1",
						1, argtypes, values, false);
}

/*
 * The conninfo to connect to allocator `id`'s authority with (palloc'd in
 * the transaction's context): the stored one, or, for a row restored from
 * a dump (which carries no conninfo), what the row's source column holds
 * (host, port and database name: the rest comes from the environment,
 * such as a passfile).  NULL if the allocator has no source.
 */
static char *
source_conninfo(const IdallocRegistry *reg, int64 id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		values[1];
	char	   *conninfo = NULL;

	values[0] = Int64GetDatum(id);
	if (OidIsValid(idalloc_registry_conninfo(reg)))
		conninfo = conninfo_spi(reg,
								"SELECT conninfo FROM %s." CONNINFO_TABLE
								" WHERE id OPERATOR(pg_catalog.=) $1",
								1, argtypes, values, true);
	if (conninfo == NULL)
		conninfo = conninfo_spi(reg,
								"SELECT source FROM %s." IDALLOC_REGISTRY_TABLE
								" WHERE id OPERATOR(pg_catalog.=) $1",
								1, argtypes, values, true);
	return conninfo;
}

/* ---------- libpq, interruptibly ---------- */

/*
 * What went wrong with the authority, in two parts: our own words, which
 * say what failed and may be shown to any caller (they name nothing but
 * the allocator, the authority's host, port and database, and numbers),
 * and libpq's or the authority's own words (which can name a role, a
 * user or anything the authority chose to say), for superusers and the
 * server log only.
 */
typedef struct SourceFailure
{
	int			sqlerrcode;
	char	   *detail;			/* our words (never NULL once failed) */
	char	   *remote;			/* libpq's or the authority's, or NULL */
} SourceFailure;

/* s without the newlines and spaces libpq ends its messages with */
static char *
trimmed(const char *s)
{
	char	   *d = pstrdup(s != NULL ? s : "");
	size_t		len = strlen(d);

	while (len > 0 && (d[len - 1] == '\n' || d[len - 1] == ' '))
		d[--len] = '\0';
	return d;
}

/* a failure described in our own words only */
static void
fail_with(SourceFailure *f, int sqlerrcode, const char *detail)
{
	f->sqlerrcode = sqlerrcode;
	f->detail = trimmed(detail);
	f->remote = NULL;
}

/* a failure of libpq's: what failed in our words, libpq's message aside */
static void
fail_with_libpq(SourceFailure *f, int sqlerrcode, const char *what,
				const char *libpq_message)
{
	fail_with(f, sqlerrcode, what);
	if (libpq_message != NULL && libpq_message[0] != '\0')
		f->remote = psprintf("libpq said: %s", trimmed(libpq_message));
}

/*
 * Report a failure: the detail every caller sees is ours; libpq's or the
 * authority's words are added to it for a superuser, and go to the server
 * log in any case (with passwords overwritten, idalloc_emit_log).
 */
static int
errdetail_failure(const char *detail, const char *remote)
{
	if (remote == NULL || remote[0] == '\0')
		return detail[0] != '\0' ? errdetail_internal("%s", detail) : 0;
	if (superuser())
		return errdetail_internal("%s %s", detail, remote);
	errdetail_internal("%s", detail);
	return errdetail_log("%s %s", detail, remote);
}

/*
 * Every connection to an authority counts as an external file descriptor
 * of this process, as postgres_fdw's do: true if one may be opened (else
 * *f says so, 08004).  One more must stay free: the persister's wait on
 * its fetches' sockets (idalloc_source_wait) takes one for its epoll set
 * each time it waits, and a wait that cannot be set up would stop the
 * persister.
 */
static bool
acquire_conn_fd(SourceFailure *f)
{
	if (AcquireExternalFD())
	{
		bool		spare = AcquireExternalFD();

		if (spare)
		{
			ReleaseExternalFD();
			return true;
		}
		ReleaseExternalFD();
	}
	fail_with(f, ERRCODE_SQLSERVER_REJECTED_ESTABLISHMENT_OF_SQLCONNECTION,
			  "There are too many open files on the local server; raise max_files_per_process or the \"ulimit -n\" limit.");
	return false;
}

/* close a connection made after acquire_conn_fd */
static void
finish_conn(PGconn *conn)
{
	PQfinish(conn);
	ReleaseExternalFD();
}

/* milliseconds until deadline (at least 0) */
static long
ms_until(TimestampTz deadline)
{
	long		secs;
	int			usecs;

	TimestampDifference(GetCurrentTimestamp(), deadline, &secs, &usecs);
	return secs * 1000 + usecs / 1000;
}

/*
 * Connect to the authority, waiting on the latch and the socket (as
 * libpqwalreceiver does): interrupts are served, and the attempt ends at
 * the deadline.  NULL on failure (*f filled, class 08).
 */
static PGconn *
source_connect(const char *conninfo, TimestampTz deadline, SourceFailure *f)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {conninfo, "idalloc source", NULL};
	PGconn	   *volatile conn;
	volatile PostgresPollingStatusType status = PGRES_POLLING_WRITING;

	if (!acquire_conn_fd(f))
		return NULL;
	conn = PQconnectStartParams(keys, vals, true);
	if (conn == NULL)
	{
		ReleaseExternalFD();
		fail_with(f, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
				  "out of memory");
		return NULL;
	}
	if (PQstatus(conn) == CONNECTION_BAD)
		status = PGRES_POLLING_FAILED;
	/* an error while waiting (cancel, die, a wait that cannot be set up) */
	PG_TRY();
	{
		while (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED)
		{
			int			io = status == PGRES_POLLING_READING ?
				WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE;
			long		timeout = ms_until(deadline);
			int			rc;

			if (timeout <= 0)
				break;
			rc = WaitLatchOrSocket(MyLatch,
								   WL_EXIT_ON_PM_DEATH | WL_LATCH_SET | WL_TIMEOUT | io,
								   PQsocket(conn), timeout,
								   idalloc_wait_event(IDALLOC_WAIT_SOURCE));
			if (rc & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			if (rc & io)
				status = PQconnectPoll(conn);
		}
	}
	PG_CATCH();
	{
		finish_conn(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (status != PGRES_POLLING_OK && status != PGRES_POLLING_FAILED)
	{
		finish_conn(conn);
		fail_with(f, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
				  "timeout expired while connecting (idalloc.source_timeout)");
		return NULL;
	}
	if (status == PGRES_POLLING_FAILED)
	{
		fail_with_libpq(f, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
						"The connection to the authority could not be made.",
						PQerrorMessage(conn));
		finish_conn(conn);
		return NULL;
	}
	return conn;
}

/*
 * Run one statement on conn and return its last result, waiting on the
 * latch and the socket until the deadline.  NULL on a failure of the
 * connection (*f filled, 08006; the caller drops the connection).  An
 * error the authority reports comes back as a PGRES_FATAL_ERROR result.
 */
static PGresult *
source_exec(PGconn *conn, const char *sql, int nparams,
			const char *const *params, TimestampTz deadline,
			SourceFailure *f)
{
	PGresult   *last = NULL;

	if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
	{
		fail_with_libpq(f, ERRCODE_CONNECTION_FAILURE,
						"The connection to the authority failed.",
						PQerrorMessage(conn));
		return NULL;
	}
	for (;;)
	{
		PGresult   *res;

		while (PQisBusy(conn))
		{
			long		timeout = ms_until(deadline);
			int			rc;

			if (timeout <= 0)
			{
				if (last)
					PQclear(last);
				fail_with(f, ERRCODE_CONNECTION_FAILURE,
						  "timeout expired waiting for the authority's answer (idalloc.source_timeout)");
				return NULL;
			}
			rc = WaitLatchOrSocket(MyLatch,
								   WL_EXIT_ON_PM_DEATH | WL_LATCH_SET |
								   WL_TIMEOUT | WL_SOCKET_READABLE,
								   PQsocket(conn), timeout,
								   idalloc_wait_event(IDALLOC_WAIT_SOURCE));
			if (rc & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				/* (the caller drops the connection on an error) */
				if (last)
				{
					PQclear(last);
					last = NULL;
				}
				CHECK_FOR_INTERRUPTS();
			}
			if ((rc & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
			{
				if (last)
					PQclear(last);
				fail_with_libpq(f, ERRCODE_CONNECTION_FAILURE,
								"The connection to the authority failed.",
								PQerrorMessage(conn));
				return NULL;
			}
		}
		res = PQgetResult(conn);
		if (res == NULL)
			break;
		if (last)
			PQclear(last);
		last = res;
	}
	if (last == NULL)
		fail_with_libpq(f, ERRCODE_CONNECTION_FAILURE,
						"The connection to the authority failed.",
						PQerrorMessage(conn));
	return last;
}

/* An error result of the authority: its SQLSTATE and message in *f. */
static void
fail_with_result(SourceFailure *f, PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	int			code = ERRCODE_CONNECTION_FAILURE;

	/* (classes 00, 01 and 02 are no error: a protocol violation then) */
	if (state != NULL && strlen(state) == 5 &&
		strspn(state, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 5 &&
		strncmp(state, "00", 2) != 0 && strncmp(state, "01", 2) != 0 &&
		strncmp(state, "02", 2) != 0)
		code = MAKE_SQLSTATE(state[0], state[1], state[2], state[3], state[4]);
	else if (state != NULL)
		code = ERRCODE_PROTOCOL_VIOLATION;
	else
		state = NULL;
	fail_with_libpq(f, code,
					state != NULL ?
					psprintf("The authority reported an error (SQLSTATE %s).", state) :
					"The authority reported an error.",
					msg != NULL ? psprintf("It said: %s", msg) :
					PQresultErrorMessage(res));
}

/* As libpqwalreceiver does: nothing on the authority's search_path is used. */
static void
secure_search_path(PGconn *conn, TimestampTz deadline, SourceFailure *f)
{
	PGresult   *res = source_exec(conn,
								  "SELECT pg_catalog.set_config('search_path', '', false)",
								  0, NULL, deadline, f);

	if (res != NULL)
		PQclear(res);
}

/*
 * The authority's schema of idalloc (quoted), asked once per connection:
 * the statements name it, as every statement of idalloc does.  NULL on
 * failure (*f filled).
 */
static char *
authority_schema(PGconn *conn, TimestampTz deadline, SourceFailure *f)
{
	PGresult   *res;
	char	   *nsp = NULL;

	res = source_exec(conn,
					  "SELECT pg_catalog.quote_ident(n.nspname)"
					  " FROM pg_catalog.pg_extension e"
					  " JOIN pg_catalog.pg_namespace n"
					  " ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
					  " WHERE e.extname OPERATOR(pg_catalog.=) 'idalloc'",
					  0, NULL, deadline, f);
	if (res == NULL)
		return NULL;
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_with_result(f, res);
	else if (PQntuples(res) != 1)
		fail_with(f, ERRCODE_UNDEFINED_OBJECT,
				  "extension \"idalloc\" is not installed in the authority's database");
	else
		nsp = pstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return nsp;
}

/*
 * At idalloc_create and idalloc_alter: can this backend reach the
 * authority, and does it have an allocator of that name?  08001 with
 * libpq's message if it cannot connect, 42704 if the allocator is
 * missing there, the authority's own error otherwise.  Interruptible,
 * and bounded by idalloc.source_timeout.
 */
void
idalloc_source_verify(const char *conninfo, const char *name,
					  const char *display)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   idalloc_source_timeout);
	SourceFailure f = {0, NULL, NULL};
	PGconn	   *volatile conn = NULL;
	bool		ok = false;
	bool		missing = false;
	bool		chained = false;

	PG_TRY();
	{
		conn = source_connect(conninfo, deadline, &f);
		if (conn != NULL)
		{
			char	   *nsp;

			secure_search_path(conn, deadline, &f);
			nsp = authority_schema(conn, deadline, &f);

			if (nsp != NULL)
			{
				const char *params[1] = {name};
				PGresult   *res;

				res = source_exec(conn,
								  psprintf("SELECT source IS NOT NULL FROM %s.idalloc_registry WHERE name OPERATOR(pg_catalog.=) $1::pg_catalog.text", nsp),
								  1, params, deadline, &f);
				if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
				{
					ok = PQntuples(res) == 1;
					missing = !ok;
					/* the authority's allocator is sourced itself */
					chained = ok && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
				}
				else if (res != NULL)
					fail_with_result(&f, res);
				if (res != NULL)
					PQclear(res);
			}
		}
	}
	PG_FINALLY();
	{
		if (conn != NULL)
			finish_conn(conn);
	}
	PG_END_TRY();
	/*
	 * A source must be an allocator of its own, not one sourced in turn: a
	 * chain could close into a cycle (this very allocator, reached through
	 * its own server), whose fetches would wait on each other until they
	 * time out.  Local and sourced allocators never turn into each other,
	 * so what is checked here stays true.
	 */
	if (chained)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("allocator \"%s\" on its authority (%s) has a source itself",
						name, display),
				 errdetail("A source must be an allocator that hands out IDs of its own."),
				 errhint("Point the source at the authority that allocator takes its blocks from."),
				 errhidestmt(true)));
	if (ok)
		return;
	if (missing)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("allocator \"%s\" does not exist on its authority (%s)",
						name, display),
				 errhint("Create it there first: a sourced allocator takes its blocks from the authority's allocator of the same name."),
				 errhidestmt(true)));
	ereport(ERROR,
			(errcode(f.sqlerrcode),
			 ERRCODE_TO_CATEGORY(f.sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION ?
			 errmsg("could not connect to the authority of allocator \"%s\" (%s)",
					name, display) :
			 errmsg("the authority (%s) of allocator \"%s\" reported an error",
					display, name),
			 f.detail != NULL ? errdetail_failure(f.detail, f.remote) : 0,
			 errhidestmt(true)));
}

/* ---------- the persister's fetches ---------- */

/*
 * The persister fetches the blocks of all its database's sourced
 * allocators at once.  Each slot's fetch is a small state machine driven by
 * its socket (connect with PQconnectPoll, then send, then read what has
 * come), and idalloc_source_wait waits on every socket of a fetch under
 * way together with the latch, as postgres_fdw waits for its asynchronous
 * queries.  So an authority that does not answer holds up only its own
 * allocators, until idalloc.source_timeout: the persister meanwhile
 * persists local blocks and fetches from the other authorities.
 */
typedef enum FetchState
{
	FETCH_IDLE,					/* no fetch under way */
	FETCH_CONNECTING,			/* PQconnectPoll until it is made */
	FETCH_SETUP,				/* search_path emptied, schema asked */
	FETCH_BATCH					/* the authority's idalloc_batch sent */
} FetchState;

/* per slot, in the persister */
typedef struct SourceConn
{
	/* the cached connection (TopMemoryContext) */
	uint64		generation;		/* of the slot when connected */
	char	   *conninfo;
	char	   *nsp;			/* the authority's schema of idalloc */
	PGconn	   *conn;
	TimestampTz retry_at;		/* after a failure, no fetch before */
	int			failures;		/* in a row: the backoff doubles with each */
	/*
	 * After a block was refused for starting below the mark (install_block):
	 * how far its end was below the mark.  The next fetch asks for that
	 * many IDs more than it would, so that its block reaches past the mark
	 * by at least a step; only its part above the mark is installed.
	 */
	int64		catch_up;

	/* the fetch under way; its strings live in cxt, reset at its end */
	FetchState	state;
	PostgresPollingStatusType poll; /* while connecting */
	bool		reused;			/* sent on a connection cached before */
	MemoryContext cxt;
	PGresult   *last;			/* the latest result of the statement */
	TimestampTz deadline;
	TimestampTz started;
	uint32		epoch;			/* the slot's cache_epoch at the start */
	Oid			extoid;			/* the allocator's identity */
	int64		id;
	int64		step;
	int64		count;
	char	   *name;
	char	   *display;
} SourceConn;

static SourceConn *conns = NULL;
static int	fetches_under_way = 0;

/*
 * After the authority failed us (an error, a malformed or refused answer,
 * no answer), it is asked again after FETCH_RETRY_MS, doubling with each
 * failure in a row up to FETCH_RETRY_MAX_MS: never in a loop.
 */
#define FETCH_RETRY_MS			200
#define FETCH_RETRY_MAX_MS		5000
#define FETCH_ERROR_RETRY_MS	1000	/* after an error of our own */

static SourceConn *
slot_conn(int slotno)
{
	if (conns == NULL)
		conns = MemoryContextAllocExtended(TopMemoryContext,
										   sizeof(SourceConn) * idalloc_shared->nslots,
										   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	Assert(slotno >= 0 && slotno < idalloc_shared->nslots);
	/* a context only for slots that fetch */
	if (conns[slotno].cxt == NULL)
		conns[slotno].cxt = AllocSetContextCreate(TopMemoryContext,
												  "idalloc fetch",
												  0, (Size) 1024, (Size) 8192);
	return &conns[slotno];
}

/* Close the cached connection (the conninfo it was for stays). */
static void
close_conn(SourceConn *c)
{
	if (c->last != NULL)
		PQclear(c->last);
	c->last = NULL;
	if (c->conn != NULL)
		finish_conn(c->conn);
	c->conn = NULL;
	if (c->nsp != NULL)
		pfree(c->nsp);
	c->nsp = NULL;
}

/* The fetch is over; the connection stays cached if it is still open. */
static void
end_fetch(SourceConn *c)
{
	if (c->last != NULL)
		PQclear(c->last);
	c->last = NULL;
	if (c->state != FETCH_IDLE)
	{
		Assert(fetches_under_way > 0);
		fetches_under_way--;
	}
	c->state = FETCH_IDLE;
	c->name = c->display = NULL;
	MemoryContextReset(c->cxt);
	if (fetches_under_way == 0)
		pgstat_report_activity(STATE_IDLE, NULL);
}

/* Start connecting to c->conninfo; false (*f) if libpq gives up at once. */
static bool
begin_connect(SourceConn *c, SourceFailure *f)
{
	const char *keys[] = {"dbname", "fallback_application_name", NULL};
	const char *vals[] = {c->conninfo, "idalloc source", NULL};

	close_conn(c);
	c->reused = false;
	if (!acquire_conn_fd(f))
		return false;
	c->conn = PQconnectStartParams(keys, vals, true);
	if (c->conn == NULL)
	{
		ReleaseExternalFD();
		fail_with(f, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
				  "out of memory");
		return false;
	}
	if (PQstatus(c->conn) == CONNECTION_BAD)
	{
		fail_with_libpq(f, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
						"The connection to the authority could not be made.",
						PQerrorMessage(c->conn));
		close_conn(c);
		return false;
	}
	c->poll = PGRES_POLLING_WRITING;
	c->state = FETCH_CONNECTING;
	return true;
}

/*
 * Once connected: as libpqwalreceiver does, nothing on the authority's
 * search_path is used (the second statement is analyzed after the first
 * ran); then the authority's schema of idalloc (quoted), which the batch
 * statement names.
 */
static bool
send_setup(SourceConn *c, SourceFailure *f)
{
	if (!PQsendQuery(c->conn,
					 "SELECT pg_catalog.set_config('search_path', '', false);"
					 "SELECT pg_catalog.quote_ident(n.nspname)"
					 " FROM pg_catalog.pg_extension e"
					 " JOIN pg_catalog.pg_namespace n"
					 " ON n.oid OPERATOR(pg_catalog.=) e.extnamespace"
					 " WHERE e.extname OPERATOR(pg_catalog.=) 'idalloc'"))
	{
		fail_with_libpq(f, ERRCODE_CONNECTION_FAILURE,
						"The connection to the authority failed.",
						PQerrorMessage(c->conn));
		return false;
	}
	c->state = FETCH_SETUP;
	return true;
}

/* Ask the authority for c->count IDs of allocator c->name. */
static bool
send_batch(SourceConn *c, SourceFailure *f)
{
	char		countbuf[32];
	const char *params[2];
	char	   *sql;

	snprintf(countbuf, sizeof(countbuf), INT64_FORMAT, c->count);
	params[0] = c->name;
	params[1] = countbuf;
	sql = psprintf("SELECT start_id, end_id FROM %s.idalloc_batch($1::pg_catalog.text, $2::pg_catalog.int8)",
				   c->nsp);
	if (!PQsendQueryParams(c->conn, sql, 2, NULL, params, NULL, NULL, 0))
	{
		fail_with_libpq(f, ERRCODE_CONNECTION_FAILURE,
						"The connection to the authority failed.",
						PQerrorMessage(c->conn));
		return false;
	}
	c->state = FETCH_BATCH;
	return true;
}

/*
 * Read what has come on c's connection: 1 when the statement's results are
 * all in (the last one in c->last), 0 while more is awaited, -1 if the
 * connection broke (*f, 08006).
 */
static int
collect(SourceConn *c, SourceFailure *f)
{
	if (!PQconsumeInput(c->conn))
	{
		fail_with_libpq(f, ERRCODE_CONNECTION_FAILURE,
						"The connection to the authority failed.",
						PQerrorMessage(c->conn));
		return -1;
	}
	while (!PQisBusy(c->conn))
	{
		PGresult   *res = PQgetResult(c->conn);

		if (res == NULL)
		{
			if (c->last != NULL)
				return 1;
			fail_with_libpq(f, ERRCODE_CONNECTION_FAILURE,
							"The connection to the authority failed.",
							PQerrorMessage(c->conn));
			return -1;
		}
		if (c->last != NULL)
			PQclear(c->last);
		c->last = res;
	}
	return 0;
}

/*
 * One column of the authority's answer as a bigint: false if it is NULL,
 * or not an integer that fits in 64 bits (its text is then in *f's remote
 * words only: the authority chose it).
 */
static bool
answer_int8(PGresult *res, int col, const char *colname, int64 *v,
			SourceFailure *f)
{
	const char *text;
	char	   *endp;

	if (PQgetisnull(res, 0, col))
	{
		fail_with(f, ERRCODE_PROTOCOL_VIOLATION,
				  psprintf("The authority's idalloc_batch returned a NULL %s.",
						   colname));
		return false;
	}
	text = PQgetvalue(res, 0, col);
	errno = 0;
	*v = strtoi64(text, &endp, 10);
	if (text[0] == '\0' || isspace((unsigned char) text[0]) ||
		*endp != '\0' || errno != 0)
	{
		fail_with(f, ERRCODE_PROTOCOL_VIOLATION,
				  psprintf("The authority's idalloc_batch returned a %s that is not a bigint.",
						   colname));
		f->remote = psprintf("It returned \"%.40s\".", text);
		return false;
	}
	return true;
}

/*
 * The authority's answer to idalloc_batch: true with [*start, *end) when it
 * is one row of two bigints, end > start, exactly c->count IDs apart
 * (computed without overflow: PGXS builds with -fwrapv, and a wrapped end
 * must not pass for a range).  Anything else yields no range at all, and
 * *f says what the authority returned.
 */
static bool
batch_answer(SourceConn *c, int64 *start, int64 *end, SourceFailure *f)
{
	PGresult   *res = c->last;
	int64		size;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		fail_with_result(f, res);
		return false;
	}
	if (PQnfields(res) != 2)
	{
		fail_with(f, ERRCODE_PROTOCOL_VIOLATION,
				  psprintf("The authority's idalloc_batch returned %d columns instead of 2 (start_id, end_id).",
						   PQnfields(res)));
		return false;
	}
	if (PQntuples(res) != 1)
	{
		fail_with(f, ERRCODE_PROTOCOL_VIOLATION,
				  psprintf("The authority's idalloc_batch returned %d rows instead of 1.",
						   PQntuples(res)));
		return false;
	}
	if (!answer_int8(res, 0, "start_id", start, f) ||
		!answer_int8(res, 1, "end_id", end, f))
		return false;
	if (*end <= *start)
	{
		fail_with(f, ERRCODE_PROTOCOL_VIOLATION,
				  psprintf("The authority's idalloc_batch returned [" INT64_FORMAT ", " INT64_FORMAT "), an empty or reversed range.",
						   *start, *end));
		return false;
	}
	if (pg_sub_s64_overflow(*end, *start, &size))
	{
		fail_with(f, ERRCODE_PROTOCOL_VIOLATION,
				  psprintf("The authority's idalloc_batch returned [" INT64_FORMAT ", " INT64_FORMAT "), a range wider than 9223372036854775807 IDs.",
						   *start, *end));
		return false;
	}
	if (size != c->count)
	{
		fail_with(f, ERRCODE_PROTOCOL_VIOLATION,
				  psprintf("The authority's idalloc_batch returned [" INT64_FORMAT ", " INT64_FORMAT "), " INT64_FORMAT " IDs instead of the " INT64_FORMAT " asked for.",
						   *start, *end, size, c->count));
		return false;
	}
	Assert(*start < *end);
	return true;
}

/* the message of a failure of allocator name at `display` (never a password) */
static void
record_failure(IdallocSlot *slot, uint64 generation, const char *name,
			   const char *display, const SourceFailure *f,
			   TimestampTz retry_at)
{
	IdallocSourceError *e = &idalloc_source_errors[slot - idalloc_slots];

	LWLockAcquire(idalloc_slot_lock(slot), LW_EXCLUSIVE);
	if (pg_atomic_read_u64(&slot->generation) == generation)
	{
		e->sqlerrcode = f->sqlerrcode;
		if (ERRCODE_TO_CATEGORY(f->sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION)
			snprintf(e->message, sizeof(e->message),
					 "could not get a block for allocator \"%s\" from its authority (%s)",
					 name, display);
		else
			snprintf(e->message, sizeof(e->message),
					 "the authority (%s) refused a block for allocator \"%s\"",
					 display, name);
		strlcpy(e->detail, f->detail, sizeof(e->detail));
		strlcpy(e->remote, f->remote != NULL ? f->remote : "",
				sizeof(e->remote));
		/* (it goes to the log with every caller's error) */
		(void) redact_secrets(e->remote);
		e->retry_at = retry_at;
		if (display != NULL)
			strlcpy(e->display, display, sizeof(e->display));
		pg_atomic_fetch_add_u32(&slot->source_failures, 1);
	}
	LWLockRelease(idalloc_slot_lock(slot));
	ConditionVariableBroadcast(&slot->published);
}

/* After a failure: when the authority is asked again (the backoff). */
static TimestampTz
back_off(SourceConn *c)
{
	int			ms = FETCH_RETRY_MS;

	for (int i = 0; i < c->failures && ms < FETCH_RETRY_MAX_MS; i++)
		ms *= 2;
	ms = Min(ms, FETCH_RETRY_MAX_MS);
	if (c->failures < INT_MAX)
		c->failures++;
	c->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);
	return c->retry_at;
}

/*
 * The fetch of slot slotno failed (*f): its callers get the failure, and
 * the authority is left alone for a while (back_off), so that one that
 * fails at once is not asked in a loop.
 */
static void
fetch_failed(int slotno, const SourceFailure *f)
{
	SourceConn *c = &conns[slotno];

	/* a broken, timed-out or half set-up connection is not used again */
	if (c->state != FETCH_BATCH ||
		ERRCODE_TO_CATEGORY(f->sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION ||
		f->sqlerrcode == ERRCODE_PROTOCOL_VIOLATION)
		close_conn(c);
	record_failure(&idalloc_slots[slotno], c->generation, c->name,
				   c->display, f, back_off(c));
	end_fetch(c);
}

/*
 * In the persister: allocator `id`'s name, conninfo (and what may be shown
 * of it), and the step bounded by its row's block and idalloc.max_block,
 * read in a short transaction of its own.  *name is NULL if the allocator
 * is gone.  Results in cxt.
 */
static void
read_source(Oid extoid, int64 id, int64 *stepp, char **namep,
			char **displayp, char **conninfop, MemoryContext cxt)
{
	MemoryContext oldcxt = CurrentMemoryContext;

	*namep = *displayp = *conninfop = NULL;
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	PG_TRY();
	{
		IdallocRegistry reg;
		IdallocRow	row;
		char	   *n;

		if (idalloc_registry_find(&reg, true) && reg.extoid == extoid &&
			idalloc_row_by_id(id, &row, &n))
		{
			char	   *ci = source_conninfo(&reg, id);

			/* the step within the row's block and idalloc.max_block */
			*stepp = Max(Min(*stepp, Max((int64) idalloc_max_block, row.block)),
						 row.block);
			MemoryContextSwitchTo(cxt);
			*namep = pstrdup(n);
			if (ci != NULL)
			{
				*conninfop = pstrdup(ci);
				*displayp = idalloc_source_display(ci, *namep);
			}
		}
		MemoryContextSwitchTo(oldcxt);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		AbortCurrentTransaction();
		PG_RE_THROW();
	}
	PG_END_TRY();
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Start the fetch of slot slotno's next block if one is wanted (a spare
 * ahead of need, or a waiting caller's batch): read its conninfo, then
 * send the batch on the cached connection or start connecting.  Allocates
 * in the fetch's context.  True if it did anything.
 */
static bool
fetch_start(Oid dboid, int slotno)
{
	SourceConn *c = slot_conn(slotno);
	IdallocSlot *slot = &idalloc_slots[slotno];
	LWLock	   *lock = idalloc_slot_lock(slot);
	uint64		generation;
	int64		id;
	Oid			extoid;
	int64		cur_next;
	int64		cur_end;
	int64		need;
	int64		step;
	uint32		epoch;
	TimestampTz now = GetCurrentTimestamp();
	char	   *conninfo = NULL;
	SourceFailure f = {0, NULL, NULL};

	Assert(!IsTransactionState());
	if (c->state != FETCH_IDLE || (c->retry_at != 0 && now < c->retry_at))
		return false;
	c->retry_at = 0;

	LWLockAcquire(lock, LW_EXCLUSIVE);
	generation = pg_atomic_read_u64(&slot->generation);
	if (generation == 0 || slot->dboid != dboid || !slot->sourced ||
		slot->unverified)
	{
		LWLockRelease(lock);
		return false;
	}
	id = slot->id;
	extoid = slot->extoid;
	/* an advance while the fetch is under way voids what it brings */
	epoch = pg_atomic_read_u32(&slot->cache_epoch);
	cur_next = (int64) pg_atomic_read_u64(&slot->next);
	cur_end = (int64) pg_atomic_read_u64(&slot->end);
	need = slot->need_count;
	step = idalloc_adapt_step(slot->step, slot->last_advance, now);
	if (need == 0 &&
		(slot->spare_end > 0 ||
		 cur_end - cur_next >= (int64) pg_atomic_read_u64(&slot->low_water)))
	{
		/* nothing wanted; a held spare keeps the request answered */
		if (slot->spare_end == 0)
			pg_atomic_write_u32(&slot->ahead_pending, 0);
		LWLockRelease(lock);
		return false;
	}
	LWLockRelease(lock);

	/* the allocator's name, block and conninfo, in a short transaction */
	MemoryContextReset(c->cxt);
	read_source(extoid, id, &step, &c->name, &c->display, &conninfo,
				c->cxt);
	if (c->name == NULL || conninfo == NULL)
	{
		MemoryContextReset(c->cxt);
		c->name = c->display = NULL;
		return false;			/* dropped meanwhile */
	}

	/* from here on the fetch is under way: end_fetch ends it */
	MemoryContextSwitchTo(c->cxt);
	fetches_under_way++;
	c->state = FETCH_CONNECTING;
	c->started = now;
	c->epoch = epoch;
	c->extoid = extoid;
	c->id = id;
	c->step = step;
	c->count = step;
	if (need > 0 && pg_add_s64_overflow(need, step, &c->count))
		c->count = need;
	if (c->catch_up > 0 && pg_add_s64_overflow(c->count, c->catch_up, &c->count))
		c->count = PG_INT64_MAX;	/* (the authority says 2200H) */
	c->deadline = TimestampTzPlusMilliseconds(now, idalloc_source_timeout);
	pgstat_report_activity(STATE_RUNNING,
						   "idalloc: fetching blocks from authorities");

	/* a restored row (no conninfo stored) connects only to a named host */
	if (c->display != NULL && strcmp(c->display, conninfo) == 0 &&
		strstr(c->display, "host") == NULL)
	{
		c->generation = generation;
		fail_with(&f, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
				  "No conninfo is stored for this allocator (restored from a dump?), and its source names no host; set it with idalloc_alter(allocator, source => ...).");
		fetch_failed(slotno, &f);
		return true;
	}

	/* the cached connection, if it is for this allocator and conninfo */
	if (c->conn != NULL && c->generation == generation &&
		strcmp(c->conninfo, conninfo) == 0 &&
		PQstatus(c->conn) == CONNECTION_OK && c->nsp != NULL)
	{
		if (send_batch(c, &f))
		{
			c->reused = true;
			return true;
		}
	}
	close_conn(c);
	if (c->conninfo != NULL)
		pfree(c->conninfo);
	c->conninfo = MemoryContextStrdup(TopMemoryContext, conninfo);
	c->generation = generation;
	if (!begin_connect(c, &f))
		fetch_failed(slotno, &f);
	return true;
}

/*
 * Before a block [start, end) of allocator c->id is installed, its end is
 * made durable as the allocator's mark (its row's persisted_end: in place,
 * flushed, acknowledged as a block advance is; idalloc_raise_mark), in a
 * short transaction of the persister's own.  No block that starts below
 * the mark is ever installed, after any restart, crash or restore of this
 * server: an authority that went backward (restored from an old backup, a
 * failover to a lagging standby, another authority set by idalloc_alter)
 * cannot make this server hand out an ID twice.  False (nothing written)
 * while an idalloc_alter of the allocator holds its advance lock: the
 * persister does not wait for another session's transaction.  *before is
 * the row's mark before this write.
 */
static bool
persist_mark(SourceConn *c, int64 end, int64 *before)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	bool		written;

	StartTransactionCommand();
	written = idalloc_raise_mark(c->extoid, c->id, end, true, before);
	CommitTransactionCommand();
	MemoryContextSwitchTo(oldcxt);
	return written;
}

/*
 * A complete answer [start, end) for slot slotno, its end persisted as the
 * mark (persist_mark): installed unless the allocator changed meanwhile.
 * False if it is refused because it starts below a block this server
 * received before (XX001 for the callers; no ID of it is handed out, and
 * the mark covers it).  The authority then went backward: the next fetch
 * asks for enough IDs to pass the mark (c->catch_up), and of its block
 * only the part above the mark is installed (the rest is a gap).
 */
static bool
install_block(int slotno, int64 start, int64 end, int64 row_mark)
{
	SourceConn *c = &conns[slotno];
	IdallocSlot *slot = &idalloc_slots[slotno];
	LWLock	   *lock = idalloc_slot_lock(slot);
	bool		refused = false;
	int64		held = 0;
	int64		skipped = -1;

	Assert(start < end);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u64(&slot->generation) == c->generation &&
		pg_atomic_read_u32(&slot->cache_epoch) != c->epoch)
	{
		/* idalloc_advance ran meanwhile: the block may be below it (a gap) */
		pg_atomic_write_u32(&slot->ahead_pending, 1);
	}
	else if (pg_atomic_read_u64(&slot->generation) == c->generation)
	{
		int64		held_next = (int64) pg_atomic_read_u64(&slot->next);
		int64		held_end = (int64) pg_atomic_read_u64(&slot->end);
		IdallocSourceError *e = &idalloc_source_errors[slotno];

		/* (the row's mark: a restore may have raised it since we attached) */
		held = Max(Max(Max(held_end, slot->spare_end), e->high), row_mark);
		if (start < held && c->catch_up > 0 && end > held)
		{
			/* the fetch that catches up: the part above the mark is ours */
			skipped = start;
			start = held;
		}
		c->catch_up = 0;
		if (start < held)
		{
			/* the authority went backward (restored from an old backup?) */
			refused = true;
			e->sqlerrcode = ERRCODE_DATA_CORRUPTED;
			snprintf(e->message, sizeof(e->message),
					 "the authority (%s) handed out a block of allocator \"%s\" below one it handed out before",
					 c->display, c->name);
			snprintf(e->detail, sizeof(e->detail),
					 "It returned [" INT64_FORMAT ", " INT64_FORMAT "); this server holds IDs up to " INT64_FORMAT ". No ID of that block is handed out; the next block must start at " INT64_FORMAT " or above.",
					 start, end, held, Max(held, end));
			e->remote[0] = '\0';
			e->high = Max(e->high, end);
			e->retry_at = back_off(c);
			if (end < held)
				c->catch_up = held - end;
			pg_atomic_fetch_add_u32(&slot->source_failures, 1);
		}
		else
		{
			if (start == held_end && slot->spare_end == 0)
			{
				/* contiguous: the current block grows */
				pg_memory_barrier();
				pg_atomic_write_u64(&slot->end, (uint64) end);
			}
			else if (held_next >= held_end && slot->spare_end == 0)
			{
				/* nothing left in the current block: this one replaces it
				 * (next first, then end: see idalloc_take_fast) */
				idalloc_raise_next(slot, start);
				pg_memory_barrier();
				pg_atomic_write_u64(&slot->end, (uint64) end);
			}
			else
			{
				/*
				 * A spare; one held already was too small for a waiting
				 * batch (it is a gap now, below this one, so that taking
				 * this one over can raise next past it)
				 */
				slot->spare_start = start;
				slot->spare_end = end;
			}
			e->high = end;
			strlcpy(e->display, c->display, sizeof(e->display));
			slot->last_advance = c->started;
			idalloc_publish_step(slot, c->step);
			slot->block_advances++;
			if (slot->need_count <= end - start - c->step + 1)
				slot->need_count = 0;
			e->sqlerrcode = 0;
			c->failures = 0;
		}
	}
	LWLockRelease(lock);
	ConditionVariableBroadcast(&slot->published);
	if (skipped >= 0)
		ereport(LOG,
				(errmsg("idalloc: allocator \"%s\" leaves [" INT64_FORMAT ", " INT64_FORMAT ") of a block from its authority (%s) unused: this server held IDs up to " INT64_FORMAT,
						c->name, skipped, held, c->display, held)));
	if (refused)
		ereport(WARNING,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the authority (%s) handed out a block of allocator \"%s\" below one it handed out before",
						c->display, c->name),
				 errdetail("It returned [" INT64_FORMAT ", " INT64_FORMAT "); this server holds IDs up to " INT64_FORMAT ".",
						   start, end, held),
				 errhint("Other servers taking blocks from that authority may have received IDs twice; find out why it went backward.")));
	return !refused;
}

/*
 * Slot slotno's socket is ready (or may be): move its fetch on.  Runs in
 * the fetch's context.
 */
static bool
fetch_step(Oid dboid, int slotno)
{
	SourceConn *c = &conns[slotno];
	SourceFailure f = {0, NULL, NULL};
	int64		start;
	int64		end;
	int			rc;

	(void) dboid;
	MemoryContextSwitchTo(c->cxt);
	switch (c->state)
	{
		case FETCH_IDLE:
			return false;
		case FETCH_CONNECTING:
			c->poll = PQconnectPoll(c->conn);
			if (c->poll == PGRES_POLLING_FAILED)
			{
				fail_with_libpq(&f, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
								"The connection to the authority could not be made.",
								PQerrorMessage(c->conn));
				break;
			}
			if (c->poll != PGRES_POLLING_OK || send_setup(c, &f))
				return true;
			break;
		case FETCH_SETUP:
			rc = collect(c, &f);
			if (rc == 0)
				return true;
			if (rc < 0)
				break;
			if (PQresultStatus(c->last) != PGRES_TUPLES_OK)
				fail_with_result(&f, c->last);
			else if (PQntuples(c->last) != 1)
				fail_with(&f, ERRCODE_UNDEFINED_OBJECT,
						  "extension \"idalloc\" is not installed in the authority's database");
			else
			{
				c->nsp = MemoryContextStrdup(TopMemoryContext,
											 PQgetvalue(c->last, 0, 0));
				PQclear(c->last);
				c->last = NULL;
				if (send_batch(c, &f))
					return true;
			}
			break;
		case FETCH_BATCH:
			rc = collect(c, &f);
			if (rc == 0)
				return true;
			if (rc > 0 && batch_answer(c, &start, &end, &f))
			{
				int64		row_mark;

				if (persist_mark(c, end, &row_mark))
				{
					MemoryContextSwitchTo(c->cxt);
					(void) install_block(slotno, start, end, row_mark);
				}
				else
				{
					/*
					 * an idalloc_alter of the allocator is under way: the
					 * block is a gap, and another is fetched shortly
					 */
					pg_atomic_write_u32(&idalloc_slots[slotno].ahead_pending, 1);
					c->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
															  FETCH_RETRY_MS);
				}
				end_fetch(c);
				return true;
			}
			/* one cached since before the authority restarted: anew */
			if (rc < 0 && c->reused && GetCurrentTimestamp() < c->deadline)
			{
				if (begin_connect(c, &f))
					return true;
			}
			break;
	}
	fetch_failed(slotno, &f);
	return true;
}

/*
 * Run fn for slot slotno.  An error of our own (not the authority's, which
 * is recorded for the callers) is reported, the fetch given up and the
 * slot's waiters woken; the slot is then left alone for a second.
 */
static bool
guarded(bool (*fn) (Oid, int), Oid dboid, int slotno)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile bool worked = false;

	(void) slot_conn(slotno);
	PG_TRY();
	{
		worked = fn(dboid, slotno);
	}
	PG_CATCH();
	{
		SourceConn *c = &conns[slotno];

		MemoryContextSwitchTo(oldcxt);
		LWLockReleaseAll();
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		/* a fetch under way is given up; a cached connection stays */
		if (c->state != FETCH_IDLE)
			close_conn(c);
		end_fetch(c);
		pg_atomic_write_u32(&idalloc_slots[slotno].ahead_pending, 0);
		ConditionVariableBroadcast(&idalloc_slots[slotno].published);
		c->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												  FETCH_ERROR_RETRY_MS);
		worked = true;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	return worked;
}

/*
 * In the persister, outside a transaction: start fetching slot slotno's
 * next block if one is wanted and none is under way.  True if it did
 * anything.
 */
bool
idalloc_source_fetch_start(Oid dboid, int slotno)
{
	return guarded(fetch_start, dboid, slotno);
}

/* Is any fetch under way (the persister does not retire then)? */
bool
idalloc_source_fetching(void)
{
	return fetches_under_way > 0;
}

/* a fetch past its deadline fails (class 08, its callers are told) */
static bool
fetch_expire(Oid dboid, int slotno)
{
	SourceConn *c = &conns[slotno];
	SourceFailure f = {0, NULL, NULL};

	(void) dboid;
	if (c->state == FETCH_IDLE || GetCurrentTimestamp() < c->deadline)
		return false;
	MemoryContextSwitchTo(c->cxt);
	if (c->state == FETCH_CONNECTING)
		fail_with(&f, ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
				  "timeout expired while connecting (idalloc.source_timeout)");
	else
		fail_with(&f, ERRCODE_CONNECTION_FAILURE,
				  "timeout expired waiting for the authority's answer (idalloc.source_timeout)");
	close_conn(c);
	fetch_failed(slotno, &f);
	return true;
}

/*
 * In the persister, instead of WaitLatch: wait up to timeout_ms for the
 * latch and for the socket of every fetch under way, then move on each
 * fetch whose socket is ready and fail each past its deadline.  The latch
 * is reset.
 */
void
idalloc_source_wait(Oid dboid, long timeout_ms)
{
	WaitEventSet *set;
	WaitEvent  *occurred;
	int			nslots = conns != NULL ? idalloc_shared->nslots : 0;
	int			nevents = 2;
	int			latch_pos;
	int			n;
	TimestampTz now = GetCurrentTimestamp();

	/* wake for the nearest deadline, and the nearest retry */
	for (int i = 0; i < nslots; i++)
	{
		TimestampTz at = conns[i].state != FETCH_IDLE ? conns[i].deadline :
			conns[i].retry_at;
		long		ms;

		if (conns[i].state != FETCH_IDLE)
			nevents++;
		else if (at <= now)
			continue;			/* (none, or past: no reason to wake) */
		ms = at <= now ? 0 : ms_until(at) + 1;
		timeout_ms = Min(timeout_ms, ms);
	}

	set = idalloc_create_wait_event_set(nevents);
	latch_pos = AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET,
								  MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < nslots; i++)
	{
		SourceConn *c = &conns[i];
		uint32		io;

		if (c->state == FETCH_IDLE || PQsocket(c->conn) == PGINVALID_SOCKET)
			continue;			/* (its deadline ends it) */
		io = c->state == FETCH_CONNECTING &&
			c->poll == PGRES_POLLING_WRITING ?
			WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE;
		AddWaitEventToSet(set, io, PQsocket(c->conn), NULL,
						  (void *) (intptr_t) i);
	}
	occurred = palloc(sizeof(WaitEvent) * nevents);
	n = WaitEventSetWait(set, timeout_ms, occurred, nevents,
						 idalloc_wait_event(fetches_under_way > 0 ?
											IDALLOC_WAIT_SOURCE :
											IDALLOC_WAIT_PERSISTER));

	/*
	 * A latch already set is reported alone, without looking at the sockets
	 * (PostgreSQL 15): reset it, and look at the sockets without waiting,
	 * so that callers setting the latch often cannot keep answers that
	 * came unread until their fetches expire.
	 */
	if (n > 0 && (occurred[0].events & WL_LATCH_SET))
	{
		ResetLatch(MyLatch);
		ModifyWaitEvent(set, latch_pos, WL_LATCH_SET, NULL);
		n = WaitEventSetWait(set, 0, occurred, nevents,
							 idalloc_wait_event(IDALLOC_WAIT_SOURCE));
	}
	FreeWaitEventSet(set);

	for (int k = 0; k < n; k++)
	{
		if (occurred[k].events & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
			(void) guarded(fetch_step, dboid,
						   (int) (intptr_t) occurred[k].user_data);
	}
	pfree(occurred);

	for (int i = 0; i < nslots; i++)
		if (conns[i].state != FETCH_IDLE)
			(void) guarded(fetch_expire, dboid, i);
}

/* ---------- the callers ---------- */

/* Raise the failure recorded in slot's error (copied under the lock). */
static void
raise_recorded(const IdallocSourceError *e)
{
	ereport(ERROR,
			(errcode(e->sqlerrcode),
			 errmsg_internal("%s", e->message),
			 errdetail_failure(e->detail, e->remote)));
}

/*
 * A waiter leaves without its need served: the need must not make the
 * persister fetch a huge block for nobody.
 */
static void
forget_need_count(IdallocRef *ref, int64 count)
{
	IdallocSlot *slot = ref->slot;

	if (LWLockHeldByMe(idalloc_slot_lock(slot)))
		return;
	LWLockAcquire(idalloc_slot_lock(slot), LW_EXCLUSIVE);
	if (pg_atomic_read_u64(&slot->generation) == ref->generation &&
		slot->need_count == count)
		slot->need_count = 0;
	LWLockRelease(idalloc_slot_lock(slot));
}

/*
 * Slow path of a sourced allocator: the current block cannot serve
 * `count` IDs.  Take the spare over if it can, else ask the persister for
 * a block (of count plus a step if count is larger than the spare) and
 * sleep on the slot's condition variable until the slot can serve them
 * (IDALLOC_RETRY: go back to the fast path), the persister reports a
 * failure (raised here), or idalloc.source_timeout passes (08006).  What
 * is held is served first: the persister is asked only once the current
 * block and the spare cannot serve the request.
 */
IdallocTake
idalloc_source_take_slow(IdallocRef *ref, const char *name, int64 count)
{
	IdallocSlot *slot = ref->slot;
	LWLock	   *lock = idalloc_slot_lock(slot);
	uint32		failures = pg_atomic_read_u32(&slot->source_failures);
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   idalloc_source_timeout);
	volatile bool asked = false;
	volatile int result = -1;
	bool		waited = false;
	IdallocSourceError err;

	Assert(count > 0);
	err.sqlerrcode = 0;
	ConditionVariablePrepareToSleep(&slot->published);
	PG_TRY();
	{
		for (;;)
		{
			int64		cur_next;
			int64		cur_end;
			int64		want;

			LWLockAcquire(lock, LW_EXCLUSIVE);
			cur_next = (int64) pg_atomic_read_u64(&slot->next);
			cur_end = (int64) pg_atomic_read_u64(&slot->end);
			if (pg_atomic_read_u64(&slot->generation) != ref->generation)
				result = IDALLOC_STALE;
			else if (!pg_add_s64_overflow(cur_next, count, &want) &&
					 want <= cur_end)
				result = IDALLOC_RETRY;
			else if (slot->spare_end - slot->spare_start >= count)
			{
				/* take the spare over (the rest of the current block is a
				 * gap): next first, then end, see idalloc_take_fast */
				idalloc_raise_next(slot, slot->spare_start);
				pg_memory_barrier();
				pg_atomic_write_u64(&slot->end, (uint64) slot->spare_end);
				slot->spare_start = slot->spare_end = 0;
				/* the next spare is asked for at the low water mark */
				pg_atomic_write_u32(&slot->ahead_pending, 0);
				result = IDALLOC_RETRY;
			}
			else if (idalloc_source_errors[slot - idalloc_slots].sqlerrcode != 0 &&
					 (pg_atomic_read_u32(&slot->source_failures) != failures ||
					  idalloc_source_errors[slot - idalloc_slots].retry_at > deadline))
			{
				/* it failed since we came, or is not asked again in time */
				err = idalloc_source_errors[slot - idalloc_slots];
				result = -2;
			}
			else
			{
				/* a batch the spare cannot hold: a block of its own */
				if (count > slot->spare_end - slot->spare_start &&
					count > slot->need_count)
				{
					slot->need_count = count;
					asked = true;
				}
				pg_atomic_write_u32(&slot->ahead_pending, 1);
			}
			LWLockRelease(lock);
			if (result != -1)
				break;

			if (!waited)
			{
				pg_atomic_fetch_add_u64(&slot->waits, 1);
				waited = true;
			}
			idalloc_worker_wake(MyDatabaseId);
			if (GetCurrentTimestamp() >= deadline)
			{
				result = -3;
				break;
			}
			(void) ConditionVariableTimedSleep(&slot->published,
											   Min(100, Max(ms_until(deadline), 1)),
											   idalloc_wait_event(IDALLOC_WAIT_BLOCK));
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		if (asked)
			forget_need_count(ref, count);
		PG_RE_THROW();
	}
	PG_END_TRY();
	ConditionVariableCancelSleep();
	if (result >= 0)
		return (IdallocTake) result;
	if (asked)
		forget_need_count(ref, count);
	if (result == -2)
		raise_recorded(&err);
	{
		char		display[sizeof(err.display)];
		bool		worker = idalloc_worker_alive(MyDatabaseId);

		LWLockAcquire(lock, LW_SHARED);
		strlcpy(display, idalloc_source_errors[slot - idalloc_slots].display,
				sizeof(display));
		LWLockRelease(lock);
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("timed out waiting for a block of allocator \"%s\" from its authority%s%s%s",
						name, display[0] ? " (" : "", display, display[0] ? ")" : ""),
				 errdetail("No block arrived within idalloc.source_timeout (%d ms).",
						   idalloc_source_timeout),
				 worker ?
				 errhint("Check that the authority is up and reachable; allocation resumes by itself when it is.") :
				 errhint("No idalloc persister runs for this database to fetch blocks (is max_worker_processes reached?).")));
	}
	return IDALLOC_STALE;		/* keep the compiler quiet */
}

/*
 * idalloc_advance of a sourced allocator: forwarded to the authority (its
 * allocator of the same name), by this backend, interruptibly.  Returns
 * the authority's answer (its next ID).  The caller then lets go of what
 * this server holds, so that every later ID comes from a block fetched
 * after the advance.
 */
int64
idalloc_source_advance(const IdallocRegistry *reg, int64 id,
					   const char *name, int64 target)
{
	char	   *conninfo = source_conninfo(reg, id);
	char	   *display;
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   idalloc_source_timeout);
	SourceFailure f = {0, NULL, NULL};
	PGconn	   *volatile conn = NULL;
	int64		result = 0;
	bool		ok = false;

	if (conninfo == NULL)
		elog(ERROR, "allocator \"%s\" has no source", name);
	display = idalloc_source_display(conninfo, name);
	PG_TRY();
	{
		conn = source_connect(conninfo, deadline, &f);
		if (conn != NULL)
		{
			char	   *nsp;

			secure_search_path(conn, deadline, &f);
			nsp = authority_schema(conn, deadline, &f);

			if (nsp != NULL)
			{
				char		tbuf[32];
				const char *params[2];
				PGresult   *res;

				snprintf(tbuf, sizeof(tbuf), INT64_FORMAT, target);
				params[0] = name;
				params[1] = tbuf;
				res = source_exec(conn,
								  psprintf("SELECT %s.idalloc_advance($1::pg_catalog.text, $2::pg_catalog.int8)", nsp),
								  2, params, deadline, &f);
				if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
					PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
				{
					result = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
					ok = true;
				}
				else if (res != NULL && PQresultStatus(res) != PGRES_TUPLES_OK)
					fail_with_result(&f, res);
				else if (res != NULL)
					fail_with(&f, ERRCODE_PROTOCOL_VIOLATION,
							  "the authority's idalloc_advance returned nothing");
				if (res != NULL)
					PQclear(res);
			}
		}
	}
	PG_FINALLY();
	{
		if (conn != NULL)
			finish_conn(conn);
	}
	PG_END_TRY();
	if (!ok)
		ereport(ERROR,
				(errcode(f.sqlerrcode),
				 ERRCODE_TO_CATEGORY(f.sqlerrcode) == ERRCODE_CONNECTION_EXCEPTION ?
				 errmsg("could not forward idalloc_advance of allocator \"%s\" to its authority (%s)",
						name, display) :
				 errmsg("the authority (%s) refused idalloc_advance of allocator \"%s\"",
						display, name),
				 f.detail != NULL ? errdetail_failure(f.detail, f.remote) : 0));
	return result;
}

/*
 * After a forwarded advance: let go of every block this server holds of
 * the allocator (current and spare) and void the cached ranges, so that
 * later IDs come from blocks fetched after the advance.
 */
void
idalloc_source_drop_held(IdallocRef *ref)
{
	IdallocSlot *slot = ref->slot;

	LWLockAcquire(idalloc_slot_lock(slot), LW_EXCLUSIVE);
	if (pg_atomic_read_u64(&slot->generation) == ref->generation)
	{
		int64		end = (int64) pg_atomic_read_u64(&slot->end);

		idalloc_raise_next(slot, end);
		slot->spare_start = slot->spare_end = 0;
		slot->need_count = 0;
		pg_atomic_write_u32(&slot->ahead_pending, 0);
		pg_atomic_fetch_add_u32(&slot->cache_epoch, 1);
	}
	LWLockRelease(idalloc_slot_lock(slot));
}

/* ---------- keeping passwords out of the server log ---------- */

/*
 * Overwrite the value of every password (password=..., sslpassword=...,
 * and the password of a URI, postgresql://user:password@host) in s with
 * asterisks, in place.  Returns true if anything was overwritten.
 */
static bool
redact_secrets(char *s)
{
	bool		redacted = false;

	if (s == NULL)
		return false;
	for (char *p = s; *p; p++)
	{
		char	   *v;

		if (pg_strncasecmp(p, "password", 8) == 0)
		{
			v = p + 8;
			while (isspace((unsigned char) *v))
				v++;
			if (*v != '=')
				continue;
			v++;
			while (isspace((unsigned char) *v))
				v++;
			if (*v == '\'')
			{
				/*
				 * A quoted value: up to the closing quote (\' escaped).
				 * Inside a SQL literal, as a statement shows it, the
				 * quotes are doubled: then up to the closing pair.
				 */
				bool		doubled = v[1] == '\'';

				for (v += doubled ? 2 : 1; *v; v++)
				{
					if (*v == '\'' && (!doubled || v[1] == '\''))
						break;
					if (*v == '\\' && v[1] != '\0')
						*v++ = '*';
					*v = '*';
				}
			}
			else
			{
				/*
				 * Unquoted: libpq ends it only at whitespace.  In a SQL
				 * literal a quote in it is doubled; a single one ends the
				 * literal.
				 */
				for (; *v && !isspace((unsigned char) *v); v++)
				{
					if (*v == '\'' && v[1] != '\'')
						break;
					if (*v == '\'')
						*v++ = '*';
					*v = '*';
				}
			}
			redacted = true;
			p = v - 1;
		}
		else if (strncmp(p, "://", 3) == 0)
		{
			/* postgresql://user:password@host */
			char	   *colon = NULL;

			for (v = p + 3; *v && *v != '@' && *v != '/' && *v != ' ' &&
				 *v != '\''; v++)
				if (*v == ':' && colon == NULL)
					colon = v;
			if (*v == '@' && colon != NULL)
			{
				for (char *q = colon + 1; q < v; q++)
					*q = '*';
				redacted = true;
			}
		}
	}
	return redacted;
}

static emit_log_hook_type prev_emit_log_hook = NULL;

static bool
contains_ci(const char *s, const char *word)
{
	size_t		n = strlen(word);

	for (; *s; s++)
		if (pg_strncasecmp(s, word, n) == 0)
			return true;
	return false;
}

/*
 * emit_log_hook: a message about a statement that sets a source
 * (log_statement, log_min_duration_statement, an error's STATEMENT line,
 * the parameters of a prepared statement) has its passwords overwritten
 * before it reaches the log, and the statement line of an error is left
 * out when the statement holds one.  Other messages are left alone.
 */
static void
idalloc_emit_log(ErrorData *edata)
{
	if (edata->output_to_server &&
		((edata->message && strstr(edata->message, "idalloc_") != NULL) ||
		 (edata->detail && strstr(edata->detail, "idalloc_") != NULL) ||
		 (edata->detail_log && strstr(edata->detail_log, "authority") != NULL) ||
		 (debug_query_string && strstr(debug_query_string, "idalloc_") != NULL)))
	{
		(void) redact_secrets(edata->message);
		(void) redact_secrets(edata->detail);
		(void) redact_secrets(edata->detail_log);
		(void) redact_secrets(edata->context);
		(void) redact_secrets(edata->internalquery);
		if (debug_query_string &&
			(contains_ci(debug_query_string, "password") ||
			 strstr(debug_query_string, "://") != NULL))
			edata->hide_stmt = true;
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
idalloc_source_init(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = idalloc_emit_log;
}
