"""Config expansion and the checks that stop a run before any job: key, value and reason in the message."""

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from etasvae.config import (
    ConfigError,
    catalog_seed,
    check_config,
    check_finite,
    check_given,
    check_schema,
    etas_configs,
    format_value,
    schema_default,
    vae_settings,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_default_grid_spans_the_advertised_branching_ratios(config):
    configs = etas_configs(config)
    assert len(configs) == 3
    ratios = sorted(c["branching_ratio"] for c in configs.values())
    assert 0.25 < ratios[0] < 0.35 and 0.8 < ratios[-1] < 0.9


def test_ids_are_readable_and_stable_when_a_value_is_added(config):
    before = etas_configs(config)
    assert "mu5_K0.1_alpha1.5_c0.01_p1.1_D0.5_q1.5_gamma1_b1" in before
    config["etas"]["grid"]["K"].append(0.15)
    after = etas_configs(config)
    assert set(before) < set(after) and len(after) == 4
    for cfg_id, params in before.items():
        assert after[cfg_id] == params


def test_catalog_seeds_are_pinned():
    # The seed of a catalog is part of the reproducibility contract (same config and seed -> same bytes in
    # every run and every Python process): a change of its derivation (e.g. Python's randomised hash()
    # instead of crc32) changes every catalog, so the values are pinned.
    assert catalog_seed(1, "mu5_K0.1_alpha1.5_c0.01_p1.1_D0.5_q1.5_gamma1_b1", 0) == 2663385261
    assert catalog_seed(1, "mu5_K0.2_alpha1.5_c0.01_p1.1_D0.5_q1.5_gamma1_b1", 2) == 2440645467


def test_seeds_differ_between_configs_and_replicates():
    seeds = {catalog_seed(5, cfg, rep) for cfg in ("a", "b") for rep in range(3)}
    assert len(seeds) == 6


def test_format_value():
    assert format_value(0.01) == "0.01" and format_value(1.0) == "1" and format_value([256, 128]) == "256x128"
    assert format_value(1e-6) == "1e-06"


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("K", [0.5], r"etas\.grid\.K = 0\.5 with alpha = 1\.5, b = 1 at config .*branching ratio"),
        ("p", [1.0], r"etas\.grid\.p = 1 at config"),
        ("b", [0.0], r"etas\.grid\.b = 0 at config"),
        ("alpha", [2.5], r"etas\.grid\.alpha = 2\.5 at config"),
    ],
)
def test_invalid_points_name_key_value_and_reason(config, key, value, message):
    config["etas"]["grid"][key] = value
    config["simulation"]["mmax"] = None
    with pytest.raises(ConfigError, match=message):
        check_config(config)


def test_supercritical_message_gives_the_formula(config):
    config["etas"]["grid"]["K"] = [0.5]
    with pytest.raises(ConfigError) as err:
        check_config(config)
    text = str(err.value)
    assert "n = K*beta" in text  # the formula in force (truncated GR here), with its values
    assert "K = 0.5" in text and "alpha = 1.5" in text
    assert "simulation.max_events" in text


def test_supercritical_allowed_with_an_event_cap(config):
    config["etas"]["grid"]["K"] = [0.5]
    config["simulation"]["max_events"] = 100000
    check_config(config)


def test_empty_grid_is_refused(config):
    config["etas"]["grid"] = {}
    config["etas"]["configs"] = []
    with pytest.raises(ConfigError, match="etas.grid is empty"):
        check_config(config)


def test_missing_parameter_is_named(config):
    del config["etas"]["grid"]["q"]
    with pytest.raises(ConfigError, match=r"etas\.grid\.q is missing"):
        check_config(config)


def test_named_configs_and_reserved_name(config):
    point = {k: v[0] for k, v in config["etas"]["grid"].items()}
    config["etas"]["grid"] = {}
    config["etas"]["configs"] = [{"name": "quiet", **point}]
    assert list(etas_configs(config)) == ["quiet"]
    config["etas"]["configs"] = [{"name": "pooled", **point}]
    with pytest.raises(ConfigError, match="reserved"):
        check_config(config)


def test_sed_parameterisation_is_converted(config):
    config["etas"]["parameterisation"] = "sed"
    config["etas"]["grid"] = {
        "log10_mu": [-3.3], "log10_k0": [-3.0], "a": [1.8], "log10_c": [-2.5], "omega": [0.1],
        "log10_d": [-0.3], "gamma": [1.0], "rho": [0.5], "b": [1.0],
    }
    (cfg_id, params), = etas_configs(config).items()
    assert cfg_id.startswith("log10_mu-3.3_log10_k0-3_a1.8")
    assert params["p"] == pytest.approx(1.1) and params["q"] == pytest.approx(1.5)
    assert params["alpha"] == pytest.approx(1.8 - 0.5 * 1.0)
    assert params["mu"] == pytest.approx(10**-3.3 * 100 * 100)


