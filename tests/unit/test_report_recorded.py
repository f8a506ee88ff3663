"""Reports regenerated from real recorded TCG A/B results (tests/data/ab/, Debian 6.12).

tcg-aa-results.json: the same kernel and topology on both sides, 3 reps each.
tcg-throttled-results.json: the same base runs against a candidate whose NVMe disk QEMU
throttled to 200 IOPS (topology difference allowed, so the comparison is invalid).
{cost,wall}-loop-slowdown-results.json / {cost,wall}-aa-results.json: benchmarks/bench_ab.py
runs (lean 6.12 + slowdown.mbox on every side, 3 reps): a planted loop-only slowdown and
the A/A side of the same interleaved schedule.
cost-10pct-lost-io-results.json: a bench_ab.py cost-mode planted 10% whose candidate lost
NVMe I/O in one run.
"""

import json
import shutil
from pathlib import Path

import pytest
import xmlschema

from harness.cli.main import main
from harness.results.compare import compare
from harness.results.model import RunResult
from harness.verdict import with_verdict
from harness.workflows.ab import workflow as ab
from harness.workflows.ab.report import measure_of
from tests.conftest import junit_xsd

DATA = Path(__file__).parents[1] / "data" / "ab"


def test_recorded_aa_flags_nothing_and_says_what_it_could_not_tell():
    """3 TCG reps: nothing moved significantly, but raw-nvme0's intervals span -82..+591%:
    not "unchanged" (issue #24 item 16) - inconclusive, with the reps that would resolve it."""
    req, c = ab.load_comparison([DATA / "tcg-aa-results.json"])
    assert req is not None and req.reps == 3
    assert c.valid and c.verdict == "inconclusive" and not c.regressions and not c.improvements
    assert {m.verdict for m in c.metrics} == {"inconclusive"}
    assert sorted(m.metric for m in c.inconclusive) == ["read_clat_p99_us", "read_iops"]
    assert all(m.reps_to_resolve and m.reps_to_resolve > 100 for m in c.inconclusive)
    assert all(m.base.n == m.cand.n == 3 for m in c.metrics)


def test_recorded_throttle_is_a_regression_and_invalid():
    _, c = ab.load_comparison([DATA / "tcg-throttled-results.json"])
    assert not c.valid and c.verdict == "regression"
    iops = next(m for m in c.metrics if m.metric == "read_iops")
    assert iops.change_pct < -90 and iops.verdict == "regression"
    lat = next(m for m in c.metrics if m.metric == "read_clat_p50_us")
    assert lat.change_pct > 100 and lat.verdict == "regression"


def test_report_command_regenerates_everything(tmp_path):
    # the A/A is inconclusive (exit 2: could not tell); the throttle a regression (1)
    for name, expected_rc in (("tcg-aa-results.json", 2), ("tcg-throttled-results.json", 1)):
        out = tmp_path / name.removesuffix(".json")
        assert main(["report", str(DATA / name), "--out", str(out)]) == expected_rc
        for produced in ("junit.xml", "report.md", "report.html", "reproduce.sh", "results.json"):
            assert (out / produced).stat().st_size > 0, produced
        xmlschema.XMLSchema(str(junit_xsd())).validate(str(out / "junit.xml"))
        assert "--base debian:6.12.117+deb12" in (out / "reproduce.sh").read_text()


def test_report_in_place_keeps_the_results_file(tmp_path):
    copy = tmp_path / "results.json"
    shutil.copy(DATA / "tcg-aa-results.json", copy)
    before = copy.read_bytes()
    assert main(["report", str(copy)]) == 2  # inconclusive: see the A/A test above
    assert copy.read_bytes() == before and (tmp_path / "report.html").exists()


def _iops_rows(c, kind):
    return [
        m
        for m in c.metrics
        if m.family == "primary" and m.metric.endswith("_iops") and f"/{kind}-" in m.step_id
    ]


