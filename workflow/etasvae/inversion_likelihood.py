"""The ETAS inversion's log-likelihood and its gradient in closed form (see etasvae.inversion for the model).

_build concatenates the sequences, finds the pairs inside the pair cut (etasvae.inversion_geometry) and the
region quadrature. Two cuts: the *model's* (T_cut, R_j = k sqrt(sigma_j), chosen from the parameters so
that cut_mass of each kernel lies beyond) truncates the kernels in the sum and in the integral alike, so
that the likelihood is exact for the truncated model, whose background absorbs the aftershocks beyond it;
the *caps* (a lag and a radius per event, fixed whatever the parameters) bound the pairs only. Where a cap
binds, the pairs between it and the model's cut are dropped from the sum (a log of an intensity term that
is small where the caps lie) but their kernel mass stays in the integral: an integral without it would
let the kernels' mass beyond the caps grow at no cost (K without bound as p or q approach 1).
_Likelihood evaluates l(theta) and dl/dtheta on the optimiser's coordinates
(etasvae.inversion_model). The Omori integral is closed-form without taper; with the taper it is
int e^(-s/tau) (s + c)^-p ds, by Gauss-Legendre on u = log(s + c) (_tapered_omori), where the integrand
exp((1 - p) u - (e^u - c)/tau) is smooth, and its derivatives in log c, p and log tau are quadratures of the
same nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .inversion_geometry import _grouped_quadrature, _pairs, polygon_area
from .inversion_model import InversionError, _natural, _tapered
from .params import upper_incomplete_gamma

# Pairs evaluated at once: the likelihood's temporaries (~10 float64 arrays of this length) then stay in the
# processor's cache, which makes an evaluation about twice as fast as with chunks of a million.
_CHUNK_PAIRS = 65_536
# Gauss-Legendre nodes per panel of the tapered Omori integral (two panels, split at u = log(tau + c)).
_OMORI_NODES = 24
# The tapered integrand beyond s = 50 tau is below e^-50 of its value at tau: the integral stops there.
_TAPER_REACH = 50.0


@dataclass
class _Data:
    """All sequences concatenated (sequence-major, time order within), with pairs and quadrature."""

    dm: np.ndarray  # magnitude - mc, every event
    target: np.ndarray  # bool, scored events
    seq: np.ndarray  # sequence index of every event
    t_hi: np.ndarray  # per event: min(t1 - t_j, T_cut), T_cut the model's cut (the integral's)
    t_lo: np.ndarray  # per event: min(max(t0 - t_j, 0), T_cut)
    span: float  # total observed duration (sum of t1 - t0)
    inv_area: np.ndarray | None  # per target event: background density at it (1/area when uniform), 1/km^2
    pair_i: np.ndarray  # index among target events
    pair_j: np.ndarray  # index among all events
    lag: np.ndarray
    r2: np.ndarray | None
    quad: tuple | None  # (rho^2, weight, owner event) of the region integral's nodes, flat (sparse)
    const: tuple[np.ndarray, np.ndarray] | None  # (weight of the constant part, R^2) per event
    t_cut: float  # the model's lag cut (the integral's)
    k_cut: float
    radius2: np.ndarray | None  # per event: R_j^2 of its pairs' disc (km^2), the model's cut within the cap
    pair_lag: float  # the pairs' lag cut: T_cut within the lag cap
    full_quad: tuple[np.ndarray, np.ndarray] | None  # region quadrature of the uncut kernel
    t_hi_full: np.ndarray  # t1 - t_j (no time cut)
    t_lo_full: np.ndarray  # max(t0 - t_j, 0)
    tau: float | None = None  # the fixed taper time (days), None when free or absent
    model_radius2: np.ndarray | None = None  # per event: k^2 sigma_j, the model's cut disc (the integral's)
    plane: bool = False  # the kernels' spatial integral over the whole plane (the `etas` package's)


def _log_expm1(x: float) -> float:
    """log(e^x - 1) for x > 0, without overflow for large x (p or q close to 1)."""
    return x + math.log1p(-math.exp(-x))


def omori_kept(t: float, p: float, c: float, tau: float | None) -> float:
    """Fraction of the (tapered) Omori law's mass in [0, t)."""
    if not math.isfinite(t):
        return 1.0
    if tau is None:
        return -math.expm1((1.0 - p) * math.log1p(t / c))
    with np.errstate(all="ignore"):
        whole = float(upper_incomplete_gamma(1.0 - p, c / tau))
        tail = float(upper_incomplete_gamma(1.0 - p, (t + c) / tau))
    return 1.0 - tail / whole if whole > 0 and math.isfinite(whole) else 1.0


