"""Base vs candidate: per metric and per check verdicts over repetitions.

Works the same for an A/A control (the same kernel on both sides): sides are labelled
"base" and "candidate", never told apart by kernel spec. Runs that hit an infrastructure
error add no metrics or statuses; they are listed so the verdict can say it is incomplete.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.errors import UserError
from harness.results import stats
from harness.results.envguard import (  # noqa: F401 - compare's own API too
    GUARDED_FIELDS,
    EnvDiff,
    environment_diffs,
    guard_environment,
)
from harness.results.equivalence import MetricVerdict, no_change
from harness.results.metrics import (
    DESCRIPTIVE,
    PRIMARY,
    SECONDARY,
    beyond_minimum,
    is_time_figure,
    is_worse,
    metric_spec,
    primary_metrics,
)
from harness.results.model import RunResult, StepStatus

log = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.05
# Environment fields (plus the topology) that must match for numbers to be comparable.
SPLAT_STEP = "kernel/splats"
NOT_REACHED = "not-reached"  # a step after a kernel failure stopped the run
_OK = ("pass", "xfail")


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one step, judged (MetricVerdict). p_value is the effect's test
    (paired t over interleaved pairs, else Welch); q_value its Benjamini-Hochberg
    adjustment within the metric's family. An inconclusive metric carries the margin its
    interval reached past (the minimum change on the effect's scale: percent, or the
    metric's unit) and the repetitions per side that would resolve it (None: over
    equivalence.MAX_REPS, or not to be told)."""

    step_id: str
    metric: str
    better: str | None
    min_change_pct: float
    base_values: tuple[float, ...]
    cand_values: tuple[float, ...]
    base: stats.Summary | None
    cand: stats.Summary | None
    change_pct: float | None
    p_value: float | None
    q_value: float | None
    verdict: str  # a MetricVerdict
    family: str = ""  # primary | secondary | descriptive (metrics.DESCRIPTIVE) | "" (undirected)
    effect: stats.Effect | None = None  # candidate vs base with its interval
    margin: float | None = None  # the minimum change on the effect's scale (judged metrics)
    reps_to_resolve: int | None = None  # inconclusive only

    @property
    def name(self) -> str:
        return f"{self.step_id}:{self.metric}"


@dataclass(frozen=True)
class StatusComparison:
    """One check (or a fio step's status, or the kernel splat scan) across repetitions.

    verdict: pass, regression (fails only on candidate), pre-existing (fails on both),
    fixed (fails only on base), skipped, missing (never ran on the candidate), or
    not-reached (the candidate's kernel failed in an earlier step and stopped the run).
    """

    step_id: str
    kind: str
    base_statuses: tuple[str, ...]
    cand_statuses: tuple[str, ...]
    verdict: str
    message: str = ""


@dataclass(frozen=True)
class Comparison:
    """Everything a report needs: the runs, the verdicts and how they were reached."""

    base_label: str
    cand_label: str
    base_runs: tuple[RunResult, ...]
    cand_runs: tuple[RunResult, ...]
    metrics: tuple[MetricComparison, ...]
    statuses: tuple[StatusComparison, ...]
    env_diffs: tuple[EnvDiff, ...] = ()
    alpha: float = DEFAULT_ALPHA

    @property
    def valid(self) -> bool:
        """False when forced past the environment guard: the numbers are not comparable."""
        return not self.env_diffs

    @property
    def infra_errors(self) -> tuple[str, ...]:
        return tuple(
            f"{side} rep {r.repetition}: {could_not_tell(r)}"
            for side, runs in (("base", self.base_runs), ("candidate", self.cand_runs))
            for r in runs
            if could_not_tell(r)
        )

    @property
    def regressions(self) -> tuple[MetricComparison | StatusComparison, ...]:
        bad_m = tuple(m for m in self.metrics if m.verdict == "regression")
        bad_s = tuple(s for s in self.statuses if s.verdict in ("regression", "missing"))
        return bad_m + bad_s

    @property
    def improvements(self) -> tuple[MetricComparison, ...]:
        return tuple(m for m in self.metrics if m.verdict == "improvement")

    @property
    def inconclusive(self) -> tuple[MetricComparison, ...]:
        """Primary metrics whose interval reaches past their minimum change: neither
        unchanged nor a change."""
        found = (m for m in self.metrics if m.family == PRIMARY)
        return tuple(m for m in found if m.verdict == MetricVerdict.INCONCLUSIVE)

    @property
    def verdict(self) -> str:
        """regression; incomplete (infra errors, no regression seen); inconclusive (a
        primary metric neither unchanged nor changed, no regression seen); or ok."""
        if self.regressions:
            return "regression"
        if self.infra_errors:
            return "incomplete"
        return "inconclusive" if self.inconclusive else "ok"


