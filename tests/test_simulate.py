"""The ETAS simulator: schema, determinism, and statistical checks with fixed seeds.

Tolerances come from sampling error, written next to each check: z-scores use the standard error of the
quantity (empirical across independent replicates, or b/sqrt(N) for the b-value) and must stay below 4
(two-sided p ~ 6e-5); distribution checks are Kolmogorov-Smirnov tests required to give p > 0.001.
"""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from etasvae.catalog import CATALOG_COLUMNS, validate_catalog, write_catalog
from etasvae.params import ETASParams, ParameterError, from_sed
from etasvae.simulate import (
    PRUNE_EPSILON,
    _poisson,
    _time_order,
    expected_count,
    family_reach_bound,
    gr_cdf,
    omori_cdf,
    sample_gr_magnitudes,
    sample_kernel_distances,
    sample_omori_times,
    simulate_etas,
    spatial_cdf,
)

Z_MAX = 4.0  # |z| bound for means (two-sided p ~ 6e-5)
P_MIN = 1e-3  # KS p-value bound

# A moderate catalog (~34k events) for the per-event checks: b-value, Omori delays, distances, genealogy.
BIG = ETASParams(mu=20.0, K=0.25, alpha=1.2, c=0.01, p=1.15, D=0.3, q=1.6, gamma=0.8, b=1.0, mc=2.0)
BIG_WINDOW = dict(duration=1000.0, region=(0.0, 200.0, 0.0, 200.0), burn_in=100.0, margin=20.0)

# For counts: spatial kernel far narrower than the margin (sigma <= 0.045 km^2, q = 3: P(r > 5 km) ~ 3e-6),
# so the region has no edge loss and expected_count (a purely temporal expectation) applies.
COUNT = ETASParams(mu=4.0, K=0.3, alpha=0.8, c=0.01, p=1.2, D=0.01, q=3.0, gamma=0.5, b=1.0, mc=2.0, mmax=5.0)
COUNT_WINDOW = dict(region=(0.0, 10.0, 0.0, 10.0), margin=5.0)


@pytest.fixture(scope="module")
def big_catalog():
    return simulate_etas(BIG, rng=np.random.default_rng(20261125), **BIG_WINDOW)


def pairs(cat):
    """(child rows, parent rows) of every event whose parent is in the catalog."""
    parent = cat["parent_id"].to_numpy()
    child = np.flatnonzero(parent >= 0)
    return child, parent[child]


def replicate_counts(params, n_rep, seed, **window):
    return np.array([len(simulate_etas(params, rng=np.random.default_rng([seed, i]), **window)) for i in range(n_rep)])


def z_score(sample, expected):
    """(mean - expected) in units of the standard error of the mean, estimated from the replicates."""
    return (sample.mean() - expected) / (sample.std(ddof=1) / math.sqrt(sample.size))


# ---------------------------------------------------------------------------------------------- schema


def test_catalog_schema_order_and_window(big_catalog):
    cat = big_catalog
    assert list(cat.columns) == list(CATALOG_COLUMNS)
    for name, typ in CATALOG_COLUMNS.items():
        assert cat[name].dtype == np.dtype(typ.to_pandas_dtype()), name
    validate_catalog(cat, mc=BIG.mc)
    t, x, y = (cat[c].to_numpy() for c in ("time", "x", "y"))
    assert np.all(np.diff(t) >= 0) and t[0] >= 0 and t[-1] < BIG_WINDOW["duration"]
    assert x.min() >= 0 and x.max() <= 200 and y.min() >= 0 and y.max() <= 200
    assert np.array_equal(cat["event_id"].to_numpy(), np.arange(len(cat)))


def test_genealogy_parents_precede_children_and_generations_add_up(big_catalog):
    cat = big_catalog
    gen, parent, t = cat["generation"].to_numpy(), cat["parent_id"].to_numpy(), cat["time"].to_numpy()
    child, par = pairs(cat)
    assert np.all(par < child) and np.all(t[par] <= t[child])
    assert np.array_equal(gen[child], gen[par] + 1)
    assert np.all(parent[gen == 0] == -1)
    # burn-in and margin: some aftershocks have parents outside the catalog; they keep their true generation
    orphans = (parent == -1) & (gen > 0)
    assert orphans.sum() > 100
    assert gen.max() >= 5