def test_heldout_must_leave_training_replicates(config):
    config["windows"]["heldout_replicates"] = config["simulation"]["replicates"]
    with pytest.raises(ConfigError, match="windows.heldout_replicates"):
        check_config(config)


def test_vae_grid_ids_and_loss_combinations(config):
    settings = vae_settings(config)
    assert set(settings) == {
        "event_mlp_z8_h256x128_beta1_lr0.001_adam_channels_e60_bs64_s0",
        "event_autoregressive_z8_h256x128_beta1_lr0.001_adam_channels_e60_bs64_s0",
    }
    assert {s["decoder"] for s in settings.values()} == {"mlp", "autoregressive"}
    bad = copy.deepcopy(config)
    bad["vae"]["grid"]["loss"] = ["mse", "channels"]
    with pytest.raises(ConfigError, match="vae.grid.decoder = autoregressive with vae.grid.loss = mse"):
        vae_settings(bad)
    bad = copy.deepcopy(config)
    bad["vae"]["grid"]["loss"] = ["poisson"]
    with pytest.raises(ConfigError, match="vae.grid.loss = poisson: not available for representation event"):
        vae_settings(bad)
    bad = copy.deepcopy(config)
    bad["vae"]["grid"]["hidden"] = [[256, 0]]
    with pytest.raises(ConfigError, match="vae.grid.hidden"):
        vae_settings(bad)


# ---- windows against the simulated data -----------------------------------------------------------


def test_binned_window_longer_than_the_simulation_is_refused(config):
    config["vae"]["grid"].update({"representation": ["binned"], "decoder": ["mlp"], "loss": ["poisson"]})
    config["simulation"]["duration_days"] = 200
    config["windows"]["binned"]["duration_days"] = 500
    with pytest.raises(ConfigError, match=r"windows\.binned\.duration_days = 500: longer than the validation block "
                                          r"\(0\.2 x simulation\.duration_days = 40 days"):
        check_config(config)
    # 40 days fit the validation block exactly (0.2 x 200): allowed.
    config["windows"]["binned"]["duration_days"] = 40
    config["windows"]["binned"]["stride_days"] = 20
    assert check_config(config) == []


def test_event_window_far_beyond_the_expected_count_warns(config):
    assert check_config(config) == []  # the default: thousands of events per block, 64-event windows
    config["windows"]["event"]["length"] = 4000
    warnings = check_config(config)
    # The quietest default config (n = 0.29) expects about 0.2 x 730 x 5 / (1 - 0.29) ~ 1000 events in the
    # validation block, below 4000; each of the three configs is named.
    assert len(warnings) == 3 and all(w.startswith("windows.event.length = 4000: config ") for w in warnings)
    assert "validation block" in warnings[0]


# ---- finite numbers, schema messages, duplicate VAE values ---------------------------------------


@pytest.mark.parametrize("path, value", [
    (("simulation", "duration_days"), float("inf")),
    (("simulation", "margin_km"), float("nan")),
    (("windows", "binned", "duration_days"), float("inf")),
    (("etas", "grid", "mu"), [5.0, float("inf")]),
    (("vae", "grid", "lr"), [float("nan")]),
    (("evaluate", "seed"), float("-inf")),
])
def test_non_finite_numbers_are_refused_naming_the_key(config, path, value):
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    key = ".".join(path) + ("[1]" if path[-1] == "mu" else "[0]" if path[-1] == "lr" else "")
    with pytest.raises(ConfigError, match=re.escape(key) + r" = -?(inf|nan): must be a finite number"):
        check_config(config)


def test_infinite_taper_means_no_taper_and_is_allowed(config):
    config["etas"]["grid"]["tau"] = [100.0, float("inf")]
    assert len(etas_configs(config)) == 6
    check_finite(config)


def test_schema_error_on_a_list_item_names_the_item_and_the_rule(config):
    check_schema(config)
    config["vae"]["grid"]["loss"] = ["mse", "nll"]
    with pytest.raises(ConfigError) as err:
        check_schema(config)
    text = str(err.value)
    assert text.startswith("vae.grid.loss[1] = 'nll': 'nll' is not one of") and "schema rule: enum" in text
    config["vae"]["grid"]["loss"] = ["mse"]
    config["etas"]["grid"]["K"] = [0.1, "0.2"]
    with pytest.raises(ConfigError, match=r"etas\.grid\.K\[1\] = '0\.2': '0\.2' is not of type 'number'"):
        check_schema(config)


