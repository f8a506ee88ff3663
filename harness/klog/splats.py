"""Find kernel splats (panic, Oops, BUG, WARNING, KASAN, lockdep, hung task, ...) in console text.

Pure and streaming: the console supervisor feeds SplatScanner one line at a time while QEMU
runs (and asks `fatal` to know when to stop waiting); `harness parse-log` and tests run
`scan()` over a saved log. Each splat is typed, titled from its header line, and carries an
excerpt from its first line (including a "cut here" or "=====" line just before the header)
to its end marker: "---[ end trace ...]---", "---[ end Kernel panic ...]---", the closing
"=====" of a KASAN/KFENCE report, or, for reports that have no marker (hung task, lockups,
RCU stalls, lockdep, other "BUG:" reports), the "</TASK>" that closes the call trace; a
sysrq-w blocked-task dump ("sysrq: Show Blocked State", kind blocked_tasks) runs to the
first line that is not part of a task's entry, and is dropped when it lists no task. A
report that never ends is cut at MAX_EXCERPT_LINES, at the next splat, or at the end of
the log (a panic under panic=-1 prints no end marker: the log ends with the VM).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.results.model import Splat

MAX_EXCERPT_LINES = 400
# How far a "cut here" / "=====" line may precede the header it belongs to (WARN() prints
# its message between the two).
_PRELUDE_WINDOW = 4

# ANSI escapes, NULs and other control bytes that serial consoles and pexpect let through.
_NOISE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|[\x00-\x08\x0b-\x1f\x7f]")
# printk prefixes: an optional "<4>" level, "[   12.345678]", an optional caller "[ T123]".
_PREFIX = re.compile(r"(?:<\d>)?\[\s*\d+\.\d+\](?:\[\s*[TC]\d+\])?\s?")

_CUT_HERE = re.compile(r"^-+\[ cut here \]-+$")
_RULE = re.compile(r"^={20,}$")
_END_TRACE = re.compile(r"^---\[ end trace[^\]]*\]---")
_END_PANIC = re.compile(r"^---\[ end Kernel panic")
_REBOOTING = re.compile(r"^Rebooting in \d+ seconds")
_TASK_END = re.compile(r"^\s*</TASK>")
_CALL_TRACE = re.compile(r"^\s*Call Trace:")
_DUMP_TASK = re.compile(r"^task:\S+\s+state:")

# Kinds after which the kernel cannot be trusted to run the rest of a plan: the console
# supervisor ends the step they hit (after a short grace) and stops the VM.
STOPPING_KINDS = (
    "oops",
    "bug",
    "stack_overflow",
    "hung_task",
    "soft_lockup",
    "hard_lockup",
    "rcu_stall",
    "blocked_tasks",
)
HANG_KINDS = ("hung_task", "blocked_tasks")

# "INFO: task kworker/0:7:123 blocked for more than 40 seconds." — the task and how long it
# has been blocked (6.x prints the time since it last ran; older kernels print the timeout).
_HUNG_TASK = re.compile(r"^INFO: task (\S+:\d+) blocked for more than (\d+) seconds")


def hung_task_of(title: str) -> tuple[str, int] | None:
    """('comm:pid', seconds blocked) from a hung-task report's title, or None."""
    match = _HUNG_TASK.match(title)
    return (match[1], int(match[2])) if match else None


_LOCKDEP = (
    r"possible circular locking dependency detected|possible recursive locking detected"
    r"|inconsistent lock state|suspicious RCU usage|bad unlock balance detected"
    r"|possible irq lock inversion dependency detected|held lock freed"
    r"|lock held when returning to user space|\S+-safe -> \S+-unsafe lock order detected"
    r"|Nested lock was not taken|releasing a pinned lock|lock held at task exit time"
)


@dataclass(frozen=True)
class _Rule:
    """A header line pattern, the kind it starts and how that kind of report ends."""

    kind: str
    pattern: re.Pattern[str]
    # How the report ends: "trace" at ---[ end trace (after a "cut here" prelude); "panic"
    # at ---[ end Kernel panic; "rule" at the closing ===== (after a ===== prelude); "task"
    # at the </TASK> closing its call trace (lockdep: after a ===== prelude); "line": the
    # header line is the whole report.
    end: str
    fatal: bool = False


def _rule(kind: str, regex: str, end: str, fatal: bool = False) -> _Rule:
    return _Rule(kind, re.compile(regex), end, fatal)