def could_not_tell(run: RunResult) -> str:
    """Why a run says nothing about its kernel, or '': an infrastructure stop, or an
    emulator artefact its retry did not shake off (the failed steps are the emulator's).
    A run a kernel oops or hang stopped has neither (harness.run.executor): its finished
    steps count and the step it hit is a failure."""
    if run.infra_error:
        return run.infra_error
    if _spoiled(run):
        why = str(run.verdict.get("summary") or "emulator artefact")
        return f"{why} (its other clean steps count)" if _contained(run) else why
    return ""


def _spoiled(run: RunResult) -> bool:
    return run.verdict.get("class") == "emulator-artefact" and not run.passed


def _contained(run: RunResult) -> bool:
    """harness.verdict found the run's splats all a contained artefact's (an emulator
    artefact, or a test failure beside one): those steps are the emulator's."""
    return bool(run.verdict.get("contained"))


def _clean_steps(run: RunResult) -> RunResult:
    """The run without the steps that showed a splat (the artefact's)."""
    return dataclasses.replace(run, steps=tuple(s for s in run.steps if not s.splats))


def _usable(runs: Sequence[RunResult]) -> list[RunResult]:
    """Runs that say something about their kernel (see could_not_tell); of a run an artefact
    spoiled only where it hit (harness.verdict.CONTAINED_ARTEFACTS: a lost NVMe submission
    under round-robin TCG, ~15% of cost-mode boots), its clean steps: in a 3-rep A/B such a
    run would otherwise cost every row, loop-over-tmpfs ones included, one of its 3 pairs."""
    usable = []
    for run in runs:
        if run.infra_error:
            continue
        if _contained(run):
            run = _clean_steps(run)
        elif _spoiled(run):
            continue
        usable.append(run)
    return usable


def _step_ids(base: Sequence[RunResult], cand: Sequence[RunResult]) -> list[str]:
    seen: dict[str, None] = {}
    for run in (*base, *cand):
        for step in run.steps:
            seen.setdefault(step.id, None)
    return list(seen)


def _keyed_values(
    runs: Sequence[RunResult], step_id: str, metric: str
) -> dict[tuple[int, int], float]:
    """{(repetition, occurrence): value}: the k-th run of repetition r on one side pairs
    with the k-th run of repetition r on the other (pooled results files repeat r)."""
    out: dict[tuple[int, int], float] = {}
    seen: dict[int, int] = {}
    for run in runs:
        for step in run.steps:
            if step.id == step_id and step.status in _OK and metric in step.metrics:
                value = step.metrics[metric]
                if value is not None:
                    k = seen.get(run.repetition, 0)
                    seen[run.repetition] = k + 1
                    out[(run.repetition, k)] = float(value)
    return out


def _metric_names(runs: Sequence[RunResult], step_id: str) -> list[str]:
    seen: dict[str, None] = {}
    for run in runs:
        for step in run.steps:
            if step.id == step_id:
                for name in step.metrics:
                    seen.setdefault(name, None)
    return list(seen)


def _raw_metric(
    step_id: str,
    metric: str,
    b: dict[tuple[int, int], float],
    c: dict[tuple[int, int], float],
    family: str,
) -> MetricComparison:
    """A MetricComparison before multiple-testing adjustment (q_value and verdict unset)."""
    spec = metric_spec(metric)
    bv, cv = tuple(b.values()), tuple(c.values())
    bs = stats.summarize(bv) if bv else None
    cs = stats.summarize(cv) if cv else None
    change = stats.pct_change(bs.mean, cs.mean) if bs and cs else None
    pairs = [(b[k], c[k]) for k in b if k in c]
    eff = stats.effect(bv, cv, pairs)
    return MetricComparison(
        step_id=step_id,
        metric=metric,
        better=spec.better,
        min_change_pct=spec.min_change_pct,
        base_values=bv,
        cand_values=cv,
        base=bs,
        cand=cs,
        change_pct=change,
        p_value=eff.p_value if eff else None,
        q_value=None,
        verdict="",
        family=family if spec.better is not None else "",
        effect=eff,
    )


