"""One self-contained HTML page per config x VAE setting.

Everything a page shows is embedded in it (PNGs as base64 data URIs, inline CSS), so a page can be mailed,
archived or opened from any folder. Skill = (d_P - d_S) / (d_P - d_A) (docs/design.md, *Evaluation*) is
classified as good (>= 0.75, at the floor), partial or poor (<= 0.25, no better than Poisson), the
thresholds of ``evaluate.classify``. The metrics table arrives from ``etasvae.evaluate.compare_sets``; this
module reads it generically (unknown extra columns are shown as they come, NaN as a dash), so new
statistics need no change here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..evaluate.figures import SETS
from ..fileio import write_text
from .cells import (
    SKILL_GOOD,
    SKILL_POOR,
    _as_number,
    _cell,
    _esc,
    _flatten,
    _group_order,
    _image_uri,
    _is_missing,
    _kv_table,
    _page,
    _score_badge,
    _skill_cell,
    fmt,
    skill_class,
    warnings_html,
)

# Known metric columns, shown in this order with these headers; any other column follows as it comes.
# err_X (standard error) is shown as "value ± err" in the value_X cell, ``distance`` (how d is defined)
# under the statistic's name.
METRIC_COLUMNS = {
    "value_S": "S synthetic",
    "value_H": "H held-out",
    "value_A": "A floor set",
    "value_P": "P Poisson",
    "d_S": "d(S, H)",
    "d_A": "d(A, H) floor",
    "resolution": "resolution (95 %)",
    "d_P": "d(P, H) naive",
    "skill": "skill",
    "p_S": "p(S)",
    "p_A": "p(A)",
    "p_P": "p(P)",
    "informative": "informative",
}
ERROR_OF = {f"value_{k}": f"err_{k}" for k in SETS}
DESCRIPTION_COLUMN = "distance"

FIGURE_ORDER = ("magnitude_frequency", "interevent_times", "cumulative_counts", "omori_decay",
                "loss_curves", "pca", "tsne", "interpolation")
FIGURE_CAPTION = {
    "magnitude_frequency": "Magnitude–frequency: mean number of events per window with magnitude ≥ m (log scale); "
                           "parallel straight lines mean the same Gutenberg–Richter b-value (legend).",
    "interevent_times": "Density of log10 inter-event times within windows: clustering puts mass at short times "
                        "(left), a Poisson process has one narrow hump.",
    "cumulative_counts": "Mean cumulative event count against time since the window start, with the 10–90 % "
                         "spread across windows; steps and a wide band come from aftershock bursts.",
    "omori_decay": "Stacked event rate after each window's largest event (log–log): aftershocks that follow the "
                   "Omori–Utsu law decay as a straight line of slope about −p; Poisson stays flat. The drop at the longest times "
                   "is the end of the windows.",
    "loss_curves": "Training and validation loss per epoch: reconstruction, KL divergence and their β-weighted "
                   "total; validation far above training means overfitting.",
    "pca": "Latent means of the windows on their first two principal components, one panel per colouring "
           "(largest magnitude, window length, time since the largest event, b-value, role, config); black "
           "crosses are the synthetic windows. Smooth colour gradients mean the latent code encodes that "
           "property; crosses outside the cloud are synthetic windows unlike any real one.",
    "tsne": "The same colourings on a t-SNE map of the latent means: neighbourhoods are meaningful, "
            "distances between clusters are not.",
    "interpolation": "Windows decoded along a straight latent line from a quiet window to one holding a large "
                     "mainshock (magnitude against time, largest event starred): a gradual change means a "
                     "smooth latent space; abrupt jumps or implausible windows mean gaps a sampler can hit.",
}
FIGURE_TITLE = {
    "magnitude_frequency": "Magnitude–frequency",
    "interevent_times": "Inter-event times",
    "cumulative_counts": "Cumulative counts",
    "omori_decay": "Omori decay after the largest event",
    "loss_curves": "Loss curves",
    "pca": "Latent space: PCA",
    "tsne": "Latent space: t-SNE",
    "interpolation": "Latent interpolation",
}

# The legend's words for H, A and the floor: ETAS configs, and real catalogs (datasets).
LEGEND_WORDS = {
    False: {"A": "a second ETAS sample A (the floor set)", "H": "the held-out ETAS windows H",
            "floor": "a second ETAS sample is (the noise floor)"},
    True: {"A": "the windows of the training period (A)", "H": "the windows of the held-out period (H)",
           "floor": "the training period is (the floor)"},
}


def skill_legend(real: bool = False) -> str:
    """The legend of the metrics table; ``real``: H and A are a dataset's held-out and training periods."""
    w = LEGEND_WORDS[bool(real)]
    return (
        f"Each statistic is computed for the synthetic windows S, {w['A']} and a Poisson "
        "catalog P with the same rate and naive magnitudes (normal, no Gutenberg–Richter tail), and each is "
        f"compared with {w['H']}: "
        "d(X, H) is their distance (a two-sample statistic, or the absolute difference of the values). "
        "<b>skill = (d<sub>P</sub> − d<sub>S</sub>) / (d<sub>P</sub> − d<sub>A</sub>)</b>: 1 means the VAE is as "
        f"close to H as {w['floor']}, 0 means no better than a process without "
        "aftershocks, and below 0 worse than that. The b-value, magnitude and Omori rows count an event that "
        "overlapping windows of H or A share once. " + SKILL_LEGEND_REST
    )


