# The conditional surrogate (docs/methods/surrogate.md): one sequence VAE conditioned on the varied ETAS
# parameters, trained on the pooled windows of the trained grid points, chained into catalogs of the
# simulated duration for every grid point (trained and held out) and every off-grid point of
# surrogate.points, evaluated like the per-config models. Run with `snakemake surrogate`.

from etasvae.conditioning import (
    SurrogateUnavailable,
    require_surrogate,
    set_parameters,
    surrogate_plan,
    surrogate_setting,
)

try:
    SURROGATE_PLAN = surrogate_plan(config, ETAS)
    SURROGATE_VAE = surrogate_setting(VAES, config["surrogate"]["decoder"])
    SURROGATE_ERROR = None
except SurrogateUnavailable as err:  # an error only when the surrogate is asked for
    SURROGATE_PLAN = {"sets": {}, "trained": [], "heldout": []}
    SURROGATE_VAE, SURROGATE_ERROR = None, str(err)
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None
SURROGATE_SETS = list(SURROGATE_PLAN["sets"])
SURROGATE_GRID = SURROGATE_PLAN["trained"] + SURROGATE_PLAN["heldout"]


rule train_surrogate:
    input:
        check=lambda wildcards: require_surrogate(SURROGATE_ERROR),
        windows=f"results/windows/{POOLED}/event.parquet",
        catalogs=expand(
            "results/catalogs/{cfg}/rep{rep}.parquet", cfg=CONFIG_IDS, rep=REPLICATES
        ),
    output:
        model="results/surrogate/model.pt",
        history="results/surrogate/history.csv",
        curves=report(
            "results/surrogate/loss.png",
            caption="../report/surrogate.rst",
            category="Surrogate",
        ),
    log:
        "results/logs/surrogate/train.log",
    benchmark:
        "results/benchmarks/surrogate/train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        # the grid part of the plan only: adding an off-grid point does not retrain
        plan={
            k: v if k != "sets" else {c: v[c] for c in SURROGATE_GRID}
            for k, v in SURROGATE_PLAN.items()
        },
        settings=lambda wildcards: VAES[SURROGATE_VAE],
        catalog_keys=[[c, r] for c in CONFIG_IDS for r in REPLICATES],
    script:
        "../scripts/train_surrogate.py"


rule generate_surrogate:
    input:
        "results/surrogate/model.pt",
    output:
        expand("results/surrogate/catalogs/{set}.parquet", set=SURROGATE_SETS),
    log:
        "results/logs/surrogate/generate.log",
    benchmark:
        "results/benchmarks/surrogate/generate.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        plan=SURROGATE_PLAN,
        sets=SURROGATE_SETS,
        duration_days=config["simulation"]["duration_days"],
        chains=config["surrogate"]["chains"],
        burn_in_windows=config["surrogate"]["burn_in_windows"],
        seed=config["surrogate"]["seed"],
    script:
        "../scripts/generate_surrogate.py"


rule evaluate_surrogate:
    input:
        synthetic="results/surrogate/catalogs/{cfg}.parquet",
        windows="results/windows/{cfg}/event.parquet",
        catalogs=config_catalogs,
    output:
        windows="results/surrogate/evaluation/{cfg}/windows.csv",
        catalogs="results/surrogate/evaluation/{cfg}/catalogs.csv",
        summary="results/surrogate/evaluation/{cfg}/summary.json",
        figures=directory("results/surrogate/evaluation/{cfg}/figures"),
    log:
        "results/logs/surrogate/evaluate/{cfg}.log",
    benchmark:
        "results/benchmarks/surrogate/evaluate/{cfg}.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        kind=lambda wildcards: SURROGATE_PLAN["sets"][wildcards.cfg]["kind"],
        values=lambda wildcards: SURROGATE_PLAN["sets"][wildcards.cfg]["values"],
        catalog_keys=lambda wildcards: [[wildcards.cfg, r] for r in REPLICATES],
        heldout_replicates=REPLICATES[-N_HELDOUT:],
        duration_days=config["simulation"]["duration_days"],
        permutations=config["evaluate"]["permutations"],
        cv_folds=config["evaluate"]["cv_folds"],
        seed=config["evaluate"]["seed"],
    script:
        "../scripts/evaluate_surrogate.py"


