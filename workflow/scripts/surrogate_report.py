"""The surrogate's report page: grid points side by side with the per-config models, and line plots."""

import numpy as np
import pandas as pd

from etasvae.catalog import read_catalog
from etasvae.fileio import read_json
from etasvae.report.surrogate_page import render_surrogate_page
from etasvae.scripting import setup_log
from etasvae.surrogate_eval import catalog_values

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
plan = dict(p.plan)
summaries = [read_json(path) for path in smk.input.summaries]
per_config = {s["config_id"]: s["overall_score"] for s in map(read_json, smk.input.per_config)}
rows = []
for name, path in zip(p.sets, smk.input.catalogs):
    if plan["sets"][name]["kind"] != "point":
        continue
    catalog, meta = read_catalog(path)
    chains = [ch for _, ch in catalog.groupby("window", sort=True)]
    v = catalog_values(chains, p.duration_days, meta["mc"])
    rows.append({"name": name, **plan["sets"][name]["values"], "events_per_chain": float(np.mean(v["n_events"])),
                 "b_value": v["b"], "fano_daily": float(10 ** np.nanmean(v["log10_fano"])),
                 "cv_catalog": float(np.nanmean(v["cv"])), "flags": plan["sets"][name]["flags"]})
refits = {name: read_json(path) for name, path in zip(p.sets, smk.input.refits)}
heldout_fits = {s["config_id"]: read_json(path) for s, path in zip(summaries, smk.input.heldout_fits)}
chained = {s["config_id"]: s for s in map(read_json, smk.input.chained)}
table = render_surrogate_page(smk.output.html, smk.output.table, smk.output.figure, summaries, per_config,
                              pd.DataFrame(rows), plan, p.vae_id, refits, heldout_fits, chained)
log.info("surrogate report: %d grid points, %d off-grid points", len(table), len(rows))
