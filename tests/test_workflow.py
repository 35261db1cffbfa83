"""End-to-end: the real Snakemake on a tiny config in a temporary directory.

One run of the whole pipeline (the session fixture ``finished_run`` in conftest.py, which the SLURM test
compares against) serves the output checks; the rerun checks use dry runs
(`-n`) against that finished state, which is how Snakemake itself decides what to rerun.
"""

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from comcat_files import dataset_config, write_comcat_csv
from etasvae.catalog import read_catalog

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

TINY = {
    "seed": 3,
    "simulation": {
        "replicates": 3,
        "duration_days": 200,
        "burn_in_days": 50,
        "region_km": [0.0, 50.0, 0.0, 50.0],
        "margin_km": 10.0,
        "mc": 2.5,
        "mmax": 7.0,
    },
    "etas": {
        "grid": {
            "mu": [1.0, 4.0], "K": [0.25], "alpha": [1.5], "c": [0.01], "p": [1.2],
            "D": [0.5], "q": [1.5], "gamma": [1.0], "b": [1.0],
        }
    },
    "windows": {"event": {"length": 16, "stride": 8}},
    # 40 epochs and 15 neighbours: the pooled latent means tell the two configs apart by several standard
    # errors of chance (test_the_numbers_...); the autoregressive sequence decoder runs end to end.
    "vae": {"grid": {"decoder": ["autoregressive"], "loss": ["channels"], "latent_dim": [4], "hidden": [[32]],
                     "beta": [1.0], "epochs": [40], "batch_size": [32]}},
    "latent": {"tsne_perplexity": 5, "knn_neighbors": 15},
    # four reference catalogs per ETAS config (evaluation only): two extend H, two form the floor set A
    "evaluate": {"permutations": 20, "cv_folds": 3, "reference_replicates": 4},
    # more synthetic windows than any H, so that H and the floor set set the evaluation's size
    "sample": {"n_windows": 600},
    # A real-catalog dataset: a ComCat-format CSV that run_snakemake writes into the working directory
    # (120 days of ETAS seismicity in lon/lat; Mc estimated by maximum curvature on the training period).
    "datasets": {"tinyreal": dataset_config("tiny_comcat.csv")},
    # The surrogate (target `surrogate`, run by the finished_run fixture too): conditioned on mu, no interior
    # grid value to hold out, one off-grid point.
    "surrogate": {"points": [{"name": "mid", "mu": 2.5}], "chains": 2, "burn_in_windows": 1},
}
MODELS = 4  # two ETAS configs, the dataset and the pooled model, one VAE setting


