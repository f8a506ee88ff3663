"""Stamped 4 KiB blocks: a write plan that covers every block, and a verifier that names
each bad block and why.

Every 4 KiB block of the range gets content that says where and when it was written: a
magic, its own block number, the pass seed, a filler derived from both, and a crc32 of the
header. So a block read back wrong is told apart as never written (zeros), stale (a valid
stamp of an earlier pass: the write was dropped), misdirected (another block's stamp), torn
(a valid header over other data) or foreign (anything else). The plan splits the range into
extents of 1-16 blocks (4-64 KiB) at 4 KiB-aligned offsets, so extents start at every
alignment mod 16 KiB, shuffles their order and writes each O_DIRECT or through the page cache.
Pure functions: the check that does the I/O is checks_blocks.
"""

from __future__ import annotations

import random
import struct
import zlib

from guest.api import Record

BLOCK = 4096
MAGIC = b"HBLKSTMP"
_HEAD = struct.Struct("<8sQQ")  # magic, block number, seed
_CRC = struct.Struct("<I")
_FILL = struct.Struct("<QQ")
_GOLDEN = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1
MODES = ("direct", "buffered")
_FILL_BYTES = BLOCK - _HEAD.size - _CRC.size
_REPEAT = -(-_FILL_BYTES // _FILL.size)


def stamp(block: int, seed: int) -> bytes:
    """The 4 KiB content of `block` in the pass with `seed`: the header, a filler derived
    from both, and a crc32 of the header (the filler is checked against its regenerated
    copy, which is cheaper under TCG than a checksum over 4 KiB)."""
    head = _HEAD.pack(MAGIC, block, seed)
    fill = _FILL.pack((block * _GOLDEN) & _MASK, (seed * _GOLDEN + block) & _MASK)
    return head + (fill * _REPEAT)[:_FILL_BYTES] + _CRC.pack(zlib.crc32(head))


def stamps(first: int, count: int, seed: int) -> bytes:
    """The content of `count` consecutive blocks from `first`."""
    return b"".join(stamp(b, seed) for b in range(first, first + count))


def diagnose(data: bytes, block: int, seed: int) -> str:
    """Why `data` is not stamp(block, seed): "" when it is."""
    if data == stamp(block, seed):
        return ""
    if len(data) != BLOCK:
        return f"short read ({len(data)} of {BLOCK} bytes)"
    if data.count(0) == BLOCK:
        return "zeros: never written"
    magic, got_block, got_seed = _HEAD.unpack_from(data, 0)
    crc = _CRC.unpack_from(data, BLOCK - _CRC.size)[0]
    if magic != MAGIC or zlib.crc32(data[: _HEAD.size]) != crc:
        return "foreign data: not a stamped block"
    if data != stamp(got_block, got_seed):
        return f"torn: the stamp of block {got_block}, seed {got_seed}, with other data in it"
    if got_block != block:
        return f"misdirected: holds block {got_block}'s data (seed {got_seed})"
    return f"stale: holds seed {got_seed} of an earlier pass, the write was lost"


def bad_blocks(data: bytes, first: int, seed: int) -> list[tuple[int, str]]:
    """(block number, reason) of every block of `data` (read from block `first` on) that
    is not its stamp for `seed`; a short read leaves its missing blocks bad."""
    bad = []
    for i in range(len(data) // BLOCK):
        if data[i * BLOCK : (i + 1) * BLOCK] != stamp(first + i, seed):
            bad.append((first + i, diagnose(data[i * BLOCK : (i + 1) * BLOCK], first + i, seed)))
    return bad


class Extent(Record):
    __slots__ = ("first", "count", "mode")

    def __init__(self, first: int, count: int, mode: str) -> None:
        self.first, self.count, self.mode = first, count, mode

    def describe(self) -> str:
        return (
            f"{self.mode} write of {self.count * 4} KiB at block {self.first} "
            f"(byte {self.first * BLOCK}, {alignment(self.first)})"
        )


def alignment(block: int) -> str:
    """How a 4 KiB block's byte offset sits against 16 KiB and 64 KiB."""
    if block % 16 == 0:
        return "64 KiB aligned"
    if block % 4 == 0:
        return "16 KiB aligned"
    return "4 KiB aligned, not 16 KiB"


def plan_extents(nblocks: int, seed: int, max_blocks: int = 16) -> list[Extent]:
    """Extents of 1..max_blocks blocks that cover blocks 0..nblocks-1 exactly once, in a
    seeded shuffled order, each written O_DIRECT or buffered."""
    rng = random.Random(seed)
    extents, block = [], 0
    while block < nblocks:
        count = min(rng.randint(1, max_blocks), nblocks - block)
        extents.append(Extent(block, count, rng.choice(MODES)))
        block += count
    rng.shuffle(extents)
    return extents


def ranges(blocks: list[int], limit: int = 64) -> list[list[int]]:
    """Sorted block numbers as up to `limit` inclusive [first, last] runs."""
    out: list[list[int]] = []
    for b in blocks:
        if out and b == out[-1][1] + 1:
            out[-1][1] = b
        elif len(out) == limit:
            break
        else:
            out.append([b, b])
    return out


def owner_of(extents: list[Extent]) -> dict[int, Extent]:
    """The extent that wrote each block."""
    return {b: e for e in extents for b in range(e.first, e.first + e.count)}


def _counts(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))


def summarise(
    bad: list[tuple[int, str]], extents: list[Extent], nblocks: int, limit: int = 8
) -> str:
    """One message: how many blocks are bad, which writes covered them (counted by where
    they start and how they were written), and the first bad blocks with their writes."""
    owner = owner_of(extents)
    writes = list({id(owner[b]): owner[b] for b, _ in bad if b in owner}.values())
    firsts = "; ".join(
        f"block {b} ({reason}; from the {owner[b].describe()})"
        if b in owner
        else f"block {b} ({reason})"
        for b, reason in bad[:limit]
    )
    return (
        f"{len(bad)} of {nblocks} 4 KiB blocks read back wrong, from {len(writes)} of "
        f"{len(extents)} writes (by start: {_counts([alignment(e.first) for e in writes])}, "
        f"by mode: {_counts([e.mode for e in writes])}); first bad blocks: {firsts}"
    )
