"""Console supervision with pexpect: one stream of lines fanned out to the log file, the splat
scanner and the marker tracker; boot, per-step and silence timeouts; the VM's process group
is killed on every way out.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pexpect

from harness.klog.markers import parse_marker
from harness.klog.splats import SplatScanner
from harness.proc import kill_group
from harness.results.model import Splat
from harness.signals import Interrupted, reason_of, signame_of
from harness.vm.faults import FaultLimits, FaultWatch
from harness.vm.stages import RunStages

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 60.0  # a long step reports that it is still running this often
PANIC_DRAIN_S = 5.0  # after a fatal splat starts, read this long for the rest of the trace
DONE_GRACE_S = 3.0  # after the agent's final marker, give the guest this long to power off


class SuperviseInterrupted(Interrupted):
    """A signal stopped a supervised VM: `outcome` is what its console showed until then."""

    def __init__(self, signame: str, outcome: ConsoleOutcome) -> None:
        super().__init__(signame)
        self.outcome = outcome


@dataclass(frozen=True)
class Timeouts:
    boot_s: float = 300.0  # start -> the agent's first marker
    silence_s: float = 600.0  # no console output at all for this long
    step_grace_s: float = 60.0  # added to each step's own timeout_s
    total_s: float = 4 * 3600.0
    faults: FaultLimits = FaultLimits()  # how fast an oops or a hang ends the run

    def __post_init__(self) -> None:
        if isinstance(self.faults, dict):  # read back from a serialised RunRequest
            object.__setattr__(self, "faults", FaultLimits(**self.faults))


@dataclass
class _Tracker:
    """Mutable state while reading: which step runs, what ended, where splats belong."""

    started: float
    first_marker_s: float | None = None
    current: str | None = None
    current_deadline: float | None = None
    ended: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    step_at_line: list[tuple[int, str | None]] = field(default_factory=list)
    agent_rc: int | None = None
    current_since: float = 0.0
    last_note: float = 0.0

    def on_marker(self, event: dict, line_no: int, now: float, grace: float) -> None:
        if self.first_marker_s is None:
            self.first_marker_s = now - self.started
        kind = event.get("event")
        if kind == "begin":
            self.current = str(event.get("id"))
            self.current_since = self.last_note = now
            self.order.append(self.current)
            timeout = float(event.get("timeout_s") or 0) or 3600.0
            self.current_deadline = now + timeout + grace
            self.step_at_line.append((line_no, self.current))
        elif kind == "end":
            event["elapsed_s"] = now - self.current_since
            self.ended[str(event.get("id"))] = str(event.get("status"))
            self.current, self.current_deadline = None, None
            self.step_at_line.append((line_no + 1, None))
        elif kind == "done":
            self.agent_rc = int(event.get("rc", 2))

    def step_for_line(self, line_no: int) -> str | None:
        step = None
        for start, sid in self.step_at_line:
            if start > line_no:
                break
            step = sid
        return step


@dataclass(frozen=True)
class ConsoleOutcome:
    """How the VM run ended, as seen on the console."""

    # done | panic | oops | hang | boot-timeout | step-timeout | silence | unresponsive |
    # total-timeout | eof
    reason: str
    agent_rc: int | None
    steps_begun: tuple[str, ...]
    steps_ended: dict[str, str]
    running_step: str | None
    splats: tuple[Splat, ...]
    splat_steps: tuple[str | None, ...]  # the step running when each splat started
    first_marker_s: float | None
    duration_s: float
    exit_status: int | None
    fault_step: str | None = None  # the step an oops/hang/panic hit (None: boot)
    fault_kind: str = ""  # the report that ended the run (oops, hung_task, blocked_tasks ...)
    dump_requested: bool = False  # the host asked the guest for a blocked-task dump
    dump_answered: bool = False  # ... and the kernel printed one
    # Hung-task reports whose task ran on, blocked-task dumps of a run that went on
    # (harness.vm.faults FaultWatch.is_stall): kept out of `splats`
    stalls: tuple[Splat, ...] = ()
    stall_steps: tuple[str | None, ...] = ()
    # The last line user space printed before the agent's first marker (a shell's or
    # Python's complaint when the agent could not start); "" once the agent spoke
    last_words: str = ""


LAST_WORDS_CHARS = 200
_KERNEL_LINE = re.compile(r"^\s*(<\d+>)?\[\s*\d+\.\d+\]")


def _is_user_space(text: str) -> bool:
    """A console line printed by a program, not by the kernel's printk, and not blank."""
    return bool(text.strip()) and not _KERNEL_LINE.match(text)