def test_background_only_when_k_is_zero():
    params = ETASParams(**{**BIG.to_dict(), "K": 0.0})
    cat = simulate_etas(params, duration=100.0, region=(0, 50, 0, 50), rng=np.random.default_rng(1))
    assert (cat["generation"] == 0).all() and (cat["parent_id"] == -1).all()
    # Poisson(mu T = 2000) background: 4 standard deviations = 4 sqrt(2000)
    assert abs(len(cat) - 2000) < 4 * math.sqrt(2000)


# ---------------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_byte_identical_parquet(tmp_path):
    window = dict(duration=200.0, region=(0.0, 60.0, 0.0, 40.0), burn_in=30.0, margin=10.0)
    meta = {"seed": 7, "params": BIG.to_dict()}
    paths = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        cat = simulate_etas(BIG, rng=np.random.default_rng(seed), **window)
        paths.append(tmp_path / f"{name}.parquet")
        write_catalog(cat, paths[-1], meta, mc=BIG.mc)
    a, b, c = (p.read_bytes() for p in paths)
    assert a == b
    assert a != c


def test_table_assembly_in_blocks_gives_the_same_catalog_at_any_block_size(monkeypatch):
    # the final table is assembled in blocks of _BLOCK events (sort keys, records, gathers); blocks of a
    # prime size, which cut the generations' chunks anywhere, must give the arrays of a single block
    # (parents outside the catalog, burn-in and margin included)
    import etasvae.simulate as simulate

    window = dict(duration=300.0, region=(0.0, 60.0, 0.0, 40.0), burn_in=30.0, margin=10.0)
    whole = simulate_etas(BIG, rng=np.random.default_rng(12), **window)
    assert len(whole) > 1000 and (whole["parent_id"] >= 0).any() and (whole["generation"] > 1).any()
    assert len(whole) < simulate._BLOCK
    monkeypatch.setattr(simulate, "_BLOCK", 61)
    blocks = simulate_etas(BIG, rng=np.random.default_rng(12), **window)
    assert whole.equals(blocks)
    assert list(whole.dtypes) == list(blocks.dtypes)
    # near-critical, no magnitude dependence (n = 0.99): genealogies deeper than 128 generations
    deep = ETASParams(mu=2.0, K=0.99, alpha=0.0, c=1e-4, p=3.0, D=0.01, q=3.0, gamma=0.0, b=1.0, mc=2.0, mmax=4.0)
    # mu T/(1-n) = 60,000 events expected (this seed simulates 22,250); a productivity 2 % too high would make
    # the model supercritical and grow without bound: the cap stops it with an error at a few tens of MB
    deep_window = dict(duration=300.0, region=(0.0, 100.0, 0.0, 100.0), max_events=1_000_000)
    blocks = simulate_etas(deep, rng=np.random.default_rng(1), **deep_window)
    monkeypatch.setattr(simulate, "_BLOCK", 2**15)
    whole = simulate_etas(deep, rng=np.random.default_rng(1), **deep_window)
    assert whole["generation"].max() > 128
    assert whole.equals(blocks)
    child, parent = pairs(whole)
    assert np.array_equal(whole["generation"].to_numpy()[child], whole["generation"].to_numpy()[parent] + 1)


# ---------------------------------------------------------------------------------------------- counts


def test_mean_count_matches_expected_count_with_the_omori_deficit():
    # p = 1.2 and a 20-day burn-in: the window is far from stationary, and mu T/(1-n) = 367 is wrong by
    # ~30 standard errors; the exact expectation of the renewal equation is 316.6
    window = dict(duration=50.0, burn_in=20.0, **COUNT_WINDOW)
    counts = replicate_counts(COUNT, 300, seed=11, **window)
    expected = expected_count(COUNT, 50.0, 20.0)
    assert expected < 0.9 * COUNT.mu * 50.0 / (1 - COUNT.branching_ratio())
    assert abs(z_score(counts, expected)) < Z_MAX


