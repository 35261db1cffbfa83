"""Statistics of whole windows: two-sample tests on per-window feature vectors, and the CSEP tests.

Same conventions as :mod:`etasvae.evaluate.statistics`: ``data`` is {"S", "H", "A", "P"} of SetData, and
each function returns a :class:`Comparison` of S, A and P against H.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import stats
from .statistics import OTHERS, RESOLUTION_LEVEL, Comparison, SetData
from .summaries import SUMMARY_FEATURES


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


def standardised_features(
    data: dict[str, SetData], max_windows: int, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """SUMMARY_FEATURES of at most ``max_windows`` windows per set, standardised with H's moments:
    (Z_H, {"S": Z_S, "A": Z_A, "P": Z_P})."""
    feats = {k: _features(v.summ) for k, v in data.items()}
    for k, f in feats.items():
        if len(f) > max_windows:
            feats[k] = f[np.sort(rng.choice(len(f), max_windows, replace=False))]
    Zh, Zs, Za, Zp = _standardise_like(feats["H"], feats["S"], feats["A"], feats["P"])
    return Zh, {"S": Zs, "A": Za, "P": Zp}


def mmd_comparison(
    Zh: np.ndarray, Z: dict[str, np.ndarray], rng: np.random.Generator, n_permutations: int, max_windows: int
) -> Comparison:
    """Unbiased MMD² with one Gaussian kernel (median heuristic on H); d = max(MMD², 0), permutation p;
    resolution: the 95 % quantile of S's permutation null (:func:`mmd_with_null`), at most ``max_windows``
    windows per set."""
    sigma = stats.median_heuristic(Zh, rng)
    mmd = {k: mmd_with_null(Z[k], Zh, sigma, rng, n_permutations, max_windows) for k in OTHERS}
    return Comparison(
        "mmd",
        "whole windows",
        "max(MMD², 0), Gaussian kernel",
        {k: mmd[k][0] for k in OTHERS},
        {},
        {k: max(mmd[k][0], 0.0) for k in OTHERS},
        {k: mmd[k][1] for k in OTHERS},
        mmd["S"][2],
    )


def mmd_with_null(X: np.ndarray, Y: np.ndarray, sigma: float, rng: np.random.Generator, n_permutations: int,
                  max_windows: int, level: float = RESOLUTION_LEVEL) -> tuple[float, float, float]:
    """(MMD², permutation p-value, (1 - level) quantile of the permutation null) of X against Y, each
    subsampled to at most ``max_windows`` rows: :func:`etasvae.stats.mmd_test` (same estimator, same
    p-value), with the null's quantile from the same permutations -- the MMD² that two samples of these
    sizes from one distribution exceed with probability ``level`` (cost ∝ n²·permutations)."""
    X, Y = np.asarray(X, float), np.asarray(Y, float)
    if len(X) > max_windows:
        X = X[rng.choice(len(X), max_windows, replace=False)]
    if len(Y) > max_windows:
        Y = Y[rng.choice(len(Y), max_windows, replace=False)]
    if len(X) < 2 or len(Y) < 2 or not np.isfinite(sigma):
        return np.nan, np.nan, np.nan
    Z = np.vstack([X, Y])
    K0 = stats._gaussian_gram(Z, sigma)
    np.fill_diagonal(K0, 0.0)
    member = np.zeros((len(Z), 1))
    member[: len(X)] = 1.0
    observed = float(stats._mmd2_from_gram(K0, member)[0])
    if n_permutations < 1:
        return observed, np.nan, np.nan
    perms = np.argsort(rng.random((n_permutations, len(Z))), axis=1)[:, : len(X)]
    member = np.zeros((len(Z), n_permutations))
    member[perms, np.arange(n_permutations)[:, None]] = 1.0
    null = stats._mmd2_from_gram(K0, member)
    p = (1.0 + np.sum(null >= observed)) / (1.0 + n_permutations)
    return observed, float(p), float(max(np.quantile(null, 1.0 - level), 0.0))


def c2st_comparison(
    Zh: np.ndarray, Z: dict[str, np.ndarray], rng: np.random.Generator, classifier: str, cv_folds: int, max_windows: int
) -> Comparison:
    """Cross-validated accuracy of a classifier telling X from H; d = |accuracy - 0.5|, binomial p."""
    cls = {k: stats.c2st(Z[k], Zh, rng, classifier=classifier, n_folds=cv_folds, max_samples=max_windows) for k in OTHERS}
    return Comparison(
        "c2st",
        "whole windows",
        f"|accuracy - 0.5| ({classifier})",
        {k: cls[k][0] for k in OTHERS},
        {k: cls[k][1] for k in OTHERS},
        {k: abs(cls[k][0] - 0.5) for k in OTHERS},
        {k: cls[k][2] for k in OTHERS},
        c2st_resolution(cls["S"][1]),
    )


def c2st_resolution(se_null: float, level: float = RESOLUTION_LEVEL) -> float:
    """|accuracy - 0.5| that a classifier reaches by chance with probability ``level`` (two-sided normal
    approximation of Binomial(n, 1/2)/n): z_{1-level/2}·se_null, se_null = sqrt(0.25/n) for n test windows."""
    return float(sps.norm.isf(level / 2) * se_null)


# ------------------------------------------------------------------------------------------ CSEP


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


def csep_number_comparison(data: dict[str, SetData], time_quantile: float, alpha: float) -> Comparison:
    """N-test of each H window's count in [0, T) against X's windows, T = ``time_quantile`` of H's durations.

    value = fraction of H windows rejected (two-sided, min(δ1, δ2) < α/2); d = KS distance of the
    mid-quantiles from U(0, 1), p its KS p-value.
    """
    T = float(np.quantile(data["H"].st.duration, time_quantile)) if data["H"].st.n_windows else np.nan
    counts = {k: np.bincount(v.st.g[v.st.t < T], minlength=v.st.n_windows) for k, v in data.items()}
    nt = {k: stats.csep_number_test(counts[k], counts["H"]) for k in OTHERS}
    ks_n = {k: _ks_uniform(_mid_quantile(*nt[k])) for k in OTHERS}
    return Comparison(
        "csep_number",
        "CSEP",
        f"KS(mid-quantile, U) of N-test, N in [0, {T:.3g} d)",
        {k: _fraction(np.minimum(*nt[k]) < alpha / 2, nt[k][0]) for k in OTHERS},
        {},
        {k: ks_n[k][0] for k in OTHERS},
        {k: ks_n[k][1] for k in OTHERS},
    )


def csep_magnitude_comparison(data: dict[str, SetData], mc: float, dm: float, alpha: float) -> Comparison:
    """M-test of each H window on magnitude histograms with bins of ``dm`` from Mc.

    value = fraction of H windows rejected (one-sided, γ = δ1 < α); d = KS distance of the mid-quantiles
    from U(0, 1), p its KS p-value.
    """
    mmax = max(float(v.st.m.max()) for v in data.values() if v.st.m.size)
    edges = mc + dm * np.arange(int(np.floor((mmax - mc) / dm + 1e-9)) + 1)
    split = {k: np.split(v.st.m, np.cumsum(v.st.n)[:-1]) for k, v in data.items()}
    mt = {k: stats.csep_magnitude_test(split[k], split["H"], edges) for k in OTHERS}
    ks_m = {k: _ks_uniform(_mid_quantile(mt[k][0], mt[k][1])) for k in OTHERS}
    return Comparison(
        "csep_magnitude",
        "CSEP",
        "KS(mid-quantile, U) of M-test",
        {k: _fraction(mt[k][0] < alpha, mt[k][0]) for k in OTHERS},
        {},
        {k: ks_m[k][0] for k in OTHERS},
        {k: ks_m[k][1] for k in OTHERS},
    )
