"""Preparing targets: raw disks, files on XFS/ext4, loop (dio on/off, 512/4096), a dm-linear
table built from a file's extents (the static extent map of dm-loop/Android); nested loops
and loop over dm stacks are in guest/stacked.py.

Every resource is registered on the caller's ExitStack as soon as it exists, so teardown
(umount, losetup -d, dmsetup remove, rm) runs in reverse order on any exit.
The *_argv functions are pure and unit-tested.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time

from guest import extents, sh
from guest.api import Context, DiskMissing, Prepared, Skip

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any

MIB = 1024 * 1024
MIN_XFS_MB = 320  # mkfs.xfs >= 5.19 refuses filesystems below 300 MB
_counter = itertools.count()


def mkfs_argv(fs: str, device: str, sector_size: int | None = None) -> list[str]:
    """mkfs for `fs` on `device`; -K/nodiscard because discarding a fresh TCG disk is slow."""
    if fs == "xfs":
        argv = ["mkfs.xfs", "-f", "-q", "-K", "-m", "reflink=1"]
        return argv + (["-s", f"size={sector_size}"] if sector_size else []) + [device]
    if fs == "ext4":
        argv = ["mkfs.ext4", "-F", "-q", "-E", "nodiscard"]
        return argv + (["-b", str(max(sector_size, 1024))] if sector_size else []) + [device]
    if fs == "btrfs":
        return ["mkfs.btrfs", "-f", "-q", "-K", device]
    raise Skip(f"unknown filesystem {fs!r}")


def losetup_argv(
    path: str, *, direct_io: bool, block_size: int = 512, sizelimit: int | None = None
) -> list[str]:
    """Attach `path` to the first free loop device and print its name."""
    argv = ["losetup", "-f", "--show", f"--direct-io={'on' if direct_io else 'off'}"]
    argv += ["--sector-size", str(block_size)]
    if sizelimit:
        argv += ["--sizelimit", str(sizelimit)]
    return argv + [path]


def mkfs(fs: str, device: str, sector_size: int | None = None, tries: int = 20) -> None:
    """mkfs, retried while the device is still busy: the previous target's teardown (umount,
    loop detach) releases its exclusive claim on the disk asynchronously."""
    for attempt in range(tries):
        try:
            sh.run(mkfs_argv(fs, device, sector_size), timeout=300)
            return
        except sh.CommandError as exc:
            if "busy" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.5)


def _mkdir(ctx: Context, *parts: str) -> str:
    path = os.path.join(ctx.workdir, *parts)
    os.makedirs(path, exist_ok=True)
    if os.path.islink(path):  # makedirs accepts a link to a directory; we write as root
        raise RuntimeError(f"{path} is a symbolic link: refusing to create files through it")
    return path


def create_new(path: str, mode: str = "wb"):
    """Open a file that must not exist yet, never through a symbolic link (the agent runs
    as root; in host mode its workdir is on the host): an existing name, maybe an image a
    killed run left attached, is an error, not something to truncate."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.fdopen(os.open(path, flags, 0o600), mode)


def attach_loop(
    path: str,
    stack: contextlib.ExitStack,
    *,
    direct_io: bool,
    block_size: int = 512,
    sizelimit: int | None = None,
) -> str:
    """losetup a file; `losetup -d` is registered before anything else can fail."""
    if not os.path.exists("/dev/loop-control"):
        # a virtme-ng guest has no static node to autoload loop from: load it ourselves
        sh.run(["modprobe", "loop"], check=False)
    _, out = sh.run(
        losetup_argv(path, direct_io=direct_io, block_size=block_size, sizelimit=sizelimit)
    )
    dev = out.strip().splitlines()[-1]
    if not dev.startswith("/dev/loop"):
        raise RuntimeError(f"losetup printed {out!r}, expected /dev/loopN")
    stack.callback(sh.run, ["losetup", "-d", dev], check=False)
    return dev


def mount(device: str, mnt: str, fs: str, stack: contextlib.ExitStack) -> None:
    os.makedirs(mnt, exist_ok=True)
    stack.callback(_rmdir, mnt)
    sh.run(["mount", "-t", fs, device, mnt])
    stack.callback(umount, mnt)


