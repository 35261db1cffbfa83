"""A dataset's held-out period as a forecast: the ETAS fit of its training period, then the scores of
Poisson and the fit (etasvae.dataset_forecast); a fit that is not usable is flagged, never a failure."""

from pathlib import Path

from etasvae.catalog import read_catalog
from etasvae.dataset_forecast import fit_training_period, forecast_scores
from etasvae.fileio import write_json
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
catalog, meta = read_catalog(smk.input.catalog)
aux_days = float(smk.params.aux_days)
fit = fit_training_period(catalog, meta, aux_days=aux_days)
if "error" in fit:
    log.warning("ETAS fit of the training period not possible: %s", fit["error"])
elif not fit["usable"]:
    log.warning("ETAS fit of the training period not usable: %s", "; ".join(fit["problems"]))
scores = forecast_scores(catalog, meta, fit, aux_days=aux_days, fit_file=Path(smk.output.fit).name,
                         csep=dict(smk.params.csep))
write_json(smk.output.fit, fit)
write_json(smk.output.scores, scores)
for name, s in scores["forecasters"].items():
    log.info("%s: TLL %s SLL %s MLL %s over %d events", name, s.get("tll"), s.get("sll"), s.get("mll"), scores["n_events"])
    rates = (s.get("csep") or {}).get("pass_rate")
    log.info("%s CSEP pass rates: %s", name, rates if rates else (s.get("csep") or {}).get("not_run"))
