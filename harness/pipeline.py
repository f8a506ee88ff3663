"""One run: kernel spec -> boot (or host) -> agent -> RunResult. Used by `run`, `ab`, `bisect`.

Infrastructure failures after the run started are recorded in RunResult.infra_error (and
as error cases), so a caller never loses what was already collected; usage errors (a bad
spec, a malformed topology or plan) raise UserError before anything starts.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness.environment import collect
from harness.kernel import spec as kernel_spec
from harness.kernel.model import Kernel
from harness.paths import GUEST_DIR
from harness.results.assemble import assemble, boot_step, read_records
from harness.results.model import RunResult, StepResult
from harness.suite import plans
from harness.vm import accel as accel_mod
from harness.vm import topology as topo_mod
from harness.vm.console import ConsoleOutcome, Timeouts, supervise
from harness.vm.launch import BootSpec, agent_argv, find_vng, vng_argv, vng_env

log = logging.getLogger(__name__)

GUEST_WORKDIR = "/tmp/harness-work"  # a tmpfs overlay inside virtme-ng guests


@dataclass(frozen=True)
class RunRequest:
    kernel: str
    out_dir: Path
    topology: str = "default"
    plan: str = "quick"
    accel: str = "auto"
    repetition: int = 0
    append: tuple[str, ...] = ()
    runtime_s: int | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    scratch: Path | None = None  # host mode: the only place the agent may write
    keep_images: bool = False


def plan_append(plan: dict) -> tuple[str, ...]:
    """Kernel command-line words a plan needs. A plan that measures stack depth gets the
    ftrace stack tracer from boot (`stacktrace`): enabling it later live-patches every
    function with int3 while other vCPUs run, which oopses guests under TCG."""
    traced = plan.get("trace_stack") or any(s.get("check") == "stack" for s in plan["steps"])
    return ("stacktrace",) if traced else ()


def guest_python() -> str:
    """The interpreter the agent runs with: Debian's python3 is there in guest and host."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def fresh_shared_dir(out_dir: Path) -> Path:
    """The directory shared with the agent (plan in, records out), emptied for this run."""
    shared = out_dir / "shared"
    shutil.rmtree(shared, ignore_errors=True)
    shared.mkdir(parents=True)
    return shared


def _boot_spec(
    req: RunRequest,
    kernel: Kernel,
    topology: topo_mod.Topology,
    plan: dict,
    accel: str,
    shared: Path,
    images: dict[str, Path],
) -> BootSpec:
    assert kernel.image is not None
    return BootSpec(
        image=kernel.image,
        exec_argv=agent_argv(guest_python(), GUEST_DIR / "agent.py", shared / "plan.json", shared),
        rw_dirs=(shared,),
        qemu_args=tuple(topo_mod.qemu_argv(topology, images)),
        append=tuple(topology.kernel_append()) + plan_append(plan) + req.append,
        accel=accel,
        cpus=topology.cpus,
        memory_mb=topology.memory_mb,
        vng=find_vng(),
    )


def _boot(
    req: RunRequest,
    kernel: Kernel,
    topology: topo_mod.Topology,
    plan: dict,
    accel: str,
    shared: Path,
) -> ConsoleOutcome:
    """Create the disks, boot under console supervision, always remove the disks."""
    images_dir = req.out_dir / "disks"
    try:
        images = topo_mod.create_images(topology, images_dir)
        boot = _boot_spec(req, kernel, topology, plan, accel, shared, images)
        argv = vng_argv(boot)
        (req.out_dir / "vng-argv.json").write_text(json.dumps(argv, indent=1))
        log.info(
            "booting %s (%s, %s) under %s",
            kernel.release,
            kernel.spec,
            topology.name,
            accel.upper(),
        )
        return supervise(
            argv,
            req.out_dir / "console.log",
            req.timeouts,
            env=vng_env(boot.vng, dict(os.environ)),
            progress=lambda msg: log.info("[%s] %s", kernel.release, msg),
        )
    finally:
        if not req.keep_images:
            shutil.rmtree(images_dir, ignore_errors=True)


def _steps(plan: dict, shared: Path, outcome: ConsoleOutcome) -> list[StepResult]:
    """The boot case, then one case per planned step."""
    booted = outcome.first_marker_s is not None
    boot_splats = [
        s for s, sid in zip(outcome.splats, outcome.splat_steps, strict=True) if sid is None
    ]
    steps = [boot_step(outcome.reason, booted, boot_splats, outcome.first_marker_s or 0.0)]
    return steps + assemble(
        plan["steps"],
        read_records(shared / "steps.jsonl"),
        outcome.reason,
        outcome.running_step,
        outcome.splats,
        outcome.splat_steps,
    )


def run_one(req: RunRequest, kernel: Kernel | None = None) -> RunResult:
    """Run req.plan on one kernel once. `kernel` skips resolving req.kernel again."""
    kernel = kernel or kernel_spec.resolve(req.kernel)
    if kernel.is_host:
        from harness.hostrun import run_on_host

        return run_on_host(req, kernel)
    topology = topo_mod.load(req.topology)
    shared = fresh_shared_dir(req.out_dir)
    plan = plans.build_plan(
        req.plan,
        disks=topology.plan_disks(),
        mode="vm",
        workdir=GUEST_WORKDIR,
        runtime_s=req.runtime_s,
    )
    (shared / "plan.json").write_text(json.dumps(plan, indent=2))
    chosen = accel_mod.choose(req.accel, kernel.image)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()
    outcome = _boot(req, kernel, topology, plan, chosen.name, shared)
    fio_version = agent_info(shared).get("fio_version", "")
    return RunResult(
        kernel=kernel.info(),
        environment=collect(
            chosen.name, chosen.note, req.out_dir, topology.cpus, topology.memory_mb, fio_version
        ),
        topology=topology.name,
        plan=plan.get("name", req.plan),
        steps=tuple(_steps(plan, shared, outcome)),
        splats=outcome.splats,
        console_log=str(req.out_dir / "console.log"),
        infra_error="" if outcome.reason == "done" else _infra_message(outcome),
        repetition=req.repetition,
        started=started,
        duration_s=time.monotonic() - t0,
        stop_reason=outcome.reason,
    )


def agent_info(shared: Path) -> dict:
    try:
        return json.loads((shared / "agent.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _infra_message(outcome: ConsoleOutcome) -> str:
    reason = outcome.reason
    where = f" during {outcome.running_step}" if outcome.running_step else ""
    if reason == "panic":
        first = next((s for s in outcome.splats if s.kind == "panic"), None)
        title = f": {first.title}" if first else ""
        return f"kernel panic{where}{title}"
    if reason == "eof" and outcome.first_marker_s is None:
        return "the VM exited before the agent started (see console.log)"
    return f"run stopped ({reason}){where}"
