"""The busybox floor: a minimal userland the bare-QEMU boots of the boot benchmark and the
KVM probe run. A kernel that can unpack an initramfs gets it as one (cpio); a kernel built
without initramfs support (CONFIG_BLK_DEV_INITRD unset, as lean builds are) gets the same
tree as a read-only ext4 root on a virtio disk, the nearest bare boot such a kernel has."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from harness import proc
from harness.paths import cache_subdir
from harness.vm import qemu
from harness.vm.pathsafe import qemu_path

READY_MARKER = "HARNESS-INIT-READY"

# The marker carries /proc/uptime: the boot benchmark splits the floor into QEMU start +
# firmware (host time before the kernel's clock) and the kernel's way to init.
_INIT = f"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
read up idle < /proc/uptime
echo {READY_MARKER} $up
/bin/busybox poweroff -f
"""


def ready_uptime(console_text: str) -> float | None:
    """The guest's uptime the floor's init printed with the marker (None when absent)."""
    for line in console_text.splitlines():
        words = line.split()
        if len(words) == 2 and words[0] == READY_MARKER:
            try:
                return float(words[1])
            except ValueError:
                return None
    return None


FLOOR_APPEND = "console=ttyS0 panic=-1"


def takes_initramfs(config: Path | None) -> bool:
    """Whether a kernel can unpack an initramfs: its .config says; distribution kernels
    (no config at hand) always can."""
    if config is None or not config.is_file():
        return True
    return "CONFIG_BLK_DEV_INITRD=y" in config.read_text(errors="replace").splitlines()


def qemu_floor_argv(
    image: Path, config: Path | None, accel: str, cpus: int = 2, memory_mb: int = 512
) -> list[str]:
    """A bare QEMU boot of `image` into the busybox floor, console on stdio."""
    argv = [
        qemu.binary(),
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
    ]
    if takes_initramfs(config):
        argv += ["-initrd", str(busybox_initramfs()), "-append", f"{FLOOR_APPEND} rdinit=/init"]
    else:
        disk = f"file={qemu_path(busybox_rootdisk())},if=virtio,format=raw,readonly=on"
        root = "root=/dev/vda ro rootfstype=ext4 init=/init"
        argv += ["-drive", disk, "-append", f"{FLOOR_APPEND} {root}"]
    return argv + (["-cpu", "host"] if accel == "kvm" else ["-cpu", "max"])


def _key() -> tuple[Path, str]:
    busybox = Path(proc.require_tool("busybox", "busybox-static"))
    return busybox, hashlib.sha256(busybox.read_bytes() + _INIT.encode()).hexdigest()[:16]


def _stage(busybox: Path, stage: Path) -> None:
    for sub in ("bin", "proc", "dev"):
        (stage / sub).mkdir(parents=True)
    shutil.copy2(busybox, stage / "bin/busybox")
    (stage / "init").write_text(_INIT)
    (stage / "init").chmod(0o755)


def packed(out: Path, fill, pack) -> Path:  # noqa: ANN001 - fill(stage), pack(stage, tmp)
    """`out` as it is, or built: a tree filled in a stage beside it, packed to a temporary
    file and renamed into place (a stage and a file of this process's own: two builds never
    share them, and no reader sees half a file)."""
    if out.exists():
        return out
    stage = out.with_name(f"{out.name}.{os.getpid()}.d")
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(stage, ignore_errors=True)
    fill(stage)
    pack(stage, tmp)
    tmp.rename(out)
    shutil.rmtree(stage)
    return out


def _cached_tree(suffix: str, pack) -> Path:  # noqa: ANN001 - pack(stage, tmp) writes tmp
    """The busybox tree packed once into the cache as busybox-KEY.SUFFIX (KEY: busybox and
    /init)."""
    busybox, key = _key()
    out = cache_subdir("initramfs") / f"busybox-{key}.{suffix}"
    return packed(out, lambda stage: _stage(busybox, stage), pack)


def cpio_tree(stage: Path, tmp: Path) -> None:
    """Pack a staged tree into a newc cpio at tmp (owned by root, as the kernel unpacks it)."""
    names = sorted(str(p.relative_to(stage)) for p in stage.rglob("*"))
    proc.run(
        ["cpio", "-o", "-H", "newc", "-R", "0:0", "-F", str(tmp)],
        timeout=60,
        cwd=stage,
        input_text="\n".join(names) + "\n",
    )


def _ext4(stage: Path, tmp: Path) -> None:
    proc.run(
        [
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-d",
            str(stage),
            "-E",
            "root_owner=0:0",
            str(tmp),
            "16M",
        ],
        timeout=60,
    )


def busybox_initramfs() -> Path:
    """A newc cpio with a static busybox and our /init (cached by content)."""
    return _cached_tree("cpio", cpio_tree)


def busybox_rootdisk() -> Path:
    """The same tree as an ext4 image (mke2fs -d: no mount, no root needed), cached."""
    return _cached_tree("ext4", _ext4)
