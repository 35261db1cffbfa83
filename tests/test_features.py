"""Windows: shapes, role separation, the inverse maps (property-based round trips), files, pooling, scaling."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etasvae.catalog import validate_catalog
from etasvae.features import (
    FeatureTransform,
    build_windows,
    n_features,
    pool_windows,
    read_windows,
    windows_to_catalog,
    write_windows,
)

from etas_samples import BINNED_SPEC, MC, clustered_catalog

EVENT_SPEC = {"representation": "event", "length": 16, "stride": 8, "mc": MC, "xy_scale_km": 5.0,
              "min_dt_days": 1e-6}



@pytest.fixture(scope="module")
def catalogs():
    return [(r, clustered_catalog(seed=r)) for r in range(3)]


def test_clustered_catalog_is_a_valid_catalog(catalogs):
    for _, df in catalogs:
        # parent_id of a child whose parent fell outside [0, duration) cannot happen: parents are earlier.
        validate_catalog(df, mc=MC)
        assert len(df) > 300


def test_event_window_shapes_and_table(catalogs):
    table, X = build_windows(catalogs, EVENT_SPEC, heldout_replicates=[2], validation_fraction=0.25)
    assert X.dtype == np.float32 and X.shape == (len(table), 4 * 16) == (len(table), n_features(EVENT_SPEC))
    assert np.array_equal(table["window_id"].to_numpy(), np.arange(len(table)))
    assert set(table["role"]) == {"train", "validation", "heldout"}
    assert (table.loc[table.replicate == 2, "role"] == "heldout").all()
    assert (table["end_event"] - table["start_event"] == 16).all()
    # Channel 2 and 3 of a window's first event are its own position relative to itself: 0.
    V = X.reshape(len(X), 16, 4)
    assert np.all(V[:, 0, 2:] == 0)
    # Channel 1 is magnitude - mc, straight from the catalog.
    df = dict(catalogs)[0]
    row = table[table.replicate == 0].iloc[3]
    events = df.iloc[row.start_event:row.end_event]
    np.testing.assert_allclose(V[row.window_id, :, 1], events.magnitude - MC, rtol=1e-6)
    np.testing.assert_allclose(V[row.window_id, 1:, 0], np.log10(np.maximum(np.diff(events.time), 1e-6)), rtol=1e-5)
    assert row.t_start == events.time.iloc[0] and row.t_end == events.time.iloc[-1]


# Stride 1 (event) and a stride of half a window (binned): windows cover each block up to its boundary,
# so a block boundary off by a single event or bin would put one event in windows of two roles.
@pytest.mark.parametrize("spec", [{**EVENT_SPEC, "stride": 1}, BINNED_SPEC], ids=["event", "binned"])
def test_roles_share_no_event(catalogs, spec):
    durations = {r: 200.0 for r, _ in catalogs}
    table, _ = build_windows(catalogs, spec, heldout_replicates=[1], validation_fraction=0.3, durations=durations)
    for replicate, df in catalogs:
        rows = table[table.replicate == replicate]
        owner: dict[int, str] = {}
        for role, start, end in zip(rows.role, rows.start_event, rows.end_event):
            for event in range(start, end):
                assert owner.setdefault(event, role) == role, f"event {event} in {owner[event]} and {role} windows"
        roles = set(rows.role)
        assert roles == ({"heldout"} if replicate == 1 else {"train", "validation"})
        if replicate != 1:   # validation is the final block: after every training window
            assert rows[rows.role == "train"].t_end.max() <= rows[rows.role == "validation"].t_start.min()


def test_binned_counts_match_a_direct_count(catalogs):
    spec = BINNED_SPEC
    table, X = build_windows(catalogs[:1], spec, heldout_replicates=[0], validation_fraction=0.0,
                             durations={0: 200.0})
    assert X.shape == (39, 5 * 3)      # starts 0, 5, ..., 190: windows of 10 days inside 200 days
    df = catalogs[0][1]
    for k in (0, 17, 38):
        t0 = table.t_start[k]
        inside = df[(df.time >= t0) & (df.time < t0 + 10.0)]
        direct = np.zeros((5, 3))
        for t, m in zip(inside.time, inside.magnitude):
            direct[int((t - t0) // 2.0), np.searchsorted([2.5, 3.0, 4.0], m, side="right") - 1] += 1
        np.testing.assert_array_equal(X[k].reshape(5, 3), direct)
        assert table.n_events[k] == len(inside) == table.end_event[k] - table.start_event[k]


# ------------------------------------------------------------------------------- round trips


@st.composite
def small_catalogs(draw):
    n = draw(st.integers(min_value=16, max_value=60))
    finite = {"allow_nan": False, "allow_infinity": False}
    dt = draw(st.lists(st.floats(min_value=1e-6, max_value=50.0, **finite), min_size=n, max_size=n))
    mag = draw(st.lists(st.floats(min_value=MC, max_value=8.0, **finite), min_size=n, max_size=n))
    xy = draw(st.lists(st.floats(min_value=-500.0, max_value=500.0, **finite), min_size=2 * n, max_size=2 * n))
    time = np.cumsum(dt)
    return pd.DataFrame({"event_id": np.arange(n), "time": time, "magnitude": mag, "x": xy[:n], "y": xy[n:],
                         "parent_id": -1, "generation": np.int32(-1)})


@settings(max_examples=40, deadline=None)
@given(df=small_catalogs(), stride=st.integers(min_value=1, max_value=20))
def test_event_round_trip(df, stride):
    spec = {**EVENT_SPEC, "stride": stride}
    table, X = build_windows([(0, df)], spec, heldout_replicates=[0], validation_fraction=0.0)
    back, clips = windows_to_catalog(X, spec, t0=table.t_ref.to_numpy(), return_clip_counts=True)
    validate_catalog(back, mc=MC)
    assert sum(clips.values()) == 0
    for k, row in table.iterrows():
        orig = df.iloc[row.start_event:row.end_event]
        got = back[back.window == k]
        span = orig.time.iloc[-1] - row.t_ref
        # float32 log10(dt): relative error of each dt about ln(10) * |log10 dt| * 2^-24 < 1e-6.
        np.testing.assert_allclose(got.time - row.t_ref, orig.time - row.t_ref, rtol=0, atol=2e-6 * span + 1e-12)
        np.testing.assert_allclose(got.magnitude, orig.magnitude, rtol=0, atol=1e-6)
        for c in ("x", "y"):
            rel = orig[c].to_numpy() - orig[c].iloc[0]
            np.testing.assert_allclose(got[c], rel, rtol=2e-6, atol=1e-5)


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.lists(st.integers(0, 6), min_size=15, max_size=15), min_size=1, max_size=8),
       seed=st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_binned_round_trip_is_exact(counts, seed):
    spec = {**BINNED_SPEC, "stride_days": BINNED_SPEC["duration_days"]}
    X = np.asarray(counts, dtype=np.float32)
    rng = None if seed is None else np.random.default_rng(seed)
    # Window k's clock starts at k * duration: the windows tile one catalog, cut again into the same windows.
    t0 = np.arange(len(X)) * spec["duration_days"]
    back = windows_to_catalog(X, spec, t0=t0, rng=rng)
    validate_catalog(back, mc=MC)
    assert np.array_equal(np.bincount(back.window, minlength=len(X)), X.sum(axis=1).astype(int))
    catalog = back.drop(columns="window")
    table, X2 = build_windows([(0, catalog)], spec, heldout_replicates=[0], validation_fraction=0.0,
                              durations={0: len(X) * spec["duration_days"]})
    np.testing.assert_array_equal(X2, X)


def test_clipping_rules_are_applied_and_counted():
    spec = {**EVENT_SPEC, "length": 2}
    X = np.array([[-12.0, -0.5, 0.0, 0.0, 0.0, 0.3, 1.0, -1.0]], dtype=np.float32)
    back, clips = windows_to_catalog(X, spec, t0=10.0, return_clip_counts=True)
    assert clips == {"magnitude_below_mc": 1, "dt_below_min": 1, "dt_above_max": 0}
    np.testing.assert_allclose(back.time, [10.0 + 1e-6, 11.0 + 1e-6])
    np.testing.assert_allclose(back.magnitude, [MC, MC + 0.3], rtol=1e-6)
    np.testing.assert_allclose(back.x, [0.0, 5.0 * math.sinh(1.0)], rtol=1e-6)
    Xb = np.zeros((1, 15), dtype=np.float32)
    Xb[0, :3] = [-0.7, 2.4, 0.49]
    back, clips = windows_to_catalog(Xb, BINNED_SPEC, return_clip_counts=True)
    assert clips == {"negative_counts": 1}
    assert len(back) == 2 and (back.magnitude < 4.0).all() and (back.magnitude >= 3.0).all()
    with pytest.raises(ValueError, match="non-finite"):
        windows_to_catalog(np.full((1, 15), np.nan, np.float32), BINNED_SPEC)


# ----------------------------------------------------------------------------- files, pooling, scaling


def test_write_read_windows_round_trip(tmp_path, catalogs):
    table, X = build_windows(catalogs, EVENT_SPEC, heldout_replicates=[2], validation_fraction=0.2)
    path = tmp_path / "w" / "windows.parquet"
    write_windows(path, table, X, EVENT_SPEC, {"config_id": "abc", "mc": MC})
    assert [p.name for p in path.parent.iterdir()] == ["windows.parquet"]    # no temporary left behind
    table2, X2, spec2, meta2 = read_windows(path)
    pd.testing.assert_frame_equal(table2, table)
    assert X2.dtype == np.float32 and np.array_equal(X2, X)
    assert spec2 == EVENT_SPEC and meta2 == {"config_id": "abc", "mc": MC}


def test_windows_read_a_few_rows_at_a_time_or_without_features_are_the_same(tmp_path, catalogs, monkeypatch):
    import etasvae.features as features

    table, X = build_windows(catalogs, EVENT_SPEC, heldout_replicates=[2], validation_fraction=0.2)
    path = tmp_path / "windows.parquet"
    write_windows(path, table, X, EVENT_SPEC)
    monkeypatch.setattr(features, "READ_BATCH_ROWS", 7)  # many batches, the last one partial
    assert len(X) > 3 * 7 and len(X) % 7
    _, X2, _, _ = read_windows(path)
    assert X2.flags.writeable and X2.flags.c_contiguous and np.array_equal(X2, X)
    table3, X3, spec3, _ = read_windows(path, features=False)
    assert X3 is None and spec3 == EVENT_SPEC
    pd.testing.assert_frame_equal(table3, table)


def test_pool_windows_adds_config_and_parameters(catalogs):
    t1, X1 = build_windows(catalogs[:1], EVENT_SPEC, heldout_replicates=[], validation_fraction=0.2)
    t2, X2 = build_windows(catalogs[1:2], EVENT_SPEC, heldout_replicates=[], validation_fraction=0.2)
    pooled, X = pool_windows([("a", {"mu": 2.0, "K": 0.3, "branching_ratio": 0.53}, t1, X1),
                              ("b", {"mu": 1.0, "K": 0.1}, t2, X2)])
    assert len(pooled) == len(X) == len(X1) + len(X2)
    assert np.array_equal(pooled.window_id, np.arange(len(pooled)))
    assert list(pooled.config_id[:len(X1)].unique()) == ["a"] and list(pooled.config_id[len(X1):].unique()) == ["b"]
    assert (pooled.K[:len(X1)] == 0.3).all() and (pooled.mu[len(X1):] == 1.0).all()
    assert (pooled.branching_ratio[:len(X1)] == 0.53).all() and pooled.branching_ratio[len(X1):].isna().all()
    assert np.array_equal(X[len(X1):], X2)
    assert np.array_equal(pooled.source_window_id[len(X1):], t2.window_id)


def test_feature_transform_fits_training_windows_only(catalogs):
    table, X = build_windows(catalogs, EVENT_SPEC, heldout_replicates=[2], validation_fraction=0.2)
    train = X[table.role == "train"]
    tf = FeatureTransform.fit(train)
    np.testing.assert_allclose(tf.offset, train.mean(axis=0), rtol=1e-5, atol=1e-5)
    Z = tf.transform(train)
    np.testing.assert_allclose(Z[:, 4:].mean(axis=0), 0.0, atol=1e-4)
    # The first event's relative position is constant (0): floored std keeps it finite.
    assert np.all(Z[:, 2:4] == 0)
    tf2 = FeatureTransform.from_dict(json.loads(json.dumps(tf.to_dict())))
    np.testing.assert_allclose(tf2.inverse(tf2.transform(X)), X, rtol=1e-5, atol=1e-5)
    mm = FeatureTransform.fit(train, kind="minmax").transform(train)
    assert mm.min() >= 0.0 and mm.max() <= 1.0 + 1e-6


@pytest.mark.parametrize("spec, key", [
    ({**EVENT_SPEC, "length": 4000}, r"windows\.event\.length = 4000 \(events\): the train and validation and heldout"),
    ({**BINNED_SPEC, "duration_days": 500.0}, r"windows\.binned\.duration_days = 500 \(days\): the train and validation"),
    # About 800 events per catalog: 300 fit the training block (~640) and a held-out catalog, not the
    # validation block (the final 20 %, ~160).
    ({**EVENT_SPEC, "length": 300}, r"windows\.event\.length = 300 \(events\): the validation role gets no window"),
])
def test_a_role_without_windows_fails_naming_the_key(spec, key):
    catalogs = [(r, clustered_catalog(seed=r)) for r in range(3)]
    with pytest.raises(ValueError, match=key):
        build_windows(catalogs, spec, heldout_replicates=[2], validation_fraction=0.2,
                      durations={r: 200.0 for r in range(3)})
