"""`harness bisect`: find the first bad commit (git) or kernel (list) for a --test.

Flow: check the endpoints first (good must be good, bad must be bad: ktest's BISECT_CHECK),
then let the search space (bisect_git.GitSpace or bisect_list.ListSpace) pick each next
item until it names the first bad one. Every step resolves its kernel (a build failure or
a series that does not apply is a skip with its log, like ktest's BISECT_SKIP), runs the
plan N times and judges each run (bisect_test): an infrastructure failure is retried once,
then the step is skipped; a kernel failure that is not the symptom is a skip too. A step is
bad when the symptom shows in at least k of its N runs. The state file is written after
every step, so an interrupted bisection resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness.errors import InfraError
from harness.kernel.artifacts import artifacts_root
from harness.kernel.model import Kernel
from harness.kernel.resolve import Resolution, resolve_kernel
from harness.results import store
from harness.results.model import RunResult
from harness.run.engine import executor_for
from harness.run.executor import Executor
from harness.run.request import RunRequest
from harness.verdict import classify
from harness.workflows.bisect import git as bisect_git
from harness.workflows.bisect import kernels as bisect_list
from harness.workflows.bisect.criterion import (
    BAD,
    GOOD,
    INFRA,
    OTHER,
    SKIP,
    BisectTest,
    confidence,
    judge_metric,
    judge_run,
    parse_test,
    run_suites,
    script_step_id,
)
from harness.workflows.bisect.state import (
    BAD_ENDPOINT,
    GIT,
    GOOD_ENDPOINT,
    STEP,
    BisectRequest,
    BisectState,
    RunRecord,
    StepRecord,
    save_state,
)

log = logging.getLogger(__name__)

FOUND, ENDPOINTS_WRONG, INCONCLUSIVE, INFRASTRUCTURE, INTERRUPTED = (
    "found",
    "endpoints-wrong",
    "inconclusive",
    "infrastructure",
    "interrupted",
)


class Runner(Protocol):
    """How a step gets its kernel and its runs (production: EngineRunner)."""

    def resolve_kernel(self, spec: str) -> Resolution: ...

    def run(self, req: RunRequest, kernel: Kernel) -> RunResult: ...


class EngineRunner:
    """resolve_kernel + the run engine; a script test runs in the ScriptExecutor."""

    def __init__(self, test: BisectTest, remote: Executor | None = None) -> None:
        self.test = test
        self.remote = remote  # the --host pool (None: this machine)

    def resolve_kernel(self, spec: str) -> Resolution:
        return resolve_kernel(spec)

    def run(self, req: RunRequest, kernel: Kernel) -> RunResult:
        if self.test.kind == "script":
            from harness.workflows.bisect.script import ScriptExecutor

            assert self.test.script is not None
            return ScriptExecutor(self.test.script, script_step_id(self.test)).run(req, kernel)
        return executor_for(kernel, self.remote).run(req, kernel)


@dataclass(frozen=True)
class BisectResult:
    status: str  # found | endpoints-wrong | inconclusive | infrastructure | interrupted
    message: str
    first_bad: str | None = None
    first_bad_label: str = ""
    candidates: tuple[str, ...] = ()
    last_good: str | None = None

    def to_dict(self) -> dict[str, object]:
        data = dataclasses.asdict(self)
        data["candidates"] = list(self.candidates)
        return data


@dataclass
class Context:
    req: BisectRequest
    test: BisectTest
    runner: Runner
    progress: Callable[[str], None]
    baseline: list[float] = dataclasses.field(default_factory=list)  # metric: good endpoint
    endpoint_rate: float | None = None  # symptom rate at the bad endpoint


def _boot_s(run: RunResult) -> float:
    return next((s.duration_s for s in run.steps if s.id == "boot"), 0.0)


def _attempt(ctx: Context, kernel: Kernel, step_dir: Path, rep: int) -> list[RunRecord]:
    """Run repetition `rep`, retried once after an infrastructure failure."""
    records: list[RunRecord] = []
    for attempt in (0, 1):
        out = step_dir / f"run{rep}" if attempt == 0 else step_dir / f"run{rep}-retry"
        req = RunRequest(
            kernel=kernel.spec,
            out_dir=out,
            topology=ctx.req.topology,
            plan=ctx.req.plan,
            accel=ctx.req.accel,
            repetition=rep,
            append=ctx.req.append,
            runtime_s=ctx.req.runtime_s,
            guest_root=ctx.req.guest_root,
            suites=run_suites(ctx.test),
        )
        try:
            run = ctx.runner.run(req, kernel)
        except InfraError as exc:
            records.append(RunRecord(str(out), attempt, INFRA, f"infrastructure: {exc}"))
        else:
            store.save_runs(out / "results.json", [run])
            judged = judge_run(ctx.test, run, ctx.req.crash_is_skip)
            records.append(
                RunRecord(
                    str(out),
                    attempt,
                    judged.outcome,
                    judged.reason,
                    classify(run).cls,
                    judged.value,
                    round(run.duration_s, 1),
                    round(_boot_s(run), 1),
                )
            )
        if records[-1].outcome != INFRA:
            break
        ctx.progress(f"  run {rep}: {records[-1].reason}; retrying once")
    return records


def _judge_runs(ctx: Context, kernel: Kernel, step_dir: Path, role: str) -> dict[str, object]:
    """Run up to N repetitions; the fields of the StepRecord they add up to."""
    runs: list[RunRecord] = []
    bad = 0
    n, k = ctx.req.runs, ctx.req.bad_if
    for rep in range(n):
        runs += _attempt(ctx, kernel, step_dir, rep)
        last = runs[-1]
        if last.outcome in (INFRA, OTHER, SKIP):
            why = {
                INFRA: "infrastructure failed twice",
                OTHER: "an unrelated kernel failure",
                SKIP: "the suite did not run the test"
                if ctx.test.kind == "suite"
                else "the test script said skip (125)",
            }[last.outcome]
            return {"outcome": SKIP, "reason": f"{why}: {last.reason}", "runs": tuple(runs)}
        bad += last.outcome == BAD
        judged = rep + 1
        if ctx.test.kind != "metric" and (bad >= k or bad + (n - judged) < k):
            break
    fields: dict[str, object] = {"runs": tuple(runs), "bad_runs": bad, "judged_runs": judged}
    if ctx.test.kind == "metric":
        return {**fields, **_metric_fields(ctx, runs, role)}
    outcome = BAD if bad >= k else GOOD
    reason = next((r.reason for r in runs if r.outcome == outcome), runs[-1].reason)
    rate = ctx.endpoint_rate if outcome == GOOD else None
    return {
        **fields,
        "outcome": outcome,
        "reason": reason,
        "confidence": confidence(bad, judged, rate) + f" (bad if >= {k} of {n})",
    }


def _metric_fields(ctx: Context, runs: list[RunRecord], role: str) -> dict[str, object]:
    values = [r.value for r in runs if r.value is not None]
    if role == GOOD_ENDPOINT:
        return {
            "outcome": GOOD,
            "reason": f"baseline of {len(values)} run(s)",
            "confidence": f"{len(values)} run(s) as the baseline",
        }
    verdict = judge_metric(ctx.test, ctx.baseline, values)
    backing = f"{len(values)} run(s) vs {len(ctx.baseline)} good-endpoint run(s)"
    return {"outcome": verdict.outcome, "reason": verdict.reason, "confidence": backing}


def test_item(ctx: Context, role: str, item: str, label: str, spec: str, index: int) -> StepRecord:
    """Resolve, run and judge one commit or kernel."""
    ctx.progress(f"[{index}] {role} {label}: resolving {spec}")
    resolution = ctx.runner.resolve_kernel(spec)
    base = {
        "role": role,
        "item": item,
        "label": label,
        "kernel": spec,
        "resolution": resolution.status,
        "build_s": round(resolution.duration_s, 1),
        "build_log": resolution.log_path,
    }
    if resolution.kernel is None:
        ctx.progress(f"[{index}] {label}: SKIP ({resolution.status}, log: {resolution.log_path})")
        return StepRecord(**base, outcome=SKIP, reason=f"{resolution.status}: {resolution.message}")
    if resolution.log_path is None and resolution.kernel.provenance.get("cache_key"):
        base["build_log"] = str(
            artifacts_root() / resolution.kernel.provenance["cache_key"] / "build.log"
        )
    step_dir = ctx.req.out_dir / "steps" / f"{index:02d}-{_slug(label)}"
    record = StepRecord(**base, **_judge_runs(ctx, resolution.kernel, step_dir, role))  # type: ignore[arg-type]
    ctx.progress(f"[{index}] {label}: {record.outcome.upper()} ({record.reason})")
    return record


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in label)[:40].strip("_") or "step"


Space = bisect_git.GitSpace | bisect_list.ListSpace


def plan_space(req: BisectRequest) -> tuple[Space, str, str, Callable[[str], str]]:
    """The search space, its good and bad items, and the kernel spec of an item."""
    if req.mode == GIT:
        good, bad = bisect_git.endpoints(req.good, req.bad)
        space = bisect_git.GitSpace(good.repo, good.commit, bad.commit, req.out_dir / "git-bisect")
        return (
            space,
            good.commit,
            bad.commit,
            lambda c: bisect_git.step_spec(good.repo, c, good.options),
        )
    return bisect_list.ListSpace(req.kernels), req.kernels[0], req.kernels[-1], lambda s: s


def endpoint_problem(rec: StepRecord, expected: str) -> BisectResult | None:
    """None when the endpoint is what it should be, else why the bisection cannot start."""
    if rec.outcome == expected:
        return None
    which = "good" if expected == GOOD else "bad"
    if rec.resolution != "ok":
        return BisectResult(
            ENDPOINTS_WRONG,
            f"the {which} endpoint {rec.label} could not be "
            f"tested: {rec.reason} (log: {rec.build_log})",
        )
    if rec.outcome == SKIP and rec.runs and rec.runs[-1].outcome == INFRA:
        return BisectResult(INFRASTRUCTURE, f"the {which} endpoint {rec.label}: {rec.reason}")
    if rec.outcome == SKIP:
        return BisectResult(ENDPOINTS_WRONG, f"the {which} endpoint {rec.label}: {rec.reason}")
    return BisectResult(
        ENDPOINTS_WRONG,
        f"the {which} endpoint {rec.label} is {rec.outcome}, "
        f"not {which}: {rec.reason} ({rec.confidence})",
    )


def _result(space: Space, state: BisectState) -> BisectResult:
    found = space.result()
    if found.first_bad is not None:
        label = space.label(found.first_bad)
        tested = len(state.tested())
        return BisectResult(
            FOUND,
            f"first bad: {label} (after {tested} step(s))",
            found.first_bad,
            label,
            found.candidates,
            found.last_good,
        )
    labels = ", ".join(space.label(c) for c in found.candidates)
    return BisectResult(
        INCONCLUSIVE,
        f"only skipped steps left: the first bad is one of {labels}",
        None,
        "",
        found.candidates,
        found.last_good,
    )


class _Bisection:
    """One call's worth of bisecting: the state so far, the space, the step budget."""

    def __init__(self, ctx: Context, state: BisectState, budget: int | None) -> None:
        self.ctx, self.state, self.budget = ctx, state, budget
        self.space, self.good, self.bad, self.spec_for = plan_space(ctx.req)

    def test(self, role: str, item: str) -> StepRecord | None:
        """Test one item and save the state; None when the budget is used up."""
        if self.budget is not None:
            if self.budget <= 0:
                return None
            self.budget -= 1
        label = self.space.label(item)
        rec = test_item(self.ctx, role, item, label, self.spec_for(item), len(self.state.steps))
        self.state = self.state.with_step(rec)
        save_state(self.state)
        return rec

    def check_endpoints(self) -> BisectResult | None:
        for role, item, expected in (
            (GOOD_ENDPOINT, self.good, GOOD),
            (BAD_ENDPOINT, self.bad, BAD),
        ):
            rec = self.state.endpoint(role) or self.test(role, item)
            if rec is None:
                return BisectResult(INTERRUPTED, "step budget used up")
            if role == GOOD_ENDPOINT:
                self.ctx.baseline = rec.values
            problem = endpoint_problem(rec, expected)
            if problem is not None:
                return problem
            if role == BAD_ENDPOINT and rec.judged_runs:
                self.ctx.endpoint_rate = rec.bad_runs / rec.judged_runs
        return None

    def search(self) -> BisectResult:
        if isinstance(self.space, bisect_git.GitSpace):
            self.space.open()
        for rec in self.state.tested():  # replay what an earlier (interrupted) call found
            self.space.mark(rec.item, rec.outcome)
        while (item := self.space.next()) is not None:
            rec = self.test(STEP, item)
            if rec is None:
                return BisectResult(INTERRUPTED, "step budget used up")
            self.space.mark(item, rec.outcome)
        result = _result(self.space, self.state)
        self.space.close()
        return result


