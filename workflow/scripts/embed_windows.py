"""Encode every window of a model's table to its latent posterior; write the embedding, latent metrics
and the model's health on its held-out windows."""

from etasvae.features import read_windows
from etasvae.fileio import atomic_write, write_json
from etasvae.latent import embed_windows, latent_metrics, model_health
from etasvae.scripting import setup_log
from etasvae.seqvae import window_origins
from etasvae.vae import load_model

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
bundle = load_model(smk.input.model)
table, X, spec, meta = read_windows(smk.input.windows)
embedding = embed_windows(bundle, table, X, etas=dict(smk.params.etas))
metrics = latent_metrics(embedding, knn_neighbors=smk.params.knn_neighbors, seed=smk.params.seed)
atomic_write(smk.output.embedding, lambda tmp: embedding.to_parquet(tmp, index=False))
write_json(smk.output.metrics, metrics)
heldout = table["role"].to_numpy() == "heldout"
origin = window_origins(table)
write_json(smk.output.health, model_health(bundle, X[heldout], None if origin is None else origin[heldout]))
log.info("embedded %d windows; %s active latent units", len(embedding), metrics.get("n_active"))
