"""The statistics of an evaluation: each one compares the sets S, A and P with H and returns a
:class:`Comparison`, the way pyCSEP's ``number_test`` returns an evaluation result.

Set names and the skill are defined in ``docs/design.md`` (section *Evaluation*). Every function takes
``data``, a dict {"S", "H", "A", "P"} of :class:`SetData` in that order, and returns the statistic's value
on each set where it means something, its standard error where known, the distance d_X of each set X in
(S, A, P) to H and, where there is a two-sample test, its p-value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import stats
from .stacking import (
    Stacked,
    aftershocks,
    distinct_events,
    distinct_mainshock_windows,
    inter_event_times,
    log10_dr,
    log10_dt,
    log10_r_main,
    stack_windows,
)
from .summaries import window_summaries

SETS = ("S", "H", "A", "P")
OTHERS = ("S", "A", "P")

RESOLUTION_LEVEL = 0.05
"""A Comparison's ``resolution`` is the (1 - RESOLUTION_LEVEL) quantile of its distance d_S when S and H come
from the same process, at the sizes of S and H: a smaller d_S cannot be told from sampling noise, so a
statistic "at the floor" is so to within this figure. Where the statistic has no known sampling law
(the Omori and Fano fits, the pair correlation, W1, the CSEP KS distances), it is NaN and d_A (the floor
measured with a second sample at the same size) is the only guide."""


def ks_resolution(n: int, m: int, level: float = RESOLUTION_LEVEL) -> float:
    """Critical two-sample KS distance at ``level`` for samples of n and m independent values:
    c·sqrt((n + m)/(n·m)), c = sqrt(-ln(level/2)/2) (the asymptotic Kolmogorov quantile, 1.358 at 5 %).
    For pooled event samples whose values are dependent (inter-event times and distances of clustered
    events) the effective sizes are smaller and the true figure larger."""
    if n < 1 or m < 1:
        return np.nan
    return float(np.sqrt(-np.log(level / 2) / 2) * np.sqrt((n + m) / (n * m)))


def z_resolution(err_x: float, err_h: float, level: float = RESOLUTION_LEVEL) -> float:
    """Two-sided normal quantile of |θ_X - θ_H| for independent estimates with standard errors err_x, err_h:
    z_{1-level/2}·sqrt(err_x² + err_h²) (1.96·... at 5 %)."""
    return float(sps.norm.isf(level / 2) * np.hypot(err_x, err_h))


def mean_resolution(x: np.ndarray, h: np.ndarray, level: float = RESOLUTION_LEVEL) -> float:
    """:func:`z_resolution` of two means of per-window values (NaN values dropped): errors sd/sqrt(n)."""
    x, h = (np.asarray(a, float)[np.isfinite(a)] for a in (x, h))
    if x.size < 2 or h.size < 2:
        return np.nan
    return z_resolution(x.std(ddof=1) / np.sqrt(x.size), h.std(ddof=1) / np.sqrt(h.size), level)


@dataclass
class SetData:
    """Everything the statistics need from one window set, computed once."""

    st: Stacked
    summ: pd.DataFrame
    log_dt: np.ndarray
    log_dr: np.ndarray
    log_r_main: np.ndarray
    distinct: np.ndarray  # each event's first instance: overlapping windows of one catalog share events


def set_data(windows: list[pd.DataFrame], mc: float, delta_m: float, min_omori_events: int) -> SetData:
    """Stack a window set and compute its per-window summaries and pooled log times and distances."""
    st = stack_windows(windows)
    summ = window_summaries(st, mc, delta_m=delta_m, min_omori_events=min_omori_events)
    log_dt = log10_dt(inter_event_times(st)[0])
    log_r_main = log10_r_main(st, aftershocks(st).main)[0]
    return SetData(st, summ, log_dt, log10_dr(st)[0], log_r_main, distinct_events(st))


@dataclass
class Comparison:
    """One statistic of S, A and P against H: values and errors per set, distances and p-values to H."""

    statistic: str
    group: str
    distance: str
    values: dict = field(default_factory=dict)
    errs: dict = field(default_factory=dict)
    d: dict = field(default_factory=dict)
    p: dict = field(default_factory=dict)
    resolution: float = np.nan

    def row(self) -> dict:
        """One row of the comparison table (the column layout of metrics.csv)."""
        row = {"statistic": self.statistic, "group": self.group, "distance": self.distance}
        for k in SETS:
            row[f"value_{k}"] = self.values.get(k, np.nan)
            row[f"err_{k}"] = self.errs.get(k, np.nan)
        for k in OTHERS:
            row[f"d_{k}"] = self.d.get(k, np.nan)
            row[f"p_{k}"] = self.p.get(k, np.nan)
        row["resolution"] = self.resolution
        return row


def _value_comparison(statistic, group, distance, values, errs=None, p=None, transform=None) -> Comparison:
    """d_X = |f(value_X) - f(value_H)| for a statistic with one value per set."""
    f = transform or (lambda v: v)
    d = {k: abs(f(values[k]) - f(values["H"])) for k in OTHERS}
    return Comparison(statistic, group, distance, values, errs or {}, d, p or {})


def _ks_comparison(statistic, group, samples, values=None) -> Comparison:
    """d_X = two-sample KS distance of X's sample to H's, with its p-value."""
    res = {k: stats.ks_distance(samples[k], samples["H"]) for k in OTHERS}
    size = {k: int(np.isfinite(np.asarray(samples[k], float)).sum()) for k in ("S", "H")}
    return Comparison(
        statistic, group, "KS distance", values or {}, {}, {k: r[0] for k, r in res.items()}, {k: r[1] for k, r in res.items()},
        ks_resolution(size["S"], size["H"]),
    )


def _mean(values: np.ndarray) -> float:
    return float(np.mean(values)) if values.size else np.nan


def _nanmean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else np.nan


def _z_pvalue(a: float, sa: float, b: float, sb: float) -> float:
    z = abs(a - b) / np.sqrt(sa**2 + sb**2)
    return float(2 * sps.norm.sf(z)) if np.isfinite(z) else np.nan


def _z_test_comparison(statistic, group, distance, values, errs) -> Comparison:
    p = {k: _z_pvalue(values[k], errs[k], values["H"], errs["H"]) for k in OTHERS}
    out = _value_comparison(statistic, group, distance, values, errs, p)
    out.resolution = z_resolution(errs["S"], errs["H"])
    return out


# ------------------------------------------------------------------------------------------ magnitudes


def b_value_test(data: dict[str, SetData], mc: float, delta_m: float) -> Comparison:
    """Aki–Utsu b-value with Shi–Bolt error over the set's distinct events; d = |b - b_H|, z-test p."""
    fits = {k: stats.b_value_and_error(v.st.m[v.distinct], mc, delta_m) for k, v in data.items()}
    b = {k: f[0] for k, f in fits.items()}
    be = {k: f[1] for k, f in fits.items()}
    return _z_test_comparison("b_value", "magnitudes", "|b - b_H|", b, be)


