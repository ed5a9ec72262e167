-- Option C, PostgreSQL renders the whole item; version kept as a column for the ETag.
-- (The to_char format's colons are written \x3a, as explained in get_cols.sql.)
\set id random(1, 10000)
SELECT json_build_object('id', id, 'name', name, 'data', data, 'version', version, 'created_at', to_char(created_at AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS.US"Z"'), 'updated_at', to_char(updated_at AT TIME ZONE 'UTC', E'YYYY-MM-DD"T"HH24\x3aMI\x3aSS.US"Z"'))::text, version FROM @TABLE@ WHERE id = :id;
