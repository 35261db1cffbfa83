"""Catalogs of a forecast horizon from a trained sequence VAE given the history: the VAE as a forecaster of
pyCSEP's catalog tests (``etasvae.forecast_csep.catalog_tests``; docs/methods/forecast.md, *The VAE's
catalogs*).

For a horizon [a, b) and the events before a (above Mc, inside the region, magnitudes at their bins' values
as ``forecast_vae`` reads them), each of the ``n_catalogs`` catalogs is a chain of windows of the model's L
events, drawn by ``SequenceVAE.generate`` (the batch dimension is the catalog):

- window 1 continues the history: z is the **posterior mean of the preceding window** (the L events before
  a, encoded as ``forecast_vae`` encodes them: the same z the scores use), those L events are the decoder's
  history when the model has one, and its first event's interval runs from the history's last event t_0.
  The catalogs are conditioned on what the history says, that no event came in (t_0, a): the first
  interval is drawn given that it exceeds a - t_0 (``SequenceVAE.generate``'s ``after``: the log-normal
  mixture truncated there, or the intensity's wait started at a; the survival term the TLL divides by).
- window k + 1: z the posterior mean of window k (now drawn events), window k its history; its first
  interval runs from window k's last event. Magnitudes read back into the encoder and the history at their
  bins' values (a drawn m - Mc in [k dm, (k + 1) dm) is the bin of k dm, the convention of the VAE's MLL).
- a catalog stops when its last event is at or after b, or after ``MAX_WINDOWS`` windows.

A catalog keeps its events in [a, b) inside the region (the decoder places events over the plane; events
outside the region are still the next windows' past, as they would be for the decoder's likelihood). Draws
use torch's generator seeded from the numpy generator the tests pass: the same seed gives the same catalogs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from .features import _event_features
from .forecast_csep import Forecaster
from .forecast_sim import ForecastError
from .inversion_geometry import as_polygon, inside_polygon
from .models.sequence import Events, Past, SequenceVAE, features_of_events
from .threads import fixed_threads

MAX_WINDOWS = 500       # windows per catalog and horizon: a chain still short of the horizon's end is cut there


def _history_window(history: pd.DataFrame, spec: dict[str, Any], delta_m: float) -> dict[str, np.ndarray]:
    """The L events before the horizon as the decoder reads a window: raw features X (1, 4L) as the training
    windows had them, ln dt, m - Mc, xy, and the last event's time."""
    L, mc = spec["length"], float(spec["mc"])
    t = history["time"].to_numpy(float)
    if t.size < L:
        raise ForecastError(f"{t.size} events before the horizon: the VAE's first window needs the {L} before it")
    m = np.maximum(history["magnitude"].to_numpy(float), mc)  # the bin of Mc counts whatever its rounding
    x, y = history["x"].to_numpy(float), history["y"].to_numpy(float)
    s = t.size - L
    X = _event_features(t, m, x, y, np.array([s]), spec)
    prev = np.concatenate([[0.0], t[:-1]])
    ln_dt = np.log(np.maximum(t - prev, spec["min_dt_days"]))[s:]
    return {"X": X, "ln_dt": ln_dt[None], "m": (m[s:] - mc)[None], "xy": np.stack([x[s:], y[s:]], axis=-1)[None],
            "t_last": float(t[-1])}


def _binned(m: torch.Tensor, delta_m: float) -> torch.Tensor:
    """m - Mc at its bin's value (the bins [k dm, (k + 1) dm) above Mc); continuous magnitudes unchanged."""
    return torch.floor(m / delta_m + 1e-6) * delta_m if delta_m > 0 else m


