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
    Higher is better; 1 means every typical statistic is at the noise floor (ETAS: a second sample; a
    dataset: its training period).
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
# A classifier that tells the synthetic windows from the held-out ones this often separates them, whatever
# the median skill says (0.5 is chance); below it, a whole-window test separates S where it rejects S and
# not A (the floor).
C2ST_SEPARATED = 0.9
# ... and from this accuracy on, where it exceeds A's by more than two standard errors (at chance) as well.
C2ST_CLEAR = 0.75
NAIVE_SKILL = 0.25


def classify(table: pd.DataFrame, alpha: float = 0.05) -> pd.Series:
    """A word per statistic, from its skill where it has one, else from S against the floor.

    - informative statistics: "floor" (skill ≥ 0.75), "partial" (0.25 < skill < 0.75), "naive"
      (skill ≤ 0.25: no better than the Poisson baseline);
    - the others (P as close as the floor, e.g. magnitudes): "fails" when S is clearly farther from H than
      the floor is, by the same rule that makes a statistic informative (d_S > 1.5·d_A and, where a test
      exists, p_S < alpha), else "floor";
    - "n/a" where S has no value;
    - the classifier test "fails" wherever its accuracy reaches C2ST_SEPARATED, or C2ST_CLEAR with a
      significant p-value, whatever A's accuracy: a classifier that tells S from H that well never counts
      as agreement (even where it tells the floor from H as well).
    """
    out = []
    for _, r in table.iterrows():
        if r["statistic"] == "c2st" and (r["value_S"] >= C2ST_SEPARATED
                                         or (r["value_S"] >= C2ST_CLEAR and r["p_S"] < alpha)):
            out.append("fails")
        elif not np.isnan(r["skill"]):
            out.append("floor" if r["skill"] >= FLOOR_SKILL else "naive" if r["skill"] <= NAIVE_SKILL else "partial")
        elif not np.isfinite(r["d_S"]):
            out.append("n/a")
        else:
            farther = r["d_S"] > INFORMATIVE_RATIO * max(r["d_A"], 0.0) if np.isfinite(r["d_A"]) else True
            rejected = not (r["p_S"] >= alpha)  # NaN p-value: no test, the distance decides
            out.append("fails" if farther and rejected else "floor")
    return pd.Series(out, index=table.index, name="class")


WORDS = {  # what H and the floor are, for ETAS configs and for real catalogs (datasets)
    False: {"H": "the held-out ETAS windows", "floor": "the ETAS noise floor", "at_floor": "At the ETAS floor"},
    True: {"H": "the windows of the held-out period", "floor": "the training period (the floor)",
           "at_floor": "As close as the training period"},
}


def whole_window_separation(table: pd.DataFrame, alpha: float = 0.05) -> list[str]:
    """Why a whole-window test (classifier, MMD) tells S from H where A is not told apart: one clause per
    test that does ("classifier accuracy 0.94 (0.5 is chance)"); empty when none does."""
    row = table.set_index("statistic")
    out = []
    if "c2st" in row.index and np.isfinite(row.loc["c2st", "value_S"]):
        acc, p_s, p_a = (row.loc["c2st", c] for c in ("value_S", "p_S", "p_A"))
        acc_a = row.loc["c2st", "value_A"]
        se = row.loc["c2st", "err_S"] if "err_S" in row.columns else np.nan
        clearer = np.isfinite(acc_a) and np.isfinite(se) and acc >= C2ST_CLEAR and acc > acc_a + 2 * se
        if acc >= C2ST_SEPARATED or clearer or (p_s < alpha and not p_a < alpha):
            out.append(f"classifier accuracy {acc:.2f} (0.5 is chance)")
    if "mmd" in row.index and np.isfinite(row.loc["mmd", "p_S"]):
        p_s, p_a = row.loc["mmd", "p_S"], row.loc["mmd", "p_A"]
        if p_s < alpha and not p_a < alpha:
            out.append(f"MMD permutation p = {p_s:.3f} (A against H: {p_a:.3f})")
    return out


def _floor_told_apart(table: pd.DataFrame) -> float | None:
    """A's classifier accuracy against H where it reaches C2ST_SEPARATED (the floor is no floor), else None."""
    row = table.set_index("statistic")
    if "c2st" in row.index and row.loc["c2st", "value_A"] >= C2ST_SEPARATED:
        return float(row.loc["c2st", "value_A"])
    return None


