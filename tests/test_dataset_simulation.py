"""A dataset's ETAS fit simulated over the held-out period (etasvae.dataset_simulation): windows in the held-out
windows' format and the count rule, the same seed the same bytes, the explained absence of a fit that cannot be
simulated, and the pages' column beside the VAE."""

import html

import numpy as np
import pandas as pd
import pytest

from etasvae.catalog import read_catalog, write_catalog
from etasvae.dataset_simulation import (LABEL, continuation_windows, simulate_heldout_windows, simulation_refusal,
                                        synthetic_metadata)
from etasvae.evaluate import evaluate_model, evaluation_summary
from etasvae.evaluate.sets import EVENT_COLUMNS, catalog_windows, evaluation_sets
from etasvae.features import check_spec
from etasvae.forecast_sim import simulate_forward
from etasvae.realdata import dataset_windows
from etasvae.report.generators import generators_html, simulated_columns, simulated_line
from etasvae.report.summary import render_summary

# A space-time ETAS model of branching ratio K b ln10 / (b ln10 - alpha) = 0.3 * 2.303 / 1.303 = 0.53.
FIT = {"model": "space-time", "taper": "none", "mc": 3.0, "delta_m": 0.0, "region": [-20.0, 20.0, -20.0, 20.0],
       "usable": True, "problems": [], "at_bound": [],
       "estimates": {"mu": 20.0, "K": 0.3, "alpha": 1.0, "c": 0.01, "p": 1.2, "b": 1.0, "D": 0.5, "q": 1.5,
                     "gamma": 0.5, "branching_ratio": 0.53}}
META = {"mc": 3.0, "periods_days": {"train": [0.0, 6.0], "validation": [6.0, 7.0], "heldout": [7.0, 10.0]}}
EVENT = check_spec({"representation": "event", "length": 16, "stride": 8, "mc": 3.0, "xy_scale_km": 5.0})
BINNED = check_spec({"representation": "binned", "duration_days": 1.0, "stride_days": 0.5, "time_bins": 4,
                     "magnitude_bands": [3.0, 3.5], "mc": 3.0})


@pytest.fixture(scope="module")
def dataset():
    """A 'real' catalog of ten days: one simulated history of the model (seeded), in the catalog schema."""
    sim = simulate_forward(FIT, pd.DataFrame({"time": [], "magnitude": [], "x": [], "y": []}), 0.0, 10.0,
                           rng=np.random.default_rng(11))
    n = len(sim)
    return pd.DataFrame({"event_id": np.arange(n, dtype=np.int64), "time": sim["time"].to_numpy(),
                         "magnitude": sim["magnitude"].to_numpy(), "x": sim["x"].to_numpy(), "y": sim["y"].to_numpy(),
                         "parent_id": np.full(n, -1, np.int64), "generation": np.full(n, -1, np.int32)})


def test_a_continuation_is_cut_exactly_as_the_held_out_period(dataset):
    # The real held-out events put through continuation_windows give the evaluation's H windows event for event.
    table, _ = dataset_windows(dataset, EVENT, META["periods_days"])
    held = table[table["role"] == "heldout"]
    expected = catalog_windows(held, {("d", 0): dataset}, EVENT, "d")
    s0, s1 = META["periods_days"]["heldout"]
    events = dataset[(dataset["time"] >= s0) & (dataset["time"] < s1)]
    got = continuation_windows(events.assign(time=events["time"] - s0), EVENT, s1 - s0)
    assert len(got) == len(expected) > 3
    for g, e in zip(got, expected):
        pd.testing.assert_frame_equal(g[EVENT_COLUMNS], e[EVENT_COLUMNS], rtol=0, atol=1e-9)


