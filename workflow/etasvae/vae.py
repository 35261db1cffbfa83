"""The variational autoencoder over windows (docs/design.md §5): model, training loop, files, sampling.

Encoder: Linear+ReLU layers (``hidden``) to two linear heads, mean and log-variance of q(z|x) = N(mu, diag
exp(logvar)). Decoder: Linear+ReLU layers (``hidden`` reversed) to one output per feature, whose meaning
depends on the reconstruction loss (all in the transformed feature space, see ``transform_kind``):

    loss           decoder output      likelihood p(x|z)                            feature scaling
    mse            mean                Gaussian, fixed variance: recon = sum (x-m)^2  standardised
    gaussian_nll   mean                Gaussian with a learned per-feature            standardised
                                       log-variance (a parameter vector, the same
                                       for every z: homoscedastic)
    bce            logit               Bernoulli(sigmoid(logit)); targets clipped     min-max to [0, 1] on
                                       to [0, 1]                                      the training windows
    poisson        log-rate            Poisson(exp(log-rate)), exact NLL with         raw counts
                                       lgamma(x + 1)

Loss per window = reconstruction (summed over features) + beta_t * KL(q(z|x) || N(0, I)) (closed form,
summed over latent units); both averaged over the windows of a batch. beta_t rises linearly from
beta/kl_warmup_epochs in epoch 1 to beta at epoch kl_warmup_epochs (Bowman et al. 2016 warm-up).

Loss ``channels`` (event windows) selects the sequence VAE of ``etasvae.seqvae``: per-channel likelihoods
of every event (log-normal mixture of inter-event times, exponential mixture of magnitudes, ETAS-like
placement of positions) with an ``mlp`` or ``autoregressive`` decoder (setting ``decoder``). ``train_vae``,
``save_model``, ``load_model``, ``encode_windows``, ``sample_windows`` and ``reconstruct_windows`` serve both
kinds; the sequence VAE needs the window spec (with ``region_km``) and the first events' positions.

Drawing from the decoder likelihood (``sample_windows(mode="draw")``) needs a variance for "mse": the
per-feature mean squared reconstruction residual on the training windows, measured after training and
stored in the model (buffer ``residual_var``).
"""

from __future__ import annotations

import copy
import io
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from .config import TRAINING_DEFAULTS, VAE_DEFAULTS, schema_default
from .fileio import atomic_write, plain
from .plotting import new_figure, save_png
from .features import FeatureTransform
from .threads import one_thread

LOSSES = ("mse", "gaussian_nll", "bce", "poisson", "channels")
DECODERS = ("mlp", "autoregressive", "gru_lognormal")
MODEL_FORMAT = "etasvae-vae-1"
HISTORY_COLUMNS = ["epoch", "train_recon", "train_kl", "train_total", "val_recon", "val_kl", "val_total", "beta"]
# Learned Gaussian log-variances are clamped to this range (standardised units) so a perfectly fitted
# feature cannot drive the NLL to -inf.
LOGVAR_MIN, LOGVAR_MAX = -9.0, 9.0
_EVAL_BATCH = 8192

