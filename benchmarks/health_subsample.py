"""The held-out health of a model on every held-out window against its capped, subsampled value.

    python benchmarks/health_subsample.py MODEL.pt WINDOWS.parquet [--seeds 5] [--cap N]

``latent.model_health`` computes the health on at most ``HEALTH_MAX_WINDOWS`` held-out windows (a seeded
uniform subsample). This prints each number on every window, on the subsample of each of ``--seeds`` seeds,
and the spread of the subsampled values (their standard deviation over seeds): the sampling error the cap
introduces, to compare with the difference between the capped and the full value.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from etasvae.features import read_windows
from etasvae.latent.health import HEALTH_MAX_WINDOWS, model_health
from etasvae.models.files import load_model
from etasvae.models.sequence import window_origins

KEYS = ("nll_encoded_mean_z", "nll_encoded_sampled_z", "nll_prior_z", "prior_minus_encoded_nats", "kl_per_window",
        "recon_loss")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("windows")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cap", type=int, default=HEALTH_MAX_WINDOWS)
    args = parser.parse_args()
    bundle = load_model(args.model)
    table, X, _, _ = read_windows(args.windows)
    held = table["role"].to_numpy() == "heldout"
    origin = window_origins(table)
    Xh, Oh = X[held], None if origin is None else origin[held]
    started = time.process_time()
    full = model_health(bundle, Xh, Oh, max_windows=len(Xh))
    print(f"{len(Xh)} held-out windows, cap {args.cap}; every window: {time.process_time() - started:.1f} CPU s")
    capped = [model_health(bundle, Xh, Oh, max_windows=args.cap, seed=s) for s in range(args.seeds)]
    keys = [k for k in KEYS if k in full]
    print(f"{'number':<28}{'every window':>14}{'capped, seed 0':>16}{'sd over seeds':>15}{'|diff| / sd':>13}")
    for k in keys:
        values = np.array([c[k] for c in capped])
        sd = values.std(ddof=1)
        print(f"{k:<28}{full[k]:>14.3f}{values[0]:>16.3f}{sd:>15.3f}{abs(values[0] - full[k]) / sd:>13.2f}")


if __name__ == "__main__":
    main()
