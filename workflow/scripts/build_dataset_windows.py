"""Cut a real catalog into windows, the role set by its training / validation / held-out period."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

from etasvae.catalog import read_catalog  # noqa: E402
from etasvae.features import write_windows  # noqa: E402
from etasvae.realdata import dataset_spec, dataset_windows  # noqa: E402

p = smk.params
catalog, meta = read_catalog(smk.input[0])
spec = dataset_spec(dict(p.spec), meta["mc"], p.simulation_mc, p.magnitude_bands)
table, X = dataset_windows(catalog, spec, meta["periods_days"])
write_windows(smk.output[0], table, X, spec, {"config_id": smk.wildcards.dataset, "etas": {smk.wildcards.dataset: {}}, "dataset": meta})
log.info("%d windows (%s) of %d features", len(table), table["role"].value_counts().to_dict(), X.shape[1])
