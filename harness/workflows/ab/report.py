"""Comparison writers: report.md and a self-contained report.html with plots (JUnit in
ab_junit, the shared wording in ab_text; write_reports() writes all three).

All renderers are pure (Comparison -> str); write_reports() puts them in a directory.
Plots use matplotlib's object API (Figure, Agg canvas) so no pyplot global state or
display is involved, and are embedded as base64 PNG so the HTML is one file.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.report.html import CSS as _CSS
from harness.report.html import img, png
from harness.report.html import table as _html_table
from harness.results import stats
from harness.results.compare import Comparison, MetricComparison
from harness.results.files import atomic_write_text
from harness.results.metrics import metric_spec
from harness.workflows.ab.changed import run_pages, what_changed, write_run_pages
from harness.workflows.ab.junit import render_junit
from harness.workflows.ab.text import (
    env_diff_text,
    fmt,
    fmt_effect,
    fmt_pct,
    headline,
    measure_label,
    measure_of,
    method_text,
    why_inconclusive,
)

__all__ = [
    "env_diff_text",
    "fmt",
    "fmt_effect",
    "fmt_pct",
    "headline",
    "measure_label",
    "measure_of",
    "method_text",
    "plot_step",
    "render_html",
    "render_junit",
    "render_markdown",
    "why_inconclusive",
    "write_reports",
]

if TYPE_CHECKING:
    from matplotlib.axes import Axes

log = logging.getLogger(__name__)

_COLORS = {"regression": "#c0392b", "improvement": "#27ae60", "inconclusive": "#b9770e"}


# --- plots -----------------------------------------------------------------------------


def _plot_metric(ax: Axes, m: MetricComparison) -> None:
    sides = [(m.base, m.base_values, "#7f8c8d"), (m.cand, m.cand_values, "")]
    for x, (summ, values, color) in enumerate(sides):
        color = color or _COLORS.get(m.verdict, "#2980b9")
        if summ is not None:
            err = [[summ.mean - summ.ci_low], [summ.ci_high - summ.mean]]
            ax.bar(x, summ.mean, width=0.6, color=color, alpha=0.55, yerr=err, capsize=6)
        if values:
            # Spread the repetitions sideways so equal values stay visible.
            n = len(values)
            xs = [x + (i - (n - 1) / 2) * (0.3 / max(n - 1, 1)) for i in range(n)]
            ax.scatter(xs, values, s=14, color="black", zorder=3)
    ax.set_xticks([0, 1], ["base", "candidate"], fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    spec = metric_spec(m.metric)
    unit = f" [{spec.unit}]" if spec.unit else ""
    title = f"{m.metric}{unit}\n{fmt_effect(m)} {m.verdict}"
    ax.set_title(title, fontsize=8, color=_COLORS.get(m.verdict, "black"))


def plot_step(metrics: Sequence[MetricComparison], *, cols: int = 4, dpi: int = 80) -> bytes:
    """PNG bytes: one panel per metric, bars = mean with bootstrap CI, dots = repetitions."""
    rows = (len(metrics) + cols - 1) // cols
    from matplotlib.figure import Figure  # 2 s to import: only when plotting

    fig = Figure(figsize=(2.6 * min(cols, len(metrics)), 2.4 * rows), dpi=dpi)
    axes = fig.subplots(rows, min(cols, len(metrics)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < len(metrics):
            _plot_metric(ax, metrics[i])
        else:
            ax.set_visible(False)
    fig.tight_layout()
    return png(fig)


def _by_step(comparison: Comparison) -> dict[str, list[MetricComparison]]:
    out: dict[str, list[MetricComparison]] = {}
    for m in comparison.metrics:
        out.setdefault(m.step_id, []).append(m)
    return out


# --- markdown --------------------------------------------------------------------------

_METRIC_HEAD = (
    "metric",
    "family",
    "base mean",
    "base 95% CI",
    "cand mean",
    "cand 95% CI",
    "effect [95% CI]",
    "test",
    "q",
    "min",
    "verdict",
)


def _metric_row(m: MetricComparison) -> list[str]:
    def ci(s: stats.Summary | None) -> str:
        return "-" if s is None else f"{fmt(s.ci_low)} .. {fmt(s.ci_high)}"

    return [
        m.metric,
        m.family or "-",
        fmt(m.base.mean if m.base else None),
        ci(m.base),
        fmt(m.cand.mean if m.cand else None),
        ci(m.cand),
        fmt_effect(m),
        f"{m.effect.test} n={m.effect.n}" if m.effect else "-",
        fmt(m.q_value, 2),
        f"{fmt(m.min_change_pct)}%" if m.better else "-",
        f"**{m.verdict}**" if m.verdict in _COLORS else m.verdict,
    ]


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(head), line(["---"] * len(head)), *(line(r) for r in rows), ""]


_RUN_HEAD = ("side", "rep", "kernel", "release", "topology", "accel", "measure", "time", "status")


def _run_rows(comparison: Comparison) -> list[list[str]]:
    rows = []
    for side, runs in (("base", comparison.base_runs), ("candidate", comparison.cand_runs)):
        for r in runs:
            rows.append(
                [
                    side,
                    str(r.repetition),
                    r.kernel.spec,
                    r.kernel.release,
                    r.topology,
                    r.environment.accel,
                    r.environment.measure,
                    f"{r.duration_s:.0f}s",
                    r.infra_error or "ok",
                ]
            )
    return rows


def _check_rows(comparison: Comparison) -> list[list[str]]:
    return [
        [s.step_id, " ".join(s.base_statuses), " ".join(s.cand_statuses), s.verdict, s.message]
        for s in comparison.statuses
    ]


def suite_changes(comparison: Comparison) -> tuple[list[str], list[str]]:
    """Peer suite tests (kind "suite") that pass on base and fail on the candidate (new
    failures) and those that fail on base and pass on the candidate (new passes)."""
    suite = [s for s in comparison.statuses if s.kind == "suite"]
    return (
        [s.step_id for s in suite if s.verdict == "regression"],
        [s.step_id for s in suite if s.verdict == "fixed"],
    )


def render_markdown(comparison: Comparison) -> str:
    """report.md: verdict, method, runs, checks, and a metric table per step."""
    c = comparison
    lines = [f"# A/B: {c.base_label} vs {c.cand_label}", "", f"**{headline(c)}**", ""]
    if not c.valid:
        lines += [
            "> **This comparison is INVALID**: the sides ran in different "
            f"environments ({env_diff_text(c)}); numbers are not comparable.",
            "",
        ]
    for err in c.infra_errors:
        lines.append(f"- infrastructure error: {err}")
    for m in c.inconclusive:
        lines.append(f"- **inconclusive** primary metric `{m.name}`: {why_inconclusive(m)}")
    lines += [f"**{measure_label(c)}**", ""]
    lines += ["## Method", "", method_text(c), "", "## Runs", ""]
    lines += _md_table(_RUN_HEAD, _run_rows(c))
    lines += ["## Checks", ""]
    lines += _md_table(("check", "base", "candidate", "verdict", "message"), _check_rows(c))
    new_failures, new_passes = suite_changes(c)
    if new_failures or new_passes:
        lines += ["## Peer suites", ""]
        lines += [f"- new failure: {t}" for t in new_failures]
        lines += [f"- new pass: {t}" for t in new_passes] + [""]
    lines += ["## Metrics", ""]
    for step_id, metrics in _by_step(c).items():
        lines += [f"### {step_id}", ""]
        lines += _md_table(_METRIC_HEAD, [_metric_row(m) for m in metrics])
    return "\n".join(lines)


# --- HTML ------------------------------------------------------------------------------


def _banner(c: Comparison) -> str:
    cls = {
        "ok": "ok",
        "regression": "bad",
        "incomplete": "incomplete",
        "inconclusive": "incomplete",
    }[c.verdict]
    out = f'<div class="banner {cls}" id="verdict">{html.escape(headline(c))}</div>'
    if not c.valid:
        out = (
            '<div class="banner invalid" id="invalid">INVALID COMPARISON: the sides ran in '
            f"different environments ({html.escape(env_diff_text(c))})</div>" + out
        )
    return out


def _step_section(step_id: str, metrics: Sequence[MetricComparison]) -> str:
    return (
        f"<h3>{html.escape(step_id)}</h3>"
        + _html_table(_METRIC_HEAD, [_metric_row(m) for m in metrics])
        + img(plot_step(metrics), f"{step_id}: base vs candidate per metric")
    )


def _run_links(c: Comparison) -> str:
    links = ", ".join(
        f'<a href="{html.escape(rel)}">{html.escape(rel.split("/")[1])}</a>'
        for rel, _ in run_pages(c)
    )
    return f"<p id='run-pages'>Each run's own page: {links}</p>"


def render_html(comparison: Comparison) -> str:
    """report.html: one self-contained page (inline CSS, plots as base64 PNG, no scripts):
    the verdict, what changed (every judged effect with its interval), checks, metrics per
    step, the runs with links to their own pages, and the method last."""
    c = comparison
    title = html.escape(f"A/B: {c.base_label} vs {c.cand_label}")
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>",
        f"<style>{_CSS}</style></head><body><h1>{title}</h1>",
        _banner(c),
        "".join(
            f"<p class='regression'>infrastructure error: {html.escape(e)}</p>"
            for e in c.infra_errors
        ),
        "".join(
            f"<p class='inconclusive'>inconclusive primary metric {html.escape(m.name)}: "
            f"{html.escape(why_inconclusive(m))}</p>"
            for m in c.inconclusive
        ),
        f"<p id='measure'><b>{html.escape(measure_label(c))}</b></p>",
        what_changed(c),
        "<h2>Checks</h2>",
        _html_table(("check", "base", "candidate", "verdict", "message"), _check_rows(c)),
        "<h2>Metrics</h2>",
        *(_step_section(step, ms) for step, ms in _by_step(c).items()),
        "<h2>Runs</h2>",
        _html_table(_RUN_HEAD, _run_rows(c)),
        _run_links(c),
        f"<h2>Method</h2><p id='method'>{html.escape(method_text(c))}</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write_reports(comparison: Comparison, out_dir: Path) -> list[Path]:
    """Write junit.xml, report.md, report.html and each run's runs/rep<N>-<side>/report.html
    into out_dir; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, render in (
        ("junit.xml", render_junit),
        ("report.md", render_markdown),
        ("report.html", render_html),
    ):
        path = out_dir / name
        atomic_write_text(path, render(comparison))
        written.append(path)
    written += write_run_pages(comparison, out_dir)  # what report.html links
    log.info("reports written to %s", out_dir)
    return written
