"""Which ETAS parameters do the held-out, training and synthetic windows carry? The invert rules'
computations and their report fragments (a table for the model page, columns for the summary).

Held-out windows (H), training windows (A) and synthetic windows (S) go through the same joint fit of the
temporal model over short windows (each on its own clock, no history before it: positions are relative to a
window's first event, or absent for binned windows, so the temporal model is the one all carry). H and A
depend on the config only and are fitted once per config and representation (:func:`fit_reference_windows`);
each model then fits S alone (:func:`invert_model`). The evaluation turns the three fits into rows of its
comparison table (``etasvae.evaluate.etas_fit``). The whole held-out catalog is fitted with the space-time
model as a check of the fit itself: its estimate should match the truth within its errors, while the window
fits are each other's fair reference (cutting windows removes history, which moves the estimates the same
way for all three).

Overlap: windows of one catalog overlap (event windows of stride L/2 share half their events), and a joint
fit over overlapping windows counts each shared event twice, so its observed information is about twice too
large and its standard errors about sqrt(2) too small. Only non-overlapping windows are fitted
(:func:`select_windows`), which keeps every event once and costs half the time; ``max_windows`` caps the
windows fitted per set (spread evenly over the table), and S is fitted on as many windows as A (spread evenly
over the synthetic catalog too), so that d(S, H) and the noise floor d(A, H) carry the same sampling noise.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

# The fits (etasvae.inversion, numpy and scipy only) are imported where a fit runs, so that the report and
# summary jobs, which only read fits, start without the optimiser.

COLUMNS = ("heldout_windows", "train_windows", "synthetic_windows", "heldout_catalog")
LABELS = {
    "truth": "truth (simulation)",
    "heldout_windows": "held-out windows H (joint fit)",
    "train_windows": "training windows A (joint fit)",
    "synthetic_windows": "synthetic windows S (joint fit)",
    "heldout_catalog": "held-out catalog (space-time)",
}


def window_durations(windows: list[pd.DataFrame]) -> list[float]:
    """A window's observed span in days: ``attrs["duration"]`` if set, else its last event's time."""
    return [float(w.attrs["duration"]) if "duration" in w.attrs else (float(w["time"].max()) if len(w) else 0.0)
            for w in windows]


def _fit_dict(fn) -> dict[str, Any]:
    """``fn()``'s fit as ETASFit.to_dict(), or {"error": why} when the inversion cannot fit."""
    from .inversion import InversionError

    try:
        return fn().to_dict()
    except InversionError as err:
        return {"error": str(err)}


def fit_heldout_catalog(catalog: pd.DataFrame, meta: dict[str, Any], *, mc: float, aux_days: float = 0.0,
                        cut_mass: float = 0.05, n_starts: int = 2, max_events: int | None = None) -> dict[str, Any]:
    """Space-time fit of a whole held-out catalog (targets from ``aux_days`` to the end of its window, the
    events before as history, over its region): ETASFit.to_dict() plus ``t_end`` (the fitted window's end)
    and ``cut_at_max_events`` (whether it was cut), or {"error": why} when it cannot be fitted.

    ``max_events`` bounds the fit's time and memory on large catalogs: with more target events above Mc, the
    target window ends midway between the ``max_events``-th such event and the next one (a catalog's first
    part: ETAS is stationary, so the estimate stays unbiased and only its errors grow); and with more history
    events than that in the first ``aux_days`` (a high rate), the history starts midway between the
    ``max_events``-th last of them and the one before, so that the parent-offspring pairs, which the fit
    holds in memory, stay bounded too (at 50 events/day a 30-day history alone has ~10,000 events)."""
    from .inversion import catalog_sequence, fit_catalog, magnitude_bin

    region = tuple(float(v) for v in meta["region_km"])
    delta_m = magnitude_bin(catalog["magnitude"].to_numpy())
    t_end = float(meta["duration_days"])
    # the target events as the fit selects them (above Mc, in the region), time-ordered
    times = catalog_sequence(catalog, mc=mc, t_start=aux_days, t_end=t_end, region=region, delta_m=delta_m).time
    target, history = times[times >= aux_days], times[times < aux_days]
    cut = max_events is not None and len(target) > max_events
    if cut:
        t_end = 0.5 * (float(target[max_events - 1]) + float(target[max_events]))
    if max_events is not None and len(history) > max_events:
        t_history = 0.5 * (float(history[-max_events - 1]) + float(history[-max_events]))
        catalog = catalog[catalog["time"].to_numpy() >= t_history]
    fit = _fit_dict(lambda: fit_catalog(catalog, mc=mc, model="space-time", t_start=aux_days, t_end=t_end,
                                        region=region, cut_mass=cut_mass, n_starts=n_starts, delta_m=delta_m))
    if "error" not in fit:
        fit.update(t_end=t_end, cut_at_max_events=bool(cut))
    return fit