def b_positive_test(data: dict[str, SetData], dmc: float, delta_m: float) -> Comparison:
    """b-positive of differences ≥ dmc within windows; d = |b+ - b+_H|, z-test p."""
    bp = {k: stats.b_positive(v.st.m, dmc, delta_m, groups=v.st.g) for k, v in data.items()}
    values = {k: r[0] for k, r in bp.items()}
    errs = {k: r[1] for k, r in bp.items()}
    return _z_test_comparison("b_positive", "magnitudes", "|b+ - b+_H|", values, errs)


def magnitude_ks_test(data: dict[str, SetData]) -> Comparison:
    """KS distance of the magnitudes of the set's distinct events."""
    mags = {k: v.st.m[v.distinct] for k, v in data.items()}
    return _ks_comparison("magnitude_ks", "magnitudes", mags, {k: _mean(m) for k, m in mags.items()})


def max_magnitude_ks_test(data: dict[str, SetData]) -> Comparison:
    """KS distance of the largest magnitude per window; value = its mean (the tail of the magnitudes)."""
    mx = {k: v.summ["max_magnitude"].to_numpy() for k, v in data.items()}
    mx = {k: m[np.isfinite(m)] for k, m in mx.items()}
    return _ks_comparison("max_magnitude_ks", "magnitudes", mx, {k: _mean(m) for k, m in mx.items()})


# ------------------------------------------------------------------------------------------ time


def log_dt_tests(data: dict[str, SetData]) -> list[Comparison]:
    """KS distance and W1 [log10 d] of the pooled log10 inter-event times."""
    logdt = {k: v.log_dt for k, v in data.items()}
    mean_logdt = {k: _mean(v) for k, v in logdt.items()}
    w1 = {k: stats.wasserstein(logdt[k], logdt["H"]) for k in OTHERS}
    return [
        _ks_comparison("log_dt_ks", "time", logdt, mean_logdt),
        Comparison("log_dt_wasserstein", "time", "W1 of log10 dt [log10 d]", mean_logdt, {}, w1),
    ]


def cv_test(data: dict[str, SetData]) -> Comparison:
    """Mean per-window coefficient of variation of inter-event times; d = |Δ|, KS p of per-window CVs."""
    cv = {k: v.summ["cv"].to_numpy() for k, v in data.items()}
    p = {k: stats.ks_distance(cv[k], cv["H"])[1] for k in OTHERS}
    out = _value_comparison("cv", "time", "|mean CV - mean CV_H|", {k: _nanmean(c) for k, c in cv.items()}, None, p)
    out.resolution = mean_resolution(cv["S"], cv["H"])
    return out


def log_duration_ks_test(data: dict[str, SetData]) -> Comparison:
    """KS distance of per-window log10 durations; value = median duration (days)."""
    median = {k: float(np.median(v.st.duration)) if v.st.n_windows else np.nan for k, v in data.items()}
    return _ks_comparison("log_duration_ks", "time", {k: v.summ["log10_duration"].to_numpy() for k, v in data.items()}, median)


