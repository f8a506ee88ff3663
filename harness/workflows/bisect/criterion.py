"""What "bad" means in a bisection (`--test`), and judging one run or one step by it.

    check:NAME@TARGET   the step check/NAME/TARGET fails (NAME may also be a full step id,
                        e.g. check:fio/loop-dio-on-xfs/randread-4k; @TARGET optional)
    check:any           any step of the plan fails
    splat:KIND          a console splat of that kind (warning, oops, bug, panic, ...)
    splat:any           any console splat
    metric:STEP:METRIC:-10%   METRIC of STEP moves by at least 10% down (+10%: up) against
                        the good endpoint's runs, significant by Welch's test (as `harness ab`)
    script:PATH         PATH runs in the guest: exit 0 good, 125 skip, 1-127 bad (git's rules)
    suite:SUITE:PATH@GROUP/NNN[:KEY=VALUE...]   that one peer suite test (harness run's
                        --suite text, e.g. suite:blktests:~/src/blktests@loop/002) fails;
                        the suite not running it (its "not run" reason) is a skip

A run is judged one of: bad (the symptom), good, skip (the script said 125), other (the
kernel failed, but not with the symptom: an unrelated crash must not steer the bisection),
infra (the run could not tell: retried once, then the step is skipped).

A kernel failure (oops, BUG, panic, hang, ...) inside the step under test (check:, script:
and suite: tests) is bad: the kernel broke while doing what the test does, as a BUG in the
tested script or check is what a developer bisects for. One in another step, or at boot,
stays "other". `crash_is_skip` (bisect --crash-is-skip) turns the first rule off, for when
the crash is a known separate bug and only the step's own result should count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError
from harness.results.model import RunResult, StepResult, StepStatus
from harness.results.stats import pct_change, welch_p
from harness.suite.peer import parse_suite, suite_text
from harness.verdict import EMULATOR_ARTEFACT, INFRA_ERROR, KERNEL_FAILURE, Verdict, classify
from harness.workflows.bisect.outcome import BAD, GOOD, INFRA, OTHER, SKIP

TEST_FORMS = (
    "check:NAME[@TARGET] | check:any | splat:KIND | splat:any | "
    "metric:STEP:METRIC:-10% | script:PATH | suite:SUITE:PATH@GROUP/NNN"
)
DEFAULT_ALPHA = 0.05
# The kinds whose symptom is one step's result: a kernel failure inside that step is bad
STEP_KINDS = ("check", "script", "suite")
_PCT = re.compile(r"^([+-])(\d+(?:\.\d+)?)%$")


@dataclass(frozen=True)
class BisectTest:
    """A parsed --test."""

    text: str
    kind: str  # check | splat | metric | script | suite
    name: str = ""  # check name or step id ("any": every step); splat kind ("any");
    # suite: the test's step id (blktests/loop/002)
    target: str = ""  # check target
    step: str = ""  # metric step id
    metric: str = ""
    threshold_pct: float = 0.0  # signed: -10 means "down by at least 10%"
    script: Path | None = None
    suite: str = ""  # suite: the --suite text that runs only that test, paths absolute

    def matches(self, step_id: str) -> bool:
        """Whether a check test's symptom is this step failing."""
        if self.name == "any":
            return step_id != "boot"
        if self.target:
            return step_id == f"check/{self.name}/{self.target}"
        return step_id == self.name or step_id.startswith(f"check/{self.name}/")


@dataclass(frozen=True)
class RunJudgement:
    """One run judged by a test: outcome, why, and the metric value (metric tests)."""

    outcome: str  # bad | good | skip | other | infra
    reason: str
    value: float | None = None


def parse_test(text: str) -> BisectTest:
    """Parse a --test string; UserError with the accepted forms on anything else."""
    kind, colon, body = text.partition(":")
    if not colon or not body:
        raise UserError(f"--test {text!r}: use one of {TEST_FORMS}")
    if kind == "check":
        name, _, target = body.partition("@")
        if not name:
            raise UserError(f"--test {text!r}: name the check, e.g. check:sparse@loop-dio-on-xfs")
        return BisectTest(text, "check", name=name, target=target)
    if kind == "splat":
        return BisectTest(text, "splat", name=body)
    if kind == "metric":
        return _parse_metric(text, body)
    if kind == "script":
        path = Path(body).expanduser().resolve()
        if not path.is_file():
            raise UserError(f"--test {text!r}: {path} is not a file; give the guest script's path")
        return BisectTest(text, "script", name=path.stem, script=path)
    if kind == "suite":
        return _parse_suite(text, body)
    raise UserError(f"--test {text!r}: unknown kind {kind!r}; use one of {TEST_FORMS}")


