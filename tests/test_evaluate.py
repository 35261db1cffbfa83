"""Window-set comparisons (docs/design.md §6) on real ETAS samples and Poisson baselines, with fixed seeds."""

import numpy as np
import pandas as pd
import pytest

from etasvae import evaluate, stats
from etasvae.evaluate import window_tests
from etasvae.params import ETASParams
from etasvae.simulate import simulate_etas

MC = 2.0
# Branching ratio K·β/(β-α) ≈ 0.53 with p = 1.3: clustered, but with short enough memory that windows
# of 30 events from 4 catalogs of 500 days behave as (nearly) independent draws of one process.
PARAMS = ETASParams(mu=2.0, K=0.3, alpha=1.0, c=0.01, p=1.3, D=0.5, q=1.5, gamma=1.0, b=1.0, mc=MC)
REGION = (0.0, 50.0, 0.0, 50.0)


def etas_windows(seed: int, length: int = 30, n_catalogs: int = 4, duration: float = 500.0) -> list[pd.DataFrame]:
    """Event windows of ``length`` consecutive events, times from the previous event (as features.py cuts them)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_catalogs):
        cat = simulate_etas(PARAMS, duration=duration, region=REGION, rng=rng, burn_in=100.0, margin=20.0)
        t, m, x, y = (cat[c].to_numpy() for c in ("time", "magnitude", "x", "y"))
        for i in range(len(cat) // length):
            sl = slice(i * length, (i + 1) * length)
            t0 = t[i * length - 1] if i else 0.0
            out.append(pd.DataFrame({"time": t[sl] - t0, "magnitude": m[sl], "x": x[sl], "y": y[sl]}))
    return out


@pytest.fixture(scope="module")
def sets():
    H, A, S = etas_windows(101), etas_windows(202), etas_windows(303)
    P = evaluate.poisson_baseline(A, np.random.default_rng(7), MC)
    return {"H": H, "A": A, "S": S, "P": P}


@pytest.fixture(scope="module")
def tables(sets):
    rng = np.random.default_rng(8)
    etas = evaluate.compare_sets(sets["S"], sets["H"], sets["A"], sets["P"], mc=MC, rng=rng, n_permutations=200)
    poisson_s = evaluate.poisson_baseline(sets["A"], rng, MC)
    poisson = evaluate.compare_sets(poisson_s, sets["H"], sets["A"], sets["P"], mc=MC, rng=rng, n_permutations=200)
    return {"etas": etas.set_index("statistic"), "poisson": poisson.set_index("statistic")}


# ---------------------------------------------------------------------------------------------- summaries


def test_window_summaries_match_the_scalar_estimators(sets):
    windows = sets["H"][:20]
    summ = evaluate.window_summaries(windows, MC)
    assert len(summ) == 20
    for k, w in enumerate(windows):
        t, m, x, y = (w[c].to_numpy() for c in ("time", "magnitude", "x", "y"))
        row = summ.iloc[k]
        assert row["n_events"] == len(w)
        assert row["duration"] == pytest.approx(t.max())
        assert row["b_value"] == pytest.approx(stats.b_value_aki_utsu(m, MC))
        assert row["b_value_err"] == pytest.approx(stats.b_value_shi_bolt_error(m, row["b_value"]))
        assert row["cv"] == pytest.approx(stats.coefficient_of_variation(np.diff(t)))
        assert row["mean_log10_dt"] == pytest.approx(stats.log10_inter_event_times(t).mean())
        assert row["max_magnitude"] == pytest.approx(m.max())
        assert row["bath_gap"] == pytest.approx(stats.bath_gap(m), nan_ok=True)
        assert row["mean_log10_dr"] == pytest.approx(
            np.log10(np.maximum(stats.inter_event_distances(x, y), 1e-3)).mean()
        )
        assert row["mean_log10_r_main"] == pytest.approx(
            np.log10(np.maximum(stats.distances_to_largest(x, y, m), 1e-3)).mean()
        )
        assert row["mean_log10_nn"] == pytest.approx(
            np.log10(np.maximum(stats.nearest_neighbour_distances(x, y), 1e-3)).mean()
        )
        i = int(np.argmax(m))
        fit = stats.omori_utsu_mle_grid(t[i + 1 :] - t[i], np.zeros(len(t) - i - 1, int), np.array([t.max() - t[i]]))
        assert row["omori_p"] == pytest.approx(fit["p"][0], nan_ok=True)


def test_window_summaries_handle_tiny_windows():
    windows = [
        pd.DataFrame({"time": [], "magnitude": [], "x": [], "y": []}),
        pd.DataFrame({"time": [0.5], "magnitude": [2.5], "x": [1.0], "y": [1.0]}),
        pd.DataFrame({"time": [0.5, 1.0], "magnitude": [2.5, 3.0], "x": [1.0, 2.0], "y": [1.0, 1.0]}),
    ]
    summ = evaluate.window_summaries(windows, MC)
    assert summ["n_events"].tolist() == [0, 1, 2]
    assert summ["b_value"].isna().tolist() == [True, True, False]
    assert summ["bath_gap"].isna().all()  # the largest event is last or alone


# ---------------------------------------------------------------------------------------------- Poisson baseline


def test_poisson_baseline_keeps_rate_counts_and_extent(sets):
    A, P = sets["A"], sets["P"]
    assert [len(w) for w in P] == [len(w) for w in A]  # event windows: counts kept
    n = sum(len(w) for w in A)
    rate_a = n / sum(w["time"].max() for w in A)
    rate_p = n / sum(w["time"].max() for w in P)
    # total P time is a sum of n Exp(r) waits: relative SE 1/√n ≈ 0.9 %
    assert abs(rate_p / rate_a - 1) < 3 / np.sqrt(n)
    allA = pd.concat(A)
    allP = pd.concat(P)
    assert allP["x"].between(allA["x"].min(), allA["x"].max()).all()
    assert allP["magnitude"].min() >= MC
    boot = evaluate.poisson_baseline(A, np.random.default_rng(1), MC, magnitudes="bootstrap")
    assert set(pd.concat(boot)["magnitude"]).issubset(set(allA["magnitude"]))  # bootstrap of the reference
    cv = np.nanmean([stats.coefficient_of_variation(np.diff(w["time"].to_numpy())) for w in P])
    # mean CV of 29 exponential intervals is slightly below 1 (small-sample bias), ETAS's is far above
    assert 0.9 < cv < 1.05


def test_poisson_baseline_duration_mode_and_gr_magnitudes():
    rng = np.random.default_rng(9)
    ref = []
    for k in range(200):
        w = pd.DataFrame(
            {
                "time": np.sort(rng.random(20) * 10),
                "magnitude": 2.0 + rng.exponential(0.43, 20),
                "x": rng.random(20),
                "y": rng.random(20),
            }
        )
        w.attrs["duration"] = 10.0
        ref.append(w)
    ref[0] = ref[0].iloc[:15]  # unequal counts -> "auto" chooses duration mode
    ref[0].attrs["duration"] = 10.0
    P = evaluate.poisson_baseline(ref, rng, MC, b=1.0, delta_m=0.1)
    counts = np.array([len(w) for w in P])
    # rate = 3995 / 2000 d; counts ~ Poisson(19.975) in each of 200 windows: SE of the mean 0.32
    assert abs(counts.mean() - 19.975) < 3 * np.sqrt(19.975 / 200)
    assert all(w.attrs["duration"] == 10.0 and (w["time"] < 10.0).all() for w in P)
    mags = pd.concat(P)["magnitude"].to_numpy()
    assert np.allclose(np.round(mags * 10), mags * 10)
    assert abs(stats.b_value_aki_utsu(mags, MC, 0.1) - 1.0) < 3 * stats.b_value_shi_bolt_error(mags, 1.0) + 0.006


# ---------------------------------------------------------------------------------------------- whole-window tests


def test_two_etas_samples_are_indistinguishable_and_poisson_is_not(sets):
    rng = np.random.default_rng(10)
    h, a, p = (window_tests._features(evaluate.window_summaries(sets[k], MC)) for k in "HAP")
    zh, za, zp = window_tests._standardise_like(h, a, p)
    _, p_same, _ = stats.mmd_test(za, zh, rng, n_permutations=200)
    acc, se, _ = stats.c2st(za, zh, rng)
    # two independent ETAS samples: permutation p-value not small, classifier at chance within 3 SE
    assert p_same > 0.01
    assert abs(acc - 0.5) < 3 * se
    _, p_pois, _ = stats.mmd_test(zp, zh, rng, n_permutations=200)
    acc_p, se_p, _ = stats.c2st(zp, zh, rng)
    assert p_pois <= 1 / 201 + 1e-12
    assert acc_p > 0.5 + 5 * se_p


def test_etas_is_more_clustered_than_poisson(tables):
    t = tables["etas"]
    # Fano factor and CV: ETAS clusters, Poisson does not (counts in bins are over-dispersed)
    assert t.loc["fano", "value_H"] > 2 * t.loc["fano", "value_P"]
    assert t.loc["cv", "value_H"] > t.loc["cv", "value_P"] + 0.2
    assert t.loc["cv", "value_P"] == pytest.approx(1.0, abs=0.1)
    assert t.loc["c2st", "value_P"] > 0.5 + 5 * t.loc["c2st", "err_P"]
    assert t.loc["mmd", "p_P"] <= 1 / 201 + 1e-12


# ---------------------------------------------------------------------------------------------- compare_sets


def test_compare_sets_table_shape(tables):
    t = tables["etas"].reset_index()
    expected = {
        "b_value",
        "b_positive",
        "magnitude_ks",
        "max_magnitude_ks",
        "log_dt_ks",
        "log_dt_wasserstein",
        "cv",
        "log_duration_ks",
        "count_ks",
        "fano",
        "omori_p",
        "omori_c",
        "bath_gap",
        "interevent_distance_ks",
        "mainshock_distance_ks",
        "pair_correlation",
        "mmd",
        "c2st",
        "csep_number",
        "csep_magnitude",
    }
    assert set(t["statistic"]) == expected
    assert set(t["group"]) == set(evaluate.GROUPS) - {"ETAS fit"}  # no ETAS fits given: no ETAS-fit rows
    for col in ("value_S", "value_H", "value_A", "value_P", "d_S", "d_A", "d_P", "p_S", "skill", "informative"):
        assert col in t.columns
    # skill is defined exactly where the statistic is informative, and follows its formula
    inf = t["informative"].to_numpy(bool)
    assert np.isfinite(t["skill"][inf]).all() and t["skill"][~inf].isna().all()
    r = t[inf].iloc[0]
    assert r["skill"] == pytest.approx((r["d_P"] - r["d_S"]) / (r["d_P"] - r["d_A"]))
    # the clustering statistics must separate P from H, or the test sets are too small to mean anything;
    # P's magnitudes are naive (normal, no Gutenberg-Richter tail), so the magnitude statistics do too
    assert {"cv", "fano", "log_dt_ks", "mmd", "c2st"} <= set(t["statistic"][inf])
    assert {"b_value", "magnitude_ks", "max_magnitude_ks"} <= set(t["statistic"][inf])


def test_a_model_without_large_events_loses_skill_on_the_magnitudes(sets):
    """S = ETAS windows whose magnitudes are replaced by the naive baseline's (right mean and spread, no
    exponential tail): its time and space statistics stay at the floor, its magnitude skills fall to ~0."""
    rng = np.random.default_rng(11)
    naive = evaluate.poisson_baseline(sets["S"], rng, MC)  # the same counts per window, naive magnitudes
    S = [w.assign(magnitude=p["magnitude"].to_numpy()) for w, p in zip(sets["S"], naive)]
    t = evaluate.compare_sets(S, sets["H"], sets["A"], sets["P"], mc=MC, rng=rng, n_permutations=50).set_index("statistic")
    # each skill scatters by about d_A/(d_P - d_A) around its expectation (0 for naive magnitudes, 1 for ETAS
    # times): 0.1-0.3 here, so 0.5 separates "naive" from "at the floor" by several of those
    for stat in ("b_value", "magnitude_ks", "max_magnitude_ks"):
        assert t.loc[stat, "skill"] < 0.5, stat
    for stat in ("cv", "log_dt_ks"):
        assert t.loc[stat, "skill"] > 0.5, stat


def test_naive_magnitudes_have_the_reference_mean_and_spread_and_no_tail(sets):
    """The naive baseline's magnitudes: a normal with the reference mean and sd, cut at Mc."""
    ref = np.concatenate([w["magnitude"].to_numpy() for w in sets["A"]])
    m = np.concatenate([w["magnitude"].to_numpy() for w in sets["P"]])
    assert m.min() >= MC
    # before the cut the normal has the reference's mean; the cut at Mc (about 0.9 sd below) raises the mean
    # by sd*phi(a)/(1-Phi(a)) with a = (Mc - mean)/sd: compare with that, to 4 standard errors sd/sqrt(n)
    mean, sd = ref.mean(), ref.std()
    a = (MC - mean) / sd
    from scipy.stats import norm

    expected = mean + sd * norm.pdf(a) / norm.sf(a)
    assert abs(m.mean() - expected) < 4 * sd / np.sqrt(m.size)
    # Gutenberg-Richter (b = 1) puts 1 % of events above Mc + 2; a normal of this spread has none there
    assert np.mean(ref > MC + 2) > 0.005 and np.mean(m > MC + 2) < 0.001


