"""A dataset's held-out period as a forecast (etasvae.dataset_forecast, the rule forecast_dataset): the periods,
the fit's options, the Poisson baseline without a fit, the flags of a fit that is not usable, and the table
of the pages and the summary (etasvae.report.forecast_table).

The catalog is the shipped Ridgecrest file imported as config/dataset_example.yaml declares it (a real
catalog; its fit takes a few seconds).
"""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from etasvae.__main__ import _fit_parser
from etasvae.catalog import read_catalog
from etasvae.dataset_forecast import (FIT_OPTIONS, csep_horizon_days, fit_training_period, forecast_periods,
                                      forecast_scores, poisson_scores)
from etasvae.forecast import catalog_region, score_forecast
from etasvae.realdata import DatasetError, check_dataset, import_dataset
from etasvae.report import render_summary
from etasvae.report.forecast_table import forecast_columns, forecast_html, with_vae_scores

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = yaml.safe_load((ROOT / "config" / "dataset_example.yaml").read_text())["datasets"]["ridgecrest"]
ETAS_WORDS = ("ETAS noise floor", "held-out ETAS", "training ETAS", "ETAS vs ETAS", "ETAS-like", "truth (simulation)")


@pytest.fixture(scope="module")
def ridgecrest(tmp_path_factory):
    """(catalog, metadata, aux_days, fit) of the shipped dataset."""
    out = tmp_path_factory.mktemp("ridgecrest")
    ds = check_dataset("ridgecrest", {**copy.deepcopy(EXAMPLE), "path": str(ROOT / EXAMPLE["path"])})
    import_dataset(ds, ds["path"], str(out / "catalog.parquet"), str(out / "import.json"))
    catalog, meta = read_catalog(out / "catalog.parquet")
    fit = fit_training_period(catalog, meta, aux_days=ds["aux_days"])
    return catalog, meta, ds["aux_days"], fit


def test_the_fit_takes_the_fit_commands_defaults():
    parser = argparse.ArgumentParser()
    _fit_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["fit", "catalog.parquet"])
    command = {"model": args.model, "tau": args.tau, "background": args.background, "n_starts": args.starts,
               "cut_mass": args.cut_mass, "rupture_multiple": args.rupture_multiple, "max_lag_days": args.max_lag_days}
    assert FIT_OPTIONS == command


def test_the_periods_are_the_datasets_and_the_test_period_is_held_out(ridgecrest):
    catalog, meta, aux, fit = ridgecrest
    periods = forecast_periods(meta, aux)
    assert periods == {"auxiliary": [0.0, 0.25], "training": [0.25, 3.0], "test": [4.0, 7.0]}
    assert fit["t_start"] == 0.25 and fit["t_end"] == 3.0
    # the fit's history is the auxiliary period: every event above Mc in [0, 0.25) and nothing later
    t = catalog["time"].to_numpy()
    assert fit["n_history"] == int((t < 0.25).sum()) and fit["n_target"] == int(((t >= 0.25) & (t < 3.0)).sum())
    scores = forecast_scores(catalog, meta, fit, aux_days=aux)
    assert scores["n_events"] == meta["events_per_period"]["heldout"] == 76
    assert scores["period"]["test_utc"] == ["2019-07-10T03:20:00+00:00", "2019-07-13T03:20:00+00:00"]
    assert scores["area_km2"] == pytest.approx(12034, rel=1e-3)  # the bbox's projected outline, not its km box


def test_every_earlier_event_is_history_for_the_test_period(ridgecrest):
    catalog, meta, aux, fit = ridgecrest
    etas = forecast_scores(catalog, meta, fit, aux_days=aux)["forecasters"]["etas"]
    whole = score_forecast(catalog, fit, start_days=4.0, end_days=7.0)["etas"]
    assert etas["tll"] == whole["tll"] and etas["sll"] == whole["sll"]
    # without the validation period's events as history the held-out rates fall: a different score
    cut = score_forecast(catalog[(catalog["time"] < 3.0) | (catalog["time"] >= 4.0)], fit, start_days=4.0, end_days=7.0)["etas"]
    assert abs(cut["tll"] - etas["tll"]) > 0.01


