"""Facts about the machine a run happens on, recorded with every result."""

from __future__ import annotations

import os
from pathlib import Path

from harness import proc
from harness.errors import HarnessError
from harness.results.model import Environment
from harness.vm import qemu as qemu_mod


def first_line_of(argv: list[str]) -> str:
    """The first output line of a version command, or '' when the tool is missing."""
    try:
        out = proc.run(argv, timeout=30, check=False)
    except HarnessError:
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def fs_type_of(path: Path, mounts_text: str) -> str:
    """Filesystem type of the mount holding `path`, from /proc/mounts text (longest prefix)."""
    best, fstype = "", ""
    target = str(path.resolve())
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        mnt = fields[1].replace("\\040", " ")
        inside = target == mnt or target.startswith(mnt.rstrip("/") + "/")
        if inside and len(mnt) >= len(best):
            best, fstype = mnt, fields[2]
    return fstype


def collect(
    accel: str, accel_note: str, out_dir: Path, cpus: int, memory_mb: int, fio_version: str = ""
) -> Environment:
    """An Environment for a run whose files go to out_dir."""
    qemu = first_line_of([qemu_mod.binary(), "--version"]) if accel != "host" else ""
    return Environment(
        accel=accel,
        accel_note=accel_note,
        qemu_version=qemu.removeprefix("QEMU emulator version ").strip(),
        fio_version=fio_version or first_line_of(["fio", "--version"]),
        host_kernel=os.uname().release,
        host_fs=fs_type_of(out_dir, Path("/proc/mounts").read_text()),
        cpus=cpus,
        memory_mb=memory_mb,
    )
