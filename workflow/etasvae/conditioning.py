"""What the conditional surrogate is conditioned on, and where (docs/methods/surrogate.md). No torch here: the
workflow reads this module when it builds the DAG.

The conditioning vector c of a parameter set is its value of every *varied* ETAS parameter (one that takes
more than one value over the configs), each standardised over the *trained* configs' range [lo, hi]:
c_k = 2 (v_k - lo_k) / (hi_k - lo_k) - 1, so the trained range maps to [-1, 1]. Parameters are in the
configs' own units (the ``ogata`` names of ``ETASParams``: mu, K, alpha, c, p, D, q, gamma, b, tau).

Held-out configs (``surrogate.holdout``) are never trained on: ``auto`` holds out every other *interior*
value of each varied parameter (sorted values v0 < v1 < ... < vk: v1, v3, ... below vk), so a held-out
config always lies inside the trained range; a config is held out when any of its varied values is.
A mapping ``{parameter: [values]}`` names them instead (``{}``: none).

Off-grid points (``surrogate.points``) give a name and a value of every varied parameter; the other
parameters are those of the grid. A value outside the trained range is refused (ConfigError naming the
parameter and the range) unless ``surrogate.allow_extrapolation`` is true, in which case the point is
flagged (its ``flags``), and the flag is shown on the report.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import ConfigError, format_value

DERIVED = ("branching_ratio", "mc", "mmax")
"""Keys of a config's parameter dict that are not model parameters of their own."""


class SurrogateUnavailable(ConfigError):
    """The experiment cannot have a surrogate (no varied parameter, no sequence VAE setting): an error only
    when the surrogate is asked for."""


def varied_parameters(etas: dict[str, dict[str, Any]]) -> list[str]:
    """Parameters that take more than one value over the configs, in the configs' key order."""
    first = next(iter(etas.values()))
    return [k for k in first if k not in DERIVED and len({repr(cfg.get(k)) for cfg in etas.values()}) > 1]


def _auto_holdout(etas: dict[str, dict[str, Any]], varied: list[str]) -> dict[str, list[float]]:
    out = {}
    for k in varied:
        values = sorted({float(cfg[k]) for cfg in etas.values()})
        out[k] = values[1:-1:2]
    return out


def _explicit_holdout(holdout: dict[str, list[float]], etas, varied, allow: bool) -> dict[str, list[float]]:
    for k, values in holdout.items():
        if k not in varied:
            raise ConfigError(f"surrogate.holdout.{k}: not a varied parameter of the grid (varied: {varied})")
        grid = sorted({float(cfg[k]) for cfg in etas.values()})
        for v in values:
            if not any(np.isclose(float(v), g) for g in grid):
                raise ConfigError(f"surrogate.holdout.{k} = {format_value(v)}: not a grid value of {k} ({grid})")
            if not allow and (np.isclose(float(v), grid[0]) or np.isclose(float(v), grid[-1])):
                raise ConfigError(
                    f"surrogate.holdout.{k} = {format_value(v)}: an end of the grid ({grid[0]:g}..{grid[-1]:g}); "
                    "the surrogate would extrapolate there (set surrogate.allow_extrapolation: true to allow it)")
    return {k: [float(v) for v in vs] for k, vs in holdout.items()}