def test_on_ridgecrest_the_etas_fit_is_usable_and_beats_poisson(ridgecrest):
    catalog, meta, aux, fit = ridgecrest
    scores = forecast_scores(catalog, meta, fit, aux_days=aux)
    etas, poisson = scores["forecasters"]["etas"], scores["forecasters"]["poisson"]
    assert etas["usable"] and etas["at_bound"] == []
    # an aftershock sequence: the decaying rate and the clustered locations are what Poisson lacks
    assert etas["tll"] > poisson["tll"] + 0.5 and etas["sll"] > poisson["sll"] + 1.0
    assert poisson["sll"] == pytest.approx(-math.log(scores["area_km2"]), rel=1e-12)
    assert etas["mll"] == poisson["mll"]  # one Gutenberg-Richter law, b of the training period


def test_the_poisson_baseline_without_a_fit_is_score_forecasts(ridgecrest):
    catalog, meta, aux, fit = ridgecrest
    expected = score_forecast(catalog, fit, start_days=4.0, end_days=7.0)["poisson"]
    found = poisson_scores(catalog, mc=fit["mc"], delta_m=fit["delta_m"], region=fit["region"],
                           periods=forecast_periods(meta, aux))
    assert found["n_events"] == expected["n_events"]
    for k in ("tll", "sll", "mll"):
        assert found[k] == pytest.approx(expected[k], rel=1e-12, abs=1e-12), k


def test_a_fit_that_cannot_run_leaves_the_error_and_poisson(ridgecrest):
    catalog, meta, aux, _ = ridgecrest
    t = catalog["time"].to_numpy()
    few = catalog[(t >= 3.0) | (np.arange(len(t)) % 40 == 0)]  # a handful of training events
    fit = fit_training_period(few, meta, aux_days=aux)
    assert "too few" in fit["error"]
    scores = forecast_scores(few, meta, fit, aux_days=aux)
    etas, poisson = scores["forecasters"]["etas"], scores["forecasters"]["poisson"]
    assert etas["usable"] is False and "tll" not in etas and "too few" in etas["error"]
    n_train = int(((few["time"] >= 0.25) & (few["time"] < 3.0)).sum())
    assert poisson["tll"] == pytest.approx(math.log(n_train / 2.75) - n_train / 2.75 * 3.0 / 76, rel=1e-12)
    page = forecast_html(scores)
    assert "not fitted" in page and "too few" in page


def test_a_fit_not_usable_is_scored_and_flagged(ridgecrest):
    catalog, meta, aux, fit = ridgecrest
    bad = {**fit, "usable": False, "at_bound": ["p"], "problems": ["p = 1.001 at its lower bound: fit the tapered law"]}
    scores = forecast_scores(catalog, meta, bad, aux_days=aux)
    etas = scores["forecasters"]["etas"]
    assert etas["usable"] is False and etas["at_bound"] == ["p"] and np.isfinite(etas["tll"])
    page = forecast_html(scores)
    assert ">not usable<" in page and ">at bound: p<" in page and "p = 1.001 at its lower bound" in page
    columns = forecast_columns(scores)
    assert columns["forecast_etas_usable"] is False and columns["forecast_etas_at_bound"] == "p"


def scores_by_hand(vae=None):
    forecasters = {"poisson": {"tll": 1.0, "sll": -9.0, "mll": -0.3, "n_events": 76},
                   "etas": {"tll": 2.5, "sll": -6.0, "mll": -0.3, "n_events": 76, "usable": True, "at_bound": []}}
    if vae:
        forecasters[f"vae:{vae}"] = {"tll": 2.0, "sll": -6.5, "mll": -0.25, "n_events": 76}
    return {"n_events": 76, "mc": 3.0, "area_km2": 12034.0, "reference": "etas", "forecasters": forecasters,
            "period": {"test_days": [4.0, 7.0], "training_days": [0.25, 3.0], "auxiliary_days": [0.0, 0.25],
                       "test_utc": ["2019-07-10T03:20:00+00:00", "2019-07-13T03:20:00+00:00"]}}


