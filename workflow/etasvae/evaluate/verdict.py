"""Summaries of a comparison table: the overall score, a word per statistic and a plain-language verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .compare import INFORMATIVE_RATIO


def overall_score(table: pd.DataFrame) -> float:
    """Median over informative statistics of skill clipped to [-1, 1]; NaN if none is informative.

    The median keeps one degenerate statistic from dominating; clipping keeps a catastrophic failure on
    one statistic (skill ≪ 0, or −inf where S's distance is infinite, e.g. a supercritical ETAS fit)
    from counting more than "as bad as the Poisson baseline, twice over".
    Higher is better; 1 means every typical statistic is at the ETAS noise floor.
    """
    s = table["skill"].to_numpy(dtype=float)
    s = s[~np.isnan(s)]
    return float(np.median(np.clip(s, -1.0, 1.0))) if s.size else np.nan


def group_scores(table: pd.DataFrame) -> dict[str, float]:
    """Per statistic group (magnitudes, time, ..., ETAS fit), the median of its skills clipped to [-1, 1],
    for the groups with at least one skill, in table order.

    The overall score's median over about twenty statistics lets one mechanism fail unseen when most
    statistics are at the floor (a generator without magnitude-dependent triggering keeps an overall score
    near 1 with an ``etas_alpha`` skill near 0); the weakest group shows it.
    """
    out: dict[str, float] = {}
    for group, part in table.groupby("group", sort=False):
        s = part["skill"].to_numpy(dtype=float)
        s = s[~np.isnan(s)]   # as in overall_score: -inf (an infinite distance) counts as -1
        if s.size:
            out[str(group)] = float(np.median(np.clip(s, -1.0, 1.0)))
    return out


def weakest_group(table: pd.DataFrame) -> tuple[str, float] | None:
    """(group, score) of the lowest :func:`group_scores` entry; None when no group has a skill."""
    scores = group_scores(table)
    return min(scores.items(), key=lambda kv: kv[1]) if scores else None


FLOOR_SKILL = 0.75
NAIVE_SKILL = 0.25


def classify(table: pd.DataFrame, alpha: float = 0.05) -> pd.Series:
    """A word per statistic, from its skill where it has one, else from S against the floor.

    - informative statistics: "floor" (skill ≥ 0.75), "partial" (0.25 < skill < 0.75), "naive"
      (skill ≤ 0.25: no better than the Poisson baseline);
    - the others (P as close as the floor, e.g. magnitudes): "fails" when S is clearly farther from H than
      the floor is, by the same rule that makes a statistic informative (d_S > 1.5·d_A and, where a test
      exists, p_S < alpha), else "floor";
    - "n/a" where S has no value.
    """
    out = []
    for _, r in table.iterrows():
        if not np.isnan(r["skill"]):
            out.append("floor" if r["skill"] >= FLOOR_SKILL else "naive" if r["skill"] <= NAIVE_SKILL else "partial")
        elif not np.isfinite(r["d_S"]):
            out.append("n/a")
        else:
            farther = r["d_S"] > INFORMATIVE_RATIO * max(r["d_A"], 0.0) if np.isfinite(r["d_A"]) else True
            rejected = not (r["p_S"] >= alpha)  # NaN p-value: no test, the distance decides
            out.append("fails" if farther and rejected else "floor")
    return pd.Series(out, index=table.index, name="class")


def verdict(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """One paragraph of plain language from the numbers of a :func:`compare_sets` table."""
    cls = classify(table, alpha)
    names = table["statistic"].to_numpy()

    def listing(mask) -> str:
        items = [f"{n} ({s:.2f})" if not np.isnan(s) else str(n) for n, s in zip(names[mask], table["skill"][mask])]
        return ", ".join(items) if items else "none"

    score = overall_score(table)
    informative = table["informative"].to_numpy(bool)
    parts = []
    if np.isfinite(score):
        quality = (
            "close to the ETAS noise floor"
            if score >= FLOOR_SKILL
            else (
                "no better than a Poisson process without aftershocks"
                if score <= NAIVE_SKILL
                else "between the Poisson baseline and the ETAS floor"
            )
        )
        n_skill = int((~np.isnan(table["skill"].to_numpy(dtype=float))).sum())
        parts.append(
            f"Overall skill {score:.2f} (median over {n_skill} statistics): the synthetic windows are {quality}."
        )
        weakest = weakest_group(table)
        if weakest is not None and weakest[1] < FLOOR_SKILL - NAIVE_SKILL:
            parts.append(f"Weakest group: {weakest[0]} (median skill {weakest[1]:.2f}).")
    elif table["informative"].astype(bool).any():
        parts.append("The synthetic set gives no usable value for any informative statistic (too few events?).")
    else:
        parts.append(
            "No statistic separates the Poisson baseline from the held-out ETAS windows, so no skill can be computed."
        )
    c = cls.to_numpy()
    parts.append(f"At the ETAS floor (skill in brackets): {listing(informative & (c == 'floor'))}.")
    parts.append(f"Part of the way: {listing(informative & (c == 'partial'))}.")
    parts.append(f"No better than Poisson: {listing(informative & (c == 'naive'))}.")
    fails = ~informative & (c == "fails")
    fine = ~informative & (c == "floor")
    if fails.any() or fine.any():
        said = []
        if fine.any():
            said.append(f"S agrees with the held-out windows on {listing(fine)}")
        if fails.any():
            whom = "them" if fine.any() else "the held-out windows"
            said.append(f"S departs from {whom} on {listing(fails)}")
        parts.append("Statistics the Poisson baseline already matches (no skill defined): " + "; ".join(said) + ".")
    row = table.set_index("statistic")
    if "c2st" in row.index and np.isfinite(row.loc["c2st", "value_S"]):
        parts.append(
            f"A classifier tells synthetic from held-out windows with accuracy {row.loc['c2st', 'value_S']:.2f} "
            f"(ETAS vs ETAS {row.loc['c2st', 'value_A']:.2f}, Poisson vs ETAS {row.loc['c2st', 'value_P']:.2f};"
            " 0.5 is chance)."
        )
    if "b_value" in row.index and np.isfinite(row.loc["b_value", "value_S"]):
        parts.append(
            f"b-value {row.loc['b_value', 'value_S']:.2f} ± {row.loc['b_value', 'err_S']:.2f} against "
            f"{row.loc['b_value', 'value_H']:.2f} ± {row.loc['b_value', 'err_H']:.2f} held out."
        )
    return " ".join(parts)

