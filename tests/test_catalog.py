"""The catalog contract: schema checks name the column and row; writes are atomic and deterministic."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etasvae.catalog import CatalogError, empty_catalog, read_catalog, read_metadata, validate_catalog, write_catalog
from etasvae.fileio import atomic_write


def small_catalog(n=5):
    return pd.DataFrame(
        {
            "event_id": np.arange(n, dtype=np.int64),
            "time": np.linspace(0.5, 10.0, n),
            "magnitude": np.full(n, 3.0),
            "x": np.zeros(n),
            "y": np.zeros(n),
            "parent_id": np.array([-1] + [0] * (n - 1), dtype=np.int64),
            "generation": np.array([0] + [1] * (n - 1), dtype=np.int32),
        }
    )


def test_round_trip_keeps_values_dtypes_and_metadata(tmp_path):
    df = small_catalog()
    meta = {"seed": 7, "mc": 2.5, "parameters": {"K": 0.2}}
    write_catalog(df, tmp_path / "c.parquet", meta, mc=2.5)
    back, meta_back = read_catalog(tmp_path / "c.parquet")
    pd.testing.assert_frame_equal(back, df)
    assert meta_back["seed"] == 7 and meta_back["parameters"] == {"K": 0.2}
    assert read_metadata(tmp_path / "c.parquet")["mc"] == 2.5
    assert "etasvae_version" in meta_back


def test_same_table_same_bytes(tmp_path):
    df = small_catalog()
    write_catalog(df, tmp_path / "a.parquet", {"seed": 1})
    write_catalog(df, tmp_path / "b.parquet", {"seed": 1})
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_empty_catalog_is_valid(tmp_path):
    write_catalog(empty_catalog(), tmp_path / "e.parquet", {})
    assert len(read_catalog(tmp_path / "e.parquet")[0]) == 0


@pytest.mark.parametrize(
    "column, row, value, message",
    [
        ("time", 3, 0.1, "column 'time' row 3"),
        ("magnitude", 2, 1.0, "column 'magnitude' row 2"),
        ("x", 4, np.nan, "column 'x' row 4"),
        ("parent_id", 1, 3, "column 'parent_id' row 1"),
        ("event_id", 2, 9, "column 'event_id' row 2"),
        ("generation", 0, -2, "column 'generation' row 0"),
    ],
)
def test_malformed_catalog_names_column_and_row(column, row, value, message):
    df = small_catalog()
    df.loc[row, column] = value
    with pytest.raises(CatalogError, match=message):
        validate_catalog(df, mc=2.5)


def test_missing_column_is_named():
    with pytest.raises(CatalogError, match="missing column.*magnitude"):
        validate_catalog(small_catalog().drop(columns="magnitude"))


def test_window_column_orders_time_within_windows_only():
    df = small_catalog(4)
    df["time"] = [1.0, 2.0, 0.5, 0.7]
    df["parent_id"] = -1
    df["window"] = np.array([0, 0, 1, 1], dtype=np.int64)
    validate_catalog(df)
    df["window"] = np.array([0, 0, 0, 1], dtype=np.int64)
    with pytest.raises(CatalogError, match="column 'time' row 2"):
        validate_catalog(df)


def test_malformed_catalog_is_refused(tmp_path):
    df = small_catalog()
    df.loc[1, "time"] = -5.0  # out of order
    with pytest.raises(CatalogError):
        write_catalog(df, tmp_path / "bad.parquet", {})


def test_a_write_that_fails_halfway_leaves_no_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "out" / "cat.parquet"
    write_catalog(small_catalog(), path, {"run": 1})
    before = path.read_bytes()

    def half_then_fail(tmp):
        Path(tmp).write_bytes(before[: len(before) // 2])  # a truncated Parquet file under the temporary name
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == ["cat.parquet"]
    with pytest.raises(OSError):
        atomic_write(tmp_path / "new.parquet", half_then_fail)
    assert not (tmp_path / "new.parquet").exists()
