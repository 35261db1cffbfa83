"""Numbers that say whether a latent space is meaningful: activity, KL, silhouettes, kNN and linear maps."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..fileio import to_jsonable
from .embedding import ETAS_COLUMNS, latent_columns

ACTIVE_THRESHOLD = 0.01        # a latent unit is active if Var_windows(posterior mean) > this (Burda et al. 2016)
SILHOUETTE_MAX_POINTS = 3000   # silhouette is O(n^2): larger sets are subsampled (seeded)


def _silhouette(Z: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> float:
    from sklearn.metrics import silhouette_score

    ok = pd.notna(labels)
    Z, labels = Z[ok], np.asarray(labels)[ok]
    if len(np.unique(labels)) < 2 or len(Z) < 3:
        return math.nan
    if len(Z) > SILHOUETTE_MAX_POINTS:
        keep = rng.choice(len(Z), SILHOUETTE_MAX_POINTS, replace=False)
        Z, labels = Z[keep], labels[keep]
        if len(np.unique(labels)) < 2:
            return math.nan
    return float(silhouette_score(Z, labels))


def _terciles(values: pd.Series) -> np.ndarray:
    """Class 0/1/2 by terciles of ``values`` (fewer classes where ties merge them); NaN stays NaN."""
    try:
        return pd.qcut(values, 3, labels=False, duplicates="drop").to_numpy(dtype=np.float64)
    except ValueError:
        return np.full(len(values), np.nan)


def activity_and_kl(mu: np.ndarray, logvar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per latent unit: variance over windows of the posterior mean, and mean KL(q(z_j|x) || N(0,1))."""
    activity = mu.var(axis=0) if len(mu) else np.full(mu.shape[1], np.nan)
    kl = 0.5 * (mu ** 2 + np.exp(logvar) - 1.0 - logvar)
    return activity, kl.mean(axis=0) if len(mu) else np.full(mu.shape[1], np.nan)


def latent_metrics(embedding: pd.DataFrame, *, knn_neighbors: int = 15, seed: int = 0) -> dict[str, Any]:
    """Numbers that say whether the latent space is meaningful (JSON-serialisable; non-finite -> null).

    - ``units``: per latent unit its activity (variance over all windows of the posterior mean), whether it
      is active (activity > ACTIVE_THRESHOLD) and its mean KL; ``n_active``; ``posterior_collapse`` (no
      active unit);
    - ``silhouette``: silhouette score of the latent means grouped by config (pooled model only), by
      terciles of max magnitude, and by terciles of the window duration (event windows) or of the event
      count (binned windows); a value near 0 means no grouping, 1 perfectly separated groups;
    - pooled model (more than one config_id): ``knn`` (a k-nearest-neighbour classifier of config from
      latent means, trained on train + validation windows, scored on held-out windows; chance = the share of
      the most frequent config among held-out windows, with the binomial standard errors of chance and of
      the accuracy) and ``linear_r2`` (R^2 on held-out windows of a least-squares map from latent means,
      fitted on training windows, to each ETAS parameter that varies between configs).
    """
    rng = np.random.default_rng(seed)
    zc, lc = latent_columns(embedding)
    if not zc:
        raise ValueError("latent_metrics: the embedding has no latent-mean columns z0, z1, ...")
    Z = embedding[zc].to_numpy(dtype=np.float64)
    LV = embedding[lc].to_numpy(dtype=np.float64)
    activity, kl = activity_and_kl(Z, LV)
    active = activity > ACTIVE_THRESHOLD
    configs = embedding["config_id"].astype(str).to_numpy() if "config_id" in embedding else np.zeros(len(Z), str)
    pooled = len(np.unique(configs)) > 1
    role = embedding["role"].astype(str).to_numpy()
    out: dict[str, Any] = {
        "n_windows": int(len(Z)),
        "n_windows_by_role": {r: int((role == r).sum()) for r in ("train", "validation", "heldout")},
        "latent_dim": len(zc),
        "active_threshold": ACTIVE_THRESHOLD,
        "units": [{"unit": i, "activity": float(a), "active": bool(f), "mean_kl": float(k)}
                  for i, (a, f, k) in enumerate(zip(activity, active, kl))],
        "n_active": int(active.sum()),
        "posterior_collapse": bool(active.sum() == 0),
        "mean_kl_per_window": float(kl.sum()) if len(Z) else math.nan,
        "pooled": pooled,
    }
    by_length = "n_events" if embedding["n_events"].nunique() > 1 else "duration_days"
    sil = {
        "max_magnitude_terciles": _silhouette(Z, _terciles(embedding["max_magnitude"]), rng),
        f"{by_length}_terciles": _silhouette(Z, _terciles(embedding[by_length]), rng),
    }
    if pooled:
        sil["config"] = _silhouette(Z, configs, rng)
    out["silhouette"] = sil

    if pooled:
        out["knn"] = _knn_scores(Z, configs, role, knn_neighbors)
        out["linear_r2"] = _linear_r2(embedding, Z, role, len(zc))
    return to_jsonable(out)


def _knn_scores(Z: np.ndarray, configs: np.ndarray, role: np.ndarray, knn_neighbors: int) -> dict[str, Any]:
    """kNN config classifier from latent means: fitted on train + validation, scored on held-out windows,
    against chance (the share of the most frequent held-out config) with binomial standard errors."""
    from sklearn.neighbors import KNeighborsClassifier

    fit = np.isin(role, ("train", "validation"))
    test = role == "heldout"
    knn: dict[str, Any] = {"k": int(knn_neighbors), "n_train": int(fit.sum()), "n_test": int(test.sum()),
                           "n_classes": int(len(np.unique(configs)))}
    if not (fit.sum() > 0 and test.sum() > 0):
        knn["accuracy"] = math.nan
        knn["note"] = "no held-out or no training windows"
        return knn
    k = int(min(knn_neighbors, fit.sum()))
    clf = KNeighborsClassifier(n_neighbors=k).fit(Z[fit], configs[fit])
    acc = float((clf.predict(Z[test]) == configs[test]).mean())
    _, freq = np.unique(configs[test], return_counts=True)
    chance = float(freq.max() / test.sum())
    n_test = int(test.sum())
    knn.update({
        "k": k, "accuracy": acc, "chance": chance,
        "chance_se": math.sqrt(chance * (1.0 - chance) / n_test),
        "accuracy_se": math.sqrt(acc * (1.0 - acc) / n_test),
        "uniform_chance": 1.0 / len(np.unique(configs)),
    })
    knn["margin_in_chance_se"] = ((acc - chance) / knn["chance_se"]) if knn["chance_se"] > 0 else math.nan
    return knn


def _linear_r2(embedding: pd.DataFrame, Z: np.ndarray, role: np.ndarray, latent_dim: int) -> dict[str, Any]:
    """R² on held-out windows of a least-squares map from latent means (fitted on training windows) to each
    ETAS parameter that varies between configs."""
    from sklearn.linear_model import LinearRegression

    r2: dict[str, Any] = {}
    train, test = role == "train", role == "heldout"
    for name in ETAS_COLUMNS:
        if name not in embedding.columns:
            continue
        y = embedding[name].to_numpy(dtype=np.float64)
        if not np.isfinite(y).all() or np.unique(y).size < 2:
            continue
        if train.sum() <= latent_dim or test.sum() < 2 or np.unique(y[test]).size < 2:
            r2[name] = math.nan
            continue
        reg = LinearRegression().fit(Z[train], y[train])
        r2[name] = float(reg.score(Z[test], y[test]))
    return r2