def _parse_metric(text: str, body: str) -> BisectTest:
    parts = body.rsplit(":", 2)
    match = _PCT.match(parts[-1]) if len(parts) == 3 else None
    if not match or not parts[0] or not parts[1]:
        raise UserError(
            f"--test {text!r}: use metric:STEP:METRIC:-10% "
            "(e.g. metric:fio/loop-dio-on-xfs/randwrite-4k:write_iops:-10%)"
        )
    pct = float(match.group(2)) * (-1 if match.group(1) == "-" else 1)
    if pct == 0:
        raise UserError(f"--test {text!r}: the threshold must not be 0%")
    return BisectTest(text, "metric", step=parts[0], metric=parts[1], threshold_pct=pct)


def _parse_suite(text: str, body: str) -> BisectTest:
    try:
        spec = parse_suite(body)
    except UserError as exc:
        raise UserError(f"--test {text!r}: {exc}") from None
    if len(spec.selection) != 1 or "/" not in spec.selection[0]:
        raise UserError(
            f"--test {text!r}: name one suite test, not a group or a list "
            "(e.g. suite:blktests:PATH@loop/002)"
        )
    name = f"{spec.suite}/{spec.selection[0]}"
    return BisectTest(text, "suite", name=name, suite=suite_text(spec))


def run_suites(test: BisectTest) -> tuple[str, ...]:
    """The --suite texts a run for this test needs: a suite: test's one test, else none."""
    return (test.suite,) if test.kind == "suite" else ()


def script_step_id(test: BisectTest) -> str:
    return f"script/{test.name}"


def _splat_kinds(run: RunResult) -> list[str]:
    kinds = [s.kind for s in run.splats] + [s.kind for st in run.steps for s in st.splats]
    return kinds + (["panic"] if run.panicked and "panic" not in kinds else [])


def step_under_test(test: BisectTest) -> BisectTest:
    """The check form of a test whose symptom is a step's result (script: its own step;
    suite: the suite test's step)."""
    if test.kind == "script":
        return BisectTest(test.text, "check", script_step_id(test))
    if test.kind == "suite":
        return BisectTest(test.text, "check", test.name)
    return test


def crashed_in_tested_step(test: BisectTest, verdict: Verdict) -> bool:
    """Whether the kernel failure that decided the run happened inside the step under test."""
    if verdict.cls != KERNEL_FAILURE or not verdict.step:
        return False
    if test.kind not in STEP_KINDS:
        return False
    return verdict.step != "boot" and step_under_test(test).matches(verdict.step)


def judge_run(test: BisectTest, run: RunResult, crash_is_skip: bool = False) -> RunJudgement:
    """One run of one kernel judged by `test` (metric tests: value only, see judge_metric);
    a kernel failure inside the tested step is bad unless `crash_is_skip`."""
    verdict = classify(run)
    if verdict.cls == EMULATOR_ARTEFACT:
        return RunJudgement(INFRA, f"emulator artefact: {verdict.summary}")
    if test.kind == "splat":
        kinds = _splat_kinds(run)
        if any(test.name in ("any", kind) for kind in kinds):
            return RunJudgement(BAD, verdict.summary or f"splat: {', '.join(kinds)}")
    in_step = crashed_in_tested_step(test, verdict)
    if in_step and not crash_is_skip:
        return RunJudgement(BAD, f"kernel failure in the tested step: {verdict.summary}")
    if verdict.cls == KERNEL_FAILURE:
        where = " (in the tested step, but --crash-is-skip)" if in_step else ""
        return RunJudgement(OTHER, f"not the symptom{where}: {verdict.summary}")
    if test.kind == "suite":
        return _judge_suite(test, run, verdict.cls == INFRA_ERROR, verdict.summary)
    if verdict.cls == INFRA_ERROR and test.kind != "check":
        return RunJudgement(INFRA, verdict.summary)
    if test.kind == "splat":
        return RunJudgement(GOOD, "no matching splat")
    if test.kind == "metric":
        return _metric_value(test, run)
    return _judge_steps(step_under_test(test), run, verdict.cls == INFRA_ERROR, verdict.summary)


