rule latent_maps:
    input:
        model=model_files,
        embedding="results/latent/{model_cfg}/{vae}/embedding.parquet",
        synthetic_latent="results/synthetic/{model_cfg}/{vae}/latent.parquet",
    output:
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
        "results/logs/latent_maps/{model_cfg}/{vae}.log",
    benchmark:
        "results/benchmarks/latent_maps/{model_cfg}/{vae}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        perplexity=config["latent"]["tsne_perplexity"],
        seed=config["evaluate"]["seed"],
        title="{model_cfg}\n{vae}",
    script:
        "../scripts/latent_maps.py"
