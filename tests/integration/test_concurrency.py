#!/usr/bin/python3
"""Concurrent clients: optimistic concurrency with If-Match, and a parallel
mixed load with zero errors and consistent results."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, assert_item, check_common  # noqa: E402


class _Checker:
    """check_common from worker threads: failures are collected, not raised."""

    def __init__(self):
        self.errors = []
        self.lock = threading.Lock()

    def fail(self, msg):
        with self.lock:
            self.errors.append(msg)


def _run_threads(n, target):
    errors = []
    lock = threading.Lock()

    def wrap(i):
        try:
            target(i)
        except Exception as e:  # noqa: BLE001 - reported below
            with lock:
                errors.append("thread %d: %r" % (i, e))

    ts = [threading.Thread(target=wrap, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    alive = [t for t in ts if t.is_alive()]
    if alive:
        errors.append("%d threads still running after 120 s" % len(alive))
    return errors


class Concurrency(harness.RingletTestCase):

    def test_if_match_race(self):
        item = self.create("race")
        path = "/v1/items/%d" % item["id"]
        n = 50
        conns = [Conn(self.port, timeout=30) for _ in range(n)]
        barrier = threading.Barrier(n)
        results = [None] * n

        def worker(i):
            c = conns[i]
            body = ('{"name":"t%d"}' % i).encode()
            data = harness.build_request("PUT", path, [("If-Match", '"1"')], body, host="x")
            barrier.wait(30)
            c.send(data)
            results[i] = c.read_final("PUT")

        try:
            errors = _run_threads(n, worker)
        finally:
            for c in conns:
                c.close()
        self.assertEqual(errors, [])
        for r in results:
            check_common(self, r)
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses.count(200), 1, statuses)
        self.assertEqual(statuses.count(412), n - 1, statuses)
        for r in results:
            if r.status == 412:
                harness.assert_problem(self, r, 412)
        winner = [i for i, r in enumerate(results) if r.status == 200][0]
        final = self.get_item(item["id"])
        assert_item(self, final, name="t%d" % winner, version=2)
        self.assertEqual(results[winner].json(), final)
        self.assertEqual(results[winner].get("ETag"), '"2"')

    def test_unconditional_puts_all_apply(self):
        item = self.create("count")
        path = "/v1/items/%d" % item["id"]
        n = 30
        versions = []
        lock = threading.Lock()

        def worker(i):
            with Conn(self.port, timeout=30) as c:
                for j in range(5):
                    c.request("PUT", path, body={"name": "w%d-%d" % (i, j)})
                    r = c.read_final("PUT")
                    if r.status != 200:
                        raise AssertionError("PUT: %r" % r)
                    with lock:
                        versions.append(r.json()["version"])

        self.assertEqual(_run_threads(n, worker), [])
        self.assertEqual(sorted(versions), list(range(2, 2 + n * 5)),
                         "every PUT got its own version")
        self.assertEqual(self.get_item(item["id"])["version"], 1 + n * 5)

    def test_concurrent_posts_unique_ids(self):
        n, per = 20, 10
        ids = []
        lock = threading.Lock()

        def worker(i):
            with Conn(self.port, timeout=30) as c:
                for j in range(per):
                    c.request("POST", "/v1/items", body={"name": "c%d-%d" % (i, j),
                                                          "data": {"t": i, "j": j}})
                    r = c.read_final("POST")
                    if r.status != 201:
                        raise AssertionError("POST: %r" % r)
                    it = r.json()
                    if it["name"] != "c%d-%d" % (i, j) or it["data"] != {"t": i, "j": j}:
                        raise AssertionError("wrong item back: %r" % it)
                    with lock:
                        ids.append(it["id"])

        self.assertEqual(_run_threads(n, worker), [])
        self.assertEqual(len(ids), n * per)
        self.assertEqual(len(set(ids)), n * per)

    def test_mixed_load(self):
        threads, per = 20, 50
        chk = _Checker()

        def errors_5xx():
            return {tuple(sorted(l.items())): v
                    for _, l, v in self.metrics()["http_requests_total"]["samples"]
                    if l["status"].startswith("5")}

        before = errors_5xx()

        def worker(i):
            with Conn(self.port, timeout=30) as c:
                def call(method, target, body=None, headers=None):
                    c.request(method, target, headers, body)
                    r = c.read_final(method)
                    try:
                        check_common(self, r)
                    except AssertionError as e:
                        chk.fail("thread %d %s %s: %s" % (i, method, target, e))
                    return r

                r = call("POST", "/v1/items", {"name": "m%d" % i, "data": {"n": 0}})
                if r.status != 201:
                    raise AssertionError("POST %r" % r)
                item = r.json()
                path = "/v1/items/%d" % item["id"]
                version = 1
                for j in range(per):
                    k = j % 5
                    if k == 0:
                        r = call("GET", path)
                        if r.status != 200 or r.json()["version"] != version:
                            raise AssertionError("GET %r (want version %d)" % (r, version))
                        if r.get("ETag") != '"%d"' % version:
                            raise AssertionError("ETag %r" % r)
                    elif k == 1:
                        r = call("PUT", path, {"name": "m%d" % i, "data": {"n": j}},
                                 [("If-Match", '"%d"' % version)])
                        if r.status != 200:
                            raise AssertionError("PUT %r" % r)
                        version += 1
                        if r.json()["version"] != version or r.json()["data"] != {"n": j}:
                            raise AssertionError("PUT result %r" % r.json())
                    elif k == 2:
                        r = call("GET", "/v1/items?limit=5&after=%d" % (item["id"] - 1))
                        if r.status != 200:
                            raise AssertionError("list %r" % r)
                        got = r.json()["items"]
                        if not got or got[0]["id"] != item["id"]:
                            raise AssertionError("own item not first in list: %r" % got[:1])
                    elif k == 3:
                        r = call("GET", path, headers=[("If-None-Match", '"%d"' % version)])
                        if r.status != 304:
                            raise AssertionError("If-None-Match %r" % r)
                    else:
                        r = call("GET", "/healthz")
                        if r.status != 200:
                            raise AssertionError("healthz %r" % r)
                r = call("DELETE", path, headers=[("If-Match", '"%d"' % version)])
                if r.status != 204:
                    raise AssertionError("DELETE %r" % r)
                r = call("GET", path)
                if r.status != 404:
                    raise AssertionError("GET after DELETE %r" % r)

        errors = _run_threads(threads, worker)
        self.assertEqual(errors, [])
        self.assertEqual(chk.errors, [])
        self.assertEqual(errors_5xx(), before, "5xx answered during the load")


if __name__ == "__main__":
    harness.main()
