"""Statistics against known values: hand-computed Welch t, textbook BH, bootstrap properties."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness.results import stats


def test_summarize_known_values():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0, 10.0])
    assert (s.n, s.mean, s.median) == (5, 4.0, 3.0)
    assert s.stdev == pytest.approx(math.sqrt(12.5))
    assert s.ci_low < s.mean < s.ci_high
    assert 1.0 <= s.ci_low and s.ci_high <= 10.0


def test_welch_matches_hand_computed_statistic():
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 7.0]
    # Welch: t = (ma - mb) / sqrt(va/na + vb/nb), Welch-Satterthwaite degrees of freedom.
    va, vb = 1.0, 7.0 / 3.0
    se2 = va / 3 + vb / 3
    t = (2.0 - 16.0 / 3.0) / math.sqrt(se2)
    df = se2**2 / ((va / 3) ** 2 / 2 + (vb / 3) ** 2 / 2)
    expected = 2 * sps.t.sf(abs(t), df)
    assert stats.welch_p(a, b) == pytest.approx(expected, rel=1e-12)
    assert stats.welch_p(a, b) == pytest.approx(0.04191, abs=1e-5)


def test_welch_degenerate_cases():
    assert stats.welch_p([5.0, 5.0], [5.0, 5.0]) == 1.0
    assert stats.welch_p([5.0, 5.0], [6.0, 6.0]) == 0.0
    assert stats.welch_p([1.0], [2.0, 3.0]) is None


def test_benjamini_hochberg_textbook():
    # Benjamini & Hochberg style example: sorted p 0.01,0.02,0.03,0.04,0.05 with m=5
    # gives q = p*m/rank = 0.05 for every one of them.
    q = stats.benjamini_hochberg([0.05, 0.01, None, 0.03, 0.02, 0.04])
    assert q[2] is None
    assert [round(x, 10) for x in q if x is not None] == [0.05] * 5
    q2 = stats.benjamini_hochberg([0.001, 0.5])
    assert q2 == pytest.approx([0.002, 0.5])
    assert stats.benjamini_hochberg([None]) == [None]


def test_pct_change():
    assert stats.pct_change(200.0, 150.0) == pytest.approx(-25.0)
    assert stats.pct_change(-10.0, -5.0) == pytest.approx(50.0)
    assert stats.pct_change(0.0, 3.0) is None


def test_bootstrap_is_deterministic_and_seed_dependent():
    data = [10.013, 12.291, 9.347, 11.562, 10.508, 13.77]
    assert stats.bootstrap_ci(data) == stats.bootstrap_ci(data)
    assert stats.bootstrap_ci(data, seed=1) != stats.bootstrap_ci(data, seed=2)
    assert stats.bootstrap_ci([7.0, 7.0, 7.0]) == (7.0, 7.0)
    assert stats.bootstrap_ci([3.0]) == (3.0, 3.0)


def test_bootstrap_agrees_with_t_interval_for_large_normal_sample():
    rng = np.random.default_rng(0)
    data = rng.normal(100.0, 10.0, size=400)
    low, high = stats.bootstrap_ci(data)
    t_low, t_high = sps.t.interval(0.95, len(data) - 1, loc=data.mean(), scale=sps.sem(data))
    assert low == pytest.approx(t_low, abs=0.15)
    assert high == pytest.approx(t_high, abs=0.15)


def test_bootstrap_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(1)
    data = rng.exponential(5.0, size=60)
    low, high = stats.bootstrap_ci(data)
    ref = sps.bootstrap(
        (data,), np.mean, method="percentile", n_resamples=20_000, rng=np.random.default_rng(2)
    ).confidence_interval
    assert low == pytest.approx(ref.low, rel=0.02)
    assert high == pytest.approx(ref.high, rel=0.02)


def test_empty_input_is_an_error():
    with pytest.raises(ValueError):
        stats.summarize([])


def test_welch_log_scale_is_welch_on_logarithms():
    a, b = [2117.0, 9991.0, 5000.0], [199.0, 201.0, 200.0]
    expected = sps.ttest_ind(np.log(a), np.log(b), equal_var=False).pvalue
    assert stats.welch_p(a, b, log_scale=True) == pytest.approx(expected, rel=1e-12)
    # A 4.7x spread on base hides a 96% drop on the linear scale, not on the log scale.
    assert stats.welch_p(a, b) > 0.05 > stats.welch_p(a, b, log_scale=True)
    with pytest.raises(ValueError):
        stats.welch_p([0.0, 1.0], [1.0, 2.0], log_scale=True)


def test_paired_t_matches_scipy_ttest_rel_and_its_interval():
    base, cand = [27.7, 40.3, 33.1, 30.2], [7.1, 7.4, 7.3, 6.9]
    mean, low, high, p = stats.paired_t(base, cand, log_scale=True)
    ref = sps.ttest_rel(np.log(cand), np.log(base))
    ci = ref.confidence_interval(0.95)
    assert p == pytest.approx(ref.pvalue, rel=1e-12)
    assert (low, high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert mean == pytest.approx(np.mean(np.log(cand) - np.log(base)))
    lin = stats.paired_t([1.0, 2.0, 4.0], [2.0, 2.5, 6.0])
    ref = sps.ttest_rel([2.0, 2.5, 6.0], [1.0, 2.0, 4.0])
    assert lin[3] == pytest.approx(ref.pvalue, rel=1e-12)
    assert lin[1:3] == pytest.approx(tuple(ref.confidence_interval()), rel=1e-12)


def test_welch_t_interval_matches_scipy():
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 7.0]
    diff, low, high, p = stats.welch_t(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    assert p == pytest.approx(ref.pvalue, rel=1e-12)
    assert (low, high) == pytest.approx(tuple(ref.confidence_interval()), rel=1e-12)
    assert diff == pytest.approx(16.0 / 3.0 - 2.0)


def test_pairing_sees_a_drop_that_drift_hides_from_welch():
    # Host load drifts by 2x between repetitions; within each A/B pair the candidate is 20%
    # slower. Welch on the pooled sides cannot tell; the paired log-ratios are constant-ish.
    base = [10_000.0, 20_000.0, 14_000.0]
    cand = [8_100.0, 15_800.0, 11_300.0]
    assert stats.welch_p(base, cand, log_scale=True) > 0.3
    e = stats.effect(base, cand, list(zip(base, cand, strict=True)))
    assert e.test == "paired-t" and e.n == 3 and e.scale == "log"
    assert e.p_value < 0.01
    assert e.low < e.estimate < e.high < 0
    assert e.estimate == pytest.approx(100 * (np.exp(np.mean(np.log(np.divide(cand, base)))) - 1))


def test_effect_falls_back_to_welch_and_to_linear_scale():
    e = stats.effect([1.0, 2.0, 3.0], [4.0, 5.0, 7.0], pairs=[(1.0, 4.0)])
    assert e.test == "welch" and e.scale == "log"
    z = stats.effect([0.0, 0.0, 1.0], [40.0, 42.0, 41.0], [(0.0, 40.0), (0.0, 42.0), (1.0, 41.0)])
    assert z.scale == "linear" and z.estimate == pytest.approx((40.0 + 42.0 + 40.0) / 3)
    assert stats.effect([1.0], [2.0]) is None


def test_paired_degenerate_cases():
    assert stats.paired_t([1.0, 2.0], [1.0, 2.0])[3] == 1.0
    mean, low, high, p = stats.paired_t([1.0, 2.0], [2.0, 3.0])
    assert (mean, low, high, p) == (1.0, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        stats.paired_t([1.0], [2.0])
