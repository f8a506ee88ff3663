"""Progress of long steps as events: library code reports them here, only harness/cli renders.

A step (a build, a download, a boot, a plan) reports Progress events through `report()`;
whoever wants them (the CLI's renderer, a test) installs a sink with `reporting()`. With no
sink installed a report costs one empty loop, so library code reports unconditionally.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """How far one long step is: `done` of `total` `unit`s (total None: not known)."""

    stage: str  # what runs, e.g. "build src:debian:linux-source-6.12", "boot", "plan"
    done: float
    total: float | None
    unit: str  # "objects", "bytes", "steps", "" for a step without a count
    elapsed_s: float
    eta_s: float | None  # time left, None when there is no estimate
    finished: bool = False
    note: str = ""  # the stage reached, e.g. "agent started", "fio/raw-nvme0/randread-4k"


Sink = Callable[[Progress], None]

_sinks: list[Sink] = []
_lock = threading.Lock()


@contextmanager
def reporting(sink: Sink) -> Iterator[None]:
    """Send every Progress reported inside the block to `sink` (from any thread)."""
    with _lock:
        _sinks.append(sink)
    try:
        yield
    finally:
        with _lock:
            _sinks.remove(sink)


def report(event: Progress) -> None:
    """Hand `event` to every installed sink."""
    with _lock:
        sinks = list(_sinks)
    for sink in sinks:
        sink(event)


def eta(done: float, total: float | None, elapsed_s: float) -> float | None:
    """Time left at the rate so far: None before the first unit or without a total."""
    if total is None or done <= 0 or elapsed_s <= 0:
        return None
    return max(0.0, elapsed_s * (total - done) / done)


RECENT_S = 240.0  # the window of the rate a time left is computed from


def eta_recent(samples: list[tuple[float, float]], total: float | None) -> float | None:
    """Time left at the rate of the last RECENT_S seconds (the last half of the elapsed
    time early on): (elapsed_s, done) samples, oldest first. A kernel build's rate swings
    with the host's load and the objects' cost, so the rate since the start lags; a short
    window follows bursts: a quiet cold lean build (883 s) wrote 207 small objects in 30 s
    near its end, and a 2-minute rate then showed 0.43x of the truth where 4 minutes stays
    within 0.56x-1.8x from 5% to 97% of the time (tests/data/build/, replayed in
    tests/unit/test_make_progress.py)."""
    if not samples or total is None:
        return None
    now, done = samples[-1]
    since = now - min(RECENT_S, now / 2)
    then = bisect.bisect_right(samples, (since, float("inf"))) - 1
    if then < 0 or now - samples[then][0] < 1.0:
        return eta(done, total, now)
    rate = (done - samples[then][1]) / (now - samples[then][0])
    if rate <= 0:
        return eta(done, total, now)
    return max(0.0, (total - done) / rate)


class Step:
    """One long step's reports with its elapsed time and ETA filled in."""

    def __init__(
        self,
        stage: str,
        unit: str = "",
        total: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stage, self.unit, self.total, self.clock = stage, unit, total, clock
        self.started = clock()
        self.done = 0.0
        self.samples: list[tuple[float, float]] = []  # (elapsed_s, done), for the recent rate

    def update(self, done: float, total: float | None = None, note: str = "") -> Progress:
        if total is not None:
            self.total = total
        self.done = done
        return self._send(False, note)

    def finish(self, note: str = "") -> Progress:
        return self._send(True, note)

    def _send(self, finished: bool, note: str) -> Progress:
        elapsed = self.clock() - self.started
        if not self.samples or self.samples[-1] != (elapsed, self.done):
            self.samples.append((elapsed, self.done))
        total = self.total
        if total is not None and self.done > total and not finished:
            total = None  # the estimate was short: say so rather than show 120%
        left = 0.0 if finished else eta_recent(self.samples, total)
        event = Progress(self.stage, self.done, total, self.unit, elapsed, left, finished, note)
        report(event)
        return event


@contextmanager
def finishing(step: Step) -> Iterator[Step]:
    """Finish `step` when the block ends: plainly, or noted "stopped" when it raised."""
    try:
        yield step
    except BaseException:
        step.finish(note="stopped")
        raise
    step.finish()


@contextmanager
def polled(poll: Callable[[], None], every_s: float) -> Iterator[None]:
    """Call `poll` every `every_s` from a thread while the block runs, and once at its end."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(every_s):
            poll()

    thread = threading.Thread(target=loop, name="progress-poll", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        poll()
