"""The surrogate's report page: trained and held-out grid points side by side with the per-config models,
the catalog statistics' skills, and the statistics as functions of the varied parameters (line plots)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..fileio import atomic_write, write_text
from ..plotting import panel_figure, png_data_uri, save_png
from ..surrogate_eval import LINE_STATISTICS, REFIT_PARAMETERS
from .cells import _cell, _esc, _page, _score_badge, _skill_cell, fmt

CATALOG_SKILLS = ("fano_daily", "count_30d_fano", "count_30d_ks", "cv_catalog")
LINE_LABEL = {"b_value": "b-value (Aki–Utsu)", "fano_daily": "Fano factor of daily counts",
              "cv_catalog": "CV of inter-event times", "omori_p": "Omori p (stacked, windows)"}
REFIT_LABEL = {"alpha": "α (ETAS refit)", "p": "Omori p (ETAS refit)", "branching_ratio": "branching ratio n (ETAS refit)"}


def _estimate(fit: dict | None, name: str) -> tuple[float, float]:
    """(estimate, standard error) of one parameter in a fit's JSON; NaN where missing or failed."""
    fit = fit or {}
    return (float(fit.get("estimates", {}).get(name, np.nan)), float(fit.get("std_errors", {}).get(name, np.nan)))


def refit_table(refits: dict[str, dict], heldout_fits: dict[str, dict], plan: dict[str, Any]) -> pd.DataFrame:
    """One row per parameter set: kind, varied values, and per REFIT_PARAMETER the truth, the estimate from
    the surrogate's chains (S) and from the whole held-out ETAS catalog (H, grid points only), with errors."""
    rows = []
    for name, r in refits.items():
        row: dict[str, Any] = {"set": name, "kind": plan["sets"][name]["kind"], **plan["sets"][name]["values"],
                               "fit_error": r["fit"].get("error", "")}
        for k in REFIT_PARAMETERS:
            row[f"etas_{k}_truth"] = float(r["truth"].get(k, np.nan))
            row[f"etas_{k}_S"], row[f"etas_{k}_S_se"] = _estimate(r["fit"], k)
            row[f"etas_{k}_H"], row[f"etas_{k}_H_se"] = _estimate(heldout_fits.get(name), k)
        rows.append(row)
    return pd.DataFrame(rows)


def surrogate_table(summaries: list[dict], per_config: dict[str, float], varied: list[str],
                    chained: dict[str, dict] | None = None) -> pd.DataFrame:
    """One row per grid point: kind, varied values, surrogate and per-config window scores and their gap,
    catalog skills and the catalog score; with ``chained`` (config id -> summary of the config's own chained
    model), its window score and catalog skills as columns ``chained_*``."""
    chained = chained or {}
    rows = []
    for s in summaries:
        row: dict[str, Any] = {"config_id": s["config_id"], "kind": s["kind"]}
        row.update({k: s["values"][k] for k in varied})
        row["surrogate_score"] = s["overall_score"]
        row["per_config_score"] = per_config.get(s["config_id"], np.nan)
        row["gap"] = row["surrogate_score"] - row["per_config_score"]
        for k in CATALOG_SKILLS:
            row[f"skill_{k}"] = s["catalog_skill"].get(k, np.nan)
        row["catalog_score"] = s["catalog_score"]
        c = chained.get(s["config_id"])
        if c is not None:
            row["chained_score"] = c["overall_score"]
            for k in CATALOG_SKILLS:
                row[f"chained_skill_{k}"] = c["catalog_skill"].get(k, np.nan)
        for name in LINE_STATISTICS:
            for k in "SHA":
                row[f"{name}_{k}"] = s["lines"][name][k]
        rows.append(row)
    return pd.DataFrame(rows)


