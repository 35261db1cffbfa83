"""The `etas` package's estimator (Mizrahi et al. 2021; its EM, ``ETASParameterCalculation.invert``), for
comparing with it on one catalog (docs/methods/forecast.md, *The `etas` package's estimator*).

The package fits the space-time model with each kernel integrated over the whole plane
(``space_integral="plane"``), pairs beyond a multiple of the rupture length left out of the sum, and no
other cut. Its M-step maximises over the triggering parameters

    Q(theta | theta') = sum_j [l_j log G_j(theta) - G_j(theta)] + sum_ij P_ij log h_ij(theta)

with P_ij the E-step's triggering probabilities at theta', l_j = sum_i P_ij, G_j = kappa_j F_j the expected
number of event j's aftershocks in the observed window (F_j its Omori kernel's fraction in the window; in
space, the plane) and h_ij the kernel density normalised over all lags and the plane. The complete-data
log-likelihood of ETAS has log(h_ij / F_j) in the place of log h_ij (the aftershocks seen in the window are
distributed as the kernel restricted to it), so Q is the EM's Q plus sum_j l_j log F_j, and a fixed point of
the package's iteration solves

    grad l(theta) + sum_j l_j(theta) grad log F_j(theta) = 0,

which is not the likelihood equation: the added term rewards kernels whose mass stays inside the window
(a shorter taper, a steeper decay), and the two estimates differ on catalogs whose aftershock sequences
outlast the window. ``fit_package_estimator`` solves that equation by the outer iteration
theta_{k+1} = argmax_theta l(theta) + sum_j l_j(theta_k) log F_j(theta) (L-BFGS-B, closed-form gradients,
l_j from ``_Likelihood.offspring``), whose fixed points are the package's. Its standard errors are the
inverse observed information of l at the estimate (the package reports none).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
from scipy import optimize

from .inversion import (
    MAX_LAG_DAYS, RUPTURE_MULTIPLE, ETASFit, InversionError, Sequence, _Context, _observed_and_guess,
    _package_start, _summarise, _taper_option, param_names,
)
from .inversion_likelihood import _build, _Likelihood

# Outer rounds at most, and the largest coordinate change that ends them.
MAX_ROUNDS = 100
TOLERANCE = 1e-6


def fit_package_estimator(seqs: list[Sequence], *, mc: float, tau="free", delta_m: float = 0.0,
                          rupture_multiple: float | None = RUPTURE_MULTIPLE, max_lag_days: float = MAX_LAG_DAYS,
                          start: dict[str, float] | None = None) -> ETASFit:
    """The `etas` package's estimate of the space-time model (module docstring) with a uniform background,
    from its default start (or ``start``); ``tau``: "free", "none" or a fixed number of days."""
    kind, tau_value = _taper_option(tau)
    if kind == "auto":
        raise InversionError("the etas package's estimator takes tau free, none or a number of days, not auto")
    names = param_names("space-time", "free" if kind == "free" else None)
    seqs, guess = _observed_and_guess(seqs, names, mc, "space-time", tau_value)
    if any(s.region is None for s in seqs):
        raise InversionError("the space-time model needs the region of every sequence")
    ctx = _Context(seqs, "space-time", mc, names, kind, tau_value, 0.05, rupture_multiple, max_lag_days,
                   np.random.default_rng(0), plane=True)
    first = {**_package_start(ctx, guess), **{k: v for k, v in (start or {}).items() if v is not None}}
    data = _build(seqs, "space-time", mc, math.inf, math.inf, first, radius_cap=ctx.radius_cap,
                  lag_cap=ctx.lag_cap, tau=ctx.tau, background=None, plane=True)
    lik = _Likelihood(data, names)
    theta, converged, rounds = _solve(lik, ctx.to_theta(first), ctx.bounds(), ctx.n_target)
    result = SimpleNamespace(fun=-lik(theta) / ctx.n_target, success=converged, x=theta)
    fit = _summarise(result, theta, data, lik, ctx, delta_m)
    fit.estimator = "etas-package"
    fit.cut["estimator_rounds"] = rounds
    return fit


def _solve(lik: _Likelihood, theta: np.ndarray, bounds, n_target: int) -> tuple[np.ndarray, bool, int]:
    """The outer iteration's fixed point: (theta, converged, rounds)."""
    scale = 1.0 / max(n_target, 1)
    for rounds in range(1, MAX_ROUNDS + 1):
        weights = lik.offspring(theta)

        def fun(th, weights=weights):
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                value, grad = lik.value_and_grad(th)
                frac, d_log = lik.window_fraction(th)
                value += float(weights @ np.log(frac))
                grad = grad + weights @ d_log
            if not (math.isfinite(value) and np.isfinite(grad).all()):
                return 1e10, np.zeros_like(th)
            return -value * scale, -grad * scale

        r = optimize.minimize(fun, theta, jac=True, method="L-BFGS-B", bounds=bounds,
                              options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9})
        step = float(np.max(np.abs(r.x - theta)))
        theta = r.x
        if step < TOLERANCE:
            return theta, True, rounds
    return theta, False, MAX_ROUNDS