def test_mean_count_reaches_mu_t_over_1_minus_n_for_fast_omori_decay():
    # p = 3, c = 0.001 d: mean delay c/(p-2) = 0.001 d, so a 1-day burn-in is stationary
    params = ETASParams(**{**COUNT.to_dict(), "p": 3.0, "c": 0.001})
    stationary = params.mu * 50.0 / (1 - params.branching_ratio())
    assert expected_count(params, 50.0, 1.0) == pytest.approx(stationary, rel=1e-4)
    counts = replicate_counts(params, 300, seed=12, duration=50.0, burn_in=1.0, **COUNT_WINDOW)
    assert abs(z_score(counts, stationary)) < Z_MAX


def test_expected_count_matches_the_exponential_kernel_closed_form():
    # p = 0 with a taper: g(t) = e^(-t/tau)/tau, and C(T) = mu T/(1-n) - mu n tau/(1-n)^2 (1 - e^(-(1-n)T/tau))
    tau = 5.0
    params = ETASParams(mu=2.0, K=0.5, alpha=1.0, c=0.01, p=0.0, D=1.0, q=2.0, gamma=0.5, b=1.0, mc=2.0, tau=tau)
    n, mu = params.branching_ratio(), params.mu

    def cum(t):
        return mu * t / (1 - n) - mu * n * tau / (1 - n) ** 2 * (1 - math.exp(-(1 - n) * t / tau))

    for burn_in, duration in ((0.0, 30.0), (10.0, 30.0), (50.0, 5.0)):
        exact = cum(burn_in + duration) - cum(burn_in)
        assert expected_count(params, duration, burn_in) == pytest.approx(exact, rel=3e-5)  # documented accuracy
        assert expected_count(params, duration, burn_in, grid_growth=0.005) == pytest.approx(exact, rel=1e-5)


def test_expected_count_converges_under_grid_refinement():
    params = ETASParams(mu=5.0, K=0.2, alpha=1.5, c=0.01, p=1.1, D=0.5, q=1.5, gamma=1.0, b=1.0, mc=2.5, mmax=7.5)
    coarse = expected_count(params, 730.0, 365.0)
    fine = expected_count(params, 730.0, 365.0, grid_growth=0.0025)
    assert coarse == pytest.approx(fine, rel=1e-6)
    assert expected_count(ETASParams(**{**params.to_dict(), "K": 0.0}), 730.0, 365.0) == 5.0 * 730.0


# ---------------------------------------------------------------------------------------------- distributions


def test_b_value_by_aki_utsu_matches(big_catalog):
    m = big_catalog["magnitude"].to_numpy()
    b_hat = 1.0 / (math.log(10.0) * (m.mean() - BIG.mc))  # Aki (1965) MLE, continuous magnitudes
    assert abs(b_hat - BIG.b) < 3 * BIG.b / math.sqrt(m.size)  # Aki's standard error b/sqrt(N)


def test_truncated_gr_magnitudes_follow_their_cdf():
    params = ETASParams(**{**BIG.to_dict(), "mmax": 3.5})
    cat = simulate_etas(params, rng=np.random.default_rng(5), duration=200.0, region=(0, 100, 0, 100))
    m = cat["magnitude"].to_numpy()
    assert m.max() <= 3.5 and m.min() >= 2.0
    assert stats.kstest(m, lambda v: gr_cdf(v, 1.0, 2.0, 3.5)).pvalue > P_MIN


def test_direct_aftershock_delays_follow_the_omori_law(big_catalog):
    # a pair is in the catalog only if the child falls before the end: delays are truncated at T - t_parent,
    # so the probability integral transform is F(dt) / F(T - t_parent), uniform on (0, 1)
    t = big_catalog["time"].to_numpy()
    child, par = pairs(big_catalog)
    u = omori_cdf(t[child] - t[par], BIG.p, BIG.c) / omori_cdf(BIG_WINDOW["duration"] - t[par], BIG.p, BIG.c)
    assert child.size > 10_000
    assert stats.kstest(u, "uniform").pvalue > P_MIN