def _waits_on_device(runs: Sequence[RunResult], step_id: str) -> bool:
    """Whether the agent said the row's I/O waits on an emulated disk (older results do not
    say: then it is judged as before)."""
    return any(
        s.details.get("waits_on_device") is True for r in runs for s in r.steps if s.id == step_id
    )


def _judge(m: MetricComparison, q: float | None, alpha: float) -> MetricComparison:
    spec, m = metric_spec(m.metric), dataclasses.replace(m, q_value=q)
    if m.base is None or m.cand is None or m.base.n < 2 or m.cand.n < 2:
        return dataclasses.replace(m, verdict=MetricVerdict.INSUFFICIENT)
    if spec.better is None:
        return dataclasses.replace(m, verdict=MetricVerdict.UNDIRECTED)
    if m.family == DESCRIPTIVE:
        return dataclasses.replace(m, verdict=MetricVerdict.DESCRIPTIVE)
    if q is not None and q < alpha and beyond_minimum(spec, m.base.mean, m.cand.mean):
        worse = is_worse(spec, m.base.mean, m.cand.mean)
        return dataclasses.replace(
            m, verdict=MetricVerdict.REGRESSION if worse else MetricVerdict.IMPROVEMENT
        )
    verdict, bound, reps = no_change(spec, m.effect, m.base.mean)  # unchanged or inconclusive
    return dataclasses.replace(m, verdict=verdict, margin=bound, reps_to_resolve=reps)


def compare_metrics(
    base: Sequence[RunResult], cand: Sequence[RunResult], *, alpha: float = DEFAULT_ALPHA
) -> tuple[MetricComparison, ...]:
    """Every (step, metric) seen on either side, judged by paired tests with BH-adjusted
    p-values, primary and secondary metrics adjusted as separate families."""
    raw = []
    cost = any(r.environment.measure == "cost" for r in (*base, *cand))
    for step_id in _step_ids(base, cand):
        names = _metric_names((*base, *cand), step_id)
        primary = primary_metrics(names, "cost" if cost else "wall")
        descriptive = cost and _waits_on_device((*base, *cand), step_id)
        for metric in names:
            b = _keyed_values(base, step_id, metric)
            c = _keyed_values(cand, step_id, metric)
            family = PRIMARY if metric in primary else SECONDARY
            family = DESCRIPTIVE if descriptive and is_time_figure(metric) else family
            raw.append(_raw_metric(step_id, metric, b, c, family))
    qs: list[float | None] = [None] * len(raw)
    for family in (PRIMARY, SECONDARY):
        # Only metrics that can be flagged enter the false-discovery adjustment.
        idx = [i for i, m in enumerate(raw) if m.family == family]
        for i, q in zip(idx, stats.benjamini_hochberg([raw[i].p_value for i in idx]), strict=True):
            qs[i] = q
    return tuple(_judge(m, q, alpha) for m, q in zip(raw, qs, strict=True))


def _status_verdict(b: tuple[str, ...], c: tuple[str, ...]) -> tuple[str, str]:
    def failed(statuses: tuple[str, ...]) -> int:
        return sum(s in ("fail", "error") for s in statuses)

    fb, fc = failed(b), failed(c)
    if not c and b:
        return "missing", "ran on base but never on the candidate"
    if NOT_REACHED in c and not fc:
        # A step after the candidate's kernel failure: that failure is the regression.
        return NOT_REACHED, f"not reached on the candidate in {c.count(NOT_REACHED)}/{len(c)} reps"
    if fc and not fb:
        return "regression", f"fails on candidate in {fc}/{len(c)} reps, passes on base"
    if fc and fb:
        return "pre-existing", f"fails on base ({fb}/{len(b)}) and candidate ({fc}/{len(c)})"
    if fb:
        return "fixed", f"fails on base in {fb}/{len(b)} reps, passes on candidate"
    if all(s == "skip" for s in (*b, *c)):
        return "skipped", "skipped on both sides"
    return "pass", ""


