"""The sample stage: synthetic catalogs drawn from a VAE's prior through its decoder.

Physical-range rule for synthetic catalogs (applied by ``features.windows_to_catalog`` and counted):
event windows: a decoded magnitude below Mc is set to Mc (``magnitude_below_mc``); a decoded log10
inter-event time below log10(min_dt_days) is raised to that floor (``dt_below_min``) and one above
``features.MAX_LOG10_DT_DAYS`` lowered to it (``dt_above_max``); times are the cumulative sum of the
(positive) inter-event times, so they increase within a window. Binned windows: counts are rounded to the
nearest integer and negative counts set to 0 (``negative_counts``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from .config import schema_default
from .features import MAX_LOG10_DT_DAYS, check_spec, windows_to_catalog
from .models.files import ModelBundle, sample_windows


def sample_catalog(bundle: ModelBundle, n_windows: int, *, mode: str | None = None, seed: int = 0,
                   return_latent: bool = False):
    """Synthetic catalog of ``n_windows`` windows: z ~ N(0, I) (seeded), decoder mean (``mode="mean"``) or
    a draw from the decoder likelihood (``"draw"``), inverse feature transform, then
    ``windows_to_catalog`` (module docstring: the physical-range rule). Every window starts at 0 days.

    Returns (catalog in the catalog schema plus an int64 ``window`` column, info) with info = mode, seed,
    n_windows, n_events, ``clipped`` (values mapped into the physical range, per rule) and ``clip_rule``.
    The same bundle, n_windows, mode and seed give the identical catalog. With ``return_latent`` the z
    each window was decoded from comes third (float32, n_windows x latent_dim): the synthetic windows'
    place in the latent space, with no need to re-encode them. ``mode=None``: ``sample.mode``'s default in
    the configuration schema.
    """
    mode = schema_default("sample.mode") if mode is None else mode
    if int(n_windows) < 0:
        raise ValueError(f"sample_catalog: n_windows must be >= 0, got {n_windows}")
    spec = check_spec(bundle.spec)
    X, z = sample_windows(bundle, int(n_windows), seed=int(seed), mode=mode, return_latent=True)
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
    return (catalog, info, z) if return_latent else (catalog, info)


def n_synthetic_windows(n_windows: int | None, table: pd.DataFrame) -> int:
    """Synthetic windows to draw: ``n_windows``, or (None) as many as the held-out windows of the model's
    windows ``table``."""
    if n_windows:
        return int(n_windows)
    return int((table["role"] == "heldout").sum())


def synthetic_metadata(model_path: str | os.PathLike, spec: dict[str, Any], *, mode: str, seed: int,
                       n_windows: int) -> dict[str, Any]:
    """The metadata document of a synthetic catalog (docs/methods/windows.md): the model, mode, seed and spec."""
    return {"kind": "synthetic", "model": str(model_path), "mode": mode, "seed": seed, "n_windows": n_windows,
            "mc": spec["mc"], "spec": spec}


def latent_table(z: np.ndarray) -> pd.DataFrame:
    """The z of each synthetic window as a table: ``window`` and z0, z1, ... (the embedding's column names)."""
    table = pd.DataFrame(np.asarray(z, dtype=np.float64), columns=[f"z{i}" for i in range(z.shape[1])])
    table.insert(0, "window", np.arange(len(table), dtype=np.int64))
    return table
