"""A dataset's ETAS fit as a third generator (docs/methods/real-catalogs.md, *The ETAS fit simulated*): the
rule ``simulate_dataset_etas``'s computation.

The ETAS model fitted to the training period (``results/forecast/{dataset}/etas_fit.json``, the rule
``forecast_dataset``) is simulated over the held-out period given every earlier event of the catalog as
history (``etasvae.forecast_sim.simulate_forward``): each simulated catalog is one independent continuation of
the real history. Each continuation is cut into windows exactly as the held-out period is
(``realdata.period_events`` and ``realdata.period_windows``: the same spec, the period's own clock), and each
window's events are taken as the evaluation takes H's (``evaluate.sets.catalog_windows``: times from the
window's t_ref, positions from its first event). The windows of the continuations, in order, form a synthetic
catalog in the format of a VAE's sampled windows (the catalog schema plus ``window``), which the evaluation
reads as S.

Count rule: continuations are drawn until their windows reach the VAE's synthetic set size ``n_windows``
(``sample.n_windows``, or the held-out windows' number), whole continuations only: the set holds the windows of
the first K continuations, K the smallest whose windows number at least n_windows (at most
MAX_CONTINUATIONS; fewer windows if even those do not reach it). A continuation's every window is used, so each
time of the held-out period is as often represented as in H. ``event_key`` (continuation << 40 + event)
names each simulated event, so that statistics of the events themselves count an event that overlapping
windows share once, as for H. ``continuation`` is each event's continuation.

A fit that could not run, or whose branching ratio is 1 or more (supercritical: the simulation would not
end), or that the simulation refuses (``ForecastError``), gives no set: an empty catalog and the reason,
which the pages show instead of the column. A fit flagged not usable for another reason (a parameter at a
bound) is simulated all the same, the flag kept beside the result. The same fit, catalog, spec and seed give
the same catalog.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .evaluate.sets import EVENT_KEY_BITS, catalog_windows
from .forecast_sim import ForecastError, simulate_forward
from .realdata import period_events, period_windows

LABEL = "ETAS fit (simulated)"
GENERATOR_ID = "etas_simulated"
# Continuations at most (each one simulated held-out period): a bound on the run time whatever the windows.
MAX_CONTINUATIONS = 2000
CATALOG_COLUMNS = ("event_id", "time", "magnitude", "x", "y", "parent_id", "generation", "window", "event_key",
                   "continuation")


def simulation_refusal(fit: dict[str, Any]) -> str | None:
    """Why a fit gives no simulated set (None where it can be simulated): it could not run, or its branching
    ratio is not below 1."""
    if "error" in fit:
        return f"the ETAS fit of the training period could not run: {fit['error']}"
    n = (fit.get("estimates") or {}).get("branching_ratio")
    if n is None or not math.isfinite(float(n)):
        return "the ETAS fit of the training period has no finite branching ratio"
    if float(n) >= 1.0:
        problems = "; ".join(fit.get("problems") or [])
        return (f"the ETAS fit of the training period is supercritical (branching ratio {float(n):.3g} >= 1): a "
                f"simulation of it does not end" + (f" (fit flagged: {problems})" if problems else ""))
    return None


def _empty() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series([], dtype=np.int64) for c in CATALOG_COLUMNS})
    for c in ("time", "magnitude", "x", "y"):
        out[c] = out[c].astype(np.float64)
    out["generation"] = out["generation"].astype(np.int32)
    return out


def continuation_windows(events: pd.DataFrame, spec: dict[str, Any], duration: float) -> list[pd.DataFrame]:
    """The held-out-format windows of one simulated held-out period (``events``: time on the period's clock,
    magnitude, x, y; in time order): cut as the held-out period is, each window's events as the evaluation
    takes H's. Empty where the period gets no window (fewer events than a window's length)."""
    n = len(events)
    part = period_events(pd.DataFrame({c: events[c].to_numpy(np.float64) for c in ("time", "magnitude", "x", "y")})
                         .assign(parent_id=np.full(n, -1, np.int64), generation=np.full(n, -1, np.int32)), 0.0)
    try:
        table, _ = period_windows(part, spec, duration, heldout=True)
    except ValueError as err:
        if "gets no window" not in str(err):
            raise
        return []
    return catalog_windows(table, {("sim", 0): part}, spec, "sim")


def _catalog(windows: list[tuple[int, pd.DataFrame]]) -> pd.DataFrame:
    """The windows (continuation, window events) as one synthetic catalog (module docstring)."""
    if not windows:
        return _empty()
    frames = []
    for w, (k, df) in enumerate(windows):
        key = (np.int64(k) << EVENT_KEY_BITS) + (df["event_key"].to_numpy(np.int64) & ((1 << EVENT_KEY_BITS) - 1))
        frames.append(pd.DataFrame({"time": df["time"].to_numpy(float), "magnitude": df["magnitude"].to_numpy(float),
                                    "x": df["x"].to_numpy(float), "y": df["y"].to_numpy(float),
                                    "window": np.full(len(df), w, np.int64), "event_key": key,
                                    "continuation": np.full(len(df), k, np.int64)}))
    out = pd.concat(frames, ignore_index=True)
    n = len(out)
    out.insert(0, "event_id", np.arange(n, dtype=np.int64))
    out.insert(5, "parent_id", np.full(n, -1, np.int64))
    out.insert(6, "generation", np.full(n, -1, np.int32))
    return out[list(CATALOG_COLUMNS)]


def simulate_heldout_windows(catalog: pd.DataFrame, meta: dict[str, Any], fit: dict[str, Any], spec: dict[str, Any], *,
                             n_windows: int, seed: int, max_continuations: int = MAX_CONTINUATIONS
                             ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """(synthetic catalog, info): the ETAS fit ``fit`` simulated over the held-out period of a dataset
    (``catalog`` and its ``meta``) given every earlier event, cut into windows of ``spec`` (the held-out
    windows' spec) until they reach ``n_windows`` (module docstring, count rule). info: available, reason
    (where not), n_windows, n_continuations, n_events, seed, period_days and the fit's flags."""
    s0, s1 = (float(v) for v in meta["periods_days"]["heldout"])
    est = fit.get("estimates") or {}
    info: dict[str, Any] = {
        "generator": LABEL, "seed": int(seed), "period_days": [s0, s1], "target_windows": int(n_windows),
        "fit": {"usable": bool(fit.get("usable", False)), "problems": list(fit.get("problems") or []),
                "branching_ratio": est.get("branching_ratio"), "model": fit.get("model")},
    }
    refusal = simulation_refusal(fit)
    history = catalog[catalog["time"] < s0]
    windows: list[tuple[int, pd.DataFrame]] = []
    k = 0
    if refusal is None:
        rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
        batch = max(1, min(max_continuations, 64))
        try:
            while len(windows) < n_windows and k < max_continuations:
                size = min(batch, max_continuations - k)
                sims = simulate_forward(fit, history, s0, s1, rng=rng, n_catalogs=size)
                parts = dict(tuple(sims.groupby("catalog", sort=True)))
                for j in range(size):
                    events = parts.get(j, sims.iloc[:0])
                    ws = continuation_windows(events.assign(time=events["time"] - s0), spec, s1 - s0)
                    windows.extend((k, w) for w in ws)
                    k += 1
                    if len(windows) >= n_windows:
                        break
        except ForecastError as err:
            refusal, windows = f"the simulation of the ETAS fit stopped: {err}", []
        if refusal is None and not windows:
            refusal = (f"none of {k} simulated held-out periods holds one window "
                       f"({spec['representation']}: {spec.get('length', spec.get('duration_days'))})")
    out = _catalog(windows)
    info.update(available=refusal is None, n_windows=len(windows), n_continuations=k if refusal is None else 0,
                n_events=int(len(out)), n_distinct_events=int(np.unique(out["event_key"]).size))
    if refusal is not None:
        info["reason"] = refusal
    elif not info["fit"]["usable"]:
        info["note"] = ("the fit is flagged not usable (" + "; ".join(info["fit"]["problems"]) + "); it is "
                        "subcritical, so it is simulated all the same")
    return out, info


def synthetic_metadata(info: dict[str, Any], spec: dict[str, Any], fit_path: str) -> dict[str, Any]:
    """The metadata document of the simulated set's catalog (as a VAE's synthetic catalog's: n_windows, mc,
    spec), with the fit it simulates and the seed."""
    return {"kind": "synthetic", "generator": GENERATOR_ID, "label": LABEL, "fit": str(fit_path),
            "seed": info["seed"], "n_windows": info["n_windows"], "n_continuations": info["n_continuations"],
            "mc": spec["mc"], "spec": spec}
