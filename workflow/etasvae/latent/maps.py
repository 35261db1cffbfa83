"""Latent maps: PCA and t-SNE of the windows' latent means, one panel per colouring, synthetic windows on top."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from ..features import build_windows, check_spec
from ..plotting import panel_figure, save_png
from ..models.files import ModelBundle, encode_windows
from .embedding import ETAS_COLUMNS, latent_columns
from ..threads import one_thread

TSNE_MAX_POINTS = 1000         # real windows fitted by t-SNE at most (seeded subsample; a figure, no statistic)
TSNE_MAP_MAX_POINTS = 20000    # real windows on a t-SNE map at most: those not fitted are placed by transform
SYNTHETIC_MAX_POINTS = 1000    # synthetic windows placed on a map at most


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
    from matplotlib.lines import Line2D

    panels = _panels(emb)
    fig, axes = panel_figure(len(panels), ncols=4 if len(panels) > 6 else 3)
    order = rng.permutation(len(coords))      # no category systematically drawn on top
    xy, e = coords[order], emb.iloc[order].reset_index(drop=True)
    size = 6 if len(xy) > 500 else 14
    synth_handle = None
    if synth is not None and len(synth):
        synth_handle = Line2D([], [], color="black", marker="x", linestyle="none", markersize=5,
                              label=f"synthetic windows ({len(synth)})")
    for ax, p in zip(axes, panels):
        if p.get("categorical"):
            handles = _categorical_panel(ax, p, xy, e, emb, size) + [synth_handle]
        else:
            handles = [synth_handle] + _continuous_panel(fig, ax, p, xy, e, size)
        handles = [h for h in handles if h is not None]
        if handles:
            ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.8)
        if synth is not None and len(synth):
            ax.scatter(synth[:, 0], synth[:, 1], marker="x", color="black", s=12, linewidths=0.6)
        ax.set_title(p["title"], fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    fig.suptitle(title)
    save_png(fig, path, tight=True)


def _categorical_panel(ax, p: dict[str, Any], xy: np.ndarray, e: pd.DataFrame, emb: pd.DataFrame, size: float):
    """One colour per category (roles in pipeline order, configs with their varied parameters); legend handles."""
    from matplotlib import colormaps
    from matplotlib.lines import Line2D

    values = e[p["col"]].astype(str).to_numpy()
    cats = [r for r in ("train", "validation", "heldout") if r in set(values)] if p["col"] == "role" \
        else sorted(set(values))
    names = _config_labels(emb) if p["col"] == "config_id" else {c: c for c in cats}
    cmap = "tab10" if len(cats) <= 10 else "tab20"
    colors = colormaps[cmap](np.arange(len(cats)) % colormaps[cmap].N)
    index = {c: i for i, c in enumerate(cats)}
    ax.scatter(xy[:, 0], xy[:, 1], c=colors[[index[v] for v in values]], s=size, alpha=0.7, linewidths=0)
    return [Line2D([], [], color=colors[i], marker="o", linestyle="none", markersize=5,
                   label=f"{names[c]} ({int((values == c).sum())})") for i, c in enumerate(cats)]


def _continuous_panel(fig, ax, p: dict[str, Any], xy: np.ndarray, e: pd.DataFrame, size: float):
    """A viridis colour scale with its bar; windows where the value is undefined in grey; legend handles."""
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

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
    handles = []
    if (~ok).any():
        ax.scatter(xy[~ok, 0], xy[~ok, 1], color="lightgrey", s=size, linewidths=0)
        handles.append(Line2D([], [], color="lightgrey", marker="o", linestyle="none", markersize=5,
                              label=f"not defined ({int((~ok).sum())})"))
    return handles


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


@one_thread
def tsne_map(Z: np.ndarray, *, perplexity: float, seed: int, rng: np.random.Generator,
             max_fit: int = TSNE_MAX_POINTS):
    """openTSNE coordinates (n, 2) of the rows of ``Z``: at most ``max_fit`` rows (seeded subsample) fit the
    map, the others are placed on it by ``transform``. Returns (coordinates, the fitted TSNEEmbedding, the
    fitted rows, the perplexity used)."""
    from openTSNE import TSNE

    fit = _subsample(len(Z), max_fit, rng)
    perp = float(max(2.0, min(perplexity, (len(fit) - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perp, random_state=int(seed), n_jobs=1, verbose=False)
    fitted = tsne.fit(Z[fit])
    placed = np.setdiff1d(np.arange(len(Z)), fit)
    coords = np.zeros((len(Z), 2))
    coords[fit] = np.asarray(fitted)
    if placed.size:
        coords[placed] = np.asarray(fitted.transform(Z[placed]))
    return coords, fitted, fit, perp


def plot_tsne(embedding: pd.DataFrame, path: str | os.PathLike, *, title: str, perplexity: float = 30.0,
              seed: int = 0, synthetic: np.ndarray | None = None) -> None:
    """PNG: openTSNE map of the real windows' latent means: at most TSNE_MAP_MAX_POINTS windows (seeded
    subsample), of which at most TSNE_MAX_POINTS fit the map (seeded subsample) and the others are placed on
    it with ``TSNEEmbedding.transform``, as are the synthetic latent means (black crosses). Time and memory
    grow linearly in the windows beyond the fitted ones, and stop growing at TSNE_MAP_MAX_POINTS."""
    rng = np.random.default_rng(seed)
    zc, _ = latent_columns(embedding)
    shown = _subsample(len(embedding), TSNE_MAP_MAX_POINTS, rng)
    emb = embedding.iloc[shown].reset_index(drop=True)
    Z = emb[zc].to_numpy(dtype=np.float64)
    coords, fitted, fit, perp = tsne_map(Z, perplexity=perplexity, seed=seed, rng=rng)
    placed = np.setdiff1d(np.arange(len(Z)), fit)
    synth = None
    if synthetic is not None and len(synthetic):
        pick = _subsample(len(synthetic), SYNTHETIC_MAX_POINTS, rng)
        synth = np.asarray(fitted.transform(np.asarray(synthetic, dtype=np.float64)[pick]))
    sub = f" ({len(fit)} fitted, {placed.size} placed" if placed.size else ""
    if len(Z) < len(embedding):
        sub = f"{sub}, of {len(embedding)} windows)" if sub else f" ({len(Z)} of {len(embedding)} windows)"
    elif sub:
        sub += ")"
    _draw_map(coords, emb, synth, path, title=f"{title}{sub}", xlabel=f"t-SNE 1 (perplexity {perp:g})",
              ylabel="t-SNE 2", rng=rng)
