"""A dataset's held-out period as a forecast test (docs/methods/real-catalogs.md, *Forecast of the held-out
period*): the rule ``forecast_dataset``'s computation.

Periods (days since the dataset's start, from its import report): the auxiliary period [0, aux_days) is history
only; the ETAS model is fitted to the training period [aux_days, validation_start) with the auxiliary events
as history; the test period is the held-out period, scored event by event with every earlier event (auxiliary,
training, validation and the earlier test events) as history (``etasvae.forecast.score_forecast``: TLL, SLL
and MLL per test event, beside a homogeneous Poisson model fitted on the same training period). The
validation period is history for the test and is not fitted: the VAE's early stopping uses it, and a
forecast fitted on it would see more data than the VAE trained on.

The fit takes the ``fit`` command's defaults (:data:`FIT_OPTIONS`), which are meant to fit a real catalog
without tuning. A fit that is not usable (a parameter at a bound, or supercritical) is scored all the same
and flagged; a fit that cannot run (too few events) leaves the ETAS entry with its error and the Poisson
baseline alone. The run never fails for either.

The scores file keeps one entry per forecaster under ``forecasters`` (``poisson``, ``etas``), and
``reference`` names the one the gaps are taken against. Each VAE setting's scores (``etasvae.forecast_vae``,
the rule ``forecast_vae``: the same keys ``tll``, ``sll``, ``mll``, ``n_events``) are a file of their own,
which the pages join as ``vae:<setting id>`` (``report.forecast_table.with_vae_scores``): a VAE retrained
does not refit ETAS.

**CSEP pass rates.** With ``csep`` settings (the dataset's ``csep`` config: ``horizon_days``, ``n_catalogs``,
``cell_km``) every forecaster's entry gets ``csep``: pyCSEP's N, M, S and PL tests over consecutive horizons
of the held-out period (``forecast_csep.catalog_tests``, seed :data:`CSEP_SEED`), each horizon's catalogs
simulated given every earlier event: the Poisson baseline's (its rate and b, uniform in the region), the ETAS
fit's (``forecast_sim.simulate_forward``; not run for a supercritical fit, whose cascades do not end) and,
in the rule ``forecast_vae``, each VAE setting's (``forecast_vae_catalogs``). Where the tests cannot run
(pyCSEP not installed, a period shorter than one horizon) the entry is {"not_run": why}: the run goes on.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from .forecast import catalog_region, magnitude_log_density, score_forecast
from .forecast_csep import TESTS, Forecaster, catalog_tests, etas_forecaster, poisson_forecaster
from .forecast_sim import ForecastError
from .inversion import MAX_LAG_DAYS, RUPTURE_MULTIPLE, InversionError, catalog_sequence, fit_catalog, magnitude_bin
from .inversion_geometry import polygon_area
from .stats import b_value_aki_utsu

# The `fit` command's defaults (etasvae.__main__; tests/test_dataset_forecast.py checks they agree).
FIT_OPTIONS: dict[str, Any] = {
    "model": "space-time", "tau": "auto", "background": "auto", "n_starts": 3, "cut_mass": 0.05,
    "rupture_multiple": RUPTURE_MULTIPLE, "max_lag_days": MAX_LAG_DAYS,
}
REFERENCE = "etas"
LABELS = {
    "poisson": "Poisson (training-period rate, uniform in the region)",
    "etas": "ETAS fitted to the training period",
}
CSEP_SEED = 0
DEFAULT_HORIZONS = 10   # horizon_days null: the held-out period in this many horizons
UNITS = {"tll": "nats per event (log 1/day)", "sll": "nats per event (log 1/km²)",
         "mll": "nats per event (log 1/magnitude unit)"}


def forecast_periods(meta: dict[str, Any], aux_days: float = 0.0) -> dict[str, list[float]]:
    """{"auxiliary", "training", "test"}: [start, end) in days of the forecast protocol, from a dataset
    catalog's metadata (its import report's ``periods_days``)."""
    periods = meta["periods_days"]
    t0, t1 = (float(v) for v in periods["train"])
    if not 0 <= aux_days < t1 - t0:
        raise InversionError(f"aux_days = {aux_days:g}: must be in [0, {t1 - t0:g}) (the training period's length)")
    return {"auxiliary": [t0, t0 + aux_days], "training": [t0 + aux_days, t1],
            "test": [float(v) for v in periods["heldout"]]}


def _utc(meta: dict[str, Any], days: list[float]) -> list[str]:
    t0 = pd.Timestamp(meta["origin_utc"])
    return [(t0 + pd.Timedelta(days=d)).isoformat() for d in days]


def fit_training_period(catalog: pd.DataFrame, meta: dict[str, Any], *, aux_days: float = 0.0) -> dict[str, Any]:
    """The ETAS fit of a dataset's training period as ``fit --json`` writes it (ETASFit.to_dict() with mc,
    delta_m, region, t_start, t_end; what score_forecast reads), or {"error": why} when it cannot be fitted."""
    periods = forecast_periods(meta, aux_days)
    mc = float(meta["mc"])
    region = catalog_region(meta, catalog)
    delta_m = magnitude_bin(catalog["magnitude"].to_numpy())
    (h0, _), (t_start, t_end) = periods["auxiliary"], periods["training"]
    try:
        fit = fit_catalog(catalog, mc=mc, t_start=t_start, t_end=t_end, aux_days=t_start - h0, region=region,
                          delta_m=delta_m, **FIT_OPTIONS)
    except InversionError as err:
        return {"error": str(err), "mc": mc, "delta_m": delta_m, "region": region, "t_start": t_start, "t_end": t_end}
    return {**fit.to_dict(), "mc": mc, "delta_m": delta_m, "region": region, "t_start": t_start, "t_end": t_end}


def poisson_scores(catalog: pd.DataFrame, *, mc: float, delta_m: float, region, periods: dict[str, list[float]]) -> dict[str, float]:
    """The Poisson baseline's scores without an ETAS fit (score_forecast's baseline when the fit could not
    run): rate and b (Aki-Utsu) of the training period's events, uniform over the region."""
    (t_start, t_end), (s0, s1) = periods["training"], periods["test"]
    train = catalog_sequence(catalog, mc=mc, t_start=t_start, t_end=t_end, aux_days=0.0, region=region, delta_m=delta_m)
    test = catalog_sequence(catalog, mc=mc, t_start=s0, t_end=s1, aux_days=0.0, region=region, delta_m=delta_m)
    n, n_train = int(test.time.size), int(train.time.size)
    if n == 0 or n_train < 2:
        raise InversionError(f"{n_train} training and {n} test events above Mc = {mc:g}: nothing to score")
    rate = n_train / (t_end - t_start)
    b = b_value_aki_utsu(train.magnitude, mc, delta_m)
    return {"tll": math.log(rate) - rate * (s1 - s0) / n, "sll": -math.log(polygon_area(region)),
            "mll": float(np.mean(magnitude_log_density(test.magnitude, mc, b, delta_m))), "n_events": n,
            "rate_per_day": rate, "b": float(b)}


