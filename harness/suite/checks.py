"""Named correctness checks: what each asserts, where it runs, what is an expected failure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    targets: tuple[str, ...]  # default targets in the `loop` plan
    timeout_s: int = 300
    params: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check(
            "sparse",
            "loop over a sparse file allocates only what is written; discard "
            "punches holes (st_blocks, SEEK_HOLE), reads back zeros; write-zeroes",
            ("loop-dio-on-xfs", "loop-dio-off-xfs", "loop-dio-on-ext4", "dm-linear-xfs"),
            tags=("correctness", "thin"),
        ),
        Check(
            "reflink",
            "writes through the device after cp --reflink=always leave the "
            "clone unchanged and show in the original",
            ("loop-dio-on-xfs", "loop-dio-off-xfs", "loop-dio-on-ext4", "dm-linear-xfs"),
            tags=("correctness", "reflink"),
        ),
        Check(
            "truncate",
            "grow the backing file + losetup -c: the device and the fs inside "
            "follow; shrink while attached: record what I/O past the end does",
            ("loop-dio-on-xfs", "loop-dio-off-xfs"),
            tags=("correctness", "resize"),
        ),
        Check(
            "integrity",
            "fio verify=crc32c under queue depth; then 512 B-1 MiB writes, "
            "4 KiB aligned and not, sequential/random O_DIRECT and merged buffered, "
            "checksummed back through the device and the backing file",
            ("loop-dio-on-xfs", "loop-dio-off-xfs", "dm-linear-xfs"),
            timeout_s=600,
            params={"size_mb": 64},
            tags=("correctness", "data"),
        ),
        Check(
            "integrity-blocks",
            "every 4 KiB block of the device (up to 256 MiB) written "
            "once, as shuffled 4-64 KiB extents at every alignment, O_DIRECT and "
            "buffered, with per-block stamps; read back through the device and the "
            "backing file, naming the first bad blocks",
            ("loop-dio-on-xfs", "loop-dio-off-xfs", "dm-linear-xfs"),
            timeout_s=600,
            tags=("correctness", "data"),
        ),
        Check(
            "dio-alignment",
            "loop block size 512 over XFS with 4 KiB sectors: record "
            "whether loop kept direct I/O, and that the data stays right",
            ("loop-dio-on-xfs4k-bs512",),
            tags=("correctness", "dio"),
        ),
        Check(
            "stack",
            "write load on the nested loop stack: no stack overflow or guard page "
            "hit; max stack depth from the ftrace stack tracer",
            ("nested-loop-xfs",),
            timeout_s=600,
            params={"runtime_s": 10},
            tags=("stack",),
        ),
        Check(
            "online-resize",
            "an image on a file on a strictatime filesystem, loop (dio on), "
            "the same filesystem inside grown online in steps (resize2fs / xfs_growfs): data "
            "checksummed after each step, fsck clean (fstests ext4/032; the robot's jbd2 BUG)",
            ("loop-dio-on-ext4", "loop-dio-on-xfs"),
            timeout_s=420,
            params={"grow_steps": 3, "grow_step_mb": 64, "files": 3, "file_mb": 4},
            tags=("correctness", "resize", "upstream"),
        ),
        Check(
            "throttled-writes",
            "writeback throttling at a low latency target "
            "(queue/wbt_lat_usec) on the disk below and on loop; buffered and direct writes "
            "through loop (dio on) complete (the unmerged fix V3 3/4: a wbt deadlock)",
            ("loop-dio-on-xfs",),
            timeout_s=360,
            params={"wbt_lat_usec": 1000, "size_mb": 32},
            tags=("hang", "wbt", "upstream"),
        ),
        Check(
            "plug-reentry",
            "a filesystem on loop on a filesystem on loop: rounds of "
            "buffered writeback (plugged batches into loop while loop submits below) and "
            "cold readahead through the nested loops, data checksummed (the unmerged fix "
            "V3 4/4: plug-list corruption)",
            ("nested-loop-xfs",),
            timeout_s=420,
            params={"rounds": 4, "files": 16, "file_mb": 1},
            tags=("correctness", "plug", "upstream"),
        ),
    )
}
