"""Reports: comparison figures, one self-contained HTML page per config x VAE setting, and the run summary.

Everything a page shows is embedded in it (PNGs as base64 data URIs, inline CSS), so a page can be mailed,
archived or opened from any folder. Figures use one colour per window set throughout:

    S  synthetic windows from the VAE      SET_STYLE["S"]
    H  held-out ETAS windows (reference)   black
    A  training ETAS windows (noise floor) grey, dashed
    P  Poisson baseline (naive)            blue

Skill = (d_P - d_S) / (d_P - d_A) (DESIGN.md §6) is classified as good (>= 0.75, at the floor), partial or
poor (<= 0.25, no better than Poisson), the thresholds of ``evaluate.classify``. The metrics table arrives from ``etasvae.evaluate.compare_sets``; this module reads it generically
(unknown extra columns are shown as they come, NaN as a dash), so new statistics need no change here.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

import numpy as np
import pandas as pd

from . import __version__
from .catalog import atomic_write
from .evaluate import FLOOR_SKILL, NAIVE_SKILL
from .stats import MIN_DT_DAYS, b_value_aki_utsu, b_value_shi_bolt_error

# ------------------------------------------------------------------------------------------ constants

SETS = ("S", "H", "A", "P")
SET_LABEL = {
    "S": "S: synthetic (VAE)",
    "H": "H: held-out ETAS",
    "A": "A: training ETAS (floor)",
    "P": "P: Poisson (naive)",
}
SET_STYLE = {
    "S": {"color": "#d95f02", "linestyle": "-", "linewidth": 2.0},
    "H": {"color": "black", "linestyle": "-", "linewidth": 1.6},
    "A": {"color": "#8c8c8c", "linestyle": "--", "linewidth": 1.4},
    "P": {"color": "#1f77b4", "linestyle": "-", "linewidth": 1.4},
}
# Draw order: the reference last, so it stays visible on top.
PLOT_ORDER = ("A", "P", "S", "H")

# The verdict's thresholds (evaluate.classify), so that table colours and verdict words agree.
SKILL_GOOD = FLOOR_SKILL
SKILL_POOR = NAIVE_SKILL

GROUP_ORDER = ("magnitudes", "time", "aftershocks", "space", "whole windows", "CSEP")

# Known metric columns, shown in this order with these headers; any other column follows as it comes.
# err_X (standard error) is shown as "value ± err" in the value_X cell, ``distance`` (how d is defined)
# under the statistic's name.
METRIC_COLUMNS = {
    "value_S": "S synthetic",
    "value_H": "H held-out",
    "value_A": "A training",
    "value_P": "P Poisson",
    "d_S": "d(S, H)",
    "d_A": "d(A, H) floor",
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
    "omori_decay": "Stacked event rate after each window's largest event (log–log): ETAS-like aftershocks decay "
                   "as a straight line of slope about −p; Poisson stays flat. The drop at the longest times "
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

SKILL_LEGEND = (
    "Each statistic is computed for the synthetic windows S, the training ETAS windows A and a Poisson "
    "catalog P with the same rate and magnitudes, and each is compared with the held-out ETAS windows H: "
    "d(X, H) is their distance (a two-sample statistic, or the absolute difference of the values). "
    "<b>skill = (d<sub>P</sub> − d<sub>S</sub>) / (d<sub>P</sub> − d<sub>A</sub>)</b>: 1 means the VAE is as "
    "close to H as a second ETAS sample is (the noise floor), 0 means no better than a process without "
    "aftershocks, and below 0 worse than that. "
    f"<span class='skill good'>at the floor ≥ {SKILL_GOOD}</span> "
    f"<span class='skill partial'>partial {SKILL_POOR}–{SKILL_GOOD}</span> "
    f"<span class='skill poor'>no better than Poisson ≤ {SKILL_POOR}</span> <span class='skill na'>— not defined</span> "
    "where the Poisson baseline is already as close to H as the floor (d<sub>P</sub> ≤ d<sub>A</sub>): "
    "such a statistic cannot tell clustering from no clustering and is marked not informative. "
    "p(X) is the p-value of a test that X and H come from the same distribution, where there is one."
)

# ------------------------------------------------------------------------------------------ JSON


def to_jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays, pandas objects, tuples, sets and paths converted;
    NaN and ±inf become None (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        return [to_jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Series):
        return to_jsonable(obj.to_dict())
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if obj is None or obj is pd.NaT:
        return None
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, pd.Timestamp):
        return obj.isoformat()
    if obj is pd.NA:
        return None
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON (see to_jsonable), atomically."""
    text = json.dumps(to_jsonable(obj), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


# ------------------------------------------------------------------------------------------ figures


def _present(sets: dict[str, list[pd.DataFrame]]) -> list[str]:
    """Set keys in draw order that hold at least one event."""
    return [k for k in PLOT_ORDER if k in sets and any(len(w) for w in sets[k])]


def _pooled(windows: list[pd.DataFrame], column: str) -> np.ndarray:
    parts = [np.asarray(w[column], dtype=float) for w in windows if len(w)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _sorted_times(window: pd.DataFrame) -> np.ndarray:
    return np.sort(np.asarray(window["time"], dtype=float))



def _finish(fig, ax, *, xlabel: str, ylabel: str, panel_title: str, title: str, path, both_grids: bool = False) -> str:
    """Label and title a comparison figure, add its grid and save it; returns the path."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(panel_title)
    ax.grid(alpha=0.3, which="both" if both_grids else "major")
    fig.suptitle(title)
    return _save(fig, path)

def _new_figure(figsize=(8.0, 5.2)):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _save(fig, path: Path) -> str:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    return str(path)


def _legend(ax, **kwargs) -> None:
    """Legend with the sets in the order S, H, A, P, then anything else (reference lines)."""
    handles, labels = ax.get_legend_handles_labels()
    rank = {SET_LABEL[k]: i for i, k in enumerate(SETS)}
    order = sorted(range(len(labels)), key=lambda i: next((r for lab, r in rank.items() if labels[i].startswith(lab)), 99))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=9, **kwargs)


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no events", transform=ax.transAxes, ha="center", va="center", color="grey")


def plot_magnitude_frequency(sets, *, mc: float, path: Path, title: str, delta_m: float = 0.0) -> str:
    """Cumulative magnitude-frequency N(≥ m) per window (log scale), Aki–Utsu b ± Shi–Bolt error in the legend."""
    fig = _new_figure()
    ax = fig.subplots()
    keys = _present(sets)
    mags = {k: _pooled(sets[k], "magnitude") for k in keys}
    top = max((m.max() for m in mags.values() if m.size), default=mc + 1.0)
    grid = np.linspace(mc, top + 0.05, 400)
    for k in keys:
        m = np.sort(mags[k][np.isfinite(mags[k])])
        if not m.size:
            continue
        n_ge = (m.size - np.searchsorted(m, grid, side="left")) / len(sets[k])
        b = b_value_aki_utsu(m, mc, delta_m)
        err = b_value_shi_bolt_error(m[m >= mc - delta_m / 2 - 1e-9], b)
        b_text = f"b = {b:.2f} ± {err:.2f}" if np.isfinite(b) else "b undefined"
        ax.plot(grid, np.where(n_ge > 0, n_ge, np.nan), drawstyle="steps-post", **SET_STYLE[k],
                label=f"{SET_LABEL[k]}  ({b_text}, {m.size} events)")
    if not keys:
        _no_data(ax)
    ax.axvline(mc, color="grey", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    if keys:
        _legend(ax, loc="upper right")
    return _finish(fig, ax, xlabel="magnitude m", ylabel="events per window with magnitude ≥ m",
                   panel_title="Magnitude–frequency (cumulative)", title=title, path=path, both_grids=True)


def _log_dt(windows: list[pd.DataFrame]) -> np.ndarray:
    parts = [np.diff(_sorted_times(w)) for w in windows if len(w) > 1]
    dt = np.concatenate(parts) if parts else np.zeros(0)
    dt = dt[np.isfinite(dt)]
    return np.log10(np.maximum(dt, MIN_DT_DAYS))


def plot_interevent_times(sets, *, path: Path, title: str) -> str:
    """Densities of log10 inter-event times (days) within windows, on common bins."""
    fig = _new_figure()
    ax = fig.subplots()
    keys = _present(sets)
    logs = {k: _log_dt(sets[k]) for k in keys}
    logs = {k: v for k, v in logs.items() if v.size}
    if logs:
        lo = min(np.quantile(v, 0.002) for v in logs.values())
        hi = max(np.quantile(v, 0.998) for v in logs.values())
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, 61)
        for k, v in logs.items():
            density, _ = np.histogram(np.clip(v, lo, hi), bins=bins, density=True)
            ax.stairs(density, bins, **SET_STYLE[k], label=f"{SET_LABEL[k]}  ({v.size} intervals)")
        _legend(ax, loc="upper left")
    else:
        _no_data(ax)
    return _finish(fig, ax, xlabel="log10 inter-event time [days]", ylabel="probability density [per log10 day]",
                   panel_title="Inter-event times within windows", title=title, path=path)


def _durations(windows: list[pd.DataFrame]) -> np.ndarray:
    d = np.array([np.nanmax(np.asarray(w["time"], float)) for w in windows if len(w)], dtype=float)
    return d[np.isfinite(d)]


def plot_cumulative_counts(sets, *, path: Path, title: str, n_grid: int = 200) -> str:
    """Mean cumulative count N(t) of events since the window start, with the 10-90 % band across windows.

    The time axis runs to the 95th percentile of the held-out windows' last event times (days).
    """
    fig = _new_figure()
    ax = fig.subplots()
    keys = _present(sets)
    reference = _durations(sets["H"]) if "H" in keys else np.zeros(0)
    if not reference.size:
        reference = np.concatenate([_durations(sets[k]) for k in keys]) if keys else np.zeros(0)
    t_max = float(np.quantile(reference, 0.95)) if reference.size else 0.0
    if keys and t_max > 0:
        grid = np.linspace(0.0, t_max, n_grid)
        for k in keys:
            counts = np.array([np.searchsorted(_sorted_times(w), grid, side="right") for w in sets[k]], dtype=float)
            lo, hi = np.quantile(counts, [0.1, 0.9], axis=0)
            style = SET_STYLE[k]
            ax.fill_between(grid, lo, hi, color=style["color"], alpha=0.12 if k != "H" else 0.08, linewidth=0)
            ax.plot(grid, counts.mean(axis=0), **style, label=f"{SET_LABEL[k]}  ({len(counts)} windows)")
        ax.set_xlim(0, t_max)
        ax.set_ylim(bottom=0)
        _legend(ax, loc="lower right")
    else:
        _no_data(ax)
    return _finish(fig, ax, xlabel="time since window start [days]", ylabel="cumulative number of events",
                   panel_title="Cumulative counts: mean and 10–90 % band across windows", title=title, path=path)


def _after_largest(windows: list[pd.DataFrame]) -> np.ndarray:
    """Times (days) after each window's largest event (first on ties) of the later events, pooled."""
    parts = []
    for w in windows:
        if len(w) < 2:
            continue
        t = np.asarray(w["time"], float)
        m = np.asarray(w["magnitude"], float)
        if not np.isfinite(m).any():
            continue
        t0 = t[int(np.nanargmax(m))]
        dt = t - t0
        parts.append(dt[dt > 0])
    return np.concatenate(parts) if parts else np.zeros(0)


def plot_omori_decay(sets, *, path: Path, title: str, reference_p: float = 1.1) -> str:
    """Stacked rate of events after each window's largest event, events/day per window, log-log.

    A reference line t^-p (p = ``reference_p``) is drawn through the middle of the held-out curve.
    """
    fig = _new_figure()
    ax = fig.subplots()
    keys = _present(sets)
    after = {k: _after_largest(sets[k]) for k in keys}
    after = {k: v for k, v in after.items() if v.size}
    if after:
        lo = max(min(np.quantile(v, 0.005) for v in after.values()), MIN_DT_DAYS)
        hi = max(v.max() for v in after.values())
        if hi <= lo * 1.01:
            hi = lo * 10
        bins = np.geomspace(lo, hi, 31)
        mids = np.sqrt(bins[1:] * bins[:-1])
        curves = {}
        for k, v in after.items():
            n, _ = np.histogram(v, bins=bins)
            rate = n / np.diff(bins) / len(sets[k])
            curves[k] = np.where(n > 0, rate, np.nan)
            ax.plot(mids, curves[k], marker="o", markersize=3, **SET_STYLE[k],
                    label=f"{SET_LABEL[k]}  ({v.size} events)")
        anchor = curves.get("H", next(iter(curves.values())))
        ok = np.flatnonzero(np.isfinite(anchor))
        if ok.size >= 2:
            # Over the later two thirds of the curve (the early part is the flat Omori c regime),
            # through the held-out rate at its middle.
            i = ok[len(ok) // 2]
            span = mids[ok[len(ok) // 3]:ok[-1] + 1]
            ref = anchor[i] * (span / mids[i]) ** (-reference_p)
            ax.plot(span, ref, color="#2ca02c", linestyle=":", linewidth=1.5,
                    label=f"reference slope $t^{{-{reference_p:g}}}$ (Omori p = {reference_p:g})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _legend(ax, loc="lower left")
    else:
        _no_data(ax)
    return _finish(fig, ax, xlabel="time since the window's largest event [days]", ylabel="event rate [events per day per window]",
                   panel_title="Aftershock decay after each window's largest event (stacked)", title=title, path=path, both_grids=True)


def plot_comparison_figures(sets: dict[str, list[pd.DataFrame]], *, mc: float, outdir: str | os.PathLike,
                            title: str, delta_m: float = 0.0, reference_p: float = 1.1) -> dict[str, str]:
    """PNGs comparing the window sets S, H, A, P (any subset) in ``outdir``; returns {figure name: path}.

    Each window is a DataFrame with time (days since the window start), magnitude, x and y (km).
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(sets) - set(SETS))
    if unknown:
        raise ValueError(f"plot_comparison_figures: unknown window sets {unknown}; expected keys among {list(SETS)}")
    return {
        "magnitude_frequency": plot_magnitude_frequency(sets, mc=mc, path=outdir / "magnitude_frequency.png",
                                                        title=title, delta_m=delta_m),
        "interevent_times": plot_interevent_times(sets, path=outdir / "interevent_times.png", title=title),
        "cumulative_counts": plot_cumulative_counts(sets, path=outdir / "cumulative_counts.png", title=title),
        "omori_decay": plot_omori_decay(sets, path=outdir / "omori_decay.png", title=title, reference_p=reference_p),
    }


# ------------------------------------------------------------------------------------------ HTML bits

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #222;
       max-width: 1240px; margin: 0 auto; padding: 0 24px 48px; line-height: 1.45; }
h1 { font-size: 1.55em; margin: 24px 0 4px; }
h2 { font-size: 1.2em; margin-top: 32px; border-bottom: 2px solid #ddd; padding-bottom: 3px; }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
.sub { color: #666; margin: 0 0 16px; font-size: 0.95em; word-break: break-all; }
.verdict { display: flex; gap: 20px; align-items: center; background: #f6f7f9; border: 1px solid #dde;
           border-radius: 8px; padding: 14px 18px; }
.score { text-align: center; min-width: 120px; border-radius: 8px; padding: 8px 10px; }
.score .num { font-size: 2em; font-weight: 700; line-height: 1.1; }
.score .lbl { font-size: 0.8em; color: #444; }
table { border-collapse: collapse; font-size: 0.88em; margin: 6px 0 12px; }
th, td { border: 1px solid #d8d8d8; padding: 3px 7px; }
th { background: #f0f1f4; text-align: center; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.txt { text-align: left; }
td.verdict-cell { max-width: 560px; font-size: 0.95em; }
details { margin: 4px 0 10px; }
summary { cursor: pointer; color: #1f5fa8; }
tr.group td { background: #e9edf5; font-weight: 600; text-align: left; }
tr.best td { background: #fff8d6; }
tr.best td.skill, tr.best td.score-cell { background: inherit; }
th.ref, td.ref { border-left: 2px solid #aaa; }
.err { color: #777; font-size: 0.9em; }
.desc { color: #777; font-size: 0.85em; }
.skill { border-radius: 3px; }
td.skill, span.skill { font-weight: 600; text-align: right; }
span.skill { padding: 1px 6px; font-size: 0.88em; white-space: nowrap; }
.good { background: #c8e6c0 !important; color: #1b4d14; }
.partial { background: #fbe3a4 !important; color: #6b4a00; }
.poor { background: #f6c2bd !important; color: #7a1410; }
.na { background: #eeeeee !important; color: #777; }
.kv th { text-align: left; background: #f6f7f9; font-weight: 500; }
.scroll { overflow-x: auto; max-width: 100%; }
h4 { font-size: 0.95em; margin: 12px 0 4px; }
.grid2 { display: flex; flex-wrap: wrap; gap: 28px; align-items: flex-start; }
figure { margin: 18px 0 26px; }
figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption { color: #444; font-size: 0.9em; margin-top: 4px; max-width: 1000px; }
.note { color: #555; font-size: 0.92em; max-width: 1000px; }
.missing { color: #a33; }
a { color: #1f5fa8; }
footer { margin-top: 40px; color: #888; font-size: 0.8em; }
"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _as_number(value: Any) -> float | None:
    """A finite float, or None for anything that is not a number (bools excluded)."""
    if isinstance(value, (bool, np.bool_)) or _is_missing(value):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fmt(value: Any, digits: int = 3) -> str:
    """Short text for a table cell: NaN/None as a dash, floats to ``digits`` significant digits."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(fmt(v, digits) for v in value)
    if isinstance(value, dict):
        return json.dumps(to_jsonable(value))
    if _is_missing(value):
        return "—"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}".replace(",", " ") if abs(int(value)) >= 10000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if not math.isfinite(x):
            return "∞" if x > 0 else ("−∞" if x < 0 else "—")
        if x == 0:
            return "0"
        if x == int(x) and abs(x) < 1e6:
            return str(int(x))
        if abs(x) >= 1e5 or abs(x) < 1e-3:
            return f"{x:.{digits - 1}e}"
        if abs(x) >= 10 ** (digits - 1):
            return f"{x:.0f}"
        return f"{x:.{digits}g}"
    return str(value)


def skill_class(skill: Any) -> str:
    """'good' (≥ 0.75, at the floor), 'partial', 'poor' (≤ 0.25, no better than Poisson) or 'na'."""
    x = _as_number(skill)
    if x is None:
        return "na"
    if x >= SKILL_GOOD:
        return "good"
    if x > SKILL_POOR:
        return "partial"
    return "poor"


def _cell(value: Any) -> str:
    if _as_number(value) is not None or _is_missing(value):
        return f"<td class='num'>{_esc(fmt(value))}</td>"
    return f"<td class='txt'>{_esc(fmt(value))}</td>"


def _skill_cell(value: Any, extra_class: str = "") -> str:
    cls = skill_class(value)
    return f"<td class='num skill {cls} {extra_class}'>{_esc(fmt(value, 2))}</td>"


def _image_uri(path: str | os.PathLike) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"


def _png_uri_of(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{_esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        f"<footer>Generated by etasvae {_esc(__version__)}. Self-contained page: figures are embedded.</footer>\n"
        "</body>\n</html>\n"
    )


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts as (dotted key, value) pairs; lists stay values."""
    if isinstance(obj, dict):
        out: list[tuple[str, Any]] = []
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            out.extend(_flatten(v, key) if isinstance(v, dict) and v else [(key, v)])
        return out
    return [(prefix, obj)]


def _kv_table(items: Iterable[tuple[str, Any]], key_header: str = "", value_header: str = "") -> str:
    rows = []
    for key, value in items:
        rows.append(f"<tr><th>{_esc(key)}</th>{_cell(value)}</tr>")
    if not rows:
        return "<p class='note'>none recorded</p>"
    head = (f"<tr><th>{_esc(key_header)}</th><th>{_esc(value_header)}</th></tr>" if key_header or value_header else "")
    return f"<table class='kv'>{head}{''.join(rows)}</table>"


def _score_badge(score: Any, label: str = "overall score") -> str:
    cls = skill_class(score)
    return (f"<div class='score {cls}'><div class='num'>{_esc(fmt(score, 2))}</div>"
            f"<div class='lbl'>{_esc(label)}</div></div>")


# ------------------------------------------------------------------------------------------ model page


def _group_order(groups: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(groups))
    known = [g for g in GROUP_ORDER if g in present]
    return known + [g for g in present if g not in GROUP_ORDER]


def _value_cell(value: Any, err: Any) -> str:
    if _as_number(value) is not None and _as_number(err) is not None:
        return f"<td class='num'>{_esc(fmt(value))} <span class='err'>± {_esc(fmt(err, 2))}</span></td>"
    return _cell(value)


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


SUMMARY_SKIP = {"verdict", "overall_score", "statistics", "figures", "config_id", "vae_id", "settings", "health"}


def render_model_page(path: str | os.PathLike, *, config_id: str, vae_id: str, settings: dict,
                      metrics: pd.DataFrame, summary: dict, latent_metrics: dict, clipping: dict,
                      images: dict[str, str], extra_html: str = "") -> None:
    """Write one self-contained HTML page for a config x VAE setting (atomically); ``extra_html`` (e.g.
    the ETAS inversion table) follows the statistics."""
    verdict = summary.get("verdict") or "No verdict was computed."
    score = summary.get("overall_score")
    facts = [(k, v) for k, v in _flatten({k: v for k, v in summary.items() if k not in SUMMARY_SKIP})]
    settings_items = [(k, fmt(v) if isinstance(v, (list, tuple)) else v) for k, v in (settings or {}).items()]
    body = [
        f"<h1>How close is the VAE to ETAS? — {_esc(config_id)}</h1>",
        f"<p class='sub'>config <b>{_esc(config_id)}</b> · VAE setting <b>{_esc(vae_id)}</b></p>",
        f"<div class='verdict'>{_score_badge(score)}<div><b>Verdict.</b> {_esc(verdict)}</div></div>",
        "<p class='note'>The overall score is the median skill over the informative statistics below (each "
        "clipped to [−1, 1]): 1 = as good as a second ETAS sample, 0 = no better than a Poisson process "
        "without aftershocks.</p>",
        "<h2>Settings</h2>",
        "<div class='grid2'>",
        f"<div><h3>VAE setting</h3>{_kv_table(settings_items, 'setting', 'value')}</div>",
        f"<div><h3>Run facts</h3>{_kv_table(facts, 'quantity', 'value')}</div>" if facts else "",
        "</div>",
        "<h2>Statistics: synthetic (S) against held-out ETAS (H)</h2>",
        f"<p class='note'>{SKILL_LEGEND}</p>",
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
    _write_text(path, _page(f"etasvae — {config_id} / {vae_id}", "\n".join(b for b in body if b)))


# ------------------------------------------------------------------------------------------ summary


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
    overall score and rank within config (1 = best; missing scores rank last)."""
    stat_names: list[str] = []
    for s in summaries:
        for name in (s.get("statistics") or {}):
            if name not in stat_names:
                stat_names.append(name)
    rows = []
    for s in summaries:
        cfg, vid = str(s["config_id"]), str(s["vae_id"])
        row: dict[str, Any] = {"config_id": cfg, "vae_id": vid}
        for k, v in (etas.get(cfg) or {}).items():
            row[f"etas_{k}"] = _setting_text(v)
        for k, v in (vaes.get(vid) or s.get("settings") or {}).items():
            row[f"vae_{k}"] = _setting_text(v)
        score = _as_number(s.get("overall_score"))
        row["overall_score"] = np.nan if score is None else score
        stats = s.get("statistics") or {}
        for name in stat_names:
            entry = stats.get(name) or {}
            for key in ("value_S", "skill"):
                x = _as_number(entry.get(key))
                row[f"{name}.{key}"] = np.nan if x is None else x
        row["verdict"] = s.get("verdict", "")
        row.update(s.get("extra_columns") or {})
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=["config_id", "vae_id", "overall_score", "rank", "verdict"])
    table["overall_score"] = pd.to_numeric(table["overall_score"], errors="coerce")
    table["rank"] = (table.groupby("config_id", sort=False)["overall_score"]
                     .rank(ascending=False, method="min", na_option="bottom").astype(int))
    front = ["config_id", "vae_id", "rank", "overall_score"]
    table = table[front + [c for c in table.columns if c not in front]]
    return table.sort_values(["config_id", "rank", "vae_id"], kind="stable").reset_index(drop=True)


def _score_figure(table: pd.DataFrame, varied: list[str]) -> str | None:
    """Embedded PNG: overall score against each varied VAE setting, one line per config."""
    if not varied or table.empty:
        return None
    fig = _new_figure(figsize=(min(max(4.2 * len(varied), 6.0), 13), 3.8))
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
    return _png_uri_of(fig)


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
    "P with the same rate and magnitudes (the naive baseline): 1 is as good as ETAS itself, 0 no better than "
    "Poisson. The <b>overall score</b> (<code>etasvae.evaluate.overall_score</code>) is the median skill over "
    "the informative statistics (those on which the Poisson baseline is farther from H than the floor), each "
    "clipped to [−1, 1] so that one catastrophic statistic cannot dominate. Settings are ranked by it within "
    "each config, the best highlighted (★).</p>"
    "<p class='note'><b>Fine-tuning.</b> Compare rows that differ in one setting. If a higher β raises the "
    "score, the model was overfitting or its latent space was disorganised; if it lowers it (and the model "
    "page shows few active latent units), the KL term is collapsing the posterior: lower β or use a KL "
    "warm-up. A larger latent size helps only while the extra units stay active. If the per-statistic table "
    "shows poor aftershock or inter-event-time skills for every β and size, try the other representation "
    "(event windows versus binned counts) or the Gaussian likelihood. Open a model page (link) for the "
    "figures behind a score.</p>"
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
                   etas: dict[str, dict], vaes: dict[str, dict]) -> pd.DataFrame:
    """Write the run summary: a CSV (summary_table) and a self-contained HTML page ranking the VAE settings
    of each config by overall score, with links to the model pages ({config_id}/{vae_id}.html, relative to
    the summary). Returns the table."""
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

    body = [
        "<h1>etasvae summary: which VAE setting generates the most ETAS-like catalogs?</h1>",
        f"<p class='sub'>{len(table)} models · {table['config_id'].nunique() if len(table) else 0} configs · "
        f"{len(ids)} VAE settings{' · varied: ' + _esc(', '.join(varied)) if varied else ''}</p>",
        SUMMARY_HELP,
    ]
    uri = _score_figure(table, varied)
    if uri:
        body.append(f"<figure><img alt='overall score against VAE settings' src='{uri}'><figcaption>Each "
                    "panel: overall score (higher is better) against one VAE setting that varies in this run, one "
                    "colour per config; points are joined where only that setting varies between them. Dotted "
                    f"lines: {SKILL_GOOD} (at the floor) and {SKILL_POOR} (no better than Poisson).</figcaption></figure>")
    for cfg in dict.fromkeys(table["config_id"]) if len(table) else []:
        part = table[table["config_id"] == cfg]
        body.append(f"<h2>Config {_esc(cfg)}</h2>")
        body.append(_config_line(cfg, etas.get(cfg)))
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
            cells.append(_skill_cell(r["overall_score"], "score-cell"))
            full = str(r.get("verdict") or "")
            cells.append(f"<td class='txt verdict-cell' title='{_esc(full)}'>{_esc(_first_sentence(full))}</td>")
            rows.append(f"<tr{best}>{''.join(cells)}</tr>")
        body.append(f"<table class='ranking'>{''.join(rows)}</table>")
        body.append(_skill_matrix_html(part, stat_names, groups, shown))
    body.append("<p class='note'>All numbers: <a href='" + _esc(quote(Path(csv_path).name)) + "'>"
                + _esc(Path(csv_path).name) + "</a> (one row per config × VAE setting).</p>")
    _write_text(html_path, _page("etasvae summary", "\n".join(body)))
    return table
