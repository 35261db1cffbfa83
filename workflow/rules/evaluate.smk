rule evaluate_model:
    input:
        windows=model_windows,
        synthetic="results/synthetic/{model_cfg}/{vae}/catalog.parquet",
        health="results/latent/{model_cfg}/{vae}/health.json",
    output:
        metrics="results/evaluation/{model_cfg}/{vae}/metrics.csv",
        summary="results/evaluation/{model_cfg}/{vae}/metrics.json",
        figures=directory("results/evaluation/{model_cfg}/{vae}/figures"),
    log:
        "results/logs/evaluate/{model_cfg}/{vae}.log",
    benchmark:
        "results/benchmarks/evaluate/{model_cfg}/{vae}.tsv"
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
        config_id="{model_cfg}",
        vae_id="{vae}",
        settings=vae_params,
    script:
        "../scripts/evaluate_model.py"
