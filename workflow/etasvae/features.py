"""Windows: catalogs cut into fixed-size feature vectors for the VAE, and the way back (docs/design.md §4).

A window *spec* is a plain dict (from the config):

    representation   "event" | "binned"
    mc               completeness magnitude; events below it are ignored
    event:   length (L events), stride (events between window starts, default L),
             xy_scale_km (scale of the asinh position transform), min_dt_days (floor on inter-event times)
    binned:  duration_days, stride_days (default duration_days), time_bins,
             magnitude_bands (lower band edges, absolute magnitudes, increasing, first >= mc; last band
             open), optional b_value (Gutenberg-Richter b used to place magnitudes on the way back, default 1)

**Event windows** hold L consecutive events (magnitude >= mc). The feature vector is event-major:
``X.reshape(n, L, 4)[k, i, c]`` is channel c of event i of window k, channels

    0  log10(dt / 1 day): time since the previous event of the catalog (for the catalog's first event,
       since the catalog origin), floored at min_dt_days
    1  magnitude - mc
    2  asinh((x - x_first) / xy_scale_km): east position relative to the window's first event
    3  asinh((y - y_first) / xy_scale_km): north position, likewise

asinh is linear near zero and logarithmic in the tails, so a far-away event is a large but usable number.
The first event's inter-event time reaches back to the previous event of the catalog, which may belong to the
block of another role: only that time difference is used, never the event itself.

**Binned windows** cover ``duration_days`` cut into ``time_bins`` equal bins x the magnitude bands; the feature
vector is time-major: ``X.reshape(n, time_bins, n_bands)[k, t, b]`` is the number of events of window k in time
bin t and band b (float32). Time bin t is [t_start + t*w, t_start + (t+1)*w) with w = duration/time_bins.

**Roles.** Held-out replicates are whole catalogs. In every other replicate the final ``validation_fraction``
of the events (event windows) or of the duration (binned windows) is the validation block and the rest the
training block. Windows are cut inside one block, so no window straddles a boundary and no event belongs
to windows of two roles.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .catalog import validate_catalog
from .fileio import atomic_write, json_default

ROLES = ("train", "validation", "heldout")
EVENT_CHANNELS = ("log10_dt_days", "magnitude_minus_mc", "asinh_dx", "asinh_dy")
WINDOWS_METADATA_KEY = b"etasvae_windows"
FEATURES_COLUMN = "features"

# Guards of the inverse map: decoded log10(dt) above this many days is clipped (about 27 centuries) and a
# decoded binned window set may not ask for more events than this in all.
MAX_LOG10_DT_DAYS = 6.0
MAX_DECODED_EVENTS = 100_000_000
# Events placed inside a time bin or magnitude band stay this fraction of its width away from its edges, so
# that rounding can never move them into the next cell.
_CELL_MARGIN = 1e-6


# ----------------------------------------------------------------------------------------------- spec


def check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """Return ``spec`` with defaults filled in; raise ValueError naming the key that is wrong."""
    spec = dict(spec)
    rep = spec.get("representation")
    if rep not in ("event", "binned"):
        raise ValueError(f"window spec: 'representation' must be 'event' or 'binned', got {rep!r}")
    if "mc" not in spec or not np.isfinite(float(spec["mc"])):
        raise ValueError("window spec: 'mc' (completeness magnitude) is required and must be finite")
    spec["mc"] = float(spec["mc"])
    if rep == "event":
        length = int(spec.get("length", 0))
        if length < 1:
            raise ValueError(f"window spec: 'length' must be a positive number of events, got {spec.get('length')!r}")
        spec["length"] = length
        stride = int(spec.get("stride") or length)
        if stride < 1:
            raise ValueError(f"window spec: 'stride' must be >= 1, got {spec.get('stride')!r}")
        spec["stride"] = stride
        spec["xy_scale_km"] = float(spec.get("xy_scale_km", 1.0))
        if not spec["xy_scale_km"] > 0:
            raise ValueError(f"window spec: 'xy_scale_km' must be > 0, got {spec['xy_scale_km']!r}")
        spec["min_dt_days"] = float(spec.get("min_dt_days", 1e-6))
        if not spec["min_dt_days"] > 0:
            raise ValueError(f"window spec: 'min_dt_days' must be > 0, got {spec['min_dt_days']!r}")
    else:
        duration = float(spec.get("duration_days", 0.0))
        if not duration > 0:
            raise ValueError(f"window spec: 'duration_days' must be > 0, got {spec.get('duration_days')!r}")
        spec["duration_days"] = duration
        stride = float(spec.get("stride_days") or duration)
        if not stride > 0:
            raise ValueError(f"window spec: 'stride_days' must be > 0, got {spec.get('stride_days')!r}")
        spec["stride_days"] = stride
        bins = int(spec.get("time_bins", 0))
        if bins < 1:
            raise ValueError(f"window spec: 'time_bins' must be >= 1, got {spec.get('time_bins')!r}")
        spec["time_bins"] = bins
        bands = [float(b) for b in spec.get("magnitude_bands") or [spec["mc"]]]
        if bands[0] < spec["mc"] - 1e-9 or np.any(np.diff(bands) <= 0):
            raise ValueError(
                f"window spec: 'magnitude_bands' must be increasing lower band edges starting at or above mc = "
                f"{spec['mc']}, got {bands}"
            )
        spec["magnitude_bands"] = bands
        spec["b_value"] = float(spec.get("b_value", 1.0))
    return spec


def n_features(spec: dict[str, Any]) -> int:
    """Length of one window's feature vector."""
    spec = check_spec(spec)
    if spec["representation"] == "event":
        return 4 * spec["length"]
    return spec["time_bins"] * len(spec["magnitude_bands"])


