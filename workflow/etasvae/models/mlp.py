"""The fully connected VAE over windows (docs/design.md §5).

Encoder: Linear+ReLU layers (``hidden``) to two linear heads, mean and log-variance of q(z|x) = N(mu, diag
exp(logvar)). Decoder: Linear+ReLU layers (``hidden`` reversed) to one output per feature, whose meaning
depends on the reconstruction loss (all in the transformed feature space, see ``training.transform_kind``):

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
summed over latent units); both averaged over the windows of a batch, beta_t as ``training.beta_at``.

Drawing from the decoder likelihood (``sample_windows(mode="draw")``) needs a variance for "mse": the
per-feature mean squared reconstruction residual on the training windows, measured after training and
stored in the model (buffer ``residual_var``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..features import FeatureTransform
from .training import LOSSES, Trainer, TrainResult, fit, mlp_layers, transform_kind

# Learned Gaussian log-variances are clamped to this range (standardised units) so a perfectly fitted
# feature cannot drive the NLL to -inf.
LOGVAR_MIN, LOGVAR_MAX = -9.0, 9.0
EVAL_BATCH = 8192


class VAE(nn.Module):
    """Fully connected VAE: encoder -> (mu, logvar) heads; decoder -> one output per feature."""

    kind = "mlp"

    def __init__(self, n_features: int, latent_dim: int, hidden: list[int], loss: str = "mse"):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"VAE: unknown loss {loss!r}")
        self.n_features, self.latent_dim, self.hidden, self.loss = n_features, latent_dim, list(hidden), loss
        self.encoder = nn.Sequential(*mlp_layers([n_features, *hidden]))
        last = hidden[-1] if hidden else n_features
        # The mean and log-variance heads as one layer (one matrix product): outputs [mu | logvar].
        self.posterior_head = nn.Linear(last, 2 * latent_dim)
        back = list(reversed(hidden))
        self.decoder = nn.Sequential(*mlp_layers([latent_dim, *back]),
                                     nn.Linear(back[-1] if back else latent_dim, n_features))
        # Gaussian NLL: learned per-feature log-variance (a parameter, not a function of z).
        self.out_logvar = nn.Parameter(torch.zeros(n_features), requires_grad=(loss == "gaussian_nll"))
        # MSE: residual variance per feature, measured on the training windows after training ("draw" mode).
        self.register_buffer("residual_var", torch.ones(n_features))

    def architecture(self) -> dict[str, Any]:
        """The constructor's arguments, as the model file stores them (an MLP VAE's has no ``kind``)."""
        return {"n_features": self.n_features, "latent_dim": self.latent_dim, "hidden": list(self.hidden),
                "loss": self.loss}

    @classmethod
    def from_architecture(cls, arch: dict[str, Any]) -> "VAE":
        return cls(arch["n_features"], arch["latent_dim"], arch["hidden"], arch["loss"])

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

    # --- the interface of etasvae.models.files: raw windows in, raw windows out

    def encode_windows(self, X: np.ndarray, origin: np.ndarray | None,
                       transform: FeatureTransform) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of raw windows X (``origin`` is not read: an MLP VAE places no events)."""
        return self.encode(torch.from_numpy(transform.transform(X)).to(self.residual_var.device))

    def sample_windows(self, n: int, seed: int, mode: str, transform: FeatureTransform) -> tuple[np.ndarray, np.ndarray]:
        """n raw windows with z ~ N(0, I): the decoder's mean ("mean") or one draw ("draw"), and the z."""
        dev = self.residual_var.device
        generator = torch.Generator(device=dev).manual_seed(int(seed))
        out, latents = [], []
        for i in range(0, n, EVAL_BATCH):
            m = min(EVAL_BATCH, n - i)
            z = torch.randn(m, self.latent_dim, generator=generator, device=dev)
            raw = self.decode(z)
            x = self.likelihood_mean(raw) if mode == "mean" else self.likelihood_draw(raw, generator)
            out.append(x.cpu().numpy())
            latents.append(z.cpu().numpy())
        Z = np.concatenate(out) if out else np.zeros((0, self.n_features), np.float32)
        return transform.inverse(Z), np.concatenate(latents) if latents else np.zeros((0, self.latent_dim), np.float32)


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


def batch_losses(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean reconstruction loss, mean KL) per window of a batch."""
    out, mu, logvar = model(x)
    if model.loss == "mse":  # the same value as reconstruction_loss(...).mean(), in one fused kernel
        recon = F.mse_loss(out, x, reduction="sum") / len(x)
    else:
        recon = reconstruction_loss(model, out, x).mean()
    return recon, kl_divergence(mu, logvar).mean()


@torch.no_grad()
def mean_losses(model: VAE, X: torch.Tensor) -> torch.Tensor:
    """(mean recon, mean KL) over all windows of X, on the device (no sync)."""
    total = torch.zeros(2, device=X.device)
    for i in range(0, len(X), EVAL_BATCH):
        xb = X[i:i + EVAL_BATCH]
        recon, kl = batch_losses(model, xb)
        total += torch.stack([recon, kl]) * len(xb)
    return total / max(len(X), 1)


def train_mlp_vae(X_train: np.ndarray, X_val: np.ndarray | None, s: dict[str, Any], *,
                  log: Callable[[str], None], dev: torch.device) -> TrainResult:
    """Train an MLP VAE (settings as ``training.check_settings`` and ``device_settings`` give them)."""
    transform, Xt, Xv = _training_tensors(X_train, X_val, s, dev)
    torch.manual_seed(s["seed"])
    generator = torch.Generator(device=dev).manual_seed(s["seed"])
    model = VAE(Xt.shape[1], s["latent_dim"], s["hidden"], s["loss"]).to(dev)
    _init_output_bias(model, Xt)
    log(f"training VAE on {dev} ({torch.get_num_threads()} threads): {len(Xt)} training / "
        f"{len(Xv) if Xv is not None else 0} validation windows x {Xt.shape[1]} features, latent {s['latent_dim']}, "
        f"hidden {s['hidden']}, loss {s['loss']}, {s['optimizer']} lr {s['lr']:g}, batch {s['batch_size']}, "
        f"beta {s['beta']:g}")

    def batch_loss(index, _draws, beta_t):
        recon, kl = batch_losses(model, Xt[index])
        return recon + beta_t * kl, torch.stack((recon, kl))

    trainer = Trainer(
        model, len(Xt), batch_loss,
        validation=None if Xv is None else (lambda epoch: mean_losses(model, Xv).tolist()),
        describe=lambda tr, va: f"train recon {tr[0]:.4g} KL {tr[1]:.4g}  val recon {va[0]:.4g} KL {va[1]:.4g}",
        # The fused Adam kernel (CPU and CUDA) updates all parameters in one call.
        fused=dev.type in ("cpu", "cuda"))
    history = fit(trainer, s, generator, log=log)
    if s["loss"] == "mse":
        model.residual_var.copy_(_residual_variance(model, Xt))
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
    for i in range(0, len(X), EVAL_BATCH):
        xb = X[i:i + EVAL_BATCH]
        mu, _ = model.encode(xb)
        total += (model.decode(mu) - xb).pow(2).sum(dim=0)
    return (total / len(X)).clamp_min(1e-6)