def _statuses(runs: Sequence[RunResult], step_id: str) -> tuple[tuple[str, ...], str]:
    statuses, messages = [], []
    for run in runs:
        for step in run.steps:
            if step.id == step_id:
                reached = step.status != StepStatus.SKIP or "not_reached" not in step.details
                statuses.append(step.status if reached else NOT_REACHED)
                if (step.failed or not reached) and step.message:
                    messages.append(step.message)
    return tuple(statuses), messages[0] if messages else ""


def _splat_statuses(runs: Sequence[RunResult]) -> tuple[tuple[str, ...], list[str]]:
    statuses, titles = [], []
    for run in runs:
        splats = [*run.splats, *(s for step in run.steps for s in step.splats)]
        statuses.append("fail" if splats else "pass")
        titles += [f"{s.kind}: {s.title}" for s in splats]
    return tuple(statuses), titles


def compare_statuses(
    base: Sequence[RunResult], cand: Sequence[RunResult]
) -> tuple[StatusComparison, ...]:
    """Each check, and each fio step whose status is not clean, across repetitions."""
    out = []
    kinds = {s.id: s.kind for r in (*base, *cand) for s in r.steps}
    for step_id in _step_ids(base, cand):
        b, _ = _statuses(base, step_id)
        c, cand_msg = _statuses(cand, step_id)
        verdict, why = _status_verdict(b, c)
        if kinds[step_id] != "check" and verdict == "pass":
            continue  # a fio step's numbers are the metric verdicts; its status adds nothing
        message = f"{why}: {cand_msg}" if cand_msg and verdict != "pass" else why
        out.append(StatusComparison(step_id, kinds[step_id], b, c, verdict, message))
    return tuple(out)


def compare_splats(base: Sequence[RunResult], cand: Sequence[RunResult]) -> StatusComparison:
    """The console splat scan as a check: a run with any splat counts as failed.

    Takes all runs, including those with an infra error, because a panic may be both;
    not those an emulator artefact spoiled or whose splats are all a contained artefact's
    (they are the emulator's).
    """
    b, base_titles = _splat_statuses([r for r in base if not (_spoiled(r) or _contained(r))])
    c, cand_titles = _splat_statuses([r for r in cand if not (_spoiled(r) or _contained(r))])
    verdict, why = _status_verdict(b, c)
    titles = [f"candidate {t}" for t in cand_titles] + [f"base {t}" for t in base_titles]
    message = "; ".join([why, *dict.fromkeys(titles)]) if titles else why
    return StatusComparison(SPLAT_STEP, "splats", b, c, verdict, message)


def compare(
    base_runs: Sequence[RunResult],
    cand_runs: Sequence[RunResult],
    *,
    allow_env_diff: Iterable[str] = (),
    alpha: float = DEFAULT_ALPHA,
    base_label: str | None = None,
    cand_label: str | None = None,
) -> Comparison:
    """Compare two sides' repetitions; raise UserError on an environment difference not allowed.

    Runs with an infra_error are kept (listed in the report) but add no numbers or statuses.
    """
    if not base_runs or not cand_runs:
        raise UserError("a comparison needs at least one run on each side: check the results")
    # A run that never booted has an empty environment; judge the runs that did.
    diffs = environment_diffs(_usable(base_runs) or base_runs, _usable(cand_runs) or cand_runs)
    guard_environment(diffs, allow_env_diff)
    if diffs:
        log.warning("comparing across %s: marked invalid", ", ".join(d.field for d in diffs))
    base, cand = _usable(base_runs), _usable(cand_runs)
    return Comparison(
        base_label=base_label or base_runs[0].kernel.spec,
        cand_label=cand_label or cand_runs[0].kernel.spec,
        base_runs=tuple(base_runs),
        cand_runs=tuple(cand_runs),
        metrics=compare_metrics(base, cand, alpha=alpha),
        statuses=(*compare_statuses(base, cand), compare_splats(base_runs, cand_runs)),
        env_diffs=diffs,
        alpha=alpha,
    )
