"""Blocked-task dumps on request: a thread that writes 'w' to /proc/sysrq-trigger.

It runs beside the step loop, so it still works when the step itself is stuck in the
kernel (a SIGALRM handler would not run while the main thread sleeps in D state). It
dumps when the running step passes its timeout, and whenever the host drops a request file
(`sysrq-request`) into the shared results directory (9p, uncached: the guest sees it at
once). Each dump is announced with a `blocked-dump` console marker. VM mode only: on a
host the harness must not write to the host's sysrq-trigger.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

SYSRQ = "/proc/sysrq-trigger"
REQUEST = "sysrq-request"
POLL_S = 0.5


class Watchdog(threading.Thread):
    """arm(step, timeout_s) before a step, disarm() after; stop() at the end."""

    def __init__(self, results: str, marker: Callable[[dict], None], sysrq: str = SYSRQ) -> None:
        super().__init__(name="harness-watchdog", daemon=True)
        self.request = os.path.join(results, REQUEST)
        self.marker = marker
        self.sysrq = sysrq
        self.step: str | None = None
        self.deadline: float | None = None
        self.finished = threading.Event()
        self.lock = threading.Lock()

    def arm(self, step: str, timeout_s: float) -> None:
        with self.lock:
            self.step, self.deadline = step, time.monotonic() + timeout_s

    def disarm(self) -> None:
        with self.lock:
            self.step, self.deadline = None, None

    def stop(self) -> None:
        self.finished.set()

    def run(self) -> None:
        while not self.finished.wait(POLL_S):
            with self.lock:
                step, deadline = self.step, self.deadline
                if deadline is not None and time.monotonic() > deadline:
                    self.deadline = None  # once per step
                    why = "timeout"
                else:
                    why = ""
            if not why and os.path.exists(self.request):
                try:
                    os.unlink(self.request)
                except OSError:
                    pass
                why = "host"
            if why:
                self.dump(step, why)

    def dump(self, step: str | None, why: str) -> None:
        try:
            with open(self.sysrq, "w") as fh:
                fh.write("w")
        except OSError as exc:
            log.warning("cannot write %s: %s", self.sysrq, exc)
            return
        self.marker({"event": "blocked-dump", "id": step, "why": why})
