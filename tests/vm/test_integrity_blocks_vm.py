"""Integrity that covers every block, proved on kernels that lose writes by position: the
integrity-blocks check fails on a loop driver that drops writes at some 4 KiB, not 16 KiB,
aligned positions (tests/data/series/lose-writes-by-position.mbox) and on one that drops
writes to three blocks in the middle of the device (lose-writes-range.mbox), and passes on
the unpatched lean kernel, with loop direct I/O on and off. One `harness run` boots the
three kernels one after the other."""

from __future__ import annotations

import json

import pytest

from harness.cli.main import main
from tests.conftest import LEAN_BASE, lean_variant_spec

TARGETS = ("loop-dio-on-xfs", "loop-dio-off-xfs")
VARIANTS = ("lose-writes-by-position", "lose-writes-range")
SIZE_MB = 32


@pytest.fixture(scope="module")
def runs(lean_variant, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict]:
    for variant in VARIANTS:
        lean_variant(variant)
    tmp = tmp_path_factory.mktemp("integrity-blocks")
    plan = tmp / "plan.json"
    check = {"check": "integrity-blocks", "targets": list(TARGETS)}
    plan.write_text(json.dumps({"name": "blocks", "size_mb": SIZE_MB, "checks": [check]}))
    argv = ["run", "--kernel", LEAN_BASE, "--plan", str(plan), "--out", str(tmp / "out")]
    for variant in VARIANTS:
        argv += ["--kernel", lean_variant_spec(variant)]
    rc = main(argv)
    doc = json.loads((tmp / "out" / "results.json").read_text())
    return rc, {r["kernel"]["spec"]: {s["id"]: s for s in r["steps"]} for r in doc["runs"]}


@pytest.mark.slow
def test_lean_base_passes_every_block(runs) -> None:
    _, by_spec = runs
    for target in TARGETS:
        step = by_spec[LEAN_BASE][f"check/integrity-blocks/{target}"]
        assert step["status"] == "pass", step["message"]
        assert step["details"]["blocks"] == SIZE_MB * 256


@pytest.mark.slow
def test_writes_lost_at_some_unaligned_positions_fail_it(runs, host_left_clean) -> None:
    rc, by_spec = runs
    assert rc == 1
    for target in TARGETS:
        step = by_spec[lean_variant_spec(VARIANTS[0])][f"check/integrity-blocks/{target}"]
        assert step["status"] == "fail", step
        assert "4 KiB blocks read back wrong, from " in step["message"]
        # buffered writes reach loop merged, so their losses may start anywhere; the
        # O_DIRECT ones are lost where the driver drops: 4 KiB, not 16 KiB, aligned
        assert "'4 KiB aligned, not 16 KiB': " in step["message"].split("first bad")[0]
        assert "first bad blocks: block " in step["message"]


@pytest.mark.slow
def test_writes_lost_in_a_range_mid_device_fail_it(runs) -> None:
    _, by_spec = runs
    middle = SIZE_MB * 256 // 2
    for target in TARGETS:
        step = by_spec[lean_variant_spec(VARIANTS[1])][f"check/integrity-blocks/{target}"]
        assert step["status"] == "fail", step
        bad = step["details"]["pass1"]["bad_ranges_via_device"]
        # the three blocks are lost, and only writes touching them: O_DIRECT extents of
        # up to 64 KiB, or buffered writeback merged into requests of up to loop's 1280 KiB
        assert any(a <= middle + 5 and middle + 7 <= b for a, b in bad), bad
        assert all(middle - 330 < a <= b < middle + 330 for a, b in bad), bad
