"""A loop.c of ours that breaks what blktests checks, caught by the peer suite: real builds,
real TCG boots, the real blktests checkout.

The variant (tests/data/series/loop-refuse-1k-blocksize.mbox on the lean 6.12 base) refuses
LOOP_SET_BLOCK_SIZE 1024; blktests loop/002 sets 4096, 2048, 1234, 1024 and 512 and diffs
its output. One `harness ab --reps 1` (one boot per side, loop/002 only) gives both runs:
the test passes on the base, fails with the diff on the variant, and the A/B names it as a
new failure."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.report.junit import write_junit
from harness.results.compare import Comparison
from harness.results.model import RunResult
from harness.workflows.ab.report import suite_changes
from harness.workflows.ab.workflow import load_comparison
from tests.conftest import LEAN_BASE, PEER_SUITES, lean_variant_spec, left_clean

pytestmark = pytest.mark.slow

VARIANT = "loop-refuse-1k-blocksize"
TEST = "blktests/loop/002"
SUITE = f"blktests:{PEER_SUITES / 'blktests'}@loop/002"

if not (PEER_SUITES / "blktests" / "check").is_file():
    pytest.skip(f"no blktests at {PEER_SUITES} (set HARNESS_PEER_SUITES)", allow_module_level=True)


@pytest.fixture(scope="module")
def ab_out(lean_variant, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    """(exit code, output directory) of the A/B base vs variant on loop/002."""
    lean_variant(VARIANT)
    out = tmp_path_factory.mktemp("peer-variant") / "ab"
    argv = ["ab", "--base", LEAN_BASE, "--candidate", lean_variant_spec(VARIANT)]
    argv += ["--plan", "none", "--suite", SUITE, "--reps", "1", "--accel", "tcg"]
    # a +series= kernel defaults to the minimal guest root, which hides the suite's tools
    argv += ["--guest-root", "host", "--out", str(out)]
    with left_clean(tmp_path_factory):
        rc = main(argv)
    return rc, out


@pytest.fixture(scope="module")
def comparison(ab_out: tuple[int, Path]) -> Comparison:
    return load_comparison([ab_out[1] / "results.json"])[1]


def _testcase(run: RunResult, tmp_path: Path) -> ET.Element:
    junit = tmp_path / "junit.xml"
    write_junit(junit, [run])
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert TEST in cases, sorted(cases)
    return cases[TEST]


def test_loop_002_passes_on_the_base(comparison: Comparison, tmp_path: Path) -> None:
    (run,) = comparison.base_runs
    case = _testcase(run, tmp_path)
    assert case.find("failure") is None and case.find("skipped") is None, ET.tostring(case)
    assert case.find("error") is None


def test_loop_002_fails_with_its_diff_on_the_variant(
    comparison: Comparison, tmp_path: Path
) -> None:
    (run,) = comparison.cand_runs
    failure = _testcase(run, tmp_path).find("failure")
    assert failure is not None
    text = failure.text or ""
    assert "loop/002 failed (output)" in text
    # the golden lines for 1024 are missing; the refusal and the old 2048 are printed
    assert "-1024\n+LOOP_SET_BLOCK_SIZE: Invalid argument\n+2048\n" in text, text
    assert run.verdict.get("class") == "test-failure", run.verdict


def test_ab_names_it_a_new_failure(ab_out: tuple[int, Path], comparison: Comparison) -> None:
    rc, out = ab_out
    assert rc == 1
    assert suite_changes(comparison) == ([TEST], [])
    report = (out / "report.md").read_text()
    assert f"- new failure: {TEST}" in report, report
