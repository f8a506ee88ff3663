"""Path attribution on a real Debian 6.12 guest (TCG): loop's direct I/O all goes through
its workqueue on this kernel, raw rows never touch it. One boot, tiny plan."""

import json

import pytest

from harness.results import store
from harness.run.engine import run_one
from harness.run.request import RunRequest

PLAN = {
    "name": "path",
    "description": "raw NVMe and loop dio on/off, 4k random read/write, 1 s",
    "runtime_s": 1,
    "size_mb": 64,
    "fio": [
        {
            "workloads": ["randread-4k", "randwrite-4k"],
            "targets": ["raw-nvme0", "loop-dio-on-xfs", "loop-dio-off-xfs"],
        }
    ],
}


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("path")
    (out / "plan.json").write_text(json.dumps(PLAN))
    result = run_one(RunRequest("debian:6.12", out / "run", plan=str(out / "plan.json")))
    store.save_runs(out / "results.json", [result])
    assert not result.infra_error, result.infra_error
    return {s.id: s for s in result.steps if s.kind == "fio"}


def test_raw_rows_never_touch_loops_workqueue(steps):
    for sid in ("fio/raw-nvme0/randread-4k", "fio/raw-nvme0/randwrite-4k"):
        assert steps[sid].status == "pass", steps[sid].message
        assert steps[sid].metrics["loop_wq_fraction"] == 0.0
        assert "loop_dio_worker_fraction" not in steps[sid].metrics


def test_loop_direct_io_rows_go_through_the_worker(steps):
    for sid in ("fio/loop-dio-on-xfs/randread-4k", "fio/loop-dio-on-xfs/randwrite-4k"):
        step = steps[sid]
        assert step.status == "pass", step.message
        path = step.details["loop_path"]
        # one direct I/O to the backing file per loop request, every one from loop's worker
        assert path["loop_dio"] >= path["loop_requests"] * 0.99
        assert step.metrics["loop_dio_worker_fraction"] > 0.99
        assert 0 < step.metrics["loop_wq_fraction"] <= 1.05


def test_buffered_loop_rows_count_executions_only(steps):
    step = steps["fio/loop-dio-off-xfs/randread-4k"]
    assert step.metrics["loop_wq_fraction"] > 0
    assert "loop_dio_worker_fraction" not in step.metrics
    assert step.details["precondition"]["filled_mb"] == 64
