"""The run summary: every config x VAE setting, ranked per config, as HTML and CSV."""

from etasvae.fileio import read_json
from etasvae.report import render_summary
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
summaries = [read_json(path) for path in smk.input.summaries]
table = render_summary(smk.output.html, smk.output.table, summaries, etas=dict(smk.params.etas), vaes=dict(smk.params.vaes))
log.info("summary of %d models", len(table))
