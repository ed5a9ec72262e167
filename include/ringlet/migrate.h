/*
 * migrate: create or upgrade the schema. Runs before serving (the `migrate`
 * command, or `serve` with RINGLET_MIGRATE=1), so it uses blocking libpq.
 * Safe to run from many processes at once: every step happens in one
 * transaction holding a PostgreSQL advisory lock.
 */
#ifndef RINGLET_MIGRATE_H
#define RINGLET_MIGRATE_H

/* Apply pending migrations. 0, or -1 after logging why. */
int migrate_run(const char *conninfo);

#endif