def _judge_steps(test: BisectTest, run: RunResult, infra: bool, summary: str) -> RunJudgement:
    matched = [s for s in run.steps if test.matches(s.id)]
    failed = [s for s in matched if s.status == StepStatus.FAIL]
    if failed:
        return RunJudgement(BAD, f"{failed[0].id} failed: {failed[0].message}")
    if infra:
        return RunJudgement(INFRA, summary)
    if not matched:
        ids = ", ".join(s.id for s in run.steps if s.id != "boot")
        raise UserError(f"--test {test.text}: no step of plan {run.plan} matches (steps: {ids})")
    settled = ("pass", "xfail", "skip") if test.name == "any" else ("pass", "xfail")
    if all(s.status in settled for s in matched):
        return RunJudgement(
            GOOD, "every step passed" if test.name == "any" else f"{matched[0].id} passed"
        )
    unclear = next(s for s in matched if s.status not in settled)
    outcome = (
        SKIP if unclear.id.startswith("script/") and unclear.status == StepStatus.SKIP else INFRA
    )
    return RunJudgement(outcome, f"{unclear.id} ended {unclear.status}: {unclear.message}")


def _judge_suite(test: BisectTest, run: RunResult, infra: bool, summary: str) -> RunJudgement:
    """Bad when the suite test failed (a known failure by its expunge list too: the symptom
    is the test failing), good when it passed, skip when the suite did not run it; an
    infrastructure error (or a test that never ended) could not tell."""
    step = next((s for s in run.steps if s.id == test.name), None)
    if step is not None and step.status in (StepStatus.FAIL, StepStatus.XFAIL):
        known = " (a known failure by its expunge list)" * (step.status == StepStatus.XFAIL)
        return RunJudgement(BAD, f"{step.id} failed{known}: {step.message}")
    if infra or step is None:
        return RunJudgement(INFRA, summary or f"{test.name} did not run")
    if step.status == StepStatus.PASS:
        return RunJudgement(GOOD, f"{step.id} passed")
    if step.status == StepStatus.SKIP:
        return RunJudgement(SKIP, f"{step.id} was not run: {step.message}")
    return RunJudgement(INFRA, f"{step.id} ended {step.status}: {step.message}")


def _metric_value(test: BisectTest, run: RunResult) -> RunJudgement:
    step: StepResult | None = next((s for s in run.steps if s.id == test.step), None)
    if step is None:
        ids = ", ".join(s.id for s in run.steps if s.id != "boot")
        raise UserError(f"--test {test.text}: plan {run.plan} has no step {test.step} ({ids})")
    if test.metric not in step.metrics:
        if step.status in (StepStatus.PASS, StepStatus.FAIL, StepStatus.XFAIL):
            raise UserError(
                f"--test {test.text}: step {test.step} reports no {test.metric} "
                f"(it has {', '.join(sorted(step.metrics)) or 'none'})"
            )
        return RunJudgement(INFRA, f"{test.step} ended {step.status}: {step.message}")
    value = float(step.metrics[test.metric])
    return RunJudgement(GOOD, f"{test.metric}={value:g}", value)


@dataclass(frozen=True)
class MetricJudgement:
    outcome: str  # bad | good
    change_pct: float | None
    p_value: float | None
    reason: str


def judge_metric(
    test: BisectTest,
    baseline: Sequence[float],
    values: Sequence[float],
    alpha: float = DEFAULT_ALPHA,
) -> MetricJudgement:
    """Bad when the mean moved past the threshold (in its direction) against the good
    endpoint's runs and Welch's test (log scale when positive) calls it significant; with a
    single run per side significance cannot be computed and the threshold alone decides."""
    base_mean = sum(baseline) / len(baseline)
    mean = sum(values) / len(values)
    change = pct_change(base_mean, mean)
    positive = min(*baseline, *values) > 0
    p = welch_p(baseline, values, log_scale=positive)
    if change is None:
        return MetricJudgement(GOOD, None, p, "good endpoint mean is 0: no percent change")
    past = change <= test.threshold_pct if test.threshold_pct < 0 else change >= test.threshold_pct
    significant = p is None or p < alpha
    outcome = BAD if past and significant else GOOD
    p_text = "n/a" if p is None else f"{p:.3g}"
    why = f"{test.metric} {change:+.1f}% vs good (threshold {test.threshold_pct:+g}%, p={p_text})"
    return MetricJudgement(outcome, change, p, why)


def confidence(bad_runs: int, runs: int, endpoint_rate: float | None) -> str:
    """How much a step's verdict rests on: runs behind it, and for a good verdict on a flaky
    symptom the chance of N clean runs on a bad kernel ((1-p)^N at the bad endpoint's rate)."""
    text = f"symptom in {bad_runs} of {runs} run(s)"
    if bad_runs == 0 and endpoint_rate is not None and 0 < endpoint_rate < 1:
        miss = (1 - endpoint_rate) ** runs
        text += f"; P(all clean | bad, rate {endpoint_rate:.2f}) = {miss:.2f}"
    return text
