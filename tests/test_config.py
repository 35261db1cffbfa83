"""Config expansion and the checks that stop a run before any job: key, value and reason in the message."""

import copy
import re
from pathlib import Path

import pytest
import yaml

from etasvae.config import (
    ConfigError,
    catalog_seed,
    check_config,
    check_finite,
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
