"""Command line.

``python -m etasvae fit CATALOG.parquet [--model temporal|space-time] [--mc M] [--aux-days D] [--end-days T]
[--tau auto|free|none|DAYS] [--background auto|uniform|inhomogeneous]``: fits ETAS by maximum likelihood
(etasvae.inversion) and prints the estimates with standard errors and the branching ratio, and with
``--profile`` the profile-likelihood interval of each beside them. The target window is [start + aux_days,
end_days or the catalog's end); the events before it are history. A fit with a parameter at a bound or a
branching ratio >= 1 is not usable: the command says which and what to try, and exits with status 3.

``python -m etasvae score CATALOG.parquet --fit FIT.json --start-days T [--end-days E] [--json]``: scores
the fit as a forecast of the test period [T, E) (etasvae.forecast): TLL, SLL and MLL per test event, beside a
Poisson model fitted on the training period.

``python -m etasvae csep CATALOG.parquet --fit FIT.json --start-days T [--end-days E] [--horizon-days 7]
[--catalogs 1000] [--seed 0] [--cell-km 10] [--json]``: pyCSEP's catalog-based number, magnitude, spatial and
pseudo-likelihood tests of the fit over consecutive horizons of [T, E) (etasvae.forecast_csep; needs the
``forecast`` extra), with their pass rates.

The catalog's metadata gives Mc, the region (the projected outline of its lon/lat region, else region_km)
and the duration when present; otherwise Mc is the smallest magnitude, the region the events' bounding box
and the end the last event's time. Magnitudes reported in bins (0.1 or 0.01, as networks do) are detected,
and b gets Utsu's bin correction (``--delta-m`` overrides).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from .catalog import CatalogError, read_catalog
from .forecast import catalog_region, score_forecast
from .forecast_csep import csep_tests
from .forecast_sim import ForecastError
from .inversion import (
    BACKGROUNDS, MODELS, RUPTURE_MULTIPLE, SPACE_INTEGRALS, InversionError, catalog_sequence, fit_catalog,
    magnitude_bin,
)
from .inversion_package import fit_package_estimator

UNUSABLE = 3  # exit status of a fit that ran but is not usable


def _read(path):
    try:
        catalog, meta = read_catalog(path)
    except (OSError, CatalogError) as err:
        print(f"error: {err}", file=sys.stderr)
        return None
    if "window" in catalog.columns:
        print("error: this catalog has a window column (synthetic windows, one clock each); fit them with "
              "etasvae.inversion.fit_windows", file=sys.stderr)
        return None
    if len(catalog) == 0:
        print(f"error: {path} holds no events", file=sys.stderr)
        return None
    return catalog, meta


def _tau(value: str):
    if value in ("auto", "free", "none"):
        return value
    try:
        days = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--tau {value!r}: auto, free, none or a number of days") from None
    if not days > 0:
        raise argparse.ArgumentTypeError(f"--tau {value!r}: a fixed taper time must be > 0 days")
    return days


def _fit(args) -> int:
    read = _read(args.catalog)
    if read is None:
        return 2
    catalog, meta = read
    mc = args.mc if args.mc is not None else meta.get("mc", float(catalog["magnitude"].min()))
    region = catalog_region(meta, catalog)
    t_begin = 0.0 if "duration_days" in meta else float(catalog["time"].min())
    t_end = float(meta.get("duration_days", np.nextafter(catalog["time"].max(), np.inf)))
    if args.end_days is not None:
        t_end = args.end_days
    delta_m = args.delta_m if args.delta_m is not None else magnitude_bin(catalog["magnitude"].to_numpy())
    profile = False if args.profile is None else (tuple(args.profile) or True)
    tau = "none" if (profile and args.tau == "auto") else args.tau
    try:
        if args.estimator == "etas-package":
            fit = _package_fit(args, catalog, mc, region, t_begin, t_end, delta_m)
        else:
            fit = fit_catalog(catalog, mc=mc, model=args.model, t_start=t_begin + args.aux_days, t_end=t_end,
                              region=region, cut_mass=args.cut_mass, n_starts=args.starts, delta_m=delta_m,
                              profile=profile, profile_level=args.profile_level, tau=tau, background=args.background,
                              rupture_multiple=args.rupture_multiple or None, max_lag_days=args.max_lag_days,
                              space_integral=args.space_integral)
    except InversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    status = 0 if fit.usable else UNUSABLE
    for problem in fit.problems:
        print(f"not usable: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps({**fit.to_dict(), "mc": mc, "delta_m": delta_m, "region": region,
                          "t_start": t_begin + args.aux_days, "t_end": t_end}, indent=2))
        return status
    print(f"{args.catalog}: {args.model} ETAS (taper {fit.taper}, {fit.background} background, kernels over the "
          f"{fit.space_integral}{'; the etas package estimator' if fit.estimator != 'mle' else ''}), Mc = {mc:g}, "
          f"magnitude bin {delta_m:g}, target [{t_begin + args.aux_days:g}, {t_end:g}) days, "
          f"{fit.n_target} target events, {fit.n_history} history events, {fit.n_pairs} pairs")
    if profile:
        print(f"  {'':>16}   {'estimate':>12}    {'std error':<9}  profile-likelihood interval ({100 * args.profile_level:g} %)")
    for row in fit.table().itertuples():
        interval = f"  [{row.profile_lower:.4g}, {row.profile_upper:.4g}]" if row.parameter in fit.profile_intervals else ""
        flag = "  AT BOUND" if row.parameter in fit.at_bound else ""
        print(f"  {row.parameter:>16} = {row.estimate:12.6g} +- {row.std_error:<9.3g}{interval}{flag}")
    n, n_se = fit.estimates["branching_ratio"], fit.std_errors["branching_ratio"]
    print(f"branching ratio n = {n:.4f} +- {n_se:.4f}; expected background events "
          f"{fit.background_probability.sum():.1f}; log-likelihood {fit.loglik:.3f}; "
          f"kernel mass beyond the pair cut {fit.cut['neglected_mass']:.3g}" + ("" if fit.converged else "; NOT CONVERGED"))
    print("usable: yes" if fit.usable else "usable: NO (see the messages above)")
    return status


def _package_fit(args, catalog, mc, region, t_begin, t_end, delta_m):
    """The `etas` package's estimator (etasvae.inversion_package): its model (space-time, uniform background,
    the plane's integral), tau free unless given."""
    if args.model != "space-time" or args.background not in ("auto", "uniform") or args.profile is not None:
        raise InversionError("--estimator etas-package fits the package's model: the space-time model with a "
                             "uniform background, without --profile")
    if args.space_integral != "plane":
        print("note: --estimator etas-package integrates the kernels over the plane (the package's model)",
              file=sys.stderr)
    seq = catalog_sequence(catalog, mc=mc, t_start=t_begin + args.aux_days, t_end=t_end, region=region,
                           delta_m=delta_m)
    return fit_package_estimator([seq], mc=mc, tau="free" if args.tau == "auto" else args.tau, delta_m=delta_m,
                                 rupture_multiple=args.rupture_multiple or None, max_lag_days=args.max_lag_days)


