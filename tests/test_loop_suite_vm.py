"""The loop suite inside a real TCG guest (Debian kernel, NVMe + virtio-scsi), through the
whole pipeline: what host mode cannot show here (the host has no device-mapper and no stack
tracer), and proof that the static-extent-map hazard and the stack budget really fail.
"""

from __future__ import annotations

import json

import pytest

from harness.pipeline import RunRequest, run_one
from harness.suite.targets import TARGETS

pytestmark = pytest.mark.slow

KERNEL = "debian:6.12"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("loop-vm")
    plan = out / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "name": "loop-vm-checks",
                "size_mb": 128,
                # Same targets without the documented expectation: the harness must fail them.
                "targets": {
                    "dm-linear-strict": TARGETS["dm-linear-xfs"].spec,
                    "nested-tight": TARGETS["nested-loop-xfs"].spec,
                },
                "fio": [
                    {
                        "workloads": ["randwrite-4k"],
                        "targets": ["loop-dio-on-xfs"],
                        "fio": {"runtime": 2},
                    }
                ],
                "checks": [
                    {
                        "check": "reflink",
                        "targets": ["dm-linear-xfs", "dm-linear-strict", "loop-dio-on-xfs"],
                    },
                    {"check": "sparse", "targets": ["dm-linear-xfs", "loop-dio-on-xfs"]},
                    {"check": "integrity", "targets": ["dm-linear-xfs"], "params": {"size_mb": 32}},
                    {"check": "truncate", "targets": ["loop-dio-on-xfs"]},
                    {"check": "stack", "targets": ["nested-loop-xfs"], "params": {"runtime_s": 5}},
                    {
                        "check": "stack",
                        "targets": ["nested-tight"],
                        "params": {"runtime_s": 5, "max_stack_bytes": 1024},
                    },
                ],
            }
        )
    )
    return run_one(RunRequest(kernel=KERNEL, out_dir=out / "run", plan=str(plan)))


def steps(result) -> dict:
    return {s.id: s for s in result.steps}


def test_run_completed(run) -> None:
    assert run.stop_reason == "done", run.infra_error
    assert steps(run)["boot"].status == "pass"


def test_static_map_corrupts_reflink_clone_as_documented(run) -> None:
    s = steps(run)
    assert s["check/reflink/dm-linear-xfs"].status == "xfail"
    assert "changed the clone" in s["check/reflink/dm-linear-xfs"].message
    strict = s["check/reflink/dm-linear-strict"]
    assert strict.status == "fail" and "changed the clone" in strict.message
    assert s["check/reflink/loop-dio-on-xfs"].status == "pass"


def test_sparse_and_integrity(run) -> None:
    s = steps(run)
    assert s["check/sparse/loop-dio-on-xfs"].status == "pass"
    assert s["check/sparse/dm-linear-xfs"].status == "xfail"
    assert s["check/integrity/dm-linear-xfs"].status == "pass"
    assert s["check/truncate/loop-dio-on-xfs"].status == "pass"


def test_stack_depth_is_measured_and_budget_enforced(run) -> None:
    s = steps(run)
    stack = s["check/stack/nested-loop-xfs"]
    assert stack.status == "pass" and stack.metrics["stack_max_bytes"] > 1024
    assert stack.details["stack_trace"]
    tight = s["check/stack/nested-tight"]
    assert tight.status == "fail" and "exceeds the 1024-byte budget" in tight.message


def test_mechanism_metrics_recorded(run) -> None:
    fio = steps(run)["fio/loop-dio-on-xfs/randwrite-4k"]
    assert fio.status == "pass"
    assert fio.metrics["ctxsw_per_io"] > 0 and fio.metrics["write_iops"] > 0
    # Debian 6.12 has no IOCB_NOWAIT series: the counter is absent and said to be.
    assert "nr_blocking_writes" not in fio.metrics
    assert fio.details.get("nr_blocking_writes_absent")
