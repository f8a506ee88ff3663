"""Pre-backport validation: one series against several bases, as one table.

Per base: apply the series patch by patch in the base's own apply worktree (harness.
kernel.apply); where it applies, build the unpatched base and base+series (the spec text
plus '+series=PATH', so the patched kernel builds incrementally in the base's object
dir), then A/B patched against unpatched with the ab workflow (interleaved reps, the
compare statistics), so every base is compared against itself. A conflict, a failed
build or a fetch failure is a cell of the table, never an exception that stops the rest.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError, InfraError, UserError
from harness.kernel.apply import check_apply
from harness.kernel.buildspec import is_build_spec, parse_build_spec
from harness.kernel.model import Kernel
from harness.kernel.resolve import Resolution, ResolutionStatus, resolve_kernel
from harness.kernel.series import load_series
from harness.results.compare import Comparison
from harness.results.model import RunResult
from harness.run.executor import Executor
from harness.run.request import RunRequest
from harness.verdict import INFRA_ERROR
from harness.workflows.ab import workflow as ab
from harness.workflows.backport.lint import lint_series
from harness.workflows.backport.model import (
    BUILD_FAILED,
    CONFLICT,
    FAILED,
    OK,
    STAGES,
    STOPPED,
    BaseResult,
    Watch,
    boot_of,
    checks_of,
    perf_of,
    splats_of,
    suite_of,
    verdict_of,
    watch_of,
)

log = logging.getLogger(__name__)

DEFAULT_WATCH = "nr_blocking_writes"
RunnerFactory = Callable[[dict[str, Kernel]], Callable[[RunRequest], RunResult]]


@dataclass(frozen=True)
class BackportRequest:
    """Series x bases, and how each base's A/B runs."""

    series: str
    bases: tuple[str, ...]
    out_dir: Path
    series_for: tuple[tuple[str, str], ...] = ()  # (base, its backported series)
    stop_after: tuple[tuple[str, str], ...] = ()  # (base or "*", stage)
    plan: str = "quick"
    reps: int = ab.DEFAULT_REPS
    accel: str = "auto"
    topology: str = "default"
    runtime_s: int | None = None
    watch: str = DEFAULT_WATCH
    guest_root: str = "minimal"  # every base boots with a series from outside
    suites: tuple[str, ...] = ()  # peer suites (--suite) in every base's A/B

    def __post_init__(self) -> None:
        if not self.bases:
            raise UserError("give at least one --base SPEC (git:TREE@REF, src:debian:PKG, src:DIR)")
        if self.reps < 1:
            raise UserError(f"--reps must be at least 1 (got {self.reps})")
        for base in self.bases:
            check_base(base)
        for base, _ in self.series_for:
            if base not in self.bases:
                raise UserError(f"--series-for {base}=...: {base} is not one of the --base specs")
        for base, stage in self.stop_after:
            if stage not in STAGES or (base != "*" and base not in self.bases):
                raise UserError(
                    f"--stop-after {base}={stage}: use [BASE=]STAGE with STAGE one of "
                    f"{', '.join(STAGES)} and BASE one of the --base specs"
                )

    def series_of(self, base: str) -> tuple[str, bool]:
        """The series for `base` and whether it is a per-base backport."""
        own = dict(self.series_for).get(base)
        return (own, True) if own else (self.series, False)

    def stop_of(self, base: str) -> str | None:
        stops = dict(self.stop_after)
        return stops.get(base, stops.get("*"))


def check_base(base: str) -> None:
    """A base is a source build spec without a series of its own."""
    if not is_build_spec(base):
        raise UserError(
            f"--base {base!r}: a backport base is built from source: git:TREE@REF, "
            "src:debian:linux-source-X.Y or src:DIR"
        )
    if parse_build_spec(base).series:
        raise UserError(f"--base {base!r} carries +series=: pass the series with --series")


def slug(index: int, base: str) -> str:
    """A directory name for the base's outputs: '1-src-debian-linux-source-6.12'."""
    return f"{index}-" + re.sub(r"[^A-Za-z0-9._-]+", "-", base).strip("-")[:80]


def default_runner(
    kernels: dict[str, Kernel], remote: Executor | None = None
) -> Callable[[RunRequest], RunResult]:
    """run_one over already resolved kernels (the VM executor, or host mode for `host`;
    the --host pool when there is one)."""
    from harness.run.engine import executor_for

    def run_one(req: RunRequest) -> RunResult:
        kernel = kernels[req.kernel]
        return executor_for(kernel, remote).run(req, kernel)

    return run_one


def remote_runner(remote: Executor | None) -> RunnerFactory:
    """default_runner on `remote` (None: this machine)."""
    return lambda kernels: default_runner(kernels, remote)


def _timed(durations: dict[str, float], name: str, fn: Callable[[], object]) -> object:
    t0 = time.monotonic()
    try:
        return fn()
    finally:
        durations[name] = round(time.monotonic() - t0, 2)