# Defaults of a setting left out: the config schema's (workflow/schemas/config.schema.yaml), the one source.
SETTINGS_DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in VAE_DEFAULTS.items() if k != "representation"},
    **TRAINING_DEFAULTS,
}


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite during training."""


def transform_kind(loss: str) -> str:
    """The feature scaling a reconstruction loss expects (see the module docstring)."""
    return {"mse": "standard", "gaussian_nll": "standard", "channels": "standard", "bce": "minmax",
            "poisson": "identity"}[loss]


def check_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with defaults filled in; ValueError naming the key that is wrong."""
    s = {**SETTINGS_DEFAULTS, **settings}
    if s["loss"] not in LOSSES:
        raise ValueError(f"VAE settings: 'loss' must be one of {LOSSES}, got {s['loss']!r}")
    if s["decoder"] not in DECODERS:
        raise ValueError(f"VAE settings: 'decoder' must be one of {DECODERS}, got {s['decoder']!r}")
    if s["decoder"] != "mlp" and s["loss"] != "channels":
        raise ValueError(f"VAE settings: the {s['decoder']} decoder needs loss 'channels', got {s['loss']!r}")
    if s["optimizer"] not in ("adam", "sgd"):
        raise ValueError(f"VAE settings: 'optimizer' must be 'adam' or 'sgd', got {s['optimizer']!r}")
    for key in ("latent_dim", "epochs", "batch_size"):
        if int(s[key]) < 1:
            raise ValueError(f"VAE settings: '{key}' must be >= 1, got {s[key]!r}")
        s[key] = int(s[key])
    s["hidden"] = [int(h) for h in s["hidden"]]
    if any(h < 1 for h in s["hidden"]):
        raise ValueError(f"VAE settings: 'hidden' sizes must be >= 1, got {s['hidden']!r}")
    for key in ("beta", "lr"):
        s[key] = float(s[key])
    if s["beta"] < 0 or not s["lr"] > 0:
        raise ValueError(f"VAE settings: need beta >= 0 and lr > 0, got beta={s['beta']}, lr={s['lr']}")
    s["kl_warmup_epochs"] = int(s["kl_warmup_epochs"] or 0)
    s["patience"] = int(s["patience"] or 0)
    s["grad_clip"] = float(s["grad_clip"] or 0.0)
    s["cuda_batch_scale"] = int(s.get("cuda_batch_scale") or 1)
    if s["cuda_batch_scale"] < 1:
        raise ValueError(f"VAE settings: 'cuda_batch_scale' must be >= 1, got {s['cuda_batch_scale']!r}")
    s["seed"] = int(s["seed"])
    return s


# Scaling the batch on CUDA keeps at least this many optimiser steps per epoch: with fewer, a few thousand
# windows train in a handful of steps and the latent goes unused (1,372 windows at batch 1,024 gave two steps per
# epoch and a pooled autoregressive model whose classifier accuracy rose from 0.61 to 0.67 on an H200).
MIN_STEPS_PER_EPOCH = 64