def test_skill_is_near_one_for_etas_and_near_zero_for_poisson(tables):
    etas, poisson = evaluate.overall_score(tables["etas"].reset_index()), evaluate.overall_score(
        tables["poisson"].reset_index()
    )
    # skill = 1 + (d_A - d_S)/(d_P - d_A): for S another ETAS sample d_S and d_A share one distribution, so
    # each skill scatters around 1 by d_A/(d_P - d_A) (≈ 0.05-0.3 here) and the median over ~13 statistics
    # much less; for S a Poisson sample d_S ≈ d_P and the skills scatter around 0 likewise.
    assert etas > 0.75
    assert abs(poisson) < 0.25
    assert tables["etas"].loc["c2st", "value_S"] == pytest.approx(0.5, abs=3 * tables["etas"].loc["c2st", "err_S"])


def test_verdict_names_the_failures(tables):
    text = evaluate.verdict(tables["poisson"].reset_index())
    assert "no better than a Poisson process" in text and "fano" in text
    text = evaluate.verdict(tables["etas"].reset_index())
    assert "close to the ETAS noise floor" in text


def test_overall_score_is_a_clipped_median():
    table = pd.DataFrame(
        {
            "statistic": list("abcde"),
            "skill": [np.nan, 5.0, 0.5, -3.0, 0.9],
            "d_S": 1.0,
            "d_A": 0.5,
            "p_S": np.nan,
            "informative": [False, True, True, True, True],
        }
    )
    assert evaluate.overall_score(table) == pytest.approx(np.median([1.0, 0.5, -1.0, 0.9]))
    assert np.isnan(evaluate.overall_score(table.assign(skill=np.nan)))
    assert evaluate.classify(table).tolist() == ["fails", "floor", "partial", "naive", "floor"]


