"""Import a real catalog: read and check the file, select, estimate Mc, project to km; write catalog and report."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

from etasvae.realdata import import_dataset  # noqa: E402

report = import_dataset(dict(smk.params.dataset), smk.input[0], smk.output.catalog, smk.output.report)
log.info("kept %d events, Mc = %s (%s); counts %s", report["counts"]["kept"], report["mc"], report["mc_method"], report["counts"])
