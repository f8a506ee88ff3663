"""The mixed-I/O half of the integrity check: no lost write goes unseen.

A fixed, seeded list of writes covers what a single-size fio pass never issues: every size
from one logical block (512 B) to 1 MiB, offsets aligned and not aligned to 4 KiB,
sequential and random O_DIRECT writes (1 MiB and larger ones at unaligned offsets are split
by the block layer), and buffered writes at arbitrary byte offsets whose writeback merges
neighbouring dirty blocks into larger requests. An in-memory image records what every
byte should hold; the device is read back with O_DIRECT (and, for loop, the backing file
too) and compared by checksum per 64 KiB, and every bad sector is traced to the write that
last covered it, so the message says which kind of write was lost.
"""

from __future__ import annotations

import random
from collections import Counter

from guest import blockio
from guest.api import Prepared, Record
from guest.blockio import MIB

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any

KIB = 1024
SECTOR = 512
CHUNK = 64 * KIB  # checksum granularity of the comparison
SIZES = (512, 1024, 1536, 3584, 4096, 4608, 8192, 12800, 65536, 66048, 262144, MIB - 512, MIB)
RANDOM_DIO, BUFFERED = 160, 120


class Write(Record):
    __slots__ = ("offset", "length", "mode")

    def __init__(self, offset: int, length: int, mode: str) -> None:  # mode: dio-seq |
        self.offset, self.length, self.mode = offset, length, mode  # dio-rand | buffered

    @property
    def aligned(self) -> bool:
        return self.offset % 4096 == 0 and self.length % 4096 == 0

    def describe(self) -> str:
        shape = "4 KiB aligned" if self.aligned else "not 4 KiB aligned"
        return f"{self.mode} write of {self.length} B at {self.offset} ({shape})"


def plan_writes(region: int, lbs: int, seed: int = 17) -> list[Write]:
    """Sequential O_DIRECT over the first half cycling through SIZES (so offsets drift off
    4 KiB after the first), random O_DIRECT anywhere, then buffered at byte offsets."""
    rng = random.Random(seed)
    sizes = [s for s in SIZES if s % lbs == 0]
    writes, off, i = [], 0, 0
    while off + sizes[i % len(sizes)] <= region // 2:
        writes.append(Write(off, sizes[i % len(sizes)], "dio-seq"))
        off += sizes[i % len(sizes)]
        i += 1
    for _ in range(RANDOM_DIO):
        size = rng.choice(sizes)
        writes.append(Write(rng.randrange(0, (region - size) // lbs) * lbs, size, "dio-rand"))
    for _ in range(BUFFERED):
        size = rng.randrange(1, 64 * KIB)
        writes.append(Write(rng.randrange(0, region - size), size, "buffered"))
    return writes


def _apply(dev: str, writes: list[Write], image: bytearray, owner: list[int]) -> None:
    for index, w in enumerate(writes):
        data = blockio.pattern(1000 + index, w.length)
        if w.mode == "buffered":
            blockio.write_buffered(dev, w.offset, data)
        else:
            blockio.write_direct(dev, w.offset, data)
        image[w.offset : w.offset + w.length] = data
        for sector in range(w.offset // SECTOR, (w.offset + w.length - 1) // SECTOR + 1):
            owner[sector] = index
    blockio.sync_path(dev)


def bad_chunks(path: str, image: bytearray) -> list[int]:
    """Offsets of the CHUNK-sized pieces of `path` whose sha256 differs from the image."""
    import hashlib  # here, not at the top: see blockio.sha256_direct

    bad = []
    for off in range(0, len(image), MIB):
        got = blockio.read_direct(path, off, min(MIB, len(image) - off))
        for sub in range(0, len(got), CHUNK):
            want = image[off + sub : off + sub + CHUNK]
            if hashlib.sha256(got[sub : sub + CHUNK]).digest() != hashlib.sha256(want).digest():
                bad.append(off + sub)
    return bad


def lost_writes(path: str, chunks: list[int], image: bytearray, owner: list[int]) -> set[int]:
    """Indexes of the writes that last covered a sector reading back wrong."""
    lost = set()
    for off in chunks:
        got = blockio.read_direct(path, off, CHUNK)
        for s in range(0, len(got), SECTOR):
            if got[s : s + SECTOR] != image[off + s : off + s + SECTOR]:
                lost.add(owner[(off + s) // SECTOR])
    return lost


def _verify(
    path: str,
    via: str,
    writes: list[Write],
    image: bytearray,
    owner: list[int],
    details: dict[str, Any],
) -> list[str]:
    chunks = bad_chunks(path, image)
    lost = sorted(lost_writes(path, chunks, image, owner)) if chunks else []
    real = [writes[i] for i in lost if i >= 0]
    details[f"mixed_bad_chunks_{via}"] = len(chunks)
    details[f"mixed_lost_writes_{via}"] = [w.describe() for w in real[:20]]
    if not chunks:
        return []
    kinds = Counter(f"{w.mode}/{'aligned' if w.aligned else 'unaligned'}" for w in real)
    first = real[0].describe() if real else "the initial fill"
    return [
        f"{len(chunks)} of {len(image) // CHUNK} 64 KiB chunks read back wrong through {via} "
        f"{path}: {len(real)} of {len(writes)} writes lost ({dict(sorted(kinds.items()))}); "
        f"first: {first}"
    ]


def run(prepared: Prepared, region_mb: int, details: dict[str, Any]) -> list[str]:
    """Write the mixed pattern to prepared.device and verify it; the problems found."""
    dev = prepared.device
    assert dev is not None
    region = min(region_mb * MIB, blockio.device_size(dev) // MIB * MIB)
    lbs = blockio.logical_block_size(dev)
    image = bytearray(blockio.pattern(999, region))
    for off in range(0, region, MIB):  # a known start: aligned 1 MiB writes
        blockio.write_direct(dev, off, bytes(image[off : off + MIB]))
    owner = [-1] * (region // SECTOR)
    writes = plan_writes(region, lbs)
    _apply(dev, writes, image, owner)
    details["mixed"] = {
        "region_bytes": region,
        "logical_block_size": lbs,
        "writes": len(writes),
        "unaligned_writes": sum(not w.aligned for w in writes),
        "modes": dict(Counter(w.mode for w in writes)),
    }
    problems = _verify(dev, "the device", writes, image, owner, details)
    if prepared.loop_dev and prepared.backing_file:
        problems += _verify(
            prepared.backing_file, "the backing file", writes, image, owner, details
        )
    return problems
