"""ETAS inversion: maximum-likelihood estimates of the ETAS parameters a catalog carries (docs/methods/forecast.md).

Model (docs/design.md "ETAS model and units"): lambda(t, x, y) = mu u(x, y) + sum_j kappa(m_j) g(t - t_j)
f(r | m_j), kappa(m) = K e^(alpha (m - Mc)), g(t) = e^(-t/tau) (t+c)^-p / Z (no taper: tau = inf, p > 1;
with the taper any p > 0, Z the normaliser), f(r|m) = (q-1)/(pi sigma) (1 + r^2/sigma)^-q,
sigma = D e^(gamma (m - Mc)), u = 1/area of the region (a rectangle or polygon) or a kernel-smoothed
density (etasvae.inversion_background). The *temporal* model drops f and u; b is estimated apart, by
Aki-Utsu (magnitudes are independent of the rest of the likelihood under Gutenberg-Richter).

Data: one or several *sequences*, each an observation window [t0, t1) (days) and, for the space-time model,
a region. Events of a sequence before t0 are auxiliary history: they trigger but are not scored. Several
sequences share the parameters. Log-likelihood (Daley & Vere-Jones 2003, eq. 7.3.2; Ogata 1998):

    l = sum_{targets i} log lambda(t_i, x_i, y_i) - sum_sequences int_{t0}^{t1} int_region lambda dA dt

with the integral exact up to quadrature (etasvae.inversion_likelihood, etasvae.inversion_geometry).

Pair cut: the model's cut T_cut and R_j = k sqrt(sigma_j) leaves ``cut_mass`` of each kernel outside at the
starting values (and again at the estimate when it moved); pair (i, j) enters the sum only when
t_i - t_j < T_cut and r_ij < R_j, and the integral uses the same truncated kernel, so the likelihood is the
exact likelihood of ETAS with kernels truncated to that cylinder. The aftershocks beyond it are absorbed by
mu, which is reported net of them (``far_rate``). The caps ``max_lag_days`` and ``rupture_multiple`` times
the rupture length of event j (Wells & Coppersmith 1994; the `etas` package's cut) bound the pairs whatever
the parameters (memory cannot explode when p or q approach 1), and only the pairs: where a cap binds, the
kernel mass between the cap and the model's cut stays in the integral (the `etas` package's rule), so the
mass beyond the caps is never free (etasvae.inversion_likelihood).

Optimisation: L-BFGS-B on the coordinates of etasvae.inversion_model with the closed-form gradient, from
several starts (ours, the `etas` package's defaults, jitters). Standard errors: the inverse observed
information (central differences of the gradient), mapped to natural parameters by the delta method.
An estimate at a bound of its coordinate, or supercritical (n >= 1), is not usable (``ETASFit.usable``,
``problems`` says which parameter and what to try).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize

from .inversion_background import BackgroundDensity, smoothed_background
from .inversion_geometry import _PAIR_CHUNK, _TREE_BLOCK, as_polygon, inside_polygon, polygon_area, rupture_length_km
from .inversion_likelihood import _CHUNK_PAIRS, _build, _cut_for, _Data, _Likelihood, omori_kept
from .inversion_model import (
    _BOUNDS, DEFAULT_START, LN10, MODELS, SPATIAL_PARAMS, TEMPORAL_PARAMS, ETASFit, InversionError, Sequence,
    _natural, _to_theta, bounds, param_names,
)
from .inversion_profile import (
    _constrained_theta, profile_interval, profile_loglik, profile_parameters, signed_root,
)
from .params import omori_normaliser
from .stats import b_value_aki_utsu, b_value_shi_bolt_error

__all__ = [
    "MODELS", "TEMPORAL_PARAMS", "SPATIAL_PARAMS", "LN10", "DEFAULT_START", "ETASFit", "InversionError",
    "Sequence", "BackgroundDensity", "param_names", "catalog_sequence", "window_sequences", "fit_sequences",
    "fit_catalog", "fit_windows", "magnitude_bin", "profile_loglik", "profile_interval", "profile_parameters",
    "signed_root", "polygon_area", "inside_polygon", "TAPER_CHOICES", "BACKGROUNDS", "SPACE_INTEGRALS",
    # the pieces benchmarks and tests reach for
    "_build", "_cut_for", "_Data", "_Likelihood", "_natural", "_to_theta", "_constrained_theta", "_hessian",
    "_BOUNDS", "_PAIR_CHUNK", "_TREE_BLOCK", "_CHUNK_PAIRS", "omori_kept",
]

TAPER_CHOICES = ("none", "free", "auto")  # or a number: tau fixed (days)
BACKGROUNDS = ("uniform", "inhomogeneous", "auto")
SPACE_INTEGRALS = ("region", "plane")
# Default caps of the pair cut: 70 rupture lengths and ten years. The `etas` package cuts at 100 rupture
# lengths; 70 keeps the pairs of the worst case (p and q at 1, every pair inside the caps) of a 10^5-event
# catalog at the default experiment's density within 2 GiB (benchmarks/bench_invert.py --near-one).
RUPTURE_MULTIPLE = 70.0
MAX_LAG_DAYS = 3652.5
# The `etas` package's default starting values (its invert_etas_config.json), in its parameterisation.
ETAS_PACKAGE_START = {"log10_mu": -5.8, "log10_k0": -2.6, "a": 1.8, "log10_c": -2.5, "omega": -0.02,
                      "log10_tau": 3.5, "log10_d": -0.85, "gamma": 1.3, "rho": 0.66}
# Rounds of the inhomogeneous background: u from the fit's background probabilities, then the fit again.
_BACKGROUND_ROUNDS = 3


# ------------------------------------------------------------------------------------------ data


def _region_mask(region, x, y) -> np.ndarray:
    arr = np.asarray(region, dtype=float)
    if arr.ndim == 1 and arr.size == 4:  # a rectangle: its edges belong to it
        xmin, xmax, ymin, ymax = arr
        return (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
    return inside_polygon(region, x, y)


def catalog_sequence(
    catalog: pd.DataFrame,
    *,
    mc: float,
    t_start: float,
    t_end: float,
    aux_days: float | None = None,
    region=None,
    delta_m: float = 0.0,
) -> Sequence:
    """The events of ``catalog`` with magnitude >= mc as one sequence: targets in [t_start, t_end), history
    from t_start - aux_days (None: every earlier event). Events outside ``region`` (a rectangle (xmin, xmax,
    ymin, ymax) or a polygon's vertices, km) are left out. With magnitudes in bins of ``delta_m``, the bin of
    Mc counts whatever its rounding (m >= mc - delta_m/2)."""
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
        keep &= _region_mask(region, x, y)
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


# ------------------------------------------------------------------------------------------ fit


def _taper_option(tau) -> tuple[str, float | None]:
    """("none" | "free" | "fixed" | "auto", the fixed tau or None) from the ``tau`` option."""
    if tau is None or tau == "none":
        return "none", None
    if tau in ("free", "auto"):
        return tau, None
    if isinstance(tau, str):
        raise InversionError(f"tau = {tau!r}: must be one of {', '.join(TAPER_CHOICES)} or a number of days")
    value = float(tau)
    if not (value > 0 and math.isfinite(value)):
        raise InversionError(f"tau = {tau!r}: a fixed Omori taper time must be a positive number of days")
    return "fixed", value


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
    tau=None,
    background: str = "uniform",
    rupture_multiple: float | None = RUPTURE_MULTIPLE,
    max_lag_days: float = MAX_LAG_DAYS,
    space_integral: str = "region",
) -> ETASFit:
    """Maximum-likelihood ETAS fit, jointly over ``seqs`` (see the module docstring). ``delta_m``: the
    magnitudes' bin width (0: continuous), for b by Aki-Utsu with Utsu's bin correction. ``profile``: True
    (every parameter and the branching ratio) or the parameters whose profile-likelihood intervals at
    ``profile_level`` to add (``profile_interval``; each costs about twenty refits). ``tau``: None or "none"
    (pure Omori law), "free" (tapered, tau fitted), a number (tapered, tau fixed, days) or "auto" (free, and
    the pure law when tau runs to its upper bound: no taper within the catalog). ``background``: "uniform",
    "inhomogeneous" (space-time model) or "auto" (uniform; inhomogeneous when that is not usable). ``rupture_multiple`` (None: no cap) and ``max_lag_days``: the caps
    of the pair cut. ``space_integral``: "region" (each kernel integrated over the region: the exact
    likelihood of events observed in it) or "plane" (over the whole plane, the `etas` package's model: mass
    sent outside the region counts as expected events; no quadrature)."""
    kind, tau_value = _taper_option(tau)
    options = dict(mc=mc, model=model, start=start, n_starts=n_starts, cut_mass=cut_mass, seed=seed,
                   delta_m=delta_m, profile=profile, profile_level=profile_level, background=background,
                   rupture_multiple=rupture_multiple, max_lag_days=max_lag_days, space_integral=space_integral)
    if background == "auto":
        # the uniform background first; where it is not usable (real seismicity's background clusters on
        # faults, and a uniform one leaves that clustering to the triggering), the smoothed one
        uniform = fit_sequences(seqs, tau=tau, **{**options, "background": "uniform"})
        if uniform.usable or model != "space-time":
            return uniform
        smooth = fit_sequences(seqs, tau=tau, **{**options, "background": "inhomogeneous"})
        return smooth if smooth.usable or len(smooth.problems) <= len(uniform.problems) else uniform
    if kind == "auto":
        tapered = fit_sequences(seqs, tau="free", **{**options, "profile": False})
        if "tau" in tapered.at_bound and tapered.estimates["tau"] > math.sqrt(math.exp(sum(_BOUNDS["tau"]))):
            plain = fit_sequences(seqs, tau=None, **options)
            if plain.usable or not tapered.usable:
                return plain
        return tapered
    if space_integral not in SPACE_INTEGRALS:
        raise InversionError(f"space_integral = {space_integral!r}: must be one of {', '.join(SPACE_INTEGRALS)}")
    if background not in BACKGROUNDS:
        raise InversionError(f"background = {background!r}: must be one of {', '.join(BACKGROUNDS)}")
    if background == "inhomogeneous" and model != "space-time":
        raise InversionError("background = 'inhomogeneous' needs the space-time model")
    if not 0.0 < cut_mass < 1.0:
        raise InversionError(f"cut_mass = {cut_mass!r}: must be in (0, 1)")
    if not 0.0 <= delta_m < 1.0:
        raise InversionError(f"delta_m = {delta_m!r}: must be in [0, 1)")
    if not max_lag_days > 0:
        raise InversionError(f"max_lag_days = {max_lag_days!r}: must be > 0")
    if rupture_multiple is not None and not rupture_multiple > 0:
        raise InversionError(f"rupture_multiple = {rupture_multiple!r}: must be > 0 (or None: no cap)")
    names = param_names(model, "free" if kind == "free" else None)
    seqs, guess = _observed_and_guess(seqs, names, mc, model, tau_value)
    guess.update({k: v for k, v in (start or {}).items() if k in names and v is not None})
    ctx = _Context(seqs, model, mc, names, kind, tau_value, cut_mass, rupture_multiple, max_lag_days,
                   np.random.default_rng(seed), plane=space_integral == "plane")
    starts = _starts(ctx, guess, n_starts)
    density = None
    theta_prev = None
    for _round in range(_BACKGROUND_ROUNDS if background == "inhomogeneous" else 1):
        result, theta, data, lik = _fit_cut(ctx, guess, starts if theta_prev is None else [theta_prev], density)
        if background != "inhomogeneous":
            break
        bg, lam = lik.background_and_rate(theta)
        prob = bg / lam
        density = _smoothed(seqs, prob)
        theta_prev = theta
    if background == "inhomogeneous":
        result, theta, data, lik = _fit_cut(ctx, guess, [theta_prev], density)
    fit = _summarise(result, theta, data, lik, ctx, delta_m)
    if density is not None:
        fit.background = "inhomogeneous"
        fit._state["background_density"] = density
    if profile:
        wanted = profile_parameters(model) if profile is True else tuple(profile)
        fit.profile_level = profile_level
        fit.profile_intervals = {k: profile_interval(fit, k, level=profile_level) for k in wanted}
    return fit


def _observed_and_guess(seqs, names, mc: float, model: str, tau_value: float | None):
    """The sequences with an observed window, and the default start: DEFAULT_START, mu at half the target
    rate, a fixed tau; InversionError when there are too few targets for the parameters."""
    seqs = [s for s in seqs if s.t1 > s.t0]
    n_target = int(sum((s.time >= s.t0).sum() for s in seqs))
    if n_target < len(names) + 1:
        raise InversionError(f"{n_target} target events above Mc = {mc:g}: too few for the {len(names)}-parameter {model} model")
    span = float(sum(s.t1 - s.t0 for s in seqs))
    guess = {k: v for k, v in DEFAULT_START.items() if v is not None}
    guess["mu"] = 0.5 * n_target / span
    if tau_value is not None:
        guess["tau"] = tau_value
    return seqs, guess


class _Context:
    """What every stage of one fit shares."""

    def __init__(self, seqs, model, mc, names, kind, tau, cut_mass, rupture_multiple, max_lag_days, rng,
                 plane=False):
        self.seqs, self.model, self.mc, self.names, self.plane = seqs, model, mc, names, plane
        self.kind, self.tau, self.cut_mass = kind, tau, cut_mass
        self.tapered = kind in ("free", "fixed")
        self.rupture_multiple, self.max_lag_days, self.rng = rupture_multiple, max_lag_days, rng
        self.longest = max(s.t1 - min(s.t0, s.time.min(initial=s.t0)) for s in seqs)
        self.n_target = int(sum((s.time >= s.t0).sum() for s in seqs))
        mags = np.concatenate([s.magnitude for s in seqs])
        self.radius_cap = rupture_multiple * rupture_length_km(mags) if rupture_multiple is not None else None
        self.area = (polygon_area(seqs[0].region) if model == "space-time" and seqs[0].region is not None
                     else None)

    @property
    def lag_cap(self) -> float:
        """The pairs' lag cap: a cap beyond every sequence's span cuts nothing."""
        return self.max_lag_days if self.max_lag_days < self.longest else math.inf

    def bounds(self):
        return [bounds(k, self.tapered) for k in self.names]

    def natural(self, theta):
        return _natural(theta, self.names, self.tau)

    def to_theta(self, params):
        return _to_theta(params, self.names, self.tau)

    def build(self, params, density):
        t_cut, k_cut = _cut_for({**params, "tau": params.get("tau", self.tau) if self.tapered else None},
                                self.model, self.cut_mass, self.longest)
        background = None
        if density is not None:
            background = density(np.concatenate([s.x for s in self.seqs]), np.concatenate([s.y for s in self.seqs]))
        data = _build(self.seqs, self.model, self.mc, t_cut, k_cut, params, radius_cap=self.radius_cap,
                      lag_cap=self.lag_cap, tau=self.tau, background=background, plane=self.plane)
        return data, _Likelihood(data, self.names)


def _smoothed(seqs, prob) -> BackgroundDensity:
    regions = {tuple(np.asarray(s.region, dtype=float).ravel()) for s in seqs}
    if len(regions) != 1:
        raise InversionError("the inhomogeneous background needs one region shared by every sequence")
    x = np.concatenate([s.x[s.time >= s.t0] for s in seqs])
    y = np.concatenate([s.y[s.time >= s.t0] for s in seqs])
    return smoothed_background(x, y, prob, seqs[0].region)


def _starts(ctx: _Context, guess: dict[str, float], n_starts: int) -> list[np.ndarray]:
    """Starting points: ``guess``, the `etas` package's defaults (with n_starts >= 2), then jitters of guess."""
    first = ctx.to_theta(guess)
    starts = [first]
    if n_starts >= 2:
        starts.append(ctx.to_theta(_package_start(ctx, guess)))
    lo, hi = np.array(ctx.bounds()).T
    while len(starts) < n_starts:
        starts.append(np.clip(first + ctx.rng.normal(0.0, 0.5, len(ctx.names)), lo + 1e-6, hi - 1e-6))
    return starts


def _package_start(ctx: _Context, guess: dict[str, float]) -> dict[str, float]:
    """The `etas` package's default start in our parameters (etasvae.params.from_sed's conversion; p = 1.1
    for the pure Omori law, whose p must exceed 1)."""
    th = ETAS_PACKAGE_START
    rho, d, gamma = th["rho"], 10 ** th["log10_d"], th["gamma"]
    c = 10 ** th["log10_c"]
    tau = (10 ** th["log10_tau"] if ctx.kind == "free" else ctx.tau) if ctx.tapered else None
    p = 1.0 + th["omega"] if ctx.tapered else 1.1
    k = 10 ** th["log10_k0"] * math.pi / (rho * d**rho) * omori_normaliser(p, c, tau)
    out = {**guess, "K": k, "alpha": th["a"] - rho * gamma, "c": c, "p": p, "D": d, "q": 1.0 + rho, "gamma": gamma}
    if ctx.area is not None:
        out["mu"] = 10 ** th["log10_mu"] * ctx.area
    if ctx.kind == "free":
        out["tau"] = tau
    return out


def _fit_cut(ctx: _Context, guess, starts, density):
    """Best fit over ``starts`` with the cut chosen from ``guess``, then again from the estimate if it moved
    (at most three rounds): (result, theta, data, likelihood)."""
    cut_params = dict(guess)
    best = None
    for _ in range(3):
        data, lik = ctx.build(cut_params, density)
        result = None
        for theta0 in (starts if best is None else [best[1]]):
            r = _minimise(lik, theta0, ctx)
            if result is None or _better(r, result, ctx):
                result = r
        est = ctx.natural(result.x)
        best = (result, result.x, data, lik)
        if _neglected_mass(data, est, ctx.model, ctx.tau) <= 1.5 * (1.0 - (1.0 - ctx.cut_mass) ** 2):
            break
        cut_params = est
    return best


def _better(new, old, ctx: _Context) -> bool:
    """An optimum inside the bounds beats one at a bound; otherwise the higher likelihood wins."""
    return (bool(_bound_names(new.x, ctx)), new.fun) < (bool(_bound_names(old.x, ctx)), old.fun)


def _bound_names(theta, ctx: _Context) -> list[str]:
    return [k for k, v, (lo, hi) in zip(ctx.names, theta, ctx.bounds()) if min(v - lo, hi - v) < 1e-4]


def _neglected_mass(data: _Data, est: dict[str, float], model: str, tau: float | None = None,
                    pairs: bool = False) -> float:
    """Fraction of the triggered mass outside the model's cut cylinders at ``est`` (productivity-weighted
    mean); with ``pairs``, outside the pairs' cylinders (the model's cut within the caps)."""
    kept_t = omori_kept(data.pair_lag if pairs else data.t_cut, est["p"], est["c"], est.get("tau", tau))
    kept_s = 1.0
    radius2 = data.radius2 if pairs else data.model_radius2
    if model == "space-time" and radius2 is not None:
        weight = np.exp(est["alpha"] * data.dm)
        sigma = est["D"] * np.exp(est["gamma"] * data.dm)
        finite = np.isfinite(radius2)
        tail = np.where(finite, np.exp((1.0 - est["q"]) * np.log1p(np.where(finite, radius2, 0.0) / sigma)), 0.0)
        kept_s = 1.0 - float(np.sum(weight * tail) / np.sum(weight))
    return 1.0 - kept_t * kept_s


def _minimise(lik: _Likelihood, theta0: np.ndarray, ctx: _Context):
    scale = 1.0 / max(ctx.n_target, 1)

    def fun(th):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            value, grad = lik.value_and_grad(th)
        if not (math.isfinite(value) and np.isfinite(grad).all()):
            return 1e10, np.zeros_like(th)
        return -value * scale, -grad * scale

    return optimize.minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=ctx.bounds(),
                             options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-7})


