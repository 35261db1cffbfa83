import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

# The etasvae package is installed in the environment that runs Snakemake (README.md, The two commands).
from etasvae.config import (
    POOLED,
    ConfigError,
    catalog_seed,
    check_config,
    check_given,
    etas_configs,
    load_config_file,
    vae_settings,
    window_spec,
)
from etasvae.evaluate.reference import reference_replicate, reference_seed
from etasvae.realdata import DatasetError, check_datasets, comcat_query

# Snakemake has read the config files with a YAML reader that keeps the last of duplicate keys, reads `on:`
# as the key True and follows recursive aliases: each file is read again strictly (the message names the
# file, line and key). Then the top-level keys before any value is walked, finite numbers, types and ranges
# (names the key, list items by index, and the rule broken), defaults from the schema, and last the physics
# and the windows against the simulated data.
try:
    for path in dict.fromkeys(Path(f).resolve() for f in workflow.configfiles):
        load_config_file(path)
    check_given(config)
    validate(config, schema="../schemas/config.schema.yaml")
    for warning in check_config(config):
        print(f"Warning (configuration): {warning}", file=sys.stderr)
except ConfigError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None

ETAS = etas_configs(config)
VAES = vae_settings(config)
CONFIG_IDS = list(ETAS)
try:
    DATASETS = check_datasets(config, reserved={*CONFIG_IDS, POOLED})
except DatasetError as err:
    raise WorkflowError(f"Invalid configuration: {err}") from None
DATASET_IDS = list(DATASETS)
# Real datasets are trained and evaluated like ETAS configs; the pooled model pools ETAS configs only.
MODEL_CONFIGS = CONFIG_IDS + DATASET_IDS + ([POOLED] if config["vae"]["pooled"] else [])
REPLICATES = list(range(config["simulation"]["replicates"]))
N_HELDOUT = config["windows"]["heldout_replicates"]
# Reference catalogs (evaluation only) of each ETAS config: results/catalogs/{cfg}/ref{k}.parquet.
REFERENCES = list(range(config["evaluate"]["reference_replicates"]))
REPRESENTATIONS = sorted({s["representation"] for s in VAES.values()})


def _alternation(names):
    return "|".join(re.escape(n) for n in names)


wildcard_constraints:
    cfg=_alternation(CONFIG_IDS),
    dataset=_alternation(DATASET_IDS) if DATASET_IDS else r"(?!x)x",
    model_cfg=_alternation(MODEL_CONFIGS),
    vae=_alternation(VAES),
    rep=r"\d+",
    representation=_alternation(["event", "binned"]),


# ---- targets -------------------------------------------------------------------------------


def all_targets(wildcards):
    """Every model's report page and the summary: each stage's outputs are inputs of these."""
    models = [f"{c}/{v}" for c in MODEL_CONFIGS for v in VAES]
    return [
        *expand("results/reports/{m}.html", m=models),
        "results/reports/summary.html",
    ]


# ---- params: plain values, so that Snakemake's params trigger reruns exactly what changed ----


def etas_params(wildcards):
    return ETAS[wildcards.cfg]


def simulation_params(wildcards):
    sim = config["simulation"]
    return {
        "duration_days": sim["duration_days"],
        "burn_in_days": sim["burn_in_days"],
        "region_km": list(sim["region_km"]),
        "margin_km": sim["margin_km"],
        "max_events": sim["max_events"],
    }


def simulation_seed(wildcards):
    return catalog_seed(config["seed"], wildcards.cfg, int(wildcards.rep))


def reference_seeds(wildcards):
    return [reference_seed(config["seed"], wildcards.cfg, k) for k in REFERENCES]


def spec_params(wildcards):
    return window_spec(config, wildcards.representation)


def split_params(wildcards):
    held = REPLICATES[-N_HELDOUT:]
    return {
        "heldout_replicates": held,
        "validation_fraction": config["windows"]["validation_fraction"],
    }


def vae_params(wildcards):
    return VAES[wildcards.vae]


def model_etas(wildcards):
    """ETAS parameters of a model's config; for the pooled model, every config's."""
    if wildcards.model_cfg == POOLED:
        return ETAS
    if wildcards.model_cfg in DATASETS:
        return {wildcards.model_cfg: {}}
    return {wildcards.model_cfg: ETAS[wildcards.model_cfg]}


def dataset_params(wildcards):
    """A dataset's import settings: aux_days and csep are the forecast's alone, so changing them leaves the
    import be."""
    return {
        k: v
        for k, v in DATASETS[wildcards.dataset].items()
        if k not in ("aux_days", "csep")
    }


