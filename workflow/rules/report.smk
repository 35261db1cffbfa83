rule report_page:
    input:
        metrics="results/evaluation/{model_cfg}/{vae}/metrics.csv",
        summary="results/evaluation/{model_cfg}/{vae}/metrics.json",
        figures="results/evaluation/{model_cfg}/{vae}/figures",
        curves="results/models/{model_cfg}/{vae}/loss.png",
        latent_metrics="results/latent/{model_cfg}/{vae}/metrics.json",
        pca="results/latent/{model_cfg}/{vae}/pca.png",
        tsne="results/latent/{model_cfg}/{vae}/tsne.png",
        interpolation="results/latent/{model_cfg}/{vae}/interpolation.png",
        clipping="results/synthetic/{model_cfg}/{vae}/clipping.json",
        inversion=model_inversion,
        forecast=model_forecast,
        vae_forecasts=model_vae_forecasts,
        etas_simulated=model_etas_simulated,
    output:
        report(
            "results/reports/{model_cfg}/{vae}.html",
            caption="../report/page.rst",
            category="Reports",
            subcategory="{model_cfg}",
            labels={"config": "{model_cfg}", "vae": "{vae}"},
        ),
    log:
        "results/logs/report/{model_cfg}/{vae}.log",
    benchmark:
        "results/benchmarks/report/{model_cfg}/{vae}.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        config_id="{model_cfg}",
        vae_id="{vae}",
        settings=vae_params,
    script:
        "../scripts/report_page.py"


rule summary:
    input:
        summaries=expand(
            "results/evaluation/{m}/metrics.json",
            m=[f"{c}/{v}" for c in MODEL_CONFIGS for v in VAES],
        ),
        inversions=expand(
            "results/inversion/{m}/estimates.json",
            m=[f"{c}/{v}" for c in CONFIG_IDS + DATASET_IDS for v in VAES],
        ),
        forecasts=expand("results/forecast/{dataset}/scores.json", dataset=DATASET_IDS),
        vae_forecasts=expand(
            "results/forecast/{dataset}/vae/{vae}.json", dataset=DATASET_IDS, vae=VAES
        ),
        etas_simulated=expand(
            "results/etas_simulated/{dataset}/{representation}/metrics.json",
            dataset=DATASET_IDS,
            representation=REPRESENTATIONS,
        ),
    output:
        html=report(
            "results/reports/summary.html",
            caption="../report/summary.rst",
            category="Summary",
        ),
        table=report(
            "results/reports/summary.csv",
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        "results/logs/report/summary.log",
    benchmark:
        "results/benchmarks/summary.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        etas=ETAS,
        vaes=VAES,
    script:
        "../scripts/summary.py"