def _hessian(lik: _Likelihood, theta: np.ndarray) -> np.ndarray:
    """Observed information: central differences of the closed-form gradient of -l (step 1e-4 in theta,
    relative error ~1e-8), symmetrised."""
    h = 1e-4
    eye = np.eye(theta.size)
    cols = [(lik.value_and_grad(theta - h * e)[1] - lik.value_and_grad(theta + h * e)[1]) / (2 * h) for e in eye]
    hess = np.column_stack(cols)
    return 0.5 * (hess + hess.T)


def _jacobian(th: np.ndarray, ctx: _Context, nat: dict[str, float]) -> np.ndarray:
    """d natural / d theta (before mu's far-rate correction): diagonal but for K's row."""
    names = ctx.names
    deriv = {"mu": nat["mu"], "K": nat["K"], "c": nat["c"], "D": nat.get("D"), "tau": nat.get("tau"),
             "p": 1.0 if ctx.tapered else nat["p"] - 1.0, "q": nat.get("q", 1.0) - 1.0, "alpha": 1.0, "gamma": 1.0}
    jac = np.diag([deriv[k] for k in names])
    ik, ip, ic = names.index("K"), names.index("p"), names.index("c")
    if ctx.tapered:
        # K = A Z(p, c, tau): d log K = d theta_K + d log Z, the latter by central differences (Z is smooth)
        def log_z(dp=0.0, dlc=0.0, dlt=0.0):
            tau = nat["tau"] * math.exp(dlt)
            return math.log(omori_normaliser(nat["p"] + dp, nat["c"] * math.exp(dlc), tau))

        h = 1e-5
        jac[ik, ip] = nat["K"] * (log_z(dp=h) - log_z(dp=-h)) / (2 * h)
        jac[ik, ic] = nat["K"] * (log_z(dlc=h) - log_z(dlc=-h)) / (2 * h)
        if "tau" in names:
            jac[ik, names.index("tau")] = nat["K"] * (log_z(dlt=h) - log_z(dlt=-h)) / (2 * h)
    else:
        # K = exp(theta_K - theta_p - (p - 1) log c): dK/dtheta_p = -K (1 + (p-1) log c), dK/dtheta_c = -K (p-1)
        jac[ik, ip] = -nat["K"] * (1.0 + (nat["p"] - 1.0) * math.log(nat["c"]))
        jac[ik, ic] = -nat["K"] * (nat["p"] - 1.0)
    return jac


