"""What every model's training shares: settings, device, history, early stopping, the optimiser step and the
one epoch loop (``fit``) that the MLP VAE, the sequence VAE and the surrogate all call.

A trainer hands ``fit`` a ``Trainer``: its model, the number of training windows, a function that gives one
batch's loss and its logged terms, and a function that gives the validation terms. The terms are
(reconstruction, KL[, auxiliary]); the history keeps the first two and the early-stopping score is
reconstruction + aux_weight * auxiliary + beta_t * KL on the validation windows (on the training windows
without any).
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import TRAINING_DEFAULTS, VAE_DEFAULTS
from ..features import FeatureTransform
from ..plotting import new_figure, save_png

LOSSES = ("mse", "gaussian_nll", "bce", "poisson", "channels")
DECODERS = ("mlp", "autoregressive", "gru_lognormal")
HISTORY_COLUMNS = ["epoch", "train_recon", "train_kl", "train_total", "val_recon", "val_kl", "val_total", "beta"]
TERM_NAMES = ("reconstruction", "KL", "auxiliary")

# Defaults of a setting left out: the config schema's (workflow/schemas/config.schema.yaml), the one source.
SETTINGS_DEFAULTS: dict[str, Any] = {
    **{k: v for k, v in VAE_DEFAULTS.items() if k != "representation"},
    **TRAINING_DEFAULTS,
}

# Scaling the batch on CUDA keeps at least this many optimiser steps per epoch: with fewer, a training set
# of a few thousand windows trains in a handful of steps and the latent goes unused (benchmarks/RESULTS.md).
MIN_STEPS_PER_EPOCH = 64


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite during training."""


@dataclass
class TrainResult:
    model: nn.Module
    transform: FeatureTransform
    history: pd.DataFrame


def transform_kind(loss: str) -> str:
    """The feature scaling a reconstruction loss expects (etasvae.models.mlp's docstring)."""
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


