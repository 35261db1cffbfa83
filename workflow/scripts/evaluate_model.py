"""Compare a model's synthetic windows with held-out ETAS windows, next to the ETAS floor and a Poisson baseline."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

import numpy as np  # noqa: E402

from etasvae.catalog import atomic_write, read_catalog  # noqa: E402
from etasvae.evaluate import compare_sets, overall_score, verdict  # noqa: E402
from etasvae.features import read_windows  # noqa: E402
from etasvae.latent import model_health  # noqa: E402
from etasvae.report import plot_comparison_figures, write_json  # noqa: E402
from etasvae.seqvae import window_origins  # noqa: E402
from etasvae.vae import load_model  # noqa: E402
from etasvae.windowsets import evaluation_sets  # noqa: E402

p = smk.params
rng = np.random.default_rng(p.seed)
bundle = load_model(smk.input.model)
table, X, spec, meta = read_windows(smk.input.windows)
synthetic, synthetic_meta = read_catalog(smk.input.synthetic)
sets = evaluation_sets(table, X, spec, synthetic, rng=rng, n_synthetic=synthetic_meta["n_windows"])
log.info("window sets: %s", {k: len(v) for k, v in sets.items()})
metrics = compare_sets(sets["S"], sets["H"], sets["A"], sets["P"], mc=spec["mc"], rng=rng, n_permutations=p.permutations, cv_folds=p.cv_folds)
heldout = table["role"].to_numpy() == "heldout"
origin = window_origins(table)
health = model_health(bundle, X[heldout], None if origin is None else origin[heldout])
atomic_write(smk.output.metrics, lambda tmp: metrics.to_csv(tmp, index=False))
figures = plot_comparison_figures(sets, mc=spec["mc"], outdir=smk.output.figures, title=f"{p.config_id}\n{p.vae_id}")
summary = {
    "config_id": p.config_id,
    "vae_id": p.vae_id,
    "settings": dict(p.settings),
    "overall_score": overall_score(metrics),
    "verdict": verdict(metrics),
    "n_windows": {k: len(v) for k, v in sets.items()},
    "health": health,
    "figures": figures,
    "statistics": metrics.set_index("statistic").to_dict(orient="index"),
}
write_json(smk.output.summary, summary)
log.info("overall score %.3f", summary["overall_score"])