# Order matters: the first match wins (KASAN before the generic BUG, etc.).
_RULES = (
    _rule(
        "stack_overflow",
        r"^Kernel panic - not syncing: .*(stack guard page|stack overflow|corrupted stack end)",
        "panic",
        fatal=True,
    ),
    _rule("panic", r"^Kernel panic - not syncing", "panic", fatal=True),
    _rule("stack_overflow", r"^BUG: (\w+ )?stack guard page was hit", "trace", fatal=True),
    _rule("stack_overflow", r"^(kernel stack overflow|corrupted stack end detected)", "trace"),
    _rule("kasan", r"^BUG: KASAN: ", "rule"),
    _rule("kfence", r"^BUG: KFENCE: ", "rule"),
    _rule("ubsan", r"^UBSAN: ", "trace"),
    _rule("soft_lockup", r"^(watchdog: )?BUG: soft lockup", "task"),
    _rule("hard_lockup", r"^((NMI )?watchdog: )?Watchdog detected hard LOCKUP", "task"),
    _rule("rcu_stall", r"^(rcu: )?INFO: rcu_\w+ (self-)?detected (expedited )?stall", "task"),
    _rule("hung_task", r"^INFO: task \S+ blocked for more than \d+ seconds", "task"),
    _rule("blocked_tasks", r"^sysrq: Show Blocked State", "dump"),
    # An emulated disk that never completed a command (6.x: "I/O tag 640 (f280) opcode 0x2
    # (I/O Cmd) QID 2 timeout, aborting"; older: "I/O 457 QID 1 timeout, aborting").
    _rule("io_timeout", r"^nvme nvme\d+: I/O (tag )?\d+ .*QID \d+ timeout, aborting", "line"),
    _rule("lockdep", rf"^(WARNING|INFO|BUG): ({_LOCKDEP})", "task"),
    _rule("oops", r"^BUG: (unable to handle|kernel NULL pointer dereference)", "trace"),
    _rule(
        "oops",
        r"^(Oops: |Internal error: Oops|Unable to handle kernel|general protection fault)",
        "trace",
    ),
    _rule("bug", r"^kernel BUG at ", "trace"),
    # Other BUG reports (scheduling while atomic, sleeping in atomic context, bad page
    # state, workqueue lockup) are a dump_stack() with no end marker.
    _rule("bug", r"^BUG: ", "task"),
    _rule("warning", r"^WARNING: (CPU: \d+ (UID: \d+ )?PID: \d+ )?at ", "trace"),
)

# x86 follows "BUG: kernel NULL pointer dereference", "kernel BUG at" and "BUG: ... stack
# guard page was hit" with an "Oops: ..." line that belongs to the same report; elsewhere
# (e.g. "Oops: general protection fault") an Oops line starts a report of its own.
_CONTINUES = re.compile(r"^Oops: ")
_CONTINUED_KINDS = ("oops", "bug", "stack_overflow")
_OFFSETS = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+")
_CPU_PID = re.compile(r"CPU: \d+ (UID: \d+ )?PID: \d+ ")


def clean_line(raw: str) -> str:
    """The console line without \\r, control bytes and ANSI escapes (timestamps kept)."""
    return _NOISE.sub("", raw.replace("\r", "")).rstrip()


def message_of(line: str) -> str:
    """The printk message of a cleaned console line: text after its timestamp prefix.

    A timestamp in the middle of a line (guest output glued to a kernel line) starts
    the message too, so "after-warn[ 12.3] WARNING: ..." still reads as a WARNING.
    """
    match = _PREFIX.search(line)
    return line[match.end() :] if match else line


def _prelude(rule: _Rule, message: str) -> str:
    """If `message` is the line that opens `rule`'s report, the end that report expects."""
    if _CUT_HERE.match(message) and rule.end == "trace":
        return "trace"
    if _RULE.match(message) and (rule.end == "rule" or rule.kind in ("lockdep", "ubsan")):
        return "task" if rule.kind == "lockdep" else "rule"
    return ""


def _title(kind: str, message: str) -> str:
    title = _OFFSETS.sub("", message)
    if kind == "warning":
        title = _CPU_PID.sub("", title)
    return title.strip()


@dataclass
class _Open:
    rule: _Rule
    title: str
    start: int  # 1-based line number of the first excerpt line
    lines: list[str]
    end: str  # the rule's end, except that an old-style UBSAN report ends at =====
    seen_call_trace: bool = False
    tasks: int = 0  # blocked_tasks: "task:" entries so far
    after_task_end: bool = False  # blocked_tasks: the last entry's </TASK> was seen