def test_the_table_gives_scores_and_gaps_to_etas_per_forecaster():
    page = forecast_html(scores_by_hand("mlp"), vae_id="mlp")
    assert "Forecast of the held-out period" in page and not [w for w in ETAS_WORDS if w in page]
    assert "days 4 to 7 (2019-07-10 03:20 to 2019-07-13 03:20 UTC)" in page
    rows = page.split("<tr")[2:]
    assert len(rows) == 3 and "Poisson" in rows[0] and "ETAS" in rows[1] and "VAE setting mlp (this page)" in rows[2]
    # Poisson: 1.0 - 2.5, -9 - (-6), 0; the VAE: -0.5, -0.5, +0.05
    assert "<td class='ref num'>-1.500</td><td class='num'>-3.000</td><td class='num'>+0.000</td>" in rows[0]
    assert "<td class='ref num'>-0.500</td><td class='num'>-0.500</td><td class='num'>+0.050</td>" in rows[2]
    assert "<td class='ref num'>—</td><td class='num'>—</td><td class='num'>—</td>" in rows[1]
    columns = forecast_columns(scores_by_hand("mlp"), vae_id="mlp")
    assert columns["forecast_tll_gap_poisson"] == -1.5 and columns["forecast_sll_gap_vae"] == -0.5
    assert "forecast_tll_gap_etas" not in columns and columns["forecast_tll_etas"] == 2.5
    # another setting's row keeps its own VAE column only
    assert "forecast_tll_vae" not in forecast_columns(scores_by_hand("mlp"), vae_id="ar")


def test_the_vae_settings_files_join_the_scores_beside_poisson_and_etas():
    # the rule forecast_vae's files: a scored setting and one that is no forecaster
    scored = {"vae_id": "ar", "label": "VAE, autoregressive decoder", "tll": 2.75, "sll": -5.5, "mll": -0.2,
              "n_events": 76}
    refused = {"vae_id": "mlpvae", "label": "VAE, mlp decoder", "not_forecaster": "not a forecaster: the MLP VAE"}
    base = scores_by_hand()
    joined = with_vae_scores(base, [scored, refused])
    assert list(joined["forecasters"]) == ["poisson", "etas", "vae:ar", "vae:mlpvae"]
    assert list(base["forecasters"]) == ["poisson", "etas"] and with_vae_scores(None, [scored]) is None
    rows = forecast_html(joined, vae_id="ar").split("<tr")[2:]
    assert len(rows) == 4 and "VAE, autoregressive decoder (this page)" in rows[2]
    # its gaps to ETAS in nats per event: 2.75 - 2.5, -5.5 - (-6), -0.2 - (-0.3)
    assert "<td class='ref num'>+0.250</td><td class='num'>+0.500</td><td class='num'>+0.100</td>" in rows[2]
    # no scores, no gaps, no CSEP pass rates
    assert "not a forecaster: the MLP VAE" in rows[3] and rows[3].count("—</td>") == 10
    columns = forecast_columns(joined, vae_id="ar")
    assert columns["forecast_tll_vae"] == 2.75 and columns["forecast_tll_gap_vae"] == pytest.approx(0.25)


def test_the_summary_shows_the_table_and_the_columns(tmp_path):
    summaries = [{"config_id": "ridgecrest", "vae_id": v, "overall_score": 0.5, "verdict": "Fine.",
                  "real_catalog": {"source": "csv", "mc": 3.0}, "statistics": {},
                  "extra_columns": forecast_columns(scores_by_hand(), vae_id=v)} for v in ("mlp", "ar")]
    table = render_summary(tmp_path / "s.html", tmp_path / "s.csv", summaries, etas={}, vaes={"mlp": {}, "ar": {}},
                           forecasts={"ridgecrest": scores_by_hand()})
    page = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert page.index("Dataset ridgecrest") < page.index("Forecast of the held-out period")
    back = pd.read_csv(tmp_path / "s.csv")
    assert list(back["forecast_tll_etas"]) == [2.5, 2.5] and list(back["forecast_tll_poisson"]) == [1.0, 1.0]
    assert list(table["forecast_etas_usable"]) == [True, True]


