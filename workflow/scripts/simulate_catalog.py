"""Simulate one ETAS catalog (one config, one replicate) and write it as Parquet."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

import numpy as np  # noqa: E402

from etasvae.catalog import write_catalog  # noqa: E402
from etasvae.params import ETASParams  # noqa: E402
from etasvae.simulate import simulate_etas  # noqa: E402

p, sim = smk.params, smk.params.simulation
params = ETASParams.from_dict({k: v for k, v in p.etas.items() if k != "branching_ratio"})
log.info("config %s replicate %s seed %d, branching ratio %.4f", smk.wildcards.cfg, smk.wildcards.rep, p.seed, params.branching_ratio())
catalog = simulate_etas(
    params,
    duration=sim["duration_days"],
    region=tuple(sim["region_km"]),
    rng=np.random.default_rng(p.seed),
    burn_in=sim["burn_in_days"],
    margin=sim["margin_km"],
    max_events=sim["max_events"],
)
metadata = {
    "kind": "etas",
    "config_id": smk.wildcards.cfg,
    "replicate": int(smk.wildcards.rep),
    "seed": p.seed,
    "parameters": dict(p.etas),
    "mc": params.mc,
    "mmax": params.mmax,
    "region_km": list(sim["region_km"]),
    "origin": "t = 0 days is the end of the burn-in; x, y are km in the local frame",
    **{k: sim[k] for k in ("duration_days", "burn_in_days", "margin_km")},
}
write_catalog(catalog, smk.output[0], metadata, mc=params.mc)
log.info("wrote %d events to %s", len(catalog), smk.output[0])
