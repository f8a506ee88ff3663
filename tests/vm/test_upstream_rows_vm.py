"""The upstream-failures plan booted once on the lean 6.12 base under TCG (issue #26 items
1-5): every row passes with real figures, or skips naming the driver the kernel lacks
(dm-crypt and wbt are not in the lean base: kconfigs/upstream.config has them)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from harness.cli.main import main
from harness.results.compare import Comparison, MetricComparison, compare
from harness.run.engine import run_one
from harness.workflows.ab import workflow as ab
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
    # the lean kernel in the host's root boots the fast way: the agent is the bundle
    argv = json.loads(next(out.glob("*/vng-argv.json")).read_text())
    exec_line = argv[argv.index("--exec") + 1]
    assert " -S -E " in exec_line and "/agent-bundle/agent-" in exec_line, exec_line


PAD_PLAN = {
    "name": "stack-path",
    "size_mb": 128,
    "stack_scope": "submission",
    "checks": [
        {
            "check": "stack",
            "targets": ["stacked-dm-linear-xfs", "nested3-loop-xfs"],
            "params": {"runtime_s": 2, "size_mb": 64, "rw": "randrw"},
        }
    ],
}


def _stack_path(comparison: Comparison) -> dict[str, MetricComparison]:
    return {m.step_id: m for m in comparison.metrics if m.metric == "stack_path_bytes"}


def test_ab_flags_a_1k_frame_in_lo_rw_aio_on_every_stacked_target_and_aa_stays_clean(
    tmp_path: Path, lean_variant, host_left_clean
):
    """tests/data/series/loop-pad-1k.mbox pads lo_rw_aio by 1 KiB: on every stacked target
    the deepest submission stack runs through it, so the path figure grows by about that,
    and the A/B flags it; base against base flags nothing. One interleaved schedule of
    three sides (base, the same base again, the padded variant), 2 reps: 6 boots for both
    comparisons, which share the base runs."""
    lean_variant("loop-pad-1k")  # built incrementally on the lean base
    # A short --out keeps the guest's kernel command line short (it names the run dirs)
    short = Path(tempfile.mkdtemp(prefix="pad", dir="/tmp"))
    plan = short / "plan.json"
    plan.write_text(json.dumps(PAD_PLAN))
    base = ab.Side(ab.BASE, LEAN_BASE)
    padded = ab.Side("padded", lean_variant_spec("loop-pad-1k"))
    req = ab.AbRequest(base, ab.Side(ab.CANDIDATE, LEAN_BASE), short / "ab", plan=str(plan), reps=2)
    try:
        done = ab.run_interleaved(
            ab.schedule([base, req.candidate, padded], 2),
            lambda slot: ab.run_request(req, slot),
            run_one,
        )
    finally:
        shutil.rmtree(short, ignore_errors=True)
    assert [r.infra_error for _, r in done] == [""] * len(done)
    padded_ab = compare(ab.runs_of(done, ab.BASE), ab.runs_of(done, "padded"))
    control = compare(ab.runs_of(done, ab.BASE), ab.runs_of(done, ab.CANDIDATE))
    figures = _stack_path(padded_ab)
    assert sorted(figures) == [f"check/stack/{t}" for t in sorted(PAD_PLAN["checks"][0]["targets"])]
    for sid, m in figures.items():
        # Each rep's figure is the deepest path it happened to sample in 2 s: the pad adds
        # 1 KiB to every path through lo_rw_aio, and at least once it shows whole (CI saw
        # base 3416/3416 against padded 4440/4296: the second rep's deepest path was 144 B
        # shallower than the base's, its move 880 B).
        moved = [c - b for b, c in zip(m.base_values, m.cand_values, strict=True)]
        assert all(512 <= d <= 1400 for d in moved), (sid, m.base_values, m.cand_values)
        assert 900 <= max(moved), (sid, m.base_values, m.cand_values)
        assert m.verdict == "regression", (sid, m.verdict, m.base_values, m.cand_values)
    assert padded_ab.regressions
    # clean, or a primary metric inconclusive at 2 reps: never a regression
    assert not control.regressions, [getattr(r, "name", r) for r in control.regressions]
    assert all(m.verdict != "regression" for m in _stack_path(control).values())
