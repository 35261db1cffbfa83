rule apply_model:
    # One job per model for the uses of the trained network that need only the model and its windows (one
    # process start-up and one model load instead of three): encode every window (embedding, latent metrics,
    # health), draw the synthetic catalog from the sampling prior, and map the latent space (PCA, t-SNE,
    # interpolation). Each part is seeded on its own.
    input:
        model=model_files,
        windows=model_windows,
    output:
        embedding="results/latent/{model_cfg}/{vae}/embedding.parquet",
        metrics="results/latent/{model_cfg}/{vae}/metrics.json",
        health="results/latent/{model_cfg}/{vae}/health.json",
        catalog="results/synthetic/{model_cfg}/{vae}/catalog.parquet",
        clipping="results/synthetic/{model_cfg}/{vae}/clipping.json",
        latent="results/synthetic/{model_cfg}/{vae}/latent.parquet",
        pca=report(
            "results/latent/{model_cfg}/{vae}/pca.png",
            caption="../report/latent.rst",
            category="Latent space",
            subcategory="{model_cfg}",
            labels={"config": "{model_cfg}", "vae": "{vae}", "map": "PCA"},
        ),
        tsne=report(
            "results/latent/{model_cfg}/{vae}/tsne.png",
            caption="../report/latent.rst",
            category="Latent space",
            subcategory="{model_cfg}",
            labels={"config": "{model_cfg}", "vae": "{vae}", "map": "t-SNE"},
        ),
        interpolation=report(
            "results/latent/{model_cfg}/{vae}/interpolation.png",
            caption="../report/interpolation.rst",
            category="Latent space",
            subcategory="{model_cfg}",
            labels={"config": "{model_cfg}", "vae": "{vae}", "map": "interpolation"},
        ),
    log:
        "results/logs/apply/{model_cfg}/{vae}.log",
    benchmark:
        "results/benchmarks/apply/{model_cfg}/{vae}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        etas=model_etas,
        knn_neighbors=config["latent"]["knn_neighbors"],
        latent_seed=config["evaluate"]["seed"],
        n_windows=config["sample"]["n_windows"],
        mode=config["sample"]["mode"],
        sample_seed=config["sample"]["seed"],
        perplexity=config["latent"]["tsne_perplexity"],
        title="{model_cfg}\n{vae}",
    script:
        "../scripts/apply_model.py"
