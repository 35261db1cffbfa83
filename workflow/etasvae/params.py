"""ETAS parameters: the model of docs/design.md §3, its checks, and the Swiss Seismological Service parameterisation.

Model (Ogata 1998 space-time ETAS, the form used throughout this package), events above Mc:

    lambda(t, x, y) = mu*u(x, y) + sum_{t_i < t} kappa(m_i) * g(t - t_i) * f(x - x_i, y - y_i | m_i)
    kappa(m) = K * exp(alpha*(m - Mc))                         expected number of direct aftershocks
    g(t)     = (p-1) * c^(p-1) / (t+c)^p                       normalised Omori-Utsu law, t in days
             = exp(-t/tau) / (t+c)^p / Z(p, c, tau)            with the optional taper (any real p)
    f(r|m)   = (q-1)/(pi*sigma) * (1 + r^2/sigma)^(-q),  sigma(m) = D * exp(gamma*(m - Mc)),  r in km
    m        ~ Gutenberg-Richter, beta = b*ln(10), above Mc, optionally truncated at Mmax

``mu`` is the background rate of the *target region* (events per day above Mc). The branching ratio is
n = K * E[exp(alpha*(m - Mc))] = K*beta/(beta - alpha) for untruncated GR (finite only for alpha < beta),
and K*beta*(1 - exp(-(beta-alpha)*dM)) / ((beta-alpha)*(1 - exp(-beta*dM))) with dM = Mmax - Mc.

The `etas` package of the Swiss Seismological Service (Mizrahi et al. 2021, SRL 92(4); github lmizrahi/etas)
writes the triggering rate of an event of magnitude m at time lag t and squared distance r^2 as

    k0 * exp(a*(m - Mc)) * exp(-t/tau) / (t + c)^(1+omega) * 1 / (r^2 + d*exp(gamma*(m - Mc)))^(1+rho)

with mu a background density per km^2 per day, times in days, d in km^2, and the parameters given as
log10_mu, log10_k0, a, log10_c, omega, log10_tau, log10_d, gamma, rho (log10_tau = inf: no taper).
Conversion (``from_sed``), derived by splitting that rate into kappa(m) * g(t) * f(r|m):

- space: with s = d*exp(gamma*(m-Mc)), integral over the plane of (r^2 + s)^(-1-rho) dA
  = pi * int_0^inf (u + s)^(-1-rho) du = pi * s^(-rho) / rho  (u = r^2; needs rho > 0).
  Dividing by it gives f(r|m) above with q = 1 + rho, sigma = s, i.e. D = d, and the same gamma.
  The factor s^(-rho) = d^(-rho) * exp(-rho*gamma*(m-Mc)) moves into kappa: alpha = a - rho*gamma.
- time, no taper: int_0^inf (t + c)^(-1-omega) dt = c^(-omega) / omega (needs omega > 0), so p = 1 + omega.
- time, taper: with s = (t + c)/tau, int_0^inf exp(-t/tau) (t + c)^(-1-omega) dt
  = tau^(-omega) * exp(c/tau) * int_{c/tau}^inf s^(-omega-1) exp(-s) ds = tau^(-omega) exp(c/tau) Gamma(-omega, c/tau),
  finite for every real omega because c/tau > 0; p = 1 + omega may then be <= 1.
- so K = k0 * (pi / (rho * d^rho)) * T, with T = 1 / (omega * c^omega) without taper and
  T = tau^(-omega) * exp(c/tau) * Gamma(-omega, c/tau) with it; and mu = 10^log10_mu * area_km2.
This reproduces the branching ratio of the `etas` package, beta*k0*pi*d^-rho*T / (rho*(beta - a + gamma*rho)),
which the tests check, together with the kernels themselves by quadrature.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from scipy import special

LN10 = math.log(10.0)


class ParameterError(ValueError):
    """An ETAS parameter is invalid. ``str()`` is ``"<key> = <value>: <reason>"``."""

    def __init__(self, key: str, value: Any, reason: str):
        self.key, self.value, self.reason = key, value, reason
        super().__init__(f"{key} = {_fmt(value)}: {reason}")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return format(value, ".10g")
    return str(value)


def upper_incomplete_gamma(a: float, x):
    """Gamma(a, x) = int_x^inf s^(a-1) e^(-s) ds for any real a and x > 0 (array x allowed).

    a > 0: scipy's regularised gammaincc times Gamma(a); a = 0: E1(x); a < 0: the recurrence
    Gamma(a, x) = (Gamma(a+1, x) - x^a e^(-x)) / a (DLMF 8.8.2) up to a + k >= 0. Each step loses about
    log10(1 + x) digits for large x; for the x = c/tau << 1 of seismology it is exact to rounding.
    """
    x = np.asarray(x, dtype=float)
    if a > 0:
        return special.gammaincc(a, x) * special.gamma(a)
    if a == 0:
        return special.exp1(x)
    return (upper_incomplete_gamma(a + 1.0, x) - np.power(x, a) * np.exp(-x)) / a


def omori_normaliser(p: float, c: float, tau: float | None) -> float:
    """Z = int_0^inf exp(-t/tau) (t+c)^(-p) dt, days^(1-p); without taper c^(1-p)/(p-1) (p > 1)."""
    if tau is None:
        return c ** (1.0 - p) / (p - 1.0)
    return float(tau ** (1.0 - p) * math.exp(c / tau) * upper_incomplete_gamma(1.0 - p, c / tau))


_FLOAT_FIELDS = ("mu", "K", "alpha", "c", "p", "D", "q", "gamma", "b", "mc")
_OPTIONAL_FIELDS = ("mmax", "tau")


@dataclass(frozen=True)
class ETASParams:
    """One ETAS model (docs/design.md §3). Times in days, distances in km, D in km^2.

    Values are stored as plain floats; ``mmax`` / ``tau`` = None (or inf) mean no GR truncation / no
    Omori taper. Construction only converts types; call :meth:`check` to validate.
    """

    mu: float  # background events per day in the target region, above mc
    K: float
    alpha: float
    c: float  # days
    p: float
    D: float  # km^2: sigma(m) = D * exp(gamma * (m - mc))
    q: float
    gamma: float
    b: float
    mc: float
    mmax: float | None = None  # Gutenberg-Richter truncation; None = untruncated
    tau: float | None = None  # Omori taper time, days; None = no taper

    def __post_init__(self) -> None:
        for name in _FLOAT_FIELDS + _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is None and name in _OPTIONAL_FIELDS:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ParameterError(name, value, "must be a number")
            value = float(value)
            if name in _OPTIONAL_FIELDS and math.isinf(value) and value > 0:
                value = None  # +inf: no truncation / no taper
            object.__setattr__(self, name, value)

    @property
    def beta(self) -> float:
        """b * ln(10): the GR exponent in natural-log units."""
        return self.b * LN10

    def mean_productivity_factor(self) -> float:
        """E[exp(alpha*(m - mc))] over the (truncated) GR law; inf when it diverges."""
        beta, alpha = self.beta, self.alpha
        if self.mmax is None:
            return beta / (beta - alpha) if alpha < beta else math.inf
        dm = self.mmax - self.mc
        s = beta - alpha
        # int_0^dm e^(-s x) dx, stable for s -> 0 and s < 0
        integral = dm if abs(s) * dm < 1e-12 else -math.expm1(-s * dm) / s
        return beta * integral / -math.expm1(-beta * dm)

    def branching_ratio(self) -> float:
        """n = K * E[exp(alpha*(m - Mc))]: K*beta/(beta - alpha) untruncated, exact truncated-GR form with mmax."""
        return self.K * self.mean_productivity_factor()

    def check(self, max_events: int | None = None) -> None:
        """Raise ParameterError naming the key, the value and why, for a parameter set that cannot be simulated.

        A supercritical set (n >= 1) is refused unless ``max_events`` caps the simulation.
        """
        for name in _FLOAT_FIELDS + _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ParameterError(name, value, "must be a finite number")
        positive = {
            "mu": "the background rate must be positive (events per day in the region)",
            "c": "the Omori c must be positive (days)",
            "D": "the spatial scale must be positive (km^2)",
            "b": "the Gutenberg-Richter b-value must be positive",
        }
        for name, why in positive.items():
            if getattr(self, name) <= 0:
                raise ParameterError(name, getattr(self, name), why)
        if self.K < 0:
            raise ParameterError("K", self.K, "the productivity must be >= 0")
        if self.q <= 1:
            raise ParameterError("q", self.q, "must be > 1: the spatial kernel (1 + r^2/sigma)^-q is not normalisable")
        if self.tau is not None and self.tau <= 0:
            raise ParameterError("tau", self.tau, "the Omori taper time must be positive (days), or None for no taper")
        if self.tau is None and self.p <= 1:
            raise ParameterError(
                "p", self.p, "must be > 1 without a taper (tau): the Omori law (t + c)^-p is not normalisable"
            )
        if self.mmax is not None and self.mmax <= self.mc:
            raise ParameterError("mmax", self.mmax, f"must exceed mc = {_fmt(self.mc)} (or be None for untruncated GR)")
        if self.mmax is None and self.alpha >= self.beta:
            raise ParameterError(
                "alpha",
                self.alpha,
                f"must be < beta = b*ln10 = {self.beta:.6g} with untruncated Gutenberg-Richter: the expected "
                "productivity E[exp(alpha*(m - mc))] diverges (set mmax to truncate)",
            )
        n = self.branching_ratio()
        if n >= 1 and max_events is None:
            if self.mmax is None:
                formula = (
                    f"n = K*beta/(beta - alpha) = {_fmt(self.K)}*{self.beta:.6g}/({self.beta:.6g} - {_fmt(self.alpha)})"
                )
            else:
                formula = (
                    "n = K*beta*(1 - exp(-(beta-alpha)*(mmax-mc))) / ((beta-alpha)*(1 - exp(-beta*(mmax-mc)))) with "
                    f"K = {_fmt(self.K)}, beta = {self.beta:.6g}, alpha = {_fmt(self.alpha)}, "
                    f"mmax - mc = {_fmt(self.mmax - self.mc)}"
                )
            raise ParameterError(
                "branching_ratio",
                n,
                f"supercritical ({formula} = {n:.6g} >= 1): the number of events grows without bound; "
                "set max_events to simulate it anyway",
            )

    def to_dict(self) -> dict[str, float | None]:
        """Plain floats (and None for mmax / tau when absent)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ETASParams":
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ParameterError. Does not call check()."""
        names = [f.name for f in fields(cls)]
        for key in d:
            if key not in names:
                raise ParameterError(key, d[key], f"not an ETAS parameter; expected {names}")
        for key in _FLOAT_FIELDS:
            if key not in d:
                raise ParameterError(key, "(missing)", "required ETAS parameter")
        return cls(**d)


def from_sed(
    *,
    log10_mu: float,
    log10_k0: float,
    a: float,
    log10_c: float,
    omega: float,
    log10_tau: float | None,
    log10_d: float,
    gamma: float,
    rho: float,
    b: float,
    mc: float,
    mmax: float | None = None,
    area_km2: float,
) -> ETASParams:
    """Convert the Swiss Seismological Service `etas` parameterisation (module docstring) to ETASParams.

    ``log10_mu`` is a density per km^2 per day; the result's mu = 10**log10_mu * area_km2 is the rate of
    the target region. ``log10_tau`` None or +inf means no taper. Raises ParameterError naming the SED key
    when the kernels cannot be normalised (rho <= 0; omega <= 0 without taper).
    """
    _check_sed_finite(
        dict(
            log10_mu=log10_mu,
            log10_k0=log10_k0,
            a=a,
            log10_c=log10_c,
            omega=omega,
            log10_d=log10_d,
            gamma=gamma,
            rho=rho,
            area_km2=area_km2,
        )
    )
    if area_km2 <= 0:
        raise ParameterError("area_km2", area_km2, "the region's area must be positive (km^2)")
    if rho <= 0:
        raise ParameterError("rho", rho, "must be > 0: the spatial kernel (r^2 + d)^-(1+rho) is not normalisable")
    taper = _sed_taper(log10_tau, omega)
    k0, c, d = 10.0**log10_k0, 10.0**log10_c, 10.0**log10_d
    tau = 10.0**log10_tau if taper else None
    time_integral = omori_normaliser(1.0 + omega, c, tau)  # 1/(omega c^omega) without taper
    space_integral = math.pi / (rho * d**rho)
    return ETASParams(
        mu=10.0**log10_mu * area_km2,
        K=k0 * space_integral * time_integral,
        alpha=a - rho * gamma,
        c=c,
        p=1.0 + omega,
        D=d,
        q=1.0 + rho,
        gamma=gamma,
        b=b,
        mc=mc,
        mmax=mmax,
        tau=tau,
    )


def _check_sed_finite(values: dict[str, Any]) -> None:
    """Raise ParameterError naming the first SED key whose value is not a finite number."""
    for key, value in values.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value)
        ):
            raise ParameterError(key, value, "must be a finite number")


def _sed_taper(log10_tau: float | None, omega: float) -> bool:
    """Whether the SED parameters have a taper; raise ParameterError if log10_tau or omega cannot be used."""
    if log10_tau is not None and (
        isinstance(log10_tau, bool)
        or not isinstance(log10_tau, (int, float, np.integer, np.floating))
        or math.isnan(log10_tau)
        or log10_tau == -math.inf
    ):
        raise ParameterError("log10_tau", log10_tau, "must be a finite number, or None / +inf for no taper")
    taper = log10_tau is not None and log10_tau != math.inf
    if not taper and omega <= 0:
        raise ParameterError(
            "omega",
            omega,
            "must be > 0 without a taper (log10_tau): the Omori law (t + c)^-(1+omega) is not normalisable",
        )
    return taper
