"""The online-resize check: grow a mounted filesystem whose image is a file on another
filesystem, reached through loop (fstests ext4/032's configuration, where the kernel test
robot hit `kernel BUG at fs/jbd2/transaction.c:477` with the loop NOWAIT series).

resize2fs (ext4) or xfs_growfs (XFS) reads the upper filesystem's metadata through loop;
with dio on, loop reads the image with the lower filesystem's read_iter, and a lower
filesystem mounted `strictatime` dirties the image's inode on every such read: an upper
journal handle still current there is the bug. The data written before is checksummed
after every grow step, and the upper filesystem is checked unmounted at the end.
The *_argv functions and the mountinfo parser are pure and unit-tested.
"""

from __future__ import annotations

import contextlib
import os

from guest import blockio, sh, targets
from guest.api import Context, Outcome, Prepared, Skip
from guest.blockio import MIB

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any

ATIME_MODES = ("strictatime", "relatime")  # never noatime: reads must dirty the inode


def grow_argv(fs: str, device: str, mountpoint: str) -> list[str]:
    """Grow a mounted `fs` to fill its (already larger) device."""
    if fs == "ext4":
        return ["resize2fs", device]
    if fs == "xfs":
        return ["xfs_growfs", mountpoint]
    raise Skip(f"online grow of {fs!r} is not supported here: use ext4 or xfs")


def fsck_argv(fs: str, device: str) -> list[str]:
    """A read-only consistency check of an unmounted `fs`."""
    if fs == "ext4":
        return ["e2fsck", "-f", "-n", device]
    if fs == "xfs":
        return ["xfs_repair", "-n", device]
    raise Skip(f"no checker for {fs!r}")


def remount_argv(mountpoint: str, atime: str) -> list[str]:
    if atime not in ATIME_MODES:
        raise ValueError(f"atime mode {atime!r}: use one of {', '.join(ATIME_MODES)}")
    return ["mount", "-o", f"remount,{atime}", mountpoint]


def mount_options(mountinfo: str, mountpoint: str) -> list[str]:
    """The per-mount options of `mountpoint` in /proc/self/mountinfo text (last mount wins)."""
    found: list[str] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4] == mountpoint:
            found = fields[5].split(",")
    return found


def atime_mode(options: list[str]) -> str:
    """What a mount does with atime, from its per-mount options (strictatime is the default
    that mountinfo shows as neither relatime nor noatime)."""
    for mode in ("noatime", "relatime"):
        if mode in options:
            return mode
    return "strictatime"


def _write_payload(mnt: str, files: int, mib: int, seed: int) -> dict[str, str]:
    """`files` files of `mib` MiB of seeded data, fsynced; returns name -> sha256."""
    import hashlib  # OpenSSL's libcrypto: loaded when a check first needs it

    sums = {}
    for i in range(files):
        name = f"payload-{seed}-{i}"
        data = blockio.pattern(seed * 1000 + i, mib * MIB)
        with open(os.path.join(mnt, name), "wb") as fh:
            fh.write(data)
            os.fsync(fh.fileno())
        sums[name] = hashlib.sha256(data).hexdigest()
    return sums


def _changed(mnt: str, sums: dict[str, str]) -> list[str]:
    """Names whose content no longer matches, read cold (page cache dropped first)."""
    import hashlib

    os.sync()
    with contextlib.suppress(OSError):
        sh.write_text("/proc/sys/vm/drop_caches", "3")
    bad = []
    for name, want in sums.items():
        try:
            with open(os.path.join(mnt, name), "rb") as fh:
                got = hashlib.sha256(fh.read()).hexdigest()
        except OSError as exc:
            got = f"unreadable: {exc}"
        if got != want:
            bad.append(name)
    return bad


def _lower_atime(prepared: Prepared, atime: str, details: dict[str, Any]) -> None:
    """Remount the filesystem holding the image so reads update atime."""
    mnt = prepared.mountpoint
    if not mnt:
        raise Skip(f"online-resize needs the image on a filesystem; {prepared.kind} has none")
    sh.run(remount_argv(mnt, atime))
    opts = mount_options(sh.read_text("/proc/self/mountinfo", "") or "", mnt)
    details["lower_mount_options"] = opts
    details["lower_atime"] = atime_mode(opts)
    if details["lower_atime"] == "noatime":
        raise RuntimeError(f"{mnt} still mounted noatime after remount,{atime}: {opts}")