@pytest.mark.parametrize("measure", ["cost", "wall"])
def test_recorded_loop_slowdown_is_flagged_on_every_loop_row_only(measure):
    # bench_ab.py (cost mode with a busy process on the host; wall mode with the heavy lock
    # held): the lean 6.12 build plus slowdown.mbox on every side, the candidate booted
    # with loop.harness_spin_us=N (cost: 12 us, -40%; wall: 19 us, -49% IOPS).
    req, c = ab.load_comparison([DATA / f"{measure}-loop-slowdown-results.json"])
    assert req.measure == measure and measure_of(c) == measure and c.valid
    loop, raw = _iops_rows(c, "loop"), _iops_rows(c, "raw")
    assert len(loop) == 4 and len(raw) == 2
    for m in loop:
        assert m.verdict == "regression", (m.name, m.effect, m.q_value)
        assert m.effect.test == "paired-t" and m.effect.high < 0  # the interval excludes 0
    flagged = ("regression", "improvement")
    moved = [m.name for m in c.metrics if "/raw-" in m.step_id and m.verdict in flagged]
    assert moved == []


@pytest.mark.parametrize("measure", ["cost", "wall"])
def test_recorded_aa_from_the_same_schedule_stays_clean(measure):
    """Nothing flagged; the rows whose interval is tight are unchanged (cost mode's loop
    rows), the rest inconclusive (raw-nvme0 in both modes), never called unchanged."""
    _, c = ab.load_comparison([DATA / f"{measure}-aa-results.json"])
    assert measure_of(c) == measure and c.verdict == "inconclusive"
    assert not c.regressions and not c.improvements
    for m in c.metrics:
        if m.verdict == "unchanged":
            assert -m.min_change_pct <= m.effect.low and m.effect.high <= m.min_change_pct
        elif m.verdict == "inconclusive":
            assert m.effect.low < -m.min_change_pct or m.effect.high > m.min_change_pct
    if measure == "cost":
        loop = [m for m in c.metrics if m.family == "primary" and "/loop-" in m.step_id]
        assert len(loop) == 12 and {m.verdict for m in loop} == {"unchanged"}


def test_recorded_cost_ab_keeps_the_clean_steps_of_a_run_that_lost_nvme_io():
    """tests/data/ab/cost-10pct-lost-io-results.json: a real cost-mode A/B (bench_ab.py, lean
    6.12 + slowdown.mbox, 3 reps; the candidate spins 1467 loops on one loop request in 8:
    planted 10%). Candidate rep 1 lost NVMe I/O on both attempts, in its raw NVMe randread
    step only. Judged as a whole run it was dropped, and every loop row fell to 2 pairs: one
    randwrite row missed (q 0.12). Its other clean steps count: all 4 loop IOPS rows are
    flagged on 3 pairs, the raw row it hit has 2, and the run is still listed."""
    data = json.loads((DATA / "cost-10pct-lost-io-results.json").read_text())
    runs = [RunResult.from_dict(r) for r in data["runs"]]
    # recorded before verdicts said `contained`: judge its final attempt again
    runs = [
        with_verdict(r) if r.verdict["class"] == "emulator-artefact" and not r.passed else r
        for r in runs
    ]
    assert [r.verdict.get("contained", False) for r in runs] == [False] * 4 + [True, False]
    c = compare(runs[:3], runs[3:])
    iops = {m.step_id: m for m in c.metrics if m.metric.endswith("_iops")}
    loop = [m for s, m in iops.items() if "/loop-" in s]
    assert len(loop) == 4 and all(m.verdict == "regression" and m.effect.n == 3 for m in loop)
    assert iops["fio/raw-nvme0/randread-4k"].effect.n == 2  # the step the artefact hit
    assert all(m.verdict == "descriptive" for s, m in iops.items() if "/raw-" in s)
    (listed,) = c.infra_errors
    assert "candidate rep 1" in listed and "its other clean steps count" in listed
