"""JUnit for a comparison: one testsuite per step (a testcase per metric) and one for
checks (a testcase per check), through the harness's one schema conformer.

A regressed metric is a <failure>. An inconclusive metric (its interval reaches past the
minimum change: neither unchanged nor a change) is <skipped> with why and the repetitions
that would resolve it: a passed case would claim "unchanged", and an <error> would say the
harness broke; skipped is what CI shows for "no verdict reached", and it does not hide a
failure. The suite properties count the inconclusive primary metrics (ab.inconclusive).
"""

from __future__ import annotations

from junit_xml import TestCase, TestSuite

from harness.report.junit import conformed_xml
from harness.results.compare import Comparison, MetricComparison, MetricVerdict, StatusComparison
from harness.workflows.ab.text import (
    env_diff_text,
    fmt,
    fmt_effect,
    fmt_margin,
    fmt_reps,
    measure_of,
    method_text,
    why_inconclusive,
)


def _metric_properties(m: MetricComparison) -> dict[str, str]:
    props = {"better": m.better or "unknown", "min_change_pct": fmt(m.min_change_pct)}
    for side, summ in (("base", m.base), ("candidate", m.cand)):
        if summ is not None:
            props.update(
                {
                    f"{side}_mean": fmt(summ.mean, 6),
                    f"{side}_median": fmt(summ.median, 6),
                    f"{side}_ci_low": fmt(summ.ci_low, 6),
                    f"{side}_ci_high": fmt(summ.ci_high, 6),
                    f"{side}_reps": str(summ.n),
                }
            )
    props.update(
        {
            "change_pct": fmt(m.change_pct),
            "family": m.family or "none",
            "effect": fmt_effect(m),
            "test": m.effect.test if m.effect else "none",
            "p_value": fmt(m.p_value),
            "q_value": fmt(m.q_value),
            "verdict": m.verdict,
        }
    )
    if m.verdict == MetricVerdict.INCONCLUSIVE:
        props.update(margin=fmt_margin(m), reps_to_resolve=fmt_reps(m))
    return {f"{m.metric}.{k}": v for k, v in props.items()}


def _metric_case(m: MetricComparison) -> TestCase:
    text = "; ".join(f"{k}={v}" for k, v in _metric_properties(m).items())
    case = TestCase(m.metric, classname=m.step_id, elapsed_sec=0.0, stdout=text)
    if m.verdict == "regression":
        case.add_failure_info(
            message=f"{m.metric} {fmt_effect(m)} ({m.better} is better), "
            f"q={fmt(m.q_value)} ({m.family}), beyond the {fmt(m.min_change_pct)}% minimum",
            failure_type="regression",
        )
    elif m.verdict == MetricVerdict.INCONCLUSIVE:
        case.add_skipped_info(message=f"inconclusive ({m.family}): {why_inconclusive(m)}")
    return case


def _status_case(s: StatusComparison) -> TestCase:
    text = f"base: {' '.join(s.base_statuses)}; candidate: {' '.join(s.cand_statuses)}"
    case = TestCase(s.step_id, classname=f"check.{s.kind}", elapsed_sec=0.0, stdout=text)
    if s.verdict in ("regression", "missing"):
        case.add_failure_info(message=f"{s.verdict}: {s.message}", failure_type=s.verdict)
    elif s.verdict == "skipped":
        case.add_skipped_info(message=s.message)
    return case


def _common_properties(c: Comparison) -> dict[str, str]:
    props = {
        "ab.base": c.base_label,
        "ab.candidate": c.cand_label,
        "ab.base_runs": str(len(c.base_runs)),
        "ab.candidate_runs": str(len(c.cand_runs)),
        "ab.valid": "true" if c.valid else "false",
        "ab.verdict": c.verdict,
        "ab.inconclusive": str(len(c.inconclusive)),
        "ab.method": method_text(c),
        "ab.measure": measure_of(c),
    }
    if not c.valid:
        props["ab.invalid_because"] = env_diff_text(c)
    return props


def render_junit(comparison: Comparison) -> str:
    """One testsuite per step (testcase per metric) and one for checks (testcase per check).

    The Jenkins junit-10 schema has no per-testcase properties, so each metric's numbers go
    in its suite's properties (prefixed with the metric name) and in its system-out.
    """
    common = _common_properties(comparison)
    suites: list[TestSuite] = []
    by_step: dict[str, list[MetricComparison]] = {}
    for m in comparison.metrics:
        by_step.setdefault(m.step_id, []).append(m)
    for step_id, metrics in by_step.items():
        props = dict(common)
        for m in metrics:
            props.update(_metric_properties(m))
        suites.append(TestSuite(step_id, [_metric_case(m) for m in metrics], properties=props))
    checks = [_status_case(s) for s in comparison.statuses]
    suites.append(TestSuite("checks", checks, properties=dict(common)))
    return conformed_xml(suites, name="harness ab")
