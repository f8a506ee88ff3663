"""Progress on screen: the live bars of long steps (builds, downloads, boots, plans) on a
terminal or one plain line per step every 30 s in a CI log, and the A/B's run-by-run bar."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as Bars

from harness import progress as events
from harness.progress import Progress
from harness.results.model import RunResult
from harness.workflows.ab import workflow as ab


class RichProgress:
    """Shows which run is going, how many are left, and each finished run's outcome."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console, self.quiet = console, quiet
        self.bar = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            disable=quiet,
        )
        self.task = self.bar.add_task("starting", total=None)
        self.t0 = 0.0

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def started(self, index: int, total: int, slot: ab.Slot) -> None:
        self.t0 = time.monotonic()
        desc = f"rep {slot.rep + 1}: {slot.side.label} {slot.side.describe()}"
        self.bar.update(self.task, description=desc, total=total, completed=index)

    def finished(self, index: int, total: int, slot: ab.Slot, result: RunResult) -> None:
        took = time.monotonic() - self.t0
        state = f"[red]infra error: {result.infra_error}" if result.infra_error else "done"
        failed = sum(s.failed for s in result.steps)
        steps = f"{len(result.steps)} steps, {failed} failed"
        if not self.quiet:
            self.console.print(f"{slot.name}: {state} ({steps}, {took:.0f}s)", highlight=False)
        self.bar.update(self.task, completed=index + 1)


PLAIN_EVERY_S = 30.0
_shared: list[Console] = []


def shared_console() -> Console:
    """The one stderr Console every bar draws on: rich nests live displays per console."""
    if not _shared:
        _shared.append(Console(stderr=True))
    return _shared[0]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _amount(value: float, unit: str) -> str:
    if unit == "bytes":
        return f"{value / 1e6:.1f} MB"
    return f"{value:.0f}"


def _count(p: Progress) -> str:
    """'734 of ~3100 objects (24%)', '12.0 MB of 80.3 MB (15%)', '734 objects', or ''."""
    if not p.unit:
        return ""
    unit = "" if p.unit == "bytes" else f" {p.unit}"
    if not p.total:
        return f"{_amount(p.done, p.unit)}{unit}"
    share = min(100.0, 100.0 * p.done / p.total)
    about = "~" if p.unit == "objects" else ""  # a build's total is an estimate
    return f"{_amount(p.done, p.unit)} of {about}{_amount(p.total, p.unit)}{unit} ({share:.0f}%)"


def describe(p: Progress) -> str:
    """One plain line: 'build X: 734 of ~3100 objects (24%), 12m05s elapsed, ~38m left'."""
    parts = [part for part in (_count(p), p.note) if part]
    if p.finished:
        parts.append(f"took {_duration(p.elapsed_s)}")
    else:
        parts.append(f"{_duration(p.elapsed_s)} elapsed")
        if p.eta_s is not None:
            parts.append(f"~{_duration(p.eta_s)} left")
    return f"{p.stage}: " + ", ".join(parts)


class PlainLines:
    """No terminal (a CI log): a line when a step starts, then at most one every
    `every_s` while it runs, and one when it ends; a step without a count (a boot) also
    gets a line for each stage it reaches."""

    def __init__(
        self,
        write: Callable[[str], None],
        every_s: float = PLAIN_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write, self.every_s, self.clock = write, every_s, clock
        self.last: dict[str, tuple[float, str]] = {}  # stage -> (when written, its note)
        self.lock = threading.Lock()

    def __call__(self, p: Progress) -> None:
        now = self.clock()
        with self.lock:
            last = self.last.get(p.stage)
            new_stage = not p.unit and last is not None and last[1] != p.note
            if p.finished:
                self.last.pop(p.stage, None)
            elif last is not None and now - last[0] < self.every_s and not new_stage:
                return
            else:
                self.last[p.stage] = (now, p.note)
        self.write(describe(p))


class LiveBars:
    """A terminal: one live bar per running step, a plain line when it ends."""

    def __init__(self, console: Console, quiet: bool = False) -> None:
        self.console, self.quiet = console, quiet
        self.bars = Bars(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[left]}"),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, object] = {}
        self.lock = threading.Lock()

    def __call__(self, p: Progress) -> None:
        with self.lock:
            if p.finished:
                task = self.tasks.pop(p.stage, None)
                if task is not None:
                    self.bars.remove_task(task)  # type: ignore[arg-type]
                if not self.tasks:
                    self.bars.stop()
                self.console.print(describe(p), highlight=False)
                return
            fields = {
                "amount": ", ".join(part for part in (_count(p), p.note) if part),
                "left": f"~{_duration(p.eta_s)} left" if p.eta_s is not None else "",
            }
            if p.stage not in self.tasks:
                if not self.tasks:
                    self.bars.start()
                self.tasks[p.stage] = self.bars.add_task(p.stage, total=p.total, **fields)
            self.bars.update(self.tasks[p.stage], completed=p.done, total=p.total, **fields)  # type: ignore[arg-type]

    def close(self) -> None:
        with self.lock:
            self.bars.stop()


class CurrentStderrHandler(logging.StreamHandler):
    """Logs to whatever sys.stderr is at the time: while a live bar runs, rich swaps in a
    proxy that prints above the bar, so log lines do not tear it."""

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # StreamHandler.__init__ sets it; the property always answers sys.stderr


@contextmanager
def shown(quiet: bool, tty: bool | None = None) -> Iterator[None]:
    """Render every Progress reported inside the block: live bars on a terminal, plain
    lines otherwise, nothing with `quiet`."""
    if quiet:
        yield
        return
    if tty is None:
        tty = sys.stderr.isatty()
    if not tty:
        with events.reporting(PlainLines(lambda line: print(line, file=sys.stderr, flush=True))):
            yield
        return
    bars = LiveBars(shared_console())
    try:
        with events.reporting(bars):
            yield
    finally:
        bars.close()
