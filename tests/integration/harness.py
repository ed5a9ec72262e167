"""
Black-box integration test harness for ringlet.

Starts the real binary against a real PostgreSQL and talks raw HTTP/1.1 over
sockets. Standard library only; run with Debian's /usr/bin/python3.

Environment:
  RINGLET_BIN                 the ringlet binary (ctest sets it; default:
                              <repo>/build/ringlet)
  RINGLET_SOURCE_DIR          the repository root (default: derived from this file)
  RINGLET_TEST_DATABASE_URL   libpq URI of the test database; unset or
                              unreachable -> exit 77 (skipped)
  RINGLET_TEST_PGDIR          scripts/pg directory of that database (fault tests)
  RINGLET_TEST_VERBOSE=1      relay every server log line, not a digest

Every test file ends with harness.main(), which checks the environment, runs
`ringlet migrate` once, runs the tests, then relays the stderr of every
ringlet process it started to its own stderr (so sanitizer reports reach
ctest's FAIL_REGULAR_EXPRESSION), and exits 0, 1 or 77.
"""

import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

EXIT_SKIP = 77

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("RINGLET_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))

# Every environment variable of the service (contract + implementation);
# inherited values are dropped so that a developer's shell cannot change a test.
RINGLET_CONFIG_VARS = [
    "RINGLET_LISTEN",
    "DATABASE_URL",
    "RINGLET_DB_CONNECTIONS",
    "RINGLET_MAX_CONNECTIONS",
    "RINGLET_MAX_BODY_BYTES",
    "RINGLET_MAX_HEADER_BYTES",
    "RINGLET_REQUEST_TIMEOUT_MS",
    "RINGLET_IDLE_TIMEOUT_MS",
    "RINGLET_HEADER_TIMEOUT_MS",
    "RINGLET_SHUTDOWN_GRACE_MS",
    "RINGLET_DRAIN_DELAY_MS",
    "RINGLET_MAX_QUEUED",
    "RINGLET_LOG_FORMAT",
    "RINGLET_LOG_LEVEL",
    "RINGLET_REUSE_PORT",
    "RINGLET_MIGRATE",
    "RINGLET_IO_URING",
]
# The harness's own variables, kept in the child's environment.
_HARNESS_VARS = {
    "RINGLET_BIN",
    "RINGLET_SOURCE_DIR",
    "RINGLET_TEST_DATABASE_URL",
    "RINGLET_TEST_PGDIR",
    "RINGLET_BUILD_ROOT",
    "RINGLET_TEST_VERBOSE",
}


class Skip(Exception):
    pass


# ---------------------------------------------------------------------------
# environment


def ringlet_bin():
    b = os.environ.get("RINGLET_BIN")
    if b:
        return b
    cand = os.path.join(SOURCE_DIR, "build", "ringlet")
    return cand


def database_url():
    return os.environ.get("RINGLET_TEST_DATABASE_URL") or None


def psql_path():
    p = shutil.which("psql")
    if p:
        return p
    for d in sorted(os.listdir("/usr/lib/postgresql"), reverse=True) if os.path.isdir(
            "/usr/lib/postgresql") else []:
        cand = os.path.join("/usr/lib/postgresql", d, "bin", "psql")
        if os.access(cand, os.X_OK):
            return cand
    return None


def _clean_pg_env(env):
    # psql gets the database from the URL alone.
    for k in list(env):
        if k.startswith("PG"):
            del env[k]
    return env


def psql(sql, url=None, check=True, timeout=60):
    """Run SQL with psql; return stdout (unaligned, tuples only)."""
    url = url or database_url()
    p = psql_path()
    if not p:
        raise Skip("psql not found")
    cp = subprocess.run([p, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                        capture_output=True, text=True, timeout=timeout,
                        env=_clean_pg_env(dict(os.environ)))
    if check and cp.returncode != 0:
        raise AssertionError("psql failed (%d): %s\n%s" % (cp.returncode, sql, cp.stderr))
    return cp.stdout


def database_reachable(url):
    p = psql_path()
    if p:
        try:
            cp = subprocess.run([p, "-X", "-At", "-d", url, "-c", "select 1"],
                                capture_output=True, text=True, timeout=15,
                                env=_clean_pg_env(dict(os.environ)))
        except subprocess.TimeoutExpired:
            return False, "psql timed out"
        if cp.returncode == 0 and cp.stdout.strip() == "1":
            return True, ""
        return False, cp.stderr.strip()
    # No psql: a TCP connect to the URI's host and port.
    u = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((u.hostname or "127.0.0.1", u.port or 5432), timeout=5):
            return True, ""
    except OSError as e:
        return False, str(e)


def url_with_password(url, password):
    """The URI with user:password in its userinfo."""
    u = urllib.parse.urlsplit(url)
    user = u.username or os.environ.get("USER", "postgres")
    host = u.hostname or ""
    if ":" in host:
        host = "[%s]" % host
    netloc = "%s:%s@%s" % (urllib.parse.quote(user, safe=""), password, host)
    if u.port:
        netloc += ":%d" % u.port
    return urllib.parse.urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))


