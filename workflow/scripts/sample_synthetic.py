"""Draw synthetic windows from a model's prior and write them as a catalog in the catalog schema."""

from etasvae.catalog import write_catalog
from etasvae.fileio import atomic_write, write_json
from etasvae.sample import latent_table, n_synthetic_windows, sample_catalog, synthetic_metadata
from etasvae.scripting import setup_log
from etasvae.vae import load_model

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
bundle = load_model(smk.input.model)
n = n_synthetic_windows(p.n_windows, smk.input.windows)
catalog, info, z = sample_catalog(bundle, n, mode=p.mode, seed=p.seed, return_latent=True)
metadata = synthetic_metadata(smk.input.model, bundle.spec, mode=p.mode, seed=p.seed, n_windows=n)
write_catalog(catalog, smk.output.catalog, metadata, mc=bundle.spec["mc"])
write_json(smk.output.clipping, info)
atomic_write(smk.output.latent, lambda tmp: latent_table(z).to_parquet(tmp, index=False))
log.info("sampled %d windows, %d events (%s); physical-range mapping: %s", n, len(catalog), p.mode, info)
