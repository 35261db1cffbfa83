"""Our ETAS fit of a real catalog next to the `etas` package's (Mizrahi et al. 2021), and both as forecasts.

    PYTHONPATH=workflow python benchmarks/compare_etas_package_real.py --catalog SanJac_catalog.csv \
        --shape SanJac_shape.npy --etas-python ETAS_VENV/bin/python [--etas-path ETAS_SOURCE] \
        [--aux-start 2008-01-01 --train-start 2009-01-01 --test-start 2016-01-01 --test-end 2018-01-01] [--mc 1.0]

The catalog is one of the EarthquakeNPP benchmark's (Stockman, Lawson & Werner 2024; github.com/ss15859/
EarthquakeNPP, MIT licence): QTM_SanJac_10, the QTM template-matching catalog of Ross et al. (2019) in the San
Jacinto fault region (33-34 N, 116-117 W), magnitudes >= 1.0, with the benchmark's periods (auxiliary 2008,
training 2009-2015, test 2016-2017) and its ETAS configuration (the package's default start, 100 rupture
lengths). Not shipped: pass the CSV (columns time, longitude, latitude, magnitude) and the region's
[lat, lon] vertices (.npy) from that repository.

Both fits see the same events: targets in the training period, every earlier event of the auxiliary period
as history, the region the projected lon/lat quadrilateral (a polygon in km). The comparison fit is the
package's estimator on the package's model (etasvae.inversion_package: uniform background, tapered Omori law
with tau free, each kernel integrated over the whole plane, pairs beyond 100 rupture lengths out of the sum).
Beside it, the maximum-likelihood estimate of that model (``space_integral="plane"``), which differs from
the package's EM fixed point, and the command's defaults (the kernels integrated over the region, background
auto). Each estimate is put into our likelihood of the training period (the package's: plane, pairs within
100 rupture lengths; and the exact one of the region, no cut) and scored on the test period with
etasvae.forecast (the region's model; the same cut for all: 100 rupture lengths). Times: wall
and CPU of each fit alone, one thread (the package: prepare + invert in its own process, its CPU including
the process start).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_etas_package_invert import DRIVER, THETA_0, package_estimates  # noqa: E402

from etasvae.forecast import score_forecast  # noqa: E402
from etasvae.inversion import (  # noqa: E402
    _build, _Likelihood, _to_theta, catalog_sequence, fit_catalog, param_names, polygon_area,
)
from etasvae.inversion_geometry import rupture_length_km  # noqa: E402
from etasvae.inversion_package import fit_package_estimator  # noqa: E402
from etasvae.realdata import project  # noqa: E402


def load(args):
    """(catalog in days and km, polygon in km, origin, the periods in days)."""
    raw = pd.read_csv(args.catalog)
    raw["time"] = pd.to_datetime(raw["time"])
    shape = np.load(args.shape)  # [lat, lon]
    lat0, lon0 = float(shape[:, 0].mean()), float(shape[:, 1].mean())
    origin = pd.Timestamp(args.aux_start)
    x, y = project(raw["longitude"].to_numpy(), raw["latitude"].to_numpy(), lon0, lat0)
    cat = pd.DataFrame({"time": (raw["time"] - origin).dt.total_seconds().to_numpy() / 86400.0,
                        "magnitude": raw["magnitude"].to_numpy(dtype=float), "x": x, "y": y})
    cat = cat[cat["time"] >= 0].sort_values("time", kind="stable").reset_index(drop=True)
    vertices = np.vstack([shape, shape[:1]])
    s = np.linspace(0.0, 1.0, 8, endpoint=False)[:, None]
    pts = np.concatenate([a + s * (b - a) for a, b in zip(vertices[:-1], vertices[1:])])
    px, py = project(pts[:, 1], pts[:, 0], lon0, lat0)
    days = {k: (pd.Timestamp(getattr(args, k)) - origin).total_seconds() / 86400.0
            for k in ("train_start", "test_start", "test_end")}
    return raw, cat, [[float(a), float(b)] for a, b in zip(px, py)], origin, days


def run_package(raw, args, workdir: Path):
    events = raw.rename(columns={})[["time", "latitude", "longitude", "magnitude"]].copy()
    events.insert(0, "id", np.arange(len(events)))
    events.to_csv(workdir / "catalog.csv", index=False)
    config = {"fn_catalog": str(workdir / "catalog.csv"), "data_path": str(workdir),
              "auxiliary_start": args.aux_start, "timewindow_start": args.train_start,
              "timewindow_end": args.test_start, "theta_0": THETA_0, "mc": args.mc, "delta_m": 0.01,
              "coppersmith_multiplier": 100, "shape_coords": np.load(args.shape).tolist()}
    (workdir / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    if args.etas_path:
        env["PYTHONPATH"] = args.etas_path
    proc = subprocess.run([args.etas_python, "-c", DRIVER, str(workdir / "config.json")], capture_output=True,
                          text=True, timeout=args.timeout, env=env, cwd=workdir)
    if proc.returncode:
        raise SystemExit(f"the etas package failed: {proc.stderr.strip()[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def exact_loglik(cat, polygon, mc, t0, t1, est, plane: bool = False, cap: float | None = None) -> float:
    """Our space-time log-likelihood of the training period, tapered Omori law: no cut, or with ``cap`` the
    pairs beyond that many rupture lengths out of the sum (the package's); kernels integrated over the
    region or the plane."""
    names = param_names("space-time", "free")
    seq = catalog_sequence(cat, mc=mc, t_start=t0, t_end=t1, region=polygon, delta_m=0.01)
    radius = cap * rupture_length_km(seq.magnitude) if cap else None
    data = _build([seq], "space-time", mc, math.inf, math.inf, est, radius_cap=radius, plane=plane)
    return _Likelihood(data, names)(_to_theta(est, names))


def _fit(cat, args, days, polygon, **options):
    start, cpu = time.perf_counter(), time.process_time()
    if options.pop("estimator", "mle") == "etas-package":
        seq = catalog_sequence(cat, mc=args.mc, t_start=days["train_start"], t_end=days["test_start"], region=polygon,
                               delta_m=0.01)
        fit = fit_package_estimator([seq], mc=args.mc, delta_m=0.01, rupture_multiple=100.0, **options)
    else:
        fit = fit_catalog(cat, mc=args.mc, model="space-time", t_start=days["train_start"],
                          t_end=days["test_start"], region=polygon, delta_m=0.01, rupture_multiple=100.0, **options)
    return fit, time.perf_counter() - start, time.process_time() - cpu


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", required=True)
    parser.add_argument("--shape", required=True)
    parser.add_argument("--etas-python", default=None)
    parser.add_argument("--etas-path", default=None, help="the package's source folder, when not installed")
    parser.add_argument("--package-json", default=None, help="the package's result of an earlier run (skip its fit)")
    parser.add_argument("--aux-start", default="2008-01-01 00:00:00")
    parser.add_argument("--train-start", default="2009-01-01 00:00:00")
    parser.add_argument("--test-start", default="2016-01-01 00:00:00")
    parser.add_argument("--test-end", default="2018-01-01 00:00:00")
    parser.add_argument("--mc", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--json", default=None, help="also write the fits and scores here")
    parser.add_argument("--save-package-json", default=None, help="write the package's result here (for --package-json)")
    parser.add_argument("--fits", nargs="*", default=["package", "plane", "default"],
                        choices=["package", "plane", "default"],
                        help="our fits to run (default both)")
    args = parser.parse_args(argv)
    raw, cat, polygon, origin, days = load(args)
    t0, t1, t2 = days["train_start"], days["test_start"], days["test_end"]
    area = polygon_area(polygon)
    print(f"catalog {args.catalog}: {len(cat)} events, region {area:.0f} km^2; training [{t0:.0f}, {t1:.0f}) d, "
          f"test [{t1:.0f}, {t2:.0f}) d after {args.aux_start}")
    # the package's model (uniform background, tau free), and the command's defaults (tau and background auto)
    choices = {"etasvae package": dict(tau="free", estimator="etas-package"),
               "etasvae plane": dict(tau="free", background="uniform", space_integral="plane"),
               "etasvae default": dict(tau="auto", background="auto")}
    fits = {name: _fit(cat, args, days, polygon, **options) for name, options in choices.items()
            if name.split()[-1] in args.fits}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    for name, (fit, wall, cpu) in fits.items():
        print(f"{name}: {wall:.1f} s wall, {cpu:.1f} s CPU, {fit.n_target} targets, {fit.n_history} history, "
              f"{fit.n_pairs} pairs, taper {fit.taper}, background {fit.background}, usable {fit.usable} {fit.problems}")
    print(f"peak memory of both fits: {peak:.2f} GiB")
    theirs = None
    if args.package_json:
        out = json.loads(Path(args.package_json).read_text())
    elif args.etas_python:
        with tempfile.TemporaryDirectory() as tmp:
            out = run_package(raw, args, Path(tmp))
        if args.save_package_json:
            Path(args.save_package_json).write_text(json.dumps(out))
    else:
        out = None
    if out:
        theirs = package_estimates(out, delta_m=0.01)
        theirs["tau"] = theirs.pop("tau_days")
        print(f"etas package: {out['seconds']:.1f} s wall, {out['cpu_seconds']:.1f} s CPU, {out['iterations']} EM "
              f"iterations, {out['n_target']} targets, area {out['area_km2']:.0f} km^2, peak {out['peak_gib']:.2f} GiB")
    ours = fits["etasvae package"][0] if "etasvae package" in fits else None
    default = fits["etasvae default"][0] if "etasvae default" in fits else None
    if ours is not None:
        print(f"{'parameter':>16} {'ours':>10} {'+- se':>9} {'etas pkg':>10} {'diff/se':>8} {'default':>10} {'+- se':>9}")
        for k, v in ours.estimates.items():
            se = ours.std_errors.get(k, math.nan)
            other = theirs.get(k, math.nan) if theirs else math.nan
            d = default.estimates.get(k, math.nan) if default else math.nan
            d_se = default.std_errors.get(k, math.nan) if default else math.nan
            print(f"{k:>16} {v:10.4g} {se:9.2g} {other:10.4g} {(v - other) / se if se > 0 else math.nan:8.2f} "
                  f"{d:10.4g} {d_se:9.2g}")
    results = {}
    no_cut = {"max_lag_days": math.inf, "radius_sigma_units": math.inf, "rupture_multiple": 100.0}
    candidates = {name: fit.to_dict() for name, (fit, _, _) in fits.items()}
    if theirs:
        span = days["test_start"] - days["train_start"]
        candidates["etas pkg"] = {"model": "space-time", "taper": "free", "background": "uniform",
                                  "estimates": theirs, "cut": {**no_cut, "background_rate_cut_model": theirs["mu"]},
                                  "n_target": out["n_target"], "span_days": span}
    n_target = next(iter(fits.values()))[0].n_target if fits else 1
    for name, fit in candidates.items():
        fit = {**fit, "mc": args.mc, "delta_m": 0.01, "region": polygon}
        est = fit["estimates"]
        comparable = fit.get("background", "uniform") == "uniform" and est["mu"] > 0 and "tau" in est
        # the training log-likelihood both fits maximise (plane, pairs within 100 rupture lengths) and the
        # exact one of the events in the region (no cut)
        ll = exact_loglik(cat, polygon, args.mc, t0, t1, est, plane=True, cap=100.0) if comparable else math.nan
        ll_region = exact_loglik(cat, polygon, args.mc, t0, t1, est) if comparable else math.nan
        scores = score_forecast(cat, fit, start_days=t1, end_days=t2, region=polygon)
        results[name] = {"estimates": est, "usable": fit.get("usable"), "loglik_plane": ll,
                         "loglik_region": ll_region, "per_event_plane": ll / n_target,
                         "per_event_region": ll_region / n_target, "scores": scores}
        s = scores["etas"]
        print(f"{name:>16}: training log-likelihood per event {ll / n_target:.5f} (plane, capped), "
              f"{ll_region / n_target:.5f} (region, exact); test TLL {s['tll']:.4f} SLL {s['sll']:.4f} "
              f"MLL {s['mll']:.4f} over {s['n_events']} events")
    p = next(iter(results.values()))["scores"]["poisson"]
    print(f"{'poisson':>16}: test TLL {p['tll']:.4f} SLL {p['sll']:.4f} MLL {p['mll']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
