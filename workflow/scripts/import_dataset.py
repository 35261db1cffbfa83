"""Import a real catalog: read and check the file, select, estimate Mc, project to km; write catalog and report."""

from etasvae.realdata import import_dataset
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
report = import_dataset(dict(smk.params.dataset), smk.input[0], smk.output.catalog, smk.output.report)
log.info("kept %d events, Mc = %s (%s); counts %s", report["counts"]["kept"], report["mc"], report["mc_method"], report["counts"])
