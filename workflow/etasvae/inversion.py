"""ETAS inversion: maximum-likelihood estimates of the ETAS parameters a catalog carries.

Model (README "ETAS model and units"): lambda(t, x, y) = mu u(x, y) + sum_j kappa(m_j) g(t - t_j) f(r | m_j),
kappa(m) = K e^(alpha (m - Mc)), g(t) = (p-1) c^(p-1) (t+c)^-p, f(r|m) = (q-1)/(pi sigma) (1 + r^2/sigma)^-q,
sigma = D e^(gamma (m - Mc)), u = 1/area of the region. The *temporal* model drops f and u (mu, K, alpha, c, p);
the *space-time* model has all eight. b is estimated apart, by Aki-Utsu (magnitudes are independent of the
rest of the likelihood under Gutenberg-Richter).

Data: one or several *sequences*, each an observation window [t0, t1) (days) and, for the space-time model,
a rectangular region. Events of a sequence before t0 are auxiliary history: they trigger but are not scored.
Several sequences share the parameters (joint fit over short windows, each with its own clock and no history
before its start). Log-likelihood (Daley & Vere-Jones 2003, eq. 7.3.2; Ogata 1998 for ETAS):

    l = sum_{targets i} log lambda(t_i, x_i, y_i) - sum_sequences int_{t0}^{t1} int_region lambda dA dt

with the integral exact: mu (t1 - t0) + sum_j kappa(m_j) [G(t1 - t_j) - G(max(t0 - t_j, 0))] F_j, G the Omori CDF
and F_j the part of the spatial kernel of event j inside the region (not the whole plane), by Gauss-Legendre
quadrature over the four angular sectors the rectangle's edges subtend from the event (_region_fraction).

Pairs cut: pair (i, j) enters the sum only when t_i - t_j < T_cut and r_ij < R_j = k sqrt(sigma_j), and the
integral uses the same truncated kernel (G(min(., T_cut)), F_j of the disc of radius R_j inside the region),
so the likelihood is the exact likelihood of ETAS with kernels truncated to that cylinder. T_cut and k are
chosen from the parameters so that each kernel loses at most ``cut_mass`` of its mass in time and in space:
(1 + T_cut/c)^(1-p) <= cut_mass (at most the sequence span) and (1 + k^2)^(1-q) = cut_mass. Memory is then
proportional to the number of pairs inside the cylinders, not N^2 (for a fixed density of events). The
aftershocks beyond the cut (fraction ``neglected_mass`` of every kernel) are not modelled as triggered: they
are absorbed by mu, which is biased up by about n * neglected_mass * N / duration events per day (reported).
The cut is chosen from starting values, then once more from the estimate (and the fit redone) when it moved.

Optimisation: L-BFGS-B on mu, K, c, p - 1, D, q - 1 on a log scale and alpha, gamma as they are, with the
gradient in closed form (numpy, float64; _Likelihood), from several starts. Standard errors: the inverse
observed information (central differences of that gradient at the estimate), mapped to the natural parameters
by the delta method. Background
probability of each target event: (mu u) / lambda at the estimate (Zhuang, Ogata & Vere-Jones 2002).

Profile likelihood (profile_loglik, signed_root, profile_interval; fit_sequences(profile=...)): l_p(v), the
log-likelihood maximised with one natural parameter fixed at v (b refitted with the magnitudes'
Gutenberg-Richter likelihood for the branching ratio), its signed root r(v) = sign(est - v) sqrt(2 (l - l_p))
and the interval where |r| <= z. r is N(0, 1) at the truth to O(1/sqrt(N)) on any scale, and holds at p
close to 1 where the Wald errors of K and n do not (README "Limits").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from .stats import b_value_aki_utsu, b_value_shi_bolt_error

MODELS = ("temporal", "space-time")
TEMPORAL_PARAMS = ("mu", "K", "alpha", "c", "p")
SPATIAL_PARAMS = ("D", "q", "gamma")
LN10 = math.log(10.0)
# Gauss-Legendre nodes per angular sector of the region integral (4 sectors per event).
_SECTOR_NODES = 16
# Candidate pairs handled at once when the pair list is built (bounds the temporary memory, ~40 bytes each).
_PAIR_CHUNK = 4_000_000
# Source events per k-d tree query when the pairs come from trees (_tree_pairs): bounds the candidates held.
_TREE_BLOCK = 1024
# Pairs evaluated at once: the likelihood's temporaries (~10 float64 arrays of this length) then stay in the
# processor's cache, which makes an evaluation about twice as fast as with chunks of a million.
_CHUNK_PAIRS = 65_536
# Bounds of the optimised (transformed) parameters: wide, they only keep the optimiser in finite arithmetic.
_BOUNDS = {
    "mu": (-20.0, 20.0),  # log
    "K": (-40.0, 10.0),  # log A, A = K (p-1) c^(p-1)
    "alpha": (-2.0, 8.0),
    "c": (math.log(1e-7), math.log(100.0)),  # log
    "p": (math.log(1e-3), math.log(5.0)),  # log(p - 1)
    "D": (math.log(1e-6), math.log(1e6)),  # log
    "q": (math.log(1e-2), math.log(20.0)),  # log(q - 1)
    "gamma": (-2.0, 8.0),
}
DEFAULT_START = {"mu": None, "K": 0.2, "alpha": 1.5, "c": 0.01, "p": 1.2, "D": 1.0, "q": 1.5, "gamma": 1.0}


class InversionError(ValueError):
    """The catalog or the fitting options cannot give an estimate (the message says why)."""


@dataclass
class Sequence:
    """One observation: events (time-ordered, days), window [t0, t1), region (xmin, xmax, ymin, ymax) km."""

    time: np.ndarray
    magnitude: np.ndarray
    x: np.ndarray
    y: np.ndarray
    t0: float
    t1: float
    region: tuple[float, float, float, float] | None = None


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
            "expected_background_events": float(self.background_probability.sum()),
            # only when profiled: the invert rules' JSON keeps its keys
            **({"profile_intervals": {k: list(v) for k, v in self.profile_intervals.items()},
                "profile_level": self.profile_level} if self.profile_intervals else {}),
        }


# ------------------------------------------------------------------------------------------ data


def param_names(model: str) -> tuple[str, ...]:
    if model not in MODELS:
        raise InversionError(f"model = {model!r}: must be one of {', '.join(MODELS)}")
    return TEMPORAL_PARAMS + (SPATIAL_PARAMS if model == "space-time" else ())


def catalog_sequence(
    catalog: pd.DataFrame,
    *,
    mc: float,
    t_start: float,
    t_end: float,
    aux_days: float | None = None,
    region: tuple[float, float, float, float] | None = None,
    delta_m: float = 0.0,
) -> Sequence:
    """The events of ``catalog`` with magnitude >= mc as one sequence: targets in [t_start, t_end), history
    from t_start - aux_days (None: every earlier event). Events outside ``region`` are left out. With
    magnitudes in bins of ``delta_m``, the bin of Mc counts whatever its rounding (m >= mc - delta_m/2)."""
    if not t_end > t_start:
        raise InversionError(f"target window [{t_start}, {t_end}): need t_end > t_start")
    t = catalog["time"].to_numpy(dtype=float)
    m = catalog["magnitude"].to_numpy(dtype=float)
    keep = (m >= _magnitude_floor(mc, delta_m)) & (t < t_end)
    if aux_days is not None:
        keep &= t >= t_start - aux_days
    x = catalog["x"].to_numpy(dtype=float)
    y = catalog["y"].to_numpy(dtype=float)
    if region is not None:
        xmin, xmax, ymin, ymax = region
        keep &= (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
    order = np.argsort(t[keep], kind="stable")
    return Sequence(t[keep][order], m[keep][order], x[keep][order], y[keep][order], float(t_start), float(t_end), region)


def _magnitude_floor(mc: float, delta_m: float) -> float:
    """Smallest magnitude kept for Mc: mc itself, or the lower edge of Mc's bin (less rounding slack)."""
    return mc - delta_m / 2 - 1e-9 if delta_m > 0 else mc


