"""CSEP catalog-based consistency tests (Savran et al. 2020, as coded in pyCSEP 0.8
``csep.core.catalog_evaluations``): the number test and the magnitude test, with the quantiles of the
observation in the simulated test distribution. Pure functions, numpy arrays in and out; importable from
``etasvae.stats`` as well.
"""

from __future__ import annotations

import numpy as np


def csep_quantiles(test_distribution: np.ndarray, observed) -> tuple[np.ndarray, np.ndarray]:
    """δ1 = P(X ≥ x_obs) and δ2 = P(X ≤ x_obs) over the simulated test distribution X (pyCSEP get_quantiles).

    ``observed`` may be a scalar or an array (one pair of quantiles per observation). NaN if X is empty.
    """
    x = np.sort(np.asarray(test_distribution, float))
    obs = np.asarray(observed, float)
    if x.size == 0:
        nan = np.full(obs.shape, np.nan)
        return nan, nan
    n = x.size
    delta1 = (n - np.searchsorted(x, obs, side="left")) / n
    delta2 = np.searchsorted(x, obs, side="right") / n
    return delta1, delta2


def csep_number_test(sim_counts: np.ndarray, obs_count) -> tuple[np.ndarray, np.ndarray]:
    """Catalog number test: δ1 = P(N_sim ≥ N_obs), δ2 = P(N_sim ≤ N_obs) over the forecast ensemble.

    Savran et al. (2020) eq. 4–5; pyCSEP ``number_test``. Small δ1: too few events forecast; small δ2:
    too many.
    """
    return csep_quantiles(sim_counts, obs_count)


def magnitude_histogram(magnitudes: np.ndarray, mag_bins: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """Counts in magnitude bins [edge_k, edge_{k+1}), last bin open to +∞, events below edge_0 dropped.

    pyCSEP ``magnitude_counts`` (``bin1d_vec(..., right_continuous=True)``); ``tol`` absorbs round-off
    for magnitudes that sit on a bin edge.
    """
    edges = np.asarray(mag_bins, float)
    m = np.asarray(magnitudes, float)
    h = edges[1] - edges[0] if edges.size > 1 else 1.0
    idx = np.floor((m - edges[0] + tol) / h).astype(np.int64)
    idx = np.minimum(idx, edges.size - 1)
    idx = idx[idx >= 0]
    return np.bincount(idx, minlength=edges.size).astype(float)


def csep_magnitude_test(sim_magnitudes: list, obs_magnitudes, mag_bins: np.ndarray) -> tuple:
    """Catalog magnitude test (Savran et al. 2020 eq. 13–15, pyCSEP ``magnitude_test``).

    Union histogram Λ_U = mean of the simulated catalogs' magnitude histograms, rescaled to N_obs events.
    Each simulated catalog j with N_j > 0 events gives D_j = Σ_k [log10(Λ_j,k·N_obs/N_j + 1) -
    log10(Λ_U,k + 1)]²; the observation gives D_obs = Σ_k [log10(Ω_k + 1) - log10(Λ_U,k + 1)]².
    Returns (δ1, δ2, D_obs, D_sim) with δ1 = P(D ≥ D_obs) (small: the observed magnitudes are unusual)
    and δ2 = P(D ≤ D_obs).

    ``obs_magnitudes``: one array (one observed catalog) or a list of arrays (each tested against the
    same ensemble; δ1, δ2, D_obs then are arrays and D_sim a list of arrays).
    """
    edges = np.asarray(mag_bins, float)
    hist = np.array([magnitude_histogram(m, edges) for m in sim_magnitudes]).reshape(-1, edges.size)
    n_sim = hist.sum(axis=1)
    union = hist.mean(axis=0)
    n_union = union.sum()
    nonempty = hist[n_sim > 0] / n_sim[n_sim > 0, None]
    single = not isinstance(obs_magnitudes, (list, tuple))
    obs_list = [obs_magnitudes] if single else list(obs_magnitudes)
    obs_hist = np.array([magnitude_histogram(m, edges) for m in obs_list]).reshape(-1, edges.size)
    n_obs = obs_hist.sum(axis=1)
    d1 = np.full(len(obs_list), np.nan)
    d2 = np.full(len(obs_list), np.nan)
    d_obs = np.full(len(obs_list), np.nan)
    d_sim: list = [np.empty(0)] * len(obs_list)
    for n in np.unique(n_obs):
        if n <= 0 or n_union <= 0:
            continue
        rows = np.flatnonzero(n_obs == n)
        log_union = np.log10(union * (n / n_union) + 1.0)
        dist = np.sum((np.log10(nonempty * n + 1.0) - log_union) ** 2, axis=1)
        obs_stat = np.sum((np.log10(obs_hist[rows] + 1.0) - log_union) ** 2, axis=1)
        q1, q2 = csep_quantiles(dist, obs_stat)
        d1[rows], d2[rows], d_obs[rows] = q1, q2, obs_stat
        for r in rows:
            d_sim[r] = dist
    if single:
        return float(d1[0]), float(d2[0]), float(d_obs[0]), d_sim[0]
    return d1, d2, d_obs, d_sim
