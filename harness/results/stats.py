"""Statistics for A/B comparisons: summaries, bootstrap intervals, Welch's t-test, FDR.

Method (also printed in every report, see METHOD_TEXT):
- Each side's repetitions are summarised by mean and median.
- The confidence interval of the mean is a bootstrap percentile interval: 10,000 resamples
  with replacement, fixed seed, so the same numbers always give the same interval. With
  3-5 repetitions it is narrow (it can never leave [min, max]); it shows spread, it does
  not decide significance.
- Significance is Welch's unequal-variance t-test, two-sided, on the logarithms when all
  values are positive (noise on a shared TCG host is multiplicative: one repetition can
  run at several times another's speed). It is used rather than
  Mann-Whitney U because with 3 vs 3 repetitions U's smallest possible p-value is 0.1, so
  it could never flag anything at the default repetitions.
- A plan yields dozens of metrics, so raw p-values are adjusted with Benjamini-Hochberg
  (false discovery rate) over all directional metrics of one comparison; without it an A/A
  run over the default plan would raise a false alarm almost every time.
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
    "Mean and median per side over repetitions. Confidence interval: bootstrap percentile "
    "interval of the mean ({conf:.0%}, {n:,} resamples, fixed seed {seed}). Significance: "
    "Welch's two-sided t-test (on log values when all are positive), p-values adjusted "
    "with Benjamini-Hochberg over all metrics "
    "with a known direction (q < {alpha}). A change counts only if it is significant and at "
    "least the metric's minimum change (5% for most metrics, as lkp does)."
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


def welch_p(
    base: Sequence[float], cand: Sequence[float], *, log_scale: bool = False
) -> float | None:
    """Two-sided p-value of Welch's t-test; None when a side has fewer than 2 values.

    log_scale tests the logarithms (all values must be > 0): throughput and latency noise
    is multiplicative, and on a loaded TCG host one rep can be several times another.

    When both sides have zero variance the t statistic is undefined: identical constants
    give p=1, different constants p=0 (a deterministic difference, e.g. stack depth).
    """
    a = np.asarray(base, dtype=float)
    b = np.asarray(cand, dtype=float)
    if a.size < 2 or b.size < 2:
        return None
    if log_scale:
        if min(a.min(), b.min()) <= 0:
            raise ValueError("log_scale needs values > 0")
        a, b = np.log(a), np.log(b)
    if a.var(ddof=1) == 0 and b.var(ddof=1) == 0:
        return 1.0 if a.mean() == b.mean() else 0.0
    from scipy import stats as sps  # 2 s to import: only when comparing

    result = sps.ttest_ind(a, b, equal_var=False)
    p = float(result.pvalue)
    return None if math.isnan(p) else p


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
