"""Our ETAS inversion next to the Swiss Seismological Service's `etas` package (Mizrahi et al. 2021) on one catalog.

    PYTHONPATH=workflow python benchmarks/compare_etas_package_invert.py --etas-python ETAS_VENV/bin/python
        [--events 3000] [--aux-days 30] [--tau fixed|free] [--timeout 3600]

The `etas` package is not a dependency of this project (it is not on PyPI): install it from its repository
(github.com/lmizrahi/etas) into a virtual environment of its own and pass that environment's python. The
catalog is benchmarks/bench_invert.py's (the default config's ETAS point at the default experiment's density,
365 days after a 100-day burn-in): the first ``aux_days`` are history (its auxiliary catalog), the rest the
target window, for both fits. Kilometres become degrees on a sphere of the package's earth radius about the
equator (its haversine distances are then our distances to 1e-4), days become timestamps, and magnitudes are
continuous (``delta_m`` = 0). Its other settings are those of its example configuration
(``coppersmith_multiplier`` 100, its ``theta_0``); ``--tau fixed`` fixes its Omori taper at its largest value
(10^12.26 days: the untapered law we fit), ``--tau free`` fits it as the package does by default.

Its kernel is k0 e^(a (m - Mc)) e^(-t/tau) (t + c)^-(1+omega) (r^2 + d e^(gamma (m - Mc)))^-(1+rho), mu per km^2
and day. In our parameters: p = 1 + omega, q = 1 + rho, D = d, alpha = a - rho gamma, mu = mu_pkg * area, and K
(the expected number of direct aftershocks of an Mc event) = k0 (pi / rho) d^-rho T, T the time integral of its
Omori law (c^-omega / omega untapered), so that both give the branching ratio K beta / (beta - alpha).
Its EM reports no standard errors. Times are wall-clock and CPU seconds of each fit alone (ours: fit_catalog; its: prepare + invert, CPU
including its process start), one thread each.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_invert import default_catalog  # noqa: E402

EARTH_RADIUS_KM = 6378.1  # the package's default earth radius
KM_PER_DEGREE = EARTH_RADIUS_KM * math.pi / 180.0
ORIGIN = pd.Timestamp("2000-01-01")
# Its example configuration's starting values (config/invert_etas_config.json).
THETA_0 = {"log10_mu": -5.8, "log10_k0": -2.6, "a": 1.8, "log10_c": -2.5, "omega": -0.02, "log10_tau": 3.5,
           "log10_d": -0.85, "gamma": 1.3, "rho": 0.66}
LOG10_TAU_MAX = 12.26  # the upper end of its range for log10 tau

# Runs inside the package's environment: argv[1] is the configuration (JSON); prints one JSON line.
DRIVER = r"""
import json, resource, sys, time, logging
import numpy as np
from etas.inversion import ETASParameterCalculation, upper_gamma_ext
logging.basicConfig(level=logging.WARNING)
cfg = json.load(open(sys.argv[1]))
start = time.perf_counter()
calc = ETASParameterCalculation(cfg)
calc.prepare()
theta = calc.invert()
seconds = time.perf_counter() - start
cpu = time.process_time()
omega, c, tau = theta["omega"], 10 ** theta["log10_c"], 10 ** theta["log10_tau"]
time_int = tau ** -omega * np.exp(c / tau) * upper_gamma_ext(-omega, c / tau)
print(json.dumps({"theta": {k: float(v) for k, v in theta.items() if v is not None}, "seconds": seconds, "cpu_seconds": cpu,
                  "iterations": calc.i, "beta": float(calc.beta), "area_km2": float(calc.area),
                  "n_target": int(len(calc.target_events)), "time_integral": float(time_int),
                  "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def package_estimates(out: dict, delta_m: float = 0.0) -> dict[str, float]:
    """The package's estimates in our parameters (module docstring). Its kernels take magnitudes above
    Mc - delta_m/2 (its ``m_ref - delta_m / 2``), ours above Mc: k0 and d absorb e^(a delta_m/2) and
    e^(gamma delta_m/2)."""
    th = out["theta"]
    rho, gamma = th["rho"], th["gamma"]
    d = 10 ** th["log10_d"] * math.exp(gamma * delta_m / 2)
    beta = out["beta"]
    alpha = th["a"] - rho * gamma
    k0 = 10 ** th["log10_k0"] * math.exp(th["a"] * delta_m / 2)
    k = k0 * math.pi / rho * d**-rho * out["time_integral"]
    return {"mu": 10 ** th["log10_mu"] * out["area_km2"], "K": k, "alpha": alpha, "c": 10 ** th["log10_c"],
            "p": 1.0 + th["omega"], "D": d, "q": 1.0 + rho, "gamma": gamma, "b": beta / math.log(10.0),
            "branching_ratio": k * beta / (beta - alpha) if beta > alpha else math.inf,
            "tau_days": 10 ** th["log10_tau"]}


def exact_loglik(catalog: pd.DataFrame, region, mc: float, aux_days: float, params: dict[str, float]) -> float:
    """Our exact space-time log-likelihood (no pair cut, targets in [aux_days, 365)) at ``params``: the one
    yardstick for both fits (the package's EM maximises an approximation of it: the spatial integral over the
    whole plane, pairs beyond 100 Coppersmith rupture lengths left out)."""
    from etasvae.inversion import _build, _Likelihood, _to_theta, catalog_sequence, param_names

    names = param_names("space-time")
    seq = catalog_sequence(catalog, mc=mc, t_start=aux_days, t_end=365.0, region=region)
    lik = _Likelihood(_build([seq], "space-time", mc, math.inf, math.inf, params), names)
    return lik(_to_theta(params, names))


def run_package(catalog: pd.DataFrame, region, mc: float, aux_days: float, tau: str, python: str, timeout: float, workdir: Path):
    events = pd.DataFrame({
        "id": np.arange(len(catalog)),
        "latitude": catalog["y"].to_numpy() / KM_PER_DEGREE,
        "longitude": catalog["x"].to_numpy() / KM_PER_DEGREE,
        "time": ORIGIN + pd.to_timedelta(catalog["time"].to_numpy(), unit="D"),
        "magnitude": catalog["magnitude"].to_numpy(),
    })
    events.to_csv(workdir / "catalog.csv", index=False)
    xmin, xmax, ymin, ymax = (v / KM_PER_DEGREE for v in region)
    config = {
        "fn_catalog": str(workdir / "catalog.csv"), "data_path": str(workdir),
        "auxiliary_start": str(ORIGIN), "timewindow_start": str(ORIGIN + pd.Timedelta(days=aux_days)),
        "timewindow_end": str(ORIGIN + pd.Timedelta(days=365.0)),
        "theta_0": THETA_0, "mc": mc, "delta_m": 0.0, "coppersmith_multiplier": 100,
        "shape_coords": [[ymin, xmin], [ymax, xmin], [ymax, xmax], [ymin, xmax]], "earth_radius": EARTH_RADIUS_KM,
    }
    if tau == "fixed":
        config["theta_0"] = {**THETA_0, "log10_tau": LOG10_TAU_MAX}
        config["fixed_parameters"] = {"log10_tau": LOG10_TAU_MAX}
    (workdir / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    try:
        proc = subprocess.run([python, "-c", DRIVER, str(workdir / "config.json")], capture_output=True, text=True,
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, f"did not finish in {timeout:.0f} s"
    if proc.returncode:
        return None, f"failed after {time.perf_counter() - start:.0f} s: {proc.stderr.strip()[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1]), ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--etas-python", required=True, help="python of an environment with the etas package")
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--aux-days", type=float, default=30.0)
    parser.add_argument("--tau", choices=["fixed", "free"], default="fixed")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds the package's fit may take")
    args = parser.parse_args(argv)

    from etasvae.inversion import fit_catalog

    catalog, params, region = default_catalog(args.events)
    start, cpu = time.perf_counter(), time.process_time()
    ours = fit_catalog(catalog, mc=params.mc, model="space-time", t_start=args.aux_days, t_end=365.0, region=region)
    our_seconds, our_cpu = time.perf_counter() - start, time.process_time() - cpu
    beta = params.b * math.log(10.0)
    truth = {**{k: getattr(params, k) for k in ("mu", "K", "alpha", "c", "p", "D", "q", "gamma", "b")},
             "branching_ratio": params.K * beta / (beta - params.alpha)}
    with tempfile.TemporaryDirectory() as tmp:
        out, why = run_package(catalog, region, params.mc, args.aux_days, args.tau, args.etas_python, args.timeout, Path(tmp))
    theirs = package_estimates(out) if out else {}
    print(f"catalog: {len(catalog)} events, region {region[1]:.1f} km square, history [0, {args.aux_days:g}) d, "
          f"{ours.n_target} targets in [{args.aux_days:g}, 365) d")
    print(f"etasvae.inversion: {our_seconds:.1f} s wall, {our_cpu:.1f} s CPU, {ours.n_pairs} pairs, converged {ours.converged}")
    if out:
        print(f"etas package (tau {args.tau}): {out['seconds']:.1f} s wall, {out['cpu_seconds']:.1f} s CPU, {out['iterations']} EM iterations, "
              f"{out['n_target']} targets, peak {out['peak_gib']:.2f} GiB")
    else:
        print(f"etas package (tau {args.tau}): {why}")
    print(f"{'parameter':>16} {'truth':>9} {'etasvae':>9} {'+- se':>8} {'etas pkg':>9}")
    for k, v in truth.items():
        pkg = f"{theirs[k]:9.4g}" if k in theirs else "        -"
        print(f"{k:>16} {v:9.4g} {ours.estimates[k]:9.4g} {ours.std_errors[k]:8.2g} {pkg}")
    if "tau_days" in theirs:
        print(f"{'tau (days)':>16} {'inf':>9} {'inf':>9} {'':>8} {theirs['tau_days']:9.4g}")
    points = {"truth": truth, "etasvae": ours.estimates}
    if theirs and (args.tau == "fixed" or theirs["tau_days"] > 1e9):  # untapered: the same model as ours
        points["etas pkg"] = theirs
    values = {k: exact_loglik(catalog, region, params.mc, args.aux_days, v) for k, v in points.items()}
    print("exact log-likelihood (no pair cut) at " + ", ".join(f"{k}: {v:.2f}" for k, v in values.items()))


if __name__ == "__main__":
    main()