@pytest.mark.parametrize("key, values", [("beta", [1.0, 0.1, 1]), ("hidden", [[256, 128], [256, 128]]),
                                         ("loss", ["mse", "mse"])])
def test_duplicate_vae_grid_values_are_refused(config, key, values):
    config["vae"]["grid"][key] = values
    with pytest.raises(ConfigError, match=rf"vae\.grid\.{key} lists .* the same value twice"):
        vae_settings(config)


# ---- one sampling-mode default ------------------------------------------------------------------


def test_sampling_default_is_stated_in_the_schema_and_the_docs_agree():
    default = schema_default("sample.mode")
    assert default in ("mean", "draw")
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert schema["properties"]["sample"]["properties"]["mode"]["default"] == default
    reference = (ROOT / "docs" / "configuration.md").read_text()
    row = next(line for line in reference.splitlines() if line.startswith("| `sample.mode`"))
    assert row.split("|")[3].strip() == f"`{default}`", row
    other = {"mean": "draw", "draw": "mean"}[default]
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        text = page.read_text()
        assert f"`sample.mode: {other}` (default)" not in text and f"`sample.mode` default `{other}`" not in text


# ---- seeds within what their consumers take ---------------------------------------------------------------

TORCH_SEED_MAX = 2**64 - 1      # torch.manual_seed: vae.grid.seed, sample.seed, surrogate.seed
SKLEARN_SEED_MAX = 2**32 - 1    # scikit-learn / openTSNE random_state: evaluate.seed


def test_the_seed_bounds_are_those_of_the_libraries():
    # The schema's maxima are these libraries' limits: if a library widened or narrowed its range, the
    # schema would refuse working seeds or pass failing ones, so the limits are checked against the libraries.
    import torch
    from sklearn.model_selection import KFold

    torch.manual_seed(TORCH_SEED_MAX)
    torch.Generator().manual_seed(TORCH_SEED_MAX)
    with pytest.raises((ValueError, RuntimeError, OverflowError)):
        torch.manual_seed(TORCH_SEED_MAX + 1)
    KFold(3, shuffle=True, random_state=SKLEARN_SEED_MAX).split(list(range(6))).__next__()
    with pytest.raises(ValueError):
        KFold(3, shuffle=True, random_state=SKLEARN_SEED_MAX + 1).split(list(range(6))).__next__()


@pytest.mark.parametrize("path, value, key, maximum", [
    (("vae", "grid", "seed"), TORCH_SEED_MAX + 1, "vae.grid.seed", TORCH_SEED_MAX),
    (("vae", "grid", "seed"), [0, TORCH_SEED_MAX + 1], "vae.grid.seed[1]", TORCH_SEED_MAX),
    (("sample", "seed"), TORCH_SEED_MAX + 1, "sample.seed", TORCH_SEED_MAX),
    (("surrogate", "seed"), TORCH_SEED_MAX + 1, "surrogate.seed", TORCH_SEED_MAX),
    (("evaluate", "seed"), SKLEARN_SEED_MAX + 1, "evaluate.seed", SKLEARN_SEED_MAX),
])
def test_seeds_beyond_their_consumers_are_refused_naming_key_and_range(config, path, value, key, maximum):
    node = config
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    with pytest.raises(ConfigError) as err:
        check_given(config)
    text = str(err.value)
    assert text.startswith(f"{key} = {maximum + 1}: ") and f"expected an integer from 0 to {maximum}" in text, text
    # the largest seed the consumer takes passes
    node[path[-1]] = [0, maximum] if isinstance(value, list) else maximum
    check_given(config)


def test_the_top_level_seed_takes_any_size_and_gives_32_bit_catalog_seeds(config):
    # The master seed only enters numpy seed sequences (catalog_seed, reference_seed), which take any
    # non-negative integer and give 32-bit seeds: no maximum, and nothing downstream sees the big number.
    config["seed"] = 2**70
    check_given(config)
    seed = catalog_seed(config["seed"], "a", 0)
    assert 0 <= seed <= SKLEARN_SEED_MAX
    np.random.default_rng(seed)


# ---- booleans (and integral floats) are no integers ----------------------------------------------------


@pytest.mark.parametrize("path, value, key, shown", [
    (("vae", "grid", "hidden"), [[True]], "vae.grid.hidden[0][0]", "True"),
    (("vae", "grid", "hidden"), [[32, False]], "vae.grid.hidden[0][1]", "False"),
    (("vae", "grid", "latent_dim"), [True], "vae.grid.latent_dim[0]", "True"),
    (("vae", "grid", "beta"), [True], "vae.grid.beta[0]", "True"),
    (("simulation", "replicates"), True, "simulation.replicates", "True"),
    (("windows", "event", "length"), True, "windows.event.length", "True"),
    (("simulation", "replicates"), 4.0, "simulation.replicates", "4.0"),   # range(4.0) would fail in a job
])
def test_booleans_where_numbers_are_expected_are_refused(config, path, value, key, shown):
    node = config
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)} = {shown}: {shown} is not of type '(integer|number)'; expected "):
        check_given(config)


