#!/usr/bin/python3
"""An idle ringlet is not woken: no timers tick, no thread runs, when nothing
happens (no clients, a connected database pool)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn  # noqa: E402

SETTLE_S = 1.0
WATCH_S = 5.0


class Idle(harness.RingletTestCase):

    def test_no_wakeups_when_idle(self):
        pid = self.server.pid
        item = self.create("idle")
        with Conn(self.port) as c:
            c.request("GET", "/v1/items/%d" % item["id"])
            self.assertEqual(c.read_final().status, 200)
        time.sleep(SETTLE_S)
        threads0 = harness.proc_threads(pid)
        cs0 = harness.proc_ctx_switches(pid)
        cpu0 = harness.proc_cpu_ticks(pid)
        samples = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < WATCH_S:
            time.sleep(0.5)
            samples.append((round(time.monotonic() - t0, 1), harness.proc_ctx_switches(pid)))
        cs1 = harness.proc_ctx_switches(pid)
        cpu1 = harness.proc_cpu_ticks(pid)
        threads1 = harness.proc_threads(pid)
        self.assertEqual(threads1, threads0, "threads changed while idle")
        self.assertEqual(cs1 - cs0, 0,
                         "the idle process was woken %d times in %.0f s (threads %s; "
                         "samples %s)" % (cs1 - cs0, WATCH_S, threads0, samples))
        self.assertEqual(cpu1 - cpu0, 0, "the idle process used %d clock ticks of CPU"
                         % (cpu1 - cpu0))
        self.assert_alive()

    def test_idle_after_keepalive_closed_by_client(self):
        # A keep-alive connection closed by the client leaves no timer behind.
        with Conn(self.port) as c:
            for _ in range(3):
                c.request("GET", "/healthz")
                self.assertEqual(c.read_final().status, 200)
        time.sleep(SETTLE_S)
        pid = self.server.pid
        cs0 = harness.proc_ctx_switches(pid)
        time.sleep(3.0)
        self.assertEqual(harness.proc_ctx_switches(pid) - cs0, 0)


if __name__ == "__main__":
    harness.main()
