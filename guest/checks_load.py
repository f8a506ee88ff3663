"""Checks under load: data integrity with fio verify, kernel stack depth on a nested stack."""

from __future__ import annotations

import contextlib
import os

from guest import blockio, fio, metrics, probes, sh, stackpath
from guest import checks_mixed as mixed
from guest.api import Context, Outcome, Prepared, Skip
from guest.blockio import MIB

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import Any


def _fio_json(argv: list[str], output: str, timeout: float) -> tuple[int, str, dict]:
    rc, out = sh.run(argv, timeout=timeout, check=False)
    try:
        with open(output) as fh:
            return rc, out, metrics.load_fio_json(fh.read())
    except (OSError, ValueError):
        return rc, out, {}


def integrity_params(size_mb: int, bs: str = "16k") -> dict[str, Any]:
    """fio options for a crc32c-verified random write pass (do_verify off: verified later)."""
    return {
        "rw": "randwrite",
        "bs": bs,
        "size": f"{size_mb}M",
        "direct": 1,
        "ioengine": "libaio",
        "iodepth": 8,
        "verify": "crc32c",
        "do_verify": 0,
        "randrepeat": 1,
        "verify_fatal": 1,
        "verify_state_save": 0,  # else fio drops *-verify.state files into the cwd
        "group_reporting": 1,
    }


def _fio_integrity(
    prepared: Prepared, params: dict[str, Any], out_dir: str, details: dict[str, Any]
) -> list[str]:
    """fio verify=crc32c: a queue-depth random write pass, flush, then a verify-only pass."""
    job = integrity_params(int(params.get("size_mb", 64)), str(params.get("bs", "16k")))
    out1 = os.path.join(out_dir, f"integrity-{prepared.name}-write.json")
    rc, out, data = _fio_json(fio.fio_argv("integrity", prepared.path, job, out1), out1, 600)
    if rc != 0 or metrics.fio_errors(data):
        return [f"verified write pass failed on {prepared.path}: {out[-300:]}"]
    blockio.sync_path(prepared.path)
    if params.get("inject") == "punch-backing" and prepared.backing_file:
        # test-only fault: lose 1 MiB of the backing file under the device, as a lost write would
        sh.run(["fallocate", "-p", "-o", str(2 * MIB), "-l", str(MIB), prepared.backing_file])
        details["injected"] = "punch-backing"
    out2 = os.path.join(out_dir, f"integrity-{prepared.name}-verify.json")
    verify = fio.fio_argv(
        "integrity", prepared.path, {**job, "do_verify": 1, "verify_only": 1}, out2
    )
    rc, out, data = _fio_json(verify, out2, 600)
    details["fio_argv"] = verify
    errors = metrics.fio_errors(data)
    verified = sum(int(j.get("read", {}).get("io_bytes", 0)) for j in data.get("jobs", []))
    details["verified_bytes"] = verified
    if verified == 0 and not errors:
        errors = ["the verify pass read nothing back: fio verify_only did not run"]
    if rc != 0 or errors or not data:
        bad = [line for line in out.splitlines() if "verify" in line or "bad" in line]
        return [
            f"fio verify=crc32c found bad data reading back {prepared.path} "
            f"({prepared.kind}, loop/dio={details['loop_dio']}): "
            + " | ".join(bad[:3] or errors or [out.strip()[-300:]])
        ]
    return []


