"""Real catalogs: projection, completeness, import of ComCat and generic CSV files, bad input, download.

Every catalog file is written by the test; the download runs against an HTTP server on 127.0.0.1 that the
test starts. Each bad-input case asserts the message (file, line, column) and that nothing was written.
"""

import copy
import http.server
import json
import socket
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from comcat_files import BBOX, LAT0, LON0, comcat_text, dataset_config, etas_events, write_comcat_csv
from etasvae.catalog import read_catalog, validate_catalog
from etasvae.features import build_windows
from etasvae.realdata import (
    EARTH_RADIUS_KM,
    DatasetError,
    DownloadError,
    check_dataset,
    comcat_query,
    dataset_spec,
    dataset_windows,
    download_comcat,
    import_dataset,
    inside_region,
    mc_max_curvature,
    project,
    unproject,
)


def haversine_km(lon1, lat1, lon2, lat2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


# ------------------------------------------------------------------------------------------ projection


def test_projection_keeps_great_circle_distance_and_azimuth_from_the_centre():
    rng = np.random.default_rng(0)
    lon = LON0 + rng.uniform(-3, 3, 500)
    lat = LAT0 + rng.uniform(-3, 3, 500)
    x, y = project(lon, lat, LON0, LAT0)
    # Exact property of the azimuthal equidistant projection (up to float rounding).
    np.testing.assert_allclose(np.hypot(x, y), haversine_km(LON0, LAT0, lon, lat), rtol=1e-9)
    # Azimuth: north is +y, east is +x.
    xn, yn = project(np.array([LON0, LON0 + 1.0]), np.array([LAT0 + 1.0, LAT0]), LON0, LAT0)
    assert abs(xn[0]) < 1e-9 and yn[0] > 110 and xn[1] > 85 and abs(yn[1]) < 1.0
    back_lon, back_lat = unproject(x, y, LON0, LAT0)
    np.testing.assert_allclose(back_lon, lon, atol=1e-9)
    np.testing.assert_allclose(back_lat, lat, atol=1e-9)


def test_projected_distances_within_200_km_are_off_by_less_than_0_02_percent():
    rng = np.random.default_rng(4)
    r, th = 200 * np.sqrt(rng.uniform(size=(2, 5000))), rng.uniform(0, 2 * np.pi, (2, 5000))
    x, y = r * np.cos(th), r * np.sin(th)
    lon, lat = unproject(x, y, LON0, LAT0)
    d = haversine_km(lon[0], lat[0], lon[1], lat[1])
    far = d > 1.0  # relative error of near-coincident pairs is rounding noise
    # The bound is the scale factor c/sin c - 1 ~ c^2/6 = 1.6e-4 at 200 km, so 2e-4 is what docs/methods/real-catalogs.md says.
    assert np.max(np.abs(np.hypot(x[0] - x[1], y[0] - y[1])[far] / d[far] - 1)) < 2e-4


@pytest.mark.reference
def test_projection_agrees_with_pyproj_on_a_sphere():
    pyproj = pytest.importorskip("pyproj")
    rng = np.random.default_rng(1)
    lon, lat = LON0 + rng.uniform(-2, 2, 200), LAT0 + rng.uniform(-2, 2, 200)
    proj = pyproj.Proj(proj="aeqd", lon_0=LON0, lat_0=LAT0, R=EARTH_RADIUS_KM * 1000.0)
    xr, yr = proj(lon, lat)
    x, y = project(lon, lat, LON0, LAT0)
    np.testing.assert_allclose(x, np.asarray(xr) / 1000.0, atol=1e-6)  # 1 mm
    np.testing.assert_allclose(y, np.asarray(yr) / 1000.0, atol=1e-6)


def test_polygon_region_selects_points_inside():
    tri = {"polygon": [[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]]}
    mask = inside_region(np.array([0.5, 1.5, 1.2, -0.1, 0.9]), np.array([0.5, 1.5, 0.3, 0.5, 1.2]), tri)
    assert mask.tolist() == [True, False, True, False, False]
    # A concave polygon (an L): the notch is outside; agrees with matplotlib's point-in-polygon.
    ell = {"polygon": [[0, 0], [3, 0], [3, 1], [1, 1], [1, 3], [0, 3]]}
    rng = np.random.default_rng(3)
    lon, lat = rng.uniform(-0.5, 3.5, 2000), rng.uniform(-0.5, 3.5, 2000)
    from matplotlib.path import Path as MplPath

    expected = MplPath(np.asarray(ell["polygon"], dtype=float)).contains_points(np.column_stack([lon, lat]))
    np.testing.assert_array_equal(inside_region(lon, lat, ell), expected)
    assert not inside_region(np.array([2.0]), np.array([2.0]), ell)[0]


# ---------------------------------------------------------------------------------------- completeness


def test_max_curvature_is_the_modal_bin_plus_0_2():
    mags = np.repeat([1.8, 1.9, 2.0, 2.1, 2.2], [5, 9, 20, 14, 10])
    assert mc_max_curvature(mags, 0.1) == 2.2
    assert mc_max_curvature(mags, 0.1, correction=0.0) == 2.0


@pytest.mark.reference
def test_max_curvature_agrees_with_seismostats():
    analysis = pytest.importorskip("seismostats.analysis")
    rng = np.random.default_rng(2)
    # Gutenberg-Richter above 1.0, thinned below 2.0 by a normal detection curve: a realistic roll-off.
    m = 1.0 + rng.exponential(1 / np.log(10), 20000)
    m = m[rng.uniform(size=m.size) < norm.cdf(m, loc=1.7, scale=0.2)]
    m = np.round(m, 1)
    ours = mc_max_curvature(m, 0.1)
    theirs, _ = analysis.estimate_mc_maxc(m, fmd_bin=0.1, correction_factor=0.2)
    assert ours == pytest.approx(theirs, abs=1e-9)


# ------------------------------------------------------------------------------------------- import


def dataset(path, **overrides):
    return check_dataset("test", copy.deepcopy(dataset_config(str(path), **overrides)))


def outputs(tmp_path):
    return tmp_path / "out" / "catalog.parquet", tmp_path / "out" / "import.json"


def run_import(tmp_path, csv, **overrides):
    cat, rep = outputs(tmp_path)
    return import_dataset(dataset(csv, **overrides), str(csv), str(cat), str(rep))


def test_comcat_csv_is_imported_projected_and_split(tmp_path):
    csv = tmp_path / "comcat.csv"
    events = etas_events()
    write_comcat_csv(csv, events)
    report = run_import(tmp_path, csv)
    catalog, meta = read_catalog(outputs(tmp_path)[0])
    validate_catalog(catalog, mc=report["mc"])
    # Simulated magnitudes start at 1.95 and are rounded to 0.1, so the modal bin is 2.0 and Mc = 2.2.
    assert report["mc"] == pytest.approx(2.2) and "maximum curvature" in report["mc_method"]
    below = int((events["magnitude"] < 2.2 - 1e-9).sum())
    assert report["counts"]["below_mc"] == below and report["counts"]["kept"] == len(events) - below == len(catalog)
    assert meta["kind"] == "real" and meta["origin_utc"].startswith("2020-01-01")
    assert (catalog["parent_id"] == -1).all() and (catalog["generation"] == -1).all()
    # Times are days since the start; positions come back to the simulated km frame (same centre).
    kept = events[events["magnitude"] >= 2.2 - 1e-9].reset_index(drop=True)
    days = ((kept["time"] - pd.Timestamp("2020-01-01", tz="UTC")) / pd.Timedelta(days=1)).to_numpy()
    np.testing.assert_allclose(catalog["time"], days, atol=1e-6)  # CSV times are written to the millisecond
    assert catalog["x"].abs().max() < 21 and catalog["y"].abs().max() < 21
    assert sum(report["events_per_period"].values()) == len(catalog)
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_mc_is_estimated_on_the_training_period_only(tmp_path):
    events = etas_events()
    # 1500 small events in the held-out period: their bin (1.6) would be the mode of the whole catalog.
    late = events[events["time"] >= pd.Timestamp("2020-03-21", tz="UTC")].iloc[:1].copy()
    extra = pd.concat([late] * 1500, ignore_index=True)
    extra["magnitude"] = 1.6
    extra["longitude"] = extra["longitude"] + np.arange(1500) * 1e-5  # distinct places: not duplicates
    csv = tmp_path / "c.csv"
    write_comcat_csv(csv, pd.concat([events, extra], ignore_index=True).sort_values("time", kind="stable"))
    report = run_import(tmp_path, csv)
    assert report["mc"] == pytest.approx(2.2) and report["counts"]["below_mc"] >= 1500


def test_duplicates_are_dropped_and_unsorted_rows_sorted_and_both_counted(tmp_path):
    events = etas_events().iloc[:300].reset_index(drop=True)
    shuffled = pd.concat([events.iloc[[5, 3]], events.drop(index=[3, 5]), events.iloc[[10, 11]]], ignore_index=True)
    csv = tmp_path / "messy.csv"
    write_comcat_csv(csv, shuffled)
    clean = tmp_path / "clean"
    clean.mkdir()
    write_comcat_csv(clean / "c.csv", events)
    report = run_import(tmp_path, csv, mc=2.0, end="2020-01-31", split={"validation_start": "2020-01-10", "heldout_start": "2020-01-20"})
    assert report["counts"]["duplicates_dropped"] == 2
    # Rows 0, 1 are events 5, 3 (one descent: 5 -> 3); the duplicates 10, 11 after the last event (one).
    assert report["counts"]["rows_out_of_order"] == 3
    messy = read_catalog(outputs(tmp_path)[0])[0]
    reference = import_dataset(dataset(clean / "c.csv", mc=2.0, end="2020-01-31", split={"validation_start": "2020-01-10", "heldout_start": "2020-01-20"}),
                               str(clean / "c.csv"), str(clean / "c.parquet"), str(clean / "c.json"))
    assert reference["counts"]["duplicates_dropped"] == 0 and reference["counts"]["rows_out_of_order"] == 0
    pd.testing.assert_frame_equal(messy, read_catalog(clean / "c.parquet")[0])


def test_filters_count_what_they_remove(tmp_path):
    events = etas_events().iloc[:400].reset_index(drop=True)
    events.loc[0:9, "longitude"] = BBOX[1] + 0.1  # east of the box
    csv = tmp_path / "c.csv"
    write_comcat_csv(csv, events)
    report = run_import(tmp_path, csv, mc=2.5, min_magnitude=2.1, end="2020-02-10",
                        split={"validation_start": "2020-01-20", "heldout_start": "2020-01-30"})
    c = report["counts"]
    late = events["time"] >= pd.Timestamp("2020-02-10", tz="UTC")
    assert c["outside_time_span"] == int(late.sum())
    assert c["outside_region"] == int((~late[:10]).sum())
    rest = events[~late & (events.index >= 10)]
    assert c["below_min_magnitude"] == int((rest["magnitude"] < 2.1 - 1e-9).sum())
    assert c["below_mc"] == int(((rest["magnitude"] >= 2.1 - 1e-9) & (rest["magnitude"] < 2.5 - 1e-9)).sum())
    assert report["mc_method"] == "configured" and c["kept"] == int((rest["magnitude"] >= 2.5 - 1e-9).sum())


def test_generic_csv_with_decimal_years_and_depth_in_metres(tmp_path):
    events = etas_events().iloc[:300].reset_index(drop=True)
    t = events["time"]
    year = t.dt.year.to_numpy()
    begin = pd.to_datetime(pd.Series(year).astype(str) + "-01-01", utc=True)
    end = pd.to_datetime(pd.Series(year + 1).astype(str) + "-01-01", utc=True)
    decimal = year + ((t - begin) / (end - begin)).to_numpy()
    csv = tmp_path / "generic.csv"
    pd.DataFrame({"yr": np.round(decimal, 9), "lo": events["longitude"], "la": events["latitude"],
                  "ml": events["magnitude"], "z_m": events["depth"] * 1000}).to_csv(csv, index=False)
    cat, rep = outputs(tmp_path)
    ds = dataset(csv, source="csv", columns={"time": "yr", "longitude": "lo", "latitude": "la", "magnitude": "ml", "depth": "z_m"},
                 time_format="decimal_year", depth_unit="m", mc=2.0, end="2020-01-31",
                 split={"validation_start": "2020-01-10", "heldout_start": "2020-01-20"})
    import_dataset(ds, str(csv), str(cat), str(rep))
    catalog = read_catalog(cat)[0]
    keep = (events["magnitude"] >= 2.0 - 1e-9) & (t < pd.Timestamp("2020-01-31", tz="UTC"))
    # 1e-9 year is 0.03 s: times agree to well below a second.
    days = ((t[keep] - pd.Timestamp("2020-01-01", tz="UTC")) / pd.Timedelta(days=1)).to_numpy()
    np.testing.assert_allclose(catalog["time"], days, atol=1e-5)
    np.testing.assert_allclose(catalog["depth_km"], events.loc[keep, "depth"], atol=1e-9)


def test_generic_csv_with_a_strftime_format(tmp_path):
    events = etas_events().iloc[:300].reset_index(drop=True)
    csv = tmp_path / "fmt.csv"
    pd.DataFrame({"when": events["time"].dt.strftime("%d/%m/%Y %H:%M:%S"), "lon": events["longitude"],
                  "lat": events["latitude"], "mag": events["magnitude"]}).to_csv(csv, index=False)
    report = run_import(tmp_path, csv, source="csv", columns={"time": "when", "longitude": "lon", "latitude": "lat", "magnitude": "mag"},
                        time_format="%d/%m/%Y %H:%M:%S", mc=2.0, end="2020-01-31",
                        split={"validation_start": "2020-01-10", "heldout_start": "2020-01-20"})
    assert report["counts"]["kept"] == int(((events["magnitude"] >= 2.0 - 1e-9) & (events["time"] < pd.Timestamp("2020-01-31", tz="UTC"))).sum())


# ------------------------------------------------------------------------------------------ bad input


def comcat_rows(n=200):
    return etas_events().iloc[:n].reset_index(drop=True)


def assert_refused(tmp_path, csv, pattern, **overrides):
    with pytest.raises(DatasetError, match=pattern) as info:
        run_import(tmp_path, csv, **overrides)
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
    return str(info.value)


def test_missing_column_is_named(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text(comcat_text(comcat_rows()).replace(",mag,", ",magnitude,", 1))
    msg = assert_refused(tmp_path, csv, r"missing column\(s\) 'mag' \(magnitude\)")
    assert str(csv) in msg


def test_unparseable_time_names_file_line_and_column(tmp_path):
    events = comcat_rows().astype({"time": object})
    events.loc[7, "time"] = "2020-13-45T99:00:00Z"
    csv = tmp_path / "c.csv"
    write_comcat_csv(csv, events)
    assert_refused(tmp_path, csv, rf"{csv}, line 9 \(data row 7\), column 'time': cannot parse '2020-13-45T99:00:00Z'")


@pytest.mark.parametrize("column, row, value, message", [
    ("latitude", 12, "", r"line 14 \(data row 12\), column 'latitude': an empty value is not a number"),
    ("magnitude", 3, np.nan, r"line 5 \(data row 3\), column 'mag': 'nan' is not a number"),
    ("longitude", 20, 242.5, r"line 22 \(data row 20\), column 'longitude': 242.5 is outside the longitude range \[-180.0, 180.0\]"),
    ("latitude", 7, -95.0, r"line 9 \(data row 7\), column 'latitude': -95 is outside the latitude range \[-90.0, 90.0\]"),
    ("magnitude", 0, 25.0, r"line 2 \(data row 0\), column 'mag': 25 is outside the magnitude range \[-3.0, 10.0\]"),
], ids=["empty-latitude", "nan-magnitude", "longitude-range", "latitude-range", "magnitude-range"])
def test_a_missing_or_out_of_range_value_names_file_line_and_column(tmp_path, column, row, value, message):
    events = comcat_rows()
    events[column] = events[column].astype(object)
    events.loc[row, column] = value
    csv = tmp_path / "c.csv"
    write_comcat_csv(csv, events)
    assert_refused(tmp_path, csv, rf"{csv}, {message}")


def test_depths_in_metres_declared_as_km_are_flagged(tmp_path):
    events = comcat_rows()
    events["depth"] = events["depth"] * 1000
    csv = tmp_path / "c.csv"
    write_comcat_csv(csv, events)
    i = int(events["depth"].idxmax())
    assert_refused(tmp_path, csv, rf"line {i + 2} \(data row {i}\), column 'depth': .* look like metres; declare depth_unit: m")


def test_empty_selection_is_refused(tmp_path):
    csv = tmp_path / "c.csv"
    write_comcat_csv(csv, comcat_rows())
    msg = assert_refused(tmp_path, csv, "no event left after the filters", region={"bbox": [10.0, 11.0, 45.0, 46.0]})
    assert "'outside_region': 200" in msg and str(csv) in msg


def test_a_period_without_events_is_refused(tmp_path):
    csv = tmp_path / "c.csv"
    write_comcat_csv(csv, comcat_rows())  # about 25 days of events
    assert_refused(tmp_path, csv, r"the validation period \[60.0, 80.0\] .* has no event", mc=2.0)


def test_dataset_config_errors_name_the_key(tmp_path):
    with pytest.raises(DatasetError, match=r"datasets.test: need start < split.validation_start"):
        dataset("x.csv", split={"validation_start": "2020-05-01", "heldout_start": "2020-03-21"})
    with pytest.raises(DatasetError, match=r"datasets.test.region.bbox"):
        dataset("x.csv", region={"bbox": [10.0, 5.0, 1.0, 2.0]})
    with pytest.raises(DatasetError, match=r"datasets.test.columns.magnitude is missing"):
        dataset("x.csv", source="csv", columns={"time": "t", "longitude": "lo", "latitude": "la"})
    with pytest.raises(DatasetError, match=r"datasets.pooled: the name is already"):
        check_dataset("pooled", dataset_config("x.csv"), reserved={"pooled"})


# -------------------------------------------------------------------------------------------- windows


def test_windows_take_their_role_from_the_period(tmp_path):
    csv = tmp_path / "c.csv"
    write_comcat_csv(csv, etas_events())
    report = run_import(tmp_path, csv)
    catalog = read_catalog(outputs(tmp_path)[0])[0]
    spec = dataset_spec({"representation": "event", "mc": 2.5, "length": 16, "stride": 8, "xy_scale_km": 5.0, "min_dt_days": 1e-6},
                        report["mc"], 2.5)
    table, X = dataset_windows(catalog, spec, report["periods_days"])
    periods = report["periods_days"]
    for role, (lo, hi) in zip(("train", "validation", "heldout"), periods.values()):
        part = table[table["role"] == role]
        assert len(part) > 0 and (part["t_start"] >= lo).all() and (part["t_end"] < hi).all()
        # The windows' event ids point into the dataset catalog: the first event of each window is there.
        np.testing.assert_allclose(catalog["time"].to_numpy()[part["start_event"]], part["t_start"])
    # Held-out windows equal build_windows on the held-out period alone (same features).
    lo, hi = periods["heldout"]
    part = catalog[(catalog["time"] >= lo) & (catalog["time"] < hi)].reset_index(drop=True)
    part["event_id"] = np.arange(len(part))
    part["time"] -= lo
    _, Xh = build_windows([(0, part)], spec, heldout_replicates=[0], validation_fraction=0.0)
    np.testing.assert_array_equal(X[table["role"].to_numpy() == "heldout"], Xh)


def test_binned_bands_follow_the_datasets_mc():
    spec = {"representation": "binned", "mc": 2.5, "duration_days": 10.0, "stride_days": 5.0, "time_bins": 5,
            "magnitude_bands": [2.5, 3.0, 4.0]}
    assert dataset_spec(spec, 2.2, 2.5)["magnitude_bands"] == [2.2, 2.7, 3.7]
    assert dataset_spec(spec, 2.2, 2.5, [2.2, 3.2])["magnitude_bands"] == [2.2, 3.2]


# ------------------------------------------------------------------------------------------- download


class Handler(http.server.BaseHTTPRequestHandler):
    body: bytes = b""
    status: int = 200
    requests: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).requests.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """An FDSN-like event service on 127.0.0.1 serving the response file the test writes."""
    response = tmp_path / "response.csv"
    write_comcat_csv(response)

    class Serve(Handler):
        body = response.read_bytes()
        requests = []

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/fdsnws/event/1/query", Serve
    httpd.shutdown()
    httpd.server_close()


def closed_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/fdsnws/event/1/query"


def test_download_fetches_the_query_from_the_service(tmp_path, server):
    url, handler = server
    ds = dataset("unused", source="comcat", url=url)
    dest = tmp_path / "resources" / "x.csv"
    n = download_comcat(url, comcat_query(ds), str(dest))
    assert dest.read_bytes() == (tmp_path / "response.csv").read_bytes() and n == len(etas_events())
    (path,) = handler.requests
    assert "format=csv" in path and "minlatitude=35.450000" in path and "starttime=2020-01-01T00%3A00%3A00.000" in path
    assert "minmagnitude=1.5" in path


def test_download_refused_query_and_empty_answer_are_errors(tmp_path, server):
    url, handler = server
    handler.status, handler.body = 400, b"Error 400: Bad Request\n\n20001 matching events exceeds search limit of 20000."
    dest = tmp_path / "x.csv"
    with pytest.raises(DownloadError, match=r"refused the query \(HTTP 400\).*exceeds search limit"):
        download_comcat(url, {"format": "csv"}, str(dest))
    handler.status, handler.body = 204, b""
    with pytest.raises(DownloadError, match="found no event"):
        download_comcat(url, {"format": "csv"}, str(dest))
    assert handler.requests and not dest.exists()  # 4xx: one request each, no retry


def test_download_without_the_service_fails_clearly_after_retries(tmp_path):
    dest = tmp_path / "x.csv"
    url = closed_port_url()
    tries = []
    with pytest.raises(DownloadError, match=r"cannot reach the event service at .* after 3 attempt\(s\).*source: comcat_csv"):
        download_comcat(url, {"format": "csv"}, str(dest), retries=3, retry_wait_s=0.01, timeout_s=5, log=tries.append)
    assert len(tries) == 3 and not dest.exists() and not list(tmp_path.iterdir())


def test_download_result_imports(tmp_path, server):
    url, _ = server
    ds = dataset("unused", source="comcat", url=url)
    dest = tmp_path / "resources" / "x.csv"
    download_comcat(url, comcat_query(ds), str(dest))
    cat, rep = outputs(tmp_path)
    report = import_dataset(ds, str(dest), str(cat), str(rep))
    assert json.loads(Path(rep).read_text())["counts"]["kept"] == report["counts"]["kept"] > 0


# ------------------------------------------------------------------------------ the download rule (Snakemake)


@pytest.mark.e2e
def test_download_rule_fetches_then_uses_its_cache_and_fails_clearly_offline(tmp_path, server):
    from test_workflow import TINY, planned_jobs, run_snakemake

    url, handler = server
    config = copy.deepcopy(TINY)
    config["datasets"] = {"web": dataset_config("unused", source="comcat", url=url, download={"retries": 2, "retry_wait_s": 0.01})}
    del config["datasets"]["web"]["path"]
    target = "results/catalogs/web/import.json"
    run_snakemake(tmp_path, config, target)
    assert len(handler.requests) == 1
    assert (tmp_path / "resources" / "comcat" / "web.csv").read_bytes() == (tmp_path / "response.csv").read_bytes()
    # Cached: with the service gone, a fresh import reads the downloaded file and asks for nothing.
    (tmp_path / target).unlink()
    handler.status, handler.body = 503, b"gone"
    jobs = planned_jobs(run_snakemake(tmp_path, config, target, "-n"))
    assert jobs == {"import_dataset": 1}
    run_snakemake(tmp_path, config, target)
    assert len(handler.requests) == 1 and (tmp_path / target).exists()
    # No service and no cache: a clear error, and no file under the download's name.
    offline = tmp_path / "offline"
    offline.mkdir()
    config["datasets"]["web"]["url"] = closed_port_url()
    proc = run_snakemake(offline, config, target, check=False)
    assert proc.returncode != 0
    log = (offline / "results" / "logs" / "download" / "web.log").read_text()
    assert "cannot reach the event service" in log and "after 2 attempt(s)" in log
    assert not (offline / "resources" / "comcat" / "web.csv").exists()
