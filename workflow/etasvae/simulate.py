"""ETAS simulation by the branching algorithm, one vectorised generation at a time (docs/design.md §3).

Algorithm (Zhuang, Ogata & Vere-Jones 2004, JGR 109, §3.3). Background events: a Poisson number with mean
mu/area(region) * area(grown region) * (burn_in + duration), times uniform on [-burn_in, duration), positions
uniform in the region grown by ``margin`` km on each side, magnitudes Gutenberg-Richter. Then, generation by
generation, every event draws Poisson(kappa(m)) direct aftershocks, kappa(m) = K exp(alpha (m - Mc)), each
with, by inverse-CDF sampling (E denotes a standard exponential variate, -log(1 - u)):

- a delay from the normalised Omori-Utsu law: dt = c ((1-u)^(-1/(p-1)) - 1) = c (exp(E/(p-1)) - 1); with the
  taper, the exact sampler of :func:`sample_omori_times`;
- a distance from f(r|m) = (q-1)/(pi sigma) (1 + r^2/sigma)^(-q): r^2 = sigma (exp(E/(q-1)) - 1), and a
  uniform direction;
- a magnitude from GR, m = Mc + E/beta, conditioned on m <= Mmax when truncated (see ``_gr_offsets``).

Children at or after the window end are dropped at once (they cannot trigger anything earlier). Background
events outside the catalog (margin, burn-in) whose whole family is expected to put fewer than 1e-4 events
into the catalog are pruned (``family_reach_bound``: renewal equations for the summed jump lengths and
delays of a family; steep spatial kernels make most of a wide margin prunable, the heavy q = 1.5 kernel of
the default config none of a 25 km one). Other children
outside the region or before t = 0 are simulated (they trigger) but not stored: beyond the generation in
hand, memory holds only the events of the catalog (24 bytes each; at most 76 bytes each while the final
table, itself 52 bytes per event, is assembled: numpy allocations traced). The only Python loops are over
generations and, in the final table, over blocks of events.

Speed (benchmarks/bench_simulate.py): float32 wherever precision allows, Poisson counts drawn mostly without
numpy's per-element sampler (``_poisson_hits``, which also gives the children's parent indices by one
np.repeat over the parents that have children), index-and-take instead of boolean masks on large arrays,
one sort of an int64 key (time quantum | index) instead of an argsort, then the final table (about half the
time at 10^7 events), built in blocks of _BLOCK events that stay in the cache (``_gather_records``): the
sort keys block by block from the generations' times; one pass over the sorted keys that checks for equal
quanta and scatters the inverse permutation (``rank``: catalog id of every stored event); one 32-byte record
per event in storage order, parent ids mapped on the way (a near-sequential walk through ``rank``); then per
block of the time order one gather of records (one cache miss per event), from which the block's columns
are written. The sort (~8 ns per event at 10^7), the scatter of ``rank`` (~7 ns) and the gather of
records (~15 ns) are random accesses into arrays far larger than the cache; most of the rest is drawing
random variates (~27 ns per catalog event) and moving memory. Changes for speed keep the random stream
(``bench_simulate.py --digests`` compares catalogs byte for byte across revisions).

Precision: times are float64 throughout. Delays, distances, magnitudes above Mc and positions relative to
the region's centre are computed in float32 (relative precision 6e-8: 6 mm at 100 km from the centre,
1e-7 in magnitude, 0.5 s in a 100-day delay) and returned as float64. float32 random variates bound the far
tails (E <= ~24): a magnitude above Mc + 24/beta, or an Omori delay beyond c exp(24/(p-1)), has probability
below 1e-10 per event and is not produced; exponents of the inverse CDFs are clamped so that the arithmetic
stays finite (a distance of e^30 sqrt(sigma) km is outside any region anyway).

Output: events with 0 <= t < duration and xmin <= x <= xmax, ymin <= y <= ymax, sorted by time. ``parent_id``
is the triggering event's event_id when that event is itself in the catalog, and -1 for background events
*and* for aftershocks whose parent is not in the catalog (it occurred during the burn-in or outside the region);
``generation`` is always the true generation (0 background, k for k-th generation aftershocks), so an event
with parent_id -1 and generation > 0 is an aftershock of an unrecorded event.

Determinism: the same parameters, arguments and seed give identical arrays (random draws happen in a fixed
order; events with equal times keep storage order, which puts parents before their children).

Omori tail caveat (docs/design.md §3): with p close to 1 no finite burn-in makes the window reach mu T/(1-n);
:func:`expected_count` gives the exact expectation for a given window and burn-in.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd

from .catalog import CATALOG_COLUMNS, empty_catalog
from .params import ETASParams, upper_incomplete_gamma

F32 = np.float32
# Clamp of float32 exponents: e^60 * sigma stays finite in float32 for sigma < 3e12 km^2.
_MAX_EXP_ARG_F32 = 60.0
# A single event expected to trigger more aftershocks than this is a runaway (untruncated GR, huge alpha).
_MAX_PRODUCTIVITY = 1e12

# Events per block of the final table's assembly: 2^15 records of 32 bytes (1 MiB) stay in the L2 cache.
_BLOCK = 2**15
# One kept event while the final table is assembled: 32 bytes, moved by a single gather.
_RECORD = np.dtype(
    [
        ("time", "<f8"),
        ("m", "<f4"),
        ("x", "<f4"),
        ("y", "<f4"),
        ("parent", "<i4"),
        ("generation", "<i4"),
        ("pad", "<i4"),
    ]
)


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
    np.minimum(r, F32(_MAX_EXP_ARG_F32), out=r)
    np.exp(r, out=r)
    r -= F32(1.0)
    r *= sigma
    np.sqrt(r, out=r)
    return r


def _poisson(rate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson(rate) counts, exact, mostly without numpy's per-element Poisson sampler (see ``_poisson_hits``)."""
    hit, count = _poisson_hits(rate, rng)
    counts = np.zeros(rate.size, dtype=np.int64)
    counts[hit] = count
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


