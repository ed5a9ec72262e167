#!/usr/bin/python3
"""Command line and configuration: --help, --version, bad values (exit 2
naming the variable), flags, the start-up log (effective configuration, no
password), migrate (idempotent, concurrent), and settings that change
behaviour."""

import concurrent.futures
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, Server, assert_problem  # noqa: E402

CONTRACT_VARS = harness.RINGLET_CONFIG_VARS  # the contract's and the implementation's


def flag_of(var):
    name = var[len("RINGLET_"):] if var.startswith("RINGLET_") else var
    return "--" + name.lower().replace("_", "-")


class CommandLine(harness.RingletTestCase):
    needs_db = False
    start_class_server = False

    def test_help(self):
        cp = harness.run_ringlet(["--help"], timeout=10)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        text = cp.stdout
        self.assertTrue(text.strip(), "--help prints to stdout")
        for var in CONTRACT_VARS:
            with self.subTest(var=var):
                self.assertRegex(text, r"(?<![A-Z_])%s(?![A-Z_])" % re.escape(var))
                self.assertIn(flag_of(var), text)
        for cmd in ("serve", "migrate"):
            self.assertIn(cmd, text)

    def test_version(self):
        cp = harness.run_ringlet(["--version"], timeout=10)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertRegex(cp.stdout, r"\b[0-9]+\.[0-9]+\.[0-9]+")
        self.assertLessEqual(len(cp.stdout.strip().splitlines()), 3)

    def test_bad_values_exit_2(self):
        cases = [
            ("RINGLET_DB_CONNECTIONS", "abc"), ("RINGLET_DB_CONNECTIONS", "0"),
            ("RINGLET_DB_CONNECTIONS", "-1"), ("RINGLET_DB_CONNECTIONS", "4x"),
            ("RINGLET_DB_CONNECTIONS", "99999999999999999999999"),
            ("RINGLET_LISTEN", "nonsense"), ("RINGLET_LISTEN", "127.0.0.1:99999"),
            ("RINGLET_LISTEN", "127.0.0.1:"), ("RINGLET_LISTEN", "127.0.0.1"),
            ("RINGLET_LISTEN", "300.1.1.1:8080"), ("RINGLET_LISTEN", "[::1:8080"),
            ("RINGLET_LOG_LEVEL", "loud"), ("RINGLET_LOG_FORMAT", "xml"),
            ("RINGLET_MAX_BODY_BYTES", "1e6"), ("RINGLET_MAX_BODY_BYTES", "-5"),
            ("RINGLET_MAX_BODY_BYTES", "1MB"),
            ("RINGLET_MAX_CONNECTIONS", "0"), ("RINGLET_MAX_CONNECTIONS", "many"),
            ("RINGLET_MAX_HEADER_BYTES", "abc"),
            ("RINGLET_REQUEST_TIMEOUT_MS", "abc"), ("RINGLET_REQUEST_TIMEOUT_MS", "5s"),
            ("RINGLET_IDLE_TIMEOUT_MS", "-1"), ("RINGLET_HEADER_TIMEOUT_MS", "1.5"),
            ("RINGLET_SHUTDOWN_GRACE_MS", "x"), ("RINGLET_DRAIN_DELAY_MS", "soon"),
            ("RINGLET_MAX_QUEUED", "-3"), ("RINGLET_REUSE_PORT", "maybe"),
            ("RINGLET_MIGRATE", "perhaps"), ("RINGLET_IO_URING", "fast"),
        ]

        def run(case):
            var, value = case
            env = {var: value}
            if var != "RINGLET_LISTEN":
                env["RINGLET_LISTEN"] = "127.0.0.1:%d" % harness.free_port()
            env.setdefault("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
            return case, harness.run_ringlet(["serve"], env=env, timeout=8,
                                             label="serve %s=%r" % (var, value))

        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            results = list(ex.map(run, cases))
        for (var, value), cp in results:
            with self.subTest(var=var, value=value):
                self.assertIsNotNone(cp.returncode, "%s=%r accepted: still running after 8 s"
                                     % (var, value))
                self.assertEqual(cp.returncode, 2, "%s=%r: exit %s, stderr %r"
                                 % (var, value, cp.returncode, cp.stderr))
                self.assertIn(var, cp.stderr)

    def test_bad_flags_exit_2(self):
        cases = [
            (["serve", "--no-such-flag"], ["--no-such-flag"]),
            (["serve", "--no-such-flag=1"], ["--no-such-flag"]),
            (["serve", "--db-connections=abc"], ["--db-connections", "RINGLET_DB_CONNECTIONS"]),
            (["serve", "--listen=nonsense"], ["--listen", "RINGLET_LISTEN"]),
            (["serve", "--log-level=loud"], ["--log-level", "RINGLET_LOG_LEVEL"]),
            (["serve", "--max-body-bytes"], ["--max-body-bytes"]),
            (["frobnicate"], ["frobnicate"]),
        ]

        def run(case):
            args, names = case
            env = {"RINGLET_LISTEN": "127.0.0.1:%d" % harness.free_port(),
                   "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
            return case, harness.run_ringlet(args, env=env, timeout=8)

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(run, cases))
        for (args, names), cp in results:
            with self.subTest(args=args):
                self.assertEqual(cp.returncode, 2, "exit %s, stderr %r" % (cp.returncode,
                                                                          cp.stderr))
                self.assertTrue(any(n in cp.stderr for n in names),
                                "stderr names none of %s: %r" % (names, cp.stderr))


class StartupLog(harness.RingletTestCase):
    start_class_server = False

    def start_and_stop(self, env, wait_ready=True, exercise=True):
        s = Server(env=env, name="startup-log %s" % self.id())
        try:
            s.start(wait_ready=wait_ready)
            if exercise:
                self.request("GET", "/healthz", port=s.port)
                self.request("GET", "/v1/items?limit=1", port=s.port, timeout=15)
                self.request("GET", "/v1/items/abc", port=s.port)
        finally:
            code = s.stop()
        self.assertEqual(code, 0, s.stderr_tail())
        return s

    def password_ok(self):
        # The test database must not need the password we put in the URL.
        return harness.urllib.parse.urlsplit(harness.database_url()).password is None

    def test_config_logged_password_never(self):
        url = harness.url_with_password(harness.database_url(), "s3cret")
        s = self.start_and_stop({"DATABASE_URL": url, "RINGLET_DB_CONNECTIONS": "3",
                                 "RINGLET_MAX_BODY_BYTES": "123457"},
                                wait_ready=self.password_ok())
        err = s.stderr()
        self.assertNotIn("s3cret", err)
        recs = s.log_records()
        for rec in recs:
            self.assertIsInstance(rec, dict, "a stderr line is not a JSON object: %r" % rec)
            self.assertIn("msg", rec, rec)
        listening = [r for r in recs if r.get("msg") == "listening"]
        self.assertEqual(len(listening), 1, "one \"listening\" record: %r" % recs[:10])
        # the effective configuration: some record carries the listen address,
        # the non-default body limit and the (redacted) database location
        port = harness.url_parts(harness.database_url())["port"]
        cfg = [line for line in err.splitlines()
               if "127.0.0.1:%d" % s.port in line and "123457" in line]
        self.assertTrue(cfg, "no start-up line with the effective configuration:\n%s"
                        % "\n".join(err.splitlines()[:10]))
        if port:
            self.assertTrue(any(str(port) in line for line in cfg),
                            "the database location is not in the configuration line")

    def test_password_keyword_form_and_query_form(self):
        p = harness.url_parts(harness.database_url())
        kv = "host=%s port=%s dbname=%s user=%s password=s3cret" % (
            p["host"] or "127.0.0.1", p["port"] or 5432, p["dbname"] or "postgres",
            p["user"] or "postgres")
        s = self.start_and_stop({"DATABASE_URL": kv}, wait_ready=self.password_ok())
        self.assertNotIn("s3cret", s.stderr())
        u = harness.database_url()
        q = u + ("&" if "?" in u else "?") + "password=s3cret"
        s = self.start_and_stop({"DATABASE_URL": q}, wait_ready=self.password_ok())
        self.assertNotIn("s3cret", s.stderr())

    def test_password_not_in_connection_errors(self):
        s = Server(env={"DATABASE_URL": "postgresql://bob:s3cret@127.0.0.1:1/db",
                        "RINGLET_LOG_LEVEL": "debug"}, name="unreachable db")
        s.start(wait_ready=False)
        try:
            r = self.request("GET", "/v1/items/1", port=s.port, timeout=15)
            assert_problem(self, r, 503)
            time.sleep(0.5)
        finally:
            code = s.stop()
        self.assertEqual(code, 0)
        self.assertNotIn("s3cret", s.stderr())

    def test_log_level_error_is_quiet(self):
        s = self.start_and_stop({"RINGLET_LOG_LEVEL": "error"})
        for rec in s.log_records():
            if isinstance(rec, dict):
                self.assertNotEqual(rec.get("msg"), "listening",
                                    "an info record at RINGLET_LOG_LEVEL=error")

    def test_log_format_text(self):
        s = self.start_and_stop({"RINGLET_LOG_FORMAT": "text"})
        self.assertIn("listening", s.stderr())


class Flags(harness.RingletTestCase):
    start_class_server = False

    def serve(self, args, env=None, port=None, listen=False, wait_ready=True):
        s = Server(env=env, args=args, name="flags %s" % args, port=port, listen=listen)
        s.start(wait_ready=wait_ready)
        self.addCleanup(lambda: self.assertEqual(s.stop(), 0, s.stderr_tail()))
        return s

    def test_listen_flag_forms(self):
        p = harness.free_port()
        s = self.serve(["serve", "--listen=127.0.0.1:%d" % p], port=p)
        self.assertEqual(self.request("GET", "/healthz", port=s.port).status, 200)
        p = harness.free_port()
        s = self.serve(["serve", "--listen", "127.0.0.1:%d" % p], port=p)
        self.assertEqual(self.request("GET", "/healthz", port=s.port).status, 200)

    def test_flag_wins_over_variable(self):
        p1, p2 = harness.free_port(), harness.free_port()
        s = self.serve(["serve", "--listen=127.0.0.1:%d" % p2],
                       env={"RINGLET_LISTEN": "127.0.0.1:%d" % p1}, port=p2)
        self.assertEqual(self.request("GET", "/healthz", port=p2).status, 200)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", p1), timeout=1).close()
        self.assertTrue(s.alive())

    def test_database_url_flag(self):
        p = harness.free_port()
        s = self.serve(["serve", "--listen=127.0.0.1:%d" % p,
                        "--database-url=%s" % harness.database_url()],
                       env={"DATABASE_URL": None}, port=p)
        item = self.create("flag", port=s.port)
        self.assertEqual(self.get_item(item["id"], port=s.port), item)

    def test_max_body_bytes_flag(self):
        p = harness.free_port()
        s = self.serve(["--listen=127.0.0.1:%d" % p, "--max-body-bytes=20"], port=p)
        r = self.request("POST", "/v1/items", {"name": "x" * 30}, port=s.port)
        assert_problem(self, r, 413)

    def test_ipv6_listen(self):
        try:
            t = socket.socket(socket.AF_INET6)
            t.bind(("::1", 0))
            p = t.getsockname()[1]
            t.close()
        except OSError:
            self.skipTest("no IPv6 loopback")
        s = Server(port=p, host="::1", name="ipv6")
        try:
            s.start()
            r = harness.simple_request(p, "GET", "/healthz", conn_host="::1",
                                       family=socket.AF_INET6)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json(), {"status": "ok"})
        finally:
            code = s.stop()
        self.assertEqual(code, 0, s.stderr_tail())

    def test_io_uring_compat(self):
        p = harness.free_port()
        s = self.serve(["serve"], env={"RINGLET_IO_URING": "compat",
                                       "RINGLET_LISTEN": "127.0.0.1:%d" % p}, port=p)
        item = self.create("compat", port=s.port)
        self.assertEqual(self.get_item(item["id"], port=s.port), item)

    def test_reuse_port_two_instances(self):
        p = harness.free_port()
        env = {"RINGLET_REUSE_PORT": "1", "RINGLET_LISTEN": "127.0.0.1:%d" % p}
        a = Server(env=env, port=p, listen=False, name="reuse-port a").start()
        self.addCleanup(a.kill)
        b = Server(env=env, port=p, listen=False, name="reuse-port b")
        self.addCleanup(b.kill)
        b.start(wait_listening=True)  # a answers /healthz on the shared port already
        for _ in range(10):
            self.assertEqual(self.request("GET", "/healthz", port=p).status, 200)
        self.assertTrue(a.alive() and b.alive())
        # with a gone, b alone serves the port
        self.assertEqual(a.stop(), 0, a.stderr_tail())
        for _ in range(10):
            self.assertEqual(self.request("GET", "/healthz", port=p).status, 200)
        self.assertEqual(b.stop(), 0, b.stderr_tail())

    def test_port_in_use_fails(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        p = blocker.getsockname()[1]
        try:
            cp = harness.run_ringlet(["serve"], env={"RINGLET_LISTEN": "127.0.0.1:%d" % p},
                                     timeout=10)
        finally:
            blocker.close()
        self.assertIsNotNone(cp.returncode, "ringlet kept running on a port in use")
        self.assertNotEqual(cp.returncode, 0)
        self.assertTrue(cp.stderr.strip())


class Limits(harness.RingletTestCase):
    start_class_server = False

    def test_max_header_bytes(self):
        s = self.start_server(env={"RINGLET_MAX_HEADER_BYTES": "2048"})
        with Conn(s.port) as c:
            c.request("GET", "/healthz", headers=[("X-Pad", "p" * 1000)])
            self.assertEqual(c.read_final().status, 200)
        with Conn(s.port) as c:
            c.request("GET", "/healthz", headers=[("X-Pad", "p" * 3000)])
            assert_problem(self, c.read_final(), 431)

    def test_max_connections(self):
        s = self.start_server(env={"RINGLET_MAX_CONNECTIONS": "2"})
        time.sleep(0.3)  # the start-up probes' connections are closed by now
        held = [Conn(s.port), Conn(s.port)]
        try:
            for c in held:
                c.request("GET", "/healthz")
                self.assertEqual(c.read_final().status, 200)
            # a third one is refused cleanly: closed, or a 503 then closed
            with Conn(s.port) as c:
                try:
                    c.request("GET", "/healthz")
                    r = c.read_final()
                    assert_problem(self, r, 503)
                    self.assertTrue(c.wait_eof(2))
                except (harness.ConnectionClosed, ConnectionResetError, BrokenPipeError):
                    pass
            # the held ones still work
            for c in held:
                c.request("GET", "/healthz")
                self.assertEqual(c.read_final().status, 200)
            held.pop().close()
            deadline = time.monotonic() + 3
            ok = False
            while time.monotonic() < deadline and not ok:
                try:
                    ok = self.request("GET", "/healthz", port=s.port).status == 200
                except (harness.ConnectionClosed, OSError):
                    time.sleep(0.05)
            self.assertTrue(ok, "no new connection accepted after one closed")
        finally:
            for c in held:
                c.close()

    def test_db_connections_pool_size(self):
        s = self.start_server(env={"RINGLET_DB_CONNECTIONS": "1"})
        self.create("pool1", port=s.port)
        fams = self.metrics(port=s.port)
        states = {l["state"]: v for _, l, v in fams["db_pool_connections"]["samples"]}
        self.assertLessEqual(sum(states.values()), 1, states)


class Migrate(harness.RingletTestCase):
    """Against a database of its own (created here, dropped at the end), so a
    fresh schema is really fresh and the shared one is never damaged."""
    start_class_server = False

    def fresh_db(self):
        name = "ringlet_it_%d_%d" % (os.getpid(), int(time.time() * 1000) % 10**9)
        try:
            harness.psql("CREATE DATABASE %s" % name)
        except AssertionError as e:
            self.skipTest("cannot create a database for this test: %s" % e)
        self.addCleanup(harness.psql, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
        u = harness.urllib.parse.urlsplit(harness.database_url())
        return harness.urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query,
                                                u.fragment))

    def columns(self, url):
        out = harness.psql("SELECT column_name || ':' || data_type FROM information_schema.columns"
                           " WHERE table_name = 'items' AND table_schema = current_schema()"
                           " ORDER BY ordinal_position", url=url)
        return out.split("\n")[:-1]

    EXPECTED = ["id:bigint", "name:text", "data:jsonb", "version:integer",
                "created_at:timestamp with time zone", "updated_at:timestamp with time zone"]

    def test_migrate_twice(self):
        url = self.fresh_db()
        for _ in range(2):
            cp = harness.migrate(env={"DATABASE_URL": url})
            self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(self.columns(url), self.EXPECTED)
        ident = harness.psql("SELECT is_identity || ':' || coalesce(identity_generation, '')"
                             " FROM information_schema.columns WHERE table_name = 'items'"
                             " AND column_name = 'id'", url=url).strip()
        self.assertEqual(ident, "YES:ALWAYS")

    def test_migrate_keeps_data(self):
        url = self.fresh_db()
        self.assertEqual(harness.migrate(env={"DATABASE_URL": url}).returncode, 0)
        harness.psql("INSERT INTO items (name) VALUES ('survivor')", url=url)
        self.assertEqual(harness.migrate(env={"DATABASE_URL": url}).returncode, 0)
        n = int(harness.psql("SELECT count(*) FROM items WHERE name = 'survivor'", url=url))
        self.assertEqual(n, 1)

    def test_concurrent_migrate_fresh_schema(self):
        url = self.fresh_db()
        with concurrent.futures.ThreadPoolExecutor(10) as ex:
            cps = list(ex.map(lambda _: harness.migrate(env={"DATABASE_URL": url}, timeout=60),
                              range(10)))
        for i, cp in enumerate(cps):
            with self.subTest(process=i):
                self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(self.columns(url), self.EXPECTED)

    def test_concurrent_migrate_shared_database(self):
        with concurrent.futures.ThreadPoolExecutor(10) as ex:
            cps = list(ex.map(lambda _: harness.migrate(timeout=60), range(10)))
        for i, cp in enumerate(cps):
            with self.subTest(process=i):
                self.assertEqual(cp.returncode, 0, cp.stderr)

    def test_migrate_unreachable_database(self):
        cp = harness.run_ringlet(["migrate"],
                                 env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
                                 timeout=60)
        self.assertIsNotNone(cp.returncode, "migrate hung on an unreachable database")
        self.assertNotEqual(cp.returncode, 0)
        self.assertTrue(cp.stderr.strip())

    def test_serve_with_migrate(self):
        url = self.fresh_db()
        s = self.start_server(env={"RINGLET_MIGRATE": "1", "DATABASE_URL": url})
        item = self.create("after-migrate", port=s.port)
        self.assertEqual(item["version"], 1)
        self.assertEqual(self.columns(url), self.EXPECTED)


if __name__ == "__main__":
    harness.main(require_db=False)