class _Chains:
    """The running windows of n catalogs: the last window's events (the next z's and history's), the clock
    (float64 time of each catalog's last event) and the events drawn so far."""

    def __init__(self, model: SequenceVAE, start: dict[str, np.ndarray], n: int, delta_m: float, history: bool):
        dev = model.feat_offset.device
        f = lambda a: torch.from_numpy(np.repeat(np.asarray(a, np.float32), n, axis=0)).to(dev)  # noqa: E731
        self.model, self.delta_m, self.history = model, delta_m, history
        self.last = Events(f(start["ln_dt"]), f(start["m"]), f(start["xy"]))
        self.X, self.origin = f(start["X"]), self.last.xy[:, 0].clone()
        self.clock = np.full(n, start["t_last"])
        self.parts: list[tuple[np.ndarray, ...]] = []

    def draw(self, rows: np.ndarray, after: float | None = None) -> tuple[Events, np.ndarray]:
        """One window for each catalog of ``rows`` after its last window (with ``after``: its first event at
        or after that time): (events, their times)."""
        idx = torch.from_numpy(rows).to(self.X.device)
        z = self.model.encode_raw(self.X[idx], self.origin[idx])[0]
        last = Events(self.last.ln_dt[idx], self.last.m[idx], self.last.xy[idx])
        past = Past(last, torch.ones(len(rows), device=z.device), self.X[idx]) if self.history else None
        if after is not None:   # ln of the first interval's lower bound, floored as the windows floor dt
            gap = max(after - float(self.clock[rows].max()), self.model.spec["min_dt_days"])
            after_ln = torch.full((len(rows),), math.log(gap), device=z.device)
        w = self.model.generate(z, past, None if after is None else after_ln)
        w = Events(w.ln_dt, _binned(w.m, self.delta_m), w.xy)
        return w, self.clock[rows, None] + np.cumsum(np.exp(w.ln_dt.double().cpu().numpy()), axis=1)

    def keep(self, rows: np.ndarray, w: Events, times: np.ndarray) -> None:
        """The windows drawn for ``rows`` become their last windows."""
        idx = torch.from_numpy(rows).to(self.X.device)
        self.last.ln_dt[idx], self.last.m[idx], self.last.xy[idx] = w.ln_dt, w.m, w.xy
        self.X[idx], self.origin[idx] = features_of_events(w, self.model.spec)
        self.clock[rows] = times[:, -1]
        xy = w.xy.double().cpu().numpy()
        self.parts.append((np.repeat(rows, times.shape[1]), times.ravel(), w.m.double().cpu().numpy().ravel(),
                           xy[..., 0].ravel(), xy[..., 1].ravel()))


def _chain_catalogs(model: SequenceVAE, start_window: dict[str, np.ndarray], a: float, b: float, n: int,
                    delta_m: float, history: bool, max_windows: int) -> _Chains:
    chains = _Chains(model, start_window, n, delta_m, history)
    rows = np.arange(n)
    w, times = chains.draw(rows, after=a)   # the first window, given no event in (t_0, a)
    chains.keep(rows, w, times)
    active = np.flatnonzero(chains.clock < b)
    for _ in range(max_windows - 1):
        if not active.size:
            break
        w, times = chains.draw(active)
        chains.keep(active, w, times)
        active = active[times[:, -1] < b]
    return chains


def vae_forecaster(model: SequenceVAE, *, delta_m: float, region, history: bool | None = None,
                   max_windows: int = MAX_WINDOWS) -> Forecaster:
    """The forecaster (``forecast_csep.Forecaster``) of a sequence VAE (module docstring). ``delta_m``: the
    catalog's magnitude bin (0: continuous); ``region``: rectangle or polygon (km); ``history``: the decoder
    reads the preceding window as its history (default: when the model was trained with one)."""
    model = model.eval()
    history = bool(model.has_history) if history is None else bool(history)
    poly = as_polygon(region)
    spec, mc = model.spec, float(model.spec["mc"])

    @torch.no_grad()
    def forecast(events: pd.DataFrame, a: float, b: float, rng: np.random.Generator, n_catalogs: int) -> pd.DataFrame:
        if not b > a:
            raise ForecastError(f"forecast horizon [{a}, {b}): need end > start")
        start_window = _history_window(events[events["time"] < a], spec, delta_m)
        seed = int(rng.integers(0, 2 ** 62))
        dev = model.feat_offset.device
        with fixed_threads(), torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(seed)
            chains = _chain_catalogs(model, start_window, a, b, int(n_catalogs), delta_m, history, int(max_windows))
        cat, t, m, x, y = (np.concatenate([p[i] for p in chains.parts]) for i in range(5))
        keep = (t >= a) & (t < b) & inside_polygon(poly, x, y)
        cat, t, m, x, y = cat[keep], t[keep], m[keep] + mc, x[keep], y[keep]
        if delta_m > 0:   # the bins' values (m - Mc a multiple of dm; floats rounded as catalogs write them)
            m = np.round(m, max(0, -int(math.floor(math.log10(delta_m)))) + 2)
        order = np.lexsort((t, cat))
        return pd.DataFrame({"catalog": cat[order].astype(np.int64), "time": t[order], "magnitude": m[order],
                             "x": x[order], "y": y[order]})
    return forecast
