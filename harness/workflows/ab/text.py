"""The words and numbers every A/B writer shares: formatting, the method, the headline."""

from __future__ import annotations

from harness.results import stats
from harness.results.compare import Comparison, MetricComparison
from harness.results.equivalence import MAX_REPS
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


def fmt_margin(m: MetricComparison) -> str:
    """The minimum change as the interval is printed: '+-5%' or '+-12.5' (a difference)."""
    if m.margin is None:
        return "-"
    return f"±{m.margin:g}%" if m.effect and m.effect.scale == "log" else f"±{m.margin:.4g}"


def fmt_reps(m: MetricComparison) -> str:
    """'~40 reps per side' or 'over 1000 reps per side' ('-' when not to be told)."""
    if m.reps_to_resolve is not None:
        return f"~{m.reps_to_resolve} reps per side"
    return f"over {MAX_REPS} reps per side" if m.margin else "-"


def why_inconclusive(m: MetricComparison) -> str:
    """'-61.1% [-99.3, +2084.5] reaches past ±5%: ~874 reps per side would resolve it'."""
    return f"{fmt_effect(m)} reaches past {fmt_margin(m)}: {fmt_reps(m)} would resolve it"


def headline(comparison: Comparison) -> str:
    """One line: verdict, counts (inconclusive primary metrics among them) and validity."""
    c = comparison
    reps = f"{len(c.base_runs)} base / {len(c.cand_runs)} candidate runs"
    cost = " [COST figures]" if measure_of(c) == "cost" else ""
    text = (
        f"{c.verdict.upper()}{cost}: {len(c.regressions)} regression(s), "
        f"{len(c.improvements)} improvement(s) over {len(c.metrics)} metrics and "
        f"{len(c.statuses)} checks ({reps})"
    )
    if c.inconclusive:
        text += (
            f"; {len(c.inconclusive)} primary metric(s) INCONCLUSIVE: "
            "the interval reaches past the minimum change"
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