def device_settings(settings: dict[str, Any], dev: torch.device, n_train: int) -> dict[str, Any]:
    """The settings training uses on ``dev`` for ``n_train`` training windows: on CUDA the batch is k times
    larger, so that a step is not bound by kernel launches (at batch 256 a GPU trains about as fast as the
    host's CPU), and the learning rate grows with it: by sqrt(k) for Adam (the square-root rule for adaptive
    methods, Malladi et al. 2022), by k for SGD (the linear rule, Goyal et al. 2017). k is ``cuda_batch_scale``,
    lowered (to 1 at the least) so that an epoch keeps ``MIN_STEPS_PER_EPOCH`` steps: small training sets, the
    default run's included, train on a GPU with the CPU's batch and learning rate. On the CPU the settings are
    returned unchanged, so CPU training and its reproducible history do not depend on k."""
    k = int(settings.get("cuda_batch_scale") or 1)
    if dev.type != "cuda" or k == 1:
        return settings
    k = max(1, min(k, int(n_train) // (int(settings["batch_size"]) * MIN_STEPS_PER_EPOCH)))
    if k == 1:
        return settings
    factor = math.sqrt(k) if settings["optimizer"] == "adam" else float(k)
    return {**settings, "batch_size": int(settings["batch_size"]) * k, "lr": float(settings["lr"]) * factor}


# --------------------------------------------------------------------------------------------- model


def _mlp(sizes: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return layers


class VAE(nn.Module):
    """Fully connected VAE: encoder -> (mu, logvar) heads; decoder -> one output per feature."""

    def __init__(self, n_features: int, latent_dim: int, hidden: list[int], loss: str = "mse"):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"VAE: unknown loss {loss!r}")
        self.n_features, self.latent_dim, self.hidden, self.loss = n_features, latent_dim, list(hidden), loss
        self.encoder = nn.Sequential(*_mlp([n_features, *hidden]))
        last = hidden[-1] if hidden else n_features
        # The mean and log-variance heads as one layer (one matrix product): outputs [mu | logvar].
        self.posterior_head = nn.Linear(last, 2 * latent_dim)
        back = list(reversed(hidden))
        self.decoder = nn.Sequential(*_mlp([latent_dim, *back]), nn.Linear(back[-1] if back else latent_dim, n_features))
        # Gaussian NLL: learned per-feature log-variance (a parameter, not a function of z).
        self.out_logvar = nn.Parameter(torch.zeros(n_features), requires_grad=(loss == "gaussian_nll"))
        # MSE: residual variance per feature, measured on the training windows after training ("draw" mode).
        self.register_buffer("residual_var", torch.ones(n_features))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.posterior_head(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Raw decoder output: mean (mse, gaussian_nll), logit (bce) or log-rate (poisson)."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None):
        """(decoder output, mu, logvar) with z = mu + exp(logvar/2) * noise (noise ~ N(0, I) if not given)."""
        mu, logvar = self.encode(x)
        if noise is None:
            noise = torch.randn_like(mu)
        z = mu + torch.exp(0.5 * logvar) * noise
        return self.decode(z), mu, logvar

    def likelihood_mean(self, out: torch.Tensor) -> torch.Tensor:
        """E[x | z] in the transformed feature space."""
        if self.loss == "bce":
            return torch.sigmoid(out)
        if self.loss == "poisson":
            return torch.exp(out)
        return out

    def likelihood_draw(self, out: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One draw from p(x | z) in the transformed feature space."""
        if self.loss == "bce":
            return torch.bernoulli(torch.sigmoid(out), generator=generator)
        if self.loss == "poisson":
            return torch.poisson(torch.exp(out), generator=generator)
        if self.loss == "gaussian_nll":
            var = torch.exp(self.out_logvar.clamp(LOGVAR_MIN, LOGVAR_MAX))
        else:
            var = self.residual_var
        noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        return out + torch.sqrt(var) * noise


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) per window, summed over latent units (Kingma & Welling 2014)."""
    return 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=1)


def reconstruction_loss(model: VAE, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood (up to constants for mse) per window, summed over features."""
    if model.loss == "mse":
        return torch.sum((out - x).pow(2), dim=1)
    if model.loss == "gaussian_nll":
        logvar = model.out_logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        return 0.5 * torch.sum(logvar + (x - out).pow(2) * torch.exp(-logvar) + math.log(2 * math.pi), dim=1)
    if model.loss == "bce":
        target = x.clamp(0.0, 1.0)
        return torch.sum(F.binary_cross_entropy_with_logits(out, target, reduction="none"), dim=1)
    # poisson, out = log-rate
    return torch.sum(torch.exp(out) - x * out + torch.lgamma(x + 1.0), dim=1)


# ------------------------------------------------------------------------------------------ training


@dataclass
class TrainResult:
    model: VAE
    transform: FeatureTransform
    history: pd.DataFrame


@dataclass
class ModelBundle:
    model: VAE
    settings: dict[str, Any]
    transform: FeatureTransform
    spec: dict[str, Any]
    history: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)


def pick_device(device: str | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _batch_losses(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean reconstruction loss, mean KL) per window of a batch."""
    out, mu, logvar = model(x)
    if model.loss == "mse":  # the same value as reconstruction_loss(...).mean(), in one fused kernel
        recon = F.mse_loss(out, x, reduction="sum") / len(x)
    else:
        recon = reconstruction_loss(model, out, x).mean()
    return recon, kl_divergence(mu, logvar).mean()


@torch.no_grad()
def _evaluate(model: VAE, X: torch.Tensor) -> torch.Tensor:
    """(mean recon, mean KL) over all windows of X, on the device (no sync)."""
    total = torch.zeros(2, device=X.device)
    for i in range(0, len(X), _EVAL_BATCH):
        xb = X[i:i + _EVAL_BATCH]
        recon, kl = _batch_losses(model, xb)
        total += torch.stack([recon, kl]) * len(xb)
    return total / max(len(X), 1)


def _diverged(epoch: int, batch_terms: torch.Tensor, lr: float, grad_clip: float) -> TrainingDiverged:
    """The error for the first batch whose loss is not finite (batch_terms: (n_batches, 2) recon, KL)."""
    bad = ~torch.isfinite(batch_terms)
    batch = int(torch.nonzero(bad.any(dim=1))[0, 0])
    terms = [name for name, flag in zip(("reconstruction", "KL"), bad[batch].tolist()) if flag]
    clipping = (f"gradient clipping is already on (grad_clip = {grad_clip:g}), so lower it" if grad_clip > 0
                else "turn on gradient clipping (grad_clip)")
    return TrainingDiverged(
        f"training diverged: the {' and '.join(terms)} loss is not finite in epoch {epoch}, batch {batch} "
        f"(batch values: {batch_terms[batch].tolist()}); lower the learning rate (lr = {lr:g}), "
        f"{clipping}, or check the input windows for extreme values"
    )


def beta_at(settings: dict[str, Any], epoch: int) -> float:
    """The KL weight in force in an epoch (1-based): linear warm-up to beta over kl_warmup_epochs."""
    warmup = settings["kl_warmup_epochs"]
    return settings["beta"] * min(1.0, epoch / warmup) if warmup > 0 else settings["beta"]


class BestEpoch:
    """Early stopping: remembers the weights of the epoch with the lowest score once the KL warm-up is over,
    and says when ``patience`` epochs (0 = never) have passed without improvement."""

    def __init__(self, warmup_epochs: int, patience: int):
        self.warmup, self.patience = warmup_epochs, patience
        self.score, self.epoch, self.state, self.stale = math.inf, 0, None, 0

    def stop_after(self, epoch: int, score: float, model: nn.Module, log: Callable[[str], None]) -> bool:
        if epoch < self.warmup:
            return False
        if score < self.score:
            self.score, self.epoch, self.stale = score, epoch, 0
            self.state = copy.deepcopy(model.state_dict())
            return False
        self.stale += 1
        if self.patience > 0 and self.stale >= self.patience:
            log(f"early stopping after epoch {epoch}: no improvement for {self.stale} epochs")
            return True
        return False

    def restore(self, model: nn.Module, log: Callable[[str], None], what: str) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)
            log(f"keeping the weights of epoch {self.epoch} ({what} {self.score:.4g})")


def history_row(epoch: int, beta_t: float, train_recon: float, train_kl: float, val_recon: float,
                val_kl: float) -> dict[str, float]:
    """One epoch of the history (HISTORY_COLUMNS): totals are reconstruction + beta_t * KL."""
    return {"epoch": epoch, "train_recon": train_recon, "train_kl": train_kl,
            "train_total": train_recon + beta_t * train_kl, "val_recon": val_recon, "val_kl": val_kl,
            "val_total": val_recon + beta_t * val_kl, "beta": beta_t}


def log_epoch(log: Callable[[str], None], epoch: int, epochs: int, beta_t: float, started: float, n: int,
              losses: str) -> None:
    """One line per epoch: its number, beta in force, the ``losses`` text and the speed since ``started``."""
    seconds = time.perf_counter() - started
    log(f"epoch {epoch:4d}/{epochs}  beta {beta_t:.3g}  {losses}  {seconds:.2f} s ({n / seconds:,.0f} windows/s)")


def make_optimizer(params: list[torch.Tensor], settings: dict[str, Any], *, fused: bool = False) -> torch.optim.Optimizer:
    """Adam, or SGD with momentum 0.9, at the settings' learning rate."""
    if settings["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=settings["lr"], fused=fused or None)
    return torch.optim.SGD(params, lr=settings["lr"], momentum=0.9)


def shuffled_for_training(model: nn.Module, n: int, generator: torch.Generator) -> torch.Tensor:
    """Put ``model`` in training mode and return this epoch's order of the ``n`` training windows."""
    model.train()
    return torch.randperm(n, generator=generator, device=generator.device)


@one_thread
def train_vae(X_train: np.ndarray, X_val: np.ndarray | None, settings: dict[str, Any], *,
              log: Callable[[str], None] = print, device: str | None = None,
              spec: dict[str, Any] | None = None,
              origin_train: np.ndarray | None = None, origin_val: np.ndarray | None = None) -> TrainResult:
    """Fit the feature transform on ``X_train`` and train a VAE; return the model with its best weights.

    Early stopping: after the KL warm-up, the epoch with the lowest validation total loss (training total
    if there are no validation windows) is remembered; training stops after ``patience`` epochs without
    improvement (0 = run all epochs) and the model returns with the remembered weights.
    A non-finite loss raises TrainingDiverged. On CPU the same seed gives the same history, whatever the
    thread count (one thread for the arithmetic: etasvae.threads).
    Loss ``channels`` trains a sequence VAE (``etasvae.seqvae``): it needs the window ``spec`` (with
    ``region_km``) and takes the first events' positions (n, 2) km (``seqvae.window_origins`` of the table).
    """
    s = check_settings(settings)
    dev = pick_device(device)
    s = device_settings(s, dev, len(X_train))
    if s["loss"] == "channels":
        return _train_channels(X_train, X_val, s, spec, origin_train, origin_val, log=log, dev=dev)
    transform, Xt, Xv = _training_tensors(X_train, X_val, s, dev)
    has_val = Xv is not None

    torch.manual_seed(s["seed"])
    generator = torch.Generator(device=dev).manual_seed(s["seed"])
    model = VAE(Xt.shape[1], s["latent_dim"], s["hidden"], s["loss"]).to(dev)
    _init_output_bias(model, Xt)
    params = [p for p in model.parameters() if p.requires_grad]
    # The fused Adam kernel (CPU and CUDA) updates all parameters in one call: ~10 % faster on 2 cores here.
    optimizer = make_optimizer(params, s, fused=dev.type in ("cpu", "cuda"))
    _log_training_start(log, dev, s, Xt, Xv)

    rows, best = [], BestEpoch(s["kl_warmup_epochs"], s["patience"])
    for epoch in range(1, s["epochs"] + 1):
        beta_t = beta_at(s, epoch)
        started = time.perf_counter()
        train_recon, train_kl = _train_epoch(model, Xt, optimizer, params, s, epoch, beta_t, generator)
        model.eval()
        val_recon, val_kl = _validation_losses(model, Xv, epoch, s["lr"])
        row = history_row(epoch, beta_t, train_recon, train_kl, val_recon, val_kl)
        rows.append(row)
        log_epoch(log, epoch, s["epochs"], beta_t, started, len(Xt),
                  f"train recon {train_recon:.4g} KL {train_kl:.4g}  "
                  f"val recon {val_recon:.4g} KL {val_kl:.4g} total {row['val_total']:.4g}")
        if best.stop_after(epoch, row["val_total"] if has_val else row["train_total"], model, log):
            break
    best.restore(model, log, f"{'validation' if has_val else 'training'} total")
    model.eval()
    if s["loss"] == "mse":
        model.residual_var.copy_(_residual_variance(model, Xt))
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return TrainResult(model=model, transform=transform, history=history)


def _train_channels(X_train: np.ndarray, X_val: np.ndarray | None, s: dict[str, Any], spec: dict[str, Any] | None,
                    origin_train: np.ndarray | None, origin_val: np.ndarray | None, *,
                    log: Callable[[str], None], dev: torch.device) -> TrainResult:
    """Train a sequence VAE (loss ``channels``), which needs the window spec."""
    if spec is None:
        raise ValueError("train_vae: loss 'channels' needs the window spec (spec=...)")
    from .seqvae import train_sequence_vae

    model, transform, history = train_sequence_vae(X_train, X_val, s, spec, origin_train, origin_val,
                                                   log=log, dev=dev)
    return TrainResult(model=model, transform=transform, history=history)


def _training_tensors(X_train: np.ndarray, X_val: np.ndarray | None, s: dict[str, Any],
                      dev: torch.device) -> tuple[FeatureTransform, torch.Tensor, torch.Tensor | None]:
    """Check the windows, fit the transform, put the scaled windows on the device (Xv None without validation)."""
    X_train = np.asarray(X_train, dtype=np.float32)
    if X_train.ndim != 2 or len(X_train) == 0:
        raise ValueError(f"train_vae: need a non-empty (windows, features) training array, got shape {X_train.shape}")
    has_val = X_val is not None and len(X_val) > 0
    transform = FeatureTransform.fit(X_train, kind=transform_kind(s["loss"]))
    if s["loss"] == "poisson" and (X_train < 0).any():
        raise ValueError("train_vae: the poisson loss needs non-negative counts")
    Xt = torch.from_numpy(transform.transform(X_train)).to(dev)
    Xv = torch.from_numpy(transform.transform(X_val)).to(dev) if has_val else None
    return transform, Xt, Xv


def _log_training_start(log: Callable[[str], None], dev: torch.device, s: dict[str, Any], Xt: torch.Tensor,
                        Xv: torch.Tensor | None) -> None:
    """Log the line that opens a training run: device, window counts and settings."""
    log(f"training VAE on {dev} ({torch.get_num_threads()} threads): {len(Xt)} training / "
        f"{len(Xv) if Xv is not None else 0} validation windows x {Xt.shape[1]} features, latent {s['latent_dim']}, "
        f"hidden {s['hidden']}, loss {s['loss']}, {s['optimizer']} lr {s['lr']:g}, batch {s['batch_size']}, "
        f"beta {s['beta']:g}")


def _train_epoch(model: VAE, Xt: torch.Tensor, optimizer: torch.optim.Optimizer, params: list[torch.Tensor],
                 s: dict[str, Any], epoch: int, beta_t: float, generator: torch.Generator) -> tuple[float, float]:
    """One pass over shuffled mini-batches; return the window-weighted mean (reconstruction, KL)."""
    n, bs = len(Xt), s["batch_size"]
    n_batches = math.ceil(n / bs)
    perm = shuffled_for_training(model, n, generator)
    terms = []  # per-batch (recon, KL) on the device; read once per epoch
    for b in range(n_batches):
        xb = Xt[perm[b * bs:(b + 1) * bs]]
        recon, kl = _batch_losses(model, xb)
        loss = recon + beta_t * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if s["grad_clip"] > 0:
            nn.utils.clip_grad_norm_(params, s["grad_clip"], foreach=True)
        optimizer.step()
        terms.append(torch.stack((recon.detach(), kl.detach())))
    batch_terms = torch.stack(terms)
    if not torch.isfinite(batch_terms).all():
        raise _diverged(epoch, batch_terms.cpu(), s["lr"], s["grad_clip"])
    sizes = torch.full((n_batches,), float(bs), device=Xt.device)
    sizes[-1] = n - bs * (n_batches - 1)
    train_recon, train_kl = ((batch_terms * sizes[:, None]).sum(dim=0) / n).tolist()
    return train_recon, train_kl


def _validation_losses(model: VAE, Xv: torch.Tensor | None, epoch: int, lr: float) -> tuple[float, float]:
    """Mean (reconstruction, KL) on the validation windows, NaN without them; raise if not finite."""
    if Xv is None:
        return math.nan, math.nan
    val_recon, val_kl = _evaluate(model, Xv).tolist()
    if not (math.isfinite(val_recon) and math.isfinite(val_kl)):
        raise TrainingDiverged(
            f"training diverged: the validation loss is not finite after epoch {epoch} "
            f"(recon {val_recon}, KL {val_kl}); lower the learning rate (lr = {lr:g})")
    return val_recon, val_kl


@torch.no_grad()
def _init_output_bias(model: VAE, X: torch.Tensor) -> None:
    """Start the decoder at the training mean: log of the mean count (poisson), logit of the mean (bce).
    (Standardised features have mean 0, where a zero bias already is.) Saves the first epochs of a
    Poisson decoder climbing from a rate of 1 to rates of tens."""
    mean = X.mean(dim=0)
    if model.loss == "poisson":
        model.decoder[-1].bias.copy_(torch.log(mean.clamp_min(1e-3)))
    elif model.loss == "bce":
        p = mean.clamp(1e-3, 1 - 1e-3)
        model.decoder[-1].bias.copy_(torch.log(p) - torch.log1p(-p))


@torch.no_grad()
def _residual_variance(model: VAE, X: torch.Tensor) -> torch.Tensor:
    """Per-feature mean squared residual of the reconstructions (z = mu) of X, floored at 1e-6."""
    total = torch.zeros(X.shape[1], device=X.device)
    for i in range(0, len(X), _EVAL_BATCH):
        xb = X[i:i + _EVAL_BATCH]
        mu, _ = model.encode(xb)
        total += (model.decode(mu) - xb).pow(2).sum(dim=0)
    return (total / len(X)).clamp_min(1e-6)


# --------------------------------------------------------------------------------------------- files


def save_model(path: str | os.PathLike, result: TrainResult, settings: dict[str, Any], spec: dict[str, Any],
               extra: dict[str, Any] | None = None) -> None:
    """One file (torch.save of tensors and plain values, loadable with weights_only=True), written atomically."""
    model = result.model
    if hasattr(model, "architecture"):
        architecture = plain(model.architecture())
    else:
        architecture = {"n_features": model.n_features, "latent_dim": model.latent_dim,
                        "hidden": list(model.hidden), "loss": model.loss}
    payload = {
        "format": MODEL_FORMAT,
        "architecture": architecture,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "settings": plain(settings),
        "transform": result.transform.to_dict(),
        "spec": plain(spec),
        "history": {c: plain(result.history[c].to_numpy()) for c in result.history.columns},
        "extra": plain(extra or {}),
    }
    # Serialised in memory, then written: torch.save names the zip's inner folder after the file it writes
    # to, and the temporary name of a direct save would make identical models differ byte for byte.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))


def load_model(path: str | os.PathLike, device: str | None = None) -> ModelBundle:
    """Read a model file written by save_model (torch.load with weights_only=True); model in eval mode."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not an etasvae model file (format {payload.get('format')!r})")
    arch = payload["architecture"]
    if arch.get("kind") == "sequence":
        from .seqvae import SequenceVAE

        model = SequenceVAE(arch["length"], arch["latent_dim"], arch["hidden"], arch["decoder"], arch["spec"])
        for name in ("prior_loc", "prior_tril"):   # files written before the fitted sampling prior: N(0, I)
            payload["state_dict"].setdefault(name, getattr(model, name).clone())
    else:
        model = VAE(arch["n_features"], arch["latent_dim"], arch["hidden"], arch["loss"])
    model.load_state_dict(payload["state_dict"])
    model.to(pick_device(device)).eval()
    return ModelBundle(model=model, settings=payload["settings"],
                       transform=FeatureTransform.from_dict(payload["transform"]), spec=payload["spec"],
                       history=pd.DataFrame(payload["history"], columns=HISTORY_COLUMNS),
                       extra=payload["extra"])


# ---------------------------------------------------------------------------------- using a model


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def is_sequence(model: nn.Module) -> bool:
    """A sequence VAE (loss ``channels``, etasvae.seqvae) rather than the MLP VAE of this module."""
    return getattr(model, "kind", "") == "sequence"


@torch.no_grad()
@one_thread
def encode_windows(bundle: ModelBundle, X: np.ndarray, origin: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and log-variance of each window: two float32 arrays (n, latent_dim).
    ``origin``: first-event positions (n, 2) km, read by sequence VAEs (the region's centre where None)."""
    model = bundle.model.eval()
    dev = _device_of(model)
    if is_sequence(model):
        Xr = torch.from_numpy(np.asarray(X, dtype=np.float32)).to(dev)
        O = None if origin is None else torch.from_numpy(np.asarray(origin, dtype=np.float32)).to(dev)
        parts = [model.encode_raw(Xr[i:i + _EVAL_BATCH], None if O is None else O[i:i + _EVAL_BATCH])
                 for i in range(0, len(Xr), _EVAL_BATCH)]
    else:
        Z = torch.from_numpy(bundle.transform.transform(X)).to(dev)
        parts = [model.encode(Z[i:i + _EVAL_BATCH]) for i in range(0, len(Z), _EVAL_BATCH)]
    if not parts:
        empty = np.zeros((0, model.latent_dim), np.float32)
        return empty, empty.copy()
    mu = torch.cat([p[0] for p in parts]).cpu().numpy()
    logvar = torch.cat([p[1] for p in parts]).cpu().numpy()
    return mu, logvar


@torch.no_grad()
@one_thread
def sample_windows(bundle: ModelBundle, n: int, *, seed: int, mode: str | None = None, return_latent: bool = False):
    """n synthetic windows in raw feature space: z ~ N(0, I) -> decoder -> its mean ("mean") or one draw from
    the decoder likelihood ("draw") -> inverse feature transform. Float32 (n, n_features); with
    ``return_latent`` also the z drawn, float32 (n, latent_dim). ``mode=None`` takes the configuration's
    default (``sample.mode`` in the schema). A sequence VAE always draws, event by event (a sequence has no
    useful mean)."""
    mode = schema_default("sample.mode") if mode is None else mode
    if mode not in ("mean", "draw"):
        raise ValueError(f"sample_windows: mode must be 'mean' or 'draw', got {mode!r}")
    model = bundle.model.eval()
    if is_sequence(model):
        X, _, z = model.sample_features(int(n), seed=int(seed))
        return (X, z) if return_latent else X
    dev = _device_of(model)
    generator = torch.Generator(device=dev).manual_seed(int(seed))
    out, latents = [], []
    for i in range(0, n, _EVAL_BATCH):
        m = min(_EVAL_BATCH, n - i)
        z = torch.randn(m, model.latent_dim, generator=generator, device=dev)
        raw = model.decode(z)
        x = model.likelihood_mean(raw) if mode == "mean" else model.likelihood_draw(raw, generator)
        out.append(x.cpu().numpy())
        latents.append(z.cpu().numpy())
    Z = np.concatenate(out) if out else np.zeros((0, model.n_features), np.float32)
    X = bundle.transform.inverse(Z)
    if return_latent:
        return X, np.concatenate(latents) if latents else np.zeros((0, model.latent_dim), np.float32)
    return X


@torch.no_grad()
@one_thread
def reconstruct_windows(bundle: ModelBundle, X: np.ndarray) -> np.ndarray:
    """Decoder mean at the posterior mean (z = mu) of each window, in raw feature space."""
    model = bundle.model.eval()
    Z = torch.from_numpy(bundle.transform.transform(X)).to(_device_of(model))
    out = [model.likelihood_mean(model.decode(model.encode(Z[i:i + _EVAL_BATCH])[0])).cpu().numpy()
           for i in range(0, len(Z), _EVAL_BATCH)]
    Zhat = np.concatenate(out) if out else np.zeros((0, model.n_features), np.float32)
    return bundle.transform.inverse(Zhat)


# ------------------------------------------------------------------------------------------- plots


def plot_loss_curves(history: pd.DataFrame, path: str | os.PathLike, title: str = "") -> None:
    """PNG of training and validation reconstruction, KL and total loss per epoch (beta_t on the total panel)."""
    fig = new_figure(figsize=(12, 3.6))
    axes = fig.subplots(1, 3)
    for ax, term, label in zip(axes, ("recon", "kl", "total"), ("reconstruction loss", "KL divergence", "total loss")):
        ax.plot(history["epoch"], history[f"train_{term}"], label="training", color="tab:blue")
        if history[f"val_{term}"].notna().any():
            ax.plot(history["epoch"], history[f"val_{term}"], label="validation", color="tab:orange")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{label} per window")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    beta_ax = axes[2].twinx()
    beta_ax.plot(history["epoch"], history["beta"], color="grey", linestyle=":", label="β (KL weight)")
    beta_ax.set_ylabel("β in force")
    lines = axes[2].get_legend_handles_labels()
    more = beta_ax.get_legend_handles_labels()
    axes[2].legend(lines[0] + more[0], lines[1] + more[1], loc="best")
    axes[0].legend(loc="best")
    axes[1].legend(loc="best")
    if title:
        fig.suptitle(title)
    save_png(fig, path)
