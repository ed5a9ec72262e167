#!/usr/bin/env python3
"""Write the hand-made seed corpora of the fuzz targets (tests/fuzz/corpus/).

Run from anywhere: python3 tests/fuzz/make_seeds.py. Seeds are named
seed-<what>; files merged in from fuzzing runs (named by their SHA-1) are left
alone. The fuzz_session input layout is described in fuzz_session.c.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---- fuzz_session ----------------------------------------------------------

def FEED(n):  # 1..32 bytes
    return bytes([((n - 1) << 3) | 0])

def FEED64(k):  # k*64 bytes, k 1..32
    return bytes([((k - 1) << 3) | 1])

FEEDALL = bytes([2])

def DB(outcome):  # 0..31
    return bytes([(outcome << 3) | 3])

def SEND(n):  # 1..32 bytes of output
    return bytes([((n - 1) << 3) | 4])

TIMEOUT = bytes([5])
EOF = bytes([6])
DRAIN = bytes([(1 << 3) | 6])
DB_DOWN = bytes([(2 << 3) | 6])
DB_UP = bytes([(3 << 3) | 6])
DB_BUSY = bytes([(4 << 3) | 6])
PUMP = bytes([7])

MANUAL, PUMP_IN_UPDATE = 1, 2
SMALL, TINY_BODY, SMALLISH = 1 << 2, 2 << 2, 3 << 2
NOT_READY, DRAINING, EAGAIN, BUDGET = 16, 32, 64, 128


def session(name, http, ops=b"", mode=0):
    if isinstance(http, str):
        http = http.encode("utf-8", "surrogateescape")
    assert len(ops) < 256
    write("fuzz_session", name, bytes([mode, len(ops)]) + ops + http)


H = "Host: x\r\n"
JSON = "Content-Type: application/json\r\n"


def post(body, path="/v1/items", method="POST", extra=""):
    b = body.encode() if isinstance(body, str) else body
    return (f"{method} {path} HTTP/1.1\r\n{H}{JSON}{extra}Content-Length: {len(b)}\r\n\r\n"
            ).encode() + b


def chunked(body, path="/v1/items", method="POST", extra="", sizes=(5, 7)):
    b = body.encode()
    out = f"{method} {path} HTTP/1.1\r\n{H}{JSON}{extra}Transfer-Encoding: chunked\r\n\r\n".encode()
    i = 0
    k = 0
    while i < len(b):
        n = sizes[k % len(sizes)]
        k += 1
        part = b[i:i + n]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
        i += n
    return out + b"0\r\n\r\n"


ITEM = '{"name":"widget","data":{"color":"red","tags":["a","b"]}}'

session("healthz", f"GET /healthz HTTP/1.1\r\n{H}\r\n")
session("readyz-draining", f"GET /readyz HTTP/1.1\r\n{H}\r\n", mode=DRAINING)
session("readyz-notready", f"GET /readyz HTTP/1.1\r\n{H}\r\n", mode=NOT_READY)
session("metrics", f"GET /metrics HTTP/1.1\r\n{H}\r\n")
session("head-healthz", f"HEAD /healthz HTTP/1.1\r\n{H}\r\n")
session("head-item", f"HEAD /v1/items/7 HTTP/1.1\r\n{H}\r\n", DB(0))
session("head-unknown-path", f"HEAD /nope HTTP/1.1\r\n{H}\r\n")
session("post", post(ITEM), DB(0))
session("post-unavailable", post(ITEM), DB(3))
session("post-eagain", post(ITEM), mode=EAGAIN)
session("post-garbage-row", post(ITEM), DB(6) + DB(18))
session("post-chunked", chunked(ITEM), FEED(20) + FEED(20) + FEED(20) + FEEDALL + DB(10))
session("post-chunk-ext-trailer",
        f"POST /v1/items HTTP/1.1\r\n{H}{JSON}Transfer-Encoding: chunked\r\n\r\n"
        '4;ext=1\r\n{"na\r\n9\r\nme":"ab"}\r\n0\r\nX-Trailer: t\r\n\r\n', DB(0))
session("trailer-connection-close",
        f"POST /v1/items HTTP/1.1\r\n{H}{JSON}Transfer-Encoding: chunked\r\n\r\n"
        '5\r\n{"nam\r\n7\r\ne":"a"}\r\n0\r\nConnection: close\r\n\r\n'
        f"GET /healthz HTTP/1.1\r\n{H}\r\n", DB(0))
session("post-expect-100",
        f"POST /v1/items HTTP/1.1\r\n{H}{JSON}Expect: 100-continue\r\nContent-Length: 12\r\n\r\n"
        '{"name":"a"}', FEED(32) + FEED(32) + FEED(32) + FEED(4) + PUMP + FEEDALL + DB(0))
session("post-expect-100-wrong-type",
        f"POST /v1/items HTTP/1.1\r\n{H}Content-Type: text/plain\r\nExpect: 100-continue\r\n"
        "Content-Length: 12\r\n\r\n")
session("post-expect-100-405",
        f"DELETE /v1/items HTTP/1.1\r\n{H}Expect: 100-continue\r\nContent-Length: 2\r\n\r\n{{}}")
session("post-expect-other",
        f"POST /v1/items HTTP/1.1\r\n{H}{JSON}Expect: 200-ok\r\nContent-Length: 12\r\n\r\n"
        '{"name":"a"}', DB(0))
session("put-if-match", post(ITEM, "/v1/items/7", "PUT", 'If-Match: "3", W/"4", "x"\r\n'),
        DB(0))
session("put-mismatch", post(ITEM, "/v1/items/7", "PUT", 'If-Match: "2"\r\n'), DB(2))
session("put-absent", post(ITEM, "/v1/items/7", "PUT"), DB(1))
session("delete", f'DELETE /v1/items/7 HTTP/1.1\r\n{H}If-Match: *\r\n\r\n', DB(0))
session("delete-mismatch", f'DELETE /v1/items/7 HTTP/1.1\r\n{H}If-Match: "1"\r\n\r\n', DB(2))
session("get-if-none-match", f'GET /v1/items/7 HTTP/1.1\r\n{H}If-None-Match: W/"3"\r\n\r\n',
        DB(0))
session("get-absent", f"GET /v1/items/7 HTTP/1.1\r\n{H}\r\n", DB(1))
session("get-timeout", f"GET /v1/items/7 HTTP/1.1\r\n{H}\r\n", DB(4))
session("get-dberror", f"GET /v1/items/7 HTTP/1.1\r\n{H}\r\n", DB(5))
session("list", f"GET /v1/items?limit=2&after=5 HTTP/1.1\r\n{H}\r\n", DB(10))
session("list-bad-query", f"GET /v1/items?limit=2&limit=3 HTTP/1.1\r\n{H}\r\n")
session("absolute-form", "GET http://example.com/v1/items/42?x HTTP/1.1\r\nHost: example.com\r\n\r\n",
        DB(0))
session("bad-ids", "".join(f"GET /v1/items/{i} HTTP/1.1\r\n{H}\r\n"
                           for i in ["0", "-1", "+1", "1a", "", "9223372036854775808", "1/2"]))
session("http10", "GET /healthz HTTP/1.0\r\n\r\n")
session("http10-keepalive", "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        "GET /readyz HTTP/1.0\r\n\r\n")
session("connection-close", f"GET /healthz HTTP/1.1\r\n{H}Connection: close\r\n\r\n"
        f"GET /healthz HTTP/1.1\r\n{H}\r\n")
session("no-host", "GET /healthz HTTP/1.1\r\n\r\n")
session("two-hosts", f"GET /healthz HTTP/1.1\r\n{H}{H}\r\n")
session("body-too-large", f"POST /v1/items HTTP/1.1\r\n{H}{JSON}Content-Length: 100000\r\n\r\n",
        mode=SMALL)
session("chunked-too-large", chunked('{"name":"' + "a" * 300 + '"}', sizes=(64,)), mode=SMALL)
session("header-too-large", f"GET /healthz HTTP/1.1\r\n{H}X-Big: " + "a" * 1100 + "\r\n\r\n",
        mode=SMALL)
session("wrong-media-type", post(ITEM).replace(b"application/json", b"text/plain"))
session("media-type-params", post(ITEM).replace(b"application/json",
                                                b"Application/JSON; charset=utf-8"), DB(0))
session("upgrade", f"GET /healthz HTTP/1.1\r\n{H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        f"GET /healthz HTTP/1.1\r\n{H}\r\n")
session("connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
session("te-and-cl", f"POST /v1/items HTTP/1.1\r\n{H}{JSON}Content-Length: 5\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
session("obs-fold", f"GET /healthz HTTP/1.1\r\n{H}X-A: a\r\n  b\r\n\r\n")
session("leading-crlf", f"\r\n\r\nGET /healthz HTTP/1.1\r\n{H}\r\n")
session("options-patch", f"OPTIONS * HTTP/1.1\r\n{H}\r\nPATCH /v1/items/1 HTTP/1.1\r\n{H}"
        "Content-Length: 0\r\n\r\n")
session("garbage", b"\x00\xff\r\nGET\x01 / HTTP/9.9\r\n\r\n")
for i, body in enumerate(['{"name":"a",}', '{"name":"\\ud800"}', '{"name":""}',
                          '{"name":"a","data":null}', '{"name":"a","id":1}',
                          '{"n\\u0061me":"x","name":"y"}', '{"name":"a","data":{"k":"\\u0000"}}',
                          '[1]', '', '{"name":"' + "\u00e9" * 201 + '"}']):
    session(f"near-valid-json-{i}", post(body), DB(0))
# The tricky stream: pipelined, chunked and 100-continue in one, byte by byte.
PIPE = (f"GET /healthz HTTP/1.1\r\n{H}\r\n".encode() + chunked(ITEM) +
        f"PUT /v1/items/7 HTTP/1.1\r\n{H}{JSON}Expect: 100-continue\r\nContent-Length: 12\r\n\r\n"
        '{"name":"b"}'.encode() + f"DELETE /v1/items/7 HTTP/1.1\r\n{H}\r\n".encode() +
        f"GET /v1/items?limit=1 HTTP/1.1\r\n{H}Connection: close\r\n\r\n".encode())
session("pipelined-mixed", PIPE)
session("pipelined-mixed-bytewise", PIPE, FEED(1) * 200 + DB(0) + FEED(1) * 50)
session("pipelined-mixed-manual", PIPE, FEED64(4) + SEND(10) + SEND(32) + DB(10) + PUMP + FEEDALL +
        SEND(5) + DB(0) + PUMP + DB(1), mode=MANUAL)
session("pipelined-pump-in-update", PIPE, FEED64(8) + DB(0) + DB(12) + DB(2), mode=PUMP_IN_UPDATE)
session("pipelined-eof", PIPE, FEED64(8) + EOF + FEEDALL)
session("pipelined-timeout", PIPE, FEED64(8) + TIMEOUT + PUMP + TIMEOUT)
session("head-timeout", f"GET /healthz HTTP/1.1\r\n{H}", FEEDALL + TIMEOUT)
session("body-timeout", post(ITEM)[:-5], FEEDALL + TIMEOUT)
session("body-budget", post(ITEM) + post(ITEM), DB(0) + DB(0), mode=BUDGET)
session("body-budget-chunked", chunked('{"name":"' + "b" * 400 + '"}', sizes=(100,)), mode=BUDGET)
session("body-budget-eof", chunked(ITEM), FEED64(2) + EOF, mode=BUDGET)
session("drain", PIPE, FEED64(2) + DRAIN + DB(0))
session("db-down-midway", PIPE, FEED64(3) + DB_DOWN + DB(0) + DB_UP + DB_BUSY + FEEDALL)

# ---- fuzz_body ---------------------------------------------------------------

bodies = {
    "item": ITEM,
    "name-only": '{"name":"a"}',
    "ws": ' \t\r\n{ "name" : "x" , "data" : { "a" : [ 1 , 2 ] } } \n',
    "unicode": '{"name":"\u00fcn\u00efc\u00f8d\u00e9 \U0001F600","data":{"\u00e9":"\\ud83d\\ude00"}}',
    "escapes": '{"name":"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041","data":{"s":"\\\\u0000"}}',
    "nul-in-data": '{"name":"a","data":{"k":"\\u0000"}}',
    "nul-in-data-key": '{"name":"a","data":{"\\u0000":1}}',
    "nul-in-name": '{"name":"a\\u0000b"}',
    "escaped-key": '{"n\\u0061me":"x"}',
    "dup-name": '{"name":"a","name":"b"}',
    "dup-data": '{"name":"a","data":{},"data":{}}',
    "unknown": '{"name":"a","id":1}',
    "data-null": '{"name":"a","data":null}',
    "data-array": '{"name":"a","data":[1]}',
    "name-number": '{"name":1}',
    "name-empty": '{"name":""}',
    "name-200": '{"name":"' + "\u00e9" * 200 + '"}',
    "name-201": '{"name":"' + "a" * 201 + '"}',
    "trailing-comma": '{"name":"a",}',
    "trailing-bytes": '{"name":"a"} x',
    "lone-surrogate": '{"name":"\\ud800"}',
    "low-surrogate": '{"name":"\\udc00"}',
    "bad-utf8": b'{"name":"\xc0\xaf"}',
    "raw-tab": '{"name":"a\tb"}',
    "nan": '{"name":"a","data":{"x":NaN}}',
    "bignum": '{"name":"a","data":{"x":123456789012345678901234567890,"y":-0.0e+10}}',
    "leading-zero": '{"name":"a","data":{"x":01}}',
    "deep": '{"name":"a","data":' + '{"a":' * 63 + '1' + '}' * 63 + '}',
    "too-deep": '{"name":"a","data":' + '[' * 70 + ']' * 70 + '}',
    "empty": "",
    "array": "[1,2]",
    "number": "0",
}
for k, v in bodies.items():
    write("fuzz_body", k, v)

# ---- fuzz_target ---------------------------------------------------------------
# byte 0 selects the variable for cfg_load (index = byte % 17; 0x80 second
# variable after "\n", 0x40 as a flag); bytes 1.. are the value. The whole
# input is a request-target too.
VARS = ["RINGLET_LISTEN", "DATABASE_URL", "RINGLET_DB_CONNECTIONS", "RINGLET_MAX_CONNECTIONS",
        "RINGLET_MAX_BODY_BYTES", "RINGLET_MAX_HEADER_BYTES", "RINGLET_REQUEST_TIMEOUT_MS",
        "RINGLET_IDLE_TIMEOUT_MS", "RINGLET_HEADER_TIMEOUT_MS", "RINGLET_SHUTDOWN_GRACE_MS",
        "RINGLET_DRAIN_DELAY_MS", "RINGLET_MAX_QUEUED", "RINGLET_LOG_FORMAT", "RINGLET_LOG_LEVEL",
        "RINGLET_REUSE_PORT", "RINGLET_MIGRATE", "RINGLET_IO_URING"]


def target(name, var, value, flags=0):
    write("fuzz_target", name, bytes([VARS.index(var) | flags]) + value.encode())


for t in ["/v1/items", "/v1/items?limit=10&after=20", "/v1/items/42", "/v1/items/0",
          "/v1/items/9223372036854775807?x", "http://h/v1/items/1", "https://h:8/v1/items?limit=",
          "/healthz", "/readyz?", "/metrics", "*", "/v1/items?after=1&after=2", "http://h",
          "/v1/items/1/2", "/v1/items?limit=+5", "/v1/items?&&limit=1000&"]:
    write("fuzz_target", "target" + t.replace("/", "_").replace("?", "Q").replace("*", "star")
          .replace(":", "C").replace("&", "A").replace("+", "P").replace("=", "E"), "/" + t)
target("listen-v4", "RINGLET_LISTEN", "127.0.0.1:8080")
target("listen-v6", "RINGLET_LISTEN", "[::1]:80")
target("listen-any", "RINGLET_LISTEN", ":65535")
target("listen-star", "RINGLET_LISTEN", "*:1")
target("listen-port0", "RINGLET_LISTEN", "0.0.0.0:0")
target("listen-flag", "RINGLET_LISTEN", "[fe80::1%eth0]:8080", 0x40 | 0x20)
target("url-uri", "DATABASE_URL", "postgresql://u:p@ss@h:5432/db?sslmode=verify-full&password=x")
target("url-kw", "DATABASE_URL", "host=h password='se cr\\'et' dbname=d")
target("url-flag", "DATABASE_URL", "postgres://a@b/c", 0x40)
target("db-conns", "RINGLET_DB_CONNECTIONS", "1000")
target("db-conns-bad", "RINGLET_DB_CONNECTIONS", "1001")
target("max-body", "RINGLET_MAX_BODY_BYTES", "1073741824")
target("max-header", "RINGLET_MAX_HEADER_BYTES", "1023")
target("timeout-huge", "RINGLET_REQUEST_TIMEOUT_MS", "99999999999999999999999")
target("grace-zero", "RINGLET_SHUTDOWN_GRACE_MS", "0")
target("queued", "RINGLET_MAX_QUEUED", "0")
target("log-format", "RINGLET_LOG_FORMAT", "TEXT")
target("log-level-flag", "RINGLET_LOG_LEVEL", "warn", 0x40)
target("bool", "RINGLET_REUSE_PORT", "yes")
target("bool-flag", "RINGLET_MIGRATE", "no", 0x40 | 0x20)
target("io-uring", "RINGLET_IO_URING", "compat")
target("two-vars", "RINGLET_DB_CONNECTIONS", "7\n-3", 0x80 | (1 << 2))

# ---- fuzz_render ---------------------------------------------------------------


def render(name, cols, mask=0):
    cols = [c.encode() if isinstance(c, str) else c for c in cols]
    data = bytes([mask] + [len(c) for c in cols[:5]]) + b"".join(cols)
    write("fuzz_render", name, data)


TS = "2026-11-26T15:00:00.123456Z"
render("good", ["7", "widget", '{"a": 1}', "3", TS, TS])
render("unicode", ["9223372036854775807", "\u00fc\u00f1\U0001F600 \"q\" \\ \x01",
                   '{"k":[1,2.5e3,{"x":null}],"s":"\\u00e9"}', "2147483647", TS, TS])
render("name-nul", ["1", b"a\x00b", "{}", "0", TS, TS])
render("id-zero", ["0", "x", "{}", "1", TS, TS])
render("id-leading-zero", ["07", "x", "{}", "1", TS, TS])
render("id-overflow", ["9223372036854775808", "x", "{}", "1", TS, TS])
render("version-overflow", ["1", "x", "{}", "2147483648", TS, TS])
render("bad-utf8", ["1", b"\xff\xfe", "{}", "1", TS, TS])
render("surrogate-utf8", ["1", b"\xed\xa0\x80", "{}", "1", TS, TS])
render("data-array", ["1", "x", "[]", "1", TS, TS])
render("data-broken", ["1", "x", '{"a":', "1", TS, TS])
render("data-deep", ["1", "x", '{"a":' + "[" * 63 + "]" * 63 + "}", "1", TS, TS])
render("ts-space", ["1", "x", "{}", "1", "2026-11-26 15:00:00+00", TS])
render("ts-short", ["1", "x", "{}", "1", TS, "2026-11-26T15:00:00Z"])
render("nulls", ["1", "x", "{}", "1", TS, TS], mask=0x3F)
render("small-limit", ["1", "x" * 200, "{}", "1", TS, TS], mask=0x40)
render("problem-detail", ["", "", "", "", "", 'item 42 does not exist \u00e9 \xff "q"'])
render("problem-title", ["", "", "", "", "", "\x01\x02\x7f \\"], mask=0x01)

if __name__ == "__main__":
    for t in sorted(os.listdir(CORPUS)):
        print(t, len(os.listdir(os.path.join(CORPUS, t))), "files")
