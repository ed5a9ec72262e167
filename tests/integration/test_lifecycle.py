#!/usr/bin/python3
"""Process lifecycle of ringlet: graceful shutdown on SIGTERM/SIGINT (drain
delay, in-flight requests, keep-alive connections, grace time, second
signal), a restart under load with SO_REUSEPORT, connection limits (max
connections, EMFILE) and the start-up failure when io_uring is unavailable."""

import os
import resource
import signal
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


class LifecycleCase(harness.RingletTestCase):
    start_class_server = False

    def spawn(self, env=None, wait_ready=True, name=None, port=None, wait_listening=False,
              server_class=harness.Server):
        s = server_class(env=env, name=name or self.id(), port=port)
        self.addCleanup(s.kill)
        s.start(wait_ready=wait_ready, wait_listening=wait_listening)
        return s

    def wait_exit(self, s, timeout):
        """Wait for the process to exit; (status, seconds waited)."""
        t0 = time.monotonic()
        try:
            s.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            s.kill()
            self.fail("ringlet did not exit within %.1f s:\n%s" % (timeout, s.stderr_tail()))
        el = time.monotonic() - t0
        s.stop()  # records its stderr
        return s.proc.returncode, el

    def records(self, s, level=None, msg=None):
        return [r for r in s.log_records() if isinstance(r, dict) and
                (level is None or r.get("level") == level) and
                (msg is None or r.get("msg") == msg)]

    def create_item(self, port, name="lifecycle"):
        r = harness.simple_request(port, "POST", "/v1/items", body={"name": name})
        self.assertEqual(r.status, 201, r)
        return r.json()


# ---------------------------------------------------------------------------


