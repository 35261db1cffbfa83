"""ETAS inversion speed and memory: space-time (or temporal) fit time and peak memory for 1e3, 1e4, 1e5 events.

    PYTHONPATH=workflow python benchmarks/bench_invert.py [--sizes 1000 10000 100000] [--model space-time]
        [--cut-mass 0.05] [--starts 1] [--tau none|free|auto|DAYS] [--near-one] [--rupture-multiple 70]

``--near-one`` starts the fit at p = q = 1.0005, where the cut that leaves ``cut_mass`` of each kernel outside
lies beyond the catalog: the pairs are then those inside the caps (ten years, 70 rupture lengths), the
largest set any parameters can ask for. Every process runs on one thread (OMP/BLAS threads 1).

Each size is one catalog of the default config's ETAS point (K = 0.2, alpha = 1.5, c = 0.01 d, p = 1.1,
D = 0.5 km^2, q = 1.5, gamma = 1, b = 1, Mc = 2.5, Mmax = 7.5; n = 0.57) over 365 days after a 100-day
burn-in, with the region's area and mu scaled with the size, so that the density of events per km^2 and
per day is that of the default experiment: the number of pairs per event is then the same at every size.
Each fit runs in a fresh process; fit time is the process's CPU time of the fit (time.process_time: on a
shared machine wall time measures the neighbours), wall time beside it; peak memory is that process's maximum resident set size (ru_maxrss),
which includes the catalog and the Python runtime.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time


def default_catalog(n_events: int):
    """(catalog, params, region): about ``n_events`` events of the default config's ETAS point over 365 days
    (100-day burn-in, 20 km margin), region and mu scaled to the default experiment's density."""
    import numpy as np

    from etasvae.params import ETASParams
    from etasvae.simulate import expected_count, simulate_etas

    base = ETASParams(mu=1.0, K=0.2, alpha=1.5, c=0.01, p=1.1, D=0.5, q=1.5, gamma=1.0, b=1.0, mc=2.5, mmax=7.5)
    per_mu = expected_count(base, 365.0, 100.0)
    mu = n_events / per_mu
    side = 100.0 * math.sqrt(mu / 5.0)  # the default experiment: mu = 5 per day on 100 x 100 km
    params = ETASParams.from_dict({**base.to_dict(), "mu": mu})
    region = (0.0, side, 0.0, side)
    catalog = simulate_etas(params, duration=365.0, region=region, rng=np.random.default_rng(n_events),
                            burn_in=100.0, margin=20.0)
    return catalog, params, region


def one(n_events: int, model: str, cut_mass: float, starts: int, tau="none", near_one: bool = False,
        rupture_multiple: float = 70.0) -> dict:
    from etasvae.inversion import fit_catalog
    catalog, params, region = default_catalog(n_events)
    side, mu = region[1], params.mu
    start, cpu = time.perf_counter(), time.process_time()
    fit = fit_catalog(catalog, mc=2.5, model=model, t_start=0.0, t_end=365.0, region=region,
                      cut_mass=cut_mass, n_starts=starts, tau=tau,
                      start={"p": 1.0005, "q": 1.0005} if near_one else None, rupture_multiple=rupture_multiple)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"events": len(catalog), "region_km": side, "mu": mu, "seconds": elapsed, "cpu_seconds": cpu, "peak_gib": peak,
            "pairs": fit.n_pairs, "neglected_mass": fit.cut["neglected_mass"], "converged": fit.converged,
            "n": fit.estimates["branching_ratio"], "p": fit.estimates["p"], "q": fit.estimates.get("q"),
            "usable": fit.usable}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--model", default="space-time")
    parser.add_argument("--cut-mass", type=float, default=0.05)
    parser.add_argument("--starts", type=int, default=1)
    parser.add_argument("--tau", default="none")
    parser.add_argument("--near-one", action="store_true")
    parser.add_argument("--rupture-multiple", type=float, default=70.0)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    tau = args.tau if args.tau in ("none", "free", "auto") else float(args.tau)
    if args.one is not None:
        print(json.dumps(one(args.one, args.model, args.cut_mass, args.starts, tau, args.near_one,
                             args.rupture_multiple)))
        return
    print(f"{'target':>8} {'events':>8} {'region km':>10} {'pairs':>11} {'fit CPU s':>9} {'wall s':>7} {'peak GiB':>9} "
          f"{'neglected':>9} {'n':>6} {'p':>6} {'q':>6} usable")
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(size), "--model", args.model,
               "--cut-mass", str(args.cut_mass), "--starts", str(args.starts), "--tau", args.tau,
               "--rupture-multiple", str(args.rupture_multiple)]
        cmd += ["--near-one"] if args.near_one else []
        env = {**os.environ, **{k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode:
            print(f"{size:>8} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        q = f"{r['q']:6.3f}" if r["q"] is not None else "     -"
        print(f"{size:>8} {r['events']:>8} {r['region_km']:>10.1f} {r['pairs']:>11} {r['cpu_seconds']:>9.1f} {r['seconds']:>7.1f} "
              f"{r['peak_gib']:>9.2f} {r['neglected_mass']:>9.2g} {r['n']:>6.3f} {r['p']:>6.3f} {q} {r['usable']}", flush=True)


if __name__ == "__main__":
    main()
