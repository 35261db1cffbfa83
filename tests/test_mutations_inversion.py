"""The branching ratio's standard error: the delta method against finite differences of n(K, alpha, b),
with b's own uncertainty in it (the fit reports n = K beta/(beta - alpha), beta = b ln 10)."""

import math

import numpy as np
import pytest

from etasvae.inversion import fit_catalog, param_names
from etasvae.params import ETASParams
from etasvae.simulate import simulate_etas

REGION = (0.0, 100.0, 0.0, 50.0)
# alpha near beta = 2.30: n depends on b steeply (dn/db = -n alpha ln 10/(beta (beta - alpha)), about -1.5
# here), so b's error is a visible part of n's (about a fifth of its variance for 600 events)
PARAMS = ETASParams(mu=1.0, K=0.1, alpha=1.8, c=0.01, p=1.3, D=0.1, q=2.0, gamma=0.5, b=1.0, mc=2.5, mmax=7.0)


def _branching_ratio(K, alpha, b):
    # the fit's n is the untruncated one (mmax None), from the params module's own formula
    return ETASParams(mu=1.0, K=K, alpha=alpha, c=0.01, p=1.3, D=0.1, q=2.0, gamma=0.5, b=b, mc=2.5).branching_ratio()


def test_branching_ratio_error_is_the_delta_method_with_b_uncertainty():
    cat = simulate_etas(PARAMS, duration=400.0, region=REGION, rng=np.random.default_rng(3))
    fit = fit_catalog(cat, mc=2.5, model="temporal", t_start=0.0, t_end=400.0, region=REGION, n_starts=1)
    assert fit.usable
    est, se = fit.estimates, fit.std_errors
    names = param_names("temporal")
    # the covariance is that of the natural parameters, in param_names order (its diagonal gives the errors)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.covariance)), [se[k] for k in names], rtol=1e-12)
    assert est["branching_ratio"] == pytest.approx(_branching_ratio(est["K"], est["alpha"], est["b"]), rel=1e-12)

    # gradient of n in (K, alpha, b) by central differences (relative step 1e-6: truncation error ~1e-12)
    x = np.array([est["K"], est["alpha"], est["b"]])
    grad = np.empty(3)
    for i in range(3):
        h = 1e-6 * x[i]
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (_branching_ratio(*up) - _branching_ratio(*down)) / (2 * h)
    ka = [names.index("K"), names.index("alpha")]
    var_kernel = grad[:2] @ fit.covariance[np.ix_(ka, ka)] @ grad[:2]
    var_b = (grad[2] * se["b"]) ** 2  # b is estimated from the magnitudes alone: independent of the rest
    assert se["branching_ratio"] == pytest.approx(math.sqrt(var_kernel + var_b), rel=1e-6)
    # b's part is large enough that leaving it out is far outside that tolerance
    assert math.sqrt(var_kernel) < 0.95 * se["branching_ratio"]
