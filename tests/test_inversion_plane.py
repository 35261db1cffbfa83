"""The ETAS likelihood with each kernel integrated over the whole plane (``space_integral="plane"``, the
`etas` package's model): against a direct computation, its gradient against differences, its agreement
with the region's likelihood where no kernel mass leaves the region, and the command line's record of it."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from likelihood_checks import check_gradients_and_far_rate

from etasvae.catalog import write_catalog
from etasvae.inversion import Sequence, _build, _Likelihood, _to_theta, catalog_sequence, fit_catalog, param_names
from etasvae.params import ETASParams
from etasvae.simulate import simulate_etas

REGION = (0.0, 100.0, 0.0, 50.0)
V = {"mu": 2.0, "K": 0.4, "alpha": 1.3, "c": 0.02, "p": 1.2, "D": 2.0, "q": 1.7, "gamma": 0.8}


def _direct_plane_loglik(t, m, x, y, t0, t1, mc, area, v):
    """sum log lambda - mu (t1 - t0) - sum_j kappa_j (G(t1 - t_j) - G(max(t0 - t_j, 0))): each spatial
    kernel's integral is 1 (the whole plane)."""
    total = 0.0
    for i in range(t.size):
        if t[i] < t0:
            continue
        lam = v["mu"] / area
        for j in range(i):
            sigma = v["D"] * math.exp(v["gamma"] * (m[j] - mc))
            kappa = v["K"] * math.exp(v["alpha"] * (m[j] - mc))
            g = (v["p"] - 1.0) * v["c"] ** (v["p"] - 1.0) / (t[i] - t[j] + v["c"]) ** v["p"]
            r2 = (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2
            lam += kappa * g * (v["q"] - 1.0) / (math.pi * sigma) * (1.0 + r2 / sigma) ** (-v["q"])
        total += math.log(lam)
    big_g = lambda s: 1.0 - (1.0 + s / v["c"]) ** (1.0 - v["p"])  # noqa: E731
    integral = v["mu"] * (t1 - t0)
    for j in range(t.size):
        kappa = v["K"] * math.exp(v["alpha"] * (m[j] - mc))
        integral += kappa * (big_g(t1 - t[j]) - big_g(max(t0 - t[j], 0.0)))
    return total - integral


def _events(seed=3, n=25):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, 10.0, n))
    m = 2.5 + rng.exponential(1.0 / math.log(10.0), n)
    x, y = rng.uniform(0.0, 100.0, n), rng.uniform(0.0, 50.0, n)
    x[0], y[0] = 0.2, 49.7  # next to a corner: most of the region's integral would differ from the plane's
    return t, m, x, y


def test_plane_loglik_matches_direct_computation():
    t, m, x, y = _events()
    seq = Sequence(t, m, x, y, 3.0, 10.0, REGION)
    names = param_names("space-time")
    plane = _Likelihood(_build([seq], "space-time", 2.5, math.inf, 1e9, V, plane=True), names)
    region = _Likelihood(_build([seq], "space-time", 2.5, math.inf, 1e9, V), names)
    theta = _to_theta(V, names)
    want = _direct_plane_loglik(t, m, x, y, 3.0, 10.0, 2.5, 5000.0, V)
    assert plane(theta) == pytest.approx(want, rel=1e-9, abs=1e-6)
    assert plane.value_and_grad(theta)[0] == pytest.approx(want, rel=1e-9, abs=1e-6)
    # the plane counts the mass the corner event sends outside as expected events: a lower likelihood
    assert plane(theta) < region(theta) - 1e-3


@pytest.mark.parametrize("tau", [None, "free"])
def test_plane_gradients_match_differences_of_the_likelihood(tau):
    """Gradient of the likelihood and of the far rate (the cut's disc mass 1 - tail(R_j), the uncut 1)
    against central differences (step 1e-6; as in tests/test_inversion.py), the pair cut active."""
    params = ETASParams(mu=1.0, K=0.4, alpha=1.0, c=0.01, p=1.3, D=0.1, q=2.0, gamma=0.5, b=1.0, mc=2.5, mmax=7.0)
    cat = simulate_etas(params, duration=60.0, region=REGION, rng=np.random.default_rng(8))
    seq = catalog_sequence(cat, mc=2.5, t_start=10.0, t_end=60.0, region=REGION)
    names = param_names("space-time", tau)
    v = {"mu": 0.8, "K": 0.35, "alpha": 1.1, "c": 0.02, "p": 1.25 if tau is None else 0.9, "tau": 15.0,
         "D": 0.15, "q": 1.8, "gamma": 0.6}
    lik = _Likelihood(_build([seq], "space-time", 2.5, 2.0, 3.0, v, plane=True), names)
    assert lik.n_pairs > 100
    theta = _to_theta(v, names)
    check_gradients_and_far_rate(lik, theta)


def test_plane_and_region_agree_where_no_kernel_mass_leaves_the_region():
    """Events in the middle of a region 10^6 km wide with kernels of sigma <= ~10 km^2: the region holds
    every kernel's mass but (sigma / R^2)^(q-1) ~ (1e-11)^0.7 ~ 2e-8 of it, times a total productivity of a
    few events, so the two likelihoods agree to ~1e-7 nats (the quadrature's own error is below that:
    tests/test_inversion.py); at 10^4 km they differ by ~1e-4, which the tolerance would see."""
    t, m, x, y = _events(seed=5)
    big = (-5e5, 5e5 + 100.0, -5e5, 5e5 + 50.0)
    seq = Sequence(t, m, x, y, 3.0, 10.0, big)
    names = param_names("space-time")
    theta = _to_theta(V, names)
    plane = _Likelihood(_build([seq], "space-time", 2.5, math.inf, 1e9, V, plane=True), names)(theta)
    region = _Likelihood(_build([seq], "space-time", 2.5, math.inf, 1e9, V), names)(theta)
    assert plane == pytest.approx(region, abs=1e-5)


def test_fit_and_command_record_the_space_integral(tmp_path):
    params = ETASParams(mu=2.0, K=0.3, alpha=1.0, c=0.01, p=1.2, D=0.5, q=1.8, gamma=0.5, b=1.0, mc=2.5, mmax=7.0)
    cat = simulate_etas(params, duration=200.0, region=REGION, rng=np.random.default_rng(2))
    plane = fit_catalog(cat, mc=2.5, t_start=20.0, t_end=200.0, region=REGION, tau=None, background="uniform",
                        space_integral="plane", n_starts=1)
    region = fit_catalog(cat, mc=2.5, t_start=20.0, t_end=200.0, region=REGION, tau=None, background="uniform",
                         n_starts=1)
    assert plane.to_dict()["space_integral"] == "plane" and region.to_dict()["space_integral"] == "region"
    # the plane charges the mass sent outside as expected events: for the same data it fits a lower K
    assert plane.estimates["K"] < region.estimates["K"]
    path = tmp_path / "catalog.parquet"
    write_catalog(cat, path, {"mc": 2.5, "region_km": list(REGION), "duration_days": 200.0}, mc=2.5)
    out = subprocess.run([sys.executable, "-m", "etasvae", "fit", str(path), "--aux-days", "20", "--tau", "none",
                          "--background", "uniform", "--space-integral", "plane", "--starts", "1", "--json"],
                         capture_output=True, text=True)
    assert out.returncode in (0, 3), out.stderr
    got = json.loads(out.stdout)
    assert got["space_integral"] == "plane"
    assert got["estimates"]["K"] == pytest.approx(plane.estimates["K"], rel=1e-6)
