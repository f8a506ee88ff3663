"""Real A/B runs under TCG: an A/A control and a planted slowdown, interleaved on one day.

One schedule runs three sides per repetition (base, an identical A/A candidate, and a
candidate whose NVMe disk QEMU throttles to 200 IOPS), so both comparisons share the base
runs and the same drift. 3 reps x 3 sides = 9 boots of the lean 6.12 kernel.
"""

import dataclasses
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.results.compare import compare
from harness.workflows.ab import workflow as ab
from harness.workflows.ab.report import render_junit
from tests.conftest import LEAN_BASE

DATA = Path(__file__).parents[1] / "data" / "ab"
KERNEL = LEAN_BASE  # boots in half the time of Debian's 6.12 (no initramfs, no modules)
REPS = 3


@pytest.fixture(scope="module")
def runs(tmp_path_factory, lean_base):
    from harness.run.engine import run_one

    out = tmp_path_factory.mktemp("ab-tcg")
    base = ab.Side(ab.BASE, KERNEL, str(DATA / "nvme.json"))
    same = ab.Side(ab.CANDIDATE, KERNEL, str(DATA / "nvme.json"))
    slow = ab.Side("throttled", KERNEL, str(DATA / "nvme-throttled.json"))
    req = ab.AbRequest(
        base,
        same,
        out,
        plan=str(DATA / "tiny-plan.json"),
        reps=REPS,
        accel="tcg",
        allow_env_diff=("topology",),
    )
    done = ab.run_interleaved(
        ab.schedule([base, same, slow], REPS), lambda slot: ab.run_request(req, slot), run_one
    )
    return req, done


def _save(req, done, candidate_label, out_dir):
    """results.json of base vs one candidate side, relabelled as a plain A/B."""
    cand_side = next(s.side for s, _ in done if s.side.label == candidate_label)
    cand = dataclasses.replace(cand_side, label=ab.CANDIDATE)
    sub = dataclasses.replace(req, candidate=cand, out_dir=out_dir)
    picked = [
        (dataclasses.replace(s, side=cand) if s.side.label == candidate_label else s, r)
        for s, r in done
        if s.side.label in (ab.BASE, candidate_label)
    ]
    return ab.save_results(sub, picked)


def test_all_runs_completed(runs):
    _, done = runs
    assert [r.infra_error for _, r in done] == [""] * len(done)


def test_aa_control_flags_nothing(runs, tmp_path):
    req, done = runs
    c = compare(ab.runs_of(done, ab.BASE), ab.runs_of(done, ab.CANDIDATE))
    assert c.valid
    assert not c.regressions, [(m.name, m.change_pct, m.q_value) for m in c.regressions]
    results = _save(req, done, ab.CANDIDATE, tmp_path / "aa")
    # 3 TCG reps rarely pin raw-nvme0 within 5%: such a row is inconclusive (exit 2)
    assert main(["report", str(results)]) == (2 if c.inconclusive else 0)
    assert (tmp_path / "aa" / "report.html").stat().st_size > 10_000


def test_planted_throttle_is_flagged_in_the_right_direction(runs, tmp_path):
    req, done = runs
    base, slow = ab.runs_of(done, ab.BASE), ab.runs_of(done, "throttled")
    c = compare(base, slow, allow_env_diff=["topology"])
    iops = next(m for m in c.metrics if m.metric == "read_iops")
    assert iops.verdict == "regression" and iops.change_pct < -20
    assert iops.cand.mean < 260  # QEMU holds the disk to 200 IOPS (plus burst)
    assert not c.valid and 'ab.valid" value="false' in render_junit(c)
    results = _save(req, done, "throttled", tmp_path / "planted")
    assert main(["report", str(results)]) == 1
    assert "INVALID" in (tmp_path / "planted" / "report.md").read_text()


def test_ab_command_end_to_end(tmp_path, lean_base):
    """`harness ab` itself, one rep per side (2 boots): every output, exit 0, no verdicts."""
    out = tmp_path / "ab"
    rc = main(
        [
            "ab",
            "--base",
            KERNEL,
            "--candidate",
            KERNEL,
            "--reps",
            "1",
            "--accel",
            "tcg",
            "--plan",
            str(DATA / "tiny-plan.json"),
            "--topology",
            str(DATA / "nvme.json"),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    for name in ("junit.xml", "results.json", "report.md", "report.html", "reproduce.sh"):
        assert (out / name).stat().st_size > 0, name
    assert "not judged: fewer than 2 reps" in (out / "report.md").read_text()
    script = (out / "reproduce.sh").read_text()
    assert "--qemu-opts=-drive" in script and f"--base {LEAN_BASE}" in script
    assert not list(out.glob("runs/*/disks/*"))  # backing images cleaned up