def run_bisect(
    req: BisectRequest,
    runner: Runner | None = None,
    *,
    state: BisectState | None = None,
    max_steps: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[BisectState, BisectResult]:
    """Bisect (or continue `state`); test at most max_steps items in this call (then the
    result is `interrupted` and the state file resumes it). Writes state and reports."""
    test = parse_test(req.test)
    ctx = Context(req, test, runner or EngineRunner(test), progress or log.info)
    req.out_dir.mkdir(parents=True, exist_ok=True)
    bisection = _Bisection(ctx, state or BisectState(req), max_steps)
    result = bisection.check_endpoints() or bisection.search()
    if result.status == INTERRUPTED:
        save_state(bisection.state)
        return bisection.state, result
    return finish(bisection.state, result)


def finish(state: BisectState, result: BisectResult) -> tuple[BisectState, BisectResult]:
    """Record the result in the state file and write bisect.json, bisect.md, junit.xml."""
    from harness.workflows.bisect import report as bisect_report

    state = dataclasses.replace(state, result=result.to_dict())
    save_state(state)
    bisect_report.write_reports(document(state), state.request.out_dir)
    return state, result


def document(state: BisectState) -> dict[str, object]:
    """bisect.json: the request, the result (first_bad at the top) and every step."""
    result = state.result
    return {
        "first_bad": result.get("first_bad"),
        "status": result.get("status"),
        "message": result.get("message"),
        "first_bad_label": result.get("first_bad_label"),
        "candidates": result.get("candidates", []),
        "last_good": result.get("last_good"),
        "request": state.request.to_dict(),
        "steps": [s.to_dict() for s in state.steps],
    }
