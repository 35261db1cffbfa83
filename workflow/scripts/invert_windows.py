"""Joint ETAS fits of one config's held-out and training windows (the catalogs' own events): the reference
and the noise floor of the evaluation's ETAS-parameter statistics, fitted once per config and representation."""

from etasvae.catalog import catalog_files
from etasvae.evaluate import catalog_windows
from etasvae.features import read_windows
from etasvae.fileio import write_json
from etasvae.inversion_report import fit_reference_windows
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
# the table without feature vectors; catalogs as files, read one at a time when their windows are cut
table, _, spec, _ = read_windows(smk.input.windows, features=False)
catalogs = catalog_files(p.catalog_keys, smk.input.catalogs)
result = fit_reference_windows(table, lambda sub: catalog_windows(sub, catalogs, spec, p.config_id), mc=spec["mc"],
                               max_windows=p.max_windows, cut_mass=p.cut_mass, n_starts=p.starts)
write_json(smk.output[0], result)
log.info("%s", result)
