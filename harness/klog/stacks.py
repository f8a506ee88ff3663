"""Call stacks in kernel reports: the frames of an oops, the tasks of a hung-task report or
a sysrq-w blocked-task dump, and the short forms verdicts use ("fio blocked in A <- B <- C",
a crash signature). Pure functions over a splat's excerpt."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from harness.klog.splats import message_of
from harness.results.model import Splat

# The splat kinds that report blocked tasks (their excerpts list task stacks).
HANG_SPLATS = ("hung_task", "blocked_tasks")
_FRAME = re.compile(r"^\s*(\?\s+)?([A-Za-z_.][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")
_TASK = re.compile(r"^task:(\S+)\s+state:(\S)")
_RIP = re.compile(r"^RIP: 0010:([A-Za-z_.][\w.]*)\+0x")
_TRACE_END = re.compile(r"^\s*(</TASK>|RIP: 0033|---\[ end)")
# Frames every blocked task shows: where it sleeps, not why.
_SLEEP = re.compile(
    r"^(__schedule|schedule\w*|io_schedule\w*|preempt_schedule\w*|__wait_for_common"
    r"|wait_for_completion\w*|__wait_on_bit\w*|out_of_line_wait_on_bit\w*|bit_wait\w*"
    r"|wait_on_page_bit\w*|folio_wait_bit\w*|do_wait_for_common|__pfx_\w+|ret_from_fork\w*"
    r"|kthread|worker_thread|process_one_work|entry_SYSCALL_64\w*|do_syscall_64"
    r"|__x64_sys_\w+|x64_sys_call|asm_\w+)$"
)


@dataclass(frozen=True)
class Task:
    """One task of a blocked-task report: its name, state letter and reliable frames
    (innermost first, '?' guesses dropped)."""

    name: str
    state: str
    frames: tuple[str, ...]

    @property
    def cause(self) -> tuple[str, ...]:
        """The frames that say why it is blocked: the sleep primitives dropped."""
        return tuple(f for f in self.frames if not _SLEEP.match(f))


def frames(excerpt: str) -> tuple[str, ...]:
    """Reliable frames of the first call trace in `excerpt`, innermost first."""
    out: list[str] = []
    in_trace = False
    for line in excerpt.splitlines():
        message = message_of(line)
        if message.strip().startswith("Call Trace:"):
            in_trace = True
        elif in_trace and _TRACE_END.match(message):
            break
        elif in_trace:
            match = _FRAME.match(message)
            if match and not match.group(1):
                out.append(match.group(2))
    return tuple(out)


def rip(excerpt: str) -> str:
    """The kernel function at RIP in an oops, or ''."""
    for line in excerpt.splitlines():
        match = _RIP.match(message_of(line))
        if match:
            return match.group(1)
    return ""


def tasks(excerpt: str) -> list[Task]:
    """The tasks listed in a hung-task report or a sysrq-w dump, in order."""
    found: list[Task] = []
    name, state, stack, depth = "", "", [], 0
    for line in excerpt.splitlines():
        message = message_of(line)
        head = _TASK.match(message)
        if head:
            if name:
                found.append(Task(name, state, tuple(stack)))
            name, state, stack, depth = head.group(1), head.group(2), [], 0
            continue
        if not name or depth < 0:
            continue
        if _TRACE_END.match(message):
            depth = -1  # this task's trace is over; its user registers follow
            continue
        match = _FRAME.match(message)
        if match and not match.group(1):
            stack.append(match.group(2))
    if name:
        found.append(Task(name, state, tuple(stack)))
    return found


def top(names: Sequence[str], n: int = 3) -> str:
    """'A <- B <- C': the innermost n frames, callers to the right."""
    return " <- ".join(names[:n])


def blocked_summary(all_tasks: Sequence[Task]) -> str:
    """'fio blocked in A <- B <- C (+2 more tasks)' for the most telling blocked task: the
    first one in D state whose stack says more than where it sleeps."""
    blocked = [t for t in all_tasks if t.state == "D"] or list(all_tasks)
    if not blocked:
        return ""
    best = next((t for t in blocked if t.cause), blocked[0])
    where = top(best.cause or best.frames) or "an unknown place"
    names = {t.name for t in blocked} - {best.name}
    more = f" (+{len(names)} more task{'s' if len(names) > 1 else ''})" if names else ""
    return f"{best.name} blocked in {where}{more}"


def signature(kind: str, excerpt: str, n: int = 3) -> str:
    """What makes two crashes 'the same': the splat kind plus its top frames (RIP first
    for an oops; the most telling blocked task's frames for a hang)."""
    if kind in ("hung_task", "blocked_tasks"):
        blocked = [t for t in tasks(excerpt) if t.state == "D"]
        best = next((t for t in blocked if t.cause), blocked[0] if blocked else None)
        names = (best.cause or best.frames) if best else ()
    else:
        first = rip(excerpt)
        names = tuple(dict.fromkeys(([first] if first else []) + list(frames(excerpt))))
    return f"{kind}: {top(names, n)}" if names else kind


def hang_message(step_id: str, splats: Sequence[Splat]) -> str:
    """'hang in STEP: fio blocked in A <- B <- C' from the step's hung-task reports and
    blocked-task dumps ('' when they list no task)."""
    found = [t for s in splats if s.kind in HANG_SPLATS for t in tasks(s.excerpt)]
    summary = blocked_summary(found)
    return f"hang in {step_id}: {summary}" if summary else ""
