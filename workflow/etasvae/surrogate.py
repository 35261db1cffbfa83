"""The conditional surrogate of the ETAS simulator: its training data (windows with the events before them),
its model files, and long catalogs made by chaining windows (docs/methods/surrogate.md; docs/design.md §8).
The model is ``etasvae.models.conditional.ConditionalSequenceVAE``.

**Chaining.** ``generate_chains`` draws a catalog of a given duration per conditioning vector: window k
draws z ~ p(z | c, window k-1) and its L events given window k-1 as history; the first
``burn_in_windows`` windows (the first started without history) are discarded and the catalog's clock
starts at the last discarded event, as the simulator's burn-in does.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

from .conditioning import standardise
from .features import FeatureTransform, _event_features, check_spec, events_above_mc
from .models.conditional import ConditionalSequenceVAE
from .models.files import load_model, save_model
from .models.sequence import CHAIN_PARENTS, Events, Past, chain_log_mass, chain_parents
from .models.training import TrainResult
from .threads import one_thread

MAX_CHAIN_EVENTS = 2_000_000   # per chain: a guard against a runaway chain
_LN10 = math.log(10.0)


# ------------------------------------------------------------------------------------------- data


def sequence_features(ln_dt: np.ndarray, m: np.ndarray, xy: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """Window features (n, 4L) of sequences in physical units (ln dt, m - Mc, xy km), as
    ``features._event_features`` computes them from a catalog (positions relative to the first event)."""
    rel = np.arcsinh((xy - xy[:, :1, :]) / spec["xy_scale_km"])
    X = np.stack([ln_dt / _LN10, m, rel[..., 0], rel[..., 1]], axis=-1)
    return X.reshape(len(X), -1).astype(np.float32)


def training_data(table: pd.DataFrame, catalogs: dict[tuple[str, int], pd.DataFrame], spec: dict[str, Any],
                  conditions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The windows of a pooled windows ``table`` whose config is in ``conditions`` (config id -> c), each with
    the L events before it in its catalog: arrays ``X`` (n, 4L) window features, ``Xh`` history features,
    ``origin`` (n, 2) km, ``ln_dt``, ``m`` (n, 2L: history then window; ln dt floored at min_dt_days),
    ``xy`` (n, 2L, 2) km, ``has_history`` (n,) and ``c`` (n, n_cond), plus ``role``. A window within L
    events of its catalog's start has no history (zeros, has_history 0)."""
    spec = check_spec(spec)
    L = spec["length"]
    keep = table["config_id"].isin(list(conditions)).to_numpy()
    table = table[keep]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("X", "Xh", "ln_dt", "m", "xy", "has_history", "c", "role")}
    for (cfg, rep), rows in table.groupby(["config_id", "replicate"], sort=True):
        cat = catalogs[(str(cfg), int(rep))]
        ids, t, mag, x, y = events_above_mc(cat, spec["mc"])
        starts = np.searchsorted(ids, rows["start_event"].to_numpy())
        has = starts >= L
        hstarts = np.where(has, starts - L, starts)
        prev = np.concatenate([[0.0], t[:-1]])
        ln_dt = np.log(np.maximum(t - prev, spec["min_dt_days"]))
        idx = np.concatenate([hstarts[:, None] + np.arange(L), starts[:, None] + np.arange(L)], axis=1)
        parts["X"].append(_event_features(t, mag, x, y, starts, spec))
        Xh = _event_features(t, mag, x, y, hstarts, spec)
        Xh[~has] = 0.0
        parts["Xh"].append(Xh)
        parts["ln_dt"].append(ln_dt[idx].astype(np.float32))
        parts["m"].append((mag[idx] - spec["mc"]).astype(np.float32))
        parts["xy"].append(np.stack([x[idx], y[idx]], axis=-1).astype(np.float32))
        parts["has_history"].append(has.astype(np.float32))
        parts["c"].append(np.repeat(conditions[str(cfg)][None, :], len(rows), axis=0))
        parts["role"].append(rows["role"].to_numpy())
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["origin"] = out["xy"][:, L, :].copy()
    return out


