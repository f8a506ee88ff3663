"""Statistics for A/B comparisons: summaries, bootstrap intervals, paired and Welch t, FDR.

Method (also printed in every report, see METHOD_TEXT):
- Each side's repetitions are summarised by mean, median and a bootstrap percentile
  interval of the mean (10,000 resamples, fixed seed). With 3-5 repetitions it only shows
  spread; it does not decide anything.
- Runs are interleaved A B A B, so repetition i of the base and repetition i of the
  candidate ran next to each other and share the host's drift. The test uses that pairing:
  per pair, the log-ratio log(candidate / base) (noise under TCG is multiplicative), and a
  one-sample t-test of those log-ratios against 0 (the paired t-test on log values). Its
  t interval, exponentiated, is the effect size: the candidate/base ratio with its
  interval. Metrics with zeros (counters) use plain paired differences instead.
- Without at least two pairs (a run lost on one side) the test falls back to Welch's
  unequal-variance t-test on the same scale, and the effect interval is Welch's.
- Metrics are split into families: primary (each fio row's throughput and tail latency in
  the workload's own direction) and secondary (everything else with a direction). Each
  family's p-values are adjusted with Benjamini-Hochberg on their own, so dozens of
  mechanism figures no longer dilute the handful of figures a regression shows in first.
- A metric that is no significant change beyond its minimum is unchanged only when its
  whole interval lies within the minimum change; otherwise it is inconclusive, with the
  repetitions that would resolve it (harness.results.equivalence).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_SEED = 20251015  # the day V5 of the loop NOWAIT series was posted
DEFAULT_RESAMPLES = 10_000
DEFAULT_CONFIDENCE = 0.95

METHOD_TEXT = (
    "Runs are interleaved (base, candidate, base, candidate ...), and repetition i of each "
    "side forms a pair. Per pair the log-ratio log(candidate/base) is taken (plain "
    "differences for metrics that can be 0); significance is the paired two-sided t-test "
    "of those against 0 (Welch's t-test when fewer than 2 pairs exist), and the effect is "
    "the geometric-mean ratio with its {conf:.0%} t interval, shown as a percent change. "
    "Primary metrics (per fio row: IOPS and p99 completion latency of the workload's "
    "direction; in cost mode CPU per I/O too) and secondary metrics (every other metric "
    "with a known direction) are two "
    "families, each adjusted with Benjamini-Hochberg on its own (q < {alpha}); in cost mode "
    "the IOPS and latencies of a row whose I/O waits on an emulated disk are descriptive "
    "only (under instruction counting the wait lasts until the next timer: no cost "
    "figure; CPU per I/O stays judged). A change "
    "counts only if it is significant and at least the metric's minimum change (5% for "
    "most metrics, as lkp does). A metric is unchanged only when its whole interval lies "
    "within that minimum change; otherwise it is inconclusive, shown with the repetitions "
    "per side at which the interval's half-width would fall below the minimum (estimated "
    "from the spread seen), and an inconclusive primary metric makes the comparison "
    "inconclusive unless something regressed. Per-side intervals are bootstrap "
    "percentile intervals of the mean ({n:,} resamples, fixed seed {seed}): they show "
    "spread, they decide nothing."
)


@dataclass(frozen=True)
class Summary:
    """One side's repetitions of one metric. ci_low/ci_high bound the mean."""

    n: int
    mean: float
    median: float
    stdev: float  # sample standard deviation (ddof=1); 0 for n < 2
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Effect:
    """How far the candidate moved from the base, with its interval and the test behind it.

    scale "log": estimate/low/high are percent changes of the candidate/base ratio
    (geometric mean); scale "linear": differences candidate - base in the metric's unit.
    test: "paired-t" (n = pairs) or "welch" (n = the smaller side).
    """

    scale: str
    estimate: float
    low: float
    high: float
    p_value: float | None
    test: str
    n: int


