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
from harness.kernel.model import Kernel
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


@dataclass(frozen=True)
class BootFigures:
    floor_s: list[float]
    harness_s: list[float]
    milestones: dict[str, float]  # kernel timestamp of each milestone in the last boot

    @property
    def ratio(self) -> float:
        return statistics.median(self.harness_s) / statistics.median(self.floor_s)


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
        raise RuntimeError(f"the floor boot never reached init: {out.stdout[-300:]}")
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