def test_an_infinite_distance_counts_as_the_worst_skill():
    """A skill of -inf (S infinitely far, e.g. a supercritical ETAS fit) counts as -1, not as missing."""
    table = pd.DataFrame({"statistic": list("abc"), "skill": [0.9, 0.8, -np.inf], "d_S": [1.0, 1.0, np.inf],
                          "d_A": 0.5, "p_S": np.nan, "informative": True})
    assert evaluate.overall_score(table) == pytest.approx(0.8)
    assert evaluate.classify(table).tolist() == ["floor", "floor", "naive"]


def test_the_weakest_group_shows_a_failure_the_median_hides():
    """Eight time statistics at the floor and a failing ETAS fit: the overall median stays at the floor, the
    weakest group (median skill per group, -inf as -1) names the ETAS fit, and the verdict says so."""
    table = pd.DataFrame({
        "statistic": [f"t{i}" for i in range(8)] + ["etas_alpha", "etas_p", "etas_branching_ratio", "unset"],
        "group": ["time"] * 8 + ["ETAS fit"] * 3 + ["space"],
        "skill": [1.0] * 8 + [0.1, -np.inf, 0.4, np.nan],
        "d_S": [1.0] * 8 + [9.0, np.inf, 2.0, np.nan], "d_A": 0.5, "p_S": np.nan,
        "informative": [True] * 11 + [False],
    })
    assert evaluate.overall_score(table) == pytest.approx(1.0)
    assert evaluate.group_scores(table) == {"time": 1.0, "ETAS fit": pytest.approx(0.1)}
    assert evaluate.weakest_group(table) == ("ETAS fit", pytest.approx(0.1))
    assert "Weakest group: ETAS fit (median skill 0.10)" in evaluate.verdict(table)
    assert evaluate.weakest_group(table.assign(skill=np.nan)) is None


