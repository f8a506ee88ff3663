"""A run whose first boot hit a known TCG artefact (recorded consoles: int3 from live text
patching, a starved VM's RCU stall) and whose retry passed is a pass, end to end: the
executor's retry, the exit code, JUnit, KCIDB, a merge of shards, bisect; the artefact is
recorded (attempts, the first console, counted in `artefacts`), never hidden."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from kcidb_io.schema import LATEST

from harness.cli.run import exit_code
from harness.klog.splats import scan
from harness.report.junit import junit_xml_text
from harness.report.kcidb import kcidb_document
from harness.report.markdown import markdown
from harness.results.model import Environment, KernelInfo, RunResult, StepResult
from harness.results.store import load_runs
from harness.run.executor import LocalExecutor
from harness.run.merge import ShardRun, merge_shards
from harness.verdict import EMULATOR_ARTEFACT, PASS, classify, judge, with_verdict
from harness.workflows.bisect.criterion import BAD, GOOD, judge_run, parse_test
from tests.conftest import junit_xsd

DATA = Path(__file__).parents[1] / "data"
FIO = "fio/raw-nvme0/randread-4k"
CHECK = "check/sparse/loop-dio-on"
# (recorded console, its artefact's name)
ARTEFACTS = [
    ("tcg-int3", "tcg-int3-text-patching"),
    ("tcg-starved-rcu-stall", "tcg-starved-vm"),
    ("tcg-eflags-debug-trap", "impossible-eflags"),
    ("tcg-eflags-null-deref", "impossible-eflags"),
]


class _Replay(LocalExecutor):
    """The executor's run() (judge, keep the first console, retry, after_retry) over
    recorded attempts instead of boots."""

    def __init__(self, attempts: list[RunResult]) -> None:
        self.attempts = attempts

    def attempt(self, req, kernel):  # type: ignore[override]
        return self.attempts.pop(0)

    plan = prepare = launch = collect = environment = None  # type: ignore[assignment]


def _run(console: Path, splats=(), check="pass", stop="done") -> RunResult:
    why = "" if check == "pass" else "blocks leaked"
    steps = (
        StepResult("boot", "setup", "pass"),
        StepResult(FIO, "fio", "pass", metrics={"read_iops": 1000.0}),
        StepResult(CHECK, "check", check, why),
    )
    return RunResult(
        KernelInfo("debian:6.12", "6.12.57+deb12-amd64"),
        Environment(accel="tcg"),
        "default",
        "p",
        steps,
        tuple(splats),
        console_log=str(console),
        stop_reason=stop,
    )


def _retried(tmp_path: Path, name: str, check: str = "pass") -> RunResult:
    """A first attempt that showed the recorded artefact, then a retry (clean console)."""
    console = tmp_path / "console.log"
    text = (DATA / "console" / f"{name}.log").read_text()
    console.write_text(text)
    first = _run(console, scan(text.split("\n")), stop="panic")
    assert judge(first).cls == EMULATOR_ARTEFACT and judge(first).retry
    return _Replay([first, _run(console, check=check)]).run(None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("name,artefact", ARTEFACTS)
def test_an_artefact_whose_retry_passed_is_a_pass_that_exits_0(tmp_path, name, artefact):
    run = _retried(tmp_path, name)
    verdict = classify(run)
    assert verdict.cls == PASS and verdict.judged and verdict.attempts == 2
    (kept,) = verdict.artefacts
    assert kept["signature"] == artefact and kept["excerpt"]
    assert kept["console_log"] == str(tmp_path / "console.attempt1.log")
    assert (
        (tmp_path / "console.attempt1.log")
        .read_text()
        .startswith((DATA / "console" / f"{name}.log").read_text()[:200])
    )
    assert "the retry passed" in verdict.summary
    assert exit_code([run]) == 0
    # stored and read back (results.json) it is the same pass
    stored = dataclasses.replace(run, verdict=json.loads(json.dumps(run.verdict)))
    assert exit_code([stored]) == 0 and classify(stored).artefacts == verdict.artefacts
    assert "console.attempt1.log" in markdown([run])


@pytest.mark.parametrize("name,artefact", ARTEFACTS)
def test_junit_of_a_retried_pass_has_no_error_and_says_what_was_retried(tmp_path, name, artefact):
    text = junit_xml_text([_retried(tmp_path, name)])
    xmlschema.XMLSchema(str(junit_xsd())).validate(text)
    root = ET.fromstring(text)
    assert root.find(".//error") is None and root.find(".//failure") is None
    assert {s.get("errors") for s in root.iter("testsuite")} == {"0"}
    suite = root.find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["verdict"] == "pass" and props["attempts"] == "2" and props["artefacts"] == "1"
    assert props["artefact.1.console_log"].endswith("console.attempt1.log")
    assert artefact in props["artefact.1.summary"]
    note = suite.find("system-out").text
    assert "console.attempt1.log" in note and artefact in note


def test_kcidb_of_a_retried_pass_is_pass_with_the_artefact_counted(tmp_path):
    data = kcidb_document([_retried(tmp_path, "tcg-int3")])
    LATEST.validate(data)
    (root,) = [t for t in data["tests"] if t["path"] == "harness"]
    assert root["status"] == "PASS"
    assert root["misc"]["attempts"] == 2 and root["misc"]["artefacts"] == 1
    assert {t["status"] for t in data["tests"]} == {"PASS"}


def test_a_merge_of_shards_one_retried_passes_and_keeps_the_artefact(tmp_path):
    retried = _retried(tmp_path, "tcg-int3")
    plain = with_verdict(_run(tmp_path / "other.log"))
    plan = (FIO, CHECK)
    one = dataclasses.replace(retried, steps=retried.steps[:2])
    two = dataclasses.replace(plain, steps=(plain.steps[0], plain.steps[2]))
    (merged,) = merge_shards([ShardRun(1, 2, one, plan, "s1"), ShardRun(2, 2, two, plan, "s2")])
    verdict = classify(merged)
    assert verdict.cls == PASS and len(verdict.artefacts) == 1 and verdict.attempts == 2
    assert exit_code([merged]) == 0
    assert ET.fromstring(junit_xml_text([merged])).find(".//error") is None


def test_bisect_judges_a_retried_run_by_what_the_retry_showed(tmp_path):
    test = parse_test("check:sparse")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert judge_run(test, _retried(tmp_path / "a", "tcg-int3")).outcome == GOOD
    failed = _retried(tmp_path / "b", "tcg-int3", check="fail")
    assert classify(failed).cls == "test-failure" and exit_code([failed]) == 1
    assert judge_run(test, failed).outcome == BAD


def test_results_written_before_read_a_retried_artefact_as_the_pass_it_was():
    """Recorded cost-mode A/B: a run whose lost NVMe I/O was retried and passed was stored
    as an emulator-artefact; read now, it is a pass with the artefact kept. A lost I/O that
    came back on the retry stays an artefact (exit 2: the run could not tell)."""
    runs = load_runs(DATA / "ab" / "cost-10pct-lost-io-results.json")
    passed = [r for r in runs if r.verdict.get("summary", "").endswith("the retry passed")]
    recurring = [r for r in runs if "came back on retry" in r.verdict.get("summary", "")]
    assert passed and recurring
    for run in passed:
        verdict = classify(run)
        assert verdict.cls == PASS and len(verdict.artefacts) == 1 and not verdict.contained
        assert exit_code([run]) == 0
    for run in recurring:
        assert classify(run).cls == EMULATOR_ARTEFACT and exit_code([run]) == 2
        root = ET.fromstring(junit_xml_text([run]))
        error = root.find(".//testcase[@name='emulator-artefact']/error")
        assert "came back on retry" in error.get("message")
