"""Stacked targets, the configurations where the loop NOWAIT series broke upstream: loop (dio
on) on a filesystem on device-mapper (linear, stripe over both disks, crypt with a fixed test
key) over the VM's disks, and loop nested two or three levels deep (XFS or ext4 at each level).

Every layer is registered on the caller's ExitStack before the next can fail: loops are
detached, filesystems unmounted and dm devices removed in reverse order on any exit. The
*_table and *_argv functions are pure and unit-tested.
"""

from __future__ import annotations

import contextlib
import itertools
import os

from guest import blockio, sh, targets
from guest.api import Context, DiskMissing, Prepared, Skip

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any

MIB = 1024 * 1024
SECTOR = 512
STRIPE_CHUNK_SECTORS = 128  # 64 KiB, the md/dm default chunk
# A fixed, public test key (AES-128-XTS takes 256 bits): dm-crypt here measures the stack
# and the I/O path, never secrecy.
TEST_KEY = "0123456789abcdef" * 4
CRYPT_CIPHER = "aes-xts-plain64"
DM_KINDS = ("linear", "stripe", "crypt")
_counter = itertools.count()


def dm_table(dm: str, devices: list[str], sectors: int) -> str:
    """A one-line dmsetup table of `sectors` 512-byte sectors over `devices`.

    stripe spreads the length over every device in 64 KiB chunks (rounded down to whole
    chunks per device); linear and crypt use the first device only.
    """
    if dm == "linear":
        return f"0 {sectors} linear {devices[0]} 0\n"
    if dm == "crypt":
        return f"0 {sectors} crypt {CRYPT_CIPHER} {TEST_KEY} 0 {devices[0]} 0\n"
    if dm == "stripe":
        per_dev = sectors // len(devices) // STRIPE_CHUNK_SECTORS * STRIPE_CHUNK_SECTORS
        if per_dev == 0:
            raise ValueError(f"{sectors} sectors are too few to stripe over {len(devices)}")
        legs = " ".join(f"{d} 0" for d in devices)
        total = per_dev * len(devices)
        return f"0 {total} striped {len(devices)} {STRIPE_CHUNK_SECTORS} {legs}\n"
    raise ValueError(f"unknown dm kind {dm!r}: use one of {', '.join(DM_KINDS)}")


def dm_target_name(dm: str) -> str:
    """The kernel's name for a dm kind (`dmsetup targets`), and its module's."""
    return {"linear": "linear", "stripe": "striped", "crypt": "crypt"}[dm]


def dmsetup_create_argv(name: str, table_file: str) -> list[str]:
    return ["dmsetup", "create", name, table_file]


def dmsetup_remove_argv(name: str) -> list[str]:
    return ["dmsetup", "remove", "--retry", name]


def has_dm_target(targets_output: str, dm: str) -> bool:
    """Whether `dmsetup targets` output lists the kernel target behind `dm`."""
    wanted = dm_target_name(dm)
    return any(line.split()[:1] == [wanted] for line in targets_output.splitlines())


def _ensure_dm(dm: str) -> str:
    """Skip unless the kernel has device-mapper and the `dm` target; `dmsetup targets`."""
    if not sh.which("dmsetup"):
        raise Skip("dmsetup not installed (apt-get install dmsetup)")
    if not os.path.exists("/dev/mapper/control"):
        sh.run(["modprobe", "dm_mod"], check=False)
    rc, out = sh.run(["dmsetup", "targets"], check=False)
    if rc != 0:
        raise Skip("kernel has no device-mapper (CONFIG_BLK_DEV_DM off / dm_mod missing)")
    if not has_dm_target(out, dm):
        sh.run(["modprobe", f"dm_{dm}"], check=False)
        rc, out = sh.run(["dmsetup", "targets"], check=False)
        if not has_dm_target(out, dm):
            raise Skip(f"kernel has no dm-{dm} target (CONFIG_DM_{dm.upper()} off)")
    return out


def _disk(ctx: Context, disk: str, stack: contextlib.ExitStack, size_mb: int) -> str:
    """The block device of plan disk `disk`, or (host mode) a loop over a scratch image."""
    if disk in ctx.disks:
        return ctx.disks[disk]
    if disk in ctx.disk_problems:
        raise DiskMissing(ctx.disk_problems[disk])
    if ctx.mode != "host":
        raise Skip(f"disk {disk} is not attached to this VM (topology lacks it)")
    img_dir = os.path.join(ctx.workdir, "img")
    os.makedirs(img_dir, exist_ok=True)
    raw = os.path.join(img_dir, f"{disk}-{os.getpid()}-{next(_counter)}.img")
    targets.make_file(raw, size_mb * MIB, "sparse", stack)
    return targets.attach_loop(raw, stack, direct_io=True)


