"""Real catalogs as a seismologist has them: header-less CSV, date and time columns, event types, QuakeML,
files cut short, dropped connections, download deadlines, a too-short validation period.

Every file is written by the test from the real ETAS simulator (``comcat_files``); the downloads run against
an HTTP server on 127.0.0.1 that the test starts. Each refusal asserts the line it names.
"""

import copy
import http.server
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

from comcat_files import comcat_text, dataset_config, etas_events, write_comcat_csv
from etasvae.catalog import read_catalog
from etasvae.config import ConfigError, check_schema
from etasvae.realdata import (
    DatasetError,
    DownloadError,
    check_dataset,
    dataset_facts,
    dataset_spec,
    dataset_windows,
    download_comcat,
    import_dataset,
)

SHORT = {"end": "2020-01-31", "split": {"validation_start": "2020-01-10", "heldout_start": "2020-01-20"}, "mc": 2.0}


def dataset(path, **overrides):
    return check_dataset("test", copy.deepcopy(dataset_config(str(path), **overrides)))


def run_import(tmp_path, path, name="out", **overrides):
    out = tmp_path / name
    report = import_dataset(dataset(path, **overrides), str(path), str(out / "catalog.parquet"), str(out / "import.json"))
    return report, read_catalog(out / "catalog.parquet")[0]


def refused(tmp_path, path, pattern, **overrides):
    with pytest.raises(DatasetError, match=pattern) as info:
        run_import(tmp_path, path, **overrides)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    return str(info.value)


def events300():
    return etas_events().iloc[:300].reset_index(drop=True)


def plain_table(events):
    return pd.DataFrame({"t": events["time"].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3], "lon": events["longitude"],
                         "lat": events["latitude"], "z": events["depth"], "m": events["magnitude"]})


# --------------------------------------------------------------------------------------- CSV layouts


def test_a_header_less_csv_is_read_by_position_and_keeps_its_first_event(tmp_path):
    events = events300()
    events.loc[0, "magnitude"] = 6.5  # the first row: a header-less file read with a header loses it
    table = plain_table(events)
    named, bare = tmp_path / "named.csv", tmp_path / "bare.csv"
    table.to_csv(named, index=False)
    table.to_csv(bare, index=False, header=False)
    by_name, cat_named = run_import(tmp_path, named, "a", source="csv", **SHORT,
                                    columns={"time": "t", "longitude": "lon", "latitude": "lat", "magnitude": "m", "depth": "z"})
    by_pos, cat_bare = run_import(tmp_path, bare, "b", source="csv", header=False, **SHORT,
                                  columns={"time": 0, "longitude": 1, "latitude": 2, "magnitude": 4, "depth": 3})
    pd.testing.assert_frame_equal(cat_named, cat_bare)
    assert by_pos["counts"]["rows_read"] == len(events) and cat_bare["magnitude"].max() == 6.5
    # A bad value of a header-less file is named by its line and position.
    text = bare.read_text().splitlines()
    text[6] = ",".join(text[6].split(",")[:4] + ["x"])  # data row 6: its magnitude (position 4) unreadable
    bare.write_text("\n".join(text) + "\n")
    refused(tmp_path, bare, r"line 7 \(data row 6\), column 5 \(by position\): 'x' is not a number", source="csv",
            header=False, **SHORT, columns={"time": 0, "longitude": 1, "latitude": 2, "magnitude": 4})


def test_header_false_needs_positions():
    with pytest.raises(DatasetError, match=r"datasets.test.columns.time = 't': header: false .* 0-based position"):
        dataset("x.csv", source="csv", header=False, columns={"time": "t", "longitude": 1, "latitude": 2, "magnitude": 3})


def test_separate_date_and_time_columns_are_joined(tmp_path):
    events = events300()
    table = plain_table(events)
    iso = tmp_path / "iso.csv"
    table.to_csv(iso, index=False)
    split = tmp_path / "split.csv"
    stamp = events["time"]
    table.drop(columns="t").assign(day=stamp.dt.strftime("%Y/%m/%d"), clock=stamp.dt.strftime("%H:%M:%S.%f").str[:-3]).to_csv(split, index=False)
    cols = {"longitude": "lon", "latitude": "lat", "magnitude": "m", "depth": "z"}
    _, reference = run_import(tmp_path, iso, "a", source="csv", **SHORT, columns={"time": "t", **cols})
    _, joined = run_import(tmp_path, split, "b", source="csv", **SHORT, time_format="%Y/%m/%d %H:%M:%S.%f",
                           columns={"date": "day", "time": "clock", **cols})
    pd.testing.assert_frame_equal(reference, joined)