def _grow_steps(
    dev: str, backing: str, fs: str, mnt: str, params: dict[str, Any], sums: dict[str, str]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Grow the image, `losetup -c`, grow the mounted fs; verify the data after each step."""
    steps, problems = [], []
    step_mb = int(params.get("grow_step_mb", 64))
    for i in range(int(params.get("grow_steps", 3))):
        size = os.stat(backing).st_size + step_mb * MIB
        os.truncate(backing, size)
        sh.run(["losetup", "-c", dev])
        before = os.statvfs(mnt)
        rc, out = sh.run(grow_argv(fs, dev, mnt), check=False, timeout=300)
        if rc != 0 and "Permission denied" in out:
            why = [ln for ln in out.splitlines() if "Permission denied" in ln][0].strip()
            raise Skip(f"online resize refused here (no CAP_SYS_RESOURCE, as in containers): {why}")
        after = os.statvfs(mnt)
        grew = (after.f_blocks * after.f_frsize) - (before.f_blocks * before.f_frsize)
        bad = _changed(mnt, sums)
        steps.append({"image_mb": size // MIB, "rc": rc, "grew_bytes": grew, "bad_files": bad})
        if rc != 0 or grew < step_mb * MIB // 2:
            problems.append(
                f"online grow {i + 1} of {fs} on {dev} (image {backing} now {size // MIB} MiB) "
                f"did not grow it: {' '.join(grow_argv(fs, dev, mnt))} rc {rc}, grew {grew} "
                f"bytes: {out.strip()[-160:]}"
            )
        if bad:
            problems.append(
                f"after online grow {i + 1}, {len(bad)} file(s) of {fs} on {dev} "
                f"read back different data: {', '.join(bad[:3])}"
            )
        if problems:
            break
    return problems, steps


def check_online_resize(
    prepared: Prepared, params: dict[str, Any], ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    """mkfs the same filesystem as the lower one inside the loop, fill part of it, grow it
    online in steps; the data stays right and the upper filesystem checks clean."""
    dev, backing = prepared.loop_dev, prepared.backing_file
    if not dev or not backing:
        raise Skip(f"online-resize needs a loop over a file; target {prepared.kind} is not one")
    fs = str(params.get("fs") or prepared.fs or "ext4")
    details: dict[str, Any] = {
        "upper_fs": fs,
        "lower_fs": prepared.fs,
        "loop_dio": prepared.extra.get("loop_dio"),
    }
    _lower_atime(prepared, str(params.get("atime", "strictatime")), details)
    start_mb = max(int(params.get("start_mb", 128)), targets.MIN_XFS_MB if fs == "xfs" else 0)
    if os.stat(backing).st_size < start_mb * MIB:
        os.truncate(backing, start_mb * MIB)
        sh.run(["losetup", "-c", dev])
    targets.mkfs(fs, dev)
    mnt = os.path.join(ctx.workdir, "mnt", f"resize-{os.getpid()}")
    with contextlib.ExitStack() as inner:
        targets.mount(dev, mnt, fs, inner)
        sums = _write_payload(mnt, int(params.get("files", 4)), int(params.get("file_mb", 8)), 1)
        problems, details["grow_steps"] = _grow_steps(dev, backing, fs, mnt, params, sums)
        if not problems:  # new data must land in the grown space and read back too
            more = _write_payload(mnt, 2, int(params.get("file_mb", 8)), 2)
            bad = _changed(mnt, {**sums, **more})
            if bad:
                problems.append(
                    f"after the grow, {fs} on {dev} read back different data in "
                    f"{', '.join(bad[:3])}"
                )
    rc, out = sh.run(fsck_argv(fs, dev), check=False, timeout=300)
    details["upper_fsck"] = {"rc": rc, "tail": out.strip()[-200:]}
    if rc != 0:
        problems.append(
            f"{' '.join(fsck_argv(fs, dev))} after the online grow: rc {rc}: {out.strip()[-160:]}"
        )
    return Outcome("fail" if problems else "pass", "; ".join(problems), {}, details)
