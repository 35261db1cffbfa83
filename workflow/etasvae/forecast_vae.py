"""A trained sequence VAE as a forecast of a catalog's test period [T, E), with the protocol and units of
``etasvae.forecast.score_forecast`` (docs/methods/forecast.md, *The VAE as a forecaster*).

The events are those the ETAS score takes (``inversion.catalog_sequence``: magnitude >= Mc, inside the
region, before E), so both score the same N test events. The test period is cut into consecutive windows of
the model's L events, the first starting at the first test event, each scored by the decoder given the
earlier events (teacher forcing, ``SequenceVAE.event_terms``):

- z of a window is the **posterior mean of the preceding window** (the L events just before it, encoded as
  the training windows were: ``features._event_features`` via ``surrogate.training_data``). The sampling
  prior is the aggregate posterior of every training window: it says nothing of the state of the sequence
  now (a rate that decays over days, the place of the activity), which the preceding window does; that
  window lies wholly before the one scored, so the forecast uses earlier events only, and the mean (not a
  draw) keeps the score deterministic. ``z="prior"`` (the sampling prior's mean) is the alternative.
- history: the L events before the window as the decoder's history (``Past``) when the model was trained
  with one (``has_history``, the surrogate's model); a model trained without it reads the past through z
  alone (``history`` overrides this).
- the last test event's window goes on to the slot after it: the next event, censored at E. Slots after
  that are filled with events at E (they never condition a scored term: the decoder is causal).

Per test event i (the dt of event i is from the previous event of the catalog, floored at the windows'
``min_dt_days``; the decoder models ln dt):

- TLL = (sum_i log f(dt_i | past) + log S(E - t_N | past) - log S(T - t_0 | past)) / N, with f = p(ln dt) /
  dt (the Jacobian of ln dt -> dt, 1/day), S the survival of the interval (``EventTerms.survival``) and t_0
  the last event before T: this is sum_i log lambda(t_i) - int_T^E lambda dt of the point process that the
  decoder defines, the ETAS TLL's form.
- SLL = mean_i log p(x_i | past) - log M_i: the decoder's position density (1/km^2 over the plane)
  renormalised to the region (M_i its mass inside the region polygon; the ETAS SLL is normalised likewise).
- MLL = mean_i log of the decoder's magnitude density (per magnitude unit; binned magnitudes: the
  probability of the bin [m_i - Mc, m_i - Mc + dm) over dm, as ``forecast.magnitude_log_density``).

A model that cannot give an event's density given the past (the MLP VAE of whole windows, the surrogate's
conditional model) is no forecaster: ``vae_forecast`` returns {"not_forecaster": why}.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from .dataset_forecast import csep_entry, forecast_periods
from .forecast import catalog_region
from .forecast_vae_catalogs import vae_forecaster
from .inversion import InversionError, catalog_sequence, magnitude_bin
from .models.conditional import surrogate_batch
from .models.decoders import interval_log_prob
from .models.files import ModelBundle, is_sequence
from .models.sequence import Batch, EventTerms, SequenceVAE
from .surrogate import training_data
from .threads import one_thread

WINDOW_BATCH = 256   # windows scored at once
Z_CHOICES = {"posterior": "the posterior mean of the preceding window (its L events)",
             "prior": "the sampling prior's mean"}


def not_forecaster(model: Any) -> str | None:
    """Why a model cannot be scored as a forecast (None: it can)."""
    if not is_sequence(model):
        kind = getattr(model, "kind", "mlp")
        if kind == "mlp":
            return ("not a forecaster: the MLP VAE models a window's features jointly and gives no event's density "
                    "given the earlier events")
        return f"not a forecaster: a {kind} model needs conditioning values, which a dataset has not"
    if model.n_cond:
        return "not a forecaster: the model is conditioned on ETAS parameters, which a dataset has not"
    return None


def _windows(seq, start_days: float, end_days: float, spec: dict[str, Any]) -> tuple[dict, int, int]:
    """The arrays of ``surrogate.training_data`` for the windows of the test period (each with the L events
    before it) and (s, n): the index of the first test event and the number of test events."""
    L, mc = spec["length"], spec["mc"]
    s = int(np.searchsorted(seq.time, start_days, side="left"))
    n = int(seq.time.size) - s
    if n == 0:
        raise InversionError(f"no events above Mc = {mc:g} in the test period [{start_days}, {end_days})")
    if s < L:
        raise InversionError(f"{s} events before the test period: the VAE's first window needs the {L} before it")
    k = -(-(n + 1) // L)                                  # windows over the n test events and the censored slot
    pad = s + k * L - int(seq.time.size)
    time = np.concatenate([seq.time, end_days + spec["min_dt_days"] * np.arange(pad)])
    cat = pd.DataFrame({
        "event_id": np.arange(time.size, dtype=np.int64), "time": time,
        # the bin of Mc counts whatever its rounding (catalog_sequence keeps m >= Mc - dm/2)
        "magnitude": np.concatenate([np.maximum(seq.magnitude, mc), np.full(pad, mc)]),
        "x": np.concatenate([seq.x, np.full(pad, seq.x[-1])]), "y": np.concatenate([seq.y, np.full(pad, seq.y[-1])]),
    })
    table = pd.DataFrame({"config_id": "test", "replicate": 0, "start_event": s + L * np.arange(k), "role": "heldout"})
    return training_data(table, {("test", 0): cat}, spec, {"test": np.zeros(0, np.float32)}), s, n


def _latent(model: SequenceVAE, T: dict[str, torch.Tensor], z: str) -> torch.Tensor:
    L = model.length
    if z == "posterior":   # the preceding window, its first event as the origin (as its training window had)
        return model.encode_raw(T["Xh"], T["xy"][:, 0, :])[0]
    if z == "prior":
        return model.prior_loc.expand(len(T["X"]), -1)
    raise ValueError(f"z must be one of {sorted(Z_CHOICES)}, got {z!r} (window length {L})")


def _terms(model: SequenceVAE, T: dict[str, torch.Tensor], u: torch.Tensor, history: bool, polygon) -> EventTerms:
    b = surrogate_batch(T, torch.arange(len(T["X"]), device=u.device), model.length)
    if not history:
        b = Batch(b.X, b.origin, window=b.window)
    return model.event_terms(u, b, survival=True, polygon=polygon)


def _slot_scores(model: SequenceVAE, T: dict[str, torch.Tensor], u: torch.Tensor, history: bool, polygon,
                 delta_m: float, batch: int) -> dict[str, np.ndarray]:
    """Per slot (window after window, ``batch`` windows at a time: bounded memory), float64: log f(dt)
    (1/day), the log survival of the interval, the log position density renormalised to the polygon
    (1/km^2) and the log magnitude density (per magnitude unit)."""
    L = model.length
    parts: dict[str, list[np.ndarray]] = {"log_f": [], "survival": [], "sll": [], "mll": []}
    flat = lambda a: a.reshape(-1).double().cpu().numpy()  # noqa: E731
    for i in range(0, len(u), batch):
        part = {k: v[i:i + batch] for k, v in T.items()}
        terms = _terms(model, part, u[i:i + batch], history, polygon)
        parts["log_f"].append(flat(terms.time) - flat(part["ln_dt"][:, L:]))   # ln dt -> dt: the Jacobian 1/dt
        parts["survival"].append(flat(terms.survival))
        parts["sll"].append(flat(terms.position) - flat(terms.position_mass))
        parts["mll"].append(_magnitude_log_density(terms, part["m"][:, L:], delta_m, model.spec))
    return {k: np.concatenate(v) for k, v in parts.items()}


@torch.no_grad()
@one_thread
def vae_forecast(bundle: ModelBundle, catalog: pd.DataFrame, *, start_days: float, end_days: float, region,
                 mc: float, delta_m: float = 0.0, z: str = "posterior", history: bool | None = None,
                 window_batch: int = WINDOW_BATCH) -> dict[str, Any]:
    """{"tll", "sll", "mll", "n_events", ...} of a sequence VAE (a ``models.files.load_model`` bundle) as a
    forecast of [start_days, end_days) of ``catalog`` (module docstring), or {"not_forecaster": why}.
    ``region``: rectangle or polygon (km) as for score_forecast; ``mc`` must be the model's windows' Mc;
    ``window_batch`` windows are scored at once (memory; the scores do not depend on it)."""
    model = bundle.model.eval()
    why = not_forecaster(model)
    if why:
        return {"not_forecaster": why}
    spec, L = model.spec, model.length
    if abs(float(spec["mc"]) - float(mc)) > 1e-9:
        raise InversionError(f"the model's windows have Mc = {spec['mc']:g}, the forecast Mc = {mc:g}")
    if not end_days > start_days:
        raise InversionError(f"test period [{start_days}, {end_days}): need end > start")
    history = bool(model.has_history) if history is None else bool(history)
    seq = catalog_sequence(catalog, mc=mc, t_start=start_days, t_end=end_days, region=region, delta_m=delta_m)
    data, s, n = _windows(seq, start_days, end_days, spec)
    dev = model.feat_offset.device
    T = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)).to(dev) for k, v in data.items() if k != "role"}
    u = _latent(model, T, z)
    polygon = np.asarray(region, dtype=float) if np.ndim(region) == 2 else _rectangle(region)
    slots = _slot_scores(model, T, u, history, polygon, delta_m, window_batch)
    # The first window again, its first interval ending at T instead of at the first test event: the
    # survival of [t_0, T), which the test period is conditioned on (slot 0's law does not depend on it).
    first = {k: v[:1].clone() for k, v in T.items()}
    first["ln_dt"][0, L] = math.log(max(start_days - float(seq.time[s - 1]), spec["min_dt_days"]))
    log_s0 = float(_terms(model, first, u[:1], history, polygon).survival[0, 0])
    tll = (slots["log_f"][:n].sum() + slots["survival"][n] - log_s0) / n
    sll, mll = slots["sll"][:n], slots["mll"][:n]
    return {"tll": float(tll), "sll": float(np.mean(sll)), "mll": float(np.mean(mll)), "n_events": n,
            "z": Z_CHOICES[z], "history": history, "windows": int(len(T["X"])), "window_length": L,
            "decoder": model.decoder_kind}


def _rectangle(region) -> np.ndarray:
    xmin, xmax, ymin, ymax = (float(v) for v in region)
    return np.array([[xmin, ymin], [xmax, ymin], [xmax, ymax], [xmin, ymax]])


def _magnitude_log_density(terms: EventTerms, m: torch.Tensor, delta_m: float, spec: dict[str, Any]) -> np.ndarray:
    """Per slot: log density of m - Mc per magnitude unit; binned, the bin's probability over its width (the
    bins [k dm, (k + 1) dm) above Mc, as forecast.magnitude_log_density's Gutenberg-Richter law); both divided
    by the mass below mmax - Mc when the windows have an mmax (the sampler redraws above it)."""
    dist = terms.magnitude_distribution
    if delta_m > 0:
        k = torch.round(m.clamp_min(0.0) / delta_m)
        lp = interval_log_prob(dist, k * delta_m, delta_m) - math.log(delta_m)
    else:
        lp = terms.magnitude
    if spec.get("mmax") is not None:
        lp = lp - torch.log(dist.cdf(torch.full_like(m, float(spec["mmax"]) - float(spec["mc"]))))
    return lp.reshape(-1).double().cpu().numpy()


def dataset_vae_scores(bundle: ModelBundle, catalog: pd.DataFrame, meta: dict[str, Any], *, vae_id: str,
                       aux_days: float = 0.0, csep: dict[str, Any] | None = None) -> dict[str, Any]:
    """The entry ``vae:<vae_id>`` of a dataset's scores (``dataset_forecast``): the VAE as a forecast of the
    held-out period, every earlier event as history, z from the preceding window (``tll``, ``sll``, ``mll``,
    ``n_events``) and, for comparison, from the sampling prior (``prior_z``); or ``not_forecaster`` with the
    reason, or ``not_scored`` with why (too few events: the run goes on, as for the ETAS fit). The region, Mc
    and magnitude bin are those of the ETAS fit (``fit_training_period``). With ``csep`` settings (as
    ``dataset_forecast.forecast_scores`` takes them) also ``csep``: the pass rates of pyCSEP's tests of the
    catalogs it generates given the history (``forecast_vae_catalogs``)."""
    s0, s1 = forecast_periods(meta, aux_days)["test"]
    region = catalog_region(meta, catalog)
    mc, delta_m = float(meta["mc"]), magnitude_bin(catalog["magnitude"].to_numpy())
    decoder = getattr(bundle.model, "decoder_kind", None) or bundle.settings.get("decoder")
    entry: dict[str, Any] = {"label": f"VAE, {decoder} decoder ({vae_id})" if decoder else f"VAE {vae_id}", "vae_id": vae_id,
                             "dataset": meta.get("dataset"), "period_days": [s0, s1]}
    common = dict(start_days=s0, end_days=s1, region=region, mc=mc, delta_m=delta_m)
    try:
        scores = vae_forecast(bundle, catalog, **common)
        if "not_forecaster" in scores:
            return {**entry, **scores}
        prior = vae_forecast(bundle, catalog, **common, z="prior")
    except InversionError as err:
        return {**entry, "not_scored": str(err)}
    out = {**entry, **scores, "prior_z": {k: prior[k] for k in ("tll", "sll", "mll")}}
    if csep is not None:
        out["csep"] = csep_entry(lambda: vae_forecaster(bundle.model, delta_m=delta_m, region=region), catalog,
                                 [s0, s1], csep, mc=mc, delta_m=delta_m, region=region)
    return out
