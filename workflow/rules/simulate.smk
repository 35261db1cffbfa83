rule simulate_catalog:
    output:
        "results/catalogs/{cfg}/rep{rep}.parquet",
    log:
        "results/logs/simulate/{cfg}/rep{rep}.log",
    benchmark:
        "results/benchmarks/simulate/{cfg}/rep{rep}.tsv"
    # Scheduling: simulation and windows first, then training (the longest jobs), so that the
    # inversions of held-out data fill the gaps instead of delaying training.
    priority: 20
    conda:
        "../../envs/sim.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        etas=etas_params,
        simulation=simulation_params,
        seed=simulation_seed,
    script:
        "../scripts/simulate_catalog.py"
