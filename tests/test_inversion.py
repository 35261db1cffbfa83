"""ETAS inversion: the likelihood against a direct computation, the region integral against adaptive
quadrature, recovery of simulated parameters within their standard errors, and the command line.

Recovery tolerances come from the number of replicates R (independent catalogs): per parameter the mean
z-score has standard error 1/sqrt(R) when the reported standard errors are right, so |mean z| < 4/sqrt(R)
(two-sided p ~ 6e-5); the mean of z^2 is chi^2_R / R, which must lie between the 1e-4 and 1 - 1e-4
quantiles of that law (a standard error off by a factor ~2 fails it).
"""

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from comcat_files import dataset_config, write_comcat_csv
from likelihood_checks import check_gradients_and_far_rate, gradient_by_differences
from etasvae.catalog import read_catalog, write_catalog
from etasvae.inversion import (
    InversionError,
    Sequence,
    _build,
    _constrained_theta,
    _Likelihood,
    _natural,
    _to_theta,
    catalog_sequence,
    fit_catalog,
    fit_sequences,
    param_names,
    profile_interval,
    profile_loglik,
    profile_parameters,
    signed_root,
    window_sequences,
)
from etasvae.params import ETASParams
from etasvae.realdata import check_dataset, import_dataset
from etasvae.simulate import simulate_etas
from etasvae.inversion_geometry import _region_quadrature
from etasvae.stats import b_value_aki_utsu

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1] / "benchmarks"))
from recovery_study import recovery_zscores  # noqa: E402

REGION = (0.0, 100.0, 0.0, 50.0)


def _polar_fraction(x, y, sigma, q, radius, region=REGION):
    """Mass of f(.|sigma, q), cut at ``radius``, inside the rectangle: adaptive quadrature over the angle."""

    def radial_cdf(theta):
        dx, dy = math.cos(theta), math.sin(theta)
        ts = []
        if dx > 0:
            ts.append((region[1] - x) / dx)
        if dx < 0:
            ts.append((region[0] - x) / dx)
        if dy > 0:
            ts.append((region[3] - y) / dy)
        if dy < 0:
            ts.append((region[2] - y) / dy)
        rho = min(min(ts), radius)
        return 1.0 - (1.0 + rho * rho / sigma) ** (1.0 - q)

    value, _ = integrate.quad(radial_cdf, 0.0, 2.0 * math.pi, limit=500, epsabs=1e-12)
    return value / (2.0 * math.pi)


def _quadrature_fraction(x, y, sigma, q, radius):
    reg = np.array([REGION])
    r2 = None if math.isinf(radius) else np.array([radius * radius])
    (rho2, w), (const_w, big_r2) = _region_quadrature(np.array([x], float), np.array([y], float), reg, r2)
    inside = float((w * (1.0 - (1.0 + rho2 / sigma) ** (1.0 - q))).sum())
    tail = 0.0 if math.isinf(big_r2[0]) else (1.0 + big_r2[0] / sigma) ** (1.0 - q)
    return inside + float(const_w[0]) * (1.0 - tail)


@pytest.mark.parametrize(
    "x, y, sigma, q, radius, tol",
    [
        (50.0, 25.0, 0.5, 1.5, 20.0, 1e-9),  # disc inside the region
        (99.0, 1.0, 0.5, 1.5, math.inf, 1e-7),  # near a corner, no cut
        (50.0, 25.0, 100.0, 1.2, math.inf, 1e-7),  # kernel wider than the region
        (3.0, 49.9, 10.0, 2.0, math.inf, 1e-3),  # 0.1 km from an edge, sigma = 10 km^2
        (0.01, 25.0, 0.5, 1.5, 20.0, 1e-3),  # 10 m from an edge: Gauss-Legendre is within 1e-3 there
    ],
)
def test_region_quadrature_matches_adaptive_quadrature(x, y, sigma, q, radius, tol):
    assert _quadrature_fraction(x, y, sigma, q, radius) == pytest.approx(_polar_fraction(x, y, sigma, q, radius), abs=tol)


