"""Merge the results of a plan's shards back into one result per kernel.

Input: the RunResults of `harness run --shard I/N` (from several results.json, or from the
remote pool). Output: one RunResult per kernel x topology x repetition whose steps are the
union of the shards' steps in the full plan's order, so JUnit, report.md and the verdict
read a merged run exactly like an unsharded one.

The synthetic `boot` (VM) / `kernel-log` (host) case: every shard booted its own kernel,
so each shard has one. The merged run keeps ONE such case with the unsharded run's name:
its status is the worst of the shards' (error > fail > pass), its splats are all the
shards' boot splats, its message names the shards that did not pass, its duration is the
longest boot, and its details list every shard's boot (status, duration, message, host).
Everything else a shard saw is kept: infra errors are joined with their shard named
("shard 2/3: run stopped (...)"), splats are the union, the stop reason is the worst.

Refused, with a one-line error: shards of different plans, kernels (spec, release or
provenance), topologies or shard counts; guarded environment fields that differ (accel,
qemu, host fs, cpus); a shard given twice; a shard missing.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.results.model import RunResult, StepResult, StepStatus
from harness.results.store import load_runs
from harness.run.assemble import BOOT_STEP, KERNEL_LOG_STEP
from harness.run.shard import SHARD_FILE
from harness.verdict import classify, judge, with_verdict, worst

_SETUP_STEPS = (BOOT_STEP, KERNEL_LOG_STEP)
_STATUS_RANK = ("error", "fail", "skip", "xfail", "pass")
# How a run ended, worst first: kernel failures decide the verdict (harness.verdict).
_STOP_RANK = (
    "panic",
    "oops",
    "hang",
    "unresponsive",
    "step-timeout",
    "silence",
    "boot-timeout",
    "total-timeout",
    "eof",
    "host-dropped",
)
ENV_FIELDS = ("accel", "qemu_version", "host_fs", "cpus", "memory_mb", "fio_version")


@dataclass(frozen=True)
class ShardRun:
    """One shard's RunResult, with which shard it is and the full plan's step order."""

    index: int
    count: int
    run: RunResult
    plan_steps: tuple[str, ...] = ()
    source: str = ""  # where it came from (a results.json path, a host), for messages

    @property
    def label(self) -> str:
        return f"shard {self.index}/{self.count}"


def group_key(run: RunResult) -> tuple[str, str, int]:
    return (run.kernel.spec, run.topology, run.repetition)


def _refuse_mixed(shards: Sequence[ShardRun], check_environment: bool = True) -> None:
    first = shards[0]
    fields = ENV_FIELDS if check_environment else ()
    for other in shards[1:]:
        a, b = first.run, other.run
        checks = (
            ("plan", a.plan, b.plan),
            ("kernel release", a.kernel.release, b.kernel.release),
            ("kernel provenance", a.kernel.provenance, b.kernel.provenance),
            ("shard count", first.count, other.count),
            *(
                (f"environment {f}", getattr(a.environment, f), getattr(b.environment, f))
                for f in fields
            ),
        )
        for what, x, y in checks:
            if x != y:
                raise UserError(
                    f"cannot merge {first.source or first.label} with {other.source or other.label}"
                    f" of {a.name}: {what} differs ({x!r} vs {y!r}); merge only shards of one run"
                )


def _refuse_gaps(shards: Sequence[ShardRun]) -> None:
    seen: dict[int, ShardRun] = {}
    for s in shards:
        if s.index in seen:
            raise UserError(
                f"{s.label} of {s.run.name} given twice ({seen[s.index].source} and "
                f"{s.source}): pass each shard's results once"
            )
        seen[s.index] = s
    missing = [i for i in range(1, shards[0].count + 1) if i not in seen]
    if missing:
        raise UserError(
            f"shard(s) {', '.join(f'{i}/{shards[0].count}' for i in missing)} of "
            f"{shards[0].run.name} missing: pass every shard's results directory"
        )


def _worst_status(steps: Sequence[StepResult]) -> str:
    return min((s.status for s in steps), key=_STATUS_RANK.index)


def merged_setup_step(parts: Sequence[tuple[ShardRun, StepResult]]) -> StepResult:
    """One boot/kernel-log case from each shard's (see the module docstring)."""
    steps = [step for _, step in parts]
    status = _worst_status(steps)
    bad = [
        f"{s.label}: {step.message or step.status}"
        for s, step in parts
        if step.status != StepStatus.PASS
    ]
    details = {
        "shards": {
            f"{s.index}/{s.count}": {
                "status": step.status,
                "duration_s": step.duration_s,
                "message": step.message,
                "console_log": s.run.console_log,
                **step.details,
            }
            for s, step in parts
        }
    }
    return dataclasses.replace(
        steps[0],
        status=status,
        message="; ".join(bad),
        duration_s=max(step.duration_s for step in steps),
        details=details,
        splats=tuple(x for step in steps for x in step.splats),
    )


