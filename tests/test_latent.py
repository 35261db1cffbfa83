"""Latent space and synthetic catalogs (etasvae.latent), on real tiny VAEs trained on simulated ETAS windows.

Two ETAS configs that differ only in productivity K: branching ratio 0.2 (nearly Poisson) and 0.9 (strongly
clustered). Everything else, seeds included, is fixed, so every number here is reproducible on CPU.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from etasvae import latent, sample, stats
from etasvae.models.files import encode_windows, load_model, save_model
from etasvae.models.train import train_vae
from etasvae.catalog import read_catalog, validate_catalog, write_catalog
from etasvae.features import build_windows, pool_windows, windows_to_catalog
from etasvae.params import ETASParams
from etasvae.simulate import simulate_etas

MC = 2.5
L = 16
EVENT_SPEC = {"representation": "event", "length": L, "stride": L, "mc": MC, "xy_scale_km": 5.0,
              "min_dt_days": 1e-6}
BINNED_SPEC = {"representation": "binned", "duration_days": 10.0, "stride_days": 10.0, "time_bins": 10,
               "magnitude_bands": [2.5, 3.0, 3.5], "mc": MC}
TINY = {"latent_dim": 4, "hidden": [32], "epochs": 15, "batch_size": 64, "lr": 3e-3, "beta": 1.0, "seed": 0,
        "kl_warmup_epochs": 0, "patience": 0, "grad_clip": 0.0}
# (name, branching ratio, catalog duration in days): the quiet config runs longer so both give ~2400 events.
CONFIGS = [("n02", 0.2, 1000.0), ("n09", 0.9, 300.0)]
PNG = b"\x89PNG\r\n\x1a\n"


def etas_params(n: float) -> ETASParams:
    base = ETASParams(mu=2.0, K=1.0, alpha=1.5, c=0.01, p=1.2, D=0.5, q=1.5, gamma=1.0, b=1.0, mc=MC, mmax=6.5)
    d = base.to_dict()
    d["K"] = n / base.mean_productivity_factor()
    return ETASParams(**d)


def _quiet(_msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def catalogs():
    out, etas = {}, {}
    for name, n, duration in CONFIGS:
        p = etas_params(n)
        out[name] = [(r, simulate_etas(p, duration=duration, region=[0.0, 50.0, 0.0, 50.0],
                                       rng=np.random.default_rng([11, r, int(10 * n)]), burn_in=50.0, margin=10.0))
                     for r in range(3)]
        etas[name] = {**p.to_dict(), "branching_ratio": p.branching_ratio()}
    return out, etas


@pytest.fixture(scope="module")
def pooled(catalogs, tmp_path_factory):
    """Pooled event windows of both configs (replicate 2 held out), balanced so that every role holds as
    many windows of one config as of the other (chance level of the config classifier = 0.5 exactly)."""
    cats, etas = catalogs
    items = []
    for name, _, _ in CONFIGS:
        table, X = build_windows(cats[name], EVENT_SPEC, heldout_replicates=[2], validation_fraction=0.2)
        items.append((name, etas[name], table, X))
    table, X = pool_windows(items)
    rng = np.random.default_rng(0)
    keep = []
    for role, group in table.groupby("role"):
        size = group.groupby("config_id").size().min()
        for _, g in group.groupby("config_id"):
            keep.extend(rng.choice(g.index.to_numpy(), size, replace=False))
    keep = np.sort(np.asarray(keep))
    table, X = table.loc[keep].reset_index(drop=True), X[keep]
    role = table["role"].to_numpy()
    result = train_vae(X[role == "train"], X[role == "validation"], TINY, log=_quiet)
    path = tmp_path_factory.mktemp("model") / "pooled.pt"
    save_model(path, result, TINY, EVENT_SPEC)
    bundle = load_model(path)
    embedding = latent.embed_windows(bundle, table, X, etas=etas)
    return bundle, table, X, embedding, etas


@pytest.fixture(scope="module")
def binned_bundle(catalogs, tmp_path_factory):
    cats, _ = catalogs
    table, X = build_windows(cats["n09"], BINNED_SPEC, heldout_replicates=[2], validation_fraction=0.2)
    role = table["role"].to_numpy()
    settings = {**TINY, "loss": "poisson", "epochs": 10}
    result = train_vae(X[role == "train"], X[role == "validation"], settings, log=_quiet)
    path = tmp_path_factory.mktemp("model") / "binned.pt"
    save_model(path, result, settings, BINNED_SPEC)
    return load_model(path), table, X


# ------------------------------------------------------------------------------------------- embedding


def test_embedding_has_one_row_per_window_with_latents_features_and_parameters(pooled, catalogs):
    bundle, table, X, emb, etas = pooled
    d = bundle.model.latent_dim
    assert len(emb) == len(table)
    assert (emb["window_id"].to_numpy() == table["window_id"].to_numpy()).all()
    assert set(emb["role"]) == {"train", "validation", "heldout"}
    assert [c for c in emb.columns if c.startswith("z")] == [f"z{i}" for i in range(d)]
    assert [c for c in emb.columns if c.startswith("lv")] == [f"lv{i}" for i in range(d)]
    mu, logvar = encode_windows(bundle, X)
    np.testing.assert_allclose(emb[[f"z{i}" for i in range(d)]].to_numpy(), mu, rtol=1e-6)
    np.testing.assert_allclose(emb[[f"lv{i}" for i in range(d)]].to_numpy(), logvar, rtol=1e-6)
    # ETAS parameters come from the config's parameter dict.
    for name in etas:
        rows = emb[emb["config_id"] == name]
        assert np.allclose(rows["branching_ratio"], etas[name]["branching_ratio"])
        assert np.allclose(rows["K"], etas[name]["K"])
    assert sorted(np.round(emb["branching_ratio"].unique(), 6)) == [0.2, 0.9]
    # Descriptive features: ranges ...
    assert (emb["n_events"] == L).all()
    assert (emb["max_magnitude"] >= MC).all()
    assert (emb["duration_days"] > 0).all()
    assert ((emb["time_since_largest_days"] >= 0) & (emb["time_since_largest_days"] <= emb["duration_days"] + 1e-9)).all()
    # ... and the same values as computed directly from the simulated events of each window (the features
    # store float32, hence the tolerances).
    cats, _ = catalogs
    source = {(name, r): df for name in cats for r, df in cats[name]}
    for i in np.random.default_rng(1).choice(len(table), 25, replace=False):
        row = table.iloc[i]
        df = source[(row["config_id"], row["replicate"])]
        ev = df.iloc[row["start_event"]:row["end_event"]]
        ev = ev[ev["magnitude"] >= MC]
        assert len(ev) == L
        got = emb.iloc[i]
        assert got["max_magnitude"] == pytest.approx(ev["magnitude"].max(), abs=1e-5)
        assert got["duration_days"] == pytest.approx(ev["time"].iloc[-1] - ev["time"].iloc[0], rel=1e-3, abs=1e-5)
        t_big = ev["time"].to_numpy()[np.argmax(ev["magnitude"].to_numpy())]
        assert got["time_since_largest_days"] == pytest.approx(ev["time"].iloc[-1] - t_big, rel=1e-3, abs=1e-5)
        assert got["b_value"] == pytest.approx(stats.b_value_aki_utsu(ev["magnitude"].to_numpy(), MC), rel=1e-3)


def test_embedding_of_one_config_takes_its_id_from_etas(pooled):
    bundle, table, X, _, etas = pooled
    one = table[table["config_id"] == "n02"].drop(columns=["config_id", *etas["n02"].keys()], errors="ignore")
    emb = latent.embed_windows(bundle, one, X[one.index.to_numpy()], etas={"n02": etas["n02"]})
    assert (emb["config_id"] == "n02").all()
    assert np.allclose(emb["branching_ratio"], 0.2)
    with pytest.raises(ValueError, match="exactly one config"):
        latent.embed_windows(bundle, one, X[one.index.to_numpy()], etas=etas)


# --------------------------------------------------------------------------------------------- metrics


def test_latent_metrics_keys_ranges_and_json(pooled):
    bundle, _, _, emb, _ = pooled
    m = latent.latent_metrics(emb, knn_neighbors=15, seed=0)
    json.dumps(m, allow_nan=False)                       # strictly valid JSON
    d = bundle.model.latent_dim
    assert m["latent_dim"] == d and len(m["units"]) == d
    for u in m["units"]:
        assert u["active"] == (u["activity"] > latent.ACTIVE_THRESHOLD)
    assert m["n_active"] == sum(u["active"] for u in m["units"])
    assert m["posterior_collapse"] == (m["n_active"] == 0)
    assert m["pooled"] is True
    assert set(m["silhouette"]) == {"config", "max_magnitude_terciles", "duration_days_terciles"}
    knn = m["knn"]
    assert 0.0 <= knn["accuracy"] <= 1.0
    assert knn["n_test"] == m["n_windows_by_role"]["heldout"]
    assert set(m["linear_r2"]) == {"K", "branching_ratio"}   # the only parameters that vary


def test_knn_recovers_the_etas_config_from_latent_means(pooled):
    """Branching ratio 0.2 vs 0.9 gives windows of nearly Poisson vs strongly clustered events; a VAE that
    encodes anything about the windows must separate them. Held-out windows are balanced, so chance is 0.5,
    and if the latent means carried no information about the config, the held-out accuracy would be
    Binomial(n_test, 0.5) / n_test with standard error sqrt(0.25 / n_test) (about 0.03 here). We require
    more than chance + 3 standard errors (a false pass under that null has probability ~0.1 %) and, as a
    practical margin, at least 0.75."""
    _, _, _, emb, _ = pooled
    knn = latent.latent_metrics(emb, knn_neighbors=15, seed=0)["knn"]
    assert knn["chance"] == pytest.approx(0.5)
    assert knn["chance_se"] == pytest.approx(np.sqrt(0.25 / knn["n_test"]))
    assert knn["n_test"] >= 200
    assert knn["accuracy"] > knn["chance"] + 3 * knn["chance_se"]
    assert knn["accuracy"] >= 0.75
    assert knn["margin_in_chance_se"] > 3


def test_metrics_of_a_single_config_have_no_classifier(pooled):
    _, _, _, emb, _ = pooled
    m = latent.latent_metrics(emb[emb["config_id"] == "n09"], knn_neighbors=5, seed=0)
    assert m["pooled"] is False and "knn" not in m and "linear_r2" not in m and "config" not in m["silhouette"]


def test_model_health_on_heldout_windows(pooled):
    bundle, table, X, _, _ = pooled
    h = latent.model_health(bundle, X[(table["role"] == "heldout").to_numpy()])
    json.dumps(h, allow_nan=False)
    assert h["loss"] == "mse" and h["n_windows"] == int((table["role"] == "heldout").sum())
    assert h["recon_loss"] > 0 and h["kl_per_window"] > 0
    # mse loss = squared error summed over features; mse_scaled = the same per feature.
    assert h["recon_loss"] == pytest.approx(h["mse_scaled"] * X.shape[1], rel=1e-4)
    assert len(h["activity"]) == bundle.model.latent_dim and 0 <= h["n_active"] <= bundle.model.latent_dim


def test_model_health_above_its_cap_is_that_of_a_seeded_subsample(pooled):
    bundle, table, X, _, _ = pooled
    held = X[(table["role"] == "heldout").to_numpy()]
    cap = len(held) // 3
    h = latent.model_health(bundle, held, max_windows=cap, seed=5)
    keep = np.sort(np.random.default_rng(5).choice(len(held), cap, replace=False))
    assert h["n_windows"] == cap and h["n_windows_heldout"] == len(held)
    # the same numbers as the health of exactly those windows (same seed, same draw)
    assert {k: v for k, v in h.items() if k != "n_windows_heldout"} == latent.model_health(bundle, held[keep])
    assert latent.model_health(bundle, held, max_windows=len(held)) == latent.model_health(bundle, held)


# --------------------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize("mode", ["mean", "draw"])
def test_synthetic_event_catalog_is_a_valid_catalog(pooled, tmp_path, mode):
    bundle = pooled[0]
    cat, info = sample.sample_catalog(bundle, 120, mode=mode, seed=3)
    assert info["mode"] == mode and info["n_windows"] == 120 and info["n_events"] == 120 * L
    assert set(info["clipped"]) == {"magnitude_below_mc", "dt_below_min", "dt_above_max"}
    assert cat["window"].dtype == np.int64 and sorted(cat["window"].unique()) == list(range(120))
    validate_catalog(cat, mc=MC)
    assert (cat["magnitude"] >= MC).all()
    assert (cat.groupby("window")["time"].diff().dropna() >= 0).all()
    path = tmp_path / "synthetic.parquet"
    write_catalog(cat, path, {"mc": MC, "mode": mode}, mc=MC)
    back, meta = read_catalog(path)                      # the reader of simulated catalogs
    assert meta["mode"] == mode
    pd.testing.assert_frame_equal(back, cat)
    if mode == "draw":
        # Likelihood noise pushes some magnitudes below Mc: mapped to Mc and counted.
        assert info["clipped"]["magnitude_below_mc"] == int((cat["magnitude"] == MC).sum()) > 0


def test_same_seed_gives_the_same_synthetic_catalog(pooled, tmp_path):
    bundle = pooled[0]
    files = []
    for i, seed in enumerate([5, 5, 6]):
        cat, _ = sample.sample_catalog(bundle, 50, mode="draw", seed=seed)
        files.append(tmp_path / f"s{i}.parquet")
        write_catalog(cat, files[-1], {"mc": MC, "seed": 5}, mc=MC)
    assert files[0].read_bytes() == files[1].read_bytes()
    assert files[0].read_bytes() != files[2].read_bytes()


def test_binned_synthetic_catalog(binned_bundle, tmp_path):
    bundle, _, _ = binned_bundle
    cat, info = sample.sample_catalog(bundle, 40, mode="draw", seed=1)
    again, _ = sample.sample_catalog(bundle, 40, mode="draw", seed=1)
    pd.testing.assert_frame_equal(cat, again)
    assert info["representation"] == "binned" and set(info["clipped"]) == {"negative_counts"}
    validate_catalog(cat, mc=MC)
    assert (cat["magnitude"] >= MC).all()
    assert (cat["time"] >= 0).all() and (cat["time"] < BINNED_SPEC["duration_days"]).all()
    write_catalog(cat, tmp_path / "b.parquet", {"mc": MC}, mc=MC)
    read_catalog(tmp_path / "b.parquet")
    # Re-windowing gives back the decoded counts, and the windows can be encoded.
    X = latent.catalog_windows(cat, bundle.spec)
    assert X.shape == (cat["window"].nunique(), 10 * 3)
    assert X.sum() == len(cat)
    assert latent.synthetic_latents(bundle, cat).shape == (X.shape[0], bundle.model.latent_dim)


def test_rewindowing_a_synthetic_catalog_gives_back_its_features(pooled):
    bundle, table, X, _, _ = pooled
    held = X[(table["role"] == "heldout").to_numpy()][:30]
    cat = windows_to_catalog(held, bundle.spec)
    again = latent.catalog_windows(cat, bundle.spec)
    # Positions are relative to the window's first event, which build_windows also puts at (0, 0).
    np.testing.assert_allclose(again, held, atol=2e-4)
    z = latent.synthetic_latents(bundle, cat)
    np.testing.assert_allclose(z, encode_windows(bundle, held)[0], atol=1e-3)


# ------------------------------------------------------------------------------------------------ plots


def _is_png(path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG and path.stat().st_size > 20_000


def test_maps_and_interpolation_are_written(pooled, tmp_path):
    bundle, _, _, emb, _ = pooled
    cat, _ = sample.sample_catalog(bundle, 100, mode="mean", seed=0)
    synth = latent.synthetic_latents(bundle, cat)
    latent.plot_pca(emb, tmp_path / "pca.png", title="pooled model: PCA of latent means", synthetic=synth)
    latent.plot_tsne(emb, tmp_path / "tsne.png", title="pooled model: t-SNE of latent means", perplexity=30,
                     seed=0, synthetic=synth)
    latent.plot_interpolation(bundle, emb, tmp_path / "interp.png", title="pooled model", steps=6)
    for name in ("pca.png", "tsne.png", "interp.png"):
        assert _is_png(tmp_path / name), name
    catalog, frac, quiet, loud = latent.interpolation_windows(bundle, emb, steps=6)
    assert quiet["max_magnitude"] < loud["max_magnitude"]
    assert np.allclose(frac, np.linspace(0, 1, 6)) and sorted(catalog["window"].unique()) == list(range(6))


def test_tsne_places_the_windows_it_did_not_fit_next_to_their_own_kind():
    # Two well-separated clusters in 8 dimensions; 60 of 300 rows fit the map, the other 240 are placed by
    # transform: each placed row's nearest fitted row on the map must come from its own cluster.
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 150)
    Z = rng.standard_normal((300, 8)) + 12.0 * labels[:, None]
    coords, _, fit, _ = latent.tsne_map(Z, perplexity=10, seed=0, rng=np.random.default_rng(1), max_fit=60)
    assert len(fit) == 60 and coords.shape == (300, 2) and np.isfinite(coords).all()
    placed = np.setdiff1d(np.arange(300), fit)
    nearest = fit[np.argmin(((coords[placed, None, :] - coords[None, fit, :]) ** 2).sum(-1), axis=1)]
    assert (labels[nearest] == labels[placed]).all()
    # no subsample under the cap: every row fits the map
    _, _, every, _ = latent.tsne_map(Z[:50], perplexity=10, seed=0, rng=np.random.default_rng(1), max_fit=60)
    np.testing.assert_array_equal(every, np.arange(50))


@pytest.mark.parametrize("representation", ["event", "binned"])
def test_descriptors_described_a_few_windows_at_a_time_are_the_same(representation, monkeypatch):
    from etas_samples import MC, clustered_catalog

    spec = ({"representation": "event", "length": 16, "stride": 8, "mc": MC, "xy_scale_km": 5.0, "min_dt_days": 1e-6}
            if representation == "event" else
            {"representation": "binned", "mc": MC, "duration_days": 2.0, "stride_days": 2.0, "time_bins": 4,
             "magnitude_bands": [2.5, 3.5]})
    catalogs = [(r, clustered_catalog(seed=r, duration=100.0, mu=1.0)) for r in range(2)]
    _, X = build_windows(catalogs, spec, heldout_replicates=[1], validation_fraction=0.2,
                         durations={0: 100.0, 1: 100.0})
    whole = latent.window_descriptors(X, spec)
    monkeypatch.setattr(latent.embedding, "DESCRIPTOR_CHUNK", 7)  # many chunks, the last one partial
    assert len(X) > 3 * 7 and len(X) % 7
    pd.testing.assert_frame_equal(latent.window_descriptors(X, spec), whole)
    assert latent.window_descriptors(X[:0], spec).empty