SKILL_LEGEND_REST = (
    f"<span class='skill good'>at the floor ≥ {SKILL_GOOD}</span> "
    f"<span class='skill partial'>partial {SKILL_POOR}–{SKILL_GOOD}</span> "
    f"<span class='skill poor'>no better than Poisson ≤ {SKILL_POOR}</span> <span class='skill na'>— not defined</span> "
    "where the Poisson baseline is already as close to H as the floor (d<sub>P</sub> ≤ d<sub>A</sub>): "
    "such a statistic cannot tell clustering from no clustering and is marked not informative. "
    "p(X) is the p-value of a test that X and H come from the same distribution, where there is one. "
    "The <i>ETAS fit</i> rows are the parameters of a joint ETAS fit of each set's windows (α, Omori p, "
    "branching ratio n), their distance the difference in standard errors of the A–H comparison; their "
    "P column holds the value of a generator without that mechanism (α = 0, p = 1, n = 0)."
)
SKILL_LEGEND = skill_legend(False)


def _value_cell(value: Any, err: Any) -> str:
    if _as_number(value) is not None and _as_number(err) is not None:
        return f"<td class='num'>{_esc(fmt(value))} <span class='err'>± {_esc(fmt(err, 2))}</span></td>"
    return _cell(value)


def set_sizes_html(summary: dict, real: bool) -> str:
    """The sets' sizes and where A comes from, and what the resolution column means (one note)."""
    n = summary.get("n_windows") or {}
    if not n:
        return ""
    sizes = ", ".join(f"{k} {int(v):,}" for k, v in n.items())
    if real:
        source = "A is the catalog's training period, H its held-out period (a real catalog has one history)"
    elif summary.get("floor_set") == "reference":
        source = ("H is the held-out replicates and half of the reference catalogs simulated for the evaluation "
                  "only; A is the other half (never trained on), drawn at H's size")
    else:
        source = "A is the training windows (no reference catalogs: evaluate.reference_replicates = 0)"
    return (f"<p class='note'><b>Windows per set:</b> {_esc(sizes)}. {_esc(source)}. <b>resolution (95 %)</b>: "
            "the distance d(S, H) that two samples of these sizes from one process exceed with probability 5 % "
            "(from the statistic's sampling law: KS critical value, 1.96 standard errors, the permutation null "
            "of MMD, the binomial null of the classifier); a smaller d(S, H) is at the floor to within it. Empty "
            "where the statistic has no known sampling law: read d(A, H) there.</p>")


