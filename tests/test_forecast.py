"""Forecast scores on a time split (etasvae.forecast, `python -m etasvae score`): TLL, SLL and MLL against a
direct computation of the intensities, and the command line from `fit --json` to `score --json`."""

import json
import math

import numpy as np
import pytest

from etasvae.catalog import write_catalog
from etasvae.forecast import score_forecast
from etasvae.params import ETASParams
from etasvae.simulate import simulate_etas
from test_inversion import REGION, _polar_fraction


def _fit_dict(v, b, n_target, span):
    """A fit as `fit --json` writes it, with no pair cut (every pair, the whole kernel)."""
    return {"model": "space-time", "estimates": {**v, "b": b}, "taper": "none", "mc": 2.5, "delta_m": 0.0,
            "cut": {"max_lag_days": math.inf, "radius_sigma_units": 1e9, "background_rate_cut_model": v["mu"],
                    "rupture_multiple": math.inf},
            "n_target": n_target, "span_days": span, "region": list(REGION)}


def test_scores_match_a_direct_computation():
    """TLL, SLL, MLL of a small catalog's test period against the intensities computed event by event: the
    ground intensity with each kernel's part inside the region by adaptive quadrature (_polar_fraction), the
    Omori law and its integral in closed form, the Gutenberg-Richter density; and the Poisson baseline."""
    rng = np.random.default_rng(4)
    n = 30
    t = np.sort(rng.uniform(0.0, 20.0, n))
    m = 2.5 + rng.exponential(1.0 / math.log(10.0), n)
    x, y = rng.uniform(0.0, 100.0, n), rng.uniform(0.0, 50.0, n)
    x[11:15], y[11:15] = x[10] + rng.normal(0, 0.5, 4), y[10] + rng.normal(0, 0.5, 4)
    import pandas as pd

    cat = pd.DataFrame({"time": t, "magnitude": m, "x": x, "y": y})
    v = {"mu": 1.2, "K": 0.4, "alpha": 1.3, "c": 0.02, "p": 1.2, "D": 2.0, "q": 1.7, "gamma": 0.8}
    T, E = 8.0, 20.0
    got = score_forecast(cat, _fit_dict(v, 1.1, 40, 10.0), start_days=T, end_days=E)
    area = 5000.0
    kappa = v["K"] * np.exp(v["alpha"] * (m - 2.5))
    sigma = v["D"] * np.exp(v["gamma"] * (m - 2.5))
    frac = np.array([_polar_fraction(x[j], y[j], sigma[j], v["q"], math.inf) for j in range(n)])

    def g(s):
        return (v["p"] - 1) * v["c"] ** (v["p"] - 1) * (s + v["c"]) ** -v["p"]

    def big_g(s):
        return 1.0 - (1.0 + s / v["c"]) ** (1.0 - v["p"])

    test = np.flatnonzero(t >= T)
    tll, sll = [], []
    for i in test:
        j = np.arange(i)
        r2 = (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2
        f = (v["q"] - 1) / (math.pi * sigma[j]) * (1 + r2 / sigma[j]) ** -v["q"]
        lam = v["mu"] / area + np.sum(kappa[j] * g(t[i] - t[j]) * f)
        ground = v["mu"] + np.sum(kappa[j] * g(t[i] - t[j]) * frac[j])
        tll.append(math.log(ground))
        sll.append(math.log(lam / ground))
    integral = v["mu"] * (E - T) + np.sum(kappa * (big_g(E - t) - big_g(np.maximum(T - t, 0.0))) * frac)
    beta = 1.1 * math.log(10.0)
    assert got["etas"]["n_events"] == test.size
    assert got["etas"]["tll"] == pytest.approx(np.mean(tll) - integral / test.size, rel=1e-7)
    assert got["etas"]["sll"] == pytest.approx(np.mean(sll), rel=1e-7)
    assert got["etas"]["mll"] == pytest.approx(np.mean(math.log(beta) - beta * (m[test] - 2.5)), rel=1e-12)
    rate = 40 / 10.0
    assert got["poisson"]["tll"] == pytest.approx(math.log(rate) - rate * (E - T) / test.size, rel=1e-12)
    assert got["poisson"]["sll"] == pytest.approx(-math.log(area))


def test_command_line_fit_then_score(tmp_path, capsys):
    """`fit --end-days T --json` then `score --start-days T --json` on a clustered simulated catalog: the
    printed keys, the training window of the fit, and ETAS ahead of the Poisson model in time and in space
    (with n = 0.55 and kernels of a few km in a 100 x 50 km region, by more than a nat per event in SLL)."""
    from etasvae.__main__ import main

    params = ETASParams(mu=1.0, K=0.3, alpha=1.0, c=0.01, p=1.3, D=0.1, q=2.0, gamma=0.5, b=1.0, mc=2.5, mmax=7.0)
    cat = simulate_etas(params, duration=150.0, region=REGION, rng=np.random.default_rng(3))
    path = tmp_path / "catalog.parquet"
    write_catalog(cat, path, {"mc": 2.5, "region_km": list(REGION), "duration_days": 150.0}, mc=2.5)
    assert main(["fit", str(path), "--end-days", "100", "--tau", "none", "--starts", "1", "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["t_end"] == 100.0 and fit["n_target"] == int((cat["time"] < 100).sum())
    fit_path = tmp_path / "fit.json"
    fit_path.write_text(json.dumps(fit))
    assert main(["score", str(path), "--fit", str(fit_path), "--start-days", "100", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"etas", "poisson"}
    for s in scores.values():
        assert set(s) == {"tll", "sll", "mll", "n_events"} and s["n_events"] == int((cat["time"] >= 100).sum())
    assert scores["etas"]["tll"] > scores["poisson"]["tll"]
    assert scores["etas"]["sll"] > scores["poisson"]["sll"] + 1.0
    assert scores["etas"]["mll"] == scores["poisson"]["mll"]
    assert main(["score", str(path), "--fit", str(tmp_path / "missing.json"), "--start-days", "100"]) == 2
