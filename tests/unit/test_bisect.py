"""Bisect, fast tier: --test parsing and judging, k/N, retries and skips, list order, git
bisect in its own worktree (a real git history, made here), state round-trip and resume,
reports, and `run --bisect-exit`'s answers. Runs come from a recorded-shape RunResult
factory; the slow tier (test_bisect_slow.py) boots real kernels."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import xmlschema

from harness.cli.bisect import answer_git_bisect, parse_bad_if
from harness.errors import BuildError, InfraError, SeriesConflict, UserError
from harness.kernel.model import Kernel
from harness.kernel.resolve import BUILD_FAILED, OK, Resolution
from harness.results.model import Environment, KernelInfo, RunResult, Splat, StepResult
from harness.workflows.bisect import workflow as bisect
from harness.workflows.bisect.criterion import (
    BAD,
    GOOD,
    INFRA,
    OTHER,
    SKIP,
    judge_metric,
    judge_run,
    parse_test,
)
from harness.workflows.bisect.git import options_of, parse_bisect_output
from harness.workflows.bisect.kernels import ListSpace, parse_kernel_list
from harness.workflows.bisect.state import BisectRequest, load_state
from tests.conftest import junit_xsd

CHECK = "check/sparse/loop-dio-on-xfs"
OTHER_STEP = "fio/loop-dio-on-xfs/randwrite-4k"


def make_run(
    status="pass", *, splat=None, infra="", step=CHECK, metrics=None, spec="k", splat_in=None
):
    """A run of boot and `step`; the splat lands in `step`, or in a step `splat_in` before it
    (a kernel failure in the tested step is the symptom, one elsewhere is not)."""
    splats = (Splat(splat, f"{splat} title", 10, "excerpt"),) if splat else ()
    before = (StepResult(splat_in, "fio", "fail", "msg", 5.0, splats=splats),) if splat_in else ()
    steps = (
        StepResult("boot", "setup", "pass", duration_s=30.0),
        *before,
        StepResult(
            step,
            "check",
            status,
            "msg",
            5.0,
            metrics=metrics or {},
            splats=() if splat_in else splats,
        ),
    )
    return RunResult(
        KernelInfo(spec),
        Environment("tcg"),
        "default",
        "p",
        steps,
        infra_error=infra,
        duration_s=40.0,
    )


# --- --test parsing -----------------------------------------------------------------------


def test_parse_test_forms(tmp_path: Path) -> None:
    t = parse_test("check:sparse@loop-dio-on-xfs")
    assert (t.kind, t.name, t.target) == ("check", "sparse", "loop-dio-on-xfs")
    assert t.matches(CHECK) and not t.matches("check/sparse/loop-dio-off-xfs")
    assert parse_test("check:sparse").matches("check/sparse/loop-dio-off-xfs")
    assert parse_test("check:fio/raw/randread-4k").matches("fio/raw/randread-4k")
    assert parse_test("check:any").matches("fio/x/y") and not parse_test("check:any").matches(
        "boot"
    )
    m = parse_test("metric:fio/loop-dio-on-xfs/randwrite-4k:write_iops:-10%")
    assert (m.step, m.metric, m.threshold_pct) == (
        "fio/loop-dio-on-xfs/randwrite-4k",
        "write_iops",
        -10,
    )
    assert parse_test("metric:s:m:+2.5%").threshold_pct == 2.5
    script = tmp_path / "t.sh"
    script.write_text("exit 0\n")
    assert parse_test(f"script:{script}").script == script


BAD_TESTS = [
    "",
    "check:",
    "nope:x",
    "metric:a:b",
    "metric:a:b:10",
    "metric:a:b:-0%",
    "script:/no/such/file",
    "check:@t",
]


@pytest.mark.parametrize("text", BAD_TESTS)
def test_parse_test_rejects_with_the_forms(text: str) -> None:
    with pytest.raises(UserError):
        parse_test(text)


# --- judging one run ----------------------------------------------------------------------


def test_check_judgement() -> None:
    t = parse_test("check:sparse@loop-dio-on-xfs")
    assert judge_run(t, make_run("pass")).outcome == GOOD
    assert judge_run(t, make_run("fail")).outcome == BAD
    assert judge_run(t, make_run("error", infra="QEMU died")).outcome == INFRA
    # a failing check outranks a later infrastructure stop, like harness.verdict
    assert judge_run(t, make_run("fail", infra="step-timeout later")).outcome == BAD
    # an oops in another step is a kernel failure, but not this symptom: it must not steer
    # the bisection (one in the tested step is: tests/test_bisect_crash_in_step.py)
    assert judge_run(t, make_run("pass", splat="oops", splat_in=OTHER_STEP)).outcome == OTHER
    with pytest.raises(UserError, match="no step"):
        judge_run(t, make_run("pass", step="fio/raw/randread-4k"))


def test_splat_judgement() -> None:
    warn = parse_test("splat:warning")
    assert judge_run(warn, make_run("fail", splat="warning")).outcome == BAD
    assert judge_run(warn, make_run("fail", splat="oops")).outcome == OTHER
    assert judge_run(warn, make_run("fail")).outcome == GOOD  # a test failure: not a splat
    assert judge_run(warn, make_run("pass", infra="QEMU died")).outcome == INFRA
    assert judge_run(parse_test("splat:any"), make_run("fail", splat="oops")).outcome == BAD


def test_script_judgement(tmp_path: Path) -> None:
    script = tmp_path / "probe.sh"
    script.write_text("exit 1\n")
    t = parse_test(f"script:{script}")
    assert judge_run(t, make_run("fail", step="script/probe")).outcome == BAD
    assert judge_run(t, make_run("pass", step="script/probe")).outcome == GOOD
    assert judge_run(t, make_run("skip", step="script/probe")).outcome == SKIP
    assert judge_run(t, make_run("error", step="script/probe")).outcome == INFRA


def test_metric_judgement() -> None:
    t = parse_test("metric:s:write_iops:-10%")
    run = make_run(step="s", metrics={"write_iops": 100.0})
    assert judge_run(t, run).value == 100.0
    assert judge_metric(t, [100, 102, 98], [70, 72, 69]).outcome == BAD
    assert judge_metric(t, [100, 102, 98], [99, 101, 97]).outcome == GOOD
    assert judge_metric(t, [100, 102, 98], [130, 131, 129]).outcome == GOOD  # wrong direction
    assert judge_metric(t, [100, 60, 140], [85, 120, 70]).outcome == GOOD  # not significant


# --- the driver over a list, with a scripted runner ------------------------------------------


class ScriptedRunner:
    """Kernels k0..kN: runs of kernel i come from outcomes[i] (a list, popped per run)."""

    def __init__(self, outcomes: dict[str, list[str]], unbuildable=()):
        self.outcomes, self.unbuildable, self.calls = outcomes, set(unbuildable), []

    def resolve_kernel(self, spec: str) -> Resolution:
        if spec in self.unbuildable:
            return Resolution(spec, BUILD_FAILED, message="make failed", log_path="/x/build.log")
        return Resolution(spec, OK, kernel=Kernel(spec, Path("/boot/x"), "6.12"))

    def run(self, req, kernel):
        self.calls.append(kernel.spec)
        what = self.outcomes[kernel.spec].pop(0)
        if what == "raise":
            raise InfraError("qemu-system-x86_64 could not start")
        status = {"bad": "fail", "good": "pass", "infra": "error", "oops": "fail"}[what]
        return make_run(
            status,
            infra="QEMU died" if what == "infra" else "",
            splat="oops" if what == "oops" else None,
            spec=kernel.spec,
            splat_in=OTHER_STEP if what == "oops" else None,
        )


def list_request(tmp_path: Path, n: int, **kw) -> BisectRequest:
    kernels = tuple(f"image:/k{i}" for i in range(n))
    return BisectRequest(
        "list", "check:sparse@loop-dio-on-xfs", tmp_path / "out", kernels=kernels, **kw
    )


def outcomes(n: int, first_bad: int, runs: int = 1) -> dict[str, list[str]]:
    return {f"image:/k{i}": ["bad" if i >= first_bad else "good"] * runs for i in range(n)}


def test_list_bisection_finds_the_first_bad_in_log_steps(tmp_path: Path) -> None:
    runner = ScriptedRunner(outcomes(9, 6))
    state, result = bisect.run_bisect(list_request(tmp_path, 9), runner)
    assert (result.status, result.first_bad) == ("found", "image:/k6")
    assert runner.calls[:2] == ["image:/k0", "image:/k8"]  # endpoints first
    assert runner.calls[2:] == ["image:/k4", "image:/k6", "image:/k5"]
    doc = json.loads((tmp_path / "out/bisect.json").read_text())
    assert doc["first_bad"] == "image:/k6" and len(doc["steps"]) == 5
    xmlschema.XMLSchema(str(junit_xsd())).validate((tmp_path / "out/junit.xml").read_text())
    assert "first bad" in (tmp_path / "out/bisect.md").read_text()


def test_list_space_steps_around_skips() -> None:
    space = ListSpace(tuple("abcde"))
    assert space.next() == "c"
    space.mark("c", SKIP)
    assert space.next() == "b"
    space.mark("b", GOOD)
    assert space.next() == "d"
    space.mark("d", SKIP)
    assert space.next() is None and space.result().candidates == ("c", "d", "e")


def test_unbuildable_and_infrastructure_steps_are_skips_not_verdicts(tmp_path: Path) -> None:
    table = outcomes(5, 3)
    table["image:/k2"] = ["infra", "raise"]  # QEMU died, then would not start: skip
    runner = ScriptedRunner(table, unbuildable={"image:/k3"})
    state, result = bisect.run_bisect(list_request(tmp_path, 5), runner)
    by_item = {s.item: s for s in state.steps}
    assert by_item["image:/k2"].outcome == SKIP and len(by_item["image:/k2"].runs) == 2
    assert by_item["image:/k3"].outcome == SKIP and by_item["image:/k3"].build_log
    assert result.status == "inconclusive" and result.candidates == (
        "image:/k2",
        "image:/k3",
        "image:/k4",
    )


def test_retry_after_infrastructure_gives_the_verdict_of_the_retry(tmp_path: Path) -> None:
    table = outcomes(3, 1)
    table["image:/k1"] = ["infra", "bad"]
    state, result = bisect.run_bisect(list_request(tmp_path, 3), ScriptedRunner(table))
    step = state.tested()[0]
    assert step.outcome == BAD and [r.outcome for r in step.runs] == [INFRA, BAD]
    assert result.first_bad == "image:/k1"


def test_unrelated_oops_is_recorded_and_skipped(tmp_path: Path) -> None:
    table = outcomes(9, 6)
    table["image:/k4"] = ["oops"]
    state, result = bisect.run_bisect(list_request(tmp_path, 9), ScriptedRunner(table))
    assert state.steps[2].outcome == SKIP and "unrelated kernel failure" in state.steps[2].reason
    assert result.status == "found" and result.first_bad == "image:/k6"


def test_k_of_n_flaky_symptom(tmp_path: Path) -> None:
    table = {
        "image:/k0": ["good"] * 3,
        "image:/k1": ["good", "bad", "good"],
        "image:/k2": ["bad", "good", "bad"],
    }
    req = list_request(tmp_path, 3, runs=3, bad_if=2)
    state, result = bisect.run_bisect(req, ScriptedRunner(table))
    assert state.steps[1].outcome == BAD and state.steps[1].bad_runs == 2
    mid = state.tested()[0]
    assert mid.outcome == GOOD and (mid.bad_runs, mid.judged_runs) == (1, 3)
    assert result.first_bad == "image:/k2"


def test_k_of_n_stops_early_once_decided(tmp_path: Path) -> None:
    table = {"image:/k0": ["good"] * 3, "image:/k1": ["bad"] * 3}
    runner = ScriptedRunner(table)
    state, _ = bisect.run_bisect(list_request(tmp_path, 2, runs=3, bad_if=1), runner)
    assert runner.calls.count("image:/k1") == 1  # 1 of 3 already decides "bad"
    assert runner.calls.count("image:/k0") == 3  # "good" needs all 3 clean


def test_wrong_endpoints_stop_before_searching(tmp_path: Path) -> None:
    runner = ScriptedRunner(outcomes(5, 0))
    state, result = bisect.run_bisect(list_request(tmp_path, 5), runner)
    assert result.status == "endpoints-wrong" and runner.calls == ["image:/k0"]
    assert "good endpoint" in result.message


def test_resume_continues_without_retesting(tmp_path: Path) -> None:
    req = list_request(tmp_path, 9)
    first = ScriptedRunner(outcomes(9, 6))
    _, result = bisect.run_bisect(req, first, max_steps=3)
    assert result.status == "interrupted" and len(first.calls) == 3
    state = load_state(req.out_dir)
    assert state.request == req and len(state.steps) == 3
    second = ScriptedRunner(outcomes(9, 6))
    _, result = bisect.run_bisect(state.request, second, state=state)
    assert result.first_bad == "image:/k6"
    assert second.calls == ["image:/k6", "image:/k5"]  # k0, k8, k4 not run again


def test_state_round_trip(tmp_path: Path) -> None:
    req = list_request(tmp_path, 3, runs=2, append=("quiet",))
    assert BisectRequest.from_dict(json.loads(json.dumps(req.to_dict()))) == req
    bisect.run_bisect(req, ScriptedRunner(outcomes(3, 2, runs=2)))
    state = load_state(req.out_dir)
    again = type(state).from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state and state.result["first_bad"] == "image:/k2"


def test_request_and_list_validation(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        list_request(tmp_path, 3, runs=2, bad_if=3)
    with pytest.raises(UserError):
        parse_kernel_list("debian:6.12")
    with pytest.raises(UserError, match="twice"):
        parse_kernel_list("a,b,a")
    listing = tmp_path / "kernels.txt"
    listing.write_text("# oldest first\ndebian:6.12\ndebian:6.16  # lts\ndebian:7.3\n")
    assert parse_kernel_list(str(listing)) == ("debian:6.12", "debian:6.16", "debian:7.3")
    assert parse_bad_if("2/3", None) == (2, 3)
    with pytest.raises(UserError):
        parse_bad_if("2/3", 5)


# --- git ------------------------------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    env = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    return subprocess.run(
        ["git", "-C", str(repo), *env, *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, list[str]]:
    """c0..c7: c5 breaks (state=bad), c3 does not build (state=nobuild)."""
    repo = tmp_path / "linux"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    commits = []
    for i in range(8):
        state = "nobuild" if i == 3 else ("bad" if i >= 5 else "good")
        (repo / "state").write_text(state + "\n")
        (repo / "n").write_text(f"{i}\n")
        git(repo, "add", "state", "n")
        git(repo, "commit", "-qm", f"c{i}")
        commits.append(git(repo, "rev-parse", "HEAD"))
    return repo, commits


class GitRunner(ScriptedRunner):
    """Builds by reading `state` at the step's commit: real git, a scripted kernel."""

    def __init__(self, repo: Path):
        super().__init__({})
        self.repo = repo

    def resolve_kernel(self, spec: str) -> Resolution:
        commit = spec.split("@")[1][:40]
        state = git(self.repo, "show", f"{commit}:state")
        self.outcomes.setdefault(spec, [state] * 3)
        if state == "nobuild":
            return Resolution(spec, BUILD_FAILED, message="loop.c: error", log_path="/b.log")
        return super().resolve_kernel(spec)


