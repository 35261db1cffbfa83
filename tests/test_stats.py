"""Estimators of etasvae.stats against known truths; tolerances come from the sampling error."""

import numpy as np
import pytest

from etasvae import stats

# ---------------------------------------------------------------------------------------------- magnitudes


@pytest.mark.parametrize("delta_m", [0.0, 0.1])
def test_b_value_recovers_gr_within_three_standard_errors(delta_m):
    rng = np.random.default_rng(11)
    b_true, n = 1.0, 20_000
    m = stats.gr_magnitudes(n, b_true, 2.0, rng, delta_m=delta_m)
    b = stats.b_value_aki_utsu(m, 2.0, delta_m)
    se = stats.b_value_shi_bolt_error(m, b)
    # Shi–Bolt SE ≈ b/√n = 0.007. Utsu's bin correction is itself off by ≈ -(βΔm)²/24 ≈ -0.55 % for
    # b = 1, Δm = 0.1 (Tinti & Mulargia 1987), well inside 3 SE = 0.021.
    assert se == pytest.approx(b_true / np.sqrt(n), rel=0.05)
    assert abs(b - b_true) < 3 * se


def test_shi_bolt_error_matches_spread_over_replicates():
    rng = np.random.default_rng(12)
    reps, n = 400, 200
    bs, ses = [], []
    for _ in range(reps):
        m = stats.gr_magnitudes(n, 1.0, 2.0, rng)
        b = stats.b_value_aki_utsu(m, 2.0)
        bs.append(b)
        ses.append(stats.b_value_shi_bolt_error(m, b))
    spread = np.std(bs, ddof=1)
    # The sample SD of 400 replicates has a relative SE of 1/√(2·399) ≈ 3.5 %; the MLE's small-sample
    # variance exceeds b²/n by ≈ 4/n = 2 %. 15 % covers both with > 3 SE to spare.
    assert np.mean(ses) == pytest.approx(spread, rel=0.15)


def test_b_positive_recovers_b_and_respects_groups():
    rng = np.random.default_rng(13)
    m = stats.gr_magnitudes(30_000, 1.2, 2.0, rng, delta_m=0.1)
    b, se, n = stats.b_positive(m, dmc=0.2, delta_m=0.1)
    # Positive differences of iid GR magnitudes are GR with the same b (van der Elst 2021); about a
    # third of the 30 000 differences are kept, SE ≈ b/√n ≈ 0.012; consecutive differences share an
    # event, which the Shi–Bolt SE ignores, hence 4 SE rather than 3.
    assert 8000 < n < 12000
    assert abs(b - 1.2) < 4 * se
    # differences never straddle two groups
    mags = np.array([2.0, 3.0, 2.5, 4.0])
    assert stats.magnitude_differences_positive(mags, 0.1).tolist() == pytest.approx([1.0, 1.5])
    assert stats.magnitude_differences_positive(mags, 0.1, groups=[0, 0, 1, 1]).tolist() == pytest.approx([1.0, 1.5])
    assert stats.magnitude_differences_positive(mags, 0.1, groups=[0, 1, 1, 1]).tolist() == pytest.approx([1.5])


def test_gr_magnitudes_truncation_and_binning():
    rng = np.random.default_rng(14)
    m = stats.gr_magnitudes(5000, 1.0, 2.0, rng, mmax=3.0)
    assert m.min() >= 2.0 and m.max() <= 3.0
    m = stats.gr_magnitudes(5000, 1.0, 2.0, rng, delta_m=0.1)
    assert np.allclose(np.round(m * 10), m * 10) and m.min() == pytest.approx(2.0)


# ---------------------------------------------------------------------------------------------- times


def test_cv_and_fano_of_a_poisson_process_are_one():
    rng = np.random.default_rng(21)
    n = 20_000
    t = np.cumsum(rng.exponential(0.2, n))  # rate 5 per day
    cv = stats.coefficient_of_variation(stats.inter_event_times(t))
    # For exponential intervals the delta method gives Var(CV) ≈ 1/n: SE = 0.007.
    assert abs(cv - 1) < 3 / np.sqrt(n)
    counts = stats.counts_in_bins(t, np.zeros(n, int), np.array([t[-1]]), 1.0)
    f = stats.fano_factor(counts)
    # Poisson(λ = 5) counts in k ≈ 4000 bins: Var(F) ≈ (2 + 1/λ)/k, SE ≈ 0.023.
    se = np.sqrt((2 + 1 / 5) / counts.size)
    assert abs(f - 1) < 3 * se