# --------------------------------------------------------------------------------------------------------
# Expected number of events (renewal equation)
# --------------------------------------------------------------------------------------------------------


def _omori_survival_integral(lag: np.ndarray, p: float, c: float, tau: float | None) -> np.ndarray:
    """I(t) = int_0^t (1 - G(u)) du for the Omori CDF G (days)."""
    if tau is None:
        x = np.log1p(lag / c)
        if abs(2.0 - p) < 1e-12:
            return c * x
        return c * np.expm1((2.0 - p) * x) / (2.0 - p)
    # 1 - G(u) = Gamma(a, (u+c)/tau) / Gamma(a, s0), and d/dx [x Gamma(a, x) - Gamma(a+1, x)] = Gamma(a, x)
    a, s0 = 1.0 - p, c / tau

    def primitive(x):
        return x * upper_incomplete_gamma(a, x) - upper_incomplete_gamma(a + 1.0, x)

    return tau * (primitive((lag + c) / tau) - primitive(np.float64(s0))) / upper_incomplete_gamma(a, s0)


def expected_count(params: ETASParams, duration: float, burn_in: float = 0.0, *, grid_growth: float = 0.01) -> float:
    """Expected number of events in [0, duration) when the background starts at -burn_in.

    The exact model expectation up to the numerical solution below, including the finite-time Omori
    deficit (the aftershocks of events before -burn_in are missing). It assumes no spatial edge loss: a
    margin large compared with the spatial kernel (or an unbounded region).

    With s = t + burn_in and C(s) the expected number of events in [0, s), an event at s' has on average
    n G(s - s') direct aftershocks before s (n the branching ratio, G the Omori CDF), so C solves the
    renewal (Volterra) equation C(s) = mu s + n int_0^s G(s - s') dC(s') (Helmstetter & Sornette 2002,
    JGR 107). It is solved by product integration on a grid whose cells grow geometrically (width
    ``grid_growth`` times the distance from s = 0, the first c/1000): the rate is constant within a cell and
    G is integrated over each cell exactly; O(M^2) for M cells. Result: C(burn_in + duration) - C(burn_in).
    Accuracy: the error is second order in the cell width; with the default 1 % cells the relative error is
    about 2e-5 (tests: the closed form for the exponential kernel, p = 0 with a taper, and grid refinement;
    for p = 1.1 the refined and default grids agree to 1e-7). Cost: a few hundredths of a second without a
    taper, about half a second with one (incomplete gamma functions).
    """
    if not (duration > 0 and burn_in >= 0 and math.isfinite(duration + burn_in)):
        raise ValueError(f"duration = {duration!r}, burn_in = {burn_in!r}: need duration > 0 and burn_in >= 0, finite")
    n = params.branching_ratio()
    mu, p, c, tau = params.mu, params.p, params.c, params.tau
    total = burn_in + duration
    if n == 0.0:
        return mu * duration
    h0 = min(c, total) * 1e-3
    log_ratio = math.log1p(grid_growth)
    m_cells = int(math.ceil(math.log1p(total * grid_growth / h0) / log_ratio))
    grid = h0 * np.expm1(np.arange(m_cells + 1) * log_ratio) / grid_growth
    points = [grid[grid < total], [total]]
    if 0.0 < burn_in < total:
        points.append([burn_in])
    grid = np.unique(np.concatenate(points))
    widths = np.diff(grid)
    cum = np.zeros(grid.size)  # C at the grid points
    dcum = np.zeros(widths.size)  # increments of C per cell
    for i in range(1, grid.size):
        # mean of G(s_i - s') over each cell j <= i: 1 - (I(s_i - s_{j-1}) - I(s_i - s_j)) / h_j
        surv = _omori_survival_integral(grid[i] - grid[: i + 1], p, c, tau)
        w = 1.0 - (surv[:-1] - surv[1:]) / widths[:i]
        # C_i = mu s_i + n sum_{j<i} w_j dC_j + n w_i (C_i - C_{i-1})
        rhs = mu * grid[i] + n * np.dot(w[:-1], dcum[: i - 1]) - n * w[-1] * cum[i - 1]
        cum[i] = rhs / (1.0 - n * w[-1])
        dcum[i - 1] = cum[i] - cum[i - 1]
    start = cum[np.searchsorted(grid, burn_in)] if burn_in > 0 else 0.0
    return float(cum[-1] - start)


