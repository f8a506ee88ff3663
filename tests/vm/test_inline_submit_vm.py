"""The upstream-failures rows fail on a loop that submits direct I/O inline (issue #26 item 6).

tests/data/series/loop-inline-submit.mbox makes the lean 6.12 base's loop_queue_rq() call
the backing file's read_iter/write_iter itself (no IOCB_NOWAIT, no workqueue, a blocking
queue): the design the loop NOWAIT series made conditional. One TCG boot of it runs two
stacked stack rows, then online-resize on ext4 in a file on ext4: the upper ext4's journal
handle reaches the lower ext4 through loop and jbd2 BUGs (already at the fsync of the row's
payload, before resize2fs: the lower write's mtime update trips first). The
run must exit 1 with that as the verdict, within 90 s of the splat, and the stack rows
before it must show the deeper submission stack against one boot of the base on them.
`harness bisect --kernels BASE,VARIANT --test check:online-resize@loop-dio-on-ext4` names
the variant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli.main import main
from tests.conftest import LEAN_BASE, lean_variant_spec, left_clean
from tests.vm.test_verdict_vm import timed_plan_run

SERIES = "loop-inline-submit"
STACKED = ("stacked-dm-linear-xfs", "nested3-loop-xfs")
RESIZE = "check/online-resize/loop-dio-on-ext4"
JBD2_BUG = "kernel BUG at fs/jbd2/transaction.c"
STACK_ROWS = {
    "check": "stack",
    "targets": list(STACKED),
    "params": {"runtime_s": 4, "size_mb": 64, "rw": "randrw"},
}
BASE_PLAN = {"name": "inline-base", "size_mb": 128, "stack_scope": "submission"}
PLAN = {
    **BASE_PLAN,
    "name": "inline-submit",
    "checks": [STACK_ROWS, {"check": "online-resize", "targets": ["loop-dio-on-ext4"]}],
}


@pytest.fixture(scope="module")
def runs(lean_variant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The variant's run of PLAN and the base's run of its stack rows, one boot each, and
    nothing of theirs left on the host (host_left_clean sees only what a test does after
    them)."""
    lean_variant(SERIES)
    tmp = tmp_path_factory.mktemp("inline")
    with left_clean(tmp_path_factory):
        variant = timed_plan_run(lean_variant_spec(SERIES), PLAN, tmp / "v", JBD2_BUG)
        base_plan = {**BASE_PLAN, "checks": [STACK_ROWS]}
        base = timed_plan_run(LEAN_BASE, base_plan, tmp / "b", JBD2_BUG)
    yield {"variant": variant, "base": base}


def _steps(run: dict) -> dict[str, dict]:
    return {s["id"]: s for s in run["steps"]}


def test_online_resize_hits_the_jbd2_bug_and_the_run_says_so(runs, host_left_clean):
    rc, to_exit, total, run = runs["variant"]
    seen = f"{to_exit:.0f} s from the BUG to exit" if to_exit else "no BUG line seen"
    print(f"{SERIES}: exit {rc}, {seen}, {total:.0f} s in all")
    assert rc == 1
    verdict = run["verdict"]
    assert verdict["class"] == "kernel-failure" and verdict["step"] == RESIZE, verdict
    assert JBD2_BUG in verdict["summary"], verdict["summary"]
    # The splat's own frames: a nested jbd2 handle started from the lower ext4, reached
    # from the upper filesystem's I/O through loop's ->queue_rq, not through its worker.
    for frame in ("jbd2__journal_start", "ext4_dirty_inode", "loop_queue_rq", "lo_rw_aio"):
        assert frame in verdict["evidence"], frame
    assert "loop_process_work" not in verdict["evidence"]
    step = _steps(run)[RESIZE]
    assert step["status"] == "fail" and step["splats"][0]["kind"] == "bug", step
    assert to_exit is not None and to_exit < 90, to_exit
    assert run["infra_error"] == ""


def test_stack_rows_before_the_bug_show_the_deeper_inline_path(runs, host_left_clean):
    base_rc, _, _, base_run = runs["base"]
    assert base_rc == 0
    base, variant = _steps(base_run), _steps(runs["variant"][3])
    for name in STACKED:
        sid = f"check/stack/{name}"
        assert base[sid]["status"] == variant[sid]["status"] == "pass", sid
        before = base[sid]["metrics"]["stack_path_bytes"]
        after = variant[sid]["metrics"]["stack_path_bytes"]
        print(f"{sid}: stack_path_bytes base {before:.0f}, inline {after:.0f}")
        assert after > before + 256, (sid, before, after)
        # the deepest submission through loop runs on the submitter's stack, no worker
        path = variant[sid]["details"]["stack_path"]
        assert "loop_queue_rq" in path and "loop_process_work" not in path, path
        assert "loop_process_work" in base[sid]["details"]["stack_path"]


def test_bisect_over_base_and_variant_names_the_variant(
    lean_variant, tmp_path: Path, host_left_clean
):
    lean_variant(SERIES)
    plan, out = tmp_path / "resize.json", tmp_path / "out"
    resize = {"check": "online-resize", "targets": ["loop-dio-on-ext4"]}
    plan.write_text(json.dumps({**BASE_PLAN, "name": "resize", "checks": [resize]}))
    kernels = f"{LEAN_BASE},{lean_variant_spec(SERIES)}"
    test = "check:online-resize@loop-dio-on-ext4"
    argv = ["bisect", "--kernels", kernels, "--test", test, "--plan", str(plan)]
    rc = main([*argv, "--out", str(out)])
    report = (out / "bisect.md").read_text()
    found = json.loads((out / "bisect.json").read_text())
    assert rc == 0, report
    assert found["status"] == "found" and found["first_bad"] == lean_variant_spec(SERIES), found
    good, bad = found["steps"]
    assert good["kernel"] == LEAN_BASE and good["outcome"] == "good", good
    assert bad["outcome"] == "bad" and JBD2_BUG in bad["reason"], bad
    assert "kernel failure in the tested step" in bad["reason"]
