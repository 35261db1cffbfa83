"""The window sets that evaluation compares: one table per window, empty windows kept, roles respected."""

import numpy as np
import pandas as pd
import pytest

from etas_samples import MC, clustered_catalog
from etasvae.features import build_windows, windows_to_catalog
from etasvae.evaluate import evaluation_sets, split_windows

BINNED = {"representation": "binned", "mc": MC, "duration_days": 2.0, "stride_days": 2.0, "time_bins": 4,
          "magnitude_bands": [2.5, 3.5]}
EVENT = {"representation": "event", "length": 16, "stride": 8, "mc": MC, "xy_scale_km": 5.0, "min_dt_days": 1e-6}


def test_empty_windows_are_kept_as_empty_tables():
    catalog = pd.DataFrame({"time": [0.1, 0.2, 1.5], "magnitude": [3.0, 2.6, 2.9], "x": 0.0, "y": 0.0,
                            "window": np.array([0, 0, 2], dtype=np.int64)})
    windows = split_windows(catalog, duration=2.0, n_windows=4)
    assert [len(w) for w in windows] == [2, 0, 1, 0]
    assert all(w.attrs["duration"] == 2.0 for w in windows)
    assert [len(w) for w in split_windows(catalog)] == [2, 1]
    with pytest.raises(ValueError, match="window ids"):
        split_windows(catalog, n_windows=2)


@pytest.mark.parametrize("spec", [EVENT, BINNED], ids=["event", "binned"])
def test_sets_have_one_table_per_window_of_each_role(spec):
    catalogs = [(r, clustered_catalog(seed=r, duration=100.0, mu=1.0)) for r in range(3)]
    table, X = build_windows(catalogs, spec, heldout_replicates=[2], validation_fraction=0.2,
                             durations={r: 100.0 for r in range(3)})
    rng = np.random.default_rng(0)
    held = X[table["role"].to_numpy() == "heldout"]
    synthetic = windows_to_catalog(held, spec, rng=rng)  # a stand-in S with the held-out windows' shape
    sets = evaluation_sets(table, X, spec, synthetic, rng=rng, n_synthetic=len(held))
    role_counts = table["role"].value_counts()
    assert len(sets["H"]) == len(sets["S"]) == role_counts["heldout"]
    assert len(sets["A"]) == len(sets["P"]) == role_counts["train"]
    counts = np.array([len(w) for w in sets["H"]])
    if spec is BINNED:
        # 2-day windows at mu = 1/day: some hold no event, and those must stay in the set as zeros
        assert (counts == 0).any()
        assert counts.sum() == X[table["role"].to_numpy() == "heldout"].sum()
    else:
        assert (counts == spec["length"]).all()