class SplatScanner:
    """Feed console lines one by one; collect the splats they contain."""

    def __init__(self) -> None:
        self._lineno = 0
        self._recent: list[tuple[int, str, str]] = []  # (lineno, line, message) window
        self._open: _Open | None = None
        self._done: list[Splat] = []
        self._fatal = False
        self.started: list[str] = []  # the kind of every report begun, in order
        self.started_titles: list[str] = []  # ... and its title
        self.dumps_seen = 0  # sysrq-w headers: the kernel answered a blocked-task request
        self.blocked_seen = 0  # tasks listed in those dumps

    @property
    def fatal(self) -> bool:
        """True once a panic (or a report that always ends in one) has started."""
        return self._fatal

    @property
    def splats(self) -> list[Splat]:
        """The splats completed so far (an open one is not included until it ends)."""
        return list(self._done)

    def feed(self, line: str) -> None:
        """Take one console line (without its newline; a trailing \\r is fine)."""
        self._lineno += 1
        text = clean_line(line)
        message = message_of(text)
        rule = self._match(message)
        if rule is not None:
            self._start(rule, message, text)
        elif self._open is not None and self._dump_over(message):
            self._close()
        elif self._open is not None:
            self._continue(text, message)
        self._recent = (self._recent + [(self._lineno, text, message)])[-_PRELUDE_WINDOW:]

    def finish(self) -> list[Splat]:
        """Close a report still open at the end of the log; return all splats."""
        if self._open is not None:
            self._close()
        return self.splats

    def _match(self, message: str) -> _Rule | None:
        current = self._open
        if current and current.rule.kind in _CONTINUED_KINDS and _CONTINUES.match(message):
            return None
        for rule in _RULES:
            if rule.pattern.match(message):
                return rule
        return None

    def _start(self, rule: _Rule, message: str, text: str) -> None:
        if self._open is not None:
            self._close()
        start, lines, end = self._lineno, [text], rule.end
        for lineno, _, old_message in reversed(self._recent):
            prelude = _prelude(rule, old_message)
            if prelude:
                start, end = lineno, prelude
                lines = [t for n, t, _ in self._recent if n >= lineno] + [text]
                break
        self._open = _Open(rule, _title(rule.kind, message), start, lines, end)
        self._fatal = self._fatal or rule.fatal
        self.started.append(rule.kind)
        self.started_titles.append(self._open.title)
        if rule.kind == "blocked_tasks":
            self.dumps_seen += 1
        if end == "line":
            self._close()

    def _dump_over(self, message: str) -> bool:
        """A blocked-task dump ends at the first line after a task's trace that does not
        start the next task."""
        current = self._open
        assert current is not None
        if current.end != "dump" or "@@HARNESS " in message:
            return False  # agent markers may interleave with the kernel's console
        if _DUMP_TASK.match(message):
            current.tasks += 1
            self.blocked_seen += 1
            current.after_task_end = False
            return False
        return current.after_task_end or current.tasks == 0

    def _continue(self, text: str, message: str) -> None:
        current = self._open
        assert current is not None
        current.lines.append(text)
        if _CALL_TRACE.match(message):
            current.seen_call_trace = True
        if self._ends(current, message):
            self._close()
        elif len(current.lines) >= MAX_EXCERPT_LINES:
            self._close()

    @staticmethod
    def _ends(current: _Open, message: str) -> bool:
        if _END_TRACE.match(message) or _END_PANIC.match(message):
            return True
        end = current.end
        if end == "panic":
            return bool(_REBOOTING.match(message))
        if end == "rule":
            return bool(_RULE.match(message))
        if end == "task":
            return current.seen_call_trace and bool(_TASK_END.match(message))
        if end == "dump" and _TASK_END.match(message):
            current.after_task_end = True
        return False

    def _close(self) -> None:
        current = self._open
        assert current is not None
        self._open = None
        if current.end == "dump" and current.tasks == 0:
            return  # an empty dump: nothing was blocked
        title = current.title
        if current.end == "dump":
            title += f" ({current.tasks} task{'s' if current.tasks > 1 else ''} blocked)"
        self._done.append(
            Splat(
                kind=current.rule.kind,
                title=title,
                line=current.start,
                excerpt="\n".join(current.lines),
            )
        )


def scan(lines: Iterable[str]) -> list[Splat]:
    """All splats in an iterable of console lines (e.g. an open log file)."""
    scanner = SplatScanner()
    for line in lines:
        scanner.feed(line.rstrip("\n"))
    return scanner.finish()
