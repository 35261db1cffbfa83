"""Per-window descriptive statistics, vectorised over events and windows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .. import stats
from .stacking import (
    Stacked,
    aftershocks,
    group_mean_std,
    inter_event_times,
    log10_dr,
    log10_dt,
    log10_r_main,
    mean_log10_nn,
    stack_windows,
)

SUMMARY_FEATURES = (
    "n_events",
    "log10_duration",
    "mean_magnitude",
    "max_magnitude",
    "cv",
    "mean_log10_dt",
    "std_log10_dt",
    "bath_gap",
    "mean_log10_dr",
    "mean_log10_r_main",
    "mean_log10_nn",
)
"""Per-window summaries used as the feature vector of a whole window (MMD and classifier test)."""


def window_summaries(
    windows: list[pd.DataFrame] | Stacked,
    mc: float,
    *,
    delta_m: float = 0.0,
    min_omori_events: int = 10,
) -> pd.DataFrame:
    """One row per window of descriptive statistics, vectorised over events and windows.

    Columns: n_events, duration [d], log10_duration, rate [1/d], b_value (Aki–Utsu), b_value_err
    (Shi–Bolt), mean_magnitude, max_magnitude, cv (of inter-event times), mean_log10_dt, std_log10_dt,
    omori_p, omori_c [d], omori_n (Omori–Utsu MLE after the largest event, grid search, NaN when fewer
    than ``min_omori_events`` follow it), bath_gap (largest minus largest later magnitude), mean_log10_dr
    (consecutive distances, km), mean_log10_r_main (distance to the largest event, km), mean_log10_nn
    (nearest-neighbour distance, km). NaN where a window has too few events. ``windows`` may also be
    the output of :func:`stack_windows`.
    """
    st = windows if isinstance(windows, Stacked) else stack_windows(windows)
    G = st.n_windows
    out = pd.DataFrame({"n_events": st.n, "duration": st.duration})
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log10_duration"] = np.log10(np.where(st.duration > 0, st.duration, np.nan))
        out["rate"] = st.n / np.where(st.duration > 0, st.duration, np.nan)
    _magnitude_summaries(out, st, mc, delta_m)
    _time_summaries(out, st)
    _aftershock_summaries(out, st, min_omori_events)
    im = aftershocks(st).main
    _, out["mean_log10_dr"], _ = group_mean_std(*log10_dr(st), G)
    _, out["mean_log10_r_main"], _ = group_mean_std(*log10_r_main(st, im), G)
    out["mean_log10_nn"] = mean_log10_nn(st)
    return out


def _magnitude_summaries(out: pd.DataFrame, st: Stacked, mc: float, delta_m: float) -> None:
    """b_value (Aki–Utsu) and its Shi–Bolt error, mean and largest magnitude per window."""
    keep = st.m >= mc - delta_m / 2 - 1e-9
    cnt, mean_m, sd_m = group_mean_std(st.m[keep], st.g[keep], st.n_windows)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = stats.b_value_from_mean(mean_m, mc, delta_m, cnt)
        # Shi & Bolt (1982) with Σ(m - m̄)²/(n(n-1)) = sd²/n
        out["b_value"] = b
        out["b_value_err"] = stats.LN10 * b**2 * sd_m / np.sqrt(cnt)
    out["mean_magnitude"] = mean_m
    im = aftershocks(st).main
    max_m = np.full(st.n_windows, np.nan)
    max_m[im >= 0] = st.m[im[im >= 0]]
    out["max_magnitude"] = max_m


def _time_summaries(out: pd.DataFrame, st: Stacked) -> None:
    """Coefficient of variation, mean and spread of log10 inter-event times per window."""
    dt, gdt = inter_event_times(st)
    _, mean_dt, sd_dt = group_mean_std(dt, gdt, st.n_windows)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cv"] = np.where(mean_dt > 0, sd_dt / mean_dt, np.nan)
    _, out["mean_log10_dt"], out["std_log10_dt"] = group_mean_std(log10_dt(dt), gdt, st.n_windows)


def _aftershock_summaries(out: pd.DataFrame, st: Stacked, min_omori_events: int) -> None:
    """Omori–Utsu fit after each window's largest event, and its Båth gap."""
    af = aftershocks(st)
    fit = stats.omori_utsu_mle_grid(
        af.t_rel[af.after], st.g[af.after], af.remaining, min_events=min_omori_events
    )
    out["omori_p"], out["omori_c"], out["omori_n"] = fit["p"], fit["c"], fit["n"]
    largest_after = np.full(st.n_windows, -np.inf)
    np.maximum.at(largest_after, st.g[af.after], st.m[af.after])
    max_m = out["max_magnitude"].to_numpy()
    out["bath_gap"] = np.where(np.isfinite(largest_after), max_m - largest_after, np.nan)
