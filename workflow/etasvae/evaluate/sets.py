"""The sets of windows that evaluation compares (see docs/design.md, *Evaluation*).

S synthetic windows (decoded from the VAE prior), H held-out ETAS windows, A the floor set (another
sample of the same process: the odd reference catalogs when there are any, else the training windows), P the naive baseline (Poisson times at A's rate,
naive magnitudes). H and A are the catalogs' own events cut into the windows of the windows table, never
their features decoded back through the representation: whatever a representation loses (binned windows
keep no positions and no magnitudes within a band) counts against the model.
Each set is a list of per-window event tables: time (days from the window's clock start), magnitude, x, y
(km, relative to the window's first event), in time order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..catalog import read_catalog
from .baseline import poisson_baseline

EVENT_COLUMNS = ["time", "magnitude", "x", "y"]
# At most this many windows per set enter the evaluation (docs/design.md §6): time and memory stay bounded
# however many windows a model has. Above it, a seeded subsample stratified by (config, replicate); each
# statistic's reported error or p-value is that of the windows used. The default run is far below it.
MAX_WINDOWS = 8_000


def stratified_subsample(strata: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of at most ``limit`` rows, each stratum (equal value of ``strata``) sampled uniformly
    without replacement in proportion to its size (largest remainders); all rows, and no draw from ``rng``,
    when there are ``limit`` or fewer."""
    n = len(strata)
    if n <= limit:
        return np.arange(n)
    values, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    share = counts * (limit / n)
    take = np.floor(share).astype(np.int64)
    take[np.argsort(-(share - take), kind="stable")[: limit - take.sum()]] += 1
    keep = [rng.choice(np.flatnonzero(inverse == k), take[k], replace=False) for k in range(len(values))]
    return np.sort(np.concatenate(keep))


def split_windows(catalog: pd.DataFrame, duration: float | None = None, n_windows: int | None = None) -> list[pd.DataFrame]:
    """A catalog with a ``window`` column as a list of per-window event tables (window order kept).

    ``duration`` (days) is the fixed length of every window, for representations that have one (binned);
    it is stored as ``attrs["duration"]``, which evaluation reads instead of the last event's time.
    With ``n_windows``, windows are numbered 0..n_windows-1 and one without events (a binned window of
    zero counts) is an empty table rather than missing, so per-window counts keep their zeros.
    """
    # an ``event_key`` column (a synthetic set cut from simulated catalogs: etasvae.dataset_simulation) is
    # kept, so that statistics of the events themselves count an event that overlapping windows share once
    values = catalog[EVENT_COLUMNS + (["event_key"] if "event_key" in catalog else [])]
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


# event_key = catalog ordinal * 2^40 + event id: unique across the catalogs of a set (ids stay below 2^40).
EVENT_KEY_BITS = 40


def catalog_windows(table: pd.DataFrame, catalogs: Mapping[tuple[str, int], pd.DataFrame | str | os.PathLike],
                    spec: dict, config_id: str = "") -> list[pd.DataFrame]:
    """The events of each window of a windows ``table`` (in its order), taken from the catalogs themselves.

    ``catalogs`` maps (config id, replicate) to a catalog, or to a catalog file, which is read (and
    validated) when its windows are cut and let go before the next one is read, so that memory holds one
    catalog at a time; the config id is the table's ``config_id`` column (pooled windows) or ``config_id``.
    A window holds the events with start_event <= event_id < end_event that the representation counts
    (magnitude >= Mc for event windows, inside a magnitude band for binned windows; the event range of a
    binned window is its span [t_start, t_end)). Times are days from the window's ``t_ref`` (event windows:
    the previous event, as the features measure the first inter-event time; binned: the window start);
    positions are km from the window's first event. Binned windows carry ``attrs["duration"]``. The column
    ``event_key`` names each event in its catalog, so that statistics of the events themselves (b-value,
    magnitude tests, Omori) count an event that overlapping windows share once.
    """
    binned = spec["representation"] == "binned"
    m_min = spec["magnitude_bands"][0] if binned else spec["mc"]
    cfgs = table["config_id"].to_numpy() if "config_id" in table else np.full(len(table), config_id)
    reps, los, his, t_refs = (table[c].to_numpy() for c in ("replicate", "start_event", "end_event", "t_ref"))
    rows: dict[tuple[str, int], list[int]] = {}
    for k, key in enumerate(zip(cfgs, reps)):
        rows.setdefault((str(key[0]), int(key[1])), []).append(k)
    out: list[pd.DataFrame] = [pd.DataFrame()] * len(table)
    ordinal = {key: i for i, key in enumerate(sorted(rows))}  # the catalog's part of event_key: not row order
    for key, ks in rows.items():  # each catalog once, in order of first use
        if key not in catalogs:
            raise KeyError(f"catalog_windows: no catalog for config {key[0]!r}, replicate {key[1]}")
        source = catalogs[key]
        events = source if isinstance(source, pd.DataFrame) else read_catalog(source)[0]
        a = {c: events[c].to_numpy() for c in ("event_id", *EVENT_COLUMNS)}
        del events
        for k in ks:
            i, j = np.searchsorted(a["event_id"], [los[k], his[k]])
            keep = a["magnitude"][i:j] >= m_min - 1e-9
            t, m, x, y = (a[c][i:j][keep] for c in EVENT_COLUMNS)
            x0, y0 = (x[0], y[0]) if len(x) else (0.0, 0.0)
            df = pd.DataFrame({"time": t - t_refs[k], "magnitude": m, "x": x - x0, "y": y - y0,
                               "event_key": (np.int64(ordinal[key]) << EVENT_KEY_BITS) + a["event_id"][i:j][keep]})
            if binned:
                df.attrs["duration"] = float(spec["duration_days"])
            out[k] = df
    return out


