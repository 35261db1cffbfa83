rule sample_synthetic:
    input:
        model=model_files,
        windows=model_windows,
    output:
        catalog="results/synthetic/{model_cfg}/{vae}/catalog.parquet",
        clipping="results/synthetic/{model_cfg}/{vae}/clipping.json",
        latent="results/synthetic/{model_cfg}/{vae}/latent.parquet",
    log:
        "results/logs/sample/{model_cfg}/{vae}.log",
    benchmark:
        "results/benchmarks/sample/{model_cfg}/{vae}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        n_windows=config["sample"]["n_windows"],
        mode=config["sample"]["mode"],
        seed=config["sample"]["seed"],
    script:
        "../scripts/sample_synthetic.py"
