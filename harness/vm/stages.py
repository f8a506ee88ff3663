"""Boot and plan progress from the console: the stage a boot reached, then steps n of N.

The console supervision feeds every line and every marker here; what a guest prints is
only matched against fixed milestones, never echoed, so a hostile guest cannot write to
the user's terminal through it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from harness import progress

# (console line pattern, the stage a boot has reached when it appears), in boot order
BOOT_MILESTONES = (
    (re.compile(r"\] Linux version "), "kernel started"),
    (re.compile(r"\] Run \S+ as init process"), "init started"),
    (re.compile(r"virtme-ng-init: basic initialization done"), "guest set up"),
    (re.compile(r"virtme-ng-init: starting script"), "starting the agent"),
)


class RunStages:
    """Reports `boot` (stages reached, until the agent's start marker) and then `plan`
    (steps ended of the plan's `steps_total`, the running one as the note)."""

    def __init__(
        self, steps_total: int | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.boot = progress.Step("boot", clock=clock)
        self.plan = progress.Step("plan", "steps", steps_total, clock=clock)
        self.reached = -1  # index into BOOT_MILESTONES
        self.ended = 0
        self.booted = self.finished = False
        self.boot.update(0, note="starting QEMU")

    def line(self, text: str) -> None:
        if self.booted:
            return
        for index, (pattern, stage) in enumerate(BOOT_MILESTONES):
            if index > self.reached and pattern.search(text):
                self.reached = index
                self.boot.update(0, note=stage)
                return

    def marker(self, event: dict) -> None:
        kind = event.get("event")
        if not self.booted and kind in ("start", "begin", "done"):
            self.booted = True
            self.boot.finish(note="agent started")
            self.plan.started = self.plan.clock()  # the plan's clock starts at the agent
            self.plan.update(0)
        if kind == "begin":
            self.plan.update(self.ended, note=f"running {_safe(event.get('id'))}")
        elif kind == "end":
            self.ended += 1
            self.plan.update(self.ended)
        elif kind == "done":
            self.close()

    def close(self) -> None:
        """The run ended (however): finish whichever step is still open."""
        if self.finished:
            return
        self.finished = True
        if not self.booted:
            self.boot.finish(note=f"stopped at: {self.boot_stage()}")
        else:
            self.plan.finish(note=f"{self.ended} steps ended")

    def boot_stage(self) -> str:
        return BOOT_MILESTONES[self.reached][1] if self.reached >= 0 else "starting QEMU"


def _safe(text: object) -> str:
    """A step id from the guest, cut to printable characters (it reaches the terminal)."""
    return "".join(c for c in str(text)[:80] if c.isprintable())
