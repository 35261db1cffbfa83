"""Residual edge deficit of the simulated region against the model's expected count, per margin_km.

    PYTHONPATH=workflow python benchmarks/edge_deficit.py [--replicates 400] [--margins 0 25 100] [--K 0.2]
        [--q 1.5] [--D 0.5] [--no-prune-too]

The default config's middle point (mu 5/day on 100 x 100 km, K 0.2 so n = 0.57, alpha 1.5, c 0.01 d, p 1.1,
D 0.5 km^2, q 1.5, gamma 1, b 1, Mc 2.5, Mmax 7.5; 730 days after a 365-day burn-in) is simulated
``--replicates`` times per margin (the same seeds for every margin); printed: the mean in-region count, its
relative deficit against ``expected_count`` (which assumes no spatial edge loss) and the standard error of
that deficit from the replicates' spread. With q = 1.5 the fraction of aftershocks farther than r from their
parent falls only as sqrt(sigma)/r, so a margin shrinks the deficit slowly.

``--no-prune-too`` also simulates every margin without pruning (``simulate_etas(prune=False)``, same seeds)
and prints both, with the simulated events per catalog: the pruning rule's bias and what it saves.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from etasvae.params import ETASParams
from etasvae.simulate import expected_count, simulate_etas

REGION = (0.0, 100.0, 0.0, 100.0)
DURATION, BURN_IN = 730.0, 365.0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=400)
    parser.add_argument("--margins", type=float, nargs="+", default=[0.0, 25.0, 100.0])
    parser.add_argument("--K", type=float, default=0.2)
    parser.add_argument("--q", type=float, default=1.5)
    parser.add_argument("--D", type=float, default=0.5)
    parser.add_argument("--no-prune-too", action="store_true", help="also simulate without pruning")
    args = parser.parse_args(argv)
    params = ETASParams(mu=5.0, K=args.K, alpha=1.5, c=0.01, p=1.1, D=args.D, q=args.q, gamma=1.0, b=1.0, mc=2.5,
                        mmax=7.5)
    expected = expected_count(params, DURATION, BURN_IN)
    print(f"n = {params.branching_ratio():.3f}, q = {args.q:g}, D = {args.D:g} km^2: expected count {expected:.1f} in "
          f"{DURATION:g} days (burn-in {BURN_IN:g}); {args.replicates} replicates per margin")
    for margin in args.margins:
        for prune in (True, False) if args.no_prune_too else (True,):
            counts, simulated = [], 0
            for seed in range(args.replicates):
                stats = {}
                counts.append(len(simulate_etas(params, duration=DURATION, region=REGION, rng=np.random.default_rng(seed),
                                                burn_in=BURN_IN, margin=margin, prune=prune, stats=stats)))
                simulated += stats["simulated"] - stats["pruned"]
            counts = np.array(counts, dtype=float)
            deficit = counts.mean() / expected - 1.0
            se = counts.std(ddof=1) / math.sqrt(len(counts)) / expected
            label = f" {'pruned' if prune else 'unpruned':8s}" if args.no_prune_too else ""
            print(f"margin {margin:5g} km{label}: mean count {counts.mean():8.1f}, deficit {100 * deficit:+.2f} % "
                  f"(standard error {100 * se:.2f} %), {simulated / len(counts):9.1f} events triggering per catalog")


if __name__ == "__main__":
    main()