class Shutdown(LifecycleCase):

    def test_sigterm_drain_in_flight_and_keep_alive(self):
        drain = 1.0
        s = self.spawn({"RINGLET_DRAIN_DELAY_MS": str(int(drain * 1000)),
                        "RINGLET_SHUTDOWN_GRACE_MS": "8000",
                        "RINGLET_REQUEST_TIMEOUT_MS": "6000"})
        item = self.create_item(s.port)
        idle = Conn(s.port)
        self.addCleanup(idle.close)
        idle.request("GET", "/healthz")
        r = idle.read_final()
        self.assertEqual(r.status, 200)
        self.assertNotIn("close", r.connection_tokens())

        lock = harness.TableLock(self, 2.5)
        busy = Conn(s.port, timeout=10)
        self.addCleanup(busy.close)
        busy.request("GET", "/v1/items/%d" % item["id"])
        time.sleep(0.15)  # the query waits on the lock now

        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)

        # /readyz turns 503 at once
        ready = None
        while time.monotonic() - t0 < 0.3:
            ready = harness.simple_request(s.port, "GET", "/readyz", timeout=2)
            if ready.status == 503:
                break
            time.sleep(0.01)
        t_ready = time.monotonic() - t0
        assert_problem(self, ready, 503)
        self.assertTrue(ready.has("Retry-After"), ready)
        print("readyz turned 503 %.3f s after SIGTERM" % t_ready)

        # during the drain delay: new connections are served, and so is the
        # idle keep-alive connection
        time.sleep(0.1)
        r = harness.simple_request(s.port, "GET", "/healthz", timeout=2)
        self.assertEqual(r.status, 200, r)
        self.assertLess(time.monotonic() - t0, drain - 0.2, "test too slow for the drain delay")
        idle.request("GET", "/healthz")
        r = idle.read_final()
        check_common(self, r)
        self.assertEqual(r.status, 200, r)
        if "close" in r.connection_tokens():
            self.assertTrue(idle.wait_eof(2))
            idle.close()
        else:
            # idle keep-alive connections are closed when the drain delay ends
            self.assertTrue(idle.wait_eof(drain + 2), "idle keep-alive connection not closed")
            t_idle = time.monotonic() - t0
            self.assertGreater(t_idle, drain - 0.15, "idle connection closed before drain end")
            idle.close()  # the server may linger until our FIN
            print("idle keep-alive connection closed %.3f s after SIGTERM" % t_idle)

        # then the listener stops: connect refused
        refused_at = None
        while time.monotonic() - t0 < drain + 1.5:
            try:
                with socket.create_connection(("127.0.0.1", s.port), timeout=1):
                    pass
            except ConnectionRefusedError:
                refused_at = time.monotonic() - t0
                break
            time.sleep(0.02)
        self.assertIsNotNone(refused_at, "still accepting %.1f s after SIGTERM" % (drain + 1.5))
        self.assertGreater(refused_at, drain - 0.15)
        print("connect refused %.3f s after SIGTERM (drain delay %.1f s)" % (refused_at, drain))
        self.assertLess(time.monotonic(), lock.released_at - 0.2, "lock released too early")
        self.assertTrue(s.alive(), "exited with a request in flight:\n%s" % s.stderr_tail())

        # the request in flight completes, with Connection: close
        r = busy.read_final()
        check_common(self, r)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["id"], item["id"])
        self.assertIn("close", r.connection_tokens(), r)
        self.assertTrue(busy.wait_eof(2))
        busy.close()
        t_done = time.monotonic() - t0
        code, el = self.wait_exit(s, 3)
        self.assertEqual(code, 0, s.stderr_tail())
        self.assertLess(el, 1.0, "no exit once the last connection was gone")
        print("in-flight request answered %.3f s after SIGTERM; exit 0 %.3f s after the last "
              "connection closed" % (t_done, el))
        self.assertTrue(self.records(s, msg="shutting down: readiness off, draining"))
        self.assertEqual(self.records(s, level="error"), [])

    def test_sigint_idle_exits_0(self):
        s = self.spawn()
        with Conn(s.port) as c:
            c.request("GET", "/healthz")
            self.assertEqual(c.read_final().status, 200)
            s.send_signal(signal.SIGINT)
            self.assertTrue(c.wait_eof(3), "idle keep-alive connection not closed on SIGINT")
        code, el = self.wait_exit(s, 3)
        self.assertEqual(code, 0, s.stderr_tail())
        self.assertLess(el, 2)

    def test_grace_over_client_mid_body(self):
        grace = 0.7
        s = self.spawn({"RINGLET_SHUTDOWN_GRACE_MS": str(int(grace * 1000)),
                        "RINGLET_HEADER_TIMEOUT_MS": "20000"})
        c = Conn(s.port)
        self.addCleanup(c.close)
        c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                    "Content-Length: 100") + b'{"name":"half')
        time.sleep(0.1)
        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)
        code, _ = self.wait_exit(s, 5)
        el = time.monotonic() - t0
        self.assertEqual(code, 1, s.stderr_tail())
        self.assertGreater(el, grace - 0.1)
        self.assertLess(el, grace + 1.0)
        print("client mid-body: exit 1 %.3f s after SIGTERM (grace %.1f s)" % (el, grace))
        recs = self.records(s, level="error", msg="shutdown grace time over; cutting connections")
        self.assertTrue(recs, s.stderr_tail())

    def test_resets_mid_request_do_not_hold_the_exit(self):
        # Clients that reset in the middle of a request are gone: a drain must
        # not wait for them. This storm once left a connection behind in about
        # one CI run in five: Linux 6.18's multishot receive can miss a reset
        # racing its first completion (docs/kernels.md), and the drain then
        # waited for the header timeout and exited 1. The drain now asks such
        # sockets directly; a live client mid-body is still waited for
        # (test_grace_over_client_mid_body).
        s = self.spawn({"RINGLET_SHUTDOWN_GRACE_MS": "4000",
                        "RINGLET_HEADER_TIMEOUT_MS": "30000"})
        partial = head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                       "Content-Length: 100") + b'{"name":'
        linger0 = __import__("struct").pack("ii", 1, 0)

        def storm(n):
            for i in range(n):
                sock = socket.create_connection(("127.0.0.1", s.port))
                try:
                    sock.sendall(partial[:len(partial) - (i % 3) * 20])
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
                finally:
                    sock.close()

        threads = [threading.Thread(target=storm, args=(750,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(harness.simple_request(s.port, "GET", "/healthz").status, 200)
        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)
        code, _ = self.wait_exit(s, 6)
        el = time.monotonic() - t0
        self.assertEqual(code, 0, s.stderr_tail())
        self.assertLess(el, 2.0, "reset connections held the exit")
        self.assertEqual(self.records(s, level="error"), [])
        print("3000 resets mid-request, then SIGTERM: exit 0 %.3f s later" % el)

    def test_grace_over_slow_query(self):
        grace = 0.6
        s = self.spawn({"RINGLET_SHUTDOWN_GRACE_MS": str(int(grace * 1000)),
                        "RINGLET_REQUEST_TIMEOUT_MS": "10000"})
        item = self.create_item(s.port)
        harness.TableLock(self, 2.5)
        c = Conn(s.port, timeout=5)
        self.addCleanup(c.close)
        c.request("GET", "/v1/items/%d" % item["id"])
        time.sleep(0.15)
        t0 = time.monotonic()
        s.send_signal(signal.SIGTERM)
        code, _ = self.wait_exit(s, 5)
        el = time.monotonic() - t0
        self.assertEqual(code, 1, s.stderr_tail())
        self.assertGreater(el, grace - 0.1)
        self.assertLess(el, grace + 1.0)
        print("slow query: exit 1 %.3f s after SIGTERM (grace %.1f s)" % (el, grace))
        self.assertTrue(self.records(s, level="error",
                                     msg="shutdown grace time over; cutting connections"))
        # the client sees a close, never half a response
        try:
            r = c.read_final()
            check_common(self, r)
        except harness.ConnectionClosed:
            pass

    def test_second_signal_exits_at_once(self):
        s = self.spawn({"RINGLET_SHUTDOWN_GRACE_MS": "10000",
                        "RINGLET_HEADER_TIMEOUT_MS": "20000"})
        c = Conn(s.port)
        self.addCleanup(c.close)
        c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                    "Content-Length: 100") + b'{"name":"half')
        time.sleep(0.1)
        s.send_signal(signal.SIGTERM)
        time.sleep(0.4)
        self.assertTrue(s.alive(), "exited on the first signal with a client mid-body")
        t0 = time.monotonic()
        s.send_signal(signal.SIGINT)
        code, _ = self.wait_exit(s, 5)
        el = time.monotonic() - t0
        self.assertEqual(code, 1, s.stderr_tail())
        self.assertLess(el, 0.5, "second signal did not exit at once")
        print("second signal: exit 1 %.3f s later" % el)


