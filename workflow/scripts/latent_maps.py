"""PCA and t-SNE maps of a model's latent space, with synthetic windows placed on them, and an interpolation."""

import pandas as pd

from etasvae.catalog import read_catalog
from etasvae.latent import plot_interpolation, plot_pca, plot_tsne, synthetic_latents
from etasvae.scripting import setup_log
from etasvae.vae import load_model

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
bundle = load_model(smk.input.model)
embedding = pd.read_parquet(smk.input.embedding)
synthetic = synthetic_latents(bundle, read_catalog(smk.input.synthetic)[0])
plot_pca(embedding, smk.output.pca, title=p.title, synthetic=synthetic)
plot_tsne(embedding, smk.output.tsne, title=p.title, perplexity=p.perplexity, seed=p.seed, synthetic=synthetic)
plot_interpolation(bundle, embedding, smk.output.interpolation, title=p.title)