def metrics_table_html(metrics: pd.DataFrame) -> str:
    """The metrics table grouped by ``group``, skill cells colour-coded; unknown columns appended."""
    df = metrics.copy()
    if "statistic" not in df.columns:
        raise ValueError("metrics table has no 'statistic' column")
    if "group" not in df.columns:
        df["group"] = "other"
    df["group"] = df["group"].where(df["group"].notna(), "other").astype(str)
    consumed = {"statistic", "group", DESCRIPTION_COLUMN, *ERROR_OF.values()}
    known = [c for c in METRIC_COLUMNS if c in df.columns]
    extra = [c for c in df.columns if c not in METRIC_COLUMNS and c not in consumed]
    columns = known + extra
    n_cols = 1 + len(columns)
    boundary = {"d_S", "skill", "p_S"}  # a heavier rule left of these columns

    head = ["<th>statistic</th>"]
    for c in columns:
        ref = " class='ref'" if c in boundary else ""
        head.append(f"<th{ref} title='{_esc(c)}'>{_esc(METRIC_COLUMNS.get(c, c))}</th>")
    rows = [f"<tr>{''.join(head)}</tr>"]
    for group in _group_order(df["group"]):
        part = df[df["group"] == group]
        classes = [skill_class(s) for s in part["skill"]] if "skill" in part else []
        names = {"good": "good", "partial": "partial", "poor": "poor", "na": "not defined"}
        tally = ", ".join(f"{classes.count(c)} {names[c]}" for c in names if classes.count(c))
        tally_html = f" <span class='note'>(skill: {_esc(tally)})</span>" if tally else ""
        rows.append(f"<tr class='group'><td colspan='{n_cols}'>{_esc(group)}{tally_html}</td></tr>")
        for _, r in part.iterrows():
            desc = r.get(DESCRIPTION_COLUMN)
            desc_html = f"<br><span class='desc'>d = {_esc(desc)}</span>" if isinstance(desc, str) and desc else ""
            cells = [f"<td class='txt'>{_esc(r['statistic'])}{desc_html}</td>"]
            for c in columns:
                if c == "skill":
                    cell = _skill_cell(r[c])
                elif c in ERROR_OF:
                    cell = _value_cell(r[c], r.get(ERROR_OF[c]))
                else:
                    cell = _cell(r[c])
                if c in boundary:
                    cell = cell.replace("<td class='", "<td class='ref ", 1)
                cells.append(cell)
            rows.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table class='metrics'>{''.join(rows)}</table>"


def _figures_html(images: dict[str, str]) -> str:
    keys = [k for k in FIGURE_ORDER if k in images] + [k for k in images if k not in FIGURE_ORDER]
    parts = []
    for k in keys:
        path = images[k]
        title = FIGURE_TITLE.get(k, k.replace("_", " "))
        caption = FIGURE_CAPTION.get(k, "")
        if path is None or not Path(path).is_file():
            parts.append(f"<h3>{_esc(title)}</h3><p class='missing'>Figure not found: {_esc(path)}</p>")
            continue
        parts.append(f"<figure id='fig-{_esc(k)}'><h3>{_esc(title)}</h3>"
                     f"<img alt='{_esc(title)}' src='{_image_uri(path)}'>"
                     f"<figcaption>{_esc(caption)}</figcaption></figure>")
    return "\n".join(parts) if parts else "<p class='note'>No figures.</p>"


def _is_number_list(value: Any) -> bool:
    return (isinstance(value, (list, tuple, np.ndarray)) and len(value) > 0
            and all(_as_number(v) is not None or _is_missing(v) or isinstance(v, (bool, np.bool_)) for v in value))


