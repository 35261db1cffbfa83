"""Recovery study of the ETAS inversion: z-scores of estimates against the truth across simulated replicates.

    PYTHONPATH=workflow python benchmarks/recovery_invert.py [--replicates 20] [--models temporal space-time windows]

For each parameter set (moderate; p close to 1; branching ratio near 0.9) and each fit (temporal and
space-time model on single catalogs; the temporal joint fit over 5 short windows), prints per parameter the
mean and standard deviation of z across replicates and the mean of z^2, with the 99.9 % range that these take
when the reported standard errors are right (mean: +-3.3/sqrt(R); mean z^2: chi^2_R/R quantiles).
Positive parameters' z are on the log scale (etasvae.inversion.recovery_zscores). The same sets, with fewer
replicates, are the test tests/test_inversion.py::test_recovery_within_standard_errors.
"""

from __future__ import annotations

import argparse
import math
import time

import pandas as pd
import torch
from scipy import stats

from etasvae.inversion import recovery_zscores
from etasvae.params import ETASParams

BASE = dict(mu=1.0, K=0.3, alpha=1.0, c=0.01, p=1.3, D=0.1, q=2.0, gamma=0.5, b=1.0, mc=2.5, mmax=7.0)
SETS = [
    ("moderate (n 0.53, p 1.3)", dict(), 200.0),
    ("p near 1 (n 0.53, p 1.1)", dict(p=1.1, mu=2.0), 400.0),
    ("n 0.88 (p 1.2)", dict(K=0.5, p=1.2), 60.0),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=["temporal", "space-time", "windows"])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every duration (catalog size)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    r = args.replicates
    lo, hi = stats.chi2.ppf([5e-4, 1 - 5e-4], r) / r
    print(f"R = {r} replicates; if the errors are right: |mean z| < {3.29 / math.sqrt(r):.2f}, "
          f"mean z^2 in [{lo:.2f}, {hi:.2f}] (99.9 %)")
    pd.set_option("display.width", 200)
    for model in args.models:
        for i, (label, kw, duration) in enumerate(SETS):
            params = ETASParams(**{**BASE, **kw})
            start = time.perf_counter()
            if model == "windows":
                z = recovery_zscores(params, model="temporal", replicates=r, duration=duration * args.scale / 5,
                                     n_windows=5, seed=100 + i, n_starts=1)
            else:
                z = recovery_zscores(params, model=model, replicates=r, duration=duration * args.scale,
                                     seed=100 + i, n_starts=1)
            table = z.groupby("parameter", sort=False)["z"].agg(
                mean="mean", sd="std", mean_z2=lambda s: (s**2).mean(), max_abs=lambda s: s.abs().max())
            print(f"\n{model} | {label} | {z['n_target'].mean():.0f} events per fit | "
                  f"{time.perf_counter() - start:.0f} s")
            print(table.round(2).T.to_string())


if __name__ == "__main__":
    main()
