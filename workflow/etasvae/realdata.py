"""Real earthquake catalogs on the same path as the ETAS configs: import, projection, completeness, windows.

A *dataset* (config key ``datasets``) names a catalog source, a region in longitude/latitude, a time span,
a minimum magnitude, a completeness magnitude Mc (a number, or ``maxc`` to estimate it) and a time split
into training, validation and held-out periods. Importing it gives one catalog in the catalog schema
(``etasvae.catalog``):

- sources: ``comcat`` (the USGS ComCat FDSN event service, ``format=csv``, downloaded once by a rule and
  cached; see ``download_comcat``), ``comcat_csv`` (a local file in that format), ``csv`` (any CSV, with a
  column mapping by name or 0-based position, with or without a header, date and time in one column or
  two) and ``quakeml`` (through ObsPy, the optional extra ``quakeml``); the readers are in
  ``etasvae.eventfiles``.
- event types: ``event_types`` keeps the listed types (ComCat's ``type`` column, QuakeML's event type, or a
  CSV's ``columns.type``); left null it keeps ComCat's earthquakes (quarry blasts and explosions are
  removed and counted) and every event of the other sources.
- projection: longitude/latitude -> km in a local frame by the spherical azimuthal equidistant projection
  about the region's centre (``project``); distances and azimuths from the centre are exact on the sphere
  (R = 6371.0088 km, the mean Earth radius); other distances within 200 km of the centre are off by less
  than 0.02 % (scale factor c/sin c across the radius), far below location errors. time is days since the dataset's ``start`` (UTC), which the
  metadata keeps as ``origin_utc``.
- completeness: events below Mc are dropped and counted; ``mc: maxc`` estimates Mc on the training period
  only (so held-out data choose nothing) by the maximum-curvature method with the usual +0.2 correction
  (Wiemer & Wyss 2000; Woessner & Wiemer 2005).
- the catalog has no triggering information: ``parent_id`` and ``generation`` are -1 (unknown).

Bad input raises ``DatasetError`` naming the file, line and column before anything is written: missing
columns, unparseable times, missing or out-of-range coordinates, magnitudes or depths, depths that look
like metres where km are declared, an empty selection. Exact duplicates (same time, longitude, latitude
and magnitude) are dropped and unsorted rows are sorted; both are counted in the import report.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import time as _time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable

import numpy as np
import pandas as pd

from .catalog import atomic_write, write_catalog
from .eventfiles import COMCAT_COLUMNS, DatasetError, read_events, read_quakeml
from .features import build_windows

COMCAT_URL = "https://earthquake.usgs.gov/fdsnws/event/1/query"
EARTH_RADIUS_KM = 6371.0088
SOURCES = ("comcat", "comcat_csv", "csv", "quakeml")
# event_types: null keeps ComCat's earthquakes only (its files also list quarry blasts, explosions, ...)
# and every event of the other sources.
COMCAT_EVENT_TYPES = ("earthquake",)
PERIODS = ("train", "validation", "heldout")
MC_METHODS = ("maxc",)
# The schema's defaults, applied here as well: a schema validator fills defaults of named properties only.
DATASET_DEFAULTS: dict[str, Any] = {
    "url": COMCAT_URL,
    "min_magnitude": 0.0,
    "mc": "maxc",
    "mag_bin": 0.1,
    "max_depth_km": None,
    "time_format": "iso",
    "depth_unit": "km",
    "header": True,
    "event_types": None,
    "aux_days": 0.0,
}
DOWNLOAD_DEFAULTS: dict[str, Any] = {"retries": 3, "timeout_s": 120.0, "retry_wait_s": 10.0, "deadline_s": 900.0}
# The CSEP tests of the held-out period's forecasts (etasvae.dataset_forecast)
CSEP_DEFAULTS: dict[str, Any] = {"horizon_days": None, "n_catalogs": 1000, "cell_km": 10.0}


# ------------------------------------------------------------------------------------------- config


def _timestamp(value: Any, key: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(str(value))
    except (ValueError, TypeError) as err:
        raise DatasetError(f"{key} = {value!r}: not a date/time (use ISO 8601, e.g. '2019-07-04' or '2019-07-04T17:33:00')") from err
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _region(region: dict[str, Any], key: str) -> dict[str, Any]:
    if ("bbox" in region) == ("polygon" in region):
        raise DatasetError(f"{key}: give exactly one of bbox: [lon_min, lon_max, lat_min, lat_max] or polygon: [[lon, lat], ...]")
    if "bbox" in region:
        lon_min, lon_max, lat_min, lat_max = (float(v) for v in region["bbox"])
        if not (-180 <= lon_min < lon_max <= 180 and -90 <= lat_min < lat_max <= 90):
            raise DatasetError(
                f"{key}.bbox = {region['bbox']}: must be [lon_min, lon_max, lat_min, lat_max] with "
                "-180 <= lon_min < lon_max <= 180 and -90 <= lat_min < lat_max <= 90"
            )
        return {"bbox": [lon_min, lon_max, lat_min, lat_max]}
    poly = [[float(p[0]), float(p[1])] for p in region["polygon"]]
    if len(poly) < 3:
        raise DatasetError(f"{key}.polygon: needs at least 3 [lon, lat] vertices, got {len(poly)}")
    for i, (lon, lat) in enumerate(poly):
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise DatasetError(f"{key}.polygon[{i}] = {[lon, lat]}: longitude must be in [-180, 180], latitude in [-90, 90]")
    return {"polygon": poly}


def check_dataset(name: str, ds: dict[str, Any], reserved: set[str] = frozenset()) -> dict[str, Any]:
    """One dataset's config as plain values (times as ISO strings), checked; raises DatasetError naming the key.

    The schema has filled defaults and checked types; this checks what a schema cannot: the source's
    required keys, the region, and start < validation_start < heldout_start < end.
    """
    key = f"datasets.{name}"
    ds = {**DATASET_DEFAULTS, **ds, "download": {**DOWNLOAD_DEFAULTS, **(ds.get("download") or {})},
          "csep": {**CSEP_DEFAULTS, **(ds.get("csep") or {})}}
    if name in reserved:
        raise DatasetError(f"{key}: the name is already an ETAS config id (or 'pooled'); datasets need their own names")
    source = ds["source"]
    if source != "comcat" and not ds.get("path"):
        raise DatasetError(f"{key}.path is missing: source '{source}' reads a local file")
    if source == "csv":
        _check_columns(ds, key)
    elif ds.get("columns") or not ds["header"]:
        raise DatasetError(f"{key}: columns and header are for source csv; source '{source}' has its own columns")
    ds["event_types"] = _event_types(ds, key)
    start, end = _timestamp(ds["start"], f"{key}.start"), _timestamp(ds["end"], f"{key}.end")
    split = ds["split"]
    val = _timestamp(split["validation_start"], f"{key}.split.validation_start")
    held = _timestamp(split["heldout_start"], f"{key}.split.heldout_start")
    if not start < val < held < end:
        raise DatasetError(
            f"{key}: need start < split.validation_start < split.heldout_start < end, got {start.isoformat()}, "
            f"{val.isoformat()}, {held.isoformat()}, {end.isoformat()}"
        )
    train_days = (val - start) / pd.Timedelta(days=1)
    if not 0 <= ds["aux_days"] < train_days:
        raise DatasetError(
            f"{key}.aux_days = {ds['aux_days']:g}: the auxiliary period (history of the forecast's ETAS fit) must "
            f"leave part of the training period to fit, which is {train_days:g} days long (start to split.validation_start)"
        )
    mc = ds["mc"]
    if isinstance(mc, str) and mc not in MC_METHODS:
        raise DatasetError(f"{key}.mc = {mc!r}: a magnitude or one of {list(MC_METHODS)}")
    if not isinstance(mc, str) and mc < ds["min_magnitude"]:
        raise DatasetError(f"{key}.mc = {mc}: below min_magnitude = {ds['min_magnitude']}, so the catalog would be incomplete by construction")
    out = dict(ds)
    out.update(
        name=name,
        region=_region(ds["region"], f"{key}.region"),
        start=start.isoformat(),
        end=end.isoformat(),
        split={"validation_start": val.isoformat(), "heldout_start": held.isoformat()},
    )
    return out


def _check_columns(ds: dict[str, Any], key: str) -> None:
    """A generic CSV's column mapping: the four required columns, positions where the file has no header."""
    cols = ds.get("columns") or {}
    missing = [c for c in ("time", "longitude", "latitude", "magnitude") if c not in cols]
    if missing:
        raise DatasetError(f"{key}.columns.{missing[0]} is missing: a generic CSV needs the columns of time, longitude, "
                           "latitude and magnitude (depth, date and type optional), by name or 0-based position")
    if not ds["header"]:
        named = [c for c, ref in cols.items() if not isinstance(ref, int)]
        if named:
            raise DatasetError(f"{key}.columns.{named[0]} = {cols[named[0]]!r}: header: false means the file has no "
                               "column names; give each column as a 0-based position (e.g. time: 0)")
    positions = [ref for ref in cols.values() if isinstance(ref, int)]
    if len(set(positions)) < len(positions):
        raise DatasetError(f"{key}.columns: two keys share one position ({cols})")


