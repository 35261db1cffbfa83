"""Reading event files: CSV (with or without a header, columns by name or position) and QuakeML (ObsPy).

Every reader returns one row per event with the columns time (UTC timestamps), longitude, latitude,
magnitude, depth_km (when the file has depths) and event_type (when the file has one), and raises
``DatasetError`` naming the file, line and column of the first bad value before anything is written.

CSV files are scanned once with the ``csv`` module before pandas reads them, because pandas fills the
missing fields of a short row with empty values and reads a number cut short (``2.`` of ``2.5``) as a
number: a row with another number of fields than the first row is refused naming its line, and so is a
ComCat file whose last line has no line end (the service ends every answer with one, so a missing line
end means a download cut mid-row).
"""

from __future__ import annotations

import csv
import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

# The columns of a ComCat CSV that the import uses (the service writes more; the rest are ignored).
COMCAT_COLUMNS = {"time": "time", "longitude": "longitude", "latitude": "latitude", "magnitude": "mag", "depth": "depth",
                  "type": "type"}
# Physical ranges: values outside are input errors, not events.
MAGNITUDE_RANGE = (-3.0, 10.0)
DEPTH_RANGE_KM = (-10.0, 800.0)  # above sea level (negative) down to the deepest earthquakes (~700 km)
QUAKEML_HINT = "source: quakeml reads QuakeML through ObsPy, an optional extra: pip install 'etasvae[quakeml]'"


class DatasetError(ValueError):
    """A dataset's configuration or catalog file is unusable; the message names the file, line and column."""


@dataclass(frozen=True)
class _Rows:
    """Where the data rows of a file are: its path and the line number of each data row."""

    path: str
    lines: np.ndarray | None  # None: a document without lines per event (QuakeML): rows are named as events

    def where(self, i: int, column: Any) -> str:
        name = f"column {column + 1} (by position)" if isinstance(column, (int, np.integer)) else f"column '{column}'"
        if self.lines is None:
            return f"{self.path}, event {i}, {name.replace('column', 'field')}"
        return f"{self.path}, line {int(self.lines[i])} (data row {i}), {name}"


# ----------------------------------------------------------------------------------------------- CSV


def _row_lines(path: str, header: bool, cut_means_error: bool) -> np.ndarray:
    """The line number of each data row; DatasetError at the first row whose field count differs from the
    first row's, or (``cut_means_error``) when the last line has no line end."""
    lines, width = [], None
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        start = 1
        for record in reader:
            first, start = start, reader.line_num + 1
            if not record:  # a blank line: pandas skips it too
                continue
            if width is None:
                width = len(record)
                if header:
                    continue
            elif len(record) != width:
                what = "the header" if header else "the first row"
                raise DatasetError(f"{path}, line {first}: {len(record)} field(s) where {what} has {width}: the row is "
                                   "cut short or has extra separators (a download cut mid-row?); fix or remove the line")
            lines.append(first)
        fh.seek(0, 2)
        size = fh.tell()
    if cut_means_error and size:
        with open(path, "rb") as fh:
            fh.seek(size - 1)
            if fh.read(1) not in (b"\n", b"\r"):
                raise DatasetError(f"{path}, line {start - 1}: the file ends without a line end, so its last row is cut "
                                   "(the event service ends every answer with one); download the file again")
    return np.asarray(lines, dtype=np.int64)