def _ranges(table: pd.DataFrame):
    """(catalog key, start_event, end_event) arrays of a windows table; the key is (config, replicate)."""
    cfg = table["config_id"].astype(str) if "config_id" in table else pd.Series("", index=table.index)
    keys = (cfg + "/" + table["replicate"].astype(str)).to_numpy()
    return keys, table["start_event"].to_numpy(np.int64), table["end_event"].to_numpy(np.int64)


def overlap_factor(table: pd.DataFrame) -> float:
    """Events counted over all windows of ``table`` per distinct event (1: no two windows share an event;
    about 2 for event windows of stride L/2). A window's events are its event range [start_event, end_event)
    in its catalog."""
    keys, lo, hi = _ranges(table)
    total = int((hi - lo).sum())
    distinct = 0
    for key in np.unique(keys):
        pick = keys == key
        order = np.argsort(lo[pick], kind="stable")
        reach = -1
        for a, b in zip(lo[pick][order], hi[pick][order]):
            distinct += max(0, b - max(a, reach))
            reach = max(reach, b)
    return total / distinct if distinct else 1.0


def select_windows(table: pd.DataFrame, max_windows: int | None = None) -> pd.DataFrame:
    """The windows a joint ETAS fit uses: within each catalog, greedily in time, only windows that share no
    event with an earlier kept one (so the fit counts every event once and its standard errors hold), then
    at most ``max_windows`` of them, spread evenly over the table's order (every replicate keeps its share).
    """
    keys, lo, hi = _ranges(table)
    keep = np.zeros(len(table), dtype=bool)
    for key in dict.fromkeys(keys):
        reach = -1
        for i in np.flatnonzero(keys == key)[np.argsort(lo[keys == key], kind="stable")]:
            if lo[i] >= reach:
                keep[i] = True
                reach = hi[i]
    chosen = table[keep]
    return chosen if max_windows is None else chosen.iloc[spread_indices(len(chosen), max_windows)]


def spread_indices(total: int, n: int) -> np.ndarray:
    """At most n of ``total`` positions, spread evenly from the first to the last (all when total <= n)."""
    if total <= n:
        return np.arange(total)
    return np.unique(np.round(np.linspace(0, total - 1, n)).astype(int))


def _joint_fit(windows: list[pd.DataFrame], *, mc: float, cut_mass: float, n_starts: int) -> dict[str, Any]:
    """Joint temporal fit of ``windows`` as ETASFit.to_dict(), or {"error": why} when it cannot be fitted.
    Magnitudes reported in bins (a real catalog's 0.1) get Utsu's bin correction of b; each set its own."""
    from .inversion import fit_windows, magnitude_bin

    mags = np.concatenate([w["magnitude"].to_numpy(float) for w in windows]) if windows else np.empty(0)
    return _fit_dict(lambda: fit_windows(windows, window_durations(windows), mc=mc, model="temporal",
                                         cut_mass=cut_mass, n_starts=n_starts, delta_m=magnitude_bin(mags)))