def test_git_bisect_names_the_breaking_commit_in_its_own_worktree(history, tmp_path) -> None:
    repo, commits = history
    head_before = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    req = BisectRequest(
        "git",
        "check:sparse",
        tmp_path / "out",
        good=f"git:{repo}@{commits[0]}",
        bad=f"git:{repo}@main",
    )
    state, result = bisect.run_bisect(req, GitRunner(repo))
    assert result.status == "found" and result.first_bad == commits[5], result.message
    assert "c5" in result.first_bad_label
    assert all(s.kernel.startswith(f"git:{repo.resolve()}@") for s in state.steps)
    # the user's checkout is untouched, git's bisection ended, the worktree is gone
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == head_before
    assert git(repo, "status", "--porcelain") == ""
    assert "git-bisect" not in git(repo, "worktree", "list")
    assert not list(repo.glob(".git/BISECT_*"))


def test_git_bisect_skips_the_commit_that_does_not_build(history, tmp_path) -> None:
    repo, commits = history
    req = BisectRequest(
        "git",
        "check:any",
        tmp_path / "out",
        good=f"git:{repo}@{commits[1]}",
        bad=f"git:{repo}@{commits[6]}",
    )
    state, result = bisect.run_bisect(req, GitRunner(repo))
    skipped = [s for s in state.tested() if s.outcome == SKIP]
    assert [s.item for s in skipped] == [commits[3]] and skipped[0].resolution == BUILD_FAILED
    assert result.first_bad == commits[5]