# ---------------------------------------------------------------------------


class LoadLoop:
    """Threads doing keep-alive GET /v1/items/{id} and POST /v1/items,
    reconnecting whenever the server closes. A request is a failure when it
    gets no 2xx; a connection closed under a request is a failure unless
    the server had announced the close (then the client never reuses it)."""

    def __init__(self, port, item_id, threads=4):
        self.port = port
        self.item_id = item_id
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []  # (time, description)
        self.connects = 0
        self.announced_closes = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def fail(self, what):
        with self.lock:
            self.failures.append((time.monotonic(), what))

    def run(self, n):
        conn = None
        i = 0
        while not self.stop.is_set():
            if conn is None:
                try:
                    conn = Conn(self.port, timeout=5)
                    with self.lock:
                        self.connects += 1
                except OSError as e:
                    self.fail("connect: %r" % e)
                    time.sleep(0.01)
                    continue
            i += 1
            if i % 2:
                method, target, body = "GET", "/v1/items/%d" % self.item_id, None
            else:
                method, target, body = "POST", "/v1/items", {"name": "load-%d-%d" % (n, i)}
            try:
                conn.request(method, target, body=body)
                r = conn.read_final(method)
            except (OSError, harness.ProtocolError) as e:
                self.fail("%s %s: %r" % (method, target, e))
                conn.close()
                conn = None
                continue
            if 200 <= r.status < 300:
                with self.lock:
                    self.ok += 1
            else:
                self.fail("%s %s: %d %r" % (method, target, r.status, r.body[:200]))
            if "close" in r.connection_tokens():
                with self.lock:
                    self.announced_closes += 1
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(10)