def fit_reference_windows(
    table: pd.DataFrame,
    cut,
    *,
    mc: float,
    max_windows: int,
    cut_mass: float = 0.05,
    n_starts: int = 2,
) -> dict[str, Any]:
    """Joint fits of a config's held-out (H) and training (A) windows: the reference and the noise floor of
    the ETAS-parameter statistics, fitted once per config and representation.

    ``table`` is the windows table; ``cut(sub_table)`` returns the events of its windows (the catalogs' own
    events, :func:`etasvae.evaluate.catalog_windows`). Each role is fitted on :func:`select_windows` of its
    windows. Returns {"fits": {"heldout_windows", "train_windows"}, "selection": {role: counts and overlap
    factors}}.
    """
    fits, selection = {}, {}
    for name, role in (("heldout_windows", "heldout"), ("train_windows", "train")):
        sub = table[table["role"] == role]
        chosen = select_windows(sub, max_windows)
        fits[name] = _joint_fit(cut(chosen), mc=mc, cut_mass=cut_mass, n_starts=n_starts)
        selection[name] = {"windows": int(len(sub)), "fitted": int(len(chosen)),
                           "overlap_factor_all": overlap_factor(sub) if len(sub) else 1.0,
                           "overlap_factor_fitted": overlap_factor(chosen) if len(chosen) else 1.0}
    return {"fits": fits, "selection": selection, "max_windows": int(max_windows)}


def invert_model(
    synthetic_windows: list[pd.DataFrame],
    reference: dict[str, Any],
    catalog_fit: dict[str, Any] | None = None,
    *,
    truth: dict[str, float] | None = None,
    mc: float,
    cut_mass: float = 0.05,
    n_starts: int = 2,
) -> dict[str, Any]:
    """Joint fit of the synthetic windows, next to the config's reference fits (:func:`fit_reference_windows`)
    and, for an ETAS config, ``catalog_fit`` (:func:`fit_heldout_catalog`) and the ``truth``.

    S is fitted on n of its windows spread evenly over the catalog's order (:func:`spread_indices`), n the
    number of training windows fitted, so that S and A carry the same sampling noise. Spread, not the first
    n: chained windows (an intensity held at a catalog fit) come step by step, so the first n are the
    chains' youngest windows, while H and A are spread over their catalogs' ages.
    Returns {"truth", "fits": {name: ETASFit.to_dict() or {"error": why}}, "selection"}.
    """
    n = reference["selection"]["train_windows"]["fitted"] or reference["max_windows"]
    fits: dict[str, Any] = dict(reference["fits"])
    fitted = [synthetic_windows[i] for i in spread_indices(len(synthetic_windows), n)]
    fits["synthetic_windows"] = _joint_fit(fitted, mc=mc, cut_mass=cut_mass, n_starts=n_starts)
    selection = {**reference["selection"], "synthetic_windows": {"windows": len(synthetic_windows),
                                                                  "fitted": len(fitted)}}
    if catalog_fit is not None:
        fits["heldout_catalog"] = catalog_fit
    out_truth: dict[str, float] = {}
    if truth:
        beta = truth["b"] * math.log(10.0)
        out_truth = {**{k: float(v) for k, v in truth.items() if isinstance(v, (int, float))},
                     "branching_ratio": truth["K"] * beta / (beta - truth["alpha"])}
    return {"truth": out_truth, "fits": fits, "selection": selection}


