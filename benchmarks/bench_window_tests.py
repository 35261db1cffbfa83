"""Time and resolution of the whole-window two-sample tests (MMD, classifier) by windows per set.

    python benchmarks/bench_window_tests.py [--sizes 500 1000 2000] [--permutations 200]

Two independent sets of ETAS windows of the default K = 0.2 config (reference catalogs, seeded apart), their
SUMMARY_FEATURES standardised on the first, then for each size n: MMD² with its permutation null (the p-value
and the 95 % quantile, ``window_tests.mmd_with_null``) and the kNN classifier test (5 folds), each timed; the
resolution is the distance two samples of that size from one process exceed with probability 5 %. Prints one
row per size. Figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

from etasvae import stats  # noqa: E402
from etasvae.config import check_schema, etas_configs, window_spec  # noqa: E402
from etasvae.evaluate.reference import reference_replicate, reference_seed, reference_table, simulate_reference_catalogs  # noqa: E402
from etasvae.evaluate.sets import catalog_windows  # noqa: E402
from etasvae.evaluate.statistics import set_data  # noqa: E402
from etasvae.evaluate.window_tests import _features, _standardise_like, c2st_resolution, mmd_with_null  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--permutations", type=int, default=200)
    args = parser.parse_args()
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    check_schema(config)
    cfg, etas = list(etas_configs(config).items())[1]
    sim = {k: config["simulation"][k] for k in ("duration_days", "burn_in_days", "margin_km", "max_events")}
    sim["region_km"] = list(config["simulation"]["region_km"])
    spec = window_spec(config, "event")
    need = 2 * max(args.sizes)
    cats, windows, k = {}, [], 0
    while len(windows) < need:
        (cat, _, _), = simulate_reference_catalogs(cfg, etas, sim, [reference_seed(99, cfg, k)])
        one = {(cfg, reference_replicate(k)): cat}
        windows += catalog_windows(reference_table(one, spec, sim["duration_days"]), one, spec, cfg)
        k += 1
    rng = np.random.default_rng(0)
    order = rng.permutation(len(windows))
    half = len(windows) // 2
    feats = [_features(set_data([windows[i] for i in idx], spec["mc"], 0.0, 10).summ) for idx in (order[:half], order[half:])]
    print(f"{cfg}: {len(windows)} windows from {k} catalogs; {args.permutations} permutations")
    print(f"{'n':>6} {'MMD s':>8} {'MMD2':>10} {'MMD 95%':>10} {'c2st s':>8} {'accuracy':>9} {'c2st 95%':>9}")
    for n in args.sizes:
        X, Y = _standardise_like(feats[0][:n], feats[1][:n])
        sigma = stats.median_heuristic(X, rng)
        t0 = time.perf_counter()
        mmd2, _, q95 = mmd_with_null(Y, X, sigma, rng, args.permutations, n)
        t1 = time.perf_counter()
        acc, se, _ = stats.c2st(Y, X, rng, classifier="knn", n_folds=5, max_samples=n)
        t2 = time.perf_counter()
        print(f"{n:>6} {t1 - t0:>8.2f} {mmd2:>10.2e} {q95:>10.2e} {t2 - t1:>8.2f} {acc:>9.3f} {c2st_resolution(se):>9.4f}")


if __name__ == "__main__":
    main()