# ------------------------------------------------------------------------------- ETAS-parameter statistics


def _fit(estimates: dict, errors: dict) -> dict:
    return {"estimates": estimates, "std_errors": errors}


def test_etas_fit_rows_follow_their_formula():
    """d_X = |θ_X − θ_H| / sqrt(se_A² + se_H²), P at the naive value (α = 0, p = 1, n = 0) without error."""
    from etasvae.evaluate.etas_fit import etas_fit_comparisons

    fits = {
        "heldout_windows": _fit({"alpha": 1.4, "p": 1.2, "branching_ratio": 0.5}, {"alpha": 0.03, "p": 0.05, "branching_ratio": 0.04}),
        "train_windows": _fit({"alpha": 1.46, "p": 1.17, "branching_ratio": 0.52}, {"alpha": 0.04, "p": 0.06, "branching_ratio": 0.05}),
        "synthetic_windows": _fit({"alpha": 0.5, "p": 1.6, "branching_ratio": 0.45}, {"alpha": 0.05, "p": 0.1, "branching_ratio": 0.05}),
    }
    t = evaluate.add_skill(pd.DataFrame([c.row() for c in etas_fit_comparisons(fits)])).set_index("statistic")
    assert list(t.index) == ["etas_alpha", "etas_p", "etas_branching_ratio"]
    assert set(t["group"]) == {"ETAS fit"}
    r = t.loc["etas_alpha"]
    unit = np.hypot(0.04, 0.03)  # 0.05
    assert r["value_P"] == 0.0 and r["err_P"] == 0.0
    assert r["d_A"] == pytest.approx(0.06 / unit) and r["d_S"] == pytest.approx(0.9 / unit)
    assert r["d_P"] == pytest.approx(1.4 / unit)
    assert r["skill"] == pytest.approx((1.4 - 0.9) / (1.4 - 0.06))  # the unit cancels: the parameter's own scale
    assert r["p_S"] == pytest.approx(2 * stats_norm_sf(0.9 / np.hypot(0.05, 0.03)))
    assert r["p_P"] == pytest.approx(2 * stats_norm_sf(1.4 / 0.03))
    assert t.loc["etas_p", "d_P"] == pytest.approx(0.2 / np.hypot(0.06, 0.05))
    assert t.loc["etas_p", "skill"] == pytest.approx((0.2 - 0.4) / (0.2 - 0.03))  # p 1.6 against 1.2: below 0
    # a fit that failed leaves its set without a value (and the row without a skill when it is H or A)
    broken = dict(fits, train_windows={"error": "too few events"})
    t = evaluate.add_skill(pd.DataFrame([c.row() for c in etas_fit_comparisons(broken)]))
    assert t["d_S"].isna().all() and t["skill"].isna().all()


