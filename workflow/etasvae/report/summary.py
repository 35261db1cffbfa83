"""The run summary: every config (and dataset) x VAE setting, ranked per config by overall score, as HTML and CSV.

ETAS configs come first, then the datasets (real catalogs) under their own heading; a dataset's section
is built by its own lines (``_dataset_line``, ``_ranking_html``), followed by the forecast table of its held-out
period (etasvae.report.forecast_table).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from ..fileio import atomic_write, write_text
from ..plotting import new_figure, png_data_uri
from .cells import (
    SKILL_GOOD,
    SKILL_POOR,
    _as_number,
    _cell,
    _esc,
    _group_order,
    _is_missing,
    _page,
    _skill_cell,
    fmt,
)
from .forecast_table import forecast_html
from .generators import simulated_line


def _setting_text(value: Any) -> str:
    """A VAE setting as a plain string or number (lists joined with 'x', as in the ids)."""
    if isinstance(value, (list, tuple)):
        return "x".join(str(_setting_text(v)) for v in value)
    return value


def _varied(vaes: dict[str, dict], ids: list[str]) -> list[str]:
    keys: list[str] = []
    for vid in ids:
        for k in vaes.get(vid, {}):
            if k not in keys:
                keys.append(k)
    return [k for k in keys if len({repr(_setting_text(vaes.get(v, {}).get(k))) for v in ids}) > 1]


def summary_table(summaries: list[dict], *, etas: dict[str, dict], vaes: dict[str, dict]) -> pd.DataFrame:
    """One row per config x VAE setting: config params, VAE settings, statistics' values and skills,
    overall score and rank within config (1 = best; missing scores rank last; overall scores equal at two
    decimals are ordered by the weakest group's score, so that of two settings at the median's ceiling the one without a
    failing mechanism ranks first)."""
    stat_names: list[str] = []
    for s in summaries:
        for name in (s.get("statistics") or {}):
            if name not in stat_names:
                stat_names.append(name)
    rows = []
    for s in summaries:
        cfg, vid = str(s["config_id"]), str(s["vae_id"])
        row: dict[str, Any] = {"config_id": cfg, "vae_id": vid, "kind": _kind(cfg, s)}
        for k, v in (etas.get(cfg) or {}).items():
            row[f"etas_{k}"] = _setting_text(v)
        for k, v in (vaes.get(vid) or s.get("settings") or {}).items():
            row[f"vae_{k}"] = _setting_text(v)
        score = _as_number(s.get("overall_score"))
        row["overall_score"] = np.nan if score is None else score
        groups = {k: _as_number(v) for k, v in (s.get("group_scores") or {}).items()}
        groups = {k: v for k, v in groups.items() if v is not None}
        weakest = min(groups.items(), key=lambda kv: kv[1]) if groups else None
        row["weakest_group"] = weakest[0] if weakest else np.nan
        row["weakest_group_score"] = weakest[1] if weakest else np.nan
        stats = s.get("statistics") or {}
        for name in stat_names:
            entry = stats.get(name) or {}
            for key in ("value_S", "skill"):
                x = _as_number(entry.get(key))
                row[f"{name}.{key}"] = np.nan if x is None else x
        row["verdict"] = s.get("verdict", "")
        row["verdict_class"] = s.get("verdict_class") or np.nan  # NaN, not "": the CSV reads back the same
        row["n_windows_H"] = (s.get("n_windows") or {}).get("H", np.nan)
        row["warnings"] = " ".join(s.get("warnings") or []) or np.nan
        row.update(s.get("extra_columns") or {})
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=["config_id", "vae_id", "overall_score", "rank", "verdict"])
    table["overall_score"] = pd.to_numeric(table["overall_score"], errors="coerce")
    table["rank"] = _ranks(table)
    front = ["config_id", "vae_id", "rank", "overall_score"]
    table = table[front + [c for c in table.columns if c not in front]]
    return table.sort_values(["config_id", "rank", "vae_id"], kind="stable").reset_index(drop=True)


def _kind(cfg: str, summary: dict) -> str:
    """What a model was trained on: a real catalog ("dataset"), all ETAS configs ("pooled") or one config."""
    if summary.get("real_catalog"):
        return "dataset"
    return "pooled" if cfg == "pooled" else "ETAS config"


def _ranks(table: pd.DataFrame) -> pd.Series:
    """Rank within config by (overall score, weakest group score), both descending, missing last; settings
    equal in both share the lower rank. Overall scores count as equal at the two decimals the page shows:
    near the median's ceiling (1.00) their differences are training noise, and the weakest group decides."""
    key = pd.DataFrame({"config_id": table["config_id"],
                        "o": table["overall_score"].round(2).fillna(-np.inf),
                        "w": pd.to_numeric(table["weakest_group_score"], errors="coerce").fillna(-np.inf)})
    ranks = pd.Series(0, index=table.index, dtype=int)
    for _, g in key.groupby("config_id", sort=False):
        pairs = list(zip(g["o"], g["w"]))
        for i, pair in zip(g.index, pairs):
            ranks[i] = 1 + sum(other > pair for other in pairs)
    return ranks


