"""The integrity-blocks check: every 4 KiB block of the device written and verified.

fio's verify pass writes bs-aligned blocks only and the mixed pass sends a few hundred
requests, so a driver that loses writes at some 4 KiB positions, or in one small range,
can pass both. Here each pass writes the whole range once, as shuffled extents of 4-64 KiB
at every alignment, each O_DIRECT or buffered, with per-block stamps (blockstamp), then
reads every block back through the device (and, for loop, the backing file) and names the
first bad blocks, where they sit and which write covered them. One pass by default (its
cost is the I/O: ~35 s per 64 MiB through loop under TCG); a second (params passes=2),
with another seed and another split, turns a dropped write into a stale stamp.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import time

from guest import blockio
from guest import blockstamp as bs
from guest.api import Context, Outcome, Prepared, Skip
from guest.blockio import MIB

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any

SEEDS = (0x1B10C, 0x2B10C)


def _write_pass(dev: str, extents: list[bs.Extent], seed: int) -> None:
    """Each extent with its own pwrite; buffered ones are flushed by the final fsync."""
    buf = mmap.mmap(-1, 16 * bs.BLOCK)
    direct = os.open(dev, os.O_WRONLY | os.O_DIRECT)
    cached = os.open(dev, os.O_WRONLY)
    try:
        for e in extents:
            data = bs.stamps(e.first, e.count, seed)
            if e.mode == "direct":
                buf[: len(data)] = data
                with memoryview(buf)[: len(data)] as view:
                    done = os.pwritev(direct, [view], e.first * bs.BLOCK)
            else:
                done = os.pwrite(cached, data, e.first * bs.BLOCK)
            if done != len(data):
                raise OSError(f"short write {done}/{len(data)}: {e.describe()} on {dev}")
        os.fsync(cached)
        os.fsync(direct)
    finally:
        os.close(cached)
        os.close(direct)
        buf.close()


def _verify(paths: list[tuple[str, str]], nblocks: int, seed: int) -> dict[str, list]:
    """{path: [(bad block, reason)]}: every block of every path against its stamp, a MiB at
    a time (the expected MiB built once for all paths; per-block only where it differs)."""
    bad: dict[str, list[tuple[int, str]]] = {path: [] for _, path in paths}
    per_read = MIB // bs.BLOCK
    for first in range(0, nblocks, per_read):
        count = min(per_read, nblocks - first)
        want = bs.stamps(first, count, seed)
        for _, path in paths:
            data = blockio.read_direct(path, first * bs.BLOCK, count * bs.BLOCK)
            if data != want:
                data += bytes(count * bs.BLOCK - len(data))  # a short read: the rest is lost
                bad[path] += bs.bad_blocks(data, first, seed)
    return bad


def _region_blocks(dev: str, params: dict[str, Any]) -> int:
    if blockio.logical_block_size(dev) > bs.BLOCK:
        raise Skip(f"{dev} has logical blocks above 4 KiB: 4 KiB stamps cannot be written")
    cap = int(params.get("blocks_mb", 256)) * MIB
    return min(cap, blockio.device_size(dev)) // bs.BLOCK


def check_blocks(
    prepared: Prepared, params: dict[str, Any], ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    """Passes (params "passes", default 1, at most 2) that each write and verify every
    4 KiB block of the first blocks_mb MiB (default 256, at most the device)."""
    if not prepared.device:
        raise Skip(f"integrity-blocks runs on a block device; target {prepared.kind} has none")
    dev = prepared.device
    nblocks = _region_blocks(dev, params)
    paths = [("the device", dev)]
    if prepared.loop_dev and prepared.backing_file:
        paths.append(("the backing file", prepared.backing_file))
    details: dict[str, Any] = {"blocks": nblocks, "loop_dio": prepared.extra.get("loop_dio")}
    problems: list[str] = []
    for n, seed in enumerate(SEEDS[: int(params.get("passes", 1))], 1):
        extents = bs.plan_extents(nblocks, seed)
        t0 = time.monotonic()
        _write_pass(dev, extents, seed)
        t1 = time.monotonic()
        found = _verify(paths, nblocks, seed)
        details[f"pass{n}"] = {
            "seed": seed,
            "extents": len(extents),
            "direct": sum(e.mode == "direct" for e in extents),
            "write_s": round(t1 - t0, 1),
            "verify_s": round(time.monotonic() - t1, 1),
        }
        for via, path in paths:
            bad = found[path]
            key = via.split()[-1]
            details[f"pass{n}"][f"bad_blocks_via_{key}"] = len(bad)
            details[f"pass{n}"][f"bad_ranges_via_{key}"] = bs.ranges([b for b, _ in bad])
            if bad:
                problems.append(
                    f"pass {n} through {via} {path}: " + bs.summarise(bad, extents, nblocks)
                )
        if problems:
            break
    if problems:
        return Outcome("fail", "; ".join(problems), {}, details)
    return Outcome("pass", "", {}, details)
