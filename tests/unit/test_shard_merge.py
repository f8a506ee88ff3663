"""harness shard (job matrices) and harness merge (shards back into one verdict).

Fast: the matrix formats, merging recorded-shaped results (boot case, plan order, what is
refused). Slow: the same plan in host mode run whole and as 2 real shards, merged: the same
step names and statuses, one JUnit testcase each."""

import dataclasses
import json
from pathlib import Path

import pytest
from junitparser import JUnitXml

from harness.cli.main import main
from harness.errors import UserError
from harness.results.model import Environment, KernelInfo, RunResult, StepResult
from harness.run.merge import ShardRun, merge_shards
from harness.run.shard import matrix, render

ROOT = Path(__file__).resolve().parents[2]
ENV = Environment(accel="tcg", qemu_version="7.2", cpus=2, memory_mb=2048)
PLAN = ["fio/a/r", "fio/b/r", "check/x/b", "fio/c/r"]


def _run(steps, *, boot="pass", env=ENV, plan="p", infra="", stop="done", release="6.12"):
    cases = [StepResult("boot", "setup", boot, "" if boot == "pass" else "no boot", 30.0)]
    cases += [StepResult(sid, "fio", status, duration_s=2.0) for sid, status in steps]
    kernel = KernelInfo("debian:6.12", release)
    return RunResult(
        kernel,
        env,
        "default",
        plan,
        tuple(cases),
        infra_error=infra,
        stop_reason=stop,
        console_log="/nope/0-k/console.log",
    )


def _shard(i, n, run, source=""):
    return ShardRun(i, n, run, tuple(PLAN), source or f"s{i}")


def test_merge_restores_plan_order_and_keeps_one_boot_case() -> None:
    one = _run([("fio/b/r", "pass"), ("check/x/b", "fail")])
    two = _run([("fio/a/r", "pass"), ("fio/c/r", "skip")], boot="pass")
    (merged,) = merge_shards([_shard(2, 2, two), _shard(1, 2, one)])
    assert [s.id for s in merged.steps] == ["boot", *PLAN]
    assert [s.status for s in merged.steps] == ["pass", "pass", "pass", "fail", "skip"]
    assert set(merged.steps[0].details["shards"]) == {"1/2", "2/2"}
    assert merged.duration_s == one.duration_s + two.duration_s


def test_a_shard_that_did_not_boot_makes_the_merged_boot_an_error_naming_it() -> None:
    one = _run([("fio/b/r", "pass")])
    two = _run([("fio/a/r", "error")], boot="error", infra="VM exited", stop="eof")
    (merged,) = merge_shards([_shard(1, 2, one), _shard(2, 2, two)])
    assert merged.steps[0].status == "error" and "shard 2/2" in merged.steps[0].message
    assert merged.infra_error == "shard 2/2: VM exited" and merged.stop_reason == "eof"


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"plan": "other"}, "different plans"),
        ({"release": "6.13"}, "kernel release differs"),
        ({"env": dataclasses.replace(ENV, accel="kvm")}, "environment accel differs"),
    ],
)
def test_mixing_runs_is_refused_in_one_line(change, needle) -> None:
    one = _run([("fio/b/r", "pass")])
    two = _run([("fio/a/r", "pass")], **change)
    with pytest.raises(UserError, match=needle) as err:
        merge_shards([_shard(1, 2, one), _shard(2, 2, two)])
    assert "\n" not in str(err.value)


def test_a_missing_or_repeated_shard_is_refused() -> None:
    one = _run([("fio/b/r", "pass")])
    with pytest.raises(UserError, match=r"shard\(s\) 2/2 of debian:6.12 / default missing"):
        merge_shards([_shard(1, 2, one)])
    with pytest.raises(UserError, match="given twice"):
        merge_shards([_shard(1, 2, one, "a"), _shard(1, 2, one, "b")])


def test_github_matrix_is_one_line_of_include_entries() -> None:
    jobs = matrix("quick", ["debian:6.12", "debian:7.3"], 2, "default")
    text = render(jobs, "github")
    assert "\n" not in text
    include = json.loads(text)["include"]
    assert [(j["kernel"], j["shard"]) for j in include] == [
        ("debian:6.12", "1/2"),
        ("debian:6.12", "2/2"),
        ("debian:7.3", "1/2"),
        ("debian:7.3", "2/2"),
    ]
    assert include[0]["command"].startswith("harness run --kernel debian:6.12 --plan quick")
    # the quick plan: 10 fio rows and 3 checks (issue #25)
    assert sum(j["steps"] for j in include[:2]) == sum(j["steps"] for j in include[2:]) == 13


def test_gitlab_child_pipeline_has_a_parallel_matrix_and_a_junit_per_job() -> None:
    doc = json.loads(render(matrix("quick", ["debian:6.12"], 3, "default"), "gitlab"))
    job = doc["harness-shard"]
    assert job["parallel"]["matrix"] == [{"KERNEL": "debian:6.12", "SHARD": ["1/3", "2/3", "3/3"]}]
    assert job["artifacts"]["reports"]["junit"] == "out/$CI_JOB_ID/junit.xml"
    assert doc["harness-merge"]["needs"] == ["harness-shard"]


def test_more_shards_than_targets_is_a_usage_error(capsys) -> None:
    assert main(["shard", "--plan", "quick", "--shards", "6"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--shards 5 or fewer" in err


def test_merge_of_a_dir_without_shard_record_is_one_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "results.json").write_text(json.dumps({"version": 1, "runs": []}))
    assert main(["merge", str(tmp_path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "harness run --shard" in err


# --- real: host mode, the whole plan vs two shards merged -------------------------------

HOST_PLAN = {
    "name": "shard-tiny",
    "description": "two targets, 1 s of 4k random reads each",
    "runtime_s": 1,
    "size_mb": 64,
    "fio": [{"workloads": ["randread-4k"], "targets": ["file-xfs", "loop-dio-on-xfs"]}],
}


def _cases(path: Path) -> list[tuple[str, str]]:
    out = []
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            out.append((case.name, case.result[0]._tag if case.result else "passed"))
    return out


def test_merged_verdict_is_judged_again_not_copied_from_the_first_shard() -> None:
    from harness.verdict import INFRA_ERROR, PASS, classify, with_verdict

    good = with_verdict(_run([("fio/b/r", "pass")]))
    lost = with_verdict(_run([("fio/a/r", "error")], boot="error", infra="host x dropped out"))
    assert classify(good).cls == PASS
    (merged,) = merge_shards([_shard(1, 2, good), _shard(2, 2, lost)])
    assert classify(merged).cls == INFRA_ERROR and "dropped out" in classify(merged).summary
