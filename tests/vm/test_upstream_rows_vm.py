"""The upstream-failures plan booted once on the lean 6.12 base under TCG (issue #26 items
1-5): every row passes with real figures, or skips naming the driver the kernel lacks
(dm-crypt and wbt are not in the lean base: kconfigs/upstream.config has them)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from harness.cli.main import main
from tests.conftest import LEAN_BASE, lean_variant_spec

STACKED = (
    "nested3-loop-xfs",
    "nested-loop-ext4",
    "stacked-dm-linear-xfs",
    "stacked-dm-stripe-xfs",
    "stacked-dm-crypt-xfs",
)
# A lean base without these options skips the row saying which driver is missing.
SKIPPABLE = {
    "check/stack/stacked-dm-crypt-xfs": "no dm-crypt target",
    "check/throttled-writes/loop-dio-on-xfs": "CONFIG_BLK_WBT off",
}


def _steps(out: Path) -> dict[str, dict]:
    run = json.loads((out / "results.json").read_text())["runs"][0]
    return {s["id"]: s for s in run["steps"] if s["id"] not in ("kernel-log", "boot")}


def _assert_path_figure(step: dict) -> None:
    figure = step["metrics"]["stack_path_bytes"]
    details = step["details"]
    assert 1024 < figure <= details["path_budget_bytes"] == 12288, step
    assert "submit_bio_noacct" in details["stack_scope"], details["stack_scope"]
    assert details["stack_trace"] and details["stack_path"], details
    assert details["stack_through_loop"], details["stack_path"]


def test_upstream_failures_plan_on_the_lean_base(tmp_path: Path, lean_base, host_left_clean):
    out = tmp_path / "out"
    rc = main(["run", "--kernel", LEAN_BASE, "--plan", "upstream-failures", "--out", str(out)])
    steps = _steps(out)
    for sid, step in steps.items():
        if step["status"] == "skip" and sid in SKIPPABLE:
            assert SKIPPABLE[sid] in step["message"], step["message"]
        else:
            assert step["status"] == "pass", (sid, step["message"])
    assert rc == 0, out / "report.md"
    for name in STACKED:
        step = steps[f"check/stack/{name}"]
        if step["status"] == "pass":
            _assert_path_figure(step)
    linear = steps["check/stack/stacked-dm-linear-xfs"]["details"]
    assert linear["dm_table"].startswith("0 ") and " linear " in linear["dm_table"]
    stripe = steps["check/stack/stacked-dm-stripe-xfs"]["details"]
    assert " striped 2 128 " in stripe["dm_table"], stripe["dm_table"]
    assert steps["check/stack/nested3-loop-xfs"]["details"]["depth"] == 3
    for fs in ("ext4", "xfs"):
        resize = steps[f"check/online-resize/loop-dio-on-{fs}"]["details"]
        assert resize["lower_atime"] == "strictatime" and resize["upper_fs"] == fs
        assert [g["rc"] for g in resize["grow_steps"]] == [0, 0, 0], resize
        assert all(g["grew_bytes"] >= 32 << 20 and not g["bad_files"] for g in resize["grow_steps"])
    assert steps["check/plug-reentry/nested-loop-xfs"]["details"]["rounds_done"] == 4
    assert sum(s["duration_s"] for s in steps.values()) < 600


PAD_PLAN = {
    "name": "stack-path",
    "size_mb": 128,
    "stack_scope": "submission",
    "checks": [
        {
            "check": "stack",
            "targets": ["stacked-dm-linear-xfs", "nested3-loop-xfs"],
            "params": {"runtime_s": 4, "size_mb": 64, "rw": "randrw"},
        }
    ],
}


def _path_figures(kernel: str, out: Path, plan: Path) -> dict[str, float]:
    assert main(["run", "--kernel", kernel, "--plan", str(plan), "--out", str(out)]) == 0
    steps = _steps(out)
    return {sid: s["metrics"]["stack_path_bytes"] for sid, s in steps.items() if sid != "boot"}


def test_a_1k_frame_in_lo_rw_aio_moves_the_path_figure(tmp_path: Path, lean_variant):
    """tests/data/series/loop-pad-1k.mbox pads lo_rw_aio by 1 KiB: on every stacked target
    the deepest submission stack runs through it, so the path figure grows by about that."""
    lean_variant("loop-pad-1k")  # built incrementally on the lean base
    # A short --out: the run directory (named after the spec, series path included) is on
    # the kernel command line twice, and past x86's 2048 bytes init= is cut off (found here).
    short = Path(tempfile.mkdtemp(prefix="pad", dir="/tmp"))
    plan = short / "plan.json"
    plan.write_text(json.dumps(PAD_PLAN))
    try:
        base = _path_figures(LEAN_BASE, short / "b", plan)
        padded = _path_figures(lean_variant_spec("loop-pad-1k"), short / "p", plan)
    finally:
        shutil.rmtree(short, ignore_errors=True)
    for sid, figure in base.items():
        assert 900 <= padded[sid] - figure <= 1400, (sid, figure, padded[sid])
