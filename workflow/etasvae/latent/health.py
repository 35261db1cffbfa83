"""VAE health on held-out windows: reconstruction, KL and active units at the posterior mean."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..fileio import to_jsonable
from ..models.files import ModelBundle, is_sequence
from ..models.mlp import kl_divergence, reconstruction_loss
from ..models.sequence_training import health as sequence_health
from .metrics import ACTIVE_THRESHOLD, activity_and_kl
from ..threads import one_thread


HEALTH_MAX_WINDOWS = 5_000
"""Held-out windows the health is computed on at most: above it a seeded uniform subsample of that many, so
that its time and memory stay bounded (three decoder passes per window for a sequence VAE; the
embed job's memory grows with the windows it holds: benchmarks/RESULTS.md has the 10x data's peaks).
The figures are means per window, whose subsampling error is about their spread over windows /
sqrt(HEALTH_MAX_WINDOWS) (``benchmarks/health_subsample.py``). The default run (at most ~600 held-out
windows per model) is far below it."""


@torch.no_grad()
@one_thread
def model_health(bundle: ModelBundle, X_heldout: np.ndarray, origin: np.ndarray | None = None, *,
                 max_windows: int = HEALTH_MAX_WINDOWS, seed: int = 0) -> dict[str, Any]:
    """VAE health on held-out windows, at z = posterior mean (deterministic): mean reconstruction loss per
    window in the model's own loss units (summed over features), mean squared error per feature in the
    model's scaled feature space (standardised for mse / gaussian_nll), mean KL per window, activity and
    active units (as latent_metrics, over the held-out windows). Sequence VAEs: ``models.sequence_training.health`` (NLL with
    encoded z against z from the prior; ``origin`` = first-event positions of the windows).

    More than ``max_windows`` windows: a uniform subsample of that many (generator seeded with ``seed``);
    ``n_windows`` counts the windows used and ``n_windows_heldout`` all of them."""
    n_all = len(X_heldout)
    if n_all > max_windows:
        keep = np.sort(np.random.default_rng(seed).choice(n_all, max_windows, replace=False))
        X_heldout, origin = X_heldout[keep], None if origin is None else origin[keep]
    out = _health(bundle, X_heldout, origin)
    if n_all > max_windows:
        out["n_windows_heldout"] = int(n_all)
    return out


def _health(bundle: ModelBundle, X_heldout: np.ndarray, origin: np.ndarray | None) -> dict[str, Any]:
    model = bundle.model.eval()
    if is_sequence(model):
        return to_jsonable(sequence_health(model, X_heldout, origin))
    X = np.asarray(X_heldout, dtype=np.float32)
    d = model.latent_dim
    if len(X) == 0:
        return to_jsonable({"n_windows": 0, "loss": model.loss, "recon_loss": math.nan, "mse_scaled": math.nan,
                        "kl_per_window": math.nan, "n_active": 0, "activity": [math.nan] * d})
    dev = next(model.parameters()).device
    x = torch.from_numpy(bundle.transform.transform(X)).to(dev)
    mu, logvar = model.encode(x)
    out = model.decode(mu)
    recon = reconstruction_loss(model, out, x).mean().item()
    mse = (model.likelihood_mean(out) - x).pow(2).mean().item()
    kl = kl_divergence(mu, logvar).mean().item()
    activity, _ = activity_and_kl(mu.cpu().numpy().astype(np.float64), logvar.cpu().numpy().astype(np.float64))
    return to_jsonable({
        "n_windows": int(len(X)), "loss": model.loss, "feature_scaling": bundle.transform.kind,
        "recon_loss": recon, "mse_scaled": mse, "kl_per_window": kl,
        "activity": activity.tolist(), "n_active": int((activity > ACTIVE_THRESHOLD).sum()),
    })
