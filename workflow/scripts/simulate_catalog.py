"""Simulate one ETAS catalog (one config, one replicate) and write it as Parquet."""

import numpy as np

from etasvae.catalog import write_catalog
from etasvae.params import ETASParams
from etasvae.scripting import setup_log
from etasvae.simulate import catalog_metadata, simulate_etas

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
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
metadata = catalog_metadata(smk.wildcards.cfg, int(smk.wildcards.rep), p.seed, p.etas, params, sim)
write_catalog(catalog, smk.output[0], metadata, mc=params.mc)
log.info("wrote %d events to %s", len(catalog), smk.output[0])
