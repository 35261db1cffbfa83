"""Model files, and using a model: save, load, encode, sample, reconstruct.

One format for every model (``MODEL_FORMAT``): a torch.save of tensors and plain values, loadable with
weights_only=True, holding the architecture (``kind`` names the class; an MLP VAE's has none), the state
dict, the settings, the feature transform, the window spec, the training history and the model's extras
(the surrogate's conditioning plan). A model class gives ``architecture()``, ``from_architecture``,
``encode_windows(X, origin, transform)`` and ``sample_windows(n, seed, mode, transform)``; the functions
here are the same for every kind.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import schema_default
from ..features import FeatureTransform
from ..fileio import atomic_write, plain
from ..threads import one_thread
from .conditional import ConditionalSequenceVAE
from .mlp import VAE
from .sequence import SequenceVAE
from .training import HISTORY_COLUMNS, TrainResult, device_of, pick_device

MODEL_FORMAT = "etasvae-vae-2"
KINDS: dict[str, type[nn.Module]] = {"mlp": VAE, SequenceVAE.kind: SequenceVAE,
                                     ConditionalSequenceVAE.kind: ConditionalSequenceVAE}
ENCODE_BATCH = 8192


@dataclass
class ModelBundle:
    model: nn.Module
    settings: dict[str, Any]
    transform: FeatureTransform
    spec: dict[str, Any]
    history: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)


def save_model(path: str | os.PathLike, result: TrainResult, settings: dict[str, Any], spec: dict[str, Any],
               extra: dict[str, Any] | None = None) -> None:
    """One file, written atomically; the same model gives the same bytes."""
    model = result.model
    payload = {
        "format": MODEL_FORMAT,
        "architecture": plain(model.architecture()),
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
        raise ValueError(f"{path}: not an etasvae model file of this version (format {payload.get('format')!r}, "
                         f"expected {MODEL_FORMAT!r}): retrain it")
    arch = payload["architecture"]
    kind = arch.get("kind", "mlp")
    if kind not in KINDS:
        raise ValueError(f"{path}: unknown model kind {kind!r} (known: {sorted(KINDS)})")
    model = KINDS[kind].from_architecture(arch)
    state = payload["state_dict"]
    for name in getattr(model, "DEFAULTED_BUFFERS", ()):
        state.setdefault(name, getattr(model, name).clone())
    model.load_state_dict(state)
    model.to(pick_device(device)).eval()
    return ModelBundle(model=model, settings=payload["settings"],
                       transform=FeatureTransform.from_dict(payload["transform"]), spec=payload["spec"],
                       history=pd.DataFrame(payload["history"], columns=HISTORY_COLUMNS),
                       extra=payload["extra"])


def is_sequence(model: nn.Module) -> bool:
    """A sequence VAE (loss ``channels``, etasvae.models.sequence) rather than the MLP VAE."""
    return getattr(model, "kind", "") == SequenceVAE.kind


@torch.no_grad()
@one_thread
def encode_windows(bundle: ModelBundle, X: np.ndarray, origin: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and log-variance of each window: two float32 arrays (n, latent_dim).
    ``origin``: first-event positions (n, 2) km, read by sequence VAEs (the region's centre where None)."""
    model = bundle.model.eval()
    X = np.asarray(X)
    parts = [model.encode_windows(X[i:i + ENCODE_BATCH], None if origin is None else origin[i:i + ENCODE_BATCH],
                                  bundle.transform)
             for i in range(0, len(X), ENCODE_BATCH)]
    if not parts:
        empty = np.zeros((0, model.latent_dim), np.float32)
        return empty, empty.copy()
    mu = torch.cat([p[0] for p in parts]).cpu().numpy()
    logvar = torch.cat([p[1] for p in parts]).cpu().numpy()
    return mu, logvar


@torch.no_grad()
@one_thread
def sample_windows(bundle: ModelBundle, n: int, *, seed: int, mode: str | None = None, return_latent: bool = False):
    """n synthetic windows in raw feature space: z from the prior -> decoder -> its mean ("mean") or one draw
    from the decoder likelihood ("draw") -> inverse feature transform. Float32 (n, n_features); with
    ``return_latent`` also the z drawn, float32 (n, latent_dim). ``mode=None`` takes the configuration's
    default (``sample.mode`` in the schema). A sequence VAE always draws, event by event (a sequence has no
    useful mean)."""
    mode = schema_default("sample.mode") if mode is None else mode
    if mode not in ("mean", "draw"):
        raise ValueError(f"sample_windows: mode must be 'mean' or 'draw', got {mode!r}")
    X, z = bundle.model.eval().sample_windows(int(n), int(seed), mode, bundle.transform)
    return (X, z) if return_latent else X


@torch.no_grad()
@one_thread
def reconstruct_windows(bundle: ModelBundle, X: np.ndarray) -> np.ndarray:
    """Decoder mean at the posterior mean (z = mu) of each window, in raw feature space (an MLP VAE's)."""
    model = bundle.model.eval()
    Z = torch.from_numpy(bundle.transform.transform(X)).to(device_of(model))
    out = [model.likelihood_mean(model.decode(model.encode(Z[i:i + ENCODE_BATCH])[0])).cpu().numpy()
           for i in range(0, len(Z), ENCODE_BATCH)]
    Zhat = np.concatenate(out) if out else np.zeros((0, model.n_features), np.float32)
    return bundle.transform.inverse(Zhat)