def _deadline_reason(t: _Tracker, now: float, last_output: float, tm: Timeouts) -> str | None:
    if now - t.started > tm.total_s:
        return "total-timeout"
    if t.first_marker_s is None and now - t.started > tm.boot_s:
        return "boot-timeout"
    if t.current_deadline is not None and now > t.current_deadline:
        return "step-timeout"
    if now - last_output > tm.silence_s:
        return "silence"
    return None


@dataclass
class _Session:
    """One console stream read once and fanned out: log file, splat scanner, markers."""

    log_fh: TextIO
    timeouts: Timeouts
    progress: Callable[[str], None] | None
    scanner: SplatScanner = field(default_factory=SplatScanner)
    tracker: _Tracker = field(default_factory=lambda: _Tracker(started=time.monotonic()))
    line_no: int = 0
    fatal_at: float | None = None
    done_at: float | None = None
    last_output: float = field(default_factory=time.monotonic)
    watch: FaultWatch = field(default_factory=lambda: FaultWatch(FaultLimits()))
    fatal_step: str | None = None
    stages: RunStages | None = None
    last_words: str = ""

    def line(self, text: str, now: float) -> None:
        self.line_no += 1
        self.last_output = now
        self.log_fh.write(text + "\n")
        self.log_fh.flush()
        if self.tracker.first_marker_s is None and _is_user_space(text):
            self.last_words = "".join(c for c in text.strip() if c.isprintable())[:LAST_WORDS_CHARS]
        self.scanner.feed(text)
        if self.stages:
            self.stages.line(text)
        self.watch.feed(self.scanner, self.tracker.current, now)
        event = parse_marker(text)
        if event:
            if event.get("event") == "blocked-dump" and event.get("why") == "timeout":
                self.watch.agent_dumped(self.scanner, self.tracker.current, now)
            self.tracker.on_marker(event, self.line_no, now, self.timeouts.step_grace_s)
            if self.stages:
                self.stages.marker(event)
            if self.progress:
                self.progress(_describe(event))
            if event.get("event") == "done":
                self.done_at = now
        if self.scanner.fatal and self.fatal_at is None:
            self.fatal_at, self.fatal_step = now, self.tracker.current

    def tail(self, text: str) -> None:
        """What was left unterminated when the stream ended."""
        self.log_fh.write(text)
        for extra in text.splitlines():
            self.line_no += 1
            self.scanner.feed(extra)

    def stop_reason(self, now: float) -> str | None:
        """Why to stop reading now, or None to go on."""
        if self.fatal_at is not None:
            return "panic" if now - self.fatal_at > PANIC_DRAIN_S else None
        if self.done_at is not None:
            return "done" if now - self.done_at > DONE_GRACE_S else None
        t = self.tracker
        if self.progress and t.current and now - t.last_note > PROGRESS_EVERY_S:
            t.last_note = now
            self.progress(f"still running {t.current} ({now - t.current_since:.0f}s)")
        deadline = _deadline_reason(t, now, self.last_output, self.timeouts)
        stop = self.watch.check(self.scanner, t.current, deadline, now, self.last_output)
        if stop:
            self.log_fh.write(f"@@HOST {stop}: stopping the VM\n")
        return stop

    def outcome(self, reason: str, exit_status: int | None) -> ConsoleOutcome:
        if self.scanner.fatal and reason == "eof":
            reason = "panic"
        t = self.tracker
        w = self.watch
        if reason in ("step-timeout", "silence") and w.dump_requested and not w.dump_answered:
            reason = "unresponsive"  # not even the kernel answered a dump request
        fault_step = self.fatal_step if reason == "panic" else w.step
        if reason not in ("panic", "oops", "hang"):
            fault_step = t.current
        kept: list[tuple[Splat, str | None]] = []
        stalls: list[tuple[Splat, str | None]] = []
        for splat in self.scanner.finish():
            sid = t.step_for_line(splat.line)
            (stalls if w.is_stall(splat, sid, reason) else kept).append((splat, sid))
        return ConsoleOutcome(
            reason=reason,
            agent_rc=t.agent_rc,
            steps_begun=tuple(t.order),
            steps_ended=dict(t.ended),
            running_step=t.current,
            splats=tuple(s for s, _ in kept),
            splat_steps=tuple(sid for _, sid in kept),
            first_marker_s=t.first_marker_s,
            duration_s=time.monotonic() - t.started,
            exit_status=exit_status,
            fault_step=fault_step,
            fault_kind=w.kind or ("panic" if reason == "panic" else ""),
            dump_requested=w.dump_requested,
            dump_answered=w.dump_answered,
            stalls=tuple(s for s, _ in stalls),
            stall_steps=tuple(sid for _, sid in stalls),
            last_words="" if t.first_marker_s is not None else self.last_words,
        )


