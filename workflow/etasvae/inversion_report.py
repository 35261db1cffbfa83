"""Which ETAS parameters do the held-out and the synthetic windows carry? The invert rule's computation and
its report fragments (a table for the model page, columns for the summary).

Held-out windows and synthetic windows go through the same inverse feature map and the same joint fit of
the temporal model over short windows (each on its own clock, no history before it: positions are relative
to a window's first event, or absent for binned windows, so the temporal model is the one both carry). The
whole held-out catalog is fitted with the space-time model as a check of the fit itself: its estimate should
match the truth within its errors, while the window fits are each other's fair reference (cutting windows
removes history, which moves the estimates the same way for both).
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

# The fits need torch (etasvae.inversion): imported where a fit runs, so that the report and summary jobs,
# which only read fits, start without it.

COLUMNS = ("heldout_windows", "synthetic_windows", "heldout_catalog")
LABELS = {
    "truth": "truth (simulation)",
    "heldout_windows": "held-out windows (joint fit)",
    "synthetic_windows": "synthetic windows (joint fit)",
    "heldout_catalog": "whole held-out catalog (space-time)",
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
                        cut_mass: float = 0.05, n_starts: int = 2) -> dict[str, Any]:
    """Space-time fit of a whole held-out catalog (targets from ``aux_days`` to the end of its window, the
    events before as history, over its region): ETASFit.to_dict(), or {"error": why} when it cannot be fitted."""
    from .inversion import fit_catalog

    region = tuple(float(v) for v in meta["region_km"])
    return _fit_dict(lambda: fit_catalog(catalog, mc=mc, model="space-time", t_start=aux_days,
                                         t_end=float(meta["duration_days"]), region=region, cut_mass=cut_mass,
                                         n_starts=n_starts))


def invert_model(
    heldout_windows: list[pd.DataFrame],
    synthetic_windows: list[pd.DataFrame],
    catalog_fit: dict[str, Any],
    *,
    truth: dict[str, float],
    mc: float,
    cut_mass: float = 0.05,
    n_starts: int = 2,
) -> dict[str, Any]:
    """Joint fits of the held-out and the synthetic windows, next to ``catalog_fit`` (fit_heldout_catalog).

    Returns {"truth", "fits": {name: ETASFit.to_dict() or {"error": why}}}."""
    from .inversion import fit_windows

    options = {"cut_mass": cut_mass, "n_starts": n_starts}
    fits: dict[str, Any] = {}
    for name, windows in (("heldout_windows", heldout_windows), ("synthetic_windows", synthetic_windows)):
        fits[name] = _fit_dict(lambda: fit_windows(windows, window_durations(windows), mc=mc, model="temporal",
                                                   **options))
    fits["heldout_catalog"] = catalog_fit
    beta = truth["b"] * math.log(10.0)
    truth = {**{k: float(v) for k, v in truth.items() if isinstance(v, (int, float))},
             "branching_ratio": truth["K"] * beta / (beta - truth["alpha"])}
    return {"truth": truth, "fits": fits}


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
    head = "<tr><th>parameter</th>" + "".join(f"<th>{html.escape(LABELS[c])}</th>" for c in ("truth",) + COLUMNS) + "</tr>"
    rows = [head]
    for r in table.to_dict(orient="records"):
        cells = [f"<td class='txt'>{html.escape(r['parameter'])}</td>", f"<td class='num'>{_num(r['truth'])}</td>"]
        cells += [f"<td class='num'>{_num(r[f'{c}.estimate'], r[f'{c}.std_error'])}</td>" for c in COLUMNS]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    notes = []
    for c in COLUMNS:
        f = result["fits"].get(c, {})
        if "error" in f:
            notes.append(f"{LABELS[c]}: not fitted ({html.escape(f['error'])})")
        elif f:
            notes.append(f"{LABELS[c]}: {f['n_target']} events in {f['n_sequences']} sequence(s), kernel mass "
                         f"beyond the pair cut {f['cut']['neglected_mass']:.2g}"
                         + ("" if f.get("converged", True) else ", optimiser NOT converged"))
    return "\n".join([
        "<h2>ETAS parameters carried by the windows</h2>",
        "<p class='note'>Maximum-likelihood ETAS fits (± one standard error from the observed information). "
        "Held-out and synthetic windows: the same joint fit of the temporal model over short windows, each on "
        "its own clock with no history, so they are each other's fair reference (neither need match the truth: "
        "cutting windows removes the history that triggers their first events). The whole held-out catalog, "
        "fitted with the space-time model, checks the fit against the truth.</p>",
        f"<table class='metrics'>{''.join(rows)}</table>",
        "<p class='note'>" + "<br>".join(notes) + "</p>",
    ])