@pytest.mark.parametrize("spec", [EVENT, BINNED], ids=["event", "binned"])
def test_the_simulated_windows_have_the_held_out_format_and_the_count_rule(dataset, spec, tmp_path):
    n = 50
    synthetic, info = simulate_heldout_windows(dataset, META, FIT, spec, n_windows=n, seed=7)
    assert info["available"] and info["n_windows"] == synthetic["window"].nunique() == synthetic["window"].max() + 1
    # count rule: whole continuations, the fewest whose windows reach n
    per = synthetic.groupby("continuation")["window"].nunique().reindex(range(info["n_continuations"]), fill_value=0)
    cum = per.cumsum().to_numpy()
    assert cum[-1] == info["n_windows"] >= n and (len(cum) == 1 or cum[-2] < n)
    table, _ = dataset_windows(dataset, spec, META["periods_days"])
    n_h = int((table["role"] == "heldout").sum())
    if spec["representation"] == "binned":  # the period tiled alike: every continuation has H's windows
        assert per.tolist() == [n_h] * len(per) and info["n_windows"] == -(-n // n_h) * n_h
    else:  # an event window holds `length` events, the first at (0, 0), times after the clock start
        sizes = synthetic.groupby("window").size()
        assert (sizes == spec["length"]).all()
        first = synthetic.groupby("window").head(1)
        assert np.allclose(first[["x", "y"]].to_numpy(), 0.0) and (first["time"] > 0).all()
    # the catalog of a VAE's sampled windows: written, read back validated, and read as S by the evaluation
    path = tmp_path / "catalog.parquet"
    write_catalog(synthetic, path, synthetic_metadata(info, spec, "fit.json"), mc=spec["mc"])
    back, meta = read_catalog(path)
    assert meta["n_windows"] == info["n_windows"]
    sets = evaluation_sets(table, {("d", 0): dataset}, spec, path, rng=np.random.default_rng(0),
                           n_synthetic=meta["n_windows"], config_id="d")
    assert len(sets["S"]) == info["n_windows"] and len(sets["H"]) == n_h
    # event_key names a simulated event once, however many overlapping windows share it
    assert "event_key" in sets["S"][0] and info["n_distinct_events"] == len(back[["continuation", "event_key"]].drop_duplicates())
    assert info["n_distinct_events"] == back.groupby("continuation")["event_key"].nunique().sum()


def test_the_first_continuation_is_the_fit_simulated_from_the_history(dataset):
    # The set's first continuation is simulate_forward of the fit given every event before the held-out period,
    # from the seed's generator: the history and the seed reach the simulation unchanged.
    synthetic, info = simulate_heldout_windows(dataset, META, FIT, EVENT, n_windows=1, seed=3)
    s0, s1 = META["periods_days"]["heldout"]
    sims = simulate_forward(FIT, dataset[dataset["time"] < s0], s0, s1, rng=np.random.default_rng(np.random.SeedSequence(3)),
                            n_catalogs=64)
    first = sims[sims["catalog"] == 0]
    expected = continuation_windows(first.assign(time=first["time"] - s0), EVENT, s1 - s0)
    got = synthetic[synthetic["continuation"] == 0]
    assert len(expected) == got["window"].nunique() >= 1
    assert np.allclose(got["time"].to_numpy(), np.concatenate([w["time"].to_numpy() for w in expected]), rtol=0, atol=1e-12)


def test_the_same_seed_gives_the_same_bytes(dataset, tmp_path):
    paths = []
    for k, seed in enumerate((5, 5, 6)):
        synthetic, info = simulate_heldout_windows(dataset, META, FIT, EVENT, n_windows=30, seed=seed)
        paths.append(tmp_path / f"{k}.parquet")
        write_catalog(synthetic, paths[-1], synthetic_metadata(info, EVENT, "fit.json"), mc=3.0)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert read_catalog(paths[0])[0]["time"].tolist() != read_catalog(paths[2])[0]["time"].tolist()


@pytest.mark.parametrize("change, words", [
    ({"estimates": {**FIT["estimates"], "K": 3.0, "branching_ratio": 5.3}, "usable": False,
      "problems": ["supercritical"]}, "supercritical (branching ratio 5.3 >= 1)"),
    # critical: K = (b ln10 - alpha) / (b ln10) gives a branching ratio of 1, whose simulation need not end
    ({"estimates": {**FIT["estimates"], "K": 1.3026 / 2.3026, "branching_ratio": 1.0}},
     "supercritical (branching ratio 1 >= 1)"),
    ({"error": "12 events above Mc: too few to fit"}, "could not run: 12 events above Mc"),
], ids=["supercritical", "critical", "not fitted"])
def test_a_fit_that_cannot_be_simulated_is_an_explained_absence(dataset, tmp_path, change, words):
    fit = {**FIT, **change}
    synthetic, info = simulate_heldout_windows(dataset, META, fit, EVENT, n_windows=30, seed=1)
    assert not info["available"] and words in info["reason"] and simulation_refusal(fit) == info["reason"]
    assert len(synthetic) == 0 and info["n_windows"] == 0
    path = tmp_path / "empty.parquet"  # still a valid synthetic catalog file: the rule writes it, no failure
    write_catalog(synthetic, path, synthetic_metadata(info, EVENT, "fit.json"), mc=3.0)
    assert len(read_catalog(path)[0]) == 0
    doc = {"available": False, "reason": info["reason"]}
    page = generators_html({"overall_score": 0.5}, doc, "mlp")
    assert f"{LABEL}: no column." in page and html.escape(words) in page
    assert simulated_columns(doc)["etas_simulated_verdict_class"] == "missing"
    assert html.escape(words) in simulated_line({"event": doc})


def test_a_subcritical_fit_flagged_not_usable_is_simulated_with_its_flag(dataset):
    fit = {**FIT, "usable": False, "problems": ["c at its lower bound"]}
    _, info = simulate_heldout_windows(dataset, META, fit, EVENT, n_windows=10, seed=1)
    assert info["available"] and "c at its lower bound" in info["note"]


@pytest.fixture(scope="module")
def evaluated(dataset, tmp_path_factory):
    """The real evaluation of a simulated set against H (the evaluate_dataset_etas script's calls)."""
    tmp_path = tmp_path_factory.mktemp("evaluated")
    table, _ = dataset_windows(dataset, EVENT, META["periods_days"])
    synthetic, info = simulate_heldout_windows(dataset, META, FIT, EVENT, n_windows=40, seed=2)
    path = tmp_path / "catalog.parquet"
    write_catalog(synthetic, path, synthetic_metadata(info, EVENT, "fit.json"), mc=3.0)
    metrics, n_windows, figures = evaluate_model(table, {("d", 0): dataset}, EVENT, path, {"n_windows": info["n_windows"]},
                                                 config_id="d", seed=0, permutations=20, cv_folds=3,
                                                 figures_dir=tmp_path / "fig", title="d", real=True,
                                                 synthetic_label=f"S: {LABEL}")
    doc = evaluation_summary(metrics, config_id="d", vae_id="etas_simulated", settings={}, n_windows=n_windows,
                             health={}, figures=figures, cv_folds=3, real=True)
    doc.update(available=True, simulation=info, real_catalog={"source": "csv"})
    return doc, info, metrics


def test_the_page_shows_the_simulated_column_beside_the_vae(evaluated):
    doc, info, metrics = evaluated
    vae = {**doc, "overall_score": -0.5, "verdict_class": "naive"}
    page = generators_html(vae, doc, "mlp")
    assert "<th class='ref'>VAE mlp</th>" in page and f"<th class='ref'>{LABEL}</th>" in page
    assert f"{info['n_windows']} windows from {info['n_continuations']} simulated held-out periods" in page
    assert page.count("<tr>") >= 3 + len(metrics)  # both generators' rows, and one row per statistic
    assert simulated_columns(doc)["etas_simulated_overall_score"] == doc["overall_score"]


def test_the_summary_has_a_line_for_the_simulated_set(evaluated, tmp_path):
    doc, _, _ = evaluated
    vae = {**doc, "vae_id": "mlp", "settings": {"representation": "event"}, "overall_score": 0.2}
    table = render_summary(tmp_path / "s.html", tmp_path / "s.csv", [vae], etas={}, vaes={"mlp": {"representation": "event"}},
                           simulated={"d": {"event": doc}})
    text = (tmp_path / "s.html").read_text(encoding="utf-8")
    line = text[text.index("Dataset d"):]
    assert f"<td class='txt'>{LABEL}</td><td class='txt'>event</td>" in line
    assert f"{doc['overall_score']:.2f}" in line and len(table) == 1  # a line beside the ranking, not a ranked row
