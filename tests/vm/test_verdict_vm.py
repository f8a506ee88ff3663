"""Broken kernels get kernel verdicts, fast: real lean 6.12 variants under TCG.

fault-oops dereferences NULL on the N-th loop read; fault-hang blocks the N-th loop
direct-I/O write forever (tests/data/series/). A four-step plan: raw NVMe randread, loop
randwrite (where the hang hits: the target's preparation writes through the loop too),
loop randread (where the oops hits), a file on XFS randread. Each `harness run` must exit 1 with a
JUnit failure naming the faulty step and carrying the stack, keep the steps before it
with their figures and mark the ones after it not run; each prints how long the harness
took from the fault (the variant's own console line) to its exit. One `harness ab` of the
lean base against the oops variant, --reps 3, must compare the rows before the fault,
call the faulty step a regression and stop the candidate after two identical failures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import LEAN_BASE, lean_variant_spec

RAW = "fio/raw-nvme0/randread-4k"
LOOP_READ = "fio/loop-dio-on-xfs/randread-4k"
LOOP_WRITE = "fio/loop-dio-on-xfs/randwrite-4k"
FILE_READ = "fio/file-xfs/randread-4k"
PLAN = {
    "name": "fault-plan",
    "runtime_s": 3,
    "size_mb": 128,
    "fio": [
        {"workloads": ["randread-4k"], "targets": ["raw-nvme0"]},
        {"workloads": ["randwrite-4k"], "targets": ["loop-dio-on-xfs"]},
        {"workloads": ["randread-4k"], "targets": ["loop-dio-on-xfs", "file-xfs"]},
    ],
}
# Reads probing the loop device on attach come first; 300 lands inside the read step.
# The write step's target preparation and fio's writes: the 50th lands in that step.
OOPS = "loop.harness_oops_after=300"
HANG = "loop.harness_hang_after=50"
HARNESS = [sys.executable, "-m", "harness"]


def run_timed(argv: list[str], out: Path, fault_text: str) -> tuple[int, float | None, float]:
    """Run the harness; return its exit code, seconds from the fault's console line
    appearing to the harness's exit (None if it never appeared), and the total."""
    t0 = time.monotonic()
    # output to a file, not a pipe read only at the end: a chatty run would fill the pipe
    # and block the harness, which the time-to-verdict figure would then include
    log_path = out.parent / f"{out.name}.harness-output.log"
    with log_path.open("w") as log_fh:
        proc = subprocess.Popen(argv, stdout=log_fh, stderr=subprocess.STDOUT, text=True)
    fault_at = None
    while proc.poll() is None:
        if fault_at is None:
            for log in out.glob("*/console*.log"):
                if fault_text in log.read_text(errors="replace"):
                    fault_at = time.monotonic()
        time.sleep(0.2)
    end = time.monotonic()
    print(log_path.read_text(errors="replace"))
    return proc.returncode, (end - fault_at) if fault_at else None, end - t0


def timed_plan_run(
    kernel: str, plan: dict, where: Path, fault_text: str, append: tuple[str, ...] = ()
) -> tuple[int, float | None, float, dict]:
    """`harness run` of `plan` on `kernel` into WHERE/out: exit code, seconds from
    `fault_text` on the console to the harness's exit (None if never seen), total seconds,
    and the run's results."""
    where.mkdir(parents=True, exist_ok=True)
    (where / "plan.json").write_text(json.dumps(plan))
    out = where / "out"
    argv = [*HARNESS, "run", "--kernel", kernel, "--plan", str(where / "plan.json")]
    argv += [word for a in append for word in ("--append", a)]
    rc, to_exit, total = run_timed([*argv, "--out", str(out)], out, fault_text)
    (run,) = json.loads((out / "results.json").read_text())["runs"]
    return rc, to_exit, total, run


def faulty_run(tmp: Path, series: str, append: str, fault_text: str) -> dict:
    rc, to_exit, total, run = timed_plan_run(
        lean_variant_spec(series), PLAN, tmp, fault_text, (append,)
    )
    print(
        f"{series}: exit {rc}, {to_exit:.0f} s from fault to exit, {total:.0f} s total"
        if to_exit
        else f"{series}: exit {rc}, fault line never seen, {total:.0f} s"
    )
    out = tmp / "out"
    cases = {c.get("name"): c for c in ET.parse(out / "junit.xml").iter("testcase")}
    return {"rc": rc, "run": run, "cases": cases, "to_exit": to_exit, "out": out}