def surrogate_plan(config: dict[str, Any], etas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The surrogate's conditioning plan from the validated config and ``config.etas_configs``: varied
    parameters, their trained ranges, trained and held-out config ids, the off-grid points and, for every
    parameter set the surrogate generates (configs and points), its values and flags.

    Raises ConfigError naming the key: fewer than two configs or no varied parameter, a hold-out that leaves
    fewer than two values of a parameter to train on, a point that misses a varied parameter, sets a
    parameter the grid does not vary, reuses a config id, or lies outside the trained range (without
    ``allow_extrapolation``).
    """
    s = config.get("surrogate", {})
    allow = bool(s.get("allow_extrapolation", False))
    varied = varied_parameters(etas) if len(etas) > 1 else []
    if not varied:
        raise SurrogateUnavailable("surrogate: the ETAS configs vary no parameter; the surrogate needs at least two "
                          "configs that differ (etas.grid or etas.configs)")
    holdout = s.get("holdout", "auto")
    held_values = _auto_holdout(etas, varied) if holdout == "auto" else _explicit_holdout(holdout, etas, varied, allow)
    heldout = [cid for cid, cfg in etas.items()
               if any(np.isclose(float(cfg[k]), v) for k, vs in held_values.items() for v in vs)]
    trained = [cid for cid in etas if cid not in heldout]
    ranges = {}
    for k in varied:
        values = sorted({float(etas[cid][k]) for cid in trained})
        if len(values) < 2:
            raise ConfigError(f"surrogate.holdout: leaves {k} at the single trained value {values} "
                              f"(the surrogate needs two trained values of each varied parameter)")
        ranges[k] = [values[0], values[-1]]
    sets = {cid: {"values": {k: float(etas[cid][k]) for k in varied}, "kind": "trained" if cid in trained
                  else "heldout", "flags": []} for cid in etas}
    base = etas[trained[0]]
    for i, point in enumerate(s.get("points", []) or []):
        where = f"surrogate.points[{i}]"
        name = point["name"]
        if name in sets:
            raise ConfigError(f"{where}.name = {name!r}: already a config id or the name of another point")
        values = {}
        for k, v in point.items():
            if k == "name":
                continue
            if k not in varied:
                if k in base and k not in DERIVED and base[k] is not None and np.isclose(float(v), float(base[k])):
                    continue
                raise ConfigError(f"{where}.{k} = {format_value(v)}: {k} is not varied on the grid (the surrogate "
                                  f"is conditioned on {varied} only)")
            values[k] = float(v)
        missing = [k for k in varied if k not in values]
        if missing:
            raise ConfigError(f"{where}.{missing[0]} is missing: a point needs every varied parameter {varied}")
        flags = []
        for k in varied:
            lo, hi = ranges[k]
            if not lo - 1e-12 <= values[k] <= hi + 1e-12:
                message = f"{k} = {format_value(values[k])} outside the trained range [{lo:g}, {hi:g}]"
                if not allow:
                    raise ConfigError(f"{where}.{k} = {format_value(values[k])}: outside the trained range of {k}, "
                                      f"[{lo:g}, {hi:g}] (set surrogate.allow_extrapolation: true to allow it)")
                flags.append(message)
        sets[name] = {"values": values, "kind": "point", "flags": flags}
    return {"varied": varied, "ranges": ranges, "trained": trained, "heldout": heldout, "sets": sets,
            "allow_extrapolation": allow}


def standardise(values: dict[str, float], varied: list[str], ranges: dict[str, list[float]], *,
                allow_extrapolation: bool = False) -> np.ndarray:
    """The conditioning vector of one parameter set (float32, one entry per varied parameter).

    Raises ValueError naming the parameter and its trained range when a value lies outside it, unless
    ``allow_extrapolation``."""
    out = np.empty(len(varied), dtype=np.float32)
    for i, k in enumerate(varied):
        if k not in values:
            raise ValueError(f"surrogate conditioning: no value of {k} (the surrogate is conditioned on {varied})")
        lo, hi = ranges[k]
        v = float(values[k])
        if not allow_extrapolation and not lo - 1e-12 <= v <= hi + 1e-12:
            raise ValueError(f"surrogate conditioning: {k} = {v:g} is outside the trained range of {k}, [{lo:g}, {hi:g}]")
        out[i] = 2.0 * (v - lo) / (hi - lo) - 1.0
    return out


def surrogate_setting(vaes: dict[str, dict[str, Any]], decoder: str) -> str:
    """The VAE setting id whose settings the surrogate takes: the first event-window sequence VAE
    (loss ``channels``) with ``decoder``; SurrogateUnavailable when there is none."""
    for vae_id, s in vaes.items():
        if s["representation"] == "event" and s["loss"] == "channels" and s["decoder"] == decoder:
            return vae_id
    raise SurrogateUnavailable(f"surrogate.decoder = {decoder}: no VAE setting of vae.grid has representation event, "
                               f"loss channels and decoder {decoder} (the surrogate takes that setting's values)")


def require_surrogate(error: str | None) -> list:
    """Nothing (an input function's empty list) when the experiment can have a surrogate; otherwise raise
    SurrogateUnavailable with ``error``, so that asking for the surrogate stops before any job starts."""
    if error:
        raise SurrogateUnavailable(error)
    return []


def set_parameters(plan: dict[str, Any], etas: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    """Every ETAS parameter of a parameter set of ``plan``: a grid config's own, or an off-grid point's varied
    values on the other parameters of the first trained config (the values ``surrogate_plan`` checked a
    point's other keys against)."""
    if name in etas:
        return dict(etas[name])
    base = {k: v for k, v in etas[plan["trained"][0]].items() if k != "branching_ratio"}   # not the point's
    return {**base, **plan["sets"][name]["values"]}
