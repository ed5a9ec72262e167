#!/usr/bin/python3
"""Faults around ringlet: PostgreSQL restarted, backends killed, database
down at start-up, a slow database (request deadline, statement cancelled
server-side), backpressure, slow and vanishing clients (header, body and
idle timeouts, slowloris)."""

import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, assert_problem, check_common  # noqa: E402


def head(method, target, *headers, version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, target, version)] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def pgdir():
    return os.environ.get("RINGLET_TEST_PGDIR") or None


def pg_ctl(cmd, timeout=120):
    """scripts/pg CMD $RINGLET_TEST_PGDIR."""
    script = os.path.join(harness.SOURCE_DIR, "scripts", "pg")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    cp = subprocess.run([script, cmd, pgdir()], capture_output=True, text=True,
                        timeout=timeout, env=env)
    if cp.returncode != 0:
        raise AssertionError("scripts/pg %s failed (%d):\n%s" % (cmd, cp.returncode, cp.stderr))
    return cp.stdout


# The servers these tests start tag their database connections with this
# application_name, so terminating "ringlet's backends" or counting its queries
# never touches another ringlet that shares the database.
APP_NAME = "ringlet-faults-%d" % os.getpid()


def tagged_url():
    url = harness.database_url() or ""
    return url + ("&" if "?" in url else "?") + "application_name=" + APP_NAME


class FaultCase(harness.RingletTestCase):
    start_class_server = False

    def spawn(self, env=None, wait_ready=True, name=None):
        env = dict(env or {})
        env.setdefault("DATABASE_URL", tagged_url())
        s = harness.Server(env=env, name=name or self.id())
        s.start(wait_ready=wait_ready)

        def stop():
            code = s.stop()
            self.assertEqual(code, 0, "ringlet exited with %s:\n%s" % (code, s.stderr_tail()))

        self.addCleanup(stop)
        return s

    def need_pgdir(self):
        if not pgdir():
            self.skipTest("RINGLET_TEST_PGDIR not set (scripts/pg directory of the database)")
        # whatever happens, the database is running again (same port) afterwards
        self.addCleanup(pg_ctl, "start")

    def create_item(self, port, name="fault"):
        r = harness.simple_request(port, "POST", "/v1/items", body={"name": name})
        self.assertEqual(r.status, 201, r)
        return r.json()

    def metric(self, port, name, **labels):
        return harness.metric_value(self.metrics(port=port), name, **labels)

    def assert_unavailable(self, r, allow_504=False):
        """503 problem with Retry-After (504 too when a request was in flight)."""
        self.assertIn(r.status, (503, 504) if allow_504 else (503,), r)
        assert_problem(self, r, r.status)
        if r.status == 503:
            self.assertTrue(r.has("Retry-After"), "503 without Retry-After: %r" % r)


# ---------------------------------------------------------------------------


