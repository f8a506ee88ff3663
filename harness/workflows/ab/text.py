"""The words and numbers every A/B writer shares: formatting, the method, the headline."""

from __future__ import annotations

from harness.results import stats
from harness.results.compare import Comparison, MetricComparison
from harness.results.metrics import measure_label as _measure_label


def fmt(x: float | None, digits: int = 4) -> str:
    """A number for people: 4 significant digits, '-' for missing."""
    if x is None:
        return "-"
    return f"{x:.{digits}g}"


def fmt_pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1f}%"


def method_text(comparison: Comparison) -> str:
    return stats.METHOD_TEXT.format(
        conf=stats.DEFAULT_CONFIDENCE,
        n=stats.DEFAULT_RESAMPLES,
        seed=stats.DEFAULT_SEED,
        alpha=comparison.alpha,
    )


def measure_of(comparison: Comparison) -> str:
    """'wall', 'cost', or both comma-joined when forced past the guard."""
    runs = [*comparison.base_runs, *comparison.cand_runs]
    return ", ".join(sorted({r.environment.measure for r in runs})) or "wall"


def measure_label(comparison: Comparison) -> str:
    return _measure_label(measure_of(comparison))


def fmt_effect(m: MetricComparison) -> str:
    """'-71.9% [-78.0, -64.1]' (ratio as a percent) or '+41 [38, 44]' (a difference)."""
    e = m.effect
    if e is None:
        return "-"
    if e.scale == "log":
        return f"{e.estimate:+.1f}% [{e.low:+.1f}, {e.high:+.1f}]"
    return f"{e.estimate:+.4g} [{e.low:+.4g}, {e.high:+.4g}]"


def headline(comparison: Comparison) -> str:
    """One line: verdict, counts and validity."""
    c = comparison
    reps = f"{len(c.base_runs)} base / {len(c.cand_runs)} candidate runs"
    cost = " [COST figures]" if measure_of(c) == "cost" else ""
    text = (
        f"{c.verdict.upper()}{cost}: {len(c.regressions)} regression(s), "
        f"{len(c.improvements)} improvement(s) over {len(c.metrics)} metrics and "
        f"{len(c.statuses)} checks ({reps})"
    )
    unjudged = sum(m.verdict == "insufficient" for m in c.metrics)
    if unjudged:
        text += f"; {unjudged} metric(s) not judged: fewer than 2 reps on a side"
    if not c.valid:
        text = "INVALID COMPARISON (" + env_diff_text(c) + ") - " + text
    return text


def env_diff_text(comparison: Comparison) -> str:
    return "; ".join(
        f"{d.field}: base {d.base!r} vs candidate {d.candidate!r}" for d in comparison.env_diffs
    )
