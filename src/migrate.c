/*
 * migrate: versioned schema migrations under an advisory lock.
 *
 * Every step is idempotent (IF NOT EXISTS and the like) and every run applies
 * all of them, so a schema damaged by hand (a dropped table) is repaired by
 * the next run; ringlet_schema records the version reached, for operators.
 * Each run takes pg_advisory_xact_lock(MIGRATE_LOCK) inside one transaction,
 * so concurrent runs (ten pods starting at once) serialise instead of racing
 * on the catalog. Migrations are append-only: never edit a released step,
 * add a new one.
 */
#include "ringlet/migrate.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "ringlet/log.h"

#define MIGRATE_LOCK 7232298519386349172LL /* "ringlet" in an int64, fixed forever */

static const char *const steps[] = {
    /* 1: the items table of the contract */
    "CREATE TABLE IF NOT EXISTS items ("
    "  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    "  name       text        NOT NULL,"
    "  data       jsonb       NOT NULL DEFAULT '{}'::jsonb,"
    "  version    integer     NOT NULL DEFAULT 1,"
    "  created_at timestamptz NOT NULL DEFAULT now(),"
    "  updated_at timestamptz NOT NULL DEFAULT now())",
};

static int exec_ok(PGconn *pg, const char *sql, const char *what)
{
    PGresult *res = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        log_error("migration failed", LOG_STR("step", what),
                  LOG_STR("error", PQresultErrorMessage(res)));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

int migrate_run(const char *conninfo)
{
    const char *keys[] = {"dbname", "fallback_application_name", "connect_timeout", NULL};
    const char *vals[] = {conninfo ? conninfo : "", "ringlet-migrate", "10", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        log_error("migration: cannot connect to the database",
                  LOG_STR("error", pg ? PQerrorMessage(pg) : "out of memory"));
        PQfinish(pg);
        return -1;
    }
    int rc = -1;
    if (exec_ok(pg, "SET client_min_messages = warning", "settings") ||
        exec_ok(pg, "BEGIN", "begin"))
        goto out_finish;
    char lock[96];
    snprintf(lock, sizeof(lock), "SELECT pg_advisory_xact_lock(%lld)", MIGRATE_LOCK);
    if (exec_ok(pg, lock, "lock") ||
        exec_ok(pg, "CREATE TABLE IF NOT EXISTS ringlet_schema (version integer NOT NULL)",
                "version table"))
        goto out_rollback;

    PGresult *res = PQexec(pg, "SELECT coalesce(max(version), 0) FROM ringlet_schema");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        log_error("migration failed", LOG_STR("step", "read version"),
                  LOG_STR("error", PQresultErrorMessage(res)));
        PQclear(res);
        goto out_rollback;
    }
    int have = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    int want = (int)(sizeof(steps) / sizeof(steps[0]));
    for (int v = 1; v <= want; v++) {
        char what[32];
        snprintf(what, sizeof(what), "step %d", v);
        if (exec_ok(pg, steps[v - 1], what))
            goto out_rollback;
    }
    if (want > have) {
        char sql[96];
        snprintf(sql, sizeof(sql),
                 "DELETE FROM ringlet_schema; INSERT INTO ringlet_schema "
                 "VALUES (%d)",
                 want);
        if (exec_ok(pg, sql, "record version"))
            goto out_rollback;
    }
    if (exec_ok(pg, "COMMIT", "commit"))
        goto out_finish;
    log_info("schema is up to date", LOG_INT("from_version", have), LOG_INT("version", want));
    rc = 0;
    goto out_finish;

out_rollback:
    PQclear(PQexec(pg, "ROLLBACK"));
out_finish:
    PQfinish(pg);
    return rc;
}
