"""The run summary: every config x VAE setting, ranked per config, as HTML and CSV."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

import json  # noqa: E402
from pathlib import Path  # noqa: E402

from etasvae.inversion_report import summary_columns  # noqa: E402
from etasvae.report import render_summary  # noqa: E402

summaries = [json.loads(Path(path).read_text()) for path in smk.input.summaries]
# ETAS inversion columns, matched by the results/inversion/{config}/{vae}/estimates.json path
inversions = {tuple(Path(path).parts[-3:-1]): json.loads(Path(path).read_text()) for path in smk.input.inversions}
for s in summaries:
    found = inversions.get((s["config_id"], s["vae_id"]))
    if found:
        s["extra_columns"] = summary_columns(found)
table = render_summary(smk.output.html, smk.output.table, summaries, etas=dict(smk.params.etas), vaes=dict(smk.params.vaes))
log.info("summary of %d models", len(table))
