"""The ETAS inversion's recovery study: simulate-and-fit replicates, z-scores of the estimates against the
truth (used by benchmarks/recovery_invert.py and by the recovery tests of tests/test_inversion.py).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from etasvae.inversion import LN10, fit_catalog, fit_windows, param_names, profile_parameters, signed_root
from etasvae.simulate import simulate_etas


def recovery_zscores(
    params,
    *,
    model: str,
    replicates: int,
    duration: float,
    region: tuple[float, float, float, float] = (0.0, 100.0, 0.0, 100.0),
    n_windows: int | None = None,
    seed: int = 0,
    signed_roots: bool | tuple[str, ...] = False,
    **options,
) -> pd.DataFrame:
    """Simulate-and-fit replicates (our simulator, etasvae.simulate): z = (estimate - truth) / std_error.

    Each replicate is one catalog on [0, duration) (or, with ``n_windows``, that many independent catalogs
    fitted jointly as short windows), simulated without burn-in or margin, so that no unobserved event
    triggers (up to the aftershocks landing outside the region: negligible for kernels much smaller than
    it). The truth of the branching ratio is K beta/(beta - alpha) with the true b. One row per replicate
    and parameter: replicate, parameter, truth, estimate, std_error, z, plus the number of target events.

    Positive parameters have skewed estimates (K, c, p - 1 over a factor of several in short catalogs), so
    their z is taken on the log scale with the same reported error (delta method: sd of log(est) = se/est):
    z = (log(est - shift) - log(truth - shift)) (est - shift)/se, shift 1 for p and q, 0 otherwise;
    alpha, gamma and b are compared as they are. ``z_natural`` is (est - truth)/se, the Wald z on the
    natural scale. With ``signed_roots`` (True: every parameter but b, which has no profile here; or the
    names), ``r`` is the profile likelihood's signed root at the truth (``signed_root``): two refits per parameter, one from the estimate,
    one from the truth, the higher profile kept (it is a maximum: any start is fair, and more starts only
    find it better).
    """
    rng = np.random.default_rng(seed)
    beta = params.b * LN10
    truth = {k: getattr(params, k) for k in param_names(model)}
    truth["b"] = params.b
    truth["branching_ratio"] = params.K * beta / (beta - params.alpha)
    rooted = profile_parameters(model) if signed_roots is True else tuple(signed_roots or ())
    rows = []
    for rep in range(replicates):
        if n_windows is None:
            cat = simulate_etas(params, duration=duration, region=region, rng=rng)
            fit = fit_catalog(cat, mc=params.mc, model=model, t_start=0.0, t_end=duration, region=region, **options)
        else:
            wins = [simulate_etas(params, duration=duration, region=region, rng=rng) for _ in range(n_windows)]
            fit = fit_windows(wins, [duration] * n_windows, mc=params.mc, model=model, region=region, **options)
        for k, v in truth.items():
            est, se = fit.estimates[k], fit.std_errors[k]
            if not (se > 0.0 and math.isfinite(se)):  # singular information (a flat direction): no z
                z = math.nan
            elif k in ("alpha", "gamma", "b"):
                z = (est - v) / se
            else:
                shift = 1.0 if k in ("p", "q") else 0.0
                z = math.log((est - shift) / (v - shift)) * (est - shift) / se if est > shift else -math.inf
            r = signed_root(fit, k, v, also_from=truth) if k in rooted else math.nan
            rows.append({"replicate": rep, "parameter": k, "truth": v, "estimate": est, "std_error": se,
                         "z": z, "z_natural": (est - v) / se if se > 0 else math.nan, "r": r,
                         "n_target": fit.n_target, "at_bound": ",".join(fit.at_bound)})
    return pd.DataFrame(rows)