def umount(mnt: str) -> None:
    """Unmount; lazily if something still holds it, so teardown always goes on."""
    if sh.run(["umount", mnt], check=False)[0] != 0:
        sh.run(["umount", "-l", mnt], check=False)


def make_file(path: str, size: int, alloc: str, stack: contextlib.ExitStack) -> None:
    """Create a new backing file (create_new): sparse (truncate), fallocate (unwritten
    extents) or written. Removed on teardown only once this call made it."""
    fh = create_new(path)
    stack.callback(_unlink, path)
    with fh:
        if alloc == "sparse":
            fh.truncate(size)
        elif alloc == "fallocate":
            os.posix_fallocate(fh.fileno(), 0, size)
        elif alloc == "written":
            chunk = (os.urandom(4096) * 256)[:MIB]
            for _ in range(size // MIB):
                fh.write(chunk)
            fh.truncate(size)
        else:
            raise Skip(f"unknown allocation {alloc!r}: use sparse, fallocate or written")
        fh.flush()
        os.fsync(fh.fileno())


# Target kinds whose unwritten ranges are holes (or unwritten extents): reads there measure
# the hole path, not I/O through the stack. Raw disks are the disk itself.
PRECONDITIONED_KINDS = ("file", "loop", "nested-loop", "dm-linear", "stacked")
_READ_MODES = ("read", "randread", "rw", "readwrite", "randrw", "trim")


def needs_fill(workload: dict[str, Any], prepared: Prepared) -> bool:
    """Whether `workload` reads, on a target whose range must hold written data first.

    Sparse-specific workloads (their name says "sparse") keep their sparse file.
    """
    rw = str(workload.get("fio", {}).get("rw", "read"))
    if "sparse" in str(workload.get("name", "")) or prepared.kind not in PRECONDITIONED_KINDS:
        return False
    return rw in _READ_MODES and rw != "trim"


def fill_argv(path: str, size_mb: int, output: str) -> list[str]:
    """One sequential direct write of `size_mb` MiB over `path` (fio JSON to `output`)."""
    argv = ["fio", "--name=precondition", f"--filename={path}", "--rw=write", "--bs=1M"]
    argv += ["--ioengine=libaio", "--iodepth=4", "--direct=1", f"--size={size_mb}M"]
    return argv + ["--end_fsync=1", "--output-format=json", f"--output={output}"]


def fill(prepared: Prepared, size_mb: int, output: str, step_id: str) -> dict[str, Any]:
    """Write the whole range once per target; later steps reuse the record.

    The record goes into prepared.extra["precondition"] (so every step's details carry it)
    and says which step paid for it: that step's figures were taken after the fill.
    """
    done = prepared.extra.get("precondition")
    if done and "sparse" not in done and done.get("filled_mb", 0) >= size_mb:
        return done
    started = time.monotonic()
    sh.run(fill_argv(prepared.path, size_mb, output), timeout=max(120, size_mb * 2))
    record = {
        "filled_mb": size_mb,
        "seconds": round(time.monotonic() - started, 3),
        "by_step": step_id,
        "how": "fio sequential write, 1 MiB direct, end_fsync",
    }
    prepared.extra["precondition"] = record
    return record


def restore_sparse(prepared: Prepared) -> dict[str, Any] | None:
    """Punch the fill back out of a loop's backing file before a sparse-specific workload
    (only when an earlier step on this same target filled it)."""
    done = prepared.extra.get("precondition")
    if not done or not prepared.backing_file or "sparse" in done:
        return done
    size = os.path.getsize(prepared.backing_file)
    sh.run(
        ["fallocate", "--punch-hole", "--offset", "0", "--length", str(size), prepared.backing_file]
    )
    if prepared.device:
        sh.run(["blockdev", "--flushbufs", prepared.device], check=False)
    record = {**done, "sparse": "holes punched back for a sparse-specific workload"}
    prepared.extra["precondition"] = record
    return record


def holes_in(path: str, length: int) -> list[tuple[int, int]]:
    """(start, end) of every hole in [0, length) of a file, by SEEK_HOLE/SEEK_DATA."""
    holes = []
    fd = os.open(path, os.O_RDONLY)
    try:
        pos = 0
        while pos < length:
            try:
                hole = os.lseek(fd, pos, os.SEEK_HOLE)
            except OSError:
                break
            if hole >= length:
                break
            try:
                data = os.lseek(fd, hole, os.SEEK_DATA)
            except OSError:  # ENXIO: a hole to the end of the file
                data = length
            holes.append((hole, min(data, length)))
            pos = data
    finally:
        os.close(fd)
    return holes


def _rmdir(path: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _alloc(spec: dict[str, Any], default: str = "sparse") -> str:
    if "alloc" in spec:
        return str(spec["alloc"])
    if "sparse" in spec:
        return "sparse" if spec["sparse"] else "fallocate"
    return default


def base_filesystem(
    spec: dict[str, Any], ctx: Context, stack: contextlib.ExitStack, size_mb: int
) -> tuple[str, str]:
    """Make and mount spec['fs'] on spec['disk'] (or a scratch image in host mode).

    Returns (mountpoint, block device under the filesystem).
    """
    mnt, device, _ = _base_filesystem(spec, ctx, stack, size_mb)
    return mnt, device


def _base_filesystem(
    spec: dict[str, Any], ctx: Context, stack: contextlib.ExitStack, size_mb: int
) -> tuple[str, str, str]:
    """base_filesystem, also returning the raw layer (the disk or the scratch image file)."""
    fs = spec.get("fs", "xfs")
    tag = f"{spec.get('name', 'target')}-{next(_counter)}"
    if fs == "tmpfs":
        # No device under it: I/O through loop costs only CPU, never a wait on an emulated
        # disk (under QEMU's instruction counting such waits are timer artefacts).
        mnt = _mkdir(ctx, "mnt", tag)
        stack.callback(_rmdir, mnt)
        sh.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", mnt])
        stack.callback(umount, mnt)
        return mnt, "tmpfs", "tmpfs"
    disk = spec.get("disk")
    if disk and disk in ctx.disks:
        device = raw = ctx.disks[disk]
    elif disk and disk in ctx.disk_problems:
        raise DiskMissing(ctx.disk_problems[disk])
    elif disk and ctx.mode != "host":
        raise Skip(f"disk {disk} is not attached to this VM (topology lacks it)")
    else:
        raw = os.path.join(_mkdir(ctx, "img"), f"{tag}.img")
        make_file(raw, max(size_mb, MIN_XFS_MB) * MIB, "sparse", stack)
        device = attach_loop(raw, stack, direct_io=True)
    if spec.get("fs_via_loop") and device == raw:
        # dm must claim the device the map points into, which a mounted fs holds exclusively:
        # mount the fs through a loop (dio, no page cache) and map onto the raw layer itself.
        device = attach_loop(raw, stack, direct_io=True)
    if spec.get("base_block_size"):
        # A loop with bigger sectors over the disk: the filesystem's device then really needs
        # that alignment for direct I/O (an fs sector size alone does not change it).
        device = attach_loop(device, stack, direct_io=True, block_size=spec["base_block_size"])
    mkfs(fs, device, spec.get("fs_sector_size"))
    mnt = _mkdir(ctx, "mnt", tag)
    mount(device, mnt, fs, stack)
    return mnt, device, raw


def prepare_simple(spec: dict[str, Any], ctx: Context, stack: contextlib.ExitStack) -> Prepared:
    """Make a raw, file, loop or dm-linear target (docs/CONTRACT.md) ready for I/O; the
    stacked kinds are guest/stacked.py's (guest/prepare.py picks)."""
    kind = spec.get("kind")
    name = spec.get("name", str(kind))
    size_mb = int(spec.get("size_mb", 256))
    if kind == "raw":
        disk = spec.get("disk", "")
        if disk in ctx.disk_problems:
            raise DiskMissing(ctx.disk_problems[disk])
        if disk not in ctx.disks:
            hint = "name it on the command line" if ctx.mode == "host" else "add it to the topology"
            raise Skip(f"raw target needs disk {disk!r}, which is not attached: {hint}")
        dev = ctx.disks[disk]
        return Prepared(name=name, kind=kind, path=dev, device=dev)
    if kind == "file":
        mnt, base = base_filesystem(spec, ctx, stack, size_mb + 64)
        path = os.path.join(mnt, "fio.dat")
        stack.callback(_unlink, path)
        return Prepared(
            name, kind, path, None, None, mnt, spec.get("fs", "xfs"), None, {"base_device": base}
        )
    if kind == "loop":
        return _prepare_loop(spec, ctx, stack, name, size_mb)
    if kind == "dm-linear":
        return _prepare_dm_linear(spec, ctx, stack, name, size_mb)
    raise Skip(f"unknown target kind {kind!r}")


def loop_status(dev: str) -> dict[str, Any]:
    """What the kernel made of a loop device: dio on/off, block sizes, size."""
    base = f"/sys/block/{os.path.basename(dev)}"
    return {
        "loop_dio": sh.read_text(f"{base}/loop/dio"),
        "logical_block_size": sh.read_text(f"{base}/queue/logical_block_size"),
        "size_bytes": int(sh.read_text(f"{base}/size", "0") or 0) * 512,
    }


def _prepare_loop(
    spec: dict[str, Any], ctx: Context, stack: contextlib.ExitStack, name: str, size_mb: int
) -> Prepared:
    mnt, base = base_filesystem(spec, ctx, stack, size_mb + 64)
    backing = os.path.join(mnt, "backing.img")
    make_file(backing, size_mb * MIB, _alloc(spec), stack)
    limit = spec.get("sizelimit_mb")
    dev = attach_loop(
        backing,
        stack,
        direct_io=bool(spec.get("direct_io", True)),
        block_size=int(spec.get("block_size", 512)),
        sizelimit=int(limit) * MIB if limit else None,
    )
    extra = {
        "base_device": base,
        "loop_dio_requested": bool(spec.get("direct_io", True)),
        "fs_sector_size": spec.get("fs_sector_size"),
        "base_block_size": spec.get("base_block_size"),
        **loop_status(dev),
    }
    return Prepared(name, "loop", dev, dev, backing, mnt, spec.get("fs", "xfs"), dev, extra)


def _prepare_dm_linear(
    spec: dict[str, Any], ctx: Context, stack: contextlib.ExitStack, name: str, size_mb: int
) -> Prepared:
    if not sh.which("dmsetup"):
        raise Skip("dmsetup not installed (apt-get install dmsetup)")
    if not os.path.exists("/dev/mapper/control"):
        sh.run(["modprobe", "dm_mod"], check=False)
    if sh.run(["dmsetup", "version"], check=False)[0] != 0:
        raise Skip("kernel has no device-mapper (CONFIG_BLK_DEV_DM off / dm_mod missing)")
    mnt, base, raw = _base_filesystem({**spec, "fs_via_loop": True}, ctx, stack, size_mb + 64)
    if not raw.startswith("/dev/"):  # host scratch image: a second loop gives dm its device
        raw = attach_loop(raw, stack, direct_io=True)
    backing = os.path.join(mnt, "backing.img")
    # Real data, not unwritten extents: the static map must point at blocks the file owns.
    make_file(backing, size_mb * MIB, "written", stack)
    # FIEMAP offsets are relative to the fs device, a loop at offset 0 of `raw`: same blocks
    table = extents.linear_table(extents.fiemap(backing), os.stat(raw).st_rdev, size_mb * MIB)
    table_file = os.path.join(_mkdir(ctx, "dm"), f"{name}.table")
    with create_new(table_file, "w") as fh:
        fh.write(table)
    stack.callback(_unlink, table_file)
    dm_name = f"harness-{os.getpid()}-{next(_counter)}"
    sh.run(["dmsetup", "create", dm_name, table_file])
    stack.callback(sh.run, ["dmsetup", "remove", "--retry", dm_name], check=False)
    dev = f"/dev/mapper/{dm_name}"
    if not os.path.exists(dev):
        sh.run(["dmsetup", "mknodes", dm_name], check=False)
    extra = {"base_device": base, "mapped_device": raw, "dm_table_lines": table.count("\n")}
    return Prepared(name, "dm-linear", dev, dev, backing, mnt, spec.get("fs", "xfs"), None, extra)
