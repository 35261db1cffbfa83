"""Training, evaluation and health of the sequence VAE (``etasvae.models.sequence``).

Loss per window (nats) = -log p(x|z) summed over events and channels + AUX_WEIGHT * aux NLL + beta_t *
free-bits KL. The history's KL columns are the plain KL; its reconstruction columns the sequence NLL.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import numpy as np
import torch

from ..features import FeatureTransform, check_spec
from ..threads import one_thread
from .decoders import init_subset
from .intensity_fit import freeze_globals
from .sequence import (EVAL_BATCH, FREE_BITS, Batch, SequenceVAE, gaussian_kl, kl_per_unit, window_times)
from .training import Trainer, TrainResult, fit

AUX_WEIGHT = 4.0


def tensors(X: np.ndarray, origin: np.ndarray | None, model: SequenceVAE, dev) -> tuple[torch.Tensor, torch.Tensor]:
    Xt = torch.from_numpy(np.asarray(X, dtype=np.float32)).to(dev)
    if origin is None:
        return Xt, model.default_origin(len(Xt), dev)
    return Xt, torch.from_numpy(np.asarray(origin, dtype=np.float32)).to(dev)


def feature_batches(X: torch.Tensor, origin: torch.Tensor, spec: dict[str, Any]) -> Iterable[Batch]:
    """Batches of EVAL_BATCH windows of raw features X with first-event positions ``origin``."""
    for i in range(0, len(X), EVAL_BATCH):
        yield Batch(X[i:i + EVAL_BATCH], origin[i:i + EVAL_BATCH], spec)


PriorOf = Callable[[Batch], tuple[torch.Tensor, torch.Tensor]]


def evaluation_latent(model: SequenceVAE, mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor, z: str,
                      prior: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The z that ``mean_terms`` scores for standard normal ``noise``: "sample" mu + exp(logvar / 2) noise (a
    draw from q), "mean" mu, "prior" a draw from the sampling prior, or from the learned prior (mu, logvar)."""
    if z == "sample":
        return mu + torch.exp(0.5 * logvar) * noise
    if z == "mean":
        return mu
    return model.prior_draw(noise) if prior is None else prior[0] + torch.exp(0.5 * prior[1]) * noise


@torch.no_grad()
def mean_terms(model: SequenceVAE, batches: Iterable[Batch], *, z: str = "sample", seed: int = 0,
               prior_of: PriorOf | None = None) -> dict[str, float]:
    """Mean per window of the NLL, aux NLL and KL over the windows of ``batches``; z = "sample" (from q),
    "mean" (z = mu) or "prior" (the sampling prior, or the learned prior ``prior_of(batch)`` = (mu, logvar)
    whose KL is then the one reported), the draws from a generator seeded with ``seed``."""
    g, total, n = None, np.zeros(3), 0
    for b in batches:
        mu, logvar = model.encode_raw(b.X, b.origin, b.c)
        if g is None:
            g = torch.Generator(device=mu.device).manual_seed(seed)
        noise = torch.randn(mu.shape, generator=g, device=mu.device)
        prior = None if prior_of is None else prior_of(b)
        u = model.decoder_input(evaluation_latent(model, mu, logvar, noise, z, prior), b.c)
        kl = kl_per_unit(mu, logvar) if prior is None else gaussian_kl(mu, logvar, *prior)
        terms = (-model.event_log_probs(u, b).sum(dim=1), model.aux_nll(u, b.window), kl.sum(1))
        total += np.array([float(t.sum()) for t in terms])
        n += b.n
    total /= max(n, 1)
    return {"nll": total[0], "aux": total[1], "kl": total[2]}


def train_sequence_vae(X_train: np.ndarray, X_val: np.ndarray | None, s: dict[str, Any], spec: dict[str, Any],
                       origin_train: np.ndarray | None = None, origin_val: np.ndarray | None = None, *,
                       log: Callable[[str], None] = print, dev: torch.device,
                       intensity_globals: dict[str, float] | None = None) -> TrainResult:
    """Train a SequenceVAE (settings as ``training.check_settings`` gives them, plus ``decoder``) with the
    loop of ``training.fit``; at the end the sampling prior is fitted to the training windows' posterior.
    ``intensity_globals``: mu, K, alpha, c, p, D, gamma, q of a whole-catalog ETAS fit of the training
    catalogs (``intensity_fit.fit_training_catalogs``), at which the autoregressive intensity and the offset
    kernel are held."""
    spec = check_spec(spec)
    X_train = np.asarray(X_train, dtype=np.float32)
    L = spec["length"]
    if X_train.ndim != 2 or X_train.shape[1] != 4 * L or len(X_train) == 0:
        raise ValueError(f"train_vae: need event windows of shape (n, {4 * L}), got {X_train.shape}")
    has_val = X_val is not None and len(X_val) > 0
    transform = FeatureTransform.fit(X_train, kind="standard")
    torch.manual_seed(s["seed"])
    generator = torch.Generator(device=dev).manual_seed(s["seed"])
    model = SequenceVAE(L, s["latent_dim"], s["hidden"], s["decoder"], spec).to(dev)
    Xt, Ot = tensors(X_train, origin_train, model, dev)
    Xv, Ov = tensors(X_val, origin_val, model, dev) if has_val else (None, None)
    init_from_data(model, transform, Xt, Ot, spec, intensity_globals)
    log(f"training sequence VAE ({s['decoder']} decoder) on {dev} ({torch.get_num_threads()} threads): {len(Xt)} "
        f"training / {len(Xv) if has_val else 0} validation windows of {L} events, latent {s['latent_dim']}, "
        f"encoder {s['hidden']}, {s['optimizer']} lr {s['lr']:g}, batch {s['batch_size']}, beta {s['beta']:g}, "
        f"free bits {FREE_BITS:g}, aux weight {AUX_WEIGHT:g}")

    def batch_loss(index, _draws, beta_t):
        nll, aux, kl_term, kl = model.training_terms(Batch(Xt[index], Ot[index], spec))
        return nll + AUX_WEIGHT * aux + beta_t * kl_term, torch.stack((nll, kl, aux))

    def validation(epoch):   # the epoch number seeds the latent draws
        v = mean_terms(model, feature_batches(Xv, Ov, spec), seed=epoch)
        return [v["nll"], v["kl"], v["aux"]]

    trainer = Trainer(model, len(Xt), batch_loss, validation if has_val else None, describe_terms,
                      aux_weight=AUX_WEIGHT)
    history = fit(trainer, s, generator, log=log)
    model.fit_sampling_prior(Xt, Ot)
    return TrainResult(model=model, transform=transform, history=history)