# --------------------------------------------------------------------------------------------------------
# Pruning: background events whose families cannot reach the catalog (docs/design.md §3)
# --------------------------------------------------------------------------------------------------------

# A background event outside the catalog (in the margin, or in the burn-in) is dropped with its whole family
# when the expected number of its descendants that land in the catalog is below this bound.
PRUNE_EPSILON = 1e-4
_PRUNE_MAG_STEP = 0.2  # magnitude bins of the reach table (above Mc)
_PRUNE_POINTS = 512  # points of the uniform distance and lag grids of the reach bound


def family_reach_bound(params: ETASParams, magnitude, lag, distance) -> np.ndarray:
    """Upper bound on the expected number of descendants of one event that reach a target, on a grid.

    Returns an array [magnitude, lag, distance] for 1-D ``magnitude`` (>= Mc), ``lag`` (days from the
    event to the target window's start; 0 inside its time span) and ``distance`` (km from the event to the
    target region). A descendant reaches the target only if the length of its path (the sum of the jump
    lengths from the event down to it, >= its displacement) is >= distance, and its total delay is >= lag;
    the bound is the smaller of the expected numbers of descendants doing each (``_renewal_tail``), on
    uniform grids up to the largest lag and distance, read at the grid point at or below each value (the
    bound decreases with both). inf where n >= 1.
    """
    m = np.asarray(magnitude, dtype=float) - params.mc
    lag, distance = np.asarray(lag, dtype=float), np.asarray(distance, dtype=float)
    lag_step, distance_step = _grid_step(lag.max(initial=0.0)), _grid_step(distance.max(initial=0.0))
    time, space = _reach_bound(params, m, m, lag_step, distance_step)
    i = np.minimum((lag / lag_step).astype(int), _PRUNE_POINTS - 1)
    j = np.minimum((distance / distance_step).astype(int), _PRUNE_POINTS - 1)
    return np.minimum(time[:, i, None], space[:, None, j])


def _grid_step(top: float) -> float:
    """The spacing of a uniform grid of _PRUNE_POINTS points from 0 that reaches ``top`` (1 if top is 0)."""
    return top / (_PRUNE_POINTS - 1) if top > 0 else 1.0


def _reach_bound(params: ETASParams, kappa_offset, sigma_offset, lag_step: float, distance_step: float):
    """The two bounds of family_reach_bound on uniform grids: (delay >= j lag_step [magnitude, j], path >=
    j distance_step [magnitude, j]), the productivity taken at Mc + kappa_offset, the spread at Mc +
    sigma_offset; the bound at (lag, distance) is the smaller of the two."""
    n = params.branching_ratio()
    shape = (kappa_offset.size, _PRUNE_POINTS)
    if not n < 1.0:
        return np.full(shape, math.inf), np.full(shape, math.inf)
    if params.K == 0.0:
        return np.zeros(shape), np.zeros(shape)
    kappa = params.K * np.exp(params.alpha * kappa_offset)
    # spatial: jump lengths from the event (its sigma) and from a productivity-weighted GR parent
    distances = np.arange(_PRUNE_POINTS) * distance_step
    weight, sigma_cells = _productivity_cells(params)
    sigma = params.D * np.exp(params.gamma * sigma_offset)

    def jump_survival(sig):  # P(a jump from a parent with spread sig is >= r), [len(sig), distance]
        return (1.0 + distances[None, :] ** 2 / np.asarray(sig)[:, None]) ** (1.0 - params.q)

    space = _renewal_tail(jump_survival(sigma), weight @ jump_survival(sigma_cells), n)
    # temporal: Omori delays, whatever the magnitudes
    delay = (1.0 - omori_cdf(np.arange(_PRUNE_POINTS) * lag_step, params.p, params.c, params.tau))[None, :]
    time = _renewal_tail(delay, n * delay[0], n)
    return kappa[:, None] * time, kappa[:, None] * space


