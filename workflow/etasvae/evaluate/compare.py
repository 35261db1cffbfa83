"""compare_sets: every statistic of an evaluation for S, A and P against H, and the skill.

Set names, the skill and what "informative" means are defined in ``docs/design.md`` (section *Evaluation*).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import statistics as st
from . import window_tests as wt
from .baseline import poisson_baseline
from .etas_fit import GROUP as ETAS_FIT_GROUP
from .etas_fit import etas_fit_comparisons

INFORMATIVE_RATIO = 1.5
"""A statistic gives a skill only if the Poisson baseline is this many times farther from H than A is."""

MAGNITUDE_STATISTICS = ("b_value", "b_positive", "magnitude_ks", "max_magnitude_ks", "bath_gap", "csep_magnitude")
"""Statistics that see the magnitudes: they get a skill because P's magnitudes are naive (normal, no
Gutenberg–Richter tail; :func:`~.baseline.poisson_baseline`)."""

GROUPS = ("magnitudes", "time", "aftershocks", "space", "whole windows", "CSEP", ETAS_FIT_GROUP)


def compare_sets(
    S: list[pd.DataFrame],
    H: list[pd.DataFrame],
    A: list[pd.DataFrame],
    P: list[pd.DataFrame] | None = None,
    *,
    mc: float,
    rng: np.random.Generator,
    delta_m: float = 0.0,
    dmc: float | None = None,
    n_permutations: int = 200,
    max_windows: int = 500,
    mmd_windows: int | None = None,
    classifier: str = "knn",
    cv_folds: int = 5,
    fano_bins: int = 10,
    csep_dm: float = 0.1,
    csep_time_quantile: float = 0.05,
    min_omori_events: int = 10,
    alpha: float = 0.05,
    etas_fits: dict | None = None,
) -> pd.DataFrame:
    """Every statistic of the evaluation for S, A, P against H: one row per statistic (docs/design.md §6).

    Columns: statistic, group, distance (how d is defined), value_S/H/A/P (the statistic on each set
    where that means something), err_S/H/A/P (standard errors where known), d_S, d_A, d_P (distance to H),
    p_S, p_A, p_P (p-value of a test of "X and H come from the same distribution", where there is one),
    skill = (d_P - d_S)/(d_P - d_A), informative. Each statistic is one function of
    :mod:`~etasvae.evaluate.statistics` or :mod:`~etasvae.evaluate.window_tests`, whose docstring says
    what it measures; they run in the order of the table, sharing ``rng``.

    Options: ``dmc`` the b-positive minimum difference (default max(Δm, 0.1)); at most ``max_windows``
    windows per set for pair distances and the classifier test, ``mmd_windows`` (default ``max_windows``)
    for MMD, whose cost grows as its square (``classifier``: "knn", "logistic",
    "gbm"; ``cv_folds`` folds; ``n_permutations`` for the MMD p-value); ``fano_bins`` bins per median H
    duration; ``csep_dm`` the M-test bin width and ``csep_time_quantile`` the quantile of H's durations
    that ends the N-test interval (keep it small: every H window shorter than it gives δ2 = 1);
    ``min_omori_events`` aftershocks for an Omori fit. ``etas_fits``: the joint ETAS fits of S, H and A
    (an ``estimates.json`` document's "fits", ``etasvae.inversion_report``) add the ETAS-parameter rows
    (:mod:`~etasvae.evaluate.etas_fit`); None (the pooled model) adds none.

    Skill is NaN when the statistic is not *informative*, i.e. P is not farther from H than the noise
    floor beyond sampling noise: informative needs d_P > 1.5·d_A (INFORMATIVE_RATIO) and, where the
    statistic has a p-value, p_P < ``alpha``. Statistics without a skill are judged against the floor
    instead (:func:`~etasvae.evaluate.verdict.classify`). P defaults to the Poisson baseline of A (neither
    S nor P ever sees H), whose magnitudes are naive (a normal distribution cut at Mc), so the magnitude
    statistics (MAGNITUDE_STATISTICS) get a skill too.

    Caveat: the p-values assume independent events or windows. ETAS events are clustered and windows cut
    from one catalog share its long-term rate, so KS and permutation p-values of A against H can be small
    for two samples of the same process; read p-values next to p_A, and trust the distances.
    """
    # degenerate synthetic windows (all events at one instant, no events above Mc) give log10(0) and 0/0:
    # they become inf/NaN distances and skills, not warnings
    with np.errstate(divide="ignore", invalid="ignore"):
        if P is None:
            P = poisson_baseline(A, rng, mc)
        if dmc is None:
            dmc = max(delta_m, 0.1)
        sets = {"S": S, "H": H, "A": A, "P": P}
        data = {k: st.set_data(v, mc, delta_m, min_omori_events) for k, v in sets.items()}
        results = [
            st.b_value_test(data, mc, delta_m),
            st.b_positive_test(data, dmc, delta_m),
            st.magnitude_ks_test(data),
            st.max_magnitude_ks_test(data),
            *st.log_dt_tests(data),
            st.cv_test(data),
            st.log_duration_ks_test(data),
            st.count_ks_test(data),
            st.fano_test(data, fano_bins),
            *st.omori_tests(data, min_omori_events),
            st.bath_gap_test(data),
            *st.distance_ks_tests(data),
            st.pair_correlation_test(data, max_windows, rng),
        ]
        Zh, Z = wt.standardised_features(data, max_windows, rng)
        results += [
            wt.mmd_comparison(Zh, Z, rng, n_permutations, mmd_windows or max_windows),
            wt.c2st_comparison(Zh, Z, rng, classifier, cv_folds, max_windows),
            wt.csep_number_comparison(data, csep_time_quantile, alpha),
            wt.csep_magnitude_comparison(data, mc, csep_dm, alpha),
        ]
        if etas_fits is not None:
            results += etas_fit_comparisons(etas_fits)
        return add_skill(pd.DataFrame([r.row() for r in results]), alpha)


def add_skill(table: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Add the columns ``informative`` and ``skill`` = (d_P - d_S)/(d_P - d_A) to a comparison table."""
    table["informative"] = (
        (table["d_P"] > INFORMATIVE_RATIO * table["d_A"].clip(lower=0.0))
        & ~(table["p_P"] >= alpha)  # where a p-value exists, P must also be rejected
        & np.isfinite(table["d_P"])
        & np.isfinite(table["d_A"])
    )
    denom = table["d_P"] - table["d_A"]
    ok = table["informative"] & (denom > 1e-12)
    table["skill"] = np.where(ok, (table["d_P"] - table["d_S"]) / denom.where(ok, 1.0), np.nan)
    return table
