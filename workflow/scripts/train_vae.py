"""Train one VAE on one windows table (one config, or pooled) and save weights, history and loss curves."""

from etasvae.features import read_windows
from etasvae.fileio import write_csv
from etasvae.scripting import setup_log
from etasvae.models.files import save_model
from etasvae.models.intensity_fit import fit_training_catalogs
from etasvae.models.sequence import window_origins
from etasvae.models.train import train_vae
from etasvae.models.training import plot_loss_curves

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
table, X, spec, meta = read_windows(smk.input[0])
settings = dict(smk.params.settings)
role = table["role"].to_numpy()
train, val = role == "train", role == "validation"
origin = window_origins(table)
# the autoregressive intensity is held at the ETAS fit of the training catalogs (etasvae.models.intensity_fit)
intensity = fit_training_catalogs(table, X, spec, log=log.info) if settings.get("decoder") == "autoregressive" else None
result = train_vae(X[train], X[val], settings, log=log.info, spec=spec,
                   origin_train=None if origin is None else origin[train],
                   origin_val=None if origin is None else origin[val],
                   intensity_globals=None if intensity is None else intensity["estimates"])
extra = {"config_id": smk.wildcards.model_cfg, "vae_id": smk.wildcards.vae, "etas": meta["etas"],
         "intensity_fit": intensity}
save_model(smk.output.model, result, settings, spec, extra)
write_csv(smk.output.history, result.history)
plot_loss_curves(result.history, smk.output.curves, title=smk.params.title)