def _score_figure(table: pd.DataFrame, varied: list[str]) -> str | None:
    """Embedded PNG: overall score against each varied VAE setting, one line per config."""
    if not varied or table.empty:
        return None
    fig = new_figure(figsize=(min(max(4.2 * len(varied), 6.0), 13), 3.8))
    axes = np.atleast_1d(fig.subplots(1, len(varied)))
    configs = list(dict.fromkeys(table["config_id"]))
    cmap = [f"C{i % 10}" for i in range(len(configs))]
    for ax, key in zip(axes, varied):
        col = f"vae_{key}"
        values = table[col]
        numeric = pd.to_numeric(values, errors="coerce")
        is_num = bool(numeric.notna().all())
        if is_num:
            x_all = numeric.to_numpy(float)
            positive = bool((x_all > 0).all())
            if positive and x_all.max() / x_all.min() >= 10:
                ax.set_xscale("log")
        else:
            cats = sorted({str(v) for v in values})
            pos = {c: i for i, c in enumerate(cats)}
            ax.set_xticks(range(len(cats)), cats, rotation=20 if max(len(c) for c in cats) > 6 else 0)
            ax.set_xlim(-0.5, len(cats) - 0.5)
        for color, cfg in zip(cmap, configs):
            part = table[table["config_id"] == cfg]
            x = pd.to_numeric(part[col], errors="coerce").to_numpy(float) if is_num else np.array(
                [pos[str(v)] for v in part[col]], float)
            y = part["overall_score"].to_numpy(float)
            order = np.argsort(x, kind="stable")
            # Join the points only where each value occurs once; otherwise other settings vary too.
            style = "-" if len(np.unique(x)) == len(x) else "none"
            ax.plot(x[order], y[order], marker="o", linestyle=style, color=color, label=cfg, alpha=0.85)
        ax.axhline(SKILL_GOOD, color="#2e7d32", linestyle=":", linewidth=1)
        ax.axhline(SKILL_POOR, color="#c62828", linestyle=":", linewidth=1)
        ax.set_xlabel(key)
        ax.set_ylabel("overall score")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best", title="config", title_fontsize=8)
    fig.suptitle("Overall score against each varied VAE setting", fontsize=11)
    return png_data_uri(fig)


def _dataset_line(facts: dict | None) -> str:
    """A dataset's periods, region and Mc, from its model summary's ``real_catalog`` facts."""
    if not facts:
        return "<p class='note'>Real catalog; its import facts were not recorded.</p>"
    keys = [k for k in facts if k.startswith(("H ", "A ", "region", "mc"))]
    items = " · ".join(f"{_esc(k)}: {_esc(fmt(facts[k]))}" for k in keys)
    return f"<p class='note'>Real catalog ({_esc(facts.get('source', ''))}): {items}</p>"


def _ranking_html(part: pd.DataFrame, shown: list[str]) -> str:
    """The ranking table of one config's or dataset's VAE settings: score, headline, separation, small sets."""
    head = ("<tr><th>rank</th><th>VAE setting (model page)</th>"
            + "".join(f"<th>{_esc(k)}</th>" for k in shown)
            + "<th>overall score</th><th>verdict</th></tr>")
    rows = [head]
    for _, r in part.iterrows():
        best = " class='best'" if r["rank"] == 1 and _as_number(r["overall_score"]) is not None else ""
        href = quote(f"{r['config_id']}/{r['vae_id']}.html")
        cells = [f"<td class='num'>{int(r['rank'])}{' ★' if best else ''}</td>",
                 f"<td class='txt'><a href='{_esc(href)}'>{_esc(r['vae_id'])}</a></td>"]
        cells += [_cell(r.get(f"vae_{k}")) for k in shown]
        separated = r.get("verdict_class") == "separated"
        score = _skill_cell(r["overall_score"], "score-cell")
        cells.append(score.replace("skill good", "skill poor").replace("skill partial", "skill poor") if separated else score)
        full = str(r.get("verdict") or "")
        small = isinstance(r.get("warnings"), str) and bool(r.get("warnings"))
        flags = (["separated"] if separated else []) + (["small set"] if small else [])
        flag_html = "".join(f" <span class='skill poor'>{_esc(f)}</span>" for f in flags)
        cells.append(f"<td class='txt verdict-cell' title='{_esc(full)}'>{_esc(_first_sentence(full))}{flag_html}</td>")
        rows.append(f"<tr{best}>{''.join(cells)}</tr>")
    return f"<table class='ranking'>{''.join(rows)}</table>"


