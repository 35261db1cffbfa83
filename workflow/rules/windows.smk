rule build_windows:
    input:
        config_catalogs,
    output:
        "results/windows/{cfg}/{representation}.parquet",
    log:
        "results/logs/windows/{cfg}/{representation}.log",
    benchmark:
        "results/benchmarks/windows/{cfg}/{representation}.tsv"
    # See simulate_catalog's priority.
    priority: 20
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        spec=spec_params,
        split=split_params,
        etas=etas_params,
        replicates=REPLICATES,
        duration_days=config["simulation"]["duration_days"],
    script:
        "../scripts/build_windows.py"


rule pool_windows:
    input:
        expand("results/windows/{cfg}/{{representation}}.parquet", cfg=CONFIG_IDS),
    output:
        "results/windows/pooled/{representation}.parquet",
    log:
        "results/logs/windows/pooled/{representation}.log",
    benchmark:
        "results/benchmarks/pool_windows/{representation}.tsv"
    # See simulate_catalog's priority.
    priority: 20
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        configs=CONFIG_IDS,
    script:
        "../scripts/pool_windows.py"
