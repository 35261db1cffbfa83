"""Forecasts scored on a time split (the EarthquakeNPP protocol, Stockman, Lawson & Werner 2024).

A fitted ETAS model (``python -m etasvae fit --json``) is scored on a test period [T, E): every earlier event
is history, and each test event i contributes

- TLL_i = log lambda_g(t_i) - Lambda_g / N, lambda_g the ground intensity (events per day in the region) and
  Lambda_g its integral over [T, E), N the number of test events (log 1/day);
- SLL_i = log (lambda(t_i, x_i) / lambda_g(t_i)), the log density of its location given the past (log 1/km^2);
- MLL_i = log of the Gutenberg-Richter density of its magnitude (b of the fit; per magnitude unit: for binned
  magnitudes the bin's probability over its width).

The scores are the means over the test events. The baseline is a homogeneous Poisson model fitted on the
training period: rate N_train / T_train, uniform over the region (SLL = -log area), the same magnitudes.
The ETAS intensities are the fitted model's: the cut kernels of the fit with the cut model's background rate,
so that score and fit are one model (etasvae.inversion). The temporal model says nothing of locations: its
SLL is the uniform density's.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .inversion import (
    InversionError, _build, _Likelihood, _to_theta, catalog_sequence, param_names, polygon_area,
)
from .inversion_background import BackgroundDensity
from .inversion_geometry import rupture_length_km
from .realdata import project


def catalog_region(meta: dict[str, Any], catalog: pd.DataFrame, *, edge_points: int = 8):
    """The region a catalog's events fill, in km: the projected outline of its lon/lat region (bbox or
    polygon, each edge sampled at ``edge_points`` points: a projected straight edge bends) when the metadata
    gives the region and the projection; else ``region_km`` (a rectangle); else the events' bounding box."""
    region, proj = meta.get("region"), meta.get("projection")
    if isinstance(region, dict) and isinstance(proj, dict) and ("bbox" in region or "polygon" in region):
        if "bbox" in region:
            lon_min, lon_max, lat_min, lat_max = region["bbox"]
            vertices = [[lon_min, lat_min], [lon_max, lat_min], [lon_max, lat_max], [lon_min, lat_max]]
        else:
            vertices = region["polygon"]
        v = np.asarray(list(vertices) + [vertices[0]], dtype=float)
        s = np.linspace(0.0, 1.0, edge_points, endpoint=False)[:, None]
        pts = np.concatenate([a + s * (b - a) for a, b in zip(v[:-1], v[1:])])
        x, y = project(pts[:, 0], pts[:, 1], proj["lon0"], proj["lat0"], proj.get("radius_km", 6371.0))
        return [[float(a), float(b)] for a, b in zip(x, y)]
    if meta.get("region_km") is not None:
        return [float(v) for v in meta["region_km"]]
    return [float(catalog[c].agg(f)) for c in ("x", "y") for f in ("min", "max")]


def magnitude_log_density(m: np.ndarray, mc: float, b: float, delta_m: float) -> np.ndarray:
    """Gutenberg-Richter log density per magnitude unit (the bin's probability over its width when binned)."""
    beta = b * math.log(10.0)
    if delta_m > 0:
        k = np.round((m - mc) / delta_m)
        return math.log(-math.expm1(-beta * delta_m)) - beta * delta_m * k - math.log(delta_m)
    return math.log(beta) - beta * (m - mc)


def score_forecast(catalog: pd.DataFrame, fit: dict[str, Any], *, start_days: float, end_days: float,
                   region=None) -> dict[str, dict[str, float]]:
    """{"etas": {"tll", "sll", "mll", "n_events"}, "poisson": {...}} of the test period [start, end) for a fit
    (ETASFit.to_dict() with "mc" and "delta_m", as ``fit --json`` prints; its "region" when ``region`` is
    None)."""
    if not end_days > start_days:
        raise InversionError(f"test period [{start_days}, {end_days}): need end > start")
    model, est, cut = fit["model"], fit["estimates"], fit["cut"]
    mc, delta_m = float(fit["mc"]), float(fit.get("delta_m", 0.0))
    region = region if region is not None else fit.get("region")
    if region is None:
        raise InversionError("no region: give it, or score a fit made by `fit --json` (which records it)")
    taper = fit.get("taper", "none")
    names = param_names(model, "free" if taper == "free" else None)
    tau = float(est["tau"]) if taper == "fixed" else None
    params = {**est, "mu": cut["background_rate_cut_model"]}
    theta = _to_theta(params, names, tau)
    seq = catalog_sequence(catalog, mc=mc, t_start=start_days, t_end=end_days, region=region, delta_m=delta_m)
    n = int((seq.time >= start_days).sum())
    if n == 0:
        raise InversionError(f"no events above Mc = {mc:g} in the test period [{start_days}, {end_days})")
    multiple = cut.get("rupture_multiple", math.inf)
    cap = multiple * rupture_length_km(seq.magnitude) if math.isfinite(multiple) else None
    density = None
    if "background_density" in fit:
        density = BackgroundDensity.from_dict(fit["background_density"])(seq.x, seq.y)
    data = _build([seq], model, mc, float(cut["max_lag_days"]), float(cut["radius_sigma_units"]), params,
                  radius_cap=cap, lag_cap=float(cut.get("pair_max_lag_days", math.inf)), tau=tau,
                  background=density)
    lik = _Likelihood(data, names)
    _, lam = lik.background_and_rate(theta)
    area = polygon_area(region)
    duration = end_days - start_days
    if model == "space-time":
        ground = lik.ground_rate(theta, seq.time, np.array([0, seq.time.size]))
        sll = np.log(lam) - np.log(ground)
    else:
        ground = lam
        sll = np.full(n, -math.log(area))
    integral = float(cut["background_rate_cut_model"]) * duration + lik.triggered(theta)
    tll = np.log(ground) - integral / n
    mags = seq.magnitude[seq.time >= start_days]
    mll = magnitude_log_density(mags, mc, float(est["b"]), delta_m)
    rate = fit["n_target"] / fit["span_days"]
    poisson_tll = math.log(rate) - rate * duration / n
    return {
        "etas": {"tll": float(np.mean(tll)), "sll": float(np.mean(sll)), "mll": float(np.mean(mll)), "n_events": n},
        "poisson": {"tll": poisson_tll, "sll": -math.log(area), "mll": float(np.mean(mll)), "n_events": n},
    }

