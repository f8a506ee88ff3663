"""Path attribution on the host kernel with real loop devices: workqueue executions of
loop's work function per request."""

from __future__ import annotations

import contextlib
import json
import os

import pytest

from guest import fio, prepare, probes
from guest.api import Context


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and tracefs")
def test_host_loop_rows_count_workqueue_executions(tmp_path, host_left_clean):
    if probes.events_dir() is None or not probes.loop_work_addresses():
        pytest.skip("host kernel without workqueue tracepoints or loop symbols")
    ctx = Context(workdir=str(tmp_path / "work"), mode="host", disks={}, results=str(tmp_path))
    spec = {
        "name": "loop-dio-on-xfs",
        "kind": "loop",
        "fs": "xfs",
        "direct_io": True,
        "size_mb": 32,
    }
    params = {
        "rw": "randread",
        "bs": "4k",
        "ioengine": "libaio",
        "iodepth": 16,
        "direct": 1,
        "runtime": 1,
        "time_based": 1,
    }
    step = {
        "id": "fio/loop/randread",
        "target": spec,
        "timeout_s": 120,
        "workload": {"name": "randread-4k", "fio": params},
    }
    with contextlib.ExitStack() as stack:
        prepared = prepare.target(spec, ctx, stack)
        out = fio.run_workload(step, prepared, ctx, trace_stack=False)
    assert out.status == "pass", out.message
    path = out.details["loop_path"]
    ios = sum(
        j["read"]["total_ios"] for j in json.loads(open(out.details["fio_json"]).read())["jobs"]
    )
    # block_rq_issue on this loop device only: fio's I/Os (plus a udev probe at most)
    assert ios <= path["loop_requests"] <= ios + 64
    # Direct I/O loop requests all go through loop's worker on this kernel: at least one
    # execution per batch the worker drains (the host batches; a TCG guest rarely does).
    assert 0.02 < out.metrics["loop_wq_fraction"] <= 1.5
    # ... and every direct I/O to the backing file comes from that worker (a kworker);
    # with the NOWAIT series most would be issued in fio's own context instead.
    if "loop_dio_worker_fraction" in out.metrics:  # iomap tracepoints (XFS direct I/O)
        assert path["loop_dio"] >= ios
        assert out.metrics["loop_dio_worker_fraction"] > 0.95
    assert not os.listdir(f"{probes.events_dir()}/instances") or all(
        not d.startswith(f"harness-{os.getpid()}")
        for d in os.listdir(f"{probes.events_dir()}/instances")
    )
