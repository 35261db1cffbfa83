"""Config expansion and the checks that stop a run before any job: key, value and reason in the message."""

import copy
from pathlib import Path

import pytest
import yaml

from etasvae.config import ConfigError, catalog_seed, check_config, etas_configs, format_value, vae_settings

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