def test_git_endpoints_must_share_repo_and_options(history, tmp_path) -> None:
    repo, commits = history
    req = BisectRequest(
        "git",
        "check:any",
        tmp_path / "out",
        good=f"git:{repo}@{commits[0]}",
        bad=f"git:{repo}@main+config=debug",
    )
    with pytest.raises(UserError, match="options"):
        bisect.run_bisect(req, GitRunner(repo))


def test_git_output_parsing_and_options() -> None:
    sha = "a" * 40
    assert parse_bisect_output(f"{sha} is the first bad commit\ncommit {sha}") == (sha, None)
    skipped = (
        "There are only 'skip'ped commits left to test.\n"
        f"The first bad commit could be any of:\n{sha}\n{'b' * 40}\nWe cannot bisect more!\n"
    )
    assert parse_bisect_output(skipped) == (None, (sha, "b" * 40))
    assert parse_bisect_output("Bisecting: 3 revisions left") == (None, None)
    assert (
        options_of("src:debian:linux-source-6.12+series=/a.mbox+config=debug")
        == "+series=/a.mbox+config=debug"
    )


# --- run --bisect-exit ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "code"),
    [
        (lambda: 0, 0),
        (lambda: 1, 1),
        (lambda: 2, 125),
    ],
)
def test_git_bisect_answers(outcome, code) -> None:
    assert answer_git_bisect(outcome) == code


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BuildError("make failed", "/log"), 125),
        (SeriesConflict("patch 2 does not apply"), 125),
        (InfraError("no space left"), 125),
        (UserError("unknown plan"), 128),
    ],
)
def test_git_bisect_answers_errors(error, code) -> None:
    def fail() -> int:
        raise error

    assert answer_git_bisect(fail) == code


