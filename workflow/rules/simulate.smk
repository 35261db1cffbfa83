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


# Only with reference catalogs: a rule without outputs would be an error.
if REFERENCES:

    rule simulate_references:
        # The evaluation's reference catalogs of one config (evaluate.reference_replicates), in one job: many
        # small simulations would spend more on job start-up than on simulating. Seeded apart from the
        # training and held-out replicates (etasvae.config.reference_seed), never cut into training windows.
        output:
            expand("results/catalogs/{{cfg}}/ref{ref}.parquet", ref=REFERENCES),
        log:
            "results/logs/simulate/{cfg}/references.log",
        benchmark:
            "results/benchmarks/simulate/{cfg}/references.tsv"
        priority: 20
        conda:
            "../../envs/sim.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=60,
        params:
            etas=etas_params,
            simulation=simulation_params,
            seeds=reference_seeds,
        script:
            "../scripts/simulate_references.py"
