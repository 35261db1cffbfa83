"""Cut a real catalog into windows, the role set by its training / validation / held-out period."""

from etasvae.catalog import read_catalog
from etasvae.features import write_windows
from etasvae.realdata import dataset_spec, dataset_windows
from etasvae.scripting import setup_log

smk = snakemake  # noqa: F821  (injected by Snakemake)
log = setup_log(smk)
p = smk.params
catalog, meta = read_catalog(smk.input[0])
spec = dataset_spec(dict(p.spec), meta["mc"], p.simulation_mc, p.magnitude_bands)
if spec["representation"] == "event":  # a sequence decoder places events in the dataset's own region
    spec.update(region_km=list(meta["region_km"]), mmax=None)
table, X = dataset_windows(catalog, spec, meta["periods_days"])
write_windows(smk.output[0], table, X, spec, {"config_id": smk.wildcards.dataset, "etas": {smk.wildcards.dataset: {}}, "dataset": meta})
log.info("%d windows (%s) of %d features", len(table), table["role"].value_counts().to_dict(), X.shape[1])