class DatabaseLoss(FaultCase):

    def probe_loop(self, port, item_id, stop, out):
        """Every ~50 ms: the item, /healthz and /readyz, each on a new connection."""
        while not stop.is_set():
            for kind, target in (("item", "/v1/items/%d" % item_id), ("healthz", "/healthz"),
                                 ("readyz", "/readyz")):
                t = time.monotonic()
                try:
                    r = harness.simple_request(port, "GET", target, timeout=10)
                except (OSError, harness.ProtocolError) as e:
                    r = e
                out.append((kind, t, time.monotonic(), r))
            time.sleep(0.05)

    def test_postgres_restart(self):
        self.need_pgdir()
        s = self.spawn({"RINGLET_REQUEST_TIMEOUT_MS": "2000"})
        item = self.create_item(s.port)
        stop = threading.Event()
        samples = []
        th = threading.Thread(target=self.probe_loop, args=(s.port, item["id"], stop, samples),
                              daemon=True)
        self.addCleanup(th.join, 15)
        self.addCleanup(stop.set)
        th.start()
        time.sleep(0.3)
        t_down = time.monotonic()
        pg_ctl("restart")
        t_up = time.monotonic()
        # until the item is served again after the restart, at most 8 s
        while time.monotonic() - t_up < 8:
            if any(k == "item" and t0 > t_up and isinstance(r, harness.Response) and
                   r.status == 200 for k, t0, t1, r in list(samples)):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        th.join(15)
        self.assertTrue(s.alive(), "ringlet exited when PostgreSQL restarted:\n%s"
                        % s.stderr_tail())

        items = [x for x in samples if x[0] == "item"]
        bad = [x for x in items if not (isinstance(x[3], harness.Response) and
                                        x[3].status == 200)]
        for kind, t0, t1, r in samples:
            with self.subTest(kind=kind, at=round(t0 - t_down, 3)):
                self.assertIsInstance(r, harness.Response, "no answer: %r" % r)
                check_common(self, r)
                if kind == "healthz":
                    self.assertEqual(r.status, 200, r)
                elif kind == "readyz":
                    if r.status != 200:
                        assert_problem(self, r, 503)
                        self.assertTrue(r.has("Retry-After"), r)
                elif r.status != 200:
                    self.assert_unavailable(r, allow_504=True)
        self.assertTrue(bad, "no request failed while PostgreSQL restarted (restart too quick "
                        "to observe?)")
        self.assertTrue(any(k == "readyz" and isinstance(r, harness.Response) and
                            r.status == 503 for k, t0, t1, r in samples),
                        "/readyz never turned 503 while PostgreSQL was down")
        first_bad, last_bad = bad[0][1], bad[-1][2]
        recovered = [t1 for k, t0, t1, r in items if t0 > last_bad]
        self.assertTrue(recovered, "the item was never served again after the restart")
        recovery = max(0.0, recovered[0] - t_up)
        print("PostgreSQL restart took %.2f s; item requests failed for %.2f s (%d of %d: %s); "
              "service back %.2f s after PostgreSQL was up"
              % (t_up - t_down, last_bad - first_bad, len(bad), len(items),
                 sorted({getattr(x[3], "status", "exc") for x in bad}), recovery))
        self.assertLess(recovery, 5.0, "service did not resume within 5 s of PostgreSQL")
        r = harness.simple_request(s.port, "POST", "/v1/items", body={"name": "after-restart"})
        self.assertEqual(r.status, 201, r)

    def wait_idle_pool(self, port, size, timeout=5.0):
        t0 = time.monotonic()
        idle = None
        while time.monotonic() - t0 < timeout:
            idle = self.metric(port, "db_pool_connections", state="idle")
            if idle == size:
                return time.monotonic() - t0
            time.sleep(0.05)
        self.fail("db_pool_connections{state=\"idle\"} is %s, not %d, after %.0f s"
                  % (idle, size, timeout))

    def terminate_backends(self):
        out = harness.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           "WHERE application_name = '%s'" % APP_NAME)
        return out.split().count("t")

    def test_backends_terminated_under_load(self):
        size = 3
        s = self.spawn({"RINGLET_DB_CONNECTIONS": str(size), "RINGLET_REQUEST_TIMEOUT_MS": "3000"})
        item = self.create_item(s.port)
        self.wait_idle_pool(s.port, size)

        # under load: reads always succeed, a write may get a 503
        stop = threading.Event()
        results = {"GET": [], "POST": []}  # (time, response or exception)

        def loop(method):
            c = None
            while not stop.is_set():
                try:
                    if c is None:
                        c = Conn(s.port, timeout=10)
                    if method == "GET":
                        c.request("GET", "/v1/items/%d" % item["id"])
                    else:
                        c.request("POST", "/v1/items", body={"name": "kill"})
                    r = c.read_final(method)
                    if "close" in r.connection_tokens():
                        c.close()
                        c = None
                except (OSError, harness.ProtocolError) as e:
                    r = e
                    if c is not None:
                        c.close()
                    c = None
                results[method].append((time.monotonic(), r))
            if c is not None:
                c.close()

        ths = [threading.Thread(target=loop, args=(m,), daemon=True) for m in ("GET", "POST")]
        self.addCleanup(lambda: [t.join(15) for t in ths])
        self.addCleanup(stop.set)
        for t in ths:
            t.start()
        killed = 0
        kills = []
        for _ in range(2):
            time.sleep(0.5)
            kills.append(time.monotonic())
            killed += self.terminate_backends()
        time.sleep(1.0)
        stop.set()
        for t in ths:
            t.join(15)

        def describe(rs, ok):
            bad = [(t, r) for t, r in rs if not (isinstance(r, harness.Response) and
                                                 r.status == ok)]
            kinds = sorted({str(getattr(r, "status", type(r).__name__)) for _, r in bad})
            span = ("from %+.3f s to %+.3f s around the first termination"
                    % (bad[0][0] - kills[0], bad[-1][0] - kills[0])) if bad else ""
            return bad, "%d of %d failed %s %s" % (len(bad), len(rs), kinds, span)

        bad_reads, rdesc = describe(results["GET"], 200)
        bad_writes, wdesc = describe(results["POST"], 201)
        print("backends terminated under load (%d killed, at %s s): reads: %s; writes: %s"
              % (killed, ["%+.3f" % (k - kills[0]) for k in kills], rdesc, wdesc))
        el = self.wait_idle_pool(s.port, size)
        print("pool back to %d idle connections %.2f s after the load" % (size, el))
        self.assertEqual(self.metric(s.port, "db_pool_connections", state="broken"), 0)

        self.assertGreaterEqual(killed, size)
        self.assertEqual(len(bad_reads), 0, "reads failed after the backends were terminated: "
                         "%s; first: %r" % (rdesc, bad_reads[:1]))
        for _, r in bad_writes:
            self.assertIsInstance(r, harness.Response, "no answer to a write: %r" % r)
            self.assert_unavailable(r)
        # One writer thread has at most one write in flight, and each killed
        # backend can take at most that one down with it: the backends of a
        # termination die one after another, so a write retried by the client
        # can meet the next one. More 503s than killed backends would mean
        # writes failing for another reason.
        self.assertLessEqual(len(bad_writes), killed,
                             "more 503s than backends terminated: " + wdesc)
        self.assertGreater(len(results["GET"]), 20)
        self.assertGreater(len(results["POST"]) - len(bad_writes), 5)

    def test_backends_terminated_idle(self):
        # idle pool: every backend terminated, then requests at once
        size = 3
        s = self.spawn({"RINGLET_DB_CONNECTIONS": str(size), "RINGLET_REQUEST_TIMEOUT_MS": "3000"})
        item = self.create_item(s.port)
        self.wait_idle_pool(s.port, size)
        killed = self.terminate_backends()
        self.assertEqual(killed, size)
        statuses = []
        t0 = time.monotonic()
        for _ in range(10):
            r = harness.simple_request(s.port, "GET", "/v1/items/%d" % item["id"], timeout=10)
            statuses.append((round(time.monotonic() - t0, 3), r.status))
        print("reads right after every backend was terminated: (s, status) %s" % statuses)
        el = self.wait_idle_pool(s.port, size)
        print("pool back to %d idle connections %.2f s after the reads" % (size, el))
        r = harness.simple_request(s.port, "POST", "/v1/items", body={"name": "after-kill"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(self.metric(s.port, "db_pool_connections", state="broken"), 0)
        self.assertEqual([st for _, st in statuses], [200] * 10,
                         "reads after the backends were terminated")

    def test_database_down_at_start(self):
        self.need_pgdir()
        pg_ctl("stop")
        s = self.spawn(wait_ready=False)
        time.sleep(0.3)
        r = harness.simple_request(s.port, "GET", "/healthz")
        self.assertEqual(r.status, 200, r)
        r = harness.simple_request(s.port, "GET", "/readyz")
        assert_problem(self, r, 503)
        self.assertTrue(r.has("Retry-After"), r)
        r = harness.simple_request(s.port, "GET", "/v1/items/1", timeout=10)
        self.assert_unavailable(r)
        r = harness.simple_request(s.port, "POST", "/v1/items", body={"name": "x"}, timeout=10)
        self.assert_unavailable(r)
        pg_ctl("start")
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < 5:
            last = harness.simple_request(s.port, "GET", "/readyz")
            if last.status == 200:
                break
            time.sleep(0.05)
        el = time.monotonic() - t0
        self.assertEqual(last.status, 200, "/readyz still %r 5 s after PostgreSQL started" % last)
        print("database down at start-up: ready %.2f s after PostgreSQL started" % el)
        r = harness.simple_request(s.port, "GET", "/v1/items/1")
        self.assertIn(r.status, (200, 404), r)
        self.create_item(s.port)


# ---------------------------------------------------------------------------


class SlowDatabase(FaultCase):

    def ringlet_active(self, older_than="1 second"):
        return int(harness.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' AND "
            "state = 'active' AND query_start < now() - interval '%s'"
            % (APP_NAME, older_than)).strip())

    def test_request_deadline_cancels_statement(self):
        s = self.spawn({"RINGLET_REQUEST_TIMEOUT_MS": "500"})
        item = self.create_item(s.port)
        lock = harness.TableLock(self, 3)
        t0 = time.monotonic()
        r = harness.simple_request(s.port, "GET", "/v1/items/%d" % item["id"], timeout=5)
        el = time.monotonic() - t0
        assert_problem(self, r, 504)
        print("request deadline 0.5 s: 504 after %.3f s" % el)
        self.assertGreater(el, 0.4)
        self.assertLess(el, 1.5)
        # the statement is cancelled in PostgreSQL too, while the lock is still held
        time.sleep(1.2)
        self.assertLess(time.monotonic(), lock.released_at - 0.3, "lock released too early")
        waiting = int(harness.psql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s' AND "
            "wait_event_type = 'Lock'" % APP_NAME).strip())
        self.assertEqual(waiting, 0, "a ringlet query still waits on the lock 1.7 s after its "
                         "deadline of 0.5 s")
        self.assertEqual(self.ringlet_active(), 0)
        # after the lock: nothing left running, normal service on the same process
        time.sleep(max(0, lock.released_at - time.monotonic()) + 0.2)
        lock.wait()
        self.assertEqual(self.ringlet_active(), 0)
        for _ in range(5):
            r = harness.simple_request(s.port, "GET", "/v1/items/%d" % item["id"])
            self.assertEqual(r.status, 200, r)
        r = harness.simple_request(s.port, "GET", "/v1/items/%d" % (item["id"] + 10 ** 9))
        self.assertEqual(r.status, 404, r)
        self.assertGreaterEqual(self.metric(s.port, "db_queries_total", statement="item_get",
                                            outcome="timeout"), 1)

    def test_backpressure(self):
        n = 70
        s = self.spawn({"RINGLET_DB_CONNECTIONS": "1", "RINGLET_MAX_QUEUED": "2",
                        "RINGLET_REQUEST_TIMEOUT_MS": "3000"})
        item = self.create_item(s.port)
        conns = [Conn(s.port, timeout=10) for _ in range(n)]
        for c in conns:
            self.addCleanup(c.close)
        # every connection is accepted before the burst
        for c in conns:
            c.request("GET", "/healthz")
            self.assertEqual(c.read_final().status, 200)
        lock = harness.TableLock(self, 1.5)
        results = [None] * n
        barrier = threading.Barrier(n)

        def one(i):
            c = conns[i]
            barrier.wait()
            t0 = time.monotonic()
            try:
                c.request("GET", "/v1/items/%d" % item["id"])
                r = c.read_final()
            except (OSError, harness.ProtocolError) as e:
                r = e
            results[i] = (t0, time.monotonic(), r)

        ths = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
        for t in ths:
            t.start()
        for t in ths:
            t.join(15)
        by = {}
        for t0, t1, r in results:
            self.assertIsInstance(r, harness.Response, "no answer: %r" % (r,))
            check_common(self, r)
            by.setdefault(r.status, []).append(t1 - t0)
        summary = {st: (len(v), round(min(v), 3), round(max(v), 3)) for st, v in by.items()}
        print("backpressure, %d concurrent GETs, 1 connection x 64 + 2 queued: "
              "{status: (count, fastest s, slowest s)} = %s; lock released %.2f s after the burst"
              % (n, summary, lock.released_at - min(x[0] for x in results)))
        self.assertEqual(set(by) - {200, 503, 504}, set(), summary)
        fast = by.get(503, [])
        self.assertEqual(len(fast), n - 66, "expected %d requests over the limit to get 503"
                         % (n - 66))
        self.assertLess(max(fast), 0.5, "503 over the limit was not immediate")
        for t0, t1, r in results:
            if r.status == 503:
                assert_problem(self, r, 503)
                self.assertTrue(r.has("Retry-After"), r)
            elif r.status == 504:
                assert_problem(self, r, 504)
                self.assertGreater(t1 - t0, 2.5)
            else:
                self.assertGreater(t1, lock.granted_at + 1.3, "200 while the lock was held")
        self.assertTrue(s.alive())
        r = harness.simple_request(s.port, "GET", "/v1/items/%d" % item["id"])
        self.assertEqual(r.status, 200, r)


