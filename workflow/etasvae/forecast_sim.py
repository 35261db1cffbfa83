"""Catalogs simulated forward from a fitted ETAS model, given every earlier event (docs/methods/forecast.md).

The fit is the dict that ``python -m etasvae fit --json`` prints (ETASFit.to_dict() with "mc", "delta_m" and
"region"). The simulated model is the fitted one without its pair cut: background rate ``estimates["mu"]``
(net of the aftershocks beyond the cut, which the full kernels put back), the full Omori law (pure or
tapered) and the full spatial kernel. Given the history H (the events before ``start``), ETAS is a Poisson
cluster process, so the events of [start, end) are

- the background: Poisson(mu (end - start)) events, times uniform, locations uniform over the region
  (rejection from its bounding box for a polygon) or from the fit's smoothed density (a mixture of Gaussians
  cut to the region: a source drawn by its weight, a Gaussian step, rejection outside the region);
- the direct aftershocks of every history event j that fall in [start, end): j's whole offspring is drawn,
  Poisson(kappa(m_j)) events with Omori delays, and those outside [start, end) dropped (the aftershocks
  j already had are in H; the Poisson offspring's parts in disjoint intervals are independent);
- their cascades: every new event draws its own Poisson(kappa(m)) aftershocks, generation by generation,
  until one generation has none before ``end``.

Space-time model: an aftershock lands at its parent's position plus a kernel distance in a uniform direction;
one outside the region is dropped and triggers nothing (the fit's intensity has only the region's events
as parents). Temporal model: locations uniform over the region, every aftershock kept.

Magnitudes: Gutenberg-Richter with the fit's b above Mc; with binned magnitudes (delta_m > 0) continuous
from Mc - delta_m/2 and rounded to the bins (the magnitudes Aki-Utsu with Utsu's correction describes),
and the productivity reads the binned value, as the fit did.

All catalogs are simulated together: every event carries its catalog's index, so the work is one
vectorised pass per generation. For the history's offspring, the sum over n catalogs of Poisson(kappa_j)
counts is Poisson(n kappa_j), each child in a uniform catalog (the multinomial split of a Poisson count):
one draw per history event instead of one per event and catalog.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .inversion_background import BackgroundDensity
from .inversion_geometry import as_polygon, inside_polygon
from .simulation_kernels import _poisson_hits, sample_gr_magnitudes, sample_kernel_distances, sample_omori_times

COLUMNS = ("catalog", "time", "magnitude", "x", "y", "generation")
# A forward simulation with more events than this (all catalogs) is a runaway (n >= 1 or a huge kappa).
MAX_EVENTS = 50_000_000


class ForecastError(ValueError):
    """The fit or the history cannot give a forward simulation (the message says why)."""


def fit_params(fit: dict[str, Any]) -> dict[str, Any]:
    """The simulated model's parameters from a fit's dict (module docstring), with a clear error naming a
    missing key."""
    for key in ("model", "estimates", "mc"):
        if key not in fit:
            raise ForecastError(f"the fit lacks {key!r}: write it with `python -m etasvae fit --json`")
    est = fit["estimates"]
    model = fit["model"]
    needed = ["mu", "K", "alpha", "c", "p", "b"] + (["D", "q", "gamma"] if model == "space-time" else [])
    missing = [k for k in needed if k not in est]
    if missing:
        raise ForecastError(f"the fit's estimates lack {', '.join(missing)}")
    taper = fit.get("taper", "none")
    tau = float(est["tau"]) if taper != "none" and est.get("tau") is not None else None
    if tau is None and not float(est["p"]) > 1.0:
        raise ForecastError(f"p = {est['p']}: the pure Omori law needs p > 1 (a fit with p <= 1 is tapered)")
    out = {k: float(est[k]) for k in needed}
    out.update(model=model, tau=tau, mc=float(fit["mc"]), delta_m=float(fit.get("delta_m", 0.0)))
    if model == "space-time" and fit.get("background_density") is not None:
        out["density"] = BackgroundDensity.from_dict(fit["background_density"])
    return out


def _magnitudes(n: int, par, rng) -> np.ndarray:
    dm = par["delta_m"]
    if dm > 0:
        m = sample_gr_magnitudes(n, par["b"], par["mc"] - dm / 2.0, None, rng)
        # the bin of m: m >= Mc - dm/2, but (m - Mc)/dm can fall a rounding error below -1/2: clip to Mc's bin
        k = np.maximum(np.floor((m - par["mc"]) / dm + 0.5), 0.0)
        return np.round(par["mc"] + k * dm, 10)
    return sample_gr_magnitudes(n, par["b"], par["mc"], None, rng)


def _uniform_points(n: int, poly: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform in the polygon: rejection from its bounding box."""
    (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
    xs, ys = np.empty(n), np.empty(n)
    todo = np.arange(n)
    while todo.size:
        x = rng.uniform(x0, x1, todo.size)
        y = rng.uniform(y0, y1, todo.size)
        ok = inside_polygon(poly, x, y)
        xs[todo[ok]], ys[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
    return xs, ys


def _density_points(n: int, density: BackgroundDensity, poly: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """n points from the smoothed background cut to the region (mixture sampling, rejection outside)."""
    w = density.weight / density.weight.sum()
    xs, ys = np.empty(n), np.empty(n)
    todo = np.arange(n)
    while todo.size:
        j = rng.choice(w.size, size=todo.size, p=w)
        h = density.bandwidth[j]
        x = density.x[j] + h * rng.standard_normal(todo.size)
        y = density.y[j] + h * rng.standard_normal(todo.size)
        ok = inside_polygon(poly, x, y)
        xs[todo[ok]], ys[todo[ok]] = x[ok], y[ok]
        todo = todo[~ok]
    return xs, ys


def _children(par, poly, rng, cat, t, m, x, y, start, end, *, spread: float = 1.0):
    """The direct aftershocks in [start, end) (and, space-time, in the region) of the events given, each
    parent's Poisson(spread * kappa) offspring; with spread = n catalogs each child goes to a uniform catalog
    (the multinomial split), with spread = 1 to its parent's."""
    rate = spread * par["K"] * np.exp(par["alpha"] * (m - par["mc"]))
    # the simulator's Poisson draw: (parents with >= 1 child, their counts; None where each has one)
    pidx, counts = _poisson_hits(rate, rng)
    if counts is not None:
        pidx = np.repeat(pidx, counts)
    if pidx.size > MAX_EVENTS:
        raise ForecastError(f"{pidx.size} aftershocks in one generation: the model is supercritical or "
                            f"kappa too large (K = {par['K']:g}, alpha = {par['alpha']:g})")
    tc = t[pidx] + sample_omori_times(pidx.size, par["p"], par["c"], par["tau"], rng).astype(np.float64)
    keep = (tc >= start) & (tc < end)
    pidx, tc = pidx[keep], tc[keep]
    if spread == 1.0:
        cc = cat[pidx]
    else:
        cc = rng.integers(0, int(spread), pidx.size)
    if par["model"] == "space-time":
        sigma = par["D"] * np.exp(par["gamma"] * (m[pidx] - par["mc"]))
        r = sample_kernel_distances(sigma, par["q"], rng).astype(np.float64)
        angle = rng.uniform(0.0, 2.0 * math.pi, pidx.size)
        xc, yc = x[pidx] + r * np.cos(angle), y[pidx] + r * np.sin(angle)
        inside = inside_polygon(poly, xc, yc)
        pidx, tc, cc, xc, yc = pidx[inside], tc[inside], cc[inside], xc[inside], yc[inside]
    else:
        xc, yc = _uniform_points(pidx.size, poly, rng)
    return cc, tc, _magnitudes(tc.size, par, rng), xc, yc


def simulate_forward(fit: dict[str, Any], history: pd.DataFrame, start_days: float, end_days: float,
                     region=None, rng: np.random.Generator | None = None, *, n_catalogs: int = 1,
                     history_aftershocks: bool = True) -> pd.DataFrame:
    """``n_catalogs`` catalogs of [start_days, end_days) from ``fit`` given ``history`` (events with time,
    magnitude, x, y; those before start_days, above Mc and, space-time, inside the region trigger), as one
    table with the columns COLUMNS, sorted by (catalog, time). ``region``: a rectangle (xmin, xmax, ymin,
    ymax) or a polygon's vertices, km; None: the fit's. ``history_aftershocks`` False leaves the history's
    offspring out (the background and its cascades only). ``generation``: 0 for the background and the
    history's direct aftershocks, k for the k-th generation below them."""
    if not end_days > start_days:
        raise ForecastError(f"forecast period [{start_days}, {end_days}): need end > start")
    if int(n_catalogs) < 1:
        raise ForecastError(f"n_catalogs = {n_catalogs}: need at least 1")
    n_catalogs = int(n_catalogs)
    rng = rng if rng is not None else np.random.default_rng()
    par = fit_params(fit)
    region = region if region is not None else fit.get("region")
    if region is None:
        raise ForecastError("no region: give it, or use a fit made by `fit --json` (which records it)")
    poly = as_polygon(region)
    mc, dm = par["mc"], par["delta_m"]
    ht, hm = history["time"].to_numpy(float), history["magnitude"].to_numpy(float)
    hx, hy = history["x"].to_numpy(float), history["y"].to_numpy(float)
    keep = (ht < start_days) & (hm >= mc - dm / 2.0 + 1e-9 if dm > 0 else hm >= mc)
    if par["model"] == "space-time":
        keep &= inside_polygon(poly, hx, hy)
    ht, hm, hx, hy = ht[keep], hm[keep], hx[keep], hy[keep]

    # generation 0: background and the history's aftershocks in the window
    n_bg = rng.poisson(par["mu"] * (end_days - start_days), n_catalogs)
    cat = np.repeat(np.arange(n_catalogs), n_bg)
    t = rng.uniform(start_days, end_days, cat.size)
    m = _magnitudes(cat.size, par, rng)
    if "density" in par:
        x, y = _density_points(cat.size, par["density"], poly, rng)
    else:
        x, y = _uniform_points(cat.size, poly, rng)
    parts = [(cat, t, m, x, y, np.zeros(cat.size, dtype=np.int64))]
    if history_aftershocks and ht.size:
        c1, t1, m1, x1, y1 = _children(par, poly, rng, None, ht, hm, hx, hy, start_days, end_days,
                                       spread=float(n_catalogs))
        parts.append((c1, t1, m1, x1, y1, np.zeros(c1.size, dtype=np.int64)))
    # cascades: each generation's children, until none falls before the end
    total = sum(p[0].size for p in parts)
    cat, t, m, x, y = (np.concatenate([p[i] for p in parts]) for i in range(5))
    generation = 0
    while cat.size:
        generation += 1
        cat, t, m, x, y = _children(par, poly, rng, cat, t, m, x, y, start_days, end_days)
        total += cat.size
        if total > MAX_EVENTS:
            raise ForecastError(f"more than {MAX_EVENTS} simulated events: the model is supercritical "
                                f"(branching ratio {fit['estimates'].get('branching_ratio', math.nan):.3g})")
        parts.append((cat, t, m, x, y, np.full(cat.size, generation, dtype=np.int64)))
    out = {name: np.concatenate([p[i] for p in parts]) for i, name in enumerate(COLUMNS)}
    order = np.lexsort((out["time"], out["catalog"]))
    return pd.DataFrame({k: v[order] for k, v in out.items()})
