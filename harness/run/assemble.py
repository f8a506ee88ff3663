"""Turn what a run left behind (plan, agent records, console outcome) into StepResults.

Pure: the agent's records are the results; the console outcome adds what the agent could
not say itself — splats, the step a panic or timeout cut short, the steps that never ran.
A case is never silently absent: every planned step appears exactly once.

When the kernel stopped the run (panic, oops, hang), the step it hit fails with what the
kernel said ("hang in STEP: fio blocked in A <- B <- C"), the steps it had finished keep
their records and figures, and the steps after it are skipped "not run: kernel oopsed in
STEP" (details.not_reached names the step), never "never ran".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness.klog.stacks import HANG_SPLATS, hang_message
from harness.results.model import Splat, StepResult, StepStatus, step_from_record
from harness.results.untrusted import RECORDS_CAP, read_untrusted
from harness.suite.plan import Step

BOOT_STEP = "boot"
KERNEL_LOG_STEP = "kernel-log"  # host mode: splats in the host's kernel log during the run

_CUT_SHORT = {
    "panic": "the kernel panicked during this step",
    "boot-timeout": "the VM did not boot in time",
    "step-timeout": "this step exceeded its timeout; the VM was stopped",
    "silence": "the console fell silent past the watchdog limit; the VM was stopped",
    "total-timeout": "the run exceeded its total time limit; the VM was stopped",
    "eof": "the VM exited before the agent finished",
    "done": "the agent finished without recording this step",
    "unresponsive": "the guest stopped answering (no console output, no blocked-task dump)",
}
KERNEL_STOPS = {"panic": "panicked", "oops": "oopsed", "hang": "hung"}


def read_records(path: Path) -> list[dict[str, Any]]:
    """Agent step records (JSON lines); a torn last line from a crash is ignored. The guest
    writes the file: read as untrusted (regular file only, no symlink, capped)."""
    records = []
    for line in read_untrusted(path, RECORDS_CAP).data.decode(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):  # torn, or hostile (too deep, huge numbers)
            continue
        if isinstance(record, dict) and "id" in record:
            records.append(record)
    return records


def _with_splats(step: StepResult, splats: Sequence[Splat]) -> StepResult:
    if not splats:
        return step
    first = splats[0]
    message = f"kernel {first.kind} during step: {first.title}"
    if step.message:
        message += f" (step said: {step.message})"
    status = step.status if step.status in (StepStatus.FAIL, StepStatus.ERROR) else "fail"
    return StepResult(
        **{**step.__dict__, "status": status, "message": message, "splats": tuple(splats)}
    )


def with_stalls(step: StepResult, stalls: Sequence[Splat]) -> StepResult:
    """Hung-task reports whose task ran on, blocked-task dumps of a run that went on
    (harness.vm.faults): noted, never a failure."""
    if not stalls:
        return step
    titles = [s.title for s in stalls]
    message = step.message or f"stall, not a hang: {titles[0]} (the run went on)"
    details = {**step.details, "stalls": titles}
    return StepResult(**{**step.__dict__, "message": message, "details": details})


def boot_step(
    reason: str,
    booted: bool,
    boot_splats: Sequence[Splat],
    duration: float,
    step_id: str = BOOT_STEP,
) -> StepResult:
    """The synthetic `boot` case: the kernel came up and its log stayed clean outside steps."""
    if not booted:
        step = StepResult(step_id, "setup", "error", _CUT_SHORT.get(reason, reason), duration)
    else:
        step = StepResult(step_id, "setup", "pass", "", duration)
    return _with_splats(step, boot_splats)


def _faulted(step: StepResult, reason: str, splats: Sequence[Splat]) -> StepResult:
    """The step the kernel stopped the run in: a failure carrying the kernel's word."""
    first = next((s for s in splats if s.kind not in HANG_SPLATS), None)
    if first is not None:
        message = f"kernel {first.kind} in {step.id}: {first.title}"
    else:
        message = hang_message(step.id, splats) or f"kernel {KERNEL_STOPS[reason]} in {step.id}"
    if step.message:
        message += f" (step said: {step.message})"
    return StepResult(
        **{**step.__dict__, "status": "fail", "message": message, "splats": tuple(splats)}
    )


def assemble(
    planned: Iterable[Step],
    records: Iterable[dict[str, Any]],
    reason: str,
    running_step: str | None,
    splats: Sequence[Splat],
    splat_steps: Sequence[str | None],
    fault_step: str | None = None,
    stalls: Sequence[Splat] = (),
    stall_steps: Sequence[str | None] = (),
) -> list[StepResult]:
    """One StepResult per planned step, in plan order, with splats attached to their step.

    fault_step: the step a kernel stop (reason panic/oops/hang) hit; running_step if None.
    stalls: hung-task reports whose task ran on and dumps of a run that went on, noted on
    their step (stall_steps)."""
    by_id = {r["id"]: r for r in records}
    splats_for: dict[str | None, list[Splat]] = {}
    for splat, sid in zip(splats, splat_steps, strict=True):
        splats_for.setdefault(sid, []).append(splat)
    steps = []
    cut_message = _CUT_SHORT.get(reason, reason)
    kernel_stop = reason in KERNEL_STOPS
    fault = (fault_step or running_step) if kernel_stop else None
    reached = fault is None
    for item in planned:
        sid = item.id
        base = {"target": item.target_name, "workload": item.workload_name}
        if sid in by_id:
            step = step_from_record({**base, **by_id[sid]})
        elif sid == fault:
            step = StepResult(sid, item.kind, "fail", "", **base)
        elif sid == running_step:
            step = StepResult(sid, item.kind, "error", cut_message, **base)
        elif kernel_stop and reached:
            why = f"not run: kernel {KERNEL_STOPS[reason]} in {fault or 'boot'}"
            step = StepResult(
                sid, item.kind, "skip", why, **base, details={"not_reached": fault or "boot"}
            )
        else:
            why = f"never ran: the run ended early ({reason})" if reason != "done" else cut_message
            step = StepResult(sid, item.kind, "error", why, **base)
        if sid == fault:
            step, reached = _faulted(step, reason, splats_for.get(sid, [])), True
        else:
            step = _with_splats(step, splats_for.get(sid, []))
        mine = [x for x, at in zip(stalls, stall_steps, strict=True) if at == sid]
        steps.append(with_stalls(step, mine))
    return steps
