"""The surrogate's report page: trained and held-out grid points side by side with the per-config models,
the catalog statistics' skills, and the statistics as functions of the varied parameters (line plots)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..fileio import atomic_write, write_text
from ..plotting import panel_figure, png_data_uri, save_png
from ..surrogate_eval import LINE_STATISTICS
from .cells import _cell, _esc, _page, _score_badge, _skill_cell, fmt

CATALOG_SKILLS = ("fano_daily", "count_30d_fano", "count_30d_ks", "cv_catalog")
LINE_LABEL = {"b_value": "b-value (Aki–Utsu)", "fano_daily": "Fano factor of daily counts",
              "cv_catalog": "CV of inter-event times", "omori_p": "Omori p (stacked, windows)"}


def surrogate_table(summaries: list[dict], per_config: dict[str, float], varied: list[str]) -> pd.DataFrame:
    """One row per grid point: kind, varied values, surrogate and per-config window scores and their gap,
    catalog skills and the catalog score."""
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
        for name in LINE_STATISTICS:
            for k in "SHA":
                row[f"{name}_{k}"] = s["lines"][name][k]
        rows.append(row)
    return pd.DataFrame(rows)


def line_figure(table: pd.DataFrame, points: pd.DataFrame, varied: list[str]):
    """Each LINE_STATISTIC against each varied parameter: ETAS held-out and training catalogs (lines), the
    surrogate at trained (filled) and held-out (open) grid points, and at the off-grid points (crosses)."""
    fig, axes = panel_figure(len(LINE_STATISTICS) * len(varied), ncols=len(LINE_STATISTICS))
    for i, (param, name) in enumerate((p, n) for p in varied for n in LINE_STATISTICS):
        ax = axes[i]
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
                          plan: dict[str, Any], vae_id: str) -> pd.DataFrame:
    """Write the page, the table (CSV) and the line figure (PNG); return the table."""
    varied = list(plan["varied"])
    table = surrogate_table(summaries, per_config, varied)
    atomic_write(csv_path, lambda tmp: table.to_csv(tmp, index=False))
    fig = line_figure(table, points, varied)
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
    parts.append(f"<h2>Statistics against the varied parameters</h2><figure><img src='{png_data_uri(fig)}'>"
                 "<figcaption>Whole-catalog statistics of the surrogate's chained catalogs (mean over chains) and of "
                 "the ETAS catalogs at each grid point; Omori p from the stacked fit of the window comparison."
                 "</figcaption></figure>")
    if len(points):
        cols = ["name", *varied, "events_per_chain", "b_value", "fano_daily", "cv_catalog", "flags"]
        body = "".join("<tr>" + "".join(_cell(fmt(r[c]) if c == "flags" else r[c]) for c in cols) + "</tr>"
                       for _, r in points.iterrows())
        parts.append("<h2>Off-grid points</h2><p class='note'>Parameter sets of <code>surrogate.points</code>; a "
                     "flag marks a value outside the trained range (allowed by surrogate.allow_extrapolation).</p>"
                     "<table><tr>" + "".join(f"<th>{_esc(c)}</th>" for c in cols) + f"</tr>{body}</table>")
    write_text(html_path, _page("Conditional surrogate", "\n".join(parts)))
    return table
