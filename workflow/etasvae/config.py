"""The experiment configuration: parameter grids -> stable, readable ids, with physical checks.

The JSON schema (workflow/schemas/config.schema.yaml) checks types and ranges and fills defaults; this
module checks what a schema cannot (branching ratio, parameter combinations) and expands the grids.
Every error names the config key, the value and why, and is raised before any job starts.

Ids (docs/design.md §2):
- an ETAS config id lists every model parameter in a fixed order, e.g.
  ``mu5_K0.2_alpha1.5_c0.01_p1.1_D0.5_q1.5_gamma1_b1``; a named config is its name. Adding a value to a
  grid list creates new ids and leaves every existing one as it was.
- a VAE setting id lists every grid key the same way, e.g.
  ``event_autoregressive_z8_h256x128_beta1_lr0.001_adam_channels_e60_bs64_s0``.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import json
import math
import os
import zlib
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import yaml

from .params import ETASParams, ParameterError, from_sed
from .simulate import expected_count

POOLED = "pooled"
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
# Keys where +inf is a value with a meaning (no Omori taper); every other number must be finite.
INFINITE_ALLOWED = ("tau", "log10_tau")

OGATA_KEYS = ("mu", "K", "alpha", "c", "p", "D", "q", "gamma", "b")
OGATA_OPTIONAL = ("tau",)
SED_KEYS = ("log10_mu", "log10_k0", "a", "log10_c", "omega", "log10_d", "gamma", "rho", "b")
SED_OPTIONAL = ("log10_tau",)

VAE_KEYS = ("representation", "decoder", "latent_dim", "hidden", "beta", "lr", "optimizer", "loss", "epochs", "batch_size", "seed")
SHARED_TRAINING_KEYS = ("kl_warmup_epochs", "patience", "grad_clip", "cuda_batch_scale")


@functools.cache
def schema_defaults() -> dict[str, Any]:
    """Every default of the JSON schema, nested as in config.yaml: the one source of default values."""

    def walk(node: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, sub in (node.get("properties") or {}).items():
            if "properties" in sub:
                out[key] = walk(sub)
            elif "default" in sub:
                out[key] = sub["default"]
        return out

    return walk(yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8")))


# A VAE grid key missing from the config takes the schema's default; the shared training options too.
VAE_DEFAULTS: dict[str, Any] = {k: schema_defaults()["vae"]["grid"][k] for k in VAE_KEYS}
TRAINING_DEFAULTS: dict[str, Any] = {k: schema_defaults()["vae"][k] for k in SHARED_TRAINING_KEYS}
LOSSES_BY_REPRESENTATION = {"event": ("mse", "gaussian_nll", "channels"), "binned": ("poisson", "bce", "mse")}
# The autoregressive decoders generate events one after another with the per-channel likelihoods.
LOSSES_BY_DECODER = {"mlp": ("mse", "gaussian_nll", "channels", "poisson", "bce"), "autoregressive": ("channels",),
                     "gru_lognormal": ("channels",)}


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key, the value and why."""


def format_value(value: Any) -> str:
    """Shortest faithful text for an id: 0.01 -> '0.01', 1.0 -> '1', [256, 128] -> '256x128'."""
    if isinstance(value, (list, tuple)):
        return "x".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        text = format(float(value), ".10g")
        return text.replace("+", "")
    return str(value)


@functools.lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The configuration schema (workflow/schemas/config.schema.yaml) as a dict."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


def schema_default(key: str) -> Any:
    """The default of a dotted config key in the schema, e.g. ``schema_default("sample.mode")``: the one place
    a default is stated; library functions that need it read it from here."""
    node = load_schema()
    for part in key.split("."):
        node = node["properties"][part]
    return node["default"]


