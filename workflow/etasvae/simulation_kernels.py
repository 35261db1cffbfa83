"""The ETAS model's distributions as the simulator draws them (``etasvae.simulate``): Gutenberg-Richter
magnitudes (truncated at Mmax when given), Omori-Utsu delays (tapered or not), the power-law spatial kernel's
distances, and Poisson counts; their CDFs for the tests. Inverse-CDF sampling throughout, in float32 where
precision allows (``etasvae.simulate``'s docstring gives the precision and the far-tail bounds).
"""

from __future__ import annotations

import math

import numpy as np

from .params import upper_incomplete_gamma

F32 = np.float32
# Clamp of float32 exponents: e^60 * sigma stays finite in float32 for sigma < 3e12 km^2.
MAX_EXP_ARG_F32 = 60.0

# --------------------------------------------------------------------------------------------------------
# Distributions: CDFs (for checks) and the samplers the simulator uses
# --------------------------------------------------------------------------------------------------------


def gr_cdf(m, b: float, mc: float, mmax: float | None = None):
    """CDF of the (truncated) Gutenberg-Richter law above mc."""
    beta = b * math.log(10.0)
    x = np.maximum(np.asarray(m, dtype=float) - mc, 0.0)
    if mmax is None:
        return -np.expm1(-beta * x)
    return np.minimum(np.expm1(-beta * x) / math.expm1(-beta * (mmax - mc)), 1.0)


def _gr_offsets(n: int, beta: float, dmax: float | None, rng: np.random.Generator) -> np.ndarray:
    """float32 magnitudes above Mc from (truncated) Gutenberg-Richter.

    Untruncated: the inverse CDF, E/beta. Truncated at dmax = Mmax - Mc: E/beta conditioned on <= dmax, by
    redrawing the few above (exact; acceptance 1 - e^(-beta dmax), e.g. 0.99999 for dmax = 5, b = 1), which keeps
    float32's relative resolution at every magnitude; a float32 uniform in the inverse CDF
    -log(1 - u (1 - e^(-beta dmax)))/beta would put the largest magnitudes on a grid of ~0.003. Where
    acceptance would be below 1/2 (beta dmax < ln 2) the inverse CDF is used: there its grid is below 1e-7.
    """
    if dmax is not None and beta * dmax < math.log(2.0):
        m = rng.random(n, dtype=F32)
        m *= F32(math.expm1(-beta * dmax))  # in (e^(-beta dmax) - 1, 0]
        m += F32(1.0)
        np.log(m, out=m)
        m *= F32(-1.0 / beta)
        np.minimum(m, F32(dmax), out=m)
        return m
    m = rng.standard_exponential(n, dtype=F32)
    m *= F32(1.0 / beta)
    if dmax is not None:
        limit = F32(dmax)
        above = np.flatnonzero(m > limit)
        while above.size:
            redraw = rng.standard_exponential(above.size, dtype=F32)
            redraw *= F32(1.0 / beta)
            m[above] = redraw
            above = above[redraw > limit]
    return m


def sample_gr_magnitudes(n: int, b: float, mc: float, mmax: float | None, rng: np.random.Generator) -> np.ndarray:
    """n magnitudes from (truncated) Gutenberg-Richter (the simulator's sampler), float64."""
    dmax = None if mmax is None else mmax - mc
    m = _gr_offsets(n, b * math.log(10.0), dmax, rng).astype(np.float64)
    m += mc
    return m


def omori_cdf(t, p: float, c: float, tau: float | None = None):
    """CDF of the normalised Omori-Utsu delay (days); with ``tau`` the tapered law e^(-t/tau)/(t+c)^p."""
    t = np.maximum(np.asarray(t, dtype=float), 0.0)
    if tau is None:
        return -np.expm1((1.0 - p) * np.log1p(t / c))
    a, s0 = 1.0 - p, c / tau
    return 1.0 - upper_incomplete_gamma(a, (t + c) / tau) / upper_incomplete_gamma(a, s0)


def sample_omori_times(n: int, p: float, c: float, tau: float | None, rng: np.random.Generator) -> np.ndarray:
    """n delays (days) from the normalised Omori-Utsu law, optionally tapered (the simulator's sampler).

    No taper (p > 1): inverse CDF dt = c (exp(E/(p-1)) - 1), float32 (delays beyond ~c e^88 come out inf).

    Taper (any real p), float64 and exact: with s = (t + c)/tau the density is proportional to s^(a-1) e^(-s)
    on s > s0 = c/tau, a = 1 - p: a gamma density truncated below. It is split at S = max(1, s0) into two
    pieces chosen with their exact probabilities (upper incomplete gamma functions), each sampled by rejection:
    (s0, S): propose s^(a-1) by inverse CDF, accept with probability e^(-(s - s0)) >= 1/e;
    (S, inf): for a <= 1 propose S + Exp(1), accept with (s/S)^(a-1); for a > 1 propose Gamma(a) and accept
    s > S (probability Q(a, 1) >= 1/e). A rejected proposal is redrawn from the same piece.
    """
    if tau is None:
        dt = rng.standard_exponential(n, dtype=F32)
        dt *= F32(1.0 / (p - 1.0))
        with np.errstate(over="ignore"):
            np.exp(dt, out=dt)
        dt -= F32(1.0)
        dt *= F32(c)
        return dt
    return _sample_tapered_omori(n, p, c, tau, rng)


