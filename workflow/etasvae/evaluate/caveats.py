"""Warnings a page shows beside the numbers: sets too small for the tests to mean much.

A real catalog's held-out period often gives a handful of windows (the first week of an aftershock sequence,
a few years of a quiet region); the statistics are still computed, but what each can say shrinks with the
number of windows, and the classifier test is not computed at all with fewer windows than folds. These
warnings say so in words instead of leaving a silent dash.
"""

from __future__ import annotations

import math

# Below this many windows a set is flagged: a two-sample KS test of 30 against 30 values detects a shift of
# about 0.35 in the distance only (its 5 % critical value, 1.36 sqrt(2/30)), so it misses most departures.
SMALL_SET = 30


def _ks_critical(n: int, m: int) -> float:
    """The 5 % critical KS distance of an n-by-m two-sample test (asymptotic, 1.36 sqrt((n + m) / (n m)))."""
    return 1.36 * math.sqrt((n + m) / (n * m))


def small_set_warnings(n_windows: dict[str, int], *, cv_folds: int, real: bool = False,
                       max_windows: int = 500) -> list[str]:
    """One sentence per problem of a small H or A (``n_windows`` as in metrics.json): how many windows, and
    what that means for the two-sample tests, the classifier test, the catalog-level statistics and the
    ETAS fits. Empty when H and A have at least SMALL_SET windows and the classifier could run."""
    held = "the held-out period" if real else "the held-out set"
    train = "the training period" if real else "the training set"
    n_h, n_a, n_s = (int(n_windows.get(k, 0)) for k in ("H", "A", "S"))
    out = []
    if 0 < n_h < SMALL_SET:
        ks = _ks_critical(n_h, max(n_s, 1))
        out.append(
            f"Small set: H ({held}) has {n_h} windows. The window-level two-sample tests (KS of per-window "
            f"values, MMD) have little power: a KS distance below about {ks:.2f} passes at 5 %, so agreement "
            f"means little; b-value and Omori use H's distinct events (see their ± errors); the ETAS fit of so "
            f"few windows has wide errors (and may sit at a bound)."
        )
    if 0 < n_a < SMALL_SET:
        out.append(f"Small set: A ({train}, the floor) has {n_a} windows, so the floor d(A, H) and every skill "
                   "built on it are noisy.")
    m = min(n_h, n_s, max_windows)
    if m < cv_folds:
        out.append(f"The classifier test is not computed: it needs at least {cv_folds} windows in each set "
                   f"(evaluate.cv_folds), and H or S has {m}.")
    elif m < SMALL_SET:
        se = math.sqrt(0.25 / (2 * m))
        out.append(f"The classifier test balances the sets to {m} windows each ({cv_folds} folds): its accuracy "
                   f"has a standard error of {se:.2f} at chance, so only accuracies above about {0.5 + 2 * se:.2f} "
                   "tell the sets apart.")
    return out
