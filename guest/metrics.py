"""Pure parsers for the mechanism metrics: fio JSON, /proc/stat deltas, ftrace stack_trace.

Metric names end in their unit (docs/CONTRACT.md). Every function here is pure so it can be
tested against real recorded outputs in tests/data/.
"""

from __future__ import annotations

import json
import re

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any

# /proc/stat cpu fields after the label: user nice system idle iowait irq softirq steal ...
_IDLE_FIELDS = (3, 4)  # idle, iowait: time the CPUs did nothing for us
USER_HZ = 100  # /proc/stat is in USER_HZ ticks, 100 on every Linux ABI we boot


def load_fio_json(text: str) -> dict[str, Any]:
    """fio --output-format=json output; tolerates warning lines fio prints before the JSON."""
    start = text.find("{")
    if start < 0:
        raise ValueError("no JSON object in fio output")
    return json.loads(text[start:])


def _pct(clat: dict[str, Any], which: str) -> float | None:
    pct = clat.get("percentile") or {}
    for key, value in pct.items():
        if abs(float(key) - float(which)) < 1e-6:
            return float(value) / 1000.0
    return None


def fio_metrics(data: dict[str, Any]) -> tuple[dict[str, float], int]:
    """Metrics from fio JSON and the total number of I/Os.

    With several job entries (no group_reporting) bandwidth and IOPS are summed and the
    percentiles take the worst job, so a figure is never better than one job saw.
    """
    metrics: dict[str, float] = {}
    total_ios = 0
    for direction in ("read", "write"):
        entries = [job[direction] for job in data.get("jobs", []) if direction in job]
        ios = sum(int(e.get("total_ios", 0)) for e in entries)
        if ios == 0:
            continue
        total_ios += ios
        metrics[f"{direction}_bw_mib"] = round(sum(e["bw"] for e in entries) / 1024.0, 3)
        metrics[f"{direction}_iops"] = round(sum(float(e["iops"]) for e in entries), 3)
        for pct, name in (("50", "p50"), ("99", "p99")):
            vals = [_pct(e.get("clat_ns", {}), pct) for e in entries]
            vals = [v for v in vals if v is not None]
            if vals:
                metrics[f"{direction}_clat_{name}_us"] = round(max(vals), 3)
    return metrics, total_ios


def fio_errors(data: dict[str, Any]) -> list[str]:
    """One line per fio job that reported an error (verify failures end up here too)."""
    return [
        f"job {job.get('jobname')}: error {job['error']}"
        for job in data.get("jobs", [])
        if job.get("error")
    ]


def parse_proc_stat(text: str) -> dict[str, int]:
    """{'busy': ticks, 'total': ticks, 'ctxt': count} from /proc/stat (all CPUs)."""
    out = {"busy": 0, "total": 0, "ctxt": 0}
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "cpu":
            ticks = [int(x) for x in parts[1:9]]
            out["total"] = sum(ticks)
            out["busy"] = out["total"] - sum(ticks[i] for i in _IDLE_FIELDS)
        elif parts[0] == "ctxt":
            out["ctxt"] = int(parts[1])
    return out


def per_io_metrics(before: dict[str, int], after: dict[str, int], ios: int) -> dict[str, float]:
    """ctxsw_per_io and cpu_us_per_io from two /proc/stat samples around `ios` I/Os."""
    if ios <= 0:
        return {}
    busy_us = (after["busy"] - before["busy"]) * (1_000_000 / USER_HZ)
    return {
        "ctxsw_per_io": round((after["ctxt"] - before["ctxt"]) / ios, 4),
        "cpu_us_per_io": round(busy_us / ios, 3),
    }


_FRAME = re.compile(r"^\s*(\d+)\)\s+(\d+)\s+(\d+)\s+(\S.*?)\s*$")


def parse_stack_trace(text: str, top: int = 12) -> list[dict[str, Any]]:
    """The deepest `top` frames of /sys/kernel/tracing/stack_trace as dicts."""
    frames = []
    for line in text.splitlines():
        m = _FRAME.match(line)
        if m:
            frames.append({"depth": int(m[2]), "size": int(m[3]), "location": m[4].split(" ")[0]})
    return frames[:top]


# Kernel log lines that make a step fail on their own: the same families the host console
# scan types, kept short here because host mode has no console to scan. Not hung-task
# reports: a task blocked past the (short, under a VM) timeout may be waiting on slow
# emulated I/O and run on; the host decides hang or stall (harness.vm.faults) and, on a
# host run, scans the host's own kernel log.
SPLAT = re.compile(
    r"(Kernel panic|Oops|BUG:|WARNING:|general protection fault|KASAN:|KFENCE:|UBSAN:"
    r"|possible circular locking|soft lockup"
    r"|rcu_sched self-detected stall|rcu: INFO: .* detected stall"
    r"|stack guard page was hit|Kernel stack overflow|stack-protector)"
)


def find_splats(lines: list[str], context: int = 20) -> list[str]:
    """Excerpts (the matching line and up to `context` lines after) of splats in kmsg text."""
    excerpts = []
    i = 0
    while i < len(lines):
        if SPLAT.search(lines[i]):
            excerpts.append("\n".join(lines[i : i + context + 1]))
            i += context + 1
        else:
            i += 1
    return excerpts


# loop's work functions in 6.12: the per-cgroup worker and the root-cgroup one.
LOOP_WORK_FUNCTIONS = ("loop_workfn", "loop_rootcg_workfn")


def kallsyms_addresses(text: str, names: tuple[str, ...] = LOOP_WORK_FUNCTIONS) -> list[int]:
    """Addresses of the named text symbols in /proc/kallsyms text (0 entries: hidden)."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] in names and parts[1] in ("t", "T"):
            addr = int(parts[0], 16)
            if addr:
                found.append(addr)
    return found


def function_filter(addresses: list[int]) -> str:
    """An ftrace event filter matching workqueue_execute_start's `function` field."""
    return " || ".join(f"function == 0x{a:x}" for a in addresses)


def kernel_dev(major: int, minor: int) -> int:
    """dev_t as the block tracepoints record it (MKDEV: 20 minor bits)."""
    return (major << 20) | minor


def trace_event_count(stats_texts: list[str]) -> int:
    """Events an instance recorded: entries still in the per-CPU buffers plus overruns."""
    total = 0
    for text in stats_texts:
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("entries", "overrun"):
                total += int(value.split()[0])
    return total


def wq_fraction(executions: int, requests: int) -> float | None:
    """loop workqueue executions per request issued; None when nothing was issued."""
    return round(executions / requests, 4) if requests > 0 else None


def loop_path_metrics(counts: dict[str, Any], fio_ios: int) -> dict[str, float]:
    """From LoopPathCounter counts: loop_wq_fraction, executions of loop's work function
    per request (requests from block_rq_issue on the loop device when counted, else fio's
    I/O count; the worker drains several queued requests per execution), and, for direct
    I/O over iomap filesystems, loop_dio_worker_fraction: the share of loop's direct I/Os
    to its backing file that loop's worker (a kworker) issued, not the caller's context."""
    if "loop_wq_executions" not in counts:
        return {}
    requests = counts.get("loop_requests")
    out = {}
    frac = wq_fraction(counts["loop_wq_executions"], fio_ios if requests is None else requests)
    if frac is not None:
        out["loop_wq_fraction"] = frac
    if counts.get("loop_dio"):
        out["loop_dio_worker_fraction"] = round(
            counts["loop_dio_from_worker"] / counts["loop_dio"], 4
        )
    return out
