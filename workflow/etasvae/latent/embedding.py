"""Embedding windows: each window's latent posterior next to what it describes and its config's parameters.

Everything in the latent stage works on the posterior *means* of the windows (the encoder's mean head):
they are what the maps show, what the kNN classifier and the linear maps read, and what "activity"
measures. Descriptive features of a window are computed from ``windows_to_catalog(X, spec)``, i.e. from
the events the feature vector stands for, so they mean the same for event and binned windows and for
synthetic windows. Every window is put on its own clock starting at 0 days.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from .. import stats
from ..features import check_spec, windows_to_catalog
from ..models.files import ModelBundle, encode_windows
from ..models.sequence import window_origins

# ETAS parameters copied onto every embedded window (those present in the config's parameter dict).
ETAS_COLUMNS = ("mu", "K", "alpha", "c", "p", "D", "q", "gamma", "b", "tau", "branching_ratio")
# Window metadata kept from the windows table, where present.
META_COLUMNS = ("window_id", "replicate", "role", "config_id", "source_window_id",
                "start_event", "end_event", "t_start", "t_end")
DESCRIPTIVE_COLUMNS = ("n_events", "duration_days", "max_magnitude", "time_since_largest_days", "b_value")
B_VALUE_MIN_EVENTS = 10        # fewer events in a window: b-value NaN
DESCRIPTOR_CHUNK = 4096        # windows mapped back to events at a time: memory bounded, the same values
_Z = re.compile(r"^z(\d+)$")
_LV = re.compile(r"^lv(\d+)$")


def window_descriptors(X: np.ndarray, spec: dict[str, Any], *, delta_m: float = 0.0) -> pd.DataFrame:
    """Per window (row k of X): n_events, duration_days, max_magnitude, time_since_largest_days, b_value.

    duration_days: event windows the time from the first to the last event; binned windows the fixed
    window length (spec duration_days). time_since_largest_days: end of the window (last event, or the
    binned window's end) minus the time of the largest event (its first occurrence). b_value: Aki-Utsu
    maximum likelihood, b = log10(e) / (mean(M) - (Mc - delta_m/2)) (Aki 1965, Utsu 1965 bin correction;
    as ``stats.b_value_aki_utsu``), NaN below B_VALUE_MIN_EVENTS events. Empty windows (binned) get NaN
    for everything but n_events and duration_days. Windows are described DESCRIPTOR_CHUNK at a time (each
    window on its own clock, so chunks change no value): memory does not grow with the number of windows.
    """
    spec = check_spec(spec)
    parts = [_descriptors(X[i:i + DESCRIPTOR_CHUNK], spec, delta_m) for i in range(0, max(len(X), 1), DESCRIPTOR_CHUNK)]
    return pd.concat(parts, ignore_index=True)


def _descriptors(X: np.ndarray, spec: dict[str, Any], delta_m: float) -> pd.DataFrame:
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
    b = stats.b_value_from_mean(mean_mag, spec["mc"], delta_m, counts, min_events=B_VALUE_MIN_EVENTS)
    return pd.DataFrame({
        "n_events": counts.astype(np.int64),
        "duration_days": duration,
        "max_magnitude": max_mag,
        "time_since_largest_days": t_end - t_max,
        "b_value": b,
    })


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