def _direct_loglik(t, m, x, y, t0, t1, mc, v):
    """Sum of log lambda over the targets minus the integral, every pair, written from the README formula."""
    area = (REGION[1] - REGION[0]) * (REGION[3] - REGION[2])
    total = 0.0
    for i in range(t.size):
        if t[i] < t0:
            continue
        lam = v["mu"] / area
        for j in range(t.size):
            if t[j] < t[i]:
                sigma = v["D"] * math.exp(v["gamma"] * (m[j] - mc))
                kappa = v["K"] * math.exp(v["alpha"] * (m[j] - mc))
                g = (v["p"] - 1.0) * v["c"] ** (v["p"] - 1.0) / (t[i] - t[j] + v["c"]) ** v["p"]
                r2 = (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2
                f = (v["q"] - 1.0) / (math.pi * sigma) * (1.0 + r2 / sigma) ** (-v["q"])
                lam += kappa * g * f
        total += math.log(lam)
    integral = v["mu"] * (t1 - t0)
    for j in range(t.size):
        kappa = v["K"] * math.exp(v["alpha"] * (m[j] - mc))
        big_g = lambda s: 1.0 - (1.0 + s / v["c"]) ** (1.0 - v["p"])  # noqa: E731
        sigma = v["D"] * math.exp(v["gamma"] * (m[j] - mc))
        integral += kappa * (big_g(t1 - t[j]) - big_g(max(t0 - t[j], 0.0))) * _polar_fraction(x[j], y[j], sigma, v["q"], math.inf)
    return total - integral


@pytest.mark.parametrize("chunk", [65_536, 7])
def test_loglik_matches_direct_computation(chunk, monkeypatch):
    # chunk 7: the pairs taken a few targets at a time (whole runs of a target's pairs per chunk)
    import etasvae.inversion_likelihood as likelihood

    monkeypatch.setattr(likelihood, "_CHUNK_PAIRS", chunk)
    rng = np.random.default_rng(3)
    n = 25
    t = np.sort(rng.uniform(0.0, 10.0, n))
    m = 2.5 + rng.exponential(1.0 / math.log(10.0), n)
    x, y = rng.uniform(0.0, 100.0, n), rng.uniform(0.0, 50.0, n)
    x[5:9], y[5:9] = x[4] + rng.normal(0, 0.5, 4), y[4] + rng.normal(0, 0.5, 4)  # a cluster
    x[0], y[0] = 0.2, 49.7  # next to a corner: the region integral matters
    v = {"mu": 2.0, "K": 0.4, "alpha": 1.3, "c": 0.02, "p": 1.2, "D": 2.0, "q": 1.7, "gamma": 0.8}
    seq = Sequence(t, m, x, y, 3.0, 10.0, REGION)
    names = param_names("space-time")
    data = _build([seq], "space-time", 2.5, math.inf, 1e9, v)  # radius 1e9 sqrt(sigma): no pair is cut
    lik = _Likelihood(data, names)
    assert len(lik.chunks) > (1 if chunk < 100 else 0)
    value = lik(_to_theta(v, names))
    assert value == pytest.approx(_direct_loglik(t, m, x, y, 3.0, 10.0, 2.5, v), rel=1e-9, abs=1e-6)
    assert lik.value_and_grad(_to_theta(v, names))[0] == pytest.approx(value, rel=1e-13)


def test_standard_errors_are_the_inverse_observed_information_in_natural_parameters():
    # Central finite differences of the log-likelihood in (mu, K, alpha, c, p) directly: a check of the
    # Hessian (differences of the closed-form gradient), its inverse and the delta-method map, independent of
    # the sampling error.
    params = _params(K=0.4, p=1.3)
    cat = simulate_etas(params, duration=80.0, region=REGION, rng=np.random.default_rng(4))
    fit = fit_catalog(cat, mc=2.5, model="temporal", t_start=0.0, t_end=80.0, n_starts=1)
    names = param_names("temporal")
    seq = Sequence(*(cat[c].to_numpy(dtype=float) for c in ("time", "magnitude", "x", "y")), 0.0, 80.0)
    lik = _Likelihood(_build([seq], "temporal", 2.5, math.inf, math.inf, fit.estimates), names)

    def loglik(v):
        return lik(_to_theta(dict(zip(names, v)), names))

    x0 = np.array([fit.estimates[k] for k in names])
    h = 1e-4 * np.maximum(np.abs(x0), 1e-2)
    hess = np.empty((5, 5))
    for a in range(5):
        for b in range(5):
            e_a, e_b = np.eye(5)[a] * h[a], np.eye(5)[b] * h[b]
            hess[a, b] = (loglik(x0 + e_a + e_b) - loglik(x0 + e_a - e_b) - loglik(x0 - e_a + e_b)
                          + loglik(x0 - e_a - e_b)) / (4 * h[a] * h[b])
    se = np.sqrt(np.diag(np.linalg.inv(-hess)))
    assert fit.cut["far_rate"] == 0.0  # no cut here: mu is the background rate itself
    np.testing.assert_allclose([fit.std_errors[k] for k in names], se, rtol=1e-3)


def _params(**kw):
    base = dict(mu=1.0, K=0.3, alpha=1.0, c=0.01, p=1.3, D=0.1, q=2.0, gamma=0.5, b=1.0, mc=2.5, mmax=7.0)
    return ETASParams(**{**base, **kw})


def _check_zscores(z: pd.DataFrame, parameters):
    for name in parameters:
        values = z.loc[z["parameter"] == name, "z"].to_numpy()
        r = values.size
        assert np.isfinite(values).all(), name
        assert abs(values.mean()) < 4.0 / math.sqrt(r), (name, values)
        lo, hi = stats.chi2.ppf([1e-4, 1.0 - 1e-4], r) / r
        assert lo < np.mean(values**2) < hi, (name, values)


# Parameter sets: moderate branching and p; p close to 1; branching ratio near 0.9. The Wald z-score tests
# leave out p = 1.1: with ~10^3 events (one 400-day catalog or five 80-day windows alike) the estimates of K
# and n are biased low by ~0.8 of their reported error (and p sits at a bound in 16 % of 400-day fits), an effect of
# the sample size that the standard errors do not describe (benchmarks/recovery_invert.py; README "Limits");
# there the likelihood itself is checked by test_likelihood_has_zero_mean_score_at_the_truth, and the
# profile likelihood's signed root, which holds there, by test_signed_root_recovery_where_the_wald_z_fails.
RECOVERY_SETS = [
    ("moderate", _params(), 200.0),
    ("p_near_1", _params(p=1.1, mu=2.0), 400.0),
    ("n_0.88", _params(K=0.5, p=1.2), 60.0),
]


@pytest.mark.parametrize("model", ["temporal", "space-time"])
def test_recovery_within_standard_errors(model):
    frames = []
    for i, (name, params, duration) in enumerate(RECOVERY_SETS):
        if name != "p_near_1":
            frames.append(recovery_zscores(params, model=model, replicates=6, duration=duration, seed=10 + i, n_starts=1))
    z = pd.concat(frames)
    _check_zscores(z, param_names(model) + ("branching_ratio",))


def test_joint_window_fit_recovers_parameters():
    # Not the p = 1.1 set (see RECOVERY_SETS).
    frames = [
        recovery_zscores(params, model="temporal", replicates=6, duration=duration / 5, n_windows=5, seed=20 + i, n_starts=1)
        for i, (name, params, duration) in enumerate(RECOVERY_SETS)
        if name != "p_near_1"
    ]
    _check_zscores(pd.concat(frames), param_names("temporal") + ("branching_ratio",))


def test_profile_likelihood_signed_root_and_interval():
    """On a catalog of ~760 events (p = 1.3, where the likelihood is close to quadratic in mu and alpha):
    r vanishes at the estimate for every parameter (for n, the magnitudes' likelihood enters relative to
    its maximum at the Aki-Utsu b); r(estimate -+ se) = +-1 for mu and alpha, where the Wald and the profile
    agree to O(1/sqrt(N)) (observed within 0.05; the bound 0.1 leaves a factor 2, while a lost factor 2 in
    the deviance gives 0.71 and a lost sign -1); the refit obeys its constraint in the natural parameters
    (K, the net background rate mu and n fix a coordinate through the others; b, profiled out for n,
    stays within 3 errors of its estimate); the profile is at most the
    maximum and at least the likelihood at the estimate with the one parameter moved; the 95 % interval's
    ends are where r = -+1.96."""
    params = _params()
    cat = simulate_etas(params, duration=400.0, region=(0.0, 100.0, 0.0, 100.0), rng=np.random.default_rng(3))
    fit = fit_catalog(cat, mc=2.5, model="temporal", t_start=0.0, t_end=400.0, region=REGION, n_starts=1)
    l_hat = fit.loglik
    for name in profile_parameters("temporal"):
        assert abs(signed_root(fit, name, fit.estimates[name])) < 1e-3, name
    for name in ("mu", "alpha"):
        est, se = fit.estimates[name], fit.std_errors[name]
        assert signed_root(fit, name, est - se) == pytest.approx(1.0, abs=0.1), name
        assert signed_root(fit, name, est + se) == pytest.approx(-1.0, abs=0.1), name
    state = fit._state
    for name, value in (("K", 0.2), ("mu", 0.9), ("branching_ratio", 0.8)):
        lp, free = profile_loglik(fit, name, value, return_free=True)
        theta, mag, _, _ = _constrained_theta(state, name, value, free)
        nat = _natural(theta, state["names"])
        assert lp == pytest.approx(state["lik"](theta) + mag, rel=1e-12)
        far = state["lik"].far_rate(theta)
        far_hat = fit.cut["far_rate"]  # at the estimate, whose other coordinates the moved point keeps
        beta = math.exp(free[-1])
        if name == "branching_ratio":  # b is refitted under the magnitudes' likelihood: it stays near its estimate
            assert abs(beta / math.log(10) - fit.estimates["b"]) < 3 * fit.std_errors["b"]
        got = {"K": nat["K"], "mu": nat["mu"] - far, "branching_ratio": nat["K"] * beta / (beta - nat["alpha"])}[name]
        assert got == pytest.approx(value, rel=1e-9), name
        moved = dict(fit.estimates, **({name: value} if name != "branching_ratio" else {"K": 0.8 * fit.estimates["K"] / fit.estimates["branching_ratio"]}))
        at_moved = state["lik"](_to_theta({**moved, "mu": moved["mu"] + far_hat}, state["names"]))
        assert at_moved - 1e-6 <= lp <= l_hat + 1e-6, name
    lo, hi = profile_interval(fit, "alpha", level=0.95)
    assert lo < fit.estimates["alpha"] < hi
    assert signed_root(fit, "alpha", lo) == pytest.approx(1.96, abs=1e-2)
    assert signed_root(fit, "alpha", hi) == pytest.approx(-1.96, abs=1e-2)


def test_signed_root_recovery_where_the_wald_z_fails():
    """At p = 1.1 (the K-p ridge) the Wald z of K and n are far off (README "Limits": on 200-day catalogs,
    ~600 events, mean z^2 5.8 and 8.4 over 8 replicates); the profile likelihood's signed root at the truth
    holds there (mean r^2 1.8 and 1.7, still biased by ~-0.8 at this size, less with more events). Tolerances
    from the number of replicates as for the z-scores (module docstring): the Wald z of n fails them here.
    The full study, with the space-time and the window fits, is benchmarks/recovery_invert.py
    --signed-roots."""
    z = recovery_zscores(_params(p=1.1, mu=2.0), model="temporal", replicates=6, duration=200.0, seed=41,
                         n_starts=1, signed_roots=("K", "branching_ratio"))
    r = z.loc[z["parameter"].isin(["K", "branching_ratio"]), ["parameter", "r"]].rename(columns={"r": "z"})
    _check_zscores(r, ("K", "branching_ratio"))


def _scores_at_truth(params, *, n_windows, duration, replicates, seed, history=0.0):
    """Per replicate: the gradient of the exact (uncut) temporal log-likelihood at the true parameters, in
    the optimiser's coordinates (log mu, log A, alpha, log c, log(p - 1)). Data: n_windows simulated windows
    fitted jointly with no history or, with ``history`` > 0, one catalog on [0, duration) whose first
    ``history`` days are history (they trigger, they are not scored)."""
    names = param_names("temporal")
    truth = {k: getattr(params, k) for k in names}
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(replicates):
        wins = [simulate_etas(params, duration=duration, region=REGION, rng=rng) for _ in range(n_windows)]
        if history:
            seqs = [catalog_sequence(wins[0], mc=params.mc, t_start=history, t_end=duration)]
        else:
            seqs = window_sequences(wins, [duration] * n_windows, mc=params.mc)
        lik = _Likelihood(_build(seqs, "temporal", params.mc, math.inf, math.inf, truth), names)
        scores.append(lik.value_and_grad(_to_theta(truth, names))[1])
    return np.array(scores)


@pytest.mark.parametrize("n_windows, duration, history, replicates", [(5, 80.0, 0.0, 200), (1, 400.0, 100.0, 60)])
def test_likelihood_has_zero_mean_score_at_the_truth(n_windows, duration, history, replicates):
    """The score of a correct likelihood has mean zero at the truth for *any* sample size, so this checks the
    likelihood against the simulator with no asymptotics and no optimiser involved, in the regime where the
    Wald errors of K and n fail (p = 1.1, ~10^3 events; README "Limits"): the joint fit over five 80-day
    windows (no history, compensator up to each window's end) and one 400-day catalog whose first 100 days
    are history. Hotelling's T^2 of the mean score over R replicates: T^2 (R - d) / ((R - 1) d) follows
    F(d, R - d) when the likelihood is right; the bound is its 1 - 1e-4 quantile. A window end off by a
    tenth of the window, or history kernels integrated from their own time instead of t0, fail it."""
    s = _scores_at_truth(_params(p=1.1, mu=2.0), n_windows=n_windows, duration=duration, history=history,
                         replicates=replicates, seed=31)
    r, d = s.shape
    mean = s.mean(axis=0)
    t2 = r * mean @ np.linalg.solve(np.cov(s.T), mean)
    assert t2 * (r - d) / ((r - 1) * d) < stats.f.ppf(1.0 - 1e-4, d, r - d)


def test_background_probabilities_and_cut_report():
    params = _params(K=0.4)
    cat = simulate_etas(params, duration=150.0, region=REGION, rng=np.random.default_rng(5))
    fit = fit_catalog(cat, mc=2.5, model="space-time", t_start=20.0, t_end=150.0, region=REGION, n_starts=1)
    assert fit.n_target + fit.n_history == len(cat)
    prob = fit.background_probability
    assert prob.shape == (fit.n_target,) and ((prob > 0) & (prob <= 1)).all()
    # expected background events = sum of probabilities; compare with the simulated background count
    background = int((cat["generation"].to_numpy()[cat["time"].to_numpy() >= 20.0] == 0).sum())
    assert abs(prob.sum() - background) < 4.0 * math.sqrt(background) + 0.05 * fit.n_target
    assert 0.0 <= fit.cut["neglected_mass"] <= 1.5 * (1 - 0.95**2)


def test_bad_input_is_refused():
    seq = Sequence(np.array([1.0, 2.0]), np.array([3.0, 3.1]), np.zeros(2), np.zeros(2), 0.0, 5.0, REGION)
    with pytest.raises(InversionError, match="too few"):
        fit_sequences([seq], mc=2.5, model="temporal")
    with pytest.raises(InversionError, match="model"):
        fit_sequences([seq], mc=2.5, model="spatial")
    with pytest.raises(InversionError, match="cut_mass"):
        fit_sequences([seq], mc=2.5, model="temporal", cut_mass=0.0)


def test_command_line_fit(tmp_path):
    params = _params(K=0.3)
    cat = simulate_etas(params, duration=100.0, region=REGION, rng=np.random.default_rng(8))
    path = tmp_path / "catalog.parquet"
    write_catalog(cat, path, {"mc": 2.5, "region_km": list(REGION), "duration_days": 100.0}, mc=2.5)
    out = subprocess.run([sys.executable, "-m", "etasvae", "fit", str(path), "--model", "temporal", "--aux-days", "10",
                          "--starts", "1", "--profile", "alpha"], capture_output=True, text=True, check=True).stdout
    assert "target [10, 100) days" in out
    for name in ("mu", "K", "alpha", "c", "p", "b"):
        assert f" {name} = " in out
    assert "branching ratio n = " in out
    # --profile alpha: the interval printed beside alpha's error is fit_catalog(profile=("alpha",))'s
    fit = fit_catalog(cat, mc=2.5, model="temporal", t_start=10.0, t_end=100.0, region=REGION, n_starts=1, profile=("alpha",))
    lo, hi = fit.profile_intervals["alpha"]
    assert lo < fit.estimates["alpha"] < hi
    assert f"[{lo:.4g}, {hi:.4g}]" in next(line for line in out.splitlines() if " alpha = " in line)
    assert list(fit.to_dict()["profile_intervals"]) == ["alpha"]
    bad = subprocess.run([sys.executable, "-m", "etasvae", "fit", str(tmp_path / "missing.parquet")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "error:" in bad.stderr


def test_command_line_fit_of_a_catalog_imported_from_csv(tmp_path):
    """A ComCat CSV (tests/comcat_files.py: an ETAS catalog, magnitudes in 0.1 bins) imported by
    etasvae.realdata: the command line takes Mc, the region in km and the duration from the import's
    metadata, detects the 0.1 bins (b with Utsu's correction, not Aki's continuous estimate, which is
    ~0.12 too high here) and gives the numbers of fit_catalog called with those values."""
    csv = tmp_path / "events.csv"
    write_comcat_csv(csv)
    path = tmp_path / "catalog.parquet"
    report = import_dataset(check_dataset("test", dataset_config(str(csv))), str(csv), str(path), str(tmp_path / "import.json"))
    out = subprocess.run([sys.executable, "-m", "etasvae", "fit", str(path), "--model", "temporal", "--aux-days", "10",
                          "--starts", "1", "--json"], capture_output=True, text=True, check=True).stdout
    got = json.loads(out)
    assert got["mc"] == report["mc"] and got["delta_m"] == 0.1
    catalog, _ = read_catalog(path)
    fit = fit_catalog(catalog, mc=report["mc"], model="temporal", t_start=10.0, t_end=report["duration_days"],
                      region=tuple(report["region_km"]), n_starts=1, delta_m=0.1, tau="auto")  # the command's default
    assert got["taper"] == fit.taper
    targets = catalog["magnitude"].to_numpy()[catalog["time"].to_numpy() >= 10.0]
    assert got["n_target"] == fit.n_target == targets.size
    assert got["estimates"]["b"] == pytest.approx(b_value_aki_utsu(targets, report["mc"], 0.1), rel=1e-12)
    for name, value in fit.estimates.items():
        assert got["estimates"][name] == pytest.approx(value, rel=1e-6), name
    assert math.isfinite(got["estimates"]["branching_ratio"]) and math.isfinite(got["std_errors"]["branching_ratio"])


def test_chunked_pair_evaluation_gives_the_same_fit(monkeypatch):
    import etasvae.inversion_likelihood as likelihood

    params = _params(K=0.4)
    cat = simulate_etas(params, duration=60.0, region=REGION, rng=np.random.default_rng(6))
    whole = fit_catalog(cat, mc=2.5, model="space-time", t_start=0.0, t_end=60.0, region=REGION, n_starts=1)
    monkeypatch.setattr(likelihood, "_CHUNK_PAIRS", max(whole.n_pairs // 5, 1))
    chunked = fit_catalog(cat, mc=2.5, model="space-time", t_start=0.0, t_end=60.0, region=REGION, n_starts=1)
    for k in whole.estimates:
        # the same sums in another order: equal to rounding, which the optimiser's steps may amplify to ~1e-9
        assert chunked.estimates[k] == pytest.approx(whole.estimates[k], rel=1e-6)
        assert chunked.std_errors[k] == pytest.approx(whole.std_errors[k], rel=1e-4)


@pytest.mark.parametrize("model", ["space-time", "temporal"])
def test_closed_form_gradients_match_differences_of_the_likelihood(model):
    """The likelihood's gradient, the far rate's and the profile's constrained coordinates' (chain rule
    through the fixed parameter) against central differences of the values (step 1e-6: truncation error
    ~1e-12 relative, rounding ~1e-16 * |l| / 1e-6 ~ 1e-7 absolute for |l| ~ 10^3). The pair cut is active
    (T_cut and R finite) so that every term of the cut integral enters."""
    params = _params(K=0.4, p=1.3)
    cat = simulate_etas(params, duration=60.0, region=REGION, rng=np.random.default_rng(8))
    seq = catalog_sequence(cat, mc=2.5, t_start=10.0, t_end=60.0, region=REGION)
    names = param_names(model)
    v = {"mu": 0.8, "K": 0.35, "alpha": 1.1, "c": 0.02, "p": 1.25, "D": 0.15, "q": 1.8, "gamma": 0.6}
    t_cut, k_cut = 2.0, 3.0
    data = _build([seq], model, 2.5, t_cut, k_cut if model == "space-time" else math.inf, v)
    assert data.pair_i.size > 100
    lik = _Likelihood(data, names)
    theta = _to_theta(v, names)
    check_gradients_and_far_rate(lik, theta)
    state = {"names": names, "lik": lik, "n_mag": 200, "mag_excess": 90.0, "beta": 2.2}
    for name, value in (("mu", 0.6), ("K", 0.3), ("c", 0.03), ("branching_ratio", 0.7)):
        free = np.delete(theta, names.index("K" if name == "branching_ratio" else name))
        if name == "branching_ratio":
            free = np.append(free, math.log(2.3))

        def constrained(f):
            th, mag, _, _ = _constrained_theta(state, name, value, f)
            return lik(th) + mag

        th, mag, jac, d_mag = _constrained_theta(state, name, value, free)
        got = jac.T @ lik.value_and_grad(th)[1] + d_mag
        np.testing.assert_allclose(got, gradient_by_differences(constrained, free), rtol=1e-6, atol=1e-5,
                                   err_msg=name)



def test_pair_cut_near_p_and_q_of_one_neither_overflows_nor_cuts_what_it_must_keep():
    """With p or q close to 1 the cut that leaves 5 % of the kernel outside lies beyond any window (the tail
    (1 + t/c)^(1-p) reaches 0.05 only after ~c·0.05^(-1/(p-1))): no time cut, and no overflow on the way."""
    from etasvae.inversion import _cut_for

    params = {"p": 1.0005, "c": 0.01, "q": 1.0005}
    t_cut, k = _cut_for(params, "space-time", 0.05, span=365.0)
    assert t_cut == math.inf and k == math.inf
    # an ordinary p: the cut is where the Omori tail holds exactly cut_mass, (1 + T/c)^(1-p) = 0.05
    t_cut, k = _cut_for({"p": 1.5, "c": 0.01, "q": 1.5}, "space-time", 0.05, span=1e9)
    assert (1 + t_cut / 0.01) ** (1 - 1.5) == pytest.approx(0.05)
    assert (1 + k**2) ** (1 - 1.5) == pytest.approx(0.05)


# ------------------------------------------------------------------------- window selection (overlap)

OVERLAP_SPEC = {"representation": "event", "mc": 2.5, "length": 16, "stride": 4}


def _windows_table(params, rng, duration):
    from etasvae.features import build_windows

    cat = simulate_etas(params, duration=duration, region=REGION, rng=rng, burn_in=100.0, margin=20.0)
    table, _ = build_windows([(0, cat)], OVERLAP_SPEC, heldout_replicates=[0], validation_fraction=0.0)
    return table, cat


def test_window_selection_keeps_every_event_once_and_spreads_the_cap():
    from etasvae.inversion_report import overlap_factor, select_windows

    table, _ = _windows_table(_params(), np.random.default_rng(40), 200.0)
    n = len(table)
    # stride L/4: each event (away from the ends) lies in 4 windows
    assert overlap_factor(table) == pytest.approx(16 * n / (4 * (n - 1) + 16))
    chosen = select_windows(table)
    assert overlap_factor(chosen) == 1.0
    assert chosen["window_id"].tolist() == table["window_id"].tolist()[::4]  # windows 0, 4, 8, ...
    capped = select_windows(table, 10)
    assert len(capped) == 10 and capped["window_id"].iloc[0] == 0 and capped["window_id"].iloc[-1] == chosen["window_id"].iloc[-1]
    # a second catalog (another replicate) is selected on its own: its windows restart at event 0
    two = pd.concat([table, table.assign(replicate=1, window_id=table["window_id"] + n)], ignore_index=True)
    assert len(select_windows(two)) == 2 * len(chosen) and overlap_factor(select_windows(two)) == 1.0


def test_synthetic_windows_are_fitted_spread_over_the_catalog_not_its_first():
    """Chained synthetic windows come step by step, so the first n are the chains' youngest: invert_model fits
    n windows spread from the first to the last, like the held-out set's. Here the windows' sizes tell which
    were fitted: the first half are cut to 6 events, so the first n (all short) hold fewer targets."""
    from etasvae.evaluate import catalog_windows
    from etasvae.inversion_report import _joint_fit, invert_model, select_windows, spread_indices

    table, cat = _windows_table(_params(mu=2.0), np.random.default_rng(42), 400.0)
    windows = catalog_windows(select_windows(table), {("", 0): cat}, OVERLAP_SPEC)
    n, half = 12, len(windows) // 2
    assert half > n
    windows = [w.iloc[:6] if i < half else w for i, w in enumerate(windows)]
    reference = {"fits": {}, "max_windows": n, "selection": {"train_windows": {"fitted": n}}}
    fit = invert_model(windows, reference, mc=2.5, n_starts=1)["fits"]["synthetic_windows"]
    spread = spread_indices(len(windows), n)
    assert len(spread) == n and spread[0] == 0 and spread[-1] == len(windows) - 1
    expected = _joint_fit([windows[i] for i in spread], mc=2.5, cut_mass=0.05, n_starts=1)
    first = _joint_fit(windows[:n], mc=2.5, cut_mass=0.05, n_starts=1)
    assert fit["n_target"] == expected["n_target"] > first["n_target"]


def test_standard_errors_of_the_window_fit_match_the_spread_across_replicates():
    """The joint fit of the selected (non-overlapping) windows: the variance of alpha's estimate across
    independent catalogs matches the mean squared standard error. Fitting all windows instead (stride L/4:
    every event four times) makes the errors about half as large and fails this (variance ratio ~ 4.8)."""
    from etasvae.evaluate import catalog_windows
    from etasvae.inversion import fit_windows
    from etasvae.inversion_report import select_windows, window_durations

    rng = np.random.default_rng(41)
    params = _params(mu=2.0, D=0.5, q=1.5, gamma=1.0)
    est, se = [], []
    for _ in range(16):
        table, cat = _windows_table(params, rng, 300.0)
        windows = catalog_windows(select_windows(table), {("", 0): cat}, OVERLAP_SPEC)
        fit = fit_windows(windows, window_durations(windows), mc=2.5, model="temporal", n_starts=1)
        est.append(fit.estimates["alpha"])
        se.append(fit.std_errors["alpha"])
    r = len(est)
    ratio = np.var(est, ddof=1) / np.mean(np.square(se))
    # (r - 1) * ratio is chi^2 with r - 1 degrees of freedom when the errors are right; 1e-3 quantiles
    lo, hi = stats.chi2.ppf([1e-3, 1.0 - 1e-3], r - 1) / (r - 1)
    assert lo < ratio < hi, (ratio, lo, hi)


def test_window_fits_of_the_pipeline_correct_b_for_binned_magnitudes():
    """The pipeline's joint window fit (inversion_report) corrects b for magnitudes reported in 0.1 bins, as a
    real catalog's are. Windows simulated above 2.45 and reported in 0.1 bins from 2.5 (the bin [2.45, 2.55))
    give b within 3 standard errors of the truth (b = 1); without Utsu's half-bin correction b comes out ~0.13
    too high here, about 6 standard errors with these ~2,000 events."""
    from etasvae.inversion_report import _joint_fit

    params = _params(mu=2.0, K=0.2, alpha=1.0, p=1.3, mc=2.45)
    rng = np.random.default_rng(31)
    windows = [simulate_etas(params, duration=100.0, region=REGION, rng=rng) for _ in range(10)]
    binned = [w.assign(magnitude=np.round(w["magnitude"] / 0.1) * 0.1) for w in windows]
    binned = [w[w["magnitude"] >= 2.5 - 1e-9].reset_index(drop=True) for w in binned]
    fit = _joint_fit(binned, mc=2.5, cut_mass=0.05, n_starts=1)
    b, se = fit["estimates"]["b"], fit["std_errors"]["b"]
    uncorrected = math.log10(math.e) / (np.concatenate([w["magnitude"] for w in binned]) - 2.5).mean()
    assert abs(b - params.b) < 3 * se, (b, se)
    assert uncorrected - params.b > 3 * se, (uncorrected, se)


CUT_REGION = (0.0, 50.0, 0.0, 50.0)


def test_the_whole_catalog_fit_stops_after_max_events():
    from etasvae.inversion_report import fit_heldout_catalog

    """A catalog with more target events than ``max_events`` is fitted over its first part: exactly
    ``max_events`` target events (above Mc, after the history days), the window's end between the last
    of them and the next, and the fit says it was cut; without a cap the whole window is fitted."""
    params = ETASParams(mu=3.0, K=0.2, alpha=1.0, c=0.01, p=1.3, D=0.1, q=2.0, gamma=0.5, b=1.0, mc=2.5, mmax=7.0)
    catalog = simulate_etas(params, duration=120.0, region=CUT_REGION, rng=np.random.default_rng(5))
    meta = {"region_km": list(CUT_REGION), "duration_days": 120.0}
    aux = 10.0
    target = np.sort(catalog["time"].to_numpy()[catalog["time"].to_numpy() >= aux])
    assert len(target) > 300
    cut = fit_heldout_catalog(catalog, meta, mc=2.5, aux_days=aux, n_starts=1, max_events=150)
    assert cut["cut_at_max_events"] and cut["n_target"] == 150
    assert target[149] < cut["t_end"] < target[150]
    whole = fit_heldout_catalog(catalog, meta, mc=2.5, aux_days=aux, n_starts=1, max_events=len(target))
    assert not whole["cut_at_max_events"] and whole["t_end"] == 120.0 and whole["n_target"] == len(target)
    # the history days hold more events than a small cap: the history keeps the cap's number of last events
    n_history = int((catalog["time"].to_numpy() < aux).sum())
    assert whole["n_history"] == n_history > 20
    small = fit_heldout_catalog(catalog, meta, mc=2.5, aux_days=aux, n_starts=1, max_events=20)
    assert small["n_target"] == 20 and small["n_history"] == 20


def test_tree_pairs_are_the_sweep_pairs(monkeypatch):
    """Many candidate pairs are found with k-d trees, sources in blocks (_tree_pairs): the same pairs, lags and
    distances as the sweep over time, in the order of their targets."""
    import etasvae.inversion_geometry as geometry

    params = _params(K=0.4, D=2.0)
    cat = simulate_etas(params, duration=60.0, region=REGION, rng=np.random.default_rng(9))
    seqs = [catalog_sequence(cat, mc=2.5, t_start=10.0, t_end=60.0, region=REGION),
            catalog_sequence(cat, mc=2.5, t_start=40.0, t_end=60.0, aux_days=5.0, region=REGION)]
    v = {"mu": 1.0, "K": 0.4, "alpha": 1.0, "c": 0.01, "p": 1.3, "D": 2.0, "q": 2.0, "gamma": 0.5}
    sweep = _build(seqs, "space-time", 2.5, 5.0, 3.0, v)
    monkeypatch.setattr(geometry, "_PAIR_CHUNK", 10)  # more than 4 chunks of candidates: the trees
    monkeypatch.setattr(geometry, "_TREE_BLOCK", 7)
    tree = _build(seqs, "space-time", 2.5, 5.0, 3.0, v)
    assert 100 < sweep.pair_i.size == tree.pair_i.size
    assert np.all(np.diff(tree.pair_i) >= 0)

    def keyed(d):
        order = np.lexsort((d.pair_j, d.pair_i))
        return d.pair_i[order], d.pair_j[order], d.lag[order], d.r2[order]

    for a, b in zip(keyed(sweep), keyed(tree)):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------- taper, polygon, honest end


def test_tapered_omori_integral_matches_the_incomplete_gamma_form():
    """int_lo^hi e^(-s/tau) (s+c)^-p ds by quadrature against tau^(1-p) e^(c/tau) [Gamma(1-p, (lo+c)/tau) -
    Gamma(1-p, (hi+c)/tau)] (etasvae.params.upper_incomplete_gamma), p on both sides of 1."""
    from etasvae.inversion_likelihood import _tapered_omori
    from etasvae.params import upper_incomplete_gamma

    lo = np.array([0.0, 0.0, 1.0, 0.0, 5.0])
    hi = np.array([10.0, 1e5, 2.0, 1e-3, 5000.0])
    for c, p, tau in ((0.01, 0.9, 50.0), (0.003, 1.2, 3.0), (0.05, 0.5, 1000.0)):
        def tail(t):
            return tau ** (1 - p) * math.exp(c / tau) * float(upper_incomplete_gamma(1 - p, (t + c) / tau))

        want = np.array([tail(a) - tail(b) for a, b in zip(lo, hi)])
        np.testing.assert_allclose(_tapered_omori(lo, hi, c, p, tau), want, rtol=1e-10)


@pytest.mark.parametrize("model, tau", [("temporal", "free"), ("space-time", "free"), ("space-time", 30.0)])
def test_tapered_gradients_match_differences_of_the_likelihood(model, tau):
    """With the taper (p < 1, tau free or fixed) the closed-form gradient of the likelihood and of the far
    rate against central differences (step 1e-6, as in the untapered test), the pair cut active."""
    params = _params(K=0.3, p=0.95, tau=20.0)
    cat = simulate_etas(params, duration=60.0, region=REGION, rng=np.random.default_rng(8))
    seq = catalog_sequence(cat, mc=2.5, t_start=10.0, t_end=60.0, region=REGION)
    names = param_names(model, tau if tau == "free" else None)
    fixed = None if tau == "free" else tau
    v = {"mu": 0.8, "K": 0.35, "alpha": 1.1, "c": 0.02, "p": 0.9, "tau": 15.0, "D": 0.15, "q": 1.8, "gamma": 0.6}
    data = _build([seq], model, 2.5, 2.0, 3.0 if model == "space-time" else math.inf, v, tau=fixed)
    assert data.pair_i.size > 50
    lik = _Likelihood(data, names)
    theta = _to_theta(v, names, fixed)
    assert _natural(theta, names, fixed)["p"] == pytest.approx(0.9)
    check_gradients_and_far_rate(lik, theta)


def test_tapered_fit_recovers_p_below_one():
    """A catalog simulated with p = 0.95 and tau = 20 days: the tapered fit (tau free) is usable and its p,
    tau and branching ratio lie within 3.3 standard errors of the truth (two-sided 1e-3 for one seed; tau on
    the log scale, where its likelihood is closer to quadratic)."""
    params = _params(mu=1.0, K=0.3, p=0.95, tau=20.0)
    cat = simulate_etas(params, duration=400.0, region=REGION, rng=np.random.default_rng(1))
    fit = fit_catalog(cat, mc=2.5, model="temporal", t_start=50.0, t_end=400.0, region=REGION, tau="free", n_starts=1)
    assert fit.usable and fit.taper == "free" and not fit.at_bound
    est, se = fit.estimates, fit.std_errors
    assert abs(est["p"] - 0.95) < 3.3 * se["p"]
    assert abs(math.log(est["tau"] / 20.0)) < 3.3 * se["tau"] / est["tau"]
    assert abs(est["branching_ratio"] - params.branching_ratio()) < 3.3 * se["branching_ratio"]


def test_polygon_region_area_membership_and_quadrature():
    """An L-shaped (non-convex) region: its area, which points it holds, and the kernel's mass inside it as
    the sum of the masses in the two rectangles it is made of (signed edge triangles), cut disc or not."""
    from etasvae.inversion_geometry import inside_polygon, polygon_area, polygon_quadrature

    shape = [(0, 0), (100, 0), (100, 40), (40, 40), (40, 100), (0, 100)]
    assert polygon_area(shape) == pytest.approx(6400.0)
    assert polygon_area(shape[::-1]) == pytest.approx(6400.0)  # clockwise vertices too
    assert inside_polygon(shape, [50, 50, 20, 39.9], [20, 60, 80, 99]).tolist() == [True, False, True, True]
    x, y = np.array([39.0, 10.0, 99.5]), np.array([39.0, 95.0, 20.0])
    sigma, q = 30.0, 1.5
    for radius2 in (None, np.full(3, 400.0)):
        def fraction(region):
            (rho2, w), (const, r2) = polygon_quadrature(x, y, region, radius2)
            tail = np.where(np.isfinite(r2), (1 + np.where(np.isfinite(r2), r2, 0) / sigma) ** (1 - q), 0.0)
            return (w * (1 - (1 + rho2 / sigma) ** (1 - q))).sum(axis=1) + const * (1 - tail)

        # Gauss-Legendre within 1e-6 at 1 km from the re-entrant corner (the first point)
        np.testing.assert_allclose(fraction(shape), fraction((0, 100, 0, 40)) + fraction((0, 40, 40, 100)), atol=1e-6)


def test_polygon_region_fit_uses_the_polygon_not_its_bounding_box():
    """A catalog simulated in a 100 x 50 km rectangle, fitted as the same rectangle given by its vertices
    (a polygon): the same fit; given a triangle inside it, only the events inside count and the background
    density is 1/area of the triangle."""
    params = _params(K=0.3)
    cat = simulate_etas(params, duration=60.0, region=REGION, rng=np.random.default_rng(6))
    rect = fit_catalog(cat, mc=2.5, model="space-time", t_start=0.0, t_end=60.0, region=REGION, n_starts=1)
    vertices = [(0.0, 0.0), (100.0, 0.0), (100.0, 50.0), (0.0, 50.0)]
    poly = fit_catalog(cat, mc=2.5, model="space-time", t_start=0.0, t_end=60.0, region=vertices, n_starts=1)
    for k in rect.estimates:
        assert poly.estimates[k] == pytest.approx(rect.estimates[k], rel=1e-6), k
    triangle = [(0.0, 0.0), (100.0, 0.0), (0.0, 50.0)]
    seq = catalog_sequence(cat, mc=2.5, t_start=0.0, t_end=60.0, region=triangle)
    assert 0 < seq.time.size < len(cat)
    assert np.all(seq.x / 100 + seq.y / 50 <= 1 + 1e-12)
    data = _build([seq], "space-time", 2.5, 5.0, 3.0, {"D": 0.1, "gamma": 0.5})
    np.testing.assert_allclose(data.inv_area, 1.0 / 2500.0)


def _cli(argv, capsys):
    from etasvae.__main__ import main

    status = main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


def test_a_fit_run_to_a_bound_is_refused_and_the_taper_gives_a_usable_fit(tmp_path, capsys):
    """The first failure: a catalog whose aftershocks decay as p = 0.85 with a taper (tau = 100 days), as real
    sequences do. The pure Omori law runs p to its bound (1.001) with n ~ 100; the command must not call
    that a result: exit status 3, a message naming p and the taper to try, usable false in the JSON. The
    default (--tau auto) fits the taper and is usable."""
    params = _params(mu=0.5, K=0.5, p=0.85, tau=100.0)
    # 600 days (1,800 events): in 300 days (650 events) this seed's likelihood is highest with no taper
    # (tau at its bound, n > 1), the taper not yet resolved
    cat = simulate_etas(params, duration=600.0, region=REGION, rng=np.random.default_rng(2))
    path = tmp_path / "catalog.parquet"
    write_catalog(cat, path, {"mc": 2.5, "region_km": list(REGION), "duration_days": 600.0}, mc=2.5)
    common = [str(path), "--model", "temporal", "--aux-days", "20", "--json"]
    status, out, err = _cli(["fit", *common, "--tau", "none"], capsys)
    got = json.loads(out)
    assert status == 3 and got["usable"] is False and "p" in got["at_bound"]
    assert "p = 1.001 at its lower bound" in err and "tau free" in err
    status, out, err = _cli(["fit", *common], capsys)
    got = json.loads(out)
    assert status == 0 and got["usable"] is True and got["at_bound"] == [] and got["taper"] == "free", err
    assert got["estimates"]["p"] < 1.0 and got["estimates"]["branching_ratio"] < 1.0


def test_pairs_stay_within_the_caps_when_p_and_q_approach_one():
    """The second failure: with p and q near 1 the cut that leaves 5 % of each kernel outside lies beyond
    the catalog (every pair kept). The caps (max_lag_days, rupture_multiple rupture lengths) still bound the
    pairs: exactly the pairs inside the cap cylinders, counted directly, and a fit started there keeps at
    most those."""
    from etasvae.inversion_geometry import rupture_length_km

    params = _params(K=0.3, D=2.0)
    cat = simulate_etas(params, duration=365.0, region=REGION, rng=np.random.default_rng(5))
    seq = catalog_sequence(cat, mc=2.5, t_start=0.0, t_end=365.0, region=REGION)
    near_one = {"mu": 1.0, "K": 0.3, "alpha": 1.0, "c": 0.01, "p": 1.0005, "D": 2.0, "q": 1.0005, "gamma": 0.5}
    t_cut, k_cut = inversion_cut_for(near_one, "space-time", 0.05, 365.0)
    assert t_cut == math.inf and k_cut == math.inf
    cap = 20.0 * rupture_length_km(seq.magnitude)
    data = _build([seq], "space-time", 2.5, min(t_cut, 30.0), k_cut, near_one, radius_cap=cap)
    t, x, y = seq.time, seq.x, seq.y
    lag = t[:, None] - t[None, :]
    r2 = (x[:, None] - x[None, :]) ** 2 + (y[:, None] - y[None, :]) ** 2
    inside = (lag > 0) & (lag < 30.0) & (r2 < cap[None, :] ** 2)
    every = int((lag > 0).sum())
    assert data.pair_i.size == int(inside.sum()) < every / 20
    fit = fit_sequences([seq], mc=2.5, model="space-time", start=near_one, n_starts=1, rupture_multiple=20.0,
                        max_lag_days=30.0)
    assert fit.n_pairs <= int(inside.sum())
    assert fit.cut["pair_max_lag_days"] <= 30.0


def inversion_cut_for(*args):
    from etasvae.inversion import _cut_for

    return _cut_for(*args)


def test_a_supercritical_fit_of_a_small_catalog_is_refused(tmp_path, capsys):
    """The third failure: a small catalog (37 events in 60 days) whose maximum-likelihood branching ratio
    exceeds 1 with no parameter at a bound. The fit says so (usable false, a problem naming the branching
    ratio) and the command exits with status 3 naming it."""
    params = _params(mu=0.3, K=0.25, alpha=1.6, p=1.15)
    cat = simulate_etas(params, duration=60.0, region=REGION, rng=np.random.default_rng(8))
    assert len(cat) == 37
    fit = fit_catalog(cat, mc=2.5, model="space-time", t_start=0.0, t_end=60.0, region=REGION, tau=None)
    assert fit.estimates["branching_ratio"] >= 1.0 and not fit.at_bound
    assert not fit.usable and fit.problems[0].startswith("branching_ratio = ")
    path = tmp_path / "small.parquet"
    write_catalog(cat, path, {"mc": 2.5, "region_km": list(REGION), "duration_days": 60.0}, mc=2.5)
    status, out, err = _cli(["fit", str(path), "--tau", "none"], capsys)
    assert status == 3 and "branching_ratio" in err and "usable: NO" in out


def test_the_page_flags_a_fit_that_is_not_usable():
    """inversion_html marks every parameter at a bound and says NOT USABLE with the fit's problems."""
    from etasvae.inversion_report import inversion_html

    params = _params(mu=0.3, K=0.25, alpha=1.6, p=1.15)
    cat = simulate_etas(params, duration=60.0, region=REGION, rng=np.random.default_rng(1))
    bad = fit_catalog(cat, mc=2.5, model="space-time", t_start=0.0, t_end=60.0, region=REGION, tau=None).to_dict()
    assert not bad["usable"] and "p" in bad["at_bound"]
    good = fit_catalog(simulate_etas(_params(), duration=60.0, region=REGION, rng=np.random.default_rng(2)), mc=2.5,
                       model="temporal", t_start=0.0, t_end=60.0, tau=None, n_starts=1).to_dict()
    assert good["usable"]
    page = inversion_html({"truth": {}, "fits": {"heldout_catalog": bad, "heldout_windows": good}, "selection": {}})
    assert page.count("<b>at bound</b>") == len(bad["at_bound"])
    assert page.count("NOT USABLE") == 1 and "p = 1.001 at its lower bound" in page


def test_inhomogeneous_background_integrates_to_one_and_finds_where_the_background_is():
    """A catalog whose events all lie in the left half of the fitted region (simulated in 50 x 50 km, fitted
    in 100 x 50 km). The smoothed background (Zhuang et al. 2002) integrates to 1 over the region (midpoint
    rule on a 0.25 km grid, bandwidths >= 1 km: error ~1e-3), and the inhomogeneous fit's log-likelihood
    beats the uniform fit's by at least half of what a background confined to the half gains, N_bg log 2
    (the smoother spreads some of it across the middle)."""
    from etasvae.inversion_background import smoothed_background

    params = _params(mu=2.0, K=0.3)
    cat = simulate_etas(params, duration=100.0, region=(0.0, 50.0, 0.0, 50.0), rng=np.random.default_rng(11))
    uniform = fit_catalog(cat, mc=2.5, model="space-time", t_start=0.0, t_end=100.0, region=REGION, tau=None,
                          n_starts=1)
    smooth = fit_catalog(cat, mc=2.5, model="space-time", t_start=0.0, t_end=100.0, region=REGION, tau=None,
                         n_starts=1, background="inhomogeneous")
    assert smooth.background == "inhomogeneous" and smooth.usable
    n_background = float(smooth.background_probability.sum())
    assert smooth.loglik - uniform.loglik > 0.5 * n_background * math.log(2.0)
    density = smoothed_background(cat["x"], cat["y"], smooth.background_probability, REGION)
    gx, gy = np.meshgrid(np.arange(0.125, 100.0, 0.25), np.arange(0.125, 50.0, 0.25))
    total = density(gx.ravel(), gy.ravel()).sum() * 0.25 * 0.25
    assert total == pytest.approx(1.0, abs=5e-3)
    assert "background_density" in smooth.to_dict()


def test_the_pair_caps_drop_intensity_terms_but_never_kernel_mass_from_the_integral():
    """The caps bound the pairs, not the model: with caps that bind (20 rupture lengths, 2.2 km at Mc, for
    kernels of about 1 km with q = 1.3; lags of 10 days) and no model cut, the log-likelihood differs from
    the exact one (every pair) by the dropped intensity terms alone, sum_i log(lambda_capped_i / lambda_i)
    < 0, and the integral is the same to rounding. An integral of the capped kernels instead leaves out the
    kernel mass beyond the caps, which K could then grow into at no cost."""
    from etasvae.inversion_geometry import rupture_length_km

    params = _params(K=0.3, D=1.0, q=1.3, p=1.2)
    cat = simulate_etas(params, duration=200.0, region=REGION, rng=np.random.default_rng(11))
    seq = catalog_sequence(cat, mc=2.5, t_start=20.0, t_end=200.0, region=REGION)
    v = {k: getattr(params, k) for k in param_names("space-time")}
    names = param_names("space-time")
    theta = _to_theta(v, names)
    exact = _Likelihood(_build([seq], "space-time", 2.5, math.inf, math.inf, v), names)
    capped = _Likelihood(_build([seq], "space-time", 2.5, math.inf, math.inf, v,
                                radius_cap=20.0 * rupture_length_km(seq.magnitude), lag_cap=10.0), names)
    assert capped.n_pairs < exact.n_pairs / 10  # the caps bind
    dropped = float(np.sum(np.log(capped.background_and_rate(theta)[1] / exact.background_and_rate(theta)[1])))
    assert dropped < -1.0
    assert capped.triggered(theta) == pytest.approx(exact.triggered(theta), rel=1e-12)
    assert capped(theta) - exact(theta) == pytest.approx(dropped, rel=1e-9)
    value, grad = capped.value_and_grad(theta)
    assert value == pytest.approx(capped(theta), rel=1e-13)
    np.testing.assert_allclose(grad, gradient_by_differences(capped, theta), rtol=1e-6, atol=1e-5)


def test_kernel_mass_beyond_the_caps_is_not_free_for_the_fit():
    """What the caps did to real catalogs, on a small one: a heavy spatial tail (q = 1.3, D = 1 km^2) and
    caps that bind (5 rupture lengths, 0.5 km at Mc). With the kernel mass beyond the caps left out of the
    integral, q ran to its lower bound and K grew into that free mass (n = 318 for this seed, the background
    rate net of the far aftershocks about half its value); with it in the integral the fit stays
    subcritical with q off its lower bound (caps this tight still bias it: the pairs beyond them leave their
    events to the background, here q = 16 and mu 3 errors high; at 70 rupture lengths, the default, far
    less)."""
    params = _params(K=0.3, D=1.0, q=1.3, p=1.2)
    cat = simulate_etas(params, duration=300.0, region=REGION, rng=np.random.default_rng(12))
    fit = fit_catalog(cat, mc=2.5, model="space-time", t_start=20.0, t_end=300.0, region=REGION, tau=None,
                      rupture_multiple=5.0, n_starts=1)
    assert fit.cut["capped_mass"] > 0.02  # the caps bind, even at the estimate
    assert "q" not in fit.at_bound and fit.estimates["q"] > 1.1
    assert fit.estimates["branching_ratio"] < 1.0 and fit.estimates["K"] < 1.0


def test_the_lag_cut_does_not_stand_in_for_the_taper():
    """A lag cut that leaves 5 % of a tapered Omori law outside acts as a taper of its own (the truncated
    tail goes to the background), and tau ran up to it: in 20 space-time catalogs with tau = 20 days
    (p = 0.95, ~1,700 events each) every estimate of tau was above the truth. With the lag cut at cut_mass^2
    the estimates straddle it: the number above the truth is Binomial(20, 1/2) for a median-unbiased
    estimate, within [4, 16] but with probability 0.0026."""
    params = _params(mu=1.0, K=0.3, p=0.95, tau=20.0)
    region = (0.0, 100.0, 0.0, 100.0)
    rng = np.random.default_rng(123)
    above = 0
    for _ in range(20):
        cat = simulate_etas(params, duration=800.0, region=region, rng=rng)
        fit = fit_catalog(cat, mc=2.5, model="space-time", t_start=0.0, t_end=800.0, region=region, tau="free",
                          n_starts=1)
        above += fit.estimates["tau"] > 20.0
    assert 4 <= above <= 16, above