def count_ks_test(data: dict[str, SetData]) -> Comparison:
    """KS distance of per-window event counts; value = mean count."""
    counts = {k: v.st.n.astype(float) for k, v in data.items()}
    return _ks_comparison("count_ks", "time", counts, {k: float(np.mean(v.st.n)) if v.st.n_windows else np.nan for k, v in data.items()})


def fano_test(data: dict[str, SetData], fano_bins: int) -> Comparison:
    """Fano factor of counts in bins of width median(H durations)/fano_bins; d = |Δlog10 F|."""
    width = float(np.median(data["H"].st.duration)) / fano_bins
    fano = {
        k: stats.fano_factor(stats.counts_in_bins(v.st.t, v.st.g, v.st.duration, width)) if width > 0 else np.nan
        for k, v in data.items()
    }
    return _value_comparison("fano", "time", "|log10 F - log10 F_H|", fano, transform=np.log10)


# ------------------------------------------------------------------------------------------ aftershocks


def stacked_omori(st: Stacked, min_events: int) -> stats.OmoriFit:
    """Omori–Utsu fit with common (c, p), one K per window, to the events after each window's largest; a
    mainshock that overlapping windows share is stacked once (``distinct_mainshock_windows``)."""
    af = aftershocks(st)
    seqs = np.split(af.t_rel[af.after], np.cumsum(np.bincount(st.g[af.after], minlength=st.n_windows))[:-1])
    if st.key is not None:
        keep = np.flatnonzero(distinct_mainshock_windows(st, af.main, af.remaining))
        seqs, remaining = [seqs[k] for k in keep], af.remaining[keep]
    else:
        remaining = af.remaining
    return stats.omori_utsu_mle(seqs, remaining, min_events=min_events)


def omori_tests(data: dict[str, SetData], min_omori_events: int) -> list[Comparison]:
    """Stacked Omori–Utsu p and c after each window's largest event; d = |Δp| and |Δlog10 c|."""
    om = {k: stacked_omori(v.st, min_omori_events) for k, v in data.items()}
    return [
        _value_comparison("omori_p", "aftershocks", "|p - p_H| (stacked fit)", {k: f.p for k, f in om.items()}),
        _value_comparison(
            "omori_c", "aftershocks", "|log10 c - log10 c_H| (stacked fit)", {k: f.c for k, f in om.items()}, transform=np.log10
        ),
    ]


def bath_gap_test(data: dict[str, SetData]) -> Comparison:
    """Mean Båth gap per window; d = |Δ|, KS p of per-window gaps."""
    bg = {k: v.summ["bath_gap"].to_numpy() for k, v in data.items()}
    p = {k: stats.ks_distance(bg[k], bg["H"])[1] for k in OTHERS}
    out = _value_comparison("bath_gap", "aftershocks", "|mean gap - mean gap_H|", {k: _nanmean(a) for k, a in bg.items()}, None, p)
    out.resolution = mean_resolution(bg["S"], bg["H"])
    return out


# ------------------------------------------------------------------------------------------ space


def distance_ks_tests(data: dict[str, SetData]) -> list[Comparison]:
    """KS distances of log10 distances between consecutive events and to each window's largest event."""
    return [
        _ks_comparison("interevent_distance_ks", "space", {k: v.log_dr for k, v in data.items()}),
        _ks_comparison("mainshock_distance_ks", "space", {k: v.log_r_main for k, v in data.items()}),
    ]


def _pair_fraction_below(st: Stacked, r: float | None, max_windows: int, rng: np.random.Generator):
    """Within-window pair distances: their 10 % quantile (r None) or the fraction below r (C(r))."""
    idx = np.flatnonzero(st.n >= 2)
    if idx.size > max_windows:
        idx = np.sort(rng.choice(idx, max_windows, replace=False))
    xy = np.column_stack([st.x, st.y])
    below = total = 0
    parts = []
    for k in idx:
        d = stats.pair_distances(*xy[st.start[k] : st.start[k] + st.n[k]].T)
        if r is None:
            parts.append(d)
        else:
            below += int(np.sum(d < r))
            total += d.size
    if r is None:
        return float(np.quantile(np.concatenate(parts), 0.1)) if parts else np.nan
    return below / total if total else np.nan


def pair_correlation_test(data: dict[str, SetData], max_windows: int, rng: np.random.Generator) -> Comparison:
    """Correlation integral C(r) at r = 10 % quantile of H's within-window pair distances; d = |ΔC|."""
    r = _pair_fraction_below(data["H"].st, None, max_windows, rng)
    cr = {k: _pair_fraction_below(v.st, r, max_windows, rng) for k, v in data.items()}
    return _value_comparison("pair_correlation", "space", f"|C(r) - C_H(r)|, r = {r:.3g} km", cr)