def _sample_tapered_omori(n: int, p: float, c: float, tau: float, rng: np.random.Generator) -> np.ndarray:
    a, s0 = 1.0 - p, c / tau
    big_s = max(1.0, s0)
    w2 = float(upper_incomplete_gamma(a, big_s))
    w1 = float(upper_incomplete_gamma(a, s0)) - w2 if big_s > s0 else 0.0
    out = np.empty(n)
    first = rng.random(n) < w1 / (w1 + w2)
    log_ratio = math.log(big_s / s0)
    growth = math.expm1(a * log_ratio)
    pending = np.flatnonzero(first)
    while pending.size:  # piece 1: s in (s0, S), y = log(s/s0)
        k = pending.size
        y = rng.random(k)
        if a == 0.0:
            y *= log_ratio
        else:
            y *= growth
            np.log1p(y, out=y)
            y *= 1.0 / a
        np.expm1(y, out=y)
        y *= c  # dt = tau (s - s0) = c (s/s0 - 1)
        accept = rng.standard_exponential(k) >= y * (1.0 / tau)
        out[pending[accept]] = y[accept]
        pending = pending[~accept]
    pending = np.flatnonzero(~first)
    while pending.size:  # piece 2: s > S
        k = pending.size
        if a <= 1.0:
            e = rng.standard_exponential(k)
            accept = rng.standard_exponential(k) >= (1.0 - a) * np.log1p(e / big_s)
            dt = tau * (big_s - s0) + tau * e
        else:
            s = rng.standard_gamma(a, k)
            accept = s > big_s
            dt = tau * s - c
        out[pending[accept]] = dt[accept]
        pending = pending[~accept]
    return out


def spatial_cdf(r, q: float, sigma):
    """CDF of the distance r (km) under f(r|m) = (q-1)/(pi sigma) (1 + r^2/sigma)^-q, sigma in km^2."""
    r = np.asarray(r, dtype=float)
    return -np.expm1((1.0 - q) * np.log1p(r * r / sigma))


def sample_kernel_distances(sigma, q: float, rng: np.random.Generator) -> np.ndarray:
    """One distance (km, float32) per entry of ``sigma`` (km^2): r^2 = sigma (exp(E/(q-1)) - 1).

    The simulator's sampler (inverse CDF of f(r|m), E a standard exponential).
    """
    sigma = np.asarray(sigma, dtype=F32)
    r = rng.standard_exponential(sigma.shape, dtype=F32)
    r *= F32(1.0 / (q - 1.0))
    np.minimum(r, F32(MAX_EXP_ARG_F32), out=r)
    np.exp(r, out=r)
    r -= F32(1.0)
    r *= sigma
    np.sqrt(r, out=r)
    return r


def _poisson(rate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson(rate) counts, exact, mostly without numpy's per-element Poisson sampler (see ``_poisson_hits``)."""
    hit, count = _poisson_hits(rate, rng)
    counts = np.zeros(rate.size, dtype=np.int64)
    counts[hit] = 1 if count is None else count   # None: every parent with children has one
    return counts


def _poisson_hits(rate: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Poisson(rate) counts as (the indices with a count >= 1, their counts; None where every one is 1).

    X counts the arrivals of a unit-rate Poisson process in [0, rate]. X >= 1 exactly when the first
    arrival E1 (a standard exponential) is <= rate; then, by the memoryless property, X = 1 + Poisson(rate - E1),
    and the same step once more with a second arrival. Most events have rate < 1, so numpy's (slow,
    per-element) sampler only runs on the few with two aftershocks or more.
    """
    hit, rest = _next_arrival(rate, rng)
    if not hit.size:
        return hit, None
    hit2, rest = _next_arrival(rest, rng)
    if not hit2.size:
        return hit, None
    more = rng.poisson(rest)
    more += 2
    count = np.ones(hit.size, dtype=np.int64)
    count[hit2] = more
    return hit, count


def _next_arrival(rate: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(indices whose unit-rate Poisson process has an arrival E <= rate, their rate - E)."""
    e = rng.standard_exponential(rate.size, dtype=rate.dtype)
    np.subtract(rate, e, out=e)  # >= 0 exactly where E <= rate (no rounding changes a difference's sign)
    hit = np.flatnonzero(e >= 0)
    return hit, e.take(hit)