rule chain_config:
    input:
        check=lambda wildcards: require_surrogate(SURROGATE_ERROR),
        windows=f"results/windows/{POOLED}/event.parquet",
        catalogs=config_catalogs,
    output:
        model="results/surrogate/per_config/{cfg}/model.pt",
        catalogs="results/surrogate/per_config/{cfg}/catalogs.parquet",
    log:
        "results/logs/surrogate/per_config/{cfg}/chain.log",
    benchmark:
        "results/benchmarks/surrogate/per_config/{cfg}/chain.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        settings=lambda wildcards: VAES[SURROGATE_VAE],
        catalog_keys=lambda wildcards: [[wildcards.cfg, r] for r in REPLICATES],
        duration_days=config["simulation"]["duration_days"],
        chains=config["surrogate"]["chains"],
        burn_in_windows=config["surrogate"]["burn_in_windows"],
        seed=config["surrogate"]["seed"],
    script:
        "../scripts/chain_config.py"


use rule evaluate_surrogate as evaluate_chained with:
    input:
        synthetic="results/surrogate/per_config/{cfg}/catalogs.parquet",
        windows="results/windows/{cfg}/event.parquet",
        catalogs=config_catalogs,
    output:
        windows="results/surrogate/per_config/{cfg}/evaluation/windows.csv",
        catalogs="results/surrogate/per_config/{cfg}/evaluation/catalogs.csv",
        summary="results/surrogate/per_config/{cfg}/evaluation/summary.json",
        figures=directory("results/surrogate/per_config/{cfg}/evaluation/figures"),
    log:
        "results/logs/surrogate/per_config/{cfg}/evaluate.log",
    benchmark:
        "results/benchmarks/surrogate/per_config/{cfg}/evaluate.tsv"


rule invert_surrogate:
    input:
        "results/surrogate/catalogs/{set}.parquet",
    output:
        "results/surrogate/inversion/{set}.json",
    log:
        "results/logs/surrogate/invert/{set}.log",
    benchmark:
        "results/benchmarks/surrogate/invert/{set}.tsv"
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        etas=lambda wildcards: set_parameters(SURROGATE_PLAN, ETAS, wildcards.set),
        duration_days=config["simulation"]["duration_days"],
        region_km=config["simulation"]["region_km"],
        aux_days=config["invert"]["aux_days"],
        cut_mass=config["invert"]["cut_mass"],
        starts=config["invert"]["starts"],
        # as many chains as held-out catalogs: S's estimate carries the sampling noise of H's
        chains_fitted=N_HELDOUT,
    script:
        "../scripts/invert_surrogate.py"


rule surrogate_report:
    input:
        summaries=expand(
            "results/surrogate/evaluation/{cfg}/summary.json", cfg=SURROGATE_GRID
        ),
        refits=expand("results/surrogate/inversion/{set}.json", set=SURROGATE_SETS),
        chained=expand(
            "results/surrogate/per_config/{cfg}/evaluation/summary.json",
            cfg=SURROGATE_GRID,
        ),
        heldout_fits=expand(
            "results/inversion/{cfg}/heldout_catalog.json", cfg=SURROGATE_GRID
        ),
        per_config=lambda wildcards: expand(
            "results/evaluation/{cfg}/{vae}/metrics.json",
            cfg=SURROGATE_GRID,
            vae=SURROGATE_VAE,
        ),
        catalogs=expand("results/surrogate/catalogs/{set}.parquet", set=SURROGATE_SETS),
    output:
        html=report(
            "results/reports/surrogate.html",
            caption="../report/surrogate.rst",
            category="Surrogate",
        ),
        table="results/reports/surrogate.csv",
        figure="results/surrogate/statistics.png",
    log:
        "results/logs/surrogate/report.log",
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        plan=SURROGATE_PLAN,
        sets=SURROGATE_SETS,
        vae_id=SURROGATE_VAE,
        duration_days=config["simulation"]["duration_days"],
    script:
        "../scripts/surrogate_report.py"


rule surrogate:
    input:
        lambda wildcards: require_surrogate(SURROGATE_ERROR),
        "results/reports/surrogate.html",
