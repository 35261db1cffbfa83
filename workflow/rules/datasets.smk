# Real catalogs (config key `datasets`): download (ComCat) -> import -> windows; from there a dataset
# travels the model path of an ETAS config (train, embed, sample, evaluate, report).


# The download needs the network: on a cluster it runs where Snakemake runs, not on a compute node.
localrules:
    download_comcat,
    datasets,


rule download_comcat:
    output:
        "resources/comcat/{dataset}.csv",
    log:
        "results/logs/download/{dataset}.log",
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        url=lambda wildcards: DATASETS[wildcards.dataset]["url"],
        query=lambda wildcards: comcat_query(DATASETS[wildcards.dataset]),
        download=lambda wildcards: DATASETS[wildcards.dataset]["download"],
    script:
        "../scripts/download_comcat.py"


rule import_dataset:
    input:
        dataset_source,
    output:
        catalog="results/catalogs/{dataset}/catalog.parquet",
        report="results/catalogs/{dataset}/import.json",
    log:
        "results/logs/import/{dataset}.log",
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        dataset=dataset_params,
    script:
        "../scripts/import_dataset.py"


rule build_dataset_windows:
    input:
        "results/catalogs/{dataset}/catalog.parquet",
    output:
        "results/windows/{dataset}/{representation}.parquet",
    log:
        "results/logs/windows/{dataset}/{representation}.log",
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        spec=spec_params,
        simulation_mc=config["simulation"]["mc"],
        magnitude_bands=lambda wildcards: DATASETS[wildcards.dataset].get(
            "magnitude_bands"
        ),
    script:
        "../scripts/build_dataset_windows.py"


# The held-out period as a forecast test: Poisson and the ETAS fit of the training period (history: the
# auxiliary period), scored event by event with every earlier event as history (docs/methods/real-catalogs.md),
# and their CSEP pass rates (catalogs simulated per horizon given the history; docs/methods/forecast.md).
rule forecast_dataset:
    input:
        catalog="results/catalogs/{dataset}/catalog.parquet",
    output:
        scores="results/forecast/{dataset}/scores.json",
        fit="results/forecast/{dataset}/etas_fit.json",
    log:
        "results/logs/forecast/{dataset}.log",
    benchmark:
        "results/benchmarks/forecast/{dataset}.tsv"
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        aux_days=lambda wildcards: DATASETS[wildcards.dataset]["aux_days"],
        csep=lambda wildcards: DATASETS[wildcards.dataset]["csep"],
    script:
        "../scripts/forecast_dataset.py"


# A dataset's VAE setting as a forecast of the held-out period (the same protocol; z from the preceding window:
# docs/methods/forecast.md), with the CSEP pass rates of the catalogs it generates given the history: one small
# json per setting, which the pages put beside Poisson and the ETAS fit.
# A job of the group `model` on a cluster (profiles/slurm): it runs in seconds.
rule forecast_vae:
    input:
        catalog="results/catalogs/{dataset}/catalog.parquet",
        model="results/models/{dataset}/{vae}/model.pt",
    output:
        "results/forecast/{dataset}/vae/{vae}.json",
    log:
        "results/logs/forecast/{dataset}/{vae}.log",
    benchmark:
        "results/benchmarks/forecast/{dataset}/{vae}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        aux_days=lambda wildcards: DATASETS[wildcards.dataset]["aux_days"],
        csep=lambda wildcards: DATASETS[wildcards.dataset]["csep"],
    script:
        "../scripts/forecast_vae.py"


# A third generator beside the VAE: the ETAS fit of the training period simulated over the held-out period
# given every earlier event, continuations cut into windows as the held-out windows are, up to the VAE's
# synthetic set size (docs/methods/real-catalogs.md, The ETAS fit simulated); a fit that cannot be simulated
# (not fitted, supercritical) leaves an empty set and the reason, never a failed run.
rule simulate_dataset_etas:
    input:
        catalog="results/catalogs/{dataset}/catalog.parquet",
        windows="results/windows/{dataset}/{representation}.parquet",
        fit="results/forecast/{dataset}/etas_fit.json",
    output:
        catalog="results/etas_simulated/{dataset}/{representation}/catalog.parquet",
        info="results/etas_simulated/{dataset}/{representation}/simulation.json",
    log:
        "results/logs/etas_simulated/{dataset}/{representation}.log",
    benchmark:
        "results/benchmarks/etas_simulated/{dataset}/{representation}.tsv"
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        n_windows=config["sample"]["n_windows"],
        seed=lambda wildcards: catalog_seed(
            config["seed"], f"{wildcards.dataset}/etas_simulated", 0
        ),
    script:
        "../scripts/simulate_dataset_etas.py"


# The ETAS-simulated windows evaluated against the held-out period as a VAE's synthetic windows are (the same
# sets, statistics, classifier, MMD and verdict), for the pages and the summary.
rule evaluate_dataset_etas:
    input:
        windows="results/windows/{dataset}/{representation}.parquet",
        catalog="results/catalogs/{dataset}/catalog.parquet",
        synthetic="results/etas_simulated/{dataset}/{representation}/catalog.parquet",
        info="results/etas_simulated/{dataset}/{representation}/simulation.json",
        dataset="results/catalogs/{dataset}/import.json",
    output:
        metrics="results/etas_simulated/{dataset}/{representation}/metrics.csv",
        summary="results/etas_simulated/{dataset}/{representation}/metrics.json",
        figures=directory("results/etas_simulated/{dataset}/{representation}/figures"),
    log:
        "results/logs/evaluate/etas_simulated/{dataset}/{representation}.log",
    benchmark:
        "results/benchmarks/evaluate/etas_simulated/{dataset}/{representation}.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        permutations=config["evaluate"]["permutations"],
        cv_folds=config["evaluate"]["cv_folds"],
        seed=config["evaluate"]["seed"],
        max_windows=config["evaluate"]["max_windows"],
        mmd_windows=config["evaluate"]["mmd_windows"],
    script:
        "../scripts/evaluate_dataset_etas.py"


# Target `datasets`: the report pages of the datasets only (every VAE setting), without the ETAS grid's
# simulations; e.g. `snakemake datasets --cores 2 --configfile config/dataset_example.yaml`.
rule datasets:
    input:
        expand("results/reports/{dataset}/{vae}.html", dataset=DATASET_IDS, vae=VAES),
        expand("results/forecast/{dataset}/scores.json", dataset=DATASET_IDS),
        expand(
            "results/forecast/{dataset}/vae/{vae}.json", dataset=DATASET_IDS, vae=VAES
        ),
        expand(
            "results/etas_simulated/{dataset}/{representation}/metrics.json",
            dataset=DATASET_IDS,
            representation=REPRESENTATIONS,
        ),
