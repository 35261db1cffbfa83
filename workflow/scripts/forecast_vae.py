"""A dataset's VAE setting as a forecast of its held-out period (etasvae.forecast_vae): the entry
``vae:<setting id>`` that the pages put beside Poisson and the ETAS fit."""

from etasvae.catalog import read_catalog
from etasvae.fileio import write_json
from etasvae.forecast_vae import dataset_vae_scores
from etasvae.models.files import load_model
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
catalog, meta = read_catalog(smk.input.catalog)
bundle = load_model(smk.input.model, "cpu")  # CPU: the same bytes wherever it runs
entry = dataset_vae_scores(bundle, catalog, meta, vae_id=smk.wildcards.vae, aux_days=float(smk.params.aux_days),
                           csep=dict(smk.params.csep))
write_json(smk.output[0], entry)
if "not_forecaster" in entry or "not_scored" in entry:
    log.warning("%s: %s", smk.wildcards.vae, entry.get("not_forecaster") or f"not scored: {entry['not_scored']}")
else:
    log.info("%s: TLL %.4f SLL %.4f MLL %.4f over %d events (z from the preceding window)", smk.wildcards.vae,
             entry["tll"], entry["sll"], entry["mll"], entry["n_events"])
if "csep" in entry:
    log.info("%s CSEP pass rates: %s", smk.wildcards.vae, entry["csep"].get("pass_rate") or entry["csep"].get("not_run"))