def _config_line(cfg: str, params: dict | None) -> str:
    if not params:
        return ("<p class='note'>Model trained on the windows of every ETAS config together (pooled)."
                "</p>" if cfg == "pooled" else "<p class='note'>ETAS parameters not recorded.</p>")
    items = " · ".join(f"{_esc(k)} = {_esc(fmt(v))}" for k, v in params.items() if not _is_missing(v))
    return f"<p class='note'>ETAS: {items}</p>"


SUMMARY_HELP = (
    "<p class='note'>Every VAE setting is trained per ETAS config; its synthetic windows S are compared with "
    "held-out ETAS windows H on every statistic of the evaluation (magnitudes, inter-event times, counts, "
    "aftershock decay, space, whole-window two-sample tests, CSEP number and magnitude tests). Each statistic "
    "gives a <b>skill</b> = (d<sub>P</sub> − d<sub>S</sub>) / (d<sub>P</sub> − d<sub>A</sub>), where d is the "
    "distance to H of the synthetic set S, of the ETAS training set A (the noise floor) and of a Poisson set "
    "P with the same rate and naive magnitudes (the naive baseline): 1 is as good as ETAS itself, 0 no better than "
    "Poisson. The <b>overall score</b> (<code>etasvae.evaluate.overall_score</code>) is the median skill over "
    "the informative statistics (those on which the Poisson baseline is farther from H than the floor), each "
    "clipped to [−1, 1] so that one catastrophic statistic cannot dominate. Settings are ranked by it within "
    "each config (scores equal at two decimals by their weakest group), the best highlighted (★). The median can hide one "
    "failing mechanism, so the <b>weakest group</b> (the statistic group, e.g. the ETAS fit, with the lowest median skill) stands beside it.</p>"
    "<p class='note'><b>Fine-tuning.</b> Compare rows that differ in one setting. If a higher β raises the "
    "score, the model was overfitting or its latent space was disorganised; if it lowers it (and the model "
    "page shows few active latent units), the KL term is collapsing the posterior: lower β or use a KL "
    "warm-up. A larger latent size helps only while the extra units stay active. If the per-statistic table "
    "shows poor aftershock or inter-event-time skills for every β and size, try the other representation "
    "(event windows versus binned counts) or the Gaussian likelihood. Open a model page (link) for the "
    "figures behind a score.</p>"
    "<p class='note'><b>Datasets</b> (real catalogs) are listed apart from the ETAS configs: there H is the "
    "catalog's held-out period and the floor A its training period, not ETAS. A verdict marked "
    "<i>separated</i> (red score) is one where a whole-window test (the classifier, MMD) tells the synthetic "
    "windows from H, whatever the median skill; <i>small set</i> marks a model whose H has too few windows "
    "for the tests to say much (the model page says what each test can still tell). Each dataset's section ends "
    "with the forecast of its held-out period: the log-likelihood per event (time, space, magnitude) of a Poisson "
    "model and of the ETAS model fitted to its training period, with the gaps to the ETAS fit and its flags.</p>"
)


def _skill_matrix_html(part: pd.DataFrame, stat_names: list[str], groups: dict[str, str], shown: list[str]) -> str:
    """Statistics as rows, VAE settings (in rank order) as columns, skill cells colour-coded."""
    if not stat_names:
        return ""
    head = ""
    for _, r in part.iterrows():
        label = "<br>".join(f"{_esc(k)} {_esc(fmt(r.get(f'vae_{k}')))}" for k in shown)
        head += f"<th title='{_esc(r['vae_id'])}'>#{int(r['rank'])}<br><span class='note'>{label}</span></th>"
    rows = [f"<tr><th>statistic</th>{head}</tr>"]
    order = _group_order(groups.get(n, "other") for n in stat_names)
    for group in order:
        names = [n for n in stat_names if groups.get(n, "other") == group]
        rows.append(f"<tr class='group'><td colspan='{1 + len(part)}'>{_esc(group)}</td></tr>")
        for n in names:
            col = f"{n}.skill"
            cells = "".join(_skill_cell(v) for v in (part[col] if col in part else [None] * len(part)))
            rows.append(f"<tr><td class='txt'>{_esc(n)}</td>{cells}</tr>")
    return ("<details open><summary>Skill per statistic (columns: settings by rank; hover for the id)</summary>"
            f"<table>{''.join(rows)}</table></details>")