def _event_types(ds: dict[str, Any], key: str) -> list[str] | None:
    """The event types kept (lower case), or None for all: null keeps ComCat's earthquakes and every event of
    the other sources."""
    types = ds.get("event_types")
    if types is None:
        return list(COMCAT_EVENT_TYPES) if ds["source"] in ("comcat", "comcat_csv") else None
    if ds["source"] == "csv" and "type" not in (ds.get("columns") or {}):
        raise DatasetError(f"{key}.event_types = {types}: the file has no event-type column; map it as columns.type")
    return [str(t).strip().lower() for t in types]


def check_datasets(config: dict[str, Any], reserved: set[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """Every dataset of ``config['datasets']``, checked, by name (empty when there are none)."""
    return {name: check_dataset(name, ds, reserved) for name, ds in (config.get("datasets") or {}).items()}


def periods_days(ds: dict[str, Any]) -> dict[str, list[float]]:
    """{period: [start, end)} in days since the dataset's start."""
    t0 = pd.Timestamp(ds["start"])
    edges = [t0, pd.Timestamp(ds["split"]["validation_start"]), pd.Timestamp(ds["split"]["heldout_start"]), pd.Timestamp(ds["end"])]
    days = [(t - t0) / pd.Timedelta(days=1) for t in edges]
    return {p: [days[i], days[i + 1]] for i, p in enumerate(PERIODS)}


# ---------------------------------------------------------------------------------------- projection


def region_centre(region: dict[str, Any]) -> tuple[float, float]:
    """(lon, lat) of the projection centre: the bounding box's centre, or the mean of the polygon's vertices."""
    if "bbox" in region:
        lon_min, lon_max, lat_min, lat_max = region["bbox"]
        return (lon_min + lon_max) / 2, (lat_min + lat_max) / 2
    poly = np.asarray(region["polygon"], dtype=float)
    return float(poly[:, 0].mean()), float(poly[:, 1].mean())


def project(lon: np.ndarray, lat: np.ndarray, lon0: float, lat0: float, radius: float = EARTH_RADIUS_KM) -> tuple[np.ndarray, np.ndarray]:
    """Spherical azimuthal equidistant projection about (lon0, lat0): (x east, y north) in km.

    The distance of (x, y) from the origin is the great-circle distance to the centre, and its direction is
    the azimuth (Snyder 1987, eqs. 25-2, 22-4, 22-5).
    """
    lam = np.radians(np.asarray(lon, dtype=float) - lon0)
    phi, phi0 = np.radians(np.asarray(lat, dtype=float)), math.radians(lat0)
    cos_c = np.clip(math.sin(phi0) * np.sin(phi) + math.cos(phi0) * np.cos(phi) * np.cos(lam), -1.0, 1.0)
    c = np.arccos(cos_c)
    k = np.where(c > 1e-12, c / np.sin(np.where(c > 1e-12, c, 1.0)), 1.0)
    x = radius * k * np.cos(phi) * np.sin(lam)
    y = radius * k * (math.cos(phi0) * np.sin(phi) - math.sin(phi0) * np.cos(phi) * np.cos(lam))
    return x, y


def unproject(x: np.ndarray, y: np.ndarray, lon0: float, lat0: float, radius: float = EARTH_RADIUS_KM) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of ``project``: (lon, lat) in degrees (Snyder 1987, eqs. 20-14, 20-15)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rho = np.hypot(x, y)
    c = rho / radius
    phi0 = math.radians(lat0)
    safe = np.where(rho > 0, rho, 1.0)
    phi = np.arcsin(np.clip(np.cos(c) * math.sin(phi0) + y * np.sin(c) * math.cos(phi0) / safe, -1.0, 1.0))
    lam = np.arctan2(x * np.sin(c), rho * math.cos(phi0) * np.cos(c) - y * math.sin(phi0) * np.sin(c))
    return lon0 + np.degrees(lam), np.degrees(phi)


def inside_region(lon: np.ndarray, lat: np.ndarray, region: dict[str, Any]) -> np.ndarray:
    """Boolean mask of points inside the region (bounding box edges included; polygon: even-odd rule)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if "bbox" in region:
        lon_min, lon_max, lat_min, lat_max = region["bbox"]
        return (lon >= lon_min) & (lon <= lon_max) & (lat >= lat_min) & (lat <= lat_max)
    # Even-odd ray casting: count the polygon edges that a ray from the point towards +longitude crosses.
    poly = np.asarray(region["polygon"], dtype=float)
    inside = np.zeros(lon.shape, dtype=bool)
    for (x1, y1), (x2, y2) in zip(poly, np.roll(poly, -1, axis=0)):
        straddles = (y1 > lat) != (y2 > lat)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x1 + (lat - y1) * (x2 - x1) / (y2 - y1)
        inside ^= straddles & (lon < x_cross)
    return inside


def region_km(region: dict[str, Any], lon0: float, lat0: float) -> list[float]:
    """[xmin, xmax, ymin, ymax] (km) of the projected region's outline (edges sampled densely)."""
    if "bbox" in region:
        lon_min, lon_max, lat_min, lat_max = region["bbox"]
        vertices = [[lon_min, lat_min], [lon_max, lat_min], [lon_max, lat_max], [lon_min, lat_max]]
    else:
        vertices = region["polygon"]
    v = np.asarray(vertices + [vertices[0]], dtype=float)
    s = np.linspace(0.0, 1.0, 101)[:, None]
    pts = np.concatenate([a + s * (b - a) for a, b in zip(v[:-1], v[1:])])
    x, y = project(pts[:, 0], pts[:, 1], lon0, lat0)
    return [float(x.min()), float(x.max()), float(y.min()), float(y.max())]


# -------------------------------------------------------------------------------------- completeness


def mc_max_curvature(magnitudes: np.ndarray, bin_width: float = 0.1, correction: float = 0.2) -> float:
    """Mc by maximum curvature: the centre of the most populated magnitude bin, plus ``correction``.

    The plain maximum-curvature estimate is biased low for gradually incomplete catalogs; +0.2 is the usual
    correction (Woessner & Wiemer 2005). Ties go to the lowest magnitude.
    """
    mags = np.asarray(magnitudes, dtype=float)
    if len(mags) == 0:
        raise ValueError("mc_max_curvature: no magnitudes")
    bins = np.round(mags / bin_width).astype(np.int64)
    values, counts = np.unique(bins, return_counts=True)
    return round(float(values[np.argmax(counts)]) * bin_width + correction, 10)


# ------------------------------------------------------------------------------------------- reading


def read_dataset_events(ds: dict[str, Any], path: str) -> pd.DataFrame:
    """The events of a dataset's file, in the reader its source asks for."""
    if ds["source"] == "quakeml":
        return read_quakeml(path)
    if ds["source"] in ("comcat", "comcat_csv"):
        return read_events(path, COMCAT_COLUMNS, time_format="iso", depth_unit="km", cut_means_error=True)
    return read_events(path, dict(ds["columns"]), time_format=ds.get("time_format", "iso"),
                       depth_unit=ds.get("depth_unit", "km"), header=ds.get("header", True))


# -------------------------------------------------------------------------------------------- import


def import_events(events: pd.DataFrame, ds: dict[str, Any], path: str = "catalog") -> tuple[pd.DataFrame, dict[str, Any]]:
    """Select, clean and project a dataset's events: (catalog in the catalog schema plus depth_km, report).

    Order: rows are sorted by time (stable; rows out of order counted), exact duplicates dropped (counted),
    then the filters of time span, region, minimum magnitude and maximum depth (counted), then Mc (configured
    or estimated on the training period) and events below it dropped (counted). Raises DatasetError when
    nothing is left, or when a period has no event.
    """
    counts: dict[str, int] = {"rows_read": int(len(events))}
    ev = _sorted_without_duplicates(events, counts)
    start = pd.Timestamp(ds["start"])
    ev = _filtered(ev, ds, counts)
    selection = (f"time [{ds['start']}, {ds['end']}), region {ds['region']}, magnitude >= {ds['min_magnitude']}"
                 + (f", depth <= {ds['max_depth_km']} km" if ds.get("max_depth_km") is not None else "")
                 + (f", event types {ds['event_types']}" if ds.get("event_types") is not None else ""))
    if len(ev) == 0:
        raise DatasetError(f"{path}: no event left after the filters ({selection}); removed: {counts}")

    days = ((ev["time"] - start) / pd.Timedelta(days=1)).to_numpy(dtype=float)
    periods = periods_days(ds)
    mc, mc_method = _completeness_magnitude(ev, days, ds, periods, path, selection)
    complete = ev["magnitude"].to_numpy() >= mc - 1e-9
    counts["below_mc"] = int((~complete).sum())
    ev, days = ev[complete].reset_index(drop=True), days[complete]
    counts["kept"] = int(len(ev))
    if len(ev) == 0:
        raise DatasetError(f"{path}: no event at or above Mc = {mc} ({mc_method}) after the filters ({selection})")
    per_period = _events_per_period(days, periods, ds, mc, path)

    lon0, lat0 = region_centre(ds["region"])
    catalog = _projected_catalog(ev, days, lon0, lat0)
    report = {
        "dataset": ds["name"],
        "source": ds["source"],
        "file": str(path),
        "origin_utc": ds["start"],
        "end_utc": ds["end"],
        "duration_days": periods["heldout"][1],
        "periods_days": periods,
        "events_per_period": per_period,
        "mc": mc,
        "mc_method": mc_method,
        "min_magnitude": ds["min_magnitude"],
        "region": ds["region"],
        "projection": {"name": "azimuthal equidistant (spherical)", "lon0": lon0, "lat0": lat0, "radius_km": EARTH_RADIUS_KM},
        "region_km": region_km(ds["region"], lon0, lat0),
        "counts": counts,
    }
    return catalog, report


def _sorted_without_duplicates(events: pd.DataFrame, counts: dict[str, int]) -> pd.DataFrame:
    """Sort the events by time (stable) and drop exact duplicates, counting rows out of order and dropped."""
    t = events["time"].to_numpy()
    counts["rows_out_of_order"] = int((t[1:] < t[:-1]).sum()) if len(t) > 1 else 0
    ev = events.sort_values("time", kind="stable").reset_index(drop=True)
    dup = ev.duplicated(subset=["time", "longitude", "latitude", "magnitude"], keep="first").to_numpy()
    counts["duplicates_dropped"] = int(dup.sum())
    return ev[~dup].reset_index(drop=True)


def _filtered(ev: pd.DataFrame, ds: dict[str, Any], counts: dict[str, int]) -> pd.DataFrame:
    """Keep the events inside the time span, region, minimum magnitude and maximum depth; count removals."""
    start, end = pd.Timestamp(ds["start"]), pd.Timestamp(ds["end"])
    filters = [
        ("outside_time_span", ((ev["time"] >= start) & (ev["time"] < end)).to_numpy()),
        ("outside_region", inside_region(ev["longitude"], ev["latitude"], ds["region"])),
        ("below_min_magnitude", ev["magnitude"].to_numpy() >= ds["min_magnitude"] - 1e-9),
    ]
    if ds.get("event_types") is not None:
        kept_types = ev["event_type"].isin(ds["event_types"]) if "event_type" in ev.columns else np.ones(len(ev), bool)
        filters.insert(0, ("other_event_type", np.asarray(kept_types, dtype=bool)))
    if ds.get("max_depth_km") is not None and "depth_km" in ev.columns:
        filters.append(("deeper_than_max_depth", ev["depth_km"].to_numpy() <= ds["max_depth_km"]))
    keep = np.ones(len(ev), dtype=bool)
    for name, ok in filters:
        counts[name] = int((keep & ~ok).sum())
        keep &= ok
    return ev[keep].reset_index(drop=True)


def _completeness_magnitude(ev: pd.DataFrame, days: np.ndarray, ds: dict[str, Any], periods: dict[str, list[float]],
                            path: str, selection: str) -> tuple[float, str]:
    """Mc and how it was found: configured, or maximum curvature on the training-period events."""
    if not isinstance(ds["mc"], str):
        return float(ds["mc"]), "configured"
    train = (days >= periods["train"][0]) & (days < periods["train"][1])
    if not train.any():
        raise DatasetError(f"{path}: no event in the training period to estimate Mc from ({selection})")
    mc = mc_max_curvature(ev["magnitude"].to_numpy()[train], ds["mag_bin"])
    return mc, f"maximum curvature + 0.2 on the {int(train.sum())} training-period events (bin {ds['mag_bin']})"


def _events_per_period(days: np.ndarray, periods: dict[str, list[float]], ds: dict[str, Any], mc: float,
                       path: str) -> dict[str, int]:
    """The number of events in each period; raise DatasetError if a period has none."""
    per_period = {p: int(((days >= a) & (days < b)).sum()) for p, (a, b) in periods.items()}
    empty = [p for p, n in per_period.items() if n == 0]
    if empty:
        raise DatasetError(f"{path}: the {empty[0]} period {periods[empty[0]]} (days since {ds['start']}) has no event at or above Mc = {mc}; events per period: {per_period}")
    return per_period


def _projected_catalog(ev: pd.DataFrame, days: np.ndarray, lon0: float, lat0: float) -> pd.DataFrame:
    """The events in the catalog schema (plus depth_km), projected to km around (lon0, lat0)."""
    x, y = project(ev["longitude"].to_numpy(), ev["latitude"].to_numpy(), lon0, lat0)
    n = len(ev)
    return pd.DataFrame({
        "event_id": np.arange(n, dtype=np.int64),
        "time": days,
        "magnitude": ev["magnitude"].to_numpy(dtype=float),
        "x": x,
        "y": y,
        "parent_id": np.full(n, -1, dtype=np.int64),
        "generation": np.full(n, -1, dtype=np.int32),
        "depth_km": ev["depth_km"].to_numpy(dtype=float) if "depth_km" in ev.columns else np.full(n, np.nan),
    })


def import_dataset(ds: dict[str, Any], source_path: str, catalog_path: str, report_path: str) -> dict[str, Any]:
    """Read, check, select and project a dataset's file; write the catalog and the import report (JSON).

    Everything is checked before the first write, and both files are written atomically, so a bad input
    leaves neither behind.
    """
    events = read_dataset_events(ds, source_path)
    catalog, report = import_events(events, ds, str(source_path))
    metadata = {"kind": "real", **report, "parent_id": "-1: unknown (real catalog)", "generation": "-1: unknown (real catalog)"}
    write_catalog(catalog, catalog_path, metadata, mc=report["mc"])
    try:
        atomic_write(report_path, lambda tmp: _write_text(tmp, json.dumps(report, indent=2, sort_keys=True)))
    except BaseException:
        os.unlink(catalog_path)
        raise
    return report


def _write_text(path: str, text: str) -> None:
    _write_bytes(path, (text + "\n").encode())


def _write_bytes(path: str, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


# ------------------------------------------------------------------------------------------- windows


def dataset_spec(spec: dict[str, Any], mc: float, sim_mc: float, bands: list[float] | None = None) -> dict[str, Any]:
    """The window spec for a dataset of completeness ``mc``: binned magnitude bands keep their offsets from
    Mc (``windows.binned.magnitude_bands`` are relative to ``simulation.mc``) unless the dataset sets its own."""
    out = dict(spec, mc=float(mc))
    if spec["representation"] == "binned":
        shift = float(mc) - float(sim_mc)
        out["magnitude_bands"] = list(bands) if bands else [round(b + shift, 10) for b in spec["magnitude_bands"]]
    return out


def period_events(events: pd.DataFrame, lo: float) -> pd.DataFrame:
    """A period's events (those of [lo, hi), in time order) on the period's own clock and ids: time - lo,
    event_id 0..n-1, as :func:`dataset_windows` cuts each period."""
    part = events.reset_index(drop=True).copy()
    part["event_id"] = np.arange(len(part), dtype=np.int64)
    part["time"] = part["time"] - lo
    return part


def period_windows(part: pd.DataFrame, spec: dict[str, Any], duration: float, *, heldout: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """The windows of one period (``part``: :func:`period_events`; ``duration``: its length in days), as
    :func:`dataset_windows` cuts each period: one replicate 0, role heldout (or train), clock and ids the
    period's own. Raises build_windows' ValueError where the period gets no window."""
    return build_windows([(0, part)], spec, heldout_replicates=[0] if heldout else [], validation_fraction=0.0,
                         durations={0: duration})


def dataset_windows(catalog: pd.DataFrame, spec: dict[str, Any], periods: dict[str, list[float]]) -> tuple[pd.DataFrame, np.ndarray]:
    """Windows of a real catalog, the role set by the period: (table, X) as ``features.build_windows``.

    Each period is cut on its own (its events, clock from the period's start), so no window straddles two
    periods; t_start, t_end, t_ref and the event ids are then put back on the dataset's clock and ids.
    """
    tables, arrays = [], []
    for role in PERIODS:
        lo, hi = periods[role]
        time = catalog["time"].to_numpy()
        first, stop = np.searchsorted(time, lo, side="left"), np.searchsorted(time, hi, side="left")
        part = period_events(catalog.iloc[first:stop], lo)
        try:
            table, X = period_windows(part, spec, hi - lo, heldout=role != "train")
        except ValueError as err:
            if "gets no window" not in str(err):  # build_windows' message for a role without a window
                raise
            counts = {r: int(((time >= periods[r][0]) & (time < periods[r][1])).sum()) for r in PERIODS}
            raise DatasetError(
                f"the {role} period (days [{lo:g}, {hi:g}) since the dataset's start, {len(part)} events) is too short "
                f"for one window ({spec['representation']}: {_window_size(spec)}); events per period: {counts}. "
                "Lengthen the period (move the split dates) or shorten the windows"
            ) from None
        table["role"] = role
        for col in ("t_start", "t_end", "t_ref"):
            table[col] = table[col] + lo
        for col in ("start_event", "end_event"):
            table[col] = table[col] + first
        tables.append(table.drop(columns="window_id"))
        arrays.append(X)
    table = pd.concat(tables, ignore_index=True)
    table.insert(0, "window_id", np.arange(len(table), dtype=np.int64))
    missing = [r for r in PERIODS if not (table["role"] == r).any()]
    if missing:
        counts = {r: int(((catalog["time"] >= periods[r][0]) & (catalog["time"] < periods[r][1])).sum()) for r in PERIODS}
        raise DatasetError(f"the {missing[0]} period is too short for one window ({spec['representation']}: {_window_size(spec)}); events per period: {counts}")
    return table, np.ascontiguousarray(np.concatenate(arrays, axis=0), dtype=np.float32)


def _window_size(spec: dict[str, Any]) -> str:
    return f"{spec['length']} events" if spec["representation"] == "event" else f"{spec['duration_days']} days"


# ------------------------------------------------------------------------------------------ download


class DownloadError(RuntimeError):
    """The event service could not be reached or answered with an error."""


def comcat_query(ds: dict[str, Any]) -> dict[str, str]:
    """The FDSN event query of a dataset: its time span, the region's bounding box and min_magnitude."""
    if "bbox" in ds["region"]:
        lon_min, lon_max, lat_min, lat_max = ds["region"]["bbox"]
    else:
        poly = np.asarray(ds["region"]["polygon"], dtype=float)
        lon_min, lat_min = poly.min(axis=0)
        lon_max, lat_max = poly.max(axis=0)
    fmt = "%Y-%m-%dT%H:%M:%S.%f"
    return {
        "format": "csv",
        "starttime": pd.Timestamp(ds["start"]).strftime(fmt)[:-3],
        "endtime": pd.Timestamp(ds["end"]).strftime(fmt)[:-3],
        "minlongitude": format(float(lon_min), ".6f"),
        "maxlongitude": format(float(lon_max), ".6f"),
        "minlatitude": format(float(lat_min), ".6f"),
        "maxlatitude": format(float(lat_max), ".6f"),
        "minmagnitude": format(float(ds["min_magnitude"]), "g"),
        "orderby": "time-asc",
    }


def download_comcat(url: str, query: dict[str, str], dest: str, *, retries: int = 3, timeout_s: float = 60.0,
                    retry_wait_s: float = 5.0, deadline_s: float = 900.0, log: Callable[[str], None] | None = None) -> int:
    """Fetch ``url?query`` (an FDSN event service, ``format=csv``) into ``dest`` atomically; the number of events.

    Network failures (a refused or dropped connection, a timeout, an answer cut short:
    ``http.client.IncompleteRead``, or a body that stops mid-row) and HTTP 5xx / 429 are retried ``retries``
    times, waiting ``retry_wait_s`` x 2^k; other HTTP errors (a bad query, more events than the service
    returns at once) fail at once with the service's message. HTTP 204 (no event matches) is an error: an
    empty selection. ``timeout_s`` bounds each wait for the service, ``deadline_s`` the whole download,
    retries and waits included (a service that trickles bytes never trips a per-read timeout).
    """
    full = f"{url}?{urllib.parse.urlencode(query)}"
    deadline = _time.monotonic() + deadline_s
    last = "no attempt"
    for attempt in range(1, retries + 1):
        try:
            status, body = _fetch(full, timeout_s, deadline)
        except urllib.error.HTTPError as err:
            detail = " ".join(err.read()[:500].decode(errors="replace").split())
            if err.code < 500 and err.code != 429:
                raise DownloadError(f"{full}: the event service refused the query (HTTP {err.code}): {detail}") from None
            last = f"HTTP {err.code}: {detail}"
        except _DeadlineExceeded as err:
            raise DownloadError(f"{full}: the download passed its deadline of {deadline_s:g} s (download.deadline_s) "
                                f"on attempt {attempt}/{retries} ({err}); last failure: {last}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError, http.client.HTTPException) as err:
            last = _network_fault(err)
        else:
            if status == 204 or not body.strip():
                raise DownloadError(f"{full}: the event service found no event for this query (HTTP {status}): an empty selection")
            header = body.split(b"\n", 1)[0].decode(errors="replace")
            if not re.match(r"^\s*time\s*,", header):
                raise DownloadError(f"{full}: the answer is not a ComCat CSV (first line {header[:120]!r})")
            if body.endswith(b"\n"):
                atomic_write(dest, lambda tmp: _write_bytes(tmp, body))
                return body.count(b"\n") - 1
            last = f"the answer stops mid-row after {len(body)} bytes (no line end at its end): a cut connection"
        if log:
            log(f"attempt {attempt}/{retries} failed: {last}")
        if attempt < retries:
            wait = retry_wait_s * 2 ** (attempt - 1)
            if _time.monotonic() + wait >= deadline:
                raise DownloadError(f"{full}: the download passed its deadline of {deadline_s:g} s (download.deadline_s) "
                                    f"after {attempt} attempt(s); last failure: {last}")
            _time.sleep(wait)
    raise DownloadError(
        f"cannot reach the event service at {url} after {retries} attempt(s): {last}. The download needs the network "
        f"once; on a machine without it, save {full} elsewhere and declare the dataset with source: comcat_csv "
        "and path: <the saved file>"
    )


class _DeadlineExceeded(Exception):
    """The whole download ran past its deadline."""


def _fetch(full: str, timeout_s: float, deadline: float, chunk: int = 1 << 16) -> tuple[int, bytes]:
    """(HTTP status, body) of one GET, read in chunks so that the deadline holds while bytes still arrive."""
    remaining = deadline - _time.monotonic()
    if remaining <= 0:
        raise _DeadlineExceeded("no time left for another attempt")
    parts = []
    with urllib.request.urlopen(full, timeout=min(timeout_s, remaining)) as response:
        while True:
            if _time.monotonic() > deadline:
                raise _DeadlineExceeded(f"{sum(map(len, parts))} bytes received")
            part = response.read(chunk)
            if not part:
                body = b"".join(parts)
                # read(n) returns b"" when the connection closes early; read() would raise IncompleteRead.
                if response.length:
                    raise http.client.IncompleteRead(body, response.length)
                return response.status, body
            parts.append(part)


def _network_fault(err: BaseException) -> str:
    if isinstance(err, http.client.IncompleteRead):
        return (f"the connection dropped mid-answer (IncompleteRead: {len(err.partial)} bytes received"
                + (f", {err.expected} more expected)" if err.expected is not None else ")"))
    return f"{type(err).__name__}: {getattr(err, 'reason', err)}"


def dataset_facts(report: dict[str, Any]) -> dict[str, Any]:
    """The facts of an import report that a model page shows: the periods as UTC dates (and days), the
    region, Mc and how it was found, the events per period and what the filters removed."""
    t0 = pd.Timestamp(report["origin_utc"])

    def span(period: str) -> str:
        lo, hi = report["periods_days"][period]
        dates = [(t0 + pd.Timedelta(days=d)).strftime("%Y-%m-%d %H:%M") for d in (lo, hi)]
        return f"{dates[0]} to {dates[1]} UTC (days {lo:g} to {hi:g})"

    region = report["region"]
    where = (f"longitude {region['bbox'][0]:g} to {region['bbox'][1]:g}, latitude {region['bbox'][2]:g} to {region['bbox'][3]:g}"
             if "bbox" in region else f"polygon of {len(region['polygon'])} vertices {region['polygon']}")
    return {
        "source": f"{report['source']}: {report['file']}",
        "region": where,
        "H (held-out period)": span("heldout"),
        "V (validation period)": span("validation"),
        "A (training period, the floor)": span("train"),
        "mc": report["mc"],
        "mc_method": report["mc_method"],
        "events_per_period": report["events_per_period"],
        "counts": report["counts"],
    }
