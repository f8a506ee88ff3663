"""No lost write goes unseen: the integrity check's mixed pass against a loop driver that
silently drops writes not 4 KiB aligned or shorter than 4 KiB (tests/data/series/
lose-writes.mbox) must fail, and the unpatched lean kernel must pass, on loop with direct
I/O on and off. One `harness run` boots both kernels (one boot each)."""

from __future__ import annotations

from harness.suite.checks import CHECKS

TARGETS = ("loop-dio-on-xfs", "loop-dio-off-xfs")


def test_mixed_pattern_covers_sizes_alignments_and_modes() -> None:
    from guest.checks_mixed import SIZES, plan_writes

    writes = plan_writes(32 << 20, 512)
    assert {w.length for w in writes if w.mode != "buffered"} == set(SIZES)
    assert {w.mode for w in writes} == {"dio-seq", "dio-rand", "buffered"}
    assert any(w.aligned for w in writes) and sum(not w.aligned for w in writes) > 100
    assert any(w.offset % 4096 and w.length >= 1 << 20 for w in writes)  # split, unaligned
    assert all(w.offset + w.length <= 32 << 20 for w in writes)
    assert plan_writes(32 << 20, 4096) and all(
        w.offset % 4096 == 0 and w.length % 4096 == 0
        for w in plan_writes(32 << 20, 4096)
        if w.mode != "buffered"
    )
    assert set(TARGETS) <= set(CHECKS["integrity"].targets)