def _renewal_tail(root_survival, survival, n):
    """Expected number of descendants whose summed steps reach each point g_j = j h of a uniform grid, per
    unit productivity of the root.

    A step (a jump length or a delay) from the root is >= g_j with probability root_survival[b, j] (one row
    per root), from any later parent with survival[j] / n, productivity weighted (sum over the parent's
    magnitude of kappa(M) P(step >= g_j | M)). With H(g) the expected number of the descendants of one child
    whose path from that child is >= g (H(0) = n / (1 - n): all of them), a child whose step is u contributes
    1 + H(0) if u >= g and H(g - u) otherwise, so

        H(g) = sum_M kappa(M) [P(u >= g | M) (1 + H(0)) + E[H(g - u); u < g | M]],

    and the root's tail is the same with its own step law and kappa = 1. H decreases, so a step in the cell
    [g_i, g_(i+1)) is taken as g_(i+1), and H(g_j - g_(i+1)) = H_(j-i-1) is then on the grid: an upper
    bound, explicit (H_j needs H below j only). Returns [root, grid].
    """
    h0 = n / (1.0 - n)
    size = survival.size
    cell = -np.diff(survival)  # productivity-weighted mass of each step cell [g_i, g_(i+1))
    h = np.empty(size)
    h[0] = h0
    for j in range(1, size):
        h[j] = min(h0, survival[j] * (1.0 + h0) + cell[:j] @ h[j - 1 :: -1])
    # inner[i, j] = H_(j-i-1) for i < j, else 0
    lag = np.arange(size)[None, :] - np.arange(size - 1)[:, None] - 1
    inner = np.where(lag >= 0, h[np.maximum(lag, 0)], 0.0)
    tail = root_survival * (1.0 + h0) + (-np.diff(root_survival, axis=1)) @ inner
    return np.minimum(tail, 1.0 + h0)