def csep_horizon_days(settings: dict[str, Any], test: list[float]) -> float:
    """The CSEP horizon of a dataset: ``horizon_days``, or the held-out period over DEFAULT_HORIZONS."""
    h = settings.get("horizon_days")
    return float(h) if h is not None else (float(test[1]) - float(test[0])) / DEFAULT_HORIZONS


def csep_entry(make: Callable[[], Forecaster], catalog: pd.DataFrame, test: list[float], settings: dict[str, Any],
               *, mc: float, delta_m: float, region) -> dict[str, Any]:
    """The ``csep`` entry of a forecaster (``make()`` builds it): pass rates per test over the horizons of
    the held-out period ``test``, the settings and each horizon's quantiles, or {"not_run": why}."""
    s0, s1 = (float(v) for v in test)
    try:
        out = catalog_tests(make(), catalog, s0, csep_horizon_days(settings, test), mc=mc, delta_m=delta_m,
                            region=region, n_catalogs=int(settings.get("n_catalogs", 1000)), seed=CSEP_SEED,
                            end_days=s1, cell_km=float(settings.get("cell_km", 10.0)))
    except (ForecastError, InversionError) as err:
        return {"not_run": str(err)}
    return {**out, "tests": list(TESTS)}


def _etas_csep(fit: dict[str, Any], catalog, test, settings, *, mc, delta_m, region) -> dict[str, Any]:
    n = fit["estimates"].get("branching_ratio")
    if n is not None and not float(n) < 1.0:
        return {"not_run": f"supercritical fit (branching ratio {float(n):.3g}): its simulated cascades do not end"}
    return csep_entry(lambda: etas_forecaster(fit, region), catalog, test, settings, mc=mc, delta_m=delta_m,
                      region=region)


