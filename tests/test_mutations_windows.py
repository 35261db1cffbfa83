"""Where windows start and how much consecutive windows overlap, written out by hand for small catalogs: the
window table, the features, and the window sets that evaluation cuts from the catalogs."""

import numpy as np
import pandas as pd

from etasvae.evaluate import catalog_windows
from etasvae.features import build_windows

MC = 2.5


def _catalog(time, magnitude):
    n = len(time)
    return pd.DataFrame({"event_id": np.arange(n, dtype=np.int64), "time": np.asarray(time, float),
                         "magnitude": np.asarray(magnitude, float), "x": np.arange(n, dtype=float),
                         "y": -np.arange(n, dtype=float), "parent_id": np.full(n, -1, dtype=np.int64),
                         "generation": np.zeros(n, dtype=np.int32)})


# Event windows. 30 events at t = 1..30 days, every third one (event_id 2, 5, 8, ...) below Mc: 20 events
# count, and position p among them is event_id 3 (p // 2) + p % 2. Length 6, stride 2, validation 30 %:
# round(0.3 * 20) = 6, so training holds positions 0..13 and validation 14..19. Windows start at every
# stride while they fit in their block: training at positions 0, 2, 4, 6, 8 (the last one ends at 13, the
# block's last event), validation at 14 (ends at 19).
EVENT = {"representation": "event", "mc": MC, "length": 6, "stride": 2, "xy_scale_km": 5.0, "min_dt_days": 1e-6}
EVENT_IDS = np.arange(30)
EVENT_CATALOG = _catalog(EVENT_IDS + 1.0, np.where(EVENT_IDS % 3 == 2, 2.0, MC + 0.1 * (EVENT_IDS % 7)))


def test_event_windows_start_at_every_stride_inside_their_block():
    table, _ = build_windows([(0, EVENT_CATALOG)], EVENT, heldout_replicates=[], validation_fraction=0.3)
    assert table["role"].tolist() == ["train"] * 5 + ["validation"]
    assert table["start_event"].tolist() == [0, 3, 6, 9, 12, 21]    # positions 0, 2, 4, 6, 8, 14
    assert table["end_event"].tolist() == [8, 11, 14, 17, 20, 29]   # one past positions 5, 7, 9, 11, 13, 19
    assert table["t_start"].tolist() == [1.0, 4.0, 7.0, 10.0, 13.0, 22.0]
    assert table["t_end"].tolist() == [8.0, 11.0, 14.0, 17.0, 20.0, 29.0]  # the last event: time = event_id + 1
    # the clock starts at the previous counted event (positions 1, 3, 5, 7, 13), at 0 for the first window
    assert table["t_ref"].tolist() == [0.0, 2.0, 5.0, 8.0, 11.0, 20.0]
    held, _ = build_windows([(4, EVENT_CATALOG)], EVENT, heldout_replicates=[4], validation_fraction=0.3)
    # a held-out catalog is one block: positions 0, 2, ..., 14 (the last window ends at position 19)
    assert held["start_event"].tolist() == [0, 3, 6, 9, 12, 15, 18, 21]


def test_consecutive_event_windows_share_length_minus_stride_events():
    table, X = build_windows([(0, EVENT_CATALOG)], EVENT, heldout_replicates=[], validation_fraction=0.3)
    V = X.reshape(len(X), 6, 4)
    windows = catalog_windows(table, {("c", 0): EVENT_CATALOG}, EVENT, config_id="c")
    for k in range(4):  # the training windows
        # features: the last 4 events of window k are the first 4 of window k + 1 (inter-event time and
        # magnitude; positions are relative to each window's first event)
        np.testing.assert_array_equal(V[k + 1, :4, :2], V[k, 2:, :2])
        # window sets: the same 4 catalog events, and no other
        shared = np.intersect1d(windows[k]["event_key"], windows[k + 1]["event_key"])
        assert shared.size == 4 and np.array_equal(shared, windows[k]["event_key"].to_numpy()[2:])
    # training and validation windows share nothing
    assert np.intersect1d(windows[4]["event_key"], windows[5]["event_key"]).size == 0


# Binned windows of 10 days in 5 bins of 2 days, stride 4 days (2 bins), over catalogs of 40 days.
# Training replicate, validation 25 %: training is [0, 30), windows start at 0, 4, ..., 20 (the last ends at
# 30); validation is [30, 40), one window at 30. A held-out replicate: starts 0, 4, ..., 28 (32 would end at
# 42 > 40).
BINNED = {"representation": "binned", "mc": MC, "duration_days": 10.0, "stride_days": 4.0, "time_bins": 5,
          "magnitude_bands": [2.5, 3.0]}


def _binned_catalog(seed):
    rng = np.random.default_rng(seed)
    return _catalog(np.sort(rng.uniform(0.0, 40.0, 150)), rng.choice([2.2, 2.7, 3.4], 150))


def test_binned_windows_start_at_every_stride_and_overlap_by_duration_minus_stride():
    catalogs = {("c", 0): _binned_catalog(246), ("c", 1): _binned_catalog(247)}
    table, X = build_windows([(r, cat) for (_, r), cat in catalogs.items()], BINNED, heldout_replicates=[1],
                             validation_fraction=0.25, durations={0: 40.0, 1: 40.0})
    train = [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]
    held = [0.0, 4.0, 8.0, 12.0, 16.0, 20.0, 24.0, 28.0]
    assert table["role"].tolist() == ["train"] * 6 + ["validation"] + ["heldout"] * 8
    assert table["t_start"].tolist() == train + [30.0] + held
    assert table["t_end"].tolist() == [t + 10.0 for t in train + [30.0] + held]
    assert table["t_ref"].tolist() == table["t_start"].tolist()
    B = X.reshape(len(X), 5, 2)
    # 6 days of overlap: bins 2..4 of a window are bins 0..2 of the next (within one block)
    for k in [*range(5), *range(7, 14)]:
        np.testing.assert_array_equal(B[k + 1, :3], B[k, 2:])
    assert B[:, :3].sum() > 0  # the check compares counts, not empty bins
    # window sets: the catalog's own events in [t_start, t_start + 10) above the first band, timed from t_start
    windows = catalog_windows(table, catalogs, BINNED, config_id="c")
    for k, row in table.iterrows():
        cat = catalogs[("c", row["replicate"])]
        inside = cat[(cat["time"] >= row["t_start"]) & (cat["time"] < row["t_start"] + 10.0) & (cat["magnitude"] >= 2.5)]
        np.testing.assert_array_equal(windows[k]["time"].to_numpy(), inside["time"].to_numpy() - row["t_start"])
        assert len(windows[k]) == X[k].sum()
