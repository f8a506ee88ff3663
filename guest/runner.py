"""The step loop: prepare targets, run workloads and checks, write one record per step.

Every step runs inside try/except: an unexpected exception becomes an `error` record with
the traceback tail and the loop goes on. Targets are torn down (reverse order) whenever the
next step needs a different one, after every check, and on any exit (SIGTERM included).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import time
import traceback
from collections.abc import Callable, Iterator

from guest import checks, fio, metrics, prepare, probes, sh
from guest.api import Context, Outcome, Prepared, Skip, StepFailure
from guest.watchdog import Watchdog

TYPE_CHECKING = False  # typing is never imported at run time: 20 ms of a TCG agent start
if TYPE_CHECKING:
    from typing import IO, Any

log = logging.getLogger(__name__)


class StepTimeout(BaseException):
    """The step ran past its timeout_s (BaseException so no handler in a step swallows it)."""


@contextlib.contextmanager
def step_timeout(seconds: int) -> Iterator[None]:
    def _fire(signum: int, frame: object) -> None:
        raise StepTimeout()

    old = signal.signal(signal.SIGALRM, _fire)
    signal.alarm(max(1, int(seconds)))
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


class TargetCache:
    """Keeps the last fio target alive while consecutive steps use the same target spec."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.spec: dict[str, Any] | None = None
        self.prepared: Prepared | None = None
        self.stack = contextlib.ExitStack()

    def get(self, spec: dict[str, Any]) -> Prepared:
        if self.prepared is not None and spec == self.spec:
            return self.prepared
        self.release()
        self.prepared = prepare.target(spec, self.ctx, self.stack)
        self.spec = spec
        return self.prepared

    def release(self) -> None:
        self.spec, self.prepared = None, None
        stack, self.stack = self.stack, contextlib.ExitStack()
        close_quietly(stack)


def close_quietly(stack: contextlib.ExitStack) -> None:
    """Teardown that logs instead of raising: a failed umount must not hide the result."""
    try:
        stack.close()
    except Exception:
        log.warning("teardown problem: %s", traceback.format_exc(limit=-2))


def _execute(
    step: dict[str, Any],
    ctx: Context,
    cache: TargetCache,
    plan: dict[str, Any],
    stack: contextlib.ExitStack,
) -> Outcome:
    kind = step.get("kind")
    if kind == "fio":
        prepared = cache.get(step["target"])
        trace = bool(step.get("trace_stack", plan.get("trace_stack", False)))
        return fio.run_workload(step, prepared, ctx, trace)
    if kind == "check":
        cache.release()  # a check gets a fresh target and may need the same disk
        prepared = prepare.target(step["target"], ctx, stack)
        return checks.run_check(step, prepared, ctx, stack)
    if kind == "suite":  # a peer suite's test (blktests, fstests); imported only when planned
        from guest import peer

        cache.release()
        return peer.run_test(step, ctx)
    raise Skip(f"unknown step kind {kind!r}")


def _apply_xfail(step: dict[str, Any], status: str, message: str) -> tuple[str, str]:
    reason = step.get("xfail")
    if not reason or status not in ("pass", "fail"):
        return status, message
    if status == "fail":
        return "xfail", f"expected failure ({reason}): {message}"
    return "fail", f"expected failure did not happen ({reason}); the check may not be biting"


def run_one(
    step: dict[str, Any], ctx: Context, cache: TargetCache, plan: dict[str, Any]
) -> dict[str, Any]:
    """Run one step and return its record (never raises except Terminated/KeyboardInterrupt)."""
    kmsg = probes.KmsgTail()
    started = time.monotonic()
    outcome = Outcome("error")
    stack = contextlib.ExitStack()  # the check's target; closed outside the step's alarm
    try:
        with step_timeout(int(step.get("timeout_s", 300))):
            outcome = _execute(step, ctx, cache, plan, stack)
    except Skip as exc:
        outcome = Outcome("skip", str(exc))
    except StepFailure as exc:
        outcome = Outcome("fail", str(exc))
    except StepTimeout:
        cache.release()
        outcome = Outcome("error", f"step timed out after {step.get('timeout_s', 300)}s")
    except sh.CommandError as exc:
        cache.release()
        outcome = Outcome("error", str(exc))
    except Exception as exc:
        cache.release()
        tail = traceback.format_exc().strip().splitlines()[-6:]
        outcome = Outcome("error", f"{type(exc).__name__}: {exc}", details={"traceback": tail})
    finally:
        close_quietly(stack)
    status, message = _apply_xfail(step, outcome.status, outcome.message)
    details = dict(outcome.details)
    splats = metrics.find_splats(kmsg.read())
    kmsg.close()
    if splats:
        details["kernel_log_splats"] = splats
        if status in ("pass", "skip", "xfail"):
            status = "fail"
            message = f"kernel log splat during the step: {splats[0].splitlines()[0]}"
    return {
        "id": step["id"],
        "kind": step.get("kind", ""),
        "status": status,
        "message": message,
        "duration_s": round(time.monotonic() - started, 3),
        "target": step.get("target", {}).get("name", ""),
        "workload": step.get("workload", {}).get("name", step.get("check", "")),
        "metrics": outcome.metrics,
        "details": details,
    }


def write_record(out: IO[str], record: dict[str, Any]) -> None:
    """Append one JSON line and fsync it: a crash after this loses nothing of this step."""
    out.write(json.dumps(record, sort_keys=True) + "\n")
    out.flush()
    os.fsync(out.fileno())


def begin_marker(step_id: str, step: dict[str, Any]) -> dict[str, Any]:
    timeout_s = step.get("timeout_s", 300)
    return {"event": "begin", "id": step_id, "timeout_s": timeout_s, "uptime_s": sh.uptime()}


def run_steps(
    plan: dict[str, Any], ctx: Context, out: IO[str], marker: Callable[[dict], None]
) -> int:
    """Run every step of the plan; return 0 (all pass/skip/xfail) or 1.

    In a VM a watchdog thread asks the kernel for a blocked-task dump when a step passes
    its timeout or the host asks (guest/watchdog.py)."""
    cache = TargetCache(ctx)
    rc = 0
    current = ""
    watchdog = Watchdog(ctx.results, marker) if ctx.mode == "vm" and ctx.results else None
    if watchdog:
        watchdog.start()
    if ctx.mode == "vm":  # the guest's own kernel only: a host's tracing is not ours
        log.info("tracepoints held for the run: %s", ", ".join(probes.hold_tracepoints()))
    try:
        for step in plan["steps"]:
            current = step.get("id", "?")
            marker(begin_marker(current, step))
            if watchdog:
                watchdog.arm(current, float(step.get("timeout_s", 300)))
            record = run_one(step, ctx, cache, plan)
            if watchdog:
                watchdog.disarm()
            write_record(out, record)
            marker({"event": "end", "id": current, "status": record["status"]})
            log.info("%s: %s %s", current, record["status"], record["message"][:200])
            current = ""
            if record["status"] in ("fail", "error"):
                rc = 1
    except BaseException as exc:
        if current:  # SIGTERM or Ctrl-C mid-step: say so in the record stream
            write_record(
                out,
                {
                    "id": current,
                    "kind": "",
                    "status": "error",
                    "message": f"agent interrupted ({type(exc).__name__})",
                    "metrics": {},
                    "details": {},
                },
            )
        raise
    finally:
        if watchdog:
            watchdog.stop()
        cache.release()
    return rc
