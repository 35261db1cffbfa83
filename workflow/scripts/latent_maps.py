"""PCA and t-SNE maps of a model's latent space, with synthetic windows placed on them, and an interpolation."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

import pandas as pd  # noqa: E402

from etasvae.catalog import read_catalog  # noqa: E402
from etasvae.latent import plot_interpolation, plot_pca, plot_tsne, synthetic_latents  # noqa: E402
from etasvae.vae import load_model  # noqa: E402

p = smk.params
bundle = load_model(smk.input.model)
embedding = pd.read_parquet(smk.input.embedding)
synthetic = synthetic_latents(bundle, read_catalog(smk.input.synthetic)[0])
plot_pca(embedding, smk.output.pca, title=p.title, synthetic=synthetic)
plot_tsne(embedding, smk.output.tsne, title=p.title, perplexity=p.perplexity, seed=p.seed, synthetic=synthetic)
plot_interpolation(bundle, embedding, smk.output.interpolation, title=p.title)
