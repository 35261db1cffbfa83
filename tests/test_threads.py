"""A model's bytes do not depend on the thread count its job runs with (etasvae.threads): a laptop's run with
one thread and a SLURM job with two cpus train, sample and encode the same model."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from etasvae.features import build_windows
from etasvae.models.files import encode_windows, sample_windows
from etasvae.models.sequence import window_origins
from etasvae.models.train import train_vae

from etas_samples import MC, clustered_catalog

SPEC = {"representation": "event", "length": 16, "stride": 8, "mc": MC, "xy_scale_km": 5.0, "min_dt_days": 1e-6,
        "region_km": [0.0, 100.0, 0.0, 100.0], "mmax": 7.0}
SETTINGS = {"latent_dim": 3, "hidden": [32], "beta": 1.0, "kl_warmup_epochs": 0, "lr": 3e-3, "optimizer": "adam",
            "loss": "channels", "epochs": 3, "batch_size": 32, "patience": 0, "grad_clip": 5.0, "seed": 0}


@pytest.fixture(scope="module")
def windows():
    catalogs = [(r, clustered_catalog(seed=20 + r, duration=300.0, K=0.45)) for r in range(2)]
    table, X = build_windows(catalogs, SPEC, heldout_replicates=[1], validation_fraction=0.25)
    return table, X


def _bytes(state: dict) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _train_with(threads: int, decoder: str, windows):
    table, X = windows
    role = table["role"].to_numpy()
    origin = window_origins(table)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        result = train_vae(X[role == "train"], X[role == "validation"], {**SETTINGS, "decoder": decoder},
                           log=lambda _: None, spec=SPEC, origin_train=origin[role == "train"],
                           origin_val=origin[role == "validation"])
        assert torch.get_num_threads() == threads   # the caller's setting is restored
        return result, X[role == "heldout"], origin[role == "heldout"]
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("decoder", ["autoregressive", "mlp"])
def test_training_with_one_and_with_two_threads_gives_the_same_bytes(decoder, windows):
    one, X_h, o_h = _train_with(1, decoder, windows)
    two, _, _ = _train_with(2, decoder, windows)
    # Bit-for-bit, not approximately: a float sum reduced in another order differs in its last digits, which
    # training then carries into every weight.
    assert one.history.to_csv(index=False) == two.history.to_csv(index=False)
    assert _bytes(one.model.state_dict()) == _bytes(two.model.state_dict())
