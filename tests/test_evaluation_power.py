"""Evaluation power: reference catalogs simulated for the evaluation only, S, H and the floor set at one size,
and each statistic's stated resolution (docs/design.md §6, *Reference catalogs* and *Resolution*)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from etasvae.config import catalog_seed
from etasvae.evaluate import catalog_windows, evaluation_sets
from etasvae.evaluate.reference import (
    REFERENCE_ROLES,
    reference_replicate,
    reference_seed,
    reference_table,
    simulate_reference_catalogs,
)
from etasvae.evaluate.statistics import ks_resolution, mean_resolution, z_resolution
from etasvae.evaluate.window_tests import c2st_resolution, mmd_with_null
from etasvae.features import build_windows
from etasvae.report.model_page import set_sizes_html

ETAS = {"mu": 2.0, "K": 0.2, "alpha": 1.5, "c": 0.01, "p": 1.2, "D": 0.5, "q": 1.5, "gamma": 1.0, "b": 1.0,
        "mc": 2.5, "mmax": 7.0}
SIM = {"duration_days": 150.0, "burn_in_days": 30.0, "region_km": [0.0, 40.0, 0.0, 40.0], "margin_km": 5.0,
       "max_events": None}
SPEC = {"representation": "event", "length": 16, "stride": 8, "xy_scale_km": 5.0, "min_dt_days": 1e-6, "mc": 2.5,
        "region_km": [0.0, 40.0, 0.0, 40.0]}
# Magnitude offsets that tag where a window's events come from (the evaluation keeps magnitudes as they are).
TAG = {"train": 300.0, "heldout": 0.0, "reference heldout": 200.0, "reference floor": 100.0}


def test_reference_seeds_are_apart_from_every_replicate_seed():
    """No reference catalog can be a training or held-out replicate, whatever the replicate count, and the
    seeds of a config's reference catalogs are distinct."""
    for master in (0, 20261125):
        for cfg in ("a", "mu5_K0.1", "pooled"):
            replicate_seeds = {catalog_seed(master, c, r) for c in ("a", "mu5_K0.1", "pooled") for r in range(200)}
            refs = [reference_seed(master, cfg, k) for k in range(200)]
            assert len(set(refs)) == len(refs)
            assert not replicate_seeds & set(refs)
    assert [reference_replicate(k) for k in range(3)] == [-1, -2, -3]


def _tagged(df: pd.DataFrame, offset: float) -> pd.DataFrame:
    return df.assign(magnitude=df["magnitude"] + offset)


@pytest.fixture(scope="module")
def tagged_sets():
    """Two replicates (training, held-out) and six reference catalogs of one ETAS config, each catalog's
    magnitudes shifted by its TAG, and the evaluation sets built from them with a synthetic stand-in."""
    cfg = "c"
    cats = [cat for cat, _, _ in simulate_reference_catalogs(cfg, ETAS, SIM, [11, 12, *range(100, 106)])]
    replicates = [(0, cats[0]), (1, cats[1])]
    table, _ = build_windows(replicates, SPEC, heldout_replicates=[1], validation_fraction=0.2)
    catalogs = {(cfg, 0): _tagged(cats[0], TAG["train"]), (cfg, 1): cats[1]}
    references = {}
    for k, cat in enumerate(cats[2:]):
        role = REFERENCE_ROLES[k % 2]
        references[(cfg, reference_replicate(k))] = _tagged(cat, TAG[f"reference {role}"])
    # the table is cut from the untagged catalogs: tagging moves no event across Mc
    untagged = {key: cats[2 + (-key[1] - 1)] for key in references}
    ref_table = reference_table(untagged, SPEC, SIM["duration_days"])
    # a synthetic stand-in larger than H and A: every window of every catalog, untagged
    stand_in = catalog_windows(table, {(cfg, 0): cats[0], (cfg, 1): cats[1]}, SPEC, cfg) + catalog_windows(
        ref_table, untagged, SPEC, cfg)
    synthetic = pd.concat([w.assign(window=i) for i, w in enumerate(stand_in)], ignore_index=True)
    n_synthetic = int(synthetic["window"].max()) + 1
    sets = evaluation_sets(table, {**catalogs, **references}, SPEC, synthetic, rng=np.random.default_rng(1),
                           n_synthetic=n_synthetic, config_id=cfg, reference=ref_table, reference_windows=0)
    capped = evaluation_sets(table, {**catalogs, **references}, SPEC, synthetic, rng=np.random.default_rng(1),
                             n_synthetic=n_synthetic, config_id=cfg, reference=ref_table, reference_windows=25)
    return table, ref_table, sets, capped, n_synthetic


def _sources(windows: list[pd.DataFrame]) -> set[float]:
    m = np.concatenate([w["magnitude"].to_numpy() for w in windows])
    return {float(off) for off in TAG.values() if np.any((m >= off + 2.5 - 1e-9) & (m < off + 100.0))}


