"""Bisect, slow tier: a kernel that oopses inside the step under test is the bad one.

`harness bisect --kernels BASE,CANDIDATE --test check:STEP` where CANDIDATE (the lean base +
tests/data/series/fault-oops.mbox, loop.harness_oops_after=300) dereferences NULL during
the loop read step: tested on that step, the bisection names the candidate; tested on the
raw read step before it, the oops is not the symptom and the endpoints are wrong. Real
builds (incremental), real TCG boots, one at a time."""

from __future__ import annotations

import json

import pytest

from harness.workflows.bisect import workflow as bisect
from harness.workflows.bisect.state import BisectRequest
from tests.conftest import LEAN_BASE, lean_variant_spec

pytestmark = pytest.mark.slow

RAW_READ = "fio/raw-nvme0/randread-4k"
LOOP_READ = "fio/loop-dio-on-xfs/randread-4k"
FIO = [{"workloads": ["randread-4k"], "targets": ["raw-nvme0", "loop-dio-on-xfs"]}]
PLAN = {"name": "oops-in-step", "runtime_s": 1, "size_mb": 128, "fio": FIO}  # pass/fail only
OOPS = "loop.harness_oops_after=300"  # lands in the loop read step (tests/test_verdict_vm.py)


def _bisect(tmp_path, step: str):  # type: ignore[no-untyped-def]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(PLAN))
    kernels = (LEAN_BASE, lean_variant_spec("fault-oops"))
    req = BisectRequest(
        "list",
        f"check:{step}",
        tmp_path / "out",
        kernels=kernels,
        plan=str(plan),
        accel="tcg",
        append=(OOPS,),
    )
    return bisect.run_bisect(req, progress=print)


def test_an_oops_in_the_tested_step_names_the_candidate(
    lean_variant, tmp_path, host_left_clean
) -> None:
    lean_variant("fault-oops")
    state, result = _bisect(tmp_path, LOOP_READ)
    report = (tmp_path / "out" / "bisect.md").read_text()
    assert result.status == "found", report
    assert result.first_bad == lean_variant_spec("fault-oops")
    bad = next(s for s in state.steps if s.role == "bad-endpoint")
    assert bad.outcome == "bad" and "kernel failure in the tested step" in bad.reason
    assert LOOP_READ in bad.reason
    assert "one inside the tested step is bad" in report


def test_an_oops_in_a_later_step_is_not_the_symptom(lean_variant, tmp_path) -> None:
    lean_variant("fault-oops")
    state, result = _bisect(tmp_path, RAW_READ)
    assert result.status == "endpoints-wrong", result.message
    bad = next(s for s in state.steps if s.role == "bad-endpoint")
    assert bad.outcome == "skip" and "unrelated kernel failure" in bad.reason
