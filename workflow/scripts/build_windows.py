"""Cut one config's catalogs into windows with train / validation / held-out roles."""

from etasvae.catalog import read_catalog
from etasvae.features import build_windows, write_windows
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
catalogs = [(rep, read_catalog(path)[0]) for rep, path in zip(p.replicates, smk.input)]
durations = {rep: p.duration_days for rep in p.replicates}
table, X = build_windows(catalogs, dict(p.spec), durations=durations, **p.split)
write_windows(smk.output[0], table, X, dict(p.spec), {"config_id": smk.wildcards.cfg, "etas": {smk.wildcards.cfg: dict(p.etas)}})
log.info("%d windows (%s) of %d features", len(table), table["role"].value_counts().to_dict(), X.shape[1])
