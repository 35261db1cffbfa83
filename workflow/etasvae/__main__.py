"""Command line: ``python -m etasvae fit CATALOG.parquet [--model temporal|space-time] [--mc M] [--aux-days D]``.

Fits ETAS by maximum likelihood (etasvae.inversion) and prints the estimates with standard errors and the
branching ratio, and with ``--profile`` the profile-likelihood interval of each beside them. The target window
is [start of the catalog + aux_days, end); the events before it are history.
The catalog's metadata gives Mc, the region and the duration when present; otherwise Mc is the smallest
magnitude, the region the events' bounding box and the end the last event's time. Magnitudes reported in bins
(0.1 or 0.01, as networks do) are detected, and b gets Utsu's bin correction (``--delta-m`` overrides).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from .catalog import CatalogError, read_catalog
from .inversion import MODELS, InversionError, fit_catalog, magnitude_bin


def _fit(args) -> int:
    try:
        catalog, meta = read_catalog(args.catalog)
    except (OSError, CatalogError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if "window" in catalog.columns:
        print("error: this catalog has a window column (synthetic windows, one clock each); fit them with "
              "etasvae.inversion.fit_windows", file=sys.stderr)
        return 2
    if len(catalog) == 0:
        print(f"error: {args.catalog} holds no events", file=sys.stderr)
        return 2
    mc = args.mc if args.mc is not None else meta.get("mc", float(catalog["magnitude"].min()))
    region = meta.get("region_km")
    if region is None:
        region = [catalog[c].agg(f) for c in ("x", "y") for f in ("min", "max")]
    t_begin = 0.0 if "duration_days" in meta else float(catalog["time"].min())
    t_end = float(meta.get("duration_days", np.nextafter(catalog["time"].max(), np.inf)))
    delta_m = args.delta_m if args.delta_m is not None else magnitude_bin(catalog["magnitude"].to_numpy())
    profile = False if args.profile is None else (tuple(args.profile) or True)
    try:
        fit = fit_catalog(catalog, mc=mc, model=args.model, t_start=t_begin + args.aux_days, t_end=t_end,
                          region=tuple(float(v) for v in region), cut_mass=args.cut_mass, n_starts=args.starts,
                          delta_m=delta_m, profile=profile, profile_level=args.profile_level)
    except InversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**fit.to_dict(), "mc": mc, "delta_m": delta_m}, indent=2))
        return 0
    print(f"{args.catalog}: {args.model} ETAS, Mc = {mc:g}, magnitude bin {delta_m:g}, target [{t_begin + args.aux_days:g}, {t_end:g}) days, "
          f"{fit.n_target} target events, {fit.n_history} history events, {fit.n_pairs} pairs")
    if profile:
        print(f"  {'':>16}   {'estimate':>12}    {'std error':<9}  profile-likelihood interval ({100 * args.profile_level:g} %)")
    for row in fit.table().itertuples():
        interval = f"  [{row.profile_lower:.4g}, {row.profile_upper:.4g}]" if row.parameter in fit.profile_intervals else ""
        print(f"  {row.parameter:>16} = {row.estimate:12.6g} +- {row.std_error:<9.3g}{interval}")
    n, n_se = fit.estimates["branching_ratio"], fit.std_errors["branching_ratio"]
    print(f"branching ratio n = {n:.4f} +- {n_se:.4f}; expected background events "
          f"{fit.background_probability.sum():.1f}; log-likelihood {fit.loglik:.3f}; "
          f"kernel mass beyond the pair cut {fit.cut['neglected_mass']:.3g}" + ("" if fit.converged else "; NOT CONVERGED"))
    if fit.at_bound:
        print(f"note: {', '.join(fit.at_bound)} at the edge of the allowed range; their errors are not meaningful")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m etasvae", description="etasvae command line tools")
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser("fit", help="maximum-likelihood ETAS fit of a catalog (Parquet, catalog schema)")
    fit.add_argument("catalog")
    fit.add_argument("--model", choices=MODELS, default="space-time")
    fit.add_argument("--mc", type=float, default=None, help="completeness magnitude (default: the catalog's)")
    fit.add_argument("--aux-days", type=float, default=0.0,
                     help="the first D days are history only: they trigger but are not scored (default 0)")
    fit.add_argument("--cut-mass", type=float, default=0.05,
                     help="kernel mass beyond the pair cut, in time and in space (default 0.05)")
    fit.add_argument("--starts", type=int, default=3, help="optimiser starts (default 3)")
    fit.add_argument("--delta-m", type=float, default=None,
                     help="magnitude bin width for b (default: 0.1 or 0.01 when the magnitudes are on that grid, else 0)")
    fit.add_argument("--profile", nargs="*", default=None, metavar="PARAMETER",
                     help="also profile-likelihood intervals of the named parameters (mu K alpha c p D q gamma "
                          "branching_ratio), of all when none is named (about twenty refits each)")
    fit.add_argument("--profile-level", type=float, default=0.95, help="their confidence level (default 0.95)")
    fit.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.aux_days < 0:
        parser.error(f"--aux-days = {args.aux_days}: must be >= 0")
    if not 0 < args.profile_level < 1:
        parser.error(f"--profile-level = {args.profile_level}: must be in (0, 1)")
    if args.delta_m is not None and not 0 <= args.delta_m < 1:
        parser.error(f"--delta-m = {args.delta_m}: must be in [0, 1)")
    return _fit(args)


if __name__ == "__main__":
    sys.exit(main())
