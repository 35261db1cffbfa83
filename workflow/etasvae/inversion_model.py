"""The ETAS inversion's parameters: names, the optimiser's coordinates and their bounds, the data it takes
(Sequence) and the result it gives (ETASFit). See etasvae.inversion for the model and docs/methods/forecast.md.

Coordinates (theta): log mu, log A, alpha, log c, then log(p - 1) for the pure Omori law or p itself with the
taper (any p > 0 is normalisable then), log tau when tau is free, and for the space-time model log D,
log(q - 1), gamma. A is the amplitude of the unnormalised Omori law A e^(-t/tau) (t + c)^-p, so K = A Z with
Z = int_0^inf e^(-t/tau) (t + c)^-p dt (c^(1-p)/(p-1) without taper; etasvae.params.omori_normaliser): with p
near 1, K and p trade off along a ridge that A removes (the `etas` package fits its k0 for the same reason).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .params import omori_normaliser

MODELS = ("temporal", "space-time")
TEMPORAL_PARAMS = ("mu", "K", "alpha", "c", "p")
SPATIAL_PARAMS = ("D", "q", "gamma")
LN10 = math.log(10.0)
# Bounds of the optimised (transformed) parameters: they keep the optimiser in finite arithmetic, and an
# estimate at one of them is reported as not usable (ETASFit.usable).
_BOUNDS = {
    "mu": (-20.0, 20.0),  # log
    "K": (-40.0, 10.0),  # log A, A = K / Z
    "alpha": (-2.0, 8.0),
    "c": (math.log(1e-7), math.log(100.0)),  # log
    "p": (math.log(1e-3), math.log(5.0)),  # log(p - 1), pure Omori law
    "tau": (math.log(1e-2), math.log(1e5)),  # log, days
    "D": (math.log(1e-6), math.log(1e6)),  # log
    "q": (math.log(1e-2), math.log(20.0)),  # log(q - 1)
    "gamma": (-2.0, 8.0),
}
# p itself with the taper: above 0 any Omori law with a taper is normalisable; 0.2 keeps the decay a decay.
_TAPERED_P_BOUNDS = (0.2, 5.0)
DEFAULT_START = {"mu": None, "K": 0.2, "alpha": 1.5, "c": 0.01, "p": 1.2, "tau": 100.0, "D": 1.0, "q": 1.5,
                 "gamma": 1.0}


class InversionError(ValueError):
    """The catalog or the fitting options cannot give an estimate (the message says why)."""


def param_names(model: str, tau: str | float | None = None) -> tuple[str, ...]:
    """The free parameters of ``model``; ``tau`` "free" adds the taper time (a number fixes it: not free)."""
    if model not in MODELS:
        raise InversionError(f"model = {model!r}: must be one of {', '.join(MODELS)}")
    temporal = TEMPORAL_PARAMS + (("tau",) if tau == "free" else ())
    return temporal + (SPATIAL_PARAMS if model == "space-time" else ())


def bounds(name: str, tapered: bool) -> tuple[float, float]:
    """The optimiser's bounds of coordinate ``name``."""
    return _TAPERED_P_BOUNDS if (name == "p" and tapered) else _BOUNDS[name]


def _tapered(names, tau) -> bool:
    return "tau" in names or tau is not None


def _natural(theta, names: tuple[str, ...], tau: float | None = None) -> dict[str, float]:
    """Natural parameters at theta (K from A through the Omori normaliser; tau when tapered)."""
    v = dict(zip(names, (float(x) for x in theta)))
    taper = _tapered(names, tau)
    c = math.exp(v["c"])
    out = {"mu": math.exp(v["mu"]), "K": math.nan, "alpha": v["alpha"], "c": c}
    if taper:
        p = v["p"]
        tau_v = math.exp(v["tau"]) if "tau" in v else float(tau)
        out["p"] = p
        out["K"] = math.exp(v["K"]) * omori_normaliser(p, c, tau_v)
        out["tau"] = tau_v
    else:
        out["p"] = 1.0 + math.exp(v["p"])
        out["K"] = math.exp(v["K"] - v["p"] - math.exp(v["p"]) * v["c"])
    if "D" in v:
        out.update(D=math.exp(v["D"]), q=1.0 + math.exp(v["q"]), gamma=v["gamma"])
    return out


