"""Simulate a config's reference catalogs (evaluation only) and write each as Parquet."""

from etasvae.catalog import write_catalog
from etasvae.scripting import setup_log
from etasvae.evaluate.reference import simulate_reference_catalogs

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
for k, (path, (catalog, metadata, mc)) in enumerate(
    zip(smk.output, simulate_reference_catalogs(smk.wildcards.cfg, dict(p.etas), dict(p.simulation), list(p.seeds)))
):
    write_catalog(catalog, path, metadata, mc=mc)
    log.info("reference %d (seed %d): %d events", k, p.seeds[k], len(catalog))
