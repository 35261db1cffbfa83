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


# Target `datasets`: the report pages of the datasets only (every VAE setting), without the ETAS grid's
# simulations; e.g. `snakemake datasets --cores 2 --configfile config/dataset_example.yaml`.
rule datasets:
    input:
        expand("results/reports/{dataset}/{vae}.html", dataset=DATASET_IDS, vae=VAES),
        expand("results/forecast/{dataset}/scores.json", dataset=DATASET_IDS),
        expand(
            "results/forecast/{dataset}/vae/{vae}.json", dataset=DATASET_IDS, vae=VAES
        ),
