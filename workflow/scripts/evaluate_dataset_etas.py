"""Evaluate a dataset's ETAS-simulated windows against its held-out windows as a VAE's synthetic windows are
(the same sets H and A, statistics, classifier, MMD and verdict; evaluate_model.py's calls), or record why
there is no such set."""

import os

import pandas as pd

from etasvae.catalog import read_metadata
from etasvae.dataset_simulation import GENERATOR_ID, LABEL
from etasvae.evaluate import evaluate_model, evaluation_summary
from etasvae.features import read_windows
from etasvae.fileio import atomic_write, read_json, write_json
from etasvae.realdata import dataset_facts
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
info = read_json(smk.input.info)
dataset = smk.wildcards.dataset
head = {"config_id": dataset, "vae_id": GENERATOR_ID, "generator": LABEL, "representation": smk.wildcards.representation,
        "available": bool(info["available"]), "simulation": info}
if not info["available"]:  # the explained absence: no set, the reason on the pages
    os.makedirs(smk.output.figures, exist_ok=True)
    atomic_write(smk.output.metrics, lambda tmp: pd.DataFrame(columns=["statistic"]).to_csv(tmp, index=False))
    write_json(smk.output.summary, {**head, "reason": info["reason"], "real_catalog": dataset_facts(read_json(smk.input.dataset))})
    log.warning("no ETAS-simulated set: %s", info["reason"])
else:
    table, _, spec, _ = read_windows(smk.input.windows, features=False)
    metrics, n_windows, figures = evaluate_model(
        table, {(dataset, 0): smk.input.catalog}, spec, smk.input.synthetic, read_metadata(smk.input.synthetic),
        config_id=dataset, seed=p.seed, permutations=p.permutations, cv_folds=p.cv_folds, figures_dir=smk.output.figures,
        title=f"{dataset}\n{LABEL}", real=True, max_windows=p.max_windows, mmd_windows=p.mmd_windows, synthetic_label=f"S: {LABEL}",
    )
    atomic_write(smk.output.metrics, lambda tmp: metrics.to_csv(tmp, index=False))
    summary = evaluation_summary(metrics, config_id=dataset, vae_id=GENERATOR_ID, settings={"generator": LABEL},
                                 n_windows=n_windows, health={}, figures=figures, cv_folds=p.cv_folds, real=True)
    summary.update({k: v for k, v in head.items() if k not in summary})
    summary["real_catalog"] = dataset_facts(read_json(smk.input.dataset))
    write_json(smk.output.summary, summary)
    log.info("window sets %s; overall score %.3f (%s)", n_windows, summary["overall_score"], summary["verdict_class"])
