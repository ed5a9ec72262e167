"""The reference peer: the CRUD part of ringlet's HTTP contract (/work/shared/api.md,
docs/openapi.yaml) written the way the aiohttp + asyncpg + uvloop article did it.

It exists only to be measured against ringlet by perf/bench, so it is written to
be competent and honest, not crippled:

* one asyncpg pool of RINGLET_DB_CONNECTIONS connections (default 4, the same as
  ringlet's pool), opened at start-up;
* every query goes through asyncpg's per-connection statement cache, so after
  the first use of a statement on a connection it runs as a named prepared
  statement (Bind/Execute only, binary protocol);
* jsonb travels as text both ways: the `data` object is validated and
  serialised once with the standard json module on the way in, and PostgreSQL's
  own text form is spliced into the response on the way out (no decode and
  re-encode of data that the handler does not look at);
* no per-request access log (aiohttp's is disabled; Gunicorn's is off by
  default), no middleware: routing errors are answered by catch-all routes.

Entry points, as in the article:
  direct:   /usr/bin/python3 app.py                  (aiohttp.web.run_app)
  Gunicorn: gunicorn --config=guniconfig app_wsgi:app (one GunicornUVLoopWebWorker)

Environment (same names as ringlet): RINGLET_LISTEN (host:port, default
0.0.0.0:8080), DATABASE_URL (libpq URI; empty means asyncpg's PG* defaults),
RINGLET_DB_CONNECTIONS (default 4), RINGLET_REQUEST_TIMEOUT_MS (default 5000),
RINGLET_MAX_BODY_BYTES (default 1048576).
"""

import asyncio
import json
import os
import sys

