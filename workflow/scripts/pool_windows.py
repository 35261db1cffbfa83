"""Pool every config's windows into one table carrying each window's config id and ETAS parameters."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

from etasvae.features import pool_windows, read_windows, write_windows  # noqa: E402

items, etas = [], {}
for cfg, path in zip(smk.params.configs, smk.input):
    table, X, spec, meta = read_windows(path)
    etas[cfg] = meta["etas"][cfg]
    items.append((cfg, etas[cfg], table, X))
table, X = pool_windows(items)
write_windows(smk.output[0], table, X, spec, {"config_id": "pooled", "etas": etas})
log.info("pooled %d windows from %d configs", len(table), len(items))
