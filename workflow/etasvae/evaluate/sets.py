"""The sets of windows that evaluation compares (see docs/design.md, *Evaluation*), all in one event representation.

S synthetic windows (decoded from the VAE prior), H held-out ETAS windows, A ETAS training windows
(the noise floor: another sample of the same process), P a Poisson baseline with A's rate and magnitudes.
H and A go through the same inverse feature map as S (features.windows_to_catalog), so every set is seen
through the same representation and differences come from the generator, not from the windowing.
Each set is a list of per-window event tables: time (days from the window start), magnitude, x, y (km).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..features import windows_to_catalog
from .baseline import poisson_baseline

EVENT_COLUMNS = ["time", "magnitude", "x", "y"]


def split_windows(catalog: pd.DataFrame, duration: float | None = None, n_windows: int | None = None) -> list[pd.DataFrame]:
    """A catalog with a ``window`` column as a list of per-window event tables (window order kept).

    ``duration`` (days) is the fixed length of every window, for representations that have one (binned);
    it is stored as ``attrs["duration"]``, which evaluation reads instead of the last event's time.
    With ``n_windows``, windows are numbered 0..n_windows-1 and one without events (a binned window of
    zero counts) is an empty table rather than missing, so per-window counts keep their zeros.
    """
    values = catalog[EVENT_COLUMNS]
    window = catalog["window"].to_numpy()
    if n_windows is None:
        ids = np.unique(window)
    else:
        ids = np.arange(n_windows)
        if len(window) and (window.min() < 0 or window.max() >= n_windows):
            raise ValueError(f"window ids outside 0..{n_windows - 1}")
    starts = np.searchsorted(window, ids, side="left")
    ends = np.searchsorted(window, ids, side="right")
    out = [values.iloc[s:e].reset_index(drop=True) for s, e in zip(starts, ends)]
    if duration is not None:
        for w in out:
            w.attrs["duration"] = float(duration)
    return out


def evaluation_sets(
    table: pd.DataFrame,
    X: np.ndarray,
    spec: dict,
    synthetic: pd.DataFrame,
    *,
    rng: np.random.Generator,
    n_synthetic: int | None = None,
    b_value: float | None = None,
) -> dict[str, list[pd.DataFrame]]:
    """{"S", "H", "A", "P"}: window sets for one model; A is the training role, H the held-out role.

    ``n_synthetic`` is the number of synthetic windows drawn (windows without events are kept as empty).
    """
    role = table["role"].to_numpy()
    duration = spec.get("duration_days") if spec["representation"] == "binned" else None
    sets = {"S": split_windows(synthetic, duration, n_synthetic)}
    for key, name in (("H", "heldout"), ("A", "train")):
        mask = role == name
        sets[key] = split_windows(windows_to_catalog(X[mask], spec, rng=rng), duration, int(mask.sum()))
    sets["P"] = poisson_baseline(sets["A"], rng, mc=spec["mc"], b=b_value)
    return sets
