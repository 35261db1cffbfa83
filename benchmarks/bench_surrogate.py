"""Surrogate generation speed against the simulator on the same parameters (events per second).

    PYTHONPATH=workflow python benchmarks/bench_surrogate.py MODEL.pt [--config config.yaml] [--chains 1 8 32]
        [--device cpu|cuda] [--threads 1]

MODEL.pt is a trained surrogate (``results/surrogate/model.pt`` of ``snakemake surrogate``). For every grid
point of the config the surrogate chains catalogs of ``simulation.duration_days`` (``--chains`` at once: the
chains run as one batch, so the rate grows with the batch) and the simulator (``etasvae.simulate``) makes
as many catalogs with the config's burn-in and margin, one after the other. Rates are catalog events per
wall second (best of ``--repeats``). The statistical cost beside them: the surrogate catalogs' Fano factor of
daily counts and CV of inter-event times against the simulator's catalogs (mean over catalogs).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import yaml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--config", default="config.yaml")
    ap.add_argument("--chains", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from snakemake.utils import validate

    from etasvae.conditioning import surrogate_plan
    from etasvae.config import etas_configs
    from etasvae.params import ETASParams
    from etasvae.simulate import simulate_etas
    from etasvae.surrogate import conditions_of, generate_chains, load_surrogate
    from etasvae.surrogate_eval import catalog_values

    config = yaml.safe_load(open(args.config))
    validate(config, "workflow/schemas/config.schema.yaml")
    etas = etas_configs(config)
    plan = surrogate_plan(config, etas)
    model, payload = load_surrogate(args.model, device=args.device)
    sim = config["simulation"]
    T = sim["duration_days"]
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else f'{args.threads} thread(s)'}), "
          f"duration {T:g} days")
    print(f"{'grid point':<20} {'chains':>6} {'surrogate ev/s':>15} {'simulator ev/s':>15} {'ratio':>7}   "
          f"{'Fano S / ETAS':>14} {'CV S / ETAS':>12}")
    for cid in plan["trained"] + plan["heldout"]:
        c = conditions_of(plan, payload, [cid])
        params = ETASParams(**{k: v for k, v in etas[cid].items() if k != "branching_ratio"})
        for n in args.chains:
            best_s, best_e = np.inf, np.inf
            for r in range(args.repeats):
                t0 = time.perf_counter()
                chains = generate_chains(model, np.repeat(c, n, axis=0), T, seed=r)
                if args.device == "cuda":
                    torch.cuda.synchronize()
                best_s = min(best_s, time.perf_counter() - t0)
                t0 = time.perf_counter()
                cats = [simulate_etas(params, duration=T, region=tuple(sim["region_km"]), rng=np.random.default_rng([r, k]),
                                      burn_in=sim["burn_in_days"], margin=sim["margin_km"]) for k in range(n)]
                best_e = min(best_e, time.perf_counter() - t0)
            ns, ne = sum(len(ch) for ch in chains), sum(len(x) for x in cats)
            vs, ve = catalog_values(chains, T, sim["mc"]), catalog_values(cats, T, sim["mc"])
            fano = f"{10 ** np.nanmean(vs['log10_fano']):.2f} / {10 ** np.nanmean(ve['log10_fano']):.2f}"
            cv = f"{np.nanmean(vs['cv']):.2f} / {np.nanmean(ve['cv']):.2f}"
            label = f"{plan['sets'][cid]['kind']} " + ",".join(f"{k}={v:g}" for k, v in plan["sets"][cid]["values"].items())
            print(f"{label:<20} {n:>6} {ns / best_s:>15.0f} "
                  f"{ne / best_e:>15.0f} {ns / best_s / (ne / best_e):>7.3f}   {fano:>14} {cv:>12}")


if __name__ == "__main__":
    main()