def inversion_table(result: dict[str, Any]) -> pd.DataFrame:
    """One row per parameter: truth, then estimate and std_error of each fit (NaN where not fitted)."""
    fits = result["fits"]
    names: list[str] = []
    for f in fits.values():
        for k in f.get("estimates", {}):
            if k not in names:
                names.append(k)
    rows = []
    for k in names:
        row = {"parameter": k, "truth": result["truth"].get(k, math.nan)}
        for col in COLUMNS:
            f = fits.get(col, {})
            row[f"{col}.estimate"] = f.get("estimates", {}).get(k, math.nan)
            row[f"{col}.std_error"] = f.get("std_errors", {}).get(k, math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def summary_columns(result: dict[str, Any]) -> dict[str, float]:
    """Summary columns: per parameter, the synthetic and held-out window estimates, their errors, and the
    difference synthetic - held-out in units of the combined error (z)."""
    out: dict[str, float] = {}
    for r in inversion_table(result).to_dict(orient="records"):
        k = r["parameter"]
        s, s_se = r["synthetic_windows.estimate"], r["synthetic_windows.std_error"]
        h, h_se = r["heldout_windows.estimate"], r["heldout_windows.std_error"]
        out[f"etas_fit.{k}.synthetic"] = s
        out[f"etas_fit.{k}.synthetic_se"] = s_se
        out[f"etas_fit.{k}.heldout"] = h
        out[f"etas_fit.{k}.heldout_se"] = h_se
        combined = math.hypot(s_se, h_se) if np.isfinite([s_se, h_se]).all() else math.nan
        out[f"etas_fit.{k}.z_synthetic_vs_heldout"] = (s - h) / combined if combined > 0 else math.nan
    return out


def _num(value: float, se: float | None = None) -> str:
    if value is None or not np.isfinite(value):
        return "—"
    text = f"{value:.4g}"
    if se is not None and np.isfinite(se):
        text += f" ± {se:.2g}"
    return text


def inversion_html(result: dict[str, Any]) -> str:
    """HTML fragment for the model page: truth, held-out estimate and synthetic estimate side by side."""
    table = inversion_table(result)
    truth = bool(result.get("truth"))  # a real catalog (dataset) has none: no truth column
    head = ("<tr><th>parameter</th>" + "".join(f"<th>{html.escape(LABELS[c])}</th>" for c in ("truth",) * truth + COLUMNS)
            + "</tr>")
    rows = [head]
    for r in table.to_dict(orient="records"):
        cells = [f"<td class='txt'>{html.escape(r['parameter'])}</td>"] + [f"<td class='num'>{_num(r['truth'])}</td>"] * truth
        cells += [f"<td class='num'>{_num(r[f'{c}.estimate'], r[f'{c}.std_error'])}"
                  + (" <b>at bound</b>" if r["parameter"] in result["fits"].get(c, {}).get("at_bound", []) else "")
                  + "</td>" for c in COLUMNS]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = []
    for c in COLUMNS:
        f = result["fits"].get(c, {})
        if "error" in f:
            notes.append(f"{LABELS[c]}: not fitted ({html.escape(f['error'])})")
        elif f:
            sel = result.get("selection", {}).get(c)
            of = f" (of {sel['windows']} windows, overlap factor {sel.get('overlap_factor_all', 1.0):.2f})" if sel else ""
            part = f" up to day {f['t_end']:.1f} (the first events only)" if f.get("cut_at_max_events") else ""
            notes.append(f"{LABELS[c]}: {f['n_target']} events{part} in {f['n_sequences']} sequence(s){of}, kernel "
                         f"mass beyond the pair cut {f['cut']['neglected_mass']:.2g}"
                         + ("" if f.get("converged", True) else ", optimiser NOT converged")
                         + ("" if f.get("usable", not f.get("at_bound")) else
                            " — <b>NOT USABLE</b>: " + html.escape("; ".join(f.get("problems", []))
                                                              or "at a bound: " + ", ".join(f.get("at_bound", [])))))
    return "\n".join([
        "<h2>ETAS parameters carried by the windows</h2>",
        "<p class='note'>Maximum-likelihood ETAS fits (± one standard error from the observed information). "
        "Held-out, training and synthetic windows: the same joint fit of the temporal model over short windows, "
        "each on its own clock with no history, so they are each other's fair reference (none need match the "
        "truth: cutting windows removes the history that triggers their first events); only windows that share "
        "no event are fitted, so the errors hold. α, p and the branching ratio enter the comparison table above "
        "(group <i>ETAS fit</i>)."
        + (" The whole held-out catalog, fitted with the space-time model, checks the fit against the truth." if truth
           else " A real catalog has no truth: the held-out and training periods are the references.") + "</p>",
        f"<table class='metrics'>{''.join(rows)}</table>",
        "<p class='note'>" + "<br>".join(notes) + "</p>",
    ])