class ReusePort(LifecycleCase):

    def test_restart_under_load(self):
        env = {"RINGLET_REUSE_PORT": "1", "RINGLET_DRAIN_DELAY_MS": "1000",
               "RINGLET_SHUTDOWN_GRACE_MS": "6000"}
        a = self.spawn(env, name="reuseport A", wait_listening=True)
        item = self.create_item(a.port, "reuse")
        load = LoadLoop(a.port, item["id"])
        self.addCleanup(load.join)
        t0 = time.monotonic()
        load.start()
        time.sleep(1.5)
        b = self.spawn(env, name="reuseport B", port=a.port, wait_listening=True)
        time.sleep(0.5)
        t_term = time.monotonic()
        a.send_signal(signal.SIGTERM)
        code_a, el_a = self.wait_exit(a, 6)
        t_exit = time.monotonic()
        while time.monotonic() - t0 < 6.0:
            time.sleep(0.05)
        load.join()
        fams = self.metrics(port=b.port)
        served_b = sum(v for name, ls, v in fams.get("http_requests_total", {}).get("samples", [])
                       if ls.get("route") in ("/v1/items", "/v1/items/{id}"))
        failures = ["%.3f s after SIGTERM: %s" % (t - t_term, w) for t, w in load.failures]
        print("handover under load: %d requests ok, %d failed, %d connections, %d announced "
              "closes; B served %d item requests; A exited %s %.3f s after SIGTERM"
              % (load.ok, len(load.failures), load.connects, load.announced_closes,
                 served_b, code_a, t_exit - t_term))
        for f in failures[:20]:
            print("  failure:", f)
        self.assertEqual(code_a, 0, a.stderr_tail())
        self.assertEqual(failures, [], "requests failed during the handover")
        self.assertGreater(load.ok, 100)
        self.assertGreater(served_b, 0, "process B served nothing")
        code_b = b.stop()
        self.assertEqual(code_b, 0, b.stderr_tail())


# ---------------------------------------------------------------------------


