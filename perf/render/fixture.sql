-- One row as the 7 lines render_bench reads: the 6 ITEM_COLS texts, then option C's document.
SELECT unnest(ARRAY[id::text, name, data::text, version::text,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
  json_build_object('id', id, 'name', name, 'data', data, 'version', version,
    'created_at', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'updated_at', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text])
FROM :"tbl" WHERE id = 4242;