def _cut_for(params: dict[str, float], model: str, cut_mass: float, span: float) -> tuple[float, float]:
    """(T_cut, k): the Omori tail and spatial tail beyond them are each cut_mass of the kernel (T_cut inf when
    the cut would lie beyond ``span``: the whole span is kept)."""
    p, c, tau = params["p"], params["c"], params.get("tau")
    if tau is not None:
        # with the taper a lag cut at cut_mass stands in for the taper itself (the truncated law's tail goes to
        # the background, and tau runs up to the cut): the lag cut leaves cut_mass^2, which the exponential
        # decay buys for a few tau more lag
        cut_mass = cut_mass * cut_mass
    if tau is None:
        log_t = math.log(c) + _log_expm1(math.log(cut_mass) / (1.0 - p)) if p > 1 else math.inf
        t_cut = math.inf if log_t >= math.log(span) else math.exp(log_t)
    else:
        grid = np.geomspace(min(c, span) * 1e-3, span, 400)
        kept = np.array([omori_kept(float(g), p, c, tau) for g in grid])
        above = np.flatnonzero(kept >= 1.0 - cut_mass)
        t_cut = float(grid[above[0]]) if above.size and above[0] < grid.size - 1 else math.inf
    k = math.inf
    if model == "space-time":
        log_k2 = _log_expm1(math.log(cut_mass) / (1.0 - params["q"]))
        k = math.exp(0.5 * log_k2) if log_k2 < 700 else math.inf
    return t_cut, k


def _build(seqs, model: str, mc: float, t_cut: float, k_cut: float, params, *, radius_cap=None,
           lag_cap: float = math.inf, tau: float | None = None, background=None, plane: bool = False) -> _Data:
    """The data of the likelihood: the model's cut (``t_cut``, ``k_cut`` sqrt(sigma_j)) for the sum and
    the integral, the caps for the pairs only (module docstring). ``radius_cap``: per-event cap (km) on the
    pairs' radius, or None; ``lag_cap``: cap (days) on the pairs' lag; ``background``: per-event background
    density (1/km^2; used at the targets), None for uniform over the region (1/area); ``plane``: each
    kernel's spatial integral over the whole plane instead of the region (no quadrature; the mass an event
    near the boundary sends outside counts as expected events, as in the `etas` package)."""
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
    radius2 = model_radius2 = None
    if space:
        x = np.concatenate([s.x for s in seqs])
        y = np.concatenate([s.y for s in seqs])
        sigma = params["D"] * np.exp(params["gamma"] * dm)
        model_radius2 = radius2 = k_cut * k_cut * sigma
        if radius_cap is not None:
            radius2 = np.minimum(radius2, np.asarray(radius_cap, dtype=float) ** 2)
    pair_lag = min(t_cut, lag_cap)
    pair_i, pair_j, lag, r2 = _pairs(t, x, y, offsets, target, pair_lag, radius2)
    quad = const = inv_area = full = None
    if space:
        regions = [s.region for s in seqs]
        if any(r is None for r in regions):
            raise InversionError("the space-time model needs the region of every sequence")
        keys = [tuple(np.asarray(r, dtype=float).ravel()) for r in regions]
        uniq = list(dict.fromkeys(keys))
        which = np.array([uniq.index(k) for k in keys], dtype=np.int64)[seq] if seqs else np.zeros(0, np.int64)
        polys = [regions[keys.index(k)] for k in uniq]
        if plane:  # no nodes: the cut kernel's mass is its disc's, the uncut kernel's is 1
            none = (np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64))
            full, quad, const = none, none, (np.ones(x.size), model_radius2)
        else:
            full = _grouped_quadrature(x, y, polys, which, None)[0]
            if np.isinf(model_radius2).all():  # the model's cut disc is the plane: the full kernel's nodes
                quad, const = full, (np.zeros(x.size), np.full(x.size, np.inf))
            else:
                quad, const = _grouped_quadrature(x, y, polys, which, model_radius2)
        if background is None:
            area = np.array([polygon_area(r) for r in polys])[which]
            inv_area = 1.0 / area[target]
        else:
            inv_area = np.asarray(background, dtype=float)[target]
    return _Data(
        dm=dm, target=target, seq=seq, t_hi=t_hi, t_lo=t_lo, span=span, inv_area=inv_area,
        pair_i=pair_i, pair_j=pair_j, lag=lag, r2=r2, quad=quad, const=const, t_cut=t_cut, k_cut=k_cut,
        radius2=radius2, pair_lag=pair_lag, full_quad=full, t_hi_full=t1 - t, t_lo_full=np.maximum(t0 - t, 0.0),
        tau=tau, model_radius2=model_radius2, plane=plane and space,
    )


