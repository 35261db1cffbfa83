"""Which part of each trained sequence decoder makes its synthetic windows differ from ETAS (docs/generator-diagnosis.md).

    python benchmarks/generator_diagnosis.py RUN_DIR [--windows 2000] [--seed 0]

RUN_DIR is a finished run's working directory (its results/models and config.yaml). For every ETAS config
and sequence-decoder model it draws ``--windows`` windows from the model's sampling prior, recording for
every event which component of the position mixture placed it (background, window cluster, or parent j of
the window) and the mixture's weights, and compares them with as many windows of fresh ETAS catalogs of the
config (seeded apart from every catalog of the run), whose events carry their true parent and generation:

- shares: background (ETAS generation 0), "past" (ETAS: a parent before the window or outside the catalog;
  model: the window cluster, which stands for the window's unseen past), in-window parent;
- the parent choice: share of in-window parents that are the previous event, median log10 lag to the parent;
- the offset kernel: median log10 offset to the parent, its slope against the parent's magnitude (ETAS:
  gamma / (2 ln 10) = 0.217 per magnitude unit for gamma = 1), the mixture's s, q and gamma;
- the cluster: its share and the median distance of its events to their window's median point;
- the window statistics of the issue: mean log10 nearest-earlier-event distance and distance to the first
  event, in H's standard deviations; the largest magnitude per window; P(m >= Mc + 2);
- the learned globals: alpha, c, p of the mlp's parent weights; mu, K, alpha, c, p of the autoregressive
  decoder's intensity, and the branching ratio they imply with the model's own magnitude law.

The decoders are not changed: PositionMixture.sample is wrapped in this process to record its draws.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from etasvae.models import decoders  # noqa: E402
from etasvae.config import check_schema, etas_configs, window_spec  # noqa: E402
from etasvae.evaluate.reference import reference_seed, simulate_reference_catalogs  # noqa: E402
from etasvae.features import build_windows  # noqa: E402
from etasvae.models.files import load_model  # noqa: E402

RECORD: list[dict[str, torch.Tensor]] = []
_sample = decoders.PositionMixture.sample


def _recording_sample(self: decoders.PositionMixture) -> torch.Tensor:
    """PositionMixture.sample, recording the mixture's weights and, per draw, the component that placed it
    (recovered as the most probable component of the drawn point, given the weights)."""
    xy = _sample(self)
    w = torch.exp(self.log_w)
    bg = torch.full_like(xy[..., 0], -math.log(self.area))
    d2 = (xy - self.centre).pow(2).sum(-1)
    cl = -math.log(2.0 * math.pi) - 2.0 * torch.log(self.cl_sd) - 0.5 * d2 / self.cl_sd.pow(2)
    par = decoders.PowerLawKernel(self.s_par, self.q).log_prob(xy[..., None, :] - self.parent_xy)
    post = self.log_w + torch.cat([bg[..., None], cl[..., None], par], dim=-1)
    k = torch.distributions.Categorical(logits=post).sample()   # the component, drawn from its posterior
    RECORD.append({"w_bg": w[..., 0], "w_cl": w[..., 1], "w_par": w[..., 2:].sum(-1), "k": k,
                   "cl_sd": self.cl_sd.expand(k.shape).clone(), "s": self.s_par, "q": torch.as_tensor(self.q)})
    return xy


MAG_RECORD: list[tuple[torch.Tensor, torch.Tensor]] = []
_time_and_magnitude = decoders.EventHeads.time_and_magnitude


def _recording_time_and_magnitude(self, ctx, z):
    dt_d, m_d = _time_and_magnitude(self, ctx, z)
    MAG_RECORD.append((m_d.mixture_distribution.probs.detach(), m_d.component_distribution.rate.detach()))
    return dt_d, m_d


def magnitude_law(excess: float = 2.0) -> dict[str, float]:
    """The decoder's own magnitude law over the recorded events: P(m - Mc >= excess) of its mixtures, the
    same for one exponential with the mixtures' mean excess (Gutenberg-Richter with the model's b), and the
    weight-averaged spread (SD) of the components' log rates within an event's mixture."""
    w = torch.cat([p.reshape(-1, p.shape[-1]) for p, _ in MAG_RECORD]).double()
    r = torch.cat([q.reshape(-1, q.shape[-1]) for _, q in MAG_RECORD]).double()
    tail = float((w * torch.exp(-excess * r)).sum(-1).mean())
    mean_excess = float((w / r).sum(-1).mean())
    lr = torch.log(r)
    mu = (w * lr).sum(-1, keepdim=True)
    spread = float(torch.sqrt((w * (lr - mu) ** 2).sum(-1)).mean())
    return {"mix_p_excess_ge2": tail, "gr_p_excess_ge2_same_mean": math.exp(-excess / mean_excess),
            "mix_log_rate_spread": spread, "mix_mean_excess": mean_excess}


def model_windows(path: Path, n: int, seed: int) -> tuple[dict[str, np.ndarray], object, int]:
    """Events of n synthetic windows (arrays over windows x events) with their recorded placement, the
    model, and its number of training epochs."""
    bundle = load_model(path)
    model = bundle.model
    RECORD.clear()
    MAG_RECORD.clear()
    decoders.PositionMixture.sample = _recording_sample
    decoders.EventHeads.time_and_magnitude = _recording_time_and_magnitude
    try:
        X, origin, _ = model.sample_features(n, seed=seed)
    finally:
        decoders.PositionMixture.sample = _sample
        decoders.EventHeads.time_and_magnitude = _time_and_magnitude
    L = model.length
    F = X.reshape(n, L, 4)
    dt = 10.0 ** F[..., 0]
    m = F[..., 1] + model.spec["mc"]
    xy = origin[:, None, :] + model.spec["xy_scale_km"] * np.sinh(F[..., 2:4])
    t = np.cumsum(np.concatenate([np.zeros((n, 1)), dt[:, 1:]], axis=1), axis=1)
    # RECORD: one entry per event position and batch, batch after batch
    batches = [RECORD[b:b + L] for b in range(0, len(RECORD), L)]
    def stack(key):
        return np.concatenate([torch.stack([r[key].double() for r in batch], 1).numpy() for batch in batches], 0)
    rec = {key: stack(key) for key in ("w_bg", "w_cl", "w_par", "k", "cl_sd")}
    k = rec["k"].astype(int)
    kind = np.where(k == 0, "bg", np.where(k == 1, "past", "parent"))
    parent = np.where(k >= 2, k - 2, -1)
    d = {"t": t, "m": m, "xy": xy, "kind": kind, "parent": parent, **rec}
    return d, model, len(bundle.history)


def etas_windows(cfg: str, etas: dict, config: dict, spec: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    """Events of n windows cut from fresh ETAS catalogs of the config, with their true placement."""
    sim = {k: config["simulation"][k] for k in ("duration_days", "burn_in_days", "margin_km", "max_events")}
    sim["region_km"] = list(config["simulation"]["region_km"])
    L = spec["length"]
    out = {k: [] for k in ("t", "m", "xy", "kind", "parent")}
    got, k = 0, 0
    while got < n:
        seeds = [reference_seed(seed + 7919, cfg, k)]
        (cat, _, mc), = simulate_reference_catalogs(cfg, etas, sim, seeds)
        k += 1
        table, _ = build_windows([(0, cat)], spec, heldout_replicates=[0], validation_fraction=0.0)
        ev = cat[cat["magnitude"] >= mc - 1e-9].reset_index(drop=True)
        pos = {eid: i for i, eid in enumerate(ev["event_id"])}
        for lo in table["start_event"].to_numpy():
            i0 = pos.get(int(lo), None)
            if i0 is None or i0 + L > len(ev):
                continue
            w = ev.iloc[i0:i0 + L]
            ids = w["event_id"].to_numpy()
            par = w["parent_id"].to_numpy()
            gen = w["generation"].to_numpy()
            j = np.searchsorted(ids, par)
            inside = (par >= 0) & (j < L) & (ids[np.minimum(j, L - 1)] == par)
            out["kind"].append(np.where(gen == 0, "bg", np.where(inside, "parent", "past")))
            out["parent"].append(np.where(inside, j, -1))
            out["t"].append(w["time"].to_numpy() - w["time"].iloc[0])
            out["m"].append(w["magnitude"].to_numpy())
            out["xy"].append(w[["x", "y"]].to_numpy())
            got += 1
            if got == n:
                break
    return {key: np.stack(v) for key, v in out.items()}


def describe(d: dict[str, np.ndarray], mc: float) -> dict[str, float]:
    """The placement and window figures of one set (see the module docstring)."""
    n, L = d["m"].shape
    kind = d["kind"][:, 1:]        # the first event has no earlier event in its window
    out = {f"share_{k}": float(np.mean(kind == k)) for k in ("bg", "past", "parent")}
    wi, ei = np.nonzero(d["kind"] == "parent")
    pj = d["parent"][wi, ei]
    ok = pj < ei
    wi, ei, pj = wi[ok], ei[ok], pj[ok]
    r = np.linalg.norm(d["xy"][wi, ei] - d["xy"][wi, pj], axis=1)
    lag = d["t"][wi, ei] - d["t"][wi, pj]
    mp = d["m"][wi, pj] - mc
    lr = np.log10(np.maximum(r, 1e-3))
    out["parent_is_previous"] = float(np.mean(pj == ei - 1))
    out["median_log10_lag_d"] = float(np.median(np.log10(np.maximum(lag, 1e-7))))
    out["median_log10_offset_km"] = float(np.median(lr))
    out["offset_slope_per_mag"] = float(np.polyfit(mp, lr, 1)[0]) if len(mp) > 10 else np.nan
    out["parent_mean_m_above_mc"] = float(np.mean(mp))
    # the "past" (cluster) events: their median distance to their window's median point of such events
    spreads = []
    for w in range(n):
        sel = d["kind"][w] == "past"
        if sel.sum() >= 3:
            p = d["xy"][w][sel]
            spreads.append(np.median(np.linalg.norm(p - np.median(p, axis=0), axis=1)))
    out["past_spread_km"] = float(np.median(spreads)) if spreads else np.nan
    # window statistics of the issue
    xy = d["xy"]
    dist = np.linalg.norm(xy[:, :, None, :] - xy[:, None, :, :], axis=-1)
    dist[:, np.triu_indices(L)[0], np.triu_indices(L)[1]] = np.inf
    nn = dist[:, 1:, :].min(axis=2)
    out["mean_log10_nn_km"] = float(np.mean(np.log10(np.maximum(nn, 1e-3))))
    out["mean_log10_first_km"] = float(np.mean(np.log10(np.maximum(np.linalg.norm(xy[:, 1:] - xy[:, :1], axis=-1), 1e-3))))
    out["mean_max_m"] = float(np.mean(d["m"].max(1)))
    out["p_m_ge_mc2"] = float(np.mean(d["m"] >= mc + 2.0))
    out["b_value"] = math.log10(math.e) / max(float(np.mean(d["m"] - mc)), 1e-6)
    # magnitudes independent of the window (ETAS): the window means' variance is var(m)/L (ratio 1)
    out["window_mean_m_dispersion"] = float(d["m"].mean(1).var() / (d["m"].var() / L))
    out["median_log10_duration_d"] = float(np.median(np.log10(np.maximum(d["t"][:, -1], 1e-7))))
    # where the nearest-earlier-event distance comes from: each kind's mean log10 and its share-weighted part
    lnn = np.log10(np.maximum(nn, 1e-3))
    for k in ("bg", "past", "parent"):
        sel = kind == k
        out[f"nn_log10_{k}"] = float(lnn[sel].mean()) if sel.any() else np.nan
    return out


def sd_units(h: dict[str, np.ndarray]) -> dict[str, float]:
    """Standard deviations over H's windows of the window means of the issue's statistics."""
    xy = h["xy"]
    L = xy.shape[1]
    dist = np.linalg.norm(xy[:, :, None, :] - xy[:, None, :, :], axis=-1)
    dist[:, np.triu_indices(L)[0], np.triu_indices(L)[1]] = np.inf
    nn = np.log10(np.maximum(dist[:, 1:, :].min(axis=2), 1e-3)).mean(1)
    first = np.log10(np.maximum(np.linalg.norm(xy[:, 1:] - xy[:, :1], axis=-1), 1e-3)).mean(1)
    return {"mean_log10_nn_km": float(nn.std()), "mean_log10_first_km": float(first.std()),
            "mean_max_m": float(h["m"].max(1).std())}


def model_settings(path: Path) -> dict:
    return load_model(path).settings


def learned_globals(model, etas: dict) -> dict[str, float]:
    """The decoder's global ETAS-like parameters; for the autoregressive decoder also the branching ratio
    n = K E[exp(alpha (m - Mc))] with the truncated Gutenberg-Richter law of the config's b and mmax
    (exp(mean log K) over 4,000 prior draws of z)."""
    h = model.heads
    f = torch.nn.functional.softplus
    h = {name: v.detach() for name, v in h.named_parameters()} | {"__": None}
    h = type("Heads", (), h)
    out = {"heads_alpha": float(f(h.raw_alpha)), "heads_c": float(torch.exp(h.log_c)), "heads_p": float(1 + f(h.raw_p)),
           "kernel_D": float(torch.exp(h.log_D)), "kernel_gamma": float(h.raw_gamma), "kernel_q": float(1 + f(h.raw_q) + 1e-3)}
    if hasattr(model, "intensity"):
        it = model.intensity
        with torch.no_grad():
            alpha, c, p = (float(v) for v in it.globals())
        with torch.no_grad():
            z = model.prior_draw(torch.randn(4000, model.latent_dim, generator=torch.Generator().manual_seed(0)))
            log_mu, log_K, t_v, lk_v = it.window_terms(z)
        beta = etas["b"] * math.log(10.0)
        dm = etas.get("mmax", 7.5) - etas.get("mc", 2.5)
        gr = beta / (beta - alpha) * (1 - math.exp(-(beta - alpha) * dm)) / (1 - math.exp(-beta * dm))
        K = float(torch.exp(log_K).mean())
        out.update({"int_mu_per_day": float(torch.exp(log_mu).mean()), "int_K": K, "int_alpha": alpha, "int_c": c,
                    "int_p": p, "int_branching_ratio": K * gr, "int_virtual_kappa": float(torch.exp(lk_v).mean())})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = yaml.safe_load((args.run_dir / "config.yaml").read_text())
    check_schema(config)
    spec = window_spec(config, "event")
    mc = spec["mc"]
    rows = []
    for cfg, etas in etas_configs(config).items():
        etas = {**etas, "mc": config["simulation"]["mc"], "mmax": config["simulation"]["mmax"]}
        h = etas_windows(cfg, etas, config, spec, args.windows, args.seed)
        units = sd_units(h)
        rows.append({"config": cfg, "set": "ETAS", **describe(h, mc)})
        for path in sorted((args.run_dir / "results" / "models" / cfg).glob("*/model.pt")):
            d, model, epochs = model_windows(path, args.windows, args.seed)
            n_train = int((pd.read_parquet(args.run_dir / "results" / "windows" / cfg / "event.parquet",
                                           columns=["role"])["role"] == "train").sum())
            steps = epochs * math.ceil(n_train / int(model_settings(path)["batch_size"]))
            row = {"config": cfg, "set": model.decoder_kind, **describe(d, mc), "optimizer_steps": steps,
                   **magnitude_law(),
                   "w_bg": float(d["w_bg"][:, 1:].mean()), "w_cl": float(d["w_cl"][:, 1:].mean()),
                   "w_par": float(d["w_par"][:, 1:].mean()), "cluster_sd_km": float(np.median(d["cl_sd"])),
                   **learned_globals(model, etas)}
            rows.append(row)
        base = next(r for r in rows if r["config"] == cfg and r["set"] == "ETAS")
        for r in rows:
            if r["config"] == cfg and r["set"] != "ETAS":
                for key, sd in units.items():
                    r[f"{key}_dSD"] = (r[key] - base[key]) / sd
    table = pd.DataFrame(rows)
    table["config"] = table["config"].str.extract(r"(K[0-9.]+)", expand=False)
    pd.set_option("display.width", 250)
    print(table.set_index(["config", "set"]).T.to_string(float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    main()
