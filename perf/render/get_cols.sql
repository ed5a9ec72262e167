-- Options A and B, the six text columns of ITEM_COLS (src/db_pool.c, DB_STMT_ITEM_GET).
-- pgbench takes every colon followed by a name as a variable, even inside a
-- string, so the format's colons are written as the lexer escape \x3a: the
-- server sees exactly the same literal as ringlet's statement.
\set id random(1, 10000)
SELECT id, name, data::text, version, to_char(created_at AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS.US"Z"'), to_char(updated_at AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS.US"Z"') FROM @TABLE@ WHERE id = :id;