# --- the guest side of script: tests, run here as a plain process -----------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("exit 0", "pass"),
        ("exit 1", "fail"),
        ("exit 125", "skip"),
        ("kill -9 $$", "error"),
    ],
)
def test_guest_runner_speaks_the_agent_contract(tmp_path: Path, body: str, status: str) -> None:
    from harness.klog.markers import parse_marker
    from harness.workflows.bisect.script import GUEST_RUNNER

    script = tmp_path / "t.sh"
    script.write_text(f"echo probing\n{body}\n")
    argv = [
        "python3",
        str(GUEST_RUNNER),
        "--script",
        str(script),
        "--results",
        str(tmp_path),
        "--id",
        "script/t",
        "--timeout",
        "30",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    events = [parse_marker(line) for line in out.splitlines()]
    assert [e["event"] for e in events if e] == ["start", "begin", "end", "done"]
    record = json.loads((tmp_path / "steps.jsonl").read_text())
    assert (record["id"], record["status"]) == ("script/t", status)
    assert "probing" in record["details"]["output"]


def test_cli_refuses_bad_combinations(tmp_path: Path) -> None:
    from harness.cli.main import main

    assert main(["bisect", "--good", "git:/x@a", "--out", str(tmp_path)]) == 2
    assert main(["bisect", "--kernels", "a,b", "--good", "x", "--test", "splat:any"]) == 2
    assert main(["bisect", "--kernels", "a,b", "--test", "metric:s:m:-5%", "--runs", "1"]) == 2
    assert main(["bisect", "--resume", str(tmp_path)]) == 2  # no state file there