def verdict_class(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """The verdict in one word: "separated" where a whole-window test tells S from H (whatever the score),
    else "floor", "partial" or "naive" from the overall score, "n/a" without one."""
    if whole_window_separation(table, alpha):
        return "separated"
    score = overall_score(table)
    if not np.isfinite(score):
        return "n/a"
    return "floor" if score >= FLOOR_SKILL else "naive" if score <= NAIVE_SKILL else "partial"


def verdict(table: pd.DataFrame, alpha: float = 0.05, *, real: bool = False) -> str:
    """One paragraph of plain language from the numbers of a :func:`compare_sets` table; ``real``: H and A
    are a real catalog's held-out and training periods. Its first sentence never calls S close to the floor
    while a whole-window test tells S from H (:func:`whole_window_separation`)."""
    words = WORDS[bool(real)]
    cls = classify(table, alpha)
    names = table["statistic"].to_numpy()

    def listing(mask) -> str:
        items = [f"{n} ({s:.2f})" if not np.isnan(s) else str(n) for n, s in zip(names[mask], table["skill"][mask])]
        return ", ".join(items) if items else "none"

    score = overall_score(table)
    separated = whole_window_separation(table, alpha)
    parts = []
    if np.isfinite(score):
        quality = (
            f"close to {words['floor']}"
            if score >= FLOOR_SKILL
            else (
                "no better than a Poisson process without aftershocks"
                if score <= NAIVE_SKILL
                else f"between the Poisson baseline and {words['floor']}"
            )
        )
        n_skill = int((~np.isnan(table["skill"].to_numpy(dtype=float))).sum())
        if separated and score > NAIVE_SKILL:
            parts.append(
                f"Overall skill {score:.2f} (median over {n_skill} statistics), but a whole-window test tells the "
                f"synthetic windows from {words['H']} ({'; '.join(separated)}): they are not close to {words['floor']}."
            )
        else:
            floor_apart = _floor_told_apart(table)
            parts.append(
                f"Overall skill {score:.2f} (median over {n_skill} statistics): the synthetic windows are {quality}"
                + (f", but the classifier tells the floor itself from {words['H']} (accuracy {floor_apart:.2f}): "
                   "closeness to the floor says little here." if floor_apart is not None else ".")
            )
        weakest = weakest_group(table)
        if weakest is not None and weakest[1] < FLOOR_SKILL - NAIVE_SKILL:
            parts.append(f"Weakest group: {weakest[0]} (median skill {weakest[1]:.2f}).")
    elif table["informative"].astype(bool).any():
        parts.append("The synthetic set gives no usable value for any informative statistic (too few events?).")
    else:
        parts.append(
            f"No statistic separates the Poisson baseline from {words['H']}, so no skill can be computed."
        )
    informative = table["informative"].to_numpy(bool)
    c = cls.to_numpy()
    parts.append(f"{words['at_floor']} (skill in brackets): {listing(informative & (c == 'floor'))}.")
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
        a_vs_h = "training vs held-out period" if real else "ETAS vs ETAS"
        p_vs_h = "Poisson vs held-out period" if real else "Poisson vs ETAS"
        parts.append(
            f"A classifier tells synthetic from held-out windows with accuracy {row.loc['c2st', 'value_S']:.2f} "
            f"({a_vs_h} {row.loc['c2st', 'value_A']:.2f}, {p_vs_h} {row.loc['c2st', 'value_P']:.2f};"
            " 0.5 is chance)."
        )
        if real and row.loc["c2st", "value_A"] >= C2ST_SEPARATED:
            parts.append("The classifier tells the training period from the held-out period too: the periods "
                         "differ (a decaying sequence, a changed network), so the floor is itself far from H.")
        elif not real and row.loc["c2st", "value_A"] >= C2ST_SEPARATED:
            parts.append("The classifier tells two ETAS samples apart: the windows differ between the "
                         "training and held-out replicates, so the floor is itself far from H.")
    if "b_value" in row.index and np.isfinite(row.loc["b_value", "value_S"]):
        parts.append(
            f"b-value {row.loc['b_value', 'value_S']:.2f} ± {row.loc['b_value', 'err_S']:.2f} against "
            f"{row.loc['b_value', 'value_H']:.2f} ± {row.loc['b_value', 'err_H']:.2f} held out."
        )
    return " ".join(parts)