def forecast_scores(catalog: pd.DataFrame, meta: dict[str, Any], fit: dict[str, Any], *, aux_days: float = 0.0,
                    fit_file: str | None = None, csep: dict[str, Any] | None = None) -> dict[str, Any]:
    """The scores file of a dataset (see the module docstring): Poisson and the ETAS fit ``fit``
    (fit_training_period's dict) as forecasts of the held-out period; with ``csep`` settings their CSEP pass
    rates too."""
    periods = forecast_periods(meta, aux_days)
    region = fit.get("region") or catalog_region(meta, catalog)
    mc, delta_m = float(fit.get("mc", meta["mc"])), float(fit.get("delta_m", 0.0))
    (s0, s1) = periods["test"]
    etas: dict[str, Any] = {"label": LABELS["etas"]}
    if "error" in fit:
        poisson = poisson_scores(catalog, mc=mc, delta_m=delta_m, region=region, periods=periods)
        etas.update(error=fit["error"], usable=False, at_bound=[], problems=[f"not fitted: {fit['error']}"])
    else:
        scores = score_forecast(catalog, fit, start_days=s0, end_days=s1, region=region)
        # the baseline's law (score_forecast's): the training period's rate, the fit's b
        poisson = {**scores["poisson"], "rate_per_day": fit["n_target"] / fit["span_days"],
                   "b": float(fit["estimates"]["b"])}
        est = fit["estimates"]
        etas.update(scores["etas"], usable=bool(fit["usable"]), at_bound=list(fit["at_bound"]),
                    problems=list(fit["problems"]), model=fit["model"], taper=fit["taper"],
                    background=fit["background"], branching_ratio=est["branching_ratio"],
                    n_training_events=fit["n_target"], n_history_events=fit["n_history"],
                    converged=bool(fit["converged"]), **({"fit_file": fit_file} if fit_file else {}))
    if csep is not None:
        common = dict(mc=mc, delta_m=delta_m, region=region)
        poisson["csep"] = csep_entry(lambda: poisson_forecaster(poisson["rate_per_day"], poisson["b"], mc, delta_m,
                                                                region), catalog, periods["test"], csep, **common)
        etas["csep"] = ({"not_run": f"not fitted: {fit['error']}"} if "error" in fit
                        else _etas_csep(fit, catalog, periods["test"], csep, **common))
    return {
        "dataset": meta.get("dataset"),
        "n_events": int(poisson["n_events"]),
        "period": {
            **{f"{k}_days": v for k, v in periods.items()},
            **{f"{k}_utc": _utc(meta, v) for k, v in periods.items()},
            "history": "every earlier event of the catalog (auxiliary, training, validation, earlier test events)",
        },
        "mc": mc,
        "delta_m": delta_m,
        "area_km2": polygon_area(region),
        "region": meta.get("region"),
        "units": UNITS,
        "reference": REFERENCE,
        "forecasters": {"poisson": {"label": LABELS["poisson"], **poisson}, "etas": etas},
    }
