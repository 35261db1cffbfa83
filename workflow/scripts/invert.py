"""ETAS parameters carried by a model's synthetic windows, next to its config's held-out and training window
fits (and, for an ETAS config, the whole held-out catalog's fit and the truth)."""

from etasvae.catalog import read_catalog
from etasvae.evaluate import split_windows
from etasvae.fileio import atomic_write, read_json, write_json
from etasvae.inversion_report import inversion_table, invert_model
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
synthetic, meta = read_catalog(smk.input.synthetic)
spec = meta["spec"]
duration = spec.get("duration_days") if spec["representation"] == "binned" else None
synthetic_windows = split_windows(synthetic, duration, meta["n_windows"])
catalog_fit = read_json(smk.input.catalog_fit) if smk.input.catalog_fit else None  # none for a dataset
result = invert_model(synthetic_windows, read_json(smk.input.reference), catalog_fit, truth=dict(p.etas),
                      mc=spec["mc"], cut_mass=p.cut_mass, n_starts=p.starts)
atomic_write(smk.output.table, lambda tmp: inversion_table(result).to_csv(tmp, index=False))
write_json(smk.output.summary, result)
log.info("%s", inversion_table(result).to_string())
