"""Apply a trained model once: encode every window of its table to the latent posterior (embedding, latent
metrics, the model's health on its held-out windows); draw synthetic windows from its sampling prior and
write them as a catalog in the catalog schema; draw the PCA and t-SNE maps of the latent space with the
synthetic windows (the z they were decoded from) placed on them, and an interpolation. Each part is seeded
on its own, so none depends on another having run."""

from etasvae.catalog import write_catalog
from etasvae.features import read_windows
from etasvae.fileio import atomic_write, write_json
from etasvae.latent import (embed_windows, latent_columns, latent_metrics, model_health, plot_interpolation, plot_pca,
                            plot_tsne)
from etasvae.sample import latent_table, n_synthetic_windows, sample_catalog, synthetic_metadata
from etasvae.scripting import setup_log
from etasvae.models.files import load_model
from etasvae.models.sequence import window_origins

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
bundle = load_model(smk.input.model)

table, X, spec, meta = read_windows(smk.input.windows)
embedding = embed_windows(bundle, table, X, etas=dict(p.etas))
metrics = latent_metrics(embedding, knn_neighbors=p.knn_neighbors, seed=p.latent_seed)
atomic_write(smk.output.embedding, lambda tmp: embedding.to_parquet(tmp, index=False))
write_json(smk.output.metrics, metrics)
heldout = table["role"].to_numpy() == "heldout"
origin = window_origins(table)
write_json(smk.output.health, model_health(bundle, X[heldout], None if origin is None else origin[heldout]))
log.info("embedded %d windows; %s active latent units", len(embedding), metrics.get("n_active"))

n = n_synthetic_windows(p.n_windows, table)
catalog, info, z = sample_catalog(bundle, n, mode=p.mode, seed=p.sample_seed, return_latent=True)
metadata = synthetic_metadata(smk.input.model, bundle.spec, mode=p.mode, seed=p.sample_seed, n_windows=n)
write_catalog(catalog, smk.output.catalog, metadata, mc=bundle.spec["mc"])
write_json(smk.output.clipping, info)
synthetic_z = latent_table(z)
atomic_write(smk.output.latent, lambda tmp: synthetic_z.to_parquet(tmp, index=False))
log.info("sampled %d windows, %d events (%s); physical-range mapping: %s", n, len(catalog), p.mode, info)

synthetic = synthetic_z[latent_columns(synthetic_z)[0]].to_numpy()
plot_pca(embedding, smk.output.pca, title=p.title, synthetic=synthetic)
plot_tsne(embedding, smk.output.tsne, title=p.title, perplexity=p.perplexity, seed=p.latent_seed, synthetic=synthetic)
plot_interpolation(bundle, embedding, smk.output.interpolation, title=p.title)