def test_distances_to_parent_follow_the_spatial_kernel(big_catalog):
    # children beyond the region are dropped; within d = the parent's distance to the nearest edge none are,
    # so distances r < d follow the kernel truncated at d: F(r | sigma) / F(d | sigma) is uniform
    cat = big_catalog
    x, y, m = (cat[c].to_numpy() for c in ("x", "y", "magnitude"))
    child, par = pairs(cat)
    r = np.hypot(x[child] - x[par], y[child] - y[par])
    edge = np.minimum.reduce([x[par], 200.0 - x[par], y[par], 200.0 - y[par]])
    sigma = BIG.D * np.exp(BIG.gamma * (m[par] - BIG.mc))
    inside = r < edge
    u = spatial_cdf(r[inside], BIG.q, sigma[inside]) / spatial_cdf(edge[inside], BIG.q, sigma[inside])
    assert inside.sum() > 10_000
    assert stats.kstest(u, "uniform").pvalue > P_MIN


def test_directions_to_parent_are_uniform_on_the_circle(big_catalog):
    # children within the parent's distance to the nearest edge are never dropped, whatever their direction
    cat = big_catalog
    x, y = cat["x"].to_numpy(), cat["y"].to_numpy()
    child, par = pairs(cat)
    dx, dy = x[child] - x[par], y[child] - y[par]
    edge = np.minimum.reduce([x[par], 200.0 - x[par], y[par], 200.0 - y[par]])
    inside = np.hypot(dx, dy) < edge
    angle = np.mod(np.arctan2(dy[inside], dx[inside]), 2.0 * math.pi)
    assert inside.sum() > 10_000
    assert stats.kstest(angle / (2.0 * math.pi), "uniform").pvalue > P_MIN


@pytest.mark.parametrize("q, sigma", [(1.3, 0.05), (1.6, 0.3), (3.0, 2.0)])
def test_spatial_cdf_is_the_integral_of_the_kernel(q, sigma):
    # F(R) = integral over the disc of radius R of f(r|m) = (q-1)/(pi sigma) (1 + r^2/sigma)^-q, by quadrature
    from scipy.integrate import quad

    def density(r):
        return 2.0 * math.pi * r * (q - 1.0) / (math.pi * sigma) * (1.0 + r * r / sigma) ** -q

    for R in (0.1 * math.sqrt(sigma), math.sqrt(sigma), 30.0 * math.sqrt(sigma)):
        integral, err = quad(density, 0.0, R, epsabs=1e-13, epsrel=1e-11)
        assert spatial_cdf(R, q, sigma) == pytest.approx(integral, rel=1e-9, abs=1e-12)


def test_direct_aftershock_counts_follow_the_productivity_law():
    # Pooled over ~150 000 events, the direct aftershocks of each event number Poisson(K e^(alpha (m - Mc))).
    # Fast Omori decay (p = 3, c = 0.001 d: P(delay > 1 d) ~ 1e-6) and a kernel far narrower than a
    # 2000 km region keep every child of an event older than T - 1 d inside the catalog. The sum of counts
    # is Poisson with mean E = sum kappa(m_i) ~ 6.6e4, so its z-score is N(0, 1); a 2 % error in K shifts it
    # by 0.02 sqrt(E) ~ 5 standard errors, beyond Z_MAX = 4.
    params = ETASParams(**{**COUNT.to_dict(), "p": 3.0, "c": 0.001})
    duration = 20_000.0
    cat = simulate_etas(params, duration=duration, region=(0.0, 2000.0, 0.0, 2000.0), margin=5.0, burn_in=1.0,
                        rng=np.random.default_rng(2026))
    t, m = cat["time"].to_numpy(), cat["magnitude"].to_numpy()
    parent = cat["parent_id"].to_numpy()
    edge = np.minimum.reduce([cat["x"].to_numpy(), 2000.0 - cat["x"].to_numpy(),
                              cat["y"].to_numpy(), 2000.0 - cat["y"].to_numpy()])
    parents = (t < duration - 1.0) & (edge > 5.0)
    children = np.bincount(parent[parent >= 0], minlength=len(cat))
    expected = float(np.sum(params.K * np.exp(params.alpha * (m[parents] - params.mc))))
    observed = int(children[parents].sum())
    assert expected > 50_000
    assert abs(observed - expected) / math.sqrt(expected) < Z_MAX