def bootstrap_ci(
    values: Sequence[float],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (deterministic for a seed)."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if data.size == 1 or np.all(data == data[0]):
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(resamples, data.size))
    means = data[idx].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def summarize(values: Sequence[float], *, seed: int = DEFAULT_SEED) -> Summary:
    """Mean, median, sample stdev and bootstrap CI of one side's repetitions."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("summarize needs at least one value")
    low, high = bootstrap_ci(data, seed=seed)
    stdev = float(data.std(ddof=1)) if data.size > 1 else 0.0
    return Summary(
        n=int(data.size),
        mean=float(data.mean()),
        median=float(np.median(data)),
        stdev=stdev,
        ci_low=low,
        ci_high=high,
    )


def pct_change(base_mean: float, cand_mean: float) -> float | None:
    """Percent change from base to candidate; None when the base mean is 0."""
    if base_mean == 0:
        return None
    return 100.0 * (cand_mean - base_mean) / abs(base_mean)


def _scaled(values: Sequence[float], log_scale: bool) -> np.ndarray:
    data = np.asarray(values, dtype=float)
    if log_scale:
        if data.size and data.min() <= 0:
            raise ValueError("log_scale needs values > 0")
        data = np.log(data)
    return data


def _t_interval(
    mean: float, se: float, df: float, confidence: float
) -> tuple[float, float, float | None]:
    """(low, high, two-sided p of mean == 0) of a t statistic; se 0 means no spread at all."""
    if se == 0:
        return mean, mean, 1.0 if mean == 0 else 0.0
    from scipy import stats as sps  # 2 s to import: only when comparing

    half = float(sps.t.ppf(0.5 + confidence / 2.0, df)) * se
    p = float(2.0 * sps.t.sf(abs(mean / se), df))
    return mean - half, mean + half, None if math.isnan(p) else p


def paired_t(
    base: Sequence[float],
    cand: Sequence[float],
    *,
    log_scale: bool = False,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[float, float, float, float | None]:
    """Paired t on cand[i] - base[i] (of logs with log_scale): (mean, low, high, p).

    Same p as scipy.stats.ttest_rel; the interval is the t interval of the mean difference.
    Identical differences (no spread) give p 0, or 1 when they are all 0.
    """
    if len(base) != len(cand) or len(base) < 2:
        raise ValueError("paired_t needs two equally long sequences of at least 2 values")
    d = _scaled(cand, log_scale) - _scaled(base, log_scale)
    mean, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))
    low, high, p = _t_interval(mean, se, d.size - 1, confidence)
    return mean, low, high, p


def welch_t(
    base: Sequence[float],
    cand: Sequence[float],
    *,
    log_scale: bool = False,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[float, float, float, float | None]:
    """Welch's t on mean(cand) - mean(base) (of logs with log_scale): (diff, low, high, p)."""
    a, b = _scaled(base, log_scale), _scaled(cand, log_scale)
    if a.size < 2 or b.size < 2:
        raise ValueError("welch_t needs at least 2 values on each side")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    diff, se = float(b.mean() - a.mean()), math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff, 1.0 if diff == 0 else 0.0
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    low, high, p = _t_interval(diff, se, df, confidence)
    return diff, low, high, p


def welch_p(
    base: Sequence[float], cand: Sequence[float], *, log_scale: bool = False
) -> float | None:
    """Two-sided p-value of Welch's t-test; None when a side has fewer than 2 values.

    When both sides have zero variance: identical constants give p=1, different p=0.
    """
    if len(base) < 2 or len(cand) < 2:
        return None
    return welch_t(base, cand, log_scale=log_scale)[3]


def _as_pct(x: float) -> float:
    return 100.0 * math.expm1(x)


def effect(
    base: Sequence[float],
    cand: Sequence[float],
    pairs: Sequence[tuple[float, float]] = (),
    *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> Effect | None:
    """The effect of candidate vs base: paired when >= 2 pairs, else Welch; None if neither.

    Log scale (percent of the ratio) when every value is > 0, else linear differences.
    """
    values = [*base, *cand, *(v for p in pairs for v in p)]
    log_scale = bool(values) and min(values) > 0
    if len(pairs) >= 2:
        b, c = [p[0] for p in pairs], [p[1] for p in pairs]
        mean, low, high, p = paired_t(b, c, log_scale=log_scale, confidence=confidence)
        test, n = "paired-t", len(pairs)
    elif len(base) >= 2 and len(cand) >= 2:
        mean, low, high, p = welch_t(base, cand, log_scale=log_scale, confidence=confidence)
        test, n = "welch", min(len(base), len(cand))
    else:
        return None
    if log_scale:
        mean, low, high = _as_pct(mean), _as_pct(low), _as_pct(high)
    return Effect("log" if log_scale else "linear", mean, low, high, p, test, n)


def benjamini_hochberg(pvalues: Sequence[float | None]) -> list[float | None]:
    """BH-adjusted p-values (q-values) in input order; None entries stay None and don't count."""
    present = [(i, p) for i, p in enumerate(pvalues) if p is not None]
    out: list[float | None] = [None] * len(pvalues)
    if not present:
        return out
    from scipy import stats as sps

    adjusted = sps.false_discovery_control([p for _, p in present], method="bh")
    for (i, _), q in zip(present, adjusted, strict=True):
        out[i] = float(q)
    return out