def evaluation_sets(
    table: pd.DataFrame,
    catalogs: Mapping[tuple[str, int], pd.DataFrame | str | os.PathLike],
    spec: dict,
    synthetic: pd.DataFrame | str | os.PathLike,
    *,
    rng: np.random.Generator,
    n_synthetic: int | None = None,
    config_id: str = "",
    max_windows: int = MAX_WINDOWS,
    reference: pd.DataFrame | None = None,
    reference_windows: int = 0,
) -> dict[str, list[pd.DataFrame]]:
    """{"S", "H", "A", "P"}: window sets for one model; A is the training role, H the held-out role, both
    cut from the ``catalogs`` (see :func:`catalog_windows`); P is :func:`poisson_baseline` of A.

    ``synthetic`` is the synthetic catalog or its file; ``n_synthetic`` the number of synthetic windows
    drawn (windows without events are kept as empty). A set of more than ``max_windows`` windows is
    subsampled to that many (:func:`stratified_subsample`: H and A by (config, replicate), S uniformly),
    before any window is cut and, for a synthetic catalog file, before its events are read (only the chosen
    windows' events and columns are), so memory stays bounded.

    ``reference``: the windows table of the reference catalogs (:func:`~.reference.reference_table`; their
    catalogs are in ``catalogs``). With it, H is the held-out windows and the reference windows of role
    "heldout", A is the reference windows of role "floor" (a second sample of the process, never trained
    on, instead of the training windows), and S, H and A are each subsampled to one size n = the smallest
    of the three (and at most ``reference_windows`` when > 0), so that the floor d_A is measured at the size
    of the comparison d_S.
    """
    if reference is not None and len(reference):
        return _reference_sets(table, catalogs, spec, synthetic, rng, n_synthetic, config_id, reference,
                               min(max_windows, reference_windows or max_windows))
    role = table["role"].to_numpy()
    duration = spec.get("duration_days") if spec["representation"] == "binned" else None
    sets = {"S": _synthetic_windows(synthetic, duration, n_synthetic, max_windows, rng)}
    for key, name in (("H", "heldout"), ("A", "train")):
        rows = table[role == name]
        strata = rows["replicate"].astype(str).to_numpy()
        if "config_id" in rows:
            strata = rows["config_id"].astype(str).to_numpy() + "/" + strata
        rows = rows.iloc[stratified_subsample(strata, max_windows, rng)]
        sets[key] = catalog_windows(rows, catalogs, spec, config_id)
    sets["P"] = poisson_baseline(sets["A"], rng, mc=spec["mc"])
    return sets


def _synthetic_windows(synthetic, duration, n_synthetic, limit, rng) -> list[pd.DataFrame]:
    """The synthetic windows (a catalog or its file), at most ``limit`` of them: a uniform subsample,
    renumbered, whose events alone are read from a file."""
    frame = isinstance(synthetic, pd.DataFrame)
    if n_synthetic is not None:
        ids = np.arange(n_synthetic)
    else:
        ids = np.unique((synthetic if frame else pd.read_parquet(synthetic, columns=["window"]))["window"].to_numpy())
    if len(ids) > limit:  # keep the chosen windows' events, renumbered 0..limit-1
        ids = ids[stratified_subsample(np.zeros(len(ids)), limit, rng)]
        n_synthetic = len(ids)
        if not frame:
            keys = ["event_key"] if "event_key" in pq.read_schema(synthetic).names else []
            synthetic = pd.read_parquet(synthetic, columns=["window", *EVENT_COLUMNS, *keys],
                                        filters=[("window", "in", ids.tolist())])
        window = synthetic["window"].to_numpy()
        synthetic = synthetic[np.isin(window, ids)].assign(window=lambda c: np.searchsorted(ids, c["window"]))
    elif not frame:
        synthetic = read_catalog(synthetic)[0]
    return split_windows(synthetic, duration, n_synthetic)


def _strata(rows: pd.DataFrame) -> np.ndarray:
    strata = rows["replicate"].astype(str).to_numpy()
    if "config_id" in rows:
        strata = rows["config_id"].astype(str).to_numpy() + "/" + strata
    return strata


def _reference_sets(table, catalogs, spec, synthetic, rng, n_synthetic, config_id, reference, limit):
    """S, H, A, P with reference catalogs (see :func:`evaluation_sets`): one size n for S, H and A."""
    duration = spec.get("duration_days") if spec["representation"] == "binned" else None
    columns = [c for c in ("config_id", "replicate", "role", "start_event", "end_event", "t_ref") if c in reference]
    held = pd.concat([table.loc[table["role"] == "heldout", columns], reference.loc[reference["role"] == "heldout", columns]],
                     ignore_index=True)
    floor = reference.loc[reference["role"] == "floor", columns].reset_index(drop=True)
    n_s = n_synthetic if n_synthetic is not None else len(
        np.unique((synthetic if isinstance(synthetic, pd.DataFrame) else pd.read_parquet(synthetic, columns=["window"]))["window"]))
    n = min(limit, len(held), len(floor), n_s)
    sets = {"S": _synthetic_windows(synthetic, duration, n_synthetic, n, rng)}
    for key, rows in (("H", held), ("A", floor)):
        rows = rows.iloc[stratified_subsample(_strata(rows), n, rng)]
        sets[key] = catalog_windows(rows, catalogs, spec, config_id)
    sets["P"] = poisson_baseline(sets["A"], rng, mc=spec["mc"])
    return sets
