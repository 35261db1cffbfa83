"""Draw synthetic windows from a model's prior and write them as a catalog in the catalog schema."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

from etasvae.catalog import write_catalog  # noqa: E402
from etasvae.features import read_windows  # noqa: E402
from etasvae.sample import sample_catalog  # noqa: E402
from etasvae.fileio import write_json  # noqa: E402
from etasvae.vae import load_model  # noqa: E402

p = smk.params
bundle = load_model(smk.input.model)
table, _, spec, _ = read_windows(smk.input.windows)
n = p.n_windows or int((table["role"] == "heldout").sum())
catalog, info = sample_catalog(bundle, n, mode=p.mode, seed=p.seed)
metadata = {"kind": "synthetic", "model": smk.input.model, "mode": p.mode, "seed": p.seed, "n_windows": n, "mc": spec["mc"], "spec": spec}
write_catalog(catalog, smk.output.catalog, metadata, mc=spec["mc"])
write_json(smk.output.clipping, info)
log.info("sampled %d windows, %d events (%s); physical-range mapping: %s", n, len(catalog), p.mode, info)