@pytest.mark.parametrize(
    "p, c, tau",
    [
        (1.1, 0.01, 1e3),  # a = 1 - p < 0, the common case
        (1.0, 0.01, 100.0),  # a = 0
        (0.98, 10**-2.5, 10**3.5),  # the Swiss model's omega = -0.02
        (0.5, 0.05, 20.0),  # 0 < a <= 1
        (-0.5, 0.01, 2.0),  # a > 1: gamma proposals
        (1.3, 5.0, 2.0),  # c/tau > 1: only the tail piece
    ],
)
def test_tapered_omori_sampler_follows_its_cdf(p, c, tau):
    dt = sample_omori_times(50_000, p, c, tau, np.random.default_rng(3))
    assert dt.min() >= 0
    assert stats.kstest(dt, lambda v: omori_cdf(v, p, c, tau)).pvalue > P_MIN


def test_untapered_samplers_follow_their_cdfs():
    rng = np.random.default_rng(4)
    dt = sample_omori_times(200_000, 1.1, 0.01, None, rng)
    assert stats.kstest(dt, lambda v: omori_cdf(v, 1.1, 0.01)).pvalue > P_MIN
    sigma = np.exp(rng.uniform(-2, 2, 200_000))  # one sigma per event, as in the simulator
    r = sample_kernel_distances(sigma, 1.6, rng)
    assert stats.kstest(spatial_cdf(r, 1.6, sigma), "uniform").pvalue > P_MIN
    for mmax in (None, 4.0, 2.2):  # 2.2: beta (mmax - mc) < ln 2, the inverse-CDF branch
        m = sample_gr_magnitudes(200_000, 1.1, 2.0, mmax, rng)
        assert stats.kstest(m, lambda v: gr_cdf(v, 1.1, 2.0, mmax)).pvalue > P_MIN


def test_tapered_simulation_delays_follow_the_tapered_law():
    params = ETASParams(**{**BIG.to_dict(), "p": 0.98, "tau": 50.0, "K": 0.2})
    duration = 500.0
    cat = simulate_etas(params, rng=np.random.default_rng(8), duration=duration, region=(0, 200, 0, 200))
    t = cat["time"].to_numpy()
    child, par = pairs(cat)
    cdf = lambda v: omori_cdf(v, params.p, params.c, params.tau)  # noqa: E731
    u = cdf(t[child] - t[par]) / cdf(duration - t[par])
    assert child.size > 3000
    assert stats.kstest(u, "uniform").pvalue > P_MIN


# ---------------------------------------------------------------------------------------------- parameterisations