def _key_path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def check_finite(config: Any, path: tuple = ()) -> None:
    """Refuse NaN and infinite numbers (YAML ``.nan``, ``.inf``) anywhere in the config, naming the key.

    Only ``+inf`` for ``tau`` / ``log10_tau`` (no Omori taper) is allowed. Run before the schema, whose
    ranges let ``.inf`` through (``exclusiveMinimum: 0``) and report ``.nan`` confusingly.
    """
    if isinstance(config, dict):
        for key, value in config.items():
            check_finite(value, (*path, key))
    elif isinstance(config, (list, tuple)):
        for i, value in enumerate(config):
            check_finite(value, (*path, i))
    elif isinstance(config, float) and not math.isfinite(config):
        name = next((p for p in reversed(path) if isinstance(p, str)), "")
        if name in INFINITE_ALLOWED and config > 0:
            return
        raise ConfigError(f"{_key_path(path)} = {config}: must be a finite number")


def _is_int(value: Any) -> bool:
    """An integer, not a boolean (``True`` is an ``int`` in Python) and not a float such as ``4.0``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


# "integer" as a Python int: jsonschema's own "integer" takes 4.0 (an integral float), which then fails as
# range(4.0) or a layer size deep in a job; booleans are refused by jsonschema already.
_TYPE_CHECKER = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", lambda _, value: _is_int(value))
_VALIDATOR = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPE_CHECKER)


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def _unknown_key_error(parent: tuple, key: Any, allowed: list[str]) -> ConfigError:
    """The message for a key the schema does not know: the key first, a close match, then the keys allowed."""
    name = key if isinstance(key, str) else repr(key)
    where = _key_path(parent)
    close = difflib.get_close_matches(name, allowed, n=1) if isinstance(key, str) else []
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"{_key_path((*parent, name))}: not a key of {where}{hint}; "
                       f"the keys of {where} are {', '.join(allowed)}")


def check_top_level_keys(config: Any) -> None:
    """Refuse a configuration that is not a mapping, or that has a key the schema does not know, without
    looking at any value: a misspelt section is named first, and a huge value under it is never walked."""
    if not isinstance(config, dict):
        raise ConfigError(f"the configuration must be a mapping of keys (seed, simulation, etas, ...), "
                          f"got {type(config).__name__}")
    allowed = list(load_schema()["properties"])
    for key in config:
        if key not in allowed:
            raise _unknown_key_error((), key, allowed)


def _bounds(s: dict[str, Any]) -> str:
    lo, hi = s.get("minimum"), s.get("maximum")
    xlo, xhi = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}"
    parts = [f"≥ {lo}" if lo is not None else None, f"> {xlo}" if xlo is not None else None,
             f"≤ {hi}" if hi is not None else None, f"< {xhi}" if xhi is not None else None]
    return "".join(f" {p}" for p in parts if p)


def _expected(s: dict[str, Any], plural: bool = False) -> str:
    """What a schema node accepts, in words: 'a number or a non-empty list of numbers'."""
    if "$ref" in s:
        s = {**load_schema()["definitions"][s["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in s.items() if k != "$ref"}}
    for combinator in ("oneOf", "anyOf"):
        if combinator in s:
            return " or ".join(_expected(alt, plural) for alt in s[combinator])
    if "enum" in s:
        values = ", ".join(repr(v) for v in s["enum"])
        return f"items from {values}" if plural else f"one of {values}"
    kinds = s.get("type", [])
    if isinstance(kinds, list):
        return " or ".join(_expected({**s, "type": k}, plural) for k in kinds) or "any value"
    words = {"integer": ("an integer", "integers"), "number": ("a number", "numbers"), "string": ("a string", "strings"),
             "boolean": ("true or false", "true or false values"), "object": ("a mapping", "mappings"),
             "null": ("null", "nulls"), "array": ("a list", "lists")}
    text = words[kinds][plural]
    if kinds in ("integer", "number"):
        text += _bounds(s)
    if kinds == "array":
        items = _expected(s["items"], plural=True) if isinstance(s.get("items"), dict) else "values"
        if s.get("minItems") and s.get("minItems") == s.get("maxItems"):
            return f"{'lists' if plural else 'a list'} of exactly {s['minItems']} {items}"
        if s.get("minItems", 0) >= 1:
            text = "non-empty lists" if plural else "a non-empty list"
        text += f" of {items}"
    return text


# Rules whose jsonschema message states one bound or type only: the message adds the whole expectation.
_RANGE_RULES = ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minItems", "maxItems")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a mapping", type(None): "null"}
    return next((n for t, n in names.items() if isinstance(value, t)), type(value).__name__)


def check_schema(config: dict[str, Any]) -> None:
    """Check ``config`` against the schema (without filling defaults); ConfigError names the key (list items
    by index), the value, and the rule broken: for a key the schema does not know, the key first (and no
    dump of its section); for a value that fits none of the alternatives, what is expected."""
    check_top_level_keys(config)
    validator = _VALIDATOR(load_schema())
    # best_match descends into oneOf alternatives: for a list, the failing item rather than "not valid
    # under any of the given schemas".
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        if allowed and unknown:
            raise _unknown_key_error(path, unknown[0], allowed)
    if error.validator in ("oneOf", "anyOf"):
        message = f"expected {_expected(error.schema)}, got {_kind(error.instance)}"
    else:
        message = error.message
        full = repr(error.instance)
        if message.startswith(full):
            message = _short_repr(error.instance) + message[len(full):]
        if error.validator in _RANGE_RULES:
            message += f"; expected {_expected(error.schema)}"
    raise ConfigError(f"{_key_path(path)} = {_short_repr(error.instance)}: {message} (schema rule: {error.validator})")


def check_given(config: Any) -> None:
    """The checks of the configuration as given, before the schema fills defaults: top-level keys (before any
    value is walked, so a huge or self-containing value under a misspelt key is never visited), finite
    numbers, then types and ranges (check_schema)."""
    check_top_level_keys(config)
    check_finite(config)
    check_schema(config)


# ---- reading a configuration file ------------------------------------------------------------------------

# Values a configuration file may hold once its aliases are expanded. Every check walks every value; a file
# of a few aliases can name billions of them (each alias counts its whole anchored value again), and the
# largest configurations (long grids, polygons of many vertices) hold a few thousand.
MAX_CONFIG_VALUES = 100_000
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_YAML_TYPES = {"tag:yaml.org,2002:bool": "the boolean", "tag:yaml.org,2002:int": "the integer",
               "tag:yaml.org,2002:float": "the number", "tag:yaml.org,2002:null": "null",
               "tag:yaml.org,2002:timestamp": "the date"}


def _check_yaml_nodes(root: yaml.Node, where: str) -> None:
    """Refuse duplicate keys, keys that YAML does not read as strings (``on:`` is the boolean true in YAML
    1.1), recursive aliases and alias expansions beyond MAX_CONFIG_VALUES; each message gives the line and
    the key. Walks the composed node graph, in which an alias is the anchored node itself: each node's
    expanded size is counted once, so the walk is linear in the file however many values the aliases name."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def line(node: yaml.Node) -> str:
        return f"{where}, line {node.start_mark.line + 1}"

    def walk(node: yaml.Node, path: tuple) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            raise ConfigError(f"{line(node)}: {_key_path(path)} is a recursive alias (an alias inside the value "
                              "it names), which has no finite value; write the value out")
        open_nodes.add(id(node))
        size = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:   # `<<: *anchor` merges a mapping; its keys may be overridden
                    size += walk(value_node, path)
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR_TAG:
                    text = key_node.value if isinstance(key_node, yaml.ScalarNode) else "(a list or mapping)"
                    read_as = "a list or mapping"
                    if isinstance(key_node, yaml.ScalarNode) and key_node.tag in _YAML_TYPES:
                        value = yaml.safe_load(key_node.value)
                        read_as = _YAML_TYPES[key_node.tag] + ("" if value is None else f" {value!r}")
                    raise ConfigError(f"{line(key_node)}: the key `{text}` under {_key_path(path)} is read by YAML "
                                      f"as {read_as}, not as a name; write it in quotes (\"{text}\") if the name is meant")
                name = key_node.value
                key_line = key_node.start_mark.line + 1
                if name in seen:
                    raise ConfigError(f"{line(key_node)}: {_key_path((*path, name))} appears twice (first at line "
                                      f"{seen[name]}); YAML would keep only the last one; list the key once")
                seen[name] = key_line
                size += walk(value_node, (*path, name))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                size += walk(item, (*path, i))
        open_nodes.discard(id(node))
        if size > MAX_CONFIG_VALUES:
            raise ConfigError(f"{line(node)}: {_key_path(path)} holds more than {MAX_CONFIG_VALUES:,} values once "
                              "its aliases are expanded; a configuration needs far fewer (an alias bomb?)")
        sizes[id(node)] = size
        return size

    walk(root, ())


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"the key {key!r} appears twice in one object; JSON readers keep only the last one")
        out[key] = value
    return out


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (or JSON) configuration file strictly: as yaml.safe_load does, but refusing duplicate
    keys, non-string keys, recursive aliases and alias bombs with the file, the line and the key
    (ConfigError). Snakemake reads the configfile itself and keeps the last of duplicate keys: the workflow
    reads every config file again with this before it checks the values."""
    where = os.fspath(path)
    text = Path(path).read_text(encoding="utf-8")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}
        _check_yaml_nodes(node, where)
        data = loader.construct_document(node)
    except yaml.YAMLError as err:
        # A JSON file that YAML does not read (tabs, say) is still a configuration to Snakemake.
        try:
            data = json.loads(text, object_pairs_hook=_json_pairs)
        except ConfigError as json_err:
            raise ConfigError(f"{where}: {json_err}") from None
        except ValueError:
            raise ConfigError(f"{where}: not valid YAML: {err}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: the configuration must be a mapping of keys (seed, simulation, etas, ...)")
    return data


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _grid_points(grid: dict[str, Any], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    values = [_as_list(grid[k]) for k in keys]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def region_area_km2(region: list[float]) -> float:
    xmin, xmax, ymin, ymax = region
    return (xmax - xmin) * (ymax - ymin)


def _check_region(sim: dict[str, Any]) -> None:
    xmin, xmax, ymin, ymax = sim["region_km"]
    if not (xmax > xmin and ymax > ymin):
        raise ConfigError(
            f"simulation.region_km = {sim['region_km']}: must be [xmin, xmax, ymin, ymax] with xmax > xmin and ymax > ymin"
        )
    if sim.get("mmax") is not None and sim["mmax"] <= sim["mc"]:
        raise ConfigError(f"simulation.mmax = {sim['mmax']}: must exceed simulation.mc = {sim['mc']} (or be null)")


def _etas_point_params(point: dict[str, Any], parameterisation: str, sim: dict[str, Any]) -> ETASParams:
    mc, mmax = sim["mc"], sim.get("mmax")
    if parameterisation == "ogata":
        return ETASParams(**{k: float(v) for k, v in point.items()}, mc=mc, mmax=mmax)
    sed = dict(point)
    sed.setdefault("log10_tau", None)
    if sed["log10_tau"] is not None and math.isinf(sed["log10_tau"]):
        sed["log10_tau"] = None
    return from_sed(**sed, mc=mc, mmax=mmax, area_km2=region_area_km2(sim["region_km"]))


def _where(source: str, cfg_id: str) -> str:
    return f"{source} (config {cfg_id})"


def _param_error(err: ParameterError, source: str, cfg_id: str, point: dict[str, Any], parameterisation: str) -> ConfigError:
    key = err.key
    if key in point:
        location = f"{source}.{key} = {format_value(point[key])}"
    elif key in ("n", "branching_ratio") and parameterisation == "ogata":
        location = f"{source}.K = {format_value(point['K'])} with alpha = {format_value(point['alpha'])}, b = {format_value(point['b'])}"
    elif key in ("n", "branching_ratio"):
        location = f"{source}.log10_k0 = {format_value(point['log10_k0'])} with a = {format_value(point['a'])}"
    else:
        location = f"{source} (converted parameter {key} = {format_value(err.value)})"
    if key in ("n", "branching_ratio"):
        return ConfigError(f"{location} at config {cfg_id}: branching ratio n = {err.value:.4g} >= 1, {err.reason} (simulation.max_events)")
    return ConfigError(f"{location} at config {cfg_id}: {err}")


def etas_configs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Expand the ETAS grid and named configs into {config id: ETASParams.to_dict()}, checking each point.

    Raises ConfigError naming the key for a missing parameter, an empty grid, a duplicate id, or a point
    that breaks ETASParams.check (supercritical n >= 1 without simulation.max_events, p <= 1 without taper,
    b <= 0, alpha >= beta untruncated, ...).
    """
    etas, sim = config["etas"], config["simulation"]
    _check_region(sim)
    parameterisation = etas.get("parameterisation", "ogata")
    keys, optional = (OGATA_KEYS, OGATA_OPTIONAL) if parameterisation == "ogata" else (SED_KEYS, SED_OPTIONAL)
    allowed = set(keys) | set(optional)
    grid = etas.get("grid") or {}
    named = etas.get("configs") or []
    if not grid and not named:
        raise ConfigError("etas.grid is empty and etas.configs lists nothing: the experiment has no ETAS config")

    points: list[tuple[str, str, dict[str, Any]]] = []  # (source key, id, point)
    if grid:
        wrong = sorted(set(grid) - allowed)
        if wrong:
            raise ConfigError(
                f"etas.grid.{wrong[0]}: not a parameter of the '{parameterisation}' parameterisation "
                f"(etas.parameterisation); expected {list(keys)} and optionally {list(optional)}"
            )
        missing = [k for k in keys if k not in grid]
        if missing:
            raise ConfigError(
                f"etas.grid.{missing[0]} is missing: the '{parameterisation}' parameterisation needs {list(keys)}"
            )
        used = keys + tuple(k for k in optional if k in grid)
        for point in _grid_points(grid, used):
            cfg_id = "_".join(f"{k}{format_value(v)}" for k, v in point.items())
            points.append(("etas.grid", cfg_id, point))
    for i, entry in enumerate(named):
        source = f"etas.configs[{i}]"
        point = {k: v for k, v in entry.items() if k != "name"}
        wrong = sorted(set(point) - allowed)
        if wrong:
            raise ConfigError(f"{source}.{wrong[0]}: not a parameter of the '{parameterisation}' parameterisation")
        missing = [k for k in keys if k not in point]
        if missing:
            raise ConfigError(f"{source}.{missing[0]} is missing: the '{parameterisation}' parameterisation needs {list(keys)}")
        points.append((source, entry["name"], point))

    out: dict[str, dict[str, Any]] = {}
    for source, cfg_id, point in points:
        if cfg_id == POOLED:
            raise ConfigError(f"{source}.name = {cfg_id!r}: the name '{POOLED}' is reserved for the pooled model")
        if cfg_id in out:
            raise ConfigError(f"{source}: config id {cfg_id!r} appears twice")
        try:
            params = _etas_point_params(point, parameterisation, sim)
            params.check(max_events=sim.get("max_events"))
        except ParameterError as err:
            raise _param_error(err, source, cfg_id, point, parameterisation) from None
        values = params.to_dict()
        values["branching_ratio"] = params.branching_ratio()
        out[cfg_id] = values
    return out


