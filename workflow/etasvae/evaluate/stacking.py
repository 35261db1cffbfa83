"""Window sets as flat arrays, and the per-window descriptions every comparison starts from.

A *window set* is a list of per-window event tables with columns time (days from the window start),
magnitude, x, y (km), in time order. A window's duration is ``df.attrs["duration"]`` when set, otherwise the
time of its last event (event windows end at an event). This module is the one home of "each window's
largest event and the events after it" and of the log inter-event times and distances.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .. import stats


@dataclass
class Stacked:
    """A window set as flat arrays: events of window k are ``slice(start[k], start[k] + n[k])``."""

    t: np.ndarray
    m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    g: np.ndarray  # window index of each event
    n: np.ndarray  # events per window
    start: np.ndarray
    duration: np.ndarray  # days
    # Each event's identity in its source catalog (``event_key`` of ``sets.catalog_windows``), or None
    # (synthetic and baseline windows: every event is its own). Overlapping windows of one catalog hold the
    # same event more than once; the catalog-level statistics count it once (``distinct_events``).
    key: np.ndarray | None = None

    @property
    def n_windows(self) -> int:
        return self.n.size


def window_duration(df: pd.DataFrame) -> float:
    """A window's duration in days: ``df.attrs["duration"]`` if set, else the time of its last event."""
    if "duration" in df.attrs:
        return float(df.attrs["duration"])
    return float(df["time"].max()) if len(df) else 0.0


def stack_windows(windows: list[pd.DataFrame]) -> Stacked:
    """Concatenate a window set into flat arrays (one concatenation, no per-event Python work)."""
    n = np.array([len(w) for w in windows], dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64) if n.size else np.zeros(0, np.int64)
    nonempty = [w for w in windows if len(w)]
    if nonempty:
        flat = pd.concat(nonempty, ignore_index=True)
        t, m, x, y = (flat[c].to_numpy(dtype=float) for c in ("time", "magnitude", "x", "y"))
    else:
        t = m = x = y = np.zeros(0)
    last = np.zeros(n.size)  # time of each window's last event
    if nonempty:
        last[n > 0] = np.maximum.reduceat(t, start[n > 0])
    duration = np.array(
        [float(w.attrs["duration"]) if "duration" in w.attrs else last[k] for k, w in enumerate(windows)]
    )
    key = None
    if nonempty and all("event_key" in w.columns for w in nonempty):
        key = flat["event_key"].to_numpy(dtype=np.int64)
    return Stacked(t=t, m=m, x=x, y=y, g=np.repeat(np.arange(n.size), n), n=n, start=start, duration=duration, key=key)


def distinct_events(st: Stacked) -> np.ndarray:
    """Mask of each event's first instance in the set (all True without event keys)."""
    if st.key is None:
        return np.ones(st.t.size, dtype=bool)
    first = np.zeros(st.t.size, dtype=bool)
    first[np.unique(st.key, return_index=True)[1]] = True
    return first


def distinct_mainshock_windows(st: Stacked, main: np.ndarray, remaining: np.ndarray) -> np.ndarray:
    """Mask of the windows that stack a mainshock's aftershocks once: of the windows whose largest event is
    the same catalog event (overlapping windows), the one with the longest time after it; all windows with
    a largest event when there are no event keys."""
    has_main = main >= 0
    if st.key is None:
        return has_main
    keep = np.zeros(st.n_windows, dtype=bool)
    k = np.flatnonzero(has_main)
    order = k[np.lexsort((-remaining[k], st.key[main[k]]))]  # by mainshock, the longest remainder first
    first = np.r_[True, st.key[main[order]][1:] != st.key[main[order]][:-1]] if order.size else np.zeros(0, bool)
    keep[order[first]] = True
    return keep


