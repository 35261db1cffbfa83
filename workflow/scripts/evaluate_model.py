"""Compare a model's synthetic windows with its held-out windows (ETAS, or a dataset's held-out period), next to the floor and a Poisson baseline."""

from etasvae.catalog import catalog_files, read_metadata
from etasvae.evaluate import evaluate_model, evaluation_summary
from etasvae.features import read_windows
from etasvae.fileio import atomic_write, read_json, write_json
from etasvae.realdata import dataset_facts
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
# the windows table without feature vectors; the catalogs and the synthetic catalog as files, read when
# their windows are cut (one catalog at a time, only the synthetic windows evaluated): bounded memory
table, _, spec, _ = read_windows(smk.input.windows, features=False)
synthetic_meta = read_metadata(smk.input.synthetic)
catalogs = catalog_files(p.catalog_keys, smk.input.catalogs)
# the reference catalogs (evaluation only; none for a dataset): more held-out windows and the floor's set
references = catalog_files(p.reference_keys, smk.input.references) if p.reference_keys else None
# the joint ETAS fits of S, H and A (the ETAS-parameter rows); none for the pooled model (no single truth)
etas_fits = read_json(smk.input.inversion)["fits"] if smk.input.inversion else None
metrics, n_windows, figures = evaluate_model(
    table, catalogs, spec, smk.input.synthetic, synthetic_meta, config_id=p.config_id, seed=p.seed, permutations=p.permutations, cv_folds=p.cv_folds,
    figures_dir=smk.output.figures, title=f"{p.config_id}\n{p.vae_id}", etas_fits=etas_fits, real=bool(smk.input.dataset),
    references=references, reference_windows=p.reference_windows, duration_days=p.duration_days, max_windows=p.max_windows,
    mmd_windows=p.mmd_windows,
)
log.info("window sets: %s", n_windows)
atomic_write(smk.output.metrics, lambda tmp: metrics.to_csv(tmp, index=False))
summary = evaluation_summary(metrics, config_id=p.config_id, vae_id=p.vae_id, settings=p.settings,
                             n_windows=n_windows, health=read_json(smk.input.health), figures=figures,
                             cv_folds=p.cv_folds, real=bool(smk.input.dataset),
                             floor_set="reference" if references else "training")
if smk.input.dataset:  # a real catalog: H are its held-out-period windows, A its training-period windows
    summary["real_catalog"] = dataset_facts(read_json(smk.input.dataset))
write_json(smk.output.summary, summary)
log.info("overall score %.3f", summary["overall_score"])
