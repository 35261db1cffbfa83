"""Statistics that a small error would leave unnoticed elsewhere: the b-value at a precision where 2 % is many
standard errors, the permutation p-value's +1, and the CSEP mid-quantile's split of ties, checked by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from etasvae import stats
from etasvae.evaluate.statistics import set_data
from etasvae.evaluate.window_tests import csep_number_comparison, mmd_with_null
from etasvae.params import ETASParams
from etasvae.simulate import sample_gr_magnitudes, simulate_etas

LN10 = math.log(10.0)

# ------------------------------------------------------------------------------------------ b-value

# 250,000 magnitudes: the b-value's standard error is b/sqrt(N) = 0.002 (Aki 1965), so an error of 2 % in b
# (0.02) is 10 standard errors while the bound, 4 standard errors (two-sided p ~ 6e-5), is 0.008.
N_MAGNITUDES = 250_000
B_SE = 1.0 / math.sqrt(N_MAGNITUDES)


def test_aki_utsu_b_value_to_a_fifth_of_a_percent():
    # The magnitudes come from numpy's exponential sampler, not from ours: the estimator alone is checked.
    rng = np.random.default_rng(240)
    m = 2.0 + rng.exponential(1.0 / LN10, N_MAGNITUDES)
    b = stats.b_value_aki_utsu(m, 2.0)
    assert stats.b_value_shi_bolt_error(m, b) == pytest.approx(B_SE, rel=0.02)  # its own SE: b/sqrt(N)
    assert abs(b - 1.0) < 4 * B_SE
    b_err = stats.b_value_and_error(m, 2.0)
    assert b_err[0] == b and abs(b_err[1] - B_SE) < 0.02 * B_SE


def _mean_excess_z(m, mc, b):
    """z-score of the mean magnitude above Mc against Gutenberg-Richter's 1/beta; its standard error is
    1/(beta sqrt(N)) (the exponential law's SD is its mean): relative 1/sqrt(N) = 0.2 % here."""
    beta = b * LN10
    return (np.mean(m - mc) - 1.0 / beta) / (1.0 / (beta * math.sqrt(m.size)))


@pytest.mark.parametrize("b", [0.8, 1.2])
def test_samplers_draw_the_b_value_they_are_given(b):
    # A 2 % error in b moves the mean excess by 2 % = 10 standard errors; the bound is 4.
    rng = np.random.default_rng(241)
    assert abs(_mean_excess_z(stats.gr_magnitudes(N_MAGNITUDES, b, 2.0, rng), 2.0, b)) < 4
    assert abs(_mean_excess_z(sample_gr_magnitudes(N_MAGNITUDES, b, 2.0, None, rng), 2.0, b)) < 4


def test_simulated_magnitudes_have_the_parameters_b_value():
    # K = 0: a Poisson background of mu T = 250,000 events, every magnitude drawn by the simulator itself.
    params = ETASParams(mu=2500.0, K=0.0, alpha=1.0, c=0.01, p=1.2, D=1.0, q=1.5, gamma=0.5, b=1.1, mc=2.0)
    cat = simulate_etas(params, duration=100.0, region=(0.0, 10.0, 0.0, 10.0), rng=np.random.default_rng(242))
    m = cat["magnitude"].to_numpy(dtype=float)
    assert abs(len(m) - N_MAGNITUDES) < 4 * math.sqrt(N_MAGNITUDES)  # Poisson count
    assert abs(_mean_excess_z(m, 2.0, 1.1)) < 4
    b = stats.b_value_aki_utsu(m, 2.0)
    assert abs(b - 1.1) < 4 * 1.1 / math.sqrt(m.size)


# ------------------------------------------------------------------------------------ MMD p-value

PERMUTATIONS = 99


def _two_samples(rng, shift):
    return rng.normal(size=(60, 3)) + shift, rng.normal(size=(50, 3))


def test_mmd_p_value_of_a_clear_difference_is_one_over_permutations_plus_one():
    """Samples 3 SD apart: no permuted split comes near the observed MMD², so the p-value is exactly
    (1 + 0)/(1 + P), never 0 (a permutation test counts the observed split as one of the permutations)."""
    rng = np.random.default_rng(243)
    X, Y = _two_samples(rng, 3.0)
    _, p, _ = stats.mmd_test(X, Y, rng, n_permutations=PERMUTATIONS)
    assert p == 1.0 / (PERMUTATIONS + 1)
    _, p, _ = mmd_with_null(X, Y, 1.0, rng, PERMUTATIONS, 100)
    assert p == 1.0 / (PERMUTATIONS + 1)


def test_mmd_p_values_of_one_distribution_lie_on_the_permutation_grid():
    """Under one distribution the p-value takes the values k/(P + 1), k = 1..P + 1 (valid: P(p <= k/(P + 1))
    = k/(P + 1)); 0 and multiples of 1/P are off that grid."""
    rng = np.random.default_rng(244)
    values = []
    for _ in range(20):
        X, Y = _two_samples(rng, 0.0)
        values.append(stats.mmd_test(X, Y, rng, n_permutations=PERMUTATIONS)[1])
        values.append(mmd_with_null(X, Y, 1.0, rng, PERMUTATIONS, 100)[1])
    k = np.asarray(values) * (PERMUTATIONS + 1)
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    assert k.min() >= 1 and k.max() <= PERMUTATIONS + 1


# ------------------------------------------------------------------------------------ CSEP mid-quantile


def _count_windows(counts, duration=10.0):
    """Windows of ``duration`` days holding the given numbers of events (times inside [0, duration))."""
    out = []
    for n in counts:
        w = pd.DataFrame({"time": np.linspace(0.5, duration - 0.5, n) if n else np.zeros(0),
                          "magnitude": np.full(n, 3.0), "x": np.zeros(n), "y": np.zeros(n)})
        w.attrs["duration"] = duration
        out.append(w)
    return out


def test_csep_number_mid_quantile_splits_ties_by_hand():
    """Forecast counts {1, 2, 2, 3}, observed counts 1, 2, 3. Mid-quantiles P(X < x) + P(X = x)/2:
    x = 1: 0 + 1/8; x = 2: 1/4 + 1/4; x = 3: 3/4 + 1/8, i.e. 1/8, 1/2, 7/8. Their KS distance from U(0, 1),
    max over i of (i/3 - q_i, q_i - (i-1)/3), is 1/3 - 1/8 = 5/24. Without the split, P(X <= x) gives
    1/4, 3/4, 1 and P(X < x) gives 0, 1/4, 3/4: distance 5/12 either way."""
    data = {k: set_data(_count_windows([1, 2, 2, 3]), 2.0, 0.0, 10) for k in ("S", "A", "P")}
    data["H"] = set_data(_count_windows([1, 2, 3]), 2.0, 0.0, 10)
    c = csep_number_comparison(data, 1.0, 0.05)
    for k in ("S", "A", "P"):
        assert c.d[k] == pytest.approx(5 / 24, abs=1e-12)
        # two-sided rejection min(δ1, δ2) < α/2: δ1 = P(X >= x) is 1, 3/4, 1/4 and δ2 = P(X <= x) 1/4, 3/4, 1
        assert c.values[k] == 0.0
    wide = csep_number_comparison(data, 1.0, 0.6)  # α/2 = 0.3 > 1/4: x = 1 and x = 3 are rejected
    assert all(wide.values[k] == pytest.approx(2 / 3) for k in ("S", "A", "P"))