def group_mean_std(values: np.ndarray, groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group count, mean and sample standard deviation (ddof=1), NaN where undefined."""
    cnt = np.bincount(groups, minlength=n_groups).astype(float)
    s1 = np.bincount(groups, weights=values, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / cnt
        dev = values - mean[groups]
        var = np.bincount(groups, weights=dev**2, minlength=n_groups) / (cnt - 1)
    mean[cnt < 1] = np.nan
    var[cnt < 2] = np.nan
    return cnt, mean, np.sqrt(var)


# ------------------------------------------------------------------ the largest event and the events after it


def mainshock_index(st: Stacked) -> np.ndarray:
    """Index (into the flat arrays) of each window's largest event, first one on ties; -1 if empty."""
    order = np.lexsort((np.arange(st.m.size), -st.m, st.g))
    idx = np.full(st.n_windows, -1, dtype=np.int64)
    nonempty = st.n > 0
    # after the sort each window's events are contiguous and its largest comes first
    first = np.concatenate([[0], np.cumsum(st.n)[:-1]])
    idx[nonempty] = order[first[nonempty]]
    return idx


@dataclass
class Aftershocks:
    """Each window's largest event and the events after it (in time order), as masks on the flat arrays."""

    main: np.ndarray  # mainshock_index
    after: np.ndarray  # bool per event: after its window's largest event
    t_main: np.ndarray  # time of each window's largest event, NaN for an empty window
    t_rel: np.ndarray  # per event: time since its window's largest event (days)
    remaining: np.ndarray  # per window: duration left after its largest event, ≥ 0 (days)


def aftershocks(st: Stacked) -> Aftershocks:
    """The events after each window's largest one (first largest on ties), with their times since it."""
    im = mainshock_index(st)
    has_main = im >= 0
    t_main = np.where(has_main, st.t[np.maximum(im, 0)], np.nan)
    after = np.arange(st.t.size) > im[st.g]
    t_zero = np.where(has_main, st.t[np.maximum(im, 0)], 0.0)
    return Aftershocks(
        main=im,
        after=after,
        t_main=t_main,
        t_rel=st.t - t_zero[st.g],
        remaining=np.maximum(st.duration - t_zero, 0.0),
    )


# ------------------------------------------------------------------ log inter-event times and distances


def consecutive(st: Stacked) -> tuple[np.ndarray, np.ndarray]:
    """Mask of the flat differences that stay within one window, and the window of each kept one."""
    same = st.g[1:] == st.g[:-1]
    return same, st.g[1:][same]


def inter_event_times(st: Stacked) -> tuple[np.ndarray, np.ndarray]:
    """Inter-event times within windows (days) and the window of each."""
    same, groups = consecutive(st)
    return np.diff(st.t)[same], groups


def log10_dt(dt: np.ndarray) -> np.ndarray:
    """log10 of inter-event times (days), floored at stats.MIN_DT_DAYS."""
    return np.log10(np.maximum(dt, stats.MIN_DT_DAYS))


def log10_distance(r: np.ndarray) -> np.ndarray:
    """log10 of distances (km), floored at stats.MIN_DISTANCE_KM."""
    return np.log10(np.maximum(r, stats.MIN_DISTANCE_KM))


def log10_dr(st: Stacked) -> tuple[np.ndarray, np.ndarray]:
    """log10 distances (km) between consecutive events of a window, and the window of each."""
    same, groups = consecutive(st)
    return log10_distance(np.hypot(np.diff(st.x), np.diff(st.y))[same]), groups


def log10_r_main(st: Stacked, im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log10 distances (km) of every other event to its window's largest event, and the window of each."""
    other = np.arange(st.t.size) != im[st.g]
    r = np.hypot(st.x - st.x[im[st.g]], st.y - st.y[im[st.g]])[other] if st.t.size else np.zeros(0)
    return log10_distance(r), st.g[other]


def mean_log10_nn(st: Stacked) -> np.ndarray:
    """Mean log10 nearest-neighbour distance (km) per window (a k-d tree per window)."""
    res = np.full(st.n_windows, np.nan)
    xy = np.column_stack([st.x, st.y])
    for k in np.flatnonzero(st.n >= 2):
        pts = xy[st.start[k] : st.start[k] + st.n[k]]
        d, _ = cKDTree(pts).query(pts, k=2)
        res[k] = np.mean(log10_distance(d[:, 1]))
    return res
