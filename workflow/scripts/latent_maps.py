"""PCA and t-SNE maps of a model's latent space, with synthetic windows (the z they were decoded from) placed
on them, and an interpolation."""

import pandas as pd

from etasvae.latent import latent_columns, plot_interpolation, plot_pca, plot_tsne
from etasvae.scripting import setup_log
from etasvae.vae import load_model

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
bundle = load_model(smk.input.model)
embedding = pd.read_parquet(smk.input.embedding)
latents = pd.read_parquet(smk.input.synthetic_latent)
synthetic = latents[latent_columns(latents)[0]].to_numpy()
plot_pca(embedding, smk.output.pca, title=p.title, synthetic=synthetic)
plot_tsne(embedding, smk.output.tsne, title=p.title, perplexity=p.perplexity, seed=p.seed, synthetic=synthetic)
plot_interpolation(bundle, embedding, smk.output.interpolation, title=p.title)
