"""When a metric may be called unchanged: its effect interval lies within the metric's
minimum change; otherwise a non-significant move is inconclusive, and the repetitions that
would narrow the interval enough are estimated from the spread observed.

"Not significant" is not "unchanged": three TCG repetitions of an A/B gave loop dio-off
randread -61.1% [-99.3, +2084.5], which a significance test alone let through as
unchanged. The rule is the two one-sided tests' (TOST) equivalence margin read off the
same 95% interval the report prints.
"""

from __future__ import annotations

import math
from enum import StrEnum

from harness.results.metrics import DESCRIPTIVE, MetricSpec
from harness.results.stats import DEFAULT_CONFIDENCE, Effect

MAX_REPS = 1000  # beyond this the estimate says "more than": no schedule would run them


class MetricVerdict(StrEnum):
    """What a comparison says of one metric (the values results and reports have used)."""

    REGRESSION = "regression"  # significant, beyond the minimum change, the bad way
    IMPROVEMENT = "improvement"  # significant, beyond the minimum change, the good way
    UNCHANGED = "unchanged"  # the whole interval lies within the minimum change
    INCONCLUSIVE = "inconclusive"  # neither: the interval reaches past the minimum change
    INSUFFICIENT = "insufficient"  # fewer than 2 repetitions on a side
    UNDIRECTED = "undirected"  # no known better direction
    DESCRIPTIVE = DESCRIPTIVE  # shown, never judged (metrics.DESCRIPTIVE)


def no_change(
    spec: MetricSpec, effect: Effect | None, base_mean: float
) -> tuple[MetricVerdict, float | None, int | None]:
    """A directed metric that showed no change: (UNCHANGED or INCONCLUSIVE, the margin on
    the effect's scale, the repetitions per side that would resolve an inconclusive one)."""
    if effect is None:
        return MetricVerdict.INCONCLUSIVE, None, None
    bound = margin(spec, effect, base_mean)
    if within(effect, bound):
        return MetricVerdict.UNCHANGED, bound, None
    return MetricVerdict.INCONCLUSIVE, bound, reps_to_resolve(effect, bound)


def margin(spec: MetricSpec, effect: Effect, base_mean: float) -> float:
    """The minimum change on the effect's scale: a percent for a ratio ("log"), the
    metric's unit for a difference ("linear"; 0 when it cannot be told from the base)."""
    if effect.scale == "log":
        return spec.min_change_pct
    if base_mean == 0:
        return spec.min_abs
    return max(spec.min_change_pct / 100.0 * abs(base_mean), spec.min_abs)


def within(effect: Effect, bound: float) -> bool:
    """Whether the whole interval lies within +-bound (the metric is unchanged)."""
    return -bound <= effect.low and effect.high <= bound


def _half_width(effect: Effect, bound: float) -> tuple[float, float]:
    """(observed half-width, the half-width wanted), both on the scale the t interval
    was computed on (log of the ratio for "log")."""
    if effect.scale == "log":
        low, high = math.log1p(effect.low / 100.0), math.log1p(effect.high / 100.0)
        # the tighter side of +-bound%: log(1 + b) < -log(1 - b)
        return (high - low) / 2.0, math.log1p(bound / 100.0)
    return (effect.high - effect.low) / 2.0, bound


def reps_to_resolve(
    effect: Effect, bound: float, *, confidence: float = DEFAULT_CONFIDENCE
) -> int | None:
    """Repetitions per side at which the interval's half-width would fall below `bound`,
    if the spread stays as observed (its standard deviation recovered from the interval:
    half = t(n-1) * sd / sqrt(n)). None when that needs more than MAX_REPS or cannot be
    told (no minimum to reach, no spread seen)."""
    half, wanted = _half_width(effect, bound)
    if wanted <= 0 or half <= 0 or effect.n < 2:
        return None
    from scipy import stats as sps  # 2 s to import: only when comparing

    q = 0.5 + confidence / 2.0
    sd = half * math.sqrt(effect.n) / float(sps.t.ppf(q, effect.n - 1))
    # t > z, so the normal-quantile n is a lower bound to start from
    start = max(effect.n + 1, math.ceil((float(sps.norm.ppf(q)) * sd / wanted) ** 2))
    for n in range(start, MAX_REPS + 1):
        if float(sps.t.ppf(q, n - 1)) * sd / math.sqrt(n) < wanted:
            return n
    return None
