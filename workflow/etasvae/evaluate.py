"""Comparing sets of windows: what "good" means (DESIGN §6).

A *window set* is a list of per-window event tables with columns time (days from the window start),
magnitude, x, y (km), in time order. A window's duration is ``df.attrs["duration"]`` when set, otherwise the
time of its last event (event windows end at an event).

Sets: S synthetic (the VAE), H held-out ETAS (the reference), A ETAS training windows (the noise floor: a
second sample of the same process), P a Poisson baseline (same rate and magnitudes, no clustering).
Every statistic is a distance d_X of set X to H, for X in S, A, P, and

    skill = (d_P - d_S) / (d_P - d_A)

is 1 when S is as close to H as ETAS itself, 0 when it is no closer than a process without aftershocks.
Skill is NaN for a statistic that does not separate P from H beyond sampling noise (see
:func:`compare_sets`), e.g. the magnitude statistics, which P reproduces by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.spatial import cKDTree

from . import stats

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

INFORMATIVE_RATIO = 1.5
"""A statistic gives a skill only if the Poisson baseline is this many times farther from H than A is."""

MAGNITUDE_ONLY = ("b_value", "b_positive", "magnitude_ks", "csep_magnitude")
"""Statistics of the magnitudes alone: the Poisson baseline shares the magnitudes, so they carry no skill."""

GROUPS = ("magnitudes", "time", "aftershocks", "space", "whole windows", "CSEP")


# --------------------------------------------------------------------------------------------------
# stacking windows into flat arrays
# --------------------------------------------------------------------------------------------------


@dataclass
class Stacked:
    """A window set as flat arrays: events of window k are ``slice(start[k], start[k] + n[k])``."""

    t: np.ndarray
    m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    g: np.ndarray  # window index of each event
    n: np.ndarray  # events per window
    start: np.ndarray
    duration: np.ndarray  # days

    @property
    def n_windows(self) -> int:
        return self.n.size


def window_duration(df: pd.DataFrame) -> float:
    """A window's duration in days: ``df.attrs["duration"]`` if set, else the time of its last event."""
    if "duration" in df.attrs:
        return float(df.attrs["duration"])
    return float(df["time"].max()) if len(df) else 0.0


def stack_windows(windows: list[pd.DataFrame]) -> Stacked:
    """Concatenate a window set into flat arrays (one concatenation, no per-event Python work)."""
    n = np.array([len(w) for w in windows], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64) if n.size else np.zeros(0, np.int64)
    nonempty = [w for w in windows if len(w)]
    if nonempty:
        flat = pd.concat(nonempty, ignore_index=True)
        t, m, x, y = (flat[c].to_numpy(dtype=float) for c in ("time", "magnitude", "x", "y"))
    else:
        t = m = x = y = np.zeros(0)
    last = np.zeros(n.size)  # time of each window's last event
    if nonempty:
        last[n > 0] = np.maximum.reduceat(t, start[n > 0])
    duration = np.array(
        [float(w.attrs["duration"]) if "duration" in w.attrs else last[k] for k, w in enumerate(windows)]
    )
    return Stacked(t=t, m=m, x=x, y=y, g=np.repeat(np.arange(n.size), n), n=n, start=start, duration=duration)


