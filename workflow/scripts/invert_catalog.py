"""Space-time ETAS fit of the whole held-out catalog of one config (the check of the inversion)."""

from etasvae.catalog import read_catalog
from etasvae.fileio import write_json
from etasvae.inversion_report import fit_heldout_catalog
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
catalog, meta = read_catalog(smk.input[0])
fit = fit_heldout_catalog(catalog, meta, mc=meta["mc"], aux_days=p.aux_days, cut_mass=p.cut_mass, n_starts=p.starts,
                          max_events=p.max_events)
write_json(smk.output[0], fit)
log.info("%s", fit)
