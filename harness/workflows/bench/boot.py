"""Boot benchmark: harness boot (vng start -> the agent's first step begins) against the
physical floor (bare QEMU + busybox of the same kernel to init: an initramfs, or a root
disk for a kernel without initramfs support), both under the same accel."""

from __future__ import annotations

import json
import logging
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import InfraError, UserError
from harness.kernel.model import Kernel
from harness.kernel.resolve import resolve_kernel
from harness.results.model import RunResult, StepStatus
from harness.run.engine import executor_for, require
from harness.run.executor import keep_log
from harness.run.request import RunRequest
from harness.vm import accel as accel_mod
from harness.vm.initramfs import READY_MARKER, qemu_floor_argv, ready_uptime

log = logging.getLogger(__name__)

# Guest milestones virtme-ng prints, in boot order, with the kernel's own timestamps.
MILESTONES = {
    "init": re.compile(r"Run /\S* as init process"),  # vng's initramfs, or virtme-ng-init itself
    # a modular kernel's initramfs (harness.vm.boot_initramfs, or vng's) switching to the root
    "root": re.compile(r"(harness|virtme) initramfs: done"),
    "tmpfiles": re.compile(r"virtme-ng-init: running systemd-tmpfiles"),
    "basic-done": re.compile(r"virtme-ng-init: basic initialization done"),
    "udev-start": re.compile(r"virtme-ng-init: Starting systemd-udevd"),
    "udev-done": re.compile(r"virtme-ng-init: udev is done"),
    "script": re.compile(r"virtme-ng-init: starting script"),
}
_STAMP = re.compile(r"^\[\s*(\d+\.\d+)\]")
_EVENT = re.compile(r'^@@HARNESS .*"event": "(start|begin)"')
STAGES = ("qemu+firmware", "kernel", "init", "agent start", "agent prep")
FLOOR_STAGES = ("qemu+firmware", "kernel")


@dataclass(frozen=True)
class BootFigures:
    floor_s: list[float]
    harness_s: list[float]
    milestones: dict[str, float]  # kernel timestamp of each milestone in the last boot
    stages: tuple[dict[str, float], ...] = ()  # per rep: where the boot's time went
    floor_stages: tuple[dict[str, float], ...] = ()  # per rep: the floor's split
    rebooted: tuple[str, ...] = ()  # boots that failed and were booted again: why, and log

    @property
    def ratio(self) -> float:
        return statistics.median(self.harness_s) / statistics.median(self.floor_s)

    def stage_medians(self) -> dict[str, float]:
        return _medians(self.stages, STAGES)

    def floor_stage_medians(self) -> dict[str, float]:
        return _medians(self.floor_stages, FLOOR_STAGES)


def _medians(per_rep: tuple[dict[str, float], ...], names: tuple[str, ...]) -> dict[str, float]:
    return {
        n: statistics.median(s[n] for s in per_rep)
        for n in names
        if per_rep and all(n in s for s in per_rep)
    }


def event_uptimes(console_text: str) -> dict[str, float]:
    """The guest's uptime at the agent's start marker and at its first step's begin marker
    ("start", "begin"; absent when the marker or its uptime is)."""
    found: dict[str, float] = {}
    for line in console_text.splitlines():
        event = _EVENT.match(line)
        if event and event.group(1) not in found:
            up = json.loads(line.split(" ", 1)[1]).get("uptime_s")
            if isinstance(up, int | float) and up >= 0:
                found[event.group(1)] = float(up)
    return found


def stages(start_s: float, marks: dict[str, float], events: dict[str, float]) -> dict[str, float]:
    """Split one boot (host: vng start -> the agent's start marker, start_s) into QEMU start +
    firmware (everything before the kernel's clock, vng's own start included), kernel (to
    init), init (virtme-ng-init: mounts, tmpfiles, udev, to the script), the agent's own start
    (script -> its start marker) and its preparation (disks, tracepoints: start -> the first
    step's begin), from the guest's clock."""
    if "start" not in events or "init" not in marks or "script" not in marks:
        return {}
    split = {
        "qemu+firmware": start_s - events["start"],
        "kernel": marks["init"],
        "init": marks["script"] - marks["init"],
        "agent start": events["start"] - marks["script"],
    }
    if "begin" in events:
        split["agent prep"] = events["begin"] - events["start"]
    return split


def milestones(console_text: str) -> dict[str, float]:
    """Kernel timestamps (s since boot) of the virtme-ng milestones found in a console log."""
    found: dict[str, float] = {}
    for line in console_text.splitlines():
        stamp = _STAMP.match(line)
        if not stamp:
            continue
        for name, pattern in MILESTONES.items():
            if name not in found and pattern.search(line):
                found[name] = float(stamp.group(1))
    return found