def test_the_grid_expansion_refuses_booleans_without_the_schema(config):
    # vae_settings is also called on its own (by the rules after the schema, and by scripts and tests):
    # its own checks take bool for no int either.
    config["vae"]["grid"]["hidden"] = [[True]]
    with pytest.raises(ConfigError, match=r"vae\.grid\.hidden = \[\[True\]\]: each entry must be a non-empty list"):
        vae_settings(config)
    config["vae"]["grid"]["hidden"] = [[32]]
    config["vae"]["grid"]["latent_dim"] = [True]
    with pytest.raises(ConfigError, match=r"vae\.grid\.latent_dim = true: must be an integer"):
        vae_settings(config)


# ---- epochs against the KL warm-up ---------------------------------------------------------------------


def test_epochs_below_the_kl_warmup_are_refused_naming_both_keys(config):
    config["vae"]["kl_warmup_epochs"] = 10
    config["vae"]["grid"]["epochs"] = [60, 3]
    with pytest.raises(ConfigError) as err:
        check_config(config)
    assert str(err.value) == ("vae.grid.epochs = 3 is below vae.kl_warmup_epochs = 10: the KL weight would end "
                              "at 3/10 of beta, not beta; train for at least 10 epochs or lower vae.kl_warmup_epochs")
    config["vae"]["grid"]["epochs"] = [10]   # the warm-up ends at the last epoch: beta is reached
    check_config(config)
    config["vae"]["grid"]["epochs"] = [1]
    config["vae"]["kl_warmup_epochs"] = 0    # no warm-up: any number of epochs
    check_config(config)


def test_the_warmup_default_applies_when_the_key_is_absent(config):
    del config["vae"]["kl_warmup_epochs"]
    config["vae"]["grid"]["epochs"] = [schema_default("vae.kl_warmup_epochs") - 1]
    with pytest.raises(ConfigError, match=r"vae\.grid\.epochs = \d+ is below vae\.kl_warmup_epochs"):
        vae_settings(config)


# ---- messages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, value, message", [
    (("etas", "grid", "K"), "0.1,0.2",
     "etas.grid.K = '0.1,0.2': expected a number or a non-empty list of numbers, got a string (schema rule: oneOf)"),
    (("vae", "grid", "hidden"), "256,128",
     "vae.grid.hidden = '256,128': expected a non-empty list of integers ≥ 1 or a non-empty list of non-empty "
     "lists of integers ≥ 1, got a string (schema rule: oneOf)"),
    (("vae", "grid", "decoder"), 3,
     "vae.grid.decoder = 3: expected one of 'mlp', 'autoregressive', 'gru_lognormal' or a non-empty list of "
     "items from 'mlp', 'autoregressive', 'gru_lognormal', got an integer (schema rule: oneOf)"),
])
def test_a_value_of_the_wrong_form_is_told_what_is_expected(config, path, value, message):
    node = config
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises(ConfigError) as err:
        check_given(config)
    assert str(err.value) == message


def test_an_unknown_top_level_key_is_named_first_without_a_dump(config):
    config["seeds"] = 1
    with pytest.raises(ConfigError) as err:
        check_given(config)
    text = str(err.value)
    assert text.startswith("seeds: not a key of (top level) (did you mean 'seed'?); the keys of (top level) are seed, ")
    assert "replicates" not in text and "{" not in text   # no dump of the configuration


def test_an_unknown_nested_key_is_named_first_without_a_dump(config):
    config["vae"]["grid"]["epoch"] = [10]
    with pytest.raises(ConfigError) as err:
        check_given(config)
    text = str(err.value)
    assert text.startswith("vae.grid.epoch: not a key of vae.grid (did you mean 'epochs'?)"), text
    assert "{" not in text


def test_an_unknown_top_level_key_is_refused_before_its_value_is_walked(config):
    # A value that no walk can finish (it contains itself): a check that walked it before refusing the key
    # would fail with RecursionError instead of naming the key.
    looped = []
    looped.append(looped)
    config["lol"] = looped
    with pytest.raises(ConfigError, match=r"^lol: not a key of \(top level\)"):
        check_given(config)


def test_a_large_value_is_not_dumped_into_the_message(config):
    config["simulation"] = list(range(1000))
    with pytest.raises(ConfigError) as err:
        check_given(config)
    assert len(str(err.value)) < 400 and str(err.value).startswith("simulation = [0, 1, 2,")
