"""Checks about sizes and alignment: truncate/grow while attached, dio alignment."""

from __future__ import annotations

import contextlib
import os

from guest import blockio, sh, targets
from guest.api import Context, Outcome, Prepared, Skip
from guest.blockio import MIB

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any


def _verdict(problems: list[str], details: dict[str, Any]) -> Outcome:
    return Outcome("fail" if problems else "pass", "; ".join(problems), {}, details)


def _backed_loop(prepared: Prepared, check: str) -> tuple[str, str]:
    if not prepared.loop_dev or not prepared.backing_file:
        raise Skip(f"{check} needs a loop device over a file; target {prepared.kind} is not one")
    return prepared.loop_dev, prepared.backing_file


def _grow(dev: str, backing: str, ctx: Context, details: dict[str, Any]) -> list[str]:
    """ext4 inside the loop device; grow the file, losetup -c, resize2fs; data survives."""
    size = os.stat(backing).st_size
    mnt = os.path.join(ctx.workdir, "mnt", f"trunc-{os.getpid()}")
    sh.run(targets.mkfs_argv("ext4", dev), timeout=300)
    with contextlib.ExitStack() as inner:
        targets.mount(dev, mnt, "ext4", inner)
        payload = blockio.pattern(21, 4 * MIB)
        with open(os.path.join(mnt, "payload"), "wb") as fh:
            fh.write(payload)
            os.fsync(fh.fileno())
        fs_before = os.statvfs(mnt)
        os.truncate(backing, size + size // 2)
        sh.run(["losetup", "-c", dev])
        details["grow_device_size"] = blockio.device_size(dev)
        problems = []
        if details["grow_device_size"] != size + size // 2:
            problems.append(
                f"after growing {backing} to {size + size // 2} and `losetup -c`, {dev} is "
                f"{details['grow_device_size']} bytes: the device size did not follow the file"
            )
            return problems
        rc, out = sh.run(["resize2fs", dev], check=False, timeout=300)
        details["fs_grow_mode"] = "online"
        if rc != 0 and "Permission denied" in out:
            # no CAP_SYS_RESOURCE (containers): grow it unmounted instead, still a real grow
            details["fs_grow_mode"] = f"offline (online refused: {out.strip()[-80:]})"
            targets.umount(mnt)
            sh.run(["e2fsck", "-f", "-y", dev], check=False, timeout=300)
            rc, out = sh.run(["resize2fs", dev], check=False, timeout=300)
            sh.run(["mount", "-t", "ext4", dev, mnt])
        fs_after = os.statvfs(mnt)
        grew = (fs_after.f_blocks - fs_before.f_blocks) * fs_after.f_frsize
        details["fs_grew_bytes"] = grew
        if rc != 0 or grew < size // 4:
            problems.append(
                f"ext4 inside {dev} did not grow into the new space "
                f"(resize2fs rc {rc}: {out.strip()[-160:]})"
            )
        with open(os.path.join(mnt, "payload"), "rb") as fh:
            if fh.read() != payload:
                problems.append(f"a file inside {dev} changed across the grow")
    return problems


def _shrink(dev: str, backing: str, details: dict[str, Any]) -> list[str]:
    """Shrink the file under the device; record what I/O past the end does, per kernel."""
    size = os.stat(backing).st_size
    new_end = (size // 2) // MIB * MIB
    kept = blockio.pattern(22, MIB)
    blockio.write_direct(dev, new_end - MIB, kept)
    blockio.write_direct(dev, new_end + MIB, blockio.pattern(23, MIB))
    os.truncate(backing, new_end)
    # Not asserted: the kernel decides (EIO, short read, zero fill, or a write that extends
    # the file); we record it per kernel and I/O mode so A/B runs show any change.
    status, result = blockio.try_io(blockio.read_direct, dev, new_end + MIB, MIB)
    if status == "ok":
        data = result if isinstance(result, bytes) else b""
        status = f"ok: {len(data)} bytes, {'all zeros' if data.count(0) == len(data) else 'data'}"
    details["read_past_end"] = status
    late = blockio.pattern(24, MIB)
    wstatus, _ = blockio.try_io(blockio.write_direct, dev, new_end + 2 * MIB, late)
    details["write_past_end"] = wstatus
    details["file_size_after_write_past_end"] = os.stat(backing).st_size
    problems = []
    if blockio.read_direct(dev, new_end - MIB, MIB) != kept:
        problems.append(f"data below the new end of {backing} changed when the file shrank")
    sh.run(["losetup", "-c", dev])
    details["shrink_device_size"] = blockio.device_size(dev)
    file_size = os.stat(backing).st_size
    if details["shrink_device_size"] != file_size:
        problems.append(
            f"after shrinking {backing} to {file_size} bytes and `losetup -c`, {dev} is "
            f"{details['shrink_device_size']} bytes: the device size did not follow the file"
        )
    return problems


def check_truncate(
    prepared: Prepared, params: dict[str, Any], ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    """Grow (losetup -c, fs grows into it) and shrink the backing file while attached."""
    dev, backing = _backed_loop(prepared, "truncate")
    details: dict[str, Any] = {"loop_dio": prepared.extra.get("loop_dio")}
    problems = _grow(dev, backing, ctx, details)
    if not problems:
        problems += _shrink(dev, backing, details)
    return _verdict(problems, details)


def check_dio_alignment(
    prepared: Prepared, params: dict[str, Any], ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    """I/O at the loop's logical block size stays correct whatever the backing fs needs.

    Records whether the kernel kept direct I/O on (loop/dio) for a loop block size below
    the backing filesystem's sector size.
    """
    dev, backing = _backed_loop(prepared, "dio-alignment")
    base = f"/sys/block/{os.path.basename(dev)}"
    lbs = int(sh.read_text(f"{base}/queue/logical_block_size", "512") or 512)
    io_bs = int(params.get("io_bs", lbs))
    details: dict[str, Any] = {
        "loop_dio": sh.read_text(f"{base}/loop/dio"),
        "requested_direct_io": prepared.extra.get("loop_dio_requested", True),
        "loop_logical_block_size": lbs,
        "io_bs": io_bs,
        "backing_fs_sector_size": prepared.extra.get("fs_sector_size"),
        "backing_device_block_size": prepared.extra.get("base_block_size"),
    }
    problems = []
    # Odd multiples of io_bs: misaligned for any backing requirement larger than io_bs.
    offsets = [(2 * i + 1) * io_bs + i * 64 * 1024 for i in range(32)]
    for i, off in enumerate(offsets):
        status, msg = blockio.try_io(blockio.write_direct, dev, off, blockio.pattern(40 + i, io_bs))
        if status != "ok":
            problems.append(
                f"{io_bs}-byte direct write at {off} on {dev} failed with {status} ({msg}); "
                f"loop/dio={details['loop_dio']}, logical_block_size={lbs}"
            )
            break
    if not problems:
        with open(backing, "rb") as fh:
            for i, off in enumerate(offsets):
                expect = blockio.pattern(40 + i, io_bs)
                if blockio.read_direct(dev, off, io_bs) != expect:
                    problems.append(f"{dev} reads back different data at {off}")
                    break
                fh.seek(off)
                if fh.read(io_bs) != expect:
                    problems.append(f"backing file {backing} holds different data at {off}")
                    break
    return _verdict(problems, details)
