"""Figures comparing the window sets S, H, A, P of an evaluation (one colour per set throughout).

    S  synthetic windows from the VAE      SET_STYLE["S"]
    H  held-out ETAS windows (reference)   black
    A  training ETAS windows (noise floor) grey, dashed
    P  Poisson baseline (naive)            blue

For a real catalog (dataset) H and A are its held-out and training periods, and the legends say so.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..plotting import new_figure, save_png
from ..stats import MIN_DT_DAYS, b_value_and_error
from .stacking import aftershocks, distinct_events, log10_dt, stack_windows

SETS = ("S", "H", "A", "P")
SET_LABEL = {
    "S": "S: synthetic (VAE)",
    "H": "H: held-out ETAS",
    "A": "A: training ETAS (floor)",
    "P": "P: Poisson (naive)",
}
# A real catalog (dataset): H is its held-out period and A its training period, not ETAS.
REAL_SET_LABEL = {
    **SET_LABEL,
    "H": "H: held-out period",
    "A": "A: training period (floor)",
}
SET_STYLE = {
    "S": {"color": "#d95f02", "linestyle": "-", "linewidth": 2.0},
    "H": {"color": "black", "linestyle": "-", "linewidth": 1.6},
    "A": {"color": "#8c8c8c", "linestyle": "--", "linewidth": 1.4},
    "P": {"color": "#1f77b4", "linestyle": "-", "linewidth": 1.4},
}
# Draw order: the reference last, so it stays visible on top.
PLOT_ORDER = ("A", "P", "S", "H")


def _present(sets: dict[str, list[pd.DataFrame]]) -> list[str]:
    """Set keys in draw order that hold at least one event."""
    return [k for k in PLOT_ORDER if k in sets and any(len(w) for w in sets[k])]


def _pooled(windows: list[pd.DataFrame], column: str) -> np.ndarray:
    parts = [np.asarray(w[column], dtype=float) for w in windows if len(w)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _distinct_magnitudes(windows: list[pd.DataFrame]) -> np.ndarray:
    """The finite magnitudes of a set's events, an event that windows share (same ``event_key``) once."""
    st = stack_windows(windows)
    m = st.m[distinct_events(st)]
    return m[np.isfinite(m)]


def _sorted_times(window: pd.DataFrame) -> np.ndarray:
    return np.sort(np.asarray(window["time"], dtype=float))



def _finish(fig, ax, *, legend: str | None, xlabel: str, ylabel: str, panel_title: str, title: str, path,
            both_grids: bool = False, labels: dict[str, str] = SET_LABEL) -> str:
    """Add the legend at ``legend`` (None: the figure has no data, say so), label, title, grid and save
    a comparison figure; returns the path."""
    if legend is None:
        _no_data(ax)
    else:
        _legend(ax, labels, loc=legend)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(panel_title)
    ax.grid(alpha=0.3, which="both" if both_grids else "major")
    fig.suptitle(title)
    return save_png(fig, path)

def _legend(ax, set_labels: dict[str, str] = SET_LABEL, **kwargs) -> None:
    """Legend with the sets in the order S, H, A, P, then anything else (reference lines)."""
    handles, labels = ax.get_legend_handles_labels()
    rank = {set_labels[k]: i for i, k in enumerate(SETS)}
    order = sorted(range(len(labels)), key=lambda i: next((r for lab, r in rank.items() if labels[i].startswith(lab)), 99))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], fontsize=9, **kwargs)


def _no_data(ax) -> None:
    ax.text(0.5, 0.5, "no events", transform=ax.transAxes, ha="center", va="center", color="grey")


def plot_magnitude_frequency(sets, *, mc: float, path: Path, title: str, delta_m: float = 0.0, labels: dict[str, str] = SET_LABEL) -> str:
    """Cumulative magnitude-frequency N(≥ m) per window (log scale), Aki–Utsu b ± Shi–Bolt error in the legend."""
    fig = new_figure()
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
        distinct = _distinct_magnitudes(sets[k])
        b, err = b_value_and_error(distinct, mc, delta_m)
        b_text = f"b = {b:.2f} ± {err:.2f}" if np.isfinite(b) else "b undefined"
        ax.plot(grid, np.where(n_ge > 0, n_ge, np.nan), drawstyle="steps-post", **SET_STYLE[k],
                label=f"{labels[k]}  ({b_text}, {distinct.size} events)")
    ax.axvline(mc, color="grey", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    return _finish(fig, ax, legend="upper right" if keys else None, xlabel="magnitude m", ylabel="events per window with magnitude ≥ m",
                   panel_title="Magnitude–frequency (cumulative)", title=title, path=path, labels=labels, both_grids=True)


def _log_dt(windows: list[pd.DataFrame]) -> np.ndarray:
    parts = [np.diff(_sorted_times(w)) for w in windows if len(w) > 1]
    dt = np.concatenate(parts) if parts else np.zeros(0)
    return log10_dt(dt[np.isfinite(dt)])


def _figure_of(sets, per_set):
    """A new figure with one axis, and ``per_set(windows)`` of every set that has events, where not empty."""
    fig = new_figure()
    values = {k: per_set(sets[k]) for k in _present(sets)}
    return fig, fig.subplots(), {k: v for k, v in values.items() if v.size}


def plot_interevent_times(sets, *, path: Path, title: str, labels: dict[str, str] = SET_LABEL) -> str:
    """Densities of log10 inter-event times (days) within windows, on common bins."""
    fig, ax, logs = _figure_of(sets, _log_dt)
    if logs:
        lo = min(np.quantile(v, 0.002) for v in logs.values())
        hi = max(np.quantile(v, 0.998) for v in logs.values())
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, 61)
        for k, v in logs.items():
            density, _ = np.histogram(np.clip(v, lo, hi), bins=bins, density=True)
            ax.stairs(density, bins, **SET_STYLE[k], label=f"{labels[k]}  ({v.size} intervals)")
    return _finish(fig, ax, legend="upper left" if logs else None, xlabel="log10 inter-event time [days]", ylabel="probability density [per log10 day]",
                   panel_title="Inter-event times within windows", title=title, path=path, labels=labels)