def describe_terms(train: np.ndarray, val: np.ndarray) -> str:
    """The losses of an epoch's log line: (NLL, KL, aux) of the training and validation windows."""
    return (f"train NLL {train[0]:.5g} aux {train[2]:.3g} KL {train[1]:.3g}  "
            f"val NLL {val[0]:.5g} aux {val[2]:.3g} KL {val[1]:.3g}")


@torch.no_grad()
def init_from_data(model: SequenceVAE, transform: FeatureTransform, Xt: torch.Tensor, Ot: torch.Tensor,
                   spec: dict[str, Any], intensity_globals: dict[str, float] | None = None) -> None:
    """Set the feature scaling, log-interval statistics, decoder heads and aux scaling from the training windows;
    the intensity's globals (autoregressive decoder) and then the position globals start at their maximum-
    likelihood fits on at most INIT_WINDOWS of them (the position fit with the fitted intensity's weights).
    With ``intensity_globals`` the intensity's mu, K, alpha, c, p and the kernel's D, gamma, q are those,
    frozen (``intensity_fit``)."""
    model.feat_offset.copy_(torch.from_numpy(transform.offset))
    model.feat_scale.copy_(torch.from_numpy(transform.scale))
    w = Batch(Xt, Ot, spec).window
    model.ln_dt_stats.copy_(torch.stack([w.ln_dt.mean(), w.ln_dt.std().clamp_min(1e-3)]))
    model.heads.init_from_data(w.ln_dt, w.m)
    keep = init_subset(len(Xt), Xt.device)
    t, m, xy = window_times(w.ln_dt[keep]), w.m[keep], w.xy[keep]
    if model.decoder_kind == "autoregressive":
        if intensity_globals is not None:
            freeze_globals(model.intensity, intensity_globals, model.heads)
            model.catalog_intensity = True
        model.intensity.init_from_data(w.ln_dt, w.m)
        z = torch.zeros(len(t), model.intensity.virtual_head.in_features, device=Xt.device)
        _, log_mu, terms = model.intensity.window_log_prob(z, w.ln_dt[keep], m.clamp_min(0.0))
        model.heads.init_position_from_data(t, m, xy, log_mu, terms)
    else:
        model.heads.init_position_from_data(t, m, xy)
    raw = model.aux_targets(w)
    model.aux_offset.copy_(raw.mean(0))
    model.aux_scale.copy_(raw.std(0).clamp_min(1e-3))


@torch.no_grad()
@one_thread
def health(model: SequenceVAE, X: np.ndarray, origin: np.ndarray | None = None, seed: int = 0) -> dict[str, Any]:
    """Held-out numbers of a sequence VAE: mean NLL per window with z = posterior mean, z drawn from q, and
    z drawn from the prior, the margin prior - encoded (nats per window: what z tells the decoder), KL per
    window and per unit, activity (variance of the posterior mean) and active units."""
    model.eval()
    dev = next(model.parameters()).device
    Xt, Ot = tensors(X, origin, model, dev)
    enc, post, prior = (mean_terms(model, feature_batches(Xt, Ot, model.spec), z=z, seed=seed)
                        for z in ("mean", "sample", "prior"))
    mu, logvar = model.encode_raw(Xt, Ot)
    activity = mu.var(dim=0).cpu().numpy().astype(float) if len(mu) > 1 else np.full(model.latent_dim, np.nan)
    kl_units = kl_per_unit(mu, logvar).mean(0).cpu().numpy().astype(float)
    return {
        "n_windows": int(len(Xt)), "loss": "channels", "decoder": model.decoder_kind,
        "recon_loss": enc["nll"], "nll_encoded_mean_z": enc["nll"], "nll_encoded_sampled_z": post["nll"],
        "nll_prior_z": prior["nll"], "prior_minus_encoded_nats": prior["nll"] - post["nll"],
        "kl_per_window": float(kl_units.sum()), "kl_per_unit": kl_units.tolist(),
        "elbo_per_window": -(post["nll"] + float(kl_units.sum())),
        "activity": activity.tolist(), "n_active": int((activity > 0.01).sum()),
    }