def pick_device(device: str | None = None) -> torch.device:
    if device is not None:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def device_settings(settings: dict[str, Any], dev: torch.device, n_train: int) -> dict[str, Any]:
    """The settings training uses on ``dev`` for ``n_train`` training windows: on CUDA the batch is k times
    larger, so that a step is not bound by kernel launches, and the learning rate grows with it: by sqrt(k)
    for Adam (the square-root rule for adaptive methods, Malladi et al. 2022), by k for SGD (the linear
    rule, Goyal et al. 2017). k is ``cuda_batch_scale``, lowered (to 1 at the least) so that an epoch keeps
    ``MIN_STEPS_PER_EPOCH`` steps: small training sets, the default run's included, train on a GPU with the
    CPU's batch and learning rate. On the CPU the settings are returned unchanged, so CPU training and its
    reproducible history do not depend on k."""
    k = int(settings.get("cuda_batch_scale") or 1)
    if dev.type != "cuda" or k == 1:
        return settings
    k = max(1, min(k, int(n_train) // (int(settings["batch_size"]) * MIN_STEPS_PER_EPOCH)))
    if k == 1:
        return settings
    factor = math.sqrt(k) if settings["optimizer"] == "adam" else float(k)
    return {**settings, "batch_size": int(settings["batch_size"]) * k, "lr": float(settings["lr"]) * factor}


def mlp_layers(sizes: list[int]) -> list[nn.Module]:
    """Linear + ReLU for each consecutive pair of ``sizes``."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return layers


def beta_at(settings: dict[str, Any], epoch: int) -> float:
    """The KL weight in force in an epoch (1-based): linear warm-up to beta over kl_warmup_epochs
    (Bowman et al. 2016)."""
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


def optimiser_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.Tensor],
                   grad_clip: float) -> None:
    """One gradient step on ``loss``, the gradient norm clipped to ``grad_clip`` (0: no clipping)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
    optimizer.step()


@dataclass
class Trainer:
    """What one model's training gives the epoch loop.

    ``batch_loss(index, draws, beta_t)``: the loss to minimise on the training windows ``index`` (KL weight
    ``beta_t``) and a 1-d tensor of
    its logged terms (reconstruction, KL[, auxiliary]); ``draws`` is None, or with ``draws_per_window`` one
    uniform number per training window drawn each epoch from the loop's generator (the surrogate's history
    dropout). ``validation(epoch)``: the mean terms on the validation windows (None: no validation windows).
    ``describe(train, val)``: the losses part of an epoch's log line. ``fused``: the fused Adam kernel.
    """

    model: nn.Module
    n_train: int
    batch_loss: Callable[[torch.Tensor, torch.Tensor | None, float], tuple[torch.Tensor, torch.Tensor]]
    validation: Callable[[int], np.ndarray] | None
    describe: Callable[[np.ndarray, np.ndarray], str]
    aux_weight: float = 0.0
    fused: bool = False
    draws_per_window: bool = False


def _score(terms: np.ndarray, beta_t: float, aux_weight: float) -> float:
    if len(terms) > 2:
        return terms[0] + aux_weight * terms[2] + beta_t * terms[1]
    return terms[0] + beta_t * terms[1]


def fit(trainer: Trainer, settings: dict[str, Any], generator: torch.Generator, *,
        log: Callable[[str], None]) -> pd.DataFrame:
    """The epoch loop of every model: shuffled mini-batches and optimiser steps, the validation terms, one
    history row and one log line per epoch, early stopping after ``patience`` epochs without improvement
    (after the KL warm-up); the model returns with the weights of its best epoch, in eval mode. A non-finite
    loss raises TrainingDiverged naming the epoch, the batch and the term."""
    s, model = settings, trainer.model
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, s, fused=trainer.fused)
    has_val = trainer.validation is not None
    rows, best = [], BestEpoch(s["kl_warmup_epochs"], s["patience"])
    for epoch in range(1, s["epochs"] + 1):
        beta_t = beta_at(s, epoch)
        started = time.perf_counter()
        train = _train_epoch(trainer, optimizer, params, s, epoch, beta_t, generator)
        model.eval()
        val = _validation(trainer, epoch, s["lr"], len(train))
        row = history_row(epoch, beta_t, train[0], train[1], val[0], val[1])
        rows.append(row)
        log_epoch(log, epoch, s["epochs"], beta_t, started, trainer.n_train, trainer.describe(train, val))
        score = _score(val, beta_t, trainer.aux_weight) if has_val else row["train_total"]
        if best.stop_after(epoch, score, model, log):
            break
    best.restore(model, log, "validation loss" if has_val else "training loss")
    model.eval()
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def _train_epoch(trainer: Trainer, optimizer: torch.optim.Optimizer, params: list[torch.Tensor],
                 s: dict[str, Any], epoch: int, beta_t: float, generator: torch.Generator) -> np.ndarray:
    """One pass over shuffled mini-batches; the window-weighted mean terms. The per-batch terms stay on the
    device and are read once per epoch (a read per batch would make a GPU wait for every step)."""
    n, bs = trainer.n_train, s["batch_size"]
    trainer.model.train()
    order = torch.randperm(n, generator=generator, device=generator.device)
    draws = torch.rand(n, generator=generator, device=generator.device) if trainer.draws_per_window else None
    losses, terms, sizes = [], [], []
    for start in range(0, n, bs):
        index = order[start:start + bs]
        loss, batch_terms = trainer.batch_loss(index, None if draws is None else draws[index], beta_t)
        optimiser_step(optimizer, loss, params, s["grad_clip"])
        losses.append(loss.detach())
        terms.append(batch_terms.detach())
        sizes.append(len(index))
    values = torch.stack(terms).double().cpu().numpy()
    finite = np.isfinite(values).all(axis=1) & np.isfinite(torch.stack(losses).double().cpu().numpy())
    if not finite.all():
        raise _diverged(epoch, values, int(np.flatnonzero(~finite)[0]), s["lr"], s["grad_clip"])
    sums = np.zeros(values.shape[1])
    for row, size in zip(values, sizes):   # in batch order, in float64
        sums += row * size
    return sums / n


def _diverged(epoch: int, values: np.ndarray, batch: int, lr: float, grad_clip: float) -> TrainingDiverged:
    """The error for the first batch whose loss is not finite."""
    terms = [name for name, v in zip(TERM_NAMES, values[batch]) if not np.isfinite(v)] or ["total"]
    clipping = (f"gradient clipping is already on (grad_clip = {grad_clip:g}), so lower it" if grad_clip > 0
                else "turn on gradient clipping (grad_clip)")
    return TrainingDiverged(
        f"training diverged: the {' and '.join(terms)} loss is not finite in epoch {epoch}, batch {batch} "
        f"(batch values: {values[batch].tolist()}); lower the learning rate (lr = {lr:g}), "
        f"{clipping}, or check the input windows for extreme values"
    )


def _validation(trainer: Trainer, epoch: int, lr: float, n_terms: int) -> np.ndarray:
    """Mean terms on the validation windows, NaN without them; raise if not finite."""
    if trainer.validation is None:
        return np.full(n_terms, math.nan)
    val = np.asarray(trainer.validation(epoch), dtype=np.float64)
    if not np.isfinite(val).all():
        raise TrainingDiverged(
            f"training diverged: the validation loss is not finite after epoch {epoch} "
            f"(terms {val.tolist()}); lower the learning rate (lr = {lr:g})")
    return val


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
