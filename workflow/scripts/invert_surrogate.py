"""ETAS parameters refitted from one parameter set's chained surrogate catalogs, with the set's truth."""

from etasvae.catalog import read_catalog
from etasvae.fileio import write_json
from etasvae.params import ETASParams
from etasvae.scripting import setup_log
from etasvae.surrogate_eval import fit_chains

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
catalog, meta = read_catalog(smk.input[0])
truth = {k: v for k, v in dict(p.etas).items() if k != "branching_ratio"}
truth["branching_ratio"] = ETASParams.from_dict(truth).branching_ratio()
fit = fit_chains(catalog, mc=meta["mc"], duration=p.duration_days, region=p.region_km, aux_days=p.aux_days,
                 cut_mass=p.cut_mass, n_starts=p.starts, max_chains=p.chains_fitted)
write_json(smk.output[0], {"set": smk.wildcards.set, "truth": truth, "fit": fit, "chains_fitted": p.chains_fitted})
log.info("%s", fit)
