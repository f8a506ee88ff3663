"""Correctness checks, one function per check: (prepared, params, ctx, stack) -> Outcome.

A check raises Skip when it can't run here (with the reason) and returns Outcome("fail",
message) naming what a kernel developer should look at. Problems are collected so one run
reports every broken property, not just the first.
"""

from __future__ import annotations

import contextlib
import os
import threading

from guest import (
    blockio,
    checks_blocks,
    checks_load,
    checks_reentry,
    checks_resize,
    checks_size,
    sh,
    targets,
)
from guest.api import Context, Outcome, Prepared, Skip
from guest.blockio import MIB

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

if TYPE_CHECKING:
    CheckFn = Callable[[Prepared, dict[str, Any], Context, contextlib.ExitStack], Outcome]


def run_check(
    step: dict[str, Any], prepared: Prepared, ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    name = step.get("check", "")
    if name not in CHECKS:
        raise Skip(f"unknown check {name!r}; known: {', '.join(sorted(CHECKS))}")
    return CHECKS[name](prepared, dict(step.get("params", {})), ctx, stack)


def _needs_backing(prepared: Prepared, check: str) -> tuple[str, str]:
    if not prepared.device or not prepared.backing_file:
        raise Skip(f"{check} needs a block device over a backing file; {prepared.kind} has none")
    return prepared.device, prepared.backing_file


def _verdict(problems: list[str], details: dict[str, Any], metrics: dict | None = None) -> Outcome:
    if problems:
        return Outcome("fail", "; ".join(problems), metrics or {}, details)
    return Outcome("pass", "", metrics or {}, details)


def check_sparse(
    prepared: Prepared, params: dict[str, Any], ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    """Loop over a sparse file allocates only what is written; discard punches holes."""
    dev, backing = _needs_backing(prepared, "sparse")
    size = os.stat(backing).st_size
    chunk = int(params.get("chunk_mb", 8)) * MIB
    off = (size // 2) // MIB * MIB
    details: dict[str, Any] = {"allocated_before": blockio.allocated(backing)}
    problems = []
    if details["allocated_before"] > size // 4:
        problems.append(
            f"backing file {backing} has {details['allocated_before'] // MIB} MiB of "
            f"{size // MIB} MiB allocated before any write: it is not thin-provisioned"
        )
    blockio.write_direct(dev, off, blockio.pattern(1, chunk))
    grown = blockio.allocated(backing) - details["allocated_before"]
    details["allocated_by_write"] = grown
    if grown > chunk * 3 // 2 + MIB:
        problems.append(f"writing {chunk // MIB} MiB through {dev} allocated {grown // MIB} MiB")
    before_discard = blockio.allocated(backing)
    sh.run(["blkdiscard", "-o", str(off), "-l", str(chunk), dev])
    with open(dev, "rb") as fh:
        os.fsync(fh.fileno())
    freed = before_discard - blockio.allocated(backing)
    details["freed_by_discard"] = freed
    if freed < chunk * 3 // 4:
        problems.append(
            f"discard of {chunk // MIB} MiB through {dev} freed {freed // MIB} MiB of the "
            f"backing file: discards do not punch holes in {backing}"
        )
    fd = os.open(backing, os.O_RDONLY)
    hole = os.lseek(fd, off, os.SEEK_HOLE)
    os.close(fd)
    details["seek_hole_at"] = hole
    if hole != off:
        problems.append(f"SEEK_HOLE from {off} in {backing} found {hole}: no hole where discarded")
    if blockio.read_direct(dev, off, chunk).count(0) != chunk:
        problems.append(f"discarded range at {off} of {dev} does not read back as zeros")
    problems += _write_zeroes(dev, backing, off, chunk, details)
    problems += _fstrim(dev, backing, chunk, ctx, details)
    return _verdict(problems, details)


def _fstrim(dev: str, backing: str, chunk: int, ctx: Context, details: dict) -> list[str]:
    """ext4 inside the device: a deleted file's blocks go back to the backing fs on fstrim."""
    sh.run(targets.mkfs_argv("ext4", dev), timeout=300)
    mnt = os.path.join(ctx.workdir, "mnt", f"fstrim-{os.getpid()}")
    with contextlib.ExitStack() as inner:
        targets.mount(dev, mnt, "ext4", inner)
        victim = os.path.join(mnt, "victim")
        with open(victim, "wb") as fh:
            fh.write(blockio.pattern(3, chunk))
            os.fsync(fh.fileno())
        os.unlink(victim)
        os.sync()
        before = blockio.allocated(backing)
        rc, out = sh.run(["fstrim", "-v", mnt], check=False)
        os.sync()
    freed = before - blockio.allocated(backing)
    details["fstrim"] = {"rc": rc, "output": out.strip()[-160:], "freed": freed}
    if rc != 0:
        return [f"fstrim of ext4 inside {dev} failed: {out.strip()[-160:]}"]
    if freed < chunk * 3 // 4:
        return [
            f"fstrim of ext4 inside {dev} after deleting {chunk // MIB} MiB freed "
            f"{freed // MIB} MiB of {backing}: trims do not reach the backing file"
        ]
    return []


def _write_zeroes(dev: str, backing: str, off: int, chunk: int, details: dict) -> list[str]:
    """BLKZEROOUT (blkdiscard -z) reads back as zeros; record whether it kept allocation."""
    blockio.write_direct(dev, off, blockio.pattern(2, chunk))
    before = blockio.allocated(backing)
    rc, out = sh.run(["blkdiscard", "-z", "-o", str(off), "-l", str(chunk), dev], check=False)
    details["write_zeroes"] = {
        "rc": rc,
        "output": out.strip()[-200:],
        "freed": before - blockio.allocated(backing),
    }
    if rc != 0:
        return [f"write-zeroes (blkdiscard -z) on {dev} failed: {out.strip()[-200:]}"]
    if blockio.read_direct(dev, off, chunk).count(0) != chunk:
        return [f"write-zeroes range at {off} of {dev} does not read back as zeros"]
    return []


def _background_writer(dev: str, off: int, stop: threading.Event, errors: list[str]) -> None:
    data = blockio.pattern(9, MIB)
    i = 0
    while not stop.is_set():
        try:
            blockio.write_direct(dev, off + (i % 8) * MIB, data)
        except OSError as exc:
            errors.append(str(exc))
            return
        i += 1


def _clone(backing: str, clone: str, method: str) -> None:
    if method == "hardlink":  # test-only: a "copy" that shares blocks without COW
        os.link(backing, clone)
        return
    rc, out = sh.run(["cp", "--reflink=always", backing, clone], check=False)
    if rc != 0:
        raise Skip(f"no reflink on this filesystem (cp --reflink=always: {out.strip()[-120:]})")


def check_reflink(
    prepared: Prepared, params: dict[str, Any], ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    """Writes through the device after a reflink copy leave the clone unchanged."""
    dev, backing = _needs_backing(prepared, "reflink")
    chunk = int(params.get("chunk_mb", 8)) * MIB
    clone = backing + ".clone"
    blockio.write_direct(dev, 0, blockio.pattern(11, chunk))
    stop, errors = threading.Event(), []
    writer = threading.Thread(target=_background_writer, args=(dev, 2 * chunk, stop, errors))
    writer.start()  # the copy happens while writes are in flight, as in real use
    try:
        stack.callback(_unlink, clone)
        _clone(backing, clone, params.get("clone_method", "reflink"))
    finally:
        stop.set()
        writer.join()
    before = blockio.sha256_direct(clone, chunk)
    new = blockio.pattern(12, chunk)
    blockio.write_direct(dev, 0, new)
    after = blockio.sha256_direct(clone, chunk)
    details = {"clone": clone, "background_write_errors": errors}
    problems = []
    if before != after:
        problems.append(
            f"writing through {dev} after `cp --reflink=always` changed the clone {clone}: "
            "the writes landed in shared extents instead of being copied on write"
        )
    if blockio.read_direct(backing, 0, chunk) != new:
        problems.append(f"writes through {dev} are not visible in the backing file {backing}")
    if errors:
        problems.append(f"writes during the copy failed: {errors[0]}")
    return _verdict(problems, details)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


CHECKS: dict[str, CheckFn] = {
    "sparse": check_sparse,
    "reflink": check_reflink,
    "truncate": checks_size.check_truncate,
    "dio-alignment": checks_size.check_dio_alignment,
    "integrity": checks_load.check_integrity,
    "integrity-blocks": checks_blocks.check_blocks,
    "stack": checks_load.check_stack,
    "online-resize": checks_resize.check_online_resize,
    "throttled-writes": checks_reentry.check_throttled_writes,
    "plug-reentry": checks_reentry.check_plug_reentry,
}
