"""Profile likelihood of an ETAS fit (profile_loglik, signed_root, profile_interval): l_p(v), the
log-likelihood maximised with one natural parameter fixed at v (b refitted with the magnitudes'
Gutenberg-Richter likelihood for the branching ratio), its signed root r(v) = sign(est - v) sqrt(2 (l - l_p))
and the interval where |r| <= z. r is N(0, 1) at the truth to O(1/sqrt(N)) on any scale, and holds at p
close to 1 where the Wald errors of K and n do not (docs/methods/forecast.md). Fits of the pure Omori law only (the
chain rule through K below is the untapered one).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

from .inversion_model import _BOUNDS, LN10, ETASFit, InversionError, _to_theta, param_names

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
    if fit.taper != "none":
        raise InversionError("profile likelihoods are for fits of the pure Omori law (taper none)")
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