def test_sed_and_equivalent_ogata_parameters_give_the_same_catalogs():
    mc, area = 2.0, 100.0 * 100.0
    sed = dict(
        log10_mu=-3.2, log10_k0=-2.4, a=1.6, log10_c=-2.5, omega=-0.02, log10_tau=2.0, log10_d=-0.5, gamma=1.2, rho=0.6
    )
    from_package = from_sed(**sed, b=1.0, mc=mc, area_km2=area)
    # the equivalent ETAS parameters derived independently: K by numerical integration of the SED kernel
    k0, c, d, tau = (10 ** sed[k] for k in ("log10_k0", "log10_c", "log10_d", "log10_tau"))
    time_integral = sum(
        integrate.quad(lambda t: math.exp(-t / tau) * (t + c) ** -(1 + sed["omega"]), lo, hi, epsrel=1e-11, limit=200)[
            0
        ]
        for lo, hi in ((0, c), (c, 1.0), (1.0, 100.0), (100.0, np.inf))
    )
    space_integral = integrate.quad(
        lambda r: 2 * math.pi * r * (r * r + d) ** -(1 + sed["rho"]), 0, np.inf, epsrel=1e-11, limit=200
    )[0]
    by_hand = ETASParams(
        mu=10 ** sed["log10_mu"] * area,
        K=k0 * time_integral * space_integral,
        alpha=sed["a"] - sed["rho"] * sed["gamma"],
        c=c,
        p=1 + sed["omega"],
        D=d,
        q=1 + sed["rho"],
        gamma=sed["gamma"],
        b=1.0,
        mc=mc,
        tau=tau,
    )
    assert by_hand.K == pytest.approx(from_package.K, rel=1e-7)
    window = dict(duration=100.0, region=(0.0, 100.0, 0.0, 100.0), burn_in=50.0, margin=10.0)
    samples = []
    for params, seed in ((from_package, 21), (by_hand, 22)):
        cats = [simulate_etas(params, rng=np.random.default_rng([seed, i]), **window) for i in range(60)]
        counts = np.array([len(cat) for cat in cats])
        mags = np.concatenate([cat["magnitude"].to_numpy() for cat in cats])
        # replicates are independent, inter-event times within one are not: compare per-catalog means
        log_gaps = np.array([np.log10(np.diff(cat["time"].to_numpy()) + 1e-9).mean() for cat in cats])
        samples.append((counts, mags, log_gaps))
    (c1, m1, g1), (c2, m2, g2) = samples
    assert c1.mean() > 500

    def welch_z(a, b):
        return (a.mean() - b.mean()) / math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)

    assert abs(welch_z(c1, c2)) < Z_MAX
    assert abs(welch_z(g1, g2)) < Z_MAX
    assert stats.ks_2samp(m1, m2).pvalue > P_MIN  # magnitudes are iid GR whatever the clustering


# ---------------------------------------------------------------------------------------------- refusals


def test_supercritical_needs_a_cap_and_stops_at_it():
    params = ETASParams(**{**BIG.to_dict(), "K": 0.5, "mmax": 6.0})
    assert params.branching_ratio() > 1
    window = dict(duration=5000.0, region=(0.0, 50.0, 0.0, 50.0))
    with pytest.raises(ParameterError, match="supercritical"):
        simulate_etas(params, rng=np.random.default_rng(0), **window)
    with pytest.raises(RuntimeError, match="max_events = 20000"):
        simulate_etas(params, rng=np.random.default_rng(0), max_events=20_000, **window)


def test_invalid_parameters_and_windows_are_refused():
    with pytest.raises(ParameterError) as info:
        simulate_etas(
            ETASParams(**{**BIG.to_dict(), "q": 0.9}), duration=1.0, region=(0, 1, 0, 1), rng=np.random.default_rng(0)
        )
    assert info.value.key == "q"
    good = dict(duration=10.0, region=(0.0, 10.0, 0.0, 10.0))
    for bad in (
        dict(duration=0.0),
        dict(duration=math.inf),
        dict(region=(0.0, 0.0, 0.0, 1.0)),
        dict(region=(0, 1, 0)),
        dict(burn_in=-1.0),
        dict(margin=math.nan),
    ):
        with pytest.raises(ValueError):
            simulate_etas(BIG, rng=np.random.default_rng(0), **{**good, **bad})


# ---------------------------------------------------------------------------------------------- time order


