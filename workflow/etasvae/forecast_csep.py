"""Catalog-based forecast tests with pyCSEP (Savran et al. 2020), over consecutive horizons of a test period
(docs/methods/forecast.md), of any forecaster that simulates catalogs of a horizon given the history
(``Forecaster``): a fitted ETAS model (``etas_forecaster``: etasvae.forecast_sim), the homogeneous Poisson
baseline (``poisson_forecaster``) or a sequence VAE (etasvae.forecast_vae_catalogs).

For each horizon [t, t + h) of the test period [start, end): ``n_catalogs`` catalogs from the forecaster
given every event before t, the observed events of the horizon, and pyCSEP
0.8's ``csep.core.catalog_evaluations`` tests on a CartesianGrid2D of square cells (``cell_km``, covering
the region's bounding box, coordinates in km given to pyCSEP as its longitude and latitude: the tests count
events per cell and never read the cell's area) and magnitude bins of delta_m (0.1 for continuous
magnitudes) from Mc up to the larger of Mc + 2 and the largest observed magnitude, the last bin open (a
simulated magnitude above it counts in it: Gutenberg-Richter has no upper end). pyCSEP reports two
quantiles, delta_1 = P(X_sim >= x_obs) and delta_2 = P(X_sim <= x_obs) of each test's statistic; a test passes at the 0.05 level as the field reads them:

- number test (N, the count): two-sided, passes when delta_1 >= 0.025 and delta_2 >= 0.025;
- magnitude test (M, D the misfit of the magnitude histogram, large is bad): one-sided, delta_1 >= 0.025;
- spatial test (S, the normalised spatial log-likelihood, small is bad): one-sided, delta_2 >= 0.025;
- pseudo-likelihood test (PL, small is bad): one-sided, delta_2 >= 0.025.

A horizon without observed events has no M, S or PL test (pyCSEP marks them not valid); those horizons are
left out of those tests' pass rates.

pyCSEP lives in the ``forecast`` extra (``pip install .[forecast]``: pycsep 0.8.0, which requires
cartopy, matplotlib, mercantile, obspy, pyproj, python-dateutil, rasterio and shapely besides numpy, scipy
and pandas).
"""

from __future__ import annotations

import contextlib
import math
import sys
from typing import Any, Callable

import numpy as np
import pandas as pd

from .forecast_sim import ForecastError, _magnitudes, _uniform_points, fit_params, simulate_forward
from .inversion import catalog_sequence
from .inversion_geometry import as_polygon

TESTS = ("number", "magnitude", "spatial", "pseudolikelihood")
LEVEL = 0.025
# the quantile each test reads (index into pyCSEP's (delta_1, delta_2)); the number test reads both
_QUANTILE = {"number": (0, 1), "magnitude": (0,), "spatial": (1,), "pseudolikelihood": (1,)}
# A forecaster: (history events before the horizon (time, magnitude, x, y), start, end, rng, n_catalogs) ->
# the simulated catalogs of [start, end) as one table (catalog, time, magnitude, x, y), sorted by catalog.
Forecaster = Callable[[pd.DataFrame, float, float, np.random.Generator, int], pd.DataFrame]


def _import_csep():
    try:
        import csep  # noqa: F401
        from csep.core import catalog_evaluations
        from csep.core.catalogs import CSEPCatalog
        from csep.core.forecasts import CatalogForecast
        from csep.core.regions import CartesianGrid2D
    except ImportError as err:
        raise ForecastError("the CSEP tests need pyCSEP: pip install 'etasvae[forecast]' (pycsep==0.8.0)") from err
    return catalog_evaluations, CSEPCatalog, CatalogForecast, CartesianGrid2D