def _catalog_and_fit(args, keys):
    """(catalog, meta, fit, test period end) for `score` and `csep`, or None after an error message."""
    read = _read(args.catalog)
    if read is None:
        return None
    catalog, meta = read
    try:
        with open(args.fit) as fh:
            fit = json.load(fh)
    except (OSError, ValueError) as err:
        print(f"error: --fit {args.fit}: {err}", file=sys.stderr)
        return None
    missing = [k for k in keys if k not in fit]
    if missing:
        print(f"error: --fit {args.fit} lacks {', '.join(missing)}: write it with `fit --json`", file=sys.stderr)
        return None
    end = args.end_days
    if end is None:
        end = float(meta.get("duration_days", np.nextafter(catalog["time"].max(), np.inf)))
    return catalog, meta, fit, end


def _score(args) -> int:
    loaded = _catalog_and_fit(args, ("model", "estimates", "cut", "mc", "n_target", "span_days"))
    if loaded is None:
        return 2
    catalog, meta, fit, end = loaded
    try:
        scores = score_forecast(catalog, fit, start_days=args.start_days, end_days=end,
                                region=fit.get("region") or catalog_region(meta, catalog))
    except InversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _warn_if_not_usable(fit)
    if args.json:
        print(json.dumps(scores, indent=2))
        return 0
    print(f"{args.catalog}: test period [{args.start_days:g}, {end:g}) days, {scores['etas']['n_events']} events")
    for name, s in scores.items():
        print(f"  {name:>8}: TLL {s['tll']:.4f}  SLL {s['sll']:.4f}  MLL {s['mll']:.4f}  (nats per event)")
    return 0


def _warn_if_not_usable(fit: dict) -> None:
    if not fit.get("usable", True):
        print("warning: the fit is not usable (" + "; ".join(fit.get("problems", [])) + ")", file=sys.stderr)


def _csep(args) -> int:
    loaded = _catalog_and_fit(args, ("model", "estimates", "mc"))
    if loaded is None:
        return 2
    catalog, meta, fit, end = loaded
    try:
        result = csep_tests(fit, catalog, args.start_days, args.horizon_days, n_catalogs=args.catalogs,
                            seed=args.seed, region=fit.get("region") or catalog_region(meta, catalog),
                            end_days=end, cell_km=args.cell_km)
    except (ForecastError, InversionError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _warn_if_not_usable(fit)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.catalog}: {result['n_horizons']} horizons of {args.horizon_days:g} days from {args.start_days:g}, "
          f"{args.catalogs} simulated catalogs each, pass at quantile >= {result['level']:g}")
    for name, rate in result["pass_rate"].items():
        print(f"  {name:>16}: pass rate {rate:.3f} over {result['n_valid'][name]} horizons")
    return 0


