"""Evaluation of the surrogate's chained catalogs (docs/methods/surrogate.md; no torch here).

Two comparisons per grid point, both against the ETAS catalogs of that point:

- **windows**: the chains cut into consecutive windows of L events (``chain_windows``) are the synthetic
  set S of the per-config evaluation (``etasvae.evaluate.evaluate_model``: the same statistics, H, A, P,
  skill and overall score as a per-config model);
- **catalogs**: whole catalogs of the simulated duration (``catalog_comparison``): S the chains, H the
  held-out replicates, A the training replicates (the noise floor), P Poisson catalogs at A's mean count
  (the naive floor; POISSON_CATALOGS of them, so that its own sampling noise is small beside H's). Statistics:
  ``fano_daily`` (Fano factor of daily counts, per catalog; value the geometric mean, d = |Δ mean log10 F|),
  ``count_30d_fano`` (the dispersion of the counts in 30-day windows: their Fano factor, per catalog, over
  windows starting every day; d = |Δ mean log10 F30|), ``count_30d_ks`` (the distribution of counts in
  30-day windows, pooled over catalogs; d = KS distance between the counts of windows starting every day,
  the p-value from consecutive windows; reported without a skill, see below), ``cv_catalog`` (coefficient of
  variation of the inter-event times, per catalog; d = |Δ mean|), and ``b_value`` (Aki–Utsu over all
  events; P keeps A's magnitudes, so it is never informative and gets no skill). Skill and
  "informative" as for windows (``evaluate.compare.add_skill``).

Why two statistics of the 30-day counts: the Poisson baseline has A's mean count, so what sets an ETAS
catalog's 30-day counts apart from it is their spread (aftershock sequences make the counts overdispersed).
The KS distance mixes that with the count level, which one held-out catalog pins down poorly (its total
count scatters with its largest sequences), and its p-value rests on 24 consecutive windows of H: at a low
branching ratio the KS test almost never rejects the Poisson baseline, so the KS row was "not informative"
there; worse, a catalog with its times shuffled uniformly keeps the level and scores well on it. The Fano
factor of 30-day counts is the overdispersion itself (1 for a Poisson catalog), estimated from windows
starting every day, and separates ETAS from Poisson at every point of the default grid (``count_30d_fano``,
the skill of the 30-day count distribution); the KS row stays beside it without a skill.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from . import stats
from .evaluate.compare import add_skill
from .evaluate.run import evaluate_model
from .evaluate.verdict import overall_score

DAY = 1.0
MONTH = 30.0
POISSON_CATALOGS = 32
"""At least this many Poisson catalogs make the naive floor P (its values are averaged over catalogs)."""
NO_SKILL = ("b_value", "count_30d_ks")
"""Catalog statistics reported without a skill (``catalog_comparison``)."""


def chain_windows(catalog: pd.DataFrame, length: int, mc: float) -> tuple[pd.DataFrame, int]:
    """A chained catalog (``window`` = chain) cut into consecutive, non-overlapping windows of ``length``
    events above Mc, in the form of a synthetic catalog of the sample stage: ``window`` numbered from 0,
    times from the event before the window (so the first time is the first inter-event time; the chain's
    first event counts from the chain's start), positions relative to the window's first event.
    Returns (table, number of windows)."""
    parts, k = [], 0
    for _, ch in catalog[catalog["magnitude"] >= mc - 1e-9].groupby("window", sort=True):
        t, m = ch["time"].to_numpy(), ch["magnitude"].to_numpy()
        x, y = ch["x"].to_numpy(), ch["y"].to_numpy()
        for s in range(0, len(t) - length + 1, length):
            sl = slice(s, s + length)
            t_ref = t[s - 1] if s > 0 else 0.0
            parts.append(pd.DataFrame({"time": t[sl] - t_ref, "magnitude": m[sl], "x": x[sl] - x[s],
                                       "y": y[sl] - y[s], "window": np.int64(k)}))
            k += 1
    if not parts:
        return pd.DataFrame(columns=["time", "magnitude", "x", "y", "window"]), 0
    return pd.concat(parts, ignore_index=True), k


def poisson_catalogs(A: list[pd.DataFrame], duration: float, n: int, rng: np.random.Generator) -> list[pd.DataFrame]:
    """``n`` Poisson catalogs on [0, duration) with A's mean count and magnitudes drawn from A's."""
    mean = float(np.mean([len(a) for a in A]))
    mags = np.concatenate([a["magnitude"].to_numpy() for a in A])
    out = []
    for _ in range(n):
        k = int(rng.poisson(mean))
        out.append(pd.DataFrame({"time": np.sort(rng.uniform(0.0, duration, k)),
                                 "magnitude": rng.choice(mags, size=k)}))
    return out


def _fano(cat: pd.DataFrame, duration: float) -> float:
    t = cat["time"].to_numpy()
    counts = stats.counts_in_bins(t, np.zeros(len(t), dtype=np.int64), np.array([duration]), DAY)
    return stats.fano_factor(counts)


def _fano_30d(cat: pd.DataFrame, duration: float) -> float:
    """Fano factor of the counts in the 30-day windows of one catalog starting every day."""
    counts = _month_counts([cat], duration, DAY)
    return stats.fano_factor(counts) if len(counts) > 1 else np.nan


def _month_counts(cats: list[pd.DataFrame], duration: float, stride: float | None = None) -> np.ndarray:
    """Counts in the 30-day windows [s, s + 30) of each catalog, s = 0, stride, 2 stride, ... (default:
    consecutive windows, stride 30 days), concatenated."""
    out = []
    step = MONTH if stride is None else stride
    starts = np.arange(0.0, duration - MONTH + 1e-9, step)
    for cat in cats:
        t = np.sort(cat["time"].to_numpy())
        out.append((np.searchsorted(t, starts + MONTH) - np.searchsorted(t, starts)).astype(float))
    return np.concatenate(out) if out else np.zeros(0)


def catalog_values(cats: list[pd.DataFrame], duration: float, mc: float) -> dict[str, Any]:
    """Per-set values of the catalog statistics: Fano (daily) per catalog, CV per catalog, b over all, 30-day counts."""
    fano = np.array([_fano(c, duration) for c in cats])
    cv = np.array([stats.coefficient_of_variation(stats.inter_event_times(c["time"].to_numpy())) for c in cats])
    mags = np.concatenate([c["magnitude"].to_numpy() for c in cats]) if cats else np.zeros(0)
    b, b_err = stats.b_value_and_error(mags, mc) if len(mags) > 1 else (np.nan, np.nan)
    fano_30d = np.array([_fano_30d(c, duration) for c in cats])
    return {"log10_fano": np.log10(fano), "log10_fano_30d": np.log10(fano_30d), "cv": cv, "b": b, "b_err": b_err, "months": _month_counts(cats, duration),
            "months_sliding": _month_counts(cats, duration, DAY),
            "n_events": np.array([len(c) for c in cats], dtype=float)}


def _mean_err(a: np.ndarray) -> tuple[float, float]:
    a = a[np.isfinite(a)]
    if not a.size:
        return np.nan, np.nan
    return float(a.mean()), float(a.std(ddof=1) / np.sqrt(a.size)) if a.size > 1 else np.nan


def catalog_comparison(S: list[pd.DataFrame], H: list[pd.DataFrame], A: list[pd.DataFrame], *, duration: float,
                       mc: float, rng: np.random.Generator, alpha: float = 0.05) -> pd.DataFrame:
    """The catalog statistics (module docstring) of S, A and P against H, with the skill."""
    P = poisson_catalogs(A, duration, max(len(S), len(A), POISSON_CATALOGS), rng)
    v = {k: catalog_values(cats, duration, mc) for k, cats in (("S", S), ("H", H), ("A", A), ("P", P))}
    rows = []

    def row(statistic, distance, values, errs, d, p=None):
        r = {"statistic": statistic, "distance": distance}
        for k in "SHAP":
            r[f"value_{k}"], r[f"err_{k}"] = values[k], errs[k]
        for k in "SAP":
            r[f"d_{k}"] = d[k]
            r[f"p_{k}"] = np.nan if p is None else p[k]
        rows.append(r)

    fano = {k: _mean_err(v[k]["log10_fano"]) for k in "SHAP"}
    row("fano_daily", "|Δ mean log10 F|", {k: 10 ** fano[k][0] for k in "SHAP"},
        {k: fano[k][1] for k in "SHAP"}, {k: abs(fano[k][0] - fano["H"][0]) for k in "SAP"})
    f30 = {k: _mean_err(v[k]["log10_fano_30d"]) for k in "SHAP"}
    row("count_30d_fano", "|Δ mean log10 F30|", {k: 10 ** f30[k][0] for k in "SHAP"},
        {k: f30[k][1] for k in "SHAP"}, {k: abs(f30[k][0] - f30["H"][0]) for k in "SAP"})
    # the distance from 30-day windows starting every day (less sampling noise than consecutive windows), the
    # p-value from consecutive windows (independent enough for the KS test's assumption)
    ks = {k: stats.ks_distance(v[k]["months_sliding"], v["H"]["months_sliding"])[0] for k in "SAP"}
    ks_p = {k: stats.ks_distance(v[k]["months"], v["H"]["months"])[1] for k in "SAP"}
    row("count_30d_ks", "KS", {k: float(np.median(v[k]["months"])) if len(v[k]["months"]) else np.nan for k in "SHAP"},
        {k: np.nan for k in "SHAP"}, ks, ks_p)
    cv = {k: _mean_err(v[k]["cv"]) for k in "SHAP"}
    row("cv_catalog", "|Δ mean CV|", {k: cv[k][0] for k in "SHAP"}, {k: cv[k][1] for k in "SHAP"},
        {k: abs(cv[k][0] - cv["H"][0]) for k in "SAP"})
    row("b_value", "|Δb|", {k: v[k]["b"] for k in "SHAP"}, {k: v[k]["b_err"] for k in "SHAP"},
        {k: abs(v[k]["b"] - v["H"]["b"]) for k in "SAP"})
    table = add_skill(pd.DataFrame(rows), alpha)
    # No skill for two rows: P keeps A's magnitudes, so its b-value says nothing about the generator; and the
    # KS distance of the 30-day counts rewards a catalog whose times are shuffled uniformly (its counts keep
    # the level and lose the overdispersion: skill about 0.8 in tests/test_surrogate.py), so it is reported
    # beside count_30d_fano, which that catalog fails, but scores nothing.
    table.loc[table["statistic"].isin(NO_SKILL), ["informative", "skill"]] = [False, np.nan]
    return table


LINE_STATISTICS = ("b_value", "fano_daily", "cv_catalog", "omori_p")
"""The statistics the report draws against the varied parameters (omori_p from the window comparison)."""


def evaluate_point(table: pd.DataFrame, catalogs: dict[tuple[str, int], pd.DataFrame], spec: dict[str, Any],
                   synthetic: pd.DataFrame, *, config_id: str, kind: str, values: dict[str, float],
                   heldout_replicates: list[int], duration: float, seed: int, permutations: int, cv_folds: int,
                   figures_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Both comparisons of one grid point (module docstring): (window table, catalog table, summary).

    The summary holds the config id, its kind (trained / heldout), its parameter values, the windows'
    overall score (as a per-config model's), the catalog statistics' skills and their median
    (``catalog_score``), and per set the values of LINE_STATISTICS for the report's line plots."""
    mc = spec["mc"]
    S_windows, n_windows = chain_windows(synthetic, spec["length"], mc)
    windows, n_sets, figures = evaluate_model(
        table, catalogs, spec, S_windows, {"n_windows": n_windows}, config_id=config_id, seed=seed,
        permutations=permutations, cv_folds=cv_folds, figures_dir=figures_dir, title=f"surrogate\n{config_id}")
    rng = np.random.default_rng([seed, 1])
    above = lambda df: df[df["magnitude"] >= mc - 1e-9][["time", "magnitude"]].reset_index(drop=True)  # noqa: E731
    S = [above(ch) for _, ch in synthetic.groupby("window", sort=True)]
    H = [above(cat) for (c, r), cat in sorted(catalogs.items()) if r in heldout_replicates]
    A = [above(cat) for (c, r), cat in sorted(catalogs.items()) if r not in heldout_replicates]
    cats = catalog_comparison(S, H, A, duration=duration, mc=mc, rng=rng)
    lines = {}
    for name, tab in (("fano_daily", cats), ("cv_catalog", cats), ("b_value", cats), ("omori_p", windows)):
        r = tab.set_index("statistic").loc[name]
        lines[name] = {k: float(r[f"value_{k}"]) for k in "SHA"} | {f"err_{k}": float(r[f"err_{k}"]) for k in "SHA"}
    skill = {r["statistic"]: float(r["skill"]) for _, r in cats.iterrows()}
    summary = {"config_id": config_id, "kind": kind, "values": values, "overall_score": overall_score(windows),
               "n_windows": n_sets, "catalog_skill": skill, "catalog_score": overall_score(cats),
               "n_events": {"S": [len(s) for s in S], "H": [len(h) for h in H], "A": [len(a) for a in A]},
               "lines": lines, "figures": figures}
    return windows, cats, summary


REFIT_PARAMETERS = ("alpha", "p", "branching_ratio")
"""The refitted ETAS parameters the report shows beside the truth and the held-out catalog's fit."""


def fit_chains(catalog: pd.DataFrame, *, mc: float, duration: float, region, aux_days: float = 0.0,
               cut_mass: float = 0.05, n_starts: int = 2, max_chains: int | None = None) -> dict[str, Any]:
    """ETAS parameters refitted from a set's chained catalogs (``window`` = chain): the space-time model,
    jointly over the first ``max_chains`` chains (None: all), each fitted as the whole held-out catalog is
    (``inversion_report.fit_heldout_catalog``: targets from ``aux_days`` to ``duration``, the earlier events
    as history, over ``region``). ETASFit.to_dict(), or {"error": why} when the inversion cannot fit."""
    from .inversion import InversionError, catalog_sequence, fit_sequences

    try:
        seqs = [catalog_sequence(ch, mc=mc, t_start=aux_days, t_end=duration, region=tuple(region))
                for _, ch in catalog.groupby("window", sort=True)][:max_chains]
        return fit_sequences(seqs, mc=mc, model="space-time", cut_mass=cut_mass, n_starts=n_starts).to_dict()
    except InversionError as err:
        return {"error": str(err)}