# ----------------------------------------------------------------------------------- catalogs -> windows


def _event_features(time: np.ndarray, mag: np.ndarray, x: np.ndarray, y: np.ndarray,
                    starts: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Feature vectors of the windows starting at event positions ``starts`` (positions in the arrays)."""
    L = spec["length"]
    prev = np.concatenate([[0.0], time[:-1]])
    log_dt = np.log10(np.maximum(time - prev, spec["min_dt_days"]))
    idx = starts[:, None] + np.arange(L)[None, :]
    first = starts[:, None]
    scale = spec["xy_scale_km"]
    out = np.empty((len(starts), L, 4), dtype=np.float32)   # filled channel by channel: one float64 temporary
    out[..., 0] = log_dt[idx]
    out[..., 1] = mag[idx] - spec["mc"]
    out[..., 2] = np.arcsinh((x[idx] - x[first]) / scale)
    out[..., 3] = np.arcsinh((y[idx] - y[first]) / scale)
    return out.reshape(len(starts), 4 * L)


def events_above_mc(df: pd.DataFrame, mc: float) -> tuple[np.ndarray, ...]:
    """(event_id, time, magnitude, x, y) of a catalog's events at or above ``mc``, times and values float64."""
    keep = df["magnitude"].to_numpy() >= mc - 1e-9
    return (df["event_id"].to_numpy()[keep],
            *(df[c].to_numpy(dtype=np.float64)[keep] for c in ("time", "magnitude", "x", "y")))


def _event_windows(df: pd.DataFrame, replicate: int, heldout: bool, spec: dict[str, Any],
                   validation_fraction: float) -> tuple[pd.DataFrame, np.ndarray]:
    event_id, time, mag, x, y = events_above_mc(df, spec["mc"])
    n = len(time)
    L, S = spec["length"], spec["stride"]
    if heldout:
        blocks = [("heldout", 0, n)]
    else:
        n_val = int(round(validation_fraction * n))
        blocks = [("train", 0, n - n_val), ("validation", n - n_val, n)]
    starts_all, roles = [], []
    for role, lo, hi in blocks:
        starts = np.arange(lo, hi - L + 1, S, dtype=np.int64)
        starts_all.append(starts)
        roles.extend([role] * len(starts))
    starts = np.concatenate(starts_all) if starts_all else np.zeros(0, dtype=np.int64)
    X = _event_features(time, mag, x, y, starts, spec) if n else np.zeros((0, 4 * L), np.float32)
    last = starts + L - 1
    prev_time = np.where(starts > 0, time[np.maximum(starts - 1, 0)], 0.0)
    table = pd.DataFrame({
        "replicate": np.full(len(starts), replicate, dtype=np.int64),
        "role": roles,
        "start_event": event_id[starts].astype(np.int64),
        "end_event": event_id[last].astype(np.int64) + 1,
        "n_events": np.full(len(starts), L, dtype=np.int64),
        "t_start": time[starts],
        "t_end": time[last],
        "t_ref": prev_time,
        "x_first": x[starts],
        "y_first": y[starts],
    })
    return table, X


def _bin_index(time: np.ndarray, mag: np.ndarray, t_start: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Flat cell index (t * n_bands + b) of events at ``time``/``mag`` in windows starting at ``t_start``;
    -1 where the event falls outside every cell."""
    bins = spec["time_bins"]
    edges = np.asarray(spec["magnitude_bands"])
    t_bin = np.floor((time - t_start) * (bins / spec["duration_days"])).astype(np.int64)
    band = np.searchsorted(edges, mag + 1e-9, side="right") - 1
    inside = (t_bin >= 0) & (t_bin < bins) & (band >= 0)
    return np.where(inside, t_bin * len(edges) + band, -1)


def _binned_windows(df: pd.DataFrame, replicate: int, heldout: bool, spec: dict[str, Any],
                    validation_fraction: float, duration: float) -> tuple[pd.DataFrame, np.ndarray]:
    time = df["time"].to_numpy(dtype=np.float64)
    mag = df["magnitude"].to_numpy(dtype=np.float64)
    W, S = spec["duration_days"], spec["stride_days"]
    F = n_features(spec)
    if heldout:
        blocks = [("heldout", 0.0, duration)]
    else:
        t_split = (1.0 - validation_fraction) * duration
        blocks = [("train", 0.0, t_split), ("validation", t_split, duration)]
    starts_all, roles = [], []
    for role, lo, hi in blocks:
        count = int(math.floor((hi - lo - W) / S + 1e-9)) + 1 if hi - lo >= W - 1e-9 else 0
        starts = lo + S * np.arange(max(count, 0), dtype=np.float64)
        starts_all.append(starts)
        roles.extend([role] * len(starts))
    t_start = np.concatenate(starts_all) if starts_all else np.zeros(0)
    t_end = t_start + W
    first = np.searchsorted(time, t_start, side="left")
    stop = np.searchsorted(time, t_end, side="left")
    per_window = stop - first
    # Every (window, event) pair, vectorised: windows overlap when stride < duration.
    win = np.repeat(np.arange(len(t_start)), per_window)
    offsets = np.arange(per_window.sum()) - np.repeat(np.cumsum(per_window) - per_window, per_window)
    ev = first[win] + offsets
    cell = _bin_index(time[ev], mag[ev], t_start[win], spec)
    ok = cell >= 0
    flat = win[ok] * F + cell[ok]
    X = np.bincount(flat, minlength=len(t_start) * F).astype(np.float32).reshape(len(t_start), F)
    table = pd.DataFrame({
        "replicate": np.full(len(t_start), replicate, dtype=np.int64),
        "role": roles,
        "start_event": first.astype(np.int64),       # event_id = row position (validated catalog)
        "end_event": stop.astype(np.int64),
        "n_events": X.sum(axis=1).astype(np.int64),
        "t_start": t_start,
        "t_end": t_end,
        "t_ref": t_start,
    })
    return table, X


def build_windows(catalogs: list[tuple[int, pd.DataFrame]], spec: dict[str, Any], *,
                  heldout_replicates: list[int], validation_fraction: float,
                  durations: dict[int, float] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Cut catalogs into windows: (table, X).

    ``catalogs`` holds (replicate, catalog) pairs. The table has one row per window, in the order of ``X``:
    window_id 0..n-1, replicate, role (train / validation / heldout), start_event and end_event (the
    window's events are the catalog's events with start_event <= event_id < end_event and magnitude >= mc),
    n_events (binned: the events counted, i.e. inside a magnitude band), t_start and t_end (days; event
    windows: first and last event time; binned: the window's span [t_start, t_end)), and t_ref (days), the time the window's clock starts from, so that
    ``windows_to_catalog(X, spec, t0=table.t_ref)`` gives back catalog times.
    X is float32, shape (n_windows, n_features(spec)).

    Binned windows tile [0, duration) of each catalog; ``durations`` maps replicate to its catalog
    duration in days (default: the time of its last event).
    """
    spec = check_spec(spec)
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    heldout_set = {int(r) for r in heldout_replicates}
    tables, arrays = [], []
    for replicate, df in catalogs:
        validate_catalog(df, where=f"replicate {replicate}")
        heldout = int(replicate) in heldout_set
        if spec["representation"] == "event":
            table, X = _event_windows(df, int(replicate), heldout, spec, validation_fraction)
        else:
            duration = (durations or {}).get(int(replicate))
            if duration is None:
                duration = float(df["time"].iloc[-1]) if len(df) else 0.0
            table, X = _binned_windows(df, int(replicate), heldout, spec, validation_fraction, float(duration))
        tables.append(table)
        arrays.append(X)
    if not tables:
        raise ValueError("build_windows: no catalogs given")
    table = pd.concat(tables, ignore_index=True)
    X = np.concatenate(arrays, axis=0)
    given = {int(r) for r, _ in catalogs}
    roles = (["train"] + (["validation"] if validation_fraction > 0 else []) if given - heldout_set else [])
    roles += ["heldout"] if given & heldout_set else []
    empty = [role for role in roles if not (table["role"] == role).any()]
    if empty:
        key = "windows.event.length" if spec["representation"] == "event" else "windows.binned.duration_days"
        size = spec["length"] if spec["representation"] == "event" else spec["duration_days"]
        unit = "events" if spec["representation"] == "event" else "days"
        raise ValueError(
            f"{key} = {size:g} ({unit}): the {' and '.join(empty)} role gets no window, its data is shorter than "
            f"one window (validation: the final validation_fraction = {validation_fraction:g} of each training "
            "replicate); shorten the windows or simulate longer"
        )
    table.insert(0, "window_id", np.arange(len(table), dtype=np.int64))
    return table, np.ascontiguousarray(X, dtype=np.float32)


# ----------------------------------------------------------------------------------- windows -> catalogs


def _event_catalog(X: np.ndarray, spec: dict[str, Any], t0: np.ndarray) -> tuple[dict, dict[str, int]]:
    n, L = X.shape[0], spec["length"]
    V = X.reshape(n, L, 4).astype(np.float64)
    log_dt, dmag, ax, ay = V[..., 0], V[..., 1], V[..., 2], V[..., 3]
    lo = math.log10(spec["min_dt_days"])
    clips = {
        "magnitude_below_mc": int((dmag < 0).sum()),
        "dt_below_min": int((log_dt < lo - 1e-6).sum()),
        "dt_above_max": int((log_dt > MAX_LOG10_DT_DAYS).sum()),
    }
    dt = 10.0 ** np.clip(log_dt, lo, MAX_LOG10_DT_DAYS)
    time = t0[:, None] + np.cumsum(dt, axis=1)
    scale = spec["xy_scale_km"]
    columns = {
        "time": time.ravel(),
        "magnitude": (spec["mc"] + np.maximum(dmag, 0.0)).ravel(),
        "x": (scale * np.sinh(ax)).ravel(),
        "y": (scale * np.sinh(ay)).ravel(),
        "window": np.repeat(np.arange(n, dtype=np.int64), L),
    }
    return columns, clips


def _binned_catalog(X: np.ndarray, spec: dict[str, Any], t0: np.ndarray,
                    rng: np.random.Generator | None) -> tuple[dict, dict[str, int]]:
    bins = spec["time_bins"]
    edges = np.asarray(spec["magnitude_bands"], dtype=np.float64)
    nb = len(edges)
    rounded = np.rint(X.astype(np.float64))
    clips = {"negative_counts": int((rounded < 0).sum())}
    counts = np.maximum(rounded, 0.0).astype(np.int64).ravel()
    total = int(counts.sum())
    if total > MAX_DECODED_EVENTS:
        raise ValueError(f"decoded windows ask for {total} events (more than {MAX_DECODED_EVENTS}); "
                         "the decoder output is not a plausible count")
    cell = np.repeat(np.arange(counts.size), counts)
    rank = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    size = counts[cell]
    if rng is None:                                    # stratified: evenly spread inside the cell
        u_time = (rank + 0.5) / np.maximum(size, 1)
        u_mag = u_time
    else:
        u_time = rng.uniform(0.0, 1.0, total)
        u_mag = rng.uniform(0.0, 1.0, total)
    u_time = _CELL_MARGIN + (1.0 - 2.0 * _CELL_MARGIN) * u_time
    u_mag = _CELL_MARGIN + (1.0 - 2.0 * _CELL_MARGIN) * u_mag
    window, within = np.divmod(cell, bins * nb)
    t_bin, band = np.divmod(within, nb)
    width = spec["duration_days"] / bins
    time = t0[window] + (t_bin + u_time) * width
    hi = np.append(edges[1:], np.inf)
    from .stats import gr_quantile  # here, not at the top: stats pulls in scipy.stats, which windowing needs nowhere else

    magnitude = gr_quantile(u_mag, edges[band], hi[band], spec["b_value"])
    order = np.lexsort((time, window))
    columns = {
        "time": time[order],
        "magnitude": magnitude[order],
        "x": np.zeros(total),
        "y": np.zeros(total),
        "window": window[order].astype(np.int64),
    }
    return columns, clips


def windows_to_catalog(X: np.ndarray, spec: dict[str, Any], *, t0: float | np.ndarray = 0.0,
                       rng: np.random.Generator | None = None, return_clip_counts: bool = False):
    """Map feature vectors back to events: the catalog schema plus a ``window`` column (window k = row k).

    Each window keeps its own clock starting at ``t0`` (a number, or one per window, e.g. ``table.t_ref``);
    its events are in time order, event_id is 0..N-1 over the whole table, parent_id and generation -1.

    Event windows: time = t0 + cumulative sum of 10**channel0, magnitude = mc + channel1,
    x, y = xy_scale_km * sinh(channels 2, 3) relative to the first event (at (0, 0) when built from a catalog).
    Decoded values outside the physical range are clipped: magnitude below mc -> mc
    ("magnitude_below_mc"), log10 dt below log10(min_dt_days) -> the floor ("dt_below_min"), above
    MAX_LOG10_DT_DAYS -> that value ("dt_above_max").

    Binned windows: counts are rounded to the nearest integer, negative counts become 0 ("negative_counts").
    A cell's events get times inside its time bin and magnitudes inside its band drawn from
    Gutenberg-Richter (spec b_value, default 1) truncated to the band (the open top band untruncated):
    with ``rng`` at uniform random quantiles, without it at the evenly spaced quantiles (j + 1/2)/count.
    Positions are unknown: x = y = 0. Counting the result again gives back exactly the rounded counts.

    With ``return_clip_counts`` returns (catalog, {rule: number of values clipped}).
    """
    spec = check_spec(spec)
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != n_features(spec):
        raise ValueError(f"windows_to_catalog: X must have shape (n, {n_features(spec)}), got {X.shape}")
    if not np.isfinite(X).all():
        row = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise ValueError(f"windows_to_catalog: window {row} holds a non-finite value")
    t0 = np.broadcast_to(np.asarray(t0, dtype=np.float64), (X.shape[0],))
    if spec["representation"] == "event":
        columns, clips = _event_catalog(X, spec, t0)
    else:
        columns, clips = _binned_catalog(X, spec, t0, rng)
    n = len(columns["time"])
    df = pd.DataFrame({
        "event_id": np.arange(n, dtype=np.int64),
        "time": columns["time"],
        "magnitude": columns["magnitude"],
        "x": columns["x"],
        "y": columns["y"],
        "parent_id": np.full(n, -1, dtype=np.int64),
        "generation": np.full(n, -1, dtype=np.int32),
        "window": columns["window"],
    })
    return (df, clips) if return_clip_counts else df


# ------------------------------------------------------------------------------------------ files


READ_BATCH_ROWS = 8192  # windows whose feature vectors read_windows decodes at a time


def write_windows(path: str | os.PathLike, table: pd.DataFrame, X: np.ndarray, spec: dict[str, Any],
                  extra_metadata: dict[str, Any] | None = None) -> None:
    """Write windows atomically as one Parquet file: the table's columns plus ``features``, a
    fixed_size_list<float32>[n_features] column; spec and metadata as JSON in the key-value metadata."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    if X.ndim != 2 or len(table) != X.shape[0]:
        raise ValueError(f"write_windows: table has {len(table)} rows but X has shape {X.shape}")
    width = X.shape[1]
    features = pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1), type=pa.float32()), width)
    arrow = pa.Table.from_pandas(table.reset_index(drop=True), preserve_index=False)
    arrow = arrow.append_column(FEATURES_COLUMN, features)
    meta = {"spec": spec, "metadata": extra_metadata or {}, "n_features": width}
    encoded = json.dumps(meta, sort_keys=True, default=json_default).encode()
    arrow = arrow.replace_schema_metadata({WINDOWS_METADATA_KEY: encoded})
    atomic_write(path, lambda tmp: pq.write_table(arrow, tmp, compression="zstd"))


def read_windows(path: str | os.PathLike, features: bool = True) -> tuple[pd.DataFrame, np.ndarray | None, dict[str, Any], dict[str, Any]]:
    """Read a windows file: (table, X float32 (n, n_features), spec, metadata); ``features=False`` reads
    the table alone (X is None), for a stage that needs no feature vectors."""
    schema = pq.read_schema(path)
    raw = (schema.metadata or {}).get(WINDOWS_METADATA_KEY)
    if raw is None:
        raise ValueError(f"{path}: not a windows file (no '{WINDOWS_METADATA_KEY.decode()}' metadata)")
    meta = json.loads(raw)
    table = pq.read_table(path, columns=[name for name in schema.names if name != FEATURES_COLUMN]).to_pandas()
    if not features:
        return table, None, meta["spec"], meta["metadata"]
    # the feature vectors batch by batch into one float32 array: memory holds X and one batch, not the
    # decoded column, its flattened copy and X at once
    width = int(meta["n_features"])
    X = np.empty((len(table), width), dtype=np.float32)
    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_BATCH_ROWS, columns=[FEATURES_COLUMN]):
        values = batch.column(0).flatten().to_numpy(zero_copy_only=False)
        X[row:row + batch.num_rows] = values.reshape(batch.num_rows, width)
        row += batch.num_rows
    if row != len(table):
        raise ValueError(f"{path}: {row} feature vectors for {len(table)} windows")
    pa.default_memory_pool().release_unused()  # Arrow's pool keeps the decoded batches' memory otherwise
    return table, X, meta["spec"], meta["metadata"]


def pool_windows(items: list[tuple[str, dict[str, Any], pd.DataFrame, np.ndarray]]) -> tuple[pd.DataFrame, np.ndarray]:
    """Concatenate windows of several configs: (table, X).

    ``items`` holds (config_id, params, table, X). The pooled table adds ``config_id``, one column per key
    of ``params`` (the ETAS parameters, and branching_ratio where the dict has it; NaN for a config
    without that key) and ``source_window_id`` (the window_id within its config); window_id is renumbered
    0..n-1 so that row i of the table is row i of X.
    """
    if not items:
        raise ValueError("pool_windows: nothing to pool")
    keys: list[str] = []
    for _, params, _, _ in items:
        keys.extend(k for k in params if k not in keys)
    tables = []
    for config_id, params, table, X in items:
        if len(table) != len(X):
            raise ValueError(f"pool_windows: config {config_id}: table has {len(table)} rows, X {len(X)}")
        clash = [k for k in keys if k in table.columns]
        if clash:
            raise ValueError(f"pool_windows: parameter name(s) {clash} clash with window table columns")
        t = table.reset_index(drop=True).copy()
        t = t.rename(columns={"window_id": "source_window_id"})
        t.insert(0, "config_id", str(config_id))
        for k in keys:
            value = params.get(k)
            t[k] = np.nan if value is None else float(value) if isinstance(value, (int, float, np.number)) else str(value)
        tables.append(t)
    pooled = pd.concat(tables, ignore_index=True)
    pooled.insert(0, "window_id", np.arange(len(pooled), dtype=np.int64))
    X = np.concatenate([np.asarray(item[3], dtype=np.float32) for item in items], axis=0)
    return pooled, X


# ------------------------------------------------------------------------------------------ scaling


class FeatureTransform:
    """Per-feature scaling fitted on training windows only (docs/design.md §4) and saved with the model.

    kind "standard": z = (x - mean) / std, std floored at ``min_std`` (constant features, e.g. the
    first event's relative position, stay finite).
    kind "minmax": z = (x - min) / (max - min), range floored at ``min_std``: training windows land in
    [0, 1] (the BCE loss); other windows may fall outside and the BCE loss clips its targets to [0, 1].
    kind "identity": z = x (raw counts for the Poisson loss).
    """

    def __init__(self, kind: str, offset: np.ndarray, scale: np.ndarray):
        if kind not in ("standard", "minmax", "identity"):
            raise ValueError(f"FeatureTransform: unknown kind {kind!r}")
        self.kind = kind
        self.offset = np.asarray(offset, dtype=np.float32)
        self.scale = np.asarray(scale, dtype=np.float32)

    @classmethod
    def fit(cls, X_train: np.ndarray, kind: str = "standard", min_std: float = 1e-3) -> "FeatureTransform":
        X = np.asarray(X_train, dtype=np.float64)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"FeatureTransform.fit: need a non-empty (n, features) array, got shape {X.shape}")
        if kind == "standard":
            offset, scale = X.mean(axis=0), np.maximum(X.std(axis=0), min_std)
        elif kind == "minmax":
            offset = X.min(axis=0)
            scale = np.maximum(X.max(axis=0) - offset, min_std)
        elif kind == "identity":
            offset, scale = np.zeros(X.shape[1]), np.ones(X.shape[1])
        else:
            raise ValueError(f"FeatureTransform.fit: unknown kind {kind!r}")
        return cls(kind, offset, scale)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, dtype=np.float32) - self.offset) / self.scale).astype(np.float32)

    def inverse(self, Z: np.ndarray) -> np.ndarray:
        return (np.asarray(Z, dtype=np.float32) * self.scale + self.offset).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureTransform":
        return cls(d["kind"], np.asarray(d["offset"], dtype=np.float32), np.asarray(d["scale"], dtype=np.float32))
