"""Evaluate the surrogate at one grid point: its chains cut into windows (the per-config statistics) and
as whole catalogs (Fano factor of daily counts, 30-day counts, CV, b) against the ETAS catalogs."""

from etasvae.catalog import read_catalog, read_catalogs
from etasvae.features import read_windows
from etasvae.fileio import atomic_write, write_json
from etasvae.scripting import setup_log
from etasvae.surrogate_eval import evaluate_point

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
table, _, spec, _ = read_windows(smk.input.windows)
synthetic, meta = read_catalog(smk.input.synthetic)
catalogs = read_catalogs(p.catalog_keys, smk.input.catalogs)
windows, catalog_table, summary = evaluate_point(
    table, catalogs, spec, synthetic, config_id=smk.wildcards.cfg, kind=p.kind, values=dict(p.values),
    heldout_replicates=list(p.heldout_replicates), duration=p.duration_days, seed=p.seed,
    permutations=p.permutations, cv_folds=p.cv_folds, figures_dir=smk.output.figures,
)
atomic_write(smk.output.windows, lambda tmp: windows.to_csv(tmp, index=False))
atomic_write(smk.output.catalogs, lambda tmp: catalog_table.to_csv(tmp, index=False))
write_json(smk.output.summary, summary)
log.info("window score %.3f; catalog skills %s", summary["overall_score"], summary["catalog_skill"])
