"""A dataset's ETAS fit of its training period simulated over the held-out period given the history, cut into
windows as the held-out windows are (etasvae.dataset_simulation): the synthetic set of a third generator, in the
format of a VAE's sampled windows; a fit that cannot be simulated leaves an empty set and the reason."""

from etasvae.catalog import read_catalog, write_catalog
from etasvae.dataset_simulation import simulate_heldout_windows, synthetic_metadata
from etasvae.features import read_windows
from etasvae.fileio import read_json, write_json
from etasvae.sample import n_synthetic_windows
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
catalog, meta = read_catalog(smk.input.catalog)
table, _, spec, _ = read_windows(smk.input.windows, features=False)
fit = read_json(smk.input.fit)
n = n_synthetic_windows(smk.params.n_windows, table)  # the VAE's synthetic set size
synthetic, info = simulate_heldout_windows(catalog, meta, fit, spec, n_windows=n, seed=smk.params.seed)
info["heldout_windows"] = int((table["role"] == "heldout").sum())
write_catalog(synthetic, smk.output.catalog, synthetic_metadata(info, spec, smk.input.fit), mc=spec["mc"])
write_json(smk.output.info, info)
if info["available"]:
    log.info("%d windows from %d simulated held-out periods (%d events)", info["n_windows"], info["n_continuations"], info["n_events"])
else:
    log.warning("no ETAS-simulated set: %s", info["reason"])
