"""Bisect: a kernel failure inside the step under test is the symptom (bad), one in another
step or at boot is not (skipped), and --crash-is-skip turns the first rule off. Runs are
RunResults whose splat is scanned from a recorded console log (tests/data/console/bug.log,
a real `kernel BUG at`), placed in the step it happened in."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.cli import bisect as bisect_cli
from harness.kernel.model import Kernel
from harness.kernel.resolve import OK, Resolution
from harness.klog.splats import scan
from harness.results.model import Environment, KernelInfo, RunResult, StepResult
from harness.workflows.bisect import workflow as bisect
from harness.workflows.bisect.criterion import BAD, GOOD, OTHER, judge_run, parse_test
from harness.workflows.bisect.report import markdown
from harness.workflows.bisect.state import BisectRequest

DATA = Path(__file__).parents[1] / "data"
RESIZE = "check/truncate/loop-dio-on-xfs"
OTHER_STEP = "fio/loop-dio-on-xfs/randwrite-4k"
BUG = next(s for s in scan((DATA / "console" / "bug.log").read_text().splitlines()))


def bug_run(crash_in: str | None, tested: str = RESIZE, spec: str = "k") -> RunResult:
    """A run of [boot, OTHER_STEP, tested] with the recorded BUG in step `crash_in` (None:
    a clean run). The crashed step ends as the assembler leaves it: failed, with its splat."""

    def step(sid: str, kind: str) -> StepResult:
        if sid == crash_in:
            return StepResult(sid, kind, "fail", f"kernel bug in {sid}", 3.0, splats=(BUG,))
        return StepResult(sid, kind, "pass", "", 3.0)

    steps = (step("boot", "setup"), step(OTHER_STEP, "fio"), step(tested, "check"))
    return RunResult(KernelInfo(spec), Environment("tcg"), "default", "p", steps, duration_s=9.0)


def test_a_bug_inside_the_checked_step_is_bad_and_elsewhere_not_the_symptom() -> None:
    assert BUG.kind == "bug" and "kernel BUG at" in BUG.excerpt
    for text in ("check:truncate", "check:truncate@loop-dio-on-xfs", f"check:{RESIZE}"):
        judged = judge_run(parse_test(text), bug_run(RESIZE))
        assert judged.outcome == BAD, (text, judged)
        assert judged.reason.startswith("kernel failure in the tested step: kernel bug in")
        assert RESIZE in judged.reason
    assert judge_run(parse_test("check:truncate"), bug_run(None)).outcome == GOOD
    test = parse_test("check:truncate")
    for where in (OTHER_STEP, "boot"):
        judged = judge_run(test, bug_run(where))
        assert judged.outcome == OTHER and judged.reason.startswith("not the symptom: "), where
    other_target = parse_test("check:truncate@loop-dio-off-xfs")  # the same check elsewhere
    assert judge_run(other_target, bug_run(RESIZE)).outcome == OTHER
    assert judge_run(parse_test("check:any"), bug_run("boot")).outcome == OTHER


def test_crash_is_skip_turns_the_rule_off() -> None:
    judged = judge_run(parse_test("check:truncate"), bug_run(RESIZE), crash_is_skip=True)
    assert judged.outcome == OTHER
    assert "in the tested step, but --crash-is-skip" in judged.reason


def test_a_bug_while_the_script_runs_is_bad(tmp_path: Path) -> None:
    script = tmp_path / "probe.sh"
    script.write_text("exit 0\n")
    test = parse_test(f"script:{script}")
    assert judge_run(test, bug_run("script/probe", tested="script/probe")).outcome == BAD
    assert judge_run(test, bug_run("boot", tested="script/probe")).outcome == OTHER
    crashed = bug_run("script/probe", tested="script/probe")
    assert judge_run(test, crashed, crash_is_skip=True).outcome == OTHER


class BugRunner:
    """k0 (BASE) is clean; k1 (CANDIDATE) BUGs in the step `crash_in`."""

    def __init__(self, crash_in: str) -> None:
        self.crash_in = crash_in

    def resolve_kernel(self, spec: str) -> Resolution:
        return Resolution(spec, OK, kernel=Kernel(spec, Path("/boot/x"), "6.12"))

    def run(self, req, kernel):  # type: ignore[no-untyped-def]
        return bug_run(self.crash_in if kernel.spec.endswith("k1") else None, spec=kernel.spec)


def _request(tmp_path: Path, **kw: object) -> BisectRequest:
    return BisectRequest(
        "list", "check:truncate", tmp_path / "out", kernels=("image:/k0", "image:/k1"), **kw
    )  # type: ignore[arg-type]


def test_bisect_names_the_candidate_that_bugs_in_the_tested_step(tmp_path: Path) -> None:
    state, result = bisect.run_bisect(_request(tmp_path), BugRunner(RESIZE))
    assert result.status == "found" and result.first_bad == "image:/k1", result
    bad_end = state.steps[-1]
    assert bad_end.outcome == BAD and "kernel failure in the tested step" in bad_end.reason
    md = (tmp_path / "out" / "bisect.md").read_text()
    assert "kernel failures: one inside the tested step is bad (the symptom)" in md
    # a BUG in another step is still not the symptom: the bad endpoint is skipped
    _, result = bisect.run_bisect(_request(tmp_path / "2"), BugRunner(OTHER_STEP))
    assert result.status == "endpoints-wrong", result


def test_crash_is_skip_from_the_command_line_to_the_report(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    bisect_cli.add_parser(parser.add_subparsers())
    ns = parser.parse_args(
        [
            "bisect",
            "--kernels",
            "image:/k0,image:/k1",
            "--test",
            "check:truncate",
            "--out",
            str(tmp_path / "out"),
            "--crash-is-skip",
        ]
    )
    req = bisect_cli.request_from_args(ns)
    assert req.crash_is_skip and BisectRequest.from_dict(req.to_dict()) == req
    _, result = bisect.run_bisect(req, BugRunner(RESIZE))
    assert result.status == "endpoints-wrong"
    md = (tmp_path / "out" / "bisect.md").read_text()
    assert "one inside the tested step is skipped (--crash-is-skip)" in md


@pytest.mark.parametrize("test", ["splat:warning", "metric:s:m:-10%"])
def test_the_report_says_how_other_tests_treat_a_crash(test: str) -> None:
    req = {
        "test": test,
        "mode": "list",
        "kernels": ["a", "b"],
        "plan": "p",
        "topology": "t",
        "runs": 1,
        "bad_if": 1,
    }
    md = markdown({"request": req, "steps": [], "status": "x", "message": "y"})
    assert "any other kernel failure is skipped" in md
