"""Training a VAE of any kind from windows: ``train_vae`` checks the settings, picks the device and hands
the windows to the MLP VAE's trainer or, for loss ``channels``, the sequence VAE's."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..threads import one_thread
from .mlp import train_mlp_vae
from .sequence_training import train_sequence_vae
from .training import TrainResult, check_settings, device_settings, pick_device


@one_thread
def train_vae(X_train: np.ndarray, X_val: np.ndarray | None, settings: dict[str, Any], *,
              log: Callable[[str], None] = print, device: str | None = None,
              spec: dict[str, Any] | None = None,
              origin_train: np.ndarray | None = None, origin_val: np.ndarray | None = None,
              intensity_globals: dict[str, float] | None = None) -> TrainResult:
    """Fit the feature transform on ``X_train`` and train a VAE; return the model with its best weights.

    Early stopping: after the KL warm-up, the epoch with the lowest validation loss (training loss if there
    are no validation windows) is remembered; training stops after ``patience`` epochs without improvement
    (0 = run all epochs) and the model returns with the remembered weights (``training.fit``).
    A non-finite loss raises TrainingDiverged. On CPU the same seed gives the same history, whatever the
    thread count (one thread for the arithmetic: etasvae.threads).
    Loss ``channels`` trains a sequence VAE (``etasvae.models.sequence``): it needs the window ``spec`` (with
    ``region_km``) and takes the first events' positions (n, 2) km (``sequence.window_origins`` of the table);
    ``intensity_globals`` holds its autoregressive intensity at a whole-catalog ETAS fit (``intensity_fit``).
    """
    s = check_settings(settings)
    dev = pick_device(device)
    s = device_settings(s, dev, len(X_train))
    if s["loss"] != "channels":
        return train_mlp_vae(X_train, X_val, s, log=log, dev=dev)
    if spec is None:
        raise ValueError("train_vae: loss 'channels' needs the window spec (spec=...)")
    return train_sequence_vae(X_train, X_val, s, spec, origin_train, origin_val, log=log, dev=dev,
                              intensity_globals=intensity_globals)
