"""ETAS parameters carried by the held-out windows and the synthetic windows (next to the whole held-out
catalog's fit)."""

import sys

smk = snakemake  # noqa: F821  (injected by Snakemake)
sys.path.insert(0, f"{smk.scriptdir}/..")
from etasvae.scripting import setup_log  # noqa: E402

log = setup_log(smk)

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from etasvae.catalog import atomic_write, read_catalog  # noqa: E402
from etasvae.features import read_windows, windows_to_catalog  # noqa: E402
from etasvae.inversion_report import inversion_table, invert_model  # noqa: E402
from etasvae.report import write_json  # noqa: E402
from etasvae.windowsets import split_windows  # noqa: E402

p = smk.params
torch.set_num_threads(smk.threads)
table, X, spec, _ = read_windows(smk.input.windows)
heldout = table["role"].to_numpy() == "heldout"
duration = spec.get("duration_days") if spec["representation"] == "binned" else None
rng = np.random.default_rng(p.seed)
heldout_windows = split_windows(windows_to_catalog(X[heldout], spec, rng=rng), duration, int(heldout.sum()))
synthetic, synthetic_meta = read_catalog(smk.input.synthetic)
synthetic_windows = split_windows(synthetic, duration, synthetic_meta["n_windows"])
catalog_fit = json.loads(Path(smk.input.catalog_fit).read_text())
result = invert_model(heldout_windows, synthetic_windows, catalog_fit, truth=dict(p.etas), mc=spec["mc"],
                      cut_mass=p.cut_mass, n_starts=p.starts)
atomic_write(smk.output.table, lambda tmp: inversion_table(result).to_csv(tmp, index=False))
write_json(smk.output.summary, result)
log.info("%s", inversion_table(result).to_string())
