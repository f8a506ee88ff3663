"""The backport table: backport.json (stable fields for scripts and CI), backport.md,
backport.html (each base's A/B report.html linked), junit.xml (one testsuite per base)
and results.json (every run of every base, labelled). Reads only the workflow's rows."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from junit_xml import TestCase, TestSuite

from harness.report.junit import conformed_xml
from harness.results import store
from harness.results.files import atomic_write_text
from harness.workflows.backport.model import SKIPPED, BaseResult

VERSION = 1
OUTPUTS = ("backport.json", "backport.md", "backport.html", "junit.xml", "results.json")
COLUMNS = ("base", "series", "apply", "build", "boot", "checks", "suite", "splats", "perf")


def apply_cell(row: BaseResult) -> str:
    """'3/3', '2/3 (offset)' or '1/3 conflict in patch 2: FILE, FUNCTION'."""
    report = row.apply
    if report is None:
        return "-"
    cell = f"{report.applied}/{report.total}"
    conflict = report.conflict
    if conflict is not None:
        where = conflict.conflicts[0] if conflict.conflicts else None
        cell += f" conflict in patch {conflict.index}"
        if where is not None:
            cell += f": {where.file}, {where.function or where.hunk}"
        return cell
    fuzzy = sorted({p.status for p in report.patches if p.status not in ("applied",)})
    return cell + (f" ({', '.join(fuzzy)})" if fuzzy else "")


def suite_cell(row: BaseResult) -> str:
    """'12 tests', '12 tests, new failures: blktests/loop/002', or '-' when none ran."""
    suite = row.suite
    if not suite.ran:
        return "-"
    cell = f"{suite.ran} tests"
    if suite.new_failures:
        cell += f", new failures: {', '.join(suite.new_failures)}"
    if suite.new_passes:
        cell += f", new passes: {', '.join(suite.new_passes)}"
    return cell


def _cells(row: BaseResult) -> list[str]:
    ran = bool(row.runs)
    checks = (
        f"{row.checks.passed} pass / {row.checks.failed} fail"
        + (f" (new: {', '.join(row.checks.new_failures)})" if row.checks.new_failures else "")
        if ran
        else "-"
    )
    perf = row.perf.verdict
    if row.perf.regressions or row.perf.improvements:
        perf += f" ({len(row.perf.regressions)} worse, {len(row.perf.improvements)} better)"
    watch = "-" if row.watch.seen is None else ("yes" if row.watch.seen else "no")
    if row.watch.peak is not None:
        watch += f" (peak {row.watch.peak:g})"
    build = row.build + (f" (log: {row.build_log})" if row.build_log else "")
    series = ("backport " if row.backport else "") + Path(row.series).name
    splats = ("; ".join(row.splats) if row.splats else "none") if ran else "-"
    return [
        row.base,
        series,
        apply_cell(row),
        build,
        row.boot,
        checks,
        suite_cell(row),
        splats,
        perf if ran else "-",
        watch,
        row.verdict,
    ]


def headers(rows: Sequence[BaseResult]) -> list[str]:
    metric = rows[0].watch.metric if rows else "watch"
    return [*COLUMNS, f"{metric} seen", "verdict"]


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: Sequence[BaseResult], warnings: Sequence[str]) -> str:
    """backport.md: the table, then each base's summary and the lint warnings."""
    head = headers(rows)
    lines = ["# Pre-backport validation", "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    lines += ["| " + " | ".join(_md_escape(c) for c in _cells(r)) + " |" for r in rows]
    lines += ["", "## Bases", ""]
    for row in rows:
        lines.append(f"- **{row.base}**: {row.verdict}: {_md_escape(row.summary)}")
        if row.ab_dir:
            lines.append(f"  A/B report: {row.ab_dir}/report.md")
    if warnings:
        lines += ["", "## Lint (warnings)", ""] + [f"- {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def html_page(rows: Sequence[BaseResult], warnings: Sequence[str], out_dir: Path) -> str:
    """backport.html: the table with each base's A/B report.html linked (relative)."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in headers(rows))
    body = []
    for row in rows:
        cells = [f"<td>{esc(c)}</td>" for c in _cells(row)]
        if row.ab_dir:
            link = os.path.relpath(Path(row.ab_dir) / "report.html", out_dir)
            cells[-1] = f'<td><a href="{esc(link)}">{esc(row.verdict)}</a></td>'
        css = "bad" if row.failed else ("infra" if row.infra else "good")
        body.append(f'<tr class="{css}">{"".join(cells)}</tr>')
    notes = "".join(f"<li>{esc(w)}</li>" for w in warnings)
    summaries = "".join(f"<li><b>{esc(r.base)}</b>: {esc(r.summary)}</li>" for r in rows)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>backport</title><style>"
        "td,th{border:1px solid #999;padding:4px}table{border-collapse:collapse}"
        ".bad{background:#fdd}.infra{background:#ffd}.good{background:#dfd}</style></head>"
        f"<body><h1>Pre-backport validation</h1><table><tr>{head}</tr>{''.join(body)}</table>"
        f"<h2>Bases</h2><ul>{summaries}</ul>"
        + (f"<h2>Lint (warnings)</h2><ul>{notes}</ul>" if notes else "")
        + "</body></html>\n"
    )


def _case(name: str, classname: str, status: str, message: str, output: str = "") -> TestCase:
    case = TestCase(name, classname=classname, stdout=output or None)
    if status == SKIPPED:
        case.add_skipped_info(message=message or "skipped")
    elif status not in ("ok", "pass", "applied", "stopped"):
        case.add_failure_info(message=message or status, output=output, failure_type=status)
    return case


def base_suite(row: BaseResult) -> TestSuite:
    """One testsuite per base: apply, build, boot, checks, suite, splats, perf."""
    cls = row.base.replace(".", "_")
    apply = row.apply.status if row.apply else SKIPPED
    lint = "\n".join(f"lint: patch {w.patch} {w.subject}: {w.message}" for w in row.lint)
    ran = "ok" if row.runs else SKIPPED
    perf = {"regression": "failed", "inconclusive": SKIPPED}.get(row.perf.verdict, "ok")
    perf = perf if row.runs else SKIPPED
    why = ", ".join(row.perf.regressions)
    if row.perf.inconclusive:
        why = "inconclusive: " + ", ".join(row.perf.inconclusive)
    cases = [
        _case("apply", cls, apply, apply_cell(row), lint),
        _case("build", cls, row.build, row.build_message, row.build_log or ""),
        _case("boot", cls, row.boot, row.summary if row.boot == "failed" else ""),
        _case(
            "checks",
            cls,
            "failed" if row.checks.new_failures else ran,
            "new failures: " + ", ".join(row.checks.new_failures),
        ),
        _case(
            "suite",
            cls,
            "failed" if row.suite.new_failures else ("ok" if row.suite.ran else SKIPPED),
            "new failures: " + ", ".join(row.suite.new_failures),
            suite_cell(row),
        ),
        _case(
            "splats",
            cls,
            "failed" if row.splats and row.verdict == "kernel-failure" else ran,
            "; ".join(row.splats),
        ),
        _case("perf", cls, perf, why, row.perf.verdict),
    ]
    props = {"series": row.series, "verdict": row.verdict, "summary": row.summary}
    return TestSuite(row.base, cases, properties={k: v for k, v in props.items() if v})


def document(rows: Sequence[BaseResult], warnings: Sequence[str], extra: dict[str, Any]) -> dict:
    return {
        "version": VERSION,
        "bases": [r.to_dict() for r in rows],
        "lint": list(warnings),
        **extra,
    }


def write_all(
    out_dir: Path, rows: Sequence[BaseResult], extra: dict[str, Any] | None = None
) -> list[Path]:
    """Write backport.json, backport.md, backport.html, junit.xml and results.json."""
    warnings = list(
        dict.fromkeys(
            f"{Path(r.series).name} patch {w.patch} ({w.subject}): {w.message}"
            for r in rows
            for w in r.lint
        )
    )
    doc = document(rows, warnings, extra or {})
    paths = {name: out_dir / name for name in OUTPUTS}
    atomic_write_text(paths["backport.json"], json.dumps(doc, indent=2) + "\n")
    atomic_write_text(paths["backport.md"], markdown(rows, warnings))
    atomic_write_text(paths["backport.html"], html_page(rows, warnings, out_dir))
    atomic_write_text(paths["junit.xml"], conformed_xml([base_suite(r) for r in rows], "backport"))
    runs = [run for r in rows for run in r.runs]
    labels = [f"{r.base}:{side}" for r in rows for side in r.run_sides]
    store.save_runs(paths["results.json"], runs, {"backport": {**doc, "run_labels": labels}})
    return list(paths.values())
