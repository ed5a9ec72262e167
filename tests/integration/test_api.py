#!/usr/bin/python3
"""The HTTP contract of ringlet outside the lifecycle: items CRUD, conditional
requests, pagination, validation, errors, health and metrics."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, assert_item, assert_problem, check_common  # noqa: E402

INT64_MAX = 9223372036854775807


class ItemsCrud(harness.RingletTestCase):

    def test_post_creates_item(self):
        r = self.request("POST", "/v1/items", {"name": "widget", "data": {"color": "red",
                                                                          "tags": ["a", "b"]}})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.content_type, "application/json")
        item = r.json()
        assert_item(self, item, name="widget", data={"color": "red", "tags": ["a", "b"]},
                    version=1)
        self.assertEqual(r.get_all("Location"), ["/v1/items/%d" % item["id"]])
        self.assertEqual(r.get_all("ETag"), ['"1"'])

    def test_post_data_defaults_to_empty_object(self):
        item = self.create("nodata")
        assert_item(self, item, name="nodata", data={}, version=1)

    def test_post_ids_increase(self):
        a = self.create("a")
        b = self.create("b")
        self.assertGreater(b["id"], a["id"])

    def test_get_returns_created_item(self):
        item = self.create("g", {"k": [1, 2.5, None, True, "s", {"n": {}}]})
        r = self.request("GET", "/v1/items/%d" % item["id"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json")
        self.assertEqual(r.get_all("ETag"), ['"1"'])
        self.assertEqual(r.json(), item)

    def test_head_same_headers_no_body(self):
        item = self.create("h")
        path = "/v1/items/%d" % item["id"]
        with Conn(self.port) as c:
            c.request("GET", path)
            g = c.read_response("GET")
            c.request("HEAD", path)
            h = c.read_response("HEAD")
            c.assert_quiet()
            # the connection is still usable and in sync
            c.request("GET", "/healthz")
            self.assertEqual(c.read_response().status, 200)
        check_common(self, g)
        check_common(self, h)
        self.assertEqual(h.status, 200)
        self.assertIsNone(h.body)
        strip = lambda r: sorted((k.lower(), v) for k, v in r.headers if k.lower() != "date")
        self.assertEqual(strip(h), strip(g))

    def test_head_missing_item_404(self):
        r = self.request("HEAD", "/v1/items/%d" % INT64_MAX)
        self.assertEqual(r.status, 404)
        assert_problem(self, r, 404)

    def test_get_absent_404(self):
        item = self.create("gone")
        self.assertEqual(self.request("DELETE", "/v1/items/%d" % item["id"]).status, 204)
        p = self.problem(404, "GET", "/v1/items/%d" % item["id"]).json()
        self.assertEqual(p["status"], 404)

    def test_put_replaces(self):
        item = self.create("old", {"a": 1})
        time.sleep(0.002)
        r = self.request("PUT", "/v1/items/%d" % item["id"], {"name": "new", "data": {"b": 2}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json")
        up = r.json()
        assert_item(self, up, name="new", data={"b": 2}, version=2, id=item["id"])
        self.assertEqual(up["created_at"], item["created_at"])
        self.assertGreater(up["updated_at"], item["updated_at"])
        self.assertEqual(r.get_all("ETag"), ['"2"'])
        self.assertEqual(self.get_item(item["id"]), up)
        # again: version 3
        r = self.request("PUT", "/v1/items/%d" % item["id"], {"name": "newer", "data": {}})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["version"], 3)
        self.assertEqual(r.get_all("ETag"), ['"3"'])

    def test_put_without_data_resets_data(self):
        item = self.create("x", {"a": 1})
        r = self.request("PUT", "/v1/items/%d" % item["id"], {"name": "y"})
        self.assertEqual(r.status, 200, r)
        assert_item(self, r.json(), name="y", data={}, version=2)

    def test_put_absent_404(self):
        item = self.create("gone")
        self.request("DELETE", "/v1/items/%d" % item["id"])
        self.problem(404, "PUT", "/v1/items/%d" % item["id"], {"name": "z"})
        self.problem(404, "PUT", "/v1/items/%d" % INT64_MAX, {"name": "z"})

    def test_put_absent_with_if_match(self):
        # RFC 9110 says 412, the contract says 404 if absent: either is fine.
        r = self.request("PUT", "/v1/items/%d" % INT64_MAX, {"name": "z"},
                         headers=[("If-Match", '"1"')])
        self.assertIn(r.status, (404, 412), r)
        assert_problem(self, r, r.status)

    def test_delete(self):
        item = self.create("d")
        path = "/v1/items/%d" % item["id"]
        with Conn(self.port) as c:
            c.request("DELETE", path)
            r = c.read_response("DELETE")
            c.assert_quiet()
            c.request("GET", "/healthz")
            self.assertEqual(c.read_response().status, 200)
        check_common(self, r)
        self.assertEqual(r.status, 204, r)
        self.assertFalse(r.has("Content-Length"))
        self.problem(404, "GET", path)
        self.problem(404, "DELETE", path)
        self.problem(404, "PUT", path, {"name": "x"})

    def test_unicode_round_trip(self):
        name = "caf\u00e9 \u2603 \U0001F600"
        data = {"\u00fc": "\u65e5\u672c", "esc": "q\"b\\s/\n\t\u0001"}
        item = self.create(name, data)
        self.assertEqual(item["name"], name)
        self.assertEqual(item["data"], data)
        self.assertEqual(self.get_item(item["id"]), item)


class Conditional(harness.RingletTestCase):

    def setUp(self):
        super().setUp()
        self.item = self.create("cond", {"x": 1})
        self.path = "/v1/items/%d" % self.item["id"]
        g = self.request("GET", self.path)
        self.get_length = int(g.get("Content-Length"))

    def assert_304(self, inm, method="GET"):
        with Conn(self.port) as c:
            c.request(method, self.path, headers=[("If-None-Match", inm)])
            r = c.read_response(method)
            c.assert_quiet()
        check_common(self, r)
        self.assertEqual(r.status, 304, "If-None-Match %s: %r" % (inm, r))
        self.assertIsNone(r.body)
        self.assertEqual(r.get_all("ETag"), ['"1"'])
        cl = r.get_all("Content-Length")
        if cl:  # RFC 9110 8.6: only the length a 200 would have had
            self.assertEqual(int(cl[0]), self.get_length)

    def test_if_none_match_exact(self):
        self.assert_304('"1"')

    def test_if_none_match_weak(self):
        self.assert_304('W/"1"')

    def test_if_none_match_list(self):
        self.assert_304('"a", "1"')
        self.assert_304('"a","1","b"')

    def test_if_none_match_star(self):
        self.assert_304("*")

    def test_if_none_match_head(self):
        self.assert_304('"1"', method="HEAD")

    def test_if_none_match_other(self):
        for v in ('"2"', 'W/"2"', '"a", "b"', '"11"', '"01"'):
            r = self.request("GET", self.path, headers=[("If-None-Match", v)])
            self.assertEqual(r.status, 200, "If-None-Match %s: %r" % (v, r))
            self.assertEqual(r.json(), self.item)
            self.assertEqual(r.get_all("ETag"), ['"1"'])

    def test_if_none_match_absent_item(self):
        self.problem(404, "GET", "/v1/items/%d" % INT64_MAX, headers=[("If-None-Match", "*")])

    def test_if_match_sequence(self):
        r = self.request("PUT", self.path, {"name": "v2"}, headers=[("If-Match", '"1"')])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["version"], 2)
        self.assertEqual(r.get_all("ETag"), ['"2"'])
        # stale
        self.problem(412, "PUT", self.path, {"name": "v3"}, headers=[("If-Match", '"1"')])
        # weak never matches If-Match
        self.problem(412, "PUT", self.path, {"name": "v3"}, headers=[("If-Match", 'W/"2"')])
        self.assertEqual(self.get_item(self.item["id"])["version"], 2)
        self.assertEqual(self.get_item(self.item["id"])["name"], "v2")
        # list containing the current one
        r = self.request("PUT", self.path, {"name": "v3"}, headers=[("If-Match", '"9", "2"')])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["version"], 3)
        # * on an existing item
        r = self.request("PUT", self.path, {"name": "v4"}, headers=[("If-Match", "*")])
        self.assertEqual(r.status, 200, r)
        assert_item(self, r.json(), name="v4", version=4)
        self.assertEqual(r.get_all("ETag"), ['"4"'])

    def test_if_match_compares_tags_not_numbers(self):
        # "01" is another opaque tag than "1" (RFC 9110 8.8.3.2)
        self.problem(412, "PUT", self.path, {"name": "n"}, headers=[("If-Match", '"01"')])
        self.problem(412, "DELETE", self.path, headers=[("If-Match", '"1 "')])
        self.assertEqual(self.get_item(self.item["id"])["version"], 1)

    def test_if_match_garbage_412(self):
        for v in ('"x"', '"1', '1'):
            r = self.request("PUT", self.path, {"name": "n"}, headers=[("If-Match", v)])
            self.assertIn(r.status, (400, 412), "If-Match %s: %r" % (v, r))
            assert_problem(self, r, r.status)
        self.assertEqual(self.get_item(self.item["id"])["version"], 1)

    def test_delete_if_match(self):
        self.problem(412, "DELETE", self.path, headers=[("If-Match", '"7"')])
        self.problem(412, "DELETE", self.path, headers=[("If-Match", 'W/"1"')])
        self.assertEqual(self.get_item(self.item["id"])["version"], 1)
        r = self.request("DELETE", self.path, headers=[("If-Match", '"1"')])
        self.assertEqual(r.status, 204, r)
        self.problem(404, "GET", self.path)

    def test_delete_if_match_star(self):
        r = self.request("DELETE", self.path, headers=[("If-Match", "*")])
        self.assertEqual(r.status, 204, r)

    # -- If-None-Match on PUT and DELETE (RFC 9110 13.1.2): false -> 412, nothing changes

    def assert_unchanged(self):
        cur = self.get_item(self.item["id"])
        self.assertEqual(cur, self.item)

    def test_put_if_none_match_star_412(self):
        r = self.problem(412, "PUT", self.path, {"name": "clobber"},
                         headers=[("If-None-Match", "*")])
        self.assertIn("If-None-Match", r.json()["detail"])
        self.assert_unchanged()

    def test_delete_if_none_match_star_412(self):
        self.problem(412, "DELETE", self.path, headers=[("If-None-Match", "*")])
        self.assert_unchanged()

    def test_if_none_match_matching_weak_tag_412(self):
        for inm in ('W/"1"', '"1"', '"9", W/"1"', '"a",W/"1","b"'):
            with self.subTest(inm=inm):
                self.problem(412, "PUT", self.path, {"name": "n"}, headers=[("If-None-Match", inm)])
                self.problem(412, "DELETE", self.path, headers=[("If-None-Match", inm)])
        # the list split over several header lines
        hs = [("If-None-Match", '"7"'), ("If-None-Match", 'W/"1"')]
        self.problem(412, "PUT", self.path, {"name": "n"}, headers=hs)
        self.problem(412, "DELETE", self.path, headers=hs)
        self.assert_unchanged()

    def test_if_none_match_other_tags_proceed(self):
        r = self.request("PUT", self.path, {"name": "v2"},
                         headers=[("If-None-Match", '"2", W/"3", "x"'),
                                  ("If-None-Match", '"01"')])
        self.assertEqual(r.status, 200, r)
        assert_item(self, r.json(), name="v2", version=2, id=self.item["id"])
        self.assertEqual(r.get_all("ETag"), ['"2"'])
        # version 2 now: "1" no longer matches
        r = self.request("DELETE", self.path, headers=[("If-None-Match", '"1", W/"3"')])
        self.assertEqual(r.status, 204, r)
        self.problem(404, "GET", self.path)

    def test_if_none_match_absent_item_404_on_writes(self):
        for inm in ("*", '"1"', 'W/"1"'):
            with self.subTest(inm=inm):
                self.problem(404, "PUT", "/v1/items/%d" % INT64_MAX, {"name": "z"},
                             headers=[("If-None-Match", inm)])
                self.problem(404, "DELETE", "/v1/items/%d" % INT64_MAX,
                             headers=[("If-None-Match", inm)])

    def test_if_match_then_if_none_match_on_writes(self):
        # both true: proceeds
        r = self.request("PUT", self.path, {"name": "v2"},
                         headers=[("If-Match", '"1"'), ("If-None-Match", '"5"')])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["version"], 2)
        # If-Match false (evaluated first), If-None-Match true
        r = self.problem(412, "PUT", self.path, {"name": "v3"},
                         headers=[("If-Match", '"1"'), ("If-None-Match", '"5"')])
        self.assertIn("If-Match", r.json()["detail"])
        # If-Match true, If-None-Match false
        r = self.problem(412, "DELETE", self.path,
                         headers=[("If-Match", '"2"'), ("If-None-Match", "*")])
        self.assertIn("If-None-Match", r.json()["detail"])
        # both false
        self.problem(412, "DELETE", self.path,
                     headers=[("If-Match", '"7"'), ("If-None-Match", 'W/"2"')])
        cur = self.get_item(self.item["id"])
        assert_item(self, cur, name="v2", version=2)

    # -- If-Match on GET and HEAD (RFC 9110 13.1.1): strong comparison, else 412

    def test_get_if_match(self):
        for im in ('"2"', 'W/"1"', '"01"', '"x"', '"2", W/"1"'):
            with self.subTest(im=im):
                r = self.problem(412, "GET", self.path, headers=[("If-Match", im)])
                self.assertIn("If-Match", r.json()["detail"])
                r = self.request("HEAD", self.path, headers=[("If-Match", im)])
                assert_problem(self, r, 412)
                self.assertIsNone(r.body)
        for im in ('"1"', "*", '"5", "1"', 'W/"1", "1"'):
            with self.subTest(im=im):
                r = self.request("GET", self.path, headers=[("If-Match", im)])
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json(), self.item)
                self.assertEqual(r.get_all("ETag"), ['"1"'])
                h = self.request("HEAD", self.path, headers=[("If-Match", im)])
                self.assertEqual(h.status, 200, h)
                self.assertEqual(int(h.get("Content-Length")), self.get_length)
                self.assertIsNone(h.body)
        # several header lines form one list
        r = self.request("GET", self.path, headers=[("If-Match", '"4"'), ("If-Match", '"1"')])
        self.assertEqual(r.status, 200, r)

    def test_get_if_match_absent_404(self):
        for im in ('"1"', "*", 'W/"1"'):
            with self.subTest(im=im):
                self.problem(404, "GET", "/v1/items/%d" % INT64_MAX, headers=[("If-Match", im)])
                r = self.request("HEAD", "/v1/items/%d" % INT64_MAX, headers=[("If-Match", im)])
                assert_problem(self, r, 404)

    def test_get_if_match_before_if_none_match(self):
        self.problem(412, "GET", self.path,
                     headers=[("If-Match", '"2"'), ("If-None-Match", '"1"')])
        self.assert_304('"1"')  # sanity: alone it is a 304
        with Conn(self.port) as c:
            c.request("GET", self.path, headers=[("If-Match", '"1"'), ("If-None-Match", '"1"')])
            r = c.read_response("GET")
        self.assertEqual(r.status, 304, r)

    def test_list_preconditions(self):
        # The list has a representation but no entity-tag: If-Match holds only
        # as "*", If-None-Match fails only as "*".
        self.problem(412, "GET", "/v1/items", headers=[("If-Match", '"1"')])
        r = self.request("HEAD", "/v1/items", headers=[("If-Match", 'W/"1"')])
        assert_problem(self, r, 412)
        page = "/v1/items?limit=1&after=%d" % (self.item["id"] - 1)
        r = self.request("GET", page, headers=[("If-Match", "*")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["items"], [self.item])
        r = self.request("GET", page, headers=[("If-None-Match", '"1"')])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["items"], [self.item])
        r = self.request("GET", "/v1/items", headers=[("If-None-Match", "*")])
        self.assertEqual(r.status, 304, r)
        self.assertIsNone(r.body)
        # a bad query is still 400 first
        self.problem(400, "GET", "/v1/items?limit=0", headers=[("If-Match", '"1"')])


class Listing(harness.RingletTestCase):

    def setUp(self):
        super().setUp()
        harness.truncate_items()

    def list(self, query=""):
        r = self.request("GET", "/v1/items" + query)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.content_type, "application/json")
        body = r.json()
        self.assertEqual(set(body), {"items", "next_after"}, body)
        self.assertIsInstance(body["items"], list)
        for it in body["items"]:
            assert_item(self, it)
        ids = [it["id"] for it in body["items"]]
        self.assertEqual(ids, sorted(ids), "ascending ids")
        self.assertEqual(len(set(ids)), len(ids))
        return body

    def test_empty(self):
        self.assertEqual(self.list(), {"items": [], "next_after": None})
        self.assertEqual(self.list("?limit=10&after=0"), {"items": [], "next_after": None})

    def test_pages(self):
        items = [self.create("p%d" % i, {"i": i}) for i in range(5)]
        ids = [it["id"] for it in items]
        p1 = self.list("?limit=2")
        self.assertEqual(p1["items"], items[:2])
        self.assertEqual(p1["next_after"], ids[1])
        p2 = self.list("?limit=2&after=%d" % p1["next_after"])
        self.assertEqual(p2["items"], items[2:4])
        self.assertEqual(p2["next_after"], ids[3])
        p3 = self.list("?after=%d&limit=2" % p2["next_after"])
        self.assertEqual(p3["items"], items[4:])
        self.assertIsNone(p3["next_after"])
        # after = an id that is not there: strictly greater
        self.assertEqual(self.list("?after=%d" % ids[2])["items"], items[3:])
        self.assertEqual(self.list("?after=%d" % ids[-1]),
                         {"items": [], "next_after": None})
        self.assertEqual(self.list("?after=%d" % INT64_MAX), {"items": [], "next_after": None})
        self.assertEqual(self.list("?after=0")["items"], items)
        self.assertEqual(self.list("?limit=1")["next_after"], ids[0])

    def test_exact_full_page(self):
        items = [self.create("f%d" % i) for i in range(4)]
        p1 = self.list("?limit=2")
        p2 = self.list("?limit=2&after=%d" % p1["next_after"])
        self.assertEqual(p2["items"], items[2:])
        self.assertEqual(p2["next_after"], items[3]["id"], "a full page gives next_after")
        p3 = self.list("?limit=2&after=%d" % p2["next_after"])
        self.assertEqual(p3, {"items": [], "next_after": None})
        whole = self.list("?limit=4")
        self.assertEqual(whole["next_after"], items[3]["id"])
        short = self.list("?limit=5")
        self.assertIsNone(short["next_after"])

    def test_deleted_items_skipped(self):
        items = [self.create("d%d" % i) for i in range(4)]
        self.request("DELETE", "/v1/items/%d" % items[1]["id"])
        self.assertEqual(self.list()["items"], [items[0], items[2], items[3]])

    def test_default_limit_50_and_max_1000(self):
        harness.psql("INSERT INTO items (name, data) SELECT 'bulk' || g, jsonb_build_object('g', g)"
                     " FROM generate_series(1, 1001) g")
        p = self.list()
        self.assertEqual(len(p["items"]), 50)
        self.assertEqual(p["next_after"], p["items"][-1]["id"])
        self.assertEqual(p["items"][0]["name"], "bulk1")
        p = self.list("?limit=1000")
        self.assertEqual(len(p["items"]), 1000)
        self.assertEqual(p["next_after"], p["items"][-1]["id"])
        rest = self.list("?limit=1000&after=%d" % p["next_after"])
        self.assertEqual(len(rest["items"]), 1)
        self.assertEqual(rest["items"][0]["name"], "bulk1001")
        self.assertIsNone(rest["next_after"])

    def test_bad_query_400(self):
        self.create("q")
        for q in ("limit=0", "limit=1001", "limit=-1", "limit=+5", "limit=", "limit=abc",
                  "limit=1&limit=2", "limit=5&limit=5", "limit=1.5", "limit=1e2", "limit= 5",
                  "limit=99999999999999999999999", "after=-1", "after=+1", "after=",
                  "after=abc", "after=1&after=2", "after=9223372036854775808",
                  "after=99999999999999999999999", "limit=%2B5", "limit=0x10"):
            with self.subTest(q=q):
                self.problem(400, "GET", "/v1/items?" + q)

    def test_head_list(self):
        self.create("h")
        g = self.request("GET", "/v1/items?limit=5")
        h = self.request("HEAD", "/v1/items?limit=5")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.get("Content-Length"), g.get("Content-Length"))
        self.assertEqual(h.get("Content-Type"), g.get("Content-Type"))


class Ids(harness.RingletTestCase):

    def test_bad_ids_400(self):
        for bad in ("0", "-1", "+1", "1a", "a1", "abc", "", "9223372036854775808",
                    "99999999999999999999", "1.0", "0x10", "%201", "-0", "00"):
            with self.subTest(id=bad):
                self.problem(400, "GET", "/v1/items/" + bad)
                self.problem(400, "DELETE", "/v1/items/" + bad)
                self.problem(400, "PUT", "/v1/items/" + bad, {"name": "x"})

    def test_max_id_404(self):
        self.problem(404, "GET", "/v1/items/%d" % INT64_MAX)
        self.problem(404, "DELETE", "/v1/items/%d" % INT64_MAX)


class Validation(harness.RingletTestCase):

    BAD_BODIES = [
        ("malformed", b"{"),
        ("malformed2", b'{"name":}'),
        ("trailing garbage", b'{"name":"a"} x'),
        ("two values", b'{"name":"a"}{}'),
        ("empty body", b""),
        ("top-level array", b'[{"name":"a"}]'),
        ("top-level string", b'"a"'),
        ("top-level null", b"null"),
        ("name missing", b"{}"),
        ("name missing with data", b'{"data":{}}'),
        ("name empty", b'{"name":""}'),
        ("name 201 chars", json.dumps({"name": "a" * 201}).encode()),
        ("name 201 multibyte", json.dumps({"name": "\u00e9" * 201}, ensure_ascii=False).encode()),
        ("name 201 astral", json.dumps({"name": "\U0001F600" * 201}).encode()),
        ("name number", b'{"name":5}'),
        ("name null", b'{"name":null}'),
        ("name array", b'{"name":["a"]}'),
        ("name object", b'{"name":{}}'),
        ("name bool", b'{"name":true}'),
        ("name NUL", b'{"name":"a\\u0000b"}'),
        ("data array", b'{"name":"a","data":[]}'),
        ("data string", b'{"name":"a","data":"x"}'),
        ("data number", b'{"name":"a","data":1}'),
        ("data null", b'{"name":"a","data":null}'),
        ("data NUL value", b'{"name":"a","data":{"k":"a\\u0000"}}'),
        ("data NUL key", b'{"name":"a","data":{"k\\u0000":1}}'),
        ("data NUL nested", b'{"name":"a","data":{"k":[{"z":["\\u0000"]}]}}'),
        ("unknown field", b'{"name":"a","nmae":"b"}'),
        ("id field", b'{"name":"a","id":1}'),
        ("version field", b'{"name":"a","version":1}'),
        ("created_at field", b'{"name":"a","created_at":"2026-01-01T00:00:00.000000Z"}'),
        ("updated_at field", b'{"name":"a","updated_at":"2026-01-01T00:00:00.000000Z"}'),
        ("invalid utf-8", b'{"name":"a\xff\xfe"}'),
        ("invalid utf-8 in data", b'{"name":"a","data":{"k":"\xc3("}}'),
        ("single quotes", b"{'name':'a'}"),
        ("comment", b'{"name":"a" /* c */}'),
        ("trailing comma", b'{"name":"a",}'),
    ]

    def test_post_bad_bodies_400(self):
        for label, body in self.BAD_BODIES:
            with self.subTest(body=label):
                self.problem(400, "POST", "/v1/items", body)

    def test_put_bad_bodies_400(self):
        item = self.create("keep", {"k": 1})
        for label, body in self.BAD_BODIES:
            with self.subTest(body=label):
                self.problem(400, "PUT", "/v1/items/%d" % item["id"], body)
        self.assertEqual(self.get_item(item["id"]), item)

    def test_name_lengths_ok(self):
        for name in ("a", "a" * 200, "\u00e9" * 200, "\U0001F600" * 200, "\u65e5" * 200):
            with self.subTest(name=name[:3] + "..%d" % len(name)):
                body = json.dumps({"name": name}, ensure_ascii=False).encode()
                r = self.request("POST", "/v1/items", body)
                self.assertEqual(r.status, 201, r)
                self.assertEqual(r.json()["name"], name)

    def test_odd_but_valid_json_never_5xx(self):
        cases = [
            b'{"name":"a","data":{"n":123456789012345678901234567890}}',
            b'{"name":"a","data":{"n":1e400}}',
            b'{"name":"a","data":{"n":-0.0}}',
            b'{"name":"\\ud800"}',
            b'{"name":"a","data":{"k":"\\udc00x"}}',
            b'{"name":"a","name":"b"}',
            b'{"name":"a","data":' + b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"}",
            b'{"name":"a","data":{"a":' + b"[" * 5000 + b"]" * 5000 + b"}}",
            b'  \r\n\t{"name":"ws"}  \n',
            b'\xef\xbb\xbf{"name":"bom"}',
        ]
        for body in cases:
            with self.subTest(body=body[:40]):
                r = self.request("POST", "/v1/items", body)
                self.assertIn(r.status, (201, 400), r)
                if r.status == 400:
                    assert_problem(self, r, 400)
                else:
                    item = r.json()
                    assert_item(self, item)
                    self.assertEqual(self.get_item(item["id"]), item)
        self.assert_alive()

    def test_content_type(self):
        body = b'{"name":"ct"}'
        for ct in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                   "application/json-patch+json", "application/problem+json", "json", ""):
            with self.subTest(ct=ct):
                self.problem(415, "POST", "/v1/items", body, headers=[("Content-Type", ct)])
        self.problem(415, "POST", "/v1/items", body, content_type=None)
        item = self.create("ct")
        self.problem(415, "PUT", "/v1/items/%d" % item["id"], body,
                     headers=[("Content-Type", "text/plain")])
        self.problem(415, "PUT", "/v1/items/%d" % item["id"], body, content_type=None)
        for ct in ("application/json", "application/json; charset=utf-8",
                   "application/json;charset=UTF-8", "Application/JSON"):
            with self.subTest(ct=ct):
                r = self.request("POST", "/v1/items", body, headers=[("Content-Type", ct)])
                self.assertEqual(r.status, 201, r)

    def test_no_body_no_content_type_400(self):
        # No body at all: not a 415 (nothing to type), but the name is missing.
        self.problem(400, "POST", "/v1/items", headers=[("Content-Length", "0")])
        self.problem(400, "POST", "/v1/items")

    def test_body_too_large_default(self):
        # Content-Length above 1 MiB is refused from the head alone.
        with Conn(self.port) as c:
            c.send(b"POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 1048577\r\n\r\n")
            r = c.read_final("POST")
        assert_problem(self, r, 413)
        # exactly 1 MiB is accepted (a valid JSON body of that size)
        pad = 1048576 - len(b'{"name":"big","data":{"p":""}}')
        body = b'{"name":"big","data":{"p":"' + b"x" * pad + b'"}}'
        self.assertEqual(len(body), 1048576)
        r = self.request("POST", "/v1/items", body, timeout=20)
        self.assertEqual(r.status, 201, r)
        self.assertEqual(len(r.json()["data"]["p"]), pad)
        self.assert_alive()

    def test_body_too_large_small_limit(self):
        s = self.start_server(env={"RINGLET_MAX_BODY_BYTES": "100"})

        def body_of(n):
            b = b'{"name":"' + b"n" * (n - len(b'{"name":""}')) + b'"}'
            self.assertEqual(len(b), n)
            return b

        r = self.request("POST", "/v1/items", body_of(100), port=s.port)
        self.assertEqual(r.status, 201, r)
        r = self.request("POST", "/v1/items", body_of(101), port=s.port)
        assert_problem(self, r, 413)
        item = self.request("POST", "/v1/items", body_of(50), port=s.port).json()
        r = self.request("PUT", "/v1/items/%d" % item["id"], body_of(101), port=s.port)
        assert_problem(self, r, 413)
        # chunked: the limit applies to the decoded body
        with Conn(s.port) as c:
            c.send(b"POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
            b = body_of(150)
            c.send(b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (60, b[:60], 90, b[60:]))
            r = c.read_final("POST")
        assert_problem(self, r, 413)
        self.assert_alive(s)


class Unstorable(harness.RingletTestCase):
    """Valid JSON numbers PostgreSQL's numeric (hence jsonb) cannot hold:
    400, not 500, and the connection to the database stays usable."""

    # One database connection: every statement below shares it, so a refused
    # write must leave it, and its pipeline, in order for what follows.
    server_env = {"RINGLET_DB_CONNECTIONS": "1"}

    NUMBERS = ["1e131072", "1e200000", "1e-16400", "-1e131072"]

    def assert_unstorable(self, r):
        assert_problem(self, r, 400)
        detail = r.json()["detail"]
        self.assertIn("cannot be stored", detail)
        self.assertIn("numeric out of range", detail)
        for leak in ("overflows", "sql", "postgres", "insert", "update", "jsonb", "22003",
                     "ringlet_"):
            self.assertNotIn(leak, detail.lower())

    def db_errors(self, stmt):
        return harness.metric_value(self.metrics(), "db_queries_total", statement=stmt,
                                    outcome="error")

    def test_post_out_of_range_number_400(self):
        errors = self.db_errors("item_insert")
        for n in self.NUMBERS:
            with self.subTest(n=n):
                body = ('{"name":"a","data":{"n":%s}}' % n).encode()
                self.assert_unstorable(self.request("POST", "/v1/items", body))
                # nested deeper, and on the same keep-alive connection as a good one
                with Conn(self.port) as c:
                    c.request("POST", "/v1/items", body=('{"name":"a","data":{"k":[{"n":%s}]}}'
                                                         % n).encode())
                    self.assert_unstorable(c.read_response("POST"))
                    c.request("POST", "/v1/items", body={"name": "after", "data": {"n": 1}})
                    r = c.read_response("POST")
                self.assertEqual(r.status, 201, r)
                assert_item(self, r.json(), name="after", data={"n": 1}, version=1)
        # the service keeps serving, and the refusals were no database failures
        self.assertEqual(self.create("next")["name"], "next")
        self.assertEqual(self.db_errors("item_insert"), errors)
        self.assert_alive()

    def test_put_out_of_range_number_400(self):
        item = self.create("keep", {"k": 1})
        path = "/v1/items/%d" % item["id"]
        errors = self.db_errors("item_update")
        for n in self.NUMBERS:
            with self.subTest(n=n):
                body = ('{"name":"b","data":{"n":%s}}' % n).encode()
                self.assert_unstorable(self.request("PUT", path, body))
                self.assert_unstorable(self.request("PUT", path, body,
                                                    headers=[("If-Match", '"1"')]))
        self.assertEqual(self.get_item(item["id"]), item)
        self.assertEqual(self.db_errors("item_update"), errors)
        r = self.request("PUT", path, {"name": "b", "data": {"n": 2}})
        self.assertEqual(r.status, 200, r)
        assert_item(self, r.json(), name="b", data={"n": 2}, version=2)

    def test_refusal_among_concurrent_requests(self):
        item = self.create("around")
        path = "/v1/items/%d" % item["id"]
        bad = b'{"name":"a","data":{"n":1e131072}}'
        conns = [Conn(self.port) for _ in range(8)]
        try:
            # all sent before any is read: reads and writes share the pipeline
            for i, c in enumerate(conns):
                if i % 2:
                    c.request("POST" if i % 4 == 1 else "PUT", "/v1/items" if i % 4 == 1 else path,
                              body=bad)
                else:
                    c.request("GET", path)
            for i, c in enumerate(conns):
                r = c.read_response("GET" if i % 2 == 0 else "POST")
                if i % 2:
                    self.assert_unstorable(r)
                else:
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.json(), item)
        finally:
            for c in conns:
                c.close()
        r = self.request("PUT", path, {"name": "later"}, headers=[("If-Match", '"1"')])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["version"], 2)
        self.assertEqual(self.request("GET", "/readyz").status, 200)

    def test_large_but_storable_numbers_201(self):
        # (compared as bytes: 1e131071 has more digits than Python's int parser takes)
        for n in ("1e400", "-1e400", "1e131071", "1e-16383"):
            with self.subTest(n=n):
                r = self.request("POST", "/v1/items", ('{"name":"a","data":{"n":%s}}' % n).encode())
                self.assertEqual(r.status, 201, r)
                self.assertIn(b'"data":{"n":', r.body)
                g = self.request("GET", r.get("Location"))
                self.assertEqual(g.status, 200, g)
                self.assertEqual(g.body, r.body)
                # not left for other tests that parse lists with Python's json
                self.assertEqual(self.request("DELETE", r.get("Location")).status, 204)


class Routing(harness.RingletTestCase):

    def test_unknown_paths_404(self):
        for path in ("/", "/nope", "/v1", "/v1/item", "/v1/items/1/extra", "/v2/items",
                     "/healthz/x", "/V1/ITEMS", "/metricsx", "/v1/itemsx"):
            with self.subTest(path=path):
                self.problem(404, "GET", path)
        self.problem(404, "POST", "/nope", {"name": "x"})

    def assert_405(self, method, path, allowed, body=None):
        r = self.request(method, path, body)
        assert_problem(self, r, 405)
        allow = r.header_list("Allow")
        self.assertEqual(set(a.upper() for a in allow), set(allowed), r)
        self.assertEqual(len(allow), len(set(allow)), r)

    def test_405_allow(self):
        coll = {"GET", "HEAD", "POST"}
        item = {"GET", "HEAD", "PUT", "DELETE"}
        ro = {"GET", "HEAD"}
        self.assert_405("DELETE", "/v1/items", coll)
        self.assert_405("PUT", "/v1/items", coll, {"name": "x"})
        self.assert_405("PATCH", "/v1/items", coll, {"name": "x"})
        self.assert_405("POST", "/v1/items/1", item, {"name": "x"})
        self.assert_405("PATCH", "/v1/items/1", item, {"name": "x"})
        for p in ("/healthz", "/readyz", "/metrics"):
            with self.subTest(path=p):
                self.assert_405("POST", p, ro, {"x": 1})
                self.assert_405("DELETE", p, ro)
                self.assert_405("PUT", p, ro, {"x": 1})

    def test_options_and_unknown_method(self):
        for m in ("OPTIONS", "TRACE", "BREW", "CONNECT"):
            with self.subTest(method=m):
                with Conn(self.port) as c:
                    target = "127.0.0.1:1" if m == "CONNECT" else "/healthz"
                    c.request(m, target)
                    try:
                        r = c.read_final(m)
                    except harness.ConnectionClosed:
                        continue  # closing is allowed for what cannot be parsed
                if r.status not in (200, 204):
                    self.assertIn(r.status, (400, 405, 501), r)
                    assert_problem(self, r, r.status)
        self.assert_alive()

    def test_query_string_on_item_and_health(self):
        self.assertEqual(self.request("GET", "/healthz?x=1").status, 200)
        item = self.create("q")
        r = self.request("GET", "/v1/items/%d?x=1" % item["id"])
        self.assertIn(r.status, (200, 400), r)


class Health(harness.RingletTestCase):

    def test_healthz(self):
        r = self.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.content_type, "application/json")
        self.assertEqual(r.json(), {"status": "ok"})
        h = self.request("HEAD", "/healthz")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.get("Content-Length"), r.get("Content-Length"))

    def test_readyz(self):
        r = self.request("GET", "/readyz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.content_type, "application/json")
        self.assertEqual(r.json(), {"status": "ready"})
        self.assertEqual(self.request("HEAD", "/readyz").status, 200)

    def test_healthz_without_database(self):
        s = self.start_server(env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
                              wait_ready=False)
        r = self.request("GET", "/healthz", port=s.port)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})
        r = self.request("GET", "/readyz", port=s.port)
        assert_problem(self, r, 503)
        self.assertTrue(r.has("Retry-After"), r)
        # item routes: 503 with Retry-After, not a hang or a crash
        r = self.request("GET", "/v1/items/1", port=s.port, timeout=15)
        assert_problem(self, r, 503)
        self.assertRegex(r.get("Retry-After", ""), r"^[0-9]+$")
        r = self.request("POST", "/v1/items", {"name": "x"}, port=s.port, timeout=15)
        assert_problem(self, r, 503)


class Metrics(harness.RingletTestCase):

    server_env = {"RINGLET_DB_CONNECTIONS": "4"}

    def test_content_type_and_format(self):
        r = self.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        ct = [p.strip().lower() for p in r.get("Content-Type", "").split(";")]
        self.assertEqual(ct[0], "text/plain")
        self.assertIn("version=0.0.4", [p.replace(" ", "") for p in ct[1:]], r.headers)
        fams, errors = harness.parse_metrics(r.text())
        self.assertEqual(errors, [])

    def test_contract_metrics(self):
        item = self.create("m")
        self.get_item(item["id"])
        fams = self.metrics()
        expected = {
            "http_requests_total": "counter",
            "http_request_duration_seconds": "histogram",
            "http_requests_in_flight": "gauge",
            "db_pool_connections": "gauge",
            "db_queries_total": "counter",
            "process_cpu_seconds_total": "counter",
            "process_resident_memory_bytes": "gauge",
            "process_open_fds": "gauge",
            "process_start_time_seconds": "gauge",
        }
        for name, t in expected.items():
            with self.subTest(metric=name):
                self.assertIn(name, fams)
                self.assertEqual(fams[name]["type"], t)
                self.assertIsNotNone(fams[name]["help"], "HELP line")
                self.assertTrue(fams[name]["samples"], "no samples")
        for _, labels, _ in fams["http_requests_total"]["samples"]:
            self.assertEqual(set(labels), {"method", "route", "status"})
        for sname, labels, _ in fams["http_request_duration_seconds"]["samples"]:
            want = {"method", "route", "le"} if sname.endswith("_bucket") else {"method", "route"}
            self.assertEqual(set(labels), want, sname)
        for _, labels, _ in fams["db_queries_total"]["samples"]:
            self.assertEqual(set(labels), {"statement", "outcome"})
        states = {}
        for _, labels, v in fams["db_pool_connections"]["samples"]:
            self.assertEqual(set(labels), {"state"})
            states[labels["state"]] = v
        self.assertTrue({"idle", "busy", "connecting", "broken"} <= set(states), states)
        self.assertLessEqual(sum(states.values()), 4)
        self.assertGreaterEqual(states["idle"] + states["busy"], 1)
        for _, labels, v in fams["http_requests_in_flight"]["samples"]:
            self.assertEqual(labels, {})
            self.assertGreaterEqual(v, 0)
            self.assertLessEqual(v, 1)  # only this /metrics request
        v = harness.metric_value(fams, "process_start_time_seconds")
        self.assertLess(abs(v - self.server.started_at), 30)
        self.assertGreater(harness.metric_value(fams, "process_resident_memory_bytes"), 1 << 20)
        fds = len(os.listdir("/proc/%d/fd" % self.server.pid))
        self.assertLess(abs(harness.metric_value(fams, "process_open_fds") - fds), 8)
        self.assertGreaterEqual(harness.metric_value(fams, "process_cpu_seconds_total"), 0)
        routes = {l["route"] for _, l, _ in fams["http_requests_total"]["samples"]}
        self.assertIn("/v1/items/{id}", routes)
        self.assertIn("/v1/items", routes)

    def test_counters_increase(self):
        item = self.create("c")
        path = "/v1/items/%d" % item["id"]
        labels = dict(method="GET", route="/v1/items/{id}", status="200")
        before = self.metrics()
        n0 = harness.metric_value(before, "http_requests_total", **labels)
        h0 = harness.metric_value(before, "http_request_duration_seconds_count",
                                  method="GET", route="/v1/items/{id}")
        nf0 = harness.metric_value(before, "http_requests_total", method="GET",
                                   route="/v1/items/{id}", status="404")
        for _ in range(3):
            self.get_item(item["id"])
        self.request("GET", "/v1/items/%d" % INT64_MAX)
        deadline = time.monotonic() + 2
        while True:
            after = self.metrics()
            n1 = harness.metric_value(after, "http_requests_total", **labels)
            h1 = harness.metric_value(after, "http_request_duration_seconds_count",
                                      method="GET", route="/v1/items/{id}")
            if (n1 >= n0 + 3 and h1 >= h0 + 4) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(n1, n0 + 3)
        self.assertEqual(harness.metric_value(after, "http_request_duration_seconds_count",
                                              method="GET", route="/v1/items/{id}"), h0 + 4)
        self.assertEqual(harness.metric_value(after, "http_requests_total", method="GET",
                                              route="/v1/items/{id}", status="404"), nf0 + 1)
        self.assertGreater(sum(v for _, l, v in after["db_queries_total"]["samples"]
                               if l["outcome"] in ("ok", "success")), 0)
        self.assertIsNotNone(path)

    def test_head_metrics(self):
        g = self.request("GET", "/metrics")
        h = self.request("HEAD", "/metrics")
        self.assertEqual(h.status, 200)
        self.assertEqual(h.get("Content-Type"), g.get("Content-Type"))


if __name__ == "__main__":
    harness.main()