def test_reference_windows_extend_h_and_form_the_floor_never_training(tagged_sets):
    table, ref_table, sets, _, _ = tagged_sets
    # H: the held-out replicate and the even reference catalogs; A: the odd ones alone; no training event anywhere
    assert _sources(sets["H"]) == {TAG["heldout"], TAG["reference heldout"]}
    assert _sources(sets["A"]) == {TAG["reference floor"]}
    assert TAG["train"] not in _sources(sets["H"]) | _sources(sets["A"])
    # the reference table cuts every reference catalog, the training table none
    assert set(ref_table["replicate"]) == {reference_replicate(k) for k in range(6)}
    assert (table["replicate"] >= 0).all()
    assert set(ref_table.loc[ref_table["replicate"] % 2 == 0, "role"]) == {"floor"}   # k odd: replicate -(k+1) even


def test_s_h_and_the_floor_set_have_one_size(tagged_sets):
    table, ref_table, sets, capped, n_synthetic = tagged_sets
    n_h = int((table["role"] == "heldout").sum() + (ref_table["role"] == "heldout").sum())
    n_a = int((ref_table["role"] == "floor").sum())
    n = min(n_h, n_a, n_synthetic)
    assert len(sets["S"]) == len(sets["H"]) == len(sets["A"]) == len(sets["P"]) == n
    assert len(capped["S"]) == len(capped["H"]) == len(capped["A"]) == 25


# ------------------------------------------------------------------------------------------ resolution
# Each resolution is the 95 % quantile of its distance under "one process": over many independent null
# draws, the share of distances above it must be 5 %; with R draws its standard error is sqrt(0.05 0.95 / R),
# and the tolerances below are three of those.


def test_ks_resolution_is_the_five_percent_critical_distance():
    assert ks_resolution(1000, 1000) == pytest.approx(np.sqrt(-np.log(0.025) / 2) * np.sqrt(2 / 1000), rel=1e-12)
    assert ks_resolution(1000, 1000) == pytest.approx(0.0607, abs=1e-4)
    rng = np.random.default_rng(5)
    R, n, m = 1500, 300, 600
    d = np.array([sps.ks_2samp(rng.normal(size=n), rng.normal(size=m)).statistic for _ in range(R)])
    share = np.mean(d > ks_resolution(n, m))
    assert abs(share - 0.05) < 3 * np.sqrt(0.05 * 0.95 / R), share


def test_z_and_mean_resolutions_are_the_five_percent_quantiles():
    rng = np.random.default_rng(6)
    R = 4000
    ex, eh = 0.3, 0.1
    diff = np.abs(rng.normal(0, ex, R) - rng.normal(0, eh, R))
    assert abs(np.mean(diff > z_resolution(ex, eh)) - 0.05) < 3 * np.sqrt(0.05 * 0.95 / R)
    # means of per-window values: two samples of 200 and 400 exponential values (skewed; the CLT holds at that size)
    R2 = 1500
    hits = 0
    for _ in range(R2):
        x, h = rng.exponential(2.0, 200), rng.exponential(2.0, 400)
        hits += abs(x.mean() - h.mean()) > mean_resolution(x, h)
    assert abs(hits / R2 - 0.05) < 3 * np.sqrt(0.05 * 0.95 / R2), hits / R2


def test_c2st_resolution_is_the_binomial_five_percent_quantile():
    rng = np.random.default_rng(7)
    R, n = 20000, 4000
    acc = rng.binomial(n, 0.5, R) / n
    share = np.mean(np.abs(acc - 0.5) > c2st_resolution(np.sqrt(0.25 / n)))
    assert abs(share - 0.05) < 3 * np.sqrt(0.05 * 0.95 / R), share


def test_mmd_resolution_is_exceeded_by_five_percent_of_null_samples():
    """Under the null the observed MMD² exceeds its permutation 95 % quantile in 5 % of draws (the same
    permutations give the p-value: observed > quantile means p <= 0.05 up to ties)."""
    rng = np.random.default_rng(8)
    R = 300
    above = 0
    for _ in range(R):
        X, Y = rng.normal(size=(40, 2)), rng.normal(size=(40, 2))
        mmd2, p, q95 = mmd_with_null(X, Y, 1.0, rng, 99, 100)
        above += mmd2 > q95
        assert (mmd2 > q95) <= (p <= 0.06)
    assert abs(above / R - 0.05) < 3 * np.sqrt(0.05 * 0.95 / R), above / R
    # a real difference is resolved: a mean shift of one standard deviation lies far above the quantile
    mmd2, p, q95 = mmd_with_null(rng.normal(1.0, 1.0, (200, 2)), rng.normal(size=(200, 2)), 1.0, rng, 99, 200)
    assert mmd2 > 3 * q95 and p < 0.02


def test_the_page_states_the_set_sizes_and_where_the_floor_comes_from():
    html = set_sizes_html({"n_windows": {"S": 2000, "H": 2000, "A": 2000, "P": 2000}, "floor_set": "reference"}, False)
    assert "S 2,000, H 2,000, A 2,000" in html and "reference catalogs" in html and "resolution" in html
    real = set_sizes_html({"n_windows": {"S": 90, "H": 90, "A": 400, "P": 400}}, True)
    assert "A 400" in real and "one history" in real