def test_time_order_is_exact_for_ties_and_near_ties(monkeypatch):
    # many values per time quantum (duration / 2^(64 - 17)) and exact ties: the key sort's fix-up must give
    # the exact stable order
    import etasvae.simulate as simulate

    rng = np.random.default_rng(9)
    base = rng.uniform(0, 10.0, 40_000)
    quantum = 10.0 / 2.0**47
    time = np.concatenate([base, base[:20_000], base[:20_000] + quantum * rng.uniform(0, 3, 20_000)])
    rng.shuffle(time)
    rank = np.empty(time.size, dtype=np.int32)
    perm = _time_order(time, 10.0, rank)
    assert np.array_equal(perm, np.argsort(time, kind="stable"))
    assert np.array_equal(rank[perm], np.arange(time.size))  # the inverse permutation, ties included
    # the same order from the times in pieces (a simulation's generations), in blocks that cut them anywhere
    pieces = np.split(time, [5_000, 5_061, 50_000])
    assert np.array_equal(_time_order(pieces, 10.0), perm)
    # runs of equal quanta across the edges of blocks (a prime size: ~1,300 edges, half of them in a run)
    monkeypatch.setattr(simulate, "_BLOCK", 61)
    rank[:] = -1
    assert np.array_equal(_time_order(pieces, 10.0, rank), perm)
    assert np.array_equal(rank[perm], np.arange(time.size))


def test_poisson_counts_follow_the_poisson_law():
    from etasvae.simulate import _poisson

    rng = np.random.default_rng(10)
    for lam in (0.05, 0.3, 1.5, 12.0):
        x = _poisson(np.full(300_000, lam, dtype=np.float32), rng)
        lam = float(np.float32(lam))
        # chi-square over cells "<= lo", lo+1, ..., hi-1, ">= hi", where lo and hi are the first and last
        # counts expected at least 5 times (the test's validity condition)
        frequent = np.flatnonzero(stats.poisson.pmf(np.arange(200), lam) * x.size >= 5)
        lo, hi = frequent[0], frequent[-1]
        middle = np.arange(lo + 1, hi)
        observed = np.concatenate([[(x <= lo).sum()], np.bincount(x, minlength=hi)[lo + 1 : hi], [(x >= hi).sum()]])
        expected = x.size * np.concatenate(
            [[stats.poisson.cdf(lo, lam)], stats.poisson.pmf(middle, lam), [stats.poisson.sf(hi - 1, lam)]]
        )
        chi2 = ((observed - expected) ** 2 / expected).sum()
        assert stats.chi2.sf(chi2, observed.size - 1) > P_MIN


def test_an_empty_window_gives_an_empty_catalog_with_the_schema():
    params = ETASParams(**{**BIG.to_dict(), "mu": 1e-9})
    cat = simulate_etas(params, duration=1.0, region=(0.0, 1.0, 0.0, 1.0), rng=np.random.default_rng(0))
    assert len(cat) == 0 and list(cat.columns) == list(CATALOG_COLUMNS)
    assert all(cat[name].dtype == np.dtype(typ.to_pandas_dtype()) for name, typ in CATALOG_COLUMNS.items())


# ------------------------------------------------------------------------------------------------- pruning


def family_reach(params, magnitude, lags, distances, n_families, rng):
    """Monte Carlo: per family of one event of ``magnitude`` at (0, 0, t = 0), the number of descendants
    with total delay >= lag and displacement >= distance; (mean, standard error) over families, [lag, dist]."""
    x, y, t = np.zeros(n_families), np.zeros(n_families), np.zeros(n_families)
    m, family = np.full(n_families, float(magnitude)), np.arange(n_families)
    per_family = np.zeros((n_families, lags.size, distances.size))
    while m.size:
        idx = np.repeat(np.arange(m.size), rng.poisson(params.K * np.exp(params.alpha * (m - params.mc))))
        r = sample_kernel_distances(params.D * np.exp(params.gamma * (m[idx] - params.mc)), params.q, rng)
        angle = rng.uniform(0.0, 2.0 * np.pi, idx.size)
        x, y = x[idx] + r * np.cos(angle), y[idx] + r * np.sin(angle)
        t = t[idx] + sample_omori_times(idx.size, params.p, params.c, params.tau, rng)
        family, m = family[idx], sample_gr_magnitudes(idx.size, params.b, params.mc, params.mmax, rng)
        reach = (t[:, None, None] >= lags[None, :, None]) & (np.hypot(x, y)[:, None, None] >= distances)
        np.add.at(per_family, family, reach)
    return per_family.mean(axis=0), per_family.std(axis=0, ddof=1) / math.sqrt(n_families)