def vae_settings(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Expand the VAE grid into {setting id: settings}, adding the shared training options."""
    vae = config["vae"]
    grid = _vae_grid(vae)
    _check_vae_grid_values(grid)
    _check_no_repeated_grid_values(grid)
    shared = {k: vae.get(k, TRAINING_DEFAULTS[k]) for k in SHARED_TRAINING_KEYS}
    _check_warmup(grid, shared["kl_warmup_epochs"])
    out: dict[str, dict[str, Any]] = {}
    for point in _grid_points(grid, VAE_KEYS):
        _check_vae_loss(point)
        out[_vae_id(point)] = {**point, **shared}
    return out


def _vae_grid(vae: dict[str, Any]) -> dict[str, Any]:
    """The VAE grid over its defaults, with ``hidden`` as a checked list of layer-size lists."""
    grid = {**VAE_DEFAULTS, **(vae.get("grid") or {})}
    hidden = grid["hidden"]
    # `hidden` is one list of layer sizes, or a list of such lists.
    grid["hidden"] = [hidden] if all(_is_int(h) for h in hidden) else hidden
    for h in grid["hidden"]:
        if not isinstance(h, list) or not h or not all(_is_int(v) and v > 0 for v in h):
            raise ConfigError(f"vae.grid.hidden = {hidden}: each entry must be a non-empty list of positive layer sizes")
    return grid


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _check_vae_grid_values(grid: dict[str, Any]) -> None:
    """Raise ConfigError for a grid value outside its allowed range (booleans are no numbers here)."""
    seed_max = load_schema()["definitions"]["torch_seed"]["maximum"]
    checks = {
        "latent_dim": (lambda v: _is_int(v) and 1 <= v <= 1024, "an integer in [1, 1024]"),
        "beta": (lambda v: _is_number(v) and v >= 0, ">= 0"),
        "lr": (lambda v: _is_number(v) and v > 0, "> 0"),
        "epochs": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        "batch_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
        # torch.manual_seed takes 0 to 2^64 - 1
        "seed": (lambda v: _is_int(v) and 0 <= v <= seed_max, f"an integer from 0 to {seed_max}"),
    }
    for key, (ok, allowed) in checks.items():
        for v in _as_list(grid[key]):
            if not ok(v):
                raise ConfigError(f"vae.grid.{key} = {format_value(v)}: must be {allowed}")


def _check_warmup(grid: dict[str, Any], warmup: int) -> None:
    """Raise ConfigError when a model would stop before its KL weight reaches beta: the weight rises linearly
    over vae.kl_warmup_epochs epochs, so fewer epochs train a model whose setting id says a beta it never had
    (and early stopping, which starts after the warm-up, never runs)."""
    short = [e for e in _as_list(grid["epochs"]) if e < warmup]
    if short:
        e = min(short)
        raise ConfigError(
            f"vae.grid.epochs = {e} is below vae.kl_warmup_epochs = {warmup}: the KL weight would end at "
            f"{e}/{warmup} of beta, not beta; train for at least {warmup} epochs or lower vae.kl_warmup_epochs"
        )


def _check_no_repeated_grid_values(grid: dict[str, Any]) -> None:
    """Raise ConfigError when two values of a grid key would give the same setting id part."""
    for key in VAE_KEYS:
        seen: dict[str, Any] = {}
        for v in _as_list(grid[key]):
            text = format_value(v)
            if text in seen:
                raise ConfigError(
                    f"vae.grid.{key} lists {seen[text]!r} and {v!r}: the same value twice (both give the setting id "
                    f"part {text!r}); list each value once"
                )
            seen[text] = v


def _check_vae_loss(point: dict[str, Any]) -> None:
    """Raise ConfigError when a grid point's loss does not suit its representation or decoder."""
    allowed_losses = LOSSES_BY_REPRESENTATION[point["representation"]]
    if point["loss"] not in allowed_losses:
        raise ConfigError(
            f"vae.grid.loss = {point['loss']}: not available for representation {point['representation']}; "
            f"choose from {list(allowed_losses)}"
        )
    if point["loss"] not in LOSSES_BY_DECODER[point["decoder"]]:
        raise ConfigError(
            f"vae.grid.decoder = {point['decoder']} with vae.grid.loss = {point['loss']}: the {point['decoder']} "
            "decoder needs loss channels (per-channel likelihoods of event windows)"
        )


def _vae_id(point: dict[str, Any]) -> str:
    """The setting id of one grid point."""
    return "_".join(
        [
            point["representation"],
            point["decoder"],
            f"z{point['latent_dim']}",
            f"h{format_value(point['hidden'])}",
            f"beta{format_value(point['beta'])}",
            f"lr{format_value(point['lr'])}",
            point["optimizer"],
            point["loss"],
            f"e{point['epochs']}",
            f"bs{point['batch_size']}",
            f"s{point['seed']}",
        ]
    )


def window_spec(config: dict[str, Any], representation: str) -> dict[str, Any]:
    """The feature spec of one representation: the plain dict the windows and sample stages share."""
    windows, sim = config["windows"], config["simulation"]
    spec = {"representation": representation, "mc": sim["mc"], **windows[representation]}
    if representation == "event":
        spec["region_km"] = [float(v) for v in sim["region_km"]]  # where a sequence decoder places events
        spec["mmax"] = sim["mmax"]                                  # and the largest magnitude it may draw
    if representation == "binned":
        bands = spec["magnitude_bands"]
        if bands[0] < sim["mc"] or any(b2 <= b1 for b1, b2 in zip(bands, bands[1:])):
            raise ConfigError(
                f"windows.binned.magnitude_bands = {bands}: must be increasing and start at or above simulation.mc = {sim['mc']}"
            )
        if spec["stride_days"] > spec["duration_days"] * 10:
            raise ConfigError("windows.binned.stride_days: must not exceed 10 x windows.binned.duration_days")
    return spec


def _shortest_block(config: dict[str, Any]) -> tuple[str, float]:
    """(name, fraction of a catalog) of the shortest role block: a window must fit in each of train,
    validation (the final ``validation_fraction`` of a training replicate) and held-out (a whole replicate)."""
    vf = config["windows"]["validation_fraction"]
    return ("validation", vf) if vf <= 0.5 else ("train", 1.0 - vf)


def check_window_lengths(config: dict[str, Any], configs: dict[str, dict[str, Any]],
                         representations: set[str]) -> list[str]:
    """Windows against the data: ConfigError when a binned window is longer than a role's block of the
    simulated duration; warnings (returned) when a config's expected event count in that block is below
    the event window length, so that the role would probably get no window (build_windows then fails)."""
    sim = config["simulation"]
    block, fraction = _shortest_block(config)
    days = fraction * sim["duration_days"]
    why = (f"{block} block ({fraction:g} x simulation.duration_days = {days:g} days; "
           f"windows.validation_fraction = {config['windows']['validation_fraction']:g})")
    warnings = []
    if "binned" in representations:
        duration = config["windows"]["binned"]["duration_days"]
        if duration > days + 1e-9:
            raise ConfigError(f"windows.binned.duration_days = {format_value(duration)}: longer than the {why}, "
                              "so that role gets no window")
    if "event" in representations:
        length = config["windows"]["event"]["length"]
        for cfg_id, values in configs.items():
            if values["branching_ratio"] >= 1:
                continue  # supercritical: the count is bounded by simulation.max_events only
            params = ETASParams.from_dict({k: v for k, v in values.items() if k != "branching_ratio"})
            # Coarse 5 % cells: a warning needs the count to a few per cent only, and this runs at every DAG build.
            n = fraction * expected_count(params, sim["duration_days"], sim["burn_in_days"], grid_growth=0.05)
            if n < length:
                warnings.append(
                    f"windows.event.length = {length}: config {cfg_id} expects about {n:.0f} events in the {why}, "
                    "fewer than one window; that role may get no window"
                )
    return warnings


def check_config(config: dict[str, Any]) -> list[str]:
    """Run every check that needs more than the schema; raise ConfigError on the first problem.

    Returns warnings: what is allowed but probably wrong (event windows longer than the expected data).
    """
    check_finite(config)
    configs = etas_configs(config)
    settings = vae_settings(config)
    representations = {s["representation"] for s in settings.values()}
    for rep in representations:
        window_spec(config, rep)
    windows, sim = config["windows"], config["simulation"]
    if windows["heldout_replicates"] >= sim["replicates"]:
        raise ConfigError(
            f"windows.heldout_replicates = {windows['heldout_replicates']}: must be below simulation.replicates = "
            f"{sim['replicates']} so that some replicates remain for training"
        )
    return check_window_lengths(config, configs, representations)


def catalog_seed(master_seed: int, cfg_id: str, replicate: int) -> int:
    """Seed of one catalog, from the master seed, the config id and the replicate (stable across runs)."""
    seq = np.random.SeedSequence([int(master_seed), zlib.crc32(cfg_id.encode()), int(replicate)])
    return int(seq.generate_state(1, dtype=np.uint32)[0])
