"""The writers of a bisection: bisect.json (the document as it is), bisect.md (result, the
log of every step, confidence, and for metric bisects good / last good / first bad / bad
with means and CIs, as mmtests prints) and junit.xml (one testcase per step).

They read only the bisect.json document (harness.workflows.bisect.workflow.document), plain data.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from junit_xml import TestCase, TestSuite

from harness.report.junit import conformed_xml
from harness.results.files import atomic_write_text
from harness.results.stats import summarize
from harness.workflows.bisect.criterion import STEP_KINDS


def _values(step: dict[str, Any]) -> list[float]:
    return [
        r["value"]
        for r in step.get("runs", ())
        if r.get("value") is not None and r.get("outcome") in ("good", "bad")
    ]


def _times(step: dict[str, Any]) -> tuple[float, float, float]:
    """(build, boot, test) seconds of one step."""
    boot = sum(r.get("boot_s", 0.0) for r in step.get("runs", ()))
    total = sum(r.get("duration_s", 0.0) for r in step.get("runs", ()))
    return step.get("build_s", 0.0), boot, max(total - boot, 0.0)


def step_case(index: int, step: dict[str, Any], mode: str) -> TestCase:
    build, boot, test = _times(step)
    out = json.dumps(
        {k: step.get(k) for k in ("kernel", "resolution", "build_log", "confidence", "runs")},
        indent=1,
        default=str,
    )
    case = TestCase(
        f"{index:02d} {step['role']} {step['label']}",
        classname=f"bisect.{mode}",
        elapsed_sec=build + boot + test,
        stdout=out,
    )
    if step["outcome"] == "bad":
        case.add_failure_info(
            message=f"bad: {step['reason']}", output=step.get("confidence", ""), failure_type="bad"
        )
    elif step["outcome"] == "skip":
        case.add_skipped_info(message=f"skip: {step['reason']}")
    return case


def junit_text(doc: dict[str, Any]) -> str:
    mode = doc["request"]["mode"]
    cases = [step_case(i, s, mode) for i, s in enumerate(doc["steps"])]
    return conformed_xml([TestSuite(f"bisect {doc['request']['test']}", cases)], name="bisect")


def _fmt_ci(values: Sequence[float]) -> str:
    if not values:
        return "-"
    s = summarize(values)
    return f"{s.mean:.4g} [{s.ci_low:.4g}, {s.ci_high:.4g}] (n={s.n})"


def metric_table(doc: dict[str, Any]) -> list[str]:
    """good / last good / first bad / bad: mean [95% CI] of the metric."""
    steps = doc["steps"]
    by_item = {s["item"]: s for s in steps}
    rows = [
        ("good", next((s for s in steps if s["role"] == "good-endpoint"), None)),
        ("last good", by_item.get(doc.get("last_good") or "")),
        ("first bad", by_item.get(doc.get("first_bad") or "")),
        ("bad", next((s for s in steps if s["role"] == "bad-endpoint"), None)),
    ]
    lines = ["| | commit / kernel | mean [95% CI] |", "|---|---|---|"]
    for name, step in rows:
        if step is not None:
            lines.append(f"| {name} | {step['label']} | {_fmt_ci(_values(step))} |")
    return lines


def crash_rule(req: dict[str, Any]) -> str:
    """How this bisection judged a kernel failure (oops, BUG, panic, hang)."""
    test = str(req["test"])
    if test.split(":", 1)[0] not in STEP_KINDS:
        kind = "a splat of the named kind" if test.startswith("splat:") else "none"
        return f"kernel failures: the symptom is {kind}; any other kernel failure is skipped"
    if req.get("crash_is_skip"):
        return (
            "kernel failures: one inside the tested step is skipped (--crash-is-skip), "
            "as is one in any other step"
        )
    return (
        "kernel failures: one inside the tested step is bad (the symptom); one in another "
        "step or at boot is not the symptom and skips that kernel"
    )


def markdown(doc: dict[str, Any]) -> str:
    req = doc["request"]
    span = f"{req['good']} .. {req['bad']}" if req["mode"] == "git" else " , ".join(req["kernels"])
    lines = [
        f"# Bisect: {req['test']}",
        "",
        f"- space ({req['mode']}): {span}",
        f"- plan {req['plan']}, topology {req['topology']}, {req['runs']} run(s) per step,"
        f" bad if the symptom shows in >= {req['bad_if']}",
        f"- {crash_rule(req)}",
        "",
        f"**{doc.get('status')}**: {doc.get('message')}",
        "",
    ]
    if doc.get("first_bad"):
        lines += [f"first bad: `{doc['first_bad']}` {doc.get('first_bad_label') or ''}", ""]
    lines += [
        "| # | role | commit / kernel | outcome | runs | build s | boot s | test s | why |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, step in enumerate(doc["steps"]):
        build, boot, test = _times(step)
        reason = str(step["reason"]).replace("|", "/").replace("\n", " ")[:160]
        lines.append(
            f"| {i} | {step['role']} | {step['label']} | {step['outcome']} | "
            f"{len(step.get('runs', ()))} | {build:.0f} | {boot:.0f} | {test:.0f} | "
            f"{reason} |"
        )
    lines += ["", "## Confidence", ""]
    lines += [
        f"- {s['label']}: {s['outcome']}, {s.get('confidence') or s['reason']}"
        for s in doc["steps"]
    ]
    if req["test"].startswith("metric:"):
        lines += ["", "## Metric", "", *metric_table(doc)]
    return "\n".join(lines) + "\n"


def write_reports(doc: dict[str, Any], out_dir: Path) -> list[Path]:
    """bisect.json, bisect.md and junit.xml in out_dir."""
    paths = [out_dir / "bisect.json", out_dir / "bisect.md", out_dir / "junit.xml"]
    atomic_write_text(paths[0], json.dumps(doc, indent=1, default=str) + "\n")
    atomic_write_text(paths[1], markdown(doc))
    atomic_write_text(paths[2], junit_text(doc))
    return paths