# ---------------------------------------------------------------------------------------- event types


def test_comcat_keeps_earthquakes_by_default_and_counts_the_rest(tmp_path):
    events = events300()
    text = comcat_text(events).splitlines()
    blasts = list(range(1, 301, 10))  # 30 data rows become quarry blasts
    for i in blasts:
        text[i] = text[i].replace(",earthquake,", ",quarry blast,")
    csv = tmp_path / "c.csv"
    csv.write_text("\n".join(text) + "\n")
    report, catalog = run_import(tmp_path, csv, "a", **SHORT)
    in_span = (events["time"] < pd.Timestamp("2020-01-31", tz="UTC")).to_numpy()
    blast = np.zeros(len(events), bool)
    blast[np.array(blasts) - 1] = True
    assert report["counts"]["other_event_type"] == int(blast.sum()) == 30
    assert report["counts"]["kept"] == int((~blast & in_span & (events["magnitude"] >= 2.0 - 1e-9)).sum())
    both, _ = run_import(tmp_path, csv, "b", **SHORT, event_types=["earthquake", "Quarry Blast"])
    assert both["counts"]["other_event_type"] == 0 and both["counts"]["kept"] > report["counts"]["kept"]


def test_a_generic_csv_filters_on_its_mapped_type_column(tmp_path):
    events = events300()
    table = plain_table(events).assign(kind=np.where(np.arange(len(events)) % 4 == 0, "qb", "eq"))
    csv = tmp_path / "g.csv"
    table.to_csv(csv, index=False)
    cols = {"time": "t", "longitude": "lon", "latitude": "lat", "magnitude": "m"}
    everything, _ = run_import(tmp_path, csv, "a", source="csv", **SHORT, columns=cols)
    quakes, _ = run_import(tmp_path, csv, "b", source="csv", **SHORT, columns={**cols, "type": "kind"}, event_types=["eq"])
    assert "other_event_type" not in everything["counts"]
    # The event type is the first filter: every "qb" row counts there, inside the time span or not.
    assert quakes["counts"]["other_event_type"] == 75
    keep = ((np.arange(len(events)) % 4 != 0) & (events["time"] < pd.Timestamp("2020-01-31", tz="UTC"))
            & (events["magnitude"] >= 2.0 - 1e-9))
    assert quakes["counts"]["kept"] == int(keep.sum()) < everything["counts"]["kept"]
    with pytest.raises(DatasetError, match=r"datasets.test.event_types .* no event-type column; map it as columns.type"):
        dataset(csv, source="csv", columns=cols, event_types=["eq"])


def test_the_schema_takes_the_new_dataset_keys():
    from test_workflow import TINY

    config = copy.deepcopy(TINY)
    config["datasets"] = {"x": dataset_config("x.csv", source="csv", header=False, event_types=["eq"],
                                              columns={"time": 0, "date": 5, "longitude": 1, "latitude": 2, "magnitude": 3, "type": 4},
                                              download={"deadline_s": 30})}
    check_schema(config)
    config["datasets"]["x"]["columns"]["time"] = -1
    with pytest.raises(ConfigError, match=r"datasets.x.columns.time = -1"):
        check_schema(config)


# -------------------------------------------------------------------------------------------- QuakeML