def _grid(region, cell_km: float, magnitudes, CartesianGrid2D):
    poly = as_polygon(region)
    (x0, y0), (x1, y1) = poly.min(axis=0), poly.max(axis=0)
    # one cell more than the box needs: an event on the box's upper edge still falls in a cell
    nx, ny = int((x1 - x0) // cell_km) + 1, int((y1 - y0) // cell_km) + 1
    ox, oy = np.meshgrid(x0 + cell_km * np.arange(nx), y0 + cell_km * np.arange(ny))
    origins = np.column_stack([ox.ravel(), oy.ravel()])
    return CartesianGrid2D.from_origins(origins, dh=cell_km, magnitudes=magnitudes)


def _csep_catalog(t, m, x, y, region, catalog_id, CSEPCatalog):
    data = np.zeros(t.size, dtype=CSEPCatalog.dtype)
    data["id"] = [str(k).encode() for k in range(t.size)]
    data["origin_time"] = np.round(t * 86_400_000.0).astype(np.int64)  # ms, pyCSEP's epoch time
    data["longitude"], data["latitude"], data["magnitude"] = x, y, m
    return CSEPCatalog(data=data, region=region, catalog_id=catalog_id)


def _passes(name: str, quantile) -> bool:
    return all(float(quantile[i]) >= LEVEL for i in _QUANTILE[name])


def etas_forecaster(fit: dict[str, Any], region) -> Forecaster:
    """The ETAS fit's forecaster: ``forecast_sim.simulate_forward`` given the history."""
    def forecast(history: pd.DataFrame, start: float, end: float, rng: np.random.Generator, n_catalogs: int):
        return simulate_forward(fit, history, start, end, region, rng, n_catalogs=n_catalogs)
    return forecast


def poisson_forecaster(rate_per_day: float, b: float, mc: float, delta_m: float, region) -> Forecaster:
    """The homogeneous Poisson baseline's forecaster: Poisson(rate h) events per catalog of a horizon of h
    days, times uniform, locations uniform in the region, Gutenberg-Richter magnitudes with ``b`` above Mc
    (binned as the ETAS simulation bins them); the history is not read."""
    if not rate_per_day > 0 or not b > 0:
        raise ForecastError(f"Poisson forecaster: rate {rate_per_day} per day and b {b} must be > 0")
    par = {"b": float(b), "mc": float(mc), "delta_m": float(delta_m)}
    poly = as_polygon(region)

    def forecast(history: pd.DataFrame, start: float, end: float, rng: np.random.Generator, n_catalogs: int):
        counts = rng.poisson(rate_per_day * (end - start), int(n_catalogs))
        cat = np.repeat(np.arange(int(n_catalogs)), counts)
        t = rng.uniform(start, end, cat.size)
        m = _magnitudes(cat.size, par, rng)
        x, y = _uniform_points(cat.size, poly, rng)
        order = np.lexsort((t, cat))
        return pd.DataFrame({"catalog": cat[order], "time": t[order], "magnitude": m[order], "x": x[order],
                             "y": y[order]})
    return forecast


def csep_tests(fit: dict[str, Any], catalog: pd.DataFrame, start_days: float, horizon_days: float,
               n_catalogs: int = 1000, seed: int = 0, region=None, *, end_days: float | None = None,
               cell_km: float = 10.0) -> dict[str, Any]:
    """pyCSEP's N, M, S and PL tests of the ETAS fit ``fit`` (its catalogs simulated forward given the
    history: ``etas_forecaster``) over the horizons of ``catalog_tests``."""
    par = fit_params(fit)
    region = region if region is not None else fit.get("region")
    if region is None:
        raise ForecastError("no region: give it, or use a fit made by `fit --json` (which records it)")
    return catalog_tests(etas_forecaster(fit, region), catalog, start_days, horizon_days, mc=par["mc"],
                         delta_m=par["delta_m"], region=region, n_catalogs=n_catalogs, seed=seed,
                         end_days=end_days, cell_km=cell_km)


def _horizon_row(forecaster: Forecaster, events: pd.DataFrame, a: float, b: float, rng, n_catalogs: int, grid,
                 magnitudes, csep) -> dict[str, Any]:
    """One horizon [a, b): the forecaster's catalogs given the events before a, the observed events, the
    four tests."""
    catalog_evaluations, CSEPCatalog, CatalogForecast, _ = csep
    sims = forecaster(events[events["time"] < a].reset_index(drop=True), a, b, rng, n_catalogs)
    bounds = np.searchsorted(sims["catalog"].to_numpy(), np.arange(n_catalogs + 1))
    cols = [sims[c].to_numpy(dtype=float) for c in ("time", "magnitude", "x", "y")]
    # the last magnitude bin is open (M >= its edge): Gutenberg-Richter has no upper end, the bins do
    cols[1] = np.minimum(cols[1], magnitudes[-1])
    catalogs = [_csep_catalog(*(c[lo:hi] for c in cols), grid, i, CSEPCatalog)
                for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:]))]
    forecast = CatalogForecast(catalogs=catalogs, region=grid, n_cat=n_catalogs)
    obs = events[(events["time"] >= a) & (events["time"] < b)]
    observed = _csep_catalog(*(obs[c].to_numpy() for c in ("time", "magnitude", "x", "y")), grid, -1, CSEPCatalog)
    row = {"start": a, "end": b, "n_observed": int(len(obs)), "mean_simulated": len(sims) / n_catalogs}
    for name in TESTS:
        with contextlib.redirect_stdout(sys.stderr):  # pyCSEP prints its notes; stdout may carry JSON
            result = getattr(catalog_evaluations, f"{name}_test")(forecast, observed)
        valid = result is not None and result.status != "not-valid" and result.quantile[0] is not None
        row[name] = ({"quantile": [float(q) for q in result.quantile], "pass": _passes(name, result.quantile)}
                     if valid else None)
    return row