def supervise(
    argv: Sequence[str],
    log_path: Path,
    timeouts: Timeouts,
    env: dict[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
    kill_grace_s: float = 3.0,
    request_dump: Callable[[], None] | None = None,
    steps_total: int | None = None,
) -> ConsoleOutcome:
    """Run argv (vng ...) under a pty, read its console until the agent is done or a limit
    hits, kill the whole process group, and report what happened. console.log is always
    written, line by line, and closed in `finally`. `request_dump` asks the guest for a
    sysrq-w blocked-task dump (harness.vm.faults says when). The boot's stage and the plan's
    steps (n of `steps_total`) are reported as harness.progress events."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    child = pexpect.spawn(
        argv[0],
        list(argv[1:]),
        encoding="utf-8",
        codec_errors="replace",
        env=env,
        echo=False,
        maxread=65536,
        dimensions=(50, 500),
    )
    reason = "eof"
    interrupted: KeyboardInterrupt | None = None
    stages = RunStages(steps_total)
    try:
        with log_path.open("w", encoding="utf-8") as log_fh:
            session = _Session(log_fh, timeouts, progress, stages=stages)
            session.watch = FaultWatch(timeouts.faults, request_dump)
            while True:
                idx = child.expect(["\r?\n", pexpect.EOF, pexpect.TIMEOUT], timeout=1.0)
                if idx == 0:
                    session.line(child.before.rstrip("\r"), time.monotonic())
                elif idx == 1:
                    session.tail(child.before or "")
                    reason = "done" if session.tracker.agent_rc is not None else "eof"
                    break
                stop = session.stop_reason(time.monotonic())
                if stop:
                    reason = stop
                    break
    except KeyboardInterrupt as exc:  # SIGINT/SIGTERM/SIGHUP (harness.signals): say what ran
        interrupted, reason = exc, reason_of(exc)
    finally:
        stages.close()
        kill_group(child.pid, grace_s=kill_grace_s)
        child.close(force=True)
    outcome = session.outcome(reason, child.exitstatus)
    if interrupted is not None:
        raise SuperviseInterrupted(signame_of(interrupted), outcome) from interrupted
    return outcome


def _describe(event: dict) -> str:
    kind = event.get("event")
    if kind == "begin":
        return f"running {event.get('id')} (timeout {event.get('timeout_s')}s)"
    if kind == "end":
        return f"{event.get('status')}: {event.get('id')} ({event.get('elapsed_s', 0):.1f}s)"
    return f"agent {kind} {event.get('rc', '')}".strip()
