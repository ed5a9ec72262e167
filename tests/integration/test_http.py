#!/usr/bin/python3
"""HTTP/1.x behaviour of ringlet on raw sockets: keep-alive, close, HTTP/1.0,
pipelining, chunked bodies, Expect: 100-continue, malformed input, limits and
timeouts, clients that go away."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, assert_problem, check_common  # noqa: E402


def head(method, target, *headers, version="HTTP/1.1"):
    lines = ["%s %s %s" % (method, target, version)] + list(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class HttpTestCase(harness.RingletTestCase):

    def read(self, c, method="GET"):
        r = c.read_final(method)
        check_common(self, r)
        return r


class KeepAlive(HttpTestCase):

    def test_several_requests_one_socket(self):
        item = self.create("ka")
        with Conn(self.port) as c:
            for i in range(5):
                c.request("GET", "/v1/items/%d" % item["id"])
                r = self.read(c)
                self.assertEqual(r.status, 200)
                self.assertNotIn("close", r.connection_tokens())
                c.request("GET", "/healthz")
                self.assertEqual(self.read(c).status, 200)
                c.request("PUT", "/v1/items/%d" % item["id"], body={"name": "v%d" % i})
                self.assertEqual(self.read(c, "PUT").json()["version"], i + 2)
            # errors keep the connection too (they are not malformed HTTP)
            c.request("GET", "/nope")
            self.assertEqual(self.read(c).status, 404)
            c.request("POST", "/v1/items", body={"nme": "x"})
            self.assertEqual(self.read(c, "POST").status, 400)
            c.request("GET", "/healthz")
            self.assertEqual(self.read(c).status, 200)
            c.assert_quiet()

    def test_connection_close(self):
        with Conn(self.port) as c:
            c.request("GET", "/healthz", headers=[("Connection", "close")])
            r = self.read(c)
            self.assertEqual(r.status, 200)
            self.assertIn("close", r.connection_tokens())
            self.assertTrue(c.wait_eof(2), "the server kept the connection open")

    def test_connection_close_pipelined_second_ignored(self):
        with Conn(self.port) as c:
            c.send(head("GET", "/healthz", "Host: x", "Connection: close") +
                   head("GET", "/readyz", "Host: x"))
            r = self.read(c)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json(), {"status": "ok"})
            self.assertTrue(c.wait_eof(2), "a request after Connection: close was answered")

    def test_http10_default_close(self):
        with Conn(self.port) as c:
            c.send(head("GET", "/healthz", version="HTTP/1.0"))
            r = self.read(c)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json(), {"status": "ok"})
            self.assertNotIn("keep-alive", r.connection_tokens())
            self.assertTrue(c.wait_eof(2), "HTTP/1.0 connection kept open")

    def test_http10_keep_alive(self):
        item = self.create("ka10")
        with Conn(self.port) as c:
            for _ in range(3):
                c.send(head("GET", "/v1/items/%d" % item["id"], "Connection: keep-alive",
                            version="HTTP/1.0"))
                r = self.read(c)
                self.assertEqual(r.status, 200)
                self.assertIn("keep-alive", r.connection_tokens(), r.headers)
            c.assert_quiet()
            # the last one without keep-alive closes
            c.send(head("GET", "/healthz", version="HTTP/1.0"))
            self.assertEqual(self.read(c).status, 200)
            self.assertTrue(c.wait_eof(2))

    def test_http10_post(self):
        with Conn(self.port) as c:
            body = b'{"name":"ten"}'
            c.send(head("POST", "/v1/items", "Content-Type: application/json",
                        "Content-Length: %d" % len(body), version="HTTP/1.0") + body)
            r = self.read(c, "POST")
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["name"], "ten")
            self.assertTrue(c.wait_eof(2))


class Pipelining(HttpTestCase):

    def test_pipelined_mixed_in_order(self):
        item = self.create("pipe")
        p = "/v1/items/%d" % item["id"]
        body = b'{"name":"p1"}'
        put = b'{"name":"p2","data":{"x":1}}'
        data = (head("GET", p, "Host: x") +
                head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                     "Content-Length: %d" % len(body)) + body +
                head("GET", "/healthz", "Host: x") +
                head("HEAD", p, "Host: x") +
                head("PUT", p, "Host: x", "Content-Type: application/json",
                     "Content-Length: %d" % len(put)) + put +
                head("GET", "/nope", "Host: x") +
                head("GET", p, "Host: x"))
        methods = ["GET", "POST", "GET", "HEAD", "PUT", "GET", "GET"]
        with Conn(self.port) as c:
            c.send(data)
            rs = [c.read_final(m) for m in methods]
            c.assert_quiet()
        for r in rs:
            check_common(self, r)
        self.assertEqual([r.status for r in rs], [200, 201, 200, 200, 200, 404, 200])
        self.assertEqual(rs[0].json()["version"], 1)
        self.assertEqual(rs[1].json()["name"], "p1")
        self.assertEqual(rs[2].json(), {"status": "ok"})
        self.assertEqual(rs[3].get("ETag"), '"1"')
        self.assertEqual(rs[4].json()["version"], 2)
        self.assertEqual(rs[6].json()["name"], "p2")
        self.assertEqual(rs[6].get("ETag"), '"2"')

    def test_many_pipelined(self):
        n = 100
        with Conn(self.port) as c:
            c.send(b"".join(head("GET", "/healthz?i=%d" % i, "Host: x") for i in range(n)))
            for i in range(n):
                r = self.read(c)
                self.assertEqual(r.status, 200)
            c.assert_quiet()

    def test_pipelined_split_across_sends(self):
        item = self.create("split")
        data = b"".join(head("GET", "/v1/items/%d" % item["id"], "Host: x") for _ in range(4))
        with Conn(self.port) as c:
            for i in range(0, len(data), 7):
                c.send(data[i:i + 7])
                time.sleep(0.001)
            for _ in range(4):
                self.assertEqual(self.read(c).json(), item)


class Bodies(HttpTestCase):

    def test_chunked_body(self):
        with Conn(self.port) as c:
            c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                        "Transfer-Encoding: chunked"))
            parts = [b'{"name":', b'"chu', b'nked",', b'"data":{"k":"v"}}']
            for p in parts:
                time.sleep(0.02)
                c.send(b"%x\r\n" % len(p))
                time.sleep(0.01)
                c.send(p + b"\r\n")
            time.sleep(0.02)
            c.send(b"0\r\n\r\n")
            r = self.read(c, "POST")
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["name"], "chunked")
            self.assertEqual(r.json()["data"], {"k": "v"})
            # the connection continues after a chunked request
            c.request("GET", "/healthz")
            self.assertEqual(self.read(c).status, 200)

    def test_chunked_extensions_trailers_uppercase_hex(self):
        body = b'{"name":"' + b"x" * 40 + b'"}'
        with Conn(self.port) as c:
            c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                        "Transfer-Encoding: chunked") +
                   b"%X;ext=1\r\n%s\r\n" % (len(body[:30]), body[:30]) +
                   b"%X\r\n%s\r\n" % (len(body[30:]), body[30:]) +
                   b"0\r\nX-Trailer: t\r\n\r\n")
            r = self.read(c, "POST")
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["name"], "x" * 40)

    def test_bad_chunked_400(self):
        for bad in (b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcdef\r\n0\r\n\r\n",
                    b"-1\r\n\r\n"):
            with self.subTest(chunks=bad):
                with Conn(self.port) as c:
                    c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                                "Transfer-Encoding: chunked") + bad)
                    r = self.read(c, "POST")
                    assert_problem(self, r, 400)
                    self.assertTrue(c.wait_eof(2))

    def test_body_one_byte_at_a_time(self):
        body = b'{"name":"slow","data":{"a":[1,2,3]}}'
        data = head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                    "Content-Length: %d" % len(body)) + body
        with Conn(self.port) as c:
            c.send_slowly(data, piece=1, delay=0.001)
            r = self.read(c, "POST")
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["data"], {"a": [1, 2, 3]})

    def test_content_length_and_transfer_encoding(self):
        # RFC 9112 6.3: reject, or process as chunked and close afterwards.
        body = b"d\r\n{\"name\":\"te\"}\r\n0\r\n\r\n"
        with Conn(self.port) as c:
            c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                        "Content-Length: 4", "Transfer-Encoding: chunked") + body)
            r = self.read(c, "POST")
            self.assertIn(r.status, (400, 201), r)
            if r.status == 400:
                assert_problem(self, r, 400)
            self.assertTrue(c.wait_eof(2), "connection must be closed after CL+TE")

    def test_bad_content_length_400(self):
        for cl in (("Content-Length: -1",), ("Content-Length: abc",),
                   ("Content-Length: 5", "Content-Length: 6"), ("Content-Length: 1 2",),
                   ("Content-Length: 99999999999999999999999",)):
            with self.subTest(cl=cl):
                with Conn(self.port) as c:
                    c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                                *cl) + b'{"name":"x"}')
                    r = self.read(c, "POST")
                    self.assertIn(r.status, (400, 413), r)
                    assert_problem(self, r, r.status)
                    self.assertTrue(c.wait_eof(2))

    def test_coding_before_chunked_is_501(self):
        # RFC 9112 6.1: a transfer coding we do not implement is 501, never
        # a body decoded as if the coding were not there
        for te in ("gzip, chunked", "compress,chunked"):
            with self.subTest(te=te), Conn(self.port) as c:
                c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                            "Transfer-Encoding: " + te) + b'c\r\n{"name":"a"}\r\n0\r\n\r\n')
                assert_problem(self, self.read(c, "POST"), 501)

    def test_unknown_method_is_501(self):
        for m in ("FOO", "get", "QUERY"):
            with self.subTest(method=m), Conn(self.port) as c:
                c.send(head(m, "/v1/items", "Host: x"))
                assert_problem(self, self.read(c, m), 501)

    def test_invalid_host_value_is_400(self):
        for h in ("a b", "x/y", "a@b"):
            with self.subTest(host=h), Conn(self.port) as c:
                c.send(head("GET", "/healthz", "Host: " + h))
                assert_problem(self, self.read(c), 400)

    def test_unknown_transfer_encoding(self):
        with Conn(self.port) as c:
            c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                        "Transfer-Encoding: gzip") + b"xxxx")
            try:
                r = self.read(c, "POST")
            except harness.ConnectionClosed:
                return
            self.assertIn(r.status, (400, 501), r)
            assert_problem(self, r, r.status)


class ExpectContinue(HttpTestCase):

    def test_100_continue(self):
        body = b'{"name":"expect"}'
        with Conn(self.port) as c:
            c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                        "Content-Length: %d" % len(body), "Expect: 100-continue"))
            r = c.read_response("POST")
            self.assertEqual(r.status, 100, "expected 100 Continue before the body: %r" % r)
            self.assertTrue(r.raw_head.startswith(b"HTTP/1.1 100 "), r.raw_head)
            self.assertIsNone(r.body)
            c.assert_quiet(0.1)
            c.send(body)
            r = self.read(c, "POST")
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.json()["name"], "expect")
            # and the connection goes on
            c.request("GET", "/healthz")
            self.assertEqual(self.read(c).status, 200)

    def test_100_continue_put_and_chunked(self):
        item = self.create("e")
        body = b'{"name":"expect2"}'
        with Conn(self.port) as c:
            c.send(head("PUT", "/v1/items/%d" % item["id"], "Host: x",
                        "Content-Type: application/json", "Transfer-Encoding: chunked",
                        "Expect: 100-continue"))
            r = c.read_response("PUT")
            self.assertEqual(r.status, 100, r)
            c.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
            r = self.read(c, "PUT")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["version"], 2)

    def assert_immediate(self, status, *hdrs, method="POST", target="/v1/items", then_close=False):
        with Conn(self.port) as c:
            c.send(head(method, target, "Host: x", "Expect: 100-continue", *hdrs))
            r = c.read_response(method)
            self.assertNotEqual(r.status, 100, "100 Continue for a request that will fail with"
                                " %d" % status)
            check_common(self, r)
            assert_problem(self, r, status)
            return c

    def test_too_large_413_without_100(self):
        self.assert_immediate(413, "Content-Type: application/json", "Content-Length: 2000000")

    def test_wrong_content_type_415_without_100(self):
        self.assert_immediate(415, "Content-Type: text/plain", "Content-Length: 10")

    def test_unknown_path_404_without_100(self):
        self.assert_immediate(404, "Content-Type: application/json", "Content-Length: 10",
                              target="/nope")

    def test_wrong_method_405_without_100(self):
        self.assert_immediate(405, "Content-Type: application/json", "Content-Length: 10",
                              method="POST", target="/healthz")

    def test_bad_id_400_without_100(self):
        self.assert_immediate(400, "Content-Type: application/json", "Content-Length: 10",
                              method="PUT", target="/v1/items/abc")

    def test_expect_then_body_sent_anyway(self):
        # A client may send the body without waiting for 100 (RFC 9110 10.1.1).
        body = b'{"name":"eager"}'
        with Conn(self.port) as c:
            c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                        "Content-Length: %d" % len(body), "Expect: 100-continue") + body)
            r = self.read(c, "POST")
            self.assertEqual(r.status, 201, r)
            c.request("GET", "/healthz")
            self.assertEqual(self.read(c).status, 200)


class Malformed(HttpTestCase):

    def assert_400_closed(self, data, status=400):
        with Conn(self.port) as c:
            c.send(data)
            r = self.read(c)
            assert_problem(self, r, status)
            self.assertTrue(c.wait_eof(2), "connection left open after malformed request")

    def test_missing_host_400(self):
        self.assert_400_closed(head("GET", "/healthz"))

    def test_two_hosts_400(self):
        self.assert_400_closed(head("GET", "/healthz", "Host: a", "Host: b"))

    def test_absolute_form(self):
        with Conn(self.port) as c:
            c.send(head("GET", "http://x/healthz", "Host: x"))
            r = self.read(c)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), {"status": "ok"})
            item = self.create("abs")
            c.send(head("GET", "http://127.0.0.1:%d/v1/items/%d" % (self.port, item["id"]),
                        "Host: 127.0.0.1"))
            r = self.read(c)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json(), item)
            c.send(head("GET", "http://x/v1/items?limit=1", "Host: x"))
            self.assertEqual(self.read(c).status, 200)

    def test_malformed_request_lines(self):
        cases = [
            b"GARBAGE\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /healthz http/1.1\r\nHost: x\r\n\r\n",
            b"GET /healthz HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            b"GET /hea lthz HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nNoColon\r\nHost: x\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX(): y\r\n\r\n",
            b"GET /he\x7flthz HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(32)) + b"\r\n\r\n",
            b"\x00\x01\x02\x03\xff\xfe\r\n\r\n",
        ]
        for data in cases:
            with self.subTest(data=data[:40]):
                self.assert_400_closed(data)
        self.assert_alive()

    def test_reject_or_tolerate(self):
        # RFC 9110 5.5 / 9112 5.2: NUL in a value and obs-fold may be rejected
        # (400) or replaced by SP; HTTP/0.9-style lines may get 400 or 505.
        cases = [
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", (200, 400)),
            (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n", (200, 400)),
            (b"GET /healthz HTTP/1.1\r\nX-A: a\r\n : x\r\nHost: x\r\n\r\n", (200, 400)),
            (b"GET /healthz\r\nHost: x\r\n\r\n", (400, 505)),
            (b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n", (400, 505)),
            (b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n", (200, 400, 505)),
        ]
        for data, allowed in cases:
            with self.subTest(data=data[:40]):
                with Conn(self.port) as c:
                    c.send(data)
                    try:
                        r = self.read(c)
                    except harness.ConnectionClosed:
                        continue
                    self.assertIn(r.status, allowed, r)
                    if r.status >= 400:
                        assert_problem(self, r, r.status)
        self.assert_alive()

    def test_garbage_after_good_request(self):
        with Conn(self.port) as c:
            c.send(head("GET", "/healthz", "Host: x") + b"\x00\x01garbage\r\n\r\n")
            r = self.read(c)
            self.assertEqual(r.status, 200)
            r = self.read(c)
            assert_problem(self, r, 400)
            self.assertTrue(c.wait_eof(2))

    def test_random_garbage_never_crashes(self):
        import random
        rnd = random.Random(1234)
        for i in range(200):
            n = rnd.randint(1, 600)
            data = bytes(rnd.getrandbits(8) for _ in range(n))
            if i % 3 == 0:
                data = head("POST", "/v1/items", "Host: x", "Content-Length: %d" % n) + data
            with Conn(self.port) as c:
                try:
                    c.send(data + b"\r\n\r\n")
                    c.sock.shutdown(socket.SHUT_WR)
                    while c._fill(timeout=5):
                        pass
                except (ConnectionResetError, BrokenPipeError):
                    pass
        self.assert_alive()

    def test_header_section_just_under_limit_ok(self):
        hdrs = ["X-F%d: %s" % (i, "v" * 90) for i in range(140)]  # ~13.5 KiB
        with Conn(self.port) as c:
            c.send(head("GET", "/healthz", "Host: x", *hdrs))
            r = self.read(c)
            self.assertEqual(r.status, 200, r)

    def test_oversized_header_431(self):
        with Conn(self.port) as c:
            c.send(head("GET", "/healthz", "Host: x", "X-Big: " + "a" * 17000))
            r = self.read(c)
            assert_problem(self, r, 431)
            self.assertTrue(c.wait_eof(2))

    def test_many_headers_431(self):
        hdrs = ["X-F%d: %s" % (i, "v" * 100) for i in range(200)]  # ~22 KiB
        with Conn(self.port) as c:
            c.send(head("GET", "/healthz", "Host: x", *hdrs))
            r = self.read(c)
            assert_problem(self, r, 431)
            self.assertTrue(c.wait_eof(2))

    def test_oversized_request_line(self):
        with Conn(self.port) as c:
            c.send(head("GET", "/healthz?" + "q" * 20000, "Host: x"))
            r = self.read(c)
            assert_problem(self, r, 414)
            self.assertTrue(c.wait_eof(2))

    def test_endless_header_section(self):
        # a client that keeps sending header lines never gets the server to
        # buffer more than the limit
        with Conn(self.port) as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            sent = 0
            try:
                while sent < 200000:
                    c.send(b"X-Y: " + b"z" * 1000 + b"\r\n")
                    sent += 1007
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                r = self.read(c)
                assert_problem(self, r, 431)
            except harness.ConnectionClosed:
                pass  # reset after the 431: acceptable here
        self.assert_alive()

    def test_unsupported_expect_417(self):
        with Conn(self.port) as c:
            c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                        "Content-Length: 12", "Expect: teapot") + b'{"name":"x"}')
            r = c.read_response("POST")
            self.assertNotEqual(r.status, 100)
            # RFC 9110 10.1.1: MAY answer 417; ignoring the expectation is allowed too
            self.assertIn(r.status, (417, 400, 201), r)
            if r.status == 201:
                return
            check_common(self, r)
            assert_problem(self, r, r.status)


class Disconnects(HttpTestCase):

    def test_disconnect_mid_head(self):
        for _ in range(20):
            with Conn(self.port) as c:
                c.send(b"GET /healthz HTTP/1.1\r\nHo")
        self.assert_alive()

    def test_disconnect_mid_body(self):
        for abort in (False, True):
            for _ in range(10):
                c = Conn(self.port)
                c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                            "Content-Length: 100") + b'{"name":')
                c.abort() if abort else c.close()
        self.assert_alive()

    def test_disconnect_before_response(self):
        # the request reaches the database; the client is gone when it answers
        item = self.create("gone")
        for abort in (False, True):
            for _ in range(20):
                c = Conn(self.port)
                c.send(head("PUT", "/v1/items/%d" % item["id"], "Host: x",
                            "Content-Type: application/json", "Content-Length: 12") +
                       b'{"name":"z"}')
                c.abort() if abort else c.close()
        time.sleep(0.2)
        self.assert_alive()
        self.assertEqual(self.get_item(item["id"])["name"], "z")

    def test_disconnect_mid_response(self):
        harness.psql("INSERT INTO items (name, data) SELECT 'big' || g, jsonb_build_object("
                     "'pad', repeat('x', 2000)) FROM generate_series(1, 1000) g")
        for abort in (False, True):
            for _ in range(5):
                c = Conn(self.port)
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                c.send(b"".join(head("GET", "/v1/items?limit=1000", "Host: x")
                                for _ in range(3)))
                c.sock.recv(1000)
                time.sleep(0.05)
                c.abort() if abort else c.close()
        time.sleep(0.2)
        self.assert_alive()
        r = self.request("GET", "/v1/items?limit=1000", timeout=20)
        self.assertEqual(r.status, 200)

    def test_half_close_after_request(self):
        # A client that shuts down its sending side after the request gets the
        # answer or a clean close (the contract leaves it open), never a hang.
        for _ in range(10):
            with Conn(self.port) as c:
                c.send(head("GET", "/healthz", "Host: x"))
                c.sock.shutdown(socket.SHUT_WR)
                try:
                    r = self.read(c)
                    self.assertEqual(r.status, 200)
                    self.assertTrue(c.wait_eof(3))
                except harness.ConnectionClosed:
                    pass
        self.assert_alive()

    def test_many_connections(self):
        conns = []
        try:
            for _ in range(300):
                conns.append(Conn(self.port))
            for c in conns:
                c.send(head("GET", "/healthz", "Host: x"))
            for c in conns:
                self.assertEqual(self.read(c).status, 200)
        finally:
            for c in conns:
                c.close()
        for i in range(300):
            c = Conn(self.port)
            if i % 2:
                c.abort()
            else:
                c.close()
        self.assert_alive()
        deadline = time.monotonic() + 3
        while True:
            fds = len(os.listdir("/proc/%d/fd" % self.server.pid))
            if fds < 60 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertLess(fds, 60, "file descriptors leaked: %d open" % fds)


class Timeouts(HttpTestCase):
    server_env = {"RINGLET_IDLE_TIMEOUT_MS": "500", "RINGLET_HEADER_TIMEOUT_MS": "500",
                  "RINGLET_REQUEST_TIMEOUT_MS": "2000"}

    def wait_closed(self, c, lo, hi, allow=(408,)):
        """Wait for a close (optionally after a 408); returns the elapsed time."""
        t0 = time.monotonic()
        c.sock.settimeout(hi + 2)
        try:
            r = c.read_final()
            check_common(self, r)
            self.assertIn(r.status, allow, r)
            assert_problem(self, r, r.status)
            self.assertTrue(c.wait_eof(2))
        except harness.ConnectionClosed:
            pass
        except socket.timeout:
            self.fail("connection still open after %.1f s" % (hi + 2))
        el = time.monotonic() - t0
        self.assertGreaterEqual(el, lo, "closed too early")
        self.assertLess(el, hi, "closed too late")
        return el

    def test_idle_keep_alive_closed(self):
        with Conn(self.port) as c:
            c.request("GET", "/healthz")
            self.assertEqual(self.read(c).status, 200)
            t0 = time.monotonic()
            self.assertTrue(c.wait_eof(5), "idle connection not closed")
            el = time.monotonic() - t0
            self.assertGreater(el, 0.35)
            self.assertLess(el, 2.5)

    def test_activity_keeps_connection(self):
        with Conn(self.port) as c:
            for _ in range(5):
                c.request("GET", "/healthz")
                self.assertEqual(self.read(c).status, 200)
                time.sleep(0.3)
            c.request("GET", "/healthz")
            self.assertEqual(self.read(c).status, 200)

    def test_silent_connection_closed(self):
        with Conn(self.port) as c:
            self.wait_closed(c, 0.35, 2.5)

    def test_header_timeout_partial_head(self):
        with Conn(self.port) as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            self.wait_closed(c, 0.35, 2.5)

    def test_slowloris_header_timeout(self):
        # trickling header bytes does not extend the header deadline
        with Conn(self.port) as c:
            c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            t0 = time.monotonic()
            closed = False
            while time.monotonic() - t0 < 4:
                try:
                    c.send(b"X-A: b\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                try:
                    if not c._fill(timeout=0.1):
                        closed = True
                        break
                except socket.timeout:
                    pass
                if b"\r\n\r\n" in c.buf:
                    r = c.read_final()
                    self.assertEqual(r.status, 408, r)
                    closed = True
                    break
            self.assertTrue(closed, "trickled head kept the connection open for 4 s")
            self.assertLess(time.monotonic() - t0, 2.5)

    def test_body_timeout(self):
        with Conn(self.port) as c:
            c.send(head("POST", "/v1/items", "Host: x", "Content-Type: application/json",
                        "Content-Length: 100") + b'{"name":"')
            self.wait_closed(c, 0.35, 4.5)
        self.assert_alive()


class Alive(HttpTestCase):

    def test_server_alive_and_healthy_at_end(self):
        self.assert_alive()
        self.assertEqual(self.request("GET", "/readyz").status, 200)


if __name__ == "__main__":
    harness.main()