def make_dm(
    dm: str, devices: list[str], sectors: int, ctx: Context, stack: contextlib.ExitStack
) -> str:
    """dmsetup create a `dm` device over `devices`; its removal is registered first."""
    table = dm_table(dm, devices, sectors)
    table_dir = os.path.join(ctx.workdir, "dm")
    os.makedirs(table_dir, exist_ok=True)
    name = f"harness-{os.getpid()}-{next(_counter)}"
    table_file = os.path.join(table_dir, f"{name}.table")
    with open(table_file, "w") as fh:
        fh.write(table)
    stack.callback(sh.run, dmsetup_remove_argv(name), check=False)
    sh.run(dmsetup_create_argv(name, table_file))
    dev = f"/dev/mapper/{name}"
    if not os.path.exists(dev):
        sh.run(["dmsetup", "mknodes", name], check=False)
    return dev


def prepare_dm_stack(
    spec: dict[str, Any], ctx: Context, stack: contextlib.ExitStack, name: str, size_mb: int
) -> Prepared:
    """loop (dio on) over a sparse file on `fs` on a dm-`dm` device over spec['disks']."""
    dm = str(spec.get("dm", "linear"))
    if dm not in DM_KINDS:
        raise Skip(f"unknown dm kind {dm!r}: use one of {', '.join(DM_KINDS)}")
    dm_targets = _ensure_dm(dm)
    fs = str(spec.get("fs", "xfs"))
    disks = list(spec.get("disks") or [spec.get("disk", "nvme0")])
    fs_mb = max(size_mb + 64, targets.MIN_XFS_MB)
    devices = [_disk(ctx, d, stack, fs_mb) for d in disks]
    sectors = fs_mb * MIB // SECTOR
    smallest = min(blockio.device_size(d) for d in devices) // SECTOR
    if dm != "stripe" and sectors > smallest:
        raise Skip(f"{devices[0]} has {smallest} sectors, {sectors} needed")
    if dm == "stripe":
        sectors = min(sectors, smallest * len(devices))
    mapped = make_dm(dm, devices, sectors, ctx, stack)
    targets.mkfs(fs, mapped)
    mnt = os.path.join(ctx.workdir, "mnt", f"{name}-{next(_counter)}")
    targets.mount(mapped, mnt, fs, stack)
    backing = os.path.join(mnt, "backing.img")
    targets.make_file(backing, size_mb * MIB, targets._alloc(spec), stack)
    dev = targets.attach_loop(backing, stack, direct_io=bool(spec.get("direct_io", True)))
    extra = {
        "base_device": mapped,
        "dm": dm,
        "dm_table": dm_table(dm, devices, sectors).strip().replace(TEST_KEY, "<test key>"),
        "layers": [dev, backing, mapped, *devices],
        "dm_targets": dm_targets.strip().splitlines(),
        **targets.loop_status(dev),
    }
    return Prepared(name, "stacked", dev, dev, backing, mnt, fs, dev, extra)


def level_sizes(size_mb: int, depth: int, fs: str) -> list[int]:
    """MiB of each filesystem from the bottom (on the disk) up, for a backing file of
    `size_mb` in the top one: each level holds the next level's image plus slack."""
    floor = targets.MIN_XFS_MB if fs == "xfs" else 64
    sizes = [max(size_mb + 64, floor)]
    for _ in range(depth - 1):
        sizes.append(max(sizes[-1] + 64, floor))
    return sizes[::-1]


def prepare_nested(
    spec: dict[str, Any], ctx: Context, stack: contextlib.ExitStack, name: str, size_mb: int
) -> Prepared:
    """loop on `fs` on loop on `fs` ... on `disk`: spec['depth'] loop levels (default 2)."""
    fs = spec.get("fs", "xfs")
    depth = int(spec.get("depth", 2))
    if not 1 <= depth <= 4:
        raise Skip(f"nested-loop depth {depth}: use 1..4")
    dio = bool(spec.get("direct_io", True))
    sizes = level_sizes(size_mb, depth, fs)
    mnt, base = targets.base_filesystem(spec, ctx, stack, sizes[0] + 64)
    layers: list[str] = [base]
    for level in range(1, depth):
        image = os.path.join(mnt, f"level{level}.img")
        targets.make_file(image, sizes[level] * MIB, "sparse", stack)
        loop = targets.attach_loop(image, stack, direct_io=dio)
        targets.mkfs(fs, loop)
        mnt = os.path.join(ctx.workdir, "mnt", f"{name}-level{level}-{next(_counter)}")
        targets.mount(loop, mnt, fs, stack)
        layers[:0] = [loop, image]
    backing = os.path.join(mnt, "backing.img")
    targets.make_file(backing, size_mb * MIB, targets._alloc(spec), stack)
    dev = targets.attach_loop(backing, stack, direct_io=dio)
    extra = {
        "base_device": base,
        "depth": depth,
        "layers": [dev, backing, *layers],
        **targets.loop_status(dev),
    }
    return Prepared(name, "nested-loop", dev, dev, backing, mnt, fs, dev, extra)