def _productivity_cells(params: ETASParams) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude cells of 0.1 units above Mc: each cell's productivity weight (the integral of kappa(M) times
    the GR density over it; they sum to n) and its largest sigma (km^2), so that jump lengths are taken
    stochastically at least as long as the cell's. Untruncated GR: the weight beyond Mc + 20/(beta - alpha)
    (a fraction e^-20 of n) is one more cell with sigma inf (every jump counted as reaching).
    """
    beta, alpha = params.beta, params.alpha
    top = params.mmax - params.mc if params.mmax is not None else 20.0 / (beta - alpha)
    edges = np.linspace(0.0, top, max(2, int(math.ceil(top / 0.1)) + 1))
    s = beta - alpha
    primitive = edges if abs(s) < 1e-12 else -np.exp(-s * edges) / s  # of e^(alpha x) beta e^(-beta x) / beta
    norm = -math.expm1(-beta * top) if params.mmax is not None else 1.0
    weight = params.K * beta * np.diff(primitive) / norm
    sigma = params.D * np.exp(np.maximum(params.gamma * edges[:-1], params.gamma * edges[1:]))
    if params.mmax is None:
        weight = np.append(weight, params.K * beta * math.exp(-s * top) / s)
        sigma = np.append(sigma, np.inf)
    return weight, sigma


@functools.lru_cache(maxsize=16)
def _reach_table(params: ETASParams, burn_in: float, margin: float, bins: int):
    """(lag step, distance step, minimum distance per [magnitude bin, lag index]) at and beyond which a
    background event outside the catalog is pruned with its family: ``family_reach_bound`` < PRUNE_EPSILON.

    The grids reach the burn-in and the farthest margin point (margin sqrt 2 km); rounding is conservative:
    an event's magnitude is taken at its bin's top (its bottom for a negative alpha or gamma), its lag and
    distance at the grid point at or below them (the bound decreases with both). None where no pruning
    applies (K = 0 or n >= 1).
    """
    if params.K == 0.0 or not params.branching_ratio() < 1.0:
        return None
    lag_step, distance_step = _grid_step(burn_in), _grid_step(margin * math.sqrt(2.0))
    lo = np.arange(bins) * _PRUNE_MAG_STEP
    hi = lo + _PRUNE_MAG_STEP
    time, space = _reach_bound(params, hi if params.alpha >= 0 else lo, hi if params.gamma >= 0 else lo,
                               lag_step, distance_step)
    # the first grid distance with the path bound below epsilon (it decreases with distance; inf if none),
    # or 0 at the lags where the delay bound is below epsilon
    below = space < PRUNE_EPSILON
    first = np.where(below.any(axis=1), below.argmax(axis=1), _PRUNE_POINTS)
    first = np.where(time < PRUNE_EPSILON, 0, first[:, None])  # [bin, lag]
    min_distance = np.append(np.arange(_PRUNE_POINTS) * distance_step, np.inf)[first]
    rounded = min_distance.astype(F32)
    rounded = np.where(rounded < min_distance, np.nextafter(rounded, F32(np.inf)), rounded)  # never below
    return lag_step, rounded


def _negligible(params: ETASParams, burn_in: float, margin: float, t, x, y, m, keep, bounds) -> np.ndarray | None:
    """Mask of the background events outside the catalog (``keep`` False) whose families are pruned, or None
    when there are none (``_reach_table``)."""
    top = float(m.max(initial=0.0))
    if params.mmax is not None:
        top = max(top, params.mmax - params.mc)
    bins = int(math.floor(top / _PRUNE_MAG_STEP)) + 1
    table = _reach_table(params, float(burn_in), float(margin), -(-bins // 8) * 8)  # fewer distinct tables
    if table is None:
        return None
    lag_step, min_distance = table
    x_lo, x_hi, y_lo, y_hi = bounds
    # squared distance to the region, float32 (0 inside)
    d2 = np.subtract(x_lo, x)
    np.maximum(d2, x - x_hi, out=d2)
    np.maximum(d2, F32(0.0), out=d2)
    d2 *= d2
    dy = np.subtract(y_lo, y)
    np.maximum(dy, y - y_hi, out=dy)
    np.maximum(dy, F32(0.0), out=dy)
    dy *= dy
    d2 += dy
    del dy
    # the table cell: magnitude bin (truncation: the bin's index) and lag index (the grid point at or below)
    cell = m * F32(1.0 / _PRUNE_MAG_STEP)
    cell = cell.astype(np.intp)
    if burn_in > 0.0:
        lag = t * (-1.0 / lag_step)
        np.clip(lag, 0.0, _PRUNE_POINTS - 1, out=lag)
        cell *= _PRUNE_POINTS
        cell += lag.astype(np.intp)
        del lag
    else:
        cell *= _PRUNE_POINTS
    # squared threshold rounded up, so that d^2 >= it implies d >= the threshold
    limit = (min_distance.astype(np.float64) ** 2).astype(F32)
    limit = np.where(limit < min_distance.astype(np.float64) ** 2, np.nextafter(limit, F32(np.inf)), limit)
    pruned = d2 >= limit.ravel()[cell]
    pruned &= ~keep
    return pruned if pruned.any() else None


# --------------------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------------------


def simulate_etas(
    params: ETASParams,
    *,
    duration: float,
    region: tuple[float, float, float, float],
    rng: np.random.Generator,
    burn_in: float = 0.0,
    margin: float = 0.0,
    max_events: int | None = None,
    prune: bool = True,
    stats: dict[str, int] | None = None,
) -> pd.DataFrame:
    """Simulate an ETAS catalog on [0, duration) days in ``region`` = (xmin, xmax, ymin, ymax) km.

    Background events start at -burn_in and cover the region grown by ``margin`` km on each side, at the
    density mu/area(region) (so the region gets mu background events per day). Returns a catalog with the
    columns and dtypes of ``catalog.CATALOG_COLUMNS``: the events with 0 <= time < duration inside the
    region (edges included), sorted by time, event_id 0..N-1; parent_id the triggering event's event_id, or
    -1 for background events *and* for aftershocks whose parent is not in the catalog (burn-in, outside the
    region); generation the true generation (0 background). See the module docstring for the algorithm.

    ``prune`` (default True) drops the background events outside the catalog (in the margin or the burn-in)
    whose families are expected to put fewer than PRUNE_EPSILON = 1e-4 events into it
    (``family_reach_bound``), with their families: the catalog's expected count is then low by at most 1e-4
    per pruned event. Nothing else changes: where no event is pruned (the default config's kernel), the
    catalog is the unpruned one, byte for byte. ``stats``, a dict, receives the numbers of simulated and
    pruned events and of generations.

    ``max_events`` caps the number of simulated events (all generations, burn-in and margin included):
    exceeding it raises RuntimeError. It is required for a supercritical model (n >= 1), which
    ``params.check`` refuses otherwise. Untruncated GR (mmax None) can produce an arbitrarily large event;
    one expected to trigger more than 1e12 aftershocks raises RuntimeError.
    Raises ParameterError for invalid parameters, ValueError for an invalid window.
    """
    params.check(max_events=max_events)
    duration, region, burn_in, margin = _check_window(duration, region, burn_in, margin)
    xmin, xmax, ymin, ymax = region
    if max_events is not None:
        max_events = int(max_events)
    mc, beta = params.mc, params.beta
    dmax = None if params.mmax is None else params.mmax - mc
    # Positions are float32 offsets from the region's centre; the float32 bounds are those whose float64
    # position cx + x lies inside the region, so the catalog never holds a point outside it.
    cx, cy = 0.5 * (xmin + xmax), 0.5 * (ymin + ymax)
    x_lo, x_hi = _f32_bounds(xmin, xmax, cx)
    y_lo, y_hi = _f32_bounds(ymin, ymax, cy)
    half_w, half_h = 0.5 * (xmax - xmin) + margin, 0.5 * (ymax - ymin) + margin
    span = duration + burn_in

    n = int(rng.poisson(params.mu / ((xmax - xmin) * (ymax - ymin)) * (4.0 * half_w * half_h) * span))
    simulated = n
    _check_cap(simulated, max_events, 0, params)
    t = rng.random(n)
    t *= span
    t -= burn_in
    np.minimum(t, np.nextafter(duration, -math.inf), out=t)  # rounding must not reach the window end
    x = _centred_uniform(rng, n, half_w)
    y = _centred_uniform(rng, n, half_h)
    if margin == 0.0:  # the whole background is in the region: keep float32 rounding inside it too
        np.clip(x, x_lo, x_hi, out=x)
        np.clip(y, y_lo, y_hi, out=y)
    m = _gr_offsets(n, beta, dmax, rng)
    parent = None  # background events have none (-1)

    store = _Store()
    generation = 0
    pruned = 0
    log_k = math.log(params.K) if params.K > 0 else -math.inf
    log_d = math.log(params.D)
    while n:
        # ---- store this generation's events that are in the catalog (t >= 0, inside the region)
        if generation == 0 and margin == 0.0 and burn_in == 0.0:
            keep = kept = None
        else:
            keep = (x >= x_lo) & (x <= x_hi) & (y >= y_lo) & (y <= y_hi)
            if burn_in > 0.0:
                keep &= t >= 0.0
            kept = np.flatnonzero(keep)
        first_id = store.add(kept, t, m, x, y, parent)
        if params.K == 0.0:
            break
        if generation == 0 and keep is not None and prune:
            # ---- background events outside the catalog whose families cannot reach it: dropped (no children)
            dropped = _negligible(params, burn_in, margin, t, x, y, m, keep, (x_lo, x_hi, y_lo, y_hi))
            if dropped is not None:
                pruned = int(np.count_nonzero(dropped))
                live = np.flatnonzero(~dropped)
                t, x, y, m, keep = (a.take(live) for a in (t, x, y, m, keep))
                kept = np.flatnonzero(keep)
                n = t.size
                del live, dropped

        # ---- direct aftershocks: Poisson(kappa(m)) per event, Omori delays, drop those past the end
        rate = m * F32(params.alpha)
        rate += F32(log_k)
        np.exp(rate, out=rate)
        if rate.max(initial=0.0) > _MAX_PRODUCTIVITY:
            raise RuntimeError(
                f"an event of magnitude {mc + float(m[np.argmax(rate)]):.2f} would trigger {float(rate.max()):.3g} "
                f"direct aftershocks on average (K = {params.K:g}, alpha = {params.alpha:g}); truncate the "
                "Gutenberg-Richter law with mmax or lower alpha"
            )
        # parent index of every child, in parent order (np.repeat over the parents that have children only)
        pidx, count = _poisson_hits(rate, rng)
        del rate
        if count is not None:
            pidx = np.repeat(pidx, count)
        del count
        n_children = pidx.size
        if n_children == 0:
            break
        dt = sample_omori_times(n_children, params.p, params.c, params.tau, rng)
        tc = t[pidx]
        tc += dt
        del dt
        before_end = np.flatnonzero(tc < duration)
        if before_end.size < tc.size:
            pidx = pidx.take(before_end)
            tc = tc.take(before_end)
        del before_end
        n_children = tc.size
        simulated += n_children
        _check_cap(simulated, max_events, generation + 1, params)
        if n_children == 0:
            break

        # ---- parent ids: the catalog id of each parent, -1 when the parent is not in the catalog
        if kept is None:
            parent = pidx.astype(np.int32)
            parent += first_id
        else:
            kid = np.full(n, -1, dtype=np.int32)
            kid[kept] = np.arange(first_id, first_id + kept.size, dtype=np.int32)
            parent = kid.take(pidx)
            del kid
        del keep, kept

        # ---- positions: parent position + distance r (inverse CDF) in a uniform direction
        sigma = m.take(pidx)  # the parents' magnitudes above Mc
        sigma *= F32(params.gamma)
        sigma += F32(log_d)
        np.exp(sigma, out=sigma)  # sigma(m) = D exp(gamma (m - Mc)), km^2
        r = sample_kernel_distances(sigma, params.q, rng)
        del sigma
        angle = rng.random(n_children, dtype=F32)
        angle *= F32(2.0 * math.pi)
        offset = np.cos(angle)
        offset *= r
        xc = x.take(pidx)
        xc += offset
        np.sin(angle, out=angle)
        angle *= r
        yc = y.take(pidx)
        yc += angle
        del r, angle, offset, pidx

        m = _gr_offsets(n_children, beta, dmax, rng)
        t, x, y = tc, xc, yc
        del tc, xc, yc
        n = n_children
        generation += 1
    del t, x, y, m, parent
    if stats is not None:
        stats.update(simulated=simulated, pruned=pruned, generations=generation + 1)
    return store.catalog(duration, mc, cx, cy)


def _check_window(duration, region, burn_in, margin):
    try:
        xmin, xmax, ymin, ymax = (float(v) for v in region)
    except (TypeError, ValueError):
        raise ValueError(f"region = {region!r}: must be (xmin, xmax, ymin, ymax) in km") from None
    if not all(math.isfinite(v) for v in (xmin, xmax, ymin, ymax)) or not (xmax > xmin and ymax > ymin):
        raise ValueError(
            f"region = {region!r}: must be finite (xmin, xmax, ymin, ymax) with xmax > xmin and ymax > ymin"
        )
    checked = []
    for name, value, positive in (("duration", duration, True), ("burn_in", burn_in, False), ("margin", margin, False)):
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v) or v < 0 or (positive and v == 0):
            raise ValueError(f"{name} = {value!r}: must be a finite number {'> 0' if positive else '>= 0'}")
        checked.append(v)
    duration, burn_in, margin = checked
    return duration, (xmin, xmax, ymin, ymax), burn_in, margin


def _f32_bounds(lo: float, hi: float, centre: float) -> tuple[np.float32, np.float32]:
    """The float32 range of offsets v with lo <= centre + float64(v) <= hi."""
    a, b = F32(lo - centre), F32(hi - centre)
    while centre + float(a) < lo:
        a = np.nextafter(a, F32(np.inf))
    while centre + float(b) > hi:
        b = np.nextafter(b, F32(-np.inf))
    return a, b


def _centred_uniform(rng: np.random.Generator, n: int, half: float) -> np.ndarray:
    """n float32 values uniform on [-half, half)."""
    v = rng.random(n, dtype=F32)
    v -= F32(0.5)
    v *= F32(2.0 * half)
    return v


def _check_cap(simulated: int, max_events: int | None, generation: int, params: ETASParams) -> None:
    if max_events is not None and simulated > max_events:
        n = params.branching_ratio()
        raise RuntimeError(
            f"ETAS simulation stopped: {simulated} simulated events (burn-in and margin included) exceed "
            f"max_events = {max_events} at generation {generation}; branching ratio n = {n:.6g}"
            + (" (supercritical: the number of events grows without bound)" if n >= 1 else "")
        )


class _Store:
    """The events kept in the catalog, one chunk per generation, in generation order.

    Within a chunk, children follow their parents' order, so parent ids are non-decreasing (apart from -1)
    and point into the previous chunk.
    """

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, ...]] = []  # (time f8, m f4, x f4, y f4, parent i4 or None: -1)
        self.size = 0

    def add(self, kept, t, m, x, y, parent) -> int:
        """Store the events at the indices ``kept`` (None: all) and return the catalog id of the first one."""
        first = self.size
        arrays = (t, m, x, y, parent)
        if kept is not None:
            arrays = tuple(None if a is None else a.take(kept) for a in arrays)
        self.chunks.append(arrays)
        self.size += arrays[0].size
        if self.size > 2**31 - 2:
            raise RuntimeError(f"more than 2**31 - 2 events in the catalog ({self.size}); shorten the window")
        return first

    def catalog(self, duration: float, mc: float, cx: float, cy: float) -> pd.DataFrame:
        """Sort the kept events by time and build the catalog DataFrame (``_gather_records``)."""
        n = self.size
        if n == 0:
            return empty_catalog()
        chunks, self.chunks = self.chunks, []  # the gather empties the list as it goes
        columns = _gather_records(chunks, n, duration, (mc, cx, cy))
        assert list(columns) == list(CATALOG_COLUMNS)
        return pd.DataFrame(columns, copy=False)


def _blocks(sizes: list[int]):
    """(chunk index, start in the chunk, end in the chunk, start in storage order) of consecutive blocks of at
    most _BLOCK events that cover the chunks of ``sizes`` in storage order."""
    start = 0
    for g, size in enumerate(sizes):
        for a in range(0, size, _BLOCK):
            b = min(a + _BLOCK, size)
            yield g, a, b, start + a
        start += size


def _gather_records(chunks: list, n: int, duration: float, shifts) -> dict[str, np.ndarray]:
    """The catalog's columns, in blocks of _BLOCK events that stay in the cache: the time order and its
    inverse (``_time_order``), one 32-byte record per event in storage order (``_fill_records``: parent
    storage ids mapped to catalog ids on the way), then one gather of records per block of the time order (one
    cache miss per event), from which the block's columns are written; the parent ids overwrite the block of
    the permutation just used."""
    sizes = [chunk[0].size for chunk in chunks]
    # catalog id of every stored event; the extra slot maps parent -1 to -1
    rank = np.empty(n + 1, dtype=np.int32)
    rank[n] = -1
    perm = _time_order([chunk[0] for chunk in chunks], duration, rank)
    rec = _fill_records(chunks, sizes, rank)
    del rank
    mc, cx, cy = (np.float64(v) for v in shifts)
    time, magnitude, x, y = (np.empty(n) for _ in range(4))
    generation = np.empty(n, dtype=np.int32)
    parent = perm  # each block of the time order is read before the parent ids overwrite it
    buffer = np.empty(min(n, _BLOCK), dtype=_RECORD)
    for s in range(0, n, _BLOCK):
        e = min(s + _BLOCK, n)
        block = rec.take(perm[s:e], out=buffer[: e - s], mode="clip")  # "clip": in range; no checks
        time[s:e] = block["time"]
        for column, field, shift in ((magnitude, "m", mc), (x, "x", cx), (y, "y", cy)):
            part = column[s:e]
            part[...] = block[field]  # float64(value) + shift: a cast, then an add in the cache
            part += shift
        parent[s:e] = block["parent"]
        generation[s:e] = block["generation"]
    del rec, buffer
    return {"event_id": np.arange(n, dtype=np.int64), "time": time, "magnitude": magnitude, "x": x, "y": y,
            "parent_id": parent, "generation": generation}


def _fill_records(chunks: list, sizes: list[int], rank: np.ndarray) -> np.ndarray:
    """The stored events as records in storage order, parent storage ids mapped to catalog ids by ``rank``;
    empties ``chunks`` as it goes."""
    rec = np.empty(sum(sizes), dtype=_RECORD)
    for g, a, b, s in _blocks(sizes):
        t, m, x, y, parent = chunks[g]
        part = rec[s : s + b - a]
        part["time"] = t[a:b]
        part["m"] = m[a:b]
        part["x"] = x[a:b]
        part["y"] = y[a:b]
        part["generation"] = g
        if parent is None:  # background
            part["parent"] = -1
        else:  # parent ids are non-decreasing within a chunk: a near-sequential walk through rank
            rank.take(parent[a:b], out=part["parent"], mode="wrap")  # -1 wraps to slot n
        if b == sizes[g]:
            chunks[g] = ()
    return rec


def _time_order(times: np.ndarray | list[np.ndarray], duration: float, rank: np.ndarray | None = None) -> np.ndarray:
    """The permutation that sorts ``times`` (values in [0, duration); a list: their concatenation), ties in
    index order; with ``rank`` (int32, at least N long), also its inverse: rank[perm[i]] = i.

    A key sort, several times faster than argsort (RESULTS.md): each int64 key packs the time, quantised to its
    top bits, above the index, and numpy sorts int64 with SIMD. Runs of equal quanta (a quantum is
    duration / 2^(63 - log2 N): rare, and mostly in index order already) are then re-sorted by exact time.
    The keys are built, and then checked for equal quanta, reduced to the permutation and scattered into
    ``rank`` in one pass, in blocks of _BLOCK that stay in the cache.
    """
    times = [times] if isinstance(times, np.ndarray) else times
    sizes = [t.size for t in times]
    n = sum(sizes)
    index_bits = max(1, int(n - 1).bit_length())
    time_bits = 63 - index_bits
    if n < 2 or time_bits < 24:  # (not for a catalog, which holds fewer than 2^31 events)
        perm = np.argsort(np.concatenate(times), kind="stable")
        if rank is not None:
            rank[perm] = np.arange(n, dtype=np.int32)
        return perm
    key = np.empty(n, dtype=np.int64)
    scale = 2.0**time_bits / duration * (1.0 - 2.0**-40)  # time * scale < 2^time_bits, rounding included
    ramp = np.arange(min(n, _BLOCK), dtype=np.int64)
    for g, a, b, s in _blocks(sizes):
        part = key[s : s + b - a]
        np.multiply(times[g][a:b], scale, out=part, casting="unsafe")  # truncates, as astype does
        part <<= index_bits
        part += ramp[: b - a]
        part += s
    key.sort()
    pos = []
    ramp = ramp.astype(np.int32)
    for s in range(0, n, _BLOCK):
        # equal quanta give adjacent keys less than 2^index_bits apart: rare candidates, checked exactly
        # (the block's keys and the next block's first, still whole)
        part = key[s : s + _BLOCK + 1]
        near = np.flatnonzero(np.diff(part) < 1 << index_bits)
        if near.size:
            near = near[(part[near] >> index_bits) == (part[near + 1] >> index_bits)]
            pos.append(near + s)
        part = key[s : s + _BLOCK]
        part &= (1 << index_bits) - 1
        if rank is not None:
            rank[part] = ramp[: part.size] + np.int32(s)
    perm = key
    if pos:
        # the members of runs of equal quanta, sorted by (time, index): the quantum is monotone in time, so
        # sorting them together keeps every run in its place and orders each run exactly
        pos = np.concatenate(pos)
        pos = np.union1d(pos, pos + 1)
        members = perm[pos]
        ends = np.cumsum(sizes)
        chunk = np.searchsorted(ends, members, side="right")
        member_time = np.array([times[g][i - (ends[g] - sizes[g])] for g, i in zip(chunk, members)])
        perm[pos] = members[np.lexsort((members, member_time))]
        if rank is not None:
            rank[perm[pos]] = pos
    return perm


def catalog_metadata(config_id: str, replicate: int, seed: int, etas: dict[str, Any], params: ETASParams,
                     simulation: dict[str, Any]) -> dict[str, Any]:
    """The metadata document of a simulated catalog (docs/methods/windows.md): what made it, and its frame."""
    return {
        "kind": "etas",
        "config_id": config_id,
        "replicate": int(replicate),
        "seed": seed,
        "parameters": dict(etas),
        "mc": params.mc,
        "mmax": params.mmax,
        "region_km": list(simulation["region_km"]),
        "origin": "t = 0 days is the end of the burn-in; x, y are km in the local frame",
        **{k: simulation[k] for k in ("duration_days", "burn_in_days", "margin_km")},
    }
