"""The window sets that evaluation compares: one table per window, empty windows kept, roles respected, and
H and A made of the catalogs' own events (not of features decoded back through the representation)."""

import numpy as np
import pandas as pd
import pytest

from etas_samples import MC, clustered_catalog
from etasvae.features import build_windows, windows_to_catalog
from etasvae.evaluate import catalog_windows, evaluation_sets, split_windows
from etasvae.evaluate.sets import stratified_subsample

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
    table, X, catalogs = _windows(spec)
    rng = np.random.default_rng(0)
    held = X[table["role"].to_numpy() == "heldout"]
    synthetic = windows_to_catalog(held, spec, rng=rng)  # a stand-in S with the held-out windows' shape
    sets = evaluation_sets(table, catalogs, spec, synthetic, rng=rng, n_synthetic=len(held), config_id="c")
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


def _windows(spec):
    catalogs = {("c", r): clustered_catalog(seed=r, duration=100.0, mu=1.0) for r in range(3)}
    table, X = build_windows([(r, cat) for (_, r), cat in catalogs.items()], spec, heldout_replicates=[2],
                             validation_fraction=0.2, durations={r: 100.0 for r in range(3)})
    return table, X, catalogs


def test_event_windows_hold_the_catalog_events_themselves():
    table, X, catalogs = _windows(EVENT)
    windows = catalog_windows(table, catalogs, EVENT, config_id="c")
    cat = catalogs[("c", int(table["replicate"].iloc[5]))]
    row = table.iloc[5]
    events = cat[(cat["event_id"] >= row["start_event"]) & (cat["event_id"] < row["end_event"])]
    w = windows[5]
    # exact catalog values (float64), not the float32 features decoded back
    np.testing.assert_array_equal(w["magnitude"].to_numpy(), events["magnitude"].to_numpy())
    np.testing.assert_array_equal(w["time"].to_numpy(), events["time"].to_numpy() - row["t_ref"])
    np.testing.assert_array_equal(w["x"].to_numpy(), events["x"].to_numpy() - events["x"].iloc[0])
    # and they agree with the features to float32 precision: the same windows
    decoded = windows_to_catalog(X[5:6], EVENT)
    np.testing.assert_allclose(decoded["magnitude"].to_numpy(), w["magnitude"].to_numpy(), atol=1e-5)
    np.testing.assert_allclose(decoded["time"].to_numpy(), w["time"].to_numpy(), rtol=1e-4)


def test_binned_windows_keep_positions_and_magnitudes_the_representation_loses():
    table, X, catalogs = _windows(BINNED)
    windows = catalog_windows(table, catalogs, BINNED, config_id="c")
    events = pd.concat(windows)
    # decoding binned features puts every event at x = y = 0 with made-up magnitudes; the reference must not
    assert (events["x"].abs() > 0).mean() > 0.5
    cat = pd.concat(catalogs.values())
    assert set(np.round(events["magnitude"], 9)) <= set(np.round(cat["magnitude"], 9))
    counts = np.array([len(w) for w in windows])
    np.testing.assert_array_equal(counts, X.sum(axis=1).astype(int))
    assert all(w.attrs["duration"] == BINNED["duration_days"] for w in windows)
    assert all(((w["time"] >= 0) & (w["time"] < BINNED["duration_days"])).all() for w in windows)


def test_a_window_whose_catalog_is_missing_is_named():
    table, _, catalogs = _windows(EVENT)
    del catalogs[("c", 1)]
    with pytest.raises(KeyError, match="replicate 1"):
        catalog_windows(table, catalogs, EVENT, config_id="c")


