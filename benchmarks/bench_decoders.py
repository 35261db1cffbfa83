"""Training windows/s and sampling events/s of the sequence VAE (loss channels) for each of its decoders.

    PYTHONPATH=workflow python benchmarks/bench_decoders.py [--windows 2048] [--epochs 3] [--threads 2] [--device cpu]

Windows of 64 events with plausible random channels (log10 dt ~ N(-1, 1), m - Mc ~ Exp(b = 1), positions
within 30 km of the first event in a 100 km region): throughput does not depend on the values. Latent 8,
encoder [256, 128], batch 64, Adam, as the default config. For each decoder: ``train_vae`` (the first epoch
reported apart as warm-up, the figure is the median of the later ones; each epoch includes a validation
pass over a tenth of the windows), the bare loop (forward, backward, Adam step of the same model, no
validation or bookkeeping: the ceiling for train_vae), and sampling (events/s of ``sample_features``).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time

import numpy as np
import torch

from etasvae.models.sequence import Batch, SequenceVAE
from etasvae.models.sequence_training import AUX_WEIGHT
from etasvae.models.train import train_vae

EPOCH_RATE = re.compile(r"^epoch .*\(([\d,]+) windows/s\)$")
SPEC = {"representation": "event", "length": 64, "stride": 32, "mc": 2.5, "xy_scale_km": 5.0,
        "min_dt_days": 1e-6, "region_km": [0.0, 100.0, 0.0, 100.0]}


def windows(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    L = SPEC["length"]
    V = np.empty((n, L, 4), np.float32)
    V[..., 0] = rng.normal(-1.0, 1.0, (n, L))
    V[..., 1] = rng.exponential(1.0 / math.log(10.0), (n, L))
    offset = rng.uniform(-30.0, 30.0, (n, L, 2))
    offset[:, 0] = 0.0
    origin = rng.uniform(30.0, 70.0, (n, 2)).astype(np.float32)
    V[..., 2:] = np.arcsinh(offset / SPEC["xy_scale_km"])
    return V.reshape(n, 4 * L), origin


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sample", type=int, default=1024, help="windows drawn for the sampling figure")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X, O = windows(args.windows, rng)
    Xv, Ov = windows(args.windows // 10, rng)
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.windows} windows of {SPEC['length']} events, batch 64")
    for decoder in ("mlp", "autoregressive", "gru_lognormal"):
        settings = {"decoder": decoder, "loss": "channels", "latent_dim": 8, "hidden": [256, 128], "beta": 1.0,
                    "lr": 1e-3, "optimizer": "adam", "epochs": args.epochs, "batch_size": 64, "grad_clip": 5.0,
                    "seed": 0}
        lines: list[str] = []
        result = train_vae(X, Xv, settings, log=lines.append, device=args.device, spec=SPEC, origin_train=O,
                           origin_val=Ov)
        print("\n".join(lines), file=sys.stderr)
        # each epoch line ends with its own rate (training and validation pass): "(1,234 windows/s)"
        rates = [float(m.group(1).replace(",", "")) for m in map(EPOCH_RATE.search, lines) if m]
        bare = bare_loop_rates(result.model, X, O, args.epochs, torch.device(args.device))
        model = result.model.eval()
        model.sample_features(64, seed=0)                                   # warm-up
        t0 = time.perf_counter()
        model.sample_features(args.sample, seed=1)
        events_per_s = args.sample * SPEC["length"] / (time.perf_counter() - t0)
        print(f"{decoder:>14}: train_vae {statistics.median(rates[1:] if len(rates) > 1 else rates):,.0f} windows/s "
              f"(first epoch {rates[0]:,.0f}); bare loop {statistics.median(bare[1:] or bare):,.0f} windows/s; "
              f"sampling {events_per_s:,.0f} events/s ({args.sample} windows)")


def bare_loop_rates(model: SequenceVAE, X: np.ndarray, O: np.ndarray, epochs: int, device: torch.device) -> list[float]:
    """Windows/s per epoch of the plainest loop over the same model (forward, backward, Adam step)."""
    model = model.to(device).train()
    Xt, Ot = torch.from_numpy(X).to(device), torch.from_numpy(O).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    rates = []
    for _ in range(epochs):
        started = time.perf_counter()
        for i in range(0, len(Xt), 64):
            xb, ob = Xt[i:i + 64], Ot[i:i + 64]
            nll, aux, kl_term, _ = model.training_terms(Batch(xb, ob, model.spec))
            optimizer.zero_grad(set_to_none=True)
            (nll + AUX_WEIGHT * aux + kl_term).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(len(Xt) / (time.perf_counter() - started))
    return rates


if __name__ == "__main__":
    main()