def stats_norm_sf(z):
    from scipy.stats import norm

    return norm.sf(z)


# Held-out and training windows from ETAS with alpha = 1.5 (n = 0.43, p = 1.3); a generator whose aftershock
# productivity does not depend on magnitude (alpha = 0, K = n: the same branching ratio) against one of the same
# config. All through the real simulator, the windowing, the window selection and the joint fit.
ALPHA_PARAMS = ETASParams(mu=2.0, K=0.15, alpha=1.5, c=0.01, p=1.3, D=0.5, q=1.5, gamma=1.0, b=1.0, mc=MC)
ALPHA_SPEC = {"representation": "event", "mc": MC, "length": 32, "stride": 16}


def _alpha_table(params, seed: int, replicates: int, duration: float):
    from etasvae.features import build_windows

    rng = np.random.default_rng(seed)
    catalogs = [(r, simulate_etas(params, duration=duration, region=REGION, rng=rng, burn_in=100.0, margin=20.0))
                for r in range(replicates)]
    table, _ = build_windows(catalogs, ALPHA_SPEC, heldout_replicates=[replicates - 1], validation_fraction=0.0)
    return table, {("", r): cat for r, cat in catalogs}


def test_productivity_without_magnitude_dependence_gets_no_alpha_skill():
    import dataclasses

    import torch

    from etasvae.evaluate.etas_fit import etas_fit_comparisons
    from etasvae.inversion_report import fit_reference_windows, invert_model, select_windows

    torch.set_num_threads(1)
    table, catalogs = _alpha_table(ALPHA_PARAMS, 31, 3, 500.0)  # H: one catalog, A: two
    cut = lambda sub: evaluate.catalog_windows(sub, catalogs, ALPHA_SPEC)  # noqa: E731
    reference = fit_reference_windows(table, cut, mc=MC, max_windows=60, n_starts=1)
    assert reference["selection"]["train_windows"]["overlap_factor_fitted"] == 1.0
    skills = {}
    no_alpha = dataclasses.replace(ALPHA_PARAMS, alpha=0.0, K=0.43)  # n = K beta/(beta - alpha) = 0.43 both
    for name, params, seed in (("etas", ALPHA_PARAMS, 32), ("no_alpha", no_alpha, 33)):
        s_table, s_catalogs = _alpha_table(params, seed, 1, 1500.0)
        S = evaluate.catalog_windows(select_windows(s_table), s_catalogs, ALPHA_SPEC)
        result = invert_model(S, reference, mc=MC, n_starts=1)
        t = evaluate.add_skill(pd.DataFrame([c.row() for c in etas_fit_comparisons(result["fits"])]))
        skills[name] = t.set_index("statistic")["skill"]
    # alpha's skill is about 1 - (|Δα_S| - |Δα_A|)/α_H (the unit cancels), and each estimate has a standard
    # error of about 0.1 here (60 windows of 32 events): for the ETAS generator it scatters around 1 by
    # ~0.1, for alpha = 0 around 0 by ~0.07; 0.75 and 0.25 (the floor and naive classes) are 2.5 and 3.5 of
    # those away from the expectations
    assert skills["etas"]["etas_alpha"] > 0.75, skills
    assert skills["no_alpha"]["etas_alpha"] < 0.25, skills