@pytest.fixture(scope="module")
def oops(lean_variant, tmp_path_factory):
    lean_variant("fault-oops")
    text = "harness_oops_after=300: dereferencing NULL"
    return faulty_run(tmp_path_factory.mktemp("oops"), "fault-oops", OOPS, text)


@pytest.fixture(scope="module")
def hang(lean_variant, tmp_path_factory):
    lean_variant("fault-hang")
    text = "harness_hang_after=50: blocking this direct-I/O write forever"
    return faulty_run(tmp_path_factory.mktemp("hang"), "fault-hang", HANG, text)


def _steps(result: dict) -> dict[str, dict]:
    return {s["id"]: s for s in result["run"]["steps"]}


def test_oops_is_a_kernel_failure_of_its_step(oops, host_left_clean):
    assert oops["rc"] == 1
    verdict = oops["run"]["verdict"]
    assert verdict["class"] == "kernel-failure" and verdict["step"] == LOOP_READ
    assert oops["run"]["stop_reason"] == "oops" and oops["run"]["infra_error"] == ""
    steps = _steps(oops)
    assert steps[RAW]["status"] == "pass" and steps[RAW]["metrics"]["read_iops"] > 0
    assert steps[LOOP_WRITE]["status"] == "pass" and steps[LOOP_WRITE]["metrics"]["write_iops"] > 0
    assert steps[LOOP_READ]["status"] == "fail"
    assert steps[FILE_READ]["status"] == "skip"
    assert steps[FILE_READ]["message"] == f"not run: kernel oopsed in {LOOP_READ}"
    failure = oops["cases"][LOOP_READ].find("failure")
    assert failure is not None and "loop_harness_maybe_oops" in failure.text
    assert oops["cases"][FILE_READ].find("skipped") is not None
    assert oops["to_exit"] is not None and oops["to_exit"] < 90


def test_hang_is_diagnosed_as_a_kernel_failure_of_its_step(hang, host_left_clean):
    assert hang["rc"] == 1
    verdict = hang["run"]["verdict"]
    assert verdict["class"] == "kernel-failure" and verdict["step"] == LOOP_WRITE
    assert verdict["summary"].startswith(f"hang in {LOOP_WRITE}: ")
    assert "loop_harness_maybe_hang" in verdict["summary"] + verdict["evidence"]
    assert hang["run"]["environment"]["hung_task_timeout_s"] == 20
    steps = _steps(hang)
    assert steps[RAW]["status"] == "pass" and steps[RAW]["metrics"]["read_iops"] > 0
    for later in (LOOP_READ, FILE_READ):
        assert steps[later]["message"] == f"not run: kernel hung in {LOOP_WRITE}"
    failure = hang["cases"][LOOP_WRITE].find("failure")
    assert failure is not None and "lo_rw_aio" in failure.text
    assert hang["to_exit"] is not None and hang["to_exit"] < 180


def test_ab_compares_rows_before_the_fault_and_stops_the_candidate(
    lean_variant, tmp_path, host_left_clean
):
    lean_variant("fault-oops")
    # raw randread, then loop randread (the fault); 1 s rows: only the verdicts are judged
    plan = {
        **PLAN,
        "runtime_s": 1,
        "fio": [{"workloads": ["randread-4k"], "targets": ["raw-nvme0", "loop-dio-on-xfs"]}],
    }
    (tmp_path / "tiny.json").write_text(json.dumps(plan))
    out = tmp_path / "ab"
    argv = HARNESS + [
        "ab",
        "--base",
        LEAN_BASE,
        "--candidate",
        lean_variant_spec("fault-oops"),
        "--candidate-append",
        OOPS,
        "--plan",
        str(tmp_path / "tiny.json"),
        "--reps",
        "3",
        "--accel",
        "tcg",
        "--out",
        str(out),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True)
    print(proc.stdout, proc.stderr[-3000:])
    data = json.loads((out / "results.json").read_text())
    # the order rotates each repetition; the candidate stops after its second failure
    assert data["ab"]["sides"] == ["base", "candidate", "candidate", "base", "base"]
    assert "same kernel failure in " + LOOP_READ in data["ab"]["stopped"]["candidate"]
    report = (out / "report.md").read_text()
    assert "Early stop" in report
    from harness.workflows.ab.workflow import load_comparison

    _, comparison = load_comparison([out / "results.json"])
    raw = [m for m in comparison.metrics if m.step_id == RAW and m.metric == "read_iops"]
    assert raw and len(raw[0].cand_values) == 2 and len(raw[0].base_values) == 3
    status = {s.step_id: s.verdict for s in comparison.statuses}
    assert status[LOOP_READ] == "regression"
    assert comparison.verdict == "regression" and proc.returncode == 1
