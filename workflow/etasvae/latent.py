"""The latent space of a trained VAE: embeddings, the numbers that say whether it is meaningful, maps,
interpolation, and synthetic catalogs sampled from the prior (DESIGN §4-6, issue 4).

Everything here works on the posterior *means* of the windows (the encoder's mean head): they are what
the maps show, what the kNN classifier and the linear maps read, and what "activity" measures.

Descriptive features of a window are computed from ``windows_to_catalog(X, spec)``, i.e. from the events
the feature vector stands for, so they mean the same for event and binned windows and for synthetic
windows. Every window is put on its own clock starting at 0 days (only differences of times are used).

Physical-range rule for synthetic catalogs (applied by ``features.windows_to_catalog`` and counted):
event windows: a decoded magnitude below Mc is set to Mc (``magnitude_below_mc``); a decoded log10
inter-event time below log10(min_dt_days) is raised to that floor (``dt_below_min``) and one above
``features.MAX_LOG10_DT_DAYS`` lowered to it (``dt_above_max``); times are the cumulative sum of the
(positive) inter-event times, so they increase within a window. Binned windows: counts are rounded to the
nearest integer and negative counts set to 0 (``negative_counts``).
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np
import pandas as pd
import torch

from .catalog import atomic_write
from .features import MAX_LOG10_DT_DAYS, build_windows, check_spec, windows_to_catalog
from .seqvae import health as seqvae_health
from .seqvae import window_origins
from .vae import ModelBundle, encode_windows, is_sequence, kl_divergence, reconstruction_loss, sample_windows

# ETAS parameters copied onto every embedded window (those present in the config's parameter dict).
ETAS_COLUMNS = ("mu", "K", "alpha", "c", "p", "D", "q", "gamma", "b", "tau", "branching_ratio")
# Window metadata kept from the windows table, where present.
META_COLUMNS = ("window_id", "replicate", "role", "config_id", "source_window_id",
                "start_event", "end_event", "t_start", "t_end")
DESCRIPTIVE_COLUMNS = ("n_events", "duration_days", "max_magnitude", "time_since_largest_days", "b_value")
ACTIVE_THRESHOLD = 0.01        # a latent unit is active if Var_windows(posterior mean) > this (Burda et al. 2016)
B_VALUE_MIN_EVENTS = 10        # fewer events in a window: b-value NaN
SILHOUETTE_MAX_POINTS = 3000   # silhouette is O(n^2): larger sets are subsampled (seeded)
TSNE_MAX_POINTS = 3000         # real windows fitted by t-SNE at most (seeded subsample)
SYNTHETIC_MAX_POINTS = 1000    # synthetic windows placed on a map at most
_Z = re.compile(r"^z(\d+)$")
_LV = re.compile(r"^lv(\d+)$")


# ------------------------------------------------------------------------------------ descriptive features


def window_descriptors(X: np.ndarray, spec: dict[str, Any], *, delta_m: float = 0.0) -> pd.DataFrame:
    """Per window (row k of X): n_events, duration_days, max_magnitude, time_since_largest_days, b_value.

    duration_days: event windows the time from the first to the last event; binned windows the fixed
    window length (spec duration_days). time_since_largest_days: end of the window (last event, or the
    binned window's end) minus the time of the largest event (its first occurrence). b_value: Aki-Utsu
    maximum likelihood, b = log10(e) / (mean(M) - (Mc - delta_m/2)) (Aki 1965, Utsu 1965 bin correction;
    as ``stats.b_value_aki_utsu``), NaN below B_VALUE_MIN_EVENTS events. Empty windows (binned) get NaN
    for everything but n_events and duration_days.
    """
    spec = check_spec(spec)
    n = len(X)
    cat = windows_to_catalog(np.asarray(X, dtype=np.float32), spec, t0=0.0)
    win = cat["window"].to_numpy()
    time = cat["time"].to_numpy()
    mag = cat["magnitude"].to_numpy()
    counts = np.bincount(win, minlength=n)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    has = counts > 0
    last = first + counts - 1
    t_first = np.full(n, np.nan)
    t_last = np.full(n, np.nan)
    t_first[has], t_last[has] = time[first[has]], time[last[has]]
    # Largest event per window: sort by (window, -magnitude, time) and take each window's first row.
    order = np.lexsort((time, -mag, win))
    top = order[first[has]]
    max_mag = np.full(n, np.nan)
    t_max = np.full(n, np.nan)
    max_mag[has], t_max[has] = mag[top], time[top]
    if spec["representation"] == "event":
        duration = t_last - t_first
        t_end = t_last
    else:
        duration = np.full(n, spec["duration_days"])
        t_end = np.full(n, spec["duration_days"])
    mean_mag = np.full(n, np.nan)
    mean_mag[has] = np.bincount(win, weights=mag, minlength=n)[has] / counts[has]
    denom = mean_mag - (spec["mc"] - delta_m / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        b = np.where((counts >= B_VALUE_MIN_EVENTS) & (denom > 0), math.log10(math.e) / denom, np.nan)
    return pd.DataFrame({
        "n_events": counts.astype(np.int64),
        "duration_days": duration,
        "max_magnitude": max_mag,
        "time_since_largest_days": t_end - t_max,
        "b_value": b,
    })


# ------------------------------------------------------------------------------------------ embedding


def latent_columns(embedding: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Names of the latent-mean (z0..) and log-variance (lv0..) columns, in unit order."""
    z = sorted((c for c in embedding.columns if _Z.match(c)), key=lambda c: int(c[1:]))
    lv = sorted((c for c in embedding.columns if _LV.match(c)), key=lambda c: int(c[2:]))
    return z, lv


def embed_windows(bundle: ModelBundle, table: pd.DataFrame, X: np.ndarray, *,
                  etas: dict[str, dict[str, Any]], delta_m: float = 0.0) -> pd.DataFrame:
    """One row per window (all roles): metadata, latent means z0.., log-variances lv0.., descriptive
    features (window_descriptors) and the ETAS parameters of the window's config (from ``etas``).

    A table without config_id (one config's windows) takes the single key of ``etas``.
    """
    if len(table) != len(X):
        raise ValueError(f"embed_windows: table has {len(table)} rows but X has {len(X)}")
    meta = table[[c for c in META_COLUMNS if c in table.columns]].reset_index(drop=True).copy()
    if "config_id" not in meta.columns:
        if len(etas) != 1:
            raise ValueError(f"embed_windows: the windows table has no config_id column, so `etas` must hold "
                             f"exactly one config; it holds {sorted(etas)}")
        meta.insert(min(3, len(meta.columns)), "config_id", next(iter(etas)))
    meta["config_id"] = meta["config_id"].astype(str)
    missing = sorted(set(meta["config_id"]) - set(etas))
    if missing:
        raise ValueError(f"embed_windows: no ETAS parameters given for config(s) {missing}")
    mu, logvar = encode_windows(bundle, X, window_origins(table))
    d = mu.shape[1]
    latent = pd.DataFrame(np.hstack([mu, logvar]).astype(np.float64),
                          columns=[f"z{i}" for i in range(d)] + [f"lv{i}" for i in range(d)])
    desc = window_descriptors(X, bundle.spec, delta_m=delta_m)
    keys = [k for k in ETAS_COLUMNS if any(k in etas[c] for c in etas)]
    params = pd.DataFrame({
        k: [np.nan if etas[c].get(k) is None else float(etas[c][k]) for c in meta["config_id"]] for k in keys
    })
    return pd.concat([meta, latent, desc, params], axis=1)


# ------------------------------------------------------------------------------------------- metrics


def _finite(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, numpy scalars plain Python."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    return value


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
    from sklearn.linear_model import LinearRegression
    from sklearn.neighbors import KNeighborsClassifier

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
        fit = np.isin(role, ("train", "validation"))
        test = role == "heldout"
        knn: dict[str, Any] = {"k": int(knn_neighbors), "n_train": int(fit.sum()), "n_test": int(test.sum()),
                               "n_classes": int(len(np.unique(configs)))}
        if fit.sum() > 0 and test.sum() > 0:
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
        else:
            knn["accuracy"] = math.nan
            knn["note"] = "no held-out or no training windows"
        out["knn"] = knn
        r2: dict[str, Any] = {}
        train = role == "train"
        for name in ETAS_COLUMNS:
            if name not in embedding.columns:
                continue
            y = embedding[name].to_numpy(dtype=np.float64)
            if not np.isfinite(y).all() or np.unique(y).size < 2:
                continue
            if train.sum() <= len(zc) or test.sum() < 2 or np.unique(y[test]).size < 2:
                r2[name] = math.nan
                continue
            reg = LinearRegression().fit(Z[train], y[train])
            r2[name] = float(reg.score(Z[test], y[test]))
        out["linear_r2"] = r2
    return _finite(out)


@torch.no_grad()
def model_health(bundle: ModelBundle, X_heldout: np.ndarray, origin: np.ndarray | None = None) -> dict[str, Any]:
    """VAE health on held-out windows, at z = posterior mean (deterministic): mean reconstruction loss per
    window in the model's own loss units (summed over features), mean squared error per feature in the
    model's scaled feature space (standardised for mse / gaussian_nll), mean KL per window, activity and
    active units (as latent_metrics, over the held-out windows). Sequence VAEs: ``seqvae.health`` (NLL with
    encoded z against z from the prior; ``origin`` = first-event positions of the windows)."""
    model = bundle.model.eval()
    if is_sequence(model):
        return _finite(seqvae_health(model, X_heldout, origin))
    X = np.asarray(X_heldout, dtype=np.float32)
    d = model.latent_dim
    if len(X) == 0:
        return _finite({"n_windows": 0, "loss": model.loss, "recon_loss": math.nan, "mse_scaled": math.nan,
                        "kl_per_window": math.nan, "n_active": 0, "activity": [math.nan] * d})
    dev = next(model.parameters()).device
    x = torch.from_numpy(bundle.transform.transform(X)).to(dev)
    mu, logvar = model.encode(x)
    out = model.decode(mu)
    recon = reconstruction_loss(model, out, x).mean().item()
    mse = (model.likelihood_mean(out) - x).pow(2).mean().item()
    kl = kl_divergence(mu, logvar).mean().item()
    activity, _ = activity_and_kl(mu.cpu().numpy().astype(np.float64), logvar.cpu().numpy().astype(np.float64))
    return _finite({
        "n_windows": int(len(X)), "loss": model.loss, "feature_scaling": bundle.transform.kind,
        "recon_loss": recon, "mse_scaled": mse, "kl_per_window": kl,
        "activity": activity.tolist(), "n_active": int((activity > ACTIVE_THRESHOLD).sum()),
    })


# ------------------------------------------------------------------------------------------ sampling


def sample_catalog(bundle: ModelBundle, n_windows: int, *, mode: str = "mean",
                   seed: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Synthetic catalog of ``n_windows`` windows: z ~ N(0, I) (seeded), decoder mean (``mode="mean"``) or
    a draw from the decoder likelihood (``"draw"``), inverse feature transform, then
    ``windows_to_catalog`` (module docstring: the physical-range rule). Every window starts at 0 days.

    Returns (catalog in the catalog schema plus an int64 ``window`` column, info) with info = mode, seed,
    n_windows, n_events, ``clipped`` (values mapped into the physical range, per rule) and ``clip_rule``.
    The same bundle, n_windows, mode and seed give the identical catalog.
    """
    if int(n_windows) < 0:
        raise ValueError(f"sample_catalog: n_windows must be >= 0, got {n_windows}")
    spec = check_spec(bundle.spec)
    X = sample_windows(bundle, int(n_windows), seed=int(seed), mode=mode)
    # Binned windows place events at random inside their cells: a generator derived from the same seed.
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 1]))
    catalog, clips = windows_to_catalog(X, spec, t0=0.0, rng=rng, return_clip_counts=True)
    if spec["representation"] == "event":
        rule = (f"magnitude < Mc -> Mc; log10 inter-event time < log10(min_dt_days = {spec['min_dt_days']:g}) -> "
                f"the floor, > {MAX_LOG10_DT_DAYS:g} -> {MAX_LOG10_DT_DAYS:g}")
        n_values = int(X.shape[0] * spec["length"])
    else:
        rule = "counts rounded to the nearest integer; negative counts -> 0"
        n_values = int(X.size)
    info = {
        "mode": mode, "seed": int(seed), "n_windows": int(n_windows), "n_events": int(len(catalog)),
        "representation": spec["representation"], "clipped": {k: int(v) for k, v in clips.items()},
        "values_per_rule": n_values, "clip_rule": rule,
    }
    return catalog, info


def catalog_windows(catalog: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    """Feature vectors of a synthetic catalog's windows (one per distinct ``window``, in window order), each
    window on its own clock starting at 0 days, as ``build_windows`` cuts them."""
    spec = check_spec(spec)
    if "window" not in catalog.columns:
        raise ValueError("catalog_windows: the catalog has no 'window' column")
    parts = []
    durations = {}
    cols = ["event_id", "time", "magnitude", "x", "y", "parent_id", "generation"]
    windows = catalog["window"].to_numpy()
    ids, starts = np.unique(windows, return_index=True)
    bounds = np.append(starts, len(catalog))
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        part = catalog.iloc[lo:hi][cols].reset_index(drop=True)
        part["event_id"] = np.arange(len(part), dtype=np.int64)
        part["parent_id"] = np.int64(-1)
        parts.append((k, part))
        durations[k] = spec.get("duration_days", 0.0)
    table, X = build_windows(parts, spec, heldout_replicates=list(range(len(parts))), validation_fraction=0.0,
                             durations=durations if spec["representation"] == "binned" else None)
    if len(table) != len(parts) or not (table["replicate"].to_numpy() == np.arange(len(parts))).all():
        raise ValueError(f"catalog_windows: expected one window per synthetic window ({len(parts)}), got "
                         f"{len(table)}; event windows need exactly {spec.get('length')} events each")
    return X


def synthetic_latents(bundle: ModelBundle, catalog: pd.DataFrame) -> np.ndarray:
    """Latent means (n_windows, latent_dim) of a synthetic catalog's windows, re-windowed and encoded."""
    if len(catalog) == 0:
        return np.zeros((0, bundle.model.latent_dim), np.float32)
    X = catalog_windows(catalog, bundle.spec)
    mu, _ = encode_windows(bundle, X)
    return mu


# --------------------------------------------------------------------------------------------- plots


def _figure(n_panels: int, ncols: int = 3, panel: tuple[float, float] = (4.2, 3.6), share: bool = False):
    from matplotlib.figure import Figure

    ncols = min(ncols, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig = Figure(figsize=(panel[0] * ncols, panel[1] * nrows + 0.5))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=share, sharey=share).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _save(fig, path: str | os.PathLike) -> None:
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))


def _config_labels(emb: pd.DataFrame) -> dict[str, str]:
    """Short legend label per config: the ETAS parameters that vary between configs (else the id)."""
    configs = sorted(emb["config_id"].astype(str).unique())
    first = emb.drop_duplicates("config_id").set_index("config_id")
    varied = [k for k in ETAS_COLUMNS if k in first.columns and k != "branching_ratio"
              and first[k].nunique(dropna=True) > 1]
    labels = {}
    for c in configs:
        if varied:
            text = ", ".join(f"{k}={first.loc[c, k]:.3g}" for k in varied)
            if "branching_ratio" in first.columns and np.isfinite(first.loc[c, "branching_ratio"]):
                text += f" (n={first.loc[c, 'branching_ratio']:.2f})"
        else:
            text = c
        labels[c] = text
    return labels


def _panels(emb: pd.DataFrame) -> list[dict[str, Any]]:
    """What each panel colours by: column, title, colour-bar label, categorical?, log colour scale?"""
    panels = [{"col": "max_magnitude", "title": "largest magnitude in window", "label": "magnitude"}]
    if emb["n_events"].nunique() > 1:
        panels.append({"col": "n_events", "title": "events in window", "label": "number of events", "log": True})
    else:
        panels.append({"col": "duration_days", "title": "window duration", "label": "duration [days]", "log": True})
    panels += [
        {"col": "time_since_largest_days", "title": "time from largest event to window end",
         "label": "time [days]", "log": True},
        {"col": "b_value", "title": "b-value of window (Aki-Utsu)", "label": "b-value", "clip": True},
        {"col": "role", "title": "window role", "categorical": True},
    ]
    if emb["config_id"].nunique() > 1:
        panels.append({"col": "config_id", "title": "ETAS config", "categorical": True})
        if "branching_ratio" in emb.columns:
            panels.append({"col": "branching_ratio", "title": "branching ratio of config",
                           "label": "branching ratio n", "clip": False})
    return panels


def _draw_map(coords: np.ndarray, emb: pd.DataFrame, synth: np.ndarray | None, path: str | os.PathLike, *,
              title: str, xlabel: str, ylabel: str, rng: np.random.Generator) -> None:
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    panels = _panels(emb)
    fig, axes = _figure(len(panels), ncols=4 if len(panels) > 6 else 3)
    order = rng.permutation(len(coords))      # no category systematically drawn on top
    xy, e = coords[order], emb.iloc[order].reset_index(drop=True)
    size = 6 if len(xy) > 500 else 14
    synth_handle = None
    if synth is not None and len(synth):
        synth_handle = Line2D([], [], color="black", marker="x", linestyle="none", markersize=5,
                              label=f"synthetic windows ({len(synth)})")
    for ax, p in zip(axes, panels):
        if p.get("categorical"):
            values = e[p["col"]].astype(str).to_numpy()
            cats = [r for r in ("train", "validation", "heldout") if r in set(values)] if p["col"] == "role" \
                else sorted(set(values))
            names = _config_labels(emb) if p["col"] == "config_id" else {c: c for c in cats}
            cmap = "tab10" if len(cats) <= 10 else "tab20"
            from matplotlib import colormaps
            colors = colormaps[cmap](np.arange(len(cats)) % colormaps[cmap].N)
            index = {c: i for i, c in enumerate(cats)}
            ax.scatter(xy[:, 0], xy[:, 1], c=colors[[index[v] for v in values]], s=size, alpha=0.7, linewidths=0)
            handles = [Line2D([], [], color=colors[i], marker="o", linestyle="none", markersize=5,
                              label=f"{names[c]} ({int((values == c).sum())})") for i, c in enumerate(cats)]
            if synth_handle is not None:
                handles.append(synth_handle)
            ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
        else:
            v = e[p["col"]].to_numpy(dtype=np.float64)
            ok = np.isfinite(v)
            if ok.any():
                # Colour range: 2nd-98th percentile (log panels: of the positive values), so that a few extreme
                # windows do not wash out the rest; values beyond it take the end colours (arrows on the bar).
                good = v[ok & (v > 0)] if p.get("log") else v[ok]
                good = good if len(good) else np.array([1.0])
                lo, hi = np.percentile(good, [2, 98]) if p.get("clip", True) else (good.min(), good.max())
                if hi <= lo:
                    hi = lo * 1.01 + 1e-9
                norm = LogNorm(lo, hi) if p.get("log") else Normalize(lo, hi)
                sc = ax.scatter(xy[ok, 0], xy[ok, 1], c=np.clip(v[ok], lo, hi), cmap="viridis", norm=norm,
                                s=size, alpha=0.8, linewidths=0)
                extend = "neither" if not p.get("clip", True) else "both"
                bar = fig.colorbar(sc, ax=ax, label=p["label"], extend=extend)
                if p.get("log"):                # ticks at 1, 2, 5 x 10^k written as plain numbers
                    bar.ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
                    bar.ax.yaxis.set_minor_formatter(NullFormatter())
            handles = [h for h in [synth_handle] if h is not None]
            if (~ok).any():
                ax.scatter(xy[~ok, 0], xy[~ok, 1], color="lightgrey", s=size, linewidths=0)
                handles.append(Line2D([], [], color="lightgrey", marker="o", linestyle="none", markersize=5,
                                      label=f"not defined ({int((~ok).sum())})"))
            if handles:
                ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
        if synth is not None and len(synth):
            ax.scatter(synth[:, 0], synth[:, 1], marker="x", color="black", s=12, linewidths=0.6)
        ax.set_title(p["title"], fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    fig.suptitle(title)
    _save(fig, path)


def _subsample(n: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, limit, replace=False)) if n > limit else np.arange(n)


def plot_pca(embedding: pd.DataFrame, path: str | os.PathLike, *, title: str,
             synthetic: np.ndarray | None = None, seed: int = 0) -> None:
    """PNG: the windows' latent means projected on their first two principal components (fitted on the real
    windows), one panel per colouring (module ``_panels``); synthetic latent means as black crosses."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    zc, _ = latent_columns(embedding)
    Z = embedding[zc].to_numpy(dtype=np.float64)
    k = min(2, Z.shape[1], len(Z))
    pca = PCA(n_components=k).fit(Z)
    coords = np.zeros((len(Z), 2))
    coords[:, :k] = pca.transform(Z)
    synth = None
    if synthetic is not None and len(synthetic):
        keep = _subsample(len(synthetic), SYNTHETIC_MAX_POINTS, rng)
        synth = np.zeros((len(keep), 2))
        synth[:, :k] = pca.transform(np.asarray(synthetic, dtype=np.float64)[keep])
    ratio = list(pca.explained_variance_ratio_) + [0.0] * (2 - k)
    _draw_map(coords, embedding.reset_index(drop=True), synth, path, title=title,
              xlabel=f"PC 1 of latent means ({100 * ratio[0]:.0f} % of variance)",
              ylabel=f"PC 2 of latent means ({100 * ratio[1]:.0f} % of variance)", rng=rng)


def plot_tsne(embedding: pd.DataFrame, path: str | os.PathLike, *, title: str, perplexity: float = 30.0,
              seed: int = 0, synthetic: np.ndarray | None = None, n_jobs: int = 1) -> None:
    """PNG: openTSNE map of the real windows' latent means (at most TSNE_MAX_POINTS, seeded subsample);
    synthetic latent means placed on the fitted map with ``TSNEEmbedding.transform``, as black crosses."""
    from openTSNE import TSNE

    rng = np.random.default_rng(seed)
    zc, _ = latent_columns(embedding)
    keep = _subsample(len(embedding), TSNE_MAX_POINTS, rng)
    emb = embedding.iloc[keep].reset_index(drop=True)
    Z = emb[zc].to_numpy(dtype=np.float64)
    perp = float(max(2.0, min(perplexity, (len(Z) - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perp, random_state=int(seed), n_jobs=int(n_jobs), verbose=False)
    fitted = tsne.fit(Z)
    coords = np.asarray(fitted)
    synth = None
    if synthetic is not None and len(synthetic):
        pick = _subsample(len(synthetic), SYNTHETIC_MAX_POINTS, rng)
        synth = np.asarray(fitted.transform(np.asarray(synthetic, dtype=np.float64)[pick]))
    sub = f" ({len(Z)} of {len(embedding)} windows)" if len(Z) < len(embedding) else ""
    _draw_map(coords, emb, synth, path, title=f"{title}{sub}", xlabel=f"t-SNE 1 (perplexity {perp:g})",
              ylabel="t-SNE 2", rng=rng)


@torch.no_grad()
def interpolation_windows(bundle: ModelBundle, embedding: pd.DataFrame, steps: int = 6
                          ) -> tuple[pd.DataFrame, np.ndarray, pd.Series, pd.Series]:
    """Decoded windows (decoder mean) along the straight line between the latent means of a quiet window
    (lowest max magnitude) and of a window holding a large mainshock (highest max magnitude), both taken
    from the held-out and training windows. Returns (catalog with ``window`` = step, fractions along the
    line, quiet row, mainshock row)."""
    if steps < 2:
        raise ValueError(f"interpolation needs steps >= 2, got {steps}")
    zc, _ = latent_columns(embedding)
    pool = embedding[embedding["role"].isin(["heldout", "train"]) & embedding["max_magnitude"].notna()]
    if pool.empty:
        pool = embedding[embedding["max_magnitude"].notna()]
    if pool.empty:
        raise ValueError("interpolation: no window with events to start from")
    quiet = pool.loc[pool["max_magnitude"].idxmin()]
    loud = pool.loc[pool["max_magnitude"].idxmax()]
    frac = np.linspace(0.0, 1.0, steps)
    z0 = quiet[zc].to_numpy(dtype=np.float32)
    z1 = loud[zc].to_numpy(dtype=np.float32)
    Z = (1.0 - frac[:, None]) * z0[None, :] + frac[:, None] * z1[None, :]
    model = bundle.model.eval()
    dev = next(model.parameters()).device
    out = model.likelihood_mean(model.decode(torch.from_numpy(Z.astype(np.float32)).to(dev))).cpu().numpy()
    X = bundle.transform.inverse(out)
    catalog = windows_to_catalog(X, check_spec(bundle.spec), t0=0.0)
    return catalog, frac, quiet, loud


def plot_interpolation(bundle: ModelBundle, embedding: pd.DataFrame, path: str | os.PathLike, *,
                       title: str, steps: int = 6) -> None:
    """PNG: magnitude-time stem plots of the decoded windows along the latent line from a quiet window to a
    window holding a large mainshock (interpolation_windows); one panel per step, shared axes."""
    catalog, frac, quiet, loud = interpolation_windows(bundle, embedding, steps)
    mc = float(check_spec(bundle.spec)["mc"])
    fig, axes = _figure(steps, ncols=3, panel=(4.0, 2.8), share=True)
    top = max(float(catalog["magnitude"].max()) if len(catalog) else mc + 1, mc + 1)
    for step, ax in enumerate(axes):
        ev = catalog[catalog["window"] == step]
        t, m = ev["time"].to_numpy(), ev["magnitude"].to_numpy()
        ax.vlines(t, mc, m, color="tab:blue", linewidth=0.8)
        ax.scatter(t, m, s=10, color="tab:blue", zorder=3)
        if len(m):
            i = int(np.argmax(m))
            ax.scatter([t[i]], [m[i]], s=60, marker="*", color="tab:red", zorder=4,
                       label=f"largest: M {m[i]:.1f}")
            ax.legend(fontsize=7, loc="upper right")
        name = ""
        if step == 0:
            name = f" — quiet window (max M {quiet['max_magnitude']:.1f})"
        elif step == steps - 1:
            name = f" — mainshock window (max M {loud['max_magnitude']:.1f})"
        ax.set_title(f"step {step}: λ = {frac[step]:.2f}{name}", fontsize=9)
        ax.set_xlabel("time since window start [days]")
        ax.set_ylabel("magnitude")
        ax.set_ylim(mc - 0.05, top + 0.3)
        ax.grid(alpha=0.3)
        ax.label_outer()
    how = "decoded windows (decoder mean) along z = (1 − λ)·z_quiet + λ·z_mainshock"
    if check_spec(bundle.spec)["representation"] == "binned":
        how += "\n(binned: events spread evenly over each time bin × magnitude band cell)"
    fig.suptitle(f"{title}\n{how}")
    _save(fig, path)