import asyncpg
from aiohttp import web

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       text        NOT NULL,
  data       jsonb       NOT NULL DEFAULT '{}'::jsonb,
  version    integer     NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
)
"""

COLS = "id, name, data, version, created_at, updated_at"
SQL_GET = f"SELECT {COLS} FROM items WHERE id = $1"
SQL_LIST = f"SELECT {COLS} FROM items WHERE id > $1 ORDER BY id LIMIT $2"
SQL_INSERT = f"INSERT INTO items (name, data) VALUES ($1, $2::jsonb) RETURNING {COLS}"
SQL_UPDATE = (f"UPDATE items SET name = $2, data = $3::jsonb, version = version + 1, "
              f"updated_at = now() WHERE id = $1 RETURNING {COLS}")
SQL_UPDATE_IF = (f"UPDATE items SET name = $2, data = $3::jsonb, version = version + 1, "
                 f"updated_at = now() WHERE id = $1 AND version = ANY($4::int[]) "
                 f"RETURNING {COLS}")
SQL_DELETE = "DELETE FROM items WHERE id = $1 RETURNING version"
SQL_DELETE_IF = "DELETE FROM items WHERE id = $1 AND version = ANY($2::int[]) RETURNING version"
SQL_EXISTS = "SELECT 1 FROM items WHERE id = $1"

INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
TS_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"
JSON_CT = "application/json"
PROBLEM_CT = "application/problem+json"
ALLOWED_FIELDS = frozenset(("name", "data"))
REASONS = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           412: "Precondition Failed", 413: "Content Too Large",
           415: "Unsupported Media Type", 500: "Internal Server Error",
           503: "Service Unavailable", 504: "Gateway Timeout"}

_dumps = json.dumps


def env_int(name, default, lo, hi):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        print(f"peer: bad value for {name}: {raw!r}", file=sys.stderr)
        sys.exit(2)
    return int(raw)


def listen_addr():
    raw = os.environ.get("RINGLET_LISTEN", "0.0.0.0:8080")
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit():
        print(f"peer: bad value for RINGLET_LISTEN: {raw!r}", file=sys.stderr)
        sys.exit(2)
    return host.strip("[]"), int(port)


DB_CONNECTIONS = env_int("RINGLET_DB_CONNECTIONS", 4, 1, 1000)
TIMEOUT_S = env_int("RINGLET_REQUEST_TIMEOUT_MS", 5000, 1, 3600_000) / 1000.0
MAX_BODY = env_int("RINGLET_MAX_BODY_BYTES", 1048576, 1, 1 << 30)


# ---------------------------------------------------------------- responses

def problem(status, detail, headers=None):
    body = _dumps({"type": "about:blank", "title": REASONS.get(status, "Error"),
                   "status": status, "detail": detail})
    resp = web.Response(status=status, text=body, content_type=PROBLEM_CT, headers=headers)
    return resp


def item_json(row):
    # data is jsonb text exactly as PostgreSQL printed it: valid JSON, spliced as is.
    return ('{"id":%d,"name":%s,"data":%s,"version":%d,"created_at":"%s","updated_at":"%s"}'
            % (row[0], _dumps(row[1], ensure_ascii=False), row[2], row[3],
               row[4].strftime(TS_FMT), row[5].strftime(TS_FMT)))


def item_response(row, status=200, location=False):
    headers = {"ETag": '"%d"' % row[3]}
    if location:
        headers["Location"] = "/v1/items/%d" % row[0]
    return web.Response(status=status, text=item_json(row), content_type=JSON_CT,
                        headers=headers)


# ---------------------------------------------------------------- parsing

def parse_id(raw):
    """The {id} path segment: decimal int64 > 0, else None (answered with 400)."""
    if not raw or not raw.isascii() or not raw.isdigit():
        return None
    v = int(raw)
    return v if 0 < v <= INT64_MAX else None


def etag_list(value):
    """Entity tags of an If-Match / If-None-Match value: ([(weak, opaque)], star)."""
    value = value.strip()
    if value == "*":
        return [], True
    tags = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        weak = part.startswith("W/")
        if weak:
            part = part[2:]
        if len(part) >= 2 and part[0] == '"' and part[-1] == '"':
            tags.append((weak, part[1:-1]))
    return tags, False


def strong_versions(value):
    """If-Match: versions it names with strong comparison (a weak tag never matches)."""
    tags, star = etag_list(value)
    if star:
        return None  # matches any existing item
    out = []
    for weak, opaque in tags:
        if not weak and opaque.isascii() and opaque.isdigit() and int(opaque) <= INT32_MAX:
            out.append(int(opaque))
    return out


def none_match(value, version):
    """If-None-Match: weak comparison against the current version."""
    tags, star = etag_list(value)
    if star:
        return True
    cur = str(version)
    return any(opaque == cur for _, opaque in tags)


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def has_nul(obj):
    if isinstance(obj, str):
        return "\x00" in obj
    if isinstance(obj, dict):
        return any("\x00" in k or has_nul(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(has_nul(v) for v in obj)
    return False


async def read_item_body(request):
    """Validated (name, data_text) of a POST/PUT body, or a problem Response."""
    if not request.body_exists:
        return problem(400, "a JSON body is required")
    ctype = request.headers.get("Content-Type", "")
    if ctype.split(";", 1)[0].strip().lower() != JSON_CT:
        return problem(415, "the body must be application/json")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return problem(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        doc = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as e:
        return problem(400, f"malformed JSON: {e}")
    if not isinstance(doc, dict):
        return problem(400, "the body must be a JSON object")
    unknown = doc.keys() - ALLOWED_FIELDS
    if unknown:
        return problem(400, "unknown or read-only field: " + ", ".join(sorted(unknown)))
    name = doc.get("name")
    if not isinstance(name, str):
        return problem(400, "name is required and must be a string")
    if not 1 <= len(name) <= 200 or "\x00" in name:
        return problem(400, "name must be 1 to 200 characters without NUL")
    data = doc.get("data", {})
    if not isinstance(data, dict):
        return problem(400, "data must be a JSON object")
    if has_nul(data):
        return problem(400, "data must not contain \\u0000")
    return name, _dumps(data, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- handlers

async def db_call(fn, *args):
    """Run one pool query with the request deadline; map failures to 503/504."""
    try:
        return await fn(*args, timeout=TIMEOUT_S)
    except asyncio.TimeoutError:
        return problem(504, "the database did not answer in time")
    except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError):
        return problem(503, "no usable database connection", {"Retry-After": "1"})
    except asyncpg.PostgresError:
        return problem(500, "unexpected database error")


async def get_item(request):
    item_id = parse_id(request.match_info["id"])
    if item_id is None:
        return problem(400, "item id must be a decimal integer > 0")
    row = await db_call(request.app["pool"].fetchrow, SQL_GET, item_id)
    if isinstance(row, web.Response):
        return row
    if row is None:
        return problem(404, f"item {item_id} does not exist")
    inm = request.headers.get("If-None-Match")
    if inm is not None and none_match(inm, row[3]):
        return web.Response(status=304, headers={"ETag": '"%d"' % row[3]})
    return item_response(row)


async def put_item(request):
    item_id = parse_id(request.match_info["id"])
    if item_id is None:
        return problem(400, "item id must be a decimal integer > 0")
    body = await read_item_body(request)
    if isinstance(body, web.Response):
        return body
    name, data = body
    pool = request.app["pool"]
    if_match = request.headers.get("If-Match")
    versions = None if if_match is None else strong_versions(if_match)
    if versions is None:
        row = await db_call(pool.fetchrow, SQL_UPDATE, item_id, name, data)
    elif not versions:
        row = None
    else:
        row = await db_call(pool.fetchrow, SQL_UPDATE_IF, item_id, name, data, versions)
    if isinstance(row, web.Response):
        return row
    if row is not None:
        return item_response(row)
    if if_match is None:
        return problem(404, f"item {item_id} does not exist")
    return await absent_or_mismatch(pool, item_id)


async def delete_item(request):
    item_id = parse_id(request.match_info["id"])
    if item_id is None:
        return problem(400, "item id must be a decimal integer > 0")
    pool = request.app["pool"]
    if_match = request.headers.get("If-Match")
    versions = None if if_match is None else strong_versions(if_match)
    if versions is None:
        row = await db_call(pool.fetchrow, SQL_DELETE, item_id)
    elif not versions:
        row = None
    else:
        row = await db_call(pool.fetchrow, SQL_DELETE_IF, item_id, versions)
    if isinstance(row, web.Response):
        return row
    if row is not None:
        return web.Response(status=204)
    if if_match is None:
        return problem(404, f"item {item_id} does not exist")
    return await absent_or_mismatch(pool, item_id)


async def absent_or_mismatch(pool, item_id):
    found = await db_call(pool.fetchval, SQL_EXISTS, item_id)
    if isinstance(found, web.Response):
        return found
    if found is None:
        return problem(404, f"item {item_id} does not exist")
    return problem(412, "If-Match does not match the current version")


def query_int(request, key, default, lo, hi):
    values = request.query.getall(key, [])
    if not values:
        return default
    raw = values[0]
    if len(values) > 1 or not raw.isascii() or not raw.isdigit() or not lo <= int(raw) <= hi:
        raise ValueError(f"{key} must be one decimal integer in {lo}..{hi}")
    return int(raw)


async def list_items(request):
    try:
        limit = query_int(request, "limit", 50, 1, 1000)
        after = query_int(request, "after", 0, 0, INT64_MAX)
    except ValueError as e:
        return problem(400, str(e))
    rows = await db_call(request.app["pool"].fetch, SQL_LIST, after, limit)
    if isinstance(rows, web.Response):
        return rows
    next_after = rows[-1][0] if len(rows) == limit else None
    body = '{"items":[%s],"next_after":%s}' % (
        ",".join(item_json(r) for r in rows), "null" if next_after is None else next_after)
    return web.Response(text=body, content_type=JSON_CT)


async def create_item(request):
    body = await read_item_body(request)
    if isinstance(body, web.Response):
        return body
    row = await db_call(request.app["pool"].fetchrow, SQL_INSERT, body[0], body[1])
    if isinstance(row, web.Response):
        return row
    return item_response(row, status=201, location=True)


async def healthz(request):
    return web.Response(text='{"status":"ok"}', content_type=JSON_CT)


async def readyz(request):
    pool = request.app.get("pool")
    if pool is None or pool._closed:
        return problem(503, "no usable database connection", {"Retry-After": "1"})
    return web.Response(text='{"status":"ready"}', content_type=JSON_CT)


def dispatcher(table):
    """One handler per path: method lookup, 405 with Allow (HEAD is served as GET)."""
    table = dict(table)
    if "GET" in table:
        table["HEAD"] = table["GET"]
    allow = ", ".join(sorted(table))

    async def dispatch(request):
        handler = table.get(request.method)
        if handler is None:
            return problem(405, f"{request.method} is not allowed here", {"Allow": allow})
        return await handler(request)
    return dispatch


async def not_found(request):
    return problem(404, f"no resource at {request.path}")


# ---------------------------------------------------------------- app

async def setup_pool(app):
    dsn = os.environ.get("DATABASE_URL") or None
    pool = await asyncpg.create_pool(dsn, min_size=DB_CONNECTIONS, max_size=DB_CONNECTIONS)
    async with pool.acquire() as conn:
        await conn.execute(SCHEMA)
    app["pool"] = pool
    yield
    await pool.close()


def create_app():
    app = web.Application(client_max_size=MAX_BODY)
    app.cleanup_ctx.append(setup_pool)
    r = app.router
    r.add_route("*", "/v1/items", dispatcher({"GET": list_items, "POST": create_item}))
    r.add_route("*", "/v1/items/{id}",
                dispatcher({"GET": get_item, "PUT": put_item, "DELETE": delete_item}))
    r.add_route("*", "/healthz", dispatcher({"GET": healthz}))
    r.add_route("*", "/readyz", dispatcher({"GET": readyz}))
    r.add_route("*", "/{tail:.*}", not_found)
    return app


if __name__ == "__main__":
    import uvloop
    uvloop.install()
    host, port = listen_addr()
    web.run_app(create_app(), host=host, port=port, access_log=None, print=None)
