"""Encode every window of a model's table to its latent posterior; write the embedding and latent metrics."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

from etasvae.catalog import atomic_write  # noqa: E402
from etasvae.features import read_windows  # noqa: E402
from etasvae.latent import embed_windows, latent_metrics  # noqa: E402
from etasvae.fileio import write_json  # noqa: E402
from etasvae.vae import load_model  # noqa: E402

bundle = load_model(smk.input.model)
table, X, spec, meta = read_windows(smk.input.windows)
embedding = embed_windows(bundle, table, X, etas=dict(smk.params.etas))
metrics = latent_metrics(embedding, knn_neighbors=smk.params.knn_neighbors, seed=smk.params.seed)
atomic_write(smk.output.embedding, lambda tmp: embedding.to_parquet(tmp, index=False))
write_json(smk.output.metrics, metrics)
log.info("embedded %d windows; %s active latent units", len(embedding), metrics.get("n_active"))