def test_an_auxiliary_period_as_long_as_the_training_period_is_refused():
    with pytest.raises(DatasetError, match=r"datasets.ridgecrest.aux_days = 3: .* 3 days long"):
        check_dataset("ridgecrest", {**copy.deepcopy(EXAMPLE), "aux_days": 3.0})
    assert check_dataset("ridgecrest", copy.deepcopy(EXAMPLE))["aux_days"] == 0.25


def test_the_csep_pass_rates_of_poisson_and_the_etas_fit_on_ridgecrest(ridgecrest):
    """Six horizons of half a day (the example's csep settings), 100 catalogs each: every test has a pass
    rate per forecaster, the horizons cover the held-out period, and the ETAS fit passes the number test in
    more horizons than Poisson (whose constant training-period rate is twice the held-out period's)."""
    pytest.importorskip("csep")
    catalog, meta, aux, fit = ridgecrest
    settings = {**check_dataset("ridgecrest", copy.deepcopy(EXAMPLE))["csep"], "n_catalogs": 100}
    assert settings["horizon_days"] == 0.5 and settings["cell_km"] == 10.0
    scores = forecast_scores(catalog, meta, fit, aux_days=aux, csep=settings)
    for name in ("poisson", "etas"):
        csep = scores["forecasters"][name]["csep"]
        assert csep["n_horizons"] == 6 and csep["n_catalogs"] == 100
        assert [h["start"] for h in csep["horizons"]] == [4.0 + 0.5 * k for k in range(6)]
        assert sum(h["n_observed"] for h in csep["horizons"]) == 76
        assert set(csep["pass_rate"]) == {"number", "magnitude", "spatial", "pseudolikelihood"}
    rates = {k: scores["forecasters"][k]["csep"]["pass_rate"]["number"] for k in ("poisson", "etas")}
    assert rates["etas"] > rates["poisson"], rates
    page = forecast_html(scores)
    assert "<th>CSEP N</th>" in page and "6 consecutive horizons of 0.5 days" in page
    columns = forecast_columns(scores)
    assert columns["forecast_csep_n_etas"] == rates["etas"] and columns["forecast_csep_n_poisson"] == rates["poisson"]
    # no settings: no CSEP entry (the entry is what the rule asks for)
    assert "csep" not in forecast_scores(catalog, meta, fit, aux_days=aux)["forecasters"]["etas"]
    assert csep_horizon_days({"horizon_days": None}, [4.0, 7.0]) == pytest.approx(0.3)


def test_the_table_shows_the_csep_pass_rates_as_passed_over_valid_horizons():
    scores = scores_by_hand("ar")
    scores["forecasters"]["etas"]["csep"] = {
        "pass_rate": {"number": 5 / 6, "magnitude": 1.0, "spatial": 0.5, "pseudolikelihood": 0.4},
        "n_valid": {"number": 6, "magnitude": 5, "spatial": 4, "pseudolikelihood": 5}, "n_horizons": 6,
        "horizon_days": 0.5, "n_catalogs": 1000, "cell_km": 10.0}
    scores["forecasters"]["vae:ar"]["csep"] = {"not_run": "3 events before the horizon"}
    rows = forecast_html(scores, vae_id="ar").split("<tr")[2:]
    assert ">5/6</td><td class='num' title='pass rate 1.00'>5/5</td>" in rows[1] and ">2/4</td>" in rows[1]
    assert ">2/5</td>" in rows[1] and rows[0].count("—</td>") == 4      # Poisson: no CSEP entry
    assert "CSEP tests not run: 3 events before the horizon" in forecast_html(scores, vae_id="ar")
    columns = forecast_columns(scores, vae_id="ar")
    assert columns["forecast_csep_n_etas"] == 5 / 6 and columns["forecast_csep_pl_etas"] == 0.4
    assert math.isnan(columns["forecast_csep_n_vae"]) and math.isnan(columns["forecast_csep_s_poisson"])
