"""A minimal busybox initramfs: the boot floor for benchmarks and the KVM probe's guest."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from harness import proc
from harness.paths import cache_subdir

READY_MARKER = "HARNESS-INIT-READY"

_INIT = f"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo {READY_MARKER}
/bin/busybox poweroff -f
"""


def qemu_floor_argv(
    image: Path, initrd: Path, accel: str, cpus: int = 2, memory_mb: int = 512
) -> list[str]:
    """A bare QEMU boot of `image` into the busybox initramfs, console on stdio."""
    argv = [
        "qemu-system-x86_64",
        "-machine",
        f"q35,accel={accel}",
        "-m",
        str(memory_mb),
        "-smp",
        str(cpus),
        "-nographic",
        "-no-reboot",
        "-kernel",
        str(image),
        "-initrd",
        str(initrd),
        "-append",
        "console=ttyS0 panic=-1 rdinit=/init",
    ]
    return argv + (["-cpu", "host"] if accel == "kvm" else ["-cpu", "max"])


def busybox_initramfs() -> Path:
    """Build (once, cached by content) a newc cpio with a static busybox and our /init."""
    busybox = Path(proc.require_tool("busybox", "busybox-static"))
    key = hashlib.sha256(busybox.read_bytes() + _INIT.encode()).hexdigest()[:16]
    out = cache_subdir("initramfs") / f"busybox-{key}.cpio"
    if out.exists():
        return out
    stage = out.with_suffix(".d")
    shutil.rmtree(stage, ignore_errors=True)
    for sub in ("bin", "proc", "dev"):
        (stage / sub).mkdir(parents=True)
    shutil.copy2(busybox, stage / "bin/busybox")
    (stage / "init").write_text(_INIT)
    (stage / "init").chmod(0o755)
    names = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
    proc.run(
        ["cpio", "-o", "-H", "newc", "-R", "0:0", "-F", str(out.with_suffix(".tmp"))],
        timeout=60,
        cwd=stage,
        input_text="\n".join(names) + "\n",
    )
    out.with_suffix(".tmp").rename(out)
    shutil.rmtree(stage)
    return out