def run_snakemake(workdir, config, *args, check=True, timeout=None):
    path = Path(workdir) / "config.yaml"
    if not (Path(workdir) / "tiny_comcat.csv").exists():
        write_comcat_csv(Path(workdir) / "tiny_comcat.csv")
    path.write_text(yaml.safe_dump(config))
    cmd = [*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(path), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def planned_jobs(proc):
    """{rule: count} from the job-stats table that a dry run prints."""
    text = proc.stdout + proc.stderr
    jobs = {}
    table = text.split("Job stats:")[-1] if "Job stats:" in text else ""
    for line in table.splitlines():
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if m and m.group(1) != "total":
            jobs[m.group(1)] = int(m.group(2))
    return jobs


def test_every_catalog_is_written_in_the_schema(finished_run):
    catalogs = sorted((finished_run / "results" / "catalogs").glob("*/rep*.parquet"))
    assert len(catalogs) == 2 * 3
    for path in catalogs:
        df, meta = read_catalog(path)
        assert len(df) > 50
        assert meta["mc"] == 2.5 and "seed" in meta and "parameters" in meta
        assert df["time"].between(0, 200).all()
        assert df["x"].between(0, 50).all() and df["y"].between(0, 50).all()


def models(workdir):
    return sorted(p.parent for p in (workdir / "results" / "models").glob("*/*/model.pt"))


def test_every_model_is_trained_embedded_sampled_and_reported(finished_run):
    import torch

    found = models(finished_run)
    assert len(found) == MODELS
    for model_dir in found:
        cfg, vae = model_dir.parent.name, model_dir.name
        state = torch.load(model_dir / "model.pt", weights_only=True)
        assert isinstance(state, dict)
        history = pd.read_csv(model_dir / "history.csv")
        assert {"epoch", "train_recon", "val_recon", "train_kl", "val_kl", "val_total", "beta"} <= set(history.columns)
        assert (model_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        latent = finished_run / "results" / "latent" / cfg / vae
        embedding = pd.read_parquet(latent / "embedding.parquet")
        assert {"z0", "z1", "lv0", "role", "max_magnitude"} <= set(embedding.columns)
        metrics = json.loads((latent / "metrics.json").read_text())
        assert "n_active" in metrics
        for name in ("pca.png", "tsne.png", "interpolation.png"):
            assert (latent / name).stat().st_size > 10_000
        synthetic, meta = read_catalog(finished_run / "results" / "synthetic" / cfg / vae / "catalog.parquet")
        assert meta["kind"] == "synthetic" and synthetic["window"].nunique() > 1
        assert meta["mc"] == (2.2 if cfg == "tinyreal" else 2.5) and (synthetic["magnitude"] >= meta["mc"]).all()
        evaluation = json.loads((finished_run / "results" / "evaluation" / cfg / vae / "metrics.json").read_text())
        assert {"overall_score", "verdict", "statistics"} <= set(evaluation)
        # sequence VAE health: held-out NLL with encoded z against z from the prior, KL per window
        health = evaluation["health"]
        assert health["decoder"] == "autoregressive" and np.isfinite(health["prior_minus_encoded_nats"])
        assert health["kl_per_window"] > 0
        # sampled positions stay in the region (the simulated 50 km square, or the dataset's own): offsets
        # from the first event within its extent
        xmin, xmax, ymin, ymax = meta["spec"]["region_km"]
        assert (synthetic["x"].abs() <= xmax - xmin + 1e-6).all() and (synthetic["y"].abs() <= ymax - ymin + 1e-6).all()
        page = (finished_run / "results" / "reports" / cfg / f"{vae}.html").read_text()
        assert "data:image/png;base64," in page and evaluation["verdict"].split(":")[0] in page
    summary = pd.read_csv(finished_run / "results" / "reports" / "summary.csv")
    assert len(summary) == MODELS and (finished_run / "results" / "reports" / "summary.html").exists()


def test_reference_catalogs_are_evaluated_never_trained(finished_run):
    """The reference catalogs: seeded apart from the replicates, in no windows table, and the evaluation's H
    and floor set of the ETAS configs (S, H and A of one size, each statistic with its resolution)."""
    from etasvae.config import catalog_seed
    from etasvae.evaluate.reference import reference_seed

    for cfg_dir in (finished_run / "results" / "catalogs").glob("mu*"):
        cfg = cfg_dir.name
        refs = sorted(cfg_dir.glob("ref*.parquet"))
        assert len(refs) == 4
        replicate_seeds = {read_catalog(p)[1]["seed"] for p in cfg_dir.glob("rep*.parquet")}
        assert replicate_seeds == {catalog_seed(3, cfg, r) for r in range(3)}
        for k in range(4):
            meta = read_catalog(cfg_dir / f"ref{k}.parquet")[1]
            assert meta["role"] == "reference" and meta["seed"] == reference_seed(3, cfg, k)
            assert meta["seed"] not in replicate_seeds
        windows = pd.read_parquet(finished_run / "results" / "windows" / cfg / "event.parquet")
        assert set(windows["replicate"]) == {0, 1, 2}
        for path in (finished_run / "results" / "evaluation" / cfg).glob("*/metrics.json"):
            evaluation = json.loads(path.read_text())
            n = evaluation["n_windows"]
            assert evaluation["floor_set"] == "reference" and n["S"] == n["H"] == n["A"] > 0, n
            assert n["H"] > int((windows["role"] == "heldout").sum())  # the reference catalogs add windows
            stats = evaluation["statistics"]
            assert stats["c2st"]["resolution"] == pytest.approx(1.959964 * stats["c2st"]["err_S"], rel=1e-5)
            assert np.isfinite(stats["max_magnitude_ks"]["resolution"]) and np.isfinite(stats["mmd"]["resolution"])
    pooled = json.loads(next((finished_run / "results" / "evaluation" / "pooled").glob("*/metrics.json")).read_text())
    assert pooled["floor_set"] == "reference"
    assert set(pd.read_parquet(finished_run / "results" / "windows" / "pooled" / "event.parquet")["replicate"]) == {0, 1, 2}


def test_the_real_dataset_travels_the_same_path(finished_run):
    """Held-out windows of the real catalog's last period, VAE samples and the baselines on one page."""
    imported = json.loads((finished_run / "results" / "catalogs" / "tinyreal" / "import.json").read_text())
    assert imported["mc"] == 2.2 and imported["counts"]["below_mc"] > 0
    windows = pd.read_parquet(finished_run / "results" / "windows" / "tinyreal" / "event.parquet")
    heldout = windows[windows["role"] == "heldout"]
    assert (heldout["t_start"] >= imported["periods_days"]["heldout"][0]).all()
    model = next((finished_run / "results" / "evaluation" / "tinyreal").glob("*/metrics.json"))
    evaluation = json.loads(model.read_text())
    assert evaluation["n_windows"]["H"] == len(heldout) and evaluation["n_windows"]["S"] == TINY["sample"]["n_windows"]
    assert evaluation["n_windows"]["A"] == int((windows["role"] == "train").sum())
    assert evaluation["floor_set"] == "training"   # a real catalog has one history: no reference catalogs
    assert evaluation["real_catalog"]["mc"] == 2.2 and "maximum curvature" in evaluation["real_catalog"]["mc_method"]
    page = (finished_run / "results" / "reports" / "tinyreal" / f"{model.parent.name}.html").read_text()
    assert "real_catalog.mc_method" in page and "maximum curvature + 0.2" in page
    assert "How close is the VAE to the real catalog?" in page and "Statistics: synthetic (S) against the held-out period (H)" in page
    summary = pd.read_csv(finished_run / "results" / "reports" / "summary.csv")
    assert "tinyreal" in set(summary["config_id"])
    # the held-out period as a forecast: Poisson and the ETAS fit, on the page and in the summary
    scores = json.loads((finished_run / "results" / "forecast" / "tinyreal" / "scores.json").read_text())
    assert scores["period"]["test_days"] == imported["periods_days"]["heldout"]
    assert scores["n_events"] == imported["events_per_period"]["heldout"]
    assert "Forecast of the held-out period" in page
    row = summary[summary["config_id"] == "tinyreal"].iloc[0]
    assert row["forecast_tll_poisson"] == pytest.approx(scores["forecasters"]["poisson"]["tll"], rel=1e-12)
    assert row["forecast_n_events"] == scores["n_events"]
    # and the dataset's VAE setting as a forecaster of the same events, in its summary row
    vae = json.loads(next((finished_run / "results" / "forecast" / "tinyreal" / "vae").glob("*.json")).read_text())
    assert vae["n_events"] == scores["n_events"] and vae["vae_id"] == row["vae_id"]
    assert row["forecast_tll_vae"] == pytest.approx(vae["tll"], rel=1e-12)


def test_dry_run_shows_the_datasets_jobs_beside_the_etas_configs(tmp_path):
    jobs = planned_jobs(run_snakemake(tmp_path, TINY, "-n"))
    assert jobs["import_dataset"] == 1 and jobs["build_dataset_windows"] == 1 and jobs["forecast_dataset"] == 1
    assert jobs["forecast_vae"] == len(TINY["vae"]["grid"]["decoder"])   # one per VAE setting of the dataset
    # the ETAS fit simulated over the held-out period, and its evaluation: one each per dataset and representation
    assert jobs["simulate_dataset_etas"] == jobs["evaluate_dataset_etas"] == 1
    assert jobs["simulate_catalog"] == 6 and jobs["simulate_references"] == 2 and jobs["build_windows"] == 2
    assert jobs["train_vae"] == jobs["evaluate_model"] == jobs["report_page"] == MODELS


def test_the_numbers_of_the_run_say_what_they_should(finished_run):
    # Two configs four times apart in background rate: the pooled model's latent means must tell them apart
    # better than always guessing the more frequent config. Accuracy and chance come from the same held-out
    # windows; 2 binomial standard errors of chance is a one-sided p of about 0.02 under no information
    # (training is deterministic on CPU, so the margin is the same on every run of the same code).
    knn = json.loads(next((finished_run / "results" / "latent" / "pooled").glob("*/metrics.json")).read_text())["knn"]
    assert knn["accuracy"] > knn["chance"] + 2.0 * knn["chance_se"], knn
    # The noise floor: a classifier cannot tell ETAS training windows (A) from held-out ones (H), so its
    # accuracy is within 4 binomial standard errors of 0.5 (windows overlap by half, so the binomial error
    # is a lower bound; 4 leaves room for that), while the Poisson baseline is told apart almost always.
    for path in (finished_run / "results" / "evaluation").glob("*/*/metrics.json"):
        c2st = json.loads(path.read_text())["statistics"]["c2st"]
        assert abs(c2st["value_A"] - 0.5) < 4.0 * c2st["err_A"], (path, c2st)
        assert c2st["value_P"] > 0.5 + 4.0 * c2st["err_P"], (path, c2st)


def test_inversion_is_on_the_model_pages_and_in_the_summary(finished_run):
    summary = pd.read_csv(finished_run / "results" / "reports" / "summary.csv")
    etas_configs = sorted(c for c in summary["config_id"].unique() if c.startswith("mu"))
    assert len(etas_configs) == 2, etas_configs
    for cfg in etas_configs:
        (vae_dir,) = [d for d in (finished_run / "results" / "inversion" / cfg).iterdir() if d.is_dir()]
        result = json.loads((vae_dir / "estimates.json").read_text())
        for name in ("heldout_windows", "synthetic_windows", "heldout_catalog"):
            assert "estimates" in result["fits"][name], result["fits"][name]
        table = pd.read_csv(vae_dir / "estimates.csv")
        assert {"truth", "heldout_windows.estimate", "synthetic_windows.std_error"} <= set(table.columns)
        page = (finished_run / "results" / "reports" / cfg / f"{vae_dir.name}.html").read_text()
        assert "ETAS parameters carried by the windows" in page and "synthetic windows S (joint fit)" in page
        row = summary[summary["config_id"] == cfg].iloc[0]
        assert np.isfinite(row["etas_fit.branching_ratio.synthetic_se"])
        assert np.isfinite(row["etas_fit.mu.z_synthetic_vs_heldout"])
        if not cfg.startswith("mu4_"):
            continue  # mu = 1/day: too few events in 200 days for the error check of the whole-catalog fit
        # the whole held-out catalog carries its config's parameters (|z| < 4: two-sided p ~ 6e-5)
        whole = table.set_index("parameter")
        for name in ("alpha", "p", "b", "branching_ratio"):
            z = (whole.loc[name, "heldout_catalog.estimate"] - whole.loc[name, "truth"]) / whole.loc[name, "heldout_catalog.std_error"]
            assert abs(z) < 4.0, (cfg, name, z)
    pooled = summary[summary["config_id"] == "pooled"].iloc[0]
    assert np.isnan(pooled["etas_fit.K.heldout"])  # no single truth for the pooled model


def test_etas_fit_rows_are_in_the_evaluation(finished_run):
    """Alpha, p and the branching ratio of the joint window fits are rows of each config's and the dataset's
    comparison table (H and A fitted once per config on windows that share no event), not of the pooled model's."""
    for cfg in ("mu1_K0.25_alpha1.5_c0.01_p1.2_D0.5_q1.5_gamma1_b1", "tinyreal"):
        reference = json.loads((finished_run / "results" / "inversion" / cfg / "windows_event.json").read_text())
        assert reference["selection"]["heldout_windows"]["overlap_factor_fitted"] == 1.0
        assert reference["selection"]["heldout_windows"]["overlap_factor_all"] > 1.5  # stride 8 of 16 events
        (model,) = (finished_run / "results" / "evaluation" / cfg).glob("*/metrics.json")
        rows = json.loads(model.read_text())["statistics"]
        for name in ("etas_alpha", "etas_p", "etas_branching_ratio"):
            assert rows[name]["group"] == "ETAS fit" and rows[name]["value_P"] in (0.0, 1.0)
        assert rows["etas_alpha"]["value_H"] == reference["fits"]["heldout_windows"]["estimates"]["alpha"]
        page = (finished_run / "results" / "reports" / cfg / f"{model.parent.name}.html").read_text()
        assert "etas_alpha" in page and "training windows A (joint fit)" in page
    (pooled,) = (finished_run / "results" / "evaluation" / "pooled").glob("*/metrics.json")
    assert not any(k.startswith("etas_") for k in json.loads(pooled.read_text())["statistics"])


def test_snakemake_report_is_built(finished_run):
    run_snakemake(finished_run, TINY, "--report", "report.html")
    assert (finished_run / "report.html").stat().st_size > 100_000


def test_same_seed_gives_byte_identical_catalogs(finished_run, tmp_path):
    targets = sorted(str(p.relative_to(finished_run)) for p in (finished_run / "results" / "catalogs").glob("*/*.parquet"))
    run_snakemake(tmp_path, TINY, *targets)
    for target in targets:
        assert (tmp_path / target).read_bytes() == (finished_run / target).read_bytes(), target


def test_second_run_does_nothing(finished_run):
    proc = run_snakemake(finished_run, TINY, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr, planned_jobs(proc)


def test_adding_a_grid_value_runs_only_the_new_configs_simulations(finished_run):
    config = copy.deepcopy(TINY)
    config["etas"]["grid"]["mu"].append(2.0)
    jobs = planned_jobs(run_snakemake(finished_run, config, "-n"))
    assert jobs["simulate_catalog"] == 3  # the new config's replicates, nothing else
    assert jobs["build_windows"] == 1


def test_changing_beta_reruns_training_not_simulation_or_windows(finished_run):
    config = copy.deepcopy(TINY)
    config["vae"]["grid"]["beta"] = [0.5]
    jobs = planned_jobs(run_snakemake(finished_run, config, "-n"))
    assert "simulate_catalog" not in jobs and "build_windows" not in jobs and "pool_windows" not in jobs
    assert "import_dataset" not in jobs and "build_dataset_windows" not in jobs
    assert jobs["train_vae"] == MODELS


def test_changing_window_length_reruns_windows_not_simulation(finished_run):
    config = copy.deepcopy(TINY)
    config["windows"]["event"]["length"] = 12
    jobs = planned_jobs(run_snakemake(finished_run, config, "-n"))
    assert "simulate_catalog" not in jobs
    assert jobs["build_windows"] == 2 and jobs["build_dataset_windows"] == 1 and jobs["train_vae"] == MODELS
    assert "import_dataset" not in jobs


def test_invalid_config_stops_before_any_job(tmp_path):
    config = copy.deepcopy(TINY)
    config["etas"]["grid"]["K"] = [0.9]
    proc = run_snakemake(tmp_path, config, check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "etas.grid.K = 0.9" in text and "branching ratio" in text
    assert not (tmp_path / "results").exists()


def test_invalid_dataset_stops_before_any_job(tmp_path):
    config = copy.deepcopy(TINY)
    config["datasets"]["tinyreal"]["split"]["heldout_start"] = "2021-01-01"
    proc = run_snakemake(tmp_path, config, check=False)
    assert proc.returncode != 0
    assert "datasets.tinyreal: need start < split.validation_start < split.heldout_start < end" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_schema_error_names_the_key(tmp_path):
    config = copy.deepcopy(TINY)
    config["simulation"]["replicates"] = 1
    proc = run_snakemake(tmp_path, config, check=False)
    assert proc.returncode != 0
    assert "replicates" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_binned_representation_runs_end_to_end(tmp_path):
    config = copy.deepcopy(TINY)
    config["vae"]["grid"].update({"representation": ["binned"], "decoder": ["mlp"], "loss": ["poisson"]})
    config["windows"]["binned"] = {"duration_days": 10.0, "stride_days": 5.0, "time_bins": 10,
                                   "magnitude_bands": [2.5, 3.0, 4.0]}
    run_snakemake(tmp_path, config)
    summary = pd.read_csv(tmp_path / "results" / "reports" / "summary.csv")
    assert len(summary) == MODELS and summary["vae_id"].str.startswith("binned_").all()
    synthetic, meta = read_catalog(next((tmp_path / "results" / "synthetic").glob("pooled/*/catalog.parquet")))
    assert meta["spec"]["representation"] == "binned" and (synthetic["magnitude"] >= 2.5).all()
    # The dataset's bands keep their offsets from its own Mc (2.2): [2.5, 3.0, 4.0] - 0.3.
    synthetic, meta = read_catalog(next((tmp_path / "results" / "synthetic").glob("tinyreal/*/catalog.parquet")))
    assert meta["spec"]["magnitude_bands"] == [2.2, 2.7, 3.7] and (synthetic["magnitude"] >= 2.2).all()


@pytest.mark.parametrize("section, key, value, message", [
    # A list item: the item, its value and the rule (the schema's oneOf alone says only "not valid under any").
    ("vae", "grid", {**TINY["vae"]["grid"], "loss": ["mse", "nll"]}, "vae.grid.loss[1] = 'nll': 'nll' is not one of"),
    # .inf passes `exclusiveMinimum: 0`; it is refused by name before the first simulation.
    ("simulation", "duration_days", float("inf"), "simulation.duration_days = inf: must be a finite number"),
])
def test_config_errors_name_the_item_before_any_job(tmp_path, section, key, value, message):
    config = copy.deepcopy(TINY)
    config[section][key] = value
    proc = run_snakemake(tmp_path, config, check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]
    assert not (tmp_path / "results").exists()


def test_the_surrogate_target_chains_catalogs_and_reports_every_point(finished_run):
    out = finished_run / "results"
    for name in ("mu1_K0.25_alpha1.5_c0.01_p1.2_D0.5_q1.5_gamma1_b1", "mu4_K0.25_alpha1.5_c0.01_p1.2_D0.5_q1.5_gamma1_b1", "mid"):
        catalog, meta = read_catalog(out / "surrogate" / "catalogs" / f"{name}.parquet")
        assert meta["kind"] == "surrogate" and meta["chains"] == 2 and sorted(catalog["window"].unique()) == [0, 1]
        assert catalog["time"].between(0, 200).all() and (catalog["magnitude"] >= 2.5).all()
    for cfg in ("mu1_K0.25_alpha1.5_c0.01_p1.2_D0.5_q1.5_gamma1_b1", "mu4_K0.25_alpha1.5_c0.01_p1.2_D0.5_q1.5_gamma1_b1"):
        summary = json.loads((out / "surrogate" / "evaluation" / cfg / "summary.json").read_text())
        assert summary["kind"] == "trained" and set(summary["lines"]) == {"b_value", "fano_daily", "cv_catalog", "omori_p"}
    for name, mu in (("mu1_K0.25_alpha1.5_c0.01_p1.2_D0.5_q1.5_gamma1_b1", 1.0), ("mid", 2.5)):
        refit = json.loads((out / "surrogate" / "inversion" / f"{name}.json").read_text())
        assert refit["truth"]["mu"] == mu and refit["truth"]["branching_ratio"] > 0
        assert "estimates" in refit["fit"] or "error" in refit["fit"]
    table = pd.read_csv(out / "reports" / "surrogate.csv")
    assert len(table) == 2 and {"surrogate_score", "per_config_score", "gap", "skill_fano_daily", "skill_count_30d_fano",
                                "etas_branching_ratio_truth", "etas_branching_ratio_S", "etas_branching_ratio_H", "chained_score",
                                "chained_skill_count_30d_fano"} <= set(table.columns)
    # the chaining for a per-config model: that config's own chained catalogs
    chained, meta = read_catalog(out / "surrogate" / "per_config" / "mu4_K0.25_alpha1.5_c0.01_p1.2_D0.5_q1.5_gamma1_b1" / "catalogs.parquet")
    assert meta["set_kind"] == "per-config" and sorted(chained["window"].unique()) == [0, 1]
    assert chained["time"].between(0, 200).all()
    html = (out / "reports" / "surrogate.html").read_text()
    assert "Off-grid points" in html and "data:image/png;base64" in html and "refitted from the surrogate" in html


def test_a_surrogate_point_outside_the_trained_range_stops_before_any_job(tmp_path):
    config = copy.deepcopy(TINY)
    config["surrogate"]["points"] = [{"name": "far", "mu": 8.0}]
    proc = run_snakemake(tmp_path, config, "-n", "surrogate", check=False)
    assert proc.returncode != 0
    assert "surrogate.points[0].mu = 8: outside the trained range of mu, [1, 4]" in proc.stdout + proc.stderr
    # a grid that varies nothing has no surrogate: an error only when the surrogate is asked for
    config = copy.deepcopy(TINY)
    config["etas"]["grid"]["mu"] = [1.0]
    config["surrogate"]["points"] = []
    proc = run_snakemake(tmp_path, config, "-n", "surrogate", check=False)
    assert proc.returncode != 0 and "the ETAS configs vary no parameter" in proc.stdout + proc.stderr
    assert run_snakemake(tmp_path, config, "-n").returncode == 0