def line_figure(table: pd.DataFrame, points: pd.DataFrame, varied: list[str], refits: pd.DataFrame | None = None):
    """Each LINE_STATISTIC against each varied parameter: ETAS held-out and training catalogs (lines), the
    surrogate at trained (filled) and held-out (open) grid points, and at the off-grid points (crosses); then
    each REFIT_PARAMETER: the truth, the whole held-out catalog's fit and the fit of the surrogate's chains
    (with their standard errors), at grid and off-grid points."""
    refits = refits if refits is not None else pd.DataFrame()
    per = len(LINE_STATISTICS) + (len(REFIT_PARAMETERS) if len(refits) else 0)
    fig, axes = panel_figure(per * len(varied), ncols=4)
    for j, param in enumerate(varied if len(refits) else []):
        r = refits.sort_values(param)
        grid = r[r["kind"] != "point"]
        pts = r[r["kind"] == "point"]
        for i, name in enumerate(REFIT_PARAMETERS):
            ax = axes[j * per + len(LINE_STATISTICS) + i]
            ax.plot(r[param], r[f"etas_{name}_truth"], "-", color="black", label="truth")
            ax.errorbar(grid[param], grid[f"etas_{name}_H"], yerr=grid[f"etas_{name}_H_se"], fmt="s", color="grey",
                        markerfacecolor="white", label="ETAS held-out catalog, refit")
            ax.errorbar(grid[param], grid[f"etas_{name}_S"], yerr=grid[f"etas_{name}_S_se"], fmt="o-", color="tab:red",
                        alpha=0.8, label="surrogate chains, refit")
            if len(pts):
                ax.errorbar(pts[param], pts[f"etas_{name}_S"], yerr=pts[f"etas_{name}_S_se"], fmt="x", color="tab:blue",
                            markersize=8, label="surrogate, off-grid point")
            ax.set_xlabel(param)
            ax.set_title(REFIT_LABEL[name], fontsize=10)
            if i == 0:
                ax.legend(fontsize=7)
    for i, (param, name) in enumerate((p, n) for p in varied for n in LINE_STATISTICS):
        ax = axes[varied.index(param) * per + LINE_STATISTICS.index(name)]
        t = table.sort_values(param)
        ax.plot(t[param], t[f"{name}_H"], "-", color="black", label="ETAS held-out")
        ax.plot(t[param], t[f"{name}_A"], "--", color="grey", label="ETAS training replicates")
        ax.plot(t[param], t[f"{name}_S"], "-", color="tab:red", alpha=0.6, label="surrogate")
        for kind, face in (("trained", "tab:red"), ("heldout", "white")):
            k = t[t["kind"] == kind]
            ax.plot(k[param], k[f"{name}_S"], "o", color="tab:red", markerfacecolor=face,
                    label=f"surrogate, {'trained' if kind == 'trained' else 'held-out'} point")
        if len(points) and name in points:
            ax.plot(points[param], points[name], "x", color="tab:blue", markersize=8, label="surrogate, off-grid point")
        ax.set_xlabel(param)
        ax.set_title(LINE_LABEL[name], fontsize=10)
        if i == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def render_surrogate_page(html_path: str | os.PathLike, csv_path: str | os.PathLike, figure_path: str | os.PathLike,
                          summaries: list[dict], per_config: dict[str, float], points: pd.DataFrame,
                          plan: dict[str, Any], vae_id: str, refits: dict[str, dict] | None = None,
                          heldout_fits: dict[str, dict] | None = None, chained: dict[str, dict] | None = None) -> pd.DataFrame:
    """Write the page, the table (CSV) and the line figure (PNG); return the table. ``refits``: per parameter
    set, the JSON of ``invert_surrogate`` (truth and fit of the chains); ``heldout_fits``: per grid point,
    the whole held-out catalog's fit. The CSV holds the refits of the grid points as columns etas_*."""
    varied = list(plan["varied"])
    table = surrogate_table(summaries, per_config, varied, chained)
    fits = refit_table(refits or {}, heldout_fits or {}, plan)
    if len(fits):
        cols = [c for c in fits.columns if c.startswith("etas_")]
        table = table.merge(fits[["set", *cols]].rename(columns={"set": "config_id"}), on="config_id", how="left")
    atomic_write(csv_path, lambda tmp: table.to_csv(tmp, index=False))
    fig = line_figure(table, points, varied, fits)
    save_png(fig, figure_path)
    ranges = ", ".join(f"{k} in [{lo:g}, {hi:g}]" for k, (lo, hi) in plan["ranges"].items())
    parts = [f"<h1>Conditional surrogate</h1><p class='note'>Conditioned on {_esc(', '.join(varied))} "
             f"(trained {_esc(ranges)}); settings of VAE setting <code>{_esc(vae_id)}</code>. "
             "Window score: the overall score of the chains cut into windows, computed as for a per-config model; "
             "per-config: that model (same VAE setting) trained on the point itself; gap = surrogate − "
             "per-config. Catalog skills compare whole catalogs of the simulated duration with the ETAS catalogs "
             "(H: held-out replicates, A: training replicates, P: Poisson at A's rate).</p>"]
    badges, gaps = [], []
    for kind, label in (("trained", "trained points"), ("heldout", "held-out points")):
        k = table[table["kind"] == kind]
        if len(k):
            badges.append(_score_badge(float(np.nanmean(k["surrogate_score"])), f"{label}: mean window score"))
            gaps.append(f"{label}: mean gap to the per-config models {fmt(float(np.nanmean(k['gap'])), 2)}")
    parts.append(f"<div class='grid2'>{''.join(badges)}</div><p class='note'>{_esc('; '.join(gaps))}</p>")
    head = ["grid point", "kind", *varied, "surrogate score", "per-config score", "gap",
            *[f"skill {k}" for k in CATALOG_SKILLS], "catalog score"]
    rows = []
    for _, r in table.sort_values(["kind", *varied], ascending=[False, *[True] * len(varied)]).iterrows():
        cells = [f"<td class='txt'>{_esc(r['config_id'])}</td>", _cell(r["kind"]), *[_cell(r[k]) for k in varied],
                 _skill_cell(r["surrogate_score"]), _skill_cell(r["per_config_score"]), _cell(r["gap"]),
                 *[_skill_cell(r[f"skill_{k}"]) for k in CATALOG_SKILLS], _skill_cell(r["catalog_score"])]
        rows.append(f"<tr>{''.join(cells)}</tr>")
    parts.append("<h2>Trained and held-out grid points</h2><div class='scroll'><table><tr>"
                 + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>" + "".join(rows) + "</table></div>")
    if "chained_score" in table:
        head = ["grid point", *varied, "window score", *[f"skill {k}" for k in CATALOG_SKILLS]]
        rows = ["<tr>" + "".join([f"<td class='txt'>{_esc(r['config_id'])}</td>", *[_cell(r[k]) for k in varied],
                                  _skill_cell(r["chained_score"]),
                                  *[_skill_cell(r[f"chained_skill_{k}"]) for k in CATALOG_SKILLS]]) + "</tr>"
                for _, r in table.sort_values(varied).iterrows()]
        parts.append("<h2>Chained catalogs of per-config models</h2><p class='note'>The same model and chaining "
                     "trained on one grid point's windows alone (no conditioning), evaluated as the surrogate is.</p>"
                     "<div class='scroll'><table><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>"
                     + "".join(rows) + "</table></div>")
    parts.append(f"<h2>Statistics against the varied parameters</h2><figure><img src='{png_data_uri(fig)}'>"
                 "<figcaption>Whole-catalog statistics of the surrogate's chained catalogs (mean over chains) and of "
                 "the ETAS catalogs at each grid point; Omori p from the stacked fit of the window comparison."
                 "</figcaption></figure>")
    if len(fits):
        head = ["parameter set", "kind", *varied,
                *[f"{k}: {w}" for k in REFIT_PARAMETERS for w in ("truth", "held-out catalog", "surrogate")]]
        body = []
        for _, r in fits.iterrows():
            cells = [f"<td class='txt'>{_esc(r['set'])}</td>", _cell(r["kind"]), *[_cell(r[k]) for k in varied]]
            for k in REFIT_PARAMETERS:
                cells.append(_cell(r[f"etas_{k}_truth"]))
                for w in ("H", "S"):
                    v, se = r[f"etas_{k}_{w}"], r[f"etas_{k}_{w}_se"]
                    text = "—" if not np.isfinite(v) else fmt(v) + ("" if not np.isfinite(se) else f" ± {fmt(se, 2)}")
                    cells.append(f"<td class='num'>{_esc(text)}</td>")
            body.append(f"<tr>{''.join(cells)}</tr>")
        failed = [f"{r['set']}: {r['fit_error']}" for _, r in fits.iterrows() if r["fit_error"]]
        parts.append("<h2>ETAS parameters refitted from the surrogate's catalogs</h2><p class='note'>Space-time "
                     "maximum-likelihood fit (etasvae.inversion), jointly over a set's first chains (as many as held-out catalogs), as the whole "
                     "held-out ETAS catalog of a grid point is fitted (its estimate beside it); ± one standard error."
                     + (f" Not fitted: {_esc('; '.join(failed))}." if failed else "") + "</p><div class='scroll'><table><tr>"
                     + "".join(f"<th>{_esc(h)}</th>" for h in head) + "</tr>" + "".join(body) + "</table></div>")
    if len(points):
        cols = ["name", *varied, "events_per_chain", "b_value", "fano_daily", "cv_catalog", "flags"]
        body = "".join("<tr>" + "".join(_cell(fmt(r[c]) if c == "flags" else r[c]) for c in cols) + "</tr>"
                       for _, r in points.iterrows())
        parts.append("<h2>Off-grid points</h2><p class='note'>Parameter sets of <code>surrogate.points</code>; a "
                     "flag marks a value outside the trained range (allowed by surrogate.allow_extrapolation).</p>"
                     "<table><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in cols) + f"</tr>{body}</table>")
    write_text(html_path, _page("Conditional surrogate", "\n".join(parts)))
    return table