def catalog_tests(forecaster: Forecaster, catalog: pd.DataFrame, start_days: float, horizon_days: float, *,
                  mc: float, delta_m: float, region, n_catalogs: int = 1000, seed: int = 0,
                  end_days: float | None = None, cell_km: float = 10.0) -> dict[str, Any]:
    """pyCSEP's N, M, S and PL tests of a forecaster's catalogs (``Forecaster``) over the horizons [start + k h,
    start + (k+1) h) that end by ``end_days`` (None: the last event's time, inclusive); the events are the
    catalog's above Mc inside the region (``inversion.catalog_sequence``), the history of a horizon every event
    before it. Returns {"pass_rate": {test: rate}, "n_valid": {test: horizons with a valid test}, "horizons":
    [{"start", "end", "n_observed", "mean_simulated", test: {"quantile": [delta_1, delta_2], "pass": bool} or
    None}], the settings}. Reproducible: one generator seeded with ``seed`` runs through the horizons in
    order, and the forecaster draws from it alone."""
    csep = _import_csep()
    if not horizon_days > 0:
        raise ForecastError(f"horizon_days = {horizon_days}: must be > 0")
    if int(n_catalogs) < 2:
        raise ForecastError(f"n_catalogs = {n_catalogs}: need at least 2 simulated catalogs per horizon")
    if not cell_km > 0:
        raise ForecastError(f"cell_km = {cell_km}: must be > 0")
    mc, dm = float(mc), float(delta_m)
    if end_days is None:
        end_days = float(np.nextafter(catalog["time"].max(), np.inf))
    n_h = int(math.floor((end_days - start_days) / horizon_days + 1e-9))
    if n_h < 1:
        raise ForecastError(f"test period [{start_days}, {end_days}) is shorter than one horizon of {horizon_days} days")
    seq = catalog_sequence(catalog, mc=mc, t_start=start_days, t_end=start_days + n_h * horizon_days,
                           region=region, delta_m=dm)
    events = pd.DataFrame({"time": seq.time, "magnitude": seq.magnitude, "x": seq.x, "y": seq.y})
    step = dm if dm > 0 else 0.1
    top = max(float(events["magnitude"].max()), mc + 2.0)
    magnitudes = np.round(mc + step * np.arange(int(math.ceil((top - mc) / step)) + 2), 10)
    if dm > 0:
        magnitudes = np.round(magnitudes - dm / 2.0, 10)  # bins centred on the binned magnitudes
    grid = _grid(region, cell_km, magnitudes, csep[3])
    rng = np.random.default_rng(seed)
    horizons = [_horizon_row(forecaster, events, start_days + k * horizon_days, start_days + (k + 1) * horizon_days,
                             rng, int(n_catalogs), grid, magnitudes, csep) for k in range(n_h)]
    n_valid = {name: sum(h[name] is not None for h in horizons) for name in TESTS}
    pass_rate = {name: (sum(h[name]["pass"] for h in horizons if h[name] is not None) / n_valid[name]
                        if n_valid[name] else math.nan) for name in TESTS}
    return {"pass_rate": pass_rate, "n_valid": n_valid, "n_horizons": n_h, "horizon_days": float(horizon_days),
            "n_catalogs": int(n_catalogs), "seed": int(seed), "cell_km": float(cell_km), "level": LEVEL,
            "horizons": horizons}
