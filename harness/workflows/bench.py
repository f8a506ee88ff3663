"""Boot benchmark: harness boot (vng start -> agent's first step) against the physical floor
(bare QEMU + busybox initramfs of the same kernel to init), both under the same accel."""

from __future__ import annotations

import json
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import InfraError, UserError
from harness.kernel.model import Kernel
from harness.kernel.resolve import resolve_kernel
from harness.run.engine import executor_for, require
from harness.run.request import RunRequest
from harness.vm import accel as accel_mod
from harness.vm.initramfs import READY_MARKER, busybox_initramfs, qemu_floor_argv

# Guest milestones virtme-ng prints, in boot order, with the kernel's own timestamps.
MILESTONES = {
    "init": re.compile(r"Run /init as init process"),
    "tmpfiles": re.compile(r"virtme-ng-init: running systemd-tmpfiles"),
    "udev-start": re.compile(r"virtme-ng-init: Starting systemd-udevd"),
    "udev-done": re.compile(r"virtme-ng-init: udev is done"),
    "script": re.compile(r"virtme-ng-init: starting script"),
}
_STAMP = re.compile(r"^\[\s*(\d+\.\d+)\]")
_START = re.compile(r'^@@HARNESS .*"event": "start"')
STAGES = ("qemu+firmware", "kernel", "init+udev", "agent start")


@dataclass(frozen=True)
class BootFigures:
    floor_s: list[float]
    harness_s: list[float]
    milestones: dict[str, float]  # kernel timestamp of each milestone in the last boot
    stages: tuple[dict[str, float], ...] = ()  # per rep: where the boot's time went

    @property
    def ratio(self) -> float:
        return statistics.median(self.harness_s) / statistics.median(self.floor_s)

    def stage_medians(self) -> dict[str, float]:
        return {n: statistics.median(s[n] for s in self.stages) for n in STAGES
                if all(n in s for s in self.stages) and self.stages}  # fmt: skip


def agent_uptime(console_text: str) -> float | None:
    """The guest's uptime when the agent printed its start marker (None when absent)."""
    for line in console_text.splitlines():
        if _START.match(line):
            event = json.loads(line.split(" ", 1)[1])
            up = event.get("uptime_s")
            return float(up) if isinstance(up, int | float) and up >= 0 else None
    return None


def stages(harness_s: float, marks: dict[str, float], uptime: float | None) -> dict[str, float]:
    """Split one boot (host: vng start -> first marker) into QEMU start + firmware (everything
    before the kernel's clock), kernel (to init), init and udev (to the script) and the
    agent's own start (script -> its first marker), from the guest's clock."""
    if uptime is None or "init" not in marks or "script" not in marks:
        return {}
    return {
        "qemu+firmware": harness_s - uptime,
        "kernel": marks["init"],
        "init+udev": marks["script"] - marks["init"],
        "agent start": uptime - marks["script"],
    }


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


def floor_boot(kernel: Kernel, accel: str) -> float:
    """Seconds for a bare QEMU boot of the kernel to reach busybox init."""
    argv = qemu_floor_argv(kernel.image, busybox_initramfs(), accel)
    t0 = time.monotonic()
    out = proc.run(argv, timeout=300, check=False)
    elapsed = time.monotonic() - t0
    if READY_MARKER not in out.stdout:
        tail = " | ".join(out.stdout.strip().splitlines()[-3:])
        raise InfraError(f"the bare-QEMU floor boot never reached busybox init: {tail}")
    return elapsed


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


def measure(spec: str, reps: int, accel: str, out: Path) -> tuple[BootFigures, str]:
    """Boot `spec` reps times bare and through the harness; the harness runs' files stay
    under `out` (every log an error names must still exist afterwards)."""
    kernel = require(resolve_kernel(spec))
    if kernel.is_host:
        raise UserError("bench boot needs a kernel to boot, not 'host'")
    chosen = accel_mod.choose(accel, kernel.image)
    floors, harness_s, marks, split = [], [], {}, []
    out.mkdir(parents=True, exist_ok=True)
    plan = write_boot_plan(out)
    for rep in range(reps):
        floors.append(floor_boot(kernel, chosen.name))
        req = RunRequest(kernel=spec, out_dir=out / f"r{rep}", plan=str(plan), accel=chosen.name)
        result = executor_for(kernel).run(req, kernel)
        boot = result.steps[0]
        if boot.status != "pass":
            raise InfraError(f"harness boot failed: {boot.message} ({result.console_log})")
        harness_s.append(boot.duration_s)
        console = Path(result.console_log).read_text(errors="replace")
        marks = milestones(console)
        split.append(stages(boot.duration_s, marks, agent_uptime(console)))
    return BootFigures(floors, harness_s, marks, tuple(split)), chosen.name
