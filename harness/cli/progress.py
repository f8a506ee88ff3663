"""Progress for long workflows: which run is going, how many are left, each one's outcome."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harness.results.model import RunResult
from harness.workflows.ab import workflow as ab


class RichProgress:
    """Shows which run is going, how many are left, and each finished run's outcome."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
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
        self.console.print(f"{slot.name}: {state} ({steps}, {took:.0f}s)", highlight=False)
        self.bar.update(self.task, completed=index + 1)
