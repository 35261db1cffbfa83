"""The chaining for one config's model: the surrogate's model trained on that config's windows alone (no
conditioning), then chained into catalogs of the simulated duration."""

import numpy as np

from etasvae.catalog import read_catalogs, write_catalog
from etasvae.features import read_windows
from etasvae.scripting import setup_log
from etasvae.models.conditional import train_surrogate
from etasvae.models.intensity_fit import fit_training_catalogs
from etasvae.models.training import pick_device
from etasvae.surrogate import chain_catalog, chain_metadata, generate_chains, save_surrogate, training_data

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
cfg = smk.wildcards.cfg
table, X, spec, _ = read_windows(smk.input.windows)
catalogs = read_catalogs(p.catalog_keys, smk.input.catalogs)
data = training_data(table, catalogs, spec, {cfg: np.zeros(0, dtype=np.float32)})
split = {role: {k: v[data["role"] == role] for k, v in data.items()} for role in ("train", "validation")}
rows = (table["config_id"] == cfg).to_numpy()
fit = fit_training_catalogs(table[rows], X[rows], spec, log=log.info) if p.settings["decoder"] == "autoregressive" else None
model, _, history = train_surrogate(split["train"], split["validation"], dict(p.settings), spec, log=log.info,
                                    dev=pick_device(),
                                    intensity_fits=None if fit is None else [(np.zeros(0), fit["estimates"])])
save_surrogate(smk.output.model, model, dict(p.settings), spec, {"varied": [], "ranges": {}, "config": cfg}, history)
chains = generate_chains(model, np.zeros((p.chains, 0), dtype=np.float32), p.duration_days, seed=p.seed,
                         burn_in_windows=p.burn_in_windows, log=log.info)
meta = chain_metadata(model.spec, cfg, values={}, set_kind="per-config", flags=[], chains=p.chains,
                      duration_days=p.duration_days, seed=p.seed, burn_in_windows=p.burn_in_windows)
write_catalog(chain_catalog(chains), smk.output.catalogs, meta, mc=model.spec["mc"])
log.info("%s: %d chains, %d events", cfg, p.chains, sum(len(c) for c in chains))
