"""The plug-reentry row fails on a loop that adds to the plug list being flushed (issue #26
item 6).

tests/data/series/loop-plug-reentry.mbox makes the lean 6.12 base's loop_queue_rq() try the
backing file with IOCB_NOWAIT in the submitter's context, keeping the submitter's plug and
current->bio_list (the NOWAIT series without the unmerged fix V3 4/4). When a task's plug
flush issues a request to the top loop of `nested-loop-xfs`, the XFS below adds its bio's
request for the lower loop to that same plug list; it is popped and issued there, and the
lower loop's own backing bio then finds the list's count set and its head NULL:
`blk_add_rq_to_plug` oopses. One TCG boot of the row alone on the variant, one on the base.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LEAN_BASE, lean_variant_spec, left_clean
from tests.vm.test_verdict_vm import timed_plan_run

SERIES = "loop-plug-reentry"
ROW = "check/plug-reentry/nested-loop-xfs"
OOPS = "BUG: kernel NULL pointer dereference"
PLAN = {
    "name": "plug-reentry",
    "size_mb": 128,
    "checks": [{"check": "plug-reentry", "targets": ["nested-loop-xfs"]}],
}


@pytest.fixture(scope="module")
def runs(lean_variant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The row's run on the variant and on the base, one boot each."""
    lean_variant(SERIES)
    tmp = tmp_path_factory.mktemp("reentry")
    with left_clean(tmp_path_factory):
        variant = timed_plan_run(lean_variant_spec(SERIES), PLAN, tmp / "v", OOPS)
        base = timed_plan_run(LEAN_BASE, PLAN, tmp / "b", OOPS)
    yield {"variant": variant, "base": base}


def _step(run: dict) -> dict:
    (step,) = [s for s in run["steps"] if s["id"] == ROW]
    return step


def test_the_row_oopses_in_the_plug_flush_and_the_run_says_so(runs, host_left_clean):
    rc, to_exit, total, run = runs["variant"]
    seen = f"{to_exit:.0f} s from the oops to exit" if to_exit else "no oops line seen"
    print(f"{SERIES}: exit {rc}, {seen}, {total:.0f} s in all")
    assert rc == 1
    verdict = run["verdict"]
    assert verdict["class"] == "kernel-failure" and verdict["step"] == ROW, verdict
    assert OOPS in verdict["summary"], verdict["summary"]
    assert verdict["signature"].startswith("oops: blk_add_rq_to_plug"), verdict["signature"]
    # The splat's own frames: the lower filesystem's bio, issued from loop's ->queue_rq
    # inside a plug flush, joins that plug's list (no worker in between).
    frames = (
        "blk_add_rq_to_plug",
        "blk_mq_submit_bio",
        "lo_rw_aio",
        "loop_queue_rq",
        "blk_mq_plug_issue_direct",
        "blk_mq_flush_plug_list",
    )
    for frame in frames:
        assert frame in verdict["evidence"], frame
    assert "loop_process_work" not in verdict["evidence"]
    step = _step(run)
    assert step["status"] == "fail" and step["splats"][0]["kind"] == "oops", step
    assert to_exit is not None and to_exit < 90, to_exit
    assert run["infra_error"] == ""


def test_the_row_passes_on_the_base(runs, host_left_clean):
    rc, _, total, run = runs["base"]
    print(f"{LEAN_BASE}: exit {rc}, {total:.0f} s in all")
    assert rc == 0
    assert run["verdict"]["class"] == "pass", run["verdict"]
    step = _step(run)
    assert step["status"] == "pass", step
    assert step["details"]["rounds_done"] == step["details"]["rounds"] == 4, step["details"]