def _summarise(result, theta, data: _Data, lik: _Likelihood, ctx: _Context, delta_m: float) -> ETASFit:
    names, model, seqs, mc = ctx.names, ctx.model, ctx.seqs, ctx.mc
    th = np.asarray(theta, dtype=float)
    hess = _hessian(lik, th)
    try:
        cov_theta = np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        cov_theta = np.full_like(hess, np.nan)
    # delta method; mu is the cut model's background rate less the rate of the aftershocks beyond the cut
    nat = ctx.natural(th)
    jac = _jacobian(th, ctx, nat)
    far, far_grad = lik.far_rate(th, grad=True)
    mu_cut = nat["mu"]
    nat["mu"] = mu_cut - far
    jac[names.index("mu")] -= far_grad
    cov = jac @ cov_theta @ jac.T
    diag = np.diag(cov)
    se = {k: float(math.sqrt(v)) if v >= 0 else math.nan for k, v in zip(names, diag)}
    if ctx.kind == "fixed":
        se["tau"] = 0.0
    background, lam = lik.background_and_rate(th)
    prob = background / lam
    mags = np.concatenate([s.magnitude[s.time >= s.t0] for s in seqs])
    b = b_value_aki_utsu(mags, mc, delta_m)
    b_se = b_value_shi_bolt_error(mags, b)
    beta = b * LN10
    est = {k: nat[k] for k in names}
    if ctx.tapered:
        est["tau"] = nat["tau"]
    est["b"], se["b"] = float(b), float(b_se)
    alpha, K = nat["alpha"], nat["K"]
    if beta > alpha and math.isfinite(K):
        n = K * beta / (beta - alpha)
        # gradient of n in theta (through K and alpha) and in beta (b independent of the rest)
        grad = jac[names.index("K")] * (n / K)
        grad[names.index("alpha")] += n / (beta - alpha)
        var = grad @ cov_theta @ grad + (n * (-alpha / (beta * (beta - alpha))) * LN10 * b_se) ** 2
        est["branching_ratio"], se["branching_ratio"] = float(n), float(math.sqrt(max(var, 0.0)))
    else:
        est["branching_ratio"], se["branching_ratio"] = math.inf, math.nan
    neglected = _neglected_mass(data, nat, model, ctx.tau)
    outside_pairs = _neglected_mass(data, nat, model, ctx.tau, pairs=True)
    cut = {"max_lag_days": data.t_cut, "radius_sigma_units": data.k_cut, "cut_mass": ctx.cut_mass,
           "neglected_mass": neglected, "background_rate_cut_model": mu_cut, "far_rate": mu_cut - nat["mu"],
           # the caps' share: kernel mass inside the model's cut but beyond the caps (its pairs dropped from
           # the sum, its mass kept in the integral)
           "capped_mass": max(outside_pairs - neglected, 0.0), "pair_max_lag_days": data.pair_lag,
           "max_lag_cap_days": ctx.max_lag_days,
           "rupture_multiple": ctx.rupture_multiple if ctx.rupture_multiple is not None else math.inf}
    at_bound = _bound_names(th, ctx)
    problems = _problems(at_bound, th, ctx, est)
    return ETASFit(
        model=model, estimates=est, std_errors=se, loglik=float(-result.fun * data.target.sum()),
        n_target=int(data.target.sum()), n_history=int((~data.target).sum()), n_sequences=len(seqs),
        n_pairs=int(data.pair_i.size), cut=cut, converged=bool(result.success), at_bound=at_bound,
        background_probability=prob, covariance=cov, usable=not problems, problems=problems,
        taper={"none": "none", "free": "free", "fixed": "fixed"}[ctx.kind], span_days=float(data.span),
        space_integral="plane" if ctx.plane else "region",
        _state={"lik": lik, "theta": th, "names": names, "n_mag": int(mags.size), "tau": ctx.tau,
                "mag_excess": float(np.sum(mags - (mc - delta_m / 2))), "beta": beta},
    )


