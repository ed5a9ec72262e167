-- The items table of /work/shared/api.md, plus items_large (same shape, ~4 KB data),
-- each seeded with 10,000 rows. "Widget NNN" names are 10 characters.
DROP TABLE IF EXISTS items, items_large;
CREATE TABLE items (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       text        NOT NULL,
  data       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  version    integer     NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE items_large (LIKE items INCLUDING ALL);

INSERT INTO items (name, data, version, created_at, updated_at)
SELECT 'Widget ' || lpad((g % 1000)::text, 3, '0'),
       '{"color":"red","tags":["a","b"]}'::jsonb,
       1 + g % 7,
       timestamptz '2026-11-27 00:00:00+00' + g * interval '1.234567 s',
       timestamptz '2026-11-27 06:00:00+00' + g * interval '2.345678 s'
FROM generate_series(1, 10000) g;

INSERT INTO items_large (name, data, version, created_at, updated_at)
SELECT 'Widget ' || lpad((g % 1000)::text, 3, '0'),
       jsonb_build_object('color', 'red', 'tags', jsonb_build_array('a', 'b'), 'lines',
         (SELECT jsonb_agg(jsonb_build_object('sku', 'SKU-' || lpad(i::text, 5, '0'), 'qty', i,
                                              'price', i * 3 + 0.25,
                                              'note', 'lorem ipsum dolor sit amet, café'))
          FROM generate_series(1, 40) i)),
       1 + g % 7,
       timestamptz '2026-11-27 00:00:00+00' + g * interval '1.234567 s',
       timestamptz '2026-11-27 06:00:00+00' + g * interval '2.345678 s'
FROM generate_series(1, 10000) g;
VACUUM ANALYZE items, items_large;
