"""Catalog-based forecast tests (etasvae.forecast_sim, etasvae.forecast_csep, `python -m etasvae csep`): the
forward simulation's mean count against the ETAS expectation given the history, pyCSEP's tests on data
simulated from the model (passing) and with the background tripled (failing), and the command line from an
imported CSV."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from comcat_files import dataset_config, write_comcat_csv
from etasvae.forecast_sim import ForecastError, simulate_forward
from etasvae.params import ETASParams, omori_normaliser
from etasvae.simulate import omori_cdf, simulate_etas
from etasvae.simulation_expectation import _omori_survival_integral

MC = 2.0
TRUTH = {"mu": 1.0, "K": 0.3, "alpha": 1.0, "c": 0.01, "p": 1.3, "D": 0.5, "q": 1.5, "gamma": 1.0, "b": 1.0}
REGION = [0.0, 50.0, 0.0, 50.0]


def _fit(model="space-time", taper="none", **changes):
    """A fit as `fit --json` writes it (the keys the forward simulation reads)."""
    return {"model": model, "estimates": {**TRUTH, **changes}, "taper": taper, "mc": MC, "delta_m": 0.0,
            "region": REGION}


def _expected_count(est, tau, history_t, history_m, start, duration, *, growth=0.005):
    """E N[start, start + duration) of the temporal ETAS model given the history: C(u), u = t - start, solves
    the renewal equation C(u) = H(u) + n int_0^u G(u - v) dC(v), H(u) = mu u + sum_j kappa_j (G(u + a_j) -
    G(a_j)) the background and the history's direct aftershocks (a_j = start - t_j), n = K beta / (beta -
    alpha), G the Omori CDF; product integration on geometric cells (etasvae.simulate.expected_count's
    scheme: dC uniform within a cell, G integrated over it exactly)."""
    p, c, beta = est["p"], est["c"], est["b"] * math.log(10.0)
    n = est["K"] * beta / (beta - est["alpha"])
    kappa = est["K"] * np.exp(est["alpha"] * (history_m - MC))
    age = start - history_t
    h0 = c * 1e-3
    cells = int(math.ceil(math.log1p(duration * growth / h0) / math.log1p(growth)))
    grid = np.unique(np.append(h0 * np.expm1(np.arange(cells + 1) * math.log1p(growth)) / growth, duration))
    grid = grid[grid <= duration]
    big_h = est["mu"] * grid + (kappa * (omori_cdf(grid[:, None] + age, p, c, tau) - omori_cdf(age, p, c, tau))).sum(1)
    widths = np.diff(grid)
    cum, dcum = np.zeros(grid.size), np.zeros(widths.size)
    for i in range(1, grid.size):
        surv = _omori_survival_integral(grid[i] - grid[: i + 1], p, c, tau)
        w = 1.0 - (surv[:-1] - surv[1:]) / widths[:i]
        rhs = big_h[i] + n * np.dot(w[:-1], dcum[: i - 1]) - n * w[-1] * cum[i - 1]
        cum[i] = rhs / (1.0 - n * w[-1])
        dcum[i - 1] = cum[i] - cum[i - 1]
    return float(cum[-1])


@pytest.mark.parametrize("taper", ["none", "free"])
def test_simulated_count_matches_the_expectation_given_the_history(taper):
    """Mean count of 4000 forward catalogs (temporal model: no region loss) of [10, 17) days against the
    renewal expectation given a history with an M5 one day before the start: pure Omori law, and the tapered
    law with p = 0.9 < 1. Tolerance 4 standard errors of the mean (the catalogs' own spread over sqrt(4000)):
    a chance failure has probability 6e-5. The history's aftershocks add about 1.5 events to 13.6 (13
    standard errors) with the pure law and 3.2 to 13.9 (33) with the taper; the cascades about half of it."""
    changes = {"p": 0.9, "tau": 30.0} if taper == "free" else {}
    fit = _fit("temporal", taper, **changes)
    est = fit["estimates"]
    tau = est.get("tau")
    history = pd.DataFrame({"time": [2.0, 5.0, 9.0, 9.5], "magnitude": [3.0, 2.2, 5.0, 2.5],
                            "x": [1.0, 2.0, 3.0, 4.0], "y": [1.0, 2.0, 3.0, 4.0]})
    sims = simulate_forward(fit, history, 10.0, 17.0, REGION, np.random.default_rng(11), n_catalogs=4000)
    counts = np.bincount(sims["catalog"], minlength=4000)
    expected = _expected_count(est, tau, history["time"].to_numpy(), history["magnitude"].to_numpy(), 10.0, 7.0)
    se = counts.std(ddof=1) / math.sqrt(counts.size)
    assert abs(counts.mean() - expected) < 4.0 * se, (counts.mean(), expected, se)
    assert ((sims["time"] >= 10.0) & (sims["time"] < 17.0)).all()
    assert (sims["magnitude"] >= MC).all()
    if taper == "free":  # K is the normalised law's: the normaliser is finite for p < 1 only with the taper
        assert math.isfinite(omori_normaliser(0.9, 0.01, 30.0))


def test_same_seed_same_catalogs_and_binned_magnitudes():
    """One seed gives the same catalogs; with 0.1 bins every magnitude is on the grid from Mc and the share
    of the Mc bin is the binned Gutenberg-Richter law's 1 - 10^(-b 0.1) (continuous from Mc - 0.05, then
    rounded), within 4 binomial standard errors."""
    history = pd.DataFrame({"time": [1.0], "magnitude": [4.0], "x": [25.0], "y": [25.0]})
    fit = {**_fit(), "delta_m": 0.1}
    a = simulate_forward(fit, history, 2.0, 9.0, REGION, np.random.default_rng(5), n_catalogs=2000)
    b = simulate_forward(fit, history, 2.0, 9.0, REGION, np.random.default_rng(5), n_catalogs=2000)
    pd.testing.assert_frame_equal(a, b)
    k = (a["magnitude"] - MC) / 0.1
    assert np.allclose(k, np.round(k), atol=1e-9) and (k > -0.5).all()
    share, want = float(np.mean(np.round(k) == 0)), 1.0 - 10.0 ** -0.1
    assert abs(share - want) < 4.0 * math.sqrt(want * (1 - want) / len(a))
    inside = (a["x"] >= 0) & (a["x"] <= 50) & (a["y"] >= 0) & (a["y"] <= 50)
    assert inside.all()
    with pytest.raises(ForecastError, match="p = 1.0"):
        simulate_forward(_fit(p=1.0), history, 2.0, 9.0, REGION, np.random.default_rng(5))


@pytest.fixture(scope="module")
def etas_data():
    """One ETAS catalog of the true model in the 50 km square (the project's simulator, 50 days of burn-in)."""
    params = ETASParams(**TRUTH, mc=MC)
    return simulate_etas(params, duration=440.0, region=tuple(REGION), rng=np.random.default_rng(1), burn_in=50.0)


def test_csep_tests_pass_the_true_model_and_fail_a_tripled_background(etas_data):
    """20 weekly horizons after day 300, 200 catalogs each. The true model passes each test at the 0.05
    level with probability about 0.95 per horizon, so a pass rate below 0.75 (6 failures of 20) has
    binomial probability 3e-3; its simulation leaves out aftershocks of events beyond the region, which
    the data's simulator keeps (kernels of ~1 km in 50 km: a few per cent of the count). With mu x 3 the
    forecast's mean count is about 2.7 times the data's (~36 for ~13 per week): the number test fails in
    most horizons (the observed count below its 2.5 % quantile)."""
    pytest.importorskip("csep")
    from etasvae.forecast_csep import TESTS, csep_tests

    good = csep_tests(_fit(), etas_data, 300.0, 7.0, n_catalogs=200, seed=0, end_days=440.0)
    assert good["n_horizons"] == 20
    for name in TESTS:
        assert good["n_valid"][name] >= 18, name
        assert good["pass_rate"][name] >= 0.75, (name, good["pass_rate"])
    bad = csep_tests(_fit(mu=3.0), etas_data, 300.0, 7.0, n_catalogs=200, seed=0, end_days=440.0)
    assert bad["pass_rate"]["number"] <= 0.5, bad["pass_rate"]
    low = [h["number"]["quantile"][1] for h in bad["horizons"]]  # delta_2 = P(N_sim <= N_obs)
    assert np.median(low) < 0.025
    # the per-horizon numbers: the observed count is the data's, the quantiles pyCSEP's pair
    h = good["horizons"][3]
    assert h["n_observed"] == int(((etas_data["time"] >= 321) & (etas_data["time"] < 328)).sum())
    assert len(h["number"]["quantile"]) == 2 and h["number"]["quantile"][0] + h["number"]["quantile"][1] >= 1.0


def test_command_line_csep_on_an_imported_csv(tmp_path, capsys):
    """A ComCat CSV imported by etasvae.realdata, `fit --end-days 90 --json`, then `csep --start-days 90
    --json`: the printed keys, one seed giving the same bytes, and the fit forecasting its own ETAS data (the
    number test passes in most of the four weekly horizons); a bad horizon is refused with exit status 2."""
    pytest.importorskip("csep")
    from etasvae.__main__ import main
    from etasvae.realdata import check_dataset, import_dataset

    csv = tmp_path / "events.csv"
    write_comcat_csv(csv)
    path = tmp_path / "catalog.parquet"
    import_dataset(check_dataset("test", dataset_config(str(csv))), str(csv), str(path), str(tmp_path / "import.json"))
    assert main(["fit", str(path), "--model", "temporal", "--end-days", "90", "--tau", "none", "--starts", "1",
                 "--json"]) == 0
    fit_path = tmp_path / "fit.json"
    fit_path.write_text(capsys.readouterr().out)
    args = ["csep", str(path), "--fit", str(fit_path), "--start-days", "90", "--end-days", "118",
            "--horizon-days", "7", "--catalogs", "100", "--seed", "3", "--json"]
    assert main(args) == 0
    first = capsys.readouterr().out
    result = json.loads(first)
    assert result["n_horizons"] == 4 and len(result["horizons"]) == 4 and result["n_catalogs"] == 100
    assert set(result["pass_rate"]) == {"number", "magnitude", "spatial", "pseudolikelihood"}
    assert result["pass_rate"]["number"] >= 0.5
    assert main(args) == 0
    assert capsys.readouterr().out == first
    assert main(args[:6] + ["--horizon-days", "0"]) == 2
    assert "horizon_days" in capsys.readouterr().err


def test_missing_pycsep_is_a_clear_error(monkeypatch):
    """Without pyCSEP the tests say which extra to install."""
    import sys

    from etasvae.forecast_csep import csep_tests

    monkeypatch.setitem(sys.modules, "csep", None)  # `import csep` raises ImportError
    with pytest.raises(ForecastError, match=r"etasvae\[forecast\]"):
        csep_tests(_fit(), pd.DataFrame({"time": [], "magnitude": [], "x": [], "y": []}), 0.0, 7.0)


def test_background_over_a_polygon_and_from_the_smoothed_density():
    """No history: the background alone. Uniform over an L-shaped polygon (the lower 50 x 25 km strip and
    the upper 25 x 25 km arm): every point inside, the upper arm's share 1/3 within 4 binomial standard
    errors. From a smoothed density of 200 events at one point (bandwidth 1 km, far from the edges): the
    squared distances to it are those of a unit Gaussian step."""
    from etasvae.inversion import inside_polygon
    from etasvae.inversion_background import smoothed_background

    poly = [[0, 0], [50, 0], [50, 50], [0, 50]]
    ell = [[0, 0], [50, 0], [50, 50], [25, 50], [25, 25], [0, 25]]
    sims = simulate_forward(_fit(K=0.0), pd.DataFrame({"time": [], "magnitude": [], "x": [], "y": []}),
                            0.0, 30.0, ell, np.random.default_rng(2), n_catalogs=200)
    assert inside_polygon(ell, sims["x"].to_numpy(), sims["y"].to_numpy()).all()
    share = float(np.mean(sims["y"] > 25.0))
    assert abs(share - 1 / 3) < 4.0 * math.sqrt(2 / 9 / len(sims)), share
    rng = np.random.default_rng(3)
    xs, ys = 30.0 + 0.01 * rng.standard_normal(200), 20.0 + 0.01 * rng.standard_normal(200)
    density = smoothed_background(xs, ys, np.ones(200), poly, min_bandwidth=1.0)
    fit = {**_fit(K=0.0), "background_density": density.to_dict()}
    sims = simulate_forward(fit, pd.DataFrame({"time": [], "magnitude": [], "x": [], "y": []}), 0.0, 30.0,
                            poly, np.random.default_rng(4), n_catalogs=50)
    r = np.hypot(sims["x"] - 30.0, sims["y"] - 20.0)
    # r^2 / 2 of a unit Gaussian step is a standard exponential (sd 1): its mean within 4 standard errors
    assert len(sims) > 1000 and r.max() < 6.0
    assert abs(float(np.mean(r**2)) / 2.0 - 1.0) < 4.0 / math.sqrt(len(sims))


def test_simulated_magnitudes_above_the_top_bin_count_in_the_open_last_bin(etas_data):
    """With b = 0.5 a simulated event exceeds Mc + 2 (the grid's top when the observed events stay below it)
    with probability 10^-1 per event, so among ~200 catalogs x ~13 events per week almost every horizon has
    one: pyCSEP's binning refused them ("magnitude value outside of the valid region") before the last bin
    was made open. Every test is then valid in every horizon."""
    pytest.importorskip("csep")
    from etasvae.forecast_csep import csep_tests

    data = etas_data[etas_data["magnitude"] < MC + 1.9]
    out = csep_tests(_fit(b=0.5), data, 300.0, 7.0, n_catalogs=200, seed=0, end_days=328.0)
    assert out["n_horizons"] == 4 and all(v == 4 for v in out["n_valid"].values()), out["n_valid"]
    assert all(0.0 <= r <= 1.0 for r in out["pass_rate"].values())


def test_the_poisson_forecaster_draws_its_rate_uniformly_with_gutenberg_richter_magnitudes():
    """The Poisson baseline's catalogs of a 4-day horizon at 3 events per day: mean count 12 (4000 catalogs,
    standard error sqrt(12 / 4000) = 0.055, tolerance 4 of them), the count's variance its mean (Poisson:
    the variance of the sample variance is about 2 lambda^2 / n, sd 0.27, tolerance 4 sd), times in the
    horizon, positions in the region (the polygon's lower-left triangle: half the square's points fall outside
    it), the mean of m - Mc 1 / (b ln 10) (b = 1: sd 0.434 / sqrt(48 000), tolerance 4 sd)."""
    from etasvae.forecast_csep import poisson_forecaster

    tri = [[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]]
    forecast = poisson_forecaster(3.0, 1.0, MC, 0.0, tri)
    n = 4000
    sims = forecast(pd.DataFrame(columns=["time", "magnitude", "x", "y"]), 10.0, 14.0, np.random.default_rng(2), n)
    counts = np.bincount(sims["catalog"], minlength=n)
    assert abs(counts.mean() - 12.0) < 4.0 * math.sqrt(12.0 / n)
    assert abs(counts.var(ddof=1) - 12.0) < 4.0 * math.sqrt(2.0 * 12.0 ** 2 / n)
    assert ((sims["time"] >= 10.0) & (sims["time"] < 14.0)).all()
    assert (sims["x"] + sims["y"] <= 50.0 + 1e-9).all() and (sims["x"] >= 0).all() and (sims["y"] >= 0).all()
    excess = sims["magnitude"].to_numpy() - MC
    want = 1.0 / math.log(10.0)
    assert abs(excess.mean() - want) < 4.0 * want / math.sqrt(excess.size)
    again = forecast(pd.DataFrame(columns=["time", "magnitude", "x", "y"]), 10.0, 14.0, np.random.default_rng(2), n)
    pd.testing.assert_frame_equal(sims, again)