def window_sequences(windows: list[pd.DataFrame], durations, *, mc: float, region=None,
                     delta_m: float = 0.0) -> list[Sequence]:
    """Short windows as sequences on their own clocks [0, duration] with no history (magnitude >= mc).

    The end is included: an event window ends at its last event (a stopping time, for which the likelihood
    keeps its form)."""
    out = []
    for df, duration in zip(windows, durations):
        t = df["time"].to_numpy(dtype=float)
        m = df["magnitude"].to_numpy(dtype=float)
        keep = (m >= _magnitude_floor(mc, delta_m)) & (t >= 0.0) & (t <= duration)
        if duration <= 0:
            continue
        order = np.argsort(t[keep], kind="stable")
        out.append(
            Sequence(
                t[keep][order], m[keep][order], df["x"].to_numpy(dtype=float)[keep][order],
                df["y"].to_numpy(dtype=float)[keep][order], 0.0, float(duration), region,
            )
        )
    return out


@dataclass
class _Data:
    """All sequences concatenated (sequence-major, time order within), with pairs and quadrature."""

    dm: np.ndarray  # magnitude - mc, every event
    target: np.ndarray  # bool, scored events
    seq: np.ndarray  # sequence index of every event
    t_hi: np.ndarray  # per event: min(t1 - t_j, T_cut)
    t_lo: np.ndarray  # per event: min(max(t0 - t_j, 0), T_cut)
    span: float  # total observed duration (sum of t1 - t0)
    inv_area: np.ndarray | None  # per target event: 1/area of its region
    pair_i: np.ndarray  # index among target events
    pair_j: np.ndarray  # index among all events
    lag: np.ndarray
    r2: np.ndarray | None
    quad: tuple[np.ndarray, np.ndarray] | None  # (rho^2 (N, nodes), weights (N, nodes)) of the region integral
    const: tuple[np.ndarray, np.ndarray] | None  # (weight of the constant part, R^2) per event
    t_cut: float
    k_cut: float
    radius2: np.ndarray | None  # per event: R_j^2 of its cut disc (km^2)
    full_quad: tuple[np.ndarray, np.ndarray] | None  # region quadrature of the uncut kernel
    t_hi_full: np.ndarray  # t1 - t_j (no time cut)
    t_lo_full: np.ndarray  # max(t0 - t_j, 0)


def _log_expm1(x: float) -> float:
    """log(e^x - 1) for x > 0, without overflow for large x (p or q close to 1)."""
    return x + math.log1p(-math.exp(-x))


def _cut_for(params: dict[str, float], model: str, cut_mass: float, span: float) -> tuple[float, float]:
    """(T_cut, k): the Omori tail and spatial tail beyond them are each cut_mass of the kernel."""
    p, c = params["p"], params["c"]
    log_t = math.log(c) + _log_expm1(math.log(cut_mass) / (1.0 - p)) if p > 1 else math.inf
    t_cut = math.inf if log_t >= math.log(span) else math.exp(log_t)  # no cut: the whole span is kept
    k = math.inf
    if model == "space-time":
        log_k2 = _log_expm1(math.log(cut_mass) / (1.0 - params["q"]))
        k = math.exp(0.5 * log_k2) if log_k2 < 700 else math.inf
    return t_cut, k


