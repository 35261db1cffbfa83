"""Train one VAE on one windows table (one config, or pooled) and save weights, history and loss curves."""

from etasvae.features import read_windows
from etasvae.scripting import setup_log
from etasvae.vae import plot_loss_curves, save_model, train_vae

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
table, X, spec, meta = read_windows(smk.input[0])
settings = dict(smk.params.settings)
role = table["role"].to_numpy()
result = train_vae(X[role == "train"], X[role == "validation"], settings, log=log.info)
extra = {"config_id": smk.wildcards.model_cfg, "vae_id": smk.wildcards.vae, "etas": meta["etas"]}
save_model(smk.output.model, result, settings, spec, extra)
result.history.to_csv(smk.output.history, index=False)
plot_loss_curves(result.history, smk.output.curves, title=smk.params.title)
