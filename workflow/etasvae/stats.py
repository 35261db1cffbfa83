"""Statistical estimators for earthquake catalogs: pure functions, numpy arrays in and out.

Units: times in days, distances in km, magnitudes in magnitude units. Random state is always passed in
as a ``numpy.random.Generator``. Each estimator cites the formula it implements in one line.

Contents
- magnitudes: Aki–Utsu b-value with bin correction and Shi–Bolt error, b-positive, GR sampling
- times: log10 inter-event times, coefficient of variation, counts in bins and the Fano factor
- aftershocks: Omori–Utsu maximum likelihood (single sequence or stacked), Båth's magnitude gap
- space: consecutive and mainshock distances, pair correlation integral, nearest-neighbour distances
- two-sample: KS and Wasserstein distances, MMD with permutation p-value, classifier two-sample test
- CSEP catalog tests (Savran et al. 2020, as coded in pyCSEP 0.8 ``csep.core.catalog_evaluations``):
  number test and magnitude test quantiles, in ``etasvae.csep_tests`` and imported here
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from scipy.spatial.distance import pdist

from .csep_tests import csep_magnitude_test, csep_number_test, csep_quantiles, magnitude_histogram  # noqa: F401

LOG10E = np.log10(np.e)
LN10 = np.log(10.0)

# Inter-event times are floored at this value (days, ~0.09 s) before taking log10: simultaneous events
# (dt = 0, possible in decoded synthetic catalogs) would otherwise give -inf.
MIN_DT_DAYS = 1e-6
# Distances are floored at this value (km, 1 m) before taking log10, for the same reason.
MIN_DISTANCE_KM = 1e-3


# --------------------------------------------------------------------------------------------------
# magnitudes
# --------------------------------------------------------------------------------------------------


def b_value_aki_utsu(magnitudes: np.ndarray, mc: float, delta_m: float = 0.0) -> float:
    """Maximum-likelihood b-value with bin correction, NaN for fewer than 2 events.

    Utsu (1965): b = log10(e) / (mean(m) - (Mc - Δm/2)); Aki (1965) for continuous magnitudes (Δm = 0).
    Magnitudes below Mc - Δm/2 are ignored.
    """
    m = np.asarray(magnitudes, dtype=float)
    m = m[m >= mc - delta_m / 2 - 1e-9]
    if m.size < 2:
        return np.nan
    return float(b_value_from_mean(m.mean(), mc, delta_m, m.size))


def b_value_from_mean(mean_magnitude, mc: float, delta_m: float = 0.0, count=2, min_events: int = 2):
    """The Aki–Utsu b-value from a mean magnitude (vectorised): log10(e) / (mean - (Mc - Δm/2)).

    NaN where ``count`` (events behind each mean) is below ``min_events`` or the mean does not exceed
    Mc - Δm/2.
    """
    excess = np.asarray(mean_magnitude, dtype=float) - (mc - delta_m / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((np.asarray(count) >= min_events) & (excess > 0), LOG10E / excess, np.nan)


def b_value_shi_bolt_error(magnitudes: np.ndarray, b: float) -> float:
    """Standard error of a b-value estimate.

    Shi & Bolt (1982): σ_b = ln(10) · b² · sqrt(Σ(m_i - m̄)² / (n(n-1))).
    """
    m = np.asarray(magnitudes, dtype=float)
    n = m.size
    if n < 2 or not np.isfinite(b):
        return np.nan
    return LN10 * b**2 * np.sqrt(np.sum((m - m.mean()) ** 2) / (n * (n - 1)))


def b_value_and_error(magnitudes: np.ndarray, mc: float, delta_m: float = 0.0) -> tuple[float, float]:
    """Aki–Utsu b-value and its Shi–Bolt error, both from the magnitudes ≥ Mc - Δm/2."""
    m = np.asarray(magnitudes, dtype=float)
    b = b_value_aki_utsu(m, mc, delta_m)
    return b, b_value_shi_bolt_error(m[m >= mc - delta_m / 2 - 1e-9], b)


def magnitude_differences_positive(magnitudes: np.ndarray, dmc: float, delta_m: float = 0.0, groups=None) -> np.ndarray:
    """Positive differences m_{i+1} - m_i ≥ dmc - Δm/2 of consecutive events (time-ordered input).

    With ``groups`` (one label per event, equal labels contiguous) differences never cross a group,
    so windows can be pooled without creating spurious pairs.
    """
    m = np.asarray(magnitudes, dtype=float)
    diff = np.diff(m)
    if groups is not None:
        g = np.asarray(groups)
        diff = diff[g[1:] == g[:-1]]
    if delta_m > 0:
        diff = np.round(diff / delta_m) * delta_m
    return diff[diff >= dmc - delta_m / 2 - 1e-9]


def b_positive(magnitudes: np.ndarray, dmc: float = 0.1, delta_m: float = 0.0, groups=None) -> tuple[float, float, int]:
    """b-positive estimate, its Shi–Bolt error and the number of differences used.

    van der Elst (2021): the positive differences m' = m_{i+1} - m_i ≥ dmc of time-ordered magnitudes
    follow GR with the same b; b+ = log10(e) / (mean(m') - (dmc - Δm/2)) (Utsu's bin correction).
    """
    d = magnitude_differences_positive(magnitudes, dmc, delta_m, groups)
    b = b_value_aki_utsu(d, dmc, delta_m)
    return b, b_value_shi_bolt_error(d, b), int(d.size)


def gr_quantile(u, lo, hi, b: float) -> np.ndarray:
    """Inverse CDF of Gutenberg–Richter with b-value ``b`` truncated to [lo, hi) (hi may be inf), at u.

    m = lo - ln(1 - u (1 - e^(-β (hi - lo)))) / β with β = b ln 10 (vectorised over u, lo, hi).
    """
    beta = b * LN10
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    finite = np.isfinite(hi)
    tail = np.where(finite, -np.expm1(-beta * np.where(finite, hi - lo, 0.0)), 1.0)
    return lo - np.log1p(-np.asarray(u, dtype=float) * tail) / beta


def gr_magnitudes(
    n: int, b: float, mc: float, rng: np.random.Generator, delta_m: float = 0.0, mmax: float | None = None
) -> np.ndarray:
    """n magnitudes from Gutenberg–Richter above Mc (optionally truncated at Mmax), by inverse CDF.

    With Δm > 0, continuous magnitudes above Mc - Δm/2 are drawn and rounded to the Δm grid, so that
    the binned values start at Mc (the convention behind Utsu's correction).
    """
    lo = mc - delta_m / 2
    m = gr_quantile(rng.random(n), lo, np.inf if mmax is None else mmax, b)
    if delta_m > 0:
        m = mc + np.round((m - mc) / delta_m) * delta_m
    return m


# --------------------------------------------------------------------------------------------------
# times
# --------------------------------------------------------------------------------------------------


def inter_event_times(times: np.ndarray, groups=None) -> np.ndarray:
    """Differences of consecutive (sorted) times, never across a group boundary (days)."""
    t = np.asarray(times, dtype=float)
    dt = np.diff(t)
    if groups is not None:
        g = np.asarray(groups)
        dt = dt[g[1:] == g[:-1]]
    return dt


def log10_inter_event_times(times: np.ndarray, groups=None, floor: float = MIN_DT_DAYS) -> np.ndarray:
    """log10 of inter-event times in days, floored at ``floor`` (see MIN_DT_DAYS)."""
    return np.log10(np.maximum(inter_event_times(times, groups), floor))


def coefficient_of_variation(intervals: np.ndarray) -> float:
    """CV = std(Δt)/mean(Δt) of inter-event times: 1 for a Poisson process, > 1 for clustering."""
    dt = np.asarray(intervals, dtype=float)
    if dt.size < 2 or dt.mean() <= 0:
        return np.nan
    return float(dt.std(ddof=1) / dt.mean())


def counts_in_bins(times: np.ndarray, groups: np.ndarray, durations: np.ndarray, bin_width: float) -> np.ndarray:
    """Event counts in consecutive bins [kw, (k+1)w) lying wholly inside each group's [0, duration).

    ``groups`` holds integer labels 0..G-1 (one per event), ``durations`` one length per group (days).
    Empty bins are counted. Returns the counts of every complete bin of every group, concatenated.
    """
    t = np.asarray(times, dtype=float)
    g = np.asarray(groups, dtype=np.int64)
    n_bins = np.floor(np.asarray(durations, dtype=float) / bin_width).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_bins)])
    k = np.floor(t / bin_width).astype(np.int64)
    keep = (k >= 0) & (k < n_bins[g])
    return np.bincount(offsets[g[keep]] + k[keep], minlength=offsets[-1]).astype(float)


def fano_factor(counts: np.ndarray) -> float:
    """Fano factor F = var(N)/mean(N) of counts in equal time bins: 1 for Poisson, > 1 for clustering."""
    c = np.asarray(counts, dtype=float)
    if c.size < 2 or c.mean() <= 0:
        return np.nan
    return float(c.var(ddof=1) / c.mean())


# --------------------------------------------------------------------------------------------------
# aftershocks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OmoriFit:
    """Omori–Utsu fit λ(t) = K/(t+c)^p; K is per sequence for a stacked fit (array), c in days."""

    K: float | np.ndarray
    c: float
    p: float
    n: int
    loglik: float
    converged: bool


def _omori_integral_log(c: float, p: float, T: np.ndarray) -> np.ndarray:
    """log ∫_0^T (t+c)^-p dt = log[((T+c)^(1-p) - c^(1-p)) / (1-p)], stable near p = 1."""
    L = np.log1p(T / c)
    x = (1.0 - p) * L
    small = np.abs(x) < 1e-8
    ratio = np.where(small, 1.0 + x / 2, np.expm1(x) / np.where(small, 1.0, x))
    return (1.0 - p) * np.log(c) + np.log(L) + np.log(ratio)


def _omori_profile_loglik(t, groups, T, n_groups, log_c, p):
    """Profile log-likelihood (K̂ = n/A per group) on a grid: array (n_groups, len(log_c), len(p)).

    Ogata (1983): log L = n log K - p Σ log(t_i + c) - K·A(c, p, T), with K̂ = n/A:
    log L = n log n - n - n log A(c, p, T) - p Σ log(t_i + c).
    """
    c = np.exp(log_c)
    n = np.bincount(groups, minlength=n_groups).astype(float)
    slog = np.zeros((n_groups, c.size))
    for k, ck in enumerate(c):  # loop over the grid, vectorised over events
        slog[:, k] = np.bincount(groups, weights=np.log(t + ck), minlength=n_groups)
    L = np.log1p(T[:, None, None] / c[None, :, None])  # (G, C, 1)
    x = (1.0 - p)[None, None, :] * L
    small = np.abs(x) < 1e-8
    ratio = np.where(small, 1.0 + x / 2, np.expm1(x) / np.where(small, 1.0, x))
    logA = (1.0 - p)[None, None, :] * log_c[None, :, None] + np.log(L) + np.log(ratio)
    nlogn = np.where(n > 0, n * np.log(np.maximum(n, 1.0)), 0.0)
    return (nlogn - n)[:, None, None] - n[:, None, None] * logA - p[None, None, :] * slog[:, :, None]


def omori_utsu_mle(
    times,
    duration,
    *,
    min_events: int = 10,
    p_bounds: tuple[float, float] = (0.0, 3.0),
    c_bounds: tuple[float, float] | None = None,
) -> OmoriFit:
    """Maximum-likelihood fit of the modified Omori law to aftershock times in (0, T].

    Ogata (1983): log L = Σ log λ(t_i) - ∫_0^T λ dt with λ(t) = K/(t+c)^p; K is profiled out
    (K̂ = n / ∫_0^T (t+c)^-p dt) and (log c, p) maximised numerically (L-BFGS-B from the best point of
    a coarse grid). ``c_bounds`` defaults to (1e-6 T, T).

    ``times``/``duration``: one array of times after the mainshock (days) and its T; or a list of such
    arrays with one T each, fitted jointly with a common (c, p) and one K per sequence (stacked fit).
    Returns NaNs when fewer than ``min_events`` events are available in total. p may reach 0 (a flat
    rate, where c is no longer identifiable): the law has no background term, so with few aftershocks
    among background events the fit is an *apparent* decay, comparable between sets, not ETAS's p.
    """
    seqs, Ts, stacked = _omori_sequences(times, duration)
    n_j = np.array([s.size for s in seqs], dtype=float)
    use = n_j > 0
    n_total = int(n_j.sum())
    nan_K = np.full(len(seqs), np.nan) if stacked else np.nan
    if n_total < min_events:
        return OmoriFit(nan_K, np.nan, np.nan, n_total, np.nan, False)
    t_all = np.concatenate([s for s in seqs if s.size])
    g_all = np.repeat(np.arange(int(use.sum())), n_j[use].astype(int))
    n_u, T_u = n_j[use], Ts[use]
    if c_bounds is None:
        Tmax = float(T_u.max())
        c_bounds = (1e-6 * Tmax, Tmax)
    res = _omori_maximise(t_all, g_all, n_u, T_u, c_bounds, p_bounds)
    lc, p = res.x
    c = float(np.exp(lc))
    K_j = np.full(len(seqs), np.nan)
    K_j[use] = n_u / np.exp(_omori_integral_log(c, p, T_u))
    K = K_j if stacked else float(K_j[0])
    return OmoriFit(K, c, float(p), n_total, float(-res.fun), bool(res.success))


def _omori_sequences(times, duration) -> tuple[list[np.ndarray], np.ndarray, bool]:
    """(sequences of times in (0, T], their T, stacked?) from one array and T or a list of arrays and Ts."""
    if isinstance(times, (list, tuple)):
        seqs = [np.asarray(t, dtype=float) for t in times]
        Ts = np.asarray(duration, dtype=float).reshape(-1)
        stacked = True
    else:
        seqs = [np.asarray(times, dtype=float)]
        Ts = np.array([float(duration)])
        stacked = False
    seqs = [s[(s > 0) & (s <= T)] for s, T in zip(seqs, Ts)]
    return seqs, Ts, stacked


def _omori_maximise(t_all: np.ndarray, g_all: np.ndarray, n_u: np.ndarray, T_u: np.ndarray,
                    c_bounds: tuple[float, float], p_bounds: tuple[float, float]) -> optimize.OptimizeResult:
    """Maximise the profile likelihood over (log c, p): L-BFGS-B from the best point of a coarse grid."""
    const = np.sum(n_u * np.log(n_u) - n_u)
    lc_lo, lc_hi = np.log(c_bounds[0]), np.log(c_bounds[1])

    def negloglik(theta):
        lc, p = theta
        c = np.exp(lc)
        logA = _omori_integral_log(c, p, T_u)
        return -(const - np.sum(n_u * logA) - p * np.sum(np.log(t_all + c)))

    grid_lc = np.linspace(lc_lo, lc_hi, 25)
    grid_p = np.linspace(p_bounds[0], p_bounds[1], 29)
    ll = _omori_profile_loglik(t_all, g_all, T_u, len(T_u), grid_lc, grid_p).sum(axis=0)
    i, j = np.unravel_index(np.argmax(ll), ll.shape)
    return optimize.minimize(
        negloglik, np.array([grid_lc[i], grid_p[j]]), method="L-BFGS-B", bounds=[(lc_lo, lc_hi), p_bounds]
    )


def _parabolic_offset(fm: np.ndarray, f0: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Vertex offset (in grid steps, within ±0.5) of the parabola through three equally spaced values."""
    den = fm - 2 * f0 + fp
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(den < 0, 0.5 * (fm - fp) / den, 0.0)
    return np.clip(np.nan_to_num(off), -0.5, 0.5)


OMORI_GRID_BLOCK = 256  # sequences whose likelihood grid is held at once by omori_utsu_mle_grid (~6 MB each)


def _grid_argmax_refined(ll: np.ndarray, log_c: np.ndarray, p_grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``ll`` (rows, len(log_c), len(p_grid)): the grid maximum refined by a parabola through it
    and its neighbours on each axis: (log c, p)."""
    n_c, n_p = log_c.size, p_grid.size
    flat = ll.reshape(ll.shape[0], -1).argmax(axis=1)
    i, j = np.unravel_index(flat, (n_c, n_p))
    rows = np.arange(ll.shape[0])
    ii, jj = np.clip(i, 1, n_c - 2), np.clip(j, 1, n_p - 2)
    off_c = np.where(
        (i > 0) & (i < n_c - 1), _parabolic_offset(ll[rows, ii - 1, j], ll[rows, ii, j], ll[rows, ii + 1, j]), 0.0
    )
    off_p = np.where(
        (j > 0) & (j < n_p - 1), _parabolic_offset(ll[rows, i, jj - 1], ll[rows, i, jj], ll[rows, i, jj + 1]), 0.0
    )
    return log_c[i] + off_c * (log_c[1] - log_c[0]), p_grid[j] + off_p * (p_grid[1] - p_grid[0])


def omori_utsu_mle_grid(
    times: np.ndarray,
    groups: np.ndarray,
    durations: np.ndarray,
    *,
    min_events: int = 10,
    log10_c_range: tuple[float, float] = (-5.0, 1.0),
    n_c: int = 49,
    p_range: tuple[float, float] = (0.0, 3.0),
    n_p: int = 61,
) -> dict[str, np.ndarray]:
    """Omori–Utsu MLE for many independent sequences at once, by profile-likelihood grid search.

    Same likelihood as :func:`omori_utsu_mle` (Ogata 1983, K profiled out), maximised over a fixed
    (log10 c, p) grid (c in days; default 0.125 decade × 0.05 in p) refined by a parabola through the
    best grid point and its neighbours on each axis. Vectorised over events and sequences: the cost is
    (events + sequences) × grid size, with no optimiser per sequence; memory holds the grid of at most
    OMORI_GRID_BLOCK sequences at once.

    ``times`` are times after each sequence's mainshock (only 0 < t ≤ T used), ``groups`` integer labels
    0..G-1, ``durations`` T per group (days). Returns arrays K, c, p, n (NaN where n < ``min_events``).
    """
    T = np.asarray(durations, dtype=float)
    G = T.size
    t = np.asarray(times, dtype=float)
    g = np.asarray(groups, dtype=np.int64)
    keep = (t > 0) & (t <= T[g])
    t, g = t[keep], g[keep]
    n = np.bincount(g, minlength=G)
    out = {k: np.full(G, np.nan) for k in ("K", "c", "p")}
    out["n"] = n
    fit = n >= min_events
    if not fit.any():
        return out
    remap = np.cumsum(fit) - 1
    sel = fit[g]
    log_c = np.log(10.0) * np.linspace(*log10_c_range, n_c)
    p_grid = np.linspace(*p_range, n_p)
    t_fit, g_fit, T_fit = t[sel], remap[g[sel]], T[fit]
    lc, p = np.empty(T_fit.size), np.empty(T_fit.size)
    for lo in range(0, T_fit.size, OMORI_GRID_BLOCK):  # a block of sequences at a time: bounded memory
        hi = min(lo + OMORI_GRID_BLOCK, T_fit.size)
        inside = (g_fit >= lo) & (g_fit < hi)
        ll = _omori_profile_loglik(t_fit[inside], g_fit[inside] - lo, T_fit[lo:hi], hi - lo, log_c, p_grid)
        lc[lo:hi], p[lo:hi] = _grid_argmax_refined(ll, log_c, p_grid)
    c = np.exp(lc)
    logA = np.array([_omori_integral_log(ck, pk, np.array([Tk]))[0] for ck, pk, Tk in zip(c, p, T[fit])])
    out["c"][fit] = c
    out["p"][fit] = p
    out["K"][fit] = n[fit] / np.exp(logA)
    return out


def omori_utsu_sample(n: int, c: float, p: float, T: float, rng: np.random.Generator) -> np.ndarray:
    """n sorted times in (0, T] from the density ∝ (t+c)^-p, by inverse CDF (for tests and baselines)."""
    u = rng.random(n)
    if abs(p - 1.0) < 1e-12:
        t = c * np.expm1(u * np.log1p(T / c))
    else:
        a = c ** (1 - p)
        b = (T + c) ** (1 - p)
        t = (a + u * (b - a)) ** (1 / (1 - p)) - c
    return np.sort(t)


def bath_gap(magnitudes: np.ndarray) -> float:
    """Båth's gap ΔM = M_mainshock - M_largest aftershock (Båth 1965), for one time-ordered sequence.

    The mainshock is the largest event (first one on ties); NaN when no event follows it.
    """
    m = np.asarray(magnitudes, dtype=float)
    if m.size == 0:
        return np.nan
    i = int(np.argmax(m))
    if i == m.size - 1:
        return np.nan
    return float(m[i] - m[i + 1 :].max())


# --------------------------------------------------------------------------------------------------
# space
# --------------------------------------------------------------------------------------------------


def inter_event_distances(x: np.ndarray, y: np.ndarray, groups=None) -> np.ndarray:
    """Epicentral distances between consecutive events (km), never across a group boundary."""
    d = np.hypot(np.diff(np.asarray(x, float)), np.diff(np.asarray(y, float)))
    if groups is not None:
        g = np.asarray(groups)
        d = d[g[1:] == g[:-1]]
    return d


def distances_to_largest(x: np.ndarray, y: np.ndarray, magnitudes: np.ndarray) -> np.ndarray:
    """Distances (km) from the largest event (first on ties) to every other event of the sequence."""
    m = np.asarray(magnitudes, float)
    if m.size < 2:
        return np.empty(0)
    i = int(np.argmax(m))
    d = np.hypot(np.asarray(x, float) - x[i], np.asarray(y, float) - y[i])
    return np.delete(d, i)


def pair_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """All n(n-1)/2 pairwise epicentral distances (km) of one sequence."""
    if len(x) < 2:
        return np.empty(0)
    return pdist(np.column_stack([x, y]))


def correlation_integral(pair_dists: np.ndarray, r: float) -> float:
    """Grassberger–Procaccia correlation integral C(r): fraction of event pairs closer than r km."""
    d = np.asarray(pair_dists, float)
    return float(np.mean(d < r)) if d.size else np.nan


def nearest_neighbour_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance (km) from each event to its nearest other event in the sequence."""
    n = len(x)
    if n < 2:
        return np.full(n, np.nan)
    xy = np.column_stack([x, y])
    d2 = np.sum((xy[:, None, :] - xy[None, :, :]) ** 2, axis=-1)
    np.fill_diagonal(d2, np.inf)
    return np.sqrt(d2.min(axis=1))


# --------------------------------------------------------------------------------------------------
# two-sample distances and tests
# --------------------------------------------------------------------------------------------------


def ks_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov–Smirnov statistic sup|F_a - F_b| and its p-value.

    scipy ``ks_2samp``: exact p-value for small samples, asymptotic once both exceed 500 (the exact
    computation costs O(n1·n2) and differs negligibly there).
    """
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return np.nan, np.nan
    method = "asymp" if min(a.size, b.size) > 500 else "auto"
    res = stats.ks_2samp(a, b, method=method)
    return float(res.statistic), float(res.pvalue)


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """First Wasserstein (earth mover's) distance between two empirical distributions, in the data's units."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return np.nan
    return float(stats.wasserstein_distance(a, b))


def median_heuristic(Z: np.ndarray, rng: np.random.Generator, max_points: int = 1000) -> float:
    """Kernel bandwidth σ = median pairwise Euclidean distance of the pooled sample (Gretton et al. 2012)."""
    if len(Z) > max_points:
        Z = Z[rng.choice(len(Z), max_points, replace=False)]
    d = pdist(Z)
    d = d[d > 0]
    return float(np.median(d)) if d.size else 1.0


def _gaussian_gram(Z: np.ndarray, sigma: float) -> np.ndarray:
    sq = np.sum(Z**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * Z @ Z.T, 0.0)
    return np.exp(-d2 / (2 * sigma**2))


def _mmd2_from_gram(K0: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Unbiased MMD² for each column of the 0/1 membership matrix S (1 = first sample), K0 zero diagonal."""
    n = K0.shape[0]
    T = 1.0 - S
    n1 = S.sum(axis=0)
    n2 = n - n1
    KS = K0 @ S
    sxx = np.sum(S * KS, axis=0)
    sxy = np.sum(T * KS, axis=0)
    syy = np.sum(T * (K0 @ T), axis=0)
    return sxx / (n1 * (n1 - 1)) + syy / (n2 * (n2 - 1)) - 2 * sxy / (n1 * n2)


def mmd_test(
    X: np.ndarray,
    Y: np.ndarray,
    rng: np.random.Generator,
    *,
    n_permutations: int = 200,
    max_samples: int = 500,
    bandwidth: float | None = None,
) -> tuple[float, float, float]:
    """Unbiased MMD² with a Gaussian kernel, and its permutation p-value.

    Gretton et al. (2012), eq. 3: MMD²_u = Σ_{i≠j}k(x_i,x_j)/(m(m-1)) + Σ_{i≠j}k(y_i,y_j)/(n(n-1))
    - 2Σk(x_i,y_j)/(mn), k(a,b) = exp(-|a-b|²/(2σ²)), σ by the median heuristic on the pooled sample.
    Each sample is subsampled to at most ``max_samples`` rows (cost ∝ n²·permutations). The p-value is
    (1 + #{MMD²_perm ≥ MMD²}) / (1 + n_permutations). Returns (mmd2, p_value, sigma).
    """
    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    if len(X) > max_samples:
        X = X[rng.choice(len(X), max_samples, replace=False)]
    if len(Y) > max_samples:
        Y = Y[rng.choice(len(Y), max_samples, replace=False)]
    if len(X) < 2 or len(Y) < 2:
        return np.nan, np.nan, np.nan
    Z = np.vstack([X, Y])
    sigma = bandwidth if bandwidth is not None else median_heuristic(Z, rng)
    K0 = _gaussian_gram(Z, sigma)
    np.fill_diagonal(K0, 0.0)
    n, n1 = len(Z), len(X)
    s_obs = np.zeros((n, 1))
    s_obs[:n1] = 1.0
    observed = float(_mmd2_from_gram(K0, s_obs)[0])
    if n_permutations <= 0:
        return observed, np.nan, sigma
    perms = np.argsort(rng.random((n_permutations, n)), axis=1)[:, :n1]
    S = np.zeros((n, n_permutations))
    S[perms, np.arange(n_permutations)[:, None]] = 1.0
    null = _mmd2_from_gram(K0, S)
    p = (1.0 + np.sum(null >= observed)) / (1.0 + n_permutations)
    return observed, float(p), sigma


def c2st(
    X: np.ndarray,
    Y: np.ndarray,
    rng: np.random.Generator,
    *,
    classifier: str = "knn",
    n_folds: int = 5,
    max_samples: int = 1000,
) -> tuple[float, float, float]:
    """Classifier two-sample test: cross-validated held-out accuracy of telling X rows from Y rows.

    Lopez-Paz & Oquab (2017): under H0 (same distribution) the accuracy of a balanced test set is
    Binomial(n, 1/2)/n, so 0.5 means indistinguishable; SE = sqrt(0.25/n) under H0. The samples are
    balanced by subsampling to the smaller size (capped at ``max_samples`` each), features standardised
    inside each fold. ``classifier``: "knn" (k = √n_train, odd), "logistic", or "gbm" (gradient boosting).
    Returns (accuracy, standard error under H0, one-sided binomial p-value of accuracy > 1/2).
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    m = min(len(X), len(Y), max_samples)
    if m < n_folds:
        return np.nan, np.nan, np.nan
    X = X[rng.choice(len(X), m, replace=False)]
    Y = Y[rng.choice(len(Y), m, replace=False)]
    Z = np.vstack([X, Y])
    labels = np.r_[np.zeros(m, int), np.ones(m, int)]
    n_train = int(2 * m * (n_folds - 1) / n_folds)
    seed = int(rng.integers(2**31 - 1))
    if classifier == "knn":
        k = max(1, int(np.sqrt(n_train)) // 2 * 2 + 1)
        model = KNeighborsClassifier(n_neighbors=k)
    elif classifier == "logistic":
        model = LogisticRegression(max_iter=1000)
    elif classifier == "gbm":
        model = HistGradientBoostingClassifier(max_iter=100, max_depth=3, random_state=seed)
    else:
        raise ValueError(f"classifier must be 'knn', 'logistic' or 'gbm', got {classifier!r}")
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    pred = cross_val_predict(make_pipeline(StandardScaler(), model), Z, labels, cv=folds)
    n = 2 * m
    correct = int(np.sum(pred == labels))
    p = stats.binomtest(correct, n, 0.5, alternative="greater").pvalue
    return correct / n, float(np.sqrt(0.25 / n)), float(p)