def merged_steps(shards: Sequence[ShardRun]) -> tuple[StepResult, ...]:
    """Setup cases first (merged), then every step in the full plan's order."""
    setup: dict[str, list[tuple[ShardRun, StepResult]]] = {}
    others: dict[str, StepResult] = {}
    for s in shards:
        for step in s.run.steps:
            if step.id in _SETUP_STEPS:
                setup.setdefault(step.id, []).append((s, step))
            elif step.id in others:
                raise UserError(f"step {step.id} is in two shards of {s.run.name}: not one cut")
            else:
                others[step.id] = step
    order = {sid: i for i, sid in enumerate(shards[0].plan_steps)}
    ranked = sorted(others.values(), key=lambda st: order.get(st.id, len(order)))
    return tuple(merged_setup_step(p) for p in setup.values()) + tuple(ranked)


def _stop_reason(runs: Sequence[RunResult]) -> str:
    reasons = [r.stop_reason for r in runs if r.stop_reason not in ("", "done")]
    if not reasons:
        return runs[0].stop_reason
    return min(reasons, key=lambda r: _STOP_RANK.index(r) if r in _STOP_RANK else len(_STOP_RANK))


def merge_group(shards: Sequence[ShardRun], check_environment: bool = True) -> RunResult:
    """The shards of one kernel x topology x repetition as one RunResult. The remote pool
    merges without the environment check: its hosts' differences are the user's pool."""
    shards = sorted(shards, key=lambda s: s.index)
    _refuse_mixed(shards, check_environment)
    _refuse_gaps(shards)
    runs = [s.run for s in shards]
    errors = [f"{s.label}: {s.run.infra_error}" for s in shards if s.run.infra_error]
    merged = dataclasses.replace(
        runs[0],
        steps=merged_steps(shards),
        splats=tuple(x for r in runs for x in r.splats),
        infra_error="; ".join(errors),
        started=min((r.started for r in runs if r.started), default=""),
        duration_s=sum(r.duration_s for r in runs),
        stop_reason=_stop_reason(runs),
        verdict={},
    )
    # A shard's stored verdict (after its retries) is kept by ranking: the merged run's is
    # the worst of every shard's and of the merged run judged afresh. Every shard's
    # retried attempts stay counted (a shard whose retry passed is a pass).
    stored = [classify(r) for r in runs]
    verdict = worst([judge(merged), *stored])
    retried = tuple(a for v in stored for a in v.artefacts)
    attempts = max((v.attempts for v in stored), default=1)
    return with_verdict(
        merged,
        dataclasses.replace(verdict, artefacts=retried, attempts=max(attempts, verdict.attempts)),
    )


def merge_shards(shards: Sequence[ShardRun]) -> list[RunResult]:
    """Every kernel x topology x repetition merged, in the order first seen."""
    if not shards:
        raise UserError("nothing to merge: pass the results directories of `harness run --shard`")
    groups: dict[tuple[str, str, int], list[ShardRun]] = {}
    for s in shards:
        groups.setdefault(group_key(s.run), []).append(s)
    plans = {s.run.plan for s in shards}
    if len(plans) > 1:
        raise UserError(
            f"these results are of different plans ({', '.join(sorted(plans))}): "
            "merge each plan's shards apart"
        )
    return [merge_group(g) for g in groups.values()]


def results_path(arg: Path) -> Path:
    """A results directory or a results.json file -> the results.json path."""
    path = arg / "results.json" if arg.is_dir() else arg
    if not path.is_file():
        raise UserError(f"{arg}: no results.json there; pass the --out dir of a `harness run`")
    return path


def _relocated(run: RunResult, results_dir: Path) -> RunResult:
    """Point console_log at the shard's directory as it lies now (CI artifacts move)."""
    if not run.console_log or Path(run.console_log).exists():
        return run
    moved = results_dir / Path(run.console_log).parent.name / Path(run.console_log).name
    return dataclasses.replace(run, console_log=str(moved)) if moved.exists() else run


def load_shard_runs(arg: Path) -> list[ShardRun]:
    """The ShardRuns of one `harness run --shard` results directory (or results.json)."""
    path = results_path(arg)
    runs = load_runs(path)
    try:
        record: dict[str, Any] = json.loads((path.parent / SHARD_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path.parent} holds no readable {SHARD_FILE}: merge the results "
            "of `harness run --shard I/N`"
        ) from exc
    order = record.get("plan_steps", {})
    return [
        ShardRun(
            int(record["index"]),
            int(record["count"]),
            _relocated(run, path.parent),
            tuple(order.get(run.kernel.spec, ())),
            str(path),
        )
        for run in runs
    ]


def merge_dirs(args: Sequence[Path]) -> tuple[list[RunResult], dict[str, Any]]:
    """Merged runs of the given shard results, and the results.json "merge" section."""
    shards = [s for arg in args for s in load_shard_runs(arg)]
    runs = merge_shards(shards)
    section = {"merge": {"sources": sorted({s.source for s in shards}), "shards": shards[0].count}}
    return runs, section


def report_html(runs: Sequence[RunResult], markdown: str) -> str:
    """A self-contained report.html for CI artifacts: the verdict per run, then report.md."""
    rows = "".join(
        f"<tr><td>{html.escape(r.name)}</td><td>{html.escape(classify(r).cls)}</td>"
        f"<td>{html.escape(classify(r).summary)}</td></tr>"
        for r in runs
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>harness merged report</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}</style>"
        f"</head><body><h1>Merged shards</h1><table><tr><th>run</th><th>verdict</th>"
        f"<th>summary</th></tr>{rows}</table><pre>{html.escape(markdown)}</pre></body></html>\n"
    )