def _to_theta(params: dict[str, float], names: tuple[str, ...], tau: float | None = None) -> np.ndarray:
    """theta of the natural ``params`` (clipped inside the bounds)."""
    taper = _tapered(names, tau)
    p, c = params["p"], params["c"]
    if taper:
        tau_v = params["tau"] if "tau" in names else float(tau)
        log_amplitude = math.log(params["K"]) - math.log(omori_normaliser(p, c, tau_v))
    else:
        log_amplitude = math.log(params["K"]) + math.log(p - 1.0) + (p - 1.0) * math.log(c)
    tr = {"mu": math.log, "K": lambda v: log_amplitude, "alpha": float, "c": math.log,
          "p": (float if taper else (lambda v: math.log(v - 1.0))), "tau": math.log,
          "D": math.log, "q": lambda v: math.log(v - 1.0), "gamma": float}
    theta = np.array([tr[k](params[k]) for k in names])
    lo, hi = np.array([bounds(k, taper) for k in names]).T
    return np.clip(theta, lo + 1e-9, hi - 1e-9)


@dataclass
class Sequence:
    """One observation: events (time-ordered, days), window [t0, t1), region km: a rectangle (xmin, xmax,
    ymin, ymax) or a polygon's vertices ((n, 2) array-like)."""

    time: np.ndarray
    magnitude: np.ndarray
    x: np.ndarray
    y: np.ndarray
    t0: float
    t1: float
    region: Any = None

@dataclass
class ETASFit:
    """Estimates with standard errors (natural parameters), and what the fit saw."""

    model: str
    estimates: dict[str, float]
    std_errors: dict[str, float]
    loglik: float
    n_target: int
    n_history: int
    n_sequences: int
    n_pairs: int
    cut: dict[str, float]
    converged: bool
    at_bound: list[str]  # parameters whose estimate sits at an optimiser bound (their errors mean nothing)
    background_probability: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    # profile-likelihood intervals {parameter: (lower, upper)} at ``profile_level`` (fit_sequences(profile=...))
    profile_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    profile_level: float = 0.95
    # not usable: a parameter at a bound or a supercritical estimate (n >= 1); ``problems`` says which and
    # what to try, one sentence each
    usable: bool = True
    problems: list[str] = field(default_factory=list)
    taper: str = "none"  # "none", "free" or "fixed"
    background: str = "uniform"  # "uniform" over the region, or "inhomogeneous" (kernel-smoothed)
    span_days: float = math.nan  # the observed target time, summed over the sequences
    space_integral: str = "region"  # the kernels' spatial integral: over the "region" or the whole "plane"
    estimator: str = "mle"  # "mle", or "etas-package" (etasvae.inversion_package: the package's EM fixed point)
    # what profile_loglik needs to refit: the likelihood, the estimate (theta) and the magnitudes' sufficient
    # statistics (number of targets, sum of m - (Mc - delta_m/2)); not part of the result's value. It keeps
    # the pair arrays alive as long as the fit (callers that hold many fits keep fit.to_dict() instead)
    _state: Any = field(default=None, repr=False, compare=False)

    @property
    def branching_ratio(self) -> float:
        return self.estimates["branching_ratio"]

    def table(self) -> pd.DataFrame:
        """One row per parameter: estimate, std_error."""
        names = list(self.estimates)
        return pd.DataFrame(
            {
                "parameter": names,
                "estimate": [self.estimates[k] for k in names],
                "std_error": [self.std_errors.get(k, math.nan) for k in names],
                "profile_lower": [self.profile_intervals.get(k, (math.nan, math.nan))[0] for k in names],
                "profile_upper": [self.profile_intervals.get(k, (math.nan, math.nan))[1] for k in names],
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values for JSON (the per-event background probabilities summarised by their sum; the profile
        intervals when the fit has them)."""
        return {
            "model": self.model,
            "estimates": dict(self.estimates),
            "std_errors": dict(self.std_errors),
            "loglik": self.loglik,
            "n_target": self.n_target,
            "n_history": self.n_history,
            "n_sequences": self.n_sequences,
            "n_pairs": self.n_pairs,
            "cut": dict(self.cut),
            "converged": self.converged,
            "at_bound": list(self.at_bound),
            "usable": self.usable,
            "problems": list(self.problems),
            "taper": self.taper,
            "background": self.background,
            "space_integral": self.space_integral,
            "estimator": self.estimator,
            "expected_background_events": float(self.background_probability.sum()),
            "span_days": self.span_days,
            # the smoothed background (etasvae.inversion_background) when inhomogeneous: what a forecast needs
            **({"background_density": self._state["background_density"].to_dict()}
               if self._state is not None and "background_density" in self._state else {}),
            # only when profiled: the invert rules' JSON keeps its keys
            **({"profile_intervals": {k: list(v) for k, v in self.profile_intervals.items()},
                "profile_level": self.profile_level} if self.profile_intervals else {}),
        }

