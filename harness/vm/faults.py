"""When a kernel fault ends a run, and the blocked-task dump taken before the VM stops.

The console supervisor feeds a FaultWatch what it reads and asks it each second whether to
stop. A fault is a report after which the kernel cannot be trusted (harness.klog.splats
STOPPING_KINDS). An oops, BUG or lockup ends its step after `oops_grace_s` (the step may
still finish on its own first); a hung task after `hang_grace_s`, once it is confirmed.
A hung-task report is a suspicion until the same task has been blocked `hang_confirm_s` or
reported `hang_confirm_reports` times (the detector reports it again every period while it
stays blocked): under TCG a slow emulated disk can keep a task waiting for I/O past the
short hung-task timeout, and that task then runs on. A report that is never confirmed is a
*stall*: recorded on its step, never a kernel failure (`FaultWatch.is_stall`); so is the
dump the agent asks for at its own step timeout when it then goes on. A hang, and any step
timeout or silence, is first answered with a sysrq-w blocked-task dump (the agent writes
'w' to /proc/sysrq-trigger when the host asks through `request_dump`, or by itself when its
own step alarm fires); the VM is stopped once the dump has had `dump_drain_s` to print.
Tasks blocked in the kernel make the stop a "hang"; a dump with nothing blocked lets a
timed-out step go on (the agent records it); no answer at all leaves the deadline's reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.klog.splats import HANG_KINDS, STOPPING_KINDS, SplatScanner, hung_task_of
from harness.results.model import Splat

QUIET_S = 1.5  # a dump is over when the console has been quiet this long after it began


@dataclass(frozen=True)
class FaultLimits:
    oops_grace_s: float = 15.0  # an oops in a step: how long the step may go on to finish
    hang_grace_s: float = 5.0  # a hung-task report: the step will not finish; dump soon
    dump_drain_s: float = 10.0  # how long a blocked-task dump may take to print
    hang_confirm_s: float = 60.0  # a task blocked this long is hung, not slow
    hang_confirm_reports: int = 3  # ... or reported this many times (kernels that print
    # the timeout, not the time blocked)


@dataclass
class FaultWatch:
    """Mutable: what fault was seen, in which step, and where the dump protocol stands."""

    limits: FaultLimits
    request_dump: Callable[[], None] | None = None
    kind: str | None = None  # the first stopping report's kind
    step: str | None = None  # the step it hit (None: boot or between steps)
    at: float = 0.0
    dump_at: float | None = None  # when a dump was asked for (by us or by the agent)
    dumps_before: int = 0
    blocked_before: int = 0
    waiting: str | None = None  # a deadline reason waiting for its dump
    waiting_step: str | None = None
    kinds_seen: int = 0
    dump_requested: bool = False
    dump_answered: bool = False
    suspects: dict[str, tuple[int, str | None]] = field(default_factory=dict)  # task ->
    # (hung-task reports so far, the step of the first)
    confirmed: set[str] = field(default_factory=set)  # tasks found hung, not slow

    def feed(self, scanner: SplatScanner, step: str | None, now: float) -> None:
        """Note reports the scanner began since the last call (the first fault counts)."""
        seen = self.kinds_seen
        new = zip(scanner.started[seen:], scanner.started_titles[seen:], strict=True)
        self.kinds_seen = len(scanner.started)
        for kind, title in new:
            if kind == "hung_task":
                confirmed, began_in = self._hung_task(title, step)
                if self.kind is None and confirmed:
                    self.kind, self.step, self.at = kind, began_in, now
            elif self.kind is None and kind in STOPPING_KINDS and kind != "blocked_tasks":
                self.kind, self.step, self.at = kind, step, now

    def _hung_task(self, title: str, step: str | None) -> tuple[bool, str | None]:
        """(whether the report confirms a hang, the step its task's first report hit)."""
        found = hung_task_of(title)
        if found is None:
            return True, step  # a report we cannot read: take it at its word
        task, blocked_s = found
        reports, first_step = self.suspects.get(task, (0, step))
        reports += 1
        self.suspects[task] = (reports, first_step)
        limits = self.limits
        if blocked_s >= limits.hang_confirm_s or reports >= limits.hang_confirm_reports:
            self.confirmed.add(task)
            return True, first_step
        return False, first_step

    def is_stall(self, splat: Splat, splat_step: str | None, reason: str) -> bool:
        """A hung-task report whose task ran on, or a blocked-task dump taken while the run
        went on: not part of a hang the run stopped for."""
        if reason == "hang" and splat_step == self.step:
            return False
        if splat.kind == "blocked_tasks":
            return True
        found = hung_task_of(splat.title) if splat.kind == "hung_task" else None
        return found is not None and found[0] not in self.confirmed

    def agent_dumped(self, scanner: SplatScanner, step: str | None, now: float) -> None:
        """The agent's own step alarm fired and it asked the kernel for a dump."""
        if self.dump_at is None:
            self._start_dump(scanner, now, ask=False)
            self.waiting, self.waiting_step = "agent-timeout", step

    def check(
        self,
        scanner: SplatScanner,
        current: str | None,
        deadline: str | None,
        now: float,
        last_output: float,
    ) -> str | None:
        """'oops' or 'hang' when a fault ends the run now, the deadline's own reason when
        its dump found nothing blocked (or got no answer), None to go on reading."""
        if self.kind is not None:
            return self._fault_stop(scanner, current, now, last_output)
        if deadline in ("step-timeout", "silence") and self.waiting is None:
            if self.request_dump is None:
                return deadline
            self._start_dump(scanner, now, ask=True)
            self.waiting, self.waiting_step = deadline, current
        if self.waiting is None:
            return deadline
        if not self._dump_over(scanner, now, last_output):
            return None
        waiting, self.waiting, self.dump_at = self.waiting, None, None
        if waiting == "agent-timeout":
            # The agent stopped its own step and goes on: its dump is a diagnostic (a fio in
            # D state waiting on I/O at that instant is not hung). A task that stays blocked
            # keeps the agent from going on, and the host's deadline asks again.
            return None
        if scanner.blocked_seen > self.blocked_before:
            self.kind, self.step, self.at = "blocked_tasks", self.waiting_step, now
            return "hang"
        return waiting

    def _fault_stop(
        self, scanner: SplatScanner, current: str | None, now: float, last_output: float
    ) -> str | None:
        hang = self.kind in HANG_KINDS
        grace = self.limits.hang_grace_s if hang else self.limits.oops_grace_s
        step_over = current != self.step
        if not step_over and now - self.at < grace:
            return None
        if not hang:
            # Let the report itself finish printing (its end marker closes it).
            quiet = now - last_output > QUIET_S
            return "oops" if quiet or now - self.at > grace + self.limits.dump_drain_s else None
        if self.request_dump is None:
            return "hang"
        if self.dump_at is None:
            self._start_dump(scanner, now, ask=True)
            return None
        return "hang" if self._dump_over(scanner, now, last_output) else None

    def _start_dump(self, scanner: SplatScanner, now: float, ask: bool) -> None:
        self.dump_at = now
        self.dumps_before, self.blocked_before = scanner.dumps_seen, scanner.blocked_seen
        if ask and self.request_dump is not None:
            self.dump_requested = True
            self.request_dump()

    def _dump_over(self, scanner: SplatScanner, now: float, last_output: float) -> bool:
        assert self.dump_at is not None
        if scanner.dumps_seen > self.dumps_before:
            self.dump_answered = True
            if now - last_output > QUIET_S:
                return True
        return now - self.dump_at > self.limits.dump_drain_s
