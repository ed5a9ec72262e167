#!/usr/bin/python3
"""The database host given by name: ringlet looks it up on its ring (never
with libpq's blocking getaddrinfo) and connects to the address.

A small DNS server in this file answers on an unprivileged port
(RINGLET_TEST_DNS_PORT), with resolv.conf and hosts files of the test's own
(RINGLET_TEST_RESOLV_CONF, RINGLET_TEST_HOSTS). It can answer, say NXDOMAIN,
or stay silent, so the tests cover search lists, CNAMEs, /etc/hosts, a dead
DNS service (the loop keeps serving) and recovery."""

import os
import socket
import struct
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


def decode_name(msg, off):
    labels = []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode("ascii").lower())
        off += 1 + n
    return ".".join(labels), off + 1


def encode_name(name):
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


class FakeDNS:
    """A records and CNAMEs from a table; NXDOMAIN for other names; or silence."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.a = {}
        self.cname = {}
        self.silent = False
        self.queries = []  # (name, qtype)
        self.lock = threading.Lock()
        self.stopped = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def stop(self):
        self.stopped = True
        self.sock.close()

    def serve(self):
        while not self.stopped:
            try:
                msg, peer = self.sock.recvfrom(2048)
            except OSError:
                return
            try:
                self.answer(msg, peer)
            except (IndexError, UnicodeDecodeError, OSError):
                pass

    def answer(self, msg, peer):
        qid, flags, qd = struct.unpack("!HHH", msg[:6])
        name, off = decode_name(msg, 12)
        qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
        question = msg[12:off + 4]
        with self.lock:
            self.queries.append((name, qtype))
            if self.silent:
                return
            records = []
            target = name
            while target in self.cname:
                nxt = self.cname[target]
                records.append(encode_name(target) + struct.pack("!HHIH", 5, 1, 30, len(encode_name(nxt))) + encode_name(nxt))
                target = nxt
            known = target in self.a or name in self.cname
            if qtype == 1 and target in self.a:
                records.append(encode_name(target) + struct.pack("!HHIH", 1, 1, 30, 4) +
                               socket.inet_aton(self.a[target]))
        rcode = 0 if known else 3
        header = struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, len(records), 0, 0)
        self.sock.sendto(header + question + b"".join(records), peer)

    def seen(self):
        with self.lock:
            return list(self.queries)


class DnsCase(harness.RingletTestCase):
    start_class_server = False

    def setUp(self):
        super().setUp()
        self.dns = FakeDNS()
        self.addCleanup(self.dns.stop)
        self.dir = tempfile.TemporaryDirectory(prefix="ringlet-dns-")
        self.addCleanup(self.dir.cleanup)
        self.hosts = self.write("hosts", "127.0.0.1 localhost\n")
        self.url = urllib.parse.urlsplit(harness.database_url())

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def url_for(self, host):
        u = self.url
        netloc = "%s@%s:%d" % (u.username, host, u.port) if u.username else "%s:%d" % (host, u.port)
        return urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))

    def spawn(self, host, resolv, wait_ready=True, extra=None):
        env = {"DATABASE_URL": self.url_for(host),
               "RINGLET_TEST_RESOLV_CONF": self.write("resolv.conf", resolv),
               "RINGLET_TEST_HOSTS": self.hosts,
               "RINGLET_TEST_DNS_PORT": str(self.dns.port),
               "PGHOST": None, "PGHOSTADDR": None}
        env.update(extra or {})
        s = harness.Server(env=env, name=self.id())
        self.addCleanup(s.kill)
        s.start(wait_ready=wait_ready)
        return s

    def crud(self, s):
        r = harness.simple_request(s.port, "POST", "/v1/items", body={"name": "dns"})
        self.assertEqual(r.status, 201, r)
        item = r.json()
        r = harness.simple_request(s.port, "GET", "/v1/items/%d" % item["id"])
        self.assertEqual(r.status, 200, r)

    def stop_ok(self, s):
        self.assertEqual(s.stop(), 0, s.stderr_tail())


class Lookup(DnsCase):

    def test_name_resolved_by_dns(self):
        self.dns.a["db.ringlet.test"] = "127.0.0.1"
        s = self.spawn("db.ringlet.test", "nameserver 127.0.0.1\n")
        self.crud(s)
        self.assertIn(("db.ringlet.test", 1), self.dns.seen())
        self.stop_ok(s)

    def test_search_list_in_order(self):
        # a Kubernetes-like resolv.conf: a short name is tried with each
        # search domain first, in order, until one exists
        self.dns.a["db.ringlet.test"] = "127.0.0.1"
        s = self.spawn("db", "nameserver 127.0.0.1\nsearch ns.svc.cluster.local ringlet.test\n"
                       "options ndots:5\n")
        self.crud(s)
        names = [n for n, t in self.dns.seen() if t == 1]
        self.assertEqual(names[:2], ["db.ns.svc.cluster.local", "db.ringlet.test"])
        self.stop_ok(s)

    def test_cname_followed(self):
        self.dns.a["real.ringlet.test"] = "127.0.0.1"
        self.dns.cname["alias.ringlet.test"] = "real.ringlet.test"
        s = self.spawn("alias.ringlet.test", "nameserver 127.0.0.1\n")
        self.crud(s)
        self.stop_ok(s)

    def test_hosts_file_first(self):
        self.hosts = self.write("hosts", "# test\n127.0.0.1   pg.hosts.test  pg-alias\n")
        self.dns.silent = True
        s = self.spawn("PG-ALIAS", "nameserver 127.0.0.1\n")
        self.crud(s)
        self.assertEqual(self.dns.seen(), [], "asked DNS for a name in the hosts file")
        self.stop_ok(s)

    def test_every_address_tried(self):
        # Like libpq after getaddrinfo(): an address that refuses is skipped
        # for the next. Nothing listens on 127.0.0.2, so the connections that
        # start there (the pool spreads its starting points) must go on to
        # 127.0.0.1.
        self.hosts = self.write("hosts", "127.0.0.2 pg.multi.test\n127.0.0.1 pg.multi.test\n")
        s = self.spawn("pg.multi.test", "nameserver 127.0.0.1\n",
                       extra={"RINGLET_DB_CONNECTIONS": "4"})
        for _ in range(50):
            r = harness.simple_request(s.port, "GET", "/metrics")
            if 'db_pool_connections{state="idle"} 4' in r.text():
                break
            time.sleep(0.1)
        self.assertIn('db_pool_connections{state="idle"} 4', r.text())
        self.crud(s)
        self.stop_ok(s)

    def test_ip_address_needs_no_lookup(self):
        self.dns.silent = True
        s = self.spawn("127.0.0.1", "nameserver 127.0.0.1\n")
        self.crud(s)
        self.assertEqual(self.dns.seen(), [])
        self.stop_ok(s)


class Failures(DnsCase):

    def test_dns_down_loop_keeps_serving_then_recovers(self):
        # The DNS server says nothing: each lookup waits for its timeout.
        # Meanwhile the loop serves as usual: /healthz at once, /readyz and
        # the API 503. Once DNS answers, the pool connects by itself.
        self.dns.silent = True
        s = self.spawn("db.ringlet.test", "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
                       wait_ready=False)
        s.wait_healthy()
        worst = 0.0
        t_end = time.monotonic() + 2.5
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            r = harness.simple_request(s.port, "GET", "/healthz", timeout=2)
            worst = max(worst, time.monotonic() - t0)
            self.assertEqual(r.status, 200)
            r = harness.simple_request(s.port, "GET", "/readyz", timeout=2)
            self.assertEqual(r.status, 503)
            time.sleep(0.05)
        self.assertLess(worst, 0.5, "the loop stalled while DNS was silent")
        print("DNS silent: worst /healthz %.1f ms" % (worst * 1000))
        rec = s.wait_log(lambda r: "cannot resolve the database host" in str(r.get("error", "")))
        self.assertIsNotNone(rec, s.stderr_tail())
        self.assertIn("did not answer", rec["error"])
        r = harness.simple_request(s.port, "GET", "/v1/items/1")
        self.assertEqual(r.status, 503, r)
        self.assertTrue(r.has("Retry-After"), r)

        with self.dns.lock:
            self.dns.a["db.ringlet.test"] = "127.0.0.1"
            self.dns.silent = False
        t0 = time.monotonic()
        s.wait_ready(timeout=8)
        print("ready %.2f s after DNS came back" % (time.monotonic() - t0))
        self.crud(s)
        self.stop_ok(s)

    def test_nxdomain_reported_and_retried(self):
        s = self.spawn("nowhere.ringlet.test", "nameserver 127.0.0.1\n", wait_ready=False)
        s.wait_healthy()
        rec = s.wait_log(lambda r: "cannot resolve the database host" in str(r.get("error", "")))
        self.assertIsNotNone(rec, s.stderr_tail())
        self.assertIn("nowhere.ringlet.test", rec["error"])
        self.assertIn("NXDOMAIN", rec["error"])
        self.assertEqual(harness.simple_request(s.port, "GET", "/readyz").status, 503)
        # the name appears later (a Service created after the Deployment)
        with self.dns.lock:
            self.dns.a["nowhere.ringlet.test"] = "127.0.0.1"
        s.wait_ready(timeout=8)
        self.crud(s)
        self.stop_ok(s)


if __name__ == "__main__":
    harness.main()