def quakeml_text(events, types):
    """A QuakeML 1.2 document of ``events`` (depths in metres, as QuakeML stores them), with event types."""
    parts = []
    for i, (e, kind) in enumerate(zip(events.itertuples(index=False), types)):
        t = e.time.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
        parts.append(
            f'<event publicID="smi:test/event/{i}"><type>{kind}</type>'
            f"<preferredOriginID>smi:test/origin/{i}</preferredOriginID>"
            f"<preferredMagnitudeID>smi:test/magnitude/{i}</preferredMagnitudeID>"
            f'<origin publicID="smi:test/origin/{i}"><time><value>{t}</value></time>'
            f"<latitude><value>{e.latitude}</value></latitude><longitude><value>{e.longitude}</value></longitude>"
            f"<depth><value>{e.depth * 1000:.1f}</value></depth></origin>"
            f'<magnitude publicID="smi:test/magnitude/{i}"><mag><value>{e.magnitude}</value></mag><type>ML</type>'
            f"<originID>smi:test/origin/{i}</originID></magnitude></event>"
        )
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<q:quakeml xmlns="http://quakeml.org/xmlns/bed/1.2" '
            'xmlns:q="http://quakeml.org/xmlns/quakeml/1.2"><eventParameters publicID="smi:test/catalog">'
            + "".join(parts) + "</eventParameters></q:quakeml>\n")


def require_obspy():
    """ObsPy, the optional extra: skip without it locally, fail without it on CI (CI=true), as the reference tests."""
    if os.environ.get("CI", "").lower() == "true":
        import obspy  # noqa: F401  (a missing package fails the test on CI)
        return
    pytest.importorskip("obspy")


def test_quakeml_imports_like_the_same_events_as_comcat_csv(tmp_path):
    require_obspy()
    events = events300()
    types = ["quarry blast" if i % 9 == 0 else "earthquake" for i in range(len(events))]
    xml, csv = tmp_path / "c.xml", tmp_path / "c.csv"
    xml.write_text(quakeml_text(events, types))
    write_comcat_csv(csv, events[[t == "earthquake" for t in types]])
    from_xml, cat_xml = run_import(tmp_path, xml, "a", source="quakeml", **SHORT, event_types=["earthquake"])
    _, cat_csv = run_import(tmp_path, csv, "b", **SHORT)
    assert from_xml["counts"]["other_event_type"] > 0
    pd.testing.assert_frame_equal(cat_xml, cat_csv, atol=1e-6)  # the CSV writes times to the millisecond


def test_a_quakeml_event_without_magnitude_is_named(tmp_path):
    require_obspy()
    events = events300().iloc[:5]
    text = quakeml_text(events, ["earthquake"] * 5)
    start = text.index('<magnitude publicID="smi:test/magnitude/3"')
    text = text[:start] + text[text.index("</magnitude>", start) + len("</magnitude>"):]
    xml = tmp_path / "c.xml"
    xml.write_text(text.replace("<preferredMagnitudeID>smi:test/magnitude/3</preferredMagnitudeID>", ""))
    refused(tmp_path, xml, r"c.xml, event 3 \(smi:test/event/3\): no magnitude", source="quakeml", **SHORT)


# ---------------------------------------------------------------------------------------- cut files


def test_a_row_with_fewer_fields_than_the_header_is_refused_naming_its_line(tmp_path):
    lines = comcat_text(events300()).splitlines()
    lines[41] = ",".join(lines[41].split(",")[:5])  # data row 40 stops after the magnitude
    csv = tmp_path / "c.csv"
    csv.write_text("\n".join(lines) + "\n")
    refused(tmp_path, csv, r"c.csv, line 42: 5 field\(s\) where the header has 22: the row is cut short", **SHORT)


@pytest.mark.parametrize("cut", ["mid_row", "last_field"])
def test_a_file_whose_last_row_is_cut_is_refused_naming_the_line(tmp_path, cut):
    text = comcat_text(events300())
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    # mid_row: the magnitude 2.x cut to "2." (fewer fields); last_field: cut inside the final field (no line end).
    keep = last.index(",", last.index(",", last.index(",", last.index(",") + 1) + 1) + 1) + 3 if cut == "mid_row" else len(last) - 1
    csv = tmp_path / "c.csv"
    csv.write_text(text.rstrip("\n")[: len(text.rstrip("\n")) - len(last) + keep])
    n_lines = len(text.splitlines())
    pattern = (rf"line {n_lines}: 5 field\(s\) where the header has 22" if cut == "mid_row"
               else rf"line {n_lines}: the file ends without a line end, so its last row is cut")
    refused(tmp_path, csv, pattern, **SHORT)


# ------------------------------------------------------------------------------------------ downloads


