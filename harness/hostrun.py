"""Host mode: the agent runs on the running kernel, no VM.

Safety: the agent gets no disks (it never writes to a block device the user did not name),
only `--scratch DIR` as its workdir, and creates its own loop devices there; its teardown
runs on exit, on error and on SIGTERM (the supervisor terminates before it kills).
Kernel splats come from the kernel log lines that appeared during the run.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from harness import proc
from harness.environment import collect
from harness.errors import UserError
from harness.kernel.model import Kernel
from harness.paths import GUEST_DIR
from harness.results.assemble import KERNEL_LOG_STEP, assemble, boot_step, read_records
from harness.results.model import RunResult
from harness.suite import plans
from harness.vm.console import supervise
from harness.vm.launch import agent_argv
from harness.vm.splats import scan

if TYPE_CHECKING:
    from harness.pipeline import RunRequest


def _kernel_log() -> list[str]:
    return proc.run(["dmesg"], timeout=30, check=False).stdout.splitlines()


def new_lines(before: list[str], after: list[str]) -> list[str]:
    """Lines of `after` that came after `before` (the ring buffer may have dropped old ones)."""
    if before and before[-1] in after:
        return after[len(after) - after[::-1].index(before[-1]) :]
    return after[len(before) :] if after[: len(before)] == before else after


def run_on_host(req: RunRequest, kernel: Kernel) -> RunResult:
    from harness.pipeline import fresh_shared_dir, guest_python

    if req.scratch is None:
        raise UserError("host mode needs --scratch DIR: the only place the agent may write")
    proc.require_tool("losetup", "util-linux")
    workdir = req.scratch.resolve() / "harness-work"
    workdir.mkdir(parents=True, exist_ok=True)
    shared = fresh_shared_dir(req.out_dir)
    plan = plans.build_plan(
        req.plan, disks=[], mode="host", workdir=str(workdir), runtime_s=req.runtime_s
    )
    (shared / "plan.json").write_text(json.dumps(plan, indent=2))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()
    before = _kernel_log()
    argv = agent_argv(guest_python(), GUEST_DIR / "agent.py", shared / "plan.json", shared)
    outcome = supervise(list(argv), req.out_dir / "agent.log", req.timeouts, kill_grace_s=30.0)
    splats = scan(new_lines(before, _kernel_log()))
    steps = assemble(
        plan["steps"],
        read_records(shared / "steps.jsonl"),
        outcome.reason,
        outcome.running_step,
        (),
        (),
    )
    # dmesg has no step timing: the host kernel's splats get a case of their own.
    steps.insert(0, boot_step("done", True, splats, 0.0, step_id=KERNEL_LOG_STEP))
    info = (
        json.loads((shared / "agent.json").read_text()) if (shared / "agent.json").exists() else {}
    )
    return RunResult(
        kernel=kernel.info(),
        environment=collect(
            "host",
            "host mode: the running kernel, no VM",
            req.out_dir,
            0,
            0,
            info.get("fio_version", ""),
        ),
        topology="host",
        plan=plan.get("name", req.plan),
        steps=tuple(steps),
        splats=tuple(splats),
        console_log=str(req.out_dir / "agent.log"),
        infra_error="" if outcome.reason == "done" else f"agent stopped ({outcome.reason})",
        repetition=req.repetition,
        started=started,
        duration_s=time.monotonic() - t0,
        stop_reason=outcome.reason,
    )
