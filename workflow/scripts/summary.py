"""The run summary: every config x VAE setting, ranked per config, as HTML and CSV."""

from pathlib import Path

from etasvae.fileio import read_json
from etasvae.inversion_report import summary_columns
from etasvae.report import render_summary
from etasvae.report.forecast_table import forecast_columns, with_vae_scores
from etasvae.report.generators import simulated_columns
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
summaries = [read_json(path) for path in smk.input.summaries]
# ETAS inversion columns, matched by the results/inversion/{config}/{vae}/estimates.json path
inversions = {tuple(Path(path).parts[-3:-1]): read_json(path) for path in smk.input.inversions}
# a dataset's forecast scores, matched by the results/forecast/{dataset}/scores.json path
forecasts = {Path(path).parts[-2]: read_json(path) for path in smk.input.forecasts}
# and its VAE settings' (results/forecast/{dataset}/vae/{vae}.json)
vae_forecasts = [(Path(path).parts[-3], read_json(path)) for path in smk.input.vae_forecasts]
forecasts = {d: with_vae_scores(s, [e for dd, e in vae_forecasts if dd == d]) for d, s in forecasts.items()}
# a dataset's ETAS fit simulated, per representation (results/etas_simulated/{dataset}/{representation}/metrics.json)
simulated: dict[str, dict[str, dict]] = {}
for path in smk.input.etas_simulated:
    simulated.setdefault(Path(path).parts[-3], {})[Path(path).parts[-2]] = read_json(path)
for s in summaries:
    found = inversions.get((s["config_id"], s["vae_id"]))
    columns = summary_columns(found) if found else {}
    columns.update(forecast_columns(forecasts.get(s["config_id"]), vae_id=s["vae_id"]))
    rep = (s.get("settings") or {}).get("representation")
    columns.update(simulated_columns(simulated.get(s["config_id"], {}).get(rep)))
    if columns:
        s["extra_columns"] = columns
table = render_summary(smk.output.html, smk.output.table, summaries, etas=dict(smk.params.etas), vaes=dict(smk.params.vaes),
                       forecasts=forecasts, simulated=simulated)
log.info("summary of %d models", len(table))
