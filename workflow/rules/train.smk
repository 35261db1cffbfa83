rule train_vae:
    input:
        model_windows,
    output:
        model="results/models/{model_cfg}/{vae}/model.pt",
        history="results/models/{model_cfg}/{vae}/history.csv",
        curves=report(
            "results/models/{model_cfg}/{vae}/loss.png",
            caption="../report/loss.rst",
            category="Training",
            subcategory="{model_cfg}",
            labels={"config": "{model_cfg}", "vae": "{vae}"},
        ),
    log:
        "results/logs/train/{model_cfg}/{vae}.log",
    benchmark:
        "results/benchmarks/train/{model_cfg}/{vae}.tsv"
    # See simulate_catalog's priority.
    priority: 10
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        settings=vae_params,
        title="{model_cfg}\n{vae}",
    script:
        "../scripts/train_vae.py"
