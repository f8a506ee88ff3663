"""Cost mode for real: an interleaved TCG schedule under QEMU instruction counting, with a
busy process loading the host throughout: the A/A side stays clean and a planted loop
slowdown (slowdown.mbox, loop.harness_spin_us) is flagged on the loop rows only.

Every side boots the same lean 6.12 + slowdown.mbox image; only the command line differs.
2 reps x 3 sides = 6 boots (~45 s each under icount here).
"""

import json
import subprocess
import sys

import pytest

from harness.results.compare import compare
from harness.results.metrics import DESCRIPTIVE
from harness.run.engine import executor_for
from harness.workflows.ab import workflow as ab
from harness.workflows.ab.report import measure_of

# Loop over a tmpfs file: no disk wait, whose instruction-time is a timer artefact.
PLAN = {
    "name": "cost-ab",
    "description": "raw NVMe and loop dio on over tmpfs, 4k random read, 1 s",
    "runtime_s": 1,
    "size_mb": 64,
    "targets": {"loop-dio-on-tmpfs": {"kind": "loop", "fs": "tmpfs", "direct_io": True}},
    "fio": [{"workloads": ["randread-4k"], "targets": ["raw-nvme0", "loop-dio-on-tmpfs"]}],
}
LOOP = "fio/loop-dio-on-tmpfs/randread-4k"
RAW = "fio/raw-nvme0/randread-4k"


@pytest.fixture(scope="module")
def schedule(tmp_path_factory, lean_variant):
    kernel = lean_variant("slowdown")
    out = tmp_path_factory.mktemp("cost")
    (out / "plan.json").write_text(json.dumps(PLAN))
    base = ab.Side(ab.BASE, kernel.spec)
    req = ab.AbRequest(
        base,
        ab.Side(ab.CANDIDATE, kernel.spec),
        out,
        plan=str(out / "plan.json"),
        reps=2,
        measure="cost",
    )
    sides = [
        base,
        ab.Side("aa", kernel.spec),
        ab.Side("slow", kernel.spec, append=("loop.harness_spin_us=200",)),
    ]
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        done = ab.run_interleaved(
            ab.schedule(sides, 2),
            lambda slot: ab.run_request(req, slot),
            lambda r: executor_for(kernel).run(r, kernel),
        )
    finally:
        hog.kill()
        hog.wait()
    return {label: ab.runs_of(done, label) for label in ("base", "aa", "slow")}


def test_every_run_is_a_cost_run(schedule):
    runs = [r for rs in schedule.values() for r in rs]
    assert all(not r.infra_error for r in runs), [r.infra_error for r in runs]
    assert {r.environment.measure for r in runs} == {"cost"}


def test_cost_aa_under_host_load_stays_clean(schedule):
    c = compare(schedule["base"], schedule["aa"])
    assert measure_of(c) == "cost"
    assert not c.regressions and not c.improvements, [m.name for m in c.regressions]


def test_cost_planted_loop_slowdown_is_flagged_on_loop_only(schedule):
    c = compare(schedule["base"], schedule["slow"])
    by = {m.name: m for m in c.metrics}
    assert by[f"{LOOP}:read_iops"].verdict == "regression", by[f"{LOOP}:read_iops"]
    assert by[f"{LOOP}:read_iops"].effect.high < 0
    # The raw NVMe row waits on the emulated device: in cost mode its time figures are
    # descriptive (never judged), and nothing of it may be flagged.
    assert by[f"{RAW}:read_iops"].verdict == DESCRIPTIVE, by[f"{RAW}:read_iops"]
    flagged = [m.step_id for m in (*c.regressions, *c.improvements)]
    assert set(flagged) == {LOOP}, flagged