def _is_record_list(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(isinstance(v, dict) for v in value)


def _per_item_table(rows: list[tuple[str, list]]) -> str:
    """Fields as rows, items (latent units) as columns: compact for the usual 2-64 units."""
    n = max(len(v) for _, v in rows)
    head = "".join(f"<th>{i}</th>" for i in range(n))
    def cell(key: str, x: Any) -> str:
        if key.split(".")[-1] == "active" and isinstance(x, (bool, np.bool_)):  # inactive units stand out
            return f"<td class='txt {'good' if x else 'poor'}'>{fmt(x)}</td>"
        return _cell(x)

    body = "".join(f"<tr><th>{_esc(k)}</th>{''.join(cell(k, x) for x in v)}{'<td></td>' * (n - len(v))}</tr>"
                   for k, v in rows)
    return f"<div class='scroll'><table class='kv'><tr><th>unit</th>{head}</tr>{body}</table></div>"


def health_html(metrics: dict) -> str:
    """A metrics dict as HTML: scalars (nested keys dotted) in a key-value table, per-unit number lists and
    lists of per-unit records (e.g. ``units``: [{unit, activity, active, mean_kl}, ...]) as unit tables."""
    scalars, per_unit = [], []
    for key, value in _flatten(metrics or {}):
        if _is_record_list(value):
            fields = list(dict.fromkeys(k for rec in value for k in rec))
            per_unit.extend((f"{key}.{f}", [rec.get(f) for rec in value]) for f in fields if f != "unit")
        elif _is_number_list(value):
            per_unit.append((key, list(value)))
        else:
            scalars.append((key, value))
    out = [_kv_table(scalars, "quantity", "value")] if scalars or not per_unit else []
    if per_unit:
        out.append("<h4>per latent unit</h4>" + _per_item_table(per_unit))
    return "\n".join(out)


SUMMARY_SKIP = {"verdict", "overall_score", "statistics", "figures", "config_id", "vae_id", "settings", "health",
                "verdict_class", "warnings"}


def render_model_page(path: str | os.PathLike, *, config_id: str, vae_id: str, settings: dict,
                      metrics: pd.DataFrame, summary: dict, latent_metrics: dict, clipping: dict,
                      images: dict[str, str], extra_html: str = "") -> None:
    """Write one self-contained HTML page for a config x VAE setting (atomically); ``extra_html`` (e.g.
    the ETAS inversion table) follows the statistics."""
    verdict = summary.get("verdict") or "No verdict was computed."
    score = summary.get("overall_score")
    facts = [(k, v) for k, v in _flatten({k: v for k, v in summary.items() if k not in SUMMARY_SKIP})]
    settings_items = [(k, fmt(v) if isinstance(v, (list, tuple)) else v) for k, v in (settings or {}).items()]
    # A real catalog (summary["real_catalog"]): H is its held-out period and the floor its training period.
    real = bool(summary.get("real_catalog"))
    sizes_html = set_sizes_html(summary, real)
    reference = "the real catalog" if real else "ETAS"
    floor = "the training period against the held-out period" if real else "a second ETAS sample"
    separated = summary.get("verdict_class") == "separated"
    body = [
        f"<h1>How close is the VAE to {reference}? — {_esc(config_id)}</h1>",
        f"<p class='sub'>{'dataset' if real else 'config'} <b>{_esc(config_id)}</b> · VAE setting <b>{_esc(vae_id)}</b></p>",
        f"<div class='verdict'>{_score_badge(score, separated=separated)}<div><b>Verdict.</b> {_esc(verdict)}</div></div>",
        warnings_html(summary.get("warnings")),
        "<p class='note'>The overall score is the median skill over the informative statistics below (each "
        f"clipped to [−1, 1]): 1 = as good as {floor}, 0 = no better than a Poisson process "
        "without aftershocks.</p>",
        "<h2>Settings</h2>",
        "<div class='grid2'>",
        f"<div><h3>VAE setting</h3>{_kv_table(settings_items, 'setting', 'value')}</div>",
        f"<div><h3>Run facts</h3>{_kv_table(facts, 'quantity', 'value')}</div>" if facts else "",
        "</div>",
        f"<h2>Statistics: synthetic (S) against {'the held-out period' if real else 'held-out ETAS'} (H)</h2>",
        f"<p class='note'>{skill_legend(real)}</p>",
        sizes_html,
        metrics_table_html(metrics),
        extra_html,
        "<h2>Figures</h2>",
        _figures_html(images or {}),
        "<h2>VAE health</h2>",
        "<p class='note'>Active units are latent dimensions whose posterior mean varies across windows (activity "
        "above the threshold); few active units (posterior collapse) mean the decoder ignores most of the "
        "latent code. Reconstruction loss and KL are reported separately. Silhouette scores (0 = no grouping, "
        "1 = separated), kNN accuracy against chance and linear R² say how well the latent means encode the "
        "window's largest magnitude, length and (pooled model) source config.</p>",
        "<div class='grid2'>",
        f"<div><h3>Held-out windows</h3>{health_html(summary.get('health'))}</div>" if summary.get("health") else "",
        f"<div><h3>Latent space</h3>{health_html(latent_metrics)}</div>",
        "</div>",
        "<h3>Clipping of decoded windows</h3>",
        "<p class='note'>Decoded values outside the physical range (negative inter-event times, magnitudes "
        "below Mc, positions outside the region) are clipped when windows are turned back into catalogs; "
        "many clipped values mean the decoder produces implausible windows.</p>",
        _kv_table(_flatten(clipping or {}), "rule", "values clipped"),
    ]
    write_text(path, _page(f"etasvae — {config_id} / {vae_id}", "\n".join(b for b in body if b)))
