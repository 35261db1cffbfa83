"""Pool every config's windows into one table carrying each window's config id and ETAS parameters."""

from etasvae.features import pool_windows, read_windows, write_windows
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
items, etas = [], {}
for cfg, path in zip(smk.params.configs, smk.input):
    table, X, spec, meta = read_windows(path)
    etas[cfg] = meta["etas"][cfg]
    items.append((cfg, etas[cfg], table, X))
table, X = pool_windows(items)
write_windows(smk.output[0], table, X, spec, {"config_id": "pooled", "etas": etas})
log.info("pooled %d windows from %d configs", len(table), len(items))