# ------------------------------------------------------------------------------------------- files


def save_surrogate(path, model: ConditionalSequenceVAE, settings: dict[str, Any], spec: dict[str, Any],
                   plan: dict[str, Any], history: pd.DataFrame) -> None:
    """An ordinary model file (``models.files.save_model``) whose extras hold the conditioning ``plan``; the
    feature transform is the model's own standardisation."""
    transform = FeatureTransform("standard", model.vae.feat_offset.cpu().numpy(), model.vae.feat_scale.cpu().numpy())
    save_model(path, TrainResult(model, transform, history), settings, spec, {"plan": plan})


def load_surrogate(path, device: str | None = None) -> tuple[ConditionalSequenceVAE, dict[str, Any]]:
    """(model in eval mode, {"plan", "settings", "spec", "history"}) of a file written by save_surrogate."""
    bundle = load_model(path, device)
    if not isinstance(bundle.model, ConditionalSequenceVAE):
        raise ValueError(f"{path}: a {bundle.model.kind} model, not the surrogate's")
    return bundle.model, {"plan": bundle.extra["plan"], "settings": bundle.settings, "spec": bundle.spec,
                          "history": bundle.history}


# ------------------------------------------------------------------------------------------- chaining


@torch.no_grad()
@one_thread
def generate_chains(model: ConditionalSequenceVAE, c: np.ndarray, duration_days: float, *, seed: int,
                    burn_in_windows: int = 4, log: Callable[[str], None] | None = None) -> list[pd.DataFrame]:
    """One catalog per row of ``c`` (standardised conditioning vectors) covering [0, duration_days): windows
    of L events drawn one after the other, each given the previous window as history and with z from
    p(z | c, previous window); the first ``burn_in_windows`` windows are discarded (the clock starts at the
    last discarded event). Columns time (days), magnitude, x, y (km). Seeded: the same model, c and seed
    give the same catalogs (on one device). A model whose intensity is held at the training catalogs' ETAS
    fit (``catalog_intensity``, autoregressive decoder) gives every window after the first the chain's earlier
    events too (the last CHAIN_PARENTS) as parents of its times and positions, and no virtual parent: the
    chain's past is there, as in ETAS; otherwise each window's virtual parent stands for the older past."""
    dev = next(model.parameters()).device
    n, L, mc = len(c), model.length, model.spec["mc"]
    C = torch.from_numpy(np.asarray(c, dtype=np.float32)).to(dev)
    past = Past(Events(torch.zeros(n, L, device=dev), torch.zeros(n, L, device=dev), torch.zeros(n, L, 2, device=dev)),
                torch.zeros(n, device=dev), torch.zeros(n, 4 * L, device=dev))
    clock = np.zeros(n)                        # float64 time of the last event, per chain
    t0 = np.zeros(n)
    out: list[list[np.ndarray]] = [[] for _ in range(n)]
    active = np.arange(n)
    full = bool(getattr(model, "catalog_intensity", False)) and model.vae.decoder_kind == "autoregressive"
    earlier: list[Events] = []                 # the chains' windows before the last (full history only)
    masses: list[torch.Tensor] = []            # their in-region shares (SequenceVAE.parent_log_mass)
    devices = [dev] if dev.type == "cuda" else []
    k = 0
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(int(seed))
        while len(active):
            a = torch.from_numpy(active).to(dev)
            ev = past.events
            now = Past(Events(ev.ln_dt[a], ev.m[a], ev.xy[a]), past.has[a], past.X[a])
            prior_mu, prior_logvar = model.prior(now.X, now.has, C[a])
            z = prior_mu + torch.exp(0.5 * prior_logvar) * torch.randn_like(prior_mu)
            older = chain_parents(earlier, a) if full else None
            older_mass = chain_log_mass(masses, a) if full else None
            if full and k > 0:
                earlier.append(Events(ev.ln_dt.clone(), ev.m.clone(), ev.xy.clone()))
                earlier = earlier[-(CHAIN_PARENTS // L + 1):]
                if model.vae.in_region:
                    masses = (masses + [model.vae.parent_log_mass(ev.xy, ev.m)])[-(CHAIN_PARENTS // L + 1):]
            w = model.vae.generate(torch.cat([z, C[a]], dim=1), now, older=older, older_log_mass=older_mass)
            dt = np.exp(w.ln_dt.double().cpu().numpy())
            times = clock[active, None] + np.cumsum(dt, axis=1)
            mags = w.m.cpu().numpy().astype(np.float64) + mc
            xy = w.xy.cpu().numpy().astype(np.float64)
            clock[active] = times[:, -1]
            if k + 1 == burn_in_windows:
                t0[active] = clock[active]
            if k >= burn_in_windows:
                for r, chain in enumerate(active):
                    out[chain].append(np.column_stack([times[r] - t0[chain], mags[r], xy[r]]))
            ev.ln_dt[a], ev.m[a], ev.xy[a] = w.ln_dt, w.m, w.xy
            past.has[a] = 1.0
            feats = sequence_features(w.ln_dt.cpu().numpy(), w.m.cpu().numpy(), w.xy.cpu().numpy(), model.spec)
            past.X[a] = torch.from_numpy(feats).to(dev)
            k += 1
            done = (clock[active] - t0[active] >= duration_days) & (k > burn_in_windows)
            done |= (k - burn_in_windows) * L >= MAX_CHAIN_EVENTS
            active = active[~done]
            if log and k % 50 == 0:
                log(f"window {k}: {len(active)} of {n} chains still below {duration_days:g} days")
    catalogs = []
    for chain in range(n):
        ev = np.concatenate(out[chain]) if out[chain] else np.zeros((0, 4))
        ev = ev[ev[:, 0] < duration_days]
        catalogs.append(pd.DataFrame(ev, columns=["time", "magnitude", "x", "y"]))
    return catalogs


def chain_catalog(chains: list[pd.DataFrame]) -> pd.DataFrame:
    """Chains as one table in the catalog schema: ``window`` = chain (each with its own clock from 0),
    event_id 0..N-1, parent_id and generation -1 (unknown)."""
    parts = [ch.assign(window=np.int64(i)) for i, ch in enumerate(chains)]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["time", "magnitude", "x", "y", "window"])
    df.insert(0, "event_id", np.arange(len(df), dtype=np.int64))
    df["parent_id"] = np.int64(-1)
    df["generation"] = np.int32(-1)
    df["window"] = df["window"].astype(np.int64)
    return df


def chain_metadata(spec: dict[str, Any], name: str, *, values: dict[str, float], set_kind: str, flags: list,
                   chains: int, duration_days: float, seed: int, burn_in_windows: int) -> dict[str, Any]:
    """The catalog metadata of a parameter set's chained catalogs (``chain_catalog``), as ``write_catalog``
    stores it: the set, its values, kind and flags, the chaining's settings and the surrogate's window spec."""
    return {"kind": "surrogate", "set": name, "values": values, "set_kind": set_kind, "flags": flags,
            "chains": chains, "duration_days": duration_days, "seed": seed, "burn_in_windows": burn_in_windows,
            "mc": spec["mc"], "spec": spec}


def conditions_of(plan: dict[str, Any], payload: dict[str, Any], sets: list[str]) -> np.ndarray:
    """Standardised conditioning vectors of named parameter sets of ``plan`` (``conditioning.surrogate_plan``)
    for the surrogate of ``payload`` (``load_surrogate``), which must have been trained on the same
    varied parameters and ranges. Flagged points pass; others outside the trained range raise ValueError
    naming the parameter and range."""
    trained = payload["plan"]
    if trained["varied"] != plan["varied"] or trained["ranges"] != plan["ranges"]:
        raise ValueError(f"surrogate: trained on {trained['varied']} over {trained['ranges']}, asked for "
                         f"{plan['varied']} over {plan['ranges']}: retrain it")
    return np.stack([standardise(plan["sets"][s]["values"], plan["varied"], plan["ranges"],
                                 allow_extrapolation=bool(plan["sets"][s]["flags"])) for s in sets])
