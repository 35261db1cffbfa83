"""Recovery study of the ETAS inversion: z-scores of estimates against the truth across simulated replicates.

    PYTHONPATH=workflow python benchmarks/recovery_invert.py [--replicates 20]
        [--models temporal space-time windows] [--windows 5 20] [--score-replicates 1000] [--signed-roots]

For each parameter set (moderate; p close to 1; branching ratio near 0.9) and each fit (temporal and
space-time model on single catalogs; the temporal joint fit over short windows, the single catalog's span cut
into 5 windows and, with ``--windows``, that many windows of the same length), prints per parameter the mean
and standard deviation of z across replicates, the mean of z^2, and the median estimate against the truth,
with the 99.9 % range that the mean and the mean z^2 take when the reported standard errors are right
(mean: +-3.3/sqrt(R); mean z^2: chi^2_R/R quantiles). Positive parameters' z are on the log scale
(recovery_study.recovery_zscores). The same sets, with fewer replicates, are the tests
tests/test_inversion.py::test_recovery_within_standard_errors and ::test_joint_window_fit_recovers_parameters.

With ``--signed-roots``, also the profile likelihood's signed root r at the truth (etasvae.inversion.
signed_root, one refit per parameter): mean r, sd, mean r^2 per parameter, beside the Wald z (log scale for
positive parameters) and z_natural (the Wald z on the natural scale). r is N(0, 1) at the truth up to
O(1/sqrt(N)) whatever the parametrisation, so it holds where the Wald z fails (p close to 1).

Then, per set, the score check of the joint window likelihood: the gradient of the exact log-likelihood at
the true parameters has mean zero for any number of windows when the likelihood is right (the test
::test_joint_window_likelihood_has_zero_mean_score_at_the_truth, with fewer replicates). It tells a wrong
likelihood (score off zero) from finite-sample behaviour of the estimate (score fine, z-scores off).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
from scipy import stats

from etasvae.inversion import _build, _hessian, _Likelihood, _to_theta, param_names, window_sequences
from recovery_study import recovery_zscores
from etasvae.params import ETASParams
from etasvae.simulate import simulate_etas

BASE = dict(mu=1.0, K=0.3, alpha=1.0, c=0.01, p=1.3, D=0.1, q=2.0, gamma=0.5, b=1.0, mc=2.5, mmax=7.0)
SETS = [
    ("moderate (n 0.53, p 1.3)", dict(), 200.0),
    ("p near 1 (n 0.53, p 1.1)", dict(p=1.1, mu=2.0), 400.0),
    ("n 0.88 (p 1.2)", dict(K=0.5, p=1.2), 60.0),
]
REGION = (0.0, 100.0, 0.0, 100.0)


def score_check(params: ETASParams, n_windows: int, duration: float, replicates: int, seed: int) -> str:
    """Mean score at the truth in standard errors per coordinate, Hotelling's T^2 p-value, var(score)/info."""
    names = param_names("temporal")
    truth = {k: getattr(params, k) for k in names}
    rng = np.random.default_rng(seed)
    scores, info = [], []
    for _ in range(replicates):
        wins = [simulate_etas(params, duration=duration, region=REGION, rng=rng) for _ in range(n_windows)]
        lik = _Likelihood(_build(window_sequences(wins, [duration] * n_windows, mc=params.mc), "temporal",
                                 params.mc, math.inf, math.inf, truth), names)
        theta = _to_theta(truth, names)
        scores.append(lik.value_and_grad(theta)[1])
        info.append(_hessian(lik, theta))  # of -l: the observed information
    s = np.array(scores)
    r, d = s.shape
    mean = s.mean(axis=0)
    t2 = r * mean @ np.linalg.solve(np.cov(s.T), mean)
    p_value = stats.f.sf(t2 * (r - d) / ((r - 1) * d), d, r - d)
    ratio = s.var(axis=0) / np.diag(np.mean(info, axis=0))
    z = mean / (s.std(axis=0) / math.sqrt(r))
    return (f"mean score / its s.e. ({', '.join(names)}): {np.array2string(z, precision=2)}; Hotelling p = "
            f"{p_value:.2g}; var(score) / information: {np.array2string(ratio, precision=2)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=["temporal", "space-time", "windows"])
    parser.add_argument("--windows", type=int, nargs="+", default=[5], help="window counts of the joint fit")
    parser.add_argument("--sets", type=int, nargs="+", default=[0, 1, 2], help="parameter sets (indices)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every duration (catalog size)")
    parser.add_argument("--signed-roots", action="store_true", help="also the profile likelihood's signed root")
    parser.add_argument("--score-replicates", type=int, default=0, help="replicates of the score check (0: none)")
    args = parser.parse_args(argv)
    r = args.replicates
    lo, hi = stats.chi2.ppf([5e-4, 1 - 5e-4], r) / r
    print(f"R = {r} replicates; if the errors are right: |mean z| < {3.29 / math.sqrt(r):.2f}, "
          f"mean z^2 in [{lo:.2f}, {hi:.2f}] (99.9 %)")
    pd.set_option("display.width", 200)
    runs = [(m, None) for m in args.models if m != "windows"]
    runs += [("windows", w) for w in args.windows if "windows" in args.models]
    for model, n_windows in runs:
        for i in args.sets:
            label, kw, duration = SETS[i]
            params = ETASParams(**{**BASE, **kw})
            start = time.process_time()
            if model == "windows":
                z = recovery_zscores(params, model="temporal", replicates=r, duration=duration * args.scale / 5,
                                     n_windows=n_windows, region=REGION, seed=100 + i, n_starts=1,
                                     signed_roots=args.signed_roots)
                name = f"windows {n_windows} x {duration * args.scale / 5:g} d"
            else:
                z = recovery_zscores(params, model=model, replicates=r, duration=duration * args.scale,
                                     region=REGION, seed=100 + i, n_starts=1, signed_roots=args.signed_roots)
                name = model
            table = z.groupby("parameter", sort=False).agg(
                mean=("z", "mean"), sd=("z", "std"), mean_z2=("z", lambda s: (s**2).mean()),
                max_abs=("z", lambda s: s.abs().max()),
                mean_z2_natural=("z_natural", lambda s: (s**2).mean()),
                **({"mean_r": ("r", "mean"), "sd_r": ("r", "std"), "mean_r2": ("r", lambda s: (s**2).mean()),
                    "max_abs_r": ("r", lambda s: s.abs().max())} if args.signed_roots else {}),
                median=("estimate", "median"), truth=("truth", "first"))
            flagged = z.loc[z["at_bound"] != "", "replicate"].nunique()
            print(f"\n{name} | {label} | {z['n_target'].mean():.0f} events per fit | "
                  f"{time.process_time() - start:.0f} s CPU" + (f" | {flagged} fits with a parameter at a bound" if flagged else ""))
            print(table.round(3).T.to_string())
    if args.score_replicates:
        print(f"\nscore check of the joint window likelihood at the truth, {args.score_replicates} replicates:")
        for i in args.sets:
            label, kw, duration = SETS[i]
            params = ETASParams(**{**BASE, **kw})
            for n_windows in args.windows:
                check = score_check(params, n_windows, duration * args.scale / 5, args.score_replicates, 200 + i)
                print(f"{label}, {n_windows} windows x {duration * args.scale / 5:g} d: {check}")


if __name__ == "__main__":
    main()