class Limits(LifecycleCase):

    def test_max_connections(self):
        s = self.spawn({"RINGLET_MAX_CONNECTIONS": "5"})
        conns = []
        for _ in range(5):
            c = Conn(s.port)
            self.addCleanup(c.close)
            c.request("GET", "/healthz")
            self.assertEqual(c.read_final().status, 200)
            conns.append(c)
        with Conn(s.port, timeout=3) as extra:
            r = extra.read_final()
            assert_problem(self, r, 503)
            self.assertEqual(r.get("Retry-After"), "1", r)
            self.assertIn("close", r.connection_tokens(), r)
            self.assertTrue(extra.wait_eof(2), "refused connection not closed")
        # the 5 are still served
        for c in conns:
            c.request("GET", "/healthz")
            self.assertEqual(c.read_final().status, 200)
        conns.pop().close()
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < 3:
            with Conn(s.port, timeout=3) as c:
                c.request("GET", "/healthz")
                last = c.read_final()
                if last.status == 200:
                    break
            time.sleep(0.02)
        self.assertEqual(last.status, 200, "no new connection served after one closed: %r"
                         % last)
        print("max connections: a new connection served %.3f s after one closed"
              % (time.monotonic() - t0))
        for c in conns:
            c.close()
        self.assertEqual(s.stop(), 0, s.stderr_tail())

    def test_emfile_no_spin(self):
        class LowFdServer(harness.Server):
            def start(self, *a, **kw):
                real = subprocess.Popen

                def popen(*pa, **pk):
                    pk["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                                  (64, 64))
                    return real(*pa, **pk)

                subprocess.Popen = popen
                try:
                    return super().start(*a, **kw)
                finally:
                    subprocess.Popen = real

        s = self.spawn({"RINGLET_MAX_CONNECTIONS": "1000", "RINGLET_HEADER_TIMEOUT_MS": "30000",
                        "RINGLET_IDLE_TIMEOUT_MS": "30000"}, server_class=LowFdServer)
        with open("/proc/%d/limits" % s.pid) as f:
            self.assertRegex(f.read(), r"Max open files\s+64\s+64")
        conns = []
        try:
            for _ in range(100):
                c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
                conns.append(c)
            time.sleep(0.3)
            fds = len(os.listdir("/proc/%d/fd" % s.pid))
            cpu0 = harness.proc_cpu_ticks(s.pid)
            time.sleep(2.0)
            cpu = (harness.proc_cpu_ticks(s.pid) - cpu0) / os.sysconf("SC_CLK_TCK")
            print("EMFILE: %d fds open in ringlet, %.2f s CPU over 2 s with excess connections "
                  "waiting" % (fds, cpu))
            self.assertGreaterEqual(fds, 60, "the fd limit was not reached")
            self.assertLess(cpu, 0.3, "ringlet spins at EMFILE")
            self.assertTrue(s.alive())
        finally:
            for c in conns:
                c.close()
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < 5:
            try:
                last = harness.simple_request(s.port, "GET", "/healthz", timeout=2)
                if last.status == 200:
                    break
            except (OSError, harness.ProtocolError) as e:
                last = e
            time.sleep(0.05)
        self.assertIsInstance(last, harness.Response, last)
        self.assertEqual(last.status, 200)
        print("EMFILE: served again %.3f s after the clients closed" % (time.monotonic() - t0))
        r = harness.simple_request(s.port, "POST", "/v1/items", body={"name": "after-emfile"})
        self.assertEqual(r.status, 201, r)
        self.assertEqual(s.stop(), 0, s.stderr_tail())


# ---------------------------------------------------------------------------


class IoUringUnavailable(LifecycleCase):

    def run_serve(self, prefix, env=None):
        e = harness.base_env(dict({"RINGLET_LISTEN": "127.0.0.1:%d" % harness.free_port()},
                                  **(env or {})))
        t0 = time.monotonic()
        p = subprocess.Popen(prefix + [harness.ringlet_bin(), "serve"], env=e,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            out, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            harness.record_log("%s serve (killed)" % prefix, err.decode("utf-8", "replace"))
            self.fail("ringlet kept running without io_uring")
        el = time.monotonic() - t0
        err = err.decode("utf-8", "replace")
        harness.record_log("%s serve (exit %s)" % (prefix, p.returncode), err)
        return p.returncode, el, err + out.decode("utf-8", "replace")

    def noring(self):
        n = os.environ.get("RINGLET_NORING")
        if not n or not os.path.isfile(n) or not os.access(n, os.X_OK):
            self.skipTest("RINGLET_NORING is not set or not executable")
        return n

    def check_eperm(self, code, el, err):
        self.assertEqual(code, 1, err)
        self.assertLess(el, 5)
        self.assertIn("io_uring", err)
        self.assertIn("kernel.io_uring_disabled", err)
        self.assertTrue("manifests/seccomp/ringlet.json" in err or "sysctl" in err, err)

    def test_seccomp_enosys(self):
        code, el, err = self.run_serve([self.noring(), "ENOSYS"])
        self.assertEqual(code, 1, err)
        self.assertLess(el, 5)
        self.assertIn("io_uring", err)
        self.assertIn("seccomp", err)
        self.assertIn("manifests/seccomp/ringlet.json", err)

    def test_seccomp_eperm(self):
        self.check_eperm(*self.run_serve([self.noring(), "EPERM"]))

    def test_injected_eperm(self):
        self.check_eperm(*self.run_serve([], {"RINGLET_TEST_IO_URING_FAIL": "EPERM"}))


if __name__ == "__main__":
    harness.main()
