rule invert_model:
    input:
        windows=model_windows,
        synthetic="results/synthetic/{model_cfg}/{vae}/catalog.parquet",
        heldout=heldout_catalogs,
    output:
        table="results/inversion/{model_cfg}/{vae}/estimates.csv",
        summary="results/inversion/{model_cfg}/{vae}/estimates.json",
    log:
        "results/logs/invert/{model_cfg}/{vae}.log",
    benchmark:
        "results/benchmarks/invert/{model_cfg}/{vae}.tsv"
    wildcard_constraints:
        model_cfg=_alternation(CONFIG_IDS),
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        etas=model_etas_one,
        cut_mass=config["invert"]["cut_mass"],
        starts=config["invert"]["starts"],
        aux_days=config["invert"]["aux_days"],
        seed=config["invert"]["seed"],
    script:
        "../scripts/invert.py"