def _group_mean_std(values: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group count, mean and sample standard deviation (ddof=1), NaN where undefined."""
    cnt = np.bincount(groups, minlength=n_groups).astype(float)
    s1 = np.bincount(groups, weights=values, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        dev = values - mean[groups]
        var = np.bincount(groups, weights=dev**2, minlength=n_groups) / (cnt - 1)
    mean[cnt < 1] = np.nan
    var[cnt < 2] = np.nan
    return cnt, mean, np.sqrt(var)


def _mainshock_index(st: Stacked) -> np.ndarray:
    """Index (into the flat arrays) of each window's largest event, first one on ties; -1 if empty."""
    order = np.lexsort((np.arange(st.m.size), -st.m, st.g))
    idx = np.full(st.n_windows, -1, dtype=np.int64)
    nonempty = st.n > 0
    # after the sort each window's events are contiguous and its largest comes first
    first = np.concatenate([[0], np.cumsum(st.n)[:-1]])
    idx[nonempty] = order[first[nonempty]]
    return idx


# --------------------------------------------------------------------------------------------------
# per-window summaries
# --------------------------------------------------------------------------------------------------


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
    # magnitudes
    keep = st.m >= mc - delta_m / 2 - 1e-9
    cnt, mean_m, sd_m = _group_mean_std(st.m[keep], st.g[keep], G)
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = mean_m - (mc - delta_m / 2)
        b = np.where((cnt >= 2) & (excess > 0), stats.LOG10E / excess, np.nan)
        # Shi & Bolt (1982) with Σ(m - m̄)²/(n(n-1)) = sd²/n
        out["b_value"] = b
        out["b_value_err"] = stats.LN10 * b**2 * sd_m / np.sqrt(cnt)
    out["mean_magnitude"] = mean_m
    max_m = np.full(G, np.nan)
    im = _mainshock_index(st)
    max_m[im >= 0] = st.m[im[im >= 0]]
    out["max_magnitude"] = max_m
    # inter-event times
    same = st.g[1:] == st.g[:-1]
    dt = np.diff(st.t)[same]
    gdt = st.g[1:][same]
    _, mean_dt, sd_dt = _group_mean_std(dt, gdt, G)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["cv"] = np.where(mean_dt > 0, sd_dt / mean_dt, np.nan)
    logdt = np.log10(np.maximum(dt, stats.MIN_DT_DAYS))
    _, out["mean_log10_dt"], out["std_log10_dt"] = _group_mean_std(logdt, gdt, G)
    # aftershocks of the largest event
    has_main = im >= 0
    t_main = np.where(has_main, st.t[np.maximum(im, 0)], np.nan)
    after = np.arange(st.t.size) > im[st.g]
    fit = stats.omori_utsu_mle_grid(
        st.t[after] - t_main[st.g[after]],
        st.g[after],
        np.maximum(st.duration - np.nan_to_num(t_main), 0.0),
        min_events=min_omori_events,
    )
    out["omori_p"], out["omori_c"], out["omori_n"] = fit["p"], fit["c"], fit["n"]
    largest_after = np.full(G, -np.inf)
    np.maximum.at(largest_after, st.g[after], st.m[after])
    out["bath_gap"] = np.where(np.isfinite(largest_after), max_m - largest_after, np.nan)
    # space
    dr = np.hypot(np.diff(st.x), np.diff(st.y))[same]
    _, out["mean_log10_dr"], _ = _group_mean_std(np.log10(np.maximum(dr, stats.MIN_DISTANCE_KM)), gdt, G)
    other = np.arange(st.t.size) != im[st.g]
    r_main = np.hypot(st.x - st.x[im[st.g]], st.y - st.y[im[st.g]])[other] if st.t.size else np.zeros(0)
    _, out["mean_log10_r_main"], _ = _group_mean_std(
        np.log10(np.maximum(r_main, stats.MIN_DISTANCE_KM)), st.g[other], G
    )
    out["mean_log10_nn"] = _mean_log10_nn(st)
    return out


def _mean_log10_nn(st: Stacked) -> np.ndarray:
    """Mean log10 nearest-neighbour distance (km) per window (a k-d tree per window)."""
    res = np.full(st.n_windows, np.nan)
    xy = np.column_stack([st.x, st.y])
    for k in np.flatnonzero(st.n >= 2):
        pts = xy[st.start[k] : st.start[k] + st.n[k]]
        d, _ = cKDTree(pts).query(pts, k=2)
        res[k] = np.mean(np.log10(np.maximum(d[:, 1], stats.MIN_DISTANCE_KM)))
    return res


# --------------------------------------------------------------------------------------------------
# the Poisson baseline
# --------------------------------------------------------------------------------------------------


def poisson_baseline(
    windows: list[pd.DataFrame],
    rng: np.random.Generator,
    mc: float,
    b: float | None = None,
    *,
    delta_m: float = 0.0,
    mode: str = "auto",
) -> list[pd.DataFrame]:
    """The naive baseline P: one Poisson window per reference window, no clustering at all.

    - rate: one rate for the whole set, r = Σ events / Σ durations of the reference windows (events per
      day; when every reference window starts with an event at t = 0, that event is not counted, as it
      opens the window rather than falling inside it);
    - times: a homogeneous Poisson process of rate r from the window start. ``mode="count"`` keeps each
      reference window's number of events (times = cumulative sums of Exp(r) waits; the natural choice
      for event windows of L events, whose durations then vary); ``mode="duration"`` keeps each window's
      duration (N ~ Poisson(r·T), times uniform; for fixed-duration windows). ``"auto"``: count when all
      reference windows hold the same number of events, else duration;
    - magnitudes: ``b=None`` draws a bootstrap sample of the reference magnitudes (keeps their binning
      and any roll-off), otherwise Gutenberg–Richter above ``mc`` with that b (rounded to ``delta_m``);
    - positions: uniform over the bounding box of all reference events.
    """
    st = stack_windows(windows)
    if st.n_windows == 0 or st.t.size == 0:
        return [pd.DataFrame({c: np.zeros(0) for c in ("time", "magnitude", "x", "y")}) for _ in windows]
    first = st.t[st.start[st.n > 0]]
    starts_at_zero = bool(np.all(first == 0.0))
    n_inside = st.n - (starts_at_zero & (st.n > 0))
    total_time = float(st.duration.sum())
    rate = n_inside.sum() / total_time if total_time > 0 else np.inf
    if mode == "auto":
        mode = "count" if np.all(st.n == st.n[0]) else "duration"
    if mode == "count":
        counts = st.n
        waits = rng.exponential(1.0 / rate, size=int(counts.sum()))
        g = np.repeat(np.arange(st.n_windows), counts)
        if starts_at_zero:
            waits[st.start[counts > 0]] = 0.0
        csum = np.cumsum(waits)
        base = np.concatenate([[0.0], csum])[np.concatenate([[0], np.cumsum(counts)[:-1]])]
        times = csum - base[g]
    elif mode == "duration":
        counts = rng.poisson(rate * st.duration)
        g = np.repeat(np.arange(st.n_windows), counts)
        times = rng.random(int(counts.sum())) * st.duration[g]
        order = np.lexsort((times, g))
        times = times[order]
    else:
        raise ValueError(f"mode must be 'auto', 'count' or 'duration', got {mode!r}")
    total = int(counts.sum())
    if b is None:
        mags = st.m[rng.integers(0, st.m.size, total)]
    else:
        mags = stats.gr_magnitudes(total, b, mc, rng, delta_m=delta_m)
    x = rng.uniform(st.x.min(), st.x.max(), total)
    y = rng.uniform(st.y.min(), st.y.max(), total)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for k in range(st.n_windows):
        s, e = bounds[k], bounds[k + 1]
        df = pd.DataFrame({"time": times[s:e], "magnitude": mags[s:e], "x": x[s:e], "y": y[s:e]})
        if mode == "duration" or "duration" in windows[k].attrs:
            df.attrs["duration"] = float(st.duration[k])
        out.append(df)
    return out


# --------------------------------------------------------------------------------------------------
# comparing sets
# --------------------------------------------------------------------------------------------------


@dataclass
class _SetData:
    """Everything compare_sets needs from one window set, computed once."""

    st: Stacked
    summ: pd.DataFrame
    log_dt: np.ndarray
    log_dr: np.ndarray
    log_r_main: np.ndarray


def _set_data(windows: list[pd.DataFrame], mc: float, delta_m: float, min_omori_events: int) -> _SetData:
    st = stack_windows(windows)
    summ = window_summaries(st, mc, delta_m=delta_m, min_omori_events=min_omori_events)
    same = st.g[1:] == st.g[:-1]
    log_dt = np.log10(np.maximum(np.diff(st.t)[same], stats.MIN_DT_DAYS))
    log_dr = np.log10(np.maximum(np.hypot(np.diff(st.x), np.diff(st.y))[same], stats.MIN_DISTANCE_KM))
    im = _mainshock_index(st)
    other = np.arange(st.t.size) != im[st.g]
    r = np.hypot(st.x - st.x[im[st.g]], st.y - st.y[im[st.g]])[other] if st.t.size else np.zeros(0)
    return _SetData(st, summ, log_dt, log_dr, np.log10(np.maximum(r, stats.MIN_DISTANCE_KM)))


def _stacked_omori(st: Stacked, min_events: int) -> stats.OmoriFit:
    """Omori–Utsu fit with common (c, p), one K per window, to the events after each window's largest."""
    im = _mainshock_index(st)
    after = np.arange(st.t.size) > im[st.g]
    t_rel = st.t - np.where(im >= 0, st.t[np.maximum(im, 0)], 0.0)[st.g]
    seqs = np.split(t_rel[after], np.cumsum(np.bincount(st.g[after], minlength=st.n_windows))[:-1])
    T = st.duration - np.where(im >= 0, st.t[np.maximum(im, 0)], 0.0)
    return stats.omori_utsu_mle(seqs, np.maximum(T, 0.0), min_events=min_events)


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


def _features(summ: pd.DataFrame) -> np.ndarray:
    return summ[list(SUMMARY_FEATURES)].to_numpy(dtype=float)


def _standardise_like(ref: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Standardise every array with the reference's column medians (NaN fill), means and stds.

    Columns constant in the reference are dropped (they carry no scale to compare on).
    """
    med = np.nanmedian(ref, axis=0)
    med = np.where(np.isfinite(med), med, 0.0)
    filled = [np.where(np.isfinite(a), a, med) for a in (ref, *others)]
    mu = filled[0].mean(axis=0)
    sd = filled[0].std(axis=0)
    ok = sd > 1e-12
    return [(a[:, ok] - mu[ok]) / sd[ok] for a in filled]


def _ks_uniform(q: np.ndarray) -> tuple[float, float]:
    q = np.asarray(q, float)
    q = q[np.isfinite(q)]
    if q.size == 0:
        return np.nan, np.nan
    res = sps.kstest(q, "uniform")
    return float(res.statistic), float(res.pvalue)


def _mid_quantile(delta1: np.ndarray, delta2: np.ndarray) -> np.ndarray:
    """(δ2 + 1 - δ1)/2 = P(X < x) + P(X = x)/2: pyCSEP's δ2 with ties split, uniform under calibration
    even for discrete statistics (δ2 alone piles up at 1 for counts)."""
    return (np.asarray(delta2, float) + 1.0 - np.asarray(delta1, float)) / 2.0


def _fraction(flags: np.ndarray, quantiles: np.ndarray) -> float:
    """Fraction of True among the windows whose quantile is defined; NaN if none is."""
    ok = np.isfinite(np.asarray(quantiles, float))
    return float(np.mean(np.asarray(flags)[ok])) if ok.any() else np.nan


def _z_pvalue(a: float, sa: float, b: float, sb: float) -> float:
    z = abs(a - b) / np.sqrt(sa**2 + sb**2)
    return float(2 * sps.norm.sf(z)) if np.isfinite(z) else np.nan


def compare_sets(
    S: list[pd.DataFrame],
    H: list[pd.DataFrame],
    A: list[pd.DataFrame],
    P: list[pd.DataFrame] | None = None,
    *,
    mc: float,
    rng: np.random.Generator,
    delta_m: float = 0.0,
    dmc: float | None = None,
    n_permutations: int = 200,
    max_windows: int = 500,
    classifier: str = "knn",
    cv_folds: int = 5,
    fano_bins: int = 10,
    csep_dm: float = 0.1,
    csep_time_quantile: float = 0.05,
    min_omori_events: int = 10,
    alpha: float = 0.05,
    skill_for_magnitudes: bool = False,
) -> pd.DataFrame:
    """Every DESIGN §6 statistic for S, A, P against H: one row per statistic.

    Columns: statistic, group, distance (how d is defined), value_S/H/A/P (the statistic on each set
    where that means something), err_S/H/A/P (standard errors where known), d_S, d_A, d_P (distance to H),
    p_S, p_A, p_P (p-value of a test of "X and H come from the same distribution", where there is one),
    skill = (d_P - d_S)/(d_P - d_A), informative.

    Statistics and their d (|·| = absolute difference to H's value):
    - magnitudes: ``b_value`` Aki–Utsu with Shi–Bolt error, |Δb|, z-test p; ``b_positive`` likewise on
      positive differences ≥ dmc (default max(Δm, 0.1)) within windows; ``magnitude_ks`` KS distance.
    - time: ``log_dt_ks`` KS and ``log_dt_wasserstein`` W1 [log10 days] of pooled log10 inter-event times;
      ``cv`` mean per-window CV, |Δ|, KS p of per-window CVs; ``log_duration_ks`` and ``count_ks``: KS of
      per-window log10 durations and event counts; ``fano`` Fano factor of counts in bins of width
      median(H durations)/fano_bins, d = |Δlog10 F|.
    - aftershocks: ``omori_p`` and ``omori_c``: Omori–Utsu MLE of the events after each window's largest
      one, stacked over windows (common c and p, one K per window; a window holds too few aftershocks
      for a fit of its own: per-window fits are in :func:`window_summaries`), |Δp| and |Δlog10 c|;
      ``bath_gap`` mean Båth gap, |Δ|.
    - space: ``interevent_distance_ks`` and ``mainshock_distance_ks``: KS on log10 distances between
      consecutive events and to the window's largest event; ``pair_correlation``: correlation integral
      C(r) at r = 10 % quantile of H's within-window pair distances (so C_H ≈ 0.1), |ΔC|.
    - whole windows: feature vector = SUMMARY_FEATURES standardised with H's moments (at most
      ``max_windows`` windows per set). ``mmd``: unbiased MMD² with a Gaussian kernel whose bandwidth is
      the median heuristic on H alone (one kernel for all three comparisons), d = max(MMD², 0), permutation
      p; ``c2st``: ``cv_folds``-fold cross-validated accuracy of ``classifier`` ("knn", "logistic", "gbm"),
      d = |acc - 0.5|, binomial p.
    - CSEP (H tested against the ensemble of X's windows, one test per H window, as in pyCSEP):
      ``csep_number`` on the count in [0, T), T = ``csep_time_quantile`` of H's durations (for event
      windows a window shorter than T has its count capped at its length, equally in H and X; keep the
      quantile small, as every capped H window gives δ2 = 1; fixed-duration windows are never capped);
      ``csep_magnitude`` on histograms with bins of ``csep_dm`` from Mc. value = fraction of H windows
      the test rejects at ``alpha`` (number: two-sided, min(δ1, δ2) < α/2; magnitude: one-sided
      γ = δ1 < α); d = KS distance from U(0, 1) of the mid-quantiles (δ2 + 1 - δ1)/2 of the H windows
      (pyCSEP's calibration_test uses δ2, which for discrete counts is far from uniform even for a perfect forecast), p its KS p-value.

    Skill is NaN when the statistic is not *informative*, i.e. P is not farther from H than the noise
    floor beyond sampling noise: informative needs d_P > 1.5·d_A (INFORMATIVE_RATIO) and, where the
    statistic has a p-value, p_P < ``alpha``. Otherwise d_P - d_A ≈ 0 and the ratio is noise (typically
    the magnitude statistics, which P reproduces by construction). The statistics of MAGNITUDE_ONLY never
    get a skill unless ``skill_for_magnitudes`` (P copies the reference magnitudes, so any apparent
    separation there is noise); they are judged against the floor instead (:func:`classify`). P defaults to
    :func:`poisson_baseline` of A (the training windows: neither S nor P ever sees H).

    Caveat: the p-values assume independent events or windows. ETAS events are clustered and windows cut
    from one catalog share its long-term rate, so KS and permutation p-values of A against H can be small
    for two samples of the same process; read p-values next to p_A, and trust the distances.
    """
    # degenerate synthetic windows (all events at one instant, no events above Mc) give log10(0) and 0/0:
    # they become inf/NaN distances and skills, not warnings
    with np.errstate(divide="ignore", invalid="ignore"):
        if P is None:
            P = poisson_baseline(A, rng, mc)
        if dmc is None:
            dmc = max(delta_m, 0.1)
        sets = {"S": S, "H": H, "A": A, "P": P}
        data = {k: _set_data(v, mc, delta_m, min_omori_events) for k, v in sets.items()}
        others = ("S", "A", "P")
        rows: list[dict] = []

        def add(statistic, group, distance, values=None, errs=None, d=None, p=None):
            row = {"statistic": statistic, "group": group, "distance": distance}
            for k in ("S", "H", "A", "P"):
                row[f"value_{k}"] = (values or {}).get(k, np.nan)
                row[f"err_{k}"] = (errs or {}).get(k, np.nan)
            for k in others:
                row[f"d_{k}"] = (d or {}).get(k, np.nan)
                row[f"p_{k}"] = (p or {}).get(k, np.nan)
            rows.append(row)

        def value_row(statistic, group, distance, values, errs=None, p=None, transform=None):
            f = transform or (lambda v: v)
            d = {k: abs(f(values[k]) - f(values["H"])) for k in others}
            add(statistic, group, distance, values, errs, d, p)

        def ks_row(statistic, group, samples, values=None):
            res = {k: stats.ks_distance(samples[k], samples["H"]) for k in others}
            add(
                statistic,
                group,
                "KS distance",
                values,
                None,
                {k: r[0] for k, r in res.items()},
                {k: r[1] for k, r in res.items()},
            )

        # ---- magnitudes
        mags = {k: v.st.m for k, v in data.items()}
        b = {k: stats.b_value_aki_utsu(m, mc, delta_m) for k, m in mags.items()}
        be = {k: stats.b_value_shi_bolt_error(m[m >= mc - delta_m / 2 - 1e-9], b[k]) for k, m in mags.items()}
        value_row(
            "b_value", "magnitudes", "|b - b_H|", b, be, {k: _z_pvalue(b[k], be[k], b["H"], be["H"]) for k in others}
        )
        bp = {k: stats.b_positive(v.st.m, dmc, delta_m, groups=v.st.g) for k, v in data.items()}
        bpv = {k: r[0] for k, r in bp.items()}
        bpe = {k: r[1] for k, r in bp.items()}
        value_row(
            "b_positive",
            "magnitudes",
            "|b+ - b+_H|",
            bpv,
            bpe,
            {k: _z_pvalue(bpv[k], bpe[k], bpv["H"], bpe["H"]) for k in others},
        )
        ks_row(
            "magnitude_ks", "magnitudes", mags, {k: float(np.mean(m)) if m.size else np.nan for k, m in mags.items()}
        )

        # ---- time
        logdt = {k: v.log_dt for k, v in data.items()}
        mean_logdt = {k: float(np.mean(v)) if v.size else np.nan for k, v in logdt.items()}
        ks_row("log_dt_ks", "time", logdt, mean_logdt)
        add(
            "log_dt_wasserstein",
            "time",
            "W1 of log10 dt [log10 d]",
            mean_logdt,
            None,
            {k: stats.wasserstein(logdt[k], logdt["H"]) for k in others},
        )
        cv = {k: v.summ["cv"].to_numpy() for k, v in data.items()}
        value_row(
            "cv",
            "time",
            "|mean CV - mean CV_H|",
            {k: float(np.nanmean(c)) if np.isfinite(c).any() else np.nan for k, c in cv.items()},
            None,
            {k: stats.ks_distance(cv[k], cv["H"])[1] for k in others},
        )
        ks_row(
            "log_duration_ks",
            "time",
            {k: v.summ["log10_duration"].to_numpy() for k, v in data.items()},
            {k: float(np.median(v.st.duration)) if v.st.n_windows else np.nan for k, v in data.items()},
        )
        ks_row(
            "count_ks",
            "time",
            {k: v.st.n.astype(float) for k, v in data.items()},
            {k: float(np.mean(v.st.n)) if v.st.n_windows else np.nan for k, v in data.items()},
        )
        width = float(np.median(data["H"].st.duration)) / fano_bins
        fano = {
            k: stats.fano_factor(stats.counts_in_bins(v.st.t, v.st.g, v.st.duration, width)) if width > 0 else np.nan
            for k, v in data.items()
        }
        value_row("fano", "time", "|log10 F - log10 F_H|", fano, transform=np.log10)

        # ---- aftershocks
        om = {k: _stacked_omori(v.st, min_omori_events) for k, v in data.items()}
        value_row("omori_p", "aftershocks", "|p - p_H| (stacked fit)", {k: f.p for k, f in om.items()})
        value_row(
            "omori_c",
            "aftershocks",
            "|log10 c - log10 c_H| (stacked fit)",
            {k: f.c for k, f in om.items()},
            transform=np.log10,
        )
        bg = {k: v.summ["bath_gap"].to_numpy() for k, v in data.items()}
        value_row(
            "bath_gap",
            "aftershocks",
            "|mean gap - mean gap_H|",
            {k: float(np.nanmean(a)) if np.isfinite(a).any() else np.nan for k, a in bg.items()},
            None,
            {k: stats.ks_distance(bg[k], bg["H"])[1] for k in others},
        )

        # ---- space
        ks_row("interevent_distance_ks", "space", {k: v.log_dr for k, v in data.items()})
        ks_row("mainshock_distance_ks", "space", {k: v.log_r_main for k, v in data.items()})
        r = _pair_fraction_below(data["H"].st, None, max_windows, rng)
        cr = {k: _pair_fraction_below(v.st, r, max_windows, rng) for k, v in data.items()}
        value_row("pair_correlation", "space", f"|C(r) - C_H(r)|, r = {r:.3g} km", cr)

        # ---- whole windows
        feats = {k: _features(v.summ) for k, v in data.items()}
        for k, f in feats.items():
            if len(f) > max_windows:
                feats[k] = f[np.sort(rng.choice(len(f), max_windows, replace=False))]
        Zh, Zs, Za, Zp = _standardise_like(feats["H"], feats["S"], feats["A"], feats["P"])
        Z = {"S": Zs, "A": Za, "P": Zp}
        sigma = stats.median_heuristic(Zh, rng)
        mmd = {
            k: stats.mmd_test(Z[k], Zh, rng, n_permutations=n_permutations, max_samples=max_windows, bandwidth=sigma)
            for k in others
        }
        add(
            "mmd",
            "whole windows",
            "max(MMD², 0), Gaussian kernel",
            {k: mmd[k][0] for k in others},
            None,
            {k: max(mmd[k][0], 0.0) for k in others},
            {k: mmd[k][1] for k in others},
        )
        cls = {
            k: stats.c2st(Z[k], Zh, rng, classifier=classifier, n_folds=cv_folds, max_samples=max_windows)
            for k in others
        }
        add(
            "c2st",
            "whole windows",
            f"|accuracy - 0.5| ({classifier})",
            {k: cls[k][0] for k in others},
            {k: cls[k][1] for k in others},
            {k: abs(cls[k][0] - 0.5) for k in others},
            {k: cls[k][2] for k in others},
        )

        # ---- CSEP
        T = float(np.quantile(data["H"].st.duration, csep_time_quantile)) if data["H"].st.n_windows else np.nan
        counts = {k: np.bincount(v.st.g[v.st.t < T], minlength=v.st.n_windows) for k, v in data.items()}
        nt = {k: stats.csep_number_test(counts[k], counts["H"]) for k in others}
        ks_n = {k: _ks_uniform(_mid_quantile(*nt[k])) for k in others}
        add(
            "csep_number",
            "CSEP",
            f"KS(mid-quantile, U) of N-test, N in [0, {T:.3g} d)",
            {k: _fraction(np.minimum(*nt[k]) < alpha / 2, nt[k][0]) for k in others},
            None,
            {k: ks_n[k][0] for k in others},
            {k: ks_n[k][1] for k in others},
        )
        mmax = max(float(v.st.m.max()) for v in data.values() if v.st.m.size)
        edges = mc + csep_dm * np.arange(int(np.floor((mmax - mc) / csep_dm + 1e-9)) + 1)
        split = {k: np.split(v.st.m, np.cumsum(v.st.n)[:-1]) for k, v in data.items()}
        mt = {k: stats.csep_magnitude_test(split[k], split["H"], edges) for k in others}
        ks_m = {k: _ks_uniform(_mid_quantile(mt[k][0], mt[k][1])) for k in others}
        add(
            "csep_magnitude",
            "CSEP",
            "KS(mid-quantile, U) of M-test",
            {k: _fraction(mt[k][0] < alpha, mt[k][0]) for k in others},
            None,
            {k: ks_m[k][0] for k in others},
            {k: ks_m[k][1] for k in others},
        )

        table = pd.DataFrame(rows)
        table["informative"] = (
            (table["d_P"] > INFORMATIVE_RATIO * table["d_A"].clip(lower=0.0))
            & ~(table["p_P"] >= alpha)  # where a p-value exists, P must also be rejected
            & np.isfinite(table["d_P"])
            & np.isfinite(table["d_A"])
        )
        if not skill_for_magnitudes:
            table.loc[table["statistic"].isin(MAGNITUDE_ONLY), "informative"] = False
        denom = table["d_P"] - table["d_A"]
        ok = table["informative"] & (denom > 1e-12)
        table["skill"] = np.where(ok, (table["d_P"] - table["d_S"]) / denom.where(ok, 1.0), np.nan)
        return table


# --------------------------------------------------------------------------------------------------
# summaries of a comparison table
# --------------------------------------------------------------------------------------------------


def overall_score(table: pd.DataFrame) -> float:
    """Median over informative statistics of skill clipped to [-1, 1]; NaN if none is informative.

    The median keeps one degenerate statistic from dominating; clipping keeps a catastrophic failure on
    one statistic (skill ≪ 0) from counting more than "as bad as the Poisson baseline, twice over".
    Higher is better; 1 means every typical statistic is at the ETAS noise floor.
    """
    s = table["skill"].to_numpy(dtype=float)
    s = s[np.isfinite(s)]
    return float(np.median(np.clip(s, -1.0, 1.0))) if s.size else np.nan


FLOOR_SKILL = 0.75
NAIVE_SKILL = 0.25


def classify(table: pd.DataFrame, alpha: float = 0.05) -> pd.Series:
    """A word per statistic, from its skill where it has one, else from S against the floor.

    - informative statistics: "floor" (skill ≥ 0.75), "partial" (0.25 < skill < 0.75), "naive"
      (skill ≤ 0.25: no better than the Poisson baseline);
    - the others (P as close as the floor, e.g. magnitudes): "fails" when S is clearly farther from H than
      the floor is, by the same rule that makes a statistic informative (d_S > 1.5·d_A and, where a test
      exists, p_S < alpha), else "floor";
    - "n/a" where S has no value.
    """
    out = []
    for _, r in table.iterrows():
        if np.isfinite(r["skill"]):
            out.append("floor" if r["skill"] >= FLOOR_SKILL else "naive" if r["skill"] <= NAIVE_SKILL else "partial")
        elif not np.isfinite(r["d_S"]):
            out.append("n/a")
        else:
            farther = r["d_S"] > INFORMATIVE_RATIO * max(r["d_A"], 0.0) if np.isfinite(r["d_A"]) else True
            rejected = not (r["p_S"] >= alpha)  # NaN p-value: no test, the distance decides
            out.append("fails" if farther and rejected else "floor")
    return pd.Series(out, index=table.index, name="class")


def verdict(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """One paragraph of plain language from the numbers of a :func:`compare_sets` table."""
    cls = classify(table, alpha)
    names = table["statistic"].to_numpy()

    def listing(mask) -> str:
        items = [f"{n} ({s:.2f})" if np.isfinite(s) else str(n) for n, s in zip(names[mask], table["skill"][mask])]
        return ", ".join(items) if items else "none"

    score = overall_score(table)
    informative = table["informative"].to_numpy(bool)
    parts = []
    if np.isfinite(score):
        quality = (
            "close to the ETAS noise floor"
            if score >= FLOOR_SKILL
            else (
                "no better than a Poisson process without aftershocks"
                if score <= NAIVE_SKILL
                else "between the Poisson baseline and the ETAS floor"
            )
        )
        n_skill = int(np.isfinite(table["skill"]).sum())
        parts.append(
            f"Overall skill {score:.2f} (median over {n_skill} statistics): the synthetic windows are {quality}."
        )
    elif table["informative"].astype(bool).any():
        parts.append("The synthetic set gives no usable value for any informative statistic (too few events?).")
    else:
        parts.append(
            "No statistic separates the Poisson baseline from the held-out ETAS windows, so no skill can be computed."
        )
    c = cls.to_numpy()
    parts.append(f"At the ETAS floor (skill in brackets): {listing(informative & (c == 'floor'))}.")
    parts.append(f"Part of the way: {listing(informative & (c == 'partial'))}.")
    parts.append(f"No better than Poisson: {listing(informative & (c == 'naive'))}.")
    fails = ~informative & (c == "fails")
    fine = ~informative & (c == "floor")
    if fails.any() or fine.any():
        said = []
        if fine.any():
            said.append(f"S agrees with the held-out windows on {listing(fine)}")
        if fails.any():
            whom = "them" if fine.any() else "the held-out windows"
            said.append(f"S departs from {whom} on {listing(fails)}")
        parts.append("Statistics the Poisson baseline already matches (no skill defined): " + "; ".join(said) + ".")
    row = table.set_index("statistic")
    if "c2st" in row.index and np.isfinite(row.loc["c2st", "value_S"]):
        parts.append(
            f"A classifier tells synthetic from held-out windows with accuracy {row.loc['c2st', 'value_S']:.2f} "
            f"(ETAS vs ETAS {row.loc['c2st', 'value_A']:.2f}, Poisson vs ETAS {row.loc['c2st', 'value_P']:.2f};"
            " 0.5 is chance)."
        )
    if "b_value" in row.index and np.isfinite(row.loc["b_value", "value_S"]):
        parts.append(
            f"b-value {row.loc['b_value', 'value_S']:.2f} ± {row.loc['b_value', 'err_S']:.2f} against "
            f"{row.loc['b_value', 'value_H']:.2f} ± {row.loc['b_value', 'err_H']:.2f} held out."
        )
    return " ".join(parts)