@pytest.mark.parametrize(
    "params, magnitude",
    [
        (ETASParams(mu=1.0, K=0.3, alpha=1.0, c=0.01, p=1.3, D=1.0, q=1.5, gamma=0.5, b=1.0, mc=2.0, mmax=6.0), 3.0),
        (ETASParams(mu=1.0, K=0.2, alpha=0.8, c=0.1, p=1.1, D=0.05, q=3.0, gamma=1.0, b=1.0, mc=2.0), 2.0),
    ],
)
def test_family_reach_bound_is_above_the_simulated_reach(params, magnitude):
    # the bound must not fall below the Monte Carlo mean by more than 4 standard errors anywhere; at distance
    # and lag 0 it is the exact family size kappa(m)/(1 - n), so a missing factor shows there
    lags, distances = np.array([0.0, 1.0, 30.0]), np.array([0.0, 1.0, 3.0, 10.0, 30.0])
    mean, se = family_reach(params, magnitude, lags, distances, 20_000, np.random.default_rng(11))
    bound = family_reach_bound(params, [magnitude], lags, distances)[0]
    assert np.all(mean <= bound + Z_MAX * se)
    kappa = params.K * math.exp(params.alpha * (magnitude - params.mc))
    assert bound[0, 0] == pytest.approx(kappa / (1.0 - params.branching_ratio()), rel=1e-9)


def test_pruning_keeps_the_count_and_drops_work_where_the_kernel_is_steep():
    # COUNT's kernel (q = 3, D = 0.01 km^2) makes the outer part of a 5 km margin irrelevant: pruning must
    # drop part of the simulated events and leave the mean count unchanged within sampling error (two-sample z on
    # independent replicates; the bias bound, 1e-4 per pruned event, is far below it)
    window = dict(duration=200.0, burn_in=20.0, **COUNT_WINDOW)
    counts, simulated = {}, {}
    for prune in (True, False):
        runs = []
        for i in range(150):
            st = {}
            cat = simulate_etas(COUNT, rng=np.random.default_rng([31, i, prune]), prune=prune, stats=st, **window)
            runs.append((len(cat), st["simulated"], st["pruned"]))
        counts[prune] = np.array([r[0] for r in runs], dtype=float)
        simulated[prune] = sum(r[1] for r in runs)
        if not prune:
            assert all(r[2] == 0 for r in runs)
    se = math.sqrt(counts[True].var(ddof=1) / counts[True].size + counts[False].var(ddof=1) / counts[False].size)
    assert abs(counts[True].mean() - counts[False].mean()) / se < Z_MAX
    # pruned events are still drawn (they count as simulated), their families are not: measured 0.83
    assert simulated[True] < 0.9 * simulated[False]


def test_pruning_leaves_heavy_kernel_catalogs_byte_identical():
    # BIG's kernel (q = 1.6) reaches across its 20 km margin: nothing may be pruned, the catalog is the same
    st = {}
    pruned = simulate_etas(BIG, rng=np.random.default_rng(5), stats=st, **{**BIG_WINDOW, "duration": 200.0})
    plain = simulate_etas(BIG, rng=np.random.default_rng(5), prune=False, **{**BIG_WINDOW, "duration": 200.0})
    assert st["pruned"] == 0 and st["simulated"] > len(plain) > 0
    assert pruned.equals(plain)
    assert PRUNE_EPSILON == 1e-4  # the documented bound (docs/methods/etas.md, docs/design.md)


def test_poisson_counts_where_every_hit_is_a_single_event():
    """Rates so small that no entry draws two (``_poisson_hits`` then gives no counts): ones and zeros, and
    the total is Poisson(sum of rates) = Poisson(10) here, so within 5 of its sd (sqrt 10) of 10."""
    counts = _poisson(np.full(100_000, 1e-4), np.random.default_rng(0))
    assert set(np.unique(counts)) <= {0, 1} and abs(counts.sum() - 10) < 5 * np.sqrt(10)