def _build(
    row: BaseResult, patched: str, resolve: Callable[[str], Resolution], kernels: dict[str, Kernel]
) -> BaseResult:
    """Build the unpatched base, then base+series next to it; the row with build cells.
    The kernels built land in `kernels` (spec -> Kernel) for the A/B."""
    durations = row.durations
    base_res = _timed(durations, "build_base_s", lambda: resolve(row.base))
    assert isinstance(base_res, Resolution)
    if not base_res.ok:
        why = f"the unpatched base does not build or fetch: {base_res.message}"
        return dataclasses.replace(
            row,
            build=FAILED,
            build_log=base_res.log_path,
            build_message=why,
            verdict=INFRA_ERROR,
            summary=why,
        )
    res = _timed(durations, "build_s", lambda: resolve(patched))
    assert isinstance(res, Resolution)
    if res.kernel is not None and base_res.kernel is not None:
        kernels.update({row.base: base_res.kernel, patched: res.kernel})
        return dataclasses.replace(row, build=OK)
    verdict = BUILD_FAILED if res.status == ResolutionStatus.BUILD_FAILED else INFRA_ERROR
    if res.status == ResolutionStatus.DOES_NOT_APPLY:
        verdict = CONFLICT
    return dataclasses.replace(
        row,
        build=FAILED,
        build_log=res.log_path,
        build_message=res.message,
        verdict=verdict,
        summary=res.message,
    )


def _ab(
    req: BackportRequest, row: BaseResult, patched: str, out: Path, run_one: Callable
) -> BaseResult:
    """A/B patched vs unpatched on this base; the row with boot, checks, perf, verdict."""
    ab_req = ab.AbRequest(
        base=ab.Side(ab.BASE, row.base, req.topology),
        candidate=ab.Side(ab.CANDIDATE, patched, req.topology),
        out_dir=out / "ab",
        plan=req.plan,
        reps=req.reps,
        accel=req.accel,
        runtime_s=req.runtime_s,
        guest_root=req.guest_root,
        suites=req.suites,
    )
    comparison = _timed(row.durations, "ab_s", lambda: ab.run_ab(ab_req, run_one))
    assert isinstance(comparison, Comparison)
    verdict, summary = verdict_of(comparison)
    runs = (*comparison.base_runs, *comparison.cand_runs)
    sides = (ab.BASE,) * len(comparison.base_runs) + (ab.CANDIDATE,) * len(comparison.cand_runs)
    return dataclasses.replace(
        row,
        boot=boot_of(comparison.cand_runs),
        checks=checks_of(comparison),
        suite=suite_of(comparison),
        splats=splats_of(comparison.cand_runs),
        perf=perf_of(comparison),
        watch=watch_of(comparison, req.watch),
        verdict=verdict,
        summary=summary,
        ab_dir=str(ab_req.out_dir),
        runs=runs,
        run_sides=sides,
    )


def _conflict_summary(row: BaseResult) -> str:
    report = row.apply
    conflict = report.conflict if report else None
    if report is None or conflict is None:
        return ""
    where = conflict.conflicts[0] if conflict.conflicts else None
    text = f"conflict in patch {conflict.index}/{report.total} ({conflict.subject})"
    if where:
        text += f", {where.file}, function {where.function or '?'} hunk {where.hunk}"
        if where.function and not where.function_in_base:
            text += f" ({where.function} is not in the base)"
    return text


def run_base(
    req: BackportRequest,
    index: int,
    base: str,
    *,
    runner: RunnerFactory = default_runner,
    resolve: Callable[[str], Resolution] = resolve_kernel,
) -> BaseResult:
    """Every stage for one base, stopping at the first that fails (or at --stop-after)."""
    ref, backport = req.series_of(base)
    series = load_series(ref)
    row = BaseResult(
        base,
        series.source,
        backport,
        None,
        lint_series(series.patches),
        watch=Watch(req.watch),
        durations={},
    )
    try:
        report = _timed(row.durations, "apply_s", lambda: check_apply(base, series))
    except InfraError as exc:
        return dataclasses.replace(row, verdict=INFRA_ERROR, summary=f"apply: {exc}")
    row = dataclasses.replace(row, apply=report)  # type: ignore[arg-type]
    if row.apply is not None and row.apply.conflict:
        return dataclasses.replace(row, verdict=CONFLICT, summary=_conflict_summary(row))
    stop = req.stop_of(base)
    if stop == "apply":
        return dataclasses.replace(row, verdict=STOPPED, summary="applies (stopped after apply)")
    patched = f"{base}+series={series.source}"
    kernels: dict[str, Kernel] = {}
    row = _build(row, patched, resolve, kernels)
    if row.build != OK:
        return row
    if stop == "build":
        return dataclasses.replace(row, verdict=STOPPED, summary="builds (stopped after build)")
    out = req.out_dir / "bases" / slug(index, base)
    try:
        return _ab(req, row, patched, out, runner(kernels))
    except HarnessError as exc:  # e.g. the sides' environments differ: this base can't tell
        return dataclasses.replace(row, verdict=INFRA_ERROR, summary=f"A/B: {exc}")


def run_backport(
    req: BackportRequest,
    *,
    runner: RunnerFactory = default_runner,
    resolve: Callable[[str], Resolution] = resolve_kernel,
    on_base: Callable[[BaseResult], None] | None = None,
) -> tuple[BaseResult, ...]:
    """Every base in order; on_base sees each finished row (the CLI prints progress)."""
    for ref in {req.series, *(s for _, s in req.series_for)}:
        load_series(ref)  # a bad series is the user's to fix before hours of builds
    rows = []
    for index, base in enumerate(req.bases, start=1):
        log.info("backport: base %d/%d %s", index, len(req.bases), base)
        row = run_base(req, index, base, runner=runner, resolve=resolve)
        rows.append(row)
        if on_base:
            on_base(row)
    return tuple(rows)