def test_counts_in_bins_and_inter_event_times_by_hand():
    t = np.array([0.1, 0.2, 1.5, 0.5, 2.7, 3.1])
    g = np.array([0, 0, 0, 1, 1, 1])
    counts = stats.counts_in_bins(t, g, np.array([2.0, 3.5]), 1.0)
    # group 0: bins [0,1) [1,2) -> 2, 1; group 1: bins [0,1) [1,2) [2,3) -> 1, 0, 1 (3.1 is in no full bin)
    assert counts.tolist() == [2, 1, 1, 0, 1]
    assert stats.inter_event_times(t, g) == pytest.approx([0.1, 1.3, 2.2, 0.4])
    assert stats.log10_inter_event_times([0.0, 0.0], floor=1e-6) == pytest.approx([-6.0])


# ---------------------------------------------------------------------------------------------- aftershocks


def test_omori_mle_recovers_c_and_p():
    rng = np.random.default_rng(31)
    c_true, p_true, T, n, reps = 0.05, 1.2, 100.0, 400, 30
    seqs = [stats.omori_utsu_sample(n, c_true, p_true, T, rng) for _ in range(reps)]
    fits = [stats.omori_utsu_mle(s, T) for s in seqs]
    p = np.array([f.p for f in fits])
    lc = np.log10([f.c for f in fits])
    assert all(f.converged for f in fits)
    # The mean of 30 replicate MLEs is within 3 standard errors of the mean (SD/√30) of the truth.
    assert abs(p.mean() - p_true) < 3 * p.std(ddof=1) / np.sqrt(reps)
    assert abs(lc.mean() - np.log10(c_true)) < 3 * lc.std(ddof=1) / np.sqrt(reps)
    # K = n / ∫ (t+c)^-p dt reproduces the number of events
    f = fits[0]
    integral = ((T + f.c) ** (1 - f.p) - f.c ** (1 - f.p)) / (1 - f.p)
    assert f.K * integral == pytest.approx(n)
    # the vectorised grid search agrees with the optimiser to within its grid (0.05 in p, 0.125 decade in c)
    grid = stats.omori_utsu_mle_grid(np.concatenate(seqs), np.repeat(np.arange(reps), n), np.full(reps, T))
    assert np.median(np.abs(grid["p"] - p)) < 0.025
    assert np.median(np.abs(np.log10(grid["c"]) - lc)) < 0.0625


def test_omori_grid_fit_in_blocks_of_sequences_is_the_same(monkeypatch):
    # Sequences of mixed sizes (some below min_events, so fitted sequences are renumbered), unsorted labels.
    rng = np.random.default_rng(5)
    sizes = rng.integers(3, 60, 23)
    times = np.concatenate([stats.omori_utsu_sample(k, 0.05, 1.2, 20.0, rng) for k in sizes])
    groups = np.repeat(np.arange(sizes.size), sizes)
    order = rng.permutation(times.size)
    whole = stats.omori_utsu_mle_grid(times[order], groups[order], np.full(sizes.size, 20.0))
    monkeypatch.setattr(stats, "OMORI_GRID_BLOCK", 4)  # several blocks, the last one partial
    blocked = stats.omori_utsu_mle_grid(times[order], groups[order], np.full(sizes.size, 20.0))
    assert (sizes < 10).any() and np.isfinite(whole["p"]).sum() > 8
    for key in ("K", "c", "p", "n"):
        np.testing.assert_array_equal(blocked[key], whole[key], err_msg=key)


def test_omori_stacked_fit_shares_c_and_p():
    rng = np.random.default_rng(32)
    sizes, Ts = [50, 200, 800], [10.0, 30.0, 100.0]
    seqs = [stats.omori_utsu_sample(n, 0.02, 1.1, T, rng) for n, T in zip(sizes, Ts)]
    fit = stats.omori_utsu_mle(seqs, Ts)
    # 1050 events: SE(p) of order 0.03 (spread of the single-sequence replicates above, scaled by √(400/1050))
    assert abs(fit.p - 1.1) < 0.1
    assert fit.K.shape == (3,) and np.all(np.diff(fit.K) > 0)
    few = stats.omori_utsu_mle(np.array([0.1, 0.2, 0.3]), 1.0, min_events=10)
    assert np.isnan(few.p) and np.isnan(few.c) and few.n == 3


def test_bath_gap_and_distances_by_hand():
    assert stats.bath_gap(np.array([2.0, 4.5, 3.1, 3.3, 2.2])) == pytest.approx(1.2)
    assert np.isnan(stats.bath_gap(np.array([2.0, 4.5])))
    d = stats.distances_to_largest(np.array([0.0, 3.0, 0.0]), np.array([0.0, 4.0, 1.0]), np.array([5.0, 2.0, 2.5]))
    assert d == pytest.approx([5.0, 1.0])
    assert stats.inter_event_distances(np.array([0.0, 3.0, 3.0]), np.array([0.0, 4.0, 0.0])) == pytest.approx(
        [5.0, 4.0]
    )
    assert stats.correlation_integral(np.array([0.5, 1.5, 2.5, 0.1]), 1.0) == pytest.approx(0.5)
    nn = stats.nearest_neighbour_distances(np.array([0.0, 1.0, 5.0]), np.zeros(3))
    assert nn == pytest.approx([1.0, 1.0, 4.0])