def _build(seqs: list[Sequence], model: str, mc: float, t_cut: float, k_cut: float, params) -> _Data:
    space = model == "space-time"
    sizes = np.array([s.time.size for s in seqs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    t = np.concatenate([s.time for s in seqs]) if seqs else np.zeros(0)
    m = np.concatenate([s.magnitude for s in seqs]) if seqs else np.zeros(0)
    seq = np.repeat(np.arange(len(seqs)), sizes)
    t0 = np.array([s.t0 for s in seqs])[seq]
    t1 = np.array([s.t1 for s in seqs])[seq]
    target = t >= t0
    dm = m - mc
    t_hi = np.minimum(t1 - t, t_cut)
    t_lo = np.minimum(np.maximum(t0 - t, 0.0), t_cut)
    span = float(sum(s.t1 - s.t0 for s in seqs))
    x = y = None
    radius2 = None
    if space:
        x = np.concatenate([s.x for s in seqs])
        y = np.concatenate([s.y for s in seqs])
        sigma = params["D"] * np.exp(params["gamma"] * dm)
        radius2 = k_cut * k_cut * sigma
    pair_i, pair_j, lag, r2 = _pairs(t, x, y, offsets, target, t_cut, radius2)
    quad = const = inv_area = full = None
    if space:
        regions = [s.region for s in seqs]
        if any(r is None for r in regions):
            raise InversionError("the space-time model needs the region of every sequence")
        reg = np.array(regions, dtype=float)[seq]
        quad, const = _region_quadrature(x, y, reg, radius2)
        full = _region_quadrature(x, y, reg, None)[0]
        area = (reg[:, 1] - reg[:, 0]) * (reg[:, 3] - reg[:, 2])
        inv_area = 1.0 / area[target]
    return _Data(
        dm=dm, target=target, seq=seq, t_hi=t_hi, t_lo=t_lo, span=span, inv_area=inv_area,
        pair_i=pair_i, pair_j=pair_j, lag=lag, r2=r2, quad=quad, const=const, t_cut=t_cut, k_cut=k_cut,
        radius2=radius2, full_quad=full, t_hi_full=t1 - t, t_lo_full=np.maximum(t0 - t, 0.0),
    )


def _pairs(t, x, y, offsets, target, t_cut, radius2):
    """Pairs (i, j): target i, earlier event j of the same sequence, t_i - t_j < T_cut and r_ij < R_j.

    Returns (rank of i among the targets, j, lag t_i - t_j, r_ij^2 or None). Candidates come from a sweep
    over time (chunks of _PAIR_CHUNK) or, for the space-time model when there are many, from k-d trees with
    the sources grouped by cut radius (factors of 2), so that memory follows the pairs kept, not N^2.
    """
    target_rank = np.cumsum(target) - 1
    lo = np.empty(t.size, dtype=np.int64)
    hi = np.empty(t.size, dtype=np.int64)
    for a, b in zip(offsets[:-1], offsets[1:]):
        ts = t[a:b]
        lo[a:b] = a + (np.searchsorted(ts, ts - t_cut, side="right") if math.isfinite(t_cut) else 0)
        hi[a:b] = a + np.searchsorted(ts, ts, side="left")
    tgt_index = np.flatnonzero(target)
    counts = (hi - lo)[tgt_index]
    if radius2 is not None and counts.sum() > 4 * _PAIR_CHUNK:
        parts = [_tree_pairs(t, x, y, a, b, target, t_cut, radius2) for a, b in zip(offsets[:-1], offsets[1:])]
    else:
        parts = []
        cum = np.cumsum(counts)
        start = 0
        while start < tgt_index.size:
            base = cum[start - 1] if start else 0
            stop = max(int(np.searchsorted(cum, base + _PAIR_CHUNK, side="right")), start + 1)
            idx, cnt = tgt_index[start:stop], counts[start:stop]
            ii = np.repeat(idx, cnt)
            jj = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(lo[idx], cnt)
            keep = np.ones(ii.size, dtype=bool)
            r2 = None
            if radius2 is not None:
                r2 = (x[ii] - x[jj]) ** 2 + (y[ii] - y[jj]) ** 2
                keep = r2 < radius2[jj]
                r2 = r2[keep]
            parts.append((ii[keep], jj[keep], r2))
            start = stop
    ii = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    jj = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    r2 = np.concatenate([p[2] for p in parts]) if parts and radius2 is not None else None
    return target_rank[ii].astype(np.int64), jj.astype(np.int64), t[ii] - t[jj], r2


def _tree_pairs(t, x, y, a, b, target, t_cut, radius2):
    """_pairs for the events a..b-1 of one sequence, from k-d trees (see _pairs)."""
    from scipy.spatial import cKDTree

    xy = np.column_stack([x[a:b], y[a:b]])
    tree = cKDTree(xy)
    r = np.sqrt(radius2[a:b])
    level = np.floor(np.log2(np.maximum(r, 1e-300))).astype(np.int64)
    out = []
    for lv in np.unique(level):
        # the sources of a level in blocks of _TREE_BLOCK: each block's candidates (both time orders, before
        # the filter) are held at once, not the level's
        members = np.flatnonzero(level == lv)
        for src in np.array_split(members, -(-members.size // _TREE_BLOCK)):
            found = cKDTree(xy[src]).sparse_distance_matrix(tree, float(r[src].max()), output_type="ndarray")
            j = src[found["i"]]
            i = found["j"].astype(np.int64)
            gi, gj = i + a, j + a
            keep = (found["v"] < r[j]) & (t[gi] > t[gj]) & (t[gi] - t[gj] < t_cut) & target[gi]
            del found
            gi, gj = gi[keep], gj[keep]
            out.append((gi, gj, (x[gi] - x[gj]) ** 2 + (y[gi] - y[gj]) ** 2))
    ii = np.concatenate([o[0] for o in out])
    order = np.argsort(ii, kind="stable")
    return ii[order], np.concatenate([o[1] for o in out])[order], np.concatenate([o[2] for o in out])[order]


def _region_quadrature(x, y, reg, radius2):
    """Nodes of F_j = int over region of the kernel truncated at R_j, for events inside their region.

    Seen from the event, the rectangle is four triangles, one per edge at normal distance d; along the
    direction at angle phi from that edge's normal the boundary is at d / cos(phi), and the kernel's radial
    CDF is F(r) = 1 - (1 + r^2/sigma)^(1-q). So F_j = (1/2 pi) sum_edges int F(min(d/cos phi, R_j)) dphi over
    the edge's angular range. Where |phi| > acos(d/R_j) the cut disc ends first and the integrand is the
    constant F(R_j); the rest is Gauss-Legendre with _SECTOR_NODES nodes. Returned: rho^2 at the nodes and the
    weights (sum of weights / 2 pi), and the total angle (/ 2 pi) of the constant parts with R_j^2.
    """
    x = np.clip(x, reg[:, 0], reg[:, 1])
    y = np.clip(y, reg[:, 2], reg[:, 3])
    # per edge: normal distance d, along-edge distances to the two corners (s_minus, s_plus)
    d = np.stack([x - reg[:, 0], reg[:, 1] - x, y - reg[:, 2], reg[:, 3] - y], axis=1)
    s_minus = np.stack([y - reg[:, 2], y - reg[:, 2], x - reg[:, 0], x - reg[:, 0]], axis=1)
    s_plus = np.stack([reg[:, 3] - y, reg[:, 3] - y, reg[:, 1] - x, reg[:, 1] - x], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = -np.arctan2(s_minus, d)
        b = np.arctan2(s_plus, d)
        r = np.sqrt(radius2)[:, None] if radius2 is not None else np.full((x.size, 1), np.inf)
        phi_star = np.where(d < r, np.arccos(np.minimum(d / r, 1.0)), 0.0)
    lo = np.maximum(a, -phi_star)
    hi = np.minimum(b, phi_star)
    width = np.maximum(hi - lo, 0.0)
    const_angle = ((b - a) - width).sum(axis=1) / (2.0 * math.pi)
    nodes, weights = np.polynomial.legendre.leggauss(_SECTOR_NODES)
    phi = 0.5 * (lo + hi)[..., None] + 0.5 * width[..., None] * nodes  # (N, 4, nodes)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho2 = np.where(width[..., None] > 0, (d[..., None] / np.cos(phi)) ** 2, 0.0)
    w = (0.5 * width[..., None] * weights) / (2.0 * math.pi)
    n = x.size
    r2 = radius2 if radius2 is not None else np.full(n, np.inf)
    return (rho2.reshape(n, -1), w.reshape(n, -1)), (const_angle, r2)


# ------------------------------------------------------------------------------------ likelihood


def _natural(theta, names: tuple[str, ...]) -> dict[str, float]:
    v = dict(zip(names, (float(x) for x in theta)))
    # theta_K is log A, A = K (p-1) c^(p-1) the amplitude of the unnormalised Omori law A/(t+c)^p: with p near 1
    # K and p - 1 trade off along a ridge that A removes (the etas package fits its k0 for the same reason)
    log_k = v["K"] - v["p"] - math.exp(v["p"]) * v["c"]
    out = {"mu": math.exp(v["mu"]), "K": math.exp(log_k), "alpha": v["alpha"], "c": math.exp(v["c"]),
           "p": 1.0 + math.exp(v["p"])}
    if "D" in v:
        out.update(D=math.exp(v["D"]), q=1.0 + math.exp(v["q"]), gamma=v["gamma"])
    return out


def _to_theta(params: dict[str, float], names: tuple[str, ...]) -> np.ndarray:
    log_amplitude = math.log(params["K"]) + math.log(params["p"] - 1.0) + (params["p"] - 1.0) * math.log(params["c"])
    tr = {"mu": math.log, "K": lambda v: log_amplitude, "alpha": float, "c": math.log, "p": lambda v: math.log(v - 1.0),
          "D": math.log, "q": lambda v: math.log(v - 1.0), "gamma": float}
    theta = np.array([tr[k](params[k]) for k in names])
    lo, hi = np.array([_BOUNDS[k] for k in names]).T
    return np.clip(theta, lo + 1e-9, hi - 1e-9)


class _Likelihood:
    """Log-likelihood of the (cut) ETAS model as a function of the transformed parameters theta (the
    optimiser's coordinates: log mu, log A, alpha, log c, log(p - 1), log D, log(q - 1), gamma), with its
    gradient in closed form.

    Per pair, a_ij = A e^(alpha dm_j) (lag + c)^-p [(q-1)/(pi sigma_j) (1 + r^2/sigma_j)^-q], so that
    d log a_ij / d theta is a few per-pair terms (1, dm, -p c/(lag + c), -(p-1) log(lag + c), and for the
    space-time model -1 + q v/(1+v), dm (-1 + q v/(1+v)), 1 - (q-1) log(1+v) with v = r^2/sigma_j); the
    gradient of sum_i log lambda_i is the sum of those terms weighted by a_ij / lambda_i. The pairs are
    taken in chunks of about _CHUNK_PAIRS (whole runs of a target's pairs), so the temporaries stay bounded:
    the pairs are ordered by target, and each term times a_ij is summed over each target's run (reduceat)
    before it is weighted by 1/lambda_i, so nothing per pair outlives its chunk."""

    def __init__(self, data: _Data, names: tuple[str, ...]):
        self.names = names
        self.space = "D" in names
        self.dm = np.asarray(data.dm, dtype=float)
        self.n_target = int(np.sum(data.target))
        self.t_hi, self.t_lo = data.t_hi, data.t_lo
        self.span = data.span
        # pairs ordered by target (_pairs gives them so: then they are not copied)
        ordered = bool(np.all(np.diff(data.pair_i) >= 0))
        order = slice(None) if ordered else np.argsort(data.pair_i, kind="stable")
        self.pi = np.asarray(data.pair_i, dtype=np.int64)[order]
        self.pj = np.asarray(data.pair_j, dtype=np.int64)[order]
        self.lag = np.asarray(data.lag, dtype=float)[order]
        self.dm_pair = self.dm[self.pj]
        self.per_target = np.bincount(self.pi, minlength=self.n_target)
        self.run_start = (np.cumsum(self.per_target) - self.per_target)[self.per_target > 0]
        self.chunks = self._chunks()
        if self.space:
            self.r2 = np.asarray(data.r2, dtype=float)[order]
            self.inv_area = np.asarray(data.inv_area, dtype=float)
            self.rho2, self.w = data.quad
            self.const_w, self.R2 = data.const
            self.rho2_full, self.w_full = data.full_quad
        self.t_hi_full, self.t_lo_full = data.t_hi_full, data.t_lo_full

    @property
    def n_pairs(self) -> int:
        return int(self.pi.size)

    def _chunks(self):
        """(first pair, end pair, first run, end run) of each chunk: about _CHUNK_PAIRS pairs, whole runs."""
        if not self.n_pairs:
            return []
        firsts = np.unique(np.searchsorted(self.run_start, np.arange(0, self.n_pairs, _CHUNK_PAIRS), side="right") - 1)
        ends = np.append(firsts[1:], self.run_start.size)
        pair_end = np.append(self.run_start[1:], self.n_pairs)
        return [(int(self.run_start[r0]), int(pair_end[r1 - 1]), int(r0), int(r1)) for r0, r1 in zip(firsts, ends)]

    def _sums(self, theta, grad: bool):
        """(background, lambda at the targets, sums over each target's pairs of a_ij times each of the terms
        of d log a_ij / d theta (rows: 1, dm, 1/(lag + c), log(lag + c), and for the space-time model
        f = v/(1+v), dm f, log(1+v); None without ``grad``), natural parameters)."""
        v = _natural(theta, self.names)
        t_a, alpha, c, p = float(theta[self.names.index("K")]), v["alpha"], v["c"], v["p"]
        background = v["mu"] * self.inv_area if self.space else np.full(self.n_target, v["mu"])
        rows = (7 if self.space else 4) if grad else 1
        sums = np.zeros((rows, self.run_start.size))
        if self.space:
            gamma, q = v["gamma"], v["q"]
            log_d = float(theta[self.names.index("D")])
            inv_sigma = np.exp(-(log_d + gamma * self.dm))  # per event
            const = t_a + math.log(q - 1.0) - math.log(math.pi) - log_d
        else:
            const = t_a
        for a, b, r0, r1 in self.chunks:
            dm, lag = self.dm_pair[a:b], self.lag[a:b] + c
            log_lag = np.log(lag)
            if self.space:
                ratio = self.r2[a:b] * inv_sigma[self.pj[a:b]]
                log_r = np.log1p(ratio)
                log_a = (const + (alpha - gamma) * dm) - p * log_lag - q * log_r
            else:
                log_a = (const + alpha * dm) - p * log_lag
            pair = np.exp(log_a, out=log_a)
            terms = np.empty((rows, b - a))
            terms[0] = pair
            if grad:
                np.multiply(pair, dm, out=terms[1])
                np.divide(pair, lag, out=terms[2])
                np.multiply(pair, log_lag, out=terms[3])
                if self.space:
                    np.multiply(pair, ratio / (1.0 + ratio), out=terms[4])
                    np.multiply(terms[4], dm, out=terms[5])
                    np.multiply(pair, log_r, out=terms[6])
            sums[:, r0:r1] = np.add.reduceat(terms, self.run_start[r0:r1] - a, axis=1)
        rate = np.zeros(self.n_target)
        rate[self.per_target > 0] = sums[0]
        return background, background + rate, (sums if grad else None), v

    def background_and_rate(self, theta):
        background, lam, _, _ = self._sums(theta, grad=False)
        return background, lam

    def __call__(self, theta) -> float:
        """The log-likelihood at theta."""
        _, lam, _, v = self._sums(theta, grad=False)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.log(lam).sum() - v["mu"] * self.span - self.triggered(theta))

    def value_and_grad(self, theta) -> tuple[float, np.ndarray]:
        """The log-likelihood at theta and its gradient in theta."""
        background, lam, sums, v = self._sums(theta, grad=True)
        names, c, p = self.names, v["c"], v["p"]
        with np.errstate(divide="ignore", invalid="ignore"):
            value = float(np.log(lam).sum() - v["mu"] * self.span)
            inv_lam = 1.0 / lam
        grad = np.zeros(len(names))
        grad[names.index("mu")] = float(background @ inv_lam) - v["mu"] * self.span
        # each term summed over the pairs with weight a_ij / lambda_i
        s = sums @ inv_lam[self.per_target > 0]
        grad[names.index("K")] += s[0]
        grad[names.index("alpha")] += s[1]
        grad[names.index("c")] += -p * c * s[2]
        grad[names.index("p")] += -(p - 1.0) * s[3]
        if self.space:
            q = v["q"]
            grad[names.index("D")] += -s[0] + q * s[4]
            grad[names.index("gamma")] += -s[1] + q * s[5]
            grad[names.index("q")] += s[0] - (q - 1.0) * s[6]
        trig, trig_grad = self.triggered(theta, grad=True)
        return value - trig, grad - trig_grad

    def triggered(self, theta, cut: bool = True, grad: bool = False):
        """Expected number of triggered events in the observed windows and regions, kernels cut or not (with
        its gradient in theta when ``grad``)."""
        names = self.names
        v = _natural(theta, names)
        K, alpha, c, p = v["K"], v["alpha"], v["c"], v["p"]
        t_lo, t_hi = (self.t_lo, self.t_hi) if cut else (self.t_lo_full, self.t_hi_full)
        x_lo, x_hi = t_lo / c, t_hi / c
        l_lo, l_hi = np.log1p(x_lo), np.log1p(x_hi)
        e_lo, e_hi = np.exp((1.0 - p) * l_lo), np.exp((1.0 - p) * l_hi)
        omori = e_lo - e_hi
        base = K * np.exp(alpha * self.dm)
        inside = 1.0
        if self.space:
            sigma = v["D"] * np.exp(v["gamma"] * self.dm)
            q = v["q"]
            rho2, w = (self.rho2, self.w) if cut else (self.rho2_full, self.w_full)
            ratio = rho2 / sigma[:, None]
            log_r = np.log1p(ratio)
            tail = np.exp((1.0 - q) * log_r)
            inside = (w * (1.0 - tail)).sum(axis=1)
            if grad:
                d_sigma = (1.0 - q) * (w * tail * (ratio / (1.0 + ratio))).sum(axis=1)  # d inside / d log sigma
                d_q = (q - 1.0) * (w * tail * log_r).sum(axis=1)  # d inside / d log(q - 1)
            if cut:
                finite = np.isfinite(self.R2)
                ratio_r = np.where(finite, self.R2, 0.0) / sigma
                log_rr = np.log1p(ratio_r)
                tail_r = np.where(finite, np.exp((1.0 - q) * log_rr), 0.0)
                inside = inside + self.const_w * (1.0 - tail_r)
                if grad:
                    d_sigma = d_sigma + (1.0 - q) * self.const_w * tail_r * (ratio_r / (1.0 + ratio_r))
                    d_q = d_q + (q - 1.0) * self.const_w * tail_r * log_rr
        weight = base * omori * inside
        total = float(weight.sum())
        if not grad:
            return total
        g = np.zeros(len(names))
        g[names.index("K")] = total
        g[names.index("alpha")] = float(weight @ self.dm)
        # log K = theta_K - theta_p - (p - 1) theta_c; the Omori integral's derivatives in log c and log(p - 1)
        d_omori_c = (p - 1.0) * (e_lo * x_lo / (1.0 + x_lo) - e_hi * x_hi / (1.0 + x_hi))
        d_omori_p = (p - 1.0) * (e_hi * l_hi - e_lo * l_lo)
        bi = base * inside
        g[names.index("c")] = float(bi @ (d_omori_c - (p - 1.0) * omori))
        log_c = math.log(c)
        g[names.index("p")] = float(bi @ (d_omori_p - (1.0 + (p - 1.0) * log_c) * omori))
        if self.space:
            bo = base * omori
            g[names.index("D")] = float(bo @ d_sigma)
            g[names.index("gamma")] = float(bo @ (d_sigma * self.dm))
            g[names.index("q")] = float(bo @ d_q)
        return total, g

    def far_rate(self, theta, grad: bool = False):
        """Events per day that the cut kernels leave to the background term (beyond the cut, inside), with its
        gradient in theta when ``grad``."""
        if not grad:
            return (self.triggered(theta, cut=False) - self.triggered(theta, cut=True)) / self.span
        full, g_full = self.triggered(theta, cut=False, grad=True)
        kept, g_kept = self.triggered(theta, cut=True, grad=True)
        return (full - kept) / self.span, (g_full - g_kept) / self.span


# ------------------------------------------------------------------------------------------ fit


def fit_sequences(
    seqs: list[Sequence],
    *,
    mc: float,
    model: str = "space-time",
    start: dict[str, float] | None = None,
    n_starts: int = 3,
    cut_mass: float = 0.05,
    seed: int = 0,
    delta_m: float = 0.0,
    profile: bool | tuple[str, ...] | list[str] = False,
    profile_level: float = 0.95,
) -> ETASFit:
    """Maximum-likelihood ETAS fit, jointly over ``seqs`` (see the module docstring). ``delta_m``: the
    magnitudes' bin width (0: continuous), for b by Aki-Utsu with Utsu's bin correction. ``profile``: True
    (every parameter and the branching ratio) or the parameters whose profile-likelihood intervals at
    ``profile_level`` to add (``profile_interval``; each costs about twenty refits)."""
    names = param_names(model)
    if not 0.0 < cut_mass < 1.0:
        raise InversionError(f"cut_mass = {cut_mass!r}: must be in (0, 1)")
    if not 0.0 <= delta_m < 1.0:
        raise InversionError(f"delta_m = {delta_m!r}: must be in [0, 1)")
    seqs = [s for s in seqs if s.t1 > s.t0]
    n_target = int(sum((s.time >= s.t0).sum() for s in seqs))
    if n_target < len(names) + 1:
        raise InversionError(f"{n_target} target events above Mc = {mc:g}: too few for the {len(names)}-parameter {model} model")
    span = float(sum(s.t1 - s.t0 for s in seqs))
    longest = max(s.t1 - min(s.t0, s.time.min(initial=s.t0)) for s in seqs)
    guess = {k: v for k, v in DEFAULT_START.items() if v is not None}
    guess["mu"] = 0.5 * n_target / span
    guess.update({k: v for k, v in (start or {}).items() if k in names and v is not None})
    rng = np.random.default_rng(seed)
    cut_params = dict(guess)
    best = None
    for _ in range(3):  # choose the cut from the parameters; again from the estimate if it moved
        t_cut, k_cut = _cut_for(cut_params, model, cut_mass, longest)
        data = _build(seqs, model, mc, t_cut, k_cut, cut_params)
        lik = _Likelihood(data, names)
        starts = [_to_theta(guess, names)] if best is None else [best[1]]
        lo, hi = np.array([_BOUNDS[k] for k in names]).T
        for _s in range(n_starts - 1 if best is None else 0):
            starts.append(np.clip(starts[0] + rng.normal(0.0, 0.5, len(names)), lo + 1e-6, hi - 1e-6))
        result = None
        for theta0 in starts:
            r = _minimise(lik, theta0, names, n_target)
            if result is None or r.fun < result.fun:
                result = r
        est = _natural(result.x, names)
        best = (result, result.x, data, lik)
        if _neglected_mass(data, est, model) <= 1.5 * (1.0 - (1.0 - cut_mass) ** 2):
            break
        cut_params = est
    result, theta, data, lik = best
    fit = _summarise(result, theta, data, lik, names, model, seqs, mc, cut_mass, delta_m)
    if profile:
        wanted = profile_parameters(model) if profile is True else tuple(profile)
        fit.profile_level = profile_level
        fit.profile_intervals = {k: profile_interval(fit, k, level=profile_level) for k in wanted}
    return fit


def _neglected_mass(data: _Data, est: dict[str, float], model: str) -> float:
    """Fraction of the triggered mass outside the cut cylinders at ``est`` (productivity-weighted mean)."""
    kept_t = 1.0
    if math.isfinite(data.t_cut):
        kept_t = -math.expm1((1.0 - est["p"]) * math.log1p(data.t_cut / est["c"]))
    kept_s = 1.0
    if model == "space-time" and data.radius2 is not None and np.isfinite(data.radius2).all():
        weight = np.exp(est["alpha"] * data.dm)
        sigma = est["D"] * np.exp(est["gamma"] * data.dm)
        tail = np.exp((1.0 - est["q"]) * np.log1p(data.radius2 / sigma))
        kept_s = 1.0 - float(np.sum(weight * tail) / np.sum(weight))
    return 1.0 - kept_t * kept_s


def _minimise(lik: _Likelihood, theta0: np.ndarray, names, n_target: int):
    scale = 1.0 / max(n_target, 1)

    def fun(th):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            value, grad = lik.value_and_grad(th)
        if not (math.isfinite(value) and np.isfinite(grad).all()):
            return 1e10, np.zeros_like(th)
        return -value * scale, -grad * scale

    bounds = [_BOUNDS[k] for k in names]
    return optimize.minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                             options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-7})


def _hessian(lik: _Likelihood, theta: np.ndarray) -> np.ndarray:
    """Observed information: central differences of the closed-form gradient of -l (step 1e-4 in theta,
    relative error ~1e-8), symmetrised."""
    h = 1e-4
    eye = np.eye(theta.size)
    cols = [(lik.value_and_grad(theta - h * e)[1] - lik.value_and_grad(theta + h * e)[1]) / (2 * h) for e in eye]
    hess = np.column_stack(cols)
    return 0.5 * (hess + hess.T)


def _summarise(result, theta, data: _Data, lik: _Likelihood, names, model, seqs, mc, cut_mass, delta_m) -> ETASFit:
    th = np.asarray(theta, dtype=float)
    hess = _hessian(lik, th)
    try:
        cov_theta = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov_theta = np.full_like(hess, np.nan)
    # delta method: Jacobian of the natural parameters with respect to theta; diagonal, except for mu, which
    # is the cut model's background rate less the rate of the aftershocks beyond the cut (far_rate)
    nat = _natural(th, names)
    deriv = np.array([nat[k] if k in ("mu", "K", "c", "D") else (nat[k] - 1.0 if k in ("p", "q") else 1.0) for k in names])
    jac = np.diag(deriv)
    # K = exp(theta_K - theta_p - (p - 1) log c): dK/dtheta_p = -K (1 + (p-1) log c), dK/dtheta_c = -K (p-1)
    ik, ip, ic = names.index("K"), names.index("p"), names.index("c")
    jac[ik, ip] = -nat["K"] * (1.0 + (nat["p"] - 1.0) * math.log(nat["c"]))
    jac[ik, ic] = -nat["K"] * (nat["p"] - 1.0)
    far, far_grad = lik.far_rate(th, grad=True)
    mu_cut = nat["mu"]
    nat["mu"] = mu_cut - far
    jac[names.index("mu")] -= far_grad
    cov = jac @ cov_theta @ jac.T
    diag = np.diag(cov)
    se = {k: float(math.sqrt(v)) if v >= 0 else math.nan for k, v in zip(names, diag)}
    background, lam = lik.background_and_rate(th)
    prob = background / lam
    mags = np.concatenate([s.magnitude[s.time >= s.t0] for s in seqs])
    b = b_value_aki_utsu(mags, mc, delta_m)
    b_se = b_value_shi_bolt_error(mags, b)
    beta = b * LN10
    est = dict(nat)
    est["b"], se["b"] = float(b), float(b_se)
    alpha, K = nat["alpha"], nat["K"]
    if beta > alpha:
        n = K * beta / (beta - alpha)
        # gradient of n in theta (through K and alpha) and in beta (b independent of the rest)
        grad = jac[names.index("K")] * (n / K)
        grad[names.index("alpha")] += n / (beta - alpha)
        var = grad @ cov_theta @ grad + (n * (-alpha / (beta * (beta - alpha))) * LN10 * b_se) ** 2
        est["branching_ratio"], se["branching_ratio"] = float(n), float(math.sqrt(max(var, 0.0)))
    else:
        est["branching_ratio"], se["branching_ratio"] = math.inf, math.nan
    neglected = _neglected_mass(data, nat, model)
    cut = {"max_lag_days": data.t_cut, "radius_sigma_units": data.k_cut, "cut_mass": cut_mass,
           "neglected_mass": neglected, "background_rate_cut_model": mu_cut, "far_rate": mu_cut - nat["mu"]}
    return ETASFit(
        model=model, estimates=est, std_errors=se, loglik=float(-result.fun * data.target.sum()),
        n_target=int(data.target.sum()), n_history=int((~data.target).sum()), n_sequences=len(seqs),
        n_pairs=int(data.pair_i.size), cut=cut, converged=bool(result.success),
        at_bound=[k for k, v in zip(names, theta) if min(v - _BOUNDS[k][0], _BOUNDS[k][1] - v) < 1e-4],
        background_probability=prob, covariance=cov,
        _state={"lik": lik, "theta": np.asarray(theta, dtype=float), "names": names, "n_mag": int(mags.size),
                "mag_excess": float(np.sum(mags - (mc - delta_m / 2))), "beta": beta},
    )


# ------------------------------------------------------------------------------ profile likelihood

# The scale on which a profile interval is searched: log for positive parameters, log(v - 1) for p and q.
_PROFILE_SCALE = {"mu": "log", "K": "log", "c": "log", "D": "log", "branching_ratio": "log", "p": "log1",
                  "q": "log1", "alpha": "id", "gamma": "id"}
_LOG_BETA_BOUNDS = (math.log(0.05), math.log(20.0))


def profile_parameters(model: str) -> tuple[str, ...]:
    """The parameters with a profile likelihood: the model's own and the branching ratio."""
    return param_names(model) + ("branching_ratio",)


def _to_scale(name: str, value: float) -> float:
    kind = _PROFILE_SCALE[name]
    return math.log(value) if kind == "log" else (math.log(value - 1.0) if kind == "log1" else value)


def _from_scale(name: str, u: float) -> float:
    kind = _PROFILE_SCALE[name]
    return math.exp(u) if kind == "log" else (1.0 + math.exp(u) if kind == "log1" else u)


def _constrained_theta(state, name: str, value: float, free: np.ndarray):
    """(theta, magnitude log-likelihood less its maximum, d theta / d free, d magnitude term / d free) with
    ``name`` fixed at ``value`` and the other coordinates ``free`` (for the branching ratio, the optimiser's
    coordinates but K's, then log beta).

    Fixing a natural parameter fixes one coordinate of theta as a function of the others: alpha, c, p, D, q,
    gamma directly; K through theta_K = log K + theta_p + (p - 1) theta_c (theta_K is log A, see _natural);
    mu, the background rate net of the aftershocks beyond the pair cut (_summarise), through
    theta_mu = log(mu + far_rate), far_rate a function of the kernel parameters; the branching ratio
    n = K beta / (beta - alpha) through K = n (beta - alpha) / beta, with beta = b ln 10 free and the
    Gutenberg-Richter log-likelihood of the magnitudes, N log beta - beta sum(m - Mc + delta_m/2) (maximal at
    the Aki-Utsu estimate), added: b is then profiled out with the rest."""
    names = state["names"]
    free = np.asarray(free, dtype=float)
    n_free = free.size
    if name == "branching_ratio":
        log_beta = float(free[-1])
        beta = math.exp(log_beta)
        rest = free[:-1]
        ik = names.index("K")
        ia, ip, ic = (names.index(k) - 1 for k in ("alpha", "p", "c"))  # their places in rest (after K's)
        alpha, log_p1, log_c = float(rest[ia]), float(rest[ip]), float(rest[ic])
        if not beta > alpha:  # no finite K gives this n: outside the profile's domain
            return np.full(len(names), math.nan), 0.0, np.zeros((len(names), n_free)), np.zeros(n_free)
        theta_k = math.log(value) + math.log(beta - alpha) - log_beta + log_p1 + math.exp(log_p1) * log_c
        theta = np.insert(rest, ik, theta_k)
        jac = np.insert(np.eye(len(names) - 1, n_free), ik, 0.0, axis=0)
        jac[ik, ia] = -1.0 / (beta - alpha)
        jac[ik, ip] = 1.0 + math.exp(log_p1) * log_c
        jac[ik, ic] = math.exp(log_p1)
        jac[ik, -1] = beta / (beta - alpha) - 1.0
        n_mag, excess, beta_hat = state["n_mag"], state["mag_excess"], state["beta"]
        mag = n_mag * (log_beta - math.log(beta_hat)) - (beta - beta_hat) * excess
        d_mag = np.zeros(n_free)
        d_mag[-1] = n_mag - beta * excess
        return theta, mag, jac, d_mag
    i = names.index(name)
    jac = np.insert(np.eye(n_free), i, 0.0, axis=0)
    if name == "mu":
        partial = np.insert(free, i, 0.0)  # far_rate does not read mu
        far, far_grad = state["lik"].far_rate(partial, grad=True)
        fixed = math.log(value + far)
        jac[i] = np.delete(far_grad, i) / (value + far)
    elif name == "K":
        ip, ic = names.index("p") - 1, names.index("c") - 1
        log_p1, log_c = float(free[ip]), float(free[ic])
        fixed = math.log(value) + log_p1 + math.exp(log_p1) * log_c
        jac[i, ip] = 1.0 + math.exp(log_p1) * log_c
        jac[i, ic] = math.exp(log_p1)
    else:
        fixed = _to_scale(name, value) if name not in ("alpha", "gamma") else value
    return np.insert(free, i, fixed), 0.0, jac, np.zeros(n_free)


def _free_start(state, name: str) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The estimate's free coordinates for the profile of ``name``, and their bounds."""
    names, theta = state["names"], state["theta"]
    i = names.index("K") if name == "branching_ratio" else names.index(name)
    free = np.delete(theta, i)
    bounds = [_BOUNDS[k] for k in names if k != names[i]]
    if name == "branching_ratio":
        free = np.append(free, math.log(state["beta"]))
        bounds.append(_LOG_BETA_BOUNDS)
    return free, bounds


def profile_loglik(fit: ETASFit, parameter: str, value: float, *, start: np.ndarray | None = None,
                   return_free: bool = False):
    """Profile log-likelihood: the largest log-likelihood with ``parameter`` fixed at ``value``, the other
    parameters refitted (L-BFGS-B from the estimate, or from ``start``), on the fit's own data and pair cut.
    For the branching ratio the magnitudes' log-likelihood enters, relative to its maximum (b refitted too).
    The value is on the scale of ``fit.loglik`` (equal to it at the estimate)."""
    state = fit._state
    if state is None:
        raise InversionError("this fit carries no likelihood to profile (refit it with fit_sequences)")
    if parameter not in profile_parameters(fit.model):
        raise InversionError(f"parameter = {parameter!r}: must be one of {', '.join(profile_parameters(fit.model))}")
    if _PROFILE_SCALE[parameter] != "id" and not value > (1.0 if _PROFILE_SCALE[parameter] == "log1" else 0.0):
        raise InversionError(f"{parameter} = {value!r} is outside its range")
    lik = state["lik"]
    free0, bounds = _free_start(state, parameter)
    if start is not None:
        free0 = np.asarray(start, dtype=float)
    scale = 1.0 / max(fit.n_target, 1)

    def fun(f):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            theta, mag, jac, d_mag = _constrained_theta(state, parameter, value, f)
            val, grad = lik.value_and_grad(theta)
            val, grad = -(val + mag) * scale, -(jac.T @ grad + d_mag) * scale
        if not (math.isfinite(val) and np.isfinite(grad).all()):
            return 1e10, np.zeros_like(f)
        return val, grad

    lo, hi = np.array(bounds).T
    result = optimize.minimize(fun, np.clip(free0, lo, hi), jac=True, method="L-BFGS-B", bounds=bounds,
                               options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-7})
    value_out = -float(result.fun) / scale if result.fun < 1e10 else -math.inf
    return (value_out, result.x) if return_free else value_out


def _max_loglik(fit: ETASFit) -> float:
    return fit._state["lik"](fit._state["theta"])


def signed_root(fit: ETASFit, parameter: str, value: float, *, also_from: dict[str, float] | None = None) -> float:
    """r(value) = sign(estimate - value) sqrt(2 (l(estimate) - l_p(value))): approximately N(0, 1) at the
    true value, with errors O(1/sqrt(N)) whatever the parametrisation (the Wald z only on the scale where
    the likelihood is quadratic). The profile can end slightly above l(estimate) by the optimisers'
    tolerance: r is 0 then. ``also_from``: natural parameters (all of the model's, and b for the branching
    ratio) to start a second refit from, the better of the two kept (a far-off estimate, e.g. p at its bound,
    can leave the refit from it in a lesser local maximum)."""
    lp = profile_loglik(fit, parameter, value)
    if also_from is not None:
        names = fit._state["names"]
        theta = _to_theta(also_from, names)
        free = np.delete(theta, names.index("K") if parameter == "branching_ratio" else names.index(parameter))
        if parameter == "branching_ratio":
            free = np.append(free, math.log(also_from["b"] * LN10))
        lp = max(lp, profile_loglik(fit, parameter, value, start=free))
    return _signed_root(_max_loglik(fit), lp, fit.estimates[parameter], value)


def _signed_root(l_hat: float, l_profile: float, estimate: float, value: float) -> float:
    return math.copysign(math.sqrt(max(2.0 * (l_hat - l_profile), 0.0)), estimate - value)


def profile_interval(fit: ETASFit, parameter: str, *, level: float = 0.95, xtol: float = 1e-3) -> tuple[float, float]:
    """Profile-likelihood confidence interval: the values where r = +-z_{(1+level)/2} (1.96 at 95 %), found by
    bracketing outward from the estimate in steps of the Wald error (on the log scale for positive
    parameters) and Brent's method, to ``xtol`` of that error. An end that r does not reach within the
    optimiser's range of the parameter (_BOUNDS; 30 e-folds for mu, K and n) is open: reported as 0 or inf
    for positive parameters, 1 for p and q, -inf or inf for alpha and gamma."""
    from scipy import stats

    if not 0.0 < level < 1.0:
        raise InversionError(f"level = {level!r}: must be in (0, 1)")
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    est, se = fit.estimates[parameter], fit.std_errors.get(parameter, math.nan)
    if not math.isfinite(est):
        return (math.nan, math.nan)
    u_hat = _to_scale(parameter, est)
    kind = _PROFILE_SCALE[parameter]
    step = se / (est - (1.0 if kind == "log1" else 0.0)) if kind != "id" else se
    if not (math.isfinite(step) and step > 0):
        step = 0.5
    step = min(step, 2.0)
    l_hat = _max_loglik(fit)
    warm = {}

    def r_minus(u, sign):
        # refit from the estimate and, when there is one, from the last refit on this side: the better of
        # the two (a start far along the ridge alone can stop short of the profile's maximum)
        v = _from_scale(parameter, u)
        lp, free = profile_loglik(fit, parameter, v, return_free=True)
        if sign in warm:
            lp2, free2 = profile_loglik(fit, parameter, v, start=warm[sign], return_free=True)
            if lp2 > lp:
                lp, free = lp2, free2
        if math.isfinite(lp):
            warm[sign] = free
        return _signed_root(l_hat, lp, est, v) + sign * z

    # search range on the scale u: the optimiser's bounds where the parameter is one of its coordinates
    u_lo, u_hi = _BOUNDS[parameter] if parameter in _BOUNDS and parameter not in ("mu", "K") else (u_hat - 30.0, u_hat + 30.0)
    ends = []
    for sign in (1.0, -1.0):  # sign +1: the upper end (r = -z); -1: the lower end (r = +z)
        inner, k = u_hat, 1.0
        limit = u_hi if sign > 0 else u_lo
        found = None
        while inner != limit:
            outer = u_hat + sign * k * z * step
            outer = min(outer, limit) if sign > 0 else max(outer, limit)
            if r_minus(outer, sign) * sign < 0:  # past the end
                found = optimize.brentq(r_minus, min(inner, outer), max(inner, outer), args=(sign,),
                                        xtol=xtol * step)
                break
            inner, k = outer, 2.0 * k
        if found is None:
            ends.append(_open_end(kind, sign))
        else:
            ends.append(_from_scale(parameter, found))
    return (ends[1], ends[0])


def _open_end(kind: str, sign: float) -> float:
    if sign > 0:
        return math.inf
    return {"log": 0.0, "log1": 1.0}.get(kind, -math.inf)


def fit_catalog(
    catalog: pd.DataFrame,
    *,
    mc: float,
    model: str = "space-time",
    t_start: float,
    t_end: float,
    aux_days: float | None = None,
    region: tuple[float, float, float, float] | None = None,
    delta_m: float = 0.0,
    **options,
) -> ETASFit:
    """Fit one catalog: targets in [t_start, t_end), earlier events (within aux_days) as history; magnitudes
    in bins of ``delta_m`` (0: continuous)."""
    if model == "space-time" and region is None:
        raise InversionError("the space-time model needs the region (xmin, xmax, ymin, ymax) in km")
    seq = catalog_sequence(catalog, mc=mc, t_start=t_start, t_end=t_end, aux_days=aux_days, region=region,
                           delta_m=delta_m)
    return fit_sequences([seq], mc=mc, model=model, delta_m=delta_m, **options)


def fit_windows(windows: list[pd.DataFrame], durations, *, mc: float, model: str = "temporal", region=None,
                delta_m: float = 0.0, **options) -> ETASFit:
    """Joint fit over short windows, each on its own clock [0, duration) with no history before 0."""
    if model == "space-time" and region is None:
        raise InversionError("the space-time model needs the region (xmin, xmax, ymin, ymax) in km")
    seqs = window_sequences(windows, durations, mc=mc, region=region, delta_m=delta_m)
    return fit_sequences(seqs, mc=mc, model=model, delta_m=delta_m, **options)


# ------------------------------------------------------------------------------------ recovery


def recovery_zscores(
    params,
    *,
    model: str,
    replicates: int,
    duration: float,
    region: tuple[float, float, float, float] = (0.0, 100.0, 0.0, 100.0),
    n_windows: int | None = None,
    seed: int = 0,
    signed_roots: bool | tuple[str, ...] = False,
    **options,
) -> pd.DataFrame:
    """Simulate-and-fit replicates (our simulator, etasvae.simulate): z = (estimate - truth) / std_error.

    Each replicate is one catalog on [0, duration) (or, with ``n_windows``, that many independent catalogs
    fitted jointly as short windows), simulated without burn-in or margin, so that no unobserved event
    triggers (up to the aftershocks landing outside the region: negligible for kernels much smaller than
    it). The truth of the branching ratio is K beta/(beta - alpha) with the true b. One row per replicate
    and parameter: replicate, parameter, truth, estimate, std_error, z, plus the number of target events.

    Positive parameters have skewed estimates (K, c, p - 1 over a factor of several in short catalogs), so
    their z is taken on the log scale with the same reported error (delta method: sd of log(est) = se/est):
    z = (log(est - shift) - log(truth - shift)) (est - shift)/se, shift 1 for p and q, 0 otherwise;
    alpha, gamma and b are compared as they are. ``z_natural`` is (est - truth)/se, the Wald z on the
    natural scale. With ``signed_roots`` (True: every parameter but b, which has no profile here; or the
    names), ``r`` is the profile likelihood's signed root at the truth (``signed_root``): two refits per parameter, one from the estimate,
    one from the truth, the higher profile kept (it is a maximum: any start is fair, and more starts only
    find it better).
    """
    from .simulate import simulate_etas

    rng = np.random.default_rng(seed)
    beta = params.b * LN10
    truth = {k: getattr(params, k) for k in param_names(model)}
    truth["b"] = params.b
    truth["branching_ratio"] = params.K * beta / (beta - params.alpha)
    rooted = profile_parameters(model) if signed_roots is True else tuple(signed_roots or ())
    rows = []
    for rep in range(replicates):
        if n_windows is None:
            cat = simulate_etas(params, duration=duration, region=region, rng=rng)
            fit = fit_catalog(cat, mc=params.mc, model=model, t_start=0.0, t_end=duration, region=region, **options)
        else:
            wins = [simulate_etas(params, duration=duration, region=region, rng=rng) for _ in range(n_windows)]
            fit = fit_windows(wins, [duration] * n_windows, mc=params.mc, model=model, region=region, **options)
        for k, v in truth.items():
            est, se = fit.estimates[k], fit.std_errors[k]
            if not (se > 0.0 and math.isfinite(se)):  # singular information (a flat direction): no z
                z = math.nan
            elif k in ("alpha", "gamma", "b"):
                z = (est - v) / se
            else:
                shift = 1.0 if k in ("p", "q") else 0.0
                z = math.log((est - shift) / (v - shift)) * (est - shift) / se if est > shift else -math.inf
            r = signed_root(fit, k, v, also_from=truth) if k in rooted else math.nan
            rows.append({"replicate": rep, "parameter": k, "truth": v, "estimate": est, "std_error": se,
                         "z": z, "z_natural": (est - v) / se if se > 0 else math.nan, "r": r,
                         "n_target": fit.n_target, "at_bound": ",".join(fit.at_bound)})
    return pd.DataFrame(rows)


def magnitude_bin(magnitudes: np.ndarray) -> float:
    """0.1 or 0.01 when every magnitude is a multiple of it (to 1e-6), else 0 (continuous magnitudes)."""
    m = np.asarray(magnitudes, dtype=float)
    for width in (0.1, 0.01):
        if m.size and np.all(np.abs(m / width - np.round(m / width)) < 1e-6):
            return width
    return 0.0