# What to try when a parameter ends at a bound: (lower end, upper end).
_ADVICE = {
    "p": ("the aftershock rate decays no faster than the law allows: fit the tapered Omori law (tau free), "
          "or raise Mc", "the decay is steeper than any Omori law here: check the catalog's times and Mc"),
    "tau": ("the taper is shorter than the data can resolve: fix tau (a number of days) or fit without taper",
            "no taper is seen within the catalog: fit the pure Omori law (tau none)"),
    "q": ("the spatial kernel's tail is heavier than the region allows: check that the region is the one "
          "the events fill (a polygon), or use the inhomogeneous background", "check the events' coordinates"),
    "D": ("the spatial kernel is narrower than the locations' precision: raise Mc or check the coordinates",
          "the spatial kernel is wider than the region: use the inhomogeneous background or the temporal model"),
}
_GENERIC = "the catalog does not constrain it: raise Mc, add history (aux days) or fit the temporal model"


def _problems(at_bound: list[str], th: np.ndarray, ctx: _Context, est: dict[str, float]) -> list[str]:
    """One sentence per reason the fit is not usable: a parameter at a bound, a supercritical estimate."""
    out = []
    for k in at_bound:
        lo, hi = bounds(k, ctx.tapered)
        upper = th[ctx.names.index(k)] > 0.5 * (lo + hi)
        advice = _ADVICE.get(k, (_GENERIC, _GENERIC))[int(upper)]
        value = est[k]
        out.append(f"{k} = {value:.4g} at its {'upper' if upper else 'lower'} bound: {advice}")
    n = est["branching_ratio"]
    if not n < 1.0:
        out.append(f"branching_ratio = {n:.4g} >= 1 (supercritical, not a stationary model): fit the tapered "
                   "Omori law (tau free), raise Mc, add history (aux days), or use the inhomogeneous background")
    return out


def fit_catalog(
    catalog: pd.DataFrame,
    *,
    mc: float,
    model: str = "space-time",
    t_start: float,
    t_end: float,
    aux_days: float | None = None,
    region=None,
    delta_m: float = 0.0,
    **options,
) -> ETASFit:
    """Fit one catalog: targets in [t_start, t_end), earlier events (within aux_days) as history; magnitudes
    in bins of ``delta_m`` (0: continuous); ``region`` a rectangle (xmin, xmax, ymin, ymax) or a polygon."""
    if model == "space-time" and region is None:
        raise InversionError("the space-time model needs the region (xmin, xmax, ymin, ymax) in km, or a polygon")
    if region is not None:
        try:
            as_polygon(region)
        except ValueError as err:
            raise InversionError(str(err)) from None
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


def magnitude_bin(magnitudes: np.ndarray) -> float:
    """0.1 or 0.01 when every magnitude is a multiple of it (to 1e-6), else 0 (continuous magnitudes)."""
    m = np.asarray(magnitudes, dtype=float)
    for width in (0.1, 0.01):
        if m.size and np.all(np.abs(m / width - np.round(m / width)) < 1e-6):
            return width
    return 0.0