def dataset_source(wildcards):
    """A dataset's catalog file: the cached download (comcat) or the configured local file."""
    ds = DATASETS[wildcards.dataset]
    if ds["source"] == "comcat":
        return f"resources/comcat/{wildcards.dataset}.csv"
    return ds["path"]


def dataset_import_report(wildcards):
    """The import report of a dataset model (Mc, counts, periods), for its evaluation; none for ETAS."""
    if wildcards.model_cfg in DATASETS:
        return f"results/catalogs/{wildcards.model_cfg}/import.json"
    return []


# ---- input functions ------------------------------------------------------------------------


def config_catalogs(wildcards):
    return expand(
        "results/catalogs/{cfg}/rep{rep}.parquet", cfg=wildcards.cfg, rep=REPLICATES
    )


def model_catalog_keys(wildcards):
    """(config id, replicate) of every catalog a model's windows were cut from (a dataset: replicate 0)."""
    if wildcards.model_cfg in DATASETS:
        return [[wildcards.model_cfg, 0]]
    cfgs = CONFIG_IDS if wildcards.model_cfg == POOLED else [wildcards.model_cfg]
    return [[c, r] for c in cfgs for r in REPLICATES]


def model_catalogs(wildcards):
    if wildcards.model_cfg in DATASETS:
        return [f"results/catalogs/{wildcards.model_cfg}/catalog.parquet"]
    return [
        f"results/catalogs/{c}/rep{r}.parquet" for c, r in model_catalog_keys(wildcards)
    ]


def model_reference_keys(wildcards):
    """(config id, replicate) of a model's reference catalogs (evaluation only); none for a dataset."""
    if wildcards.model_cfg in DATASETS:
        return []
    cfgs = CONFIG_IDS if wildcards.model_cfg == POOLED else [wildcards.model_cfg]
    return [[c, reference_replicate(k)] for c in cfgs for k in REFERENCES]


def model_reference_catalogs(wildcards):
    return [
        f"results/catalogs/{c}/ref{-r - 1}.parquet"
        for c, r in model_reference_keys(wildcards)
    ]


def model_windows(wildcards):
    rep = VAES[wildcards.vae]["representation"]
    if wildcards.model_cfg == POOLED:
        return f"results/windows/{POOLED}/{rep}.parquet"
    return f"results/windows/{wildcards.model_cfg}/{rep}.parquet"


def model_files(wildcards):
    return f"results/models/{wildcards.model_cfg}/{wildcards.vae}/model.pt"


def heldout_catalog(wildcards):
    """The first held-out replicate of a config: the whole catalog the inversion is checked on."""
    return f"results/catalogs/{wildcards.cfg}/rep{REPLICATES[-N_HELDOUT]}.parquet"


def model_forecast(wildcards):
    """The forecast scores of a dataset model's held-out period (Poisson, ETAS fit); none for ETAS configs."""
    if wildcards.model_cfg in DATASETS:
        return f"results/forecast/{wildcards.model_cfg}/scores.json"
    return []


def model_vae_forecasts(wildcards):
    """Every VAE setting's forecast of a dataset model's held-out period (the page's table shows them all);
    none for ETAS configs."""
    if wildcards.model_cfg in DATASETS:
        return [f"results/forecast/{wildcards.model_cfg}/vae/{v}.json" for v in VAES]
    return []


def model_etas_simulated(wildcards):
    """The evaluation of a dataset's ETAS fit simulated over its held-out period, in the windows of the model's
    representation (the page's column beside the VAE); none for ETAS configs."""
    if wildcards.model_cfg in DATASETS:
        rep = VAES[wildcards.vae]["representation"]
        return f"results/etas_simulated/{wildcards.model_cfg}/{rep}/metrics.json"
    return []


def model_inversion(wildcards):
    """The ETAS fits of a model's windows (synthetic, held-out, training); none for the pooled model."""
    if wildcards.model_cfg == POOLED:
        return []
    return f"results/inversion/{wildcards.model_cfg}/{wildcards.vae}/estimates.json"


def model_reference_fits(wildcards):
    """The joint ETAS fits of a config's (or dataset's) held-out and training windows of the model's representation."""
    rep = VAES[wildcards.vae]["representation"]
    return f"results/inversion/{wildcards.model_cfg}/windows_{rep}.json"


def model_catalog_fit(wildcards):
    """The whole held-out catalog's space-time fit of an ETAS config; none for a dataset (no truth)."""
    if wildcards.model_cfg not in ETAS:
        return []
    return f"results/inversion/{wildcards.model_cfg}/heldout_catalog.json"


def model_truth(wildcards):
    """The ETAS parameters of a config, the truth next to the fits; {} for a dataset."""
    return ETAS.get(wildcards.model_cfg, {})