def _tapered_omori(lo, hi, c: float, p: float, tau: float, grad: bool = False):
    """I_j = int_{lo_j}^{hi_j} e^(-s/tau) (s + c)^-p ds per event, and with ``grad`` its derivatives in
    (log c, p, log tau): Gauss-Legendre on u = log(s + c), two panels split at u = log(tau + c)."""
    reach = _TAPER_REACH * tau
    hi = np.minimum(hi, reach)
    lo = np.minimum(lo, hi)
    u_lo, u_hi = np.log(lo + c), np.log(hi + c)
    u_mid = np.clip(math.log(tau + c), u_lo, u_hi)
    nodes, weights = np.polynomial.legendre.leggauss(_OMORI_NODES)
    total = np.zeros(lo.size)
    d_c = np.zeros(lo.size) if grad else None
    d_p = np.zeros(lo.size) if grad else None
    d_tau = np.zeros(lo.size) if grad else None
    for a, b in ((u_lo, u_mid), (u_mid, u_hi)):
        half = 0.5 * (b - a)
        u = (0.5 * (a + b))[:, None] + half[:, None] * nodes
        s = np.maximum(np.exp(u) - c, 0.0)
        h = np.exp((1.0 - p) * u - s / tau) * (half[:, None] * weights)
        total += h.sum(axis=1)
        if grad:
            d_c += -p * c * (h * np.exp(-u)).sum(axis=1)
            d_p += -(h * u).sum(axis=1)
            d_tau += (h * s).sum(axis=1) / tau
    return (total, d_c, d_p, d_tau) if grad else total


