"""Train the conditional surrogate on the pooled windows of the trained grid points (with their histories)."""

from etasvae.catalog import read_catalogs
from etasvae.conditioning import standardise
from etasvae.features import read_windows
from etasvae.fileio import write_csv
from etasvae.scripting import setup_log
from etasvae.models.conditional import train_surrogate
from etasvae.models.intensity_fit import fit_training_catalogs
from etasvae.models.training import pick_device, plot_loss_curves
from etasvae.surrogate import save_surrogate, training_data

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
plan = dict(p.plan)
table, X, spec, _ = read_windows(smk.input.windows)
catalogs = read_catalogs(p.catalog_keys, smk.input.catalogs)
conditions = {c: standardise(plan["sets"][c]["values"], plan["varied"], plan["ranges"]) for c in plan["trained"]}
data = training_data(table, catalogs, spec, conditions)
split = {role: {k: v[data["role"] == role] for k, v in data.items()} for role in ("train", "validation")}
log.info("trained configs %s, held out %s", plan["trained"], plan["heldout"])
# the autoregressive intensity is held at the ETAS fits of each trained config's training catalogs
fits = []
if p.settings["decoder"] == "autoregressive":
    for c in plan["trained"]:
        rows = (table["config_id"] == c).to_numpy()
        fit = fit_training_catalogs(table[rows], X[rows], spec, log=log.info)
        fits.append(None if fit is None else (conditions[c], fit["estimates"]))
model, _, history = train_surrogate(split["train"], split["validation"], dict(p.settings), spec, log=log.info,
                                    dev=pick_device(), intensity_fits=None if None in fits else fits)
save_surrogate(smk.output.model, model, dict(p.settings), spec, plan, history)
write_csv(smk.output.history, history)
plot_loss_curves(history, smk.output.curves, title="surrogate")