def _parse_times(raw: pd.Series, rows: _Rows, column: Any, time_format: str) -> pd.Series:
    """UTC timestamps; DatasetError naming the first row that does not parse."""
    text = raw.astype("string").str.strip()
    if time_format == "decimal_year":
        years = pd.to_numeric(text, errors="coerce")
        bad = years.isna() | ~np.isfinite(years.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DatasetError(f"{rows.where(i, column)}: cannot read {raw.iloc[i]!r} as a decimal year")
        whole = np.floor(years.to_numpy(dtype=float)).astype(np.int64)
        begin = pd.to_datetime(pd.Series(whole).astype(str) + "-01-01", utc=True)
        end = pd.to_datetime(pd.Series(whole + 1).astype(str) + "-01-01", utc=True)
        return begin + (end - begin) * (years.to_numpy(dtype=float) - whole)
    fmt = "ISO8601" if time_format == "iso" else time_format
    parsed = pd.to_datetime(text, errors="coerce", utc=True, format=fmt)
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        expected = "an ISO 8601 time" if time_format == "iso" else f"a time in format {time_format!r}"
        raise DatasetError(f"{rows.where(i, column)}: cannot parse {raw.iloc[i]!r} as {expected}")
    return parsed


def _numbers(raw: pd.Series, rows: _Rows, column: Any, lo: float, hi: float, what: str) -> np.ndarray:
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        shown = "an empty value" if pd.isna(raw.iloc[i]) else repr(raw.iloc[i])
        raise DatasetError(f"{rows.where(i, column)}: {shown} is not a number ({what} is required on every row)")
    bad = (values < lo) | (values > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetError(f"{rows.where(i, column)}: {values[i]:g} is outside the {what} range [{lo}, {hi}]")
    return values


def _depths_km(raw: pd.Series, rows: _Rows, column: Any, depth_unit: str) -> np.ndarray:
    scale = 1e-3 if depth_unit == "m" else 1.0
    lo, hi = (d / scale for d in DEPTH_RANGE_KM)
    depth = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if depth_unit == "km" and np.nanmax(np.append(depth, -np.inf)) > DEPTH_RANGE_KM[1]:
        i = int(np.nanargmax(depth))
        raise DatasetError(
            f"{rows.where(i, column)}: depth {depth[i]:g} km is deeper than any earthquake ({DEPTH_RANGE_KM[1]:g} km): "
            "the depths look like metres; declare depth_unit: m"
        )
    return _numbers(raw, rows, column, lo, hi, "depth") * scale


def _column(raw: pd.DataFrame, key: str, ref: Any, path: str) -> pd.Series:
    """The column ``ref`` (a name, or a 0-based position) of ``raw``; DatasetError naming the key if absent."""
    if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
        if not 0 <= ref < raw.shape[1]:
            raise DatasetError(f"{path}: columns.{key} = {ref} (a 0-based position), but the rows have {raw.shape[1]} fields")
        return raw.iloc[:, int(ref)]
    if ref not in raw.columns:
        raise DatasetError(f"{path}: missing column {ref!r} ({key}); the header has {list(raw.columns)}")
    return raw[ref]


def read_events(path: str, columns: dict[str, Any], *, time_format: str = "iso", depth_unit: str = "km",
                header: bool = True, cut_means_error: bool = False) -> pd.DataFrame:
    """Read a CSV of events: (time UTC, longitude, latitude, magnitude[, depth_km][, event_type]) per data row.

    ``columns`` maps time, longitude, latitude, magnitude and optionally depth, date (a separate date
    column: the time is then ``"<date> <time>"``, and ``time_format`` describes that joined text) and type
    (the event type) to the file's column names, or to 0-based positions (any file; a file without a
    header, ``header=False``, has positions only). ``time_format`` is ``iso`` (ISO 8601), ``decimal_year``
    or a strftime format. Depths are converted to km (``depth_unit`` km or m); km depths beyond 800 are
    taken as metres declared as km and refused. ``cut_means_error``: a last line without a line end is a
    cut download (ComCat files).
    """
    path = str(path)
    try:
        lines = _row_lines(path, header, cut_means_error)
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=True,
                          header=0 if header else None)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as err:
        raise DatasetError(f"{path}: not a readable CSV ({err})") from None
    if len(raw) != len(lines):  # the scan and pandas disagree on what a row is (e.g. a quoted line end)
        raise DatasetError(f"{path}: {len(raw)} rows read but {len(lines)} counted; check quoting and line ends")
    rows = _Rows(path, lines)
    missing = [f"{ref!r} ({k})" for k, ref in columns.items() if isinstance(ref, str) and ref not in raw.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; the header has {list(raw.columns)}")
    col = {k: _column(raw, k, ref, path) for k, ref in columns.items()}
    when = col["time"]
    if "date" in col:
        when = col["date"].astype("string").str.strip() + " " + when.astype("string").str.strip()
    when_name = f"{columns['date']!s} + {columns['time']!s}" if "date" in columns else columns["time"]
    out = pd.DataFrame({
        "time": _parse_times(when, rows, when_name, time_format),
        "longitude": _numbers(col["longitude"], rows, columns["longitude"], -180.0, 180.0, "longitude"),
        "latitude": _numbers(col["latitude"], rows, columns["latitude"], -90.0, 90.0, "latitude"),
        "magnitude": _numbers(col["magnitude"], rows, columns["magnitude"], *MAGNITUDE_RANGE, "magnitude"),
    })
    if "depth" in col:
        out["depth_km"] = _depths_km(col["depth"], rows, columns["depth"], depth_unit)
    if "type" in col:
        out["event_type"] = col["type"].fillna("").astype(str).str.strip().str.lower().to_numpy()
    return out


# ------------------------------------------------------------------------------------------- QuakeML


def read_quakeml(path: str) -> pd.DataFrame:
    """The events of a QuakeML file through ObsPy: each event's preferred origin and magnitude (else its first),
    depth in km (QuakeML stores metres) and ``event_type`` ("" where the file gives none)."""
    path = str(path)
    try:  # an optional extra: imported only when a dataset reads QuakeML, so the core install stays light
        obspy = importlib.import_module("obspy")
    except ImportError:
        raise DatasetError(f"{path}: {QUAKEML_HINT}") from None
    try:
        catalog = obspy.read_events(path, format="QUAKEML")
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except Exception as err:  # ObsPy raises a variety of parser errors for a malformed document
        raise DatasetError(f"{path}: not a readable QuakeML document ({type(err).__name__}: {err})") from None
    records = []
    for i, event in enumerate(catalog):
        origin = event.preferred_origin() or (event.origins[0] if event.origins else None)
        magnitude = event.preferred_magnitude() or (event.magnitudes[0] if event.magnitudes else None)
        where = f"{path}, event {i} ({event.resource_id})"
        if origin is None or origin.time is None or origin.longitude is None or origin.latitude is None:
            raise DatasetError(f"{where}: no origin with a time, longitude and latitude")
        if magnitude is None or magnitude.mag is None:
            raise DatasetError(f"{where}: no magnitude")
        records.append({
            "time": pd.Timestamp(origin.time.isoformat()).tz_localize("UTC"),
            "longitude": float(origin.longitude),
            "latitude": float(origin.latitude),
            "magnitude": float(magnitude.mag),
            "depth_km": float(origin.depth) / 1000.0 if origin.depth is not None else np.nan,
            "event_type": str(event.event_type or "").strip().lower(),
        })
    if not records:
        raise DatasetError(f"{path}: the QuakeML document holds no event")
    out = pd.DataFrame.from_records(records)
    rows = _Rows(path, None)
    _numbers(out["magnitude"], rows, "magnitude", *MAGNITUDE_RANGE, "magnitude")
    _numbers(out["longitude"], rows, "longitude", -180.0, 180.0, "longitude")
    _numbers(out["latitude"], rows, "latitude", -90.0, 90.0, "latitude")
    return out