def _durations(windows: list[pd.DataFrame]) -> np.ndarray:
    d = np.array([np.nanmax(np.asarray(w["time"], float)) for w in windows if len(w)], dtype=float)
    return d[np.isfinite(d)]


def plot_cumulative_counts(sets, *, path: Path, title: str, n_grid: int = 200, labels: dict[str, str] = SET_LABEL) -> str:
    """Mean cumulative count N(t) of events since the window start, with the 10-90 % band across windows.

    The time axis runs to the 95th percentile of the held-out windows' last event times (days).
    """
    fig = new_figure()
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
            ax.plot(grid, counts.mean(axis=0), **style, label=f"{labels[k]}  ({len(counts)} windows)")
        ax.set_xlim(0, t_max)
        ax.set_ylim(bottom=0)
    return _finish(fig, ax, legend="lower right" if keys and t_max > 0 else None, xlabel="time since window start [days]", ylabel="cumulative number of events",
                   panel_title="Cumulative counts: mean and 10–90 % band across windows", title=title, path=path, labels=labels)


def _after_largest(windows: list[pd.DataFrame]) -> np.ndarray:
    """Times (days) after each window's largest event (first on ties) of the later events, pooled."""
    af = aftershocks(stack_windows(windows))
    dt = af.t_rel[af.after]
    return dt[dt > 0]




def plot_omori_decay(sets, *, path: Path, title: str, reference_p: float = 1.1, labels: dict[str, str] = SET_LABEL) -> str:
    """Stacked rate of events after each window's largest event, events/day per window, log-log.

    A reference line t^-p (p = ``reference_p``) is drawn through the middle of the held-out curve.
    """
    fig, ax, after = _figure_of(sets, _after_largest)
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
                    label=f"{labels[k]}  ({v.size} events)")
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
    return _finish(fig, ax, legend="lower left" if after else None, xlabel="time since the window's largest event [days]", ylabel="event rate [events per day per window]",
                   panel_title="Aftershock decay after each window's largest event (stacked)", title=title, path=path, labels=labels, both_grids=True)


def plot_comparison_figures(sets: dict[str, list[pd.DataFrame]], *, mc: float, outdir: str | os.PathLike,
                            title: str, delta_m: float = 0.0, reference_p: float = 1.1, real: bool = False,
                            synthetic_label: str | None = None) -> dict[str, str]:
    """PNGs comparing the window sets S, H, A, P (any subset) in ``outdir``; returns {figure name: path}.

    Each window is a DataFrame with time (days since the window start), magnitude, x and y (km), and for
    the sets cut from catalogs ``event_key`` (the b-value in the legend counts a shared event once).
    ``real``: H and A are a real catalog's held-out and training periods (the legends say so).
    ``synthetic_label``: the legend of S where it is not the VAE's (e.g. a dataset's ETAS fit simulated).
    """
    labels = REAL_SET_LABEL if real else SET_LABEL
    if synthetic_label:
        labels = {**labels, "S": synthetic_label}
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(sets) - set(SETS))
    if unknown:
        raise ValueError(f"plot_comparison_figures: unknown window sets {unknown}; expected keys among {list(SETS)}")
    return {
        "magnitude_frequency": plot_magnitude_frequency(sets, mc=mc, path=outdir / "magnitude_frequency.png",
                                                        title=title, delta_m=delta_m, labels=labels),
        "interevent_times": plot_interevent_times(sets, path=outdir / "interevent_times.png", title=title, labels=labels),
        "cumulative_counts": plot_cumulative_counts(sets, path=outdir / "cumulative_counts.png", title=title, labels=labels),
        "omori_decay": plot_omori_decay(sets, path=outdir / "omori_decay.png", title=title, reference_p=reference_p, labels=labels),
    }
