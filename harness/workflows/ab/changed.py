"""What the A/B page opens with and links to: one chart of every judged effect with its
interval, and each run's own report.html (harness.report.run_html) under runs/."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.report import html as page_html
from harness.report.run_html import write_html
from harness.results.compare import Comparison, MetricComparison
from harness.results.equivalence import MetricVerdict
from harness.results.model import RunResult
from harness.suite.targets import raw_devices

if TYPE_CHECKING:
    from matplotlib.axes import Axes

COLORS = {"regression": "#c0392b", "improvement": "#27ae60", "inconclusive": "#b9770e"}
_SCALES = (
    ("log", "change of the candidate against the base [%]"),
    ("linear", "difference, candidate - base [the metric's unit]"),
)


_JUDGED = (
    MetricVerdict.REGRESSION,
    MetricVerdict.IMPROVEMENT,
    MetricVerdict.UNCHANGED,
    MetricVerdict.INCONCLUSIVE,
)


def judged(comparison: Comparison) -> list[MetricComparison]:
    """The metrics judged against a minimum change, with their effect, in report order;
    regressions and improvements first (what changed), then inconclusive, then unchanged."""
    metrics = [m for m in comparison.metrics if m.effect is not None and m.verdict in _JUDGED]
    return sorted(metrics, key=lambda m: _JUDGED.index(m.verdict))


def _band(m: MetricComparison) -> float | None:
    """The minimum change on the effect's scale: the verdict's margin, else the metric's
    minimum percent (log scale) or none known (a difference)."""
    if m.margin is not None:
        return m.margin
    return m.min_change_pct if m.effect and m.effect.scale == "log" else None


def _forest(ax: Axes, metrics: Sequence[MetricComparison], xlabel: str) -> None:
    ys = list(range(len(metrics)))[::-1]
    for y, m in zip(ys, metrics, strict=True):
        assert m.effect is not None  # judged() keeps only these
        color = COLORS.get(m.verdict, "#7f8c8d")
        ax.plot([m.effect.low, m.effect.high], [y, y], color=color, linewidth=2)
        ax.plot([m.effect.estimate], [y], "o", color=color, markersize=4)
        band = _band(m)
        if band is not None:
            ax.plot(
                [-band, band],
                [y, y],
                color="#bbb",
                linewidth=7,
                alpha=0.4,
                solid_capstyle="butt",
                zorder=0,
            )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(ys, [f"{m.step_id}: {m.metric} ({m.verdict})" for m in metrics], fontsize=7)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel(xlabel, fontsize=8)


def plot_effects(metrics: Sequence[MetricComparison], *, dpi: int = 80) -> bytes:
    """PNG forest plot: per judged metric its effect (dot) and interval (line) over the grey
    band of the minimum change that counts; one panel per scale present."""
    from matplotlib.figure import Figure  # 2 s to import: only when plotting

    panels = [
        (scale, label, [m for m in metrics if m.effect and m.effect.scale == scale])
        for scale, label in _SCALES
    ]
    panels = [p for p in panels if p[2]]
    fig = Figure(figsize=(11, 0.8 + sum(0.6 + 0.22 * len(p[2]) for p in panels)), dpi=dpi)
    axes = fig.subplots(
        len(panels),
        1,
        squeeze=False,
        gridspec_kw={"height_ratios": [len(p[2]) + 2 for p in panels]},
    )
    for ax, (_, label, ms) in zip(axes[:, 0], panels, strict=True):
        _forest(ax, ms, label)
    fig.tight_layout()
    return page_html.png(fig)


def what_changed(comparison: Comparison) -> str:
    """The page's opening section: the chart of every judged effect, or why there is none."""
    metrics = judged(comparison)
    if not metrics:
        return "<h2>What changed</h2><p>No metric could be judged (no effect with an interval).</p>"
    alt = "every judged effect: estimate, 95% interval, minimum change (grey band)"
    return (
        "<h2>What changed</h2><p class='note'>Each judged metric: the candidate's change "
        "against the base (dot) with its 95% interval (line); the grey band is the "
        "smallest change that counts. Red: regression, green: improvement, amber: "
        "inconclusive, grey: unchanged.</p>"
        + page_html.img(plot_effects(metrics), alt, css_id="changed")
    )


def run_pages(comparison: Comparison) -> list[tuple[str, RunResult]]:
    """(page path relative to the A/B directory, run) for every run: runs/rep<N>-<side>/,
    where an A/B run's console.log and disks already are."""
    out: list[tuple[str, RunResult]] = []
    seen: set[str] = set()
    for side, runs in (("base", comparison.base_runs), ("candidate", comparison.cand_runs)):
        for r in runs:
            name, n = f"rep{r.repetition}-{side}", 1
            while name in seen:  # pooled results files may repeat a repetition number
                name, n = f"rep{r.repetition}-{side}-{n}", n + 1
            seen.add(name)
            out.append((f"runs/{name}/report.html", r))
    return out


def write_run_pages(comparison: Comparison, out_dir: Path) -> list[Path]:
    """Each run's report.html (run_pages' paths under out_dir)."""
    written = []
    for rel, run in run_pages(comparison):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_html(path, [run], raw_devices({s.target for s in run.steps if s.target}))
        written.append(path)
    return written
