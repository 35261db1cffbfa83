"""One self-contained HTML page for one config x VAE setting."""

import pandas as pd

from etasvae.fileio import read_json
from etasvae.inversion_report import inversion_html
from etasvae.report import render_model_page
from etasvae.report.forecast_table import forecast_html, with_vae_scores
from etasvae.report.generators import generators_html
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
i = smk.input
inversion = [i.inversion] if isinstance(i.inversion, str) else list(i.inversion)  # none: pooled model, datasets
summary = read_json(i.summary)
forecast = read_json(i.forecast) if isinstance(i.forecast, str) else None  # a dataset's held-out period as a forecast
forecast = with_vae_scores(forecast, [read_json(f) for f in i.vae_forecasts])  # and every VAE setting's
# a dataset's ETAS fit simulated over the held-out period, the generator beside the VAE (none for ETAS configs)
generators = generators_html(summary, read_json(i.etas_simulated), smk.params.vae_id) if isinstance(i.etas_simulated, str) else ""
images = {**summary["figures"], "loss_curves": i.curves, "pca": i.pca, "tsne": i.tsne, "interpolation": i.interpolation}
render_model_page(
    smk.output[0],
    config_id=smk.params.config_id,
    vae_id=smk.params.vae_id,
    settings=dict(smk.params.settings),
    metrics=pd.read_csv(i.metrics),
    summary=summary,
    latent_metrics=read_json(i.latent_metrics),
    clipping=read_json(i.clipping),
    images=images,
    extra_html=generators + forecast_html(forecast, vae_id=smk.params.vae_id) + "".join(inversion_html(read_json(f)) for f in inversion),
)
