"""Bisect on one peer suite test (`--test suite:blktests:PATH@loop/002`): parsing, judging a
run by that test's step (fail bad, pass good, "not run" skip, a kernel failure in it bad),
the run request carrying only that test, and the command line. Runs are RunResults shaped
as the assembler leaves them; the recorded BUG is tests/data/console/bug.log."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from harness.cli import bisect as bisect_cli
from harness.errors import UserError
from harness.kernel.model import Kernel
from harness.kernel.resolve import OK, Resolution
from harness.klog.splats import scan
from harness.results.model import Environment, KernelInfo, RunResult, StepResult
from harness.run.request import RunRequest
from harness.suite.peer import parse_suite, suite_text
from harness.workflows.bisect import workflow as bisect
from harness.workflows.bisect.criterion import (
    BAD,
    GOOD,
    INFRA,
    OTHER,
    SKIP,
    RunJudgement,
    judge_run,
    parse_test,
    run_suites,
)
from harness.workflows.bisect.report import markdown
from harness.workflows.bisect.state import BisectRequest

DATA = Path(__file__).parents[1] / "data"
BUG = next(s for s in scan((DATA / "console" / "bug.log").read_text().splitlines()))
STEP = "blktests/loop/002"


@pytest.fixture
def blktests(tmp_path: Path) -> Path:
    """A directory standing for a blktests checkout (parsing never reads it)."""
    path = tmp_path / "blktests"
    path.mkdir()
    return path


def suite_run(status: str = "pass", message: str = "", crash_in: str = "") -> RunResult:
    """A run of [boot, blktests/loop/002]; the recorded BUG in step `crash_in` (that step
    then fails, as the assembler leaves it)."""

    def step(sid: str, kind: str, st: str, msg: str) -> StepResult:
        if sid == crash_in:
            return StepResult(sid, kind, "fail", f"kernel bug in {sid}", 3.0, splats=(BUG,))
        return StepResult(sid, kind, st, msg, 3.0)

    steps = (step("boot", "setup", "pass", ""), step(STEP, "suite", status, message))
    return RunResult(KernelInfo("k"), Environment("tcg"), "default", "blktests", steps)


def test_parse_names_the_step_and_keeps_the_suite_text_absolute(
    blktests: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(blktests.parent)
    test = parse_test("suite:blktests:blktests@loop/002:timeout=300")
    assert (test.kind, test.name) == ("suite", STEP)
    assert test.suite == f"blktests:{blktests}@loop/002:timeout=300"
    assert run_suites(test) == (test.suite,)
    assert run_suites(parse_test("check:any")) == ()


@pytest.mark.parametrize(
    ("selection", "why"),
    [("loop", "name one suite test"), ("loop/002,loop/004", "name one suite test")],
)
def test_parse_refuses_a_group_or_a_list(blktests: Path, selection: str, why: str) -> None:
    with pytest.raises(UserError, match=why):
        parse_test(f"suite:blktests:{blktests}@{selection}")


def test_parse_passes_on_what_the_suite_text_gets_wrong(blktests: Path) -> None:
    with pytest.raises(UserError, match=r"^--test 'suite:ltp:.*': --suite"):
        parse_test(f"suite:ltp:{blktests}@loop/002")
    with pytest.raises(UserError, match="unknown option 'fstyp'"):
        parse_test(f"suite:blktests:{blktests}@loop/002:fstyp=xfs")


def test_suite_text_reads_back_as_the_same_spec(tmp_path: Path) -> None:
    for text in (
        f"blktests:{tmp_path}@loop/002",
        f"fstests:{tmp_path}@ext4/032,generic/001:fstype=xfs:timeout=1500:budget=9",
        f"blktests:{tmp_path}@loop:expunge={tmp_path / 'x'}",
    ):
        spec = parse_suite(text)
        assert suite_text(spec) == text
        assert parse_suite(suite_text(spec)) == spec


@pytest.mark.parametrize(
    ("status", "message", "outcome", "reason"),
    [
        ("pass", "", GOOD, f"{STEP} passed"),
        ("fail", "loop/002 failed (output)", BAD, f"{STEP} failed: loop/002 failed (output)"),
        ("xfail", "known failure", BAD, f"{STEP} failed (a known failure by its expunge"),
        ("skip", "not run: kernel does not support", SKIP, f"{STEP} was not run: not run: "),
        ("error", "could not copy the suite", INFRA, f"{STEP}: could not copy the suite"),
    ],
)
def test_the_suite_tests_own_result_decides(
    blktests: Path, status: str, message: str, outcome: str, reason: str
) -> None:
    judged = judge_run(
        parse_test(f"suite:blktests:{blktests}@loop/002"), suite_run(status, message)
    )
    assert (judged.outcome, judged.reason[: len(reason)]) == (outcome, reason)


def test_a_kernel_failure_in_the_suite_test_is_bad_at_boot_not_the_symptom(
    blktests: Path,
) -> None:
    test = parse_test(f"suite:blktests:{blktests}@loop/002")
    judged = judge_run(test, suite_run(crash_in=STEP))
    assert judged.outcome == BAD and judged.reason.startswith("kernel failure in the tested step")
    assert judge_run(test, suite_run(crash_in=STEP), crash_is_skip=True).outcome == OTHER
    assert judge_run(test, suite_run(crash_in="boot")).outcome == OTHER


def test_an_infrastructure_error_is_not_a_pass(blktests: Path) -> None:
    test = parse_test(f"suite:blktests:{blktests}@loop/002")
    verdict = {"class": "infra-error", "summary": "QEMU could not start"}
    infra = dataclasses.replace(suite_run(), verdict=verdict)
    assert judge_run(test, infra) == RunJudgement(INFRA, "QEMU could not start")
    never_ran = dataclasses.replace(infra, steps=infra.steps[:1])
    assert judge_run(test, never_ran).outcome == INFRA


class SuiteRunner:
    """Kernel image:/k1 fails loop/002; every run request is kept."""

    def __init__(self) -> None:
        self.requests: list[RunRequest] = []

    def resolve_kernel(self, spec: str) -> Resolution:
        return Resolution(spec, OK, kernel=Kernel(spec, Path("/boot/x"), "6.12"))

    def run(self, req: RunRequest, kernel: Kernel) -> RunResult:
        self.requests.append(req)
        return suite_run("fail" if kernel.spec.endswith("k1") else "pass", "output differs")


def _cli_request(tmp_path: Path, *extra: str) -> BisectRequest:
    parser = argparse.ArgumentParser()
    bisect_cli.add_parser(parser.add_subparsers())
    argv = ["bisect", "--kernels", "image:/k0,image:/k1", "--out", str(tmp_path / "out")]
    return bisect_cli.request_from_args(parser.parse_args([*argv, *extra]))


def test_bisect_runs_only_that_test_and_names_the_kernel_that_fails_it(
    blktests: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(blktests.parent)
    req = _cli_request(tmp_path, "--test", "suite:blktests:blktests@loop/002")
    assert req.plan == "none" and req.test == f"suite:blktests:{blktests}@loop/002"
    assert BisectRequest.from_dict(req.to_dict()) == req
    runner = SuiteRunner()
    _, result = bisect.run_bisect(req, runner)
    assert result.status == "found" and result.first_bad == "image:/k1", result
    assert {r.suites for r in runner.requests} == {(f"blktests:{blktests}@loop/002",)}
    assert {r.plan for r in runner.requests} == {"none"}
    md = (tmp_path / "out" / "bisect.md").read_text()
    assert "kernel failures: one inside the tested step is bad" in md
    assert f"{STEP} failed: output differs" in md


def test_a_suite_test_on_a_kernel_with_a_series_needs_the_hosts_root(
    blktests: Path, tmp_path: Path
) -> None:
    series = "src:debian:linux-source-6.12+series=/x.mbox"
    test = f"suite:blktests:{blktests}@loop/002"
    with pytest.raises(UserError, match="--guest-root host"):
        _cli_request(tmp_path, "--test", test, "--kernels", f"{series},{series}2")
    req = BisectRequest("list", test, tmp_path, kernels=("a", "b"), guest_root="host")
    assert req.guest_root == "host"


def test_a_skipped_endpoint_says_the_suite_did_not_run_it(blktests: Path, tmp_path: Path) -> None:
    class NotRun(SuiteRunner):
        def run(self, req: RunRequest, kernel: Kernel) -> RunResult:
            return suite_run("skip", "not run: requires systemd 259")

    req = _cli_request(tmp_path, "--test", f"suite:blktests:{blktests}@loop/002")
    _, result = bisect.run_bisect(req, NotRun())
    assert result.status == "endpoints-wrong"
    assert "the suite did not run the test" in result.message
    assert "requires systemd 259" in result.message


def test_the_report_names_the_crash_rule_of_a_suite_test() -> None:
    req = {"test": "suite:blktests:/b@loop/002", "mode": "list", "kernels": ["a", "b"]}
    req |= {"plan": "none", "topology": "t", "runs": 1, "bad_if": 1}
    md = markdown({"request": req, "steps": [], "status": "x", "message": "y"})
    assert "one inside the tested step is bad" in md
