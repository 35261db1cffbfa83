"""Earthquake catalogs on disk: the Parquet schema every stage reads and writes.

A catalog is a table with one row per event (docs/design.md §4):

    event_id    int64    0..N-1 in time order
    time        float64  days since the catalog origin
    magnitude   float64  >= Mc
    x, y        float64  km in the catalog's local frame
    parent_id   int64    triggering event, -1 for background (and unknown, for real data)
    generation  int32    0 background, k for k-th generation aftershocks (-1 unknown)

Synthetic catalogs add an int64 ``window`` column (and may add others); extra columns are kept.
File metadata (parameters, seed, region, Mc, duration, origin, package version) is stored as one
JSON document under the Parquet key-value key ``etasvae``.

Writes are atomic (temporary file, then rename) and deterministic: the same table and metadata give
the same bytes, so a rerun with the same seed reproduces a catalog exactly.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .fileio import atomic_write, json_default

METADATA_KEY = b"etasvae"

CATALOG_COLUMNS: dict[str, pa.DataType] = {
    "event_id": pa.int64(),
    "time": pa.float64(),
    "magnitude": pa.float64(),
    "x": pa.float64(),
    "y": pa.float64(),
    "parent_id": pa.int64(),
    "generation": pa.int32(),
}


class CatalogError(ValueError):
    """A catalog breaks the schema; the message names the column and, where it can, the row."""


def empty_catalog() -> pd.DataFrame:
    """A catalog with no events and the right dtypes."""
    return pd.DataFrame(
        {name: pd.Series([], dtype=typ.to_pandas_dtype()) for name, typ in CATALOG_COLUMNS.items()}
    )


def _first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def validate_catalog(df: pd.DataFrame, mc: float | None = None, where: str = "catalog") -> None:
    """Raise CatalogError naming the column and first offending row if ``df`` breaks the schema.

    Checks: every column present and numeric of the right kind, no NaN, event_id = 0..N-1, times
    non-decreasing (within each window, where a ``window`` column is present), magnitudes >= mc (when given), parent_id in [-1, N) and earlier than the child,
    generation >= -1.
    """
    _check_columns(df, where)
    n = len(df)
    event_id = df["event_id"].to_numpy()
    bad = event_id != np.arange(n)
    if bad.any():
        row = _first_bad_row(bad)
        raise CatalogError(f"{where}: column 'event_id' row {row}: expected {row}, found {event_id[row]}")
    if n > 1:
        _check_time_order(df, where)
    if mc is not None:
        mag = df["magnitude"].to_numpy()
        bad = mag < mc - 1e-9
        if bad.any():
            row = _first_bad_row(bad)
            raise CatalogError(f"{where}: column 'magnitude' row {row}: {mag[row]!r} is below Mc = {mc}")
    _check_parents(df["parent_id"].to_numpy(), where)
    generation = df["generation"].to_numpy()
    bad = generation < -1
    if bad.any():
        row = _first_bad_row(bad)
        raise CatalogError(f"{where}: column 'generation' row {row}: {generation[row]} is below -1")


def _check_columns(df: pd.DataFrame, where: str) -> None:
    """Raise CatalogError unless every schema column is present, of the right kind, and finite where float."""
    missing = [c for c in CATALOG_COLUMNS if c not in df.columns]
    if missing:
        raise CatalogError(f"{where}: missing column(s) {missing}; a catalog needs {list(CATALOG_COLUMNS)}")
    for name, typ in CATALOG_COLUMNS.items():
        col = df[name]
        integer = pa.types.is_integer(typ)
        if integer and not pd.api.types.is_integer_dtype(col):
            raise CatalogError(f"{where}: column '{name}' must hold integers, found dtype {col.dtype}")
        if not integer and not pd.api.types.is_numeric_dtype(col):
            raise CatalogError(f"{where}: column '{name}' must be numeric, found dtype {col.dtype}")
        values = col.to_numpy()
        if not integer:
            bad = ~np.isfinite(values)
            if bad.any():
                row = _first_bad_row(bad)
                raise CatalogError(f"{where}: column '{name}' row {row}: value {values[row]!r} is not finite")


def _check_time_order(df: pd.DataFrame, where: str) -> None:
    """Raise CatalogError unless windows increase and times never decrease within a window (n > 1 rows)."""
    n = len(df)
    time = df["time"].to_numpy()
    # Synthetic catalogs hold many windows, each with its own clock: order is checked within a window.
    same_window = np.ones(n - 1, dtype=bool)
    if "window" in df.columns:
        window = df["window"].to_numpy()
        bad = np.diff(window) < 0
        if bad.any():
            row = _first_bad_row(bad) + 1
            raise CatalogError(f"{where}: column 'window' row {row}: windows must be in increasing order")
        same_window = np.diff(window) == 0
    bad = (np.diff(time) < 0) & same_window
    if bad.any():
        row = _first_bad_row(bad) + 1
        raise CatalogError(
            f"{where}: column 'time' row {row}: {time[row]!r} is earlier than row {row - 1} ({time[row - 1]!r});"
            " events must be in time order"
        )


def _check_parents(parent: np.ndarray, where: str) -> None:
    """Raise CatalogError unless each parent_id is -1 or the event_id of an earlier event."""
    n = len(parent)
    bad = (parent < -1) | (parent >= n)
    if bad.any():
        row = _first_bad_row(bad)
        raise CatalogError(f"{where}: column 'parent_id' row {row}: {parent[row]} is not -1 or an event_id")
    has_parent = parent >= 0
    bad = np.zeros(n, dtype=bool)
    bad[has_parent] = parent[has_parent] >= np.arange(n)[has_parent]
    if bad.any():
        row = _first_bad_row(bad)
        raise CatalogError(
            f"{where}: column 'parent_id' row {row}: parent {parent[row]} does not precede its child"
        )


def _to_table(df: pd.DataFrame, metadata: dict[str, Any]) -> pa.Table:
    fields = [pa.field(name, typ, nullable=False) for name, typ in CATALOG_COLUMNS.items()]
    arrays = [pa.array(df[name].to_numpy(), type=typ) for name, typ in CATALOG_COLUMNS.items()]
    for name in df.columns:
        if name in CATALOG_COLUMNS:
            continue
        arr = pa.array(df[name].to_numpy())
        fields.append(pa.field(name, arr.type, nullable=False))
        arrays.append(arr)
    meta = dict(metadata)
    meta.setdefault("etasvae_version", __version__)
    encoded = json.dumps(meta, sort_keys=True, default=json_default).encode()
    schema = pa.schema(fields, metadata={METADATA_KEY: encoded})
    return pa.Table.from_arrays(arrays, schema=schema)


def write_catalog(df: pd.DataFrame, path: str | os.PathLike, metadata: dict[str, Any], mc: float | None = None) -> None:
    """Validate ``df`` and write it atomically as Parquet with ``metadata`` (JSON) in the file footer."""
    validate_catalog(df, mc=mc, where=str(path))
    table = _to_table(df, metadata)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, compression="zstd", write_statistics=False))


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata dictionary stored with a catalog."""
    schema = pq.read_schema(path)
    raw = (schema.metadata or {}).get(METADATA_KEY)
    return json.loads(raw) if raw else {}


def read_catalog(path: str | os.PathLike, validate: bool = True) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a catalog Parquet file: (events, metadata). Raises CatalogError if it breaks the schema."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(METADATA_KEY)
    metadata = json.loads(raw) if raw else {}
    df = table.to_pandas()
    if validate:
        validate_catalog(df, mc=metadata.get("mc"), where=str(path))
    return df, metadata


def catalog_files(keys: list, paths: list) -> dict[tuple[str, int], Any]:
    """{(config id, replicate): path} of the catalog files ``paths``, keyed by ``keys`` ([config id, replicate]
    pairs in the same order): the form ``evaluate.catalog_windows`` takes, which then reads one file at a time."""
    return {(str(c), int(r)): path for (c, r), path in zip(keys, paths)}


def read_catalogs(keys: list, paths: list) -> dict[tuple[str, int], pd.DataFrame]:
    """{(config id, replicate): events} of the catalog files (``catalog_files``), all read at once."""
    return {key: read_catalog(path)[0] for key, path in catalog_files(keys, paths).items()}