def url_parts(url):
    u = urllib.parse.urlsplit(url)
    return {
        "user": urllib.parse.unquote(u.username) if u.username else None,
        "host": u.hostname,
        "port": u.port,
        "dbname": u.path.lstrip("/") or None,
    }


def free_port():
    """A TCP port free on 127.0.0.1 right now (the server binds it next)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def base_env(extra=None):
    """The environment a ringlet child gets: ours minus RINGLET_* settings,
    plus test defaults, plus `extra` (a value None removes the variable)."""
    env = {k: v for k, v in os.environ.items()
           if not ((k.startswith("RINGLET_") and k not in _HARNESS_VARS) or k == "DATABASE_URL")}
    url = database_url()
    if url:
        env["DATABASE_URL"] = url
    # ctest runs the suite a second time with the oldest io_uring paths forced
    mode = os.environ.get("RINGLET_TEST_IO_URING")
    if mode:
        env["RINGLET_IO_URING"] = mode
    for k, v in (extra or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


# ---------------------------------------------------------------------------
# collected stderr of every ringlet process, relayed at the end of the file

_LOGS = []  # (label, text)
_LOGS_LOCK = threading.Lock()


def record_log(label, text):
    with _LOGS_LOCK:
        _LOGS.append((label, text))


def _digest(text, max_info=60):
    """All lines that are not JSON info/debug records, and at most max_info
    of those (sanitizer reports are never JSON, so they always pass)."""
    if os.environ.get("RINGLET_TEST_VERBOSE") == "1":
        return text
    out, skipped, infos = [], 0, 0
    for line in text.splitlines():
        rec = None
        if line.startswith("{"):
            try:
                rec = json.loads(line)
            except ValueError:
                rec = None
        if isinstance(rec, dict) and str(rec.get("level", "")).lower() in ("info", "debug"):
            infos += 1
            if infos > max_info:
                skipped += 1
                continue
        out.append(line)
    if skipped:
        out.append("[harness: %d more info/debug lines not shown; RINGLET_TEST_VERBOSE=1 shows them]"
                   % skipped)
    return "\n".join(out) + ("\n" if out else "")


def relay_logs():
    with _LOGS_LOCK:
        logs = list(_LOGS)
    if not logs:
        return
    w = sys.stderr
    w.write("\n===== ringlet stderr (%d processes) =====\n" % len(logs))
    for label, text in logs:
        w.write("----- %s -----\n" % label)
        w.write(_digest(text))
    w.write("===== end of ringlet stderr =====\n")
    w.flush()


# ---------------------------------------------------------------------------
# the server process

_LIVE = []  # every Server started, so none outlives the test file


def _kill_leftovers():
    for srv in list(_LIVE):
        if srv.proc is not None and srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


import atexit  # noqa: E402

atexit.register(_kill_leftovers)


class Server:
    """One `ringlet serve` child on 127.0.0.1:<free port>."""

    def __init__(self, env=None, args=(), name="serve", port=None, listen=True,
                 host="127.0.0.1"):
        self.host = host
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.name = name
        self.port = port
        self.set_listen = listen
        self.proc = None
        self.returncode = None
        self._errf = None
        self._recorded = False
        self.started_at = None

    # -- lifecycle

    def start(self, wait_ready=True, timeout=10.0, wait_listening=False):
        """Start; return once /healthz answers (and /readyz when wait_ready).
        wait_listening: also wait for the "listening" log record (JSON logs),
        for when another process may answer on the same port."""
        if self.port is None:
            self.port = free_port()
        extra = {
            "RINGLET_DRAIN_DELAY_MS": "0",
            "RINGLET_SHUTDOWN_GRACE_MS": "5000",
        }
        if self.set_listen:
            h = "[%s]" % self.host if self.family == socket.AF_INET6 else self.host
            extra["RINGLET_LISTEN"] = "%s:%d" % (h, self.port)
        extra.update(self.extra_env)
        self.env = base_env(extra)
        self._errf = tempfile.TemporaryFile(mode="w+b")
        self.started_at = time.time()
        self.proc = subprocess.Popen([ringlet_bin()] + self.args, env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self._errf,
                                     stderr=self._errf)
        _LIVE.append(self)
        if wait_listening:
            if not self.wait_log(lambda r: r.get("msg") == "listening", timeout):
                raise AssertionError("no \"listening\" record within %.0f s:\n%s"
                                     % (timeout, self.stderr_tail()))
        self.wait_healthy(timeout)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError("ringlet exited during start-up with status %s:\n%s"
                                     % (self.proc.returncode, self.stderr_tail()))
            try:
                r = simple_request(self.port, "GET", "/healthz", timeout=1.0,
                                   conn_host=self.host, family=self.family)
                if r.status == 200:
                    return
                last = "status %d" % r.status
            except (OSError, ProtocolError) as e:
                last = repr(e)
            time.sleep(0.02)
        raise AssertionError("ringlet did not answer /healthz within %.0f s (last: %s):\n%s"
                             % (timeout, last, self.stderr_tail()))

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError("ringlet exited with status %s:\n%s"
                                     % (self.proc.returncode, self.stderr_tail()))
            try:
                r = simple_request(self.port, "GET", "/readyz", timeout=1.0,
                                   conn_host=self.host, family=self.family)
                if r.status == 200:
                    return
                last = "status %d" % r.status
            except (OSError, ProtocolError) as e:
                last = repr(e)
            time.sleep(0.05)
        raise AssertionError("/readyz did not turn 200 within %.0f s (last: %s):\n%s"
                             % (timeout, last, self.stderr_tail()))

    def send_signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signal, wait, return the exit status (-N for a signal). A process
        that does not exit within `timeout` is killed and AssertionError raised."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.returncode = self.proc.returncode
                self._record()
                raise AssertionError("ringlet did not exit within %.0f s of signal %d"
                                     % (timeout, sig))
        self.returncode = self.proc.returncode
        self._record()
        return self.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._record()

    def _record(self):
        if self._recorded:
            return
        text = self.stderr()
        self._recorded = True
        self._final_stderr = text
        if self._errf is not None:
            self._errf.close()
            self._errf = None
        record_log("%s pid %d port %s args %s exit %s" % (
            self.name, self.proc.pid, self.port, self.args, self.proc.returncode), text)

    # -- output

    def stderr(self):
        if self._errf is None:
            return getattr(self, "_final_stderr", "")
        self._errf.flush()
        self._errf.seek(0)
        data = self._errf.read()
        self._errf.seek(0, os.SEEK_END)
        return data.decode("utf-8", "replace")

    def stderr_tail(self, n=40):
        lines = self.stderr().splitlines()
        return "\n".join(lines[-n:])

    def log_records(self):
        """stderr lines parsed as JSON (non-JSON lines are returned as str)."""
        out = []
        for line in self.stderr().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append(line)
        return out

    def wait_log(self, pred, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.log_records():
                if isinstance(rec, dict) and pred(rec):
                    return rec
            time.sleep(0.02)
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.alive():
            self.stop()


def run_ringlet(args, env=None, timeout=30.0, label=None):
    """Run ringlet to completion; returns CompletedProcess (text). A process
    still running after `timeout` is killed; returncode is then None."""
    e = base_env(env)
    p = subprocess.Popen([ringlet_bin()] + list(args), env=e, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timed_out = False
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        timed_out = True
    cp = subprocess.CompletedProcess(p.args, None if timed_out else p.returncode,
                                     out.decode("utf-8", "replace"),
                                     err.decode("utf-8", "replace"))
    record_log("%s (exit %s)" % (label or " ".join(["ringlet"] + list(args)), cp.returncode),
               cp.stderr)
    return cp


def migrate(env=None, timeout=60.0):
    return run_ringlet(["migrate"], env=env, timeout=timeout, label="ringlet migrate")


def proc_ctx_switches(pid):
    """Sum of voluntary + nonvoluntary context switches over all threads."""
    total = 0
    tdir = "/proc/%d/task" % pid
    for tid in os.listdir(tdir):
        try:
            with open(os.path.join(tdir, tid, "status")) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:",
                                        "nonvoluntary_ctxt_switches:")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def proc_cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def proc_threads(pid):
    """[(tid, comm)] of every thread (io_uring workers included)."""
    out = []
    for t in sorted(os.listdir("/proc/%d/task" % pid), key=int):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                out.append((int(t), f.read().strip()))
        except FileNotFoundError:
            pass
    return out


# ---------------------------------------------------------------------------
# raw HTTP/1.1 client


class ProtocolError(Exception):
    """The server sent something that is not valid HTTP/1.1."""


class ConnectionClosed(ProtocolError):
    """EOF (or reset) before any byte of the next response: a clean close."""


class TruncatedResponse(ProtocolError):
    """EOF (or reset) in the middle of a response: never acceptable."""


TOKEN_RE = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
STATUS_LINE_RE = re.compile(rb"^HTTP/(1\.[01]) ([1-9][0-9]{2}) ([\t !-~\x80-\xff]*)$")
FIELD_VALUE_RE = re.compile(rb"^[\t \x21-\x7e\x80-\xff]*$")


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head, method):
        self.version = version  # "1.1"
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] as received, str
        self.body = body  # bytes, or None when the response has no body by framing
        self.raw_head = raw_head
        self.method = method
        self.framing = None  # "length", "chunked", "close", "none"

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.headers if k.lower() == n]

    def get(self, name, default=None):
        vs = self.get_all(name)
        return vs[0] if vs else default

    def has(self, name):
        return bool(self.get_all(name))

    def header_list(self, name):
        """Comma-separated list values of every field `name`, stripped."""
        out = []
        for v in self.get_all(name):
            out.extend(x.strip() for x in v.split(",") if x.strip())
        return out

    def connection_tokens(self):
        return {t.lower() for t in self.header_list("Connection")}

    @property
    def content_type(self):
        v = self.get("Content-Type")
        if v is None:
            return None
        return v.split(";")[0].strip().lower()

    def json(self):
        try:
            return json.loads((self.body or b"").decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise AssertionError("response body is not JSON (%s): %r" % (e, self.body[:500]))

    def text(self):
        return (self.body or b"").decode("utf-8", "replace")

    def __repr__(self):
        b = self.body if self.body is not None else b""
        return "<Response %d %s %s body=%r>" % (self.status, self.reason, self.headers, b[:300])


def build_request(method, target, headers=None, body=None, version="HTTP/1.1", host="127.0.0.1",
                  content_type="application/json"):
    """Request bytes. `headers`: list of (name, value) or dict; a value None
    suppresses a default. Defaults: Host (when `host`), Content-Type (when a
    body and `content_type`), Content-Length (when a body and no
    Transfer-Encoding)."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    hs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in hs}
    out = []
    if host is not None and "host" not in names:
        out.append(("Host", host))
    if body is not None:
        if content_type is not None and "content-type" not in names:
            out.append(("Content-Type", content_type))
        if "content-length" not in names and "transfer-encoding" not in names:
            out.append(("Content-Length", str(len(body))))
    out.extend(hs)
    lines = ["%s %s %s" % (method, target, version)]
    lines += ["%s: %s" % (k, v) for k, v in out if v is not None]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    if body is not None:
        data += body
    return data


