rule invert_catalog:
    input:
        heldout_catalog,
    output:
        "results/inversion/{cfg}/heldout_catalog.json",
    log:
        "results/logs/invert/{cfg}/heldout_catalog.log",
    benchmark:
        "results/benchmarks/invert/{cfg}/heldout_catalog.tsv"
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        cut_mass=config["invert"]["cut_mass"],
        starts=config["invert"]["starts"],
        aux_days=config["invert"]["aux_days"],
        max_events=config["invert"]["max_catalog_events"],
    script:
        "../scripts/invert_catalog.py"


rule invert_windows:
    input:
        windows="results/windows/{model_cfg}/{representation}.parquet",
        catalogs=model_catalogs,
    output:
        "results/inversion/{model_cfg}/windows_{representation}.json",
    log:
        "results/logs/invert/{model_cfg}/windows_{representation}.log",
    benchmark:
        "results/benchmarks/invert/{model_cfg}/windows_{representation}.tsv"
    wildcard_constraints:
        model_cfg=_alternation(CONFIG_IDS + DATASET_IDS),
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        config_id="{model_cfg}",
        catalog_keys=model_catalog_keys,
        max_windows=config["invert"]["max_windows"],
        cut_mass=config["invert"]["cut_mass"],
        starts=config["invert"]["starts"],
    script:
        "../scripts/invert_windows.py"


rule invert_model:
    input:
        synthetic="results/synthetic/{model_cfg}/{vae}/catalog.parquet",
        reference=model_reference_fits,
        catalog_fit=model_catalog_fit,
    output:
        table="results/inversion/{model_cfg}/{vae}/estimates.csv",
        summary="results/inversion/{model_cfg}/{vae}/estimates.json",
    log:
        "results/logs/invert/{model_cfg}/{vae}.log",
    benchmark:
        "results/benchmarks/invert/{model_cfg}/{vae}.tsv"
    wildcard_constraints:
        model_cfg=_alternation(CONFIG_IDS + DATASET_IDS),
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        etas=model_truth,
        cut_mass=config["invert"]["cut_mass"],
        starts=config["invert"]["starts"],
    script:
        "../scripts/invert.py"