def floor_boot(kernel: Kernel, accel: str, log_path: Path) -> tuple[float, dict[str, float]]:
    """Seconds for a bare QEMU boot of the kernel to reach busybox init, and its split; the
    console goes to log_path."""
    argv = qemu_floor_argv(kernel.image, kernel.config, accel)
    t0 = time.monotonic()
    out = proc.run(argv, timeout=300, check=False)
    elapsed = time.monotonic() - t0
    log_path.write_text(out.stdout)
    if READY_MARKER not in out.stdout:
        tail = " | ".join(out.stdout.strip().splitlines()[-3:])
        raise InfraError(
            f"the bare-QEMU floor boot never reached busybox init: {tail} ({log_path})"
        )
    up = ready_uptime(out.stdout)
    split = {} if up is None else {"qemu+firmware": elapsed - up, "kernel": up}
    return elapsed, split


BOOT_PLAN = {
    "name": "boot-bench",
    "description": "one 1-second fio step: the boot benchmark times the way to it",
    "runtime_s": 1,
    "size_mb": 64,
    "fio": [{"workloads": ["randread-4k"], "targets": ["raw-nvme0"]}],
}


def write_boot_plan(directory: Path) -> Path:
    path = directory / "boot-bench-plan.json"
    path.write_text(json.dumps(BOOT_PLAN))
    return path


def measure(
    spec: str, reps: int, accel: str, out: Path, guest_root: str = "host"
) -> tuple[BootFigures, str]:
    """Boot `spec` reps times bare and through the harness (with that guest root); the
    harness runs' files stay under `out` (every log an error names must still exist
    afterwards)."""
    kernel = require(resolve_kernel(spec))
    if kernel.is_host:
        raise UserError("bench boot needs a kernel to boot, not 'host'")
    chosen = accel_mod.choose(accel, kernel.image, kernel.config)
    floors, floor_split, harness_s, marks, split = [], [], [], {}, []
    rebooted: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    plan = write_boot_plan(out)
    for rep in range(reps):
        floor_s, floor_parts, why = floor_boot_retried(
            kernel, chosen.name, out / f"floor-r{rep}.log"
        )
        rebooted += [why] if why else []
        floors.append(floor_s)
        floor_split.append(floor_parts)
        req = RunRequest(
            kernel=spec,
            out_dir=out / f"r{rep}",
            plan=str(plan),
            accel=chosen.name,
            guest_root=guest_root,
        )
        result, why = harness_boot(req, kernel)
        rebooted += [why] if why else []
        boot = result.steps[0]
        console = Path(result.console_log).read_text(errors="replace")
        marks, events = milestones(console), event_uptimes(console)
        split.append(stages(boot.duration_s, marks, events))
        if "begin" not in events or "start" not in events:
            raise InfraError(f"no first step with its uptime in {result.console_log}")
        harness_s.append(boot.duration_s + events["begin"] - events["start"])
    figures = BootFigures(
        floors, harness_s, marks, tuple(split), tuple(floor_split), tuple(rebooted)
    )
    return figures, chosen.name


def floor_boot_retried(
    kernel: Kernel, accel: str, log_path: Path
) -> tuple[float, dict[str, float], str]:
    """floor_boot, and '' - or, when it did not reach init (the multi-threaded TCG int3
    artefact hit a bare Debian boot here), once more, and why the first was dropped."""
    try:
        return (*floor_boot(kernel, accel, log_path), "")
    except InfraError as exc:
        kept = keep_log(log_path, "attempt1")
        why = f"floor: {str(exc).replace(str(log_path), str(kept))}"
        log.warning("%s; booting the floor again", why)
    return (*floor_boot(kernel, accel, log_path), why)


def _retried(result: RunResult) -> str:
    """Why the run engine booted this run twice (a VM that died, a known emulator
    artefact; harness.verdict), with the first attempt's console log, or ''."""
    first = next(iter(result.verdict.get("artefacts", ())), None)
    if result.verdict.get("attempts", 1) < 2 or not first:
        return ""
    return f"{first.get('summary', '')} ({first.get('console_log', '')})"


def harness_boot(req: RunRequest, kernel: Kernel) -> tuple[RunResult, str]:
    """One timed harness boot, and '' - or why it was booted again: the run engine retries
    a VM that died (QEMU segfaulted under multi-threaded TCG once in ~40 boots here) and
    known emulator artefacts itself; any other failed boot is booted once more here. The
    first attempt's console log is kept as console.attempt1.log. Two failures in a row stop
    the benchmark: that is no hiccup."""
    result = executor_for(kernel).run(req, kernel)
    if result.steps[0].status == StepStatus.PASS:
        return result, _retried(result)
    kept = keep_log(Path(result.console_log), "attempt1")
    why = f"{result.steps[0].message} ({kept})"
    log.warning("harness boot failed: %s; booting again", why)
    result = executor_for(kernel).run(req, kernel)
    if result.steps[0].status != StepStatus.PASS:
        raise InfraError(
            f"harness boot failed twice: {result.steps[0].message} "
            f"({result.console_log}; first: {kept})"
        )
    return result, why