class Conn:
    """One client connection. Keeps unread bytes so pipelined responses are
    read in order."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, nodelay=True, family=socket.AF_INET):
        self.port = port
        self.host = host
        self.timeout = timeout
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock.connect((host, port))
        except BaseException:
            self.sock.close()
            raise
        self.buf = b""
        self.eof = False
        self.reset = False
        self._in_response = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def abort(self):
        """Close with RST (SO_LINGER 0)."""
        import struct
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def send_slowly(self, data, piece=1, delay=0.0):
        if isinstance(data, str):
            data = data.encode("utf-8")
        for i in range(0, len(data), piece):
            self.sock.sendall(data[i:i + piece])
            if delay:
                time.sleep(delay)

    def request(self, method, target, headers=None, body=None, **kw):
        h = "[%s]" % self.host if ":" in self.host else self.host
        self.send(build_request(method, target, headers, body,
                                host=kw.pop("host", "%s:%d" % (h, self.port)), **kw))

    def _fill(self, timeout=None):
        """Receive more bytes into buf; False on EOF/reset."""
        if self.eof:
            return False
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        except socket.timeout:
            raise
        finally:
            if timeout is not None:
                self.sock.settimeout(self.timeout)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_until(self, marker, limit=1 << 20):
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out = self.buf[:i]
                self.buf = self.buf[i + len(marker):]
                return out
            if len(self.buf) > limit:
                raise ProtocolError("no %r within %d bytes" % (marker, limit))
            try:
                if not self._fill():
                    exc = TruncatedResponse if (self.buf or self._in_response) else \
                        ConnectionClosed
                    raise exc("connection %s after %d bytes of an incomplete "
                              "response: %r" % ("reset" if self.reset else "closed",
                                                len(self.buf), self.buf[:200]))
            except socket.timeout:
                raise socket.timeout("timed out waiting for a response (have %r)"
                                     % self.buf[:200])

    def _read_exact(self, n):
        while len(self.buf) < n:
            try:
                if not self._fill():
                    raise TruncatedResponse("connection %s after %d of %d body bytes" % (
                        "reset" if self.reset else "closed", len(self.buf), n))
            except socket.timeout:
                raise socket.timeout("timed out reading body (%d of %d bytes)"
                                     % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, method="GET"):
        """One response, strictly parsed (1xx interim responses included:
        use read_final to skip them)."""
        self._in_response = False
        try:
            return self._read_response(method)
        finally:
            self._in_response = False

    def _read_response(self, method):
        head = self._read_until(b"\r\n\r\n")
        self._in_response = True
        lines = head.split(b"\r\n")
        for ln in lines:
            if b"\n" in ln or b"\r" in ln:
                raise ProtocolError("bare CR or LF in response head: %r" % head)
        m = STATUS_LINE_RE.match(lines[0])
        if not m:
            raise ProtocolError("bad status line: %r" % lines[0])
        version = m.group(1).decode()
        status = int(m.group(2))
        reason = m.group(3).decode("latin-1")
        headers = []
        for ln in lines[1:]:
            if not ln:
                raise ProtocolError("empty line inside head: %r" % head)
            if ln[:1] in (b" ", b"\t"):
                raise ProtocolError("obsolete line folding in response: %r" % ln)
            name, sep, value = ln.partition(b":")
            if not sep or not TOKEN_RE.match(name):
                raise ProtocolError("bad header line: %r" % ln)
            value = value.strip(b" \t")
            if not FIELD_VALUE_RE.match(value):
                raise ProtocolError("bad header value: %r" % ln)
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        r = Response(version, status, reason, headers, None, head, method)
        if 100 <= status < 200 or status in (204, 304) or method == "HEAD":
            r.framing = "none"
            return r
        te = r.get_all("Transfer-Encoding")
        cl = r.get_all("Content-Length")
        if te:
            if te[-1].split(",")[-1].strip().lower() != "chunked":
                raise ProtocolError("Transfer-Encoding without final chunked: %r" % te)
            r.body = self._read_chunked()
            r.framing = "chunked"
        elif cl:
            if len(set(v.strip() for v in cl)) != 1 or not re.match(r"^[0-9]+$", cl[0].strip()):
                raise ProtocolError("bad Content-Length: %r" % cl)
            r.body = self._read_exact(int(cl[0]))
            r.framing = "length"
        else:
            # Delimited by close (HTTP/1.0 style); the assertions flag it.
            while self._fill():
                pass
            r.body, self.buf = self.buf, b""
            r.framing = "close"
        return r

    def _read_chunked(self):
        body = b""
        while True:
            line = self._read_until(b"\r\n")
            size = line.split(b";")[0].strip()
            if not re.match(rb"^[0-9A-Fa-f]+$", size):
                raise ProtocolError("bad chunk size line %r" % line)
            n = int(size, 16)
            if n == 0:
                while self._read_until(b"\r\n"):
                    pass
                return body
            body += self._read_exact(n)
            if self._read_exact(2) != b"\r\n":
                raise ProtocolError("chunk not followed by CRLF")

    def read_final(self, method="GET"):
        """The next non-1xx response; interim ones are collected in self.interim."""
        self.interim = []
        while True:
            r = self.read_response(method)
            if r.status >= 200:
                return r
            self.interim.append(r)

    def read_responses(self, methods):
        return [self.read_response(m) for m in methods]

    def wait_eof(self, timeout=3.0):
        """True when the server closes (FIN or RST) within `timeout` and sends
        nothing more; raises AssertionError when data arrives instead."""
        deadline = time.monotonic() + timeout
        if self.buf:
            raise AssertionError("unexpected bytes from the server: %r" % self.buf[:300])
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                if not self._fill(timeout=left):
                    return True
            except socket.timeout:
                return False
            if self.buf:
                raise AssertionError("unexpected bytes from the server: %r" % self.buf[:300])

    def assert_quiet(self, wait=0.2):
        """Nothing more is sent and the connection stays open for `wait` s."""
        if self.buf:
            raise AssertionError("unexpected extra bytes from the server: %r" % self.buf[:300])
        try:
            got = self._fill(timeout=wait)
        except socket.timeout:
            return
        if got:
            raise AssertionError("unexpected extra bytes from the server: %r" % self.buf[:300])
        raise AssertionError("the server closed the connection")

    def is_open(self, wait=0.05):
        try:
            self.assert_quiet(wait)
            return True
        except AssertionError:
            return False


def simple_request(port, method, target, headers=None, body=None, timeout=5.0,
                   conn_host="127.0.0.1", family=socket.AF_INET, **kw):
    """One request on a fresh connection; the response (connection closed)."""
    with Conn(port, host=conn_host, timeout=timeout, family=family) as c:
        c.request(method, target, headers, body, **kw)
        return c.read_final(method)


# ---------------------------------------------------------------------------
# assertions

IMF_FIXDATE_RE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), ([0-9]{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" ([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) GMT$")
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
_DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]

TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

REASONS = {
    400: {"Bad Request"},
    404: {"Not Found"},
    405: {"Method Not Allowed"},
    408: {"Request Timeout"},
    412: {"Precondition Failed"},
    413: {"Content Too Large", "Payload Too Large", "Request Entity Too Large"},
    415: {"Unsupported Media Type"},
    417: {"Expectation Failed"},
    431: {"Request Header Fields Too Large"},
    500: {"Internal Server Error"},
    501: {"Not Implemented"},
    503: {"Service Unavailable"},
    504: {"Gateway Timeout"},
    505: {"HTTP Version Not Supported"},
}


def parse_imf_fixdate(value):
    m = IMF_FIXDATE_RE.match(value)
    if not m:
        return None
    day, dd, mon, yyyy, hh, mi, ss = m.groups()
    try:
        dt = datetime.datetime(int(yyyy), _MONTHS.index(mon) + 1, int(dd), int(hh), int(mi),
                               int(ss), tzinfo=datetime.timezone.utc)
    except ValueError:
        return None
    if _DAYS[dt.weekday()] != day:
        return None
    return dt


def check_date(tc, r):
    dates = r.get_all("Date")
    tc.assertEqual(len(dates), 1, "exactly one Date header expected: %r" % r)
    dt = parse_imf_fixdate(dates[0])
    tc.assertIsNotNone(dt, "Date is not an RFC 9110 IMF-fixdate: %r" % dates[0])
    now = datetime.datetime.now(datetime.timezone.utc)
    tc.assertLess(abs((now - dt).total_seconds()), 120, "Date far from now: %r" % dates[0])


def check_framing(tc, r):
    """Content-Length on every response but 1xx/204/304, equal to the body
    length; none on 204 (RFC 9110 8.6); no Transfer-Encoding."""
    cl = r.get_all("Content-Length")
    tc.assertFalse(r.has("Transfer-Encoding"), "response uses Transfer-Encoding: %r" % r)
    if r.status == 204 or 100 <= r.status < 200:
        tc.assertEqual(cl, [], "%d response carries Content-Length: %r" % (r.status, r))
        return
    if r.status == 304:
        # Allowed only as the length a 200 would have had; checked by callers.
        tc.assertLessEqual(len(cl), 1, "several Content-Length headers: %r" % r)
        return
    tc.assertEqual(len(cl), 1, "exactly one Content-Length expected: %r" % r)
    tc.assertRegex(cl[0], r"^[0-9]+$")
    if r.method != "HEAD":
        tc.assertEqual(r.framing, "length")
        tc.assertEqual(int(cl[0]), len(r.body), "Content-Length != body length: %r" % r)


def check_content_type(tc, r):
    n = len(r.body or b"") if r.method != "HEAD" else int(r.get("Content-Length", "0") or 0)
    if n > 0:
        cts = r.get_all("Content-Type")
        tc.assertEqual(len(cts), 1, "a body needs exactly one Content-Type: %r" % r)


def check_common(tc, r):
    """What every final response must satisfy."""
    if r.status < 200:
        return
    check_date(tc, r)
    check_framing(tc, r)
    check_content_type(tc, r)


def assert_problem(tc, r, status):
    """RFC 9457 problem details with the given status."""
    tc.assertEqual(r.status, status, "expected %d, got %r" % (status, r))
    check_common(tc, r)
    if r.method == "HEAD":
        return None
    tc.assertEqual(r.content_type, "application/problem+json", "Content-Type: %r" % r)
    p = r.json()
    tc.assertIsInstance(p, dict, r)
    for k, t in (("type", str), ("title", str), ("detail", str)):
        tc.assertIn(k, p, "problem lacks %r: %r" % (k, p))
        tc.assertIsInstance(p[k], t, "problem %r is not a %s: %r" % (k, t.__name__, p))
    tc.assertIn("status", p, "problem lacks 'status': %r" % p)
    tc.assertIs(type(p["status"]), int, p)
    tc.assertEqual(p["status"], status, "problem status != HTTP status: %r" % p)
    tc.assertTrue(p["title"], p)
    if p["type"] == "about:blank" and status in REASONS:
        tc.assertIn(p["title"], REASONS[status],
                    "with type about:blank the title is the status phrase (RFC 9457 4.2.1)")
    return p


def assert_item(tc, item, name=None, data=None, version=None, id=None):
    tc.assertIsInstance(item, dict)
    tc.assertEqual(set(item), {"id", "name", "data", "version", "created_at", "updated_at"},
                   "item fields: %r" % item)
    tc.assertIs(type(item["id"]), int)
    tc.assertGreater(item["id"], 0)
    tc.assertIsInstance(item["name"], str)
    tc.assertIsInstance(item["data"], dict)
    tc.assertIs(type(item["version"]), int)
    for k in ("created_at", "updated_at"):
        tc.assertRegex(item[k], TIMESTAMP_RE, "%s format" % k)
    tc.assertGreaterEqual(item["updated_at"], item["created_at"])
    if name is not None:
        tc.assertEqual(item["name"], name)
    if data is not None:
        tc.assertEqual(item["data"], data)
    if version is not None:
        tc.assertEqual(item["version"], version)
    if id is not None:
        tc.assertEqual(item["id"], id)


# ---------------------------------------------------------------------------
# Prometheus text format 0.0.4

_MNAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LNAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_LVALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
_FLOAT = r"[+-]?(?:Inf|NaN|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+(?:[eE][+-]?[0-9]+)?)"
_SAMPLE_RE = re.compile(r"^(%s)(?:\{((?:%s=%s(?:,%s=%s)*)?,?)\})?[ \t]+(%s)(?:[ \t]+(-?[0-9]+))?$"
                        % (_MNAME, _LNAME, _LVALUE, _LNAME, _LVALUE, _FLOAT))
_LABEL_RE = re.compile(r"(%s)=(%s)" % (_LNAME, _LVALUE))
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def _unescape_label(v):
    v = v[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], v)


def _float(s):
    s2 = s.lstrip("+")
    if s2 in ("Inf",):
        return float("inf")
    if s2 == "-Inf":
        return float("-inf")
    return float(s2)


def parse_metrics(text):
    """Parse and validate exposition text. Returns (families, errors):
    families = {name: {"type", "help", "samples": [(sample_name, labels, value)]}}."""
    errors = []
    fams = {}
    order = []  # family order of first appearance of samples
    closed = set()
    current = None
    seen = set()

    def family_of(sname):
        if sname in fams and fams[sname].get("type"):
            return sname
        for suf in ("_bucket", "_sum", "_count"):
            if sname.endswith(suf):
                base = sname[:-len(suf)]
                if fams.get(base, {}).get("type") in ("histogram", "summary"):
                    if suf == "_bucket" and fams[base]["type"] == "summary":
                        break
                    return base
        return sname

    if text and not text.endswith("\n"):
        errors.append("output does not end with a newline")
    for no, line in enumerate(text.split("\n"), 1):
        if line == "" or line.strip() == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not re.match("^%s$" % _MNAME, name):
                    errors.append("line %d: bad metric name in %s: %r" % (no, parts[1], line))
                    continue
                f = fams.setdefault(name, {"type": None, "help": None, "samples": []})
                if parts[1] == "HELP":
                    if f["help"] is not None:
                        errors.append("line %d: second HELP for %s" % (no, name))
                    f["help"] = parts[3] if len(parts) > 3 else ""
                else:
                    t = parts[3].strip() if len(parts) > 3 else ""
                    if t not in _TYPES:
                        errors.append("line %d: bad TYPE %r" % (no, t))
                    if f["type"] is not None:
                        errors.append("line %d: second TYPE for %s" % (no, name))
                    if f["samples"]:
                        errors.append("line %d: TYPE for %s after its samples" % (no, name))
                    f["type"] = t
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            errors.append("line %d: bad sample line %r" % (no, line))
            continue
        sname, labels_s, value_s, _ts = m.groups()
        labels = {}
        for lm in _LABEL_RE.finditer(labels_s or ""):
            ln, lv = lm.group(1), lm.group(2)
            if ln in labels:
                errors.append("line %d: label %s repeated" % (no, ln))
            if ln.startswith("__"):
                errors.append("line %d: reserved label name %s" % (no, ln))
            labels[ln] = _unescape_label(lv)
        value = _float(value_s)
        fam = family_of(sname)
        f = fams.setdefault(fam, {"type": None, "help": None, "samples": []})
        if fam != current:
            if fam in closed:
                errors.append("line %d: samples of %s are not grouped together" % (no, fam))
            if current is not None:
                closed.add(current)
            current = fam
            order.append(fam)
        key = (sname, tuple(sorted(labels.items())))
        if key in seen:
            errors.append("line %d: duplicate sample %r" % (no, line))
        seen.add(key)
        f["samples"].append((sname, labels, value))

    for name, f in fams.items():
        t = f["type"]
        if t == "counter":
            for sname, labels, v in f["samples"]:
                if v != v or v < 0:
                    errors.append("counter %s%r has value %r" % (sname, labels, v))
        if t == "histogram":
            groups = {}
            for sname, labels, v in f["samples"]:
                rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
                if sname == name + "_bucket":
                    if "le" not in labels:
                        errors.append("%s bucket without le: %r" % (name, labels))
                        continue
                    try:
                        g["buckets"].append((_float(labels["le"]), v, labels["le"]))
                    except ValueError:
                        errors.append("%s bad le %r" % (name, labels["le"]))
                elif sname == name + "_sum":
                    g["sum"] = v
                elif sname == name + "_count":
                    g["count"] = v
                else:
                    errors.append("histogram %s has sample %s" % (name, sname))
            for rest, g in groups.items():
                bs = sorted(g["buckets"])
                if not bs or bs[-1][0] != float("inf"):
                    errors.append("histogram %s%r lacks le=\"+Inf\"" % (name, rest))
                for (le1, v1, _), (le2, v2, _) in zip(bs, bs[1:]):
                    if v2 < v1:
                        errors.append("histogram %s%r buckets not cumulative at le=%r" %
                                      (name, rest, le2))
                    if le1 == le2:
                        errors.append("histogram %s%r repeated le=%r" % (name, rest, le1))
                if g["count"] is None or g["sum"] is None:
                    errors.append("histogram %s%r lacks _count or _sum" % (name, rest))
                elif bs and bs[-1][1] != g["count"]:
                    errors.append("histogram %s%r: +Inf bucket %r != _count %r" %
                                  (name, rest, bs[-1][1], g["count"]))
    return fams, errors


def metric_value(fams, name, **labels):
    """The value of the sample `name` whose labels include `labels`; 0 when
    absent; AssertionError when several match."""
    fam = None
    for fname, f in fams.items():
        if name == fname or name.startswith(fname + "_"):
            for sname, ls, v in f["samples"]:
                if sname == name and all(ls.get(k) == str(x) for k, x in labels.items()):
                    if fam is not None:
                        raise AssertionError("several samples match %s%r" % (name, labels))
                    fam = v
    return 0.0 if fam is None else fam


# ---------------------------------------------------------------------------
# test case base


class RingletTestCase(unittest.TestCase):
    """A server per test class (restarted when a test kills it), checked
    alive after every test and exited 0 at the end."""

    server_env = {}
    server_args = ()
    wait_ready = True
    needs_db = True
    start_class_server = True

    @classmethod
    def setUpClass(cls):
        if cls.needs_db and not database_url():
            raise unittest.SkipTest("RINGLET_TEST_DATABASE_URL not set")
        cls.server = None
        if cls.start_class_server:
            cls.server = Server(env=cls.server_env, args=cls.server_args,
                                name=cls.__name__).start(wait_ready=cls.wait_ready)

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            code = cls.server.stop()
            if code != 0:
                raise AssertionError("%s: ringlet exited with status %s, not 0:\n%s"
                                     % (cls.__name__, code, cls.server.stderr_tail()))

    def setUp(self):
        if self.server is not None and not self.server.alive():
            # An earlier test killed it (and failed for it): go on with a new one.
            type(self).server = Server(env=self.server_env, args=self.server_args,
                                       name=type(self).__name__ + " (restarted)").start(
                                           wait_ready=self.wait_ready)

    def tearDown(self):
        if self.server is not None:
            if not self.server.alive():
                self.server.stop()
                self.fail("ringlet died during %s with status %s:\n%s" % (
                    self.id(), self.server.proc.returncode, self.server.stderr_tail()))

    # -- helpers

    @property
    def port(self):
        return self.server.port

    def start_server(self, env=None, args=(), wait_ready=True, name=None):
        """An extra server for this test, stopped at cleanup; exit 0 checked."""
        s = Server(env=env, args=args, name=name or self.id())
        s.start(wait_ready=wait_ready)

        def stop():
            code = s.stop()
            self.assertEqual(code, 0, "ringlet exited with %s:\n%s" % (code, s.stderr_tail()))

        self.addCleanup(stop)
        return s

    def assert_alive(self, server=None):
        s = server or self.server
        self.assertTrue(s.alive(), "ringlet died (status %s):\n%s" % (
            s.proc.returncode, s.stderr_tail()))
        r = simple_request(s.port, "GET", "/healthz")
        self.assertEqual(r.status, 200)

    def request(self, method, target, body=None, headers=None, port=None, check=True,
                timeout=5.0, **kw):
        r = simple_request(port or self.port, method, target, headers, body, timeout=timeout, **kw)
        if check:
            check_common(self, r)
        return r

    def problem(self, status, method, target, body=None, headers=None, **kw):
        r = self.request(method, target, body, headers, **kw)
        assert_problem(self, r, status)
        return r

    def create(self, name="widget", data=None, port=None):
        body = {"name": name}
        if data is not None:
            body["data"] = data
        r = self.request("POST", "/v1/items", body, port=port)
        self.assertEqual(r.status, 201, r)
        return r.json()

    def get_item(self, id, port=None):
        r = self.request("GET", "/v1/items/%d" % id, port=port)
        self.assertEqual(r.status, 200, r)
        return r.json()

    def metrics(self, port=None):
        r = self.request("GET", "/metrics", port=port)
        self.assertEqual(r.status, 200, r)
        fams, errors = parse_metrics(r.text())
        self.assertEqual(errors, [], "invalid exposition text:\n" + r.text()[:3000])
        return fams


def truncate_items():
    psql("TRUNCATE items RESTART IDENTITY")


# ---------------------------------------------------------------------------
# entry point


def main(require_db=True, migrate_first=True):
    """Run the calling module's tests; exit 77 when the environment is missing."""
    b = ringlet_bin()
    if not os.path.isfile(b) or not os.access(b, os.X_OK):
        if os.environ.get("RINGLET_BIN"):
            print("RINGLET_BIN=%s is not an executable file" % b, file=sys.stderr)
            sys.exit(1)
        print("skipped: no ringlet binary (%s); set RINGLET_BIN" % b, file=sys.stderr)
        sys.exit(EXIT_SKIP)
    url = database_url()
    if url:
        ok, why = database_reachable(url)
        if not ok:
            print("skipped: RINGLET_TEST_DATABASE_URL is unreachable: %s" % why, file=sys.stderr)
            sys.exit(EXIT_SKIP)
    elif require_db:
        print("skipped: RINGLET_TEST_DATABASE_URL is not set", file=sys.stderr)
        sys.exit(EXIT_SKIP)
    if url and migrate_first:
        cp = migrate()
        if cp.returncode != 0:
            print("ringlet migrate failed with status %s:\n%s" % (cp.returncode, cp.stderr),
                  file=sys.stderr)
            relay_logs()
            sys.exit(1)
    try:
        prog = unittest.main(module="__main__", exit=False, verbosity=2)
        ok = prog.result.wasSuccessful()
    finally:
        relay_logs()
    sys.exit(0 if ok else 1)


# ---------------------------------------------------------------------------
# a slow database, for deadline and backpressure tests

class TableLock:
    """A psql child holding ACCESS EXCLUSIVE on items for `seconds`, which
    makes every query of ringlet on items wait (a slow database)."""

    def __init__(self, tc, seconds):
        p = psql_path()
        if not p:
            raise Skip("psql not found")
        sql = ("BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(%s); COMMIT;"
               % seconds)
        self.proc = subprocess.Popen([p, "-X", "-q", "-d", database_url(), "-c", sql],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE,
                                     env=_clean_pg_env(dict(os.environ)))
        # psql exits (and the lock goes) by itself after `seconds`: wait for it
        tc.addCleanup(self.wait, seconds + 30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = "
                               "l.relation WHERE c.relname = 'items' AND l.granted AND "
                               "l.mode = 'AccessExclusiveLock'").strip()
            if out == "1":
                self.granted_at = time.monotonic()
                self.released_at = self.granted_at + seconds
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError("could not take the lock on items: %s"
                             % (self.proc.stderr.read() if self.proc.poll() is not None else ""))

    def wait(self, timeout=30):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
