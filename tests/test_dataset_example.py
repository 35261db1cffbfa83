"""End to end: the shipped real catalog (data/ridgecrest_2019, ComCat via pyCSEP) through the dataset path,
with the real Snakemake and the one command of docs/datasets.md, offline.

The run (about a minute on 2 cores) is shared by the checks of this module: the import of the shipped file,
the pages' words for real data, the small-set warnings, the verdicts' whole-window rule and the forecast of
the held-out period.
"""

import inspect
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from etasvae.catalog import read_catalog
from etasvae.evaluate import compare_sets
from etasvae.features import read_windows
from etasvae.stats import b_value_and_error

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config" / "dataset_example.yaml"
ETAS_WORDS = ("ETAS noise floor", "held-out ETAS", "training ETAS", "ETAS vs ETAS", "ETAS-like", "truth (simulation)")


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """`snakemake datasets --cores 2 --configfile config/dataset_example.yaml` in a copy of the repository's
    configuration (config.yaml, then the example on top), the catalog path made absolute."""
    work = tmp_path_factory.mktemp("dataset_example")
    shutil.copy(ROOT / "config.yaml", work / "config.yaml")
    example = yaml.safe_load(EXAMPLE.read_text())
    example["datasets"]["ridgecrest"]["path"] = str(ROOT / example["datasets"]["ridgecrest"]["path"])
    (work / "example.yaml").write_text(yaml.safe_dump(example))
    cmd = [sys.executable, "-m", "snakemake", "datasets", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(work),
           "--cores", "2", "--configfile", str(work / "example.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work, timeout=900)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return work


def test_the_shipped_catalog_imports_as_documented(example_run):
    report = json.loads((example_run / "results" / "catalogs" / "ridgecrest" / "import.json").read_text())
    # The shipped file: 829 ComCat events M >= 2.5, 2019-07-06 to 07-13; two lie outside the region, and Mc by
    # maximum curvature on the training period is 3.0 (docs/datasets.md gives these numbers).
    assert report["counts"]["rows_read"] == 829 and report["counts"]["outside_region"] == 2
    assert report["mc"] == pytest.approx(3.0)
    assert report["events_per_period"] == {"train": 353, "validation": 22, "heldout": 76}
    # Only the dataset ran: the ETAS grid of config.yaml was not simulated.
    assert sorted(p.name for p in (example_run / "results" / "catalogs").iterdir()) == ["ridgecrest"]


def pages(run):
    found = sorted((run / "results" / "reports" / "ridgecrest").glob("*.html"))
    assert len(found) == 2  # the mlp and the autoregressive decoder
    return found


def test_the_pages_speak_of_the_held_out_and_training_periods(example_run):
    for page in pages(example_run):
        text = page.read_text(encoding="utf-8")
        assert not [w for w in ETAS_WORDS if w in text], page.name
        assert "Statistics: synthetic (S) against the held-out period (H)" in text
        assert "2019-07-10 03:20 to 2019-07-13 03:20 UTC (days 4 to 7)" in text  # the run facts: dates, region
        assert "longitude -118.2 to -117, latitude 35.3 to 36.3" in text
        # 76 held-out events in windows of 16 events: a small set, said in a visible box
        assert "<div class='warn'><b>Read with care.</b>" in text and "H (the held-out period) has 8 windows" in text


def test_the_verdicts_follow_the_whole_window_tests(example_run):
    for metrics in sorted((example_run / "results" / "evaluation" / "ridgecrest").glob("*/metrics.json")):
        doc = json.loads(metrics.read_text())
        c2st = doc["statistics"]["c2st"]
        head = re.split(r"(?<=[.!?])\s+(?=[A-Z])", doc["verdict"], maxsplit=1)[0]
        if c2st["value_S"] >= 0.9:
            assert doc["verdict_class"] == "separated" and "not close" in head, doc["verdict"]
        if doc["verdict_class"] != "separated" and c2st["value_A"] >= 0.9:
            assert "tells the floor itself from the windows of the held-out period" in head, doc["verdict"]
        assert doc["warnings"] and doc["n_windows"]["H"] == 8


def test_the_held_out_b_value_counts_each_event_once(example_run):
    table, _, spec, _ = read_windows(example_run / "results" / "windows" / "ridgecrest" / "event.parquet", features=False)
    catalog, meta = read_catalog(example_run / "results" / "catalogs" / "ridgecrest" / "catalog.parquet")
    held = table[table["role"] == "heldout"]
    ids = np.unique(np.concatenate([np.arange(a, b) for a, b in zip(held["start_event"], held["end_event"])]))
    m = catalog.set_index("event_id").loc[ids, "magnitude"].to_numpy()
    m = m[m >= meta["mc"] - 1e-9]
    delta_m = inspect.signature(compare_sets).parameters["delta_m"].default
    b, err = b_value_and_error(m, meta["mc"], delta_m)
    assert (held["end_event"] - held["start_event"]).sum() > 1.5 * len(ids)  # the windows overlap
    for metrics in sorted((example_run / "results" / "evaluation" / "ridgecrest").glob("*/metrics.csv")):
        row = pd.read_csv(metrics).set_index("statistic").loc["b_value"]
        assert row["value_H"] == pytest.approx(b, rel=1e-9) and row["err_H"] == pytest.approx(err, rel=1e-9)


def test_the_held_out_period_is_scored_as_a_forecast(example_run):
    out = example_run / "results" / "forecast" / "ridgecrest"
    scores = json.loads((out / "scores.json").read_text())
    fit = json.loads((out / "etas_fit.json").read_text())
    assert scores["n_events"] == 76 and scores["period"]["test_days"] == [4.0, 7.0]
    assert scores["period"]["training_days"] == [0.25, 3.0] and fit["t_start"] == 0.25 and fit["t_end"] == 3.0
    etas, poisson = scores["forecasters"]["etas"], scores["forecasters"]["poisson"]
    assert etas["usable"] is fit["usable"] and etas["at_bound"] == fit["at_bound"]
    # Ridgecrest's week is an aftershock sequence: the ETAS fit's decaying rate must give the held-out events a
    # higher temporal likelihood than the training period's constant rate (a Poisson rate 4-5 times too high
    # for days 4-7), and its clustered locations a higher spatial one than the uniform density.
    assert etas["tll"] > poisson["tll"] and etas["sll"] > poisson["sll"]
    for page in pages(example_run):
        text = page.read_text(encoding="utf-8")
        assert "Forecast of the held-out period" in text and f"<td class='num'>{etas['tll']:.3f}</td>" in text
        assert f"<td class='ref num'>{poisson['tll'] - etas['tll']:+.3f}</td>" in text
    # every VAE setting as a forecaster of the same 76 events, its row on every page beside Poisson and ETAS
    vaes = sorted((out / "vae").glob("*.json"))
    assert len(vaes) == 2
    for path in vaes:
        entry = json.loads(path.read_text())
        assert entry["vae_id"] == path.stem and entry["n_events"] == 76
        assert all(np.isfinite(entry[k]) for k in ("tll", "sll", "mll"))
        for page in pages(example_run):
            text = page.read_text(encoding="utf-8")
            assert f"<td class='ref num'>{entry['tll'] - etas['tll']:+.3f}</td>" in text


def test_the_etas_fit_simulated_stands_beside_the_vae(example_run):
    # The ETAS fit of the training period simulated over the held-out period from the real history, windowed as
    # the held-out windows and evaluated as the VAE's synthetic windows: a column on every page, against the
    # same H as the VAE's evaluation.
    out = example_run / "results" / "etas_simulated" / "ridgecrest" / "event"
    info = json.loads((out / "simulation.json").read_text())
    doc = json.loads((out / "metrics.json").read_text())
    fit = json.loads((example_run / "results" / "forecast" / "ridgecrest" / "etas_fit.json").read_text())
    assert fit["estimates"]["branching_ratio"] < 1 and info["available"] and doc["available"]
    # as many windows as the VAE's synthetic set (sample.n_windows = 200), whole continuations only
    assert doc["n_windows"]["S"] == info["n_windows"] >= 200 and info["n_continuations"] >= 2
    synthetic, _ = read_catalog(out / "catalog.parquet")
    assert (synthetic.groupby("window").size() == 16).all()  # windows of windows.event.length events
    for vae in sorted((example_run / "results" / "evaluation" / "ridgecrest").glob("*/metrics.json")):
        other = json.loads(vae.read_text())
        assert other["n_windows"]["H"] == doc["n_windows"]["H"] == 8
        assert other["statistics"]["b_value"]["value_H"] == doc["statistics"]["b_value"]["value_H"]
    for page in pages(example_run):
        text = page.read_text(encoding="utf-8")
        assert "Generators side by side: the VAE and the ETAS fit (simulated)" in text
        assert "<th class='ref'>ETAS fit (simulated)</th>" in text and f"<th class='ref'>VAE {page.stem}</th>" in text
        assert f"{info['n_windows']} windows from {info['n_continuations']} simulated held-out periods" in text


def test_the_forecasts_have_csep_pass_rates_on_the_pages(example_run):
    """Poisson, the ETAS fit and each VAE setting: pyCSEP's four tests over the six half-day horizons of the
    held-out period (the example's csep settings), in their files and as passed/valid cells on every page;
    without pyCSEP the entries say which extra is missing."""
    out = example_run / "results" / "forecast" / "ridgecrest"
    scores = json.loads((out / "scores.json").read_text())
    entries = {k: scores["forecasters"][k] for k in ("poisson", "etas")}
    entries.update({p.stem: json.loads(p.read_text()) for p in sorted((out / "vae").glob("*.json"))})
    try:
        import csep  # noqa: F401
    except ImportError:
        assert all("pycsep" in e["csep"]["not_run"] for e in entries.values())
        return
    for name, entry in entries.items():
        csep = entry["csep"]
        assert csep["n_horizons"] == 6 and csep["horizon_days"] == 0.5 and csep["n_catalogs"] == 1000, name
        assert sum(h["n_observed"] for h in csep["horizons"]) == 76, name
        assert all(0.0 <= csep["pass_rate"][k] <= 1.0 for k in ("number", "magnitude", "spatial", "pseudolikelihood"))
    for page in pages(example_run):
        text = page.read_text(encoding="utf-8")
        assert "<th>CSEP N</th>" in text and "<th>CSEP PL</th>" in text
        for entry in entries.values():
            c = entry["csep"]
            assert f">{round(c['pass_rate']['number'] * c['n_valid']['number'])}/{c['n_valid']['number']}</td>" in text
