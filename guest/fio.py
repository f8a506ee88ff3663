"""Running a fio workload on a prepared target, with the mechanism metrics around it."""

from __future__ import annotations

import contextlib
import os
import re
import time

from guest import fio_options, metrics, probes, sh, targets
from guest.api import Context, Outcome, Prepared, Skip, StepFailure

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any


def fio_argv(name: str, filename: str, params: dict[str, Any], output: str) -> list[str]:
    """fio with JSON output to `output`; params are fio options (value True -> bare flag).
    ValueError for an option guest/fio_options.py does not allow (plan.json is untrusted)."""
    fio_options.check(params)
    argv = ["fio", f"--name={name}", f"--filename={filename}", "--output-format=json"]
    argv.append(f"--output={output}")
    for key, value in params.items():
        if value is True:
            argv.append(f"--{key}")
        elif value is not False and value is not None:
            argv.append(f"--{key}={value}")
    return argv


def safe_name(step_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", step_id).strip("_")


def check_requirements(workload: dict[str, Any], prepared: Prepared) -> None:
    """Raise Skip when the workload needs io_uring or poll queues the target lacks."""
    params = workload.get("fio", {})
    if params.get("ioengine") == "io_uring" or "io_uring" in workload.get("requires", ()):
        ok, why = probes.io_uring_usable()
        if not ok:
            raise Skip(why)
    if params.get("hipri") or "poll" in workload.get("requires", ()):
        ok, why = probes.poll_queues(prepared.device)
        if not ok:
            raise Skip(f"polled I/O unavailable: {why}")


def run_workload(
    step: dict[str, Any], prepared: Prepared, ctx: Context, trace_stack: bool
) -> Outcome:
    """Run the step's fio workload on `prepared`; metrics per docs/CONTRACT.md."""
    workload = step["workload"]
    check_requirements(workload, prepared)
    params = dict(workload.get("fio", {}))
    params.setdefault("size", f"{int(step['target'].get('size_mb', 256))}M")
    out_dir = os.path.join(ctx.results or ctx.workdir, "fio")
    os.makedirs(out_dir, exist_ok=True)
    output = os.path.join(out_dir, safe_name(step["id"]) + ".json")
    argv = fio_argv(workload.get("name", "job"), prepared.path, params, output)
    if targets.needs_fill(workload, prepared):
        # Reads of a sparse range measure the hole path: write it all once, before (and
        # outside) the measured run and its counters.
        size_mb = int(step["target"].get("size_mb", 256))
        targets.fill(prepared, size_mb, output.removesuffix(".json") + ".fill.json", step["id"])
    elif "sparse" in str(workload.get("name", "")):
        targets.restore_sparse(prepared)
    tracer = probes.StackTracer() if trace_stack else None
    details: dict[str, Any] = {"fio_argv": argv, **prepared.extra}
    # Whether this row's I/O ends on an emulated disk (not a tmpfs-backed loop or file): a
    # cost-mode A/B reports such rows but does not judge them (harness.results.metrics).
    details["waits_on_device"] = prepared.kind == "raw" or prepared.fs != "tmpfs"
    if tracer and tracer.available:
        tracer.start()
    elif tracer:
        details["stack_tracer"] = tracer.reason
    # nr_blocking_writes is a gauge (writes blocked right now): its peak during the run matters
    gauge = probes.nr_blocking_writes_path(prepared.loop_dev)
    sampler = probes.GaugeSampler(gauge) if gauge else contextlib.nullcontext()
    paths = probes.LoopPathCounter(prepared.loop_dev, prepared.backing_file)
    paths.start()
    before = probes.proc_stat()
    started = time.monotonic()
    try:
        with sampler:
            rc, out = sh.run(argv, timeout=max(60, step.get("timeout_s", 300) - 10), check=False)
    finally:
        after = probes.proc_stat()
        details["loop_path"] = paths.stop()
        extra_metrics, extra_details = tracer.stop() if tracer and tracer.available else ({}, {})
    details["fio_wall_s"] = round(time.monotonic() - started, 3)
    details.update(extra_details)
    nbw = sampler.max if isinstance(sampler, probes.GaugeSampler) else None
    details["loop_dev"] = prepared.loop_dev
    return _outcome(rc, out, output, (before, after), nbw, details, extra_metrics)


def _outcome(
    rc: int,
    out: str,
    output: str,
    stat: tuple[dict[str, int], dict[str, int]],
    nbw: int | None,
    details: dict[str, Any],
    extra_metrics: dict[str, float],
) -> Outcome:
    try:
        with open(output) as fh:
            data = metrics.load_fio_json(fh.read())
    except (OSError, ValueError) as exc:
        raise StepFailure(f"fio exited {rc} without JSON ({exc}): {out.strip()[-400:]}") from None
    found, ios = metrics.fio_metrics(data)
    found.update(metrics.per_io_metrics(stat[0], stat[1], ios))
    found.update(metrics.loop_path_metrics(details.get("loop_path", {}), ios))
    found.update(extra_metrics)
    details["fio_json"] = output
    details["fio_version"] = data.get("fio version", "")
    if nbw is None:
        details["nr_blocking_writes"] = None
        if details.get("loop_dev"):
            details["nr_blocking_writes_absent"] = "kernel has no loop/nr_blocking_writes"
    else:
        found["nr_blocking_writes"] = float(nbw)
    errors = metrics.fio_errors(data)
    if rc != 0 or errors:
        msg = "; ".join(errors) or f"fio exited {rc}"
        return Outcome("fail", f"{msg}: {out.strip()[-400:]}", found, details)
    if ios == 0:
        return Outcome("fail", "fio completed no I/O", found, details)
    return Outcome("pass", "", found, details)
