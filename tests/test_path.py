"""Which path each loop I/O took: workqueue executions of loop's work function per request.

Unit tests parse real tracefs/kallsyms text recorded on this host (tests/data/path/); the
slow test counts on real loop devices in host mode (tracefs on the host kernel).
"""

import contextlib
import json
import os
import sys

import pytest

from harness.paths import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))  # guest/ is not an installed package

from guest import fio, metrics, probes, targets  # noqa: E402
from guest.api import Context  # noqa: E402

DATA = PROJECT_ROOT / "tests" / "data" / "path"


def test_loop_work_functions_from_real_kallsyms():
    text = (DATA / "kallsyms.txt").read_text()
    assert metrics.kallsyms_addresses(text) == [0xFFFFFFFF81D73A00, 0xFFFFFFFF81D73A30]
    # loop as a module (Debian): a fourth column; hidden addresses (kptr_restrict) are 0
    module = "ffffffffc0a41230 t loop_workfn\t[loop]\n0000000000000000 t loop_rootcg_workfn\t[loop]"
    assert metrics.kallsyms_addresses(module) == [0xFFFFFFFFC0A41230]
    assert metrics.kallsyms_addresses("ffffffff81000000 T _stext") == []


def test_filter_and_device_encoding():
    assert metrics.function_filter([0x10, 0xFF]) == "function == 0x10 || function == 0xff"
    assert metrics.kernel_dev(7, 3) == (7 << 20) | 3


def test_event_count_from_real_per_cpu_stats():
    texts = [(DATA / f"stats-cpu{i}.txt").read_text() for i in (0, 1)]
    expected = sum(
        int(line.split(":")[1])
        for t in texts
        for line in t.splitlines()
        if line.split(":")[0] in ("entries", "overrun")
    )
    assert metrics.trace_event_count(texts) == expected > 0
    assert metrics.trace_event_count(["entries: 10\noverrun: 5\ncommit overrun: 7"]) == 15


def test_fraction_prefers_counted_requests_over_fio_ios():
    counts = {"loop_wq_executions": 900, "loop_requests": 1000}
    assert metrics.loop_path_metrics(counts, 5000) == {"loop_wq_fraction": 0.9}
    assert metrics.loop_path_metrics({**counts, "loop_requests": None}, 1800) == {
        "loop_wq_fraction": 0.5
    }
    assert metrics.loop_path_metrics({"loop_wq_executions": 0, "loop_requests": None}, 100) == {
        "loop_wq_fraction": 0.0
    }
    assert metrics.loop_path_metrics({"unavailable": "no tracefs"}, 100) == {}
    dio = {**counts, "loop_dio": 1000, "loop_dio_from_worker": 250}
    assert metrics.loop_path_metrics(dio, 0)["loop_dio_worker_fraction"] == 0.25
    assert metrics.loop_path_metrics({"loop_wq_executions": 3, "loop_requests": 0}, 0) == {}


def test_loop_path_metrics_in_ab():
    from harness.results.metrics import metric_spec, primary_metrics

    # executions per request also fall when the worker batches more: compared, not judged
    assert metric_spec("loop_wq_fraction").better is None
    spec = metric_spec("loop_dio_worker_fraction")
    assert spec.better == "lower" and spec.min_abs == 0.05
    assert primary_metrics(["read_iops", "loop_dio_worker_fraction"]) == {"read_iops"}


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for loop devices and tracefs")
def test_host_loop_rows_count_workqueue_executions(tmp_path, host_left_clean):
    if probes.events_dir() is None or not probes.loop_work_addresses():
        pytest.skip("host kernel without workqueue tracepoints or loop symbols")
    ctx = Context(workdir=str(tmp_path / "work"), mode="host", disks={}, results=str(tmp_path))
    spec = {"name": "loop-dio-on-xfs", "kind": "loop", "fs": "xfs", "direct_io": True,
            "size_mb": 32}  # fmt: skip
    params = {"rw": "randread", "bs": "4k", "ioengine": "libaio", "iodepth": 16, "direct": 1,
              "runtime": 1, "time_based": 1}  # fmt: skip
    step = {"id": "fio/loop/randread", "target": spec, "timeout_s": 120,
            "workload": {"name": "randread-4k", "fio": params}}  # fmt: skip
    with contextlib.ExitStack() as stack:
        prepared = targets.prepare(spec, ctx, stack)
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
