"""Evaluation, embedding and latent maps of one model at about 10^5 windows: time and peak memory per stage.

    python benchmarks/bench_scale.py [--config benchmarks/config_10x.yaml] [--workdir DIR] [--uncapped]
                                     [--replicates R --heldout-replicates H]

Data: the config's first ETAS config simulated and windowed by the pipeline itself (snakemake in DIR, a
copy of the workflow as benchmarks/bench_pipeline.py makes; files already there are reused). Model: the
config's first VAE setting trained for one epoch on at most 5,000 training windows: what is measured here
does not depend on how well the model fits. S: as many synthetic windows as held-out windows (as with
`sample.n_windows: null`). Each stage runs in a fresh process; its wall and CPU seconds and its peak resident
memory (ru_maxrss) are printed:

  embed      embed_windows, latent_metrics, model_health: the embed_windows rule's work, every window
  maps       plot_pca, plot_tsne, plot_interpolation: the latent_maps rule's work
  evaluate   evaluate_model: the evaluate_model rule's work, each set capped at evaluate.sets.MAX_WINDOWS

With --uncapped, evaluate runs again with every window, and each statistic's distances d_S, d_A, d_P of
the two runs are printed side by side with 1/sqrt(n) of the capped run (the scale of a KS distance's
sampling error at n windows per set): the cap changes a distance by its sampling noise, not more.

--replicates and --heldout-replicates override the config's simulation.replicates and
windows.heldout_replicates (in the working copy's config.yaml only): with the 10x config, 10 replicates of
which 8 are held out give about 10^5 held-out windows, the scale at which evaluation and latent maps must stay
within 1 GiB and 2 CPU minutes per model.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_pipeline import prepare  # noqa: E402  (a sibling script)

ROOT = Path(__file__).resolve().parents[1]
TRAIN_WINDOWS = 5000


def _paths(workdir: Path) -> dict[str, Path]:
    import yaml

    from etasvae.config import etas_configs, vae_settings

    config = yaml.safe_load((workdir / "config.yaml").read_text())
    from etasvae.config import check_schema

    check_schema(config)
    cfg = next(iter(etas_configs(config)))
    settings = next(iter(vae_settings(config).values()))
    out = workdir / "scale"
    return {"config": config, "cfg": cfg, "settings": settings, "out": out,
            "windows": workdir / "results" / "windows" / cfg / f"{settings['representation']}.parquet",
            "catalogs": sorted((workdir / "results" / "catalogs" / cfg).glob("rep*.parquet")),
            "model": out / "model.pt", "synthetic": out / "synthetic.parquet", "latent": out / "latent.parquet",
            "embedding": out / "embedding.parquet"}


def stage_model(p: dict) -> str:
    import numpy as np

    from etasvae.catalog import write_catalog
    from etasvae.features import read_windows
    from etasvae.sample import latent_table, sample_catalog, synthetic_metadata
    from etasvae.models.files import load_model, save_model
    from etasvae.models.sequence import window_origins
    from etasvae.models.train import train_vae

    table, X, spec, meta = read_windows(p["windows"])
    role = table["role"].to_numpy()
    origin = window_origins(table)
    train = np.flatnonzero(role == "train")[:TRAIN_WINDOWS]
    val = np.flatnonzero(role == "validation")[: TRAIN_WINDOWS // 5]
    settings = {**p["settings"], "epochs": 1}
    result = train_vae(X[train], X[val], settings, log=lambda line: None, threads=1, spec=spec,
                       origin_train=None if origin is None else origin[train],
                       origin_val=None if origin is None else origin[val])
    p["out"].mkdir(parents=True, exist_ok=True)
    save_model(p["model"], result, settings, spec, {"config_id": p["cfg"], "vae_id": "bench", "etas": meta["etas"]})
    bundle = load_model(p["model"])
    n = int((role == "heldout").sum())
    catalog, _, z = sample_catalog(bundle, n, mode="draw", seed=0, return_latent=True)
    write_catalog(catalog, p["synthetic"], synthetic_metadata(p["model"], bundle.spec, mode="draw", seed=0,
                                                              n_windows=n), mc=bundle.spec["mc"])
    latent_table(z).to_parquet(p["latent"], index=False)
    return f"{len(table)} windows ({int((role == 'heldout').sum())} held out, {int((role == 'train').sum())} train)"


def stage_embed(p: dict) -> str:
    from etasvae.features import read_windows
    from etasvae.latent import embed_windows, latent_metrics, model_health
    from etasvae.models.files import load_model
    from etasvae.models.sequence import window_origins

    bundle = load_model(p["model"])
    table, X, spec, meta = read_windows(p["windows"])
    embedding = embed_windows(bundle, table, X, etas={p["cfg"]: meta["etas"][p["cfg"]]})
    latent_metrics(embedding, knn_neighbors=5, seed=0)
    held = table["role"].to_numpy() == "heldout"
    origin = window_origins(table)
    model_health(bundle, X[held], None if origin is None else origin[held])
    embedding.to_parquet(p["embedding"], index=False)
    return f"{len(embedding)} windows embedded"


def stage_maps(p: dict) -> str:
    import pandas as pd

    from etasvae.latent import latent_columns, plot_interpolation, plot_pca, plot_tsne
    from etasvae.models.files import load_model

    bundle = load_model(p["model"])
    embedding = pd.read_parquet(p["embedding"])
    latents = pd.read_parquet(p["latent"])
    synthetic = latents[latent_columns(latents)[0]].to_numpy()
    plot_pca(embedding, p["out"] / "pca.png", title="scale", synthetic=synthetic)
    plot_tsne(embedding, p["out"] / "tsne.png", title="scale", perplexity=30, seed=0, synthetic=synthetic)
    plot_interpolation(bundle, embedding, p["out"] / "interpolation.png", title="scale")
    return f"maps of {len(embedding)} windows, {len(synthetic)} synthetic"


def stage_evaluate(p: dict, uncapped: bool = False) -> str:
    import etasvae.evaluate.sets as sets
    from etasvae.catalog import read_metadata
    from etasvae.evaluate import evaluate_model
    from etasvae.features import read_windows

    if uncapped:  # every window: the cap lifted for this process only
        sets.evaluation_sets.__kwdefaults__["max_windows"] = 10**12
    table, _, spec, meta = read_windows(p["windows"], features=False)    # as the evaluate_model script
    synthetic_meta = read_metadata(p["synthetic"])
    catalogs = {(p["cfg"], int(c.stem.removeprefix("rep"))): c for c in p["catalogs"]}
    name = "evaluate_uncapped" if uncapped else "evaluate"
    metrics, n_windows, _ = evaluate_model(table, catalogs, spec, p["synthetic"], synthetic_meta, config_id=p["cfg"],
                                           seed=0, permutations=200, cv_folds=5,
                                           figures_dir=p["out"] / f"{name}_figures", title="scale")
    metrics.to_csv(p["out"] / f"{name}.csv", index=False)
    (p["out"] / f"{name}.json").write_text(json.dumps(n_windows))
    return f"windows per set {n_windows}"


STAGES = {"model": stage_model, "embed": stage_embed, "maps": stage_maps, "evaluate": stage_evaluate,
          "evaluate_uncapped": lambda p: stage_evaluate(p, uncapped=True)}


def run_stage(name: str, workdir: Path) -> None:
    """In a fresh process: one stage, then its figures as one JSON line."""
    started, cpu0 = time.perf_counter(), time.process_time()
    what = STAGES[name](_paths(workdir))
    print(json.dumps({"stage": name, "wall_s": time.perf_counter() - started, "cpu_s": time.process_time() - cpu0,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "what": what}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "benchmarks" / "config_10x.yaml")
    parser.add_argument("--workdir", type=Path, default=ROOT / "benchmarks" / "out" / "scale")
    parser.add_argument("--uncapped", action="store_true", help="also evaluate every window, and compare")
    parser.add_argument("--replicates", type=int, help="simulation.replicates of the working copy's config")
    parser.add_argument("--heldout-replicates", type=int, help="windows.heldout_replicates of the working copy's config")
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    if args.stage:
        run_stage(args.stage, workdir)
        return 0

    if not (workdir / "results" / "windows").exists():
        prepare(workdir, args.config.resolve())
        if args.replicates or args.heldout_replicates:
            import yaml

            config = yaml.safe_load((workdir / "config.yaml").read_text())
            if args.replicates:
                config["simulation"]["replicates"] = args.replicates
            if args.heldout_replicates:
                config["windows"]["heldout_replicates"] = args.heldout_replicates
            (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    p = _paths(workdir)
    snakemake = Path(sys.executable).with_name("snakemake")
    subprocess.run([str(snakemake), str(p["windows"].relative_to(workdir)), "--cores", "2", "--quiet", "all"],
                   cwd=workdir, check=True)
    stages = ["model", "embed", "maps", "evaluate"] + (["evaluate_uncapped"] if args.uncapped else [])
    print(f"{'stage':<20}{'wall s':>9}{'CPU s':>9}{'peak RSS MiB':>14}  what")
    for name in stages:
        if name == "model" and p["model"].exists() and p["synthetic"].exists():
            continue
        done = subprocess.run([sys.executable, __file__, "--stage", name, "--workdir", str(workdir)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout[-2000:], done.stderr[-4000:])
            return done.returncode
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{name:<20}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{r['peak_rss_mib']:>14.0f}  {r['what']}", flush=True)
    if args.uncapped:
        import pandas as pd

        capped = pd.read_csv(p["out"] / "evaluate.csv").set_index("statistic")
        full = pd.read_csv(p["out"] / "evaluate_uncapped.csv").set_index("statistic")
        n = json.loads((p["out"] / "evaluate.json").read_text())
        noise = (1 / n["H"] + 1 / min(n["S"], n["A"])) ** 0.5
        print(f"\ndistances to H, capped (n per set {n}) vs every window; sqrt(1/n_H + 1/n_X) = {noise:.4f}")
        print(f"{'statistic':<24}" + "".join(f"{f'd_{k} cap':>11}{f'd_{k} all':>11}" for k in "SAP"))
        for stat in capped.index:
            print(f"{stat:<24}" + "".join(f"{capped.loc[stat, f'd_{k}']:>11.4f}{full.loc[stat, f'd_{k}']:>11.4f}"
                                          for k in "SAP"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
