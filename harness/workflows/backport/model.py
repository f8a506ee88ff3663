"""What `harness backport` decides per base, and how a base's A/B becomes table cells.

Cells come from the verdict taxonomy (harness.verdict.classify on the patched runs) and
the base-vs-itself comparison (harness.results.compare); nothing here re-judges a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from harness.kernel.apply import ApplyReport
from harness.results.compare import SPLAT_STEP, Comparison
from harness.results.model import RunResult, StepStatus
from harness.verdict import INFRA_ERROR, KERNEL_FAILURE, PASS, TEST_FAILURE, classify, worst
from harness.workflows.backport.lint import LintWarning

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


class Cell(StrEnum):
    """A backport table cell that is not a run's verdict class."""

    CONFLICT = "conflict"
    BUILD_FAILED = "build-failed"
    REGRESSION = "regression"
    STOPPED = "stopped"


CONFLICT, BUILD_FAILED, REGRESSION, STOPPED = tuple(Cell)
FAILING = (CONFLICT, BUILD_FAILED, REGRESSION, KERNEL_FAILURE, TEST_FAILURE)
STAGES = ("apply", "build", "ab")  # where --stop-after may stop a base


@dataclass(frozen=True)
class Checks:
    """Checks on the patched kernel: counts, and the steps failing patched but not unpatched."""

    passed: int = 0
    failed: int = 0
    new_failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class SuiteTests:
    """Peer suite tests (--suite) of the A/B: how many ran on the patched kernel, those that
    fail patched and pass unpatched (new failures), and the reverse (new passes)."""

    ran: int = 0
    new_failures: tuple[str, ...] = ()
    new_passes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Perf:
    """The metric verdicts of the A/B: ok, regression, inconclusive (a primary metric's
    interval reaches past its minimum change), improvement, insufficient, skipped."""

    verdict: str = SKIPPED
    regressions: tuple[str, ...] = ()
    improvements: tuple[str, ...] = ()
    inconclusive: tuple[str, ...] = ()


@dataclass(frozen=True)
class Watch:
    """Whether the watched metric (e.g. nr_blocking_writes) showed up, and its peak."""

    metric: str
    seen: bool | None = None  # None: nothing ran
    peak: float | None = None
    seen_unpatched: bool | None = None


@dataclass(frozen=True)
class BaseResult:
    """One row of the table."""

    base: str
    series: str
    backport: bool  # True when --series-for gave this base its own series
    apply: ApplyReport | None
    lint: tuple[LintWarning, ...] = ()
    build: str = SKIPPED
    build_log: str | None = None
    build_message: str = ""
    boot: str = SKIPPED
    checks: Checks = field(default_factory=Checks)
    suite: SuiteTests = field(default_factory=SuiteTests)
    splats: tuple[str, ...] = ()
    perf: Perf = field(default_factory=Perf)
    watch: Watch = field(default_factory=lambda: Watch("nr_blocking_writes"))
    verdict: str = INFRA_ERROR
    summary: str = ""
    ab_dir: str | None = None
    durations: dict[str, float] = field(default_factory=dict)
    runs: tuple[RunResult, ...] = ()  # patched and unpatched, for results.json
    run_sides: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return self.verdict in FAILING

    @property
    def infra(self) -> bool:
        return not self.failed and self.verdict not in (PASS, STOPPED)

    def apply_dict(self) -> dict[str, Any]:
        """backport.json's stable `apply` object (plus every patch's outcome)."""
        report = self.apply
        if report is None:
            return {"status": "skipped", "applied": 0, "total": 0, "conflict": None}
        conflict = report.conflict
        first = conflict.conflicts[0] if conflict and conflict.conflicts else None
        return {
            "status": report.status,
            "applied": report.applied,
            "total": report.total,
            "conflict": None
            if conflict is None
            else {
                "patch": conflict.index,
                "subject": conflict.subject,
                "file": first.file if first else (conflict.files or ("",))[0],
                "function": first.function if first else "",
                "hunk": first.hunk if first else "",
                "message": conflict.message,
                "hunks": [c.to_dict() for c in conflict.conflicts],
            },
            "patches": [p.to_dict() for p in report.patches],
        }

    def to_dict(self) -> dict[str, Any]:
        """One entry of backport.json's `bases` (the stable fields first)."""
        return {
            "base": self.base,
            "series": self.series,
            "apply": self.apply_dict(),
            "build": self.build,
            "boot": self.boot,
            "checks": {
                "new_failures": list(self.checks.new_failures),
                "passed": self.checks.passed,
                "failed": self.checks.failed,
            },
            "suite": {
                "ran": self.suite.ran,
                "new_failures": list(self.suite.new_failures),
                "new_passes": list(self.suite.new_passes),
            },
            "verdict": self.verdict,
            "summary": self.summary,
            "backport": self.backport,
            "build_log": self.build_log,
            "build_message": self.build_message,
            "splats": list(self.splats),
            "perf": {
                "verdict": self.perf.verdict,
                "regressions": list(self.perf.regressions),
                "improvements": list(self.perf.improvements),
                "inconclusive": list(self.perf.inconclusive),
            },
            "watch": dict(self.watch.__dict__),
            "lint": [w.to_dict() for w in self.lint],
            "ab_dir": self.ab_dir,
            "durations": self.durations,
        }


