"""ETAS parameters carried by the held-out windows and the synthetic windows (next to the whole held-out
catalog's fit). The held-out windows are the catalog's own events, as in the evaluation."""

import torch

from etasvae.catalog import read_catalog, read_catalogs
from etasvae.evaluate import catalog_windows, split_windows
from etasvae.features import read_windows
from etasvae.fileio import atomic_write, read_json, write_json
from etasvae.inversion_report import inversion_table, invert_model
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
torch.set_num_threads(smk.threads)
table, _, spec, _ = read_windows(smk.input.windows)
catalogs = read_catalogs(p.catalog_keys, smk.input.catalogs)
heldout_windows = catalog_windows(table[table["role"] == "heldout"], catalogs, spec, smk.wildcards.model_cfg)
duration = spec.get("duration_days") if spec["representation"] == "binned" else None
synthetic, synthetic_meta = read_catalog(smk.input.synthetic)
synthetic_windows = split_windows(synthetic, duration, synthetic_meta["n_windows"])
result = invert_model(heldout_windows, synthetic_windows, read_json(smk.input.catalog_fit), truth=dict(p.etas),
                      mc=spec["mc"], cut_mass=p.cut_mass, n_starts=p.starts)
atomic_write(smk.output.table, lambda tmp: inversion_table(result).to_csv(tmp, index=False))
write_json(smk.output.summary, result)
log.info("%s", inversion_table(result).to_string())