def _first_sentence(text: str) -> str:
    """The verdict's headline: its first sentence (the full paragraph is on the model page and in the CSV)."""
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z])", text.strip(), maxsplit=1)
    return parts[0] if parts else ""


def render_summary(html_path: str | os.PathLike, csv_path: str | os.PathLike, summaries: list[dict], *,
                   etas: dict[str, dict], vaes: dict[str, dict], forecasts: dict[str, dict] | None = None,
                   simulated: dict[str, dict[str, dict]] | None = None) -> pd.DataFrame:
    """Write the run summary: a CSV (summary_table) and a self-contained HTML page ranking the VAE settings
    of each config by overall score, with links to the model pages ({config_id}/{vae_id}.html, relative to
    the summary); a dataset's section also shows its forecast table (``forecasts``: its scores file by
    dataset id) and, after its ranking, its ETAS fit simulated over the held-out period (``simulated``: its
    metrics.json by dataset id and representation). Returns the table."""
    table = summary_table(summaries, etas=etas, vaes=vaes)
    atomic_write(csv_path, lambda tmp: table.to_csv(tmp, index=False))

    groups: dict[str, str] = {}
    stat_names: list[str] = []
    for s in summaries:
        for name, entry in (s.get("statistics") or {}).items():
            if name not in stat_names:
                stat_names.append(name)
            g = (entry or {}).get("group")
            if isinstance(g, str) and g and name not in groups:
                groups[name] = g
    ids = list(dict.fromkeys(table["vae_id"])) if not table.empty else []
    varied = [k for k in _varied(vaes, ids) if f"vae_{k}" in table.columns]
    shown = varied or [k for k in ("representation", "latent_dim", "beta") if f"vae_{k}" in table.columns]

    kinds = dict(zip(table["config_id"], table["kind"])) if len(table) else {}
    n_data = sum(k == "dataset" for k in kinds.values())
    body = [
        "<h1>etasvae summary: which VAE setting comes closest to its held-out catalogs?</h1>",
        f"<p class='sub'>{len(table)} models · {len(kinds) - n_data} ETAS configs"
        f"{f' · {n_data} datasets' if n_data else ''} · "
        f"{len(ids)} VAE settings{' · varied: ' + _esc(', '.join(varied)) if varied else ''}</p>",
        SUMMARY_HELP,
    ]
    uri = _score_figure(table, varied)
    if uri:
        body.append(f"<figure><img alt='overall score against VAE settings' src='{uri}'><figcaption>Each "
                    "panel: overall score (higher is better) against one VAE setting that varies in this run, one "
                    "colour per config or dataset; points are joined where only that setting varies between them. Dotted "
                    f"lines: {SKILL_GOOD} (at the floor) and {SKILL_POOR} (no better than Poisson).</figcaption></figure>")
    ordered = [c for c in kinds if kinds[c] != "dataset"] + [c for c in kinds if kinds[c] == "dataset"]
    facts = {str(s["config_id"]): s.get("real_catalog") for s in summaries if s.get("real_catalog")}
    for i, cfg in enumerate(ordered):
        part = table[table["config_id"] == cfg]
        real = kinds[cfg] == "dataset"
        if real and (i == 0 or kinds[ordered[i - 1]] != "dataset"):
            body.append("<h2 class='datasets'>Datasets (real catalogs)</h2>")
        body.append(f"<h{3 if real else 2}>{'Dataset' if real else 'Config'} {_esc(cfg)}</h{3 if real else 2}>")
        body.append(_dataset_line(facts.get(cfg)) if real else _config_line(cfg, etas.get(cfg)))
        body.append(_ranking_html(part, shown))
        if real:
            body.append(simulated_line((simulated or {}).get(cfg)))
            body.append(forecast_html((forecasts or {}).get(cfg), heading="h4"))
        body.append(_skill_matrix_html(part, stat_names, groups, shown))
    body.append("<p class='note'>All numbers: <a href='" + _esc(quote(Path(csv_path).name)) + "'>"
                + _esc(Path(csv_path).name) + "</a> (one row per config × VAE setting).</p>")
    write_text(html_path, _page("etasvae summary", "\n".join(body)))
    return table
