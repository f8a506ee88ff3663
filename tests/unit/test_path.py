"""Which path each loop I/O took: workqueue executions of loop's work function per request.

Unit tests parse real tracefs/kallsyms text recorded on this host (tests/data/path/); the
slow test counts on real loop devices in host mode (tracefs on the host kernel).
"""

import sys

from harness.paths import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT))  # guest/ is not an installed package

from guest import metrics  # noqa: E402

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
