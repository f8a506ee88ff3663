"""The integrity-blocks check's block stamps, write plan and verifier, on synthetic data and
on a real file: every 4 KiB block is written once per pass and a block lost at an
unaligned position is named."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import pytest

from guest import blockstamp as bs
from guest import checks_blocks
from guest.api import Context, Prepared
from guest.checks import CHECKS as GUEST_CHECKS
from guest.checks_blocks import check_blocks
from harness.suite.checks import CHECKS
from harness.suite.plans import PLANS

SEED, OLD = 7, 6


def _image(nblocks: int, seed: int = SEED) -> bytearray:
    return bytearray(bs.stamps(0, nblocks, seed))


def _put(image: bytearray, block: int, data: bytes) -> None:
    image[block * bs.BLOCK : (block + 1) * bs.BLOCK] = data


def test_the_plan_writes_every_block_once_at_every_alignment_in_both_modes() -> None:
    extents = bs.plan_extents(8192, SEED)
    covered = sorted(b for e in extents for b in range(e.first, e.first + e.count))
    assert covered == list(range(8192))
    assert {e.count for e in extents} == set(range(1, 17))  # 4 KiB .. 64 KiB
    assert {e.first % 4 for e in extents} == {0, 1, 2, 3}  # starts off 16 KiB too
    assert {e.mode for e in extents} == {"direct", "buffered"}
    assert [e.first for e in extents] != sorted(e.first for e in extents)  # shuffled
    assert bs.plan_extents(8192, SEED) == extents  # seeded: the same plan every run
    assert bs.plan_extents(8192, SEED + 1) != extents
    assert sum(e.count for e in bs.plan_extents(5, SEED)) == 5


def test_a_stamp_says_its_block_and_seed() -> None:
    one = bs.stamp(5, SEED)
    assert len(one) == bs.BLOCK
    assert len({bs.stamp(b, s) for b in range(64) for s in (SEED, OLD)}) == 128
    assert bs.diagnose(one, 5, SEED) == ""
    assert bs.stamps(4, 2, SEED) == bs.stamp(4, SEED) + bs.stamp(5, SEED)


def test_the_verifier_names_each_bad_block_and_why() -> None:
    image = _image(64)
    assert bs.bad_blocks(bytes(image), 0, SEED) == []
    _put(image, 5, bs.stamp(5, OLD))  # a dropped write: the earlier pass's stamp remains
    _put(image, 6, bytes(bs.BLOCK))
    _put(image, 9, bs.stamp(13, SEED))
    torn = bytearray(bs.stamp(21, SEED))
    torn[2000] ^= 1
    _put(image, 21, bytes(torn))
    _put(image, 33, b"x" * bs.BLOCK)
    bad = dict(bs.bad_blocks(bytes(image), 0, SEED))
    assert sorted(bad) == [5, 6, 9, 21, 33]
    assert bad[5].startswith("stale: holds seed 6")
    assert bad[6].startswith("zeros")
    assert bad[9].startswith("misdirected: holds block 13's")
    assert bad[21].startswith("torn")
    assert bad[33].startswith("foreign")
    # block numbers count from where the read started
    assert [b for b, _ in bs.bad_blocks(bytes(image[4 * bs.BLOCK :]), 4, SEED)][:1] == [5]


def _drops(block: int) -> bool:
    """A driver that loses writes starting at some 4 KiB, not 16 KiB, aligned positions
    (the rule of tests/data/series/lose-writes-by-position.mbox, with another hash)."""
    return block % 4 != 0 and int(hashlib.sha256(str(block).encode()).digest()[0]) % 8 == 0


def _lossy_device(nblocks: int, extents: list[bs.Extent], seed: int, old: bytes) -> bytes:
    image = bytearray(old)
    for e in extents:
        if not _drops(e.first):
            image[e.first * bs.BLOCK : (e.first + e.count) * bs.BLOCK] = bs.stamps(
                e.first, e.count, seed
            )
    return bytes(image)


def test_writes_lost_by_position_are_found_and_a_16k_aligned_pass_misses_them() -> None:
    nblocks = 4096
    extents = bs.plan_extents(nblocks, SEED)
    lost = {b for e in extents if _drops(e.first) for b in range(e.first, e.first + e.count)}
    assert lost  # the plan does start extents at positions such a driver drops
    device = _lossy_device(nblocks, extents, SEED, bs.stamps(0, nblocks, OLD))
    bad = bs.bad_blocks(device, 0, SEED)
    assert {b for b, _ in bad} == lost
    assert all(reason.startswith("stale") for _, reason in bad)
    message = bs.summarise(bad, extents, nblocks)
    first = min(lost)
    dropped = [e for e in extents if _drops(e.first)]
    assert message.startswith(
        f"{len(lost)} of {nblocks} 4 KiB blocks read back wrong, from {len(dropped)} of "
        f"{len(extents)} writes (by start: {{'4 KiB aligned, not 16 KiB': {len(dropped)}}}, "
    )
    assert f"first bad blocks: block {first} (stale" in message
    owner = bs.owner_of(extents)[first]
    assert owner.describe() in message and "not 16 KiB" in bs.alignment(owner.first)
    # a 16 KiB-aligned write pattern (fio bs=16k) never starts where this driver drops
    assert not any(_drops(b) for b in range(0, nblocks, 4))


def test_check_blocks_on_a_real_file_names_a_block_lost_mid_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    device = tmp_path / "device.img"
    device.write_bytes(bytes(4 << 20))
    prepared = Prepared("file", "raw", str(device), device=str(device))
    ctx = Context(workdir=str(tmp_path), mode="host", disks={}, results=str(tmp_path))
    with contextlib.ExitStack() as stack:
        good = check_blocks(prepared, {"passes": 1}, ctx, stack)
        assert good.status == "pass", good.message
        assert good.details["blocks"] == 1024 and good.details["pass1"]["direct"] > 0
        real = checks_blocks._write_pass

        def lossy(dev: str, extents: list, seed: int) -> None:
            """A "driver" that loses the writes to block 517 (byte 2 MiB + 20 KiB)."""
            real(dev, extents, seed)
            with open(dev, "r+b") as fh:
                fh.seek(517 * bs.BLOCK)
                fh.write(bs.stamp(517, checks_blocks.SEEDS[0]))  # what pass 1 left there

        monkeypatch.setattr(checks_blocks, "_write_pass", lossy)
        bad = check_blocks(prepared, {"passes": 2}, ctx, stack)
    assert bad.status == "fail"
    assert "pass 2 through the device" in bad.message
    assert "1 of 1024 4 KiB blocks read back wrong, from 1 of " in bad.message
    assert "first bad blocks: block 517 (stale: holds seed 110860" in bad.message
    assert bad.details["pass2"]["bad_blocks_via_device"] == 1
    assert bad.details["pass2"]["bad_ranges_via_device"] == [[517, 517]]
    assert bs.ranges([3, 4, 5, 9, 11, 12]) == [[3, 5], [9, 9], [11, 12]]
    assert bs.ranges(list(range(0, 20, 2)), limit=3) == [[0, 0], [2, 2], [4, 4]]


def test_integrity_blocks_is_a_check_of_the_loop_plan_on_loop_and_dm() -> None:
    assert "integrity-blocks" in GUEST_CHECKS
    check = CHECKS["integrity-blocks"]
    assert {"loop-dio-on-xfs", "loop-dio-off-xfs", "dm-linear-xfs"} <= set(check.targets)
    assert {"check": "integrity-blocks", "targets": list(check.targets)} in PLANS["loop"]["checks"]
