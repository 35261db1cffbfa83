"""Training throughput of the default VAE: windows per second and peak memory.

    PYTHONPATH=workflow python benchmarks/bench_train.py [--windows 100000] [--epochs 3] [--threads 2]

Synthetic random windows (throughput does not depend on the values): 256 features (64 events x 4 channels),
hidden [256, 128], latent 8, batch 256, Adam, MSE. The first epoch is reported apart (warm-up); the figure
is the median of the later epochs. Peak memory is the process's maximum resident set size (ru_maxrss).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

import numpy as np
import torch

from etasvae.models.train import train_vae


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--grad-clip", type=float, default=0.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reference", action="store_true",
                        help="also time a bare loop (same layers, Adam, no bookkeeping) in this process: on a "
                             "shared machine the ratio of the two is steadier than either figure")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.windows, args.features), dtype=np.float32)
    X_val = X[: args.windows // 10]
    settings = {"latent_dim": 8, "hidden": [256, 128], "beta": 1.0, "lr": 1e-3, "optimizer": "adam",
                "loss": "mse", "epochs": args.epochs, "batch_size": args.batch_size, "grad_clip": args.grad_clip,
                "seed": 0}
    stamps: list[float] = []

    def log(line: str) -> None:
        if line.startswith("epoch"):
            stamps.append(time.perf_counter())
        print(line, file=sys.stderr)

    started = time.perf_counter()
    train_vae(X, X_val, settings, log=log, device=args.device, threads=args.threads)
    # Each epoch's log line is written after its validation pass; per-epoch seconds include that pass.
    epoch_seconds = np.diff([started, *stamps])
    rates = args.windows / epoch_seconds
    steady = rates[1:] if len(rates) > 1 else rates
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.windows} windows x {args.features} features, batch {args.batch_size}")
    print(f"first epoch: {rates[0]:,.0f} windows/s; later epochs (median): {statistics.median(steady):,.0f} windows/s")
    print(f"peak resident memory: {peak_mib:,.0f} MiB")
    if args.reference:
        bare = bare_loop_rates(X, args.epochs, args.batch_size, torch.device(args.device))
        print(f"bare loop, later epochs (median): {statistics.median(bare[1:] or bare):,.0f} windows/s "
              "(no validation pass, no loss bookkeeping)")


def bare_loop_rates(X: np.ndarray, epochs: int, batch_size: int, device: torch.device) -> list[float]:
    """Windows/s per epoch of the plainest loop over the same architecture: the ceiling for train_vae."""
    from torch import nn

    torch.manual_seed(0)
    n, f = X.shape
    Xt = torch.from_numpy(X).to(device)
    enc = nn.Sequential(nn.Linear(f, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 16)).to(device)
    dec = nn.Sequential(nn.Linear(8, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, f)).to(device)
    optimizer = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3, fused=True)
    rates = []
    for _ in range(epochs):
        started = time.perf_counter()
        perm = torch.randperm(n, device=device)
        for i in range(0, n, batch_size):
            xb = Xt[perm[i:i + batch_size]]
            mu, logvar = enc(xb).chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            recon = (dec(z) - xb).pow(2).sum(dim=1).mean()
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1).mean()
            optimizer.zero_grad(set_to_none=True)
            (recon + kl).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(n / (time.perf_counter() - started))
    return rates


if __name__ == "__main__":
    main()