# ---------------------------------------------------------------------------


class SlowClients(FaultCase):
    env = {"RINGLET_HEADER_TIMEOUT_MS": "1000", "RINGLET_IDLE_TIMEOUT_MS": "800"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.shared = harness.Server(env=cls.env, name=cls.__name__).start()

    @classmethod
    def tearDownClass(cls):
        code = cls.shared.stop()
        if code != 0:
            raise AssertionError("ringlet exited with %s:\n%s" % (code, cls.shared.stderr_tail()))

    def wait_cut(self, c, limit):
        """Wait until the server answers 408 and closes, or just closes; the
        seconds it took."""
        t0 = time.monotonic()
        c.sock.settimeout(limit + 2)
        try:
            r = c.read_final()
            assert_problem(self, r, 408)
            self.assertTrue(c.wait_eof(2))
        except harness.ConnectionClosed:
            pass
        except socket.timeout:
            self.fail("connection still open after %.1f s" % (limit + 2))
        return time.monotonic() - t0

    def test_slowloris_head(self):
        port = self.shared.port
        with Conn(port) as c:
            data = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
            t0 = time.monotonic()
            cut = None
            for i in range(len(data)):
                try:
                    c.send(data[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    cut = "send failed"
                    break
                try:
                    if not c._fill(timeout=0.3):
                        cut = "closed"
                        break
                except socket.timeout:
                    continue
                r = c.read_final()
                assert_problem(self, r, 408)
                cut = "408"
                break
            el = time.monotonic() - t0
            self.assertIsNotNone(cut, "a byte every 300 ms kept the head open for %.1f s" % el)
            print("slowloris (1 byte / 300 ms, header timeout 1 s): cut after %.2f s (%s)"
                  % (el, cut))
            self.assertGreater(el, 0.8)
            self.assertLess(el, 2.0)
        self.assertEqual(harness.simple_request(port, "GET", "/healthz").status, 200)

    def test_partial_head(self):
        with Conn(self.shared.port) as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHo")
            el = self.wait_cut(c, 2.0)
        print("partial head: cut after %.2f s" % el)
        self.assertGreater(el, 0.8)
        self.assertLess(el, 2.0)

    def test_body_stops(self):
        with Conn(self.shared.port) as c:
            c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                        "Content-Length: 100") + b'{"name":"')
            el = self.wait_cut(c, 2.5)
        print("body stopped mid-way: cut after %.2f s" % el)
        self.assertGreater(el, 0.8)
        self.assertLess(el, 2.5)

    def test_idle_keep_alive(self):
        with Conn(self.shared.port) as c:
            c.request("GET", "/healthz")
            self.assertEqual(c.read_final().status, 200)
            t0 = time.monotonic()
            self.assertTrue(c.wait_eof(3), "idle keep-alive connection not closed")
            el = time.monotonic() - t0
        print("idle keep-alive (0.8 s): closed after %.2f s" % el)
        self.assertGreater(el, 0.6)
        self.assertLess(el, 1.8)


class VanishingClients(FaultCase):

    def client_gauge_settles(self, port, want=1, timeout=3.0):
        """Seconds until ringlet_client_connections equals `want` (the
        metrics connection itself), scraped on fresh connections."""
        t0 = time.monotonic()
        v = None
        while time.monotonic() - t0 < timeout:
            v = self.metric(port, "ringlet_client_connections")
            if v == want:
                return time.monotonic() - t0
            time.sleep(0.05)
        self.fail("ringlet_client_connections is %s, not %d, %.0f s after the clients left"
                  % (v, want, timeout))

    def test_clients_vanish(self):
        s = self.spawn()
        # mid-body
        for abort in (False, True):
            for _ in range(10):
                c = Conn(s.port)
                c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                            "Content-Length: 200") + b'{"name":"half')
                time.sleep(0.01)
                c.abort() if abort else c.close()
        el = self.client_gauge_settles(s.port)
        print("vanished mid-body: client gauge back to 1 after %.2f s" % el)
        self.assertLess(el, 1.0)

        # mid-response: a big page, a tiny receive buffer, gone after 1 KB
        first = int(harness.psql(
            "WITH ins AS (INSERT INTO items (name, data) SELECT 'vanish' || g, "
            "jsonb_build_object('pad', repeat('x', 2000)) FROM generate_series(1, 200) g "
            "RETURNING id) SELECT min(id) FROM ins").strip())
        target = "/v1/items?limit=1000&after=%d" % (first - 1)
        for abort in (False, True):
            for _ in range(5):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
                sock.settimeout(5)
                sock.connect(("127.0.0.1", s.port))
                sock.sendall(head("GET", target, "Host: x"))
                got = sock.recv(1024)
                self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:100])
                time.sleep(0.05)
                if abort:
                    import struct
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        el = self.client_gauge_settles(s.port)
        print("vanished mid-response: client gauge back to 1 after %.2f s" % el)
        self.assertLess(el, 1.0)
        r = harness.simple_request(s.port, "GET", target, timeout=20)
        self.assertEqual(r.status, 200)
        page = r.json()
        self.assertGreaterEqual(len(page["items"]), 200)
        self.assertEqual(harness.simple_request(s.port, "GET", "/readyz").status, 200)


if __name__ == "__main__":
    harness.main()
