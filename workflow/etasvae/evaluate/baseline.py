"""The naive baseline P: a Poisson process with the reference's rate, no clustering, and magnitudes that know
nothing of Gutenberg–Richter (see docs/design.md, *Evaluation*)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from scipy import stats as sps

from .. import stats
from .stacking import stack_windows


def poisson_baseline(
    windows: list[pd.DataFrame],
    rng: np.random.Generator,
    mc: float,
    b: float | None = None,
    *,
    delta_m: float = 0.0,
    mode: str = "auto",
    magnitudes: str = "normal",
) -> list[pd.DataFrame]:
    """The naive baseline P: one Poisson window per reference window, no clustering at all.

    - rate: one rate for the whole set, r = Σ events / Σ durations of the reference windows (events per
      day; when every reference window starts with an event at t = 0, that event is not counted, as it
      opens the window rather than falling inside it);
    - times: a homogeneous Poisson process of rate r from the window start. ``mode="count"`` keeps each
      reference window's number of events (times = cumulative sums of Exp(r) waits; the natural choice
      for event windows of L events, whose durations then vary); ``mode="duration"`` keeps each window's
      duration (N ~ Poisson(r·T), times uniform; for fixed-duration windows). ``"auto"``: count when all
      reference windows hold the same number of events, else duration;
    - magnitudes: ``magnitudes="normal"`` (the default, the naive baseline of the evaluation): a normal
      distribution with the reference magnitudes' mean and standard deviation, cut at ``mc`` (drawn again
      below it) -- what a model with a Gaussian (MSE) likelihood on magnitudes converges to: right mean and
      spread, no exponential Gutenberg–Richter tail, so no large events; ``"bootstrap"`` resamples the
      reference magnitudes; a given ``b`` draws Gutenberg–Richter above ``mc`` with that b. Magnitudes are
      rounded to ``delta_m`` bins above ``mc`` when ``delta_m`` > 0;
    - positions: uniform over the bounding box of all reference events.
    """
    st = stack_windows(windows)
    if st.n_windows == 0 or st.t.size == 0:
        return [pd.DataFrame({c: np.zeros(0) for c in ("time", "magnitude", "x", "y")}) for _ in windows]
    first = st.t[st.start[st.n > 0]]
    starts_at_zero = bool(np.all(first == 0.0))
    n_inside = st.n - (starts_at_zero & (st.n > 0))
    total_time = float(st.duration.sum())
    rate = n_inside.sum() / total_time if total_time > 0 else np.inf
    if mode == "auto":
        mode = "count" if np.all(st.n == st.n[0]) else "duration"
    counts, times = _poisson_times(st, rate, mode, starts_at_zero, rng)
    total = int(counts.sum())
    mags = _magnitudes(st.m, total, rng, mc, b, delta_m, magnitudes)
    x = rng.uniform(st.x.min(), st.x.max(), total)
    y = rng.uniform(st.y.min(), st.y.max(), total)
    bounds = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for k in range(st.n_windows):
        s, e = bounds[k], bounds[k + 1]
        df = pd.DataFrame({"time": times[s:e], "magnitude": mags[s:e], "x": x[s:e], "y": y[s:e]})
        if mode == "duration" or "duration" in windows[k].attrs:
            df.attrs["duration"] = float(st.duration[k])
        out.append(df)
    return out


def _magnitudes(ref: np.ndarray, total: int, rng: np.random.Generator, mc: float, b: float | None,
                delta_m: float, kind: str) -> np.ndarray:
    """``total`` baseline magnitudes from the reference magnitudes ``ref`` (see :func:`poisson_baseline`)."""
    if b is not None:
        return stats.gr_magnitudes(total, b, mc, rng, delta_m=delta_m)
    if kind == "bootstrap":
        return ref[rng.integers(0, ref.size, total)]
    if kind != "normal":
        raise ValueError(f"magnitudes must be 'normal' or 'bootstrap', got {kind!r}")
    mean, sd = float(ref.mean()), float(ref.std())
    if not sd > 0:
        return np.full(total, mean)
    lower = (mc - delta_m / 2 - mean) / sd
    m = sps.truncnorm.rvs(lower, np.inf, loc=mean, scale=sd, size=total, random_state=rng)
    if delta_m > 0:
        m = mc + np.round((m - mc) / delta_m) * delta_m
    return m


def _poisson_times(st, rate: float, mode: str, starts_at_zero: bool, rng: np.random.Generator):
    """Events per window and their times (days from each window start, sorted within windows)."""
    if mode == "count":
        counts = st.n
        waits = rng.exponential(1.0 / rate, size=int(counts.sum()))
        g = np.repeat(np.arange(st.n_windows), counts)
        if starts_at_zero:
            waits[st.start[counts > 0]] = 0.0
        csum = np.cumsum(waits)
        base = np.concatenate([[0.0], csum])[np.concatenate([[0], np.cumsum(counts)[:-1]])]
        times = csum - base[g]
    elif mode == "duration":
        counts = rng.poisson(rate * st.duration)
        g = np.repeat(np.arange(st.n_windows), counts)
        times = rng.random(int(counts.sum())) * st.duration[g]
        order = np.lexsort((times, g))
        times = times[order]
    else:
        raise ValueError(f"mode must be 'auto', 'count' or 'duration', got {mode!r}")
    return counts, times
