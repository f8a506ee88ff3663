"""Pick the accelerator: a short real KVM boot decides, else TCG — said loudly and recorded.

/dev/kvm can exist and still not run a stock guest (e.g. under PVM, where guests abort or
hang), so its presence proves nothing; only a boot that reaches init does.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import InfraError, UserError
from harness.paths import cache_subdir
from harness.vm import qemu
from harness.vm.initramfs import READY_MARKER, qemu_floor_argv

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 25.0


@dataclass(frozen=True)
class Accel:
    name: str  # "kvm" | "tcg"
    note: str  # why: the probe's outcome, or the user's choice


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def probe_kvm(image: Path, config: Path | None = None) -> tuple[bool, str]:
    """Boot `image` into the busybox floor under -accel kvm; True if init was reached."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is missing or not accessible"
    argv = qemu_floor_argv(image, config, "kvm")
    started = time.monotonic()
    try:
        result = proc.run(argv, timeout=PROBE_TIMEOUT_S, check=False)
    except InfraError:
        return False, f"a KVM test boot hung for {PROBE_TIMEOUT_S:.0f}s"
    if READY_MARKER in result.stdout:
        return True, f"a KVM test boot reached init in {time.monotonic() - started:.1f}s"
    tail = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["no output"]
    return False, f"a KVM test boot failed (exit {result.returncode}: {tail[0][:120]})"


def choose(requested: str, image: Path | None, config: Path | None = None) -> Accel:
    """Resolve --accel auto|kvm|tcg. The auto probe is cached per host boot and QEMU."""
    if requested not in ("auto", "kvm", "tcg"):
        raise UserError(f"--accel must be auto, kvm or tcg, not '{requested}'")
    if requested == "tcg":
        return Accel("tcg", "TCG requested with --accel tcg")
    if requested == "kvm":
        return Accel("kvm", "KVM requested with --accel kvm (not probed)")
    cache = cache_subdir("accel") / "probe.json"
    try:
        cached = json.loads(cache.read_text())
    except (OSError, json.JSONDecodeError):
        cached = {}
    key = {"boot_id": _boot_id(), "qemu": qemu.binary()}
    if any(cached.get(k) != v for k, v in key.items()) or image is None:
        if image is None:
            return Accel("tcg", "no kernel image to probe KVM with")
        ok, why = probe_kvm(image, config)
        cached = {**key, "kvm": ok, "why": why}
        cache.write_text(json.dumps(cached))
    if cached["kvm"]:
        return Accel("kvm", cached["why"])
    note = f"KVM unusable ({cached['why']}): falling back to TCG; throughput reflects the emulator"
    log.warning("%s", note)
    return Accel("tcg", note)
