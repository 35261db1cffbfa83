"""Pages that speak of real data: verdict wording for datasets, whole-window tests that overrule the median,
small-set warnings, and datasets listed as datasets in the summary.

The comparison tables have the columns ``etasvae.evaluate.compare_sets`` writes; their numbers are set by
hand so that each case (a classifier that separates, an MMD that rejects S but not A, a small H) is exact.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from etasvae.evaluate import caveats
from etasvae.evaluate.verdict import classify, overall_score, verdict, verdict_class
from etasvae.evaluate.run import evaluation_summary
from etasvae.report import render_model_page, render_summary
from etasvae.report.summary import _first_sentence

ETAS_WORDS = ("ETAS noise floor", "held-out ETAS", "training ETAS", "ETAS vs ETAS", "Poisson vs ETAS", "ETAS-like")


def table(c2st_s=0.55, c2st_a=0.52, mmd_p_s=0.4, mmd_p_a=0.5, skill=0.9) -> pd.DataFrame:
    """Five informative statistics at ``skill`` plus the two whole-window tests with the given values."""
    rows = [
        {"statistic": s, "group": g, "value_S": 1.0, "value_H": 1.0, "value_A": 1.0, "value_P": 2.0, "err_S": 0.05, "err_H": 0.05,
         "d_S": 0.1, "d_A": 0.05, "d_P": 1.0, "p_S": np.nan, "p_A": np.nan, "p_P": 0.001, "informative": True, "skill": skill}
        for s, g in (("b_value", "magnitudes"), ("magnitude_ks", "magnitudes"), ("log_dt_ks", "time"),
                     ("omori_p", "aftershocks"), ("interevent_distance_ks", "space"))
    ]
    rows.append({"statistic": "mmd", "group": "whole windows", "value_S": 0.1, "value_H": np.nan, "value_A": 0.05,
                 "value_P": 0.8, "err_S": np.nan, "err_H": np.nan, "d_S": 0.1, "d_A": 0.05, "d_P": 0.8, "p_S": mmd_p_s, "p_A": mmd_p_a,
                 "p_P": 0.001, "informative": False, "skill": np.nan})
    # accuracy standard error at chance, sqrt(0.25 / 2m) with m = 100 windows a set
    rows.append({"statistic": "c2st", "group": "whole windows", "value_S": c2st_s, "value_H": np.nan, "value_A": c2st_a,
                 "value_P": 0.99, "err_S": 0.035, "err_H": np.nan, "d_S": abs(c2st_s - 0.5), "d_A": abs(c2st_a - 0.5), "d_P": 0.49,
                 "p_S": 0.001 if c2st_s > 0.6 else 0.3, "p_A": 0.001 if c2st_a > 0.6 else 0.3, "p_P": 1e-6,
                 "informative": False, "skill": np.nan})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------- verdict


def test_a_generator_close_on_the_median_but_separated_by_the_classifier_is_not_called_close():
    good = table()
    assert verdict_class(good) == "floor"
    assert "are close to the ETAS noise floor" in _first_sentence(verdict(good))
    for acc in (0.95, 0.9):
        bad = table(c2st_s=acc)
        assert overall_score(bad) == pytest.approx(0.9)  # the median does not see it
        head = _first_sentence(verdict(bad))
        assert verdict_class(bad) == "separated"
        assert f"classifier accuracy {acc:.2f}" in head and "they are not close to" in head and "are close" not in head
        # and the classifier row is never listed among the statistics that agree
        assert "fails" == classify(bad).iloc[-1]
    # a floor told apart as well (a dataset whose periods differ) does not excuse 0.95
    both = table(c2st_s=0.95, c2st_a=0.94)
    assert verdict_class(both) == "separated" and classify(both).iloc[-1] == "fails"
    assert "S agrees with the held-out windows on mmd; S departs from them on c2st." in verdict(both)


def test_a_classifier_well_above_the_floors_separates_below_0_9():
    # 0.80 against A's 0.52: eight standard errors (0.035) apart
    assert verdict_class(table(c2st_s=0.80)) == "separated"
    # 0.80 against A's 0.78: A is told apart as much, so S is as far as the floor (a dataset's periods differ)
    assert verdict_class(table(c2st_s=0.80, c2st_a=0.78)) == "floor"
    # ... but the classifier row still does not count as agreement: it tells S from H (p = 0.001)
    assert classify(table(c2st_s=0.80, c2st_a=0.78)).iloc[-1] == "fails"
    assert classify(table(c2st_s=0.55)).iloc[-1] == "floor"


def test_an_mmd_that_rejects_s_but_not_a_separates():
    assert verdict_class(table(mmd_p_s=0.01, mmd_p_a=0.4)) == "separated"
    assert "MMD permutation p = 0.010" in verdict(table(mmd_p_s=0.01, mmd_p_a=0.4))
    assert verdict_class(table(mmd_p_s=0.01, mmd_p_a=0.01)) == "floor"  # rejects the floor too


def test_a_dataset_verdict_names_its_periods_not_etas():
    for t in (table(), table(c2st_s=0.95), table(skill=0.5), table(skill=0.1), table(c2st_a=0.94)):
        text = verdict(t, real=True)
        assert not [w for w in ETAS_WORDS if w in text], text
        assert "held-out period" in text or "training period" in text
    head = _first_sentence(verdict(table(), real=True))
    assert "close to the training period (the floor)" in head
    # the floor itself told apart from H: said in the headline, since closeness to it then says little
    apart = _first_sentence(verdict(table(c2st_s=0.85, c2st_a=0.94), real=True))
    assert "tells the floor itself from the windows of the held-out period (accuracy 0.94)" in apart


# ---------------------------------------------------------------------------------------- small sets


def test_small_sets_are_flagged_with_what_they_mean_for_each_test():
    assert caveats.small_set_warnings({"S": 200, "H": 60, "A": 120}, cv_folds=5) == []
    few = caveats.small_set_warnings({"S": 200, "H": 8, "A": 43}, cv_folds=3, real=True)
    assert any("H (the held-out period) has 8 windows" in w and "KS distance below about 0.49" in w for w in few)
    # m = 8 windows a set: standard error sqrt(0.25 / 16) = 0.125 at chance
    assert any("standard error of 0.12 at chance" in w and "above about 0.75" in w for w in few)
    none = caveats.small_set_warnings({"S": 200, "H": 4, "A": 43}, cv_folds=5)
    assert any("classifier test is not computed: it needs at least 5 windows" in w and "has 4" in w for w in none)
    assert any("A (the training set, the floor) has 3 windows" in w
               for w in caveats.small_set_warnings({"S": 200, "H": 40, "A": 3}, cv_folds=3))


# ------------------------------------------------------------------------------------------- pages


FACTS = {"source": "csv: data/x.csv", "region": "longitude -118.2 to -117, latitude 35.3 to 36.3",
         "H (held-out period)": "2019-07-10 03:20 to 2019-07-13 03:20 UTC (days 4 to 7)",
         "A (training period, the floor)": "2019-07-06 03:20 to 2019-07-09 03:20 UTC (days 0 to 3)", "mc": 3.0}


def model_summary(cfg, vae, t, real, n_h=8):
    s = evaluation_summary(t, config_id=cfg, vae_id=vae, settings={"decoder": "mlp"},
                           n_windows={"S": 200, "H": n_h, "A": 43, "P": 43}, health={}, figures={}, cv_folds=3, real=real)
    if real:
        s["real_catalog"] = dict(FACTS)
    return s


def test_a_dataset_page_names_its_periods_flags_a_small_set_and_a_separation(tmp_path):
    t = table(c2st_s=0.94)
    path = tmp_path / "ridgecrest" / "mlp.html"
    render_model_page(path, config_id="ridgecrest", vae_id="mlp", settings={"decoder": "mlp"}, metrics=t,
                      summary=model_summary("ridgecrest", "mlp", t, True), latent_metrics={}, clipping={}, images={})
    page = path.read_text(encoding="utf-8")
    assert not [w for w in ETAS_WORDS if w in page]
    assert "Statistics: synthetic (S) against the held-out period (H)" in page and "the windows of the held-out period (H)" in page
    assert "<div class='warn'><b>Read with care.</b>" in page and "has 8 windows" in page
    assert "separated by a whole-window test" in page and "<div class='score poor'>" in page
    assert "2019-07-10 03:20 to 2019-07-13 03:20 UTC" in page and "longitude -118.2 to -117" in page


def test_the_summary_lists_datasets_as_datasets(tmp_path):
    summaries = [model_summary(c, v, table(), False, 60) for c in ("K0.1", "K0.3") for v in ("mlp", "ar")]
    summaries += [model_summary("ridgecrest", "mlp", table(), True), model_summary("ridgecrest", "ar", table(c2st_s=0.95), True)]
    etas = {"K0.1": {"K": 0.1}, "K0.3": {"K": 0.3}}
    out = render_summary(tmp_path / "summary.html", tmp_path / "summary.csv", summaries, etas=etas,
                         vaes={"mlp": {"decoder": "mlp"}, "ar": {"decoder": "autoregressive"}})
    page = (tmp_path / "summary.html").read_text(encoding="utf-8")
    assert "2 ETAS configs · 1 datasets" in page and "ETAS-like" not in page
    # every config's section comes before the datasets' heading, the dataset's after it
    assert page.index("Config K0.3") < page.index("Datasets (real catalogs)") < page.index("Dataset ridgecrest")
    assert "2019-07-10 03:20 to 2019-07-13 03:20 UTC" in page.split("Dataset ridgecrest")[1]
    kinds = dict(zip(out["config_id"], out["kind"]))
    assert kinds == {"K0.1": "ETAS config", "K0.3": "ETAS config", "ridgecrest": "dataset"}
    ridge = page.split("Dataset ridgecrest")[1]
    assert ridge.count("small set") == 2 and ridge.count(">separated<") == 1
    assert page.split("Datasets (real catalogs)")[0].count("small set</span>") == 0