def test_stratified_subsample_keeps_each_stratum_in_proportion():
    strata = np.repeat(np.array(["a/0", "a/1", "b/0"]), [600, 300, 100])
    rng = np.random.default_rng(0)
    keep = stratified_subsample(strata, 100, rng)
    assert len(keep) == 100 and (np.diff(keep) > 0).all()  # sorted, no repeats
    assert {s: int((strata[keep] == s).sum()) for s in ("a/0", "a/1", "b/0")} == {"a/0": 60, "a/1": 30, "b/0": 10}
    # a stratum too small for a whole row gets its row by the largest remainder
    small = np.repeat(np.array(["x", "y"]), [94, 6])  # shares 9.4 and 0.6 of 10
    assert list(small[stratified_subsample(small, 10, rng)]).count("y") == 1
    # at or under the cap: every row, and the generator is not touched (the default run's results stay the same)
    state = rng.bit_generator.state
    np.testing.assert_array_equal(stratified_subsample(strata, 1000, rng), np.arange(1000))
    assert rng.bit_generator.state == state


def test_sets_above_the_cap_are_stratified_subsamples_of_the_whole_sets():
    table, X, catalogs = _windows(EVENT)
    held = X[table["role"].to_numpy() == "heldout"]
    synthetic = windows_to_catalog(held, EVENT, rng=np.random.default_rng(1))
    full = evaluation_sets(table, catalogs, EVENT, synthetic, rng=np.random.default_rng(0), n_synthetic=len(held),
                           config_id="c")
    cap = 7
    capped = evaluation_sets(table, catalogs, EVENT, synthetic, rng=np.random.default_rng(0), n_synthetic=len(held),
                             config_id="c", max_windows=cap)
    assert {k: len(v) for k, v in capped.items()} == {"S": cap, "H": cap, "A": cap, "P": cap}
    # every kept window is one of the whole set's windows, unchanged
    for key in ("S", "H", "A"):
        whole = {w.to_numpy().tobytes() for w in full[key]}
        assert all(w.to_numpy().tobytes() in whole for w in capped[key]), key
    # A spans the training replicates in proportion to their windows
    train = table[table["role"] == "train"]
    expected = train["replicate"].value_counts(normalize=True) * cap
    got = pd.Series([r for r in train["replicate"]]).iloc[
        stratified_subsample(train["replicate"].astype(str).to_numpy(), cap, np.random.default_rng(0))
    ].value_counts()
    assert all(abs(got.get(r, 0) - expected[r]) < 1 for r in expected.index)
    # under the cap: the same sets as without one
    same = evaluation_sets(table, catalogs, EVENT, synthetic, rng=np.random.default_rng(0), n_synthetic=len(held),
                           config_id="c", max_windows=10**6)
    assert all(len(same[k]) == len(full[k]) and all(a.equals(b) for a, b in zip(same[k], full[k])) for k in full)


@pytest.mark.parametrize("cap", [7, 10**6], ids=["capped", "uncapped"])
def test_sets_from_catalog_files_are_those_from_the_catalogs(cap, tmp_path):
    from etasvae.catalog import write_catalog

    table, X, catalogs = _windows(EVENT)
    held = X[table["role"].to_numpy() == "heldout"]
    synthetic = windows_to_catalog(held, EVENT, rng=np.random.default_rng(1))
    files = {}
    for (c, r), cat in catalogs.items():
        files[(c, r)] = tmp_path / f"rep{r}.parquet"
        write_catalog(cat, files[(c, r)], {})
    write_catalog(synthetic, tmp_path / "synthetic.parquet", {})
    # rows of the replicates interleaved: each catalog file is still read once, the windows keep their order
    order = np.random.default_rng(2).permutation(len(table))
    in_order = catalog_windows(table, files, EVENT, config_id="c")
    table = table.iloc[order].reset_index(drop=True)
    shuffled = catalog_windows(table, files, EVENT, config_id="c")
    assert all(shuffled[i].equals(in_order[k]) for i, k in enumerate(order))
    kwargs = dict(n_synthetic=len(held), config_id="c", max_windows=cap)
    frames = evaluation_sets(table, catalogs, EVENT, synthetic, rng=np.random.default_rng(0), **kwargs)
    read = evaluation_sets(table, files, EVENT, tmp_path / "synthetic.parquet", rng=np.random.default_rng(0), **kwargs)
    assert {k: len(v) for k, v in read.items()} == {k: len(v) for k, v in frames.items()}
    for key in frames:
        for a, b in zip(read[key], frames[key]):
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False)