# ---------------------------------------------------------------------------------------------- two-sample


def test_mmd_permutation_matches_direct_formula_and_detects_a_shift():
    rng = np.random.default_rng(41)
    X = rng.normal(size=(150, 4))
    Y = rng.normal(size=(120, 4))
    mmd2, p_same, sigma = stats.mmd_test(X, Y, rng, n_permutations=200)
    # direct unbiased estimator (Gretton et al. 2012, eq. 3)
    k = lambda a, b: np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))  # noqa: E731
    kxx, kyy, kxy = k(X, X), k(Y, Y), k(X, Y)
    m, n = len(X), len(Y)
    direct = (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean()
    assert mmd2 == pytest.approx(direct, rel=1e-9, abs=1e-12)
    # same distribution: the permutation p-value is uniform; with this seed it is not small
    assert p_same > 0.05
    _, p_shift, _ = stats.mmd_test(X + 0.5, Y, rng, n_permutations=200)
    assert p_shift <= 1 / 201 + 1e-12  # no permutation reaches the observed value


def test_c2st_is_at_chance_for_one_distribution_and_above_for_two():
    rng = np.random.default_rng(42)
    X = rng.normal(size=(400, 5))
    Y = rng.normal(size=(400, 5))
    acc, se, p = stats.c2st(X, Y, rng)
    # under H0 the accuracy over 800 held-out predictions is Binomial(800, 1/2)/800, SE = 0.018
    assert se == pytest.approx(np.sqrt(0.25 / 800))
    assert abs(acc - 0.5) < 3 * se
    Y2 = Y.copy()
    Y2[:, 0] += 1.0  # one coordinate shifted by one SD: Bayes accuracy Φ(0.5) ≈ 0.69
    acc2, se2, p2 = stats.c2st(X, Y2, rng)
    assert acc2 > 0.5 + 5 * se2 and p2 < 1e-6
    for name in ("logistic", "gbm"):
        assert stats.c2st(X, Y2, rng, classifier=name)[0] > 0.5 + 5 * se2


def test_ks_and_wasserstein():
    a = np.array([0.0, 1.0, 2.0])
    d, p = stats.ks_distance(a, a + 10)
    assert d == 1.0 and p < 0.2
    assert stats.wasserstein(a, a + 0.5) == pytest.approx(0.5)
    assert np.isnan(stats.ks_distance(np.array([]), a)[0])


# ---------------------------------------------------------------------------------------------- CSEP


def test_csep_quantiles_by_hand_with_ties():
    sims = np.array([1, 2, 2, 3])
    d1, d2 = stats.csep_number_test(sims, 2)
    assert (d1, d2) == (0.75, 0.75)  # P(N >= 2) and P(N <= 2)
    d1, d2 = stats.csep_number_test(sims, np.array([0, 4]))
    assert d1.tolist() == [1.0, 0.0] and d2.tolist() == [0.0, 1.0]


def test_magnitude_histogram_edges_and_open_last_bin():
    edges = np.round(2.0 + 0.1 * np.arange(5), 10)
    m = np.array([1.95, 2.0, 2.1, 0.1 * 21, 2.35, 2.4, 7.0])  # 0.1*21 = 2.1000000000000001 sits on an edge
    assert stats.magnitude_histogram(m, edges).tolist() == [1, 2, 0, 1, 2]


def test_magnitude_test_separates_b_values():
    rng = np.random.default_rng(51)
    edges = 2.0 + 0.1 * np.arange(30)
    sims = [stats.gr_magnitudes(int(rng.poisson(200)), 1.0, 2.0, rng) for _ in range(300)]
    g_same = stats.csep_magnitude_test(sims, stats.gr_magnitudes(200, 1.0, 2.0, rng), edges)[0]
    g_diff = stats.csep_magnitude_test(sims, stats.gr_magnitudes(200, 0.6, 2.0, rng), edges)[0]
    # γ is uniform when the observation comes from the forecast's law: with this seed it is not small;
    # b = 0.6 against 1.0 over 200 events is a > 10 SE difference, so no simulated catalog is as far.
    assert g_same > 0.05
    assert g_diff < 1 / 300
    # several observed catalogs at once give the same quantiles as one at a time
    obs = [stats.gr_magnitudes(n, 1.0, 2.0, rng) for n in (150, 200, 150)]
    d1, d2, dobs, _ = stats.csep_magnitude_test(sims, obs, edges)
    for k, o in enumerate(obs):
        single = stats.csep_magnitude_test(sims, o, edges)
        assert (d1[k], d2[k], dobs[k]) == pytest.approx(single[:3])