def test_catalog_level_statistics_count_an_event_that_overlapping_windows_share_once():
    from etasvae.evaluate.stacking import distinct_mainshock_windows, stack_windows
    from etasvae.features import build_windows

    spec = {"representation": "event", "mc": MC, "length": 32, "stride": 8, "xy_scale_km": 5.0, "min_dt_days": 1e-6}
    rng = np.random.default_rng(41)
    catalogs = [(r, simulate_etas(PARAMS, duration=300.0, region=REGION, rng=rng, burn_in=100.0, margin=20.0))
                for r in range(2)]
    table, _ = build_windows(catalogs, spec, heldout_replicates=[1], validation_fraction=0.0)
    cut = {("", r): cat for r, cat in catalogs}
    H = evaluate.catalog_windows(table[table["role"] == "heldout"], cut, spec)
    A = evaluate.catalog_windows(table[table["role"] == "train"], cut, spec)
    # stride 8 of 32: every event of H is in about four windows
    held = catalogs[1][1]
    rows = table[table["role"] == "heldout"]
    ids = np.unique(np.concatenate([np.arange(a, b) for a, b in zip(rows["start_event"], rows["end_event"])]))
    events = held.set_index("event_id").loc[ids]
    events = events[events["magnitude"] >= MC - 1e-9]
    assert sum(len(w) for w in H) > 3 * len(events)
    t = evaluate.compare_sets(A, H, A, None, mc=MC, rng=np.random.default_rng(0), n_permutations=20).set_index("statistic")
    b, err = stats.b_value_and_error(events["magnitude"].to_numpy(), MC, 0.0)
    # over the distinct events: their b and the Shi-Bolt error of their number (pooled instances: ~half of it)
    assert t.loc["b_value", "value_H"] == pytest.approx(b, rel=1e-12)
    assert t.loc["b_value", "err_H"] == pytest.approx(err, rel=1e-12)
    assert t.loc["magnitude_ks", "value_H"] == pytest.approx(events["magnitude"].mean(), rel=1e-12)
    # Omori: of the windows sharing a largest event, the one with the longest time after it is stacked
    st = stack_windows(H)
    main = np.array([st.start[k] + int(np.argmax(st.m[st.g == k])) for k in range(st.n_windows)])
    remaining = st.duration - st.t[main]
    keep = distinct_mainshock_windows(st, main, remaining)
    mains = st.key[main]
    assert keep.sum() == np.unique(mains).size < st.n_windows
    for key in np.unique(mains):
        group = np.flatnonzero(mains == key)
        assert keep[group].sum() == 1 and remaining[group[keep[group]]][0] == remaining[group].max()
    from etasvae.evaluate.statistics import stacked_omori

    plain = [w.drop(columns="event_key") for w in H]  # without keys: every window counts
    once = stacked_omori(stack_windows([plain[k] for k in np.flatnonzero(keep)]), 10).p
    assert t.loc["omori_p", "value_H"] == pytest.approx(once, rel=1e-9)
    assert abs(stacked_omori(stack_windows(plain), 10).p - once) > 1e-6  # the shared mainshocks change the fit
