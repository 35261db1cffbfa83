"""One self-contained HTML page for one config x VAE setting."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from etasvae.inversion_report import inversion_html  # noqa: E402
from etasvae.report import render_model_page  # noqa: E402

i = smk.input
inversion = [i.inversion] if isinstance(i.inversion, str) else list(i.inversion)  # none for the pooled model
summary = json.loads(Path(i.summary).read_text())
images = {**summary["figures"], "loss_curves": i.curves, "pca": i.pca, "tsne": i.tsne, "interpolation": i.interpolation}
render_model_page(
    smk.output[0],
    config_id=smk.params.config_id,
    vae_id=smk.params.vae_id,
    settings=dict(smk.params.settings),
    metrics=pd.read_csv(i.metrics),
    summary=summary,
    latent_metrics=json.loads(Path(i.latent_metrics).read_text()),
    clipping=json.loads(Path(i.clipping).read_text()),
    images=images,
    extra_html="".join(inversion_html(json.loads(Path(f).read_text())) for f in inversion),
)
