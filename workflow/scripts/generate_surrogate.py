"""Chained surrogate catalogs of the simulated duration, for every grid point and off-grid point."""

import numpy as np

from etasvae.catalog import write_catalog
from etasvae.scripting import setup_log
from etasvae.surrogate import chain_catalog, chain_metadata, conditions_of, generate_chains, load_surrogate

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
model, payload = load_surrogate(smk.input[0])
sets, plan = list(p.sets), dict(p.plan)
c = np.repeat(conditions_of(plan, payload, sets), p.chains, axis=0)
chains = generate_chains(model, c, p.duration_days, seed=p.seed, burn_in_windows=p.burn_in_windows, log=log.info)
for i, (name, path) in enumerate(zip(sets, smk.output)):
    catalog = chain_catalog(chains[i * p.chains:(i + 1) * p.chains])
    point = plan["sets"][name]
    meta = chain_metadata(model.spec, name, values=point["values"], set_kind=point["kind"], flags=point["flags"],
                          chains=p.chains, duration_days=p.duration_days, seed=p.seed,
                          burn_in_windows=p.burn_in_windows)
    write_catalog(catalog, path, meta, mc=model.spec["mc"])
    log.info("%s: %d chains, %d events", name, p.chains, len(catalog))