class _Likelihood:
    """Log-likelihood of the (cut) ETAS model as a function of the transformed parameters theta (the
    optimiser's coordinates: log mu, log A, alpha, log c, log(p - 1) or p with the taper, log tau when free,
    log D, log(q - 1), gamma), with its gradient in closed form.

    Per pair, a_ij = A e^(alpha dm_j) (lag + c)^-p [(q-1)/(pi sigma_j) (1 + r^2/sigma_j)^-q], so that
    d log a_ij / d theta is a few per-pair terms (1, dm, -p c/(lag + c), -(p-1) log(lag + c), and for the
    space-time model -1 + q v/(1+v), dm (-1 + q v/(1+v)), 1 - (q-1) log(1+v) with v = r^2/sigma_j; with the
    taper a_ij has the factor e^(-lag/tau), whose derivative in log tau is lag/tau); the
    gradient of sum_i log lambda_i is the sum of those terms weighted by a_ij / lambda_i. The pairs are
    taken in chunks of about _CHUNK_PAIRS (whole runs of a target's pairs), so the temporaries stay bounded:
    the pairs are ordered by target, and each term times a_ij is summed over each target's run (reduceat)
    before it is weighted by 1/lambda_i, so nothing per pair outlives its chunk."""

    def __init__(self, data: _Data, names: tuple[str, ...]):
        self.names = names
        self.space = "D" in names
        self.tau = data.tau
        self.t_cut = data.t_cut
        self.pair_lag = data.pair_lag
        self.target_index = np.flatnonzero(data.target)
        self.tapered = _tapered(names, data.tau)
        self.free_tau = "tau" in names
        self.dm = np.asarray(data.dm, dtype=float)
        self.n_target = int(np.sum(data.target))
        self.t_hi, self.t_lo = data.t_hi, data.t_lo
        self.span = data.span
        # pairs ordered by target (_pairs gives them so: then they are not copied)
        ordered = bool(np.all(np.diff(data.pair_i) >= 0))
        order = slice(None) if ordered else np.argsort(data.pair_i, kind="stable")
        # indices as int32 where they fit, and the magnitudes looked up per chunk: 24 bytes per pair
        index = np.int32 if self.dm.size < 2**31 else np.int64
        self.pi = np.asarray(data.pair_i, dtype=index)[order]
        self.pj = np.asarray(data.pair_j, dtype=index)[order]
        self.lag = np.asarray(data.lag, dtype=float)[order]
        self.per_target = np.bincount(self.pi, minlength=self.n_target)
        self.run_start = (np.cumsum(self.per_target) - self.per_target)[self.per_target > 0]
        self.chunks = self._chunks()
        if self.space:
            self.r2 = np.asarray(data.r2, dtype=float)[order]
            self.inv_area = np.asarray(data.inv_area, dtype=float)
            self.rho2, self.w, self.owner = data.quad
            self.const_w, self.R2 = data.const
            self.rho2_full, self.w_full, self.owner_full = data.full_quad
        self.plane = data.plane
        self.t_hi_full, self.t_lo_full = data.t_hi_full, data.t_lo_full

    def _natural(self, theta) -> dict[str, float]:
        # K (through the Omori normaliser) can overflow far from the estimate; the likelihood does not need it
        with np.errstate(all="ignore"):
            try:
                return _natural(theta, self.names, self.tau)
            except (OverflowError, ValueError):
                return {**_natural_without_k(theta, self.names, self.tau), "K": math.inf}

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

    def _sums(self, theta, grad: bool, lam: np.ndarray | None = None):
        """(background, lambda at the targets, sums over each target's pairs of a_ij times each of the terms
        of d log a_ij / d theta (rows: 1, dm, 1/(lag + c), log(lag + c), and for the space-time model
        f = v/(1+v), dm f, log(1+v); None without ``grad``), natural parameters)."""
        v = self._natural(theta)
        t_a, alpha, c, p = float(theta[self.names.index("K")]), v["alpha"], v["c"], v["p"]
        inv_tau = 1.0 / v["tau"] if self.tapered else 0.0
        background = v["mu"] * self.inv_area if self.space else np.full(self.n_target, v["mu"])
        rows = ((7 if self.space else 4) + self.free_tau) if grad else 1
        sums = np.zeros((rows, self.run_start.size))
        weights = None if lam is None else np.zeros(self.dm.size)
        if self.space:
            gamma, q = v["gamma"], v["q"]
            log_d = float(theta[self.names.index("D")])
            inv_sigma = np.exp(-(log_d + gamma * self.dm))  # per event
            const = t_a + math.log(q - 1.0) - math.log(math.pi) - log_d
        else:
            const = t_a
        for a, b, r0, r1 in self.chunks:
            dm, raw_lag = self.dm[self.pj[a:b]], self.lag[a:b]
            lag = raw_lag + c
            log_lag = np.log(lag)
            if self.space:
                ratio = self.r2[a:b] * inv_sigma[self.pj[a:b]]
                log_r = np.log1p(ratio)
                log_a = (const + (alpha - gamma) * dm) - p * log_lag - q * log_r
            else:
                log_a = (const + alpha * dm) - p * log_lag
            if self.tapered:
                log_a -= raw_lag * inv_tau
            if weights is not None:  # a_ij / lambda_i summed per source j (offspring)
                weights += np.bincount(self.pj[a:b], np.exp(log_a) / lam[self.pi[a:b]], minlength=weights.size)
                continue
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
                if self.free_tau:
                    np.multiply(pair, raw_lag, out=terms[-1])
            sums[:, r0:r1] = np.add.reduceat(terms, self.run_start[r0:r1] - a, axis=1)
        if weights is not None:
            return weights
        rate = np.zeros(self.n_target)
        rate[self.per_target > 0] = sums[0]
        return background, background + rate, (sums if grad else None), v

    def offspring(self, theta) -> np.ndarray:
        """Per event j, the expected number of its aftershocks among the targets: sum_i a_ij / lambda_i
        over its pairs (the `etas` package's l_hat)."""
        _, lam = self.background_and_rate(theta)
        return self._sums(theta, grad=False, lam=lam)

    def window_fraction(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """Per event j, F_j: the fraction of its (uncut) Omori kernel in the observed window, and
        d log F_j / d theta (events x coordinates). Space-time models need the plane's integral (the
        spatial fraction 1)."""
        if self.space and not self.plane:
            raise InversionError("window_fraction: the region's spatial fraction is not supported (use the plane)")
        v = self._natural(theta)
        c, p, names = v["c"], v["p"], self.names
        lo, hi = self.t_lo_full, self.t_hi_full
        d = np.zeros((self.dm.size, len(names)))
        if self.tapered:
            tau = v["tau"]
            omori, d_c, d_p, d_tau = _tapered_omori(lo, hi, c, p, tau, grad=True)
            z, z_c, z_p, z_tau = (float(a[0]) for a in _tapered_omori(np.zeros(1), np.full(1, np.inf), c, p, tau,
                                                                        grad=True))
            with np.errstate(divide="ignore", invalid="ignore"):
                d[:, names.index("c")] = d_c / omori - z_c / z
                d[:, names.index("p")] = d_p / omori - z_p / z
                if self.free_tau:
                    d[:, names.index("tau")] = d_tau / omori - z_tau / z
            return omori / z, d
        x_lo, x_hi = lo / c, hi / c
        l_lo, l_hi = np.log1p(x_lo), np.log1p(x_hi)
        e_lo, e_hi = np.exp((1.0 - p) * l_lo), np.exp((1.0 - p) * l_hi)
        frac = e_lo - e_hi
        with np.errstate(divide="ignore", invalid="ignore"):
            d[:, names.index("c")] = (p - 1.0) * (e_lo * x_lo / (1.0 + x_lo) - e_hi * x_hi / (1.0 + x_hi)) / frac
            d[:, names.index("p")] = (p - 1.0) * (e_hi * l_hi - e_lo * l_lo) / frac
        return frac, d

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
        grad[names.index("p")] += -(1.0 if self.tapered else p - 1.0) * s[3]
        if self.free_tau:
            grad[names.index("tau")] += s[-1] / v["tau"]
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
        v = self._natural(theta)
        K, alpha, c, p = v["K"], v["alpha"], v["c"], v["p"]
        t_lo, t_hi = (self.t_lo, self.t_hi) if cut else (self.t_lo_full, self.t_hi_full)
        if self.tapered:
            # A e^(alpha dm) I_j: K does not enter (K = A Z only names the result)
            if grad:
                omori, d_omori_c, d_omori_p, d_omori_tau = _tapered_omori(t_lo, t_hi, c, p, v["tau"], grad=True)
            else:
                omori = _tapered_omori(t_lo, t_hi, c, p, v["tau"])
            base = math.exp(float(theta[names.index("K")])) * np.exp(alpha * self.dm)
        else:
            x_lo, x_hi = t_lo / c, t_hi / c
            l_lo, l_hi = np.log1p(x_lo), np.log1p(x_hi)
            e_lo, e_hi = np.exp((1.0 - p) * l_lo), np.exp((1.0 - p) * l_hi)
            omori = e_lo - e_hi
            base = K * np.exp(alpha * self.dm)
        inside = 1.0
        if self.space:
            sigma = v["D"] * np.exp(v["gamma"] * self.dm)
            q = v["q"]
            rho2, w, owner = (self.rho2, self.w, self.owner) if cut else (self.rho2_full, self.w_full, self.owner_full)
            n_events = self.dm.size
            ratio = rho2 / sigma[owner]
            log_r = np.log1p(ratio)
            tail = np.exp((1.0 - q) * log_r)
            inside = np.bincount(owner, w * (1.0 - tail), minlength=n_events)
            if grad:
                # d inside / d log sigma and d inside / d log(q - 1)
                d_sigma = (1.0 - q) * np.bincount(owner, w * tail * (ratio / (1.0 + ratio)), minlength=n_events)
                d_q = (q - 1.0) * np.bincount(owner, w * tail * log_r, minlength=n_events)
            if not cut and self.plane:
                inside = inside + 1.0
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
        bi = base * inside
        if self.tapered:
            g[names.index("c")] = float(bi @ d_omori_c)
            g[names.index("p")] = float(bi @ d_omori_p)
            if self.free_tau:
                g[names.index("tau")] = float(bi @ d_omori_tau)
        else:
            # log K = theta_K - theta_p - (p - 1) theta_c; the Omori integral's derivatives in log c, log(p - 1)
            d_omori_c = (p - 1.0) * (e_lo * x_lo / (1.0 + x_lo) - e_hi * x_hi / (1.0 + x_hi))
            d_omori_p = (p - 1.0) * (e_hi * l_hi - e_lo * l_lo)
            g[names.index("c")] = float(bi @ (d_omori_c - (p - 1.0) * omori))
            log_c = math.log(c)
            g[names.index("p")] = float(bi @ (d_omori_p - (1.0 + (p - 1.0) * log_c) * omori))
        if self.space:
            bo = base * omori
            g[names.index("D")] = float(bo @ d_sigma)
            g[names.index("gamma")] = float(bo @ (d_sigma * self.dm))
            g[names.index("q")] = float(bo @ d_q)
        return total, g

    def ground_rate(self, theta, seqs_t: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """The ground intensity mu + sum_j kappa_j g(t_i - t_j) F_j at the targets (space-time model: F_j the
        part of event j's kernel inside the region, cut by the model's cut), over the pairs within the lag cut; ``seqs_t`` the events' times
        as given to _build, ``offsets`` the sequences' starts."""
        v = self._natural(theta)
        target = np.zeros(self.dm.size, dtype=bool)
        target[self.target_index] = True
        pi, pj, lag, _ = _pairs(seqs_t, None, None, offsets, target, self.pair_lag, None)
        weight = math.exp(float(theta[self.names.index("K")])) * np.exp(v["alpha"] * self.dm)
        if self.space:
            weight = weight * self.inside(theta)
        lagc = lag + v["c"]
        term = weight[pj] * np.exp(-v["p"] * np.log(lagc) - (lag / v["tau"] if self.tapered else 0.0))
        return v["mu"] + np.bincount(pi, term, minlength=self.n_target)

    def inside(self, theta) -> np.ndarray:
        """Per event, the part of its cut spatial kernel inside the region."""
        v = self._natural(theta)
        sigma = v["D"] * np.exp(v["gamma"] * self.dm)
        q = v["q"]
        tail = np.exp((1.0 - q) * np.log1p(self.rho2 / sigma[self.owner]))
        inside = np.bincount(self.owner, self.w * (1.0 - tail), minlength=self.dm.size)
        finite = np.isfinite(self.R2)
        tail_r = np.where(finite, np.exp((1.0 - q) * np.log1p(np.where(finite, self.R2, 0.0) / sigma)), 0.0)
        return inside + self.const_w * (1.0 - tail_r)

    def far_rate(self, theta, grad: bool = False):
        """Events per day that the cut kernels leave to the background term (beyond the cut, inside), with its
        gradient in theta when ``grad``."""
        if not grad:
            return (self.triggered(theta, cut=False) - self.triggered(theta, cut=True)) / self.span
        full, g_full = self.triggered(theta, cut=False, grad=True)
        kept, g_kept = self.triggered(theta, cut=True, grad=True)
        return (full - kept) / self.span, (g_full - g_kept) / self.span



def _natural_without_k(theta, names, tau):
    v = dict(zip(names, (float(x) for x in theta)))
    tapered = _tapered(names, tau)
    out = {"mu": math.exp(v["mu"]), "alpha": v["alpha"], "c": math.exp(v["c"]),
           "p": v["p"] if tapered else 1.0 + math.exp(v["p"]),
           "tau": math.exp(v["tau"]) if "tau" in v else tau}
    if "D" in v:
        out.update(D=math.exp(v["D"]), q=1.0 + math.exp(v["q"]), gamma=v["gamma"])
    return out
