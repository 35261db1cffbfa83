"""The conditional surrogate: the conditioning plan and its errors, the decoder API with history, chaining,
and the catalog statistics' order across very different parameter sets."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from etasvae.conditioning import SurrogateUnavailable, set_parameters, standardise, surrogate_plan
from etasvae.config import ConfigError, etas_configs
from etasvae.features import build_windows
from etasvae.models.conditional import ConditionalSequenceVAE, surrogate_batch, train_surrogate
from etasvae.surrogate import chain_catalog, generate_chains, load_surrogate, save_surrogate, training_data
from etasvae.surrogate_eval import catalog_comparison, catalog_values, chain_windows

from etas_samples import MC, clustered_catalog

BASE = {
    "simulation": {"region_km": [0.0, 100.0, 0.0, 100.0], "mc": 2.5, "mmax": 7.5, "max_events": None},
    "etas": {"grid": {"mu": [5.0], "K": [0.1, 0.2, 0.3], "alpha": [1.5], "c": [0.01], "p": [1.1], "D": [0.5],
                      "q": [1.5], "gamma": [1.0], "b": [1.0]}},
    "surrogate": {"holdout": "auto", "points": [], "allow_extrapolation": False},
}
SPEC = {"representation": "event", "length": 16, "stride": 8, "mc": MC, "xy_scale_km": 5.0, "min_dt_days": 1e-6,
        "region_km": [0.0, 100.0, 0.0, 100.0], "mmax": 7.0}
SMALL = {"latent_dim": 3, "hidden": [32], "beta": 1.0, "kl_warmup_epochs": 0, "lr": 3e-3, "optimizer": "adam",
         "loss": "channels", "decoder": "autoregressive", "epochs": 6, "batch_size": 32, "patience": 0,
         "grad_clip": 5.0, "seed": 0}


def plan_of(**surrogate):
    config = copy.deepcopy(BASE)
    config["surrogate"].update(surrogate)
    return surrogate_plan(config, etas_configs(config))


def quiet(_line: str) -> None:
    pass


# ------------------------------------------------------------------------------------ the plan


def test_auto_holdout_is_every_other_interior_grid_value():
    plan = plan_of()
    assert plan["varied"] == ["K"]
    assert [plan["sets"][c]["values"]["K"] for c in plan["heldout"]] == [0.2]
    assert plan["ranges"] == {"K": [0.1, 0.3]}
    config = copy.deepcopy(BASE)
    config["etas"]["grid"]["K"] = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
    plan = surrogate_plan(config, etas_configs(config))
    assert sorted(plan["sets"][c]["values"]["K"] for c in plan["heldout"]) == [0.1, 0.2]


def test_conditioning_outside_the_trained_range_is_refused_naming_parameter_and_range():
    with pytest.raises(ConfigError, match=r"surrogate\.points\[0\]\.K = 0\.5: outside the trained range of K, \[0\.1, 0\.3\]"):
        plan_of(points=[{"name": "far", "K": 0.5}])
    with pytest.raises(ValueError, match=r"K = 0\.05 is outside the trained range of K, \[0\.1, 0\.3\]"):
        standardise({"K": 0.05}, ["K"], {"K": [0.1, 0.3]})
    # allowed by the flag: the point is kept and flagged
    plan = plan_of(points=[{"name": "far", "K": 0.5}], allow_extrapolation=True)
    assert plan["sets"]["far"]["flags"] == ["K = 0.5 outside the trained range [0.1, 0.3]"]
    inside = plan_of(points=[{"name": "mid", "K": 0.15}])
    assert inside["sets"]["mid"]["flags"] == [] and inside["sets"]["mid"]["kind"] == "point"
    # the ETAS parameters the point's catalogs are refitted against: its K on the grid's other parameters
    truth = set_parameters(inside, etas_configs(BASE), "mid")
    assert truth["K"] == 0.15 and truth["alpha"] == 1.5 and truth["mc"] == 2.5 and "branching_ratio" not in truth
    np.testing.assert_allclose(standardise({"K": 0.15}, ["K"], {"K": [0.1, 0.3]}), [-0.5])


def test_plan_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"surrogate\.points\[0\]\.D = 2: D is not varied"):
        plan_of(points=[{"name": "x", "K": 0.15, "D": 2.0}])
    with pytest.raises(ConfigError, match=r"surrogate\.points\[0\]\.K is missing"):
        plan_of(points=[{"name": "x"}])
    with pytest.raises(ConfigError, match=r"surrogate\.holdout\.K = 0\.3: an end of the grid"):
        plan_of(holdout={"K": [0.3]})
    with pytest.raises(ConfigError, match=r"surrogate\.holdout\.K = 0\.25: not a grid value"):
        plan_of(holdout={"K": [0.25]})
    config = copy.deepcopy(BASE)
    config["etas"]["grid"]["K"] = [0.2]
    with pytest.raises(SurrogateUnavailable, match="vary no parameter"):
        surrogate_plan(config, etas_configs(config))


# ------------------------------------------------------------------------------------ model and chains

LOW, HIGH = 0.05, 0.42   # branching ratio 0.11 and 0.89 (alpha = 1, b = 1): very different clustering


@pytest.fixture(scope="module")
def trained():
    """A small surrogate trained on ETAS catalogs at two very different K, conditioned on K."""
    torch.set_num_threads(1)
    tables, catalogs = [], {}
    for cfg, K in (("low", LOW), ("high", HIGH)):
        reps = [(r, clustered_catalog(seed=100 + 10 * r + int(K * 100), duration=300.0, K=K, mu=3.0)) for r in range(3)]
        table, _ = build_windows(reps, SPEC, heldout_replicates=[2], validation_fraction=0.25)
        tables.append(table.assign(config_id=cfg))
        catalogs.update({(cfg, r): cat for r, cat in reps})
    table = pd.concat(tables, ignore_index=True)
    conditions = {"low": np.array([-1.0], np.float32), "high": np.array([1.0], np.float32)}
    data = training_data(table, catalogs, SPEC, conditions)
    split = {role: {k: v[data["role"] == role] for k, v in data.items()} for role in ("train", "validation")}
    model, _, history = train_surrogate(split["train"], split["validation"], SMALL, SPEC, log=quiet,
                                        dev=torch.device("cpu"))
    return model, history, catalogs, data


def test_training_data_carry_the_events_before_each_window(trained):
    _, _, catalogs, data = trained
    L = SPEC["length"]
    has = data["has_history"] > 0
    assert has.mean() > 0.9 and (~has).any()   # windows at a catalog's start have no history
    # the history's last event is the catalog event just before the window's first (its inter-event time)
    np.testing.assert_allclose(data["ln_dt"][:, L] / np.log(10.0), data["X"][:, 0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(data["xy"][:, L], data["origin"])
    np.testing.assert_array_equal(data["Xh"][~has], 0.0)
    # history + window are 2L consecutive events of one catalog: find each window's first event by position
    where = {}
    for cat in catalogs.values():
        above = cat[cat["magnitude"] >= MC]
        xy = above[["x", "y"]].to_numpy(np.float32)
        for i in range(len(xy)):
            where[tuple(xy[i])] = xy[max(i - L, 0):i]
    for row in np.flatnonzero(has)[::7]:
        np.testing.assert_array_equal(data["xy"][row, :L], where[tuple(data["xy"][row, L])])


def test_history_changes_the_window_likelihood_only_through_the_api(trained):
    """The window's log-likelihood depends on its history (GRU and parents), and history events are not
    scored: the output has one term per window event."""
    model, _, _, data = trained
    L = SPEC["length"]
    idx = np.flatnonzero(data["has_history"] > 0)[:8]
    t = {k: torch.from_numpy(np.asarray(v[idx], dtype=np.float32)) for k, v in data.items() if k != "role"}
    u = torch.cat([torch.zeros(len(idx), model.z_dim), t["c"]], dim=1)
    every = torch.arange(len(idx))
    with_h = surrogate_batch(t, every, L)
    without = surrogate_batch({**t, "has_history": torch.zeros(len(idx))}, every, L)
    with torch.no_grad():
        a, b = model.window_log_probs(u, with_h), model.window_log_probs(u, without)
    assert a.shape == (len(idx), L)
    assert not torch.allclose(a, b)


def test_chained_catalogs_order_fano_and_cv_as_etas_does(trained, tmp_path):
    """Chains conditioned on the low and the high K: their Fano factor of daily counts and CV of
    inter-event times are ordered as the ETAS catalogs' are. The margin: the difference of the means over
    chains must exceed twice its standard error (chain-to-chain scatter), so the order is not luck."""
    model, history, catalogs, _ = trained
    save_surrogate(tmp_path / "s.pt", model, SMALL, SPEC, {"varied": ["K"]}, history)
    model, _ = load_surrogate(tmp_path / "s.pt", device="cpu")
    n = 6
    c = np.repeat(np.array([[-1.0], [1.0]], np.float32), n, axis=0)
    chains = generate_chains(model, c, 200.0, seed=0, burn_in_windows=2)
    assert all(len(ch) > 100 and ch["time"].between(0, 200).all() and ch["time"].is_monotonic_increasing
               for ch in chains)
    first, again = (generate_chains(model, c[:2], 50.0, seed=3, burn_in_windows=1) for _ in range(2))
    pd.testing.assert_frame_equal(again[1], first[1])   # seeded
    values = {k: catalog_values(chains[i * n:(i + 1) * n], 200.0, MC) for i, k in enumerate(("low", "high"))}
    truth = {k: catalog_values([catalogs[(k, r)] for r in range(3)], 300.0, MC) for k in ("low", "high")}
    for stat in ("log10_fano", "cv"):
        assert truth["high"][stat].mean() > truth["low"][stat].mean()
        lo, hi = values["low"][stat], values["high"][stat]
        se = np.sqrt(lo.var(ddof=1) / n + hi.var(ddof=1) / n)
        assert hi.mean() - lo.mean() > 2 * se, (stat, lo, hi)


def test_chains_cut_into_windows_and_compared_as_catalogs(trained):
    model, _, catalogs, _ = trained
    chains = generate_chains(model, np.array([[1.0], [1.0]], np.float32), 60.0, seed=1, burn_in_windows=1)
    catalog = chain_catalog(chains)
    windows, n = chain_windows(catalog, 16, MC)
    assert n == sum(len(ch) // 16 for ch in chains) and windows["window"].nunique() == n
    first = windows[windows["window"] == 0]
    assert first["x"].iloc[0] == 0.0 and first["y"].iloc[0] == 0.0 and (np.diff(first["time"]) >= 0).all()
    table = catalog_comparison(chains, [catalogs[("high", 2)]], [catalogs[("high", r)] for r in range(2)],
                               duration=60.0, mc=MC, rng=np.random.default_rng(0))
    assert list(table["statistic"]) == ["fano_daily", "count_30d_fano", "count_30d_ks", "cv_catalog", "b_value"]
    # the Poisson baseline has a Fano factor near 1 (its sampling error for 60 daily counts is about 0.18)
    assert abs(table.set_index("statistic").loc["fano_daily", "value_P"] - 1.0) < 0.5
    assert not table.set_index("statistic").loc["b_value", "informative"]


def test_conditional_model_is_a_sequence_vae_with_a_learned_prior():
    model = ConditionalSequenceVAE(16, 3, [32], "mlp", SPEC, n_cond=2)
    Xh = torch.zeros(4, 64)
    mu, logvar = model.prior(Xh, torch.zeros(4), torch.zeros(4, 2))
    assert torch.equal(mu, torch.zeros(4, 3)) and torch.equal(logvar, torch.zeros(4, 3))   # starts as N(0, I)


def test_a_poisson_catalog_fails_the_30_day_count_dispersion():
    """The 30-day count statistic stays strict: against clustered ETAS catalogs (n about 0.8), independent
    ETAS catalogs of the same parameters score skill >= 0.5 (the Done-when bar), while catalogs of the real
    simulator with K = 0 (Poisson in time) and the ETAS catalogs with their times shuffled uniformly do not.
    Sizes: H one catalog, A three, S four, as in the default grid; 360 days give 331 windows of 30 days per
    catalog. Expected skills are 1 and 0; the sampling error of a 4-catalog mean of log10 F30 (about 0.05,
    from the chain-to-chain scatter) is a tenth of d_P - d_A here, so the 0.5 bar sits five errors from each."""
    duration, K = 360.0, 0.45
    etas = [clustered_catalog(seed=500 + r, duration=duration, K=K, mu=2.0) for r in range(8)]
    H, A, S = etas[:1], etas[1:4], etas[4:]
    mu_poisson = float(np.mean([len(a) for a in A])) / duration
    poisson = [clustered_catalog(seed=600 + r, duration=duration, K=0.0, mu=mu_poisson) for r in range(4)]
    rng = np.random.default_rng(7)
    shuffled = [s.assign(time=np.sort(rng.uniform(0.0, duration, len(s)))) for s in S]

    def row(candidate):
        t = catalog_comparison(candidate, H, A, duration=duration, mc=MC, rng=np.random.default_rng(0))
        return t.set_index("statistic").loc["count_30d_fano"]

    good = row(S)
    assert good["informative"] and good["skill"] >= 0.5, good
    assert good["value_H"] > 3.0 and abs(good["value_P"] - 1.0) < 0.2   # overdispersed truth, Poisson floor near 1
    for name, cats in (("K = 0", poisson), ("shuffled", shuffled)):
        r = row(cats)
        assert r["informative"] and r["skill"] < 0.5, (name, r)
    # the KS distance of the counts, which the shuffled catalog passes, is reported without a skill
    t = catalog_comparison(shuffled, H, A, duration=duration, mc=MC, rng=np.random.default_rng(0)).set_index("statistic")
    assert not t.loc["count_30d_ks", "informative"] and np.isnan(t.loc["count_30d_ks", "skill"])
