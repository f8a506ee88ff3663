"""What each metric means for a verdict: which direction is better and what change matters.

Metric names end in their unit (docs/CONTRACT.md). The minimum meaningful change follows lkp,
which ignores moves under 5% for most metrics; tail latency is noisier, so it needs more.
A metric not listed here has no direction: it is reported but never flagged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

HIGHER, LOWER = "higher", "lower"


@dataclass(frozen=True)
class MetricSpec:
    """How to judge one metric.

    `better` is "higher", "lower" or None (unknown: never flagged). A change counts only if
    it is at least `min_change_pct` percent of the base mean, or, when the base mean is 0
    (percent undefined), at least `min_abs` in the metric's own unit.
    """

    name: str
    better: str | None
    min_change_pct: float = 5.0
    min_abs: float = 0.0
    unit: str = ""
    description: str = ""


_KNOWN = (
    MetricSpec("read_bw_mib", HIGHER, 5.0, 0.0, "MiB/s", "read bandwidth"),
    MetricSpec("read_iops", HIGHER, 5.0, 0.0, "IO/s", "read I/Os per second"),
    MetricSpec("read_clat_p50_us", LOWER, 5.0, 0.0, "us", "median read completion latency"),
    # p99 moves with a handful of slow I/Os; under 10% it is mostly scheduling noise.
    MetricSpec("read_clat_p99_us", LOWER, 10.0, 0.0, "us", "p99 read completion latency"),
    MetricSpec("write_bw_mib", HIGHER, 5.0, 0.0, "MiB/s", "write bandwidth"),
    MetricSpec("write_iops", HIGHER, 5.0, 0.0, "IO/s", "write I/Os per second"),
    MetricSpec("write_clat_p50_us", LOWER, 5.0, 0.0, "us", "median write completion latency"),
    MetricSpec("write_clat_p99_us", LOWER, 10.0, 0.0, "us", "p99 write completion latency"),
    MetricSpec("ctxsw_per_io", LOWER, 5.0, 0.0, "switches", "context switches per I/O"),
    MetricSpec("cpu_us_per_io", LOWER, 5.0, 0.0, "us", "CPU time per I/O"),
    # Usually 0 on base: a percent is undefined there, so one blocking write is the minimum.
    MetricSpec("nr_blocking_writes", LOWER, 5.0, 1.0, "writes", "loop writes blocking in wq"),
    # The series was reverted over stack depth; a few hundred bytes already matter.
    MetricSpec("stack_max_bytes", LOWER, 5.0, 256.0, "bytes", "deepest kernel stack seen"),
    # The tracer limited to block submission and fs I/O entry points (a plan's stack_scope):
    # the deepest stack at which I/O was submitted, e.g. through loop on XFS on dm.
    MetricSpec("stack_path_bytes", LOWER, 5.0, 256.0, "bytes", "deepest stack on the I/O path"),
    # Which path loop requests took: workqueue executions of loop's work function per
    # request the step issued. The worker drains every queued request per execution, so
    # the figure also falls when the worker gets slower (a busy worker never idles: a
    # planted 12 us spin took it from 0.3 to 0.002): reported, compared, never judged.
    MetricSpec(
        "loop_wq_fraction",
        None,
        5.0,
        0.05,
        "per request",
        "loop wq executions per request (batching moves it too: never flagged)",
    ),
    # The precise one: the share of loop's direct I/Os to its backing file that its worker
    # issued (1.0 on 6.12; the NOWAIT series issues most in the caller's context).
    MetricSpec(
        "loop_dio_worker_fraction", LOWER, 5.0, 0.05, "share", "loop dio issued by its worker"
    ),
)

METRICS: dict[str, MetricSpec] = {m.name: m for m in _KNOWN}


def metric_spec(name: str) -> MetricSpec:
    """The spec of metric `name`; an unknown name gets better=None (reported, never flagged)."""
    known = METRICS.get(name)
    if known is not None:
        return known
    return MetricSpec(name, None, description="no direction known: reported, never flagged")


PRIMARY, SECONDARY = "primary", "secondary"
# A cost-mode row whose I/O waits on an emulated disk (raw NVMe/SCSI, a filesystem on one):
# under instruction counting such a wait lasts until the guest's next timer, not as long
# as the I/O takes, so the row's IOPS, bandwidth and latencies are no cost figures
# (measured: raw NVMe randwrite 2047-4711 IOPS over six boots of one kernel, where loop
# over tmpfs moved 0.4%). They are reported, never judged; the row's cost figure is
# cpu_us_per_io (a loop spin doubled it on loop-over-XFS-on-NVMe rows while their IOPS rose).
DESCRIPTIVE = "descriptive"


def is_time_figure(metric: str) -> bool:
    """IOPS, bandwidth and completion latencies: figures of how long I/O took."""
    return metric.endswith(("_iops", "_bw_mib")) or "_clat_" in metric


MEASURES = {
    "wall": "wall-clock figures (guest time is host time: host load moves them)",
    "cost": "COST figures: QEMU instruction counting (-icount shift=0), guest time counts "
    "instructions executed; IOPS, latency and CPU per I/O are in instruction-time, never "
    "comparable with wall-clock figures",
}


def measure_label(measure: str) -> str:
    """One line saying what kind of figures `measure` ("wall", "cost") produced."""
    return f"Measure: {measure} - " + MEASURES.get(measure, "mixed: not comparable")


def primary_metrics(names: Iterable[str], measure: str = "wall") -> frozenset[str]:
    """A row's primary metrics: IOPS and p99 completion latency of each direction it did,
    and in cost mode CPU per I/O too (instruction-time: the cost figure of every row,
    also of rows whose IOPS wait on an emulated disk, a timer artefact under icount).

    The agent reports a direction only when the workload issued I/O in it, so the
    workload's own direction (read, write, or both for mixed jobs) is the one present.
    """
    names = set(names)
    out = {"cpu_us_per_io"} & names if measure == "cost" else set()
    for direction in ("read", "write"):
        if f"{direction}_iops" in names:
            out.add(f"{direction}_iops")
            if f"{direction}_clat_p99_us" in names:
                out.add(f"{direction}_clat_p99_us")
    return frozenset(out)


def is_worse(spec: MetricSpec, base_mean: float, cand_mean: float) -> bool | None:
    """True when the candidate moved in the bad direction, None when direction is unknown."""
    if spec.better is None or base_mean == cand_mean:
        return None if spec.better is None else False
    return cand_mean < base_mean if spec.better == HIGHER else cand_mean > base_mean


def beyond_minimum(spec: MetricSpec, base_mean: float, cand_mean: float) -> bool:
    """Whether the move from base to candidate is at least the metric's minimum change."""
    delta = abs(cand_mean - base_mean)
    if base_mean == 0:
        return delta > 0 and delta >= spec.min_abs
    pct = 100.0 * delta / abs(base_mean)
    return pct >= spec.min_change_pct and delta >= spec.min_abs