class Flaky(http.server.BaseHTTPRequestHandler):
    """Serves ``body``; the first ``cut`` answers promise all of it but stop half way and close (IncompleteRead)."""

    body = b""
    cut = 0
    trickle_s = 0.0
    requests: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        cls = type(self)
        cls.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(cls.body)))
        self.end_headers()
        try:
            if len(cls.requests) <= cls.cut:
                self.wfile.write(cls.body[: len(cls.body) // 2])
                self.close_connection = True
                return
            for line in cls.body.splitlines(keepends=True):
                self.wfile.write(line)
                self.wfile.flush()
                time.sleep(cls.trickle_s)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    class Serve(Flaky):
        body = comcat_text(events300()).encode()
        requests = []

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/fdsnws/event/1/query", Serve
    httpd.shutdown()
    httpd.server_close()


def test_a_dropped_connection_is_retried(tmp_path, flaky):
    url, handler = flaky
    handler.cut = 1
    dest, log = tmp_path / "x.csv", []
    n = download_comcat(url, {"format": "csv"}, str(dest), retries=3, retry_wait_s=0.01, timeout_s=5, log=log.append)
    assert n == 300 and dest.read_bytes() == handler.body and len(handler.requests) == 2
    assert len(log) == 1 and "connection dropped mid-answer (IncompleteRead" in log[0]


def test_a_connection_dropped_on_every_attempt_fails_clearly(tmp_path, flaky):
    url, handler = flaky
    handler.cut = 99
    dest = tmp_path / "x.csv"
    with pytest.raises(DownloadError, match=r"after 2 attempt\(s\): the connection dropped mid-answer \(IncompleteRead"):
        download_comcat(url, {"format": "csv"}, str(dest), retries=2, retry_wait_s=0.01, timeout_s=5)
    assert not dest.exists() and not list(tmp_path.iterdir())


def test_a_download_has_a_total_deadline(tmp_path, flaky):
    url, handler = flaky
    handler.trickle_s = 0.01  # 301 lines at 10 ms each: about 3 s, each read well inside the 5 s timeout
    dest = tmp_path / "x.csv"
    with pytest.raises(DownloadError, match=r"passed its deadline of 0.5 s \(download.deadline_s\) on attempt 1/3"):
        download_comcat(url, {"format": "csv"}, str(dest), retries=3, retry_wait_s=0.01, timeout_s=5, deadline_s=0.5)
    assert len(handler.requests) == 1 and not dest.exists()


# ----------------------------------------------------------------------------------------- the split


def test_a_too_short_validation_period_is_named_as_such(tmp_path):
    csv = tmp_path / "c.csv"
    write_comcat_csv(csv, etas_events())
    # One day of validation: a handful of events, fewer than one 64-event window.
    report, catalog = run_import(tmp_path, csv, split={"validation_start": "2020-03-01", "heldout_start": "2020-03-02"})
    spec = dataset_spec({"representation": "event", "mc": 2.5, "length": 64, "stride": 32, "xy_scale_km": 5.0,
                         "min_dt_days": 1e-6}, report["mc"], 2.5)
    n_val = report["events_per_period"]["validation"]
    assert 0 < n_val < 64
    with pytest.raises(DatasetError, match=rf"the validation period \(days \[60, 61\) since the dataset's start, {n_val} events\) "
                                           r"is too short for one window \(event: 64 events\)"):
        dataset_windows(catalog, spec, report["periods_days"])


def test_the_run_facts_give_the_periods_as_dates_and_the_region(tmp_path):
    csv = tmp_path / "c.csv"
    write_comcat_csv(csv, etas_events())
    report, _ = run_import(tmp_path, csv)
    facts = dataset_facts(report)
    assert facts["H (held-out period)"] == "2020-03-21 00:00 to 2020-04-30 00:00 UTC (days 80 to 120)"
    assert facts["A (training period, the floor)"] == "2020-01-01 00:00 to 2020-03-01 00:00 UTC (days 0 to 60)"
    assert facts["region"] == "longitude -117.75 to -117.25, latitude 35.45 to 35.95"
    assert facts["source"].startswith("comcat_csv: ") and facts["mc"] == report["mc"]