def check_integrity(
    prepared: Prepared, params: dict[str, Any], ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    """fio verify=crc32c under queue depth, then the mixed pass (checks_mixed): 512 B to
    1 MiB, aligned and not, sequential, random and buffered, checked by checksum through
    the device and (loop) through the backing file."""
    if not prepared.device:
        raise Skip(f"integrity runs on a block device; target {prepared.kind} has none")
    out_dir = os.path.join(ctx.results or ctx.workdir, "fio")
    os.makedirs(out_dir, exist_ok=True)
    details: dict[str, Any] = {"loop_dio": prepared.extra.get("loop_dio")}
    problems = []
    if params.get("fio", True):
        problems += _fio_integrity(prepared, params, out_dir, details)
    if params.get("mixed", True) and not problems:
        problems += mixed.run(prepared, int(params.get("mixed_mb", 32)), details)
    if problems:
        return Outcome("fail", "; ".join(problems), {}, details)
    return Outcome("pass", "", {}, details)


_TARGET_KEYS = ("dm", "dm_table", "dm_targets", "depth")


def _stack_job(params: dict[str, Any]) -> dict[str, Any]:
    """The write load of the stack check: 4k random direct writes, 2 jobs x 16 deep."""
    return {
        "rw": str(params.get("rw", "randwrite")),
        "bs": "4k",
        "size": f"{int(params.get('size_mb', 64))}M",
        "direct": 1,
        "ioengine": "libaio",
        "iodepth": 16,
        "numjobs": 2,
        "runtime": int(params.get("runtime_s", 10)),
        "time_based": 1,
        "group_reporting": 1,
    }


def check_stack(
    prepared: Prepared, params: dict[str, Any], ctx: Context, stack: contextlib.ExitStack
) -> Outcome:
    """Write load on the nested stack; the deepest kernel stack stays within budget.

    A stack overflow or guard page hit shows in the kernel log and fails the step (the
    runner's kmsg scan, and the host's console scan in a VM).
    """
    tracer = probes.StackTracer()
    budget = int(params.get("max_stack_bytes", 14336))  # THREAD_SIZE 16 KiB less 2 KiB
    out_dir = os.path.join(ctx.results or ctx.workdir, "fio")
    os.makedirs(out_dir, exist_ok=True)
    output = os.path.join(out_dir, f"stack-{prepared.name}.json")
    argv = fio.fio_argv("stack", prepared.path, _stack_job(params), output)
    if tracer.available:
        tracer.start()
    try:
        rc, out, data = _fio_json(argv, output, 600)
    finally:
        found, details = tracer.stop() if tracer.available else ({}, {})
    details.update(
        {"fio_argv": argv, "budget_bytes": budget, "layers": prepared.extra.get("layers")}
    )
    # what the stack stands on: the dm table, the nesting depth
    details.update({k: v for k, v in prepared.extra.items() if k in _TARGET_KEYS})
    if rc != 0 or metrics.fio_errors(data):
        return Outcome(
            "fail", f"write load on {prepared.path} failed: {out.strip()[-300:]}", found, details
        )
    if not tracer.available:
        raise Skip(f"write load ran clean but stack depth is unknown: {tracer.reason}")
    if "stack_path_bytes" in found:
        return _path_verdict(prepared, params, found, details)
    if details.get("stack_scope"):
        raise Skip(
            f"no scoped stack through loop was the deepest in any window on "
            f"{prepared.name}; deepest other: {details.get('stack_any_path')}"
        )
    depth = int(found["stack_max_bytes"])
    if depth >= budget:
        frames = details.get("stack_trace", [])[:6]
        top = ", ".join(f["location"] for f in frames)
        return Outcome(
            "fail",
            f"max kernel stack {depth} bytes under writes to "
            f"{prepared.kind} {prepared.path} exceeds the {budget}-byte budget; "
            f"deepest frames: {top}",
            found,
            details,
        )
    return Outcome("pass", "", found, details)


def _path_verdict(
    prepared: Prepared, params: dict[str, Any], found: dict[str, float], details: dict[str, Any]
) -> Outcome:
    """The path-scoped figure (tracer booted with a function filter) against its budget:
    75% of THREAD_SIZE by default; a failure names the path the deepest stack took."""
    budget = int(params.get("path_budget_bytes", stackpath.budget_bytes()))
    details["path_budget_bytes"] = budget
    depth = int(found["stack_path_bytes"])
    if depth > budget:
        return Outcome(
            "fail",
            f"deepest stack through the I/O submission path on {prepared.kind} "
            f"{prepared.name} is {depth} bytes, above the {budget}-byte budget "
            f"({stackpath.BUDGET_SHARE:.0%} of THREAD_SIZE): {details.get('stack_path')}",
            found,
            details,
        )
    return Outcome("pass", "", found, details)