def _csep_parser(sub) -> None:
    csep = sub.add_parser("csep", help="pyCSEP catalog-based tests (N, M, S, PL) of a fit over forecast horizons")
    csep.add_argument("catalog")
    csep.add_argument("--fit", required=True, help="the fit's JSON (python -m etasvae fit --json)")
    csep.add_argument("--start-days", type=float, required=True, help="the test period starts at T days")
    csep.add_argument("--end-days", type=float, default=None, help="and ends at E days (default: the catalog's end)")
    csep.add_argument("--horizon-days", type=float, default=7.0, help="forecast horizon (default 7 days)")
    csep.add_argument("--catalogs", type=int, default=1000, help="simulated catalogs per horizon (default 1000)")
    csep.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    csep.add_argument("--cell-km", type=float, default=10.0, help="spatial cell size of the tests' grid (default 10 km)")
    csep.add_argument("--json", action="store_true", help="print the pass rates and per-horizon quantiles as JSON")


def _fit_parser(sub) -> None:
    fit = sub.add_parser("fit", help="maximum-likelihood ETAS fit of a catalog (Parquet, catalog schema)")
    fit.add_argument("catalog")
    fit.add_argument("--model", choices=MODELS, default="space-time")
    fit.add_argument("--mc", type=float, default=None, help="completeness magnitude (default: the catalog's)")
    fit.add_argument("--aux-days", type=float, default=0.0,
                     help="the first D days are history only: they trigger but are not scored (default 0)")
    fit.add_argument("--end-days", type=float, default=None,
                     help="the target window ends at T days (default: the catalog's end); later events are left out")
    fit.add_argument("--tau", type=_tau, default="auto",
                     help="Omori taper: auto (default: fitted, and none when it runs beyond the catalog), free, "
                          "none, or a fixed number of days")
    fit.add_argument("--background", choices=BACKGROUNDS, default="auto",
                     help="auto (default: uniform over the region, and inhomogeneous when that fit is not usable), "
                          "uniform, or inhomogeneous (smoothed from the background probabilities; space-time model)")
    fit.add_argument("--space-integral", choices=SPACE_INTEGRALS, default="region",
                     help="each kernel integrated over the region (default: the exact likelihood of the events "
                          "observed in it) or over the whole plane (the `etas` package's model)")
    fit.add_argument("--estimator", choices=("mle", "etas-package"), default="mle",
                     help="mle (default: maximum likelihood) or etas-package: the fixed point of the `etas` "
                          "package's EM (its model; not the likelihood's maximum, docs/methods/forecast.md)")
    fit.add_argument("--rupture-multiple", type=float, default=RUPTURE_MULTIPLE,
                     help=f"pairs farther than this many rupture lengths apart are cut (default {RUPTURE_MULTIPLE:g}; 0: no cap)")
    fit.add_argument("--max-lag-days", type=float, default=3652.5, help="pairs further apart in time are cut (default 3652.5)")
    fit.add_argument("--cut-mass", type=float, default=0.05,
                     help="kernel mass beyond the pair cut, in time and in space (default 0.05)")
    fit.add_argument("--starts", type=int, default=3, help="optimiser starts (default 3)")
    fit.add_argument("--delta-m", type=float, default=None,
                     help="magnitude bin width for b (default: 0.1 or 0.01 when the magnitudes are on that grid, else 0)")
    fit.add_argument("--profile", nargs="*", default=None, metavar="PARAMETER",
                     help="also profile-likelihood intervals of the named parameters (mu K alpha c p D q gamma "
                          "branching_ratio), of all when none is named (about twenty refits each; pure Omori law)")
    fit.add_argument("--profile-level", type=float, default=0.95, help="their confidence level (default 0.95)")
    fit.add_argument("--json", action="store_true", help="print the result as JSON")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etasvae", description="etasvae command line tools")
    sub = parser.add_subparsers(dest="command", required=True)
    _fit_parser(sub)
    score = sub.add_parser("score", help="score a fit as a forecast of a test period (TLL, SLL, MLL per event)")
    score.add_argument("catalog")
    score.add_argument("--fit", required=True, help="the fit's JSON (python -m etasvae fit --json)")
    score.add_argument("--start-days", type=float, required=True, help="the test period starts at T days")
    score.add_argument("--end-days", type=float, default=None, help="and ends at E days (default: the catalog's end)")
    score.add_argument("--json", action="store_true", help="print the scores as JSON")
    _csep_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "score":
        return _score(args)
    if args.command == "csep":
        return _csep(args)
    if args.aux_days < 0:
        parser.error(f"--aux-days = {args.aux_days}: must be >= 0")
    if not 0 < args.profile_level < 1:
        parser.error(f"--profile-level = {args.profile_level}: must be in (0, 1)")
    if args.delta_m is not None and not 0 <= args.delta_m < 1:
        parser.error(f"--delta-m = {args.delta_m}: must be in [0, 1)")
    if args.rupture_multiple < 0 or not args.max_lag_days > 0:
        parser.error("--rupture-multiple must be >= 0 and --max-lag-days > 0")
    return _fit(args)


if __name__ == "__main__":
    sys.exit(main())
