"""ETAS-parameter statistics: the parameters that a joint ETAS fit finds in S, A and H (docs/design.md §6).

The fits come from the invert rules (``etasvae.inversion_report``): the same joint fit of the temporal ETAS
model over non-overlapping short windows of each set, S on as many windows as A. Each parameter of
NAIVE_VALUES becomes one :class:`~etasvae.evaluate.statistics.Comparison`:

- value_X ± err_X: the estimate and its standard error (observed information; valid because no two fitted
  windows share an event);
- d_X = |θ_X − θ_H| / σ_AH with σ_AH = sqrt(se_A² + se_H²), the combined standard error of the floor
  comparison: one unit for the three sets, so d_A is the A–H difference in standard errors and the skill
  (d_P − d_S)/(d_P − d_A) is the same as on the parameter's own scale;
- P carries the value of a generator without the mechanism the parameter measures (NAIVE_VALUES, no error):
  α = 0 (productivity independent of magnitude), p = 1 (the normalised Omori kernel (p−1)c^(p−1)/(t+c)^p
  puts all its mass at infinite lags as p → 1: no aftershock inside any finite window, no temporal
  clustering) and n = 0 (no triggering, a Poisson process). The Poisson baseline P itself is not fitted:
  its n is 0 by construction, and its α and p are undefined (no aftershocks), an ETAS fit to it sits at a
  bound (K → 0) where its estimates and errors mean nothing;
- p_X: a two-sided z-test of θ_X = θ_H with the combined error of X and H (P: H's error alone).

Skill 1 then means "as close to H as a second ETAS sample fitted the same way", 0 "as far as a generator
without the mechanism". K, μ and c are left out: K is fixed by n, α and b (n = Kβ/(β − α)); μ of a window
fit mixes the background rate with the aftershocks of events before each window (no history), which the
count and inter-event-time statistics already see; c is poorly determined by windows of tens of events
(it trades off with p and K).
"""

from __future__ import annotations

import math
from typing import Any

from .statistics import OTHERS, Comparison, _z_pvalue, z_resolution

NAIVE_VALUES = {"alpha": 0.0, "p": 1.0, "branching_ratio": 0.0}
"""Per fitted parameter: the value a generator without that mechanism carries (the naive reference P)."""

GROUP = "ETAS fit"
FIT_OF = {"S": "synthetic_windows", "H": "heldout_windows", "A": "train_windows"}
"""The set each fit of an ``estimates.json`` document (``etasvae.inversion_report``) belongs to."""


def _estimate(fit: dict[str, Any] | None, name: str) -> tuple[float, float]:
    if not fit or "estimates" not in fit:
        return math.nan, math.nan
    value = float(fit["estimates"].get(name, math.nan))
    err = fit["std_errors"].get(name)
    return value, (math.nan if err is None else float(err))


def etas_fit_comparisons(fits: dict[str, dict[str, Any]]) -> list[Comparison]:
    """One Comparison per parameter of NAIVE_VALUES from the fits {"synthetic_windows", "heldout_windows",
    "train_windows"} (each ETASFit.to_dict(), or {"error": why}: its set gets NaN)."""
    out = []
    for name, naive in NAIVE_VALUES.items():
        values, errs = {}, {}
        for key, fit_name in FIT_OF.items():
            values[key], errs[key] = _estimate(fits.get(fit_name), name)
        values["P"], errs["P"] = naive, 0.0
        unit = math.hypot(errs["A"], errs["H"])
        ok = math.isfinite(unit) and unit > 0
        d = {k: abs(values[k] - values["H"]) / unit if ok else math.nan for k in OTHERS}
        p = {k: _z_pvalue(values[k], errs[k], values["H"], errs["H"]) for k in OTHERS}
        res = z_resolution(errs["S"], errs["H"]) / unit if ok else math.nan
        out.append(Comparison(f"etas_{name}", GROUP, f"|{name} − {name}_H| / σ_AH (joint ETAS fit)", values, errs, d, p, res))
    return out