def checks_of(comparison: Comparison) -> Checks:
    """Pass/fail counts of the patched side's check steps, and the new failures."""
    passed = failed = 0
    for run in comparison.cand_runs:
        for step in run.steps:
            if step.kind == "check":
                passed += step.status in (StepStatus.PASS, StepStatus.XFAIL)
                failed += step.failed
    new = tuple(s.step_id for s in comparison.statuses if s.verdict in ("regression", "missing"))
    return Checks(passed, failed, new)


def suite_of(comparison: Comparison) -> SuiteTests:
    """The suite tests the patched side ran, and how they changed against unpatched."""
    ran = {s.id for r in comparison.cand_runs for s in r.steps if s.kind == "suite"}
    suite = [s for s in comparison.statuses if s.kind == "suite"]
    return SuiteTests(
        len(ran),
        tuple(s.step_id for s in suite if s.verdict == "regression"),
        tuple(s.step_id for s in suite if s.verdict == "fixed"),
    )


def perf_of(comparison: Comparison) -> Perf:
    verdicts = {m.verdict for m in comparison.metrics}
    regressions = tuple(m.name for m in comparison.metrics if m.verdict == REGRESSION)
    improvements = tuple(m.name for m in comparison.improvements)
    inconclusive = tuple(m.name for m in comparison.inconclusive)
    if regressions:
        verdict = REGRESSION
    elif inconclusive:
        verdict = "inconclusive"
    elif improvements:
        verdict = "improvement"
    elif verdicts and verdicts <= {"insufficient", "undirected", "descriptive"}:
        verdict = "insufficient"
    else:
        verdict = OK if verdicts else SKIPPED
    return Perf(verdict, regressions, improvements, inconclusive)


def _peak(runs: tuple[RunResult, ...], metric: str) -> float | None:
    values = [
        float(v)
        for run in runs
        for step in run.steps
        for v in (step.metrics.get(metric), step.details.get(metric))
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    return max(values) if values else None


def watch_of(comparison: Comparison, metric: str) -> Watch:
    peak = _peak(comparison.cand_runs, metric)
    base_peak = _peak(comparison.base_runs, metric)
    return Watch(metric, peak is not None, peak, base_peak is not None)


def splats_of(runs: tuple[RunResult, ...]) -> tuple[str, ...]:
    found = [s for r in runs for s in (*r.splats, *(x for st in r.steps for x in st.splats))]
    return tuple(dict.fromkeys(f"{s.kind}: {s.title}" for s in found))


def boot_of(runs: tuple[RunResult, ...]) -> str:
    """failed when a patched run never reached the agent (no step ran, and it stopped)."""
    return FAILED if any(not r.steps and r.stop_reason != "done" for r in runs) else OK


def verdict_of(comparison: Comparison) -> tuple[str, str]:
    """The base's verdict from its A/B: a regression of the series, or pass, or infra."""
    bad = comparison.regressions
    patched = worst(classify(r) for r in comparison.cand_runs)
    if any(getattr(b, "step_id", "") == SPLAT_STEP for b in bad):
        return KERNEL_FAILURE, patched.summary or "new kernel splats with the series"
    status_bad = [b for b in bad if not hasattr(b, "metric")]
    if status_bad:
        names = ", ".join(b.step_id for b in status_bad[:3])
        return TEST_FAILURE, f"fails with the series, passes without: {names}"
    if bad:
        return REGRESSION, f"{len(bad)} metric regression(s): {bad[0].name}"
    if comparison.infra_errors or not patched.judged:
        return INFRA_ERROR, (comparison.infra_errors or (patched.summary,))[0]
    return PASS, "applies, builds, boots; no regression against the unpatched base"
